"""Rendering: one experiment's report.html (self-contained) and report.tex from the
figures, tables, scorecard and provenance; make_report runs the whole report."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from lth.analysis.findings import findings_table
from lth.analysis.summary import write_csv
from lth.core.io import LthError, atomic_write_text
from lth.plan.registry import below_target_reason
from lth.report.cost_figures import cost_table, iterations_text
from lth.report.figure_files import build_provenance, write_figures, write_provenance
from lth.report.figures import FIGURES
from lth.report.html import html_env
from lth.report.latex import Latex, compile_pdf, latex_env
from lth.report.scorecard import scorecard_table, write_scorecard
from lth.report.style import SPREADS, FigureStyle
from lth.report.tables import (
    ReportTables,
    collapse_table,
    dense_accuracy,
    method_labels,
    read_tables,
    results_table,
    short_of_target,
    shrinkbench_table,
)

GUIDE = (
    ("claims", "Do the papers' claims hold here?", "the reproduction scorecard"),
    ("accuracy", "How accurate is each method at each density, and where does it collapse?",
     ""),
    ("cost", "What does each network cost to find and train?", ""),
    ("similarity", "Do the methods find the same networks?", ""),
    ("audit", "Where does each number come from?", "the audit trail (appendix)"),
)
"""The report's questions (topic, question, where the answer is when no figure or table
holds it), in the order of the guide."""
REQUIRED_SETTINGS = ("model", "dataset", "schedule", "pruning_rate", "seeds")
COMMON_CAPTION = (
    "Experiment {experiment}: {model} on {dataset}, schedule {schedule}, pruning rate "
    "{pruning_rate}, seeds {seeds}."
)


class DisplayTable(NamedTuple):
    """A table as formatted strings, shared by the HTML and LaTeX templates; topic: the
    GUIDE question it answers."""

    title: str
    note: str
    headers: list[str]
    align: str  # one of "l" / "r" per column
    rows: list[list[str]]
    topic: str = "accuracy"


def _fmt(value: float, spec: str, missing: str = "n/a") -> str:
    """value formatted by spec, or `missing` when missing."""
    return missing if pd.isna(value) else format(value, spec)


def _display(title: str, note: str, df: pd.DataFrame, columns: list) -> DisplayTable:
    """Format df's rows with columns = [(header, align, row -> str)]."""
    rows = [[fmt(row) for _, _, fmt in columns] for row in df.itertuples(index=False)]
    return DisplayTable(title, note, [c[0] for c in columns], "".join(c[1] for c in columns), rows)


def target_note(results: pd.DataFrame, label: dict[str, str]) -> str:
    """A sentence on the levels of results_table that keep less than half of their target
    percent of weights, and the reasons their methods' families give for it."""
    short = short_of_target(results)
    if short.empty:
        return " Every level keeps at least half of its target percent of weights."
    listed = "; ".join(f"{label[r.method]} at {r.level}, {r.percent_remaining:.3g}% of a "
                       f"{r.target_percent:.3g}% target" for r in short.itertuples())
    reasons = dict.fromkeys(filter(None, map(below_target_reason, short["method"])))
    return "".join([f" Below half of their target: {listed}.", *(f" {r}" for r in reasons)])


def display_tables(summary: pd.DataFrame) -> list[DisplayTable]:
    """The report's tables: results, ShrinkBench-style, layer collapse, and search cost."""
    label = method_labels(summary)
    results = results_table(summary)
    results = _display(
        "Results behind the figures",
        "Test accuracy at the early-stopping iteration (minimum validation loss; the metric "
        "of Frankle & Carbin 2019, Fig. 4-5) and at the end of training, as mean ± sample "
        "standard deviation over the networks of a level (seeds, times reinit draws); the "
        "percent of weights left against the level's target." + target_note(results, label),
        results,
        [
            ("Method", "l", lambda r: label[r.method]),
            ("Level", "l", lambda r: r.level),
            ("Weights left (%)", "r", lambda r: _fmt(r.percent_remaining, ".3g")),
            ("Target (%)", "r", lambda r: _fmt(r.target_percent, ".3g")),
            (
                "Early-stop test acc. (%)",
                "r",
                lambda r: f"{r.early_stop_accuracy_mean:.2f} ± {r.early_stop_accuracy_std:.2f}",
            ),
            (
                "Final test acc. (%)",
                "r",
                lambda r: f"{r.final_accuracy_mean:.2f} ± {r.final_accuracy_std:.2f}",
            ),
            ("Early-stop iteration", "r", lambda r: _fmt(r.early_stop_iteration, ".0f")),
            ("Networks", "r", lambda r: str(r.n_networks)),
        ],
    )
    shrink = _display(
        "ShrinkBench-style summary",
        "As recommended by Blalock et al. (2020): compression ratio, theoretical speed-up "
        "(dense / remaining multiply-accumulates, MACs), measured inference speed-up where the "
        "network is physically smaller (filter pruning), and accuracy change vs. the dense network "
        f"(imp round 0: {_fmt(dense_accuracy(summary), '.2f')}%), in percentage points.",
        shrinkbench_table(summary),
        [
            ("Method", "l", lambda r: label[r.method]),
            ("Level", "l", lambda r: r.level),
            ("Density", "r", lambda r: _fmt(r.density, ".4f")),
            ("Compression", "r", lambda r: _fmt(r.compression, ".3g") + "×"),
            ("Speed-up", "r", lambda r: _fmt(r.speedup, ".3g") + "×"),
            ("Measured", "r", lambda r: _fmt(r.latency_speedup, ".3g")
             + ("" if pd.isna(r.latency_speedup) else "×")),
            ("Accuracy (%)", "r", lambda r: _fmt(r.accuracy, ".2f")),
            ("Change (pp)", "r", lambda r: _fmt(r.accuracy_change, "+.2f")),
            ("Collapsed seeds", "r", lambda r: f"{r.collapsed_seeds}/{r.n_seeds}"),
        ],
    )
    collapse = _display(
        "Layer collapse",
        "Largest compression with no layer fully pruned in any seed, and the first "
        "compression with a collapsed layer (Tanaka et al. 2020).",
        collapse_table(summary),
        [
            ("Method", "l", lambda r: label[r.method]),
            ("Family", "l", lambda r: r.family),
            (
                "Max. compression, no collapse",
                "r",
                lambda r: _fmt(r.max_compression_no_collapse, ".3g"),
            ),
            ("First collapse at", "r", lambda r: _fmt(r.first_collapse_compression, ".3g")),
            ("Max. tested", "r", lambda r: _fmt(r.max_compression_tested, ".3g")),
        ],
    )
    return [results, shrink, collapse, _cost_display(summary, label)._replace(topic="cost")]


def _cost_display(summary: pd.DataFrame, label: dict[str, str]) -> DisplayTable:
    """Search cost vs. accuracy: what finding and training each ticket cost (every method
    against IMP) and what it reached."""
    return _display(
        "Search cost vs. accuracy",
        "Per method and level, means over seeds: multiply-accumulates (MACs; 1 MAC = 2 FLOPs, "
        "theoretical, of the kept weights) to find the mask and starting weights (every "
        "training and search the network needed, IMP's earlier rounds included), to train "
        "it, and in total; the total in trainings of the dense network (dense tr.), counted "
        "in these MACs and counted as if every run were dense (the epoch view); iterations "
        "until the validation accuracy first reaches 99% of the same seed's dense network's "
        "best (not reached: no seed did; k/n: the mean over the k of n seeds that did); "
        "unknown: a plug-in criterion that declares no scoring cost; "
        "test accuracy at the early-stopping iteration (ES acc.).",
        cost_table(summary),
        [
            ("Method", "l", lambda r: label[r.method]),
            ("Level", "l", lambda r: r.level),
            ("Left (%)", "r", lambda r: _fmt(r.percent, ".3g")),
            ("Find MACs", "r", lambda r: _fmt(r.find_macs, ".3g", "unknown")),
            ("Train MACs", "r", lambda r: _fmt(r.train_macs, ".3g")),
            ("Total MACs", "r", lambda r: _fmt(r.total_macs, ".3g", "unknown")),
            ("Dense tr. (MACs)", "r", lambda r: _fmt(r.sparse_trainings, ".3g")),
            ("Dense tr. (epochs)", "r", lambda r: _fmt(r.dense_trainings, ".3g")),
            ("Iter. to target", "r", lambda r: iterations_text(r.iterations, r.reached, r.n)),
            ("ES acc. (%)", "r", lambda r: _fmt(r.acc, ".2f")),
        ],
    )


def _captions(experiment: str, settings: dict, spread: str) -> dict[str, str]:
    """Each figure's caption with the experiment and its settings filled in."""
    missing = [k for k in REQUIRED_SETTINGS if k not in settings]
    if missing:
        raise LthError(f"report settings: missing keys {missing}")
    values = {k: settings[k] for k in REQUIRED_SETTINGS}
    values |= {"experiment": experiment, "spread": SPREADS[spread]}
    return {
        name: f"{spec.caption} {COMMON_CAPTION}".format(**values) for name, spec in FIGURES.items()
    }


def findings_section(tables: ReportTables) -> list[dict]:
    """The findings (lth.analysis.findings) grouped by question, as both templates show
    them: question, the sentences with the rows each cites, and the rule (source)."""
    table = findings_table(tables.summary, tables.similarity)
    return [
        {"question": question, "source": "; ".join(rows["source"].unique()),
         "items": rows[["text", "rows"]].to_dict("records")}
        for question, rows in table.groupby("question", sort=False)
    ]


def write_findings(tables: ReportTables, table_paths: dict, experiment: str,
                   out_dir: str | os.PathLike, argv=()) -> Path:
    """Write out_dir/findings.csv (every finding with its rule and cited rows) atomically,
    with its provenance record (the tables it was computed from) beside it."""
    path = Path(out_dir) / "findings.csv"
    inputs = [Path(table_paths[t]) for t in ("summary", "similarity") if t in table_paths]
    write_csv(findings_table(tables.summary, tables.similarity), path, inputs, experiment,
              verb="report", argv=argv)
    return path


def guide(figures: list[dict], tables: list[DisplayTable]) -> list[dict]:
    """Per GUIDE question: the figures (made ones) and tables (by number) that answer it."""
    return [
        {"topic": topic, "question": question, "elsewhere": elsewhere,
         "figures": [(i, f["name"]) for i, f in enumerate(figures, 1)
                     if f["made"] and f["topic"] == topic],
         "tables": [(i, t.title) for i, t in enumerate(tables, 1) if t.topic == topic]}
        for topic, question, elsewhere in GUIDE
    ]


def _figure_entries(
    figure_paths: dict, provenance: dict, captions: dict, out_dir: Path
) -> list[dict]:
    """Per registered figure, what both templates need (made figures and 'not configured')."""
    entries = []
    for name in FIGURES:
        entry = {"name": name, "caption": captions[name], "made": name in figure_paths,
                 "topic": FIGURES[name].topic}
        if entry["made"]:
            pdf, png = figure_paths[name]
            entry |= {
                "png_base64": base64.b64encode(Path(png).read_bytes()).decode("ascii"),
                "pdf_relpath": Latex(Path(os.path.relpath(pdf, out_dir)).as_posix()),
                "audit": provenance["figures"][name],
                "audit_command": f"python -m lth audit {Path(pdf).as_posix()}",
            }
        entries.append(entry)
    return entries


def _code_version_text(version) -> str:
    """A code version for display: a string as is, a dict as 'key value, ...'."""
    if isinstance(version, dict):
        return ", ".join(f"{key} {value}" for key, value in version.items())
    return str(version)


def render_report(
    experiment: str,
    tables: ReportTables,
    figure_paths: dict[str, tuple[Path, Path]],
    provenance: dict,
    settings: dict,
    out_dir: str | os.PathLike,
) -> tuple[Path, Path]:
    """Write out_dir/report.html (self-contained: PNGs inlined as base64, inline CSS) and
    out_dir/report.tex (figures included as their PDFs by relative path) from
    the package's templates; returns (html, tex)."""
    out_dir = Path(out_dir)
    for key in ("code_version", "style", "figures"):
        if key not in provenance:
            raise LthError(f"report provenance: missing key '{key}'")
    captions = _captions(experiment, settings, provenance["style"]["spread"])
    figures = _figure_entries(figure_paths, provenance, captions, out_dir)
    shown = display_tables(tables.summary)
    context = {
        "experiment": experiment,
        "settings": settings,
        "code_version": _code_version_text(provenance["code_version"]),
        "figures": figures,
        "tables": shown,
        "scorecard": scorecard_table(tables.summary),
        "findings": findings_section(tables),
        "guide": guide(figures, shown),
    }
    html = out_dir / "report.html"
    tex = out_dir / "report.tex"
    atomic_write_text(html, html_env().get_template("report.html.j2").render(context))
    atomic_write_text(tex, latex_env().get_template("report.tex.j2").render(context))
    return html, tex


def make_report(
    experiment: str,
    table_paths: dict[str, str | os.PathLike],
    style: FigureStyle,
    settings: dict,
    out_dir: str | os.PathLike,
) -> dict[str, Path]:
    """The whole report of one experiment under out_dir: figures/<name>.{pdf,png} with their
    provenance records, provenance.json, scorecard.csv, findings.csv, report.html, report.tex and
    report.pdf; table_paths has keys summary, layers, curves, and similarity and indegree
    (the figures that read them have no data without them)."""
    tables = read_tables(table_paths)
    scorecard = write_scorecard(tables.summary, table_paths["summary"], experiment, out_dir)
    findings = write_findings(tables, table_paths, experiment, out_dir)
    figure_paths = write_figures(tables, style, Path(out_dir) / "figures")
    provenance = build_provenance(experiment, style, settings, table_paths, figure_paths)
    provenance_path = write_provenance(provenance, out_dir)
    html, tex = render_report(experiment, tables, figure_paths, provenance, settings, out_dir)
    return {"html": html, "tex": tex, "pdf": compile_pdf(tex), "provenance": provenance_path,
            "scorecard": scorecard, "findings": findings}
