"""`python -m lth` verbs end to end on a small Fashion-MNIST in the real gz IDX format:
IMP with reset and late rewinding, its controls, determinism, and every error path."""

import json
import os
import shlex
from pathlib import Path

import pytest
import torch

from generated import write_learnable_idx_folder
from lth import masks as M
from lth.cli import main
from lth.io import load_tensors, read_metadata

SPEECH = ["--speech-features", "mfcc"] + [
    a for k, v in (("n-fft", 480), ("win-length", 480), ("hop-length", 160), ("n-mels", 40),
                   ("n-mfcc", 40)) for a in (f"--speech-{k}", str(v))]
SCHEDULE = shlex.split("--optimizer adam --lr 0.002 --momentum 0 --nesterov false --weight-decay 0 "
            "--batch-size 50 --iterations 40 --gamma 0.1 --warmup 0 --eval-every 10 "
            "--eval-batch-size 500 --dropout 0 --augment false --device cpu --threads 1")
FIX = ["--experiment", "t", "--seed", "0"]


def lth(*args) -> int:
    return main([str(a) for a in args])


def train(out, *extra, level="round0", method="imp", family="lottery"):
    assert lth("train", *FIX, "--method", method, "--family", family, "--level", level,
               "--data-root", "data", "--val-size", 100, *SCHEDULE, "--milestones", "",
               *extra, "--out-dir", out) == 0
    return json.loads((Path(out) / "run.json").read_text())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A folder with a prepared dataset, theta_0 and a dense run saving theta_0 and theta_5."""
    root = tmp_path_factory.mktemp("lab")
    src = write_learnable_idx_folder(root / "src", n_train=600, n_test=200)
    assert lth("prepare", "--dataset", "fashion_mnist", "--root", root / "data", "--source", src,
               "--download", "false", *SPEECH) == 0
    previous = os.getcwd()
    os.chdir(root)
    assert lth("init", *FIX, "--model", "lenet300_100", "--data-root", "data",
               "--out", "init.safetensors") == 0
    train("dense", "--init", "init.safetensors", "--save-at", 0)
    train("dense5", "--init", "init.safetensors", "--save-at", 5)
    assert lth("prune", *FIX, "--weights", "dense/final.safetensors", "--mask",
               "dense/mask.safetensors", "--criterion", "magnitude", "--scope", "layerwise",
               "--rates", "0.2,0.2,0.1", "--purpose", "imp/round1", "--iterations", 1,
               "--out", "imp1/mask.safetensors") == 0
    yield root
    os.chdir(previous)


def test_dense_run_learns_and_records_everything(lab):
    run = json.loads((lab / "dense" / "run.json").read_text())
    res = run["result"]
    assert res["final_test_accuracy"] > 0.8 and res["final_train_accuracy"] > 0.8
    assert res["density"] == 1.0 and res["params_total"] == 266200
    assert res["flops"] == res["dense_flops"] == 266200
    assert {e["path"] for e in run["inputs"]} == {"init.safetensors", "data/tensors.safetensors"}
    assert run["params"]["lr"] == 0.002 and run["packages"]["torch"].startswith("2.11")
    assert {o["path"].split("/")[-1] for o in run["outputs"]} == {
        "final.safetensors", "metrics.csv", "mask.safetensors", "rewind.safetensors"}
    lines = (lab / "dense" / "metrics.csv").read_text().splitlines()
    assert lines[0] == "iteration,split,loss,accuracy" and len(lines) == 1 + 5 * 2 + 1


def test_imp_mask_nests_and_prunes_exact_counts(lab):
    dense = load_tensors(lab / "dense/mask.safetensors")
    imp1 = load_tensors(lab / "imp1/mask.safetensors")
    assert M.is_nested(imp1, dense)
    sizes = {n: m.numel() for n, m in dense.items()}
    rates = {"fc1.weight": 0.2, "fc2.weight": 0.2, "output.weight": 0.1}
    assert {n: int(m.sum()) for n, m in imp1.items()} == {
        n: sizes[n] - M.round_half_up(rates[n] * sizes[n]) for n in sizes}


def test_survivors_are_reset_to_theta_0(lab):
    theta0 = load_tensors(lab / "init.safetensors")
    assert all(torch.equal(v, theta0[k]) for k, v in
               load_tensors(lab / "dense/rewind.safetensors").items())
    train("imp1", "--init", "dense/rewind.safetensors", "--mask", "imp1/mask.safetensors",
          "--save-at", 0, level="round1")
    start = load_tensors(lab / "imp1/rewind.safetensors")
    mask = load_tensors(lab / "imp1/mask.safetensors")
    for name, m in mask.items():
        assert torch.equal(start[name], theta0[name] * m)
    final = load_tensors(lab / "imp1/final.safetensors")
    assert all(torch.all(final[n][~m] == 0) for n, m in mask.items())


def test_late_rewinding_resets_survivors_to_theta_k(lab):
    theta5 = load_tensors(lab / "dense5/rewind.safetensors")
    theta0 = load_tensors(lab / "init.safetensors")
    assert not torch.equal(theta5["fc1.weight"], theta0["fc1.weight"])
    train("rewound", "--init", "dense5/rewind.safetensors", "--mask", "imp1/mask.safetensors",
          "--save-at", 0, level="round1")
    start = load_tensors(lab / "rewound/rewind.safetensors")
    for name, m in load_tensors(lab / "imp1/mask.safetensors").items():
        assert torch.equal(start[name], theta5[name] * m)


def test_reinit_control_keeps_the_mask_and_draws_new_weights(lab):
    train("reinit1", "--init", "init.safetensors", "--mask", "imp1/mask.safetensors",
          "--fresh-init", "reinit/round1", "--save-at", 0, level="round1", method="reinit",
          family="control")
    mask = load_tensors(lab / "imp1/mask.safetensors")
    copied = load_tensors(lab / "reinit1/mask.safetensors")
    assert all(torch.equal(copied[n], mask[n]) for n in mask)
    start = load_tensors(lab / "reinit1/rewind.safetensors")
    theta0 = load_tensors(lab / "init.safetensors")
    for name, m in mask.items():
        assert torch.all(start[name][~m] == 0)
        assert not torch.equal(start[name], theta0[name] * m)


def test_random_structure_keeps_layer_densities_and_changes_the_mask(lab):
    assert lth("prune", *FIX, "--weights", "init.safetensors", "--criterion", "random",
               "--scope", "layerwise", "--match-counts", "imp1/mask.safetensors",
               "--purpose", "random/round1", "--iterations", 1,
               "--out", "random1/mask.safetensors") == 0
    imp = load_tensors(lab / "imp1/mask.safetensors")
    rnd = load_tensors(lab / "random1/mask.safetensors")
    assert M.layer_densities(rnd) == M.layer_densities(imp)
    assert M.jaccard(rnd, imp) < 0.9


def test_scratch_b_stretches_the_budget_by_the_flops_ratio_up_to_the_cap(lab):
    run = train("scratchb", "--init", "init.safetensors", "--mask", "imp1/mask.safetensors",
                "--fresh-init", "random/round1", "--budget-cap", 1.1, level="round1",
                method="random_b", family="control")
    ratio = run["result"]["dense_flops"] / run["result"]["flops"]
    assert ratio > 1.1  # so the cap binds
    assert run["result"]["iterations"] == 44  # ceil(40 * 1.1)


def test_two_runs_of_the_same_config_give_identical_masks_and_weights(lab):
    train("again", "--init", "init.safetensors", "--save-at", 0)
    for name in ("final.safetensors", "mask.safetensors"):
        a, b = load_tensors(lab / "dense" / name), load_tensors(lab / "again" / name)
        assert all(a[k].numpy().tobytes() == b[k].numpy().tobytes() for k in a)
    assert (lab / "dense/metrics.csv").read_bytes() == (lab / "again/metrics.csv").read_bytes()


def test_snip_prunes_to_the_exact_density_and_records_its_inputs(lab):
    assert lth("prune", *FIX, "--weights", "init.safetensors", "--criterion", "snip",
               "--scope", "global", "--density", 0.05, "--purpose", "snip/density0.05",
               "--iterations", 1, "--data-root", "data", "--val-size", 100,
               "--score-batch-size", 50, "--samples-per-class", 2, "--grasp-temperature", 200,
               "--out", "snip/mask.safetensors") == 0
    mask = load_tensors(lab / "snip/mask.safetensors")
    assert M.counts(mask) == (M.round_half_up(0.05 * 266200), 266200)
    record = read_metadata(lab / "snip/mask.safetensors")
    assert record["verb"] == "prune" and record["params"]["criterion"] == "snip"
    assert [e["path"] for e in record["inputs"]] == ["init.safetensors",
                                                     "data/tensors.safetensors"]


def error_of(capsys, *args) -> str:
    assert lth(*args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def prune_call(criterion="magnitude", scope="global", how=("--density", "0.5"),
               weights="init.safetensors") -> list[str]:
    """A `prune` call whose other arguments are valid."""
    return ["prune", *FIX, "--weights", weights, "--criterion", criterion, "--scope", scope,
            *how, "--purpose", "p", "--iterations", "1", "--out", "x"]


@pytest.mark.parametrize("args,expected", [
    (["train", *FIX, "--method", "imp"], "required"),
    (["bogus"], "invalid choice"),
    (prune_call(weights="missing.safetensors"), "missing.safetensors: file not found"),
    (prune_call(criterion="nope"), "--criterion 'nope'"),
    (prune_call(how=("--density", "1.5")), "--density 1.5"),
    (prune_call(scope="layerwise", how=("--rates", "0.2,0.2")), "three fractions"),
    (prune_call(how=("--rates", "0.2,0.2,0.1")), "same rate"),
    (prune_call(criterion="snip"), "needs --data-root"),
    (["init", *FIX, "--model", "lenet300_100", "--data-root", "nowhere", "--out", "x"],
     "nowhere/manifest.json: file not found"),
    (["init", *FIX, "--model", "alexnet", "--data-root", "data", "--out", "x"],
     "alexnet"),
    (["audit", "no/such/file.pdf"], "no such artifact"),
])
def test_bad_arguments_give_one_error_line(lab, capsys, args, expected):
    assert expected in error_of(capsys, *args)


def test_corrupt_input_fails_cleanly_and_overwrites_nothing(lab, capsys):
    (lab / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    before = (lab / "dense/final.safetensors").read_bytes()
    err = error_of(capsys, "train", *FIX, "--method", "imp", "--family", "lottery",
                   "--level", "round0", "--init", "corrupt.safetensors", "--data-root", "data",
                   "--val-size", 100, *SCHEDULE, "--milestones", "", "--out-dir", "dense")
    assert "corrupt.safetensors" in err
    assert (lab / "dense/final.safetensors").read_bytes() == before


def test_mask_of_another_model_is_rejected(lab, capsys):
    torch_mask = {"fc.0.weight": torch.ones(3, 3, dtype=torch.bool)}
    from lth.io import save_tensors

    save_tensors(lab / "wrong_mask.safetensors", torch_mask)
    err = error_of(capsys, "train", *FIX, "--method", "imp", "--family", "lottery", "--level",
                   "round1", "--init", "init.safetensors", "--mask", "wrong_mask.safetensors",
                   "--data-root", "data", "--val-size", 100, *SCHEDULE, "--milestones", "",
                   "--out-dir", "wrong")
    assert "does not match the model" in err and not (lab / "wrong").exists()
