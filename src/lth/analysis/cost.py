"""The compute every network cost, from the provenance records of the files that made it
(METHODS §7).

Each verb records the multiply-accumulates of its own work as `"macs": {"sparse", "dense"}`
(1 MAC = 2 FLOPs; sparse counts the kept weights only, dense the same work on the dense
network; records without the entry, such as init's, count 0; null, unknown, makes the
network's sums unknown: NaN, an empty cell of summary.csv). A network's cost is its own
training (train_macs) plus everything needed to produce its starting weights and its mask
(find_macs): every unique record in the lineage of its inputs, IMP's earlier rounds
included, followed through safetensors headers and run.json files down to the dataset files.
Only headers are read, never tensors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lth.core.io import LthError
from lth.core.provenance import find_manifest, find_record

RecordKey = tuple[str, str]
Lineages = dict[str, dict[RecordKey, dict]]
"""Memo of the walk, per resolved path: the unique records that made the file."""

def record_macs(record: dict) -> tuple[float, float]:
    """(sparse, dense) MACs of the work of one verb call; (0, 0) when it recorded none; NaN
    when it recorded them as unknown (null: a plug-in criterion that declares no cost), so
    every sum they enter is unknown too, never counted as 0."""
    macs = record.get("macs") or {}
    return tuple(math.nan if macs.get(view, 0) is None else int(macs.get(view, 0))
                 for view in ("sparse", "dense"))


def record_key(record: dict) -> RecordKey:
    """What identifies one verb call: its verb and its parameters (the same training's record
    sits in its final, mask and rewind files and its run.json)."""
    return record["verb"], json.dumps(record.get("params", {}), sort_keys=True)


def file_lineage(path: Path, cache: Lineages) -> dict[RecordKey, dict]:
    """The unique records that made `path`: its own and, recursively, its inputs'. A dataset
    file has none and ends the walk; any other file without a record is an error."""
    key = str(path.resolve())
    if key in cache:
        return cache[key]
    if not path.is_file():
        raise LthError(f"{path}: file not found")
    cache[key] = found = {}  # filled below; a file listed among its own ancestors ends here
    record = find_record(path)
    if record is None:
        if find_manifest(path) is None:
            raise LthError(f"{path}: no provenance record and not a dataset file, so the "
                           "compute that made it is unknown")
        return found
    found[record_key(record)] = record
    for entry in record.get("inputs", []):
        found.update(file_lineage(Path(entry["path"]), cache))
    return found


def lineage_records(paths: Iterable[str | Path], cache: Lineages | None = None) -> list[dict]:
    """Every unique provenance record in the ancestry of the given files, theirs included.
    Pass one `cache` to every call of an experiment: each file is read once."""
    cache = {} if cache is None else cache
    unique: dict[RecordKey, dict] = {}
    for path in paths:
        unique.update(file_lineage(Path(path), cache))
    return list(unique.values())


def record_costs(record: dict, run_json: str | Path, cache: Lineages | None = None) -> dict:
    """train_macs(_dense) of a run (its own record, read from `run_json`), find_macs(_dense)
    (the unique records in the lineage of its inputs, its own excluded) and
    total_macs(_dense)."""
    try:
        ancestors = lineage_records([e["path"] for e in record.get("inputs", [])], cache)
    except LthError as err:
        raise LthError(f"{run_json}: {err}") from None
    own = record_key(record)
    found = [record_macs(r) for r in ancestors if record_key(r) != own]
    train, train_dense = record_macs(record)
    find, find_dense = sum(s for s, _ in found), sum(d for _, d in found)
    return {"train_macs": train, "train_macs_dense": train_dense, "find_macs": find,
            "find_macs_dense": find_dense, "total_macs": find + train,
            "total_macs_dense": find_dense + train_dense}


def iterations_to_target(curve_rows, target: float) -> float:
    """The first iteration whose validation accuracy reaches `target` (rows with iteration,
    split and accuracy, as metrics.csv); NaN when none does."""
    curve = pd.DataFrame(curve_rows)
    val = curve[curve["split"] == "val"].sort_values("iteration")
    reached = val.loc[val["accuracy"] >= target, "iteration"]
    return float(reached.iloc[0]) if len(reached) else math.nan


def macs_to_target(find_macs: float, train_macs: float, iterations: int, start_iteration: int,
                   reached_at: float) -> float:
    """The MACs spent until the target is reached at iteration `reached_at`: the finding plus
    the share of the training done by then; NaN when it never is. A network with nothing
    left to train (a ticket drawn at the end of training, resumed there) costs its finding."""
    if math.isnan(reached_at):
        return math.nan
    if iterations == start_iteration:
        return find_macs
    share = (reached_at - start_iteration) / (iterations - start_iteration)
    return find_macs + share * train_macs


def pareto_front(points) -> np.ndarray:
    """Which (cost, accuracy) points no other point dominates (no more cost and no less
    accuracy, better in one); equal points are all kept, points with NaN never are."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    cost, acc = pts[:, 0], pts[:, 1]
    no_worse = (cost[:, None] <= cost[None, :]) & (acc[:, None] >= acc[None, :])
    better = (cost[:, None] < cost[None, :]) | (acc[:, None] > acc[None, :])
    dominated = (no_worse & better).any(axis=0)
    return ~np.isnan(pts).any(axis=1) & ~dominated
