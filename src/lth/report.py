"""Report: figures and tables from summary.csv / layers.csv / curves.csv, rendered into one
self-contained HTML page and one LaTeX document compiled to PDF.

Every figure is a function ``fig_<name>(tables, style) -> Figure | None`` registered in
FIGURES; it returns None when the experiment has no data for it (e.g. a config with only
IMP has no at-init methods), and the report then says "not configured". Values are means
over seeds; bands show the spread over seeds (``style.spread``: ±1 sample standard deviation
or minimum to maximum, the latter as in Frankle & Carbin 2019, Fig. 1-4 error bars).
Every figure is written as PDF and PNG, and provenance.json records, per figure, the input
tables with their sha256, the outputs and the code version, for ``python -m lth audit``.
The report opens with the reproduction scorecard of lth.claims, also written as scorecard.csv.
"""

from __future__ import annotations

import base64
import io
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from lth.io import LthError, atomic_write_bytes, atomic_write_text, write_json
from lth.provenance import code_version, file_entry, make_record, sidecar_path

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "reports" / "templates"

FAMILIES = ("lottery", "control", "at_init", "baseline")
FAMILY_LINESTYLE = {"lottery": "-", "control": "--", "at_init": ":", "baseline": "-."}
FAMILY_MARKER = {"lottery": "o", "control": "s", "at_init": "^", "baseline": "D"}
SPREADS = {"std": "±1 sample standard deviation", "minmax": "the minimum to maximum"}
CONTEXTS = ("paper", "notebook", "talk", "poster")
AXES_STYLES = ("white", "whitegrid", "ticks", "dark", "darkgrid")
REQUIRED_SETTINGS = ("model", "dataset", "schedule", "pruning_rate", "seeds")
# fmt: off
REQUIRED_COLUMNS = {
    "summary": (
        "experiment", "method", "family", "seed", "level", "round", "density",
        "percent_remaining", "compression", "speedup", "collapsed", "final_test_accuracy",
        "final_train_accuracy", "early_stop_iteration", "early_stop_test_accuracy",
    ),
    "layers": ("method", "seed", "level", "round", "density", "layer", "layer_density"),
    "curves": ("method", "seed", "level", "round", "density", "iteration", "split", "accuracy"),
}
# fmt: on
LEVEL_KEYS = ["family", "method", "level"]
ES_ACCURACY = "early_stop_test_accuracy"


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class FigureStyle:
    """Explicit look of every figure, and which levels the selective figures show.

    context/axes_style/font_scale: seaborn plotting context, axes style and font scale;
    palette: seaborn palette for methods; cmap: colormap of the layer-density heatmap;
    dpi, width, height: PNG resolution and figure size in inches;
    spread: "std" or "minmax", the band drawn around the mean over seeds;
    curve_percents: percents remaining whose nearest IMP rounds get learning curves (Frankle
    & Carbin 2019, Fig. 3 shows 100, 51.3, 21.1, 7.0, 3.6, 1.9); the sparsest round is added;
    control_curve_percent: percent remaining whose nearest reinit level gets a curve;
    profile_percents: overall percents remaining faceted in density_profiles;
    profile_match_factor: a method's level joins a facet if its percent is within this
    factor of the facet's.
    """

    context: str
    axes_style: str
    font_scale: float
    palette: str
    cmap: str
    dpi: int
    width: float
    height: float
    spread: str
    curve_percents: tuple[float, ...]
    control_curve_percent: float
    profile_percents: tuple[float, ...]
    profile_match_factor: float

    def __post_init__(self):
        checks = {
            "context": self.context in CONTEXTS,
            "axes_style": self.axes_style in AXES_STYLES,
            "spread": self.spread in SPREADS,
            "font_scale": self.font_scale > 0,
            "dpi": self.dpi > 0,
            "width": self.width > 0,
            "height": self.height > 0,
            "curve_percents": len(self.curve_percents) > 0,
            "profile_percents": len(self.profile_percents) > 0,
            "profile_match_factor": self.profile_match_factor >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise LthError(f"report style: bad value {key}={getattr(self, key)!r}")
        try:
            sns.color_palette(self.palette)
            matplotlib.colormaps[self.cmap]
        except (ValueError, KeyError):
            raise LthError(
                f"report style: unknown palette {self.palette!r} or cmap {self.cmap!r}"
            ) from None


def style_from_config(cfg: dict) -> FigureStyle:
    """FigureStyle from the workflow config's report style mapping (every key required)."""
    names = [f.name for f in fields(FigureStyle)]
    missing = [n for n in names if n not in cfg]
    unknown = [k for k in cfg if k not in names]
    if missing or unknown:
        raise LthError(f"report style: missing keys {missing}, unknown keys {unknown}")
    listed = ("curve_percents", "profile_percents")
    return FigureStyle(**{n: tuple(cfg[n]) if n in listed else cfg[n] for n in names})


@dataclass(frozen=True)
class ReportTables:
    """The three aggregate tables of one experiment (see SPEC: summary, layers, curves)."""

    summary: pd.DataFrame
    layers: pd.DataFrame
    curves: pd.DataFrame


def _read_csv(name: str, path: str | os.PathLike) -> pd.DataFrame:
    """Read one aggregate CSV, checking its required columns and families."""
    try:
        df = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise LthError(f"{path}: cannot read {name} table ({err})") from None
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
    if missing:
        raise LthError(f"{path}: missing columns {missing}")
    if name == "summary" and not set(df["family"]).issubset(FAMILIES):
        raise LthError(f"{path}: family must be one of {FAMILIES}")
    return df


def read_tables(summary_csv, layers_csv, curves_csv) -> ReportTables:
    """Read and check summary.csv, layers.csv and curves.csv."""
    return ReportTables(
        summary=_read_csv("summary", summary_csv),
        layers=_read_csv("layers", layers_csv),
        curves=_read_csv("curves", curves_csv),
    )


# ----------------------------------------------------------------------------- aggregation


def _sorted_by_family(df: pd.DataFrame, then: list[str], ascending: list[bool]) -> pd.DataFrame:
    """Rows in the order of FAMILIES, then by the given columns."""
    keyed = df.assign(_family=df["family"].map(FAMILIES.index))
    ordered = keyed.sort_values(["_family", *then], ascending=[True, *ascending])
    return ordered.drop(columns="_family").reset_index(drop=True)


def mean_and_spread(df: pd.DataFrame, keys: list[str], value: str, spread: str) -> pd.DataFrame:
    """Per group of keys: mean, sample std, min, max, n of value, and the band lo..hi."""
    stats = (
        df.groupby(keys, sort=False)[value]
        .agg(mean="mean", std="std", min="min", max="max", n="count")
        .reset_index()
    )
    stats["std"] = stats["std"].fillna(0.0)
    if spread == "std":
        stats["lo"], stats["hi"] = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
    else:
        stats["lo"], stats["hi"] = stats["min"], stats["max"]
    return stats


def level_stats(summary: pd.DataFrame, value: str, spread: str) -> pd.DataFrame:
    """mean_and_spread per (family, method, level) plus the level's mean percent remaining,
    ordered by family, method, then percent remaining (dense first)."""
    stats = mean_and_spread(summary, LEVEL_KEYS, value, spread)
    percent = summary.groupby(LEVEL_KEYS, sort=False)["percent_remaining"].mean()
    stats = stats.join(percent.rename("percent"), on=LEVEL_KEYS)
    return _sorted_by_family(stats, ["method", "percent"], [True, False])


def results_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Numbers behind the accuracy figures: per method and nominal level, mean percent
    remaining, mean and sample std of test accuracy (%) at the early-stopping iteration and
    at the end of training, mean early-stop iteration and the number of networks (seeds,
    times reinit draws)."""
    scaled = summary.assign(
        es=100 * summary[ES_ACCURACY], final=100 * summary["final_test_accuracy"]
    )
    final = level_stats(scaled, "final", "std")
    early = mean_and_spread(scaled, LEVEL_KEYS, "es", "std").set_index(LEVEL_KEYS)
    stop = summary.groupby(LEVEL_KEYS, sort=False)["early_stop_iteration"].mean()
    table = final.join(early[["mean", "std"]].add_prefix("es_"), on=LEVEL_KEYS).join(
        stop, on=LEVEL_KEYS
    )
    return table.rename(
        columns={
            "percent": "percent_remaining",
            "es_mean": "early_stop_accuracy_mean",
            "es_std": "early_stop_accuracy_std",
            "mean": "final_accuracy_mean",
            "std": "final_accuracy_std",
            "n": "n_networks",
        }
    )[
        [
            "family",
            "method",
            "level",
            "percent_remaining",
            "early_stop_accuracy_mean",
            "early_stop_accuracy_std",
            "final_accuracy_mean",
            "final_accuracy_std",
            "early_stop_iteration",
            "n_networks",
        ]
    ]


def dense_accuracy(summary: pd.DataFrame) -> float:
    """Mean final test accuracy (%) of the dense network (imp round 0); NaN if not trained."""
    dense = summary[(summary["method"] == "imp") & (summary["round"] == 0)]
    return float(100 * dense["final_test_accuracy"].mean()) if len(dense) else math.nan


def shrinkbench_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method and level, as Blalock et al. (2020, Sec. 4) recommend reporting: density,
    compression ratio, theoretical speed-up (dense_flops/flops), accuracy (%) and its change
    vs. the dense network in percentage points, and how many seeds had a collapsed layer.
    Structured methods (a physically smaller network) also have a measured latency speed-up
    (dense / pruned seconds per inference batch, measured side by side); others have NaN."""
    measured = summary.get("dense_latency_seconds", np.nan) / summary.get("latency_seconds", np.nan)
    per_level = summary.assign(
        acc=100 * summary["final_test_accuracy"], measured=measured
    ).groupby(LEVEL_KEYS, sort=False)
    table = per_level.agg(
        density=("density", "mean"),
        compression=("compression", "mean"),
        speedup=("speedup", "mean"),
        latency_speedup=("measured", "mean"),
        accuracy=("acc", "mean"),
        collapsed_seeds=("collapsed", "sum"),
        n_seeds=("seed", "count"),
    ).reset_index()
    table["accuracy_change"] = table["accuracy"] - dense_accuracy(summary)
    table["collapsed_seeds"] = table["collapsed_seeds"].astype(int)
    return _sorted_by_family(table, ["method", "density"], [True, False])[
        [
            "family",
            "method",
            "level",
            "density",
            "compression",
            "speedup",
            "latency_speedup",
            "accuracy",
            "accuracy_change",
            "collapsed_seeds",
            "n_seeds",
        ]
    ]


def collapse_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method, the largest compression reached before any layer collapsed in any seed
    (NaN: collapsed at every level), the smallest compression at which some seed had a
    collapsed layer (NaN: never), and the largest compression tested; the question of
    Tanaka et al. (2020), Fig. 1."""
    levels = summary.groupby(LEVEL_KEYS, sort=False).agg(
        compression=("compression", "mean"), collapsed=("collapsed", "any")
    )
    levels["broken"] = levels["compression"].where(levels["collapsed"])
    first = levels.groupby(["family", "method"], sort=False)["broken"].transform("min")
    levels["intact"] = levels["compression"].where(~(levels["compression"] >= first))
    table = (
        levels.groupby(["family", "method"], sort=False)
        .agg(
            max_compression_no_collapse=("intact", "max"),
            first_collapse_compression=("broken", "min"),
            max_compression_tested=("compression", "max"),
        )
        .reset_index()
    )
    return _sorted_by_family(table, ["method"], [True])


# ----------------------------------------------------------------------------- figure helpers


@contextmanager
def _styled(style: FigureStyle) -> Iterator[None]:
    """seaborn context, axes style and font scale, with embeddable TrueType fonts in PDFs."""
    with (
        sns.axes_style(style.axes_style),
        sns.plotting_context(style.context, font_scale=style.font_scale),
        matplotlib.rc_context({"pdf.fonttype": 42, "legend.frameon": True}),
    ):
        yield


def _new_figure(style: FigureStyle, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(style.width, style.height), dpi=style.dpi, layout="constrained")
    return fig, list(fig.subplots(1, ncols, sharey=True, squeeze=False)[0])


def method_colors(summary: pd.DataFrame, palette: str) -> dict[str, tuple]:
    """One color per method, stable across figures (methods ordered by family, then name)."""
    pairs = summary[["family", "method"]].drop_duplicates()
    methods = _sorted_by_family(pairs, ["method"], [True])["method"].tolist()
    return dict(zip(methods, sns.color_palette(palette, n_colors=len(methods)), strict=True))


def _one_two_five(lo: float, hi: float) -> list[float]:
    """Ticks 1, 2, 5 x 10^k within [lo, hi]."""
    ticks = [m * 10.0**k for k in range(-4, 7) for m in (1, 2, 5)]
    return [t for t in ticks if lo <= t <= hi]


def _log_axis(axis, lo: float, hi: float, suffix: str) -> None:
    """1-2-5 major ticks labelled like 100, 50, 20, 0.5 (plus suffix), no minor labels."""
    axis.set_major_locator(FixedLocator(_one_two_five(lo, hi)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{suffix}"))
    axis.set_minor_locator(NullLocator())


def _percent_axis(ax: Axes, percents) -> None:
    """Log x axis of percent of weights remaining, reversed: dense (100) on the left."""
    lo, hi = float(np.min(percents)), float(np.max(percents))
    ax.set_xscale("log")
    ax.set_xlim(hi * 1.15, lo / 1.15)
    _log_axis(ax.xaxis, lo / 1.15, hi * 1.15, "")
    ax.set_xlabel("Weights remaining (%)")


def _draw_mean_spread(ax: Axes, x, stats: pd.DataFrame, **line) -> None:
    """Mean as a line, spread over seeds as a band of the same color."""
    ax.fill_between(x, stats["lo"], stats["hi"], color=line["color"], alpha=0.2, linewidth=0)
    ax.plot(x, stats["mean"], **line)


def _method_line(family: str, color) -> dict:
    """Line style of a method: color per method, dash and marker per family."""
    return {
        "color": color,
        "linestyle": FAMILY_LINESTYLE[family],
        "marker": FAMILY_MARKER[family],
        "markersize": 4,
    }


def _metrics_vs_density(
    rows: pd.DataFrame,
    style: FigureStyle,
    panels: list[tuple[str, str | None]],
    scale: float,
    ylabel: str,
    colors: dict[str, tuple],
) -> Figure | None:
    """One panel per (value column, title) of panels, sharing the y axis: one line (mean)
    and band (spread) per method of rows vs. percent remaining on a reversed log axis; None
    if rows is empty."""
    if rows.empty:
        return None
    with _styled(style):
        fig, axes = _new_figure(style, ncols=len(panels))
        for ax, (value, title) in zip(axes, panels, strict=True):
            stats = level_stats(rows.assign(y=scale * rows[value]), "y", style.spread)
            for (family, method), s in stats.groupby(["family", "method"], sort=False):
                _draw_mean_spread(
                    ax, s["percent"], s, label=method, **_method_line(family, colors[method])
                )
            _percent_axis(ax, stats["percent"])
            if title:
                ax.set_title(title)
        axes[0].set_ylabel(ylabel)
        _place_legend(axes, fig, rows["method"].nunique())
    return fig


def _place_legend(axes: list[Axes], fig: Figure, entries: int) -> None:
    """Legend inside the first axes when short, else below the plots, off the data."""
    if entries <= 5:
        axes[0].legend(loc="best")
    else:
        _legend_below(fig, axes, ncols=5)


def _legend_below(fig: Figure, axes: list[Axes], ncols: int, title: str | None = None) -> None:
    """One legend below all axes, in up to ncols columns, each label once."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(
        entries.values(),
        entries.keys(),
        loc="outside lower center",
        ncols=min(len(entries), ncols),
        fontsize="small",
        title=title,
        title_fontsize="small",
    )


def _nearest_level(levels: pd.Series, percent: float) -> str:
    """The level (index of `levels`, values percent remaining) nearest to percent in log."""
    return (np.log(levels) - math.log(percent)).abs().idxmin()


def _curve_levels(curves: pd.DataFrame, style: FigureStyle) -> list[tuple[str, str]]:
    """(method, level) pairs for learning curves: the IMP rounds nearest each of
    style.curve_percents, the sparsest IMP round, and one reinit level."""
    percent = 100 * curves.groupby(["method", "level"])["density"].mean()
    imp = percent["imp"]
    chosen = [_nearest_level(imp, p) for p in style.curve_percents] + [imp.idxmin()]
    pairs = [("imp", level) for level in dict.fromkeys(chosen)]
    if "reinit" in percent.index.get_level_values("method"):
        pairs.append(("reinit", _nearest_level(percent["reinit"], style.control_curve_percent)))
    return pairs


# ----------------------------------------------------------------------------- figures


def lottery_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """IMP and the controls on IMP's masks (the methods of Frankle & Carbin 2019, Fig. 3-4);
    controls on fine-tuning's masks (scratch_*_finetune) belong beside finetune instead."""
    lottery = summary["family"].isin(("lottery", "control"))
    return summary[lottery & ~summary["method"].str.endswith("_finetune")]


def fig_accuracy_vs_density(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Test accuracy at the early-stopping iteration (left: Frankle & Carbin 2019, Fig. 3
    and 4 middle) and at the end of training (right) vs. percent remaining, for IMP and the
    controls on its masks."""
    return _metrics_vs_density(
        lottery_rows(tables.summary),
        style,
        [(ES_ACCURACY, "At early stop"), ("final_test_accuracy", "At the end of training")],
        100,
        "Test accuracy (%)",
        method_colors(tables.summary, style.palette),
    )


def fig_early_stop_vs_density(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Early-stopping iteration (minimum validation loss) vs. percent remaining for IMP and
    the controls on its masks (Frankle & Carbin 2019, Fig. 4 left)."""
    return _metrics_vs_density(
        lottery_rows(tables.summary),
        style,
        [("early_stop_iteration", None)],
        1,
        "Early-stop iteration",
        method_colors(tables.summary, style.palette),
    )


def fig_all_methods(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Final test accuracy vs. percent remaining for every method; None unless at-init or
    baseline methods were run (else it would repeat accuracy_vs_density)."""
    if not tables.summary["family"].isin(("at_init", "baseline")).any():
        return None
    return _metrics_vs_density(
        tables.summary,
        style,
        [("final_test_accuracy", None)],
        100,
        "Final test accuracy (%)",
        method_colors(tables.summary, style.palette),
    )


def fig_learning_curves(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Test accuracy vs. training iteration for selected IMP rounds and one reinit level
    (Frankle & Carbin 2019, Fig. 3); the y axis is zoomed to the last three quarters of
    training, where the curves differ, as in that figure."""
    test = tables.curves[tables.curves["split"] == "test"]
    if not (test["method"] == "imp").any():
        return None
    pairs = _curve_levels(test, style)
    colors = sns.color_palette(style.palette, n_colors=len(pairs))
    late = []
    with _styled(style):
        fig, (ax,) = _new_figure(style)
        for (method, level), color in zip(pairs, colors, strict=True):
            rows = test[(test["method"] == method) & (test["level"] == level)]
            stats = mean_and_spread(
                rows.assign(y=100 * rows["accuracy"]), ["iteration"], "y", style.spread
            )
            label = f"{method} {100 * rows['density'].mean():.3g}%"
            dash = "--" if method == "reinit" else "-"
            _draw_mean_spread(
                ax, stats["iteration"], stats, color=color, linestyle=dash, label=label
            )
            late.append(stats.loc[stats["iteration"] >= stats["iteration"].max() / 4, "mean"])
        lo, hi = pd.concat(late).min(), pd.concat(late).max()
        ax.set_ylim(lo - 0.15 * (hi - lo), hi + 0.1 * (hi - lo))
        ax.set_xlabel("Training iteration")
        ax.set_ylabel("Test accuracy (%)")
        _legend_below(fig, [ax], ncols=3, title="method, weights remaining")
    return fig


def fig_generalization_gap(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Final train and test accuracy vs. percent remaining for IMP and reinit (Frankle &
    Carbin 2019, Sec. 2, on the gap between train and test accuracy)."""
    rows = tables.summary[tables.summary["method"].isin(("imp", "reinit"))]
    if rows.empty:
        return None
    colors = method_colors(tables.summary, style.palette)
    with _styled(style):
        fig, (ax,) = _new_figure(style)
        for split, dash, fill in (("train", "--", "none"), ("test", "-", "full")):
            stats = level_stats(
                rows.assign(y=100 * rows[f"final_{split}_accuracy"]), "y", style.spread
            )
            for method, s in stats.groupby("method", sort=False):
                _draw_mean_spread(
                    ax,
                    s["percent"],
                    s,
                    color=colors[method],
                    linestyle=dash,
                    marker="o",
                    markersize=4,
                    fillstyle=fill,
                    label=f"{method} {split}",
                )
        _percent_axis(ax, rows["percent_remaining"])
        ax.set_ylabel("Accuracy (%)")
        ax.legend(loc="best")
    return fig


def fig_layer_density(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Heatmap of each layer's percent of weights remaining (rows, forward order) per IMP
    round (columns, labelled by overall percent remaining), mean over seeds; a blank cell
    is a layer collapsed in every seed. Cells are annotated when there are few columns."""
    imp = tables.layers[tables.layers["method"] == "imp"]
    if imp.empty:
        return None
    grid = imp.assign(p=100 * imp["layer_density"]).pivot_table(
        index="layer", columns="round", values="p", aggfunc="mean", sort=False
    )
    grid = grid[sorted(grid.columns)]
    overall = 100 * imp.groupby("round")["density"].mean()
    positive = grid.to_numpy()[grid.to_numpy() > 0]
    with _styled(style):
        fig, (ax,) = _new_figure(style)
        sns.heatmap(
            grid,
            ax=ax,
            cmap=style.cmap,
            norm=LogNorm(positive.min(), 100),
            annot=len(grid.columns) <= 12,
            fmt=".3g",
            annot_kws={"fontsize": "x-small"},
            xticklabels=[f"{overall[r]:.3g}" for r in grid.columns],
            cbar_kws={"label": "Layer weights remaining (%)"},
        )
        colorbar = ax.collections[0].colorbar
        _log_axis(colorbar.ax.yaxis, positive.min(), 100, "")
        ax.set_xlabel("IMP round: overall weights remaining (%)")
        ax.set_ylabel("Layer")
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
    return fig


def fig_layer_collapse(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Per method, the largest compression reached before any layer collapsed (bar, log
    scale) and the first compression with a collapsed layer (cross); see collapse_table."""
    if tables.summary.empty:
        return None
    table = collapse_table(tables.summary)
    colors = method_colors(tables.summary, style.palette)
    y = np.arange(len(table))
    with _styled(style):
        fig, (ax,) = _new_figure(style)
        ax.barh(
            y,
            table["max_compression_no_collapse"].fillna(0),
            height=0.6,
            color=[colors[m] for m in table["method"]],
            label="largest compression before any layer collapsed",
        )
        if table["first_collapse_compression"].notna().any():
            ax.plot(
                table["first_collapse_compression"],
                y,
                linestyle="none",
                marker="X",
                markersize=9,
                color="black",
                label="first compression with a collapsed layer",
            )
        ax.set_yticks(y, table["method"])
        ax.invert_yaxis()
        ax.set_xscale("log")
        hi = 1.5 * table["max_compression_tested"].max()
        ax.set_xlim(1, hi)
        _log_axis(ax.xaxis, 1, hi, "×")
        ax.set_xlabel("Compression ratio (total / remaining weights)")
        _legend_below(fig, [ax], ncols=1)
    return fig


def _profile_facets(layers: pd.DataFrame, style: FigureStyle) -> list[tuple[float, list]]:
    """Per facet percent: the (method, level) pairs whose overall percent is within
    style.profile_match_factor of it, nearest level per method; facets without any dropped."""
    percent = 100 * layers.groupby(["method", "level"], sort=False)["density"].mean()
    facets = []
    for target in style.profile_percents:
        pairs = []
        for method in percent.index.get_level_values("method").unique():
            level = _nearest_level(percent[method], target)
            if abs(math.log(percent[method][level] / target)) <= math.log(
                style.profile_match_factor
            ):
                pairs.append((method, level))
        if pairs:
            facets.append((target, pairs))
    return facets


def fig_density_profiles(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Per-layer percent remaining (x: layer index in forward order, log y) for each method,
    one facet per overall percent in style.profile_percents; mean over seeds, so a gap is a
    layer collapsed in every seed."""
    layers = tables.layers
    facets = _profile_facets(layers, style) if len(layers) else []
    if not facets:
        return None
    order = {name: i + 1 for i, name in enumerate(pd.unique(layers["layer"]))}
    family = tables.summary.drop_duplicates("method").set_index("method")["family"]
    colors = method_colors(tables.summary, style.palette)
    with _styled(style):
        fig, axes = _new_figure(style, ncols=len(facets))
        for ax, (target, pairs) in zip(axes, facets, strict=True):
            for method, level in pairs:
                rows = layers[(layers["method"] == method) & (layers["level"] == level)]
                mean = 100 * rows.groupby("layer", sort=False)["layer_density"].mean()
                x = mean.index.map(order)
                y = mean.where(mean > 0)
                ax.plot(x, y, label=method, **_method_line(family[method], colors[method]))
            ax.set_title(f"{target:g}% remaining")
            ax.set_xlabel("Layer")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_yscale("log")
        lo = min(np.nanmin(line.get_ydata()) for ax in axes for line in ax.get_lines())
        axes[0].set_ylim(lo / 1.5, 150)
        _log_axis(axes[0].yaxis, lo / 1.5, 150, "")
        axes[0].set_ylabel("Layer weights remaining (%)")
        _legend_below(fig, axes, ncols=5)
    return fig


BANDS = " Lines are means over seeds; bands show {spread} over seeds."
CONTROLS = (
    "reinit (the same mask, a new initialization; Frankle & Carbin 2019, Sec. 2), "
    "random_pruning (a random mask with the imp mask's per-layer densities from the same "
    "initialization: 'random sparsity', Frankle & Carbin 2019, App. E), scratch_e_imp and "
    "scratch_b_imp (the same mask, a fresh initialization, trained on the dense schedule "
    "(Scratch-E) or longer to match the dense network's training compute (Scratch-B); Liu "
    "et al. 2019)."
)


class FigureSpec(NamedTuple):
    """A registered figure: the function drawing it, its caption template (placeholders:
    experiment, spread and the keys of REQUIRED_SETTINGS), and the tables it reads."""

    make: Callable[[ReportTables, FigureStyle], Figure | None]
    caption: str
    reads: tuple[str, ...]


FIGURES: dict[str, FigureSpec] = {
    "accuracy_vs_density": FigureSpec(
        fig_accuracy_vs_density,
        "Test accuracy vs. percent of weights remaining (log scale, dense on the left). Left: "
        "at the early-stopping iteration (minimum validation loss), the accuracy Frankle & "
        "Carbin (2019) plot in Fig. 4-5; right: at the end of training. Methods: iterative "
        "magnitude pruning (imp: winning tickets) and controls on the same masks: " + CONTROLS
        + BANDS,
        ("summary",),
    ),
    "early_stop_vs_density": FigureSpec(
        fig_early_stop_vs_density,
        "Early-stopping iteration (minimum validation loss) vs. percent of weights remaining "
        "for imp and the controls on its masks, as in Frankle & Carbin (2019), Fig. 4; "
        "scratch_b_imp's iterations count on its longer, compute-matched schedule." + BANDS,
        ("summary",),
    ),
    "learning_curves": FigureSpec(
        fig_learning_curves,
        "Test accuracy during training for selected IMP rounds (solid) and one reinit level "
        "(dashed), labelled by percent of weights remaining, as in Frankle & Carbin (2019), "
        "Fig. 3; the y axis shows the last three quarters of training." + BANDS,
        ("curves",),
    ),
    "generalization_gap": FigureSpec(
        fig_generalization_gap,
        "Final train (dashed, open markers) and test (solid) accuracy vs. percent of weights "
        "remaining for imp and reinit." + BANDS,
        ("summary",),
    ),
    "layer_density": FigureSpec(
        fig_layer_density,
        "Percent of each layer's weights remaining after each IMP round (columns labelled by "
        "overall percent remaining; log color scale); mean over seeds, so a blank cell is a "
        "layer collapsed in every seed.",
        ("layers",),
    ),
    "all_methods": FigureSpec(
        fig_all_methods,
        "Final test accuracy (at the end of training) vs. percent of weights remaining for all "
        "methods; line style by family: solid lottery (imp), dashed controls (scratch_*_finetune: "
        "Liu et al. 2019's Scratch-E/B on fine-tuning's masks), dotted pruning at "
        "initialization, dash-dotted baselines (pruning after training with fine-tuning)."
        + BANDS,
        ("summary",),
    ),
    "layer_collapse": FigureSpec(
        fig_layer_collapse,
        "Largest compression ratio each method reached before any layer was fully pruned in "
        "any seed (bars), and the first compression at which some layer collapsed (crosses; "
        "none: no collapse up to the largest compression tested); the question of Tanaka "
        "et al. (2020), Fig. 1.",
        ("summary",),
    ),
    "density_profiles": FigureSpec(
        fig_density_profiles,
        "Percent of weights remaining per layer (forward order) for each method at a few "
        "overall percents remaining (facets); mean over seeds, so a gap is a layer collapsed "
        "in every seed.",
        ("summary", "layers"),
    ),
}

COMMON_CAPTION = (
    "Experiment {experiment}: {model} on {dataset}, schedule {schedule}, pruning rate "
    "{pruning_rate}, seeds {seeds}."
)


# ----------------------------------------------------------------------------- writing figures


def no_data_figure(name: str, experiment: str, style: FigureStyle) -> Figure:
    """A figure that says `name` has no data in `experiment` (e.g. no level near the
    configured profile_percents), so the report shows why instead of a missing image."""
    fig, (ax,) = _new_figure(style)
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{name}: no data in experiment {experiment}\n"
            "(no configured method or level matches this figure's settings)",
            ha="center", va="center", wrap=True)
    return fig


def save_figure(fig: Figure, stem: str | os.PathLike, style: FigureStyle) -> tuple[Path, Path]:
    """Write fig as <stem>.pdf and <stem>.png (style.dpi), each atomically; no timestamps
    in the PDF, so the same data give the same bytes."""
    paths = Path(f"{stem}.pdf"), Path(f"{stem}.png")
    with _styled(style):
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


def build_provenance(
    experiment: str,
    style: FigureStyle,
    settings: dict,
    table_paths: dict[str, str | os.PathLike],
    figure_paths: dict[str, tuple[Path, Path]],
) -> dict:
    """{"code_version", "style", "figures": {name: record}}, where record is the
    lth.provenance record of the figure (verb "report", params, code version, packages) with
    "inputs" (the tables it read) and "outputs" (its PDF and PNG), each as {"path","sha256"}."""
    params = {"experiment": experiment, "style": asdict(style), "settings": settings}
    figures = {
        name: make_record("report", params, [table_paths[t] for t in FIGURES[name].reads])
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


def _latex_env() -> Environment:
    """jinja2 with LaTeX-safe delimiters (\\BLOCK{...}, \\VAR{...}, \\#{...}) that escapes
    every \\VAR unless it is Latex."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
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


def _html_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class DisplayTable(NamedTuple):
    """A table as formatted strings, shared by the HTML and LaTeX templates."""

    title: str
    note: str
    headers: list[str]
    align: str  # one of "l" / "r" per column
    rows: list[list[str]]


def _fmt(value: float, spec: str) -> str:
    """value formatted by spec, or "n/a" when missing."""
    return "n/a" if pd.isna(value) else format(value, spec)


def _display(title: str, note: str, df: pd.DataFrame, columns: list) -> DisplayTable:
    """Format df's rows with columns = [(header, align, row -> str)]."""
    rows = [[fmt(row) for _, _, fmt in columns] for row in df.itertuples(index=False)]
    return DisplayTable(title, note, [c[0] for c in columns], "".join(c[1] for c in columns), rows)


def display_tables(summary: pd.DataFrame) -> list[DisplayTable]:
    """The report's tables: results, ShrinkBench-style, and layer collapse."""
    results = _display(
        "Results behind the figures",
        "Test accuracy at the early-stopping iteration (minimum validation loss; the metric "
        "of Frankle & Carbin 2019, Fig. 4-5) and at the end of training, as mean ± sample "
        "standard deviation over the networks of a level (seeds, times reinit draws).",
        results_table(summary),
        [
            ("Method", "l", lambda r: r.method),
            ("Level", "l", lambda r: r.level),
            ("Weights left (%)", "r", lambda r: _fmt(r.percent_remaining, ".3g")),
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
        "(dense / remaining multiply-accumulates), measured inference speed-up where the "
        "network is physically smaller (filter pruning), and accuracy change vs. the dense network "
        f"(imp round 0: {_fmt(dense_accuracy(summary), '.2f')}%), in percentage points.",
        shrinkbench_table(summary),
        [
            ("Method", "l", lambda r: r.method),
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
            ("Method", "l", lambda r: r.method),
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
    return [results, shrink, collapse]


SCORECARD_NOTE = (
    "Each claim is measured on this experiment's summary.csv by the rule shown; accuracies "
    "are means over seeds (and reinit draws) in percent, compared at the same level (IMP "
    "round or target density) with a tolerance of {tolerance} percentage points where the "
    "rule says so. LTH claims use test accuracy at the early-stopping iteration, the others "
    "final test accuracy. A claim is not tested at this scale when its methods were not run "
    "or its data cannot decide it (the 'This run' column says which). Verdicts: {counts}."
)


def scorecard_table(summary: pd.DataFrame) -> dict:
    """The scorecard as both templates show it: note, and rows with each verdict's CSS
    class (the verdict is also in the text, so nothing depends on colour)."""
    from lth import claims  # the report's rule lists it; the figures' rule does not

    css = {claims.REPRODUCED: "ok", claims.NOT_REPRODUCED: "fail", claims.NOT_TESTED: "untested"}
    card = claims.scorecard(summary)
    counts = card["verdict"].value_counts()
    said = ", ".join(f"{counts.get(v, 0)} {v}" for v in css)
    rows = [row | {"css": css[row["verdict"]]} for row in card.to_dict("records")]
    return {"note": SCORECARD_NOTE.format(tolerance=claims.TOLERANCE_PP, counts=said),
            "rows": rows}


def write_scorecard(
    summary: pd.DataFrame, summary_csv: str | os.PathLike, experiment: str,
    out_dir: str | os.PathLike,
) -> Path:
    """Write out_dir/scorecard.csv (claims.scorecard of summary, read from summary_csv)
    atomically, with its provenance record beside it."""
    from lth import claims
    from lth.summary import write_csv

    path = Path(out_dir) / "scorecard.csv"
    write_csv(claims.scorecard(summary), path, [Path(summary_csv)], experiment, verb="report")
    return path


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


def _figure_entries(
    figure_paths: dict, provenance: dict, captions: dict, out_dir: Path
) -> list[dict]:
    """Per registered figure, what both templates need (made figures and 'not configured')."""
    entries = []
    for name in FIGURES:
        entry = {"name": name, "caption": captions[name], "made": name in figure_paths}
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
    reports/templates/; returns (html, tex)."""
    out_dir = Path(out_dir)
    for key in ("code_version", "style", "figures"):
        if key not in provenance:
            raise LthError(f"report provenance: missing key '{key}'")
    captions = _captions(experiment, settings, provenance["style"]["spread"])
    context = {
        "experiment": experiment,
        "settings": settings,
        "code_version": _code_version_text(provenance["code_version"]),
        "figures": _figure_entries(figure_paths, provenance, captions, out_dir),
        "tables": display_tables(tables.summary),
        "scorecard": scorecard_table(tables.summary),
    }
    html = out_dir / "report.html"
    tex = out_dir / "report.tex"
    atomic_write_text(html, _html_env().get_template("report.html.j2").render(context))
    atomic_write_text(tex, _latex_env().get_template("report.tex.j2").render(context))
    return html, tex


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


def make_report(
    experiment: str,
    table_paths: dict[str, str | os.PathLike],
    style: FigureStyle,
    settings: dict,
    out_dir: str | os.PathLike,
) -> dict[str, Path]:
    """The whole report of one experiment under out_dir: figures/<name>.{pdf,png} with their
    provenance records, provenance.json, scorecard.csv, report.html, report.tex and
    report.pdf; table_paths has keys summary, layers, curves."""
    tables = read_tables(table_paths["summary"], table_paths["layers"], table_paths["curves"])
    scorecard = write_scorecard(tables.summary, table_paths["summary"], experiment, out_dir)
    figure_paths = write_figures(tables, style, Path(out_dir) / "figures")
    provenance = build_provenance(experiment, style, settings, table_paths, figure_paths)
    provenance_path = write_provenance(provenance, out_dir)
    html, tex = render_report(experiment, tables, figure_paths, provenance, settings, out_dir)
    return {"html": html, "tex": tex, "pdf": compile_pdf(tex), "provenance": provenance_path,
            "scorecard": scorecard}
