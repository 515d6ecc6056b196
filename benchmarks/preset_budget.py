"""Memory before time: per preset, the memory of its largest stacked step on the training
device and its total network-iterations, the figures each preset's header states.

Network-iterations: the preset's real DAG is planned (`snakemake -n -p`, nothing runs) and
every training job's cohort read from its command line (`train --job <json>`): each member
trains iterations start_iteration..schedule.iterations. A search that trains a dense network
before its tickets are drawn (Early-Bird) runs at most schedule.iterations: counted as that,
an upper bound. Scratch-B members (compute_matched) stretch their schedule by a factor known
only once the masks exist: counted at 1x, a lower bound (no preset runs them).

Memory, per experiment: on CUDA a cohort trains as one stacked step `engine.slots` networks
wide (lth.core.cohort: a chunk is padded to slots, whatever the cohort's size), on CPU and
with dropout one network after another (width 1). Two figures per experiment:
  - state: parameters, gradients, optimiser state (SGD with momentum 1, Adam 2 buffers) and
    masks of `slots` networks, 4 bytes each, computed from the model;
  - step peak: the largest resident-memory growth of one stacked training step (batch
    train.batch_size) or one stacked evaluation batch (train.eval_batch_size), measured on
    CPU in a fresh process at widths 1 and 2 (the step of lth.core.cohort.train_stacked) and
    taken as linear in the width (peak(w) = peak(1) + (w - 1) * (peak(2) - peak(1))). It
    holds the state above and the activations; a GPU adds its own workspaces (cuDNN, CUDA
    graphs), so read the figure as a floor.
A cohort fits a GPU of G GiB at the default slots when the step peak is below G.

    python benchmarks/preset_budget.py [workflow/presets/X.yaml ...] [--gib 16]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SHELL = re.compile(r"^\s*Shell command: python -m lth (.*)$")
GIB = 2**30


# ---------------------------------------------------------------- network-iterations


def planned_commands(preset: Path) -> list[str]:
    """The `python -m lth` argument strings of every job the preset's DAG would run."""
    cfg = yaml.safe_load(preset.read_text())
    targets = [f"reports/{name}/report.html" for name in cfg["experiments"]]
    with tempfile.TemporaryDirectory(prefix="preset_budget_") as workdir:
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "-p", *targets, "--snakefile",
             str(REPO / "Snakefile"), "--directory", workdir, "--cores", "1",
             "--configfile", str(preset.resolve())],
            capture_output=True, text=True, cwd=workdir, check=False)
    if done.returncode:
        said = done.stdout + done.stderr
        raise SystemExit(f"preset_budget: dry run of {preset} failed:\n{said[-3000:]}")
    return [m.group(1) for line in done.stdout.splitlines() if (m := SHELL.match(line))]


def verb_jobs(command: str) -> list[tuple[str, dict]]:
    """(verb, job) of each `<verb> ... --job <json>` of a `python -m lth` command (verbs
    joined by `::`), split as the shell splits it."""
    words = shlex.split(command)
    jobs, verb = [], None
    for i, word in enumerate(words):
        if i == 0 or words[i - 1] == "::":
            verb = word
        elif word == "--job" and i + 1 < len(words):
            jobs.append((verb, json.loads(words[i + 1])))
    return jobs


def network_iterations(commands: list[str]) -> dict:
    """Per experiment: trained networks, their iterations, search iterations (an upper bound)
    and the largest cohort (members of one training job)."""
    out: dict[str, dict] = {}
    for command in commands:
        for verb, job in verb_jobs(command):
            if "schedule" not in job:
                continue
            e = out.setdefault(job["experiment"], {"networks": 0, "iterations": 0,
                                                   "search_iterations": 0, "largest_cohort": 0})
            total = job["schedule"]["iterations"]
            if verb == "train":
                members = job["members"]
                e["networks"] += len(members)
                e["iterations"] += sum(total - m["start_iteration"] for m in members)
                e["largest_cohort"] = max(e["largest_cohort"], len(members))
            else:
                e["search_iterations"] += total
    return out


# ---------------------------------------------------------------- memory


def experiment_settings(preset: Path) -> dict[str, dict]:
    """Per experiment, what its stacked step's memory depends on (schema defaults filled)."""
    from lth.plan.catalog import dataset_info
    from lth.plan.checks import speech_features
    from lth.plan.config_checks import with_defaults

    cfg = with_defaults(yaml.safe_load(preset.read_text()), SCHEMA)
    speech = speech_features(cfg["datasets"])
    settings = {}
    for name, e in cfg["experiments"].items():
        info = dataset_info(e["dataset"], speech if e["dataset"] == "speech_commands" else None)
        settings[name] = {"model": e["model"], "input_shape": list(info.input_shape),
                          "classes": info.num_classes, "train": e["train"],
                          "slots": e["engine"]["slots"]}
    return settings


def state_bytes(model: str, input_shape: list[int], classes: int, train: dict,
                width: int) -> int:
    """Parameters, gradients, optimiser state and masks of `width` networks (float32)."""
    import torch

    from lth.core.models import build_model, prunable_names

    net = build_model(model, tuple(input_shape), classes, torch.Generator(), 0.0)
    params = sum(p.numel() for p in net.parameters())
    masked = sum(dict(net.named_parameters())[k].numel() for k in prunable_names(net))
    buffers = {"adam": 2, "sgd": 1 if train["momentum"] > 0 else 0}[train["optimizer"]]
    return 4 * width * (params * (2 + buffers) + masked)


def measure(spec: dict) -> int:
    """Resident-memory growth (bytes) of one stacked step (spec['what'] 'train') or one
    stacked evaluation batch ('eval') of spec['width'] networks, in this process."""
    import torch

    from lth.core import masks as M
    from lth.core.cohort import StackedNet, evaluate_stacked, train_stacked
    from lth.core.models import build_model, prunable_names
    from lth.plan.spec import schedule_from_config

    torch.set_num_threads(1)
    s = schedule_from_config({**spec["train"], "iterations": 1, "eval_every": 1,
                              "milestones": [], "warmup": 0, "dropout": 0.0})
    shape, width = tuple(spec["input_shape"]), spec["width"]
    models = [build_model(spec["model"], shape, spec["classes"],
                          torch.Generator().manual_seed(i), 0.0) for i in range(width)]
    rows = s.eval_batch_size if spec["what"] == "eval" else s.batch_size
    x = torch.randn(rows, *shape)
    y = torch.randint(spec["classes"], (rows,))
    before = _resident_bytes()
    if spec["what"] == "eval":
        evaluate_stacked(StackedNet(models), x, y, s.eval_batch_size)
    else:
        masks = [M.full_mask({k: dict(m.named_parameters())[k] for k in prunable_names(m)})
                 for m in models]
        splits = SimpleNamespace(train_x=x, train_y=y, val_x=x, val_y=y, test_x=x, test_y=y)
        train_stacked(models, masks, list(range(width)), splits, s,
                      lambda seed: torch.Generator().manual_seed(seed), [()] * width,
                      evaluate_model=False, log=lambda _: None)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def _resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measured(spec: dict) -> int:
    """measure(spec) in a fresh process (the peak of a process only grows)."""
    done = subprocess.run([sys.executable, __file__, "--measure", json.dumps(spec)],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def step_peaks(settings: dict) -> dict[str, tuple[int, int]]:
    """(peak at width 1, growth per further network) of the train step and the evaluation,
    from widths 1 and 2."""
    peaks = {}
    for what in ("train", "eval"):
        one, two = (measured({**settings, "what": what, "width": w}) for w in (1, 2))
        peaks[what] = (one, two - one)
    return peaks


def widest_fitting(peaks: dict[str, tuple[int, int]], limit: float) -> int:
    """The most networks whose step and evaluation both stay below `limit` bytes (0: none;
    a figure that does not grow with the width allows any)."""
    widths = [int((limit - one) // step) + 1 if step > 0 else sys.maxsize
              for one, step in peaks.values()]
    return max(0, min(widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", type=Path, nargs="*")
    parser.add_argument("--gib", type=float, default=16.0, help="the GPU to compare with")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(measure(json.loads(args.measure)))
        return
    presets = args.presets or sorted((REPO / "workflow" / "presets").glob("*.yaml"))
    for preset in presets:
        counts = network_iterations(planned_commands(preset))
        for name, settings in experiment_settings(preset).items():
            c = counts[name]
            # dropout networks never train stacked (lth.core.cohort.uses_stacking)
            width = 1 if settings["train"]["dropout"] > 0 else settings["slots"]
            state = state_bytes(settings["model"], settings["input_shape"], settings["classes"],
                                settings["train"], width)
            linear = step_peaks(settings)
            peaks = {what: one + (width - 1) * step for what, (one, step) in linear.items()}
            verdict = (f"fits {args.gib:g} GiB" if max(peaks.values()) < args.gib * GIB else
                       f"does NOT fit {args.gib:g} GiB (engine.slots "
                       f"{widest_fitting(linear, args.gib * GIB)} does)")
            print(f"{preset.stem} {name}: {c['networks']} networks, "
                  f"{c['iterations']:,} network-iterations"
                  + (f" + at most {c['search_iterations']:,} searching" if c["search_iterations"]
                     else "")
                  + f"; largest cohort {c['largest_cohort']}, stacked {width} wide: state "
                  f"{state / GIB:.2f} GiB, step peak {peaks['train'] / GIB:.2f} GiB (batch "
                  f"{settings['train']['batch_size']}), evaluation peak {peaks['eval'] / GIB:.2f}"
                  f" GiB (batch {settings['train']['eval_batch_size']}): {verdict}", flush=True)


if __name__ == "__main__":
    main()
