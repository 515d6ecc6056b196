"""Aggregate the run.json and metrics.csv of every trained network of an experiment into
tidy tables: summary.csv (one row per network), layers.csv (one row per layer per network)
and curves.csv (every evaluation of every network)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lth.io import LthError, atomic_write_text, read_json, write_json
from lth.provenance import file_entry, make_record, sidecar_path

SUMMARY_COLUMNS = [
    "experiment", "dataset", "model", "method", "family", "seed", "draw", "level", "round",
    "target_density", "density", "percent_remaining", "compression", "params_kept",
    "params_total", "flops", "dense_flops", "speedup", "collapsed", "final_test_accuracy",
    "final_val_accuracy", "final_train_accuracy", "early_stop_iteration",
    "early_stop_test_accuracy", "iterations", "start_iteration", "budget_factor",
    "wall_seconds", "latency_seconds",
    "dense_latency_seconds", "run_dir",
]
RUN_KEYS = ["experiment", "method", "seed", "draw", "level", "round", "density"]


def summary_row(record: dict, run_dir: Path) -> dict:
    """The summary.csv row of one trained network."""
    res = record["result"]
    arch = record["architecture"]
    row = {k: res[k] for k in SUMMARY_COLUMNS if k in res}
    row.update(
        experiment=record["params"]["experiment"], seed=record["params"]["seed"],
        dataset=arch["dataset"], model=arch["model"], percent_remaining=100 * res["density"],
        compression=1 / res["density"] if res["density"] else float("inf"),
        speedup=res["dense_flops"] / res["flops"] if res["flops"] else float("inf"),
        run_dir=str(run_dir),
    )
    return row


def layer_rows(row: dict, record: dict) -> list[dict]:
    base = {k: row[k] for k in RUN_KEYS}
    return [dict(base, **layer, layer_density=layer["kept"] / layer["size"])
            for layer in record["result"]["layers"]]


def load_run(run_json: Path) -> tuple[dict, list[dict], pd.DataFrame]:
    """(summary row, layer rows, curve rows) of one run.json and its metrics.csv."""
    record = read_json(run_json)
    if "result" not in record:
        raise LthError(f"{run_json}: not a training run record")
    row = summary_row(record, run_json.parent)
    curves = pd.read_csv(run_json.parent / "metrics.csv")
    for k in RUN_KEYS:
        curves.insert(len(curves.columns) - 4, k, row[k])
    return row, layer_rows(row, record), curves


def write_csv(frame: pd.DataFrame, path: Path, inputs: list[Path], experiment: str,
              verb: str = "summarize") -> None:
    """Write a table atomically, with its provenance sidecar (the record of `verb`)."""
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    record = make_record(verb, {"experiment": experiment}, inputs)
    record["outputs"] = [file_entry(path)]
    write_json(sidecar_path(path), record)


def summarize(experiment: str, run_jsons: list[Path], out_dir: Path) -> None:
    """Write summary.csv, layers.csv and curves.csv of an experiment into out_dir."""
    rows, layers, curves = [], [], []
    for path in sorted(run_jsons):
        row, layer, curve = load_run(path)
        if row["experiment"] != experiment:
            raise LthError(f"{path}: belongs to experiment {row['experiment']!r}, "
                           f"not {experiment!r}")
        rows.append(row)
        layers += layer
        curves.append(curve)
    inputs = [p for run in sorted(run_jsons)
              for p in (run.parent / "final.safetensors", run.parent / "metrics.csv")]
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    summary = summary.sort_values(["method", "seed", "draw", "round", "density"],
                                  ascending=[True, True, True, True, False])
    write_csv(summary, out_dir / "summary.csv", inputs, experiment)
    write_csv(pd.DataFrame(layers), out_dir / "layers.csv", inputs, experiment)
    write_csv(pd.concat(curves, ignore_index=True), out_dir / "curves.csv", inputs, experiment)
