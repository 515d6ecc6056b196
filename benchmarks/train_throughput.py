"""Seconds per epoch of lth's masked training loop vs a minimal plain PyTorch loop.

LeNet-300-100 on Fashion-MNIST (55,000 training examples after the 5,000 validation hold-out),
Adam, batch sizes 60 (Frankle & Carbin 2019) and 128, evaluation off. Both loops run on the
same tensors in the same process, interleaved, and the best of the repeats is compared, so
machine noise hits both alike. Prints one line per configuration and `ratio: X` (the worst
ratio lth / plain over the batch sizes). Target: ratio <= 1.2 on CPU. lth uses PyTorch's
fused Adam; for transparency the plain loop is also timed with fused Adam (`plain fused`),
which shows the cost of masking alone.

    python benchmarks/train_throughput.py [--data-root data/fashion_mnist] [--device auto]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from lth.core import masks as M
from lth.core.data import load_splits, prepare
from lth.core.models import build_model, prunable_names
from lth.core.networks import resolve_device
from lth.core.train import Schedule, train


def plain_epoch(model, x, y, batch_size, gen, fused=False):
    """The minimal loop a PyTorch user writes: no masks, no schedule, no bookkeeping."""
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3, fused=fused)
    perm = torch.randperm(len(x), generator=gen).to(x.device)
    for b in range(len(x) // batch_size):
        idx = perm[b * batch_size : (b + 1) * batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def lth_epoch(model, mask, splits, batch_size, gen):
    """One epoch of lth.core.train.train under a 20%-density mask, evaluation off."""
    s = Schedule(optimizer="adam", lr=1.2e-3, momentum=0.0, nesterov=False, weight_decay=0.0,
                 batch_size=batch_size, iterations=len(splits.train_x) // batch_size,
                 milestones=(), gamma=0.1, warmup=0, eval_every=10**9, eval_batch_size=1000,
                 dropout=0.0, augment=False)
    train(model, mask, splits, s, gen, evaluate_model=False, log=lambda _: None)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device, fn, *args) -> float:
    """Wall seconds of fn(*args), with the device synchronised on both sides."""
    synchronize(device)
    start = time.perf_counter()
    fn(*args)
    synchronize(device)
    return time.perf_counter() - start


def load_fashion_mnist(root: str | None, device):
    """Splits of the real Fashion-MNIST (a prepared folder, or prepared now into a temp dir)."""
    if root is None:
        root = Path(tempfile.mkdtemp()) / "fashion_mnist"
        prepare("fashion_mnist", root, download=False, speech=None)
    return load_splits(root, 5000, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    splits = load_fashion_mnist(args.data_root, device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(splits.train_x)} training examples")
    ratios = []
    for batch_size in (60, 128):
        model = build_model("lenet300_100", (1, 28, 28), 10, torch.Generator().manual_seed(0), 0.0)
        model.to(device)
        names = prunable_names(model)
        params = dict(model.named_parameters())
        scores = {n: params[n].abs() for n in names}
        mask = M.prune_to_density(scores, M.full_mask(scores), 0.2, "layerwise", names)
        plain_model = build_model("lenet300_100", (1, 28, 28), 10,
                                  torch.Generator().manual_seed(0), 0.0).to(device)
        gen = torch.Generator().manual_seed(1)
        ours, plain, fused = [], [], []
        for _ in range(args.repeats):
            ours.append(timed(device, lth_epoch, model, mask, splits, batch_size, gen))
            plain.append(timed(device, plain_epoch, plain_model, splits.train_x, splits.train_y,
                               batch_size, gen))
            fused.append(timed(device, plain_epoch, plain_model, splits.train_x, splits.train_y,
                               batch_size, gen, True))
        ratio = min(ours) / min(plain)
        ratios.append(ratio)
        print(f"batch {batch_size}: lth {min(ours):.3f} s/epoch, plain {min(plain):.3f} s/epoch, "
              f"plain fused {min(fused):.3f} s/epoch, lth/plain {ratio:.3f}, "
              f"lth/plain-fused {min(ours) / min(fused):.3f} (best of {args.repeats})")
    print(f"ratio: {max(ratios):.3f}")


if __name__ == "__main__":
    main()
