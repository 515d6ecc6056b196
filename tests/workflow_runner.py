"""The one way the tests run the real Snakemake on the lth workflow: as `make report` runs it.

Every run gets the environment of `make report` (the virtual environment of this interpreter
leading PATH, as if activated), the profile `make report` uses (profiles/local; SLURM tests
name profiles/slurm), two cores and one timeout. A working directory that holds a checkout
(see copy_checkout) runs that checkout's workflow, whose jobs import that checkout's
library: a test may edit it without touching this repository.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
LOCAL_PROFILE = REPO / "profiles" / "local"
"""The profile of `make report` (Makefile): the one every local test run uses."""
SLURM_PROFILE = REPO / "profiles" / "slurm"
TIMEOUT_S = 900
PROFILE_NOTICE = re.compile(r"Using workflow specific profile \S+ for setting default command "
                            r"line arguments\.")
CHECKOUT_PARTS = ("Snakefile", "workflow", "src/lth", "envs", "profiles")
"""What a checkout needs to run the workflow: the rules and the library its jobs import."""


def copy_checkout(dest: Path) -> Path:
    """The workflow and library of this repository copied into dest (created if needed)."""
    for part in CHECKOUT_PARTS:
        source, target = REPO / part, dest / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def environment() -> dict[str, str]:
    """This interpreter's virtual environment, activated as `make report` activates it."""
    venv = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "VIRTUAL_ENV": str(venv.parent)}


def command(workdir: Path, *args: str, config: Path | None = TINY,
            profile: Path = LOCAL_PROFILE, module: str = "snakemake",
            cores: int | None = 2) -> list[str]:
    """`python -m <module>` (snakemake, or lth.launch as `make report` starts it) on the
    workflow of the checkout in workdir if it holds one, else of this repository; cores
    None leaves them to the profile (SLURM's jobs are not the local cores)."""
    snakefile = workdir / "Snakefile"
    if not snakefile.is_file():
        snakefile = REPO / "Snakefile"
    return [sys.executable, "-m", module, "--snakefile", str(snakefile), "--directory",
            str(workdir), "--workflow-profile", str(profile),
            *(["--cores", str(cores)] if cores else []), *args,
            *(["--configfile", str(config)] if config else [])]  # last: it takes several values


def run(workdir: Path, *args: str, check: bool = True, **how) -> subprocess.CompletedProcess:
    """Run Snakemake in workdir to its end, output captured; with check, fail the test
    (showing the output's end) unless it succeeds. `how`: see command()."""
    done = subprocess.run(command(workdir, *args, **how), capture_output=True, text=True,
                          cwd=workdir, env=environment(), timeout=TIMEOUT_S, check=False)
    if check:
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def output_of(workdir: Path, *args: str, **how) -> str:
    """What a successful Snakemake run in workdir says (stdout and stderr)."""
    done = run(workdir, *args, **how)
    return done.stdout + done.stderr


def said(done: subprocess.CompletedProcess) -> list[str]:
    """The lines a run printed (stdout, then stderr) other than Snakemake's notice of the
    profile it reads, which precedes anything lth says."""
    lines = (done.stdout + done.stderr).splitlines()
    return [line for line in lines if not PROFILE_NOTICE.fullmatch(line)]


def start(workdir: Path, *args: str, **how) -> subprocess.Popen:
    """Start Snakemake in workdir in its own process group (so that a test can kill it with
    all its jobs), output piped."""
    return subprocess.Popen(command(workdir, *args, **how), cwd=workdir, env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
