"""Drawing helpers shared by the figure modules: log axes with 1-2-5 ticks, the percent-
remaining axis, mean lines with spread bands, legends, grids of panels, and method-by-method
heatmaps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from lth.plan.registry import group_names
from lth.report.style import FigureStyle, ordered_methods, panel_group

MAX_LINES = 6
"""The most methods one panel draws; figures with more are faceted (method_facets)."""


MANTISSAS = ((1, 2, 5), (1, 3), (1,))
"""Tick mantissas of a log axis, densest first; log_axis takes the densest that fits."""
TICK_ROOM = {"x": 0.5, "y": 0.3}
"""Inches each tick label needs along an x axis (side by side) and a y axis (stacked)."""


def one_two_five(lo: float, hi: float, mantissas=(1, 2, 5)) -> list[float]:
    """Ticks m x 10^k (m in mantissas; 1, 2, 5 by default) within [lo, hi]."""
    ticks = [m * 10.0**k for k in range(-6, 7) for m in mantissas]
    return [t for t in ticks if lo <= t <= hi]


def axis_inches(axis) -> float:
    """Length in inches of an x or y axis, from its axes' place in the figure."""
    box = axis.axes.get_position()
    width, height = axis.axes.figure.get_size_inches()
    return box.width * width if axis.axis_name == "x" else box.height * height


def log_axis(axis, lo: float, hi: float, suffix: str) -> None:
    """Log ticks labelled like 100, 50, 20, 0.5 (plus suffix), no minor labels: 1-2-5
    ticks where the axis has room for them, else 1-3 or only powers of ten, so that the
    labels never overlap."""
    room = max(2, int(axis_inches(axis) / TICK_ROOM[axis.axis_name]))
    ticks = next((t for m in MANTISSAS if len(t := one_two_five(lo, hi, m)) <= room),
                 one_two_five(lo, hi, (1,)))
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}{suffix}"))
    axis.set_minor_locator(NullLocator())


def percent_axis(ax: Axes, percents) -> None:
    """Log x axis of percent of weights remaining, reversed: dense (100) on the left."""
    lo, hi = float(np.min(percents)), float(np.max(percents))
    ax.set_xscale("log")
    ax.set_xlim(hi * 1.15, lo / 1.15)
    log_axis(ax.xaxis, lo / 1.15, hi * 1.15, "")
    ax.set_xlabel("Weights remaining (%)")


def draw_mean_spread(ax: Axes, x, stats: pd.DataFrame, **line) -> None:
    """Mean as a line, spread over seeds as a band of the same color."""
    ax.fill_between(x, stats["lo"], stats["hi"], color=line["color"], alpha=0.2, linewidth=0)
    ax.plot(x, stats["mean"], **line)


def method_facets(summary: pd.DataFrame, methods, reference: str | None = None,
                  ) -> list[tuple[str, list[str]]]:
    """Panels of at most MAX_LINES of `methods` each, (title, methods) in report order: one
    per group (panel_group: a ticket's controls beside it), split when larger; `reference`
    (when among methods) is added to every panel as the common yardstick."""
    ordered = ordered_methods(summary)
    ordered = ordered[ordered["method"].isin(set(methods))]
    groups = ordered.assign(panel=[panel_group(m, f) for m, f in
                                   zip(ordered["method"], ordered["family"], strict=True)])
    has_reference = reference in set(methods)
    facets = []
    for panel, members in sorted(groups.groupby("panel", sort=False),
                                 key=lambda pair: group_names().index(pair[0])):
        names = [m for m in members["method"] if m != reference]
        room = MAX_LINES - (1 if has_reference else 0)
        chunks = [names[i:i + room] for i in range(0, len(names), room)] or [[]]
        for i, chunk in enumerate(chunks):
            title = panel if len(chunks) == 1 else f"{panel} ({i + 1}/{len(chunks)})"
            shown = [reference, *chunk] if has_reference else chunk
            facets.append((title, list(dict.fromkeys(shown))))
    return facets


def panel_legends(axes: list[Axes]) -> None:
    """A small legend inside each panel, where it covers the least data."""
    for ax in axes:
        ax.legend(loc="best", fontsize="x-small", handlelength=2.5, borderaxespad=0.3)


def legend_cell(cell: Axes, row: list[Axes]) -> None:
    """The legend of a row of panels in its own cell at the row's end (each label once),
    so that it covers no data."""
    entries = {}
    for ax in row:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    cell.set_axis_off()
    cell.legend(entries.values(), entries.keys(), loc="center left", fontsize="x-small",
                frameon=False, borderaxespad=0)


def facet_grid(style: FigureStyle, rows: list, columns: list, draw, ylabel: str):
    """One row of panels per group of methods (rows: (title, methods), method_facets), one
    panel per entry of `columns`, each row's legend in a cell of its own (legend_cell);
    draw(ax, column, methods, top) fills a panel, `top` for the first row. (fig, axes)."""
    fig, axes = panel_grid(style, len(rows) * (len(columns) + 1), len(columns) + 1,
                           sharey=True, row_heights=[style.height / 2.2] * len(rows))
    cells = iter(axes)
    for index, (title, methods) in enumerate(rows):
        row = [next(cells) for _ in columns]
        for ax, column in zip(row, columns, strict=True):
            draw(ax, column, methods, index == 0)
        row[0].set_ylabel(f"{title}\n{ylabel}", fontsize="x-small")
        legend_cell(next(cells), row)
    return fig, axes


def place_legend(axes: list[Axes], fig: Figure, entries: int) -> None:
    """Legend inside the first axes when short, else below the plots, off the data."""
    if entries <= 5:
        axes[0].legend(loc="best")
    else:
        legend_below(fig, axes, ncols=5)


def legend_below(fig: Figure, axes: list[Axes], ncols: int, title: str | None = None) -> None:
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
        fontsize="x-small",
        title=title,
        title_fontsize="x-small",
    )


def nearest_level(levels: pd.Series, percent: float) -> str:
    """The level (index of `levels`, values percent remaining) nearest to percent in log."""
    return (np.log(levels) - math.log(percent)).abs().idxmin()


def panel_grid(
    style: FigureStyle, panels: int, ncols: int, sharey: bool = False,
    row_heights: list[float] | None = None,
) -> tuple[Figure, list[Axes]]:
    """A grid of `panels` axes, at most ncols a row, style.width wide; row i is
    row_heights[i] inches tall (default: style.height / 1.5 each, and style.height for a
    single row); unused cells of the last row are removed."""
    ncols = min(panels, ncols)
    nrows = math.ceil(panels / ncols)
    if row_heights is None:
        row_heights = [style.height if nrows == 1 else style.height / 1.5] * nrows
    fig = Figure(figsize=(style.width, sum(row_heights)), dpi=style.dpi, layout="constrained")
    axes = list(fig.subplots(nrows, ncols, sharey=sharey, squeeze=False,
                             height_ratios=row_heights).ravel())
    for ax in axes[panels:]:
        ax.remove()
    return fig, axes[:panels]


def method_heatmap(
    ax: Axes, grid: pd.DataFrame, annot: pd.DataFrame | None, cmap: str, limit: float
) -> QuadMesh:
    """A square methods x methods grid (index and columns: method labels) as a heatmap on a
    diverging colormap centred at 0 from -limit to limit, without a colorbar (the returned
    mesh makes one); blank cells are NaN; annot (same shape, strings) is written in the
    cells when given."""
    sns.heatmap(
        grid,
        ax=ax,
        cmap=cmap,
        center=0,
        vmin=-limit,
        vmax=limit,
        annot=annot.to_numpy() if annot is not None else False,
        fmt="",
        annot_kws={"fontsize": "xx-small"},
        cbar=False,
        linewidths=0.5,
        linecolor="white",
    )
    ax.grid(False)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=90, labelsize="x-small")
    ax.tick_params(axis="y", labelrotation=0, labelsize="x-small")
    return ax.collections[0]
