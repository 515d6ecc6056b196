"""Tables: the aggregate CSVs of one experiment, read and checked (summary, layers, curves;
similarity and indegree when a figure needs them), and the numbers the figures and the
report's tables show (means and spread over seeds, results, ShrinkBench-style summary, layer
collapse, method labels)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lth.core.io import LthError
from lth.plan.registry import group_names

# fmt: off
REQUIRED_COLUMNS = {
    "summary": (
        "experiment", "method", "family", "control", "seed", "level", "round", "density",
        "target_density", "percent_remaining", "compression", "macs", "dense_macs", "speedup",
        "collapsed", "final_test_accuracy", "final_train_accuracy", "early_stop_iteration",
        "early_stop_test_accuracy", "iterations", "weights_trained", "train_macs",
        "train_macs_dense", "find_macs", "total_macs", "total_macs_dense", "dense_trainings",
        "iterations_to_target",
    ),
    "layers": ("method", "seed", "level", "round", "density", "layer", "layer_density"),
    "curves": ("method", "seed", "level", "round", "density", "iteration", "split", "accuracy"),
    "similarity": (
        "view", "init", "seed_a", "method_a", "level_a", "density_a", "method_b", "level_b",
        "density_b", "layer", "jaccard", "expected_jaccard", "excess", "excess_sd",
        "score_spearman",
    ),
    "indegree": (
        "seed", "method", "level", "density", "layer", "kind", "channel", "row", "col",
        "in_degree",
    ),
}
# fmt: on
LEVEL_KEYS = ["family", "method", "level"]
ES_ACCURACY = "early_stop_test_accuracy"


@dataclass(frozen=True)
class ReportTables:
    """The aggregate tables of one experiment (see DESIGN: summary, layers, curves, and the
    similarity verb's similarity and indegree; None when not given)."""

    summary: pd.DataFrame
    layers: pd.DataFrame
    curves: pd.DataFrame
    similarity: pd.DataFrame | None = None
    indegree: pd.DataFrame | None = None


def _read_csv(name: str, path: str | os.PathLike) -> pd.DataFrame:
    """Read one aggregate CSV, checking its required columns and families."""
    try:
        df = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise LthError(f"{path}: cannot read {name} table ({err})") from None
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in df.columns]
    if missing:
        raise LthError(f"{path}: missing columns {missing}")
    if name == "summary" and not set(df["family"]).issubset(group_names()):
        raise LthError(f"{path}: family must be one of {group_names()}")
    return df


def read_tables(paths: dict[str, str | os.PathLike]) -> ReportTables:
    """Read and check the tables of paths (keys: summary, layers, curves, and optionally
    similarity, indegree)."""
    missing = [t for t in ("summary", "layers", "curves") if t not in paths]
    if missing:
        raise LthError(f"report tables: missing {missing}")
    return ReportTables(**{name: _read_csv(name, path) for name, path in paths.items()})


# ----------------------------------------------------------------------------- aggregation


def sorted_by_family(df: pd.DataFrame, then: list[str], ascending: list[bool]) -> pd.DataFrame:
    """Rows in the order of group_names(), then by the given columns."""
    keyed = df.assign(_family=df["family"].map(group_names().index))
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
    return sorted_by_family(stats, ["method", "percent"], [True, False])


def results_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Numbers behind the accuracy figures: per method and nominal level, mean percent
    remaining and its target, mean and sample std of test accuracy (%) at the early-stopping
    iteration and at the end of training, mean early-stop iteration and the number of networks
    (seeds, times reinit draws)."""
    scaled = summary.assign(
        es=100 * summary[ES_ACCURACY], final=100 * summary["final_test_accuracy"],
        target_percent=100 * summary["target_density"],
    )
    final = level_stats(scaled, "final", "std")
    early = mean_and_spread(scaled, LEVEL_KEYS, "es", "std").set_index(LEVEL_KEYS)
    per_level = scaled.groupby(LEVEL_KEYS, sort=False)
    stop = per_level[["early_stop_iteration", "target_percent"]].mean()
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
            "target_percent",
            "early_stop_accuracy_mean",
            "early_stop_accuracy_std",
            "final_accuracy_mean",
            "final_accuracy_std",
            "early_stop_iteration",
            "n_networks",
        ]
    ]


def short_of_target(results: pd.DataFrame, share: float = 0.5) -> pd.DataFrame:
    """The rows of results_table whose mean percent remaining is below `share` of their
    target."""
    return results[results["percent_remaining"] < share * results["target_percent"]]


def dense_accuracy(summary: pd.DataFrame) -> float:
    """Mean final test accuracy (%) of the dense network (imp round 0); NaN if not trained."""
    dense = summary[(summary["method"] == "imp") & (summary["round"] == 0)]
    return float(100 * dense["final_test_accuracy"].mean()) if len(dense) else math.nan


def shrinkbench_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method and level, as Blalock et al. (2020, Sec. 4) recommend reporting: density,
    compression ratio, theoretical speed-up (dense_macs/macs), accuracy (%) and its change
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
    return sorted_by_family(table, ["method", "density"], [True, False])[
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
    return sorted_by_family(table, ["method"], [True])


def methods_in_order(summary: pd.DataFrame, methods) -> list[str]:
    """The given methods in the report's order: by family (group_names()), then name."""
    pairs = summary.loc[summary["method"].isin(set(methods)), ["family", "method"]]
    return sorted_by_family(pairs.drop_duplicates("method"), ["method"], [True])["method"].tolist()


def method_labels(summary: pd.DataFrame) -> dict[str, str]:
    """How figures and tables name each method: its name, with "(untrained)" for a method
    whose weights are never trained (masks mined on frozen weights)."""
    trained = summary.groupby("method")["weights_trained"].any()
    return {m: m if t else f"{m} (untrained)" for m, t in trained.items()}
