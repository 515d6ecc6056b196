"""Supermasks: masks mined on frozen random weights by training one score per weight.

Two methods share one loop (`supermask`); only the scores change, never the weights:

* edge-popup (Ramanujan et al., CVPR 2020; allenai/hidden-networks, utils/conv_type.py): scores
  S ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); every forward uses, per layer (first and last
  included), the top round_half_up(density * numel) of |S|; the backward is straight-through,
  dL/dS = sign(S) * W * dL/dW_eff for every edge, kept or not, so pruned edges can "pop up".
  The saved scores are |S|, what the mask ranks (the reference's GetSubnet sorts
  scores.abs()), so they compare with other criteria's unsigned scores.
* GEM-MINER (Sreenivasan et al., NeurIPS 2022; ksreenivasan/pruning_is_enough, `hc_iter`):
  scores p ~ U[0, 1], projected to [0, 1] after every step; every forward uses 1{p > 0.5} * flag,
  straight-through where flag = 1; the loss adds lambda * sum ||p||^2; at F evenly spaced
  iterations the lowest-scored flagged weights are frozen out (flag <- 0) globally. Flagged
  scores tied at the threshold (projected to exactly 0 or 1) are kept in a random order, drawn
  after the scores from the member's score generator (derive_seed(experiment, seed,
  "<method>/<level>")), so a tie never keeps the first rows of a layer. Two masks
  come out, as in the reference: the "rare gem", the rounded mask 1{p > 0.5} * flag of the last
  forward, evaluated untrained (the paper's accuracy "after rounding"; it can keep fewer
  weights than the target when the L2 pull leaves flagged scores below 0.5), and the final
  flags, exactly the target count, whose weights GEM-MINER then trains
  (`unflag_before_finetune`).

Freezing counts (our change): the reference removes ceil(r * #flagged) at each freeze with
r = 1 - d^(1/F), so it ends up to F weights below the target count. Here freeze j of F keeps
round_half_up(N * d^(j/F)) weights: the same geometric decay, ending at exactly
round_half_up(N * d), the count every other lth method keeps at density d.

Weights are the frozen start (`frozen_start_`): signed Kaiming constants with theta_0's signs
(the reference's "usc" weights), or theta_0 itself. Biases and BatchNorm affine parameters are
never trained (theta_0 has biases 0 and BatchNorm weight 1, bias 0: the reference's bias-free,
non-affine layers); BatchNorm running statistics are buffers and do update.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from lth.core.errors import LthError
from lth.core.masks import (
    Mask,
    Scores,
    apply_mask_,
    counts,
    keep_top_layerwise,
    layer_macs,
)
from lth.core.models import prunable_names
from lth.core.networks import (
    load_model,
    prunable_params,
    resolve_device,
    splits_of,
    use_threads,
)
from lth.core.provenance import make_record
from lth.core.records import network_facts, one_member, rerun_argv, write_run
from lth.core.seeding import generator
from lth.core.train import (
    batch_indices,
    evaluate,
    evaluates_at,
    make_optimizer,
    progress_line,
    train_eval_split,
)
from lth.plan.catalog import round_half_up
from lth.plan.families.supermask import Mining, MiningMember, SupermaskJob
from lth.plan.spec import Schedule

WEIGHTS = ("signed_constant", "theta0")
GEM_THRESHOLD = 0.5
"""GEM-MINER's forward keeps a flagged weight when its score exceeds this (`quantize_threshold`)."""


@dataclass
class MiningResult:
    mask: Mask  # the mined mask (edge-popup: top-k |S| per layer; GEM-MINER: the rare gem)
    flags: Mask | None  # GEM-MINER's final flags (the target count): the mask it trains
    scores: Scores  # the final scores the masks rank: |S| (edge-popup), p (GEM-MINER)
    metrics: list[dict]  # rows: iteration, split, loss, accuracy (of W * mask, untrained)
    wall_seconds: float
    macs: dict[str, int]  # {"sparse": ..., "dense": ...}: the work of mining
    extra: dict  # method facts for run.json


def fan_in(weight: torch.Tensor) -> int:
    """Inputs per output unit: in_features of a linear weight, C_in * k * k of a conv weight."""
    return weight[0].numel()


@torch.no_grad()
def frozen_start_(model: nn.Module, names: list[str], weights: str) -> None:
    """Set the weights that mining keeps frozen, in place.

    "signed_constant": W <- sqrt(2 / fan_in) * sign(W) (a zero weight gets +), the same signs
    as theta_0; idempotent. "theta0": the weights are left as they are.
    """
    if weights not in WEIGHTS:
        raise LthError(f"mining weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    if weights == "theta0":
        return
    params = dict(model.named_parameters())
    for name in names:
        w = params[name]
        sigma = math.sqrt(2.0 / fan_in(w))
        w.copy_(torch.where(w < 0, -sigma, sigma))


class _StraightThroughTopK(torch.autograd.Function):
    """1 on the `keep` largest entries (ties: lower flat index), 0 elsewhere; gradient passed
    through unchanged to every entry."""

    @staticmethod
    def forward(ctx, magnitude: torch.Tensor, keep: int) -> torch.Tensor:
        full = torch.ones_like(magnitude, dtype=torch.bool)
        chosen = keep_top_layerwise({"w": magnitude}, {"w": full}, {"w": keep})["w"]
        return chosen.to(magnitude.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class _StraightThroughThreshold(torch.autograd.Function):
    """1 where the score exceeds GEM_THRESHOLD, 0 elsewhere; gradient passed through."""

    @staticmethod
    def forward(ctx, p: torch.Tensor) -> torch.Tensor:
        return (p > GEM_THRESHOLD).to(p.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad


def popup_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Edge-popup's mask (float): the top `keep` of |S|; dL/dS = sign(S) * dL/dM everywhere."""
    return _StraightThroughTopK.apply(scores.abs(), keep)


def gem_mask(p: torch.Tensor, flag: torch.Tensor) -> torch.Tensor:
    """GEM-MINER's mask (float): 1{p > 0.5} * flag; dL/dp = dL/dM * flag."""
    return _StraightThroughThreshold.apply(p) * flag


def cosine_factor(iteration: int, iterations: int) -> float:
    """0.5 * (1 + cos(pi * iteration / iterations)): 1 at the start, 0 at the end."""
    return 0.5 * (1.0 + math.cos(math.pi * iteration / iterations))


def freeze_schedule(total: int, density: float, iterations: int,
                    freeze_every: int) -> dict[int, int]:
    """GEM-MINER's freezes: iteration j * freeze_every -> weights still flagged after it,
    round_half_up(total * density^(j/F)) for j = 1..F, F = (iterations - 1) // freeze_every."""
    freezes = (iterations - 1) // freeze_every if freeze_every >= 1 else 0
    if freezes < 1:
        raise LthError(f"mining freeze_every must be in 1..{iterations - 1} (at least one "
                       f"freeze before the last of {iterations} iterations), got {freeze_every}")
    return {j * freeze_every: round_half_up(total * density ** (j / freezes))
            for j in range(1, freezes + 1)}


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.requires_grad_(True)


class EdgePopup:
    """Edge-popup's scores and masks over the prunable weights `weights` (name -> W)."""

    def __init__(self, weights: dict[str, torch.Tensor], density: float, gen: torch.Generator):
        self.keep = {n: round_half_up(density * w.numel()) for n, w in weights.items()}
        empty = [n for n, k in self.keep.items() if k == 0]
        if empty:
            raise LthError(f"edge_popup density {density} keeps no weight of layer {empty[0]} "
                           f"({weights[empty[0]].numel()} weights)")
        self.scores = {n: _leaf(nn.init.kaiming_uniform_(torch.empty_like(w), a=math.sqrt(5),
                                                         generator=gen))
                       for n, w in weights.items()}

    def forward_masks(self) -> dict[str, torch.Tensor]:
        return {n: popup_mask(s, self.keep[n]) for n, s in self.scores.items()}

    def penalty(self) -> torch.Tensor | float:
        return 0.0

    def after_step(self, done: int) -> None:
        """Nothing to do after an optimiser step."""

    def current_mask(self) -> Mask:
        full = {n: torch.ones_like(s, dtype=torch.bool) for n, s in self.scores.items()}
        return keep_top_layerwise(self.ranked_scores(), full, self.keep)

    def ranked_scores(self) -> Scores:
        """What the mask ranks, and what is saved: |S|."""
        return {n: s.detach().abs() for n, s in self.scores.items()}

    def facts(self) -> dict:
        return {"kept_per_layer": dict(self.keep)}


class GemMiner:
    """GEM-MINER's scores, flags and freezing over the prunable weights `weights`."""

    def __init__(self, weights: dict[str, torch.Tensor], density: float, m: Mining,
                 gen: torch.Generator):
        self.names = list(weights)
        total = sum(w.numel() for w in weights.values())
        if round_half_up(density * total) == 0:
            raise LthError(f"gem_miner density {density} keeps none of the {total} weights")
        self.freezes = freeze_schedule(total, density, m.iterations, m.freeze_every)
        self.regularization = m.regularization
        self.scores = {n: _leaf(torch.rand(w.shape, generator=gen, device=w.device,
                                           dtype=w.dtype))
                       for n, w in weights.items()}
        self.flag = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
        self.gen = gen  # after the scores: the order of ties at each freeze
        self.tied: list[int] = []  # per freeze: flagged scores at the threshold (1: no tie)

    def forward_masks(self) -> dict[str, torch.Tensor]:
        return {n: gem_mask(p, self.flag[n]) for n, p in self.scores.items()}

    def penalty(self) -> torch.Tensor:
        return self.regularization * sum(p.square().sum() for p in self.scores.values())

    @torch.no_grad()
    def after_step(self, done: int) -> None:
        """Project the scores to [0, 1]; after `done` iterations, freeze if one is due."""
        for p in self.scores.values():
            p.clamp_(0.0, 1.0)
        if done in self.freezes:
            self.flag, tied = freeze(self.scores, self.flag, self.freezes[done], self.names,
                                     self.gen)
            self.tied.append(tied)

    def current_mask(self) -> Mask:
        """The mask of the forward: flagged weights whose score exceeds the threshold."""
        return {n: (p.detach() > GEM_THRESHOLD) & self.flag[n] for n, p in self.scores.items()}

    def ranked_scores(self) -> Scores:
        """What the freezes rank, and what is saved: p in [0, 1]."""
        return {n: p.detach() for n, p in self.scores.items()}

    def facts(self) -> dict:
        return {"freeze_iterations": list(self.freezes),
                "flagged_after_freeze": list(self.freezes.values()),
                "tied_at_threshold": list(self.tied)}


@torch.no_grad()
def freeze(scores: Scores, flag: Mask, keep: int, names: list[str],
           gen: torch.Generator) -> tuple[Mask, int]:
    """GEM-MINER's freeze: keep the `keep` flagged weights of highest score over the named
    layers together, the flagged scores tied at the keep-th highest in a random order from
    `gen`; also how many flagged scores were tied there."""
    flat = torch.cat([scores[n].detach().flatten() for n in names])
    alive = torch.cat([flag[n].flatten() for n in names])
    values = flat[alive]
    if not 0 < keep <= values.numel():
        raise LthError(f"a freeze cannot keep {keep} of {values.numel()} flagged weights")
    threshold = torch.topk(values, keep, sorted=False).values.min()
    kept = alive & (flat > threshold)
    tied = (alive & (flat == threshold)).nonzero().squeeze(1)
    order = torch.randperm(tied.numel(), generator=gen).to(tied.device)
    kept[tied[order[: keep - int(kept.sum())]]] = True
    sizes = [flag[n].numel() for n in names]
    chunks = kept.split(sizes)
    return ({**flag, **{n: c.view_as(flag[n]) for n, c in zip(names, chunks, strict=True)}},
            tied.numel())


ALGORITHMS = ("edge_popup", "gem_miner")


def _mining_state(m: Mining, weights: dict[str, torch.Tensor], density: float,
                  gen: torch.Generator) -> EdgePopup | GemMiner:
    """The chosen method's initial state; LthError for settings it cannot run with."""
    if m.algo not in ALGORITHMS:
        raise LthError(f"mining algo must be one of {', '.join(ALGORITHMS)}, got {m.algo!r}")
    if not 0 < density <= 1:
        raise LthError(f"mining density must be in (0, 1], got {density}")
    if m.algo == "edge_popup":
        return EdgePopup(weights, density, gen)
    return GemMiner(weights, density, m, gen)


def _schedule(m: Mining) -> Schedule:
    """The Schedule of lth.core.train with the mining settings (for the optimiser, data order and
    evaluation iterations); its own milestones, warmup and augmentation are unused."""
    return Schedule(optimizer=m.optimizer, lr=m.lr, momentum=m.momentum, nesterov=False,
                    weight_decay=m.weight_decay, batch_size=m.batch_size,
                    iterations=m.iterations, milestones=(), gamma=1.0, warmup=0, dropout=0.0,
                    augment=False, eval_every=m.eval_every, eval_batch_size=m.eval_batch_size,
                    train_eval_size=m.train_eval_size)


class _Masked(nn.Module):
    """`model` evaluated with some of its parameters replaced (without touching them)."""

    def __init__(self, model: nn.Module, replaced: dict[str, torch.Tensor]):
        super().__init__()
        self.model = model
        self.replaced = replaced

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, self.replaced, (x,))


def mine(model: nn.Module, splits, m: Mining, density: float, score_gen: torch.Generator,
         data_gen: torch.Generator, log: Callable[[str], None] = print,
         prefix: str = "") -> MiningResult:
    """Mine a mask of `density` on the frozen start of `model` by training scores.

    The weights are first set by frozen_start_(model, prunable weights, m.weights) (a no-op
    when they already are), then never written until the end.

    Scores are drawn from score_gen; batches follow lth.core.train's data order from data_gen. The
    learning rate is m.lr * cosine_factor(it, m.iterations). Validation and test are evaluated
    at 0, every m.eval_every iterations and at the end, train at the end, always of the
    untrained network W * mask of the forward (top-k |S|, or GEM-MINER's rounded mask
    1{p > 0.5} * flags), which is also the returned mask; GEM-MINER also returns its final
    flags, and `extra` their count and density.

    On return the prunable weights are W * mask, every other parameter unchanged.
    """
    names = prunable_names(model)
    params = dict(model.named_parameters())
    state = _mining_state(m, {n: params[n].detach() for n in names}, density, score_gen)
    s = _schedule(m)
    frozen_start_(model, names, m.weights)
    frozen = {n: p.detach() for n, p in params.items()}
    opt = make_optimizer(list(state.scores.values()), s)
    batches = batch_indices(len(splits.train_x), s, data_gen, splits.train_x.device)
    dense_macs = layer_macs(model, tuple(splits.info.input_shape))
    per_weight = {n: dense_macs[n] // frozen[n].numel() for n in names}
    kept_sum = {n: torch.zeros((), dtype=torch.long, device=frozen[n].device) for n in names}
    metrics: list[dict] = []
    began = time.perf_counter()

    def network(mask: Mask) -> nn.Module:
        return _Masked(model, {**frozen, **{n: frozen[n] * mask[n] for n in names}})

    def record(net: nn.Module, it: int, split: str, rows: list[dict]) -> dict:
        x, y = (train_eval_split(splits, m.train_eval_size) if split == "train"
                else (getattr(splits, f"{split}_x"), getattr(splits, f"{split}_y")))
        loss, acc = evaluate(net, x, y, m.eval_batch_size)
        row = {"iteration": it, "split": split, "loss": loss, "accuracy": acc}
        rows.append(row)
        return row

    def checkpoint(it: int) -> None:
        if evaluates_at(it, s):
            net = network(state.current_mask())
            rows = [record(net, it, "val", metrics), record(net, it, "test", metrics)]
            log(progress_line(prefix, it, m.iterations, rows, began))

    model.train()
    checkpoint(0)
    for it in range(m.iterations):
        idx = next(batches)
        x, y = splits.train_x[idx], splits.train_y[idx]
        for group in opt.param_groups:
            group["lr"] = m.lr * cosine_factor(it, m.iterations)
        masks = state.forward_masks()
        effective = {n: frozen[n] * masks[n] for n in names}
        out = functional_call(model, {**frozen, **effective}, (x,))
        loss = F.cross_entropy(out, y) + state.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        for n in names:
            kept_sum[n] += torch.count_nonzero(masks[n].detach())
        state.after_step(it + 1)
        checkpoint(it + 1)

    mask = state.current_mask()
    record(network(mask), m.iterations, "train", metrics)
    extra = {"algo": m.algo, "weights": m.weights, **state.facts()}
    flags = dict(state.flag) if isinstance(state, GemMiner) else None
    if flags is not None:
        kept, total = counts(flags)
        extra["flags"] = {"kept": kept, "density": kept / total}
    apply_mask_(params, mask)
    return MiningResult(
        mask=mask,
        flags=flags,
        scores=state.ranked_scores(),
        metrics=metrics,
        wall_seconds=time.perf_counter() - began,
        macs=_mining_macs(per_weight, kept_sum, sum(dense_macs.values()), m),
        extra=extra,
    )


def _mining_macs(per_weight: dict[str, int], kept_sum: dict[str, torch.Tensor],
                 f_dense: int, m: Mining) -> dict[str, int]:
    """Sum over steps of batch * (2 * f(mask_t) + f_dense), and steps * batch * 3 * f_dense.

    f(mask) of lth.core.masks.macs is the sum over layers of kept weights times the MACs per weight
    of the layer (its output positions), so the kept counts summed over the steps give the
    exact total.
    """
    sparse_sum = sum(int(kept_sum[n]) * per_weight[n] for n in kept_sum)
    return {"sparse": m.batch_size * (2 * sparse_sum + m.iterations * f_dense),
            "dense": m.iterations * m.batch_size * 3 * f_dense}


def mine_member(job: SupermaskJob, m: MiningMember, splits, device: torch.device) -> None:
    """Mine one member's mask on the frozen start of its theta_0; write its run folder
    (write_mined)."""
    model, arch = load_model(m.init, 0.0, device)
    frozen_start_(model, list(prunable_params(model)), job.mining.weights)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    mined = mine(model, splits, job.mining, m.density,
                 generator(job.experiment, m.seed, f"{m.method}/{m.level}"),
                 generator(job.experiment, m.seed, "data-order"),
                 prefix=f"[{job.experiment} seed{m.seed} {m.method}/{m.level}]")
    write_mined(job, m, model, arch, start, mined, device)


def write_mined(job: SupermaskJob, m: MiningMember, model: nn.Module, arch: dict,
                start: dict[str, torch.Tensor], mined: MiningResult,
                device: torch.device) -> None:
    """A member's run folder: the untrained ticket (final = frozen weights under the mask),
    its mask, the final scores, metrics.csv and run.json (its argv mines this member alone);
    GEM-MINER's also its final flags (flags.safetensors) and the frozen weights under them
    (start.safetensors, the frozen start given), the ticket gem_miner trains."""
    facts = network_facts(model, arch, mined.mask)
    own = one_member(job, m)
    record = make_record("supermask", dict(dataclasses.asdict(own), seed=m.seed),
                         [m.init, Path(job.data_root) / "tensors.safetensors"], str(device),
                         argv=rerun_argv("supermask", own))
    record["architecture"] = arch
    record["macs"] = mined.macs
    fields = dict(facts, method=m.method, family="supermask", level=m.level,
                  target_density=m.density, iterations=job.mining.iterations,
                  start_iteration=0, draw=0, budget_factor=1.0, weights_trained=False,
                  mining=mined.extra)
    tensors = {"final.safetensors": model.state_dict(), "mask.safetensors": mined.mask,
               "scores.safetensors": mined.scores}
    if mined.flags is not None:
        apply_mask_(start, mined.flags)
        tensors |= {"flags.safetensors": mined.flags, "start.safetensors": start}
    write_run(Path(m.out_dir), record, tensors, mined, fields,
              {"train": mined.wall_seconds}, stops_early=False)


def run_supermask_job(job: SupermaskJob, argv: list[str], threads: int | None) -> None:
    """The `supermask` verb: mine a mask of frozen weights per member, each written to its run
    folder with a record whose argv mines that member alone."""
    device = resolve_device(job.device)
    use_threads(threads)
    splits = splits_of(job.data_root, job.val_size, device)
    for m in job.members:
        mine_member(job, m, splits, device)
