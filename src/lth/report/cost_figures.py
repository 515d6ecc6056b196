"""Cost figures and table (METHODS §7.4) from summary.csv's cost columns: what each ticket
cost to find and train against the accuracy it reaches (with the Pareto front of
lth.analysis.cost.pareto_front), and how many iterations it needs to reach the target accuracy.

Two views of the cost, both in units of one training of the dense network: the sparse view
counts the theoretical multiply-accumulates (MACs) of the kept weights (total_macs over the
same seed's dense training), the epoch view counts every training as if it were dense
(dense_trainings, as papers count epochs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lth.analysis.cost import pareto_front
from lth.analysis.dense import DENSE_RUN, with_sparse_trainings
from lth.report.plotting import (
    legend_below,
    log_axis,
    method_facets,
    panel_grid,
    panel_legends,
    percent_axis,
)
from lth.report.style import FigureStyle, MethodStyle, method_styles, new_figure, styled
from lth.report.tables import (
    ES_ACCURACY,
    LEVEL_KEYS,
    ReportTables,
    level_stats,
    method_labels,
    sorted_by_family,
)

VIEWS = (
    ("sparse_trainings", "Total multiply-accumulates (MACs),\nin dense trainings"),
    ("dense_trainings", "Trainings, epoch view\n(every run counted as dense)"),
)


def cost_points(summary: pd.DataFrame, spread: str) -> pd.DataFrame:
    """Per (method, level): early-stop test accuracy (%) mean and spread over seeds (mean,
    lo, hi), percent remaining, mean sparse_trainings and dense_trainings, and control."""
    costed = with_sparse_trainings(summary)
    stats = level_stats(costed.assign(y=100 * costed[ES_ACCURACY]), "y", spread)
    means = costed.groupby(LEVEL_KEYS, sort=False).agg(
        sparse_trainings=("sparse_trainings", "mean"),
        dense_trainings=("dense_trainings", "mean"),
        control=("control", "any"),
    )
    return stats.join(means, on=LEVEL_KEYS)


def front_of(points: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The points of the Pareto front (lth.analysis.cost.pareto_front: lower cost, higher mean
    accuracy) among the points that are not controls, by increasing cost."""
    candidates = points[~points["control"]]
    on_front = pareto_front(candidates[[cost, "mean"]].to_numpy())
    return candidates[on_front].sort_values([cost, "mean"])


def _draw_cost_panel(ax: Axes, points: pd.DataFrame, cost: str,
                     styles: dict[str, MethodStyle], labels: dict) -> None:
    """One marker per (method, level) with its accuracy spread (controls grey, see
    method_styles), and the Pareto front connected."""
    for method, rows in points.groupby("method", sort=False):
        control = bool(rows["control"].any())
        ax.errorbar(
            rows[cost], rows["mean"], yerr=[rows["mean"] - rows["lo"], rows["hi"] - rows["mean"]],
            elinewidth=0.6, alpha=0.6 if control else 1.0,
            label=labels[method] + (" (control)" if control else ""),
            **styles[method].line(linestyle="none"),
        )
    front = front_of(points, cost)
    ax.plot(front[cost], front["mean"], color="black", linewidth=1, zorder=0,
            label="Pareto front")
    ax.set_xscale("log")
    lo, hi = points[cost].min(), points[cost].max()
    log_axis(ax.xaxis, lo / 1.3, hi * 1.3, "")
    ax.set_xlim(lo / 1.3, hi * 1.3)


def fig_cost_vs_accuracy(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Early-stop test accuracy vs. total cost (finding plus training) in dense trainings,
    sparse-MAC view (left) and epoch view (right), with each view's Pareto front."""
    points = cost_points(tables.summary, style.spread)
    points = points.dropna(subset=[cost for cost, _ in VIEWS])
    points = points[(points[[cost for cost, _ in VIEWS]] > 0).all(axis=1)]
    if points.empty:
        return None
    styles = method_styles(tables.summary, style.palette)
    labels = method_labels(tables.summary)
    with styled(style):
        fig, axes = new_figure(style, ncols=2)
        for ax, (cost, xlabel) in zip(axes, VIEWS, strict=True):
            _draw_cost_panel(ax, points, cost, styles, labels)
            ax.set_xlabel(xlabel)
        axes[0].set_ylabel("Early-stop test accuracy (%)")
        legend_below(fig, axes, ncols=3)
    return fig


def target_stats(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (method, level): percent remaining, the mean iterations to target over the seeds
    that reached it (NaN if none did), how many did (reached) and of how many (n)."""
    grouped = summary.groupby(LEVEL_KEYS, sort=False)
    table = grouped.agg(
        percent=("percent_remaining", "mean"),
        iterations=("iterations_to_target", "mean"),
        reached=("iterations_to_target", "count"),
        n=("seed", "count"),
    ).reset_index()
    return sorted_by_family(table, ["method", "percent"], [True, False])


NOT_REACHED = "not reached"


def _draw_to_target(ax: Axes, stats: pd.DataFrame, ceiling: float,
                    styles: dict[str, MethodStyle], labels: dict[str, str]) -> None:
    """Iterations to target per method of stats vs. percent remaining: open markers where
    only some seeds reached it, crosses on the 'not reached' line where none did."""
    for method, rows in stats.groupby("method", sort=False):
        line = styles[method].line()
        partial = rows["reached"].between(1, rows["n"] - 1)
        ax.plot(rows["percent"], rows["iterations"], label=labels[method], **line)
        ax.plot(rows["percent"][partial], rows["iterations"][partial],
                **(line | {"linestyle": "none", "markerfacecolor": "white"}))
        never = rows[rows["reached"] == 0]
        if len(never):
            ax.plot(never["percent"], np.full(len(never), ceiling),
                    **(line | {"linestyle": "none", "marker": "x", "markersize": 6}))
    ax.axhline(ceiling, color="0.5", linestyle=":", linewidth=0.8)


def fig_iterations_to_target(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Iterations until the validation accuracy first reaches the target vs. percent
    remaining per method, one panel per group of methods (method_facets, IMP in each); a
    level no seed reached is marked on the 'not reached' line above the longest training, a
    level only some seeds reached has an open marker."""
    summary = tables.summary
    stats = target_stats(summary)
    if stats.empty:
        return None
    ceiling = 1.1 * float(summary["iterations"].max())
    styles = method_styles(summary, style.palette)
    labels = method_labels(summary)
    facets = method_facets(summary, stats["method"].unique(), reference=DENSE_RUN[0])
    with styled(style):
        fig, axes = panel_grid(style, len(facets), ncols=2, sharey=True)
        for ax, (title, methods) in zip(axes, facets, strict=True):
            _draw_to_target(ax, stats[stats["method"].isin(methods)], ceiling, styles, labels)
            percent_axis(ax, stats["percent"])
            if len(facets) > 1:
                ax.set_title(title, fontsize="small")
        ticks = [t for t in axes[0].get_yticks() if 0 <= t <= ceiling / 1.1]
        axes[0].set_yticks([*ticks, ceiling], [f"{t:g}" for t in ticks] + [NOT_REACHED])
        axes[0].set_ylim(0, ceiling * 1.05)
        for ax in axes[:: min(2, len(axes))]:
            ax.set_ylabel("Iterations to target")
        panel_legends(axes)
    return fig


def cost_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method and level (report order): percent remaining, mean find_macs, train_macs,
    total_macs, sparse_trainings and dense_trainings, the iterations to target (target_stats)
    and the mean early-stop test accuracy (%)."""
    costed = with_sparse_trainings(summary).assign(acc=100 * summary[ES_ACCURACY])
    means = costed.groupby(LEVEL_KEYS, sort=False)[
        ["find_macs", "train_macs", "total_macs", "sparse_trainings", "dense_trainings", "acc"]
    ].mean()
    return target_stats(summary).join(means, on=LEVEL_KEYS)


def iterations_text(iterations: float, reached: int, n: int) -> str:
    """Iterations to target as the cost table shows it: 'not reached' when no seed did,
    the mean with '(k/n)' when only k of n seeds did."""
    if reached == 0:
        return NOT_REACHED
    return f"{iterations:.0f}" + ("" if reached == n else f" ({reached}/{n})")
