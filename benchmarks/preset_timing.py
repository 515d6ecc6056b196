"""Wall time of a preset's workflow, end to end to its HTML report, on this machine.

Runs the real Snakemake workflow on the preset in a fresh working directory and reports the
wall time, the jobs and networks it ran, and per rule the jobs' count, summed and longest
durations (from Snakemake's log, to the second), so that start-up and training can be told
apart. The HTML report is the target (the PDF needs LaTeX, which a GPU box may lack).

Data: where the preset's dataset is MNIST, Fashion-MNIST or CIFAR-10 and no --source is
given, its files are generated in the real on-disk format at the real sizes (60,000 + 10,000
or 50,000 + 10,000 learnable images, tests/generated.py; CIFAR-10 prepared as the preset
slices prepare it, tests/preset_slice.py): the timing is that of the real shapes, the
accuracies are not the dataset's. Speech Commands needs --source speech_commands=FOLDER.

A slice (`--set KEY=VALUE`, a YAML value, applied to every experiment of the preset, e.g.
`--set seeds=[0] --set imp.rounds=2`) times part of a preset that does not fit the time at
hand; the record keeps the slice beside the figures, so any extrapolation can say from what.

    python benchmarks/preset_timing.py workflow/presets/lth_lenet_mnist.yaml \\
        [--set KEY=VALUE ...] [--cores N] [--gpus N] [--workdir DIR] [--record [PATH]]
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pandas as pd
import torch
import yaml
from record import add_section

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from preset_slice import prepare_cifar10  # noqa: E402

from generated import (  # noqa: E402  (the tests' writers)
    write_learnable_cifar_folder,
    write_learnable_idx_folder,
)

GENERATED = {"mnist", "fashion_mnist", "cifar10"}
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
STARTED = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")


def sliced(preset: dict, settings: list[str]) -> dict:
    """The preset's experiments with each KEY=VALUE (dotted key, YAML value) set in every one."""
    experiments = copy.deepcopy(preset["experiments"])
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise SystemExit(f"preset_timing: --set {setting!r} is not KEY=VALUE")
        *parents, leaf = key.split(".")
        for e in experiments.values():
            for part in parents:
                e = e.setdefault(part, {})
            e[leaf] = yaml.safe_load(value)
    return experiments


def generated_datasets(experiments: dict, given: list[str]) -> list[str]:
    """The datasets in use without a --source folder: generated, Speech Commands aside."""
    names = {e["dataset"] for e in experiments.values()} - {s.split("=", 1)[0] for s in given}
    unknown = sorted(names - GENERATED)
    if unknown:
        raise SystemExit(f"preset_timing: dataset {unknown[0]} needs --source {unknown[0]}=FOLDER")
    return sorted(names)


def data_sources(given: list[str], generated: list[str], workdir: Path) -> dict[str, str]:
    """datasets.source for the run: the --source folders, and IDX folders written for the
    generated MNIST-like datasets (generated CIFAR-10 is prepared into workdir/data)."""
    sources = dict(s.split("=", 1) for s in given)
    for name in generated:
        folder = workdir / f"generated_{name}"
        if name == "cifar10":
            prepare_cifar10(write_learnable_cifar_folder(folder, 50_000, 10_000), workdir)
        else:
            sources[name] = str(write_learnable_idx_folder(folder, n_train=60_000,
                                                           n_test=10_000))
    return sources


def job_durations(log: str) -> list[tuple[str, float]]:
    """(rule, seconds) of every finished job in a Snakemake log."""
    now, rule, started, done = None, None, {}, []
    for line in log.splitlines():
        if m := STAMP.match(line):
            now = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := STARTED.match(line):
            rule = m.group(1)
        elif (m := JOBID.match(line)) and rule:
            started[m.group(1)] = (rule, now)
            rule = None
        elif (m := FINISHED.match(line)) and m.group(1) in started:
            name, began = started.pop(m.group(1))
            done.append((name, (now - began).total_seconds()))
    return done


def per_rule(durations: list[tuple[str, float]]) -> dict[str, dict]:
    """Per rule: jobs, summed and longest seconds."""
    rules: dict[str, list[float]] = defaultdict(list)
    for name, seconds in durations:
        rules[name].append(seconds)
    return {name: {"jobs": len(s), "seconds": sum(s), "longest": max(s)}
            for name, s in sorted(rules.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", type=Path)
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE")
    parser.add_argument("--source", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--gpus", type=int, default=int(torch.cuda.is_available()))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--record", nargs="?", const="", default=None, metavar="PATH")
    args = parser.parse_args()
    preset = yaml.safe_load(args.preset.read_text())
    experiments = sliced(preset, args.settings)
    generated = generated_datasets(experiments, args.source)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="preset_timing_"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "timing.yaml"
    config.write_text(yaml.safe_dump({
        "experiments": experiments,
        "datasets": {"source": data_sources(args.source, generated, workdir),
                     "download": False}}))
    targets = [f"reports/{name}/report.html" for name in experiments]
    cmd = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--cores", str(args.cores),
           "--resources", f"gpu={args.gpus}", "--configfile", str(args.preset.resolve()),
           str(config)]
    print("running:", " ".join(cmd), flush=True)  # the jobs' `python` is this one
    began = time.perf_counter()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    wall = time.perf_counter() - began
    (workdir / "snakemake.log").write_text(run.stdout + run.stderr)
    if run.returncode:
        raise SystemExit(f"preset_timing: snakemake failed ({run.returncode}); "
                         f"log: {workdir / 'snakemake.log'}\n{run.stderr[-3000:]}")
    durations = job_durations(run.stdout + run.stderr)
    networks = sum(len(pd.read_csv(workdir / f"results/{name}/summary.csv"))
                   for name in experiments)
    rules = per_rule(durations)
    for name, r in rules.items():
        print(f"{name:32s} {r['jobs']:4d} jobs {r['seconds']:8.0f} s, longest {r['longest']:.0f} s")
    print(f"wall_seconds: {wall:.0f} ({len(durations)} jobs, {networks} networks, "
          f"{args.cores} cores, gpu={args.gpus})")
    if args.record is not None:
        device = torch.device("cuda" if args.gpus else "cpu")
        figures = {"preset": str(args.preset), "slice": args.settings, "cores": args.cores,
                   "gpus": args.gpus, "generated_data": generated,
                   "wall_seconds": wall, "jobs": len(durations), "networks": networks,
                   "rules": rules}
        print("recorded in", add_section(args.record, "preset_timing", device, figures))


if __name__ == "__main__":
    main()
