"""A slice of a preset: every method, control and code path of the preset, at a size that runs
through the real Snakemake DAG to the HTML report on a 2-core CPU in a few minutes.

`slice_config` rewrites a preset's config. Each experiment keeps its dataset, model, optimiser
and its settings (lr, momentum, Nesterov, weight decay, gamma, init), dropout, augmentation,
the rewind schedule, every method block with every method and setting, every control (with
its draws), the resources (threads aside) and the figures. What shrinks:

  seeds                 the first one
  val_size              VAL_SIZE held out (null, an official split, stays null)
  train.iterations      `iterations` (default 30); the iteration points of the schedule are
                        scaled into the slice, keeping their fractions of the training:
                        milestones, warmup, imp.rewind_iteration, earlybird.check_every,
                        freeze_every; a point > 0 stays > 0 (late rewinding stays late, a
                        warm-up stays a warm-up); fine-tunings (finetune, filters) and mining
                        (supermask) last the slice's iterations (they evaluate at
                        train.eval_every, at most their length)
  train.batch_size      at most `batch_size` (default 16)
  train.eval_every      the slice's iterations: evaluations at the start and at the end
  train_eval_size       at most VAL_SIZE
  resources.threads     1, so that two jobs share the two cores
  engine                stack "on", slots 1 (without dropout): a cohort trains as the
                        stacked step `stack: auto` takes on a GPU (CUDA graphs aside), one
                        network wide, rather than the CPU's one-network loop
  imp.rounds            at most `rounds` (default 1); controls.every at most the rounds
  densities (every      the first and the last (the densest and the sparsest level)
    method block)
  elastic.rounds        the first the preset transfers; its source keeps IMP's rounds up to it
  scoring iterations    at most SCORING_ITERATIONS (SynFlow's 100 iterations)
  filters latency       at most LATENCY_REPEATS timings of at most `batch_size` images

The data are generated in each dataset's real on-disk format (tests/generated.py): MNIST and
Fashion-MNIST gz IDX files and a Speech Commands folder are the workflow's source folders,
prepared by its own prepare_data rule; CIFAR-10's python batches are prepared before the run
by the same lth.core.prepare code with torchvision's md5 list pointed at the generated
batches (they cannot have the official md5s), into data/cifar10, where the workflow finds
them prepared.

    python tests/preset_slice.py workflow/presets/lth_lenet_mnist.yaml --workdir DIR [--run]

writes DIR/slice.yaml and the data; with --run also runs Snakemake to every experiment's
reports/<exp>/report.html and prints its wall time, CPU time and job count.
"""

from __future__ import annotations

import argparse
import copy
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated import (  # noqa: E402  (run as a script too)
    cifar_files_accepted,
    write_learnable_cifar_folder,
    write_learnable_idx_folder,
    write_learnable_speech_folder,
)
from workflow_runner import command, environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "workflow" / "presets").glob("*.yaml"))

ITERATIONS = 30
ROUNDS = 1
BATCH_SIZE = 16
VAL_SIZE = 100
SCORING_ITERATIONS = 10
LATENCY_REPEATS = 2
IMAGES = {"train": 1000, "test": 100}
"""Generated images of each image dataset (the validation examples come out of train)."""
SPEECH_CLIPS = {"train": 12, "val": 3, "test": 3}
"""Generated clips of each of the 35 words, by official split."""
SCALED = ("warmup", "rewind_iteration", "check_every", "freeze_every", "iterations")
"""Keys holding an iteration point or length, scaled wherever they occur in a method block
(a method's scoring `iterations` under at_init.methods are not training iterations)."""


def slice_config(preset: dict, iterations: int = ITERATIONS, rounds: int = ROUNDS,
                 batch_size: int = BATCH_SIZE) -> dict:
    """The slice of a preset's config (a copy; the preset is left as it is)."""
    config = copy.deepcopy(preset)
    experiments = config["experiments"]
    for e in experiments.values():
        _slice_experiment(e, iterations, rounds, batch_size)
    for e in experiments.values():
        _slice_transfer(e, experiments, preset["experiments"])
    return config


def _slice_experiment(e: dict, iterations: int, rounds: int, batch_size: int) -> None:
    """Slice one experiment in place (see the module docstring)."""
    e["seeds"] = e.get("seeds", [0, 1])[:1]
    if e.get("val_size", 0) is not None:
        e["val_size"] = VAL_SIZE
    train = e.setdefault("train", {})
    scale = _scaler(train.get("iterations", iterations), iterations)
    train["iterations"] = iterations
    train["milestones"] = _increasing([scale(m) for m in train.get("milestones", [])],
                                      iterations)
    train["warmup"] = scale(train.get("warmup", 0))
    train["batch_size"] = min(train.get("batch_size", batch_size), batch_size)
    train["eval_every"] = iterations
    train["train_eval_size"] = min(train.get("train_eval_size") or VAL_SIZE, VAL_SIZE)
    imp = e.setdefault("imp", {})
    imp["rounds"] = min(imp.get("rounds", rounds), rounds)
    controls = e.get("controls", {})
    if "every" in controls:
        controls["every"] = max(1, min(controls["every"], imp["rounds"]))
    for name, block in e.items():
        if name not in ("train", "resources") and isinstance(block, dict):
            _slice_block(block, scale, iterations, batch_size)
    e.setdefault("resources", {})["threads"] = 1
    if not train.get("dropout"):  # the GPU's path on the CPU (dropout never stacks)
        e["engine"] = {**e.get("engine", {}), "stack": "on", "slots": 1}


def _slice_block(block: dict, scale, iterations: int, batch_size: int) -> None:
    """Scale a method block's iteration points, keep the ends of its density lists, cap its
    scoring and timing repeats (recursing into nested blocks: supermask.gem_miner, ...)."""
    for key, value in block.items():
        if key == "methods" and isinstance(value, dict):
            for method in value.values():
                if "iterations" in method:
                    method["iterations"] = min(method["iterations"], SCORING_ITERATIONS)
        elif isinstance(value, dict):
            _slice_block(value, scale, iterations, batch_size)
        elif key == "densities" and len(value) > 2:
            block[key] = [value[0], value[-1]]
        elif key in SCALED and isinstance(value, int):
            # a fine-tuning evaluates at train.eval_every, at most its length
            block[key] = iterations if key == "iterations" else scale(value)
        elif key == "latency_repeats":
            block[key] = min(value, LATENCY_REPEATS)
        elif key == "latency_batch_size":
            block[key] = min(value, batch_size)
    if "check_every" in block:
        block["check_every"] = min(block["check_every"], iterations - 1)


def _scaler(full: int, sliced: int):
    """Map an iteration point of a `full`-iteration training into a `sliced` one, keeping its
    fraction; a point > 0 stays > 0."""
    return lambda point: point and max(1, round(point * sliced / full))


def _increasing(points: list[int], iterations: int) -> list[int]:
    """Scaled milestones made strictly increasing and inside the training again (two close
    milestones can round onto one iteration)."""
    out: list[int] = []
    for point in points:
        out.append(max(point, out[-1] + 1) if out else point)
    if out and out[-1] >= iterations:
        raise ValueError(f"{len(points)} milestones do not fit {iterations} iterations")
    return out


def _slice_transfer(e: dict, experiments: dict, full: dict) -> None:
    """Elastic transfer: the first round the preset transfers, its source sliced to keep
    IMP's rounds up to it (those of the preset's source at most)."""
    elastic = e.get("elastic", {})
    source = elastic.get("source_experiment")
    if source and elastic.get("rounds"):
        first = min(elastic["rounds"])
        imp = experiments[source]["imp"]
        imp["rounds"] = min(full[source]["imp"]["rounds"], max(imp["rounds"], first))
        elastic["rounds"] = [min(first, imp["rounds"])]


# ---------------------------------------------------------------- data and run


def datasets_in(config: dict) -> list[str]:
    return sorted({e["dataset"] for e in config["experiments"].values()})


def write_data(config: dict, workdir: Path) -> dict[str, str]:
    """Generate every dataset the config uses under workdir; the datasets.source folders of
    the workflow (CIFAR-10 is prepared into workdir/data/cifar10 instead, see above)."""
    sources = {}
    for name in datasets_in(config):
        folder = workdir / "generated" / name
        if name in ("mnist", "fashion_mnist"):
            sources[name] = str(write_learnable_idx_folder(folder, IMAGES["train"],
                                                           IMAGES["test"]))
        elif name == "speech_commands":
            sources[name] = str(write_learnable_speech_folder(folder, SPEECH_CLIPS))
        else:
            prepare_cifar10(write_learnable_cifar_folder(folder, IMAGES["train"],
                                                         IMAGES["test"]), workdir)
    return sources


def prepare_cifar10(folder: Path, workdir: Path) -> None:
    """data/cifar10 prepared from the generated batches by lth.core.prepare (torchvision's
    CIFAR10 reads them, its md5 list pointed at theirs)."""
    from lth.core.prepare import prepare

    with cifar_files_accepted(folder):
        prepare("cifar10", workdir / "data" / "cifar10", source=folder, download=False,
                speech=None)


def write_slice(preset: Path, workdir: Path, **how) -> Path:
    """workdir/slice.yaml: the preset's slice, with generated data as its sources."""
    config = slice_config(yaml.safe_load(preset.read_text()), **how)
    workdir.mkdir(parents=True, exist_ok=True)
    datasets = config.setdefault("datasets", {})
    datasets["source"] = write_data(config, workdir)
    datasets["download"] = False
    path = workdir / "slice.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Ran:
    """A slice's run: wall and CPU seconds (Snakemake and every job, user + system), the
    jobs it ran, and what Snakemake said."""

    wall: float
    cpu: float
    jobs: int
    said: str

    def line(self) -> str:
        return f"{self.wall:.0f} s wall, {self.cpu:.0f} s CPU, {self.jobs} jobs"


def run_slice(config: Path, workdir: Path, *args: str) -> Ran:
    """Run the workflow on the slice to every experiment's HTML report, as the tests run it
    (tests/workflow_runner.py), with Snakemake's `args`. Raises RuntimeError with the end of
    Snakemake's output if it fails."""
    experiments = yaml.safe_load(config.read_text())["experiments"]
    targets = [f"reports/{name}/report.html" for name in experiments]
    began, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command(workdir, *targets, *args, config=config), capture_output=True,
                          text=True, cwd=workdir, env=environment(), check=False)
    wall, cpu = time.perf_counter() - began, _children_cpu() - cpu
    said = done.stdout + done.stderr
    if done.returncode:
        raise RuntimeError(said[-6000:])
    finished = re.search(r"(\d+) of \1 steps \(100%\) done", said)
    return Ran(wall, cpu, int(finished.group(1)) if finished else 0, said)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", type=Path)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--run", action="store_true", help="run it to the HTML reports")
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    config = write_slice(args.preset, args.workdir, iterations=args.iterations,
                         rounds=args.rounds, batch_size=args.batch_size)
    print(f"slice of {args.preset}: {config}")
    if args.run:
        try:
            ran = run_slice(config, args.workdir)
        except RuntimeError as err:
            raise SystemExit(f"preset_slice: the workflow failed:\n{err}") from None
        print(f"{args.preset.stem}: {ran.line()}")


if __name__ == "__main__":
    main()
