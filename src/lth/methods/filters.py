"""Structured filter pruning of VGG (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

The filters of a conv layer are ranked by the L1 norm of their weights and the smallest are
removed (Li et al. 2017, Sec. 3.1). Removal is physical: the result is a smaller dense
:class:`lth.core.models.VGG` whose conv, its BatchNorm and the next layer's input channels are
narrower, holding copies of the surviving weights, so its parameter count, MACs and latency
really drop. Liu et al. 2019 ("Rethinking the Value of Network Pruning", Sec. 4.1) compare
such a pruned-and-fine-tuned network (among others Li et al.'s VGG-16-pruned-A) with the same
architecture trained from scratch: :func:`build_pruned_architecture` builds the latter.

Of the two multi-layer strategies of Li et al. 2017, Sec. 3.3, this is "independent pruning":
every layer's norms come from the original model, including the kernels on input channels that
the previous layer loses.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from lth.core.io import LthError
from lth.core.models import VGG, vgg
from lth.core.networks import prunable_params, smaller_architecture
from lth.plan.catalog import POOL, round_half_up

VGG16_PRUNED_A = {1: 0.5, **dict.fromkeys(range(8, 14), 0.5)}
"""Li et al. 2017, Sec. 4.1 and Tables 1-2, "VGG-16-pruned-A": half of the filters of conv_1
and of conv_8 ... conv_13 are removed (keys count convolutions from 1, as the paper does).

Check: on 32x32 inputs this leaves 2.06e8 conv multiply-adds of VGG-16's 3.13e8 (-34.2%),
and 5.25M conv weights, which with Li et al.'s two fully-connected layers (256->512->10) make
the 5.4e6 parameters of their Tables 1-2. Our VGG ends in one linear layer after global
average pooling (Frankle & Carbin 2019, Fig. 2), which leaves the conv MACs unchanged.
"""

FilterFractions = Mapping[int | str, float]
"""Fraction of filters to remove per conv: key = conv number counted from 1 (Li et al.'s
conv_i) or the conv weight name as in :func:`filter_l1_norms` (e.g. "conv8.weight")."""


def filter_l1_norms(model: nn.Module) -> dict[str, torch.Tensor]:
    """Conv weight name -> L1 norm of each output filter (sum of |w| over inputs and kernel)."""
    return {
        f"{name}.weight": module.weight.detach().abs().sum(dim=(1, 2, 3))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d)
    }


def _conv_fractions(num_convs: int, fractions: FilterFractions) -> list[float]:
    """One removal fraction per conv, in order (0 for convs not named in ``fractions``)."""
    index_of = {f"{VGG.conv_name(i)}.weight": i for i in range(1, num_convs + 1)}
    rates = [0.0] * num_convs
    for key, fraction in fractions.items():
        index = key if isinstance(key, int) else index_of.get(key)
        if index is None or not 1 <= index <= num_convs:
            raise LthError(
                f"filter fractions: unknown conv {key!r}; expected 1..{num_convs} or a name "
                f"like {VGG.conv_name(1)}.weight"
            )
        if not 0 <= fraction < 1:
            raise LthError(f"filter fractions: {key!r} must be in [0, 1), got {fraction}")
        rates[index - 1] = float(fraction)
    return rates


def pruned_cfg(cfg: Sequence[int | str], fractions: FilterFractions) -> tuple[int | str, ...]:
    """The VGG configuration left after removing round(fraction * width) filters per conv."""
    widths = [item for item in cfg if item != POOL]
    rates = iter(_conv_fractions(len(widths), fractions))
    return tuple(
        item if item == POOL else item - round_half_up(next(rates) * item) for item in cfg
    )


def _strongest_filters(norms: torch.Tensor, keep: int) -> torch.Tensor:
    """Ascending indices of the ``keep`` filters with the largest norms (ties: lower index)."""
    order = torch.sort(norms, descending=True, stable=True).indices
    return order[:keep].sort().values


def _pruned_state(model: VGG, kept: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """State dict of ``model`` restricted to the kept filters of each conv (and the matching
    BatchNorm entries and input channels of the following conv or linear layer)."""
    state: dict[str, torch.Tensor] = {}
    channels = None  # kept indices of the channels entering the current layer; None = all
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d):
            weight = module.weight if channels is None else module.weight[:, channels]
            channels = kept[f"{name}.weight"]
            state[f"{name}.weight"] = weight[channels]
        elif isinstance(module, nn.BatchNorm2d):
            for key, value in module.state_dict().items():
                state[f"{name}.{key}"] = value if value.dim() == 0 else value[channels]
        elif isinstance(module, nn.Linear):
            state[f"{name}.weight"] = module.weight[:, channels]
            state[f"{name}.bias"] = module.bias
    return {key: value.detach().clone() for key, value in state.items()}


def prune_filters(model: VGG, fractions: FilterFractions) -> VGG:
    """A new, smaller VGG keeping in each conv the filters with the largest L1 norms.

    ``fractions`` (see :data:`FilterFractions`) gives the share of filters removed per conv
    (round half up); :func:`keep_filters` removes them.
    """
    if not isinstance(model, VGG):
        raise LthError(f"prune_filters: expected a lth.core.models.VGG, got {type(model).__name__}")
    widths = [item for item in pruned_cfg(model.cfg, fractions) if item != POOL]
    norms = filter_l1_norms(model)
    kept = {
        name: _strongest_filters(norm, width)
        for (name, norm), width in zip(norms.items(), widths, strict=True)
    }
    return keep_filters(model, kept)


def _check_kept(model: VGG, kept: Mapping[str, torch.Tensor]) -> None:
    """One clear error unless ``kept`` names every conv of ``model`` with ascending, distinct,
    in-range indices, at least one per conv."""
    convs = {f"{name}.weight": m for name, m in model.named_children() if isinstance(m, nn.Conv2d)}
    if set(kept) != set(convs):
        raise LthError(f"keep_filters: expected kept filters for {', '.join(convs)}, got "
                       f"{', '.join(kept) or 'none'}")
    for name, idx in kept.items():
        width = convs[name].out_channels
        ok = idx.dtype == torch.long and idx.dim() == 1 and idx.numel() > 0
        if not ok or bool((idx.diff() <= 0).any()) or idx[0] < 0 or idx[-1] >= width:
            raise LthError(f"keep_filters: {name} needs at least one filter index, ascending, "
                           f"distinct, integer and in [0, {width})")


def keep_filters(model: VGG, kept: Mapping[str, torch.Tensor]) -> VGG:
    """A new, smaller VGG keeping, for each conv weight name, the filters at the ascending
    indices ``kept[name]`` (with their BatchNorm entries and the next layer's matching input
    channels). The one removal step of :func:`prune_filters` (L1 norms) and of the channel
    tickets drawn during training (BatchNorm scales).

    Surviving weights, BatchNorm parameters and running statistics are copied exactly; layer
    order and the train/eval mode are kept. The input model is not changed.
    """
    if not isinstance(model, VGG):
        raise LthError(f"keep_filters: expected a lth.core.models.VGG, got {type(model).__name__}")
    _check_kept(model, kept)
    widths = iter(len(kept[f"{VGG.conv_name(i)}.weight"]) for i in range(1, len(kept) + 1))
    cfg = tuple(item if item == POOL else next(widths) for item in model.cfg)
    in_channels = model.get_submodule(VGG.conv_name(1)).in_channels
    with torch.device("meta"):
        pruned = VGG(cfg, in_channels, model.output.out_features)
    pruned.load_state_dict(_pruned_state(model, kept), assign=True)
    return pruned.train(model.training)


def build_pruned_architecture(
    cfg: Sequence[int | str],
    fractions: FilterFractions,
    input_shape: tuple[int, ...],
    num_classes: int,
    gen: torch.Generator,
) -> VGG:
    """The architecture :func:`prune_filters` makes from a VGG of ``cfg``, freshly initialised
    from ``gen``: the "train from scratch" baseline of Liu et al. 2019, Sec. 4.1."""
    return vgg(pruned_cfg(cfg, fractions), input_shape, num_classes, gen)


def _synchronise(device: torch.device) -> None:
    """Wait for queued kernels, so that wall time measures the work (CUDA runs async)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch_size: int,
    repeats: int,
    warmup: int,
    device: str | torch.device,
) -> float:
    """Median seconds per forward pass of one batch, in eval mode without gradients, after
    ``warmup`` untimed passes. Times a copy on ``device``; ``model`` itself is not changed."""
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise LthError(
            "measure_latency: batch_size and repeats must be >= 1 and warmup >= 0, got "
            f"{batch_size}, {repeats}, {warmup}"
        )
    device = torch.device(device)
    timed = copy.deepcopy(model).to(device).eval()
    dtype = next(timed.parameters()).dtype
    batch = torch.zeros((batch_size, *input_shape), device=device, dtype=dtype)
    seconds = []
    for step in range(warmup + repeats):
        _synchronise(device)
        start = time.perf_counter()
        timed(batch)
        _synchronise(device)
        if step >= warmup:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def filter_pruned(model: nn.Module, arch: dict, fractions: dict[str, float], batch_size: int,
                  repeats: int, device: torch.device, where: str) -> tuple[VGG, dict]:
    """(the smaller VGG, its recorded architecture with both latencies) of the dense,
    unpruned VGG `model` (architecture arch, read from `where`) with `fractions` of each
    conv's filters removed; prints the weights and latencies before and after."""
    if not isinstance(model, VGG) or "cfg" in arch:
        raise LthError(f"{where}: filter pruning needs a dense, unpruned VGG")
    if not all(0 <= f < 1 for f in fractions.values()):
        raise LthError("--fractions: every fraction must be in [0, 1)")
    small = prune_filters(model, fractions)
    shape = tuple(arch["input_shape"])
    latency = {name: measure_latency(net, shape, batch_size, repeats, warmup=2, device=device)
               for name, net in (("dense_latency_seconds", model),
                                 ("latency_seconds", small))}
    dense_params = sum(p.numel() for p in prunable_params(model).values())
    print(f"filter pruning: {dense_params} -> "
          f"{sum(p.numel() for p in prunable_params(small).values())} weights, latency "
          f"{latency['dense_latency_seconds'] * 1e3:.2f} -> {latency['latency_seconds'] * 1e3:.2f}"
          f" ms per batch of {batch_size}")
    return small, smaller_architecture(arch, model, small, **latency)
