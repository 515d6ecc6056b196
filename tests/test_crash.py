"""A run killed at any moment, then started again with the same command, ends with the same
bytes; a second run on a busy directory is refused with one line (lth.launch, what
`make report` runs)."""

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import workflow_runner
from generated import write_learnable_idx_folder
from lth.launch import is_snakemake, workdir_of
from workflow_runner import TINY

TARGET = "results/tiny/summary.csv"  # every training job of the tiny experiment


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The tiny Fashion-MNIST files, written once: every run reads the same bytes."""
    folder = tmp_path_factory.mktemp("data") / "tiny_fmnist"
    write_learnable_idx_folder(folder, n_train=600, n_test=200)
    return folder


def prepare(workdir: Path, dataset: Path) -> Path:
    """A working directory with the tiny dataset; returns the one-experiment config."""
    shutil.copytree(dataset, workdir / "tiny_fmnist")
    cfg = yaml.safe_load(TINY.read_text())
    cfg["experiments"] = {"tiny": cfg["experiments"]["tiny"]}
    config = workdir / "crash.yaml"
    config.write_text(yaml.safe_dump(cfg))
    return config


def start(workdir: Path, config: Path, launcher: str = "lth.launch") -> subprocess.Popen:
    """Start a run in its own process group (so it can be killed with all its jobs)."""
    return workflow_runner.start(workdir, TARGET, config=config, module=launcher)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=workflow_runner.TIMEOUT_S)
    return proc.returncode, out + err


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the run and every job it started, as a power loss would."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)


TIMINGS = {"timings", "wall_seconds", "latency_seconds", "dense_latency_seconds"}


def without_timings(value):
    """A JSON value with the measured times removed (they differ from run to run)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    return value


def content(path: Path):
    """What a file says apart from measured times; provenance records, which hash the
    files (timings included), are left out: the files they hash are compared."""
    if path.name.endswith(".provenance.json"):
        return None
    if path.suffix == ".json":  # run.json, Early-Bird's search.json
        return without_timings(json.loads(path.read_text()))
    if path.name == "summary.csv":
        return pd.read_csv(path).drop(columns=list(TIMINGS & set(pd.read_csv(path, nrows=0))))
    return path.read_bytes()


def artifacts(workdir: Path) -> dict[str, object]:
    """Every file under results/ and data/ except logs (they hold timings)."""
    return {str(p.relative_to(workdir)): content(p)
            for top in ("results", "data") for p in (workdir / top).rglob("*")
            if p.is_file() and "logs" not in p.parts and p.suffix != ".log"}


def differing(got: dict[str, object], expected: dict[str, object]) -> list[str]:
    """Paths whose content differs."""
    def same(a, b):
        return a.equals(b) if isinstance(a, pd.DataFrame) else a == b
    return [k for k in got if not same(got[k], expected[k])]


def wait_for_snakemake_lock(workdir: Path, proc: subprocess.Popen) -> None:
    """Wait until Snakemake has locked workdir (it then has its DAG and runs jobs)."""
    locks = workdir / ".snakemake" / "locks"
    deadline = time.monotonic() + 120
    while not (locks.is_dir() and any(locks.iterdir())):
        assert proc.poll() is None, finish(proc)[1][-3000:]
        assert time.monotonic() < deadline, "snakemake never locked the directory"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dataset) -> tuple[dict[str, object], float]:
    """The artifacts of an uninterrupted run, and how long it took."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    config = prepare(workdir, dataset)
    began = time.monotonic()
    status, said = finish(start(workdir, config))
    assert status == 0, said[-3000:]
    return artifacts(workdir), time.monotonic() - began


def test_a_run_killed_at_a_random_moment_finishes_with_the_same_bytes(reference, dataset, tmp_path):
    expected, duration = reference
    config = prepare(tmp_path, dataset)
    moment = random.Random().uniform(1.0, 0.7 * duration)
    run = start(tmp_path, config)
    time.sleep(moment)
    assert run.poll() is None, f"the run ended before the kill at {moment:.1f} s"
    kill(run)
    left_locked = any((tmp_path / ".snakemake" / "locks").glob("*"))

    status, said = finish(start(tmp_path, config))

    assert status == 0, f"killed at {moment:.1f} s; the rerun said:\n{said[-3000:]}"
    assert ("did not finish" in said) == left_locked, said[-3000:]
    got = artifacts(tmp_path)
    assert got.keys() == expected.keys(), f"killed at {moment:.1f} s"
    assert differing(got, expected) == [], f"killed at {moment:.1f} s"
    assert not list(tmp_path.rglob("*.tmp")), f"killed at {moment:.1f} s"
    assert not any((tmp_path / ".snakemake" / "locks").glob("*"))


def test_a_second_run_on_a_busy_directory_is_refused_with_one_line(dataset, tmp_path):
    config = prepare(tmp_path, dataset)
    first = start(tmp_path, config)
    try:
        wait_for_snakemake_lock(tmp_path, first)
        status, said = finish(start(tmp_path, config))
        assert first.poll() is None, "the first run did not survive the second one"
    finally:
        kill(first)
    assert status == 1
    assert said.strip() == (f"lth: another run (pid {first.pid}) is using {tmp_path}; wait for "
                            "it to finish, or stop it, then run the same command again")


def test_a_live_snakemake_started_by_hand_is_never_unlocked(dataset, tmp_path):
    config = prepare(tmp_path, dataset)
    by_hand = start(tmp_path, config, launcher="snakemake")
    try:
        wait_for_snakemake_lock(tmp_path, by_hand)
        status, said = finish(start(tmp_path, config))
        assert by_hand.poll() is None
        assert any((tmp_path / ".snakemake" / "locks").iterdir()), "a live run was unlocked"
    finally:
        kill(by_hand)
    assert status == 1
    assert said.strip() == (f"lth: a Snakemake run (pid {by_hand.pid}) started without "
                            f"lth.launch is using {tmp_path}; wait for it to finish, then run "
                            "the same command again")


@pytest.mark.parametrize("cmdline, expected", [
    (["/venv/bin/python3", "/venv/bin/snakemake", "report"], True),
    (["python", "-m", "snakemake", "--cores", "2"], True),
    (["/usr/local/bin/snakemake"], True),
    (["/bin/bash", "-c", "python -m lth train --job {} 2>&1 | tee log"], False),
    (["python", "-m", "lth.launch", "report"], False),
    ([], False),
])
def test_snakemake_processes_are_told_from_their_jobs(cmdline, expected):
    assert is_snakemake(cmdline) is expected


def test_the_working_directory_is_read_from_the_arguments(tmp_path):
    assert workdir_of(["report", "--directory", "w"], tmp_path) == tmp_path / "w"
    assert workdir_of(["-d", "/abs", "report"], tmp_path) == Path("/abs")
    assert workdir_of(["--directory=w/x"], tmp_path) == tmp_path / "w" / "x"
    assert workdir_of(["report", "--cores", "2"], tmp_path) == tmp_path
