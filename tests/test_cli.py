"""`python -m lth` verbs end to end on a small Fashion-MNIST in the real gz IDX format:
IMP with reset and late rewinding, its controls, determinism, and every error path."""

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from generated import write_learnable_idx_folder
from helpers import is_nested, layer_densities
from lth.core import masks as M
from lth.core.io import load_tensors, read_metadata
from lth.core.models import build_model
from lth.core.seeding import generator
from lth.plan.catalog import round_half_up
from lth.plan.spec import Engine, Member, PruneJob, Rates, Scoring, TrainJob, to_json
from lth.verbs.cli import main
from networks import TINY_SCHEDULE

SPEECH = ["--speech-features", "mfcc"] + [
    a for k, v in (("n-fft", 480), ("win-length", 480), ("hop-length", 160), ("n-mels", 40),
                   ("n-mfcc", 40)) for a in (f"--speech-{k}", str(v))]
ENGINE = Engine(stack="auto", slots=4, capture=False, tf32=False)
FIX = ["--experiment", "t", "--seed", "0"]


def lth(*args) -> int:
    return main([str(a) for a in args])


@contextlib.contextmanager
def prepared_lab(root: Path, inits: dict[int, str]) -> Iterator[Path]:
    """root as the working directory, holding a small learnable Fashion-MNIST in data/ (the
    real `lth prepare` of gz IDX files) and LeNet-300-100's theta_0 of each seed of inits
    (seed -> file); the working directory is restored after."""
    src = write_learnable_idx_folder(root / "src", n_train=600, n_test=200)
    assert lth("prepare", "--dataset", "fashion_mnist", "--root", root / "data", "--source", src,
               "--download", "false", *SPEECH) == 0
    previous = os.getcwd()
    os.chdir(root)
    try:
        for seed, out in inits.items():
            assert lth("init", "--experiment", "t", "--seed", seed, "--model", "lenet300_100",
                       "--init", "glorot", "--data-root", "data", "--out", out) == 0
        yield root
    finally:
        os.chdir(previous)


def member(out, init, level="round0", method="imp", family="lottery", seed=0, **extra):
    return Member(seed=seed, method=method, family=family, level=level, init=init,
                  out_dir=out, **extra)


def train_job(*members, schedule=TINY_SCHEDULE, engine=ENGINE) -> str:
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
    with prepared_lab(tmp_path_factory.mktemp("lab"), {0: "init.safetensors"}) as root:
        train("dense", "init.safetensors", save_at=0)
        train("dense5", "init.safetensors", save_at=5)
        assert lth("prune", "--job", prune_job(
            "imp1/mask.safetensors", "dense/final.safetensors", scope="layerwise",
            mask="dense/mask.safetensors", rates=Rates(0.2, 0.2, 0.1), purpose="imp/round1")) == 0
        yield root


def test_dense_run_learns_and_records_everything(lab):
    run = json.loads((lab / "dense" / "run.json").read_text())
    res = run["result"]
    assert res["final_test_accuracy"] > 0.8 and res["final_train_accuracy"] > 0.8
    assert res["density"] == 1.0 and res["params_total"] == 266200
    assert res["macs"] == res["dense_macs"] == 266200
    assert {e["path"] for e in run["inputs"]} == {"init.safetensors", "data/tensors.safetensors"}
    assert run["params"]["schedule"]["lr"] == 0.002
    assert run["packages"]["torch"].startswith("2.11")
    assert run["cohort"] == {"size": 1, "position": 0, "stacked": False, "slots": 1,
                             "device": "cpu", "threads": 1, "workers": 1, "tf32": None}
    assert run["timings"]["process"] == os.getpid()
    assert run["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert run["cpu"]["model"]  # the processor's name, e.g. from /proc/cpuinfo
    assert {o["path"].split("/")[-1] for o in run["outputs"]} == {
        "final.safetensors", "metrics.csv", "mask.safetensors", "rewind.safetensors"}
    lines = (lab / "dense" / "metrics.csv").read_text().splitlines()
    assert lines[0] == "iteration,split,loss,accuracy" and len(lines) == 1 + 5 * 2 + 1


def test_imp_mask_nests_and_prunes_exact_counts(lab):
    dense = load_tensors(lab / "dense/mask.safetensors")
    imp1 = load_tensors(lab / "imp1/mask.safetensors")
    assert is_nested(imp1, dense)
    sizes = {n: m.numel() for n, m in dense.items()}
    rates = {"fc1.weight": 0.2, "fc2.weight": 0.2, "output.weight": 0.1}
    assert {n: int(m.sum()) for n, m in imp1.items()} == {
        n: sizes[n] - round_half_up(rates[n] * sizes[n]) for n in sizes}


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
    assert layer_densities(rnd) == layer_densities(imp)
    assert M.jaccard(rnd, imp) < 0.9


def quarter_mask(lab) -> str:
    """A LeNet mask keeping exactly 1/4 of every layer: 58,800 / 7,500 / 250 weights, so
    66,550 of the 266,200 MACs (an MLP's MACs are its kept weights)."""
    from lth.core.io import save_tensors

    gen = torch.Generator().manual_seed(0)
    mask = {}
    for name, m in load_tensors(lab / "dense/mask.safetensors").items():
        keep = torch.zeros(m.numel(), dtype=torch.bool)
        keep[torch.randperm(m.numel(), generator=gen)[: m.numel() // 4]] = True
        mask[name] = keep.view_as(m)
    save_tensors(lab / "quarter.safetensors", mask)
    return "quarter.safetensors"


@pytest.mark.parametrize("cap,factor", [(None, 4.0), (2.0, 2.0)])
def test_scratch_b_stretches_the_schedule_by_the_macs_ratio_up_to_an_optional_cap(
        lab, cap, factor):
    schedule = dataclasses.replace(TINY_SCHEDULE, milestones=(10, 30), warmup=5)
    member_ = member(f"scratchb{factor}", "init.safetensors", mask=quarter_mask(lab),
                     fresh_init="scratch_b_imp/round1", compute_matched=True, budget_cap=cap,
                     level="round1", method="scratch_b_imp", family="control")
    assert lth("train", "--job", train_job(member_, schedule=schedule), "--threads", 1) == 0
    run = json.loads((lab / f"scratchb{factor}/run.json").read_text())
    res = run["result"]
    assert (res["macs"], res["dense_macs"]) == (66550, 266200)
    assert res["budget_factor"] == factor and res["iterations"] == 40 * factor
    used = run["params"]["schedule_used"]
    assert used["milestones"] == [10 * factor, 30 * factor] and used["warmup"] == 5 * factor
    last = (lab / f"scratchb{factor}/metrics.csv").read_text().splitlines()[-1]
    assert last.startswith(f"{int(40 * factor)},train,")


def test_members_not_compute_matched_keep_the_schedule_and_record_their_defaults(lab):
    res = json.loads((lab / "dense/run.json").read_text())["result"]
    assert (res["budget_factor"], res["start_iteration"], res["draw"]) == (1.0, 0, 0)
    assert res["iterations"] == 40


def test_a_rewound_member_trains_k_to_t_from_theta_k(lab):
    run = train("late", "dense5/rewind.safetensors", mask="imp1/mask.safetensors",
                start_iteration=5, save_at=5, level="round1")
    assert run["result"]["start_iteration"] == 5 and run["result"]["iterations"] == 40
    rows = (lab / "late/metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows if ",val," in r] == ["5", "10", "20", "30", "40"]
    theta5 = load_tensors(lab / "dense5/rewind.safetensors")
    start = load_tensors(lab / "late/rewind.safetensors")
    for name, m in load_tensors(lab / "imp1/mask.safetensors").items():
        assert torch.equal(start[name], theta5[name] * m)


def test_reinit_draws_are_distinct_streams_and_draw_0_is_the_plain_purpose(lab):
    mask = load_tensors(lab / "imp1/mask.safetensors")
    starts = {}
    for draw in (0, 1, 2):
        run = train(f"draw{draw}", "init.safetensors", mask="imp1/mask.safetensors",
                    fresh_init="reinit/round1", draw=draw, save_at=0, level="round1",
                    method="reinit", family="control")
        assert run["result"]["draw"] == draw
        starts[draw] = load_tensors(lab / f"draw{draw}/rewind.safetensors")["fc1.weight"]
    plain = build_model("lenet300_100", (1, 28, 28), 10, generator("t", 0, "reinit/round1"),
                        0.0, "glorot").state_dict()["fc1.weight"]
    assert torch.equal(starts[0], plain * mask["fc1.weight"])  # the purpose's own stream
    assert not torch.equal(starts[1], starts[0]) and not torch.equal(starts[2], starts[1])
    assert all(torch.all(s[~mask["fc1.weight"]] == 0) for s in starts.values())


def test_the_initialiser_is_recorded_and_a_fresh_init_uses_the_schedules(lab):
    assert read_metadata(lab / "init.safetensors")["architecture"]["init"] == "glorot"
    assert lth("init", *FIX, "--model", "lenet300_100", "--init", "kaiming_fan_in",
               "--data-root", "data", "--out", "kaiming.safetensors") == 0
    fan_in = load_tensors(lab / "kaiming.safetensors")["fc1.weight"]
    glorot = load_tensors(lab / "init.safetensors")["fc1.weight"]
    assert float(fan_in.std()) == pytest.approx((2 / 784) ** 0.5, rel=0.02)
    assert float(glorot.std()) == pytest.approx((2 / (784 + 300)) ** 0.5, rel=0.02)
    schedule = dataclasses.replace(TINY_SCHEDULE, init="kaiming_fan_in", iterations=1, eval_every=1)
    assert lth("train", "--job", train_job(member(
        "fresh_kaiming", "init.safetensors", fresh_init="reinit/round0", save_at=0,
        method="reinit", family="control"), schedule=schedule), "--threads", 1) == 0
    start = load_tensors(lab / "fresh_kaiming/rewind.safetensors")["fc1.weight"]
    assert float(start.std()) == pytest.approx((2 / 784) ** 0.5, rel=0.02)
    record = read_metadata(lab / "fresh_kaiming/final.safetensors")
    assert record["architecture"]["init"] == "kaiming_fan_in"


@pytest.fixture(scope="module")
def resnet(lab):
    """resnet20 on the 1x28x28 data: theta_0 and one global IMP round at conv 0.2 that
    leaves the 1x1 shortcuts and the output layer whole (Frankle & Carbin 2019, App. I.3)."""
    assert lth("init", *FIX, "--model", "resnet20", "--init", "kaiming_fan_out",
               "--data-root", "data", "--out", "resnet/init.safetensors") == 0
    assert lth("prune", "--job", prune_job(
        "resnet/imp1.safetensors", "resnet/init.safetensors",
        rates=Rates(conv=0.2, fc=0.0, output=0.0, shortcut=0.0), purpose="imp/round1")) == 0
    return lab / "resnet"


RESNET20_CONV = 267_696 - 2 * 9 * 16  # 3x3 convs on 1 input channel (not 3)
RESNET20_SHORTCUT, RESNET20_OUTPUT = 512 + 2048, 640


def test_global_imp_leaves_zero_rate_kinds_whole_and_density_counts_pruned_weights(resnet):
    mask = load_tensors(resnet / "imp1.safetensors")
    whole = [n for n in mask if "shortcut" in n or n == "output.weight"]
    assert len(whole) == 3 and all(bool(mask[n].all()) for n in whole)
    kept = RESNET20_CONV - round_half_up(0.2 * RESNET20_CONV)
    assert M.counts(mask) == (kept + RESNET20_SHORTCUT + RESNET20_OUTPUT,
                              RESNET20_CONV + RESNET20_SHORTCUT + RESNET20_OUTPUT)
    schedule = dataclasses.replace(TINY_SCHEDULE, iterations=1, eval_every=1)
    assert lth("train", "--job", train_job(member(
        str(resnet / "round1"), str(resnet / "init.safetensors"),
        mask=str(resnet / "imp1.safetensors"), level="round1", counted_kinds=("conv",)),
        schedule=schedule), "--threads", 1) == 0
    res = json.loads((resnet / "round1/run.json").read_text())["result"]
    assert (res["params_kept"], res["params_total"]) == (kept, RESNET20_CONV)
    assert res["density"] == kept / RESNET20_CONV
    assert res["params_total_all"] == RESNET20_CONV + RESNET20_SHORTCUT + RESNET20_OUTPUT


def test_global_count_matching_pools_only_the_layers_the_reference_pruned(resnet):
    assert lth("prune", "--job", prune_job(
        "resnet/random1.safetensors", "resnet/init.safetensors", criterion="random",
        match_counts="resnet/imp1.safetensors", purpose="random_pruning/round1")) == 0
    imp = load_tensors(resnet / "imp1.safetensors")
    rnd = load_tensors(resnet / "random1.safetensors")
    assert M.counts(rnd) == M.counts(imp)
    assert all(bool(rnd[n].all()) for n in imp if bool(imp[n].all()))
    assert M.jaccard(rnd, imp) < 0.9


@pytest.mark.parametrize("statistics", ["batch", "running"])
def test_snip_scores_with_the_batchnorm_statistics_its_setting_names(resnet, statistics):
    def snip(out, setting):
        assert lth("prune", "--job", prune_job(
            out, "resnet/init.safetensors", criterion="snip", density=0.1,
            purpose="snip/density0.1", data_root="data", val_size=100,
            scoring=Scoring(50, snip_batchnorm=setting))) == 0
        record = read_metadata(out)
        assert record["params"]["scoring"]["snip_batchnorm"] == setting
        return load_tensors(out)

    mine = snip(f"resnet/snip_{statistics}.safetensors", statistics)
    other = snip("resnet/snip_other.safetensors",
                 "running" if statistics == "batch" else "batch")
    again = snip("resnet/snip_again.safetensors", statistics)
    assert all(torch.equal(mine[n], again[n]) for n in mine)
    assert not all(torch.equal(mine[n], other[n]) for n in mine)


def test_two_runs_of_the_same_config_give_identical_masks_and_weights(lab):
    train("again", "init.safetensors", save_at=0)
    for name in ("final.safetensors", "mask.safetensors"):
        a, b = load_tensors(lab / "dense" / name), load_tensors(lab / "again" / name)
        assert all(a[k].numpy().tobytes() == b[k].numpy().tobytes() for k in a)
    assert (lab / "dense/metrics.csv").read_bytes() == (lab / "again/metrics.csv").read_bytes()


def test_snip_prunes_to_the_exact_density_and_records_its_inputs(lab):
    assert lth("prune", "--job", prune_job(
        "snip/mask.safetensors", criterion="snip", density=0.05, purpose="snip/density0.05",
        data_root="data", val_size=100, scoring=Scoring(50, snip_batchnorm="running"))) == 0
    mask = load_tensors(lab / "snip/mask.safetensors")
    assert M.counts(mask) == (round_half_up(0.05 * 266200), 266200)
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
    (["prune", "--job", prune_job(criterion="snip", data_root="data", val_size=100,
                                  scoring=Scoring(50, snip_batchnorm="train"))],
     "scoring.snip_batchnorm 'train': expected batch or running"),
    (["prune", "--job", prune_job(density=0.5, rates=Rates(0.2, 0.2, 0.2))], "exactly one"),
    (["prune", "--job", '{"experiment": "t"}'], "--job.seed: missing"),
    (["prune", "--job", prune_job()[:-1] + ',"colour":1}'], "--job.colour: unknown setting"),
    (["train", "--job", train_job(member("x", "init.safetensors")).replace(
        '"iterations":40', '"iterations":"40"')], "--job.schedule.iterations: expected int"),
    (["train", "--job", train_job(member("x", "init.safetensors", save_at=41))],
     "save_at 41 is outside the training iterations 0..40"),
    (["train", "--job", train_job(member("x", "init.safetensors", start_iteration=40))],
     "start_iteration 40 is outside the 40 training iterations"),
    (["train", "--job", train_job(member("x", "init.safetensors", start_iteration=5,
                                         save_at=0))],
     "save_at 0 is outside the training iterations 5..40"),
    (["train", "--job", train_job(member("x", "init.safetensors", draw=1))],
     "draw 1: expected 0, or a positive draw of a fresh_init"),
    (["train", "--job", train_job(member("x", "init.safetensors", budget_cap=2.0))],
     "budget_cap 2.0: expected >= 1, on a compute_matched member"),
    (["train", "--job", train_job(member("x", "init.safetensors", mask="m",
                                         compute_matched=True, budget_cap=0.5))],
     "budget_cap 0.5: expected >= 1"),
    (["train", "--job", train_job(member("x", "init.safetensors", compute_matched=True))],
     "compute_matched needs a mask"),
    (["train", "--job", train_job(member("x", "init.safetensors", counted_kinds=("fcc",)))],
     "counted_kinds ['fcc']: expected some of"),
    (["init", *FIX, "--model", "lenet300_100", "--data-root", "data", "--out", "x"],
     "the following arguments are required: --init"),
    (["init", *FIX, "--model", "lenet300_100", "--init", "he", "--data-root", "data",
      "--out", "x"], "init must be one of glorot, kaiming_fan_in, kaiming_fan_out"),
    (["train", "--job", "{not json"], "--job: not valid JSON"),
    (["init", *FIX, "--model", "lenet300_100", "--init", "glorot", "--data-root", "nowhere",
      "--out", "x"], "nowhere/manifest.json: file not found"),
    (["init", *FIX, "--model", "alexnet", "--init", "glorot", "--data-root", "data",
      "--out", "x"],
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
    from lth.core.io import save_tensors

    save_tensors(lab / "wrong_mask.safetensors", torch_mask)
    err = error_of(capsys, "train", "--job", train_job(member(
        "wrong", "init.safetensors", level="round1", mask="wrong_mask.safetensors")))
    assert "does not match the model" in err and not (lab / "wrong").exists()


def test_the_cli_names_exactly_the_verbs_the_commands_run():
    """cli's verb names (parsed without importing torch or the report code) are the
    commands that run them: lth.verbs.commands' and lth.verbs.report's."""
    from lth.plan import registry
    from lth.verbs import cli, commands
    from lth.verbs import report as report_cli

    assert set(cli.PLAIN_VERBS) == set(commands.PLAIN_COMMANDS)
    assert set(cli.REPORT_VERBS) == set(report_cli.COMMANDS)
    assert not set(cli.own_verbs()) & set(registry.verbs())
