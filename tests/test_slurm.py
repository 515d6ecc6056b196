"""End-to-end runs of Snakemake workflows on a real SLURM cluster with profiles/slurm.

Each case runs the real `snakemake` CLI with `--workflow-profile profiles/slurm` in a fresh
directory, then checks that every requested output exists and that the jobs ran inside
`sbatch` allocations submitted by that run. Needs a reachable cluster: start the one-node
test cluster with `sudo .ci/slurm-cluster.sh start` (.ci/run does this before `make test`).
Without one the tests skip; under CI=true they fail instead, so CI cannot pass by skipping.
"""

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import torch
from safetensors.torch import load_file

import workflow_runner
from generated import write_learnable_idx_folder
from workflow_runner import SLURM_PROFILE

pytestmark = pytest.mark.slurm

# The profile keeps the plugin's status polling for real clusters (first check after 40 s);
# a test polls every second instead, which a one-node test cluster answers instantly.
FAST_STATUS_CHECKS = (
    "--slurm-init-seconds-before-status-checks=1",
    "--seconds-between-status-checks=1",
)
OUTPUT_TAIL_CHARS = 4000


def node_cpu_limit() -> tuple[str, ...]:
    """--max-threads at the CPUs of the cluster's smallest node, as profiles/slurm asks a
    user to set it: a cohort's job asks for a CPU per network, and a job asking for more
    CPUs than a node has would pend for ever (the test cluster's node has the machine's)."""
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                          check=True).stdout.split()
    return ("--max-threads", str(min(int(c.rstrip("+")) for c in cpus)))


def running_in_ci() -> bool:
    """True when the CI environment variable is set (CI=true on GitHub, GitLab, .ci/run)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip outside CI; under CI a missing prerequisite is a failure, never a skip."""
    if running_in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def cluster_problem() -> str | None:
    """Why no job can be submitted to a SLURM cluster now, or None when one answers."""
    hint = "start one with: sudo .ci/slurm-cluster.sh start"
    try:
        ping = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        return f"no SLURM cluster: scontrol not installed (apt-get install slurm-wlm munge); {hint}"
    except subprocess.TimeoutExpired:
        return f"no SLURM cluster reachable: `scontrol ping` timed out; {hint}"
    if ping.returncode != 0 or " is UP" not in ping.stdout:
        answer = ((ping.stdout + ping.stderr).strip().splitlines() or ["nothing"])[0]
        return f"no SLURM cluster reachable: `scontrol ping` says '{answer}'; {hint}"
    return None


def recorded_job_ids_match_sbatch_logs(job_ids: list[str], workdir: Path) -> None:
    """Every job id is a SLURM job that this run submitted with sbatch.

    The SLURM executor names each job's log `<jobid>.log` under .snakemake/slurm_logs,
    and profiles/slurm keeps the logs of successful jobs.
    """
    logged = {path.stem for path in (workdir / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert job_ids, "no SLURM job id recorded"
    assert all(re.fullmatch(r"\d+", job_id) for job_id in job_ids), job_ids
    assert set(job_ids) <= logged, f"job ids {sorted(set(job_ids) - logged)} have no sbatch log"


def check_lth_outputs(workdir: Path) -> None:
    """Every trained network's run.json records the SLURM job it was trained in."""
    run_files = sorted(workdir.glob("results/*/seed*/*/*/run.json"))
    assert run_files, "no run.json written under results/"
    job_ids = {str(path): json.loads(path.read_text())["slurm_job_id"] for path in run_files}
    assert None not in job_ids.values(), f"trained outside SLURM: {job_ids}"
    recorded_job_ids_match_sbatch_logs(list(job_ids.values()), workdir)


TARGETS = ("all",)
TRAINING_RULE = re.compile(r"rule_(?!prepare_data)\w+")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the tiny workflow in `workdir` with profiles/slurm to its end, output captured."""
    return workflow_runner.run(workdir, *args, profile=SLURM_PROFILE, cores=None, check=False)


def squeue_jobs(workdir: Path) -> list[tuple[str, str, str]]:
    """(job id, state, comment) of every SLURM job working in `workdir`."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%Z|%k"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("|", 3) for line in out.splitlines()]
    return [(i, state, comment) for i, state, wd, comment in rows if wd == str(workdir)]


def cancel_a_running_training_job(run: subprocess.Popen, workdir: Path) -> str:
    """scancel a training job of `run` while it runs, as a preemption or an operator
    would; returns its id. A job that ended before the cancel reached it does not count."""
    deadline = time.monotonic() + workflow_runner.TIMEOUT_S
    tried = set()
    while time.monotonic() < deadline and run.poll() is None:
        running = [i for i, state, comment in squeue_jobs(workdir)
                   if state == "RUNNING" and TRAINING_RULE.match(comment) and i not in tried]
        if running:
            tried.add(running[0])
            time.sleep(1.0)  # mid-job: the interpreter is up, the cohort is training
            subprocess.run(["scancel", running[0]], check=True)
            time.sleep(2.0)
            states = {i: state for i, state, _ in squeue_jobs(workdir)}
            if states.get(running[0]) == "CANCELLED":
                return running[0]
        time.sleep(0.2)
    raise AssertionError("no training job of the run could be cancelled while it ran")


def failure_report(output: str, workdir: Path) -> str:
    """The tail of snakemake's output and of every SLURM log, to debug a failed run."""
    logs = [
        f"--- {path}\n{path.read_text()[-OUTPUT_TAIL_CHARS:]}"
        for path in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    ]
    return "\n".join([output[-OUTPUT_TAIL_CHARS:], *logs])


@dataclass(frozen=True)
class ClusterRun:
    """The tiny workflow run on the cluster, one training job cancelled half-way."""

    workdir: Path
    cancelled: str
    output: str


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory) -> ClusterRun:
    problem = cluster_problem()
    if problem is not None:
        skip_or_fail(problem)
    workdir = tmp_path_factory.mktemp("slurm")
    write_learnable_idx_folder(workdir / "tiny_fmnist", 600, 200)
    run = workflow_runner.start(workdir, *FAST_STATUS_CHECKS, *node_cpu_limit(),
                                "--latency-wait", "5", *TARGETS, profile=SLURM_PROFILE,
                                cores=None)
    try:
        cancelled = cancel_a_running_training_job(run, workdir)
        out, err = run.communicate(timeout=workflow_runner.TIMEOUT_S)
    finally:
        run.kill()
    assert run.returncode == 0, failure_report(f"snakemake exited {run.returncode}:\n{out}{err}",
                                               workdir)
    return ClusterRun(workdir, cancelled, out + err)


def test_workflow_runs_in_slurm_jobs(cluster_run):
    dry_run = snakemake(cluster_run.workdir, *node_cpu_limit(), "--dry-run", *TARGETS)
    said = dry_run.stdout + dry_run.stderr
    assert dry_run.returncode == 0, failure_report(said, cluster_run.workdir)
    assert "Nothing to be done" in said, said
    check_lth_outputs(cluster_run.workdir)


def test_a_cancelled_training_job_is_resubmitted_and_trains_the_same_networks(
        cluster_run, tmp_path):
    """The workflow resubmits a scancelled job (`retries` in profiles/slurm); each network of
    its cohort equals the one its recorded one-member job trains here, outside SLURM."""
    runs = sorted(cluster_run.workdir.glob("results/*/seed*/*/*/run.json"))
    records = {path: json.loads(path.read_text()) for path in runs}
    assert cluster_run.cancelled not in {r["slurm_job_id"] for r in records.values()}
    path = cluster_run.workdir / outputs_of_failed_job(cluster_run.output, cluster_run.cancelled)[0]
    record = records[path]
    assert record["slurm_job_id"] is not None
    job = json.loads(record["argv"][2])
    job["members"][0]["out_dir"] = str(tmp_path / "again")
    retrain = subprocess.run([sys.executable, "-m", "lth", "train", "--job", json.dumps(job),
                              "--threads", "1"], cwd=cluster_run.workdir, capture_output=True,
                             text=True, check=False)
    assert retrain.returncode == 0, retrain.stderr[-OUTPUT_TAIL_CHARS:]
    for name in ("final.safetensors", "metrics.csv"):
        assert_same_content(path.parent / name, tmp_path / "again" / name)


def outputs_of_failed_job(output: str, job_id: str) -> list[str]:
    """The run.json outputs of a failed SLURM job, from Snakemake's error report."""
    said = output.split(f"SLURM-job '{job_id}' failed", 1)
    assert len(said) == 2, f"Snakemake did not report job {job_id} as failed"
    listed = re.search(r"^\s*output: (.*)$", said[1], re.M)[1].split(", ")
    return [out for out in listed if out.endswith("run.json")]


def assert_same_content(a: Path, b: Path) -> None:
    """Equal tensors (safetensors: their provenance metadata differs by design) or bytes."""
    if a.suffix == ".safetensors":
        x, y = load_file(a), load_file(b)
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), a
    else:
        assert a.read_bytes() == b.read_bytes(), a
