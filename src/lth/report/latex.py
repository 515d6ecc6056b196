"""LaTeX: escaping, the report.tex template's environment, and the PDF build (latexmk)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from lth.core.io import LthError, atomic_write_bytes


class Latex(str):
    """Text that is already LaTeX and must not be escaped again."""


LATEX_ESCAPES = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "±": r"\ensuremath{\pm}",
        "×": r"\ensuremath{\times}",
        "–": "--",
        "—": "---",
        "≈": r"\ensuremath{\approx}",
        "≤": r"\ensuremath{\leq}",
        "≥": r"\ensuremath{\geq}",
        "−": r"\ensuremath{-}",
        "→": r"\ensuremath{\rightarrow}",
    }
)


def latex_escape(value) -> str:
    """Escape text for LaTeX; Latex values pass unchanged."""
    if isinstance(value, Latex):
        return value
    return str(value).translate(LATEX_ESCAPES)


def latex_path(value) -> Latex:
    """Typewriter text that may break at line ends: after '/' and '_' in paths, and every
    16 characters in words without '/' (sha256 hashes)."""
    text = str(value)
    chunks = [text[i : i + 16] for i in range(0, len(text), 16)] if "/" not in text else [text]
    escaped = r"\allowbreak{}".join(latex_escape(c) for c in chunks)
    breakable = escaped.replace("/", r"/\allowbreak{}").replace(r"\_", r"\_\allowbreak{}")
    return Latex(r"\texttt{" + breakable + "}")


def latex_cells(cells) -> Latex:
    """One table row: each cell escaped, joined by column separators."""
    return Latex(" & ".join(latex_escape(c) for c in cells))


def latex_env() -> Environment:
    """jinja2 with LaTeX-safe delimiters (\\BLOCK{...}, \\VAR{...}, \\#{...}) that escapes
    every \\VAR unless it is Latex."""
    env = Environment(
        loader=PackageLoader(__package__, "templates"),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        undefined=StrictUndefined,
        finalize=latex_escape,
    )
    env.filters["path"] = latex_path
    env.filters["cells"] = latex_cells
    return env


def _first_latex_error(log_text: str) -> str:
    """The first '! ...' error line of a LaTeX log, else its last non-empty line."""
    lines = [line for line in log_text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("!")]
    if errors:
        return errors[0]
    return lines[-1] if lines else "no log output"


def compile_pdf(tex_path: str | os.PathLike) -> Path:
    """Compile tex_path with latexmk (pdflatex) in its folder, building in a temporary
    directory and writing <stem>.pdf next to it atomically; returns the PDF's path."""
    tex_path = Path(tex_path).resolve()
    if shutil.which("latexmk") is None:
        raise LthError("latexmk not found on PATH: install TeX Live with latexmk")
    with tempfile.TemporaryDirectory(prefix="lth-latex-") as build:
        proc = subprocess.run(
            [
                "latexmk",
                "-pdf",
                "-interaction=nonstopmode",
                "-halt-on-error",
                f"-outdir={build}",
                tex_path.name,
            ],
            cwd=tex_path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        built = Path(build) / f"{tex_path.stem}.pdf"
        if proc.returncode != 0 or not built.is_file():
            log = Path(build) / f"{tex_path.stem}.log"
            text = log.read_text(errors="replace") if log.is_file() else proc.stdout + proc.stderr
            raise LthError(f"{tex_path}: LaTeX failed: {_first_latex_error(text)}")
        pdf = tex_path.with_suffix(".pdf")
        atomic_write_bytes(pdf, built.read_bytes())
    return pdf
