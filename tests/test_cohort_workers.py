"""CPU cohorts in worker processes (lth.core.workers): the same bytes as one after another
with one thread, every member in its own worker, a crash as one line that writes nothing."""

import dataclasses
import inspect
import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from test_cli import error_of, lth, member, prepared_lab, train_job

import lth.core.cohort as engine
from lth.core.cohort import Net, train_cohort
from lth.core.io import LthError
from lth.core.train import train
from lth.core.workers import worker_count
from lth.methods.reintroduce import AlignmentScores
from lth.plan.spec import Engine
from networks import SCHEDULE, cluster_splits, lenet, magnitude_mask
from workflow_runner import REPO, output_of

SPLITS = cluster_splits()
S = dataclasses.replace(SCHEDULE, iterations=15, eval_every=5)
OFF = Engine(stack="off", slots=4, capture=False, tf32=False)
EXECUTION = ("timings", "cohort")
"""The run.json fields that describe how a network was trained, not what it is."""


def order(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + seed)


def tensor_bytes(state: dict) -> dict:
    return {k: v.numpy().tobytes() for k, v in state.items()}


@pytest.fixture
def one_thread():
    """This process at one intra-op thread (the sequential reference), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cohort(seeds, hooked=False):
    """LeNets at 20% magnitude masks, checkpointing iteration 5; with Scored-pruning's
    alignment hook (scores accumulated in the training process) when hooked."""
    nets = []
    for seed in seeds:
        mask = magnitude_mask(lenet(seed), density=0.2)
        hook = AlignmentScores(lenet(seed + 7).state_dict(), mask) if hooked else None
        nets.append(Net(lenet(seed), mask, seed, f"[seed{seed}]", (5,), seed,
                        after_backward=hook))
    return nets


@pytest.mark.parametrize("hooked", [False, True])
def test_workers_give_the_bytes_of_one_after_another_with_one_thread(one_thread, hooked):
    sequential, parallel = cohort([0, 1, 2], hooked), cohort([0, 1, 2], hooked)
    train_cohort(sequential, SPLITS, S, order, OFF, log=lambda _: None)
    train_cohort(parallel, SPLITS, S, order, OFF, log=lambda _: None, workers=2)
    for one, other in zip(sequential, parallel, strict=True):
        assert tensor_bytes(one.model.state_dict()) == tensor_bytes(other.model.state_dict())
        assert tensor_bytes(one.result.checkpoints[5]) == tensor_bytes(other.result.checkpoints[5])
        assert one.result.metrics == other.result.metrics and len(one.result.metrics) == 9
        if hooked:
            assert tensor_bytes(one.after_backward.scores()) == tensor_bytes(
                other.after_backward.scores())
            assert other.after_backward.steps == S.iterations
    assert {net.process for net in sequential} == {os.getpid()}
    # members 0 and 2 in worker 0, member 1 in worker 1: two children of this process
    pids = [net.process for net in parallel]
    assert pids[0] == pids[2] != pids[1] and os.getpid() not in pids
    assert {net.threads for net in parallel} == {1}


def test_a_lone_network_of_a_call_trains_in_a_worker_with_one_thread(one_thread):
    """A job of several networks in calls of one (one schedule each): each still trains with
    one thread, the bytes of its one-after-another run, not with the job's threads."""
    torch.set_num_threads(2)
    try:
        lone = cohort([4])
        train_cohort(lone, SPLITS, S, order, OFF, log=lambda _: None, workers=2)
    finally:
        torch.set_num_threads(1)
    reference = cohort([4])
    train_cohort(reference, SPLITS, S, order, OFF, log=lambda _: None)
    assert (lone[0].threads, reference[0].threads) == (1, 1) and lone[0].process != os.getpid()
    assert tensor_bytes(lone[0].model.state_dict()) == tensor_bytes(
        reference[0].model.state_dict())


def test_workers_follow_the_threads_on_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [worker_count(3, cpu, t) for t in (1, 2, 3, 8)] == [1, 2, 3, 3]
    assert worker_count(1, cpu, 8) == 1 and worker_count(4, cuda, 8) == 1


def test_a_worker_killed_by_a_signal_fails_the_cohort_in_one_line(one_thread):
    nets = cohort([0, 1])

    def killed(it, model):
        if it == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    nets[1].after_backward = killed
    with pytest.raises(LthError, match=r"^\[seed1\]: worker process \d+ died \(signal SIGKILL\) "
                                       "before it was trained$"):
        train_cohort(nets, SPLITS, S, order, OFF, log=lambda _: None, workers=2)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A prepared tiny Fashion-MNIST and theta_0 of seeds 0 and 1, as the working directory."""
    inits = {seed: f"init{seed}.safetensors" for seed in (0, 1)}
    with prepared_lab(tmp_path_factory.mktemp("workers"), inits) as root:
        yield root


def job(folder: str) -> str:
    """A cohort of seeds 0 and 1 (dense, saving iteration 5) writing under folder."""
    return train_job(*(member(f"{folder}/seed{seed}", f"init{seed}.safetensors", seed=seed,
                              save_at=5) for seed in (0, 1)))


def run_folder(folder: str, seed: int) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(f"{folder}/seed{seed}").iterdir())}


def without_execution(run_json: bytes) -> dict:
    run = json.loads(run_json)
    for key in EXECUTION:
        del run[key]
    del run["result"]["wall_seconds"]
    return run


def test_a_two_member_job_on_two_threads_keeps_the_bytes_and_uses_two_workers(lab, capsys):
    assert lth("train", "--job", job("runs"), "--threads", 1) == 0
    sequential = {seed: run_folder("runs", seed) for seed in (0, 1)}
    os.rename("runs", "runs_sequential")
    assert lth("train", "--job", job("runs"), "--threads", 2) == 0
    cohorts = {}
    for seed in (0, 1):
        files = run_folder("runs", seed)
        assert set(files) == {"final.safetensors", "mask.safetensors", "rewind.safetensors",
                              "metrics.csv", "run.json"}
        for name, data in files.items():
            if name != "run.json":
                assert data == sequential[seed][name], name
        assert without_execution(files["run.json"]) == without_execution(
            sequential[seed]["run.json"])
        cohorts[seed] = [{**r["cohort"], "process": r["timings"]["process"]} for r in (
            json.loads(sequential[seed]["run.json"]), json.loads(files["run.json"]))]
    for seed, (one, two) in cohorts.items():
        assert (one["workers"], one["threads"], one["process"]) == (1, 1, os.getpid())
        assert (two["workers"], two["threads"], two["position"]) == (2, 1, seed)
    pids = {two["process"] for _, two in cohorts.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    capsys.readouterr()


def test_a_member_that_crashes_fails_the_job_in_one_line_and_writes_nothing(
        lab, capsys, monkeypatch):
    assert lth("train", "--job", job("crash"), "--threads", 2) == 0
    before = {seed: run_folder("crash", seed) for seed in (0, 1)}

    def crashing(*args, **kwargs):
        if "seed1" in inspect.signature(train).bind(*args, **kwargs).arguments["prefix"]:
            raise RuntimeError("out of memory in a layer\n(a second line the job leaves out)")
        return train(*args, **kwargs)

    monkeypatch.setattr(engine, "train", crashing)  # the forked workers inherit it
    err = error_of(capsys, "train", "--job", job("crash"), "--threads", 2)
    assert "seed1 imp/round0]: training failed in worker process" in err
    assert err.rstrip().endswith("RuntimeError: out of memory in a layer")
    assert {seed: run_folder("crash", seed) for seed in (0, 1)} == before  # no temp file either


def planned_threads(output: str) -> dict[str, set[int]]:
    """Rule -> the threads of its jobs in a dry run (a job that prints none has 1)."""
    threads: dict[str, set[int]] = {}
    for block in re.split(r"\n(?=\[|rule |localrule )", output):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            found = re.search(r"^\s+threads: (\d+)$", block, re.M)
            threads.setdefault(rule[1], set()).add(int(found[1]) if found else 1)
    return threads


@pytest.mark.parametrize(("cores", "imp", "at_init"), [(1, 1, 1), (3, 2, 3)])
def test_a_cpu_cohort_job_gets_a_thread_per_member_up_to_the_cores(tmp_path, cores, imp, at_init):
    """The default experiment (2 seeds, CPU): an IMP round's job trains 2 networks, a one-shot
    method's 8 (4 densities x 2 seeds)."""
    threads = planned_threads(output_of(tmp_path, "-n", "all", config=REPO / "config.yaml",
                                        cores=cores))
    assert threads["imp_lenet_fmnist"] == {imp}
    assert threads["at_init_lenet_fmnist"] == {at_init}
    assert threads["summarize"] == {1}
