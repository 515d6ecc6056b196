"""Elastic Lottery Ticket transfer (Chen et al., NeurIPS 2021, "The Elastic Lottery Ticket
Hypothesis"): a ticket of one network turned into a ticket of a deeper or shallower network of
the same family by copying, replicating or dropping whole blocks. Pure functions only.

Blocks are numbered from 1 within a stage: ``stage<s>.block<b>.*`` of a CIFAR ResNet (three
stages), ``fc<b>.*`` of an ``mlp<W>x<D>`` (one stage of D blocks, one per hidden layer). A
block mapping ``{source block: [target blocks]}`` applies to every stage (the reference code's
``parse_block_mapping_for_stage``; ElasticLTH lottery/branch/morphism.py
``change_depth_cifar_resnet``). Block 1 always maps to [1]: in a ResNet stage it holds the
stride and the projection shortcut, in an MLP it reads the input, so no other block has its
shapes. Every tensor of a source block, BatchNorm buffers included, goes to each target block
it maps to; every tensor outside the blocks (the stem, the output layer) is copied as it is;
every target tensor is written exactly once.

Strategies, for ``n_src`` source and ``n_dst`` target blocks a stage:

- ``interleave``: stretching copies source blocks 2..n_src to runs of consecutive targets,
  floor((n_dst - 1) / (n_src - 1)) each and one more for the last (n_dst - 1) mod (n_src - 1)
  of them (ResNet-32 -> ResNet-56 gives the reference code's example 0:0;1:1,2;2:3,4;3:5,6;
  4:7,8, 0-based); squeezing keeps block 1 and the source blocks round(1 + i (n_src - 1) /
  (n_dst - 1)), i = 1..n_dst - 1 (halves up), spread evenly up to the last block.
- ``tail``: stretching appends copies of the last source block; squeezing drops the last
  source blocks.

The random-mask control (ElasticLTH change_depth_random_mask.py, ``permute_copy``) gives every
copy after the first a random permutation of the source block's mask within each layer: the
same per-layer counts, the replicated structure destroyed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import torch

from lth.core import masks
from lth.core.errors import LthError
from lth.core.io import load_tensors, save_tensors
from lth.core.models import build_model, prunable_names
from lth.core.networks import architecture_of, build, check_mask, prunable_params
from lth.core.provenance import make_record
from lth.core.seeding import generator
from lth.plan import catalog
from lth.plan.families.elastic import ElasticJob, depth_family, elastic_problem

BlockMapping = dict[int, list[int]]

STRATEGIES = ("interleave", "tail")

BLOCK_KEY = re.compile(r"^(?P<head>stage\d+\.block|fc)(?P<block>\d+)(?P<tail>\..+)$")
"""A state or mask key inside a block: ``stage2.block3.bn1.running_mean`` (head
``stage2.block``, block 3), ``fc2.weight`` (head ``fc``, block 2)."""

RESNET_IMAGE_SIDE = 32
"""Image side the ResNet skeletons are built for; their tensors do not depend on it."""


def format_mapping(mapping: Mapping[int, list[int]]) -> str:
    """``1:1;2:2,3;3:4,5``: the reference code's mapping string, 1-based."""
    return ";".join(f"{src}:{','.join(map(str, dst))}" for src, dst in sorted(mapping.items()))


def _identity(n: int) -> BlockMapping:
    return {block: [block] for block in range(1, n + 1)}


def _interleave_stretch(n_src: int, n_dst: int) -> BlockMapping:
    copies, extra = divmod(n_dst - 1, n_src - 1)
    mapping, start = {1: [1]}, 2
    for block in range(2, n_src + 1):
        count = copies + (block > n_src - extra)
        mapping[block] = list(range(start, start + count))
        start += count
    return mapping


def _interleave_squeeze(n_src: int, n_dst: int) -> BlockMapping:
    kept = (catalog.round_half_up(1 + i * (n_src - 1) / (n_dst - 1)) for i in range(1, n_dst))
    return {1: [1], **{src: [dst] for dst, src in enumerate(kept, start=2)}}


def _tail_stretch(n_src: int, n_dst: int) -> BlockMapping:
    return {**_identity(n_src - 1), n_src: list(range(n_src, n_dst + 1))}


def block_mapping(strategy: str, n_src: int, n_dst: int) -> BlockMapping:
    """The per-stage mapping of `strategy` from n_src to n_dst blocks (module docstring)."""
    if strategy not in STRATEGIES:
        raise LthError(f"elastic strategy: expected one of {', '.join(STRATEGIES)}, "
                       f"got {strategy!r}")
    if n_src < 1 or n_dst < 1:
        raise LthError(f"block mapping: block counts must be >= 1, got {n_src} -> {n_dst}")
    if n_src == n_dst:
        return _identity(n_src)
    if n_src == 1:
        raise LthError(f"block mapping: a stage of 1 block cannot grow to {n_dst}: block 1 is "
                       f"never replicated")
    if n_dst > n_src:
        stretch = _interleave_stretch if strategy == "interleave" else _tail_stretch
        return stretch(n_src, n_dst)
    if n_dst == 1:
        return {1: [1]}
    return _interleave_squeeze(n_src, n_dst) if strategy == "interleave" else _identity(n_dst)


def _target_keys(key: str, mapping: Mapping[int, list[int]]) -> list[str]:
    """The target keys a source key is copied to: itself outside the blocks; one per
    mapped target block inside (none for a dropped block)."""
    match = BLOCK_KEY.match(key)
    if match is None:
        return [key]
    return [f"{match['head']}{dst}{match['tail']}" for dst in mapping.get(int(match["block"]), [])]


def transfer_plan(
    src_keys, dst_keys, mapping: Mapping[int, list[int]]
) -> dict[str, tuple[str, int]]:
    """Target key -> (source key, copy index: 0 for the first copy), in dst_keys' order;
    LthError unless every target key is written exactly once by a source key."""
    plan: dict[str, tuple[str, int]] = {}
    for key in src_keys:
        for copy, dst_key in enumerate(_target_keys(key, mapping)):
            if dst_key in plan:
                raise LthError(f"elastic transfer: target {dst_key} would be written twice "
                               f"(from {plan[dst_key][0]} and {key})")
            plan[dst_key] = (key, copy)
    dst_keys = list(dst_keys)
    known = set(dst_keys)
    unknown = [key for key in plan if key not in known]
    if unknown:
        raise LthError(f"elastic transfer: the target has no {unknown[0]} "
                       f"({len(unknown)} such keys)")
    missing = [key for key in dst_keys if key not in plan]
    if missing:
        raise LthError(f"elastic transfer: nothing is copied to target {missing[0]} "
                       f"({len(missing)} such keys)")
    return {key: plan[key] for key in dst_keys}


def _permuted(tensor: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The entries of `tensor` in a uniformly random order, same shape."""
    order = torch.randperm(tensor.numel(), generator=gen).to(tensor.device)
    return tensor.flatten()[order].view_as(tensor)


def _copy(
    src: Mapping[str, torch.Tensor],
    dst_like: Mapping[str, torch.Tensor],
    mapping: Mapping[int, list[int]],
    permute_gen: torch.Generator | None,
) -> dict[str, torch.Tensor]:
    """Each target tensor from its planned source tensor (shape and dtype must agree); with
    permute_gen, copies after the first are permuted (drawn in sorted key order)."""
    plan = transfer_plan(src, dst_like, mapping)
    out = {}
    for key in sorted(plan):
        src_key, copy = plan[key]
        value, like = src[src_key], dst_like[key]
        if value.shape != like.shape or value.dtype != like.dtype:
            raise LthError(f"elastic transfer: source {src_key} is {value.dtype} "
                           f"{tuple(value.shape)}, target {key} is {like.dtype} "
                           f"{tuple(like.shape)}")
        permute = copy > 0 and permute_gen is not None
        out[key] = _permuted(value, permute_gen) if permute else value.clone()
    return {key: out[key] for key in dst_like}


def transfer_state(
    src_state: Mapping[str, torch.Tensor],
    dst_state: Mapping[str, torch.Tensor],
    mapping: Mapping[int, list[int]],
) -> dict[str, torch.Tensor]:
    """The target state dict (keys of dst_state, in its order) with every tensor copied from
    the source as the block mapping says; dst_state's values are not used."""
    return _copy(src_state, dst_state, mapping, None)


def transfer_mask(
    src_mask: Mapping[str, torch.Tensor],
    dst_mask_like: Mapping[str, torch.Tensor],
    mapping: Mapping[int, list[int]],
    permute_gen: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The target mask (keys of dst_mask_like) copied block-wise from the source mask; with
    permute_gen, the random-mask control (module docstring)."""
    return _copy(src_mask, dst_mask_like, mapping, permute_gen)


def _skeleton(model: str, source_weights: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """`model` built for the inputs and classes of the source weights (its values unused):
    the input channels (ResNet) or features (MLP) are the second dimension of the weight
    reading the input."""
    mlp = catalog.mlp_family_hidden(model) is not None
    first = "fc1.weight" if mlp else "conv.weight"
    for key in (first, "output.weight"):
        if key not in source_weights:
            raise LthError(f"elastic transfer: the source weights have no {key}")
    size = source_weights[first].shape[1]
    input_shape = (size,) if mlp else (size, RESNET_IMAGE_SIDE, RESNET_IMAGE_SIDE)
    classes = source_weights["output.weight"].shape[0]
    return build_model(model, input_shape, classes, torch.Generator(), 0.0)


def _require_layout(what: str, tensors: Mapping[str, torch.Tensor],
                    like: Mapping[str, torch.Tensor], model: str) -> None:
    """One line unless `tensors` has exactly the keys, shapes and dtypes of `like`."""
    if set(tensors) != set(like):
        odd = sorted(set(tensors) ^ set(like))
        raise LthError(f"elastic transfer: the {what} are not those of {model} "
                       f"({len(odd)} keys differ, e.g. {odd[0]})")
    for key, tensor in tensors.items():
        if tensor.shape != like[key].shape or tensor.dtype != like[key].dtype:
            raise LthError(f"elastic transfer: {what} {key} is {tensor.dtype} "
                           f"{tuple(tensor.shape)}, {model}'s is {like[key].dtype} "
                           f"{tuple(like[key].shape)}")


def _full_mask_of(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    params = dict(net.named_parameters())
    return masks.full_mask({name: params[name] for name in prunable_names(net)})


def transfer(
    source_weights: Mapping[str, torch.Tensor],
    source_mask: Mapping[str, torch.Tensor],
    source_model: str,
    target_model: str,
    strategy: str,
    permute_gen: torch.Generator | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(target state dict, target mask): a ticket of source_model (its weights, e.g. rewound
    ones, and its mask) turned into one of target_model by `strategy`'s block mapping.
    With permute_gen, the mask is the random-mask control's."""
    problem = elastic_problem(source_model, target_model)
    if problem is not None:
        raise LthError(f"elastic transfer: {problem}")
    (_, n_src), (_, n_dst) = map(depth_family, (source_model, target_model))
    mapping = block_mapping(strategy, n_src, n_dst)
    source = _skeleton(source_model, source_weights)
    target = _skeleton(target_model, source_weights)
    _require_layout("source weights", source_weights, source.state_dict(), source_model)
    _require_layout("source mask", source_mask, _full_mask_of(source), source_model)
    state = transfer_state(source_weights, target.state_dict(), mapping)
    return state, transfer_mask(source_mask, _full_mask_of(target), mapping, permute_gen)


def transfer_job(job: ElasticJob) -> tuple[dict, torch.nn.Module, dict[str, torch.Tensor]]:
    """(the target's recorded architecture, the target network holding the transferred
    weights, its mask) of a transfer job: the source ticket's mask and rewound weights
    copied block-wise into a deeper or shallower network of the same family."""
    source_arch = architecture_of(job.source_weights)
    target_arch = dict(source_arch, model=job.target_model)
    weights = load_tensors(job.source_weights)
    mask = {k: v.bool() for k, v in load_tensors(job.source_mask).items()}
    gen = generator(job.experiment, job.seed, job.purpose) if job.permute_copies else None
    state, new_mask = transfer(weights, mask, source_arch["model"], job.target_model,
                               job.strategy, gen)
    target = build(target_arch, torch.Generator().manual_seed(0), 0.0, target_arch.get("init"))
    target.load_state_dict(state)
    check_mask(new_mask, prunable_params(target), job.out_mask)
    return target_arch, target, new_mask


def run_elastic_job(job: ElasticJob, argv: list[str], threads: int | None) -> None:
    """The `elastic` verb: the target network's weights and mask, with their record."""
    target_arch, target, new_mask = transfer_job(job)
    record = make_record("elastic", dataclasses.asdict(job),
                         [job.source_weights, job.source_mask], argv=argv)
    record["architecture"] = target_arch
    save_tensors(job.out_weights, target.state_dict(), record)
    save_tensors(job.out_mask, new_mask, record)
