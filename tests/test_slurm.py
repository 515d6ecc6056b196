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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from generated import write_learnable_idx_folder

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "profiles" / "slurm"
# The profile keeps the plugin's status polling for real clusters (first check after 40 s);
# a test polls every second instead, which a one-node test cluster answers instantly.
FAST_STATUS_CHECKS = (
    "--slurm-init-seconds-before-status-checks=1",
    "--seconds-between-status-checks=1",
)
SNAKEMAKE_TIMEOUT_S = 900
OUTPUT_TAIL_CHARS = 4000


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


@dataclass(frozen=True)
class WorkflowCase:
    """A workflow to run on the cluster and the check of its outputs."""

    snakefile: Path
    configfile: Path | None
    targets: tuple[str, ...]
    check_outputs: Callable[[Path], None]
    prepare_workdir: Callable[[Path], None] = lambda workdir: None

    def workflow_args(self, workdir: Path) -> list[str]:
        """Arguments selecting this workflow, its config and `workdir`."""
        config = ["--configfile", str(self.configfile)] if self.configfile else []
        return ["--snakefile", str(self.snakefile), *config, "--directory", str(workdir)]


CASES = [
    pytest.param(
        WorkflowCase(
            REPO / "Snakefile",
            REPO / "tests" / "configs" / "tiny.yaml",
            ("all",),
            check_lth_outputs,
            lambda workdir: write_learnable_idx_folder(workdir / "tiny_fmnist", 600, 200),
        ),
        id="lth-tiny",
    ),
]


def snakemake(args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    """Run the snakemake CLI of this interpreter in `workdir`, output captured.

    The interpreter's bin directory leads PATH, as in an activated virtual environment,
    so that `python` in the jobs (exported to SLURM with --export=ALL) is this one.
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=SNAKEMAKE_TIMEOUT_S,
        check=False,
    )


def failure_report(result: subprocess.CompletedProcess, workdir: Path) -> str:
    """The tail of snakemake's output and of every SLURM log, to debug a failed run."""
    logs = [
        f"--- {path}\n{path.read_text()[-OUTPUT_TAIL_CHARS:]}"
        for path in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    ]
    output = (result.stdout + result.stderr)[-OUTPUT_TAIL_CHARS:]
    return "\n".join([f"snakemake exited {result.returncode}:", output, *logs])


@pytest.mark.parametrize("case", CASES)
def test_workflow_runs_in_slurm_jobs(case: WorkflowCase, tmp_path: Path):
    problem = cluster_problem()
    if problem is not None:
        skip_or_fail(problem)
    missing = [path for path in (case.snakefile, case.configfile) if path and not path.exists()]
    if missing:
        skip_or_fail(f"workflow files missing: {', '.join(map(str, missing))}")

    case.prepare_workdir(tmp_path)
    run = snakemake(
        [
            *case.workflow_args(tmp_path),
            "--workflow-profile",
            str(SLURM_PROFILE),
            *FAST_STATUS_CHECKS,
            *case.targets,
        ],
        tmp_path,
    )
    assert run.returncode == 0, failure_report(run, tmp_path)

    dry_run = snakemake([*case.workflow_args(tmp_path), "--dry-run", *case.targets], tmp_path)
    assert dry_run.returncode == 0, failure_report(dry_run, tmp_path)
    assert "Nothing to be done" in dry_run.stdout + dry_run.stderr, dry_run.stdout
    case.check_outputs(tmp_path)
