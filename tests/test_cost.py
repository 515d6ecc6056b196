"""Compute accounting (lth.analysis.cost, METHODS §7) and the cost columns of summary.csv.

Two experiments on real files. `chain` is LeNet-300-100's IMP at the quick schedule (500
iterations of batch 60, 13 rounds) with controls, written with lth's own writers
(save_tensors, make_record, network_facts) and records shaped as the verbs write them, their
"macs" computed here by hand: the walk follows the real files, and the numbers are METHODS
§7.3's table. `verbs` runs the real `python -m lth` verbs (init, train, prune, summarize) on
a small generated dataset: the records the verbs write feed the same accounting.
"""

import functools
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_cli import lth, member, prepared_lab, prune_job, train_job

from lth.analysis.cost import (
    iterations_to_target,
    lineage_records,
    macs_to_target,
    pareto_front,
    record_costs,
    record_macs,
)
from lth.analysis.summary import summarize
from lth.core import masks as M
from lth.core.io import LthError, read_json, save_tensors, write_json
from lth.core.models import build_model
from lth.core.networks import build
from lth.core.provenance import file_entry, make_record
from lth.core.records import network_facts
from lth.plan.catalog import round_half_up
from lth.plan.registry import is_control
from lth.plan.spec import Rates

T, B, ROUNDS = 500, 60, 13
DENSE_F = 266_200
ARCH = {"dataset": "mnist", "model": "lenet300_100", "input_shape": [1, 28, 28],
        "num_classes": 10, "init": "glorot"}
RATES = {"fc1.weight": 0.2, "fc2.weight": 0.2, "output.weight": 0.1}
# METHODS §7.3: round -> (f, train MACs, cumulative MACs, cumulative / one dense training)
TABLE = {0: (266_200, 23_958_000_000, 23_958_000_000, 1.00),
         1: (213_060, 19_175_400_000, 43_133_400_000, 1.80),
         4: (109_282, 9_835_380_000, 80_603_190_000, 3.36),
         7: (56_094, 5_048_460_000, 99_830_340_000, 4.17),
         13: (14_834, 1_335_060_000, 114_784_740_000, 4.79)}
DENSE_VAL = [0.1, 0.6, 0.9, 0.97, 0.98, 0.96]  # best 0.98: 0.99 x best = 0.9702, first at 400
TICKET_VAL = [0.1, 0.7, 0.975, 0.99, 0.99, 0.99]  # 0.9702 first reached at 200
CONTROL_VAL = [0.1, 0.5, 0.6, 0.7, 0.8, 0.9]  # never 0.9702; 0.9 x 0.98 = 0.882 at 500


def run_costs(run_json: str | Path, cache=None) -> dict:
    """record_costs of the run whose run.json this is."""
    return record_costs(read_json(run_json), run_json, cache)


def run_dir(method: str, r: int) -> str:
    return f"results/e/seed0/{method}/round{r}"


def kept_weights(mask: M.Mask) -> int:
    """An MLP's MACs per example under a mask: its kept weights."""
    return sum(int(m.sum()) for m in mask.values())


def write_metrics(folder: Path, val: list[float]) -> None:
    rows = [{"iteration": 100 * i, "split": s, "loss": 1.0, "accuracy": a}
            for i, a in enumerate(val) for s in ("val", "test")]
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)


@functools.cache
def chain_weights() -> torch.nn.Module:
    """LeNet-300-100's weights, standing in for every network of `chain` (only the headers
    of its files are read)."""
    return build(ARCH, torch.Generator().manual_seed(0), 0.0, None)


def write_training(out: str, init: str, mask_path: str | None, mask: M.Mask, *, method: str,
                   level: str, val: list[float], save_at: int | None = None,
                   fresh_init: str | None = None, start: int = 0) -> None:
    """A run folder as `lth train` writes it: final (and mask, rewind) safetensors carrying
    the train record, metrics.csv, run.json; "macs" = 3 x iterations x batch x f."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    member_ = {"seed": 0, "method": method, "level": level, "init": init, "mask": mask_path,
               "out_dir": out, "save_at": save_at, "fresh_init": fresh_init,
               "start_iteration": start}
    inputs = [p for p in (init, mask_path) if p] + ["data/tensors.safetensors"]
    record = make_record("train", {"experiment": "e", "seed": 0, "members": [member_],
                                   "schedule": {"iterations": T, "batch_size": B}}, inputs,
                         argv=[])
    record["architecture"] = ARCH
    record["macs"] = {"sparse": 3 * (T - start) * B * kept_weights(mask),
                      "dense": 3 * (T - start) * B * DENSE_F}
    tensors = {"final.safetensors": chain_weights().state_dict()}
    if mask_path is None:
        tensors["mask.safetensors"] = mask
    if save_at is not None:
        tensors["rewind.safetensors"] = chain_weights().state_dict()
    for name, values in tensors.items():
        save_tensors(folder / name, values, record)
    write_metrics(folder, val)
    record["outputs"] = [file_entry(folder / n) for n in (*tensors, "metrics.csv")]
    record["result"] = dict(
        network_facts(chain_weights(), ARCH, mask), method=method,
        family="control" if is_control(method) else "lottery", level=level,
        round=int(level.removeprefix("round")), target_density=1.0, iterations=T,
        start_iteration=start, draw=0, budget_factor=1.0, early_stop_iteration=T,
        early_stop_test_accuracy=val[-1], final_test_accuracy=val[-1],
        final_val_accuracy=val[-1], final_train_accuracy=val[-1], wall_seconds=1.0)
    write_json(folder / "run.json", record)


def write_prune(out: str, tensors: M.Mask, work: int = 0, **job) -> None:
    """A mask as `lth prune` writes it: the prune record (its scoring MACs) in the header."""
    inputs = [job[k] for k in ("weights", "mask", "match_counts") if job.get(k)]
    record = make_record("prune", {"experiment": "e", "seed": 0, **job}, inputs, argv=[])
    record["architecture"] = ARCH
    record["macs"] = {"sparse": work, "dense": work}
    save_tensors(out, tensors, record)


def imp_masks() -> list[M.Mask]:
    """IMP's layerwise masks of rounds 0..13 counted by hand: each round removes
    round_half_up(rate x alive) of a layer's alive weights; kept: the first ones (nested)."""
    sizes = {n: p.shape for n, p in chain_weights().named_parameters() if n in RATES}
    alive = {n: shape.numel() for n, shape in sizes.items()}
    masks = []
    for _ in range(ROUNDS + 1):
        masks.append({n: (torch.arange(shape.numel()) < alive[n]).view(shape)
                      for n, shape in sizes.items()})
        alive = {n: k - round_half_up(RATES[n] * k) for n, k in alive.items()}
    return masks


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Dataset files, theta_0, IMP rounds 0..13 (rewinding to round 0's rewind file), and at
    round 4 the reinit and random-pruning controls and a SNIP ticket; the IMP masks."""
    root = tmp_path_factory.mktemp("chain")
    previous = os.getcwd()
    os.chdir(root)
    Path("data").mkdir()
    write_json("data/manifest.json", {"dataset": "mnist", "files": {}})
    save_tensors("data/tensors.safetensors", {"train_x": torch.zeros(2, 1, 28, 28)})
    init = "results/e/seed0/init.safetensors"
    record = make_record("init", {"experiment": "e", "seed": 0, "purpose": "init"},
                         ["data/manifest.json"], argv=[])
    save_tensors(init, chain_weights().state_dict(), dict(record, architecture=ARCH))
    masks = imp_masks()
    write_training(run_dir("imp", 0), init, None, masks[0], method="imp", level="round0",
                   val=DENSE_VAL, save_at=0)
    rewind = f"{run_dir('imp', 0)}/rewind.safetensors"
    for r in range(1, ROUNDS + 1):
        mask_path = f"{run_dir('imp', r)}/mask.safetensors"
        Path(run_dir("imp", r)).mkdir(parents=True)
        write_prune(mask_path, masks[r], weights=f"{run_dir('imp', r - 1)}/final.safetensors",
                    mask=f"{run_dir('imp', r - 1)}/mask.safetensors", criterion="magnitude",
                    rates=RATES, purpose=f"imp/round{r}")
        write_training(run_dir("imp", r), rewind, mask_path, masks[r], method="imp",
                       level=f"round{r}", val=TICKET_VAL)
    imp4 = f"{run_dir('imp', 4)}/mask.safetensors"
    write_training(run_dir("reinit", 4), init, imp4, masks[4], method="reinit",
                   level="round4", val=CONTROL_VAL, fresh_init="reinit/round4")
    random4 = f"{run_dir('random_pruning', 4)}/mask.safetensors"
    Path(run_dir("random_pruning", 4)).mkdir(parents=True)
    random_mask = {n: m.flip(-1) for n, m in masks[4].items()}  # the same counts elsewhere
    write_prune(random4, random_mask, weights=rewind, match_counts=imp4, criterion="random",
                purpose="random_pruning/round4")
    write_training(run_dir("random_pruning", 4), rewind, random4, random_mask,
                   method="random_pruning", level="round4", val=CONTROL_VAL)
    snip = f"{run_dir('snip', 4)}/mask.safetensors"
    Path(run_dir("snip", 4)).mkdir(parents=True)
    write_prune(snip, masks[4], work=3 * B * DENSE_F, weights=init, criterion="snip",
                purpose="snip/round4")
    write_training(run_dir("snip", 4), init, snip, masks[4], method="snip", level="round4",
                   val=CONTROL_VAL)
    yield root, masks
    os.chdir(previous)


def costs(method: str, r: int) -> dict:
    return run_costs(f"{run_dir(method, r)}/run.json")


def test_lenet_dense_forward_is_266200_macs_and_a_masked_one_its_kept_weights(chain):
    _, masks = chain
    model = build_model("lenet300_100", (1, 28, 28), 10, torch.Generator().manual_seed(0), 0.0)
    assert M.macs(model, (1, 28, 28)) == DENSE_F == 784 * 300 + 300 * 100 + 100 * 10
    assert [M.macs(model, (1, 28, 28), masks[r]) for r in TABLE] == [f for f, *_ in
                                                                      TABLE.values()]
    assert M.macs(model, (1, 28, 28), masks[5]) == kept_weights(masks[5]) == 87_490


def test_imp_cumulative_cost_is_the_methods_table(chain):
    for r, (_, train, cumulative, trainings) in TABLE.items():
        cost = costs("imp", r)
        assert (cost["train_macs"], cost["total_macs"]) == (train, cumulative)
        assert round(cost["total_macs"] / TABLE[0][1], 2) == trainings
        assert (cost["train_macs_dense"], cost["total_macs_dense"]) == (
            TABLE[0][1], (r + 1) * TABLE[0][1])  # the epoch view: r + 1 dense trainings


def test_imp_round_r_finds_with_every_earlier_round_and_stays_under_5_02_trainings(chain):
    trained = [costs("imp", r)["train_macs"] for r in range(ROUNDS + 1)]
    for r in range(ROUNDS + 1):
        cost = costs("imp", r)
        assert cost["find_macs"] == sum(trained[:r])  # pruning by magnitude costs 0
        assert cost["total_macs"] == cost["find_macs"] + cost["train_macs"]
        assert cost["total_macs"] / trained[0] < 5.02


def test_a_training_reached_through_its_final_rewind_and_mask_files_counts_once(chain):
    files = [f"{run_dir('imp', 0)}/{n}.safetensors" for n in ("final", "rewind", "mask")]
    records = lineage_records(files)
    assert sorted(r["verb"] for r in records) == ["init", "train"]
    assert sum(record_macs(r)[0] for r in records) == TABLE[0][1]
    # round 1 reaches round 0's record three times: rewind (init), final and mask (prune)
    assert costs("imp", 1)["find_macs"] == TABLE[0][1]


def test_controls_cost_what_imp_paid_for_their_mask(chain):
    imp = costs("imp", 4)
    for method in ("reinit", "random_pruning"):
        cost = costs(method, 4)
        assert (cost["find_macs"], cost["find_macs_dense"]) == (imp["find_macs"],
                                                               imp["find_macs_dense"])
        assert cost["train_macs"] == imp["train_macs"] == TABLE[4][1]
    snip = costs("snip", 4)
    assert (snip["find_macs"], snip["train_macs"]) == (3 * B * DENSE_F, TABLE[4][1])


def test_one_cache_reads_each_file_once_and_gives_the_same_costs(chain):
    cache = {}
    shared = [run_costs(f"{run_dir('imp', r)}/run.json", cache) for r in range(ROUNDS + 1)]
    assert shared == [costs("imp", r) for r in range(ROUNDS + 1)]
    walked = {Path(k).relative_to(Path.cwd().resolve()).as_posix() for k in cache}
    assert f"{run_dir('imp', 0)}/rewind.safetensors" in walked
    assert "data/manifest.json" in walked and len(walked) == len(cache)


def test_summary_has_the_cost_and_target_columns(chain, tmp_path):
    runs = sorted(Path("results/e").glob("seed0/*/round*/run.json"))
    summarize("e", runs, tmp_path, target_fraction=0.99)
    table = pd.read_csv(tmp_path / "summary.csv").set_index(["method", "round"])
    imp4, dense = table.loc[("imp", 4)], table.loc[("imp", 0)]
    assert (imp4["macs"], imp4["dense_macs"]) == (TABLE[4][0], DENSE_F)
    assert imp4["speedup"] == pytest.approx(DENSE_F / TABLE[4][0])
    assert (imp4["train_macs"], imp4["total_macs"]) == (TABLE[4][1], TABLE[4][2])
    assert imp4["find_macs_dense"] == 4 * TABLE[0][1]
    assert imp4["dense_trainings"] == 5.0 and dense["dense_trainings"] == 1.0
    assert dense["iterations_to_target"] == 400 and imp4["iterations_to_target"] == 200
    assert dense["macs_to_target"] == pytest.approx(0.8 * TABLE[0][1])
    assert imp4["macs_to_target"] == pytest.approx(TABLE[4][2] - 0.6 * TABLE[4][1])
    reinit = table.loc[("reinit", 4)]
    assert math.isnan(reinit["iterations_to_target"]) and math.isnan(reinit["macs_to_target"])
    assert reinit["find_macs"] == imp4["find_macs"]
    assert table["weights_trained"].all()  # recorded by no run here: True by default
    assert table["control"].to_dict() == {
        key: key[0] in ("reinit", "random_pruning") for key in table.index}
    sidecar = json.loads((tmp_path / "summary.csv.provenance.json").read_text())
    assert sidecar["params"] == {"experiment": "e", "target_fraction": 0.99}


def test_the_target_fraction_moves_the_target(chain, tmp_path):
    runs = [Path(f"{run_dir(m, r)}/run.json") for m, r in (("imp", 0), ("reinit", 4))]
    summarize("e", runs, tmp_path, target_fraction=0.9)
    table = pd.read_csv(tmp_path / "summary.csv").set_index("method")
    assert table["iterations_to_target"].to_dict() == {"imp": 200.0, "reinit": 500.0}


def test_without_a_dense_run_the_relative_columns_are_nan(chain, tmp_path):
    summarize("e", [Path(f"{run_dir('imp', 3)}/run.json")], tmp_path, target_fraction=0.99)
    row = pd.read_csv(tmp_path / "summary.csv").iloc[0]
    assert row["total_macs"] == 70_767_810_000  # rounds 0..3
    for column in ("dense_trainings", "iterations_to_target", "macs_to_target"):
        assert math.isnan(row[column])


def test_a_target_fraction_outside_0_1_is_refused(chain, tmp_path):
    with pytest.raises(LthError, match=r"--target-fraction 1.5: expected a fraction in \(0, 1\]"):
        summarize("e", [Path(f"{run_dir('imp', 0)}/run.json")], tmp_path, 1.5)
    assert not (tmp_path / "summary.csv").exists()


def test_a_mask_without_a_record_is_an_error_naming_it(chain):
    _, masks = chain
    save_tensors("results/e/orphan.safetensors", masks[2])  # no record: not made by lth
    write_training("results/orphan", "results/e/seed0/init.safetensors",
                   "results/e/orphan.safetensors", masks[2], method="imp", level="round2",
                   val=TICKET_VAL)
    with pytest.raises(LthError, match=r"^results/orphan/run.json: "
                       r"results/e/orphan.safetensors: no provenance record"):
        run_costs("results/orphan/run.json")


def test_record_macs_of_a_record_without_work_is_zero():
    assert record_macs({"verb": "init"}) == (0, 0)
    assert record_macs({"verb": "train", "macs": {"sparse": 5, "dense": 9}}) == (5, 9)


@pytest.mark.parametrize("target,expected", [(0.8, 200.0), (0.1, 0.0), (0.85, 300.0),
                                             (0.9, math.nan)])
def test_iterations_to_target_is_the_first_val_evaluation_reaching_it(target, expected):
    """METHODS §7.5's curve: val accuracy 0.1, 0.5, 0.8, 0.85 at 0..300 (rows shuffled, test
    rows higher); never reached is NaN, neither 0 nor the last iteration."""
    val = dict(zip([300, 0, 200, 100], [0.85, 0.1, 0.8, 0.5], strict=True))
    rows = [{"iteration": i, "split": s, "loss": 0.0, "accuracy": a if s == "val" else 0.99}
            for i, a in val.items() for s in ("test", "val")]
    found = iterations_to_target(rows, target)
    assert found == expected or (math.isnan(expected) and math.isnan(found))


def test_macs_to_target_counts_the_finding_and_the_training_done_by_then():
    assert macs_to_target(100, 600, iterations=40, start_iteration=10, reached_at=20) == 300
    assert math.isnan(macs_to_target(100, 600, 40, 10, math.nan))
    # nothing left to train (resumed at the end): the target is reached at the finding's cost
    assert macs_to_target(100, 0, iterations=40, start_iteration=40, reached_at=40) == 100


def test_pareto_front_drops_dominated_points_and_keeps_ties():
    points = [(1.0, 0.9), (2.0, 0.8), (1.0, 0.9), (3.0, 0.95), (0.5, 0.5), (2.0, 0.9),
              (float("nan"), 0.99)]
    assert pareto_front(points).tolist() == [True, False, True, True, True, False, False]


@pytest.mark.parametrize("method,control", [
    ("reinit", True), ("reinit_draw2", True), ("random_pruning", True), ("scratch_b_imp", True),
    ("elastic_ett_randmask", True), ("regrow_random_double", True), ("imp", False), ("snip", False),
    ("elastic_ett", False), ("gem_miner_gem", False), ("random", False)])
def test_controls_are_named_by_method(method, control):
    assert is_control(method) is control


@pytest.fixture(scope="module")
def verbs(tmp_path_factory):
    """The real verbs: a dense run (rewind point 10), IMP round 1 rewound to it, its reinit
    control, then `lth summarize` with a target of 95% of the dense run's best."""
    common = dict(start_iteration=10, level="round1", mask="imp1/mask.safetensors")
    members = [
        [member("imp0", "init.safetensors", save_at=10)],
        [member("imp1", "imp0/rewind.safetensors", **common),
         member("reinit1", "init.safetensors", method="reinit", family="control",
                fresh_init="reinit/round1", **common)],
    ]
    with prepared_lab(tmp_path_factory.mktemp("verbs"), {0: "init.safetensors"}):
        assert lth("train", "--job", train_job(*members[0]), "--threads", 1) == 0
        assert lth("prune", "--job", prune_job(
            "imp1/mask.safetensors", "imp0/final.safetensors", scope="layerwise",
            mask="imp0/mask.safetensors", rates=Rates(0.2, 0.2, 0.1), purpose="imp/round1")) == 0
        assert lth("train", "--job", train_job(*members[1]), "--threads", 1) == 0
        assert lth("summarize", "--experiment", "t", "--out-dir", "out", "--target-fraction",
                   0.95, "imp0/run.json", "imp1/run.json", "reinit1/run.json") == 0
        yield pd.read_csv("out/summary.csv").set_index("run_dir")


def test_the_verbs_records_give_train_find_and_total_macs(verbs):
    """Train: 3 x (iterations - start) x batch x f (40 iterations of 50; round 1 from 10);
    IMP round 1 finds with the dense run, counted once, and its control the same."""
    dense, imp1, reinit1 = (verbs.loc[d] for d in ("imp0", "imp1", "reinit1"))
    assert (dense["train_macs"], dense["find_macs"]) == (3 * 40 * 50 * DENSE_F, 0)
    assert imp1["macs"] == TABLE[1][0]
    assert (imp1["train_macs"], imp1["train_macs_dense"]) == (3 * 30 * 50 * TABLE[1][0],
                                                             3 * 30 * 50 * DENSE_F)
    assert imp1["find_macs"] == imp1["find_macs_dense"] == dense["train_macs"]
    assert imp1["total_macs"] == dense["train_macs"] + imp1["train_macs"]
    assert (imp1["dense_trainings"], dense["dense_trainings"]) == (1.75, 1.0)
    assert reinit1["find_macs"] == imp1["find_macs"] and reinit1["control"]
    assert not imp1["control"] and dense["weights_trained"]


def test_the_verbs_dense_run_reaches_the_target_fraction_of_its_best_val_accuracy(verbs):
    sidecar = json.loads(Path("out/summary.csv.provenance.json").read_text())
    assert sidecar["params"] == {"experiment": "t", "target_fraction": 0.95}
    curve = pd.read_csv("imp0/metrics.csv").query("split == 'val'")
    target = 0.95 * curve["accuracy"].max()
    first = curve.loc[curve["accuracy"] >= target, "iteration"].min()
    dense = verbs.loc["imp0"]
    assert dense["iterations_to_target"] == first and 0 < first <= 40
    assert dense["macs_to_target"] == pytest.approx(first / 40 * dense["train_macs"])
