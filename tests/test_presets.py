"""Every preset of workflow/presets, sliced (tests/preset_slice.py), through the real Snakemake
DAG to its HTML report, on generated data in each dataset's real on-disk format.

The slow test (marked `presets`, run by `make test-presets`, not by `make test`) runs each
slice and checks, from summary.csv and the run.json files:
  - every method the full preset trains (its DAG planned by a dry run) has rows, at levels
    of the full preset's, and every network the slice planned has its row;
  - the networks learn: each dense network beats chance by half again, each method's best
    network beats chance;
  - the settings run.json records are the preset's: model, dataset and initialiser, and the
    schedule: the preset's optimiser settings, dropout and augmentation everywhere; the
    slice's schedule exactly for the dense network (IMP's round 0).
It prints each preset's wall time and job count (conftest.py, at the end of the session).
The fast tests check the slicer itself: it changes no key but those it is documented to.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from preset_slice import ITERATIONS, PRESETS, REPO, run_slice, slice_config, write_slice

sys.path.insert(0, str(REPO / "benchmarks"))
from preset_budget import planned_commands, verb_jobs  # noqa: E402

KEPT = ("optimizer", "momentum", "nesterov", "weight_decay", "gamma", "dropout", "augment",
        "init")
"""Schedule settings a slice keeps, recorded by every network (a fine-tuning changes the
learning rate and the length, never these)."""
SLICED = {"seeds", "val_size", "train.iterations", "train.milestones", "train.warmup",
          "train.batch_size", "train.eval_every", "train.train_eval_size", "imp.rounds",
          "engine.stack", "engine.slots",
          "imp.rewind_iteration", "controls.every", "resources.threads", "elastic.rounds",
          "earlybird.check_every", "finetune.iterations", "filters.iterations",
          "filters.latency_repeats", "filters.latency_batch_size", "supermask.iterations",
          "supermask.gem_miner.freeze_every", "supermask.edge_popup.freeze_every"}
"""The keys a slice may change (tests/preset_slice.py), besides density lists and scoring
iterations."""


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


# ---------------------------------------------------------------- the slicer


def flat(block: dict, prefix: str = "") -> dict[str, object]:
    """A nested config block as {dotted key: leaf value}."""
    out = {}
    for key, value in block.items():
        if isinstance(value, dict) and value:
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def is_sliceable(key: str) -> bool:
    return (key in SLICED or key.endswith(".densities")
            or re.fullmatch(r"\w+\.methods\.\w+\.iterations", key) is not None)


@pytest.mark.parametrize("preset", PRESETS, ids=ids(PRESETS))
def test_a_slice_changes_only_what_it_slices(preset):
    full = yaml.safe_load(preset.read_text())
    sliced = slice_config(full)
    assert sliced["experiments"].keys() == full["experiments"].keys()
    assert {k: v for k, v in sliced.items() if k != "experiments"} == {
        k: v for k, v in full.items() if k != "experiments"}
    for name, e in full["experiments"].items():
        before, after = flat(e), flat(sliced["experiments"][name])
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert {k for k in changed if not is_sliceable(k)} == set(), name
        s = after
        assert s["train.iterations"] == ITERATIONS and len(s["seeds"]) == 1
        milestones = s.get("train.milestones", [])
        assert milestones == sorted(set(milestones)) and all(0 < m < ITERATIONS for m in milestones)
        for key in ("imp.rewind_iteration", "train.warmup"):
            assert bool(before.get(key)) == bool(after.get(key)), (name, key)


def test_a_slice_scales_the_schedules_points_and_keeps_the_ends_of_density_lists():
    preset = {"experiments": {
        "src": {"train": {"iterations": 1000, "milestones": [500, 501, 750], "warmup": 10,
                          "batch_size": 128},
                "imp": {"rounds": 10, "rewind_iteration": 100},
                "at_init": {"densities": [0.5, 0.1, 0.01],
                            "methods": {"synflow": {"criterion": "synflow",
                                                    "iterations": 100}}},
                "earlybird": {"check_every": 50}},
        "dst": {"imp": {"rounds": 4},
                "elastic": {"source_experiment": "src", "rounds": [3, 6, 9]}}}}
    src, dst = (slice_config(preset)["experiments"][n] for n in ("src", "dst"))
    assert src["train"]["milestones"] == [15, 16, 22]
    assert (src["train"]["warmup"], src["imp"]["rewind_iteration"]) == (1, 3)
    assert src["train"]["batch_size"] == 16
    assert src["at_init"]["densities"] == [0.5, 0.01]
    assert src["at_init"]["methods"]["synflow"]["iterations"] == 10
    assert src["earlybird"]["check_every"] == 2
    assert (src["imp"]["rounds"], dst["imp"]["rounds"], dst["elastic"]["rounds"]) == (3, 1, [3])
    assert preset["experiments"]["src"]["imp"]["rounds"] == 10  # the preset is left alone


# ---------------------------------------------------------------- the slices, end to end


def planned_networks(commands: list[str]) -> set[tuple[str, int, str, str]]:
    """(experiment, seed, method, level) of every network the training jobs train."""
    return {(job["experiment"], m["seed"], m["method"], m["level"])
            for command in commands for verb, job in verb_jobs(command) if verb == "train"
            for m in job["members"]}


def methods_and_levels(networks) -> dict[tuple[str, str], set[str]]:
    """{(experiment, method): levels}."""
    out: dict[tuple[str, str], set[str]] = {}
    for experiment, _seed, method, level in networks:
        out.setdefault((experiment, method), set()).add(level)
    return out


def shell_commands(said: str) -> list[str]:
    """The `python -m lth` argument strings of the jobs a run printed (-p)."""
    marker = "python -m lth "
    return [line.split(marker, 1)[1] for line in said.splitlines()
            if line.lstrip().startswith("Shell command: " + marker)]


def summary_of(workdir: Path, experiments: dict) -> pd.DataFrame:
    return pd.concat([pd.read_csv(workdir / f"results/{name}/summary.csv")
                      for name in experiments], ignore_index=True)


def assert_every_method_and_level(summary: pd.DataFrame, preset: Path, said: str) -> None:
    """The slice trains every method of the full preset at levels of the full preset's (a
    control thinned to every k-th round, controls.every, may train at another of IMP's
    rounds: the slice keeps one), and every network the slice planned has its row."""
    full = methods_and_levels(planned_networks(planned_commands(preset)))
    planned = planned_networks(shell_commands(said))
    rows = set(zip(summary.experiment, summary.seed, summary.method, summary.level,
                   strict=True))
    assert rows == planned
    ran = methods_and_levels(rows)
    assert ran.keys() == full.keys()
    for (experiment, method), levels in ran.items():
        assert levels <= full[experiment, method] | full.get((experiment, "imp"), set()), (
            experiment, method)


def assert_learned(summary: pd.DataFrame, classes: dict[str, int], workdir: Path) -> None:
    """Every dense network beats chance by half again, and every network trained: its test
    loss is finite at every evaluation and moved from the first. A pruned network need not
    beat chance in a slice: 30 steps of a pruned VGG-19 at lr 0.1 from a Glorot init learn
    little, and one reinit network scored 8% on 100 test images (chance 10%) in a CI run."""
    chance = summary.dataset.map(lambda d: 1 / classes[d])
    dense = summary.level == "round0"
    learned = summary.final_test_accuracy > 1.5 * chance
    assert learned[dense].all(), summary[dense & ~learned][["experiment", "final_test_accuracy"]]
    for run_dir in summary.run_dir:
        metrics = pd.read_csv(workdir / run_dir / "metrics.csv")
        loss = metrics.loc[metrics.split == "test", "loss"]
        assert len(loss) > 1 and loss.map(math.isfinite).all(), (run_dir, loss.tolist())
        assert loss.iloc[-1] != loss.iloc[0], (run_dir, loss.tolist())


def assert_settings_recorded(workdir: Path, preset: dict, sliced: dict) -> None:
    """Every run.json records the preset's model, dataset and initialiser and the preset's
    KEPT schedule settings; the dense network records the slice's whole schedule."""
    for name, e in sliced["experiments"].items():
        full = preset["experiments"][name]
        for path in sorted((workdir / "results" / name).glob("seed*/*/*/run.json")):
            run = json.loads(path.read_text())
            arch = run["architecture"]
            assert (arch["model"], arch["dataset"]) == (full["model"], full["dataset"]), path
            if "init" in full["train"]:
                assert arch["init"] == full["train"]["init"], path
            schedule = run["params"].get("schedule")
            if schedule is None:
                continue
            for key in KEPT:
                if key in full["train"]:
                    assert schedule[key] == full["train"][key], (path, key)
            if path.parent.name == "round0":
                for key, value in e["train"].items():
                    assert schedule[key] == value, (path, key)


@pytest.mark.presets
@pytest.mark.parametrize("preset", PRESETS, ids=ids(PRESETS))
def test_a_presets_slice_runs_to_its_report(preset, tmp_path, record_property):
    from lth.plan.catalog import DATASETS

    config = write_slice(preset, tmp_path)
    ran = run_slice(config, tmp_path, "-p")
    record_property("slice", ran.line())
    sliced = yaml.safe_load(config.read_text())
    for name in sliced["experiments"]:
        assert (tmp_path / f"reports/{name}/report.html").stat().st_size > 0
    summary = summary_of(tmp_path, sliced["experiments"])
    assert_every_method_and_level(summary, preset, ran.said)
    assert_learned(summary, {name: info.num_classes for name, info in DATASETS.items()},
                   tmp_path)
    assert_settings_recorded(tmp_path, yaml.safe_load(preset.read_text()), sliced)
