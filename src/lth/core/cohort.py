"""Cohorts: several networks of one architecture and schedule trained in one process.

A training job receives a cohort (e.g. every seed of one method and level) and trains it in
one of two ways:

- **one after another** with the reference loop `lth.core.train.train`: every network's bytes are
  exactly those of a one-network job. What saves the time is the shared process: torch is
  imported and the dataset loaded once per job, not once per network. On CPU, a job given
  several threads trains its members side by side in forked worker processes, one intra-op
  thread each (lth.core.workers): the same reference loop, so the same bytes as one after
  another with one thread, on as many cores as the job has threads.
- **stacked**: the networks' tensors are stacked along a leading dimension and one batched
  step trains them all: linear layers as batched matmuls (weights [N, out, in]), convolutions
  as one grouped convolution over N*C channels (weights viewed as [N*out, in, k, k],
  groups=N), BatchNorm over the N*C channels (per network and channel, running statistics
  included), pooling and ReLU unchanged, and PyTorch's fused Adam/SGD on the stacked tensors
  (element-wise, so each network gets its own Adam). The loss is the sum over networks of each
  network's mean cross-entropy, so each network's gradient is exactly its own. On CUDA the step
  can be captured once as a CUDA graph and replayed; evaluation runs outside the graph.

Stacked results equal one-network results up to the last bits, and those last bits depend on
the stacked width (not on the order of networks inside it). A cohort is therefore cut into
chunks of a fixed width (`Engine.slots`), the last chunk padded with copies of its last
network: a network's bytes never depend on which other networks share its job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from lth.core.io import LthError
from lth.core.masks import Mask
from lth.core.train import (
    TrainResult,
    batch_indices,
    evaluates_at,
    lr_factor,
    make_optimizer,
    progress_line,
    skip_batch,
    train,
    train_eval_split,
)
from lth.core.workers import train_in_workers
from lth.plan.spec import Engine, Schedule

CAPTURE_WARMUP = 3
"""Eager steps before a CUDA graph is captured (the side-stream warm-up PyTorch asks for);
they are real training steps, not discarded ones."""


@dataclass
class Net:
    """One network of a cohort, ready to train: its initialised model (on the device), its
    mask, the seed whose data order it follows and the iterations to checkpoint."""

    model: nn.Module
    mask: Mask
    seed: int
    prefix: str
    checkpoint_iterations: tuple[int, ...] = ()
    dropout_seed: int = 0  # seeds nn.Dropout's (global) generator in the reference loop
    after_backward: Callable | None = None  # the reference loop's after_backward hook
    result: TrainResult | None = field(default=None, repr=False)
    process: int = 0  # set by training: the id of the process that trained it
    threads: int = 0  # set by training: the intra-op threads it trained with


def uses_stacking(engine: Engine, device: torch.device, schedule: Schedule) -> bool:
    """Whether a cohort is stacked: 'auto' stacks on CUDA (where one small network cannot keep
    the GPU busy) and not on CPU (where a step is already compute-bound:
    benchmarks/cohort_throughput.py)."""
    if engine.stack == "off":
        return False
    if schedule.dropout > 0:
        if engine.stack == "on":
            raise LthError("engine.stack: 'on' cannot train dropout networks stacked (each "
                           "network's dropout masks would depend on its companions); use auto")
        return False
    return engine.stack == "on" or device.type == "cuda"


def set_tf32(engine: Engine) -> dict:
    """Set TF32 for CUDA matmuls and convolutions explicitly (torch 2.11 defaults differ:
    matmul off, cuDNN conv on) and return the flags for run.json."""
    torch.backends.cuda.matmul.allow_tf32 = engine.tf32
    torch.backends.cudnn.allow_tf32 = engine.tf32
    return {"matmul": torch.backends.cuda.matmul.allow_tf32,
            "cudnn": torch.backends.cudnn.allow_tf32}


def train_cohort(nets: list[Net], splits, s: Schedule, data_order: Callable[[int], torch.Generator],
                 engine: Engine, augment: Callable | None = None,
                 log: Callable[[str], None] = print, start: int = 0, workers: int = 1) -> bool:
    """Train every net of the cohort (each net's model ends trained and its .result is set).

    data_order(seed) gives a fresh generator of that seed's data-order stream, so each network
    sees exactly the batches (and augmentations) of a one-network job. Every net trains
    iterations start..s.iterations (lth.core.train.train). A cohort with a net that has an
    after_backward hook trains with the reference loop. A cohort not stacked trains in up to
    `workers` worker processes when that is more than 1 (lth.core.workers.worker_count: a
    lone net too, so that it trains with one thread as its job's other nets do), else here,
    one net after another. Returns whether it was stacked.
    """
    device = splits.train_x.device
    hooked = any(net.after_backward is not None for net in nets)
    stacked = not hooked and uses_stacking(engine, device, s)
    if not stacked:

        def train_one(net: Net) -> None:
            torch.manual_seed(net.dropout_seed)
            net.process, net.threads = os.getpid(), torch.get_num_threads()
            net.result = train(net.model, net.mask, splits, s, data_order(net.seed),
                               net.checkpoint_iterations, augment, log, net.prefix,
                               start=start, after_backward=net.after_backward)

        if workers > 1:
            train_in_workers(nets, min(workers, len(nets)), train_one)
        else:
            for net in nets:
                train_one(net)
        return False
    for alike in _by_architecture(nets):
        for first in range(0, len(alike), engine.slots):
            chunk = alike[first : first + engine.slots]
            padded = chunk + [chunk[-1]] * (engine.slots - len(chunk))
            results = train_stacked([n.model for n in padded], [n.mask for n in padded],
                                    [n.seed for n in padded], splits, s, data_order,
                                    [n.checkpoint_iterations for n in padded], augment,
                                    capture=engine.capture and device.type == "cuda", log=log,
                                    prefixes=[n.prefix for n in padded], start=start)
            for i, net in enumerate(chunk):
                net.model.load_state_dict(results[i][0])
                net.result = results[i][1]
                net.process, net.threads = os.getpid(), torch.get_num_threads()
    return True


def _by_architecture(nets: list[Net]) -> list[list[Net]]:
    """The nets in groups of one architecture (every tensor's name and shape), in order:
    only equal networks stack (Early-Bird's channel tickets at several densities are VGGs of
    several widths in one cohort)."""
    groups: dict[tuple, list[Net]] = {}
    for net in nets:
        shapes = tuple((k, tuple(v.shape)) for k, v in net.model.state_dict().items())
        groups.setdefault(shapes, []).append(net)
    return list(groups.values())


SLICE_ALIGN = 64
"""Each network's slice of a stacked parameter is padded to a multiple of this many elements.
Element-wise kernels (PyTorch's fused Adam among them) treat a tensor's unaligned tail with
scalar code whose last bits differ from the vector body; aligned slices put every network's
every element through the same code, so its bytes do not depend on its position."""


class StackedNet:
    """N networks of one architecture as stacked tensors, run by walking a template module.

    params[name] is a leaf [N, P] per parameter (each network's values, then zero padding up
    to P, a multiple of SLICE_ALIGN); buffers[name] is [N, *shape]. tensor(name) gives either
    as [N, *shape]. The template (never run itself) supplies the structure and each layer's
    hyperparameters.
    """

    def __init__(self, models: list[nn.Module]) -> None:
        self.template = models[0]
        self.n = len(models)
        states = [m.state_dict() for m in models]
        self.names = list(states[0])
        self.shapes = {k: states[0][k].shape for k in self.names}
        param_names = {n for n, _ in self.template.named_parameters()}
        self.params, self.buffers = {}, {}
        for k in self.names:
            stacked = torch.stack([st[k].detach() for st in states])
            if k in param_names:
                self.params[k] = self.pad(stacked).requires_grad_(True)
            else:
                self.buffers[k] = stacked.contiguous()

    def pad(self, stacked: torch.Tensor) -> torch.Tensor:
        """[N, *shape] -> [N, P]: each network's values then zeros, P aligned."""
        flat = stacked.reshape(self.n, -1)
        width = -(-flat.shape[1] // SLICE_ALIGN) * SLICE_ALIGN
        return F.pad(flat, (0, width - flat.shape[1])).contiguous()

    def unpad(self, name: str, flat: torch.Tensor) -> torch.Tensor:
        """A [N, P] tensor laid out like params[name] as [N, *shape] (a view)."""
        shape = self.shapes[name]
        return flat[:, : shape.numel()].view(self.n, *shape)

    def tensor(self, name: str) -> torch.Tensor:
        if name in self.params:
            return self.unpad(name, self.params[name])
        return self.buffers[name]

    def state(self, i: int) -> dict[str, torch.Tensor]:
        """Network i's state dict (cpu copies), keyed like the template's."""
        return {k: self.tensor(k)[i].detach().cpu().clone() for k in self.names}

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """Logits [N, B, classes] of inputs [N, B, ...] (one batch per network).

        Examples of two dimensions (speech features [N, B, F, T]) enter as one-channel
        images [N, B, 1, F, T]: a 4-D tensor inside the network is the grouped layout
        [B, N*C, H, W] of convolutions (_grouped), which _flatten unstacks.
        """
        self.training = training
        out = self._run(self.template, "", x.unsqueeze(2) if x.dim() == 4 else x)
        if out.dim() != 3:
            raise LthError(f"{type(self.template).__name__}: stacked output must be [N, B, C]")
        return out

    def _run(self, module: nn.Module, prefix: str, x: torch.Tensor) -> torch.Tensor:
        from lth.core.models import BasicBlock

        if isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                x = self._run(child, f"{prefix}{name}.", x)
            return x
        if isinstance(module, BasicBlock):
            out = F.relu(self._run(module.bn1, f"{prefix}bn1.",
                                   self._run(module.conv1, f"{prefix}conv1.", x)))
            out = self._run(module.bn2, f"{prefix}bn2.",
                            self._run(module.conv2, f"{prefix}conv2.", out))
            return F.relu(out + self._run(module.shortcut, f"{prefix}shortcut.",
                                          _grouped(x, self.n)))
        layer = _LAYERS.get(type(module))
        if layer is None:
            raise LthError(f"{type(module).__name__}: no stacked form (train this model with "
                           "engine.stack: off)")
        return layer(self, module, prefix, x)

    def _linear(self, module: nn.Linear, prefix: str, x: torch.Tensor) -> torch.Tensor:
        weight = self.tensor(prefix + "weight").transpose(1, 2)
        if module.bias is None:
            return torch.bmm(x, weight)
        return torch.baddbmm(self.tensor(prefix + "bias").unsqueeze(1), x, weight)

    def _conv(self, module: nn.Conv2d, prefix: str, x: torch.Tensor) -> torch.Tensor:
        weight = self.tensor(prefix + "weight")
        bias = self.tensor(prefix + "bias").reshape(-1) if module.bias is not None else None
        return F.conv2d(_grouped(x, self.n), weight.reshape(-1, *weight.shape[2:]), bias,
                        module.stride, module.padding, module.dilation, module.groups * self.n)

    def _batch_norm(self, module: nn.BatchNorm2d, prefix: str, x: torch.Tensor) -> torch.Tensor:
        b = self.buffers
        if self.training and module.track_running_stats:
            b[prefix + "num_batches_tracked"].add_(1)
        return F.batch_norm(x, b[prefix + "running_mean"].view(-1),
                            b[prefix + "running_var"].view(-1),
                            self.tensor(prefix + "weight").reshape(-1),
                            self.tensor(prefix + "bias").reshape(-1), self.training,
                            module.momentum, module.eps)

    def _flatten(self, module: nn.Flatten, prefix: str, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # grouped [B, N*C, H, W] -> [N, B, C*H*W]
            return x.reshape(x.shape[0], self.n, -1).transpose(0, 1)
        return x.reshape(x.shape[0], x.shape[1], -1)

    def _elementwise(self, module: nn.Module, prefix: str, x: torch.Tensor) -> torch.Tensor:
        return module(_grouped(x, self.n) if x.dim() == 5 else x)


def _grouped(x: torch.Tensor, n: int) -> torch.Tensor:
    """Images [N, B, C, H, W] as one grouped batch [B, N*C, H, W] (other layouts as they are)."""
    if x.dim() != 5:
        return x
    return x.transpose(0, 1).reshape(x.shape[1], n * x.shape[2], *x.shape[3:])


_LAYERS = {
    nn.Linear: StackedNet._linear,
    nn.Conv2d: StackedNet._conv,
    nn.BatchNorm2d: StackedNet._batch_norm,
    nn.Flatten: StackedNet._flatten,
    nn.ReLU: StackedNet._elementwise,
    nn.MaxPool2d: StackedNet._elementwise,
    nn.AdaptiveAvgPool2d: StackedNet._elementwise,
    nn.Identity: StackedNet._elementwise,
}


def stacked_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over networks of each network's mean cross-entropy: network i's gradient is
    exactly the gradient of its own loss (a mean over networks would scale it by 1/N)."""
    n, b, c = logits.shape
    return F.cross_entropy(logits.reshape(n * b, c), y.reshape(n * b), reduction="sum") / b


@torch.no_grad()
def evaluate_stacked(net: StackedNet, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """Per network (mean cross-entropy, accuracy) on shared (x, y), in eval mode."""
    loss = torch.zeros(net.n, dtype=torch.float64, device=x.device)
    correct = torch.zeros(net.n, dtype=torch.int64, device=x.device)
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        logits = net(xb.unsqueeze(0).expand(net.n, *xb.shape), training=False)
        target = yb.unsqueeze(0).expand(net.n, -1)
        per = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        loss += per.sum(1).double()
        correct += (logits.argmax(2) == target).sum(1)
    return [(float(v) / len(x), int(c) / len(x)) for v, c in zip(loss, correct, strict=True)]


class _SeedBatches:
    """Each distinct seed's batch stream (and augmentation), drawn exactly as a one-network
    job draws it; batch() stacks them per network into [N, B, ...]."""

    def __init__(self, seeds: list[int], splits, s: Schedule, data_order, augment) -> None:
        self.seeds, self.splits, self.augment = seeds, splits, augment
        self.gens = {seed: data_order(seed) for seed in dict.fromkeys(seeds)}
        self.streams = {seed: batch_indices(len(splits.train_x), s, gen, splits.train_x.device)
                        for seed, gen in self.gens.items()}

    def skip(self) -> None:
        """Draw one batch per seed (and its augmentation) and discard it."""
        for seed, stream in self.streams.items():
            skip_batch(next(stream), self.splits, self.gens[seed], self.augment)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = {seed: next(stream) for seed, stream in self.streams.items()}
        if self.augment is None:
            order = torch.stack([idx[seed] for seed in self.seeds])
            return self.splits.train_x[order], self.splits.train_y[order]
        xs = {seed: self.augment(self.splits.train_x[i], self.gens[seed])
              for seed, i in idx.items()}
        return (torch.stack([xs[seed] for seed in self.seeds]),
                torch.stack([self.splits.train_y[idx[seed]] for seed in self.seeds]))


def train_stacked(models: list[nn.Module], masks: list[Mask], seeds: list[int], splits,
                  s: Schedule, data_order, checkpoint_iterations: list[tuple[int, ...]],
                  augment: Callable | None = None, capture: bool = False,
                  log: Callable[[str], None] = print, prefixes: list[str] | None = None,
                  evaluate_model: bool = True, start: int = 0):
    """Train N networks in one stacked step; [(final state dict, TrainResult)] per network.

    The loop mirrors lth.core.train.train: masks applied to the weights once and to the gradients
    after every backward pass (so masked weights and their optimizer state stay exactly 0),
    iterations start..s.iterations with the batches before `start` drawn and discarded,
    evaluation of validation and test at `start`, every eval_every and at the end, train
    accuracy at the end, checkpoints at the requested iterations.
    """
    net = StackedNet(models)
    prefixes = prefixes or [f"[net{i}]" for i in range(net.n)]
    masked = stacked_masks(net, masks)
    with torch.no_grad():
        torch._foreach_mul_([p for p, _ in masked], [m for _, m in masked])
    opt = make_optimizer(list(net.params.values()), s, capturable=capture)
    batches = _SeedBatches(seeds, splits, s, data_order, augment)
    metrics: list[list[dict]] = [[] for _ in range(net.n)]
    checkpoints: list[dict] = [{} for _ in range(net.n)]
    began = time.perf_counter()

    def evaluate_all(it: int) -> None:
        if not evaluate_model:
            return
        for split in ("val", "test"):
            x, y = getattr(splits, f"{split}_x"), getattr(splits, f"{split}_y")
            for i, (loss, acc) in enumerate(evaluate_stacked(net, x, y, s.eval_batch_size)):
                metrics[i].append({"iteration": it, "split": split, "loss": loss,
                                   "accuracy": acc})
        for i in range(net.n):
            log(progress_line(prefixes[i], it, s.iterations, metrics[i][-2:], began, start))

    def after(it: int) -> None:
        for i, wanted in enumerate(checkpoint_iterations):
            if it in wanted:
                checkpoints[i][it] = net.state(i)
        if evaluates_at(it, s, start):
            evaluate_all(it)

    step = _Step(net, opt, masked, s, batches, capture)
    for _ in range(start):
        batches.skip()
    after(start)
    for it in range(start, s.iterations):
        step(it)
        after(it + 1)
    if evaluate_model:
        train_x, train_y = train_eval_split(splits, s.train_eval_size)
        for i, (loss, acc) in enumerate(evaluate_stacked(net, train_x, train_y,
                                                         s.eval_batch_size)):
            metrics[i].append({"iteration": s.iterations, "split": "train", "loss": loss,
                               "accuracy": acc})
    wall = time.perf_counter() - began
    return [(net.state(i), TrainResult(metrics[i], checkpoints[i], wall, opt))
            for i in range(net.n)]


def stacked_masks(net: StackedNet, masks: list[Mask]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(stacked parameter, its networks' masks in the same padded layout) per masked weight."""
    return [(net.params[k], net.pad(torch.stack([m[k] for m in masks])).to(net.params[k].dtype))
            for k in masks[0]]


class _Step:
    """One training step of a StackedNet: eager, or (on CUDA) captured once and replayed.

    For the captured step the batch is copied into static buffers and the learning rate into
    a device tensor before each replay; nothing inside the graph syncs with the host.
    """

    def __init__(self, net: StackedNet, opt, masked, s: Schedule, batches: _SeedBatches,
                 capture: bool) -> None:
        self.net, self.opt, self.masked, self.s, self.batches = net, opt, masked, s, batches
        self.capture, self.graph, self.eager_steps = capture, None, 0
        self.grads = [p for p, _ in masked]
        self.values = [m for _, m in masked]

    def _compute(self, x: torch.Tensor, y: torch.Tensor) -> None:
        loss = stacked_loss(self.net(x, training=True), y)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        torch._foreach_mul_([p.grad for p in self.grads], self.values)
        self.opt.step()

    def __call__(self, it: int) -> None:
        lr = self.s.lr * lr_factor(it, self.s)
        for group in self.opt.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        x, y = self.batches.batch()
        if not self.capture:
            self._compute(x, y)
            return
        if self.eager_steps < CAPTURE_WARMUP:  # on a side stream, as CUDA graph capture asks
            self.eager_steps += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._compute(x, y)
            torch.cuda.current_stream().wait_stream(side)
            return
        if self.graph is None:
            self._record(x, y)
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()

    def _record(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Capture one step on static buffers (recording runs nothing; replay does)."""
        self.x, self.y = x.clone(), y.clone()
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._compute(self.x, self.y)
