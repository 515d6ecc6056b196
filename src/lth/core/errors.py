"""The user-facing error type (no torch import, so the workflow can use lth.plan.spec)."""


class LthError(Exception):
    """A user-facing error: bad argument, config or input file. Printed as one line."""
