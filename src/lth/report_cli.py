"""Report verbs (figure, report, pdf): filled in with lth.report."""

COMMANDS: dict = {}


def add_parsers(sub) -> None:
    """Add the report verbs' parsers."""
