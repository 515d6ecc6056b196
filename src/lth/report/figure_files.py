"""Figures on disk: each figure written as PDF and PNG (atomically, the same bytes for the
same data), and its provenance record (input tables with their sha256, outputs, code
version) beside it and in provenance.json, for ``python -m lth audit``."""

from __future__ import annotations

import io
import os
from dataclasses import asdict
from pathlib import Path

from matplotlib.figure import Figure

from lth.core.io import LthError, atomic_write_bytes, write_json
from lth.core.provenance import code_version, file_entry, make_record, sidecar_path
from lth.report.figures import FIGURES
from lth.report.style import FigureStyle, styled
from lth.report.tables import ReportTables


def save_figure(fig: Figure, stem: str | os.PathLike, style: FigureStyle) -> tuple[Path, Path]:
    """Write fig as <stem>.pdf and <stem>.png (style.dpi), each atomically; no timestamps
    in the PDF, so the same data give the same bytes."""
    paths = Path(f"{stem}.pdf"), Path(f"{stem}.png")
    with styled(style):
        for path, metadata in zip(paths, ({"CreationDate": None}, {}), strict=True):
            buffer = io.BytesIO()
            fig.savefig(
                buffer,
                format=path.suffix[1:],
                dpi=style.dpi,
                bbox_inches="tight",
                pad_inches=0.05,
                metadata=metadata,
            )
            atomic_write_bytes(path, buffer.getvalue())
    return paths


def write_figures(
    tables: ReportTables, style: FigureStyle, figures_dir: str | os.PathLike
) -> dict[str, tuple[Path, Path]]:
    """Draw and save every registered figure that has data: name -> (pdf, png)."""
    written = {}
    for name, spec in FIGURES.items():
        fig = spec.make(tables, style)
        if fig is not None:
            written[name] = save_figure(fig, Path(figures_dir) / name, style)
    return written


def check_tables_given(names, table_paths: dict) -> None:
    """One clear error when a figure of names reads a table that table_paths lacks."""
    for name in names:
        missing = [t for t in FIGURES[name].reads if t not in table_paths]
        if missing:
            raise LthError(f"figure {name} reads the {missing[0]} table: give --{missing[0]}")


def build_provenance(
    experiment: str,
    style: FigureStyle,
    settings: dict,
    table_paths: dict[str, str | os.PathLike],
    figure_paths: dict[str, tuple[Path, Path]],
    argv=(),
) -> dict:
    """{"code_version", "style", "figures": {name: record}}, where record is the
    lth.core.provenance record of the figure (verb "report", params, code version, packages) with
    "inputs" (the tables it read) and "outputs" (its PDF and PNG), each as {"path","sha256"}."""
    check_tables_given(figure_paths, table_paths)
    params = {"experiment": experiment, "style": asdict(style), "settings": settings}
    figures = {
        name: make_record("report", params, [table_paths[t] for t in FIGURES[name].reads],
                          argv=argv)
        | {"outputs": [file_entry(p) for p in paths]}
        for name, paths in figure_paths.items()
    }
    return {"code_version": code_version(), "style": asdict(style), "figures": figures}


def write_provenance(provenance: dict, out_dir: str | os.PathLike) -> Path:
    """Write out_dir/provenance.json, and each figure's record beside its PDF and PNG
    (<file>.provenance.json), where `python -m lth audit <figure>` finds it."""
    for record in provenance["figures"].values():
        for output in record["outputs"]:
            write_json(sidecar_path(Path(output["path"])), record)
    path = Path(out_dir) / "provenance.json"
    write_json(path, provenance)
    return path


# ----------------------------------------------------------------------------- rendering
