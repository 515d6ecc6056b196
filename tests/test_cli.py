"""`python -m lth` verbs end to end on a small Fashion-MNIST in the real gz IDX format:
IMP with reset and late rewinding, its controls, determinism, and every error path."""

import json
import os
from pathlib import Path

import pytest
import torch

from generated import write_learnable_idx_folder
from lth import masks as M
from lth.cli import main
from lth.io import load_tensors, read_metadata
from lth.spec import Engine, Member, PruneJob, Rates, Schedule, Scoring, TrainJob, to_json

SPEECH = ["--speech-features", "mfcc"] + [
    a for k, v in (("n-fft", 480), ("win-length", 480), ("hop-length", 160), ("n-mels", 40),
                   ("n-mfcc", 40)) for a in (f"--speech-{k}", str(v))]
SCHEDULE = Schedule(optimizer="adam", lr=0.002, momentum=0.0, nesterov=False,
                    weight_decay=0.0, batch_size=50, iterations=40, milestones=(), gamma=0.1,
                    warmup=0, eval_every=10, eval_batch_size=500, dropout=0.0, augment=False)
ENGINE = Engine(stack="auto", slots=4, capture=False, tf32=False)
FIX = ["--experiment", "t", "--seed", "0"]


def lth(*args) -> int:
    return main([str(a) for a in args])


def member(out, init, level="round0", method="imp", family="lottery", seed=0, **extra):
    return Member(seed=seed, method=method, family=family, level=level, init=init,
                  out_dir=out, **extra)


def train_job(*members, schedule=SCHEDULE, engine=ENGINE) -> str:
    return to_json(TrainJob("t", "data", 100, "cpu", schedule, engine, members))


def train(out, init, engine=ENGINE, **extra):
    """Train one network (a cohort of one); its run.json."""
    assert lth("train", "--job", train_job(member(out, init, **extra), engine=engine),
               "--threads", 1) == 0
    return json.loads((Path(out) / "run.json").read_text())


def prune_job(out="x", weights="init.safetensors", criterion="magnitude", scope="global",
              **how) -> str:
    """A prune job whose other settings are valid (how: rates, density or match_counts...)."""
    if not {"rates", "density", "match_counts"} & set(how):
        how["density"] = 0.5
    return to_json(PruneJob(experiment="t", seed=0, weights=weights, criterion=criterion,
                            scope=scope, purpose=how.pop("purpose", "p"), iterations=1,
                            device="cpu", out=out, **how))


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
    train("dense", "init.safetensors", save_at=0)
    train("dense5", "init.safetensors", save_at=5)
    assert lth("prune", "--job", prune_job(
        "imp1/mask.safetensors", "dense/final.safetensors", scope="layerwise",
        mask="dense/mask.safetensors", rates=Rates(0.2, 0.2, 0.1), purpose="imp/round1")) == 0
    yield root
    os.chdir(previous)


def test_dense_run_learns_and_records_everything(lab):
    run = json.loads((lab / "dense" / "run.json").read_text())
    res = run["result"]
    assert res["final_test_accuracy"] > 0.8 and res["final_train_accuracy"] > 0.8
    assert res["density"] == 1.0 and res["params_total"] == 266200
    assert res["flops"] == res["dense_flops"] == 266200
    assert {e["path"] for e in run["inputs"]} == {"init.safetensors", "data/tensors.safetensors"}
    assert run["params"]["schedule"]["lr"] == 0.002
    assert run["packages"]["torch"].startswith("2.11")
    assert run["cohort"] == {"size": 1, "position": 0, "stacked": False, "slots": 1,
                             "device": "cpu", "threads": 1, "tf32": None}
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
    train("imp1", "dense/rewind.safetensors", mask="imp1/mask.safetensors", save_at=0,
          level="round1")
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
    train("rewound", "dense5/rewind.safetensors", mask="imp1/mask.safetensors", save_at=0,
          level="round1")
    start = load_tensors(lab / "rewound/rewind.safetensors")
    for name, m in load_tensors(lab / "imp1/mask.safetensors").items():
        assert torch.equal(start[name], theta5[name] * m)


def test_reinit_control_keeps_the_mask_and_draws_new_weights(lab):
    train("reinit1", "init.safetensors", mask="imp1/mask.safetensors",
          fresh_init="reinit/round1", save_at=0, level="round1", method="reinit",
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
    assert lth("prune", "--job", prune_job(
        "random1/mask.safetensors", criterion="random", scope="layerwise",
        match_counts="imp1/mask.safetensors", purpose="random/round1")) == 0
    imp = load_tensors(lab / "imp1/mask.safetensors")
    rnd = load_tensors(lab / "random1/mask.safetensors")
    assert M.layer_densities(rnd) == M.layer_densities(imp)
    assert M.jaccard(rnd, imp) < 0.9


def test_scratch_b_stretches_the_budget_by_the_flops_ratio_up_to_the_cap(lab):
    run = train("scratchb", "init.safetensors", mask="imp1/mask.safetensors",
                fresh_init="random/round1", budget_cap=1.1, level="round1",
                method="random_b", family="control")
    ratio = run["result"]["dense_flops"] / run["result"]["flops"]
    assert ratio > 1.1  # so the cap binds
    assert run["result"]["iterations"] == 44  # ceil(40 * 1.1)


def test_two_runs_of_the_same_config_give_identical_masks_and_weights(lab):
    train("again", "init.safetensors", save_at=0)
    for name in ("final.safetensors", "mask.safetensors"):
        a, b = load_tensors(lab / "dense" / name), load_tensors(lab / "again" / name)
        assert all(a[k].numpy().tobytes() == b[k].numpy().tobytes() for k in a)
    assert (lab / "dense/metrics.csv").read_bytes() == (lab / "again/metrics.csv").read_bytes()


def test_snip_prunes_to_the_exact_density_and_records_its_inputs(lab):
    assert lth("prune", "--job", prune_job(
        "snip/mask.safetensors", criterion="snip", density=0.05, purpose="snip/density0.05",
        data_root="data", val_size=100, scoring=Scoring(50, 2, 200.0))) == 0
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


@pytest.mark.parametrize("args,expected", [
    (["train"], "required"),
    (["bogus"], "invalid choice"),
    (["prune", "--job", prune_job(weights="missing.safetensors")],
     "missing.safetensors: file not found"),
    (["prune", "--job", prune_job(criterion="nope")], "criterion 'nope'"),
    (["prune", "--job", prune_job(density=1.5)], "density 1.5"),
    (["prune", "--job", prune_job(scope="layerwise", rates=Rates(0.2, 1.5, 0.1))],
     "expected fractions in [0, 1)"),
    (["prune", "--job", prune_job(rates=Rates(0.2, 0.2, 0.1))], "same rate"),
    (["prune", "--job", prune_job(criterion="snip")], "needs data_root"),
    (["prune", "--job", prune_job(criterion="grasp", data_root="data", val_size=100,
                                  scoring=Scoring(50))], "samples_per_class, grasp_temperature"),
    (["prune", "--job", prune_job(density=0.5, rates=Rates(0.2, 0.2, 0.2))], "exactly one"),
    (["prune", "--job", '{"experiment": "t"}'], "--job.seed: missing"),
    (["prune", "--job", prune_job()[:-1] + ',"colour":1}'], "--job.colour: unknown setting"),
    (["train", "--job", train_job(member("x", "init.safetensors")).replace(
        '"iterations":40', '"iterations":"40"')], "--job.schedule.iterations: expected int"),
    (["train", "--job", train_job(member("x", "init.safetensors", save_at=41))],
     "save_at 41 is outside the 40 training iterations"),
    (["train", "--job", "{not json"], "--job: not valid JSON"),
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
    err = error_of(capsys, "train", "--job", train_job(member("dense", "corrupt.safetensors")))
    assert "corrupt.safetensors" in err
    assert (lab / "dense/final.safetensors").read_bytes() == before


def test_mask_of_another_model_is_rejected(lab, capsys):
    torch_mask = {"fc.0.weight": torch.ones(3, 3, dtype=torch.bool)}
    from lth.io import save_tensors

    save_tensors(lab / "wrong_mask.safetensors", torch_mask)
    err = error_of(capsys, "train", "--job", train_job(member(
        "wrong", "init.safetensors", level="round1", mask="wrong_mask.safetensors")))
    assert "does not match the model" in err and not (lab / "wrong").exists()
