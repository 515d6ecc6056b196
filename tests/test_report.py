"""lth.report: tables, figures, the scorecard and the rendered report, on synthetic but
realistic results of LeNet-300-100 (IMP, its controls, SNIP/SynFlow at init, fine-tuning and
Scratch-E on its masks, Early-Bird, edge-popup's untrained supermasks; 2 seeds), with their
cost columns, mask similarity and first-layer in-degree."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
import sys
import zipfile
import zlib
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from lth.analysis import similarity as S
from lth.analysis.cost import pareto_front
from lth.analysis.findings import findings_table
from lth.core.io import LthError, read_json, sha256_file
from lth.core.provenance import find_record
from lth.report import claims
from lth.report.cost_figures import (
    cost_points,
    cost_table,
    fig_cost_vs_accuracy,
    fig_iterations_to_target,
    target_stats,
)
from lth.report.figure_files import check_tables_given
from lth.report.figures import (
    FIGURES,
    fig_accuracy_vs_density,
    fig_all_methods,
    fig_density_profiles,
    fig_early_stop_vs_density,
    fig_generalization_gap,
    fig_layer_collapse,
    fig_layer_density,
    fig_learning_curves,
)
from lth.report.latex import compile_pdf, latex_escape
from lth.report.overlap_figures import (
    degree_map,
    degree_maps,
    fig_input_degree_maps,
    fig_mask_overlap_heatmap,
    fig_mask_overlap_layers,
    fig_score_rank_correlation,
)
from lth.report.render import display_tables, make_report, render_report
from lth.report.style import FigureStyle, style_from_config
from lth.report.tables import (
    REQUIRED_COLUMNS,
    ReportTables,
    collapse_table,
    dense_accuracy,
    read_tables,
    results_table,
    shrinkbench_table,
)

REPO = Path(__file__).resolve().parents[1]
SEEDS = (0, 1)
LAYERS = (("fc1.weight", "fc", 235200), ("fc2.weight", "fc", 30000), ("fc3.weight", "output", 1000))
TOTAL = sum(size for _, _, size in LAYERS)
FAMILY = {
    "imp": "lottery", "reinit": "control", "random_pruning": "control",
    "scratch_b_imp": "control", "scratch_e_finetune": "control", "snip": "at_init",
    "synflow": "at_init", "finetune": "baseline", "eb": "earlybird", "edge_popup": "supermask",
}  # fmt: skip
CONTROLS = ("reinit", "random_pruning", "scratch_b_imp", "scratch_e_finetune")
ONE_SHOT = ("snip", "synflow", "eb", "edge_popup")
ITERATION_MACS = 3 * 60 * TOTAL  # training MACs of one dense iteration at batch 60
TEST_ACCURACY = {
    "imp": lambda d: 0.89 + 0.02 * (1 - d) - 3 * max(0.0, 0.03 - d),
    "reinit": lambda d: 0.89 - 0.08 * (1 - d) ** 3,
    "random_pruning": lambda d: 0.89 - 0.12 * (1 - d) ** 2,
    "scratch_b_imp": lambda d: 0.89 - 0.10 * (1 - d) ** 2,
    "scratch_e_finetune": lambda d: 0.891 - 0.012 * (1 - d),
    "snip": lambda d: 0.885 - 0.05 * (1 - d) ** 4,
    "synflow": lambda d: 0.885 - 0.04 * (1 - d) ** 4,
    "finetune": lambda d: 0.892 - 0.01 * (1 - d),
    "eb": lambda d: 0.888 - 0.02 * (1 - d) ** 3,
    "edge_popup": lambda d: 0.80 - 0.1 * (1 - d) ** 2,
}
STOP_DELAY = {
    "imp": 0, "reinit": 300, "random_pruning": 600, "scratch_b_imp": 450,
    "scratch_e_finetune": 350, "snip": 200, "synflow": 150, "finetune": 100, "eb": 120,
    "edge_popup": 50,
}  # fmt: skip
STYLE = FigureStyle(
    context="paper", axes_style="whitegrid", font_scale=1.0, palette="colorblind",
    cmap="viridis", dpi=60, width=6.0, height=3.8, spread="std",
    curve_percents=(100.0, 51.3, 21.1), control_curve_percent=51.3,
    profile_percents=(50.0, 20.0, 5.0), profile_match_factor=1.25,
)  # fmt: skip
SETTINGS = {
    "model": "lenet300_100", "dataset": "fashion_mnist", "schedule": "1000 iterations, Adam",
    "pruning_rate": "fc 0.2, output 0.1", "seeds": "0, 1",
}  # fmt: skip


def layer_densities(method: str, density: float, seed: int) -> list[float]:
    """IMP and its relatives prune every layer alike; SNIP prunes the output layer harder
    and collapses it from 5% on in seed 1; SynFlow keeps the output layer denser."""
    if method == "snip":
        return [density, density, 0.0 if (density <= 0.05 and seed == 1) else density / 5]
    if method == "synflow":
        return [0.95 * density, density, min(1.0, 10 * density)]
    return [density] * 3


def runs(rounds: int, one_shot: tuple[float, ...]):
    """(method, level, round, density) of every trained network."""
    for method in ("imp", "reinit", "random_pruning", "scratch_b_imp", "finetune",
                   "scratch_e_finetune"):
        first = 0 if method == "imp" else 1
        for r in range(first, rounds):
            yield method, f"round{r}", r, 0.8**r
    for method in ONE_SHOT:
        for d in one_shot:
            yield method, f"density{d:g}", -1, d


def costs(method: str, rnd: int, d: float, iterations: int) -> dict:
    """Cost columns (sparse, dense) as `lth summarize` computes them: IMP's relatives find
    their masks with IMP's earlier rounds, Early-Bird with a fifth of a dense training, the
    at-init criteria with one dense batch; edge-popup's own record is its mining (its
    weights are never trained)."""
    if rnd >= 0:
        find = (iterations * ITERATION_MACS * sum(0.8**j for j in range(rnd)),
                rnd * iterations * ITERATION_MACS)
    else:
        find = {"eb": (0.2 * iterations * ITERATION_MACS,) * 2,
                "edge_popup": (0, 0)}.get(method, (ITERATION_MACS / 60,) * 2)
    train = (iterations * ITERATION_MACS * (2 * d + 1) / 3 if method == "edge_popup"
             else iterations * ITERATION_MACS * d, iterations * ITERATION_MACS)
    return {"find_macs": find[0], "find_macs_dense": find[1], "train_macs": train[0],
            "train_macs_dense": train[1], "total_macs": find[0] + train[0],
            "total_macs_dense": find[1] + train[1],
            "dense_trainings": (find[1] + train[1]) / (iterations * ITERATION_MACS)}


def iterations_to_target(method: str, d: float, seed: int) -> float:
    """SNIP at 5 % and edge-popup never reach the target; SynFlow at 5 % only in seed 0."""
    if method == "edge_popup" or (method == "snip" and d == 0.05):
        return math.nan
    if method == "synflow" and d == 0.05 and seed == 1:
        return math.nan
    return 200 + 400 * (1 - d) + 50 * seed


def synthetic_tables(
    rounds: int = 6, one_shot: tuple[float, ...] = (0.5, 0.2, 0.05), seeds=SEEDS,
    iterations: int = 1000,
) -> ReportTables:  # fmt: skip
    """summary/layers/curves as `lth summarize` writes them; final accuracies from
    TEST_ACCURACY, test accuracy at early stop exactly 0.01 below; seed s lowers accuracy by
    0.004 s and delays early stopping by 100 s iterations."""
    summary, layers, curves = [], [], []
    for method, level, rnd, d in runs(rounds, one_shot):
        for seed in seeds:
            key = {"experiment": "lenet_fmnist", "method": method, "seed": seed, "level": level,
                   "round": rnd, "density": d}  # fmt: skip
            densities = layer_densities(method, d, seed)
            acc = TEST_ACCURACY[method](d) - 0.004 * seed
            stop = round(1000 + 2000 * d + STOP_DELAY[method] * (1 - d)) + 100 * seed
            summary.append(
                key | {
                    "dataset": "fashion_mnist", "model": "lenet300_100",
                    "family": FAMILY[method], "target_density": d, "percent_remaining": 100 * d,
                    "compression": 1 / d, "params_kept": round(d * TOTAL), "params_total": TOTAL,
                    "macs": d * TOTAL, "dense_macs": TOTAL, "speedup": 1 / d,
                    "control": method in CONTROLS, "weights_trained": method != "edge_popup",
                    "iterations_to_target": iterations_to_target(method, d, seed),
                    "collapsed": 0.0 in densities, "final_test_accuracy": acc,
                    "final_val_accuracy": acc + 0.001,
                    "final_train_accuracy": acc + 0.02 + 0.05 * d,
                    "early_stop_iteration": stop,
                    "early_stop_test_accuracy": acc - 0.01, "iterations": iterations,
                    "wall_seconds": 1.0, "run_dir": f"results/x/seed{seed}/{method}/{level}",
                } | costs(method, rnd, d, iterations)
            )  # fmt: skip
            for (name, kind, size), ld in zip(LAYERS, densities, strict=True):
                layers.append(key | {"layer": name, "kind": kind, "kept": round(ld * size),
                                     "size": size, "layer_density": ld})  # fmt: skip
            for t in range(0, iterations + 1, 100):
                rise = acc * (1 - 0.88 * math.exp(-t / (100 + 200 * d)))
                for split, shift in (("test", 0.0), ("val", 0.002)):
                    curves.append(key | {"iteration": t, "split": split, "loss": 1 - rise,
                                         "accuracy": rise + shift})  # fmt: skip
    columns = REQUIRED_COLUMNS
    summary = pd.DataFrame(summary)
    return ReportTables(
        summary,
        pd.DataFrame(layers, columns=[*columns["layers"], "experiment", "kind", "kept", "size"]),
        pd.DataFrame(curves, columns=[*columns["curves"], "experiment", "loss"]),
        synthetic_similarity(summary),
        synthetic_indegree(summary),
    )


SCORED = ("edge_popup", "snip", "synflow")  # methods that save their scores
OTHER_START = ("reinit", "edge_popup")  # a fresh init, mined signed constants: init "different"


def pair_values(a: str, b: str, seed: int, layer: int) -> dict:
    """Similarity measures of one pair: a fixed value per pair of methods, shifted by seed
    and layer; rank correlation only between methods with scores."""
    base = 1.0 if (a, b) == ("imp", "reinit") else ((3 * len(a) + len(b)) % 9) / 10 - 0.2
    scored = a in SCORED and b in SCORED
    return {"excess": base + 0.02 * seed - 0.01 * layer, "excess_sd": 0.01 * (1 + layer),
            "jaccard": 0.2 + 0.05 * seed + 0.01 * layer, "expected_jaccard": 0.1,
            "score_spearman": 0.3 + 0.1 * seed - 0.05 * layer if scored else math.nan}


def synthetic_similarity(summary: pd.DataFrame) -> pd.DataFrame:
    """similarity.csv as the verb writes it: within each seed, every pair of methods at the
    same level or densities within 10 % (method_a < method_b), per layer and "all"; across
    seeds, imp with itself at each level (order-free views only)."""
    levels = summary[["method", "level", "density"]].drop_duplicates().sort_values(
        ["method", "density"], ascending=[True, False]).to_dict("records")
    layers = [*(name for name, _, _ in LAYERS), "all"]
    rows = []
    for seed in SEEDS:
        for i, x in enumerate(levels):
            for y in levels[i + 1:]:
                near = abs(x["density"] - y["density"]) <= 0.1 * max(x["density"], y["density"])
                if x["method"] == y["method"] or not (x["level"] == y["level"] or near):
                    continue
                pair = {"view": "mask", "seed_a": seed, "seed_b": seed, "init": "same"}
                if {x["method"], y["method"]} & set(OTHER_START):
                    pair["init"] = "different"
                for side, net in (("a", x), ("b", y)):
                    pair |= {f"{key}_{side}": net[key] for key in ("method", "level", "density")}
                rows += [pair | {"layer": layer} | pair_values(x["method"], y["method"], seed, j)
                         for j, layer in enumerate(layers)]
    for x in levels:
        if x["method"] == "imp":
            pair = {"view": "in_degree_across_seeds", "seed_a": 0, "seed_b": 1,
                    "init": "different"}
            pair |= {f"{key}_{side}": x[key] for key in ("method", "level", "density")
                     for side in ("a", "b")}
            rows += [pair | {"layer": layer, "excess": math.nan} for layer in layers]
    return pd.DataFrame(rows)


def fc1_mask(method: str, level: str, seed: int, density: float) -> np.ndarray:
    """A first-layer mask of LeNet (30 hidden units for speed) at density, its own per
    network; IMP keeps the centre of the image far more often."""
    rng = np.random.default_rng(zlib.crc32(f"{method}/{level}/{seed}".encode()))
    keep = np.full((28, 28), density)
    if method == "imp":
        keep[7:21, 7:21] *= 3
    return rng.random((30, 784)) < keep.ravel()


def synthetic_indegree(summary: pd.DataFrame) -> pd.DataFrame:
    """indegree.csv as the verb writes it (lth.analysis.similarity.in_degree_table), for IMP and the
    one-shot methods."""
    nets = summary[summary["method"].isin(("imp", *ONE_SHOT))]
    return pd.concat([
        S.in_degree_table("lenet_fmnist", S.Network(r.method, 0, r.seed, r.level, r.density,
                                                    "unused", "theta_0"),
                          {"fc1.weight": fc1_mask(r.method, r.level, r.seed, r.density)},
                          (1, 28, 28))
        for r in nets.itertuples()], ignore_index=True)


@pytest.fixture(scope="module")
def tables() -> ReportTables:
    return synthetic_tables()


def imp_only(tables: ReportTables) -> ReportTables:
    """The tables of a config that ran only IMP, and wrote no curves."""
    sim = tables.similarity
    return ReportTables(
        tables.summary[tables.summary["method"] == "imp"],
        tables.layers[tables.layers["method"] == "imp"],
        tables.curves.iloc[0:0],
        sim[(sim["method_a"] == "imp") & (sim["method_b"] == "imp")],
        tables.indegree[tables.indegree["method"] == "imp"],
    )


# ----------------------------------------------------------------------------- tables


def test_results_table_mean_and_std_over_seeds(tables):
    table = results_table(tables.summary)
    row = table[(table["method"] == "imp") & (table["level"] == "round2")].iloc[0]
    # d = 0.64: seed 0 -> 0.89 + 0.02 * 0.36 = 0.8972, seed 1 -> 0.8932
    assert row["percent_remaining"] == pytest.approx(64.0)
    assert row["final_accuracy_mean"] == pytest.approx(89.52)
    assert row["final_accuracy_std"] == pytest.approx(0.4 / math.sqrt(2))
    assert row["early_stop_accuracy_mean"] == pytest.approx(88.52)
    assert row["early_stop_accuracy_std"] == pytest.approx(0.4 / math.sqrt(2))
    assert row["early_stop_iteration"] == pytest.approx(2280 + 50)
    assert row["n_networks"] == 2
    assert table["method"].tolist()[:6] == ["imp"] * 6  # lottery first, dense first
    assert table["percent_remaining"].tolist()[:6] == pytest.approx(
        [100 * 0.8**r for r in range(6)]
    )
    assert len(table) == 6 + 5 * 5 + 4 * 3
    assert (table["target_percent"] == table["percent_remaining"]).all()  # every level on target


def test_results_note_names_each_level_below_half_its_target(tables):
    (results, *_), label = display_tables(tables.summary), "Target (%)"
    assert "Every level keeps at least half" in results.note
    assert results.rows[0][results.headers.index(label)] == "100"
    summary = tables.summary.copy()
    popup = (summary["method"] == "edge_popup") & (summary["level"] == "density0.5")
    summary.loc[popup, "density"] = 0.2
    summary.loc[popup, "percent_remaining"] = 20.0
    (results, *_) = display_tables(summary)
    assert results.note.endswith("Below half of their target: edge_popup (untrained) at "
                                 "density0.5, 20% of a 50% target.")  # edge-popup gives no reason
    row = next(r for r in results.rows if r[:2] == ["edge_popup (untrained)", "density0.5"])
    assert row[2:4] == ["20", "50"]
    gem = summary[popup].assign(method="gem_miner_gem")
    (results, *_) = display_tables(pd.concat([summary, gem]))
    assert "target; gem_miner_gem" in results.note
    assert results.note.endswith("target. GEM-MINER's rare gem keeps the flagged weights whose "
                                 "score exceeds 0.5 (Sreenivasan et al. 2022, the accuracy 'after "
                                 "rounding'), and the L2 penalty on the scores "
                                 "(supermask.gem_miner.regularization) pulls flagged scores "
                                 "under 0.5.")


def test_shrinkbench_change_vs_dense(tables):
    table = shrinkbench_table(tables.summary)
    snip = table[(table["method"] == "snip") & (table["level"] == "density0.2")].iloc[0]
    dense = 100 * (0.89 + 0.886) / 2
    accuracy = 100 * (0.885 - 0.05 * 0.8**4 - 0.002)
    assert dense_accuracy(tables.summary) == pytest.approx(dense)
    assert snip["accuracy"] == pytest.approx(accuracy)
    assert snip["accuracy_change"] == pytest.approx(accuracy - dense)
    assert snip["compression"] == pytest.approx(5.0)
    assert snip["speedup"] == pytest.approx(5.0)
    assert snip["collapsed_seeds"] == 0
    collapsed = table[(table["method"] == "snip") & (table["level"] == "density0.05")]
    assert collapsed["collapsed_seeds"].tolist() == [1]


def test_collapse_table_largest_compression_without_collapse(tables):
    table = collapse_table(tables.summary).set_index("method")
    assert table.loc["snip", "max_compression_no_collapse"] == pytest.approx(5.0)
    assert table.loc["snip", "first_collapse_compression"] == pytest.approx(20.0)
    assert table.loc["synflow", "max_compression_no_collapse"] == pytest.approx(20.0)
    assert math.isnan(table.loc["synflow", "first_collapse_compression"])
    assert table.loc["imp", "max_compression_no_collapse"] == pytest.approx(0.8**-5)
    assert table.index.tolist()[0] == "imp"


def test_collapse_table_stops_at_the_first_collapse():
    summary = synthetic_tables(one_shot=(0.5, 0.2, 0.05, 0.02)).summary
    summary.loc[summary["level"] == "density0.02", "collapsed"] = False  # intact again at 50x
    table = collapse_table(summary).set_index("method")
    assert table.loc["snip", "max_compression_no_collapse"] == pytest.approx(5.0)
    assert table.loc["snip", "first_collapse_compression"] == pytest.approx(20.0)


# ----------------------------------------------------------------------------- figures


def mean_over_seeds(tables, method: str, column: str, scale: float = 100.0) -> np.ndarray:
    rows = tables.summary[tables.summary["method"] == method]
    return scale * rows.groupby("density")[column].mean().sort_index(ascending=False).to_numpy()


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_accuracy_vs_density_at_early_stop_left_and_final_right(tables):
    fig = fig_accuracy_vs_density(tables, STYLE)
    early, final = fig.axes[:2]
    assert [early.get_title(), final.get_title()] == ["At early stop", "At the end of training"]
    for ax, column in ((early, "early_stop_test_accuracy"), (final, "final_test_accuracy")):
        lines = lines_by_label(ax)
        # controls on fine-tuning's masks are not in the LTH figure
        assert sorted(lines) == ["imp", "random_pruning", "reinit", "scratch_b_imp"]
        assert ax.get_xscale() == "log"
        left, right = ax.get_xlim()
        assert left > 100 > right
        assert lines["imp"].get_xdata() == pytest.approx([100 * 0.8**r for r in range(6)])
        assert lines["imp"].get_ydata() == pytest.approx(mean_over_seeds(tables, "imp", column))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["50", "100"]
    assert lines_by_label(early)["reinit"].get_ydata() == pytest.approx(
        lines_by_label(final)["reinit"].get_ydata() - 1.0
    )


def test_band_is_std_or_min_max_over_seeds(tables):
    for spread, half_width in (("std", 0.4 / math.sqrt(2)), ("minmax", 0.2)):
        style = FigureStyle(**{**asdict(STYLE), "spread": spread})
        ax = fig_accuracy_vs_density(tables, style).axes[0]
        band = ax.collections[0].get_paths()[0].vertices[:, 1]  # imp is drawn first
        mean = mean_over_seeds(tables, "imp", "early_stop_test_accuracy")
        assert band.max() == pytest.approx(mean.max() + half_width)


def test_early_stop_vs_density_plots_mean_iterations(tables):
    ax = fig_early_stop_vs_density(tables, STYLE).axes[0]
    imp = lines_by_label(ax)["imp"]
    assert imp.get_ydata() == pytest.approx([round(1000 + 2000 * 0.8**r) + 50 for r in range(6)])
    assert ax.get_xscale() == "log"


def test_learning_curves_select_rounds_and_reinit(tables):
    ax = fig_learning_curves(tables, STYLE).axes[0]
    lines = lines_by_label(ax)
    # 100 -> round 0, 51.3 -> round 3 (51.2%), 21.1 and the sparsest -> round 5 (32.8%)
    assert list(lines) == ["imp 100%", "imp 51.2%", "imp 32.8%", "reinit 51.2%"]
    assert lines["reinit 51.2%"].get_linestyle() == "--"
    test = tables.curves[(tables.curves["split"] == "test") & (tables.curves["level"] == "round0")]
    expected = 100 * test.groupby("iteration")["accuracy"].mean().to_numpy()
    assert lines["imp 100%"].get_ydata() == pytest.approx(expected)


def test_generalization_gap_train_and_test(tables):
    lines = lines_by_label(fig_generalization_gap(tables, STYLE).axes[0])
    assert sorted(lines) == ["imp test", "imp train", "reinit test", "reinit train"]
    assert lines["imp train"].get_ydata() == pytest.approx(
        mean_over_seeds(tables, "imp", "final_train_accuracy")
    )


def test_layer_density_heatmap_values(tables):
    ax = fig_layer_density(tables, STYLE).axes[0]
    cells = np.asarray(ax.collections[0].get_array()).reshape(3, 6)
    imp = tables.layers[tables.layers["method"] == "imp"]
    expected = 100 * imp.pivot_table(index="layer", columns="round", values="layer_density")
    assert cells == pytest.approx(expected.loc[[name for name, _, _ in LAYERS]].to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == [name for name, _, _ in LAYERS]


def test_all_methods_one_panel_per_group_with_imp_in_each(tables):
    panels = {ax.get_title(): lines_by_label(ax) for ax in fig_all_methods(tables, STYLE).axes}
    family = tables.summary.drop_duplicates("method").set_index("method")["family"]
    assert list(panels) == [family[m] for m in ("imp", "snip", "finetune", "eb", "edge_popup")]
    assert all("imp" in lines for lines in panels.values())
    # a control beside the ticket it controls
    assert set(panels[family["finetune"]]) == {"imp", "finetune", "scratch_e_finetune"}
    assert set(panels[family["imp"]]) == {"imp", "reinit", "random_pruning", "scratch_b_imp"}
    lines = {name: line for drawn in panels.values() for name, line in drawn.items()}
    assert len(lines) == 10
    styles = {name: line.get_linestyle() for name, line in lines.items()}
    assert styles["imp"] == "-" and styles["reinit"] == "--"
    assert styles["snip"] == ":" and styles["finetune"] == "-."
    assert lines["eb"].get_marker() == "v" and lines["edge_popup (untrained)"].get_marker() == "P"
    assert lines["edge_popup (untrained)"].get_ydata() == pytest.approx(
        mean_over_seeds(tables, "edge_popup", "final_test_accuracy"))
    assert lines["imp"].axes.get_xscale() == "log"


def test_layer_collapse_bars_and_collapse_marks(tables):
    ax = fig_layer_collapse(tables, STYLE).axes[0]
    widths = [bar.get_width() for bar in ax.patches]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert dict(zip(labels, widths, strict=True))["snip"] == pytest.approx(5.0)
    assert dict(zip(labels, widths, strict=True))["synflow"] == pytest.approx(20.0)
    (marks,) = ax.get_lines()
    assert np.nanmax(marks.get_xdata()) == pytest.approx(20.0)
    assert ax.get_xscale() == "log"


def grid_columns(fig, ncols: int) -> list[dict]:
    """Per column of a grid of panels with a legend cell closing each row: the lines of
    its panels by label, and its title (the top row's)."""
    rows = [fig.axes[i:i + ncols + 1] for i in range(0, len(fig.axes), ncols + 1)]
    return [{"title": rows[0][c].get_title(),
             "lines": {k: v for row in rows for k, v in lines_by_label(row[c]).items()}}
            for c in range(ncols)]


def test_density_profiles_facets_match_overall_density(tables):
    fig = fig_density_profiles(tables, STYLE)
    columns = grid_columns(fig, 3)
    assert [c["title"] for c in columns] == ["50% remaining", "20% remaining", "5% remaining"]
    assert sorted(columns[1]["lines"]) == [  # IMP 32.8% is too far
        "eb", "edge_popup (untrained)", "snip", "synflow"]
    assert len(columns[0]["lines"]) == 10
    axes = fig.axes
    synflow = columns[2]["lines"]["synflow"]
    assert synflow.get_xdata().tolist() == [1, 2, 3]
    assert synflow.get_ydata() == pytest.approx([100 * 0.95 * 0.05, 5.0, 50.0])
    assert axes[0].get_yscale() == "log"


def test_figures_without_data_are_skipped(tables):
    only = imp_only(tables)
    made = {name: spec.make(only, STYLE) is not None for name, spec in FIGURES.items()}
    assert made == {
        "accuracy_vs_density": True, "early_stop_vs_density": True, "learning_curves": False,
        "generalization_gap": True, "layer_density": True, "all_methods": False,
        "layer_collapse": True, "density_profiles": True, "mask_overlap_heatmap": False,
        "mask_overlap_layers": False, "input_degree_maps": True,
        "score_rank_correlation": False, "cost_vs_accuracy": True,
        "iterations_to_target": True,
    }  # fmt: skip
    without = ReportTables(only.summary, only.layers, only.curves)  # no similarity verb
    assert fig_mask_overlap_heatmap(without, STYLE) is None
    assert fig_input_degree_maps(without, STYLE) is None


# ----------------------------------------------------------------------------- similarity


def panels_by_title(fig) -> dict:
    """The titled axes of a figure (colorbars have no title) by title."""
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def heatmap_grid(ax) -> pd.DataFrame:
    """The values of a seaborn heatmap as a labelled square grid (NaN: blank cell)."""
    labels = [t.get_text() for t in ax.get_yticklabels()]
    values = np.ma.filled(np.ma.asarray(ax.collections[0].get_array(), dtype=float), np.nan)
    return pd.DataFrame(values.reshape(len(labels), -1), index=labels,
                        columns=[t.get_text() for t in ax.get_xticklabels()])


def mask_pair_rows(sim, a, level_a, b, level_b, layer="all") -> pd.DataFrame:
    return sim[(sim["view"] == "mask") & (sim["layer"] == layer) & (sim["method_a"] == a)
               & (sim["level_a"] == level_a) & (sim["method_b"] == b)
               & (sim["level_b"] == level_b)]


def test_mask_overlap_heatmap_cells_are_the_mean_excess_of_their_rows(tables):
    panels = panels_by_title(fig_mask_overlap_heatmap(tables, STYLE))
    assert list(panels) == [f"≈{p}% remaining, {init} init" for p in (50, 20, 5)
                            for init in ("same", "different")]
    same = heatmap_grid(panels["≈50% remaining, same init"])
    different = heatmap_grid(panels["≈50% remaining, different init"])
    sim = tables.similarity
    # at 50 %: imp's round 3 (51.2 %), nearer than round 4 (41.0 %, also within 1.25x)
    for a, level_a, b, level_b, grid in (
            ("imp", "round3", "reinit", "round3", different),
            ("imp", "round3", "snip", "density0.5", same),
            ("eb", "density0.5", "edge_popup", "density0.5", different)):
        rows = mask_pair_rows(sim, a, level_a, b, level_b)
        assert len(rows) == 2  # one per seed
        label_b = "edge_popup (untrained)" if b == "edge_popup" else b
        assert grid.loc[a, label_b] == pytest.approx(rows["excess"].mean())
        assert grid.loc[label_b, a] == pytest.approx(rows["excess"].mean())
    assert different.loc["imp", "reinit"] == pytest.approx(1.0 + 0.01 - 0.03)
    assert "reinit" not in same.index  # pairs of different starts are kept apart
    assert np.isnan(same.loc["imp", "imp"])  # no pair of a method with itself
    texts = {t.get_text() for t in panels["≈50% remaining, different init"].texts}
    rows = mask_pair_rows(sim, "imp", "round3", "reinit", "round3")
    assert f"{rows['excess'].mean():.2f}".replace("0.", ".", 1) in texts
    # at 5 %: only the one-shot methods, IMP's sparsest round is 32.8 %
    assert set(heatmap_grid(panels["≈5% remaining, same init"]).index) == {
        "snip", "synflow", "eb"}


def test_mask_overlap_layers_per_layer_with_the_chance_band(tables):
    fig = fig_mask_overlap_layers(tables, STYLE)
    columns = grid_columns(fig, 4)
    assert [c["title"] for c in columns] == ["all layers", "fc1.weight", "fc2.weight",
                                             "fc3.weight"]
    ax = fig.axes[2]
    reinit = columns[2]["lines"]["reinit (different init)"]
    assert reinit.get_markerfacecolor() == "none"  # open markers: not imp's start
    sim = tables.similarity
    rows = sim[(sim["view"] == "mask") & (sim["layer"] == "fc2.weight")
               & (sim["method_a"] == "imp") & (sim["method_b"] == "reinit")]
    expected = rows.groupby("density_a")["excess"].mean().sort_index()
    assert reinit.get_xdata() == pytest.approx(100 * expected.index.to_numpy())
    assert reinit.get_ydata() == pytest.approx(expected.to_numpy())
    assert "edge_popup (untrained) (different init)" in columns[2]["lines"]  # imp at 51.2 %
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(1.6448536 * 0.02)  # excess_sd of fc2 is 0.02
    assert band.min() == pytest.approx(-1.6448536 * 0.02)


def test_input_degree_map_is_the_column_sums_reshaped_28_by_28(tables):
    deg = tables.indegree
    one = deg[(deg["method"] == "imp") & (deg["level"] == "round5") & (deg["seed"] == 0)]
    by_seed = [fc1_mask("imp", "round5", seed, 0.8**5) for seed in SEEDS]
    assert degree_map(one) == pytest.approx(by_seed[0].sum(axis=0).reshape(28, 28))
    both = deg[(deg["method"] == "imp") & (deg["level"] == "round5")]
    mean = (by_seed[0].sum(axis=0) + by_seed[1].sum(axis=0)).reshape(28, 28) / 2
    assert degree_map(both) == pytest.approx(mean)
    maps = degree_maps(deg, tables.summary, STYLE.degree_map_percent)
    assert [(m, round(p, 1)) for m, p, _ in maps] == [
        ("imp", 32.8), ("snip", 5.0), ("synflow", 5.0), ("eb", 5.0), ("edge_popup", 5.0)]
    panels = panels_by_title(fig_input_degree_maps(tables, STYLE))
    assert list(panels) == ["imp\n32.8%", "snip\n5%", "synflow\n5%", "eb\n5%",
                            "edge_popup\n(untrained)\n5%"]
    image = np.asarray(panels["imp\n32.8%"].images[0].get_array())
    assert image == pytest.approx(mean / mean.mean())
    assert image[7:21, 7:21].mean() > 2 * np.delete(image.ravel(), np.ravel_multi_index(
        np.mgrid[7:21, 7:21].reshape(2, -1), (28, 28))).mean()  # IMP keeps the centre
    # reinit trains imp's masks: its map is imp's, counted under it, not drawn again
    imp_rows = deg[deg["method"] == "imp"]
    shared = ReportTables(tables.summary, tables.layers, tables.curves, tables.similarity,
                          pd.concat([deg, imp_rows.assign(method="reinit")]))
    panels = panels_by_title(fig_input_degree_maps(shared, STYLE))
    assert "imp\n32.8%, +1 same" in panels and len(panels) == 5


def test_score_rank_correlation_means_over_seeds_and_levels(tables):
    panels = panels_by_title(fig_score_rank_correlation(tables, STYLE))
    assert list(panels) == ["all layers", "fc1.weight", "fc2.weight", "fc3.weight"]
    grid = heatmap_grid(panels["fc1.weight"])
    # which scores are trained (mined) and which are taken at initialization
    assert set(grid.index) == {"snip (at init)", "synflow (at init)", "edge_popup (trained)"}
    sim = tables.similarity
    rows = sim[(sim["view"] == "mask") & (sim["layer"] == "fc1.weight")
               & (sim["method_a"] == "snip") & (sim["method_b"] == "synflow")]
    assert len(rows) == 2 * 3  # two seeds, three levels
    at_init = grid.loc["synflow (at init)", "snip (at init)"]
    assert at_init == pytest.approx(rows["score_spearman"].mean())
    assert at_init == pytest.approx(0.35)


# ----------------------------------------------------------------------------- cost


def test_cost_vs_accuracy_front_is_lth_cost_pareto_front(tables):
    fig = fig_cost_vs_accuracy(tables, STYLE)
    points = cost_points(tables.summary, STYLE.spread)
    imp = points[points["method"] == "imp"].set_index("level")
    assert imp.loc["round2", "sparse_trainings"] == pytest.approx(1 + 0.8 + 0.64)
    assert imp.loc["round2", "dense_trainings"] == pytest.approx(3.0)
    for ax, cost in zip(fig.axes[:2], ("sparse_trainings", "dense_trainings"), strict=True):
        assert ax.get_xscale() == "log"
        candidates = points[~points["control"]]
        front = candidates[pareto_front(candidates[[cost, "mean"]].to_numpy())]
        front = front.sort_values(cost)
        line = lines_by_label(ax)["Pareto front"]
        assert line.get_xdata() == pytest.approx(front[cost].to_numpy())
        assert line.get_ydata() == pytest.approx(front["mean"].to_numpy())
        assert len(front) >= 2
        markers = {c.get_label(): c.lines[0] for c in ax.containers}
        red, green, blue = markers["reinit (control)"].get_color()
        assert red == green == blue  # grey
        assert markers["imp"].get_xdata() == pytest.approx(imp[cost].to_numpy())
        assert "edge_popup (untrained)" in markers
    assert "multiply-accumulates (MACs)" in fig.axes[0].get_xlabel()


def test_iterations_to_target_marks_never_reached_levels_apart_from_zero(tables):
    fig = fig_iterations_to_target(tables, STYLE)
    ax = fig.axes[0]
    lines = [line for panel in fig.axes for line in panel.get_lines()]
    ceiling = 1.1 * 1000
    never = sorted((x, y) for line in lines if line.get_marker() == "x"
                   for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True))
    # edge-popup at every density, SNIP at 5 %
    assert np.array(never) == pytest.approx(np.array(
        [(5.0, ceiling), (5.0, ceiling), (20.0, ceiling), (50.0, ceiling)]))
    assert ax.get_yticklabels()[-1].get_text() == "not reached"
    snip = next(line for line in lines if line.get_label() == "snip")
    assert np.isnan(snip.get_ydata()[-1]) and snip.get_xdata()[-1] == pytest.approx(5.0)
    synflow = target_stats(tables.summary).set_index(["method", "level"]).loc[
        ("synflow", "density0.05")]
    assert (synflow["iterations"], synflow["reached"], synflow["n"]) == (580.0, 1, 2)
    open_markers = [line for line in lines if line.get_markerfacecolor() == "white"
                    and len(line.get_xdata())]
    assert [(line.get_xdata().tolist(), line.get_ydata().tolist())
            for line in open_markers] == [([5.0], [580.0])]


def test_cost_table_says_not_reached_and_labels_untrained_methods(tables):
    numbers = cost_table(tables.summary).set_index(["method", "level"])
    assert numbers.loc[("imp", "round2"), "sparse_trainings"] == pytest.approx(2.44)
    assert numbers.loc[("imp", "round2"), "total_macs"] == pytest.approx(
        2.44 * 1000 * ITERATION_MACS)
    table = display_tables(tables.summary)[-1]
    assert table.title == "Search cost vs. accuracy"
    cells = {(row[0], row[1]): dict(zip(table.headers, row, strict=True))
             for row in table.rows}
    assert cells["snip", "density0.05"]["Iter. to target"] == "not reached"
    assert cells["edge_popup (untrained)", "density0.5"]["Iter. to target"] == (
        "not reached")
    assert cells["synflow", "density0.05"]["Iter. to target"] == "580 (1/2)"
    assert cells["imp", "round1"]["Iter. to target"] == "305"  # 200 + 400 * 0.2 + 25
    assert cells["imp", "round2"]["Dense tr. (MACs)"] == "2.44"
    assert cells["imp", "round2"]["Dense tr. (epochs)"] == "3"
    assert cells["imp", "round2"]["Total MACs"] == f"{2.44 * 1000 * ITERATION_MACS:.3g}"


# ----------------------------------------------------------------------------- rendering


TABLE_NAMES = ("summary", "layers", "curves", "similarity", "indegree")


def write_csvs(tables: ReportTables, folder) -> dict:
    paths = {name: folder / f"{name}.csv" for name in TABLE_NAMES}
    for name, path in paths.items():
        getattr(tables, name).to_csv(path, index=False)
    return paths


@pytest.fixture(scope="module")
def made(tables, tmp_path_factory) -> dict:
    """One full report (figures, provenance, HTML, TeX, PDF) and the CSVs it was made from."""
    folder = tmp_path_factory.mktemp("report")
    paths = write_csvs(tables, folder)
    out_dir = folder / "reports" / "lenet_fmnist"
    out = make_report("lenet_fmnist", paths, STYLE, SETTINGS, out_dir)
    return out | {"csv": paths, "out_dir": out_dir}


def test_html_is_self_contained_with_captions_and_audit(made):
    html = made["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert 'href="http' not in html and "<link" not in html and "<style>" in html
    assert "Appendix: audit trail" in html
    for name in TABLE_NAMES:
        assert sha256_file(made["csv"][name]) in html
    assert "edge_popup (untrained)" in html and "Search cost vs. accuracy" in html
    assert re.search(r'<td class="l">snip</td><td class="l">density0.05</td>.*?'
                     r'<td class="r">not reached</td>', html, flags=re.S)
    pdf = made["out_dir"] / "figures" / "layer_collapse.pdf"
    assert f"python -m lth audit {pdf.as_posix()}" in html
    assert "Experiment lenet_fmnist: lenet300_100 on fashion_mnist" in html
    assert "88.52 ± 0.28" in html and "89.52 ± 0.28" in html  # early stop, final
    assert "not configured" not in html


def test_tex_escapes_text_includes_pdfs_and_compiles(made):
    tex = made["tex"].read_text()
    for name in FIGURES:
        assert f"keepaspectratio]{{figures/{name}.pdf}}" in tex
    assert r"lenet300\_100" in tex and r"random\_pruning" in tex
    assert r"89.52 \ensuremath{\pm} 0.28" in tex and r"Weights left (\%)" in tex
    assert made["pdf"].read_bytes().startswith(b"%PDF")


def test_scorecard_csv_matches_claims_with_provenance(tables, made):
    path = made["out_dir"] / "scorecard.csv"
    assert made["scorecard"] == path
    written = pd.read_csv(path, keep_default_na=False)
    expected = claims.scorecard(tables.summary)
    assert written.to_dict("records") == expected.to_dict("records")
    verdicts = written.set_index("key")["verdict"]
    # every network's validation loss is lowest at its last evaluation (1,000 iterations):
    # no early-stop claim is decided; SNIP collapses at 5 % in seed 1, SynFlow never; the
    # fine-tuning gaps (0.14-0.23 pp) are within the 0.4 pp between seeds
    for key in ("lth_match", "lth_beats_reinit", "lth_early_stop", "lth_reinit_degrades"):
        assert verdicts[key] == "not tested at this schedule"
    assert verdicts["synflow_no_collapse"] == verdicts["synflow_extreme"] == "reproduced"
    assert verdicts["snip_vs_random"] == "not tested at this scale"  # no random_init
    assert verdicts["liu_scratch_e"] == verdicts["han_keep_vs_reset"] == "inconclusive"
    record = find_record(path)
    assert record["verb"] == "report"
    assert record["inputs"] == [
        {"path": str(made["csv"]["summary"]), "sha256": sha256_file(made["csv"]["summary"])}
    ]
    assert record["outputs"] == [{"path": str(path), "sha256": sha256_file(path)}]


def test_scorecard_opens_the_html_with_verdicts_in_text(made):
    html = made["html"].read_text()
    assert html.index("<h2>Reproduction scorecard</h2>") < html.index("<h2>Settings</h2>")
    assert html.index("</h1>") < html.index("Reproduction scorecard")
    assert '<a href="#scorecard">Reproduction scorecard</a>' in html
    rows = re.findall(r'<tr id="claim-(\w+)">(.*?)</tr>', html, flags=re.S)
    assert [key for key, _ in rows] == [c.key for c in claims.CLAIMS]
    cells = dict(rows)
    assert '<td class="verdict ok">reproduced</td>' in cells["synflow_no_collapse"]
    assert '<td class="verdict untested">not tested at this schedule</td>' in cells["lth_match"]
    assert '<td class="verdict inconclusive">inconclusive</td>' in cells["liu_scratch_e"]
    assert "others collapse at 5 %; synflow collapses at none of them" in cells[
        "synflow_no_collapse"
    ]
    assert ("Verdicts: 2 reproduced, 0 not reproduced, 2 inconclusive, 4 not tested at this "
            "schedule, 5 not tested at this scale.") in html
    schedule = html.index('<p class="schedule">Schedule: 1,000 training iterations a network;')
    assert html.count("UNVERIFIED") <= 2  # issue 20: paper numbers checked against the text
    assert html.index("<h2>Reproduction scorecard</h2>") < schedule < html.index("<table")


def test_findings_and_guide_open_the_report_before_the_scorecard(tables, made):
    html = made["html"].read_text()
    guide, findings, scorecard = (html.index(f'<h2>{h}</h2>') for h in (
        "Guide", "What this run shows", "Reproduction scorecard"))
    assert html.index("</h1>") < guide < findings < scorecard
    # the guide points each question at its figures: cost at both cost figures
    cost = re.search(r"<li><strong>What does each network cost.*?</li>", html, flags=re.S)[0]
    assert [int(n) for n in re.findall(r"Fig\. (\d+)", cost)] == [
        i for i, name in enumerate(FIGURES, 1) if FIGURES[name].topic == "cost"]
    path = made["out_dir"] / "findings.csv"
    assert made["findings"] == path
    written = pd.read_csv(path, keep_default_na=False)
    expected = findings_table(tables.summary, tables.similarity).fillna("")
    assert written.to_dict("records") == expected.to_dict("records")
    for text in written["text"]:
        assert str(escape(text)) in html
    assert [e["path"] for e in find_record(path)["inputs"]] == [
        str(made["csv"]["summary"]), str(made["csv"]["similarity"])]
    tex = made["tex"].read_text()
    assert tex.index("What this run shows") < tex.index("Reproduction scorecard")
    assert r"\pageref{fig-" in tex and r"\label{audit}" in tex


def test_scorecard_opens_the_tex_escaped(made):
    tex = made["tex"].read_text()
    assert tex.index("maketitle") < tex.index(r"\section*{Reproduction scorecard}") < tex.index(
        r"\section*{Settings}"
    )
    assert tex.count(r"\textbf{reproduced} \\") == 2
    assert tex.count(r"\textbf{not tested at this scale} \\") == 5
    assert "Not decidable at this schedule: lth\\_match, lth\\_beats\\_reinit" in tex
    assert r"imp \ensuremath{-} reinit early-stop test accuracy > 0" in tex
    assert r"\ensuremath{\leq} 21.1 \%" in tex


def tex_packages_installed_by_setup() -> set[str]:
    """The texlive packages .ci/system-packages.sh installs, and texlive-base (their base)."""
    script = (REPO / ".ci" / "system-packages.sh").read_text()
    listed = script.split("packages=(", 1)[1].split(")", 1)[0].split()
    return {p for p in listed if p.startswith("texlive-")} | {"texlive-base"}


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs Debian's dpkg")
def test_the_pdf_needs_only_the_tex_packages_that_setup_installs(made, tmp_path):
    """Every TeX file the PDF build reads belongs to a package the setup installs."""
    shutil.copytree(made["out_dir"], tmp_path / "r")
    subprocess.run(["latexmk", "-pdf", "-recorder", "-interaction=nonstopmode", "report.tex"],
                   cwd=tmp_path / "r", capture_output=True, check=True)
    read = sorted({line.split(" ", 1)[1] for line in (tmp_path / "r" / "report.fls")
                   .read_text().splitlines() if line.startswith("INPUT /usr/")})
    owners = subprocess.run(["dpkg", "-S", *read], capture_output=True, text=True, check=True)
    packages = {line.split(":", 1)[0] for line in owners.stdout.splitlines()}
    assert len(read) > 20
    assert packages <= tex_packages_installed_by_setup(), packages


def test_provenance_records_inputs_and_outputs_of_each_figure(made):
    provenance = read_json(made["provenance"])
    assert set(provenance["code_version"]) == {"git", "source_sha256"}
    assert provenance["style"] == asdict(STYLE) | {
        "curve_percents": list(STYLE.curve_percents),
        "profile_percents": list(STYLE.profile_percents),
    }
    figure = provenance["figures"]["density_profiles"]
    assert figure["inputs"] == [
        {"path": str(made["csv"][t]), "sha256": sha256_file(made["csv"][t])}
        for t in ("summary", "layers")
    ]
    pdf = made["out_dir"] / "figures" / "density_profiles.pdf"
    assert figure["outputs"][0] == {"path": str(pdf), "sha256": sha256_file(pdf)}
    assert figure["verb"] == "report" and figure["params"]["settings"] == SETTINGS
    assert find_record(pdf) == figure  # what `python -m lth audit <figure>` reads
    assert provenance["figures"]["mask_overlap_heatmap"]["inputs"] == [
        {"path": str(made["csv"][t]), "sha256": sha256_file(made["csv"][t])}
        for t in ("summary", "similarity")
    ]


def test_report_says_not_configured_for_skipped_figures(tables, made, tmp_path):
    provenance = read_json(made["provenance"])
    figures = {
        name: (
            made["out_dir"] / "figures" / f"{name}.pdf",
            made["out_dir"] / "figures" / f"{name}.png",
        )
        for name in FIGURES
        if name not in ("learning_curves", "all_methods")
    }
    html, tex = render_report("imp_only", tables, figures, provenance, SETTINGS, tmp_path)
    assert html.read_text().count("Not configured") == 2
    assert re.search(r"all_methods</a>\s*\(not configured\)", html.read_text())
    assert "learning_curves.pdf" not in tex.read_text()
    assert tex.read_text().count("Not configured") == 2


def test_latex_escape_and_failed_compile_names_the_error(tmp_path):
    assert latex_escape("a_b 50% & #1 ±2 {x}") == r"a\_b 50\% \& \#1 \ensuremath{\pm}2 \{x\}"
    broken = tmp_path / "broken.tex"
    broken.write_text("\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}\n")
    with pytest.raises(LthError, match="Undefined control sequence"):
        compile_pdf(broken)
    assert not (tmp_path / "broken.pdf").exists()


def test_bad_style_settings_and_tables_raise_one_line_errors(tables, tmp_path):
    config = asdict(STYLE)
    assert style_from_config(config) == STYLE
    with pytest.raises(LthError, match="missing keys \\['dpi'\\]"):
        style_from_config({k: v for k, v in config.items() if k != "dpi"})
    with pytest.raises(LthError, match="spread"):
        FigureStyle(**{**config, "spread": "sem"})
    with pytest.raises(LthError, match="unknown palette 'nope'"):
        FigureStyle(**{**config, "palette": "nope"})
    paths = write_csvs(tables, tmp_path)
    tables.summary.drop(columns="collapsed").to_csv(paths["summary"], index=False)
    with pytest.raises(LthError, match="summary.csv: missing columns \\['collapsed'\\]"):
        read_tables(paths)
    tables.summary.to_csv(paths["summary"], index=False)
    tables.similarity.drop(columns="excess").to_csv(paths["similarity"], index=False)
    with pytest.raises(LthError, match="similarity.csv: missing columns \\['excess'\\]"):
        read_tables(paths)
    with pytest.raises(LthError, match="figure input_degree_maps reads the indegree table: "
                       "give --indegree"):
        check_tables_given(["accuracy_vs_density", "input_degree_maps"],
                           {k: v for k, v in paths.items() if k != "indegree"})
    with pytest.raises(LthError, match="missing keys \\['seeds'\\]"):
        render_report(
            "x",
            tables,
            {},
            {"code_version": "v", "style": config, "figures": {}},
            {k: v for k, v in SETTINGS.items() if k != "seeds"},
            tmp_path,
        )


def test_figure_verb_reads_the_similarity_table_only_when_given(tables, tmp_path, capsys):
    from lth.verbs.cli import main

    paths = write_csvs(tables, tmp_path)
    told = ["figure", "--experiment", "lenet_fmnist", "--name", "mask_overlap_heatmap",
            "--style", json.dumps(asdict(STYLE)), "--settings", json.dumps(SETTINGS),
            "--out-dir", str(tmp_path / "figures"),
            *(a for t in ("summary", "layers", "curves") for a in (f"--{t}", str(paths[t])))]
    assert main(told) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lth: error: figure mask_overlap_heatmap reads the similarity table: "
                   "give --similarity"]
    assert not (tmp_path / "figures").exists()
    assert main([*told, "--similarity", str(paths["similarity"])]) == 0
    record = find_record(tmp_path / "figures" / "mask_overlap_heatmap.png")
    assert [i["path"] for i in record["inputs"]] == [str(paths["summary"]),
                                                     str(paths["similarity"])]


def test_an_installed_wheel_renders_from_its_own_templates(tmp_path):
    """The templates are package data: a wheel built from the sources carries them, and the
    report's template environments, imported from that wheel's install, load them."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path,
                    source], capture_output=True, check=True)
    (wheel,) = tmp_path.glob("lth-*.whl")
    templates = {f"lth/report/templates/{t.name}" for t in
                 (resources.files("lth.report") / "templates").iterdir() if t.name.endswith(".j2")}
    assert templates == {"lth/report/templates/report.html.j2",
                         "lth/report/templates/report.tex.j2"}
    with zipfile.ZipFile(wheel) as archive:
        assert templates <= set(archive.namelist())
        archive.extractall(tmp_path / "site")
    probe = ("import lth; from lth.report.html import html_env; "
             "from lth.report.latex import latex_env; html_env().get_template('report.html.j2'); "
             "latex_env().get_template('report.tex.j2'); print(lth.__file__)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")})
    assert out.stdout.strip() == str(tmp_path / "site" / "lth" / "__init__.py")
