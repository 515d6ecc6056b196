"""Ticket-similarity figures (METHODS §6.3) from the similarity verb's tables: which weights
methods share beyond chance (excess overlap, per density band and per layer), where the first
layer's kept weights read the input (in-degree maps), and how the criteria rank weights
(score rank correlation). Means are over seeds (and draws); weight-level comparisons pair
networks of one seed only, the in-degree maps are valid across seeds (they do not depend on
the order of hidden units). A kept position is the same weight only in networks that started
from the same weights: pairs tagged init "different" by the similarity verb (a fresh init,
mined signed constants, transferred weights) are kept apart from "same" ones."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lth.analysis.findings import MASK_VIEW, OVERALL
from lth.report.plotting import (
    facet_grid,
    method_facets,
    method_heatmap,
    nearest_level,
    panel_grid,
    percent_axis,
)
from lth.report.style import FigureStyle, MethodStyle, method_styles, styled
from lth.report.tables import ReportTables, method_labels, methods_in_order

CHANCE_Z = 1.6448536269514722
"""Standard normal 95th percentile: chance's 5-95% band of the excess is +-CHANCE_Z sd."""
MAX_LAYER_FACETS = 4
"""score_rank_correlation shows each layer beside the pooled one up to this many layers."""
PAIR_KEYS = ["method_a", "method_b"]
INITS = {"same": "same init", "different": "different init"}
"""The similarity verb's init tags of a pair, and how panels name them."""


def mask_rows(similarity: pd.DataFrame, layer: str | None = None) -> pd.DataFrame:
    """The weight-level rows (pairs within one seed), of one layer when given."""
    rows = similarity[similarity["view"] == MASK_VIEW]
    return rows if layer is None else rows[rows["layer"] == layer]


def band_pairs(similarity: pd.DataFrame, percent: float, factor: float) -> pd.DataFrame:
    """The overall rows of each pair of methods at its pair of levels nearest `percent`
    remaining (the two networks' mean density), among those within `factor` of it."""
    rows = mask_rows(similarity, OVERALL)
    mean_percent = 50 * (rows["density_a"] + rows["density_b"])
    rows = rows.assign(distance=np.abs(np.log(mean_percent / percent)))
    near = rows[rows["distance"] <= math.log(factor)]
    levels = [*PAIR_KEYS, "level_a", "level_b"]
    per_levels = near.groupby(levels, as_index=False)["distance"].mean()
    nearest = per_levels.loc[per_levels.groupby(PAIR_KEYS)["distance"].idxmin(), levels]
    return near.merge(nearest, on=levels)


def pair_means(rows: pd.DataFrame, values: list[str]) -> pd.DataFrame:
    """Per pair of methods: the mean of each value column over its rows."""
    return rows.groupby(PAIR_KEYS, as_index=False)[values].mean()


def symmetric_grid(cells: pd.DataFrame, value: str, order: list[str]) -> pd.DataFrame:
    """methods x methods (in order) of one value column of cells, filled both ways; NaN
    where a pair has no cell (and on the diagonal)."""
    grid = pd.DataFrame(np.nan, index=order, columns=order, dtype=object)
    for row in cells.itertuples(index=False):
        grid.loc[row.method_a, row.method_b] = grid.loc[row.method_b, row.method_a] = getattr(
            row, value)
    return grid


def short(value: float) -> str:
    """A value in [-1, 1] in two decimals without the leading zero: .31, -.05, 1.00."""
    return f"{value + 0.0:.2f}".replace("-0.00", "0.00").replace("0.", ".", 1)


def heatmap_figure(
    panels: list[tuple[str, pd.DataFrame, pd.DataFrame]], style: FigureStyle,
    limit: float, label: str, ncols: int,
) -> Figure:
    """One methods x methods heatmap per (title, values, annotations) panel (index and
    columns: method labels), each row of panels as tall as its largest grid needs."""
    sizes = [len(values) for _, values, _ in panels]
    rows = [max(sizes[i:i + ncols]) for i in range(0, len(sizes), ncols)]
    with styled(style):
        fig, axes = panel_grid(style, len(panels), ncols,
                               row_heights=[0.3 * n + 2.2 for n in rows])
        for ax, (title, values, annot) in zip(axes, panels, strict=True):
            mesh = method_heatmap(ax, values.astype(float), annot, style.diverging_cmap, limit)
            ax.set_title(title)
        fig.colorbar(mesh, ax=axes, shrink=0.8, aspect=30, label=label)
    return fig


def _labelled(grid: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    return grid.rename(index=labels, columns=labels)


def fig_mask_overlap_heatmap(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Per density band (style.profile_percents): methods x methods, mean excess overlap of
    their masks (diverging at chance, 0), each cell annotated with its value (two decimals;
    the Jaccard indices behind it are similarity.csv's)."""
    if tables.similarity is None:
        return None
    labels = method_labels(tables.summary)
    panels = []
    for percent in style.profile_percents:
        pairs = band_pairs(tables.similarity, percent, style.profile_match_factor)
        for init, named in INITS.items():
            cells = pair_means(pairs[pairs["init"] == init], ["excess"])
            if cells.empty:
                continue
            order = methods_in_order(tables.summary,
                                     set(cells["method_a"]) | set(cells["method_b"]))
            cells = cells.assign(text=["" if pd.isna(v) else short(v) for v in cells["excess"]])
            values = symmetric_grid(cells, "excess", order)
            annot = symmetric_grid(cells, "text", order).fillna("")
            panels.append((f"≈{percent:g}% remaining, {named}", _labelled(values, labels),
                           _labelled(annot, labels)))
    if not panels:
        return None
    return heatmap_figure(panels, style, 1.0, "Excess overlap", 1)


def imp_overlaps(similarity: pd.DataFrame) -> pd.DataFrame:
    """Weight-level rows of IMP against every other method, as method (the other one),
    imp_level, percent (IMP's percent remaining), layer, excess, and chance: the half-width
    of the 5-95% band of the excess of two independent random masks with these counts (the
    hypergeometric sd of the similarity verb, normal quantiles)."""
    rows = mask_rows(similarity)
    sides = []
    for imp, other in (("a", "b"), ("b", "a")):
        found = rows[(rows[f"method_{imp}"] == "imp") & (rows[f"method_{other}"] != "imp")]
        sides.append(pd.DataFrame({
            "method": found[f"method_{other}"], "imp_level": found[f"level_{imp}"],
            "percent": 100 * found[f"density_{imp}"], "layer": found["layer"],
            "init": found["init"], "excess": found["excess"],
            "chance": CHANCE_Z * found["excess_sd"]}))
    return pd.concat(sides, ignore_index=True)


def _draw_imp_overlaps(ax, rows: pd.DataFrame, methods: list[str],
                       styles: dict[str, MethodStyle], labels: dict[str, str]) -> None:
    """One layer's excess overlap with IMP of each of methods vs IMP's percent remaining,
    over the chance band (the widest of all methods' at each IMP level)."""
    stats = rows.groupby(["method", "init", "imp_level"], as_index=False)[
        ["percent", "excess", "chance"]].mean()
    band = stats.groupby("imp_level")[["percent", "chance"]].max().sort_values("percent")
    ax.fill_between(band["percent"], -band["chance"], band["chance"], color="0.75",
                    alpha=0.6, linewidth=0, label="chance, 5–95%")
    for method in methods:
        for init, named in INITS.items():
            line = stats[(stats["method"] == method) & (stats["init"] == init)]
            if line.empty:
                continue
            look = styles[method].line() | ({} if init == "same" else {"markerfacecolor": "none"})
            ax.plot(line.sort_values("percent")["percent"], line.sort_values("percent")["excess"],
                    label=labels[method] + ("" if init == "same" else f" ({named})"), **look)
    ax.axhline(0, color="0.3", linewidth=0.6)


def fig_mask_overlap_layers(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Excess overlap of IMP's mask with each method's vs IMP's percent remaining: one row
    per group of methods (method_facets), one column for all layers and, for networks of at
    most MAX_LAYER_FACETS layers, one per layer; the grey band holds 90% of random mask
    pairs with the same counts. Pairs that did not start from the same weights have open
    markers and say so."""
    if tables.similarity is None:
        return None
    tidy = imp_overlaps(tables.similarity)
    if tidy.empty:
        return None
    layers = [n for n in pd.unique(tidy["layer"]) if n != OVERALL]
    columns = [OVERALL] + (layers if len(layers) <= MAX_LAYER_FACETS else [])
    rows = method_facets(tables.summary, tidy["method"].unique())
    styles = method_styles(tables.summary, style.palette)
    labels = method_labels(tables.summary)
    def draw(ax, layer, methods, top):
        _draw_imp_overlaps(ax, tidy[tidy["layer"] == layer], methods, styles, labels)
        percent_axis(ax, tidy["percent"])
        ax.set_xlabel("")
        if top:
            ax.set_title("all layers" if layer == OVERALL else layer, fontsize="x-small")

    with styled(style):
        fig, _ = facet_grid(style, rows, columns, draw, "excess vs imp")
        fig.supxlabel("imp's weights remaining (%)", fontsize="small")
    return fig


def degree_map(rows: pd.DataFrame) -> np.ndarray:
    """Mean over the networks in rows (seed, draw) of each input position's in-degree
    summed over channels, as a rows x cols array."""
    networks = len(rows[["seed", "draw"]].drop_duplicates())
    summed = rows.groupby(["row", "col"])["in_degree"].sum() / networks
    return summed.unstack("col").to_numpy(dtype=float)


def degree_maps(indegree: pd.DataFrame, summary: pd.DataFrame,
                percent: float) -> list[tuple[str, float, np.ndarray]]:
    """Per method (report order) whose first layer is linear: (method, percent remaining of
    its level nearest `percent`, degree_map of that level's networks)."""
    rows = indegree[indegree["kind"] == "linear"]
    level_percent = 100 * rows.groupby(["method", "level"])["density"].mean()
    maps = []
    for method in methods_in_order(summary, rows["method"]):
        level = nearest_level(level_percent[method], percent)
        chosen = rows[(rows["method"] == method) & (rows["level"] == level)]
        maps.append((method, level_percent[method][level], degree_map(chosen)))
    return maps


def distinct_maps(maps: list[tuple[str, float, np.ndarray]]) -> list[tuple[str, int, float,
                                                                           np.ndarray]]:
    """The maps that differ, each as (first method, how many later methods have the same
    map at the same percent, percent, map): a method that trains another's mask (a control)
    repeats its map."""
    kept: list[list] = []
    for method, percent, grid in maps:
        same = next((k for k in kept if k[2] == percent and np.array_equal(k[3], grid)), None)
        if same is None:
            kept.append([method, 0, percent, grid])
        else:
            same[1] += 1
    return [tuple(k) for k in kept]


def fig_input_degree_maps(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Per method, the in-degree of every input pixel in the first (linear) layer at the
    level nearest style.degree_map_percent, relative to its mean over the pixels; methods
    with the same map as an earlier one are counted under it."""
    if tables.indegree is None:
        return None
    maps = distinct_maps(degree_maps(tables.indegree, tables.summary, style.degree_map_percent))
    if not maps:
        return None
    labels = method_labels(tables.summary)
    relative = [m / m.mean() if m.mean() > 0 else m for *_, m in maps]
    top = max(float(r.max()) for r in relative)
    ncols = min(len(maps), 5)
    with styled(style):
        rows = -(-len(maps) // ncols)
        fig, axes = panel_grid(style, len(maps), ncols,
                               row_heights=[0.8 * style.width / ncols + 0.5] * rows)
        for ax, (method, same, percent, _), image in zip(axes, maps, relative, strict=True):
            shown = ax.imshow(image, cmap=style.cmap, vmin=0, vmax=top,
                              interpolation="nearest")
            title = labels[method].replace(" (", "\n(") + f"\n{percent:.3g}%"
            ax.set_title(title + (f", +{same} same" if same else ""), fontsize="x-small")
            ax.set_axis_off()
        fig.colorbar(shown, ax=axes, shrink=0.8, label="In-degree / mean over pixels")
    return fig


def score_labels(summary: pd.DataFrame) -> dict[str, str]:
    """Each method named with where its saved scores come from: trained over the mining
    (masks mined on frozen weights) or taken at initialization."""
    at_init = set(summary.loc[summary["family"] == "at_init", "method"])
    return {m: f"{m} ({'at init' if m in at_init else 'trained'})"
            for m in pd.unique(summary["method"])}


def rank_correlations(similarity: pd.DataFrame) -> pd.DataFrame:
    """Per layer and pair of methods with saved scores: the mean Spearman correlation of
    the scores that made their masks over seeds and matched levels."""
    rows = mask_rows(similarity).dropna(subset=["score_spearman"])
    return rows.groupby(["layer", *PAIR_KEYS], as_index=False, sort=False)[
        "score_spearman"].mean()


def fig_score_rank_correlation(tables: ReportTables, style: FigureStyle) -> Figure | None:
    """Methods x methods Spearman correlation of the scores that made their masks, pooled
    over the layers and, for networks of at most MAX_LAYER_FACETS layers, per layer."""
    if tables.similarity is None:
        return None
    rho = rank_correlations(tables.similarity)
    if rho.empty:
        return None
    layers = [n for n in pd.unique(rho["layer"]) if n != OVERALL]
    facets = [OVERALL] + (layers if len(layers) <= MAX_LAYER_FACETS else [])
    labels = score_labels(tables.summary)
    order = methods_in_order(tables.summary, set(rho["method_a"]) | set(rho["method_b"]))
    panels = []
    for layer in facets:
        cells = rho[rho["layer"] == layer].assign(
            text=lambda c: [short(v) for v in c["score_spearman"]])
        values = symmetric_grid(cells, "score_spearman", order)
        annot = symmetric_grid(cells, "text", order).fillna("")
        title = "all layers" if layer == OVERALL else layer
        panels.append((title, _labelled(values, labels), _labelled(annot, labels)))
    return heatmap_figure(panels, style, 1.0, "Spearman ρ of scores", 2)
