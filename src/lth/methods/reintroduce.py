"""Re-introducing pruned weights at an IMP round: Double-pruning, Scored-pruning and the
random-regrowth control (METHODS §5).

At round r, IMP removes n_l weights of layer l from the previous mask m. A re-introduction
method gives back g_l = min(round_half_up(ratio * n_l), #eligible_l) of them to pruned weights
(eligible: not in m; for Scored-pruning also a positive score) and removes g_l more alive
weights instead, so every layer keeps exactly as many weights as IMP keeps. What ranks the
pruned weights is the method:
* double: |theta^C|, the complement network's trained weights (trained under complement(m));
* scored: the mean alignment -G * theta_k of each pruned weight's gradient with its reset
  value, accumulated by AlignmentScores while the kept network trains;
* random: uniformly random ranks (random_regrow_scores); a method's random control
  (regrow_random_<method>) re-introduces exactly the method's g_l of the same seed and round.

The module is the Extension (lth.plan.spec) of IMP's prune step (check_prune, after_prune)
and of the training members (training_mask: Double-pruning's complement network;
training_monitor: Scored-pruning's alignment scores).
"""

from __future__ import annotations

import torch
from torch import nn

from lth.core.errors import LthError
from lth.core.io import load_tensors
from lth.core.masks import Mask, Scores, keep_top_layerwise
from lth.core.networks import load_mask
from lth.plan.catalog import round_half_up
from lth.plan.families.reintroduce import RANKINGS, MemberRole, Reintroduce
from lth.plan.spec import Extension, PruneJob, from_dict


def complement(mask: Mask) -> Mask:
    """The pruned weights of each layer (the complement network's mask)."""
    return {name: ~m for name, m in mask.items()}


def regrow_counts(imp_mask: Mask, previous: Mask, eligible: Mask, ratio: float) -> dict[str, int]:
    """Per layer, g_l = min(round_half_up(ratio * n_l), #eligible_l), n_l = the weights IMP
    removed from `previous`."""
    counts = {}
    for name, prev in previous.items():
        removed = int(prev.sum()) - int(imp_mask[name].sum())
        counts[name] = min(round_half_up(ratio * removed), int(eligible[name].sum()))
    return counts


def check_imp_step(imp_mask: Mask, previous: Mask, ratio: float) -> None:
    """ValueError unless imp_mask is a pruning of `previous` and 0 <= ratio <= 1."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"re-introduction ratio {ratio}: expected a fraction in [0, 1]")
    if set(imp_mask) != set(previous):
        raise ValueError("IMP's mask and the previous mask name different layers")
    for name, prev in previous.items():
        if bool((imp_mask[name] & ~prev).any()):
            raise ValueError(f"{name}: IMP's mask keeps weights the previous mask pruned")


def reintroduce(imp_mask: Mask, previous: Mask, alive_scores: Scores, regrow_scores: Scores,
                ratio: float, positive_only: bool = False,
                counts: dict[str, int] | None = None) -> Mask:
    """IMP's round with a fraction `ratio` of its removals given back to pruned weights.

    Per layer: the top (|imp_l| - g_l) weights of `previous` by `alive_scores` together with
    the top g_l not-previous weights by `regrow_scores` (only those scoring > 0 when
    positive_only; `counts` instead of g_l: another method's, capped by the eligible and by
    |imp_l|), each by
    keep_top_layerwise (exact counts, ties to the lower index). So
    every layer keeps |imp_l| weights, re-introduced weights were pruned before and extra
    removals were alive before; a dense `previous` (round 1) re-introduces nothing.

    ratio 0 gives `imp_mask` bitwise when IMP ranked `previous` by the same `alive_scores`,
    layerwise or global: keep_top_global chooses a prefix of one total order (score
    descending, flat index ascending), and a layer's entries appear in that order as in the
    layer's own order (its flat indices are consecutive, in the same order), so the chosen
    entries of one layer are exactly that layer's top |imp_l|.
    """
    check_imp_step(imp_mask, previous, ratio)
    eligible = complement(previous)
    if positive_only:
        eligible = {n: e & (regrow_scores[n] > 0) for n, e in eligible.items()}
    grow = regrow_counts(imp_mask, previous, eligible, ratio)
    if counts is not None:
        grow = {n: min(counts[n], int(eligible[n].sum()), int(imp_mask[n].sum()))
                for n in previous}
    keep = {n: int(imp_mask[n].sum()) - g for n, g in grow.items()}
    kept = keep_top_layerwise(alive_scores, previous, keep)
    regrown = keep_top_layerwise(regrow_scores, eligible, grow)
    return {n: kept[n] | regrown[n] for n in previous}


def random_regrow_scores(mask: Mask, gen: torch.Generator) -> Scores:
    """Uniformly random distinct ranks 1..size for the pruned weights (0 for the alive ones):
    the top g of them is a uniformly random g-subset (the regrow_random control)."""
    out = {}
    for name in sorted(mask):
        m = mask[name]
        ranks = torch.randperm(m.numel(), generator=gen, dtype=torch.float64) + 1
        out[name] = ranks.view(m.shape).to(m.device).masked_fill_(m, 0)
    return {name: out[name] for name in mask}


def regrow_scores_of(ranking: str, previous: Mask, stored: dict[str, torch.Tensor] | None,
                     gen: torch.Generator, where: str = "regrow scores") -> Scores:
    """The scores that rank the pruned weights of `previous`: |stored| for double (the
    complement network's trained weights), stored itself for scored (AlignmentScores), random
    ranks from `gen` for random. LthError naming `where` when stored does not fit."""
    if ranking not in RANKINGS:
        raise LthError(f"re-introduction ranking {ranking!r}: expected one of "
                       f"{', '.join(RANKINGS)}")
    if ranking == "random":
        return random_regrow_scores(previous, gen)
    if stored is None:
        raise LthError(f"re-introduction ranking {ranking} needs a scores file")
    missing = [n for n in previous if n not in stored or stored[n].shape != previous[n].shape]
    if missing:
        raise LthError(f"{where}: no tensor shaped like prunable weight {missing[0]}")
    device = next(iter(previous.values())).device
    return {n: (stored[n].abs() if ranking == "double" else stored[n]).to(device)
            for n in previous}


def check_reintroduction(how: Reintroduce, imp_step: bool) -> None:
    """One line naming what is wrong with a prune job's re-introduction; imp_step: whether
    the job is an IMP step (magnitude criterion and rates), the only step it goes with."""
    if not imp_step:
        raise LthError("reintroduce: only with an IMP step (magnitude criterion and rates)")
    if how.ranking not in RANKINGS or not 0 <= how.ratio <= 1:
        raise LthError(f"reintroduce: expected ranking {'|'.join(RANKINGS)} and a ratio in "
                       f"[0, 1], got {how.ranking!r}, {how.ratio}")
    if how.counts_from and (how.ranking != "random" or len(how.counts_from) != 2):
        raise LthError("reintroduce: counts_from takes two masks (after and before the "
                       "controlled round) and goes with ranking random")
    if (how.scores is None) != (how.ranking == "random"):
        raise LthError(f"reintroduce: ranking {how.ranking} "
                       + ("takes no scores file" if how.ranking == "random" else
                          "needs a scores file"))


def reintroduced(how: Reintroduce, imp_mask: Mask, previous: Mask, alive_scores: Scores,
                 gen: torch.Generator) -> Mask:
    """Double-/Scored-pruning (or the random control): IMP's new mask with a share of the
    removed weights swapped for pruned weights ranked by `how`'s regrowth scores."""
    stored = load_tensors(how.scores) if how.scores else None
    ranking = regrow_scores_of(how.ranking, previous, stored, gen, how.scores or "reintroduce")
    counts = regrown_counts(*map(load_tensors, how.counts_from)) if how.counts_from else None
    return reintroduce(imp_mask, previous, alive_scores, ranking, how.ratio, how.positive_only,
                       counts)


def regrown_counts(after: Mask, before: Mask) -> dict[str, int]:
    """g_l per layer: the weights `after` keeps that `before` pruned (re-introduced ones)."""
    return {n: int((after[n].bool() & ~before[n].bool().to(after[n].device)).sum())
            for n in before}


def check_prune(extension: Extension, job: PruneJob) -> None:
    """The prune job's re-introduction is well formed and goes with an IMP step."""
    how = from_dict(Reintroduce, extension.settings, "extension.settings")
    check_reintroduction(how, imp_step=job.rates is not None and job.criterion == "magnitude")


def after_prune(extension: Extension, imp_mask: Mask, previous: Mask, alive_scores: Scores,
                gen: torch.Generator) -> Mask:
    """IMP's step re-introducing pruned weights as the extension's settings say."""
    how = from_dict(Reintroduce, extension.settings, "extension.settings")
    return reintroduced(how, imp_mask, previous, alive_scores, gen)


def prune_record(extension: Extension, new: Mask, previous: Mask) -> dict:
    """What the prune record keeps of a round: g_l, the weights re-introduced per layer."""
    return {"reintroduced": regrown_counts(new, previous)}


def training_mask(extension: Extension, params) -> Mask | None:
    """Double-pruning's complement network trains the weights its mask prunes."""
    role = from_dict(MemberRole, extension.settings, "extension.settings")
    return complement(load_mask(role.complement_of, params)) if role.complement_of else None


def training_monitor(extension: Extension, mask: Mask, device: torch.device):
    """Scored-pruning's network accumulates the alignment scores of its pruned weights."""
    role = from_dict(MemberRole, extension.settings, "extension.settings")
    if role.alignment_from is None:
        return None
    return AlignmentScores(load_tensors(role.alignment_from, device), mask)


class AlignmentScores:
    """Scored-pruning's scores, as train()'s after_backward(it, model) hook.

    From iteration window_start on, adds -G_t * theta_k to each pruned entry of each masked
    weight (G_t: its dense gradient, seen before train() masks it); scores() is the mean over
    those iterations, exactly 0 on alive entries. One fused multiply-add per weight per step
    into its own buffers: the model and its gradients are only read.
    """

    def __init__(self, reset_weights: dict[str, torch.Tensor], mask: Mask,
                 window_start: int = 0):
        missing = [n for n in mask if n not in reset_weights]
        if missing:
            raise ValueError(f"reset weights lack prunable weight {missing[0]}")
        self.names = list(mask)
        self.window_start = window_start
        self.steps = 0
        # -theta_k on pruned entries, 0 on alive ones: one addcmul per step does the rest.
        self.factors = [reset_weights[n].detach().neg().masked_fill(
            mask[n].to(reset_weights[n].device), 0) for n in self.names]
        self.sums = [torch.zeros_like(f) for f in self.factors]

    @torch.no_grad()
    def __call__(self, it: int, model: nn.Module) -> None:
        if it < self.window_start:
            return
        grads = [model.get_parameter(n).grad for n in self.names]
        if self.steps == 0:
            self.factors = [f.to(g.device, g.dtype) for f, g in zip(self.factors, grads,
                                                                    strict=True)]
            self.sums = [s.to(g.device, g.dtype) for s, g in zip(self.sums, grads, strict=True)]
        torch._foreach_addcmul_(self.sums, grads, self.factors)
        self.steps += 1

    def scores(self) -> Scores:
        """Mean alignment over the accumulated iterations, per weight name."""
        if self.steps == 0:
            raise ValueError(f"no training iteration at or after window_start "
                             f"{self.window_start}: no alignment scores")
        return {n: s / self.steps for n, s in zip(self.names, self.sums, strict=True)}

    def files(self) -> dict[str, Scores]:
        """The tensors saved beside the network: the scores that rank its pruned weights at
        the next round."""
        return {"regrow_scores.safetensors": self.scores()}

