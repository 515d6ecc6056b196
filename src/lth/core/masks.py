"""Masks: dict name -> bool tensor over the prunable weights. Pure functions only.

Scores are ranked in their own dtype on their own device (float64 stays float64).
Counts are exact: a rate removes round-half-up(rate * alive) weights, a density keeps
round-half-up(density * size) weights. Weights are ranked by score, highest kept, ties broken
by flat index (lower index kept), so the same scores always give the same mask. Pruning only
ever removes alive weights, so masks nest across rounds.
"""

from __future__ import annotations

import torch
from torch import nn

from lth.plan.catalog import round_half_up

Mask = dict[str, torch.Tensor]
Scores = dict[str, torch.Tensor]


def full_mask(params: dict[str, torch.Tensor]) -> Mask:
    """All-True mask shaped like each given parameter."""
    return {name: torch.ones_like(p, dtype=torch.bool) for name, p in params.items()}


def _top_alive(score: torch.Tensor, alive: torch.Tensor, keep: int) -> torch.Tensor:
    """Bool mask shaped like `score` of the `keep` highest-scoring alive entries (ties: lower
    index first).

    The k-th highest score is found with topk (no full sort: a mined mask ranks every layer at
    every step); every entry above it is kept, and the entries equal to it fill the rest in
    index order, which is what a stable descending sort would keep. When every entry is
    alive (a mined mask's case) nothing is gathered or scattered."""
    flat, flat_alive = score.detach().flatten(), alive.flatten()
    every = bool(flat_alive.all())
    alive_idx = None if every else flat_alive.nonzero().squeeze(1)
    values = flat if every else flat[alive_idx]
    if keep > values.numel():
        raise ValueError(f"cannot keep {keep} weights: only {values.numel()} are alive")
    if torch.isnan(values).any():
        raise ValueError("pruning scores contain NaN")
    chosen = torch.zeros_like(values, dtype=torch.bool)
    if keep > 0:
        kth = torch.topk(values, keep, sorted=False).values.min()
        torch.gt(values, kth, out=chosen)
        tied = (values == kth).nonzero().squeeze(1)
        chosen[tied[: keep - int(chosen.sum())]] = True
    if every:
        return chosen.view_as(alive)
    return _mask_from_indices(alive, alive_idx[chosen])


def _mask_from_indices(like: torch.Tensor, flat_idx: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(like.numel(), dtype=torch.bool, device=like.device)
    out[flat_idx] = True
    return out.view_as(like)


def keep_top_layerwise(scores: Scores, mask: Mask, keep: dict[str, int]) -> Mask:
    """Per layer, keep exactly keep[name] alive weights with the highest scores."""
    out = dict(mask)
    for name, k in keep.items():
        out[name] = _top_alive(scores[name], mask[name], k)
    return out


def keep_top_global(scores: Scores, mask: Mask, keep: int, names: list[str]) -> Mask:
    """Across the named layers together, keep exactly `keep` alive weights with top scores."""
    device = scores[names[0]].device
    flat_scores = torch.cat([scores[n].detach().flatten().to(device) for n in names])
    flat_alive = torch.cat([mask[n].flatten().to(device) for n in names])
    chosen = _top_alive(flat_scores, flat_alive, keep)
    out = dict(mask)
    start = 0
    for n in names:
        size = mask[n].numel()
        out[n] = chosen[start : start + size].view_as(mask[n]).to(mask[n].device)
        start += size
    return out


def prune_fraction_layerwise(scores: Scores, mask: Mask, rates: dict[str, float]) -> Mask:
    """Remove round(rate * alive) of each layer's alive weights (lowest scores first)."""
    keep = {}
    for name, rate in rates.items():
        alive = int(mask[name].sum())
        keep[name] = alive - round_half_up(rate * alive)
    return keep_top_layerwise(scores, mask, keep)


def prune_fraction_global(scores: Scores, mask: Mask, rate: float, names: list[str]) -> Mask:
    """Remove round(rate * alive) of the alive weights pooled over the named layers."""
    alive = sum(int(mask[n].sum()) for n in names)
    return keep_top_global(scores, mask, alive - round_half_up(rate * alive), names)


def prune_to_density(
    scores: Scores, mask: Mask, density: float, scope: str, names: list[str]
) -> Mask:
    """Keep round(density * size) weights: per layer ('layerwise') or pooled ('global')."""
    if scope == "layerwise":
        keep = {n: round_half_up(density * mask[n].numel()) for n in names}
        return keep_top_layerwise(scores, mask, keep)
    if scope == "global":
        total = sum(mask[n].numel() for n in names)
        return keep_top_global(scores, mask, round_half_up(density * total), names)
    raise ValueError(f"scope must be 'layerwise' or 'global', got {scope!r}")


def counts(mask: Mask) -> tuple[int, int]:
    """(kept, total) over all layers of the mask."""
    return sum(int(m.sum()) for m in mask.values()), sum(m.numel() for m in mask.values())


def density(mask: Mask) -> float:
    """Fraction of prunable weights kept."""
    kept, total = counts(mask)
    return kept / total


def jaccard(a: Mask, b: Mask) -> float:
    """|a and b| / |a or b| over all layers (1.0 for two empty masks)."""
    inter = sum(int((a[n] & b[n]).sum()) for n in a)
    union = sum(int((a[n] | b[n]).sum()) for n in a)
    return inter / union if union else 1.0


@torch.no_grad()
def apply_mask_(params: dict[str, torch.Tensor], mask: Mask) -> None:
    """Zero, in place, every parameter entry the mask removes."""
    for name, m in mask.items():
        params[name].mul_(m.to(params[name].dtype))


def layer_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Multiply-adds per input example of each conv/linear weight, when dense.

    Keyed by weight parameter name. A conv weight is used once per output position, a
    linear weight once per example.
    """
    positions: dict[str, int] = {}
    hooks = []
    for mod_name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            key = f"{mod_name}.weight"

            def hook(_m, _inp, out, key=key):
                positions[key] = out[0, 0].numel() if out.dim() > 2 else 1

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    param = next(model.parameters())
    with torch.no_grad():
        model(torch.zeros((1, *input_shape), device=param.device, dtype=param.dtype))
    model.train(was_training)
    for h in hooks:
        h.remove()
    weights = dict(model.named_parameters())
    return {key: weights[key].numel() * pos for key, pos in positions.items()}


def macs(model: nn.Module, input_shape: tuple[int, ...], mask: Mask | None = None) -> int:
    """Multiply-adds of conv and linear layers per example; with a mask, kept weights only."""
    total = 0
    for name, dense in layer_macs(model, input_shape).items():
        frac = float(mask[name].float().mean()) if mask is not None and name in mask else 1.0
        total += round_half_up(dense * frac)
    return total
