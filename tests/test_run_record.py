"""What each record holds: the early stop and collapse of a trained network (run.json and its
summary.csv row) and the scoring cost of SNIP, GraSP, SynFlow and Early-Bird's search, from
real `lth` verb calls checked against the formulas of METHODS.md section 7.1."""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_cli import lth, prepared_lab

from lth.analysis.summary import summary_row
from lth.core.io import load_tensors, read_metadata, save_tensors
from lth.core.records import write_run
from lth.plan.families.earlybird import EarlyBird, EarlyBirdJob
from lth.plan.spec import Engine, Member, PruneJob, Scoring, TrainJob, to_json
from networks import TINY_SCHEDULE

LENET_MACS = 784 * 300 + 300 * 100 + 100 * 10  # f_D: dense forward MACs per example, 266,200
SHORT = dataclasses.replace(TINY_SCHEDULE, iterations=10, eval_every=5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A working folder with a small prepared Fashion-MNIST and LeNet-300-100's theta_0."""
    with prepared_lab(tmp_path_factory.mktemp("record"), {0: "init.safetensors"}) as root:
        yield root


# ---------------------------------------------------------------- early stop (write_run)


def evaluations(val_losses: list[float], test_accuracies: list[float]) -> list[dict]:
    """metrics.csv rows at iterations 0, 10, 20... with these val losses and test accuracies
    (train accuracy 0.3 and val accuracy 0.5 throughout, set apart from the test ones)."""
    rows = []
    for i, (loss, acc) in enumerate(zip(val_losses, test_accuracies, strict=True)):
        rows += [{"iteration": 10 * i, "split": "train", "loss": 9.0, "accuracy": 0.3},
                 {"iteration": 10 * i, "split": "val", "loss": loss, "accuracy": 0.5},
                 {"iteration": 10 * i, "split": "test", "loss": 1.0 + i, "accuracy": acc}]
    return rows


FIELDS = {"method": "imp", "level": "round2", "density": 0.5, "macs": 10, "dense_macs": 20}


def written_result(out: Path, metrics: list[dict], stops_early: bool = True) -> dict:
    """The result block of the run.json that write_run writes for a hand-made training."""
    result = SimpleNamespace(metrics=metrics, wall_seconds=1.5)
    write_run(out, {"verb": "train", "params": {"experiment": "t", "seed": 0},
                    "architecture": {"dataset": "fashion_mnist", "model": "lenet300_100"}},
              {}, result, FIELDS, {"train": 1.5}, stops_early=stops_early)
    return json.loads((out / "run.json").read_text())


# validation loss lowest at iteration 20 (mid-run), the test accuracy highest elsewhere
MID_RUN = evaluations([2.0, 1.2, 0.7, 0.9, 1.1], [0.10, 0.40, 0.61, 0.72, 0.68])


def test_run_json_records_the_early_stop_at_the_minimum_validation_loss(tmp_path):
    result = written_result(tmp_path, MID_RUN)["result"]
    assert (result["early_stop_iteration"], result["early_stop_test_accuracy"]) == (20, 0.61)
    assert (result["final_test_accuracy"], result["final_val_accuracy"],
            result["final_train_accuracy"]) == (0.68, 0.5, 0.3)
    assert result["round"] == 2 and result["wall_seconds"] == 1.5


def test_the_summary_row_copies_the_early_stop(tmp_path):
    record = written_result(tmp_path, MID_RUN)
    row = summary_row(record, tmp_path)
    assert (row["early_stop_iteration"], row["early_stop_test_accuracy"]) == (20, 0.61)
    assert row["final_test_accuracy"] == 0.68


def test_a_tie_in_validation_loss_stops_at_the_earlier_iteration(tmp_path):
    rows = evaluations([2.0, 0.7, 0.9, 0.7], [0.1, 0.33, 0.5, 0.6])
    result = written_result(tmp_path, rows)["result"]
    assert (result["early_stop_iteration"], result["early_stop_test_accuracy"]) == (10, 0.33)


def test_a_mined_network_records_its_final_figures_as_its_early_stop(tmp_path):
    result = written_result(tmp_path, MID_RUN, stops_early=False)["result"]
    assert (result["early_stop_iteration"], result["early_stop_test_accuracy"]) == (40, 0.68)


# ---------------------------------------------------------------- collapse (lth train)


def train_run(out: str, mask: str | None) -> dict:
    """run.json of LeNet trained from theta_0 under `mask` (None: dense) by `lth train`."""
    member = Member(seed=0, method="imp", family="lottery", level="round1",
                    init="init.safetensors", out_dir=out, mask=mask)
    job = TrainJob("t", "data", 100, "cpu", SHORT,
                   Engine(stack="off", slots=1, capture=False, tf32=False), (member,))
    assert lth("train", "--job", to_json(job), "--threads", 1) == 0
    return json.loads((Path(out) / "run.json").read_text())


def test_a_mask_that_empties_the_output_layer_is_recorded_as_collapsed(lab):
    """No input reaches an output when output.weight keeps nothing, though every other
    layer is whole; the dense network is not collapsed."""
    mask = {n: torch.ones_like(v, dtype=torch.bool) for n, v in
            load_tensors("init.safetensors").items() if n.endswith("weight")}
    mask["output.weight"][:] = False
    save_tensors("no_output.safetensors", mask, {})
    cut = train_run("cut", "no_output.safetensors")
    dense = train_run("dense", None)
    assert cut["result"]["collapsed"] is True and dense["result"]["collapsed"] is False
    assert cut["result"]["params_kept"] == 784 * 300 + 300 * 100  # all but the output layer
    assert summary_row(cut, Path("cut"))["collapsed"] is True
    assert summary_row(dense, Path("dense"))["collapsed"] is False


# ---------------------------------------------------------------- scoring cost (lth prune)

SCORING = Scoring(score_batch_size=40, samples_per_class=3, grasp_temperature=200.0,
                  snip_batchnorm="batch", grasp_batchnorm="batch")


def pruned_macs(criterion: str, iterations: int = 1) -> dict:
    """The macs that `lth prune` records in the mask of LeNet's theta_0 at density 0.1."""
    out = f"{criterion}/mask.safetensors"
    job = PruneJob(experiment="t", seed=0, weights="init.safetensors", criterion=criterion,
                   scope="global", purpose=f"{criterion}/density0.1", iterations=iterations,
                   device="cpu", out=out, density=0.1, data_root="data", val_size=100,
                   scoring=SCORING)
    assert lth("prune", "--job", to_json(job)) == 0
    return read_metadata(out)["macs"]


@pytest.mark.parametrize(("criterion", "iterations", "expected"), [
    ("snip", 1, 3 * 40 * LENET_MACS),  # one forward-backward of its batch: 3 B f_D
    ("grasp", 1, 5 * 3 * 10 * LENET_MACS),  # about 5 n_sample f_D, n_sample 3 per class
    ("synflow", 7, 7 * 3 * LENET_MACS),  # iterations x 3 f_D on one input
    ("magnitude", 1, 0),  # no pass at all
])
def test_prune_records_the_scoring_macs_of_methods(lab, criterion, iterations, expected):
    assert pruned_macs(criterion, iterations) == {"sparse": expected, "dense": expected}


def test_early_bird_search_records_the_dense_training_up_to_its_ticket(lab):
    """EB's find cost: t_EB x B x 3 f_D, the dense training until the ticket is drawn."""
    eb = EarlyBird(densities=(0.5,), scope="global", check_every=5, epsilon=0.3, queue=3,
                   distance="changed_fraction")
    schedule = dataclasses.replace(TINY_SCHEDULE, iterations=60, eval_every=20)
    job = EarlyBirdJob(experiment="t", seed=0, data_root="data", val_size=100, device="cpu",
                    init="init.safetensors", schedule=schedule, earlybird=eb,
                    out_dirs=("eb/density0.5",), record="eb/search.json")
    assert lth("earlybird", "--job", to_json(job), "--threads", 1) == 0
    record = read_metadata("eb/density0.5/mask.safetensors")
    fired_at = record["earlybird"]["iteration"]
    assert record["earlybird"]["fired"] and 0 < fired_at < 60
    assert fired_at == record["iteration"] == json.loads(
        Path("eb/search.json").read_text())["search"]["tickets"][0]["iteration"]
    expected = fired_at * 50 * 3 * LENET_MACS
    assert record["macs"] == {"sparse": expected, "dense": expected}
