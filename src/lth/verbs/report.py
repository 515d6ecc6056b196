"""Report verbs: `figure` (one figure as PDF + PNG), `report` (scorecard.csv, HTML + LaTeX +
provenance.json) and `pdf` (latexmk). Style and settings arrive as JSON objects of explicit
values."""

from __future__ import annotations

import json
from pathlib import Path

from lth.core.io import LthError, write_json
from lth.core.provenance import sidecar_path


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise LthError(f"expected a JSON object, got {text[:60]!r} ({err})") from None
    if not isinstance(value, dict):
        raise LthError(f"expected a JSON object, got {text[:60]!r}")
    return value


TABLES = ("summary", "layers", "curves")
SIMILARITY_TABLES = ("similarity", "indegree")


def _add_tables(p) -> None:
    for table in TABLES:
        p.add_argument(f"--{table}", required=True, help=f"{table}.csv of the experiment")
    for table in SIMILARITY_TABLES:
        p.add_argument(f"--{table}", help=f"{table}.csv of the experiment (lth similarity), "
                       "for the figures that read it")
    p.add_argument("--style", type=_json_object, required=True, help="figure style, JSON")


def add_parsers(sub) -> None:
    """The report verbs' parsers."""
    p = sub.add_parser("figure", help="draw one figure of an experiment as PDF and PNG")
    p.add_argument("--experiment", required=True)
    p.add_argument("--name", required=True)
    _add_tables(p)
    p.add_argument("--settings", type=_json_object, required=True, help="captions, JSON")
    p.add_argument("--out-dir", required=True, help="reports/<exp>/figures")
    p = sub.add_parser("report", help="scorecard.csv, findings.csv, report.html, report.tex, "
                       "provenance.json")
    p.add_argument("--experiment", required=True)
    _add_tables(p)
    p.add_argument("--settings", type=_json_object, required=True, help="captions, JSON")
    p.add_argument("--figures", nargs="+", required=True, help="figure PDFs (PNG beside each)")
    p.add_argument("--out-dir", required=True, help="reports/<exp>")
    p = sub.add_parser("pdf", help="compile report.tex to report.pdf with latexmk")
    p.add_argument("--tex", required=True)


def _tables_and_style(args, figures):
    """The tables the figures read (after checking that they were given), the style, and
    the tables' paths."""
    from lth.report.figure_files import check_tables_given
    from lth.report.figures import FIGURES
    from lth.report.style import style_from_config
    from lth.report.tables import read_tables

    read = set(TABLES) | {t for name in figures for t in FIGURES[name].reads}
    paths = {t: getattr(args, t) for t in TABLES + SIMILARITY_TABLES
             if getattr(args, t) and t in read}
    check_tables_given(figures, paths)
    style = style_from_config(args.style)
    return read_tables(paths), style, paths


def cmd_figure(args, argv: list[str]) -> None:
    from lth.report.figure_files import build_provenance, save_figure
    from lth.report.figures import FIGURES, no_data_figure

    if args.name not in FIGURES:
        raise LthError(f"--name {args.name!r}: expected one of {', '.join(FIGURES)}")
    tables, style, paths = _tables_and_style(args, [args.name])
    fig = FIGURES[args.name].make(tables, style)
    if fig is None:
        print(f"lth figure: {args.name} has no data in experiment {args.experiment}")
        fig = no_data_figure(args.name, args.experiment, style)
    written = {args.name: save_figure(fig, Path(args.out_dir) / args.name, style)}
    record = build_provenance(args.experiment, style, args.settings, paths, written,
                              argv=argv)["figures"][args.name]
    for path in written[args.name]:
        write_json(sidecar_path(path), record)


def cmd_report(args, argv: list[str]) -> None:
    from lth.report.figure_files import build_provenance
    from lth.report.figures import FIGURES
    from lth.report.render import render_report, write_findings
    from lth.report.scorecard import write_scorecard

    figures = {Path(pdf).stem: (Path(pdf), Path(pdf).with_suffix(".png")) for pdf in args.figures}
    unknown = [name for name in figures if name not in FIGURES]
    if unknown:
        raise LthError(f"--figures {unknown[0]}: not a registered figure")
    tables, style, paths = _tables_and_style(args, figures)
    provenance = build_provenance(args.experiment, style, args.settings, paths, figures,
                                  argv=argv)
    write_scorecard(tables.summary, args.summary, args.experiment, args.out_dir, argv=argv)
    write_findings(tables, paths, args.experiment, args.out_dir, argv=argv)
    render_report(args.experiment, tables, figures, provenance, args.settings, args.out_dir)
    write_json(Path(args.out_dir) / "provenance.json", provenance)


def cmd_pdf(args, argv: list[str]) -> None:
    from lth.report.latex import compile_pdf

    if not Path(args.tex).is_file():
        raise LthError(f"{args.tex}: file not found")
    compile_pdf(args.tex)


COMMANDS = {"figure": cmd_figure, "report": cmd_report, "pdf": cmd_pdf}
