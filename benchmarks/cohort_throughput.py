"""Network-steps per second: N networks trained one at a time vs as one stacked cohort.

LeNet-300-100 at N in {1, 3, 15, 60} and Conv-2 at N in {1, 8}, batch 60, Adam, 20%-density
random masks, evaluation off, on synthetic Fashion-MNIST-shaped data (55,000 examples) on the
device. Modes, measured side by side in one process and interleaved (best of the repeats):

- one-at-a-time: the reference loop lth.core.train.train, network after network;
- cohort: lth.core.cohort.train_stacked, one batched step for all N;
- cohort captured (CUDA only): the same step replayed as a CUDA graph.

Prints one line per (model, N, mode) and, last, `cohort_speedup: X`: the best cohort mode
over one-at-a-time for N = 15 LeNet-300-100. `--record [PATH]` also writes every figure into
the benchmark record (benchmarks/record.py; without PATH, benchmarks/results/<date>-<device>.json).

    python benchmarks/cohort_throughput.py [--device cpu|cuda] [--steps 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch
from record import add_section

from lth.core import masks as M
from lth.core.cohort import train_stacked
from lth.core.models import build_model, prunable_names
from lth.core.networks import resolve_device
from lth.core.train import train
from lth.plan.spec import Schedule

CASES = (("lenet300_100", (1, 28, 28), (1, 3, 15, 60)), ("conv2", (1, 28, 28), (1, 8)))
BATCH = 60
EXAMPLES = 55_000


def synthetic_splits(shape, device) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(EXAMPLES, *shape, generator=gen).to(device)
    y = torch.randint(10, (EXAMPLES,), generator=gen).to(device)
    return SimpleNamespace(train_x=x, train_y=y, val_x=x[:1000], val_y=y[:1000],
                           test_x=x[:1000], test_y=y[:1000])


def networks(name, shape, n, device):
    """n seeded models and their 20%-density random masks."""
    models, masks = [], []
    for i in range(n):
        model = build_model(name, shape, 10, torch.Generator().manual_seed(i), 0.0).to(device)
        params = dict(model.named_parameters())
        prunable = {k: params[k] for k in prunable_names(model)}
        masks.append(M.prune_to_density(
            {k: torch.rand(p.shape, generator=torch.Generator().manual_seed(i)).to(device)
             for k, p in prunable.items()}, M.full_mask(prunable), 0.2, "layerwise",
            list(prunable)))
        models.append(model)
    return models, masks


def schedule(steps: int) -> Schedule:
    return Schedule(optimizer="adam", lr=1.2e-3, momentum=0.0, nesterov=False,
                    weight_decay=0.0, batch_size=BATCH, iterations=steps, milestones=(),
                    gamma=0.1, warmup=0, eval_every=10**9, eval_batch_size=1000, dropout=0.0,
                    augment=False)


def data_order(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def one_at_a_time(models, masks, splits, s) -> None:
    """The reference loop, network after network."""
    for i, (model, mask) in enumerate(zip(models, masks, strict=True)):
        train(model, mask, splits, s, data_order(i), log=lambda _: None, evaluate_model=False)


def cohort(models, masks, splits, s) -> None:
    """One stacked, eager step for all."""
    stacked(models, masks, splits, s, capture=False)


def cohort_captured(models, masks, splits, s) -> None:
    """One stacked step, replayed as a CUDA graph."""
    stacked(models, masks, splits, s, capture=True)


def stacked(models, masks, splits, s, capture: bool) -> None:
    train_stacked(models, masks, list(range(len(models))), splits, s, data_order,
                  [()] * len(models), capture=capture, log=lambda _: None,
                  evaluate_model=False)


def timed(device, fn, *args) -> float:
    """Wall seconds of fn(*args), the device synchronised on both sides."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--record", nargs="?", const="", default=None, metavar="PATH")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    s = schedule(args.steps)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {BATCH}, {args.steps} steps, best of {args.repeats}")
    speedup, rows = None, []
    for name, shape, sizes in CASES:
        splits = synthetic_splits(shape, device)
        for n in sizes:
            modes = {"one-at-a-time": one_at_a_time, "cohort": cohort}
            if device.type == "cuda":
                modes["cohort captured"] = cohort_captured
            best = {mode: float("inf") for mode in modes}
            for _ in range(args.repeats):
                for mode, fn in modes.items():
                    models, masks = networks(name, shape, n, device)
                    best[mode] = min(best[mode], timed(device, fn, models, masks, splits, s))
            for mode, seconds in best.items():
                rate = n * args.steps / seconds
                ratio = best["one-at-a-time"] / seconds
                print(f"{name:13s} N={n:3d} {mode:16s} {rate:10.1f} network-steps/s  "
                      f"x{ratio:.2f}")
                rows.append({"model": name, "n": n, "mode": mode, "seconds": seconds,
                             "network_steps_per_s": rate, "vs_one_at_a_time": ratio})
            if name == "lenet300_100" and n == 15:
                speedup = best["one-at-a-time"] / min(v for k, v in best.items()
                                                      if k != "one-at-a-time")
    print(f"cohort_speedup: {speedup:.2f}")
    if args.record is not None:
        figures = {"batch": BATCH, "steps": args.steps, "repeats": args.repeats,
                   "rows": rows, "cohort_speedup": speedup}
        print("recorded in", add_section(args.record, "cohort_throughput", device, figures))


if __name__ == "__main__":
    main()
