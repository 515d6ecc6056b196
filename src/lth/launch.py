"""Start Snakemake so that a crash never blocks the next run, and two runs never share a
directory: `python -m lth.launch <snakemake arguments>` (what `make report` runs).

A run holds an OS lock (flock) on `.snakemake/lth-run.lock` for as long as its Snakemake
process lives; the kernel drops it when the process dies, however it dies (Ctrl-C,
SIGKILL, power loss). So, before starting Snakemake:
- the lock is held: another run is using the directory; refuse with one line;
- the lock is free but Snakemake's own lock files remain (`.snakemake/locks`): the run that
  left them is dead, unless a Snakemake process started by hand (without this launcher) is
  working in the directory. With none alive, remove the stale lock (`snakemake --unlock`)
  and go on; a killed job's outputs are then rerun (`rerun-incomplete` in the profiles).
Where processes cannot be inspected (no /proc), print the one command that continues.
This module does not import torch: it costs nothing before Snakemake starts.
"""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

RUN_LOCK = Path(".snakemake") / "lth-run.lock"
SNAKEMAKE_LOCKS = Path(".snakemake") / "locks"
PROC = Path("/proc")


def workdir_of(args: list[str], cwd: Path) -> Path:
    """The working directory Snakemake will use: --directory/-d, else cwd."""
    for i, arg in enumerate(args):
        if arg in ("--directory", "-d") and i + 1 < len(args):
            return (cwd / args[i + 1]).resolve()
        if arg.startswith("--directory="):
            return (cwd / arg.split("=", 1)[1]).resolve()
    return cwd.resolve()


def hold_run_lock(workdir: Path) -> int:
    """Take the directory's run lock, or exit with one line naming the run that holds it.
    Returns the locked file descriptor, inheritable so that Snakemake keeps holding it."""
    path = workdir / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        sys.exit(f"lth: another run (pid {holder}) is using {workdir}; wait for it to "
                 "finish, or stop it, then run the same command again")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.set_inheritable(fd, True)
    return fd


def has_stale_locks(workdir: Path) -> bool:
    """Snakemake's lock files are there (their run is dead when our run lock was free)."""
    locks = workdir / SNAKEMAKE_LOCKS
    return locks.is_dir() and any(locks.iterdir())


def is_snakemake(cmdline: list[str]) -> bool:
    """A Snakemake process: its executable or `-m snakemake`, not a job it started."""
    if not cmdline:
        return False
    if Path(cmdline[0]).name == "snakemake":
        return True
    return any(Path(a).name == "snakemake" for a in cmdline[1:3]) or (
        "-m" in cmdline[1:3] and "snakemake" in cmdline[1:4])


def process_workdir(pid_dir: Path) -> tuple[list[str], Path] | None:
    """(command line, the directory it works in) of one /proc entry, or None if gone."""
    try:
        cmdline = (pid_dir / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        cwd = Path(os.readlink(pid_dir / "cwd"))
    except OSError:
        return None
    return cmdline, workdir_of(cmdline[1:], cwd)


def live_snakemake_pids(workdir: Path) -> list[int]:
    """Pids of Snakemake processes (other than this one) working in workdir."""
    pids = []
    for pid_dir in PROC.iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        seen = process_workdir(pid_dir)
        if seen and is_snakemake(seen[0]) and seen[1] == workdir:
            pids.append(int(pid_dir.name))
    return pids


def clear_stale_locks(workdir: Path, args: list[str]) -> None:
    """Unlock what a dead run left locked; never a directory a live Snakemake uses."""
    unlock = [sys.executable, "-m", "snakemake", *args, "--unlock"]
    if not (PROC / "self").exists():
        sys.exit(f"lth: {workdir} is locked by an earlier run; if no Snakemake is running "
                 f"there, continue with: {' '.join(unlock[2:])} && the same command again")
    live = live_snakemake_pids(workdir)
    if live:
        sys.exit(f"lth: a Snakemake run (pid {live[0]}) started without lth.launch is using "
                 f"{workdir}; wait for it to finish, then run the same command again")
    print(f"lth: an earlier run in {workdir} did not finish; removing its stale lock and "
          "continuing (unfinished jobs rerun)", file=sys.stderr, flush=True)
    done = subprocess.run(unlock, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"lth: could not unlock {workdir}: {said}")


def interpreter_first_on_path() -> None:
    """Put this interpreter's folder first on PATH, so that the jobs' `python -m lth` run in
    the environment the launcher runs in (`.venv/bin/python -m lth.launch` without an
    activated venv would otherwise start jobs with whatever `python` PATH finds)."""
    here = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([here, os.environ.get("PATH", "")])


def main(argv: list[str] | None = None) -> None:
    """Lock the directory, clear a dead run's lock, then become Snakemake."""
    args = sys.argv[1:] if argv is None else argv
    workdir = workdir_of(args, Path.cwd())
    hold_run_lock(workdir)
    if has_stale_locks(workdir):
        clear_stale_locks(workdir, args)
    interpreter_first_on_path()
    os.execv(sys.executable, [sys.executable, "-m", "snakemake", *args])


if __name__ == "__main__":
    main()
