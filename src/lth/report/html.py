"""HTML: the report.html template's environment (autoescaped)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined


def html_env() -> Environment:
    """jinja2 that escapes HTML, loading the templates installed with this package."""
    return Environment(
        loader=PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
