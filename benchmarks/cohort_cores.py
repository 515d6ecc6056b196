"""Wall time of one CPU cohort job: its members one after another vs side by side.

The job is the real `python -m lth train --job ...` (the command a cohort rule runs, its
import of torch and load of the data included) of N dense LeNet-300-100 of seeds 0..N-1 at
the default experiment's schedule (config.yaml: Adam 1.2e-3, batch 60, 1,000 iterations,
validation and test every 250, train accuracy on 10,000 examples), on Fashion-MNIST-shaped
data generated in the real IDX format (tests/generated.py: 60,000 + 10,000 images; 5,000
held out for validation). Two modes, alternated `--repeats` times in one run:

- sequential: `--threads 1`, the members one after another in the job's process (what a
  cohort job did on CPU before lth.core.workers);
- parallel: `--threads N`, one worker process per member, one intra-op thread each.

Prints every run (wall and CPU seconds, the cores it kept busy, the load average: the
machine may be shared), the median per mode and, last, `cores_speedup: X` (sequential median /
parallel median); checks that both modes wrote the same final weights, byte for byte.
`--record [PATH]` writes the figures into the benchmark record (benchmarks/record.py).

    python benchmarks/cohort_cores.py [--members 2] [--iterations 1000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from record import add_section

from lth.core.io import load_tensors
from lth.plan.spec import Engine, Member, Schedule, TrainJob, to_json

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from generated import write_learnable_idx_folder  # noqa: E402  (the tests' IDX writer)

MODES = ("sequential", "parallel")
SPEECH = ["--speech-features", "mfcc", "--speech-n-fft", 480, "--speech-win-length", 480,
          "--speech-hop-length", 160, "--speech-n-mels", 40, "--speech-n-mfcc", 40]
"""The prepare verb's speech settings (required; unused for Fashion-MNIST)."""


def default_schedule(iterations: int) -> Schedule:
    """config.yaml's training block (its other keys at the schema's defaults)."""
    return Schedule(optimizer="adam", lr=0.0012, momentum=0.0, nesterov=False, weight_decay=0.0,
                    batch_size=60, iterations=iterations, milestones=(), gamma=0.1, warmup=0,
                    dropout=0.0, augment=False, eval_every=250, eval_batch_size=5000,
                    train_eval_size=10000)


def lth(*args, cwd: Path) -> None:
    """Run `python -m lth ARGS` in cwd with this checkout's library; exit on failure."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    run = subprocess.run([sys.executable, "-m", "lth", *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"cohort_cores: lth {args[0]} failed:\n{run.stderr[-2000:]}")


def prepared_lab(members: int) -> Path:
    """A folder with the generated dataset prepared and theta_0 of every member's seed."""
    lab = Path(tempfile.mkdtemp(prefix="cohort_cores_"))
    source = write_learnable_idx_folder(lab / "source", n_train=60_000, n_test=10_000)
    lth("prepare", "--dataset", "fashion_mnist", "--root", "data", "--source", source,
        "--download", "false", *SPEECH, cwd=lab)
    for seed in range(members):
        lth("init", "--experiment", "bench", "--seed", seed, "--model", "lenet300_100",
            "--init", "glorot", "--data-root", "data", "--out", f"init{seed}.safetensors",
            cwd=lab)
    return lab


def cohort_job(members: int, iterations: int, out: str) -> str:
    """The JSON of a train job of `members` dense networks writing under out/."""
    engine = Engine(stack="auto", slots=16, capture=True, tf32=False)
    return to_json(TrainJob("bench", "data", 5000, "cpu", default_schedule(iterations), engine,
                            tuple(Member(seed=s, method="imp", family="lottery",
                                         level="round0", init=f"init{s}.safetensors",
                                         out_dir=f"{out}/seed{s}")
                                  for s in range(members))))


def timed_job(lab: Path, members: int, iterations: int, mode: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one cohort job in `mode`, its process start included;
    the CPU seconds are those of the job and its workers (user + system)."""
    threads = 1 if mode == "sequential" else members
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    lth("train", "--job", cohort_job(members, iterations, mode), "--threads", threads, cwd=lab)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def same_bytes(lab: Path, members: int) -> bool:
    """Whether both modes wrote the same final weights for every member, byte for byte (the
    files' headers differ: they record each mode's output folder)."""

    def weights(mode: str, seed: int) -> dict[str, bytes]:
        tensors = load_tensors(lab / f"{mode}/seed{seed}/final.safetensors")
        return {k: v.numpy().tobytes() for k, v in tensors.items()}

    return all(weights("sequential", s) == weights("parallel", s) for s in range(members))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--record", nargs="?", const="", default=None, metavar="PATH")
    args = parser.parse_args()
    lab = prepared_lab(args.members)
    print(f"{args.members} members, {args.iterations} iterations, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; lab {lab}", flush=True)
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for repeat in range(args.repeats):
        for mode in MODES:
            wall, used = timed_job(lab, args.members, args.iterations, mode)
            seconds[mode].append(wall)
            cpu[mode].append(used)
            print(f"run {repeat + 1} {mode:10s} {wall:7.1f} s wall, {used:7.1f} s CPU "
                  f"({used / wall:.2f} cores busy), load average {os.getloadavg()[0]:.1f}",
                  flush=True)
    median = {mode: statistics.median(values) for mode, values in seconds.items()}
    identical = same_bytes(lab, args.members)
    print(f"median: sequential {median['sequential']:.1f} s | parallel "
          f"{median['parallel']:.1f} s | same final bytes: {identical}")
    speedup = median["sequential"] / median["parallel"]
    print(f"cores_speedup: {speedup:.2f}")
    if args.record is not None:
        figures = {"members": args.members, "iterations": args.iterations,
                   "seconds": seconds, "cpu_seconds": cpu, "median": median,
                   "same_bytes": identical, "cores_speedup": speedup}
        print("recorded in", add_section(args.record, "cohort_cores", torch.device("cpu"),
                                         figures))
    if not identical:
        raise SystemExit("cohort_cores: the modes wrote different bytes")


if __name__ == "__main__":
    main()
