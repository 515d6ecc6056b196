"""Aggregate the run.json and metrics.csv of every trained network of an experiment into
tidy tables: summary.csv (one row per network, with its compute cost: lth.analysis.cost), layers.csv
(one row per layer per network) and curves.csv (every evaluation of every network)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lth.analysis.cost import (
    Lineages,
    iterations_to_target,
    macs_to_target,
    record_costs,
)
from lth.analysis.dense import DENSE_RUN
from lth.core.io import LthError, atomic_write_text, read_json, write_json
from lth.core.provenance import file_entry, make_record, sidecar_path
from lth.plan.registry import is_control

SUMMARY_COLUMNS = [
    "experiment", "dataset", "model", "method", "family", "control", "seed", "draw", "level",
    "round", "target_density", "density", "percent_remaining", "compression", "params_kept",
    "params_total", "macs", "dense_macs", "speedup", "collapsed", "final_test_accuracy",
    "final_val_accuracy", "final_train_accuracy", "early_stop_iteration",
    "early_stop_test_accuracy", "iterations", "start_iteration", "budget_factor",
    "weights_trained", "train_macs", "train_macs_dense", "find_macs", "find_macs_dense",
    "total_macs", "total_macs_dense", "dense_trainings", "iterations_to_target",
    "macs_to_target", "wall_seconds", "latency_seconds", "dense_latency_seconds", "run_dir",
]
RUN_KEYS = ["experiment", "method", "seed", "draw", "level", "round", "density"]


def summary_row(record: dict, run_dir: Path) -> dict:
    """The summary.csv row of one trained network (its cost columns aside)."""
    res = record["result"]
    arch = record["architecture"]
    row = {k: res[k] for k in SUMMARY_COLUMNS if k in res}
    row.update(
        experiment=record["params"]["experiment"], seed=record["params"]["seed"],
        dataset=arch["dataset"], model=arch["model"], percent_remaining=100 * res["density"],
        compression=1 / res["density"] if res["density"] else float("inf"),
        speedup=res["dense_macs"] / res["macs"] if res["macs"] else float("inf"),
        weights_trained=res.get("weights_trained", True), control=is_control(res["method"]),
        run_dir=str(run_dir),
    )
    return row


def layer_rows(row: dict, record: dict) -> list[dict]:
    base = {k: row[k] for k in RUN_KEYS}
    return [dict(base, **layer, layer_density=layer["kept"] / layer["size"])
            for layer in record["result"]["layers"]]


def load_run(run_json: Path, experiment: str,
             lineages: Lineages) -> tuple[dict, list[dict], pd.DataFrame]:
    """(summary row with its cost, layer rows, curve rows) of one run.json of `experiment`
    and its metrics.csv; `lineages` memoises the provenance walk across the runs."""
    record = read_json(run_json)
    if "result" not in record:
        raise LthError(f"{run_json}: not a training run record")
    row = summary_row(record, run_json.parent)
    if row["experiment"] != experiment:
        raise LthError(f"{run_json}: belongs to experiment {row['experiment']!r}, "
                       f"not {experiment!r}")
    row.update(record_costs(record, run_json, lineages))
    curves = pd.read_csv(run_json.parent / "metrics.csv")
    for k in RUN_KEYS:
        curves.insert(len(curves.columns) - 4, k, row[k])
    return row, layer_rows(row, record), curves


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; NaN when the denominator is 0 (nothing recorded)."""
    return numerator / denominator if denominator else math.nan


def target_columns(row: dict, curve: pd.DataFrame, dense: tuple[dict, pd.DataFrame] | None,
                   target_fraction: float) -> dict:
    """dense_trainings, iterations_to_target and macs_to_target of one run against its seed's
    dense run (row, curve); NaN without one. The target is target_fraction of the dense
    run's best validation accuracy."""
    if dense is None:
        return dict.fromkeys(("dense_trainings", "iterations_to_target", "macs_to_target"),
                             math.nan)
    dense_row, dense_curve = dense
    best = dense_curve.loc[dense_curve["split"] == "val", "accuracy"].max()
    reached = iterations_to_target(curve, target_fraction * best)
    return {
        "dense_trainings": ratio(row["total_macs_dense"], dense_row["train_macs_dense"]),
        "iterations_to_target": reached,
        "macs_to_target": macs_to_target(row["find_macs"], row["train_macs"], row["iterations"],
                                         row["start_iteration"], reached),
    }


def add_target_columns(rows: list[dict], curves: list[pd.DataFrame],
                       target_fraction: float) -> None:
    """Add each run's columns measured against its seed's dense run (DENSE_RUN)."""
    dense = {row["seed"]: (row, curve) for row, curve in zip(rows, curves, strict=True)
             if (row["method"], row["level"]) == DENSE_RUN}
    for row, curve in zip(rows, curves, strict=True):
        row.update(target_columns(row, curve, dense.get(row["seed"]), target_fraction))


def write_csv(frame: pd.DataFrame, path: Path, inputs: list[Path], experiment: str,
              verb: str = "summarize", params: dict | None = None, argv=()) -> None:
    """Write a table atomically, with its provenance sidecar (the record of `verb`, whose
    parameters are the experiment and `params`)."""
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    record = make_record(verb, {"experiment": experiment, **(params or {})}, inputs, argv=argv)
    record["outputs"] = [file_entry(path)]
    write_json(sidecar_path(path), record)


def summarize(experiment: str, run_jsons: list[Path], out_dir: Path,
              target_fraction: float, argv=()) -> None:
    """Write summary.csv, layers.csv and curves.csv of an experiment into out_dir; the
    iterations to target use target_fraction (the config's cost.target_fraction) of each seed's
    best dense validation accuracy."""
    if not 0 < target_fraction <= 1:
        raise LthError(f"--target-fraction {target_fraction}: expected a fraction in (0, 1]")
    rows, layers, curves, lineages = [], [], [], {}
    for path in sorted(run_jsons):
        row, layer, curve = load_run(path, experiment, lineages)
        rows.append(row)
        layers += layer
        curves.append(curve)
    add_target_columns(rows, curves, target_fraction)
    inputs = [p for run in sorted(run_jsons)
              for p in (run.parent / "final.safetensors", run.parent / "metrics.csv")]
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    summary = summary.sort_values(["method", "seed", "draw", "round", "density"],
                                  ascending=[True, True, True, True, False])
    told = {"params": {"target_fraction": target_fraction}, "argv": argv}
    write_csv(summary, out_dir / "summary.csv", inputs, experiment, **told)
    write_csv(pd.DataFrame(layers), out_dir / "layers.csv", inputs, experiment, **told)
    write_csv(pd.concat(curves, ignore_index=True), out_dir / "curves.csv", inputs, experiment,
              **told)
