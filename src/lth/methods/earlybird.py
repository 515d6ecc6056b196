"""Early-Bird tickets (You et al., ICLR 2020, "Drawing Early-Bird Tickets").

While a dense network trains, a ticket is drawn at every check; once the newest ticket is
within `epsilon` of each of the `queue - 1` tickets before it, the masks have settled and the
ticket is taken from the weights of that check (t_EB), long before training ends.

This follows the authors' code (RICE-EIC/Early-Bird-Tickets, main.py, class EarlyBird): a FIFO
of the last 5 masks; the distance of the NEWEST mask to EACH older one (not of consecutive
pairs); the ticket is drawn when none exceeds epsilon = 0.1; one detector per pruning ratio in
one training run; the check at epoch 0 sees the initial weights. lth checks every
`check_every` iterations instead of every epoch.

Two variants:
* magnitude (lth's default, any model): the ticket is one-shot global or layerwise magnitude
  pruning of the current weights to an exact density (lth.core.masks.prune_to_density).
* channel (the paper's, VGG): network slimming (`Slimming`, Liu et al. 2017) during the
  search, a global |BatchNorm scale| threshold for the ticket (`channel_ticket`), physical
  removal of the pruned channels (`prune_channels`).

Distances. The paper's is the normalised Hamming distance. Two masks keeping K of N weights
differ in at most 2 min(K, N - K) positions, so at density <= epsilon / 2 it can never exceed
epsilon and the detector fires at the first full queue whatever training does
(`vacuous_hamming`). lth's default `changed_fraction` divides by that bound: the fraction of
kept weights that moved.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lth.core.errors import LthError
from lth.core.io import save_tensors, write_json
from lth.core.masks import Mask, counts, full_mask, keep_top_global, macs, prune_to_density
from lth.core.models import VGG
from lth.core.networks import (
    load_model,
    prunable_params,
    resolve_device,
    smaller_architecture,
    splits_of,
    use_threads,
)
from lth.core.provenance import make_record
from lth.core.records import training_macs
from lth.core.seeding import generator
from lth.core.train import train
from lth.methods.criteria import ScoreData, magnitude_scores
from lth.methods.filters import keep_filters
from lth.plan.catalog import round_half_up
from lth.plan.families.earlybird import EarlyBird, EarlyBirdJob, vacuous_hamming
from lth.plan.spec import Extension, Schedule

TicketFn = Callable[[nn.Module, float], Mask]
"""(model, density) -> the ticket of the model's current weights at that density."""

VARIANTS = ("magnitude", "channel")


def _differing(a: Mask, b: Mask) -> int:
    """Positions where two masks of the same layout disagree, over all layers."""
    if a.keys() != b.keys():
        raise ValueError(f"masks over different layers: {sorted(a)} vs {sorted(b)}")
    return sum(int((a[n] ^ b[n]).sum()) for n in a)


def hamming(a: Mask, b: Mask) -> float:
    """#(a xor b) / N over all positions of all layers (You et al.'s mask distance)."""
    return _differing(a, b) / counts(a)[1]


def changed_fraction(a: Mask, b: Mask) -> float:
    """hamming(a, b) / (2 min(d, 1 - d)), d the density of `a`: for masks with a's count,
    the fraction of kept weights that moved (1 - |a and b| / K when d <= 1/2); in [0, 1]."""
    kept, total = counts(a)
    bound = 2 * min(kept, total - kept)
    if bound == 0:
        raise ValueError(f"changed_fraction: the mask keeps {kept} of {total} weights; "
                         "it needs a density strictly between 0 and 1")
    return _differing(a, b) / bound


DISTANCES: dict[str, Callable[[Mask, Mask], float]] = {
    "changed_fraction": changed_fraction,
    "hamming": hamming,
}


def _check_queue_and_distance(queue: int, distance: str) -> None:
    if distance not in DISTANCES:
        raise LthError(f"earlybird.distance must be one of {', '.join(DISTANCES)}, "
                       f"got {distance!r}")
    if queue < 2:
        raise LthError(f"earlybird.queue must be >= 2 (a mask and one to compare with), "
                       f"got {queue}")


class Detector:
    """The Early-Bird test of one density: a FIFO of the last `queue` masks; when full, the
    distances of the newest mask to each older one (oldest first); fires when all are
    <= epsilon (main.py, EarlyBird.early_bird_emerge).

    history: one row per push, [label, distances to the older masks held, oldest first];
    rows before the queue is full are shorter (the first is just [label]).
    """

    def __init__(self, epsilon: float, queue: int = 5, distance: str = "changed_fraction"):
        _check_queue_and_distance(queue, distance)
        self.epsilon = epsilon
        self.distance = DISTANCES[distance]
        self.masks: deque[Mask] = deque(maxlen=queue)
        self.history: list[list[float]] = []

    def push(self, mask: Mask, at: int | None = None) -> bool:
        """Add the mask of the newest check, labelled `at` in the history (default: the check
        index, from 0); True when the detector fires at this check."""
        self.masks.append(mask)
        older = list(self.masks)[:-1]
        dists = [self.distance(mask, m) for m in older]
        self.history.append([len(self.history) if at is None else at, *dists])
        return len(self.masks) == self.masks.maxlen and all(d <= self.epsilon for d in dists)


def check_earlybird(eb: EarlyBird, iterations: int) -> None:
    """One clear error for settings under which the search cannot mean anything: the config
    check of earlybird_search (also run by `search` before training)."""
    if not eb.densities or not all(0 < d < 1 for d in eb.densities):
        raise LthError(f"earlybird.densities must be in (0, 1), got {list(eb.densities)}")
    if len(set(eb.densities)) < len(eb.densities):
        raise LthError(f"earlybird.densities must be distinct, got {list(eb.densities)}")
    if eb.scope not in ("layerwise", "global"):
        raise LthError(f"earlybird.scope must be 'layerwise' or 'global', got {eb.scope!r}")
    if eb.check_every < 1:
        raise LthError(f"earlybird.check_every must be >= 1, got {eb.check_every}")
    if not 0 <= eb.epsilon < 1:
        raise LthError(f"earlybird.epsilon must be in [0, 1), got {eb.epsilon}")
    _check_queue_and_distance(eb.queue, eb.distance)
    if eb.variant not in VARIANTS:
        raise LthError(f"earlybird.variant must be one of {', '.join(VARIANTS)}, "
                       f"got {eb.variant!r}")
    if eb.slimming < 0 or (eb.slimming > 0 and eb.variant != "channel"):
        raise LthError(f"earlybird.slimming must be >= 0 and is the channel variant's, got "
                       f"{eb.slimming} with variant {eb.variant}")
    needed = (eb.queue - 1) * eb.check_every
    if needed > iterations:
        raise LthError(f"earlybird: a queue of {eb.queue} checks every {eb.check_every} iterations "
                       f"first fills at iteration {needed}, but training has {iterations}")
    for d in eb.densities:
        if eb.distance == "hamming" and vacuous_hamming(d, eb.epsilon):
            raise LthError(f"earlybird: the hamming threshold is vacuous at density {d}: two masks "
                           f"differ by at most 2*min(d, 1-d) = {2 * min(d, 1 - d):g} <= "
                           f"epsilon {eb.epsilon}; use distance changed_fraction")


def magnitude_ticket(model: nn.Module, density: float, scope: str, names: list[str]) -> Mask:
    """One-shot magnitude pruning of the model's current weights to exactly
    round(density * size) weights (lth.core.masks.prune_to_density; ties keep the lower index)."""
    params = dict(model.named_parameters())
    dense = full_mask({n: params[n] for n in names})
    # magnitude reads only the names of the ScoreData
    data = ScoreData(names=list(names), batches=[], gen=torch.Generator(), num_classes=0,
                     input_shape=(), grasp_temperature=None, batchnorm_training=None)
    return prune_to_density(magnitude_scores(model, dense, data), dense, density, scope, names)


def _batchnorms(model: nn.Module) -> dict[str, _BatchNorm]:
    """Module name -> every BatchNorm layer with a scale, in registration order."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, _BatchNorm) and m.weight is not None}


class Slimming:
    """Network slimming's L1 subgradient on BatchNorm scales, as lth.core.train.train's
    after_backward: gamma.grad += strength * sign(gamma) (main.py updateBN, s = 1e-4).
    Picklable (a CPU cohort's worker sends its hooks back), with no files to save beside the
    network (the Extension protocol of lth.plan.spec)."""

    def __init__(self, strength: float):
        self.strength = strength

    def __call__(self, _it: int, model: nn.Module) -> None:
        for bn in _batchnorms(model).values():
            bn.weight.grad.add_(torch.sign(bn.weight.detach()), alpha=self.strength)

    def files(self) -> dict:
        return {}


def training_mask(_extension: Extension, _params) -> None:
    """A retraining trains the member's own mask."""
    return None


def training_monitor(extension: Extension, _mask: Mask, _device) -> Slimming:
    """Network slimming while a channel ticket retrains, of the strength the extension's
    settings give (the authors' retrain_continue.sh and retrain_scratch.sh pass
    --sparsity-regularization)."""
    strength = extension.settings.get("slimming")
    if not isinstance(strength, float | int) or strength <= 0:
        raise LthError(f"extension.settings.slimming: expected a strength > 0, got {strength!r}")
    return Slimming(float(strength))


def channel_ticket(model: nn.Module, ratio: float) -> Mask:
    """BatchNorm name -> kept channels: the round_half_up((1 - ratio) * C) channels with the
    largest |gamma| over all C channels of all BatchNorm layers (one global ranking, ties keep
    the lower index in registration order).

    The reference (EarlyBird.pruning) keeps |gamma| > sorted[int(C * ratio)] strictly, which
    removes int(C * ratio) + 1 channels, more on ties; lth keeps an exact count.
    """
    scales = {name: bn.weight.detach().abs() for name, bn in _batchnorms(model).items()}
    if not scales:
        raise LthError(f"channel_ticket: {type(model).__name__} has no BatchNorm layer")
    if not 0 <= ratio < 1:
        raise LthError(f"channel_ticket: ratio must be in [0, 1), got {ratio}")
    total = sum(s.numel() for s in scales.values())
    keep = round_half_up((1 - ratio) * total)
    return keep_top_global(scales, full_mask(scales), keep, list(scales))


def ticket_drawer(eb: EarlyBird, names: list[str]) -> TicketFn:
    """How the search draws a ticket at density d: magnitude masks of `names` at density d,
    or (channel variant) the channel ticket keeping the fraction d of all BatchNorm channels."""
    if eb.variant == "channel":
        return lambda m, d: channel_ticket(m, 1 - d)
    return lambda m, d: magnitude_ticket(m, d, eb.scope, names)


def search_hook(eb: EarlyBird) -> Callable[[int, nn.Module], None] | None:
    """The after_backward hook of the search: network slimming in the channel variant."""
    return Slimming(eb.slimming) if eb.slimming > 0 else None


def prune_channels(model: VGG, kept: Mask) -> VGG:
    """A new, smaller VGG without the channels `kept` (a channel_ticket) drops: each conv's
    filters, its BatchNorm entries and the next layer's inputs (lth.methods.filters.keep_filters;
    the reference's vggprune.py). The input model is not changed."""
    if not isinstance(model, VGG):
        raise LthError(f"prune_channels: expected a lth.core.models.VGG, "
                       f"got {type(model).__name__}")
    conv_of, conv = {}, None  # BatchNorm name -> the conv weight it normalises
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d):
            conv = f"{name}.weight"
        elif isinstance(module, nn.BatchNorm2d):
            conv_of[name] = conv
    if set(kept) != set(conv_of):
        raise LthError(f"prune_channels: expected channel masks for {', '.join(conv_of)}, got "
                       f"{', '.join(kept) or 'none'}")
    empty = [name for name, m in kept.items() if not bool(m.any())]
    if empty:
        raise LthError(f"prune_channels: {', '.join(empty)} would keep no channel")
    return keep_filters(model, {conv_of[n]: m.flatten().nonzero().squeeze(1).cpu()
                                for n, m in kept.items()})


@dataclass
class Ticket:
    """The Early-Bird ticket of one density."""

    density: float
    fired: bool  # False: never settled; the ticket is that of the final weights
    iteration: int  # t_EB: the iteration of the weights the ticket is drawn from
    mask: Mask  # on the cpu
    weights: dict[str, torch.Tensor]  # the model's cpu state dict at t_EB (EB Train's start)
    history: list[list[float]]  # [iteration, distances to the older masks, oldest first]


@dataclass
class SearchResult:
    tickets: list[Ticket]  # in the order of eb.densities
    last_iteration: int  # where training stopped (the last t_EB, or s.iterations)
    metrics: list[dict]  # lth.core.train.train's rows
    wall_seconds: float


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in tensors.items()}


def search(
    model: nn.Module,
    splits,
    s: Schedule,
    gen: torch.Generator,
    eb: EarlyBird,
    names: list[str],
    log: Callable[[str], None] = print,
    prefix: str = "",
    ticket: TicketFn | None = None,
    after_backward: Callable[[int, nn.Module], None] | None = None,
) -> SearchResult:
    """Train the dense `model` with lth.core.train.train, drawing a ticket per density at
    iteration 0 and every eb.check_every iterations (and at the end, when it falls on a
    check), until every density's detector has fired or s.iterations.

    ticket, after_backward: how a ticket is drawn and what runs after each backward pass
    (default: eb's variant, ticket_drawer and search_hook). A density that never fires gets
    the ticket of the final weights with fired False. The model ends holding the weights of
    the last iteration.
    """
    check_earlybird(eb, s.iterations)
    draw = ticket or ticket_drawer(eb, names)
    after_backward = after_backward or search_hook(eb)
    detectors = [Detector(eb.epsilon, eb.queue, eb.distance) for _ in eb.densities]
    found: dict[int, Ticket] = {}
    began = time.perf_counter()

    def check(it: int, current: nn.Module) -> bool:
        weights = None
        for i, (density, detector) in enumerate(zip(eb.densities, detectors, strict=True)):
            if i in found:
                continue
            mask = draw(current, density)
            if detector.push(mask, at=it):
                weights = weights if weights is not None else _cpu(current.state_dict())
                found[i] = Ticket(density, True, it, _cpu(mask), weights, detector.history)
                log(f"{prefix} eb density {density}: ticket drawn at iteration {it} "
                    f"(distances {', '.join(f'{d:.4f}' for d in detector.history[-1][1:])})")
        return len(found) == len(detectors)

    params = dict(model.named_parameters())
    dense = full_mask({n: params[n] for n in names})
    result = train(model, dense, splits, s, gen, log=log, prefix=prefix,
                   after_backward=after_backward, observe=check, observe_every=eb.check_every)
    last = result.last_iteration
    if len(found) < len(detectors) and last % eb.check_every == 0:
        check(last, model)
    final = None if len(found) == len(detectors) else _cpu(model.state_dict())
    tickets = [
        found[i] if i in found
        else Ticket(d, False, last, _cpu(draw(model, d)), final, detectors[i].history)
        for i, d in enumerate(eb.densities)
    ]
    return SearchResult(tickets, last, result.metrics, time.perf_counter() - began)


def search_job(job: EarlyBirdJob, device: torch.device) -> tuple[nn.Module, dict, SearchResult]:
    """Run the search of one seed from its theta_0: (the model as training left it, its
    architecture, what the search found)."""
    splits = splits_of(job.data_root, job.val_size, device)
    model, arch = load_model(job.init, 0.0, device)
    names = list(prunable_params(model))
    found = search(model, splits, job.schedule, generator(job.experiment, job.seed, "data-order"),
                   job.earlybird, names, prefix=f"[{job.experiment} seed{job.seed} eb search]")
    return model, arch, found


def save_search(job: EarlyBirdJob, model: nn.Module, arch: dict, found: SearchResult,
                device: torch.device, argv: list[str]) -> None:
    """Per density, the ticket's files with their record; then search.json with the
    detection history. The magnitude variant writes the ticket's mask and the weights it was
    drawn at (EB Train continues from them); the channel variant save_channel_ticket's files."""
    dense = macs(model, tuple(arch["input_shape"]))
    inputs = [job.init, Path(job.data_root) / "tensors.safetensors"]
    summary = {"last_iteration": found.last_iteration, "metrics": found.metrics, "tickets": []}
    theta0 = load_model(job.init, 0.0, device)[0] if job.earlybird.variant == "channel" else None
    for density, out_dir, ticket in zip(job.earlybird.densities, job.out_dirs, found.tickets,
                                        strict=True):
        params = dict(dataclasses.asdict(job), density=density, out_dir=out_dir)
        del params["out_dirs"]
        record = make_record("earlybird", params, inputs, str(device), argv=argv)
        record["architecture"] = arch
        record["iteration"] = ticket.iteration
        record["macs"] = training_macs(ticket.iteration, job.schedule.batch_size,
                                       {"macs": dense, "dense_macs": dense})  # dense search
        record["earlybird"] = {"fired": ticket.fired, "iteration": ticket.iteration}
        if theta0 is not None:
            save_channel_ticket(Path(out_dir), ticket, theta0, arch, record)
        else:
            save_tensors(Path(out_dir) / "weights_at_eb.safetensors", ticket.weights, record)
            save_tensors(Path(out_dir) / "mask.safetensors", ticket.mask, record)
        summary["tickets"].append({"density": density, "fired": ticket.fired,
                                   "iteration": ticket.iteration, "history": ticket.history})
    record = make_record("earlybird", dataclasses.asdict(job), inputs, str(device), argv=argv)
    write_json(job.record, dict(record, search=summary, timings={"search": found.wall_seconds}))


def save_channel_ticket(out: Path, ticket: Ticket, theta0: VGG, arch: dict,
                        record: dict) -> None:
    """channels.safetensors (BatchNorm name -> kept channels) and the smaller VGG without the
    others: weights_at_eb.safetensors (EB Train continues from it, at ticket.iteration) and
    weights_at_init.safetensors (theta_0's surviving weights, at iteration 0). theta0, the
    dense VGG at theta_0 (architecture arch), is left unchanged."""
    at_init = prune_channels(theta0, ticket.mask)
    at_eb = copy.deepcopy(theta0)
    at_eb.load_state_dict(ticket.weights)
    record = dict(record, architecture=smaller_architecture(arch, theta0, at_init))
    save_tensors(out / "channels.safetensors", ticket.mask, record)
    save_tensors(out / "weights_at_eb.safetensors",
                 prune_channels(at_eb, ticket.mask).state_dict(), record)
    save_tensors(out / "weights_at_init.safetensors", at_init.state_dict(),
                 dict(record, iteration=0))


def run_earlybird_job(job: EarlyBirdJob, argv: list[str], threads: int | None) -> None:
    """The `earlybird` verb: the search of one seed, each density's ticket files, then
    search.json with the detection history."""
    device = resolve_device(job.device)
    use_threads(threads)
    model, arch, found = search_job(job, device)
    save_search(job, model, arch, found, device, argv)
