"""Layer-wise figures: each layer's percent remaining per IMP round (layer_density), where
each method first collapses a layer (layer_collapse; Tanaka et al. 2020, Fig. 1), and the
per-layer density profiles of every method at a few overall densities (density_profiles)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lth.analysis.dense import DENSE_RUN
from lth.report.plotting import (
    facet_grid,
    legend_below,
    log_axis,
    method_facets,
    nearest_level,
)
from lth.report.style import FigureStyle, MethodStyle, method_styles, new_figure, styled
from lth.report.tables import ReportTables, collapse_table, method_labels


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
    with styled(style):
        fig, (ax,) = new_figure(style)
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
        log_axis(colorbar.ax.yaxis, positive.min(), 100, "")
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
    styles = method_styles(tables.summary, style.palette)
    y = np.arange(len(table))
    with styled(style):
        fig, (ax,) = new_figure(style)
        ax.barh(
            y,
            table["max_compression_no_collapse"].fillna(0),
            height=0.6,
            color=[styles[m].color for m in table["method"]],
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
        ax.set_yticks(y, table["method"].map(method_labels(tables.summary)))
        ax.invert_yaxis()
        ax.set_xscale("log")
        hi = 1.5 * table["max_compression_tested"].max()
        ax.set_xlim(1, hi)
        log_axis(ax.xaxis, 1, hi, "×")
        ax.set_xlabel("Compression ratio (total / remaining weights)")
        legend_below(fig, [ax], ncols=1)
    return fig


def _profile_facets(layers: pd.DataFrame, style: FigureStyle) -> list[tuple[float, list]]:
    """Per facet percent: the (method, level) pairs whose overall percent is within
    style.profile_match_factor of it, nearest level per method; facets without any dropped."""
    percent = 100 * layers.groupby(["method", "level"], sort=False)["density"].mean()
    facets = []
    for target in style.profile_percents:
        pairs = []
        for method in percent.index.get_level_values("method").unique():
            level = nearest_level(percent[method], target)
            if abs(math.log(percent[method][level] / target)) <= math.log(
                style.profile_match_factor
            ):
                pairs.append((method, level))
        if pairs:
            facets.append((target, pairs))
    return facets


def _draw_profiles(ax, layers: pd.DataFrame, pairs: list, order: dict,
                   styles: dict[str, MethodStyle], labels: dict[str, str]) -> None:
    """Per (method, level) of pairs: mean percent remaining of each layer (x: its index in
    forward order; a gap: a layer collapsed in every seed)."""
    for method, level in pairs:
        rows = layers[(layers["method"] == method) & (layers["level"] == level)]
        mean = 100 * rows.groupby("layer", sort=False)["layer_density"].mean()
        ax.plot(mean.index.map(order), mean.where(mean > 0), label=labels[method],
                **styles[method].line())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yscale("log")


def fig_density_profiles(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Per-layer percent remaining (x: layer index in forward order, log y) for each method:
    one column per overall percent in style.profile_percents, one row per group of methods
    (method_facets, IMP in each where it has a level); mean over seeds, so a gap is a layer
    collapsed in every seed."""
    layers = tables.layers
    columns = _profile_facets(layers, style) if len(layers) else []
    if not columns:
        return None
    shown = {method for _, pairs in columns for method, _ in pairs}
    rows = method_facets(tables.summary, shown, reference=DENSE_RUN[0])
    order = {name: i + 1 for i, name in enumerate(pd.unique(layers["layer"]))}
    styles = method_styles(tables.summary, style.palette)
    labels = method_labels(tables.summary)
    def draw(ax, column, methods, top):
        target, pairs = column
        chosen = [(m, lv) for m, lv in pairs if m in methods]
        if top:
            ax.set_title(f"{target:g}% remaining", fontsize="x-small")
        if not chosen:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no level near", ha="center", fontsize="x-small",
                    transform=ax.transAxes)
        _draw_profiles(ax, layers, chosen, order, styles, labels)

    with styled(style):
        fig, axes = facet_grid(style, rows, columns, draw, "layer % left")
        lo = min(np.nanmin(line.get_ydata()) for ax in axes for line in ax.get_lines())
        axes[0].set_ylim(lo / 1.5, 150)
        log_axis(axes[0].yaxis, lo / 1.5, 150, "")
        fig.supxlabel("Layer (forward order)", fontsize="small")
    return fig
