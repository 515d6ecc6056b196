"""Figures: every figure is a function ``fig_<name>(tables, style) -> Figure | None``
registered in FIGURES with its caption and the tables it reads; it returns None when the
experiment has no data for it (e.g. a config with only IMP has no at-init methods). Values are
means over seeds; bands show the spread over seeds (``style.spread``: ±1 sample standard
deviation or minimum to maximum, the latter as in Frankle & Carbin 2019, Fig. 1-4 error bars).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from lth.analysis.dense import DENSE_RUN
from lth.plan.registry import groups
from lth.report.cost_figures import fig_cost_vs_accuracy, fig_iterations_to_target
from lth.report.layer_figures import fig_density_profiles, fig_layer_collapse, fig_layer_density
from lth.report.overlap_figures import (
    fig_input_degree_maps,
    fig_mask_overlap_heatmap,
    fig_mask_overlap_layers,
    fig_score_rank_correlation,
)
from lth.report.plotting import (
    draw_mean_spread,
    legend_below,
    method_facets,
    nearest_level,
    panel_grid,
    panel_legends,
    percent_axis,
    place_legend,
)
from lth.report.style import FigureStyle, MethodStyle, method_styles, new_figure, styled
from lth.report.tables import (
    ES_ACCURACY,
    ReportTables,
    level_stats,
    mean_and_spread,
    method_labels,
)

# ----------------------------------------------------------------------------- helpers


def _metrics_vs_density(
    rows: pd.DataFrame,
    style: FigureStyle,
    panels: list[tuple[str, str | None]],
    scale: float,
    ylabel: str,
    styles: dict[str, MethodStyle],
) -> Figure | None:
    """One panel per (value column, title) of panels, sharing the y axis: one line (mean)
    and band (spread) per method of rows vs. percent remaining on a reversed log axis; None
    if rows is empty."""
    if rows.empty:
        return None
    labels = method_labels(rows)
    with styled(style):
        fig, axes = new_figure(style, ncols=len(panels))
        for ax, (value, title) in zip(axes, panels, strict=True):
            _draw_vs_density(ax, rows.assign(y=scale * rows[value]), style, styles, labels)
            if title:
                ax.set_title(title)
        axes[0].set_ylabel(ylabel)
        place_legend(axes, fig, rows["method"].nunique())
    return fig


def _draw_vs_density(ax, rows: pd.DataFrame, style: FigureStyle,
                     styles: dict[str, MethodStyle], labels: dict[str, str]) -> None:
    """Column y of rows per method: mean line and spread band vs. percent remaining (reversed
    log axis)."""
    stats = level_stats(rows, "y", style.spread)
    for method, s in stats.groupby("method", sort=False):
        draw_mean_spread(ax, s["percent"], s, label=labels[method], **styles[method].line())
    percent_axis(ax, stats["percent"])


def _curve_levels(curves: pd.DataFrame, style: FigureStyle) -> list[tuple[str, str]]:
    """(method, level) pairs for learning curves: the IMP rounds nearest each of
    style.curve_percents, the sparsest IMP round, and one reinit level."""
    percent = 100 * curves.groupby(["method", "level"])["density"].mean()
    imp = percent["imp"]
    chosen = [nearest_level(imp, p) for p in style.curve_percents] + [imp.idxmin()]
    pairs = [("imp", level) for level in dict.fromkeys(chosen)]
    if "reinit" in percent.index.get_level_values("method"):
        pairs.append(("reinit", nearest_level(percent["reinit"], style.control_curve_percent)))
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
        method_styles(tables.summary, style.palette),
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
        method_styles(tables.summary, style.palette),
    )


def fig_all_methods(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Final test accuracy vs. percent remaining for every method; None unless methods
    other than IMP and its controls were run (else it would repeat accuracy_vs_density)."""
    summary = tables.summary
    if summary["family"].isin(("lottery", "control")).all():
        return None
    facets = method_facets(summary, summary["method"].unique(), reference=DENSE_RUN[0])
    styles = method_styles(summary, style.palette)
    labels = method_labels(summary)
    rows = summary.assign(y=100 * summary["final_test_accuracy"])
    with styled(style):
        fig, axes = panel_grid(style, len(facets), ncols=2, sharey=True)
        for ax, (title, methods) in zip(axes, facets, strict=True):
            _draw_vs_density(ax, rows[rows["method"].isin(methods)], style, styles, labels)
            percent_axis(ax, summary["percent_remaining"])
            ax.set_title(title, fontsize="small")
        for ax in axes[:: min(2, len(axes))]:
            ax.set_ylabel("Final test acc. (%)")
        panel_legends(axes)
    return fig


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
    with styled(style):
        fig, (ax,) = new_figure(style)
        for (method, level), color in zip(pairs, colors, strict=True):
            rows = test[(test["method"] == method) & (test["level"] == level)]
            stats = mean_and_spread(
                rows.assign(y=100 * rows["accuracy"]), ["iteration"], "y", style.spread
            )
            label = f"{method} {100 * rows['density'].mean():.3g}%"
            dash = "--" if method == "reinit" else "-"
            draw_mean_spread(
                ax, stats["iteration"], stats, color=color, linestyle=dash, label=label
            )
            late.append(stats.loc[stats["iteration"] >= stats["iteration"].max() / 4, "mean"])
        lo, hi = pd.concat(late).min(), pd.concat(late).max()
        ax.set_ylim(lo - 0.15 * (hi - lo), hi + 0.1 * (hi - lo))
        ax.set_xlabel("Training iteration")
        ax.set_ylabel("Test accuracy (%)")
        legend_below(fig, [ax], ncols=3, title="method, weights remaining")
    return fig


def fig_generalization_gap(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Final train and test accuracy vs. percent remaining for IMP and reinit (Frankle &
    Carbin 2019, Sec. 2, on the gap between train and test accuracy)."""
    rows = tables.summary[tables.summary["method"].isin(("imp", "reinit"))]
    if rows.empty:
        return None
    styles = method_styles(tables.summary, style.palette)
    with styled(style):
        fig, (ax,) = new_figure(style)
        for split, dash, fill in (("train", "--", "none"), ("test", "-", "full")):
            stats = level_stats(
                rows.assign(y=100 * rows[f"final_{split}_accuracy"]), "y", style.spread
            )
            for method, s in stats.groupby("method", sort=False):
                draw_mean_spread(
                    ax,
                    s["percent"],
                    s,
                    color=styles[method].color,
                    linestyle=dash,
                    marker="o",
                    markersize=4,
                    fillstyle=fill,
                    label=f"{method} {split}",
                )
        percent_axis(ax, rows["percent_remaining"])
        ax.set_ylabel("Accuracy (%)")
        ax.legend(loc="best")
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
    experiment, spread and the keys of render.REQUIRED_SETTINGS), the tables it reads, and
    the report's question it answers (a topic of render.GUIDE)."""

    make: Callable[[ReportTables, FigureStyle], Figure | None]
    caption: str
    reads: tuple[str, ...]
    topic: str = "accuracy"


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
        "methods, one panel per group of methods (at most six lines a panel; a ticket's "
        "controls beside it), imp in every panel as the common yardstick. Each method has one "
        "look in every figure: its group's hue (its members shades of it, each its own "
        "marker), controls grey and dashed; line style by group: "
        + ", ".join(f"{g.look} {g.description}" for g in groups())
        + ". Methods marked (untrained) keep their initial weights: the accuracy is that of "
        "the mask alone." + BANDS,
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
        "overall percents remaining (columns), one row per group of methods (imp in each "
        "where it has a level near); mean over seeds, so a gap is a layer collapsed "
        "in every seed.",
        ("summary", "layers"),
    ),
    "mask_overlap_heatmap": FigureSpec(
        fig_mask_overlap_heatmap,
        "Which weights the methods' masks share beyond chance: per density band (the overall "
        "percents of the density profiles; each pair of methods at its pair of matched levels "
        "nearest the band), the mean over seeds of the excess overlap X = (I - E[I]) / "
        "(I_max - E[I]) of two masks of the same seed (same initialization), where I is the "
        "number of weights both keep, E[I] its expectation for random masks with the same "
        "per-layer counts and I_max the largest overlap those counts allow: 0 is chance, 1 "
        "nested masks; each cell gives its value (the Jaccard index J of each pair and its value "
        "at chance are similarity.csv's columns jaccard and expected_jaccard). Blank: no "
        "matched pair (or an overlap the counts force). Pairs that started from different "
        "weights (a fresh init, mining's signed constants, weights transferred from another "
        "depth) are in their own 'different init' panels: there a shared position is not a "
        "shared weight.",
        ("summary", "similarity"),
        "similarity",
    ),
    "mask_overlap_layers": FigureSpec(
        fig_mask_overlap_layers,
        "Excess overlap (see mask_overlap_heatmap) of imp's mask with each other method's at "
        "matched density, over all layers and per layer (columns; per layer for networks of "
        "up to four layers), one row per group of methods, vs. imp's percent of weights "
        "remaining; means over seeds. Grey: the 5-95% band of the excess of two independent "
        "random masks with the same per-layer counts, computed, not simulated: the excess of "
        "such masks has mean 0 and the standard deviation of the hypergeometric overlap "
        "(per layer, summed), and the band is ±1.645 of it (normal approximation), the "
        "widest over the methods at each round. Open markers, '(different init)': a method "
        "that did not start from imp's weights.",
        ("summary", "similarity"),
        "similarity",
    ),
    "input_degree_maps": FigureSpec(
        fig_input_degree_maps,
        "Where each method's first layer reads the input: for every input pixel, the number "
        "of first-layer weights kept from it (its in-degree, summed over channels), relative "
        "to the mean over pixels (1: average), mean over seeds at each method's level nearest "
        "the percent of weights remaining shown (valid across seeds: it does not depend on "
        "the order of hidden units). A method with the same map as the one before it (a "
        "control training that method's mask) is counted under it ('+k same'). Networks "
        "whose first layer is a convolution have none.",
        ("summary", "indegree"),
        "similarity",
    ),
    "score_rank_correlation": FigureSpec(
        fig_score_rank_correlation,
        "Spearman rank correlation between the scores that made the methods' masks (saved "
        "beside them), over all layers and per layer; mean over seeds and matched levels. "
        "Only methods that save scores appear: '(at init)' scores are taken at "
        "initialization (pruning at initialization), '(trained)' ones at the end of mining "
        "(edge-popup's |S|, GEM-MINER's p).",
        ("summary", "similarity"),
        "similarity",
    ),
    "cost_vs_accuracy": FigureSpec(
        fig_cost_vs_accuracy,
        "Test accuracy at the early-stopping iteration vs. total compute to find and train "
        "each network, in units of one training of the dense network (log scale): left, "
        "theoretical multiply-accumulates (MACs) of the kept weights (training counted as 3 "
        "forward passes per example; dense hardware runs masked networks at dense speed); "
        "right, the epoch view, every training or search counted as if dense. One marker per "
        "method and level (mean over seeds, bars: {spread} over seeds); the line joins the "
        "Pareto front (lth.analysis.cost.pareto_front) of the methods that are not controls; "
        "controls "
        "(grey) need a ticket's mask and are kept off the front.",
        ("summary",),
        "cost",
    ),
    "iterations_to_target": FigureSpec(
        fig_iterations_to_target,
        "Training iterations until the validation accuracy first reaches 99% of the best "
        "validation accuracy of the same seed's dense network, vs. percent of weights "
        "remaining, one panel per group of methods (imp in each), as evaluated every "
        "eval_every iterations; mean over the seeds that "
        "reached it (open marker: only some did); crosses on the 'not reached' line: no seed "
        "reached it within its training.",
        ("summary",),
        "cost",
    ),
}


def no_data_figure(name: str, experiment: str, style: FigureStyle) -> Figure:
    """A figure that says `name` has no data in `experiment` (e.g. no level near the
    configured profile_percents), so the report shows why instead of a missing image."""
    fig, (ax,) = new_figure(style)
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{name}: no data in experiment {experiment}\n"
            "(no configured method or level matches this figure's settings)",
            ha="center", va="center", wrap=True)
    return fig
