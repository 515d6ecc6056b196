"""One plain training loop for masked networks (the directness of nanoGPT's train.py).

Pruned weights are exactly zero at every step and receive no update: the mask is applied to
the weights once before training and to their gradients after every backward pass, so the
optimizer (SGD with momentum/Nesterov/weight decay, or Adam) only ever sees zero gradients
for them and its state for them stays exactly zero too.

The early-stopping iteration is the iteration of minimum validation loss, as defined by
Frankle & Carbin 2019 (Sec. 2, "we use the iteration of minimum validation loss as a proxy
for the early-stopping criterion").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lth.core.errors import LthError
from lth.core.masks import Mask, apply_mask_
from lth.plan.spec import Schedule


@dataclass
class TrainResult:
    metrics: list[dict]  # rows: iteration, split, loss, accuracy
    checkpoints: dict[int, dict[str, torch.Tensor]]  # iteration -> state dict (cpu)
    wall_seconds: float
    # its final state, for inspection (shared when stacked; None when a worker trained it)
    optimizer: torch.optim.Optimizer | None
    last_iteration: int | None = None  # where training ended (observe can stop it early)


def make_optimizer(params: list[torch.Tensor], s: Schedule,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov, coupled weight decay) or Adam, as the schedule says.

    capturable: for a step replayed as a CUDA graph (the learning rate is a device tensor).

    PyTorch's fused implementations (one kernel per step, CPU and CUDA): the default Adam
    step runs about twice as slowly once most gradients are masked to zero, the fused one
    does not (benchmarks/train_throughput.py).
    """
    lr = torch.tensor(s.lr, device=params[0].device) if capturable else s.lr
    if s.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=s.momentum, nesterov=s.nesterov,
            weight_decay=s.weight_decay, fused=True,
        )
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=s.weight_decay, fused=True,
                                capturable=capturable)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {s.optimizer!r}")


def lr_factor(iteration: int, s: Schedule) -> float:
    """Linear warmup over s.warmup iterations, times gamma for each milestone passed."""
    warm = min(1.0, (iteration + 1) / s.warmup) if s.warmup > 0 else 1.0
    return warm * s.gamma ** sum(iteration >= m for m in s.milestones)


def batch_indices(n: int, s: Schedule, gen: torch.Generator, device) -> Iterator[torch.Tensor]:
    """Index batches over seeded per-epoch permutations; a short last batch is dropped."""
    per_epoch = n // s.batch_size
    if per_epoch == 0:
        raise LthError(f"batch_size {s.batch_size} is more than the {n} training examples: "
                       "an epoch would have no batch")
    while True:
        perm = torch.randperm(n, generator=gen).to(device)
        for b in range(per_epoch):
            yield perm[b * s.batch_size : (b + 1) * s.batch_size]


def skip_batch(idx: torch.Tensor, splits, gen: torch.Generator,
               augment: Callable | None) -> None:
    """Draw a batch's augmentation and discard it, as a run that trains on the batch draws it
    (so the generator advances exactly as it does there)."""
    if augment is not None:
        augment(splits.train_x[idx], gen)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """(mean cross-entropy loss, accuracy) of the model on (x, y), in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        out = model(x[i : i + batch_size])
        target = y[i : i + batch_size]
        loss_sum += float(F.cross_entropy(out, target, reduction="sum"))
        correct += int((out.argmax(1) == target).sum())
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def train_eval_split(splits, size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training examples whose accuracy is recorded at the end of training: the first
    `size` of the training split (a fixed subset, the same for every network), or all."""
    if size is None:
        return splits.train_x, splits.train_y
    return splits.train_x[:size], splits.train_y[:size]


def early_stop(metrics: list[dict]) -> tuple[int, float]:
    """(iteration of minimum validation loss, test accuracy at that iteration).

    Ties go to the earliest iteration.
    """
    val = [r for r in metrics if r["split"] == "val"]
    if not val:
        raise ValueError("no validation evaluations in the metrics")
    best = min(val, key=lambda r: (r["loss"], r["iteration"]))["iteration"]
    test = {r["iteration"]: r["accuracy"] for r in metrics if r["split"] == "test"}
    return best, test[best]


def evaluates_at(it: int, s: Schedule, start: int = 0) -> bool:
    """Validation and test are evaluated at the first iteration trained from (`start`), every
    s.eval_every iterations and at the end."""
    return it == start or it % s.eval_every == 0 or it == s.iterations


def progress_line(prefix: str, it: int, total: int, rows: list[dict], start: float,
                  first: int = 0) -> str:
    """One log line at iteration `it` of a run from iteration `first` to `total`."""
    by_split = {r["split"]: r for r in rows}
    elapsed = time.perf_counter() - start
    done = it - first
    eta = elapsed / done * (total - it) if done else float("nan")
    return (
        f"{prefix} it {it}/{total} val_loss {by_split['val']['loss']:.4f} "
        f"val_acc {by_split['val']['accuracy']:.4f} test_acc {by_split['test']['accuracy']:.4f} "
        f"| {elapsed:.1f}s elapsed, ETA {eta:.1f}s"
    )


def train(
    model: nn.Module,
    mask: Mask,
    splits,
    s: Schedule,
    gen: torch.Generator,
    checkpoint_iterations: tuple[int, ...] = (),
    augment: Callable | None = None,
    log: Callable[[str], None] = print,
    prefix: str = "",
    evaluate_model: bool = True,
    start: int = 0,
    after_backward: Callable[[int, nn.Module], None] | None = None,
    observe: Callable[[int, nn.Module], bool] | None = None,
    observe_every: int = 0,
) -> TrainResult:
    """Train `model` under `mask` on `splits` for iterations start..s.iterations.

    start > 0 continues a run from its weights at iteration `start` (late rewinding, as
    open_lth's train(start_step)): the learning-rate schedule continues from `start` and the
    batches (and augmentations) of iterations 0..start-1 are drawn from `gen` and discarded,
    so the data stream is the one a run from 0 sees; the optimizer state is fresh. Dropout's
    stream (the global generator) is not replayed.

    Evaluates validation and test at `start`, every s.eval_every iterations and at the end;
    train accuracy at the end (on s.train_eval_size examples: train_eval_split). Returns the
    metric rows, the state dicts at `checkpoint_iterations` (for late rewinding) and the wall
    time. evaluate_model=False
    skips every evaluation (for throughput benchmarks only).

    Two optional hooks, for methods that watch or steer training from outside the loop:
    after_backward(it, model) runs after each backward pass, before the gradients are masked
    (the gradients of pruned weights are still there: alignment scores, network slimming);
    observe(it, model) sees the weights after `it` iterations, at `start` and every
    `observe_every` iterations before the end; returning True ends training there
    (a search for a ticket during training): the last evaluations and the train accuracy are
    then those of that iteration, recorded in `last_iteration`.
    """
    params = dict(model.named_parameters())
    apply_mask_(params, mask)
    masked = [(params[n], m.to(params[n].dtype)) for n, m in mask.items()]
    masked_params = [p for p, _ in masked]
    masked_values = [m for _, m in masked]
    opt = make_optimizer(list(model.parameters()), s)
    batches = batch_indices(len(splits.train_x), s, gen, splits.train_x.device)
    metrics: list[dict] = []
    checkpoints: dict[int, dict[str, torch.Tensor]] = {}
    began = time.perf_counter()

    def record(it: int, split: str, x: torch.Tensor, y: torch.Tensor) -> dict:
        loss, acc = evaluate(model, x, y, s.eval_batch_size)
        row = {"iteration": it, "split": split, "loss": loss, "accuracy": acc}
        metrics.append(row)
        return row

    def checkpoint(it: int) -> None:
        if it in checkpoint_iterations:
            checkpoints[it] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if evaluate_model and evaluates_at(it, s, start):
            rows = [record(it, "val", splits.val_x, splits.val_y),
                    record(it, "test", splits.test_x, splits.test_y)]
            log(progress_line(prefix, it, s.iterations, rows, began, start))

    def observed(it: int) -> bool:
        due = it == start or (observe_every > 0 and it % observe_every == 0)
        return observe is not None and due and bool(observe(it, model))

    model.train()
    for _ in range(start):
        skip_batch(next(batches), splits, gen, augment)
    checkpoint(start)
    last = s.iterations
    for it in range(start, s.iterations):
        if observed(it):
            last = it
            break
        idx = next(batches)
        x, y = splits.train_x[idx], splits.train_y[idx]
        if augment is not None:
            x = augment(x, gen)
        for group in opt.param_groups:
            group["lr"] = s.lr * lr_factor(it, s)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        if after_backward is not None:
            after_backward(it, model)
        torch._foreach_mul_([p.grad for p in masked_params], masked_values)
        opt.step()
        checkpoint(it + 1)
    if evaluate_model:
        if last != s.iterations and not evaluates_at(last, s, start):
            record(last, "val", splits.val_x, splits.val_y)
            record(last, "test", splits.test_x, splits.test_y)
        record(last, "train", *train_eval_split(splits, s.train_eval_size))
    return TrainResult(metrics, checkpoints, time.perf_counter() - began, opt, last)
