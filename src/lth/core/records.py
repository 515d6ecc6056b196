"""What a network's run records: its level, its own job and argv (one member of its cohort),
its density and cost accounting (network_facts, training_macs), and its run folder
(safetensors files, metrics.csv, then run.json)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

from lth.core import masks as M
from lth.core.io import LthError, atomic_write_text, save_tensors, write_json
from lth.core.networks import input_reaches_output
from lth.core.provenance import file_entry
from lth.plan.spec import to_json

LEVEL_PATTERN = re.compile(
    r"^(round(?P<round>\d+)|density(?P<density>[0-9.]+)|(?P<structure>[a-z][a-z0-9_]*))$"
)


def parse_level(level: str) -> tuple[int, float | None]:
    """(round, target density) of a level name: round<R> -> (R, None), density<D> -> (-1, D),
    a structure name (filter pruning) -> (-1, None)."""
    match = LEVEL_PATTERN.match(level)
    if match is None:
        raise LthError(f"--level {level!r}: expected round<R>, density<D> or a structure name")
    if match["round"] is not None:
        return int(match["round"]), None
    return -1, float(match["density"]) if match["density"] else None


def one_member(job, member):
    """The job with this member only: what one network's record holds and its argv reruns
    (its files do not change when other members join or leave the job)."""
    return dataclasses.replace(job, members=(member,))


def rerun_argv(verb: str, job) -> list[str]:
    """The arguments of `lth <verb>` that run `job` again."""
    return [verb, "--job", to_json(job)]


def network_facts(model, arch: dict, mask: M.Mask,
                  counted_kinds: tuple[str, ...] | None = None) -> dict:
    """Density, per-layer counts, FLOPs and collapse (no input-output path) of a network.

    params_kept/params_total (and so density) count the layers of `counted_kinds` (None:
    every prunable layer): the weights a method prunes, e.g. not the shortcuts Frankle &
    Carbin 2019 leave whole. params_kept_all/params_total_all count every prunable layer.
    """
    from lth.core.models import layer_kinds

    shape = tuple(arch["input_shape"])
    kinds = layer_kinds(model)
    counted = [n for n in mask if counted_kinds is None or kinds[n] in counted_kinds]
    if not counted:
        raise LthError(f"counted_kinds {list(counted_kinds)}: the model has no layer of these "
                       f"kinds (it has {sorted(set(kinds.values()))})")
    kept_all, total_all = M.counts(mask)
    kept, total = M.counts({n: mask[n] for n in counted})
    facts = {
        "params_kept": kept, "params_total": total,
        "params_kept_all": kept_all, "params_total_all": total_all,
        "macs": M.macs(model, shape, mask), "dense_macs": M.macs(model, shape),
        "collapsed": not input_reaches_output(model, mask, list(mask), shape),
        "layers": [{"layer": n, "kind": kinds[n], "kept": int(m.sum()), "size": m.numel()}
                   for n, m in mask.items()],
    }
    unpruned = arch.get("unpruned", {})  # a smaller dense network counts against its parent
    facts.update(unpruned)
    facts["params_total_all"] = unpruned.get("params_total", total_all)
    facts["density"] = facts["params_kept"] / facts["params_total"]
    return facts


def training_macs(iterations: int, batch_size: int, facts: dict) -> dict:
    """Multiply-accumulates of training a network: forward, backward to the inputs and to
    the weights, about 3 forwards per example (Evci et al. 2020, App.), counted on the kept
    weights (sparse) and as a dense network would (dense)."""
    return {view: 3 * iterations * batch_size * facts[key]
            for view, key in (("sparse", "macs"), ("dense", "dense_macs"))}


def metrics_csv(rows: list[dict]) -> str:
    """metrics.csv of a run: one row per (iteration, split) evaluation."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["iteration", "split", "loss", "accuracy"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_run(out: Path, record: dict, tensors: dict, result, fields: dict,
              timings: dict, stops_early: bool = True, cohort: dict | None = None) -> None:
    """A network's run folder: its safetensors files and metrics.csv, then run.json (written
    last) with the record, the outputs' hashes and the results (early stop, accuracies).
    stops_early False (a mined mask): the early-stop figures are the final ones, since only
    the final mask is saved (a mining method's earlier masks need not be at the target density)."""
    from lth.core.train import early_stop

    outputs = []
    for name, values in tensors.items():
        outputs.append(out / name)
        save_tensors(outputs[-1], values, record)
    outputs.append(out / "metrics.csv")
    atomic_write_text(outputs[-1], metrics_csv(result.metrics))
    last = max(r["iteration"] for r in result.metrics)
    final = {r["split"]: r["accuracy"] for r in result.metrics if r["iteration"] == last}
    es_iter, es_acc = early_stop(result.metrics) if stops_early else (last, final["test"])
    record["outputs"] = [file_entry(x) for x in outputs]
    record["timings"] = timings
    if cohort is not None:
        record["cohort"] = cohort
    record["result"] = dict(
        fields, round=parse_level(fields["level"])[0], early_stop_iteration=es_iter,
        early_stop_test_accuracy=es_acc, final_test_accuracy=final["test"],
        final_val_accuracy=final["val"], final_train_accuracy=final["train"],
        wall_seconds=result.wall_seconds,
    )
    write_json(out / "run.json", record)
