"""Elastic Lottery Ticket transfer (lth.methods.elastic; METHODS.md 4.3): mappings by hand,
validation errors, exact block copies on real ResNets and MLPs, round trips, kept-count
bookkeeping and the permuted-copy control against the hypergeometric chance overlap."""

import math
import re
from collections.abc import Mapping

import pytest
import torch

from helpers import layer_densities
from lth.analysis.similarity import hypergeometric_overlap
from lth.core.errors import LthError
from lth.core.masks import keep_top_layerwise
from lth.core.models import build_model, prunable_names
from lth.methods import elastic
from lth.plan import catalog
from lth.plan.families import elastic as elastic_plan

CIFAR = (3, 32, 32)


def check_mapping(mapping: Mapping[int, list[int]], n_src: int, n_dst: int) -> None:
    """The tests' oracle of a block mapping: LthError (one line) unless block 1 maps to [1],
    the sources are blocks 1..n_src and the targets are a partition of 1..n_dst (each written
    once) that, when squeezing, takes at most one target per source, in the sources' order."""
    text = elastic.format_mapping(mapping)
    if list(mapping.get(1, [])) != [1]:
        raise LthError(f"block mapping {text}: block 1 must map to [1] (it holds the stride "
                       f"and the projection shortcut, or reads the input)")
    outside = sorted(src for src in mapping if not 1 <= src <= n_src)
    if outside:
        raise LthError(f"block mapping {text}: source blocks {outside} are not in 1..{n_src}")
    targets = [dst for src in sorted(mapping) for dst in mapping[src]]
    if sorted(targets) != list(range(1, n_dst + 1)):
        twice = sorted({dst for dst in targets if targets.count(dst) > 1})
        never = sorted(set(range(1, n_dst + 1)) - set(targets))
        stray = sorted(set(targets) - set(range(1, n_dst + 1)))
        raise LthError(f"block mapping {text}: targets must be a partition of 1..{n_dst} "
                       f"(written twice: {twice}, never: {never}, outside: {stray})")
    if n_dst < n_src and (targets != list(range(1, n_dst + 1))
                          or any(len(dst) > 1 for dst in mapping.values())):
        raise LthError(f"block mapping {text}: squeezing {n_src} into {n_dst} blocks keeps "
                       f"source blocks in order, one target each")


def net(model, seed=0):
    return build_model(model, CIFAR, 10, torch.Generator().manual_seed(seed), 0.0)


def distinct_state(model, seed=0):
    """A state dict of `model` in which every tensor differs from every other: random floats
    (BatchNorm weights, biases and running statistics too) and a distinct count in every
    num_batches_tracked, so that a copy from the wrong block cannot pass for the right one."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for index, (key, value) in enumerate(net(model, seed).state_dict().items()):
        if value.is_floating_point():
            state[key] = torch.randn(value.shape, generator=gen)
        else:
            state[key] = torch.full_like(value, 1000 * seed + index)
    return state


def layerwise_top_mask(model, state, density=0.3):
    """Per layer, the round(density * size) largest-magnitude weights: a structured mask."""
    names = prunable_names(net(model))
    scores = {name: state[name].abs() for name in names}
    full = {name: torch.ones_like(state[name], dtype=torch.bool) for name in names}
    return keep_top_layerwise(scores, full, {n: round(density * full[n].numel()) for n in names})


def skeleton_state(model):
    return net(model).state_dict()


def full_mask(model):
    built = net(model)
    params = dict(built.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool)
            for name in prunable_names(built)}


def source_block(key, mapping):
    """The source key a target key comes from under `mapping` (inverse, by hand)."""
    match = re.match(r"^(stage\d+\.block|fc)(\d+)(\..+)$", key)
    if match is None:
        return key
    head, block, tail = match.groups()
    (src,) = [s for s, targets in mapping.items() if int(block) in targets]
    return f"{head}{src}{tail}"


# ---------------------------------------------------------------- mappings by hand


@pytest.mark.parametrize(("strategy", "n_src", "n_dst", "expected"), [
    # METHODS.md 4.3: ResNet-20 -> ResNet-32 interleaved
    ("interleave", 3, 5, {1: [1], 2: [2, 3], 3: [4, 5]}),
    # ElasticLTH change_depth.py example, ResNet-32 -> ResNet-56 ("0:0;1:1,2;...;4:7,8", 0-based)
    ("interleave", 5, 9, {1: [1], 2: [2, 3], 3: [4, 5], 4: [6, 7], 5: [8, 9]}),
    # (7 - 1) / (5 - 1) = 1.5: one copy for blocks 2, 3, the extra copies to blocks 4, 5
    ("interleave", 5, 7, {1: [1], 2: [2], 3: [3], 4: [4, 5], 5: [6, 7]}),
    ("interleave", 2, 5, {1: [1], 2: [2, 3, 4, 5]}),
    # squeeze: round(1 + i * 4 / 2) = 3, 5; round(1 + i * 6 / 4) = 2.5 -> 3, 4, 5.5 -> 6, 7
    ("interleave", 5, 3, {1: [1], 3: [2], 5: [3]}),
    ("interleave", 7, 5, {1: [1], 3: [2], 4: [3], 6: [4], 7: [5]}),
    ("interleave", 9, 2, {1: [1], 9: [2]}),
    ("tail", 3, 5, {1: [1], 2: [2], 3: [3, 4, 5]}),
    ("tail", 2, 4, {1: [1], 2: [2, 3, 4]}),
    ("tail", 5, 3, {1: [1], 2: [2], 3: [3]}),
    ("tail", 3, 1, {1: [1]}),
    ("interleave", 3, 3, {1: [1], 2: [2], 3: [3]}),
    ("tail", 1, 1, {1: [1]}),
])
def test_block_mapping_by_hand(strategy, n_src, n_dst, expected):
    mapping = elastic.block_mapping(strategy, n_src, n_dst)
    assert mapping == expected
    check_mapping(mapping, n_src, n_dst)


def test_mapping_string_is_the_reference_format_one_based():
    assert elastic.format_mapping(elastic.block_mapping("interleave", 5, 9)) == (
        "1:1;2:2,3;3:4,5;4:6,7;5:8,9")


@pytest.mark.parametrize(("mapping", "n_src", "n_dst", "message"), [
    ({1: [2], 2: [1, 3], 3: [4, 5]}, 3, 5,
     "block mapping 1:2;2:1,3;3:4,5: block 1 must map to [1] (it holds the stride and the "
     "projection shortcut, or reads the input)"),
    ({2: [1, 2]}, 2, 2, "block mapping 2:1,2: block 1 must map to [1] (it holds the stride "
                        "and the projection shortcut, or reads the input)"),
    ({1: [1], 2: [2], 4: [3]}, 3, 3,
     "block mapping 1:1;2:2;4:3: source blocks [4] are not in 1..3"),
    ({1: [1], 2: [2, 3], 3: [3, 4]}, 3, 5,
     "block mapping 1:1;2:2,3;3:3,4: targets must be a partition of 1..5 (written twice: [3], "
     "never: [5], outside: [])"),
    ({1: [1], 2: [2, 3], 3: [4, 6]}, 3, 5,
     "block mapping 1:1;2:2,3;3:4,6: targets must be a partition of 1..5 (written twice: [], "
     "never: [5], outside: [6])"),
    ({1: [1], 3: [2], 2: [3]}, 5, 3,
     "block mapping 1:1;2:3;3:2: squeezing 5 into 3 blocks keeps source blocks in order, "
     "one target each"),
    ({1: [1], 2: [2, 3]}, 5, 3,
     "block mapping 1:1;2:2,3: squeezing 5 into 3 blocks keeps source blocks in order, one "
     "target each"),
])
def test_bad_mappings_are_refused_in_one_line(mapping, n_src, n_dst, message):
    with pytest.raises(LthError) as error:
        check_mapping(mapping, n_src, n_dst)
    assert str(error.value) == message


def test_stretch_may_reorder_blocks():
    check_mapping({1: [1], 2: [4, 5], 3: [2, 3]}, 3, 5)


@pytest.mark.parametrize(("args", "message"), [
    (("stretch", 3, 5), "elastic strategy: expected one of interleave, tail, got 'stretch'"),
    (("tail", 1, 3), "block mapping: a stage of 1 block cannot grow to 3: block 1 is never "
                     "replicated"),
    (("interleave", 0, 3), "block mapping: block counts must be >= 1, got 0 -> 3"),
])
def test_block_mapping_refuses_what_it_cannot_build(args, message):
    with pytest.raises(LthError) as error:
        elastic.block_mapping(*args)
    assert str(error.value) == message


# ---------------------------------------------------------------- ResNets


def test_identity_returns_the_source_state_and_mask_bitwise():
    state = distinct_state("resnet20")
    mask = layerwise_top_mask("resnet20", state)
    for strategy in elastic.STRATEGIES:
        new_state, new_mask = elastic.transfer(state, mask, "resnet20", "resnet20", strategy,
                                               torch.Generator().manual_seed(0))
        assert list(new_state) == list(skeleton_state("resnet20"))
        assert all(torch.equal(new_state[k], state[k]) for k in state)
        assert list(new_mask) == list(mask)
        assert all(torch.equal(new_mask[k], mask[k]) for k in mask)


def test_resnet20_to_resnet32_interleave_copies_each_block_to_its_targets():
    state = distinct_state("resnet20")
    mask = layerwise_top_mask("resnet20", state)
    new_state, new_mask = elastic.transfer(state, mask, "resnet20", "resnet32", "interleave")
    mapping = {1: [1], 2: [2, 3], 3: [4, 5]}
    target_keys = list(skeleton_state("resnet32"))
    assert list(new_state) == target_keys
    for key in target_keys:
        assert torch.equal(new_state[key], state[source_block(key, mapping)]), key
    for key in new_mask:
        assert torch.equal(new_mask[key], mask[source_block(key, mapping)]), key
    # spot checks of the hand inverse: BN buffers of block 5 are block 3's, the stem and the
    # output and the projection shortcut of block 1 are the source's
    assert torch.equal(new_state["stage3.block5.bn2.running_var"],
                       state["stage3.block3.bn2.running_var"])
    assert new_state["stage2.block3.bn1.num_batches_tracked"] == state[
        "stage2.block2.bn1.num_batches_tracked"]
    for key in ("conv.weight", "bn.running_mean", "output.weight", "output.bias",
                "stage2.block1.shortcut.conv.weight", "stage3.block1.shortcut.bn.bias"):
        assert torch.equal(new_state[key], state[key])
    target = net("resnet32")
    target.load_state_dict(new_state)  # strict: exactly the target's keys and shapes


def test_every_target_key_is_written_exactly_once():
    mapping = elastic.block_mapping("interleave", 3, 5)
    plan = elastic.transfer_plan(skeleton_state("resnet20"), skeleton_state("resnet32"), mapping)
    target = skeleton_state("resnet32")
    assert list(plan) == list(target)
    copies = [(src, copy) for src, copy in plan.values()]
    assert len(set(copies)) == len(copies)  # no source tensor lands twice in one slot
    # second copies: 3 stages x 2 replicated blocks x 12 tensors (2 convs, 2 BNs of 5)
    assert sum(copy == 1 for _, copy in copies) == 3 * 2 * 12
    assert {copy for _, copy in copies} == {0, 1}


@pytest.mark.parametrize(("mapping", "message"), [
    ({1: [1], 2: [2, 3], 3: [3, 4, 5]},
     "elastic transfer: target stage1.block3.conv1.weight would be written twice (from "
     "stage1.block2.conv1.weight and stage1.block3.conv1.weight)"),
    ({1: [1], 2: [2], 3: [4, 5]},
     "elastic transfer: nothing is copied to target stage1.block3.conv1.weight (36 such keys)"),
    ({1: [1], 2: [2, 3], 3: [4, 5, 6]},
     "elastic transfer: the target has no stage1.block6.conv1.weight (36 such keys)"),
])
def test_a_mapping_that_does_not_fill_the_target_is_refused(mapping, message):
    with pytest.raises(LthError) as error:
        elastic.transfer_state(skeleton_state("resnet20"), skeleton_state("resnet32"), mapping)
    assert str(error.value) == message


def test_stretch_then_squeeze_by_the_first_copies_recovers_the_source_bitwise():
    state = distinct_state("resnet20", seed=3)
    mask = layerwise_top_mask("resnet20", state, density=0.2)
    wide_state, wide_mask = elastic.transfer(state, mask, "resnet20", "resnet32", "interleave",
                                             torch.Generator().manual_seed(1))
    back = {1: [1], 2: [2], 4: [3]}
    check_mapping(back, 5, 3)
    again = elastic.transfer_state(wide_state, skeleton_state("resnet20"), back)
    again_mask = elastic.transfer_mask(wide_mask, full_mask("resnet20"), back)
    assert list(again) == list(state)
    assert all(torch.equal(again[k], state[k]) for k in state)
    assert all(torch.equal(again_mask[k], mask[k]) for k in mask)


def block_counts(mask):
    """(stage, block) -> kept weights of the block (its shortcut included); None -> the rest."""
    kept: dict = {}
    for key, layer in mask.items():
        match = re.match(r"^stage(\d+)\.block(\d+)\.", key)
        slot = (int(match[1]), int(match[2])) if match else None
        kept[slot] = kept.get(slot, 0) + int(layer.sum())
    return kept


@pytest.mark.parametrize(("strategy", "target"), [
    ("interleave", "resnet32"), ("tail", "resnet32"), ("interleave", "resnet56"),
    ("tail", "resnet44"), ("interleave", "resnet14"), ("tail", "resnet14")])
def test_kept_weights_of_the_target_are_the_formula_of_the_mapping(strategy, target):
    state = distinct_state("resnet20")
    mask = layerwise_top_mask("resnet20", state, density=0.25)
    _, new_mask = elastic.transfer(state, mask, "resnet20", target, strategy)
    n_dst = catalog.CIFAR_RESNET_BLOCKS[target]
    mapping = elastic.block_mapping(strategy, 3, n_dst)
    src = block_counts(mask)
    # kept(stem) + kept(output) + sum_s [kept(block 1 incl. shortcut) + sum_j |map(j)| kept(j)]
    expected = src[None] + sum(src[(s, 1)] + sum(len(mapping.get(j, [])) * src[(s, j)]
                                                 for j in (2, 3)) for s in (1, 2, 3))
    assert sum(int(layer.sum()) for layer in new_mask.values()) == expected
    densities, source_densities = layer_densities(new_mask), layer_densities(mask)
    for key, density in densities.items():
        assert density == source_densities[source_block(key, mapping)]


def test_permuted_copies_keep_counts_and_overlap_the_source_by_chance():
    state = distinct_state("resnet20")
    mask = layerwise_top_mask("resnet20", state, density=0.3)
    plain_state, plain = elastic.transfer(state, mask, "resnet20", "resnet56", "interleave")
    new_state, control = elastic.transfer(state, mask, "resnet20", "resnet56", "interleave",
                                          torch.Generator().manual_seed(7))
    assert all(torch.equal(new_state[k], plain_state[k]) for k in plain_state)  # weights as-is
    mapping = elastic.block_mapping("interleave", 3, 9)
    plan = elastic.transfer_plan(mask, control, mapping)
    later_copies = 0
    for key, (src_key, copy) in plan.items():
        source, layer = mask[src_key], control[key]
        assert int(layer.sum()) == int(source.sum()), key
        if copy == 0:
            assert torch.equal(layer, source), key
            continue
        later_copies += 1
        mean, variance = hypergeometric_overlap(source.numel(), int(source.sum()),
                                                int(layer.sum()))
        overlap = int((layer & source).sum())
        assert abs(overlap - mean) / math.sqrt(variance) < 4, key
        # the unpermuted copy overlaps completely: far outside chance
        assert (int(source.sum()) - mean) / math.sqrt(variance) > 10
    assert later_copies == 3 * 2 * 3 * 2  # stages x replicated blocks x extra copies x convs
    again = elastic.transfer_mask(mask, plain, mapping, torch.Generator().manual_seed(7))
    other = elastic.transfer_mask(mask, plain, mapping, torch.Generator().manual_seed(8))
    assert all(torch.equal(again[k], control[k]) for k in control)
    assert not torch.equal(other["stage1.block3.conv1.weight"],
                           control["stage1.block3.conv1.weight"])


# ---------------------------------------------------------------- MLPs


def test_mlp300x2_to_mlp300x4_and_back():
    state = distinct_state("mlp300x2")
    mask = layerwise_top_mask("mlp300x2", state, density=0.1)
    for strategy in elastic.STRATEGIES:
        deep_state, deep_mask = elastic.transfer(state, mask, "mlp300x2", "mlp300x4", strategy)
        assert list(deep_state) == list(skeleton_state("mlp300x4"))
        for key in ("fc2", "fc3", "fc4"):
            for tensors, source in ((deep_state, state), (deep_mask, mask)):
                assert torch.equal(tensors[f"{key}.weight"], source["fc2.weight"])
            assert torch.equal(deep_state[f"{key}.bias"], state["fc2.bias"])
        for key in ("fc1.weight", "fc1.bias", "output.weight", "output.bias"):
            assert torch.equal(deep_state[key], state[key])
        back_state, back_mask = elastic.transfer(deep_state, deep_mask, "mlp300x4", "mlp300x2",
                                                 strategy)
        assert all(torch.equal(back_state[k], state[k]) for k in state)
        assert all(torch.equal(back_mask[k], mask[k]) for k in mask)
        net("mlp300x4").load_state_dict(deep_state)


def test_mlp_interleave_squeeze_keeps_evenly_spaced_layers():
    state = distinct_state("mlp300x4")
    mask = layerwise_top_mask("mlp300x4", state)
    new_state, _ = elastic.transfer(state, mask, "mlp300x4", "mlp300x3", "interleave")
    # round(1 + i * 3 / 2) = 2.5 -> 3, 4: fc1 kept, fc3 -> fc2, fc4 -> fc3
    assert torch.equal(new_state["fc2.weight"], state["fc3.weight"])
    assert torch.equal(new_state["fc3.weight"], state["fc4.weight"])


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(("source", "target", "message"), [
    ("resnet20", "mlp300x4", "elastic transfer: resnet20 and mlp300x4 are not of one depth "
                             "family"),
    ("mlp300x2", "mlp100x4", "elastic transfer: mlp300x2 and mlp100x4 are not of one depth "
                             "family"),
    ("resnet20", "resnet18", "elastic transfer: resnet18 has no depth family: elastic transfer "
                             "needs resnet14, resnet20, resnet32, resnet44, resnet56 or "
                             "mlp<W>x<D> networks"),
    ("mlp300x1", "mlp300x3", "elastic transfer: mlp300x1 has 1 block per stage, which is never "
                             "replicated, so it cannot grow into mlp300x3"),
])
def test_networks_of_different_families_are_refused(source, target, message):
    expected = message.removeprefix("elastic transfer: ")
    assert elastic_plan.elastic_problem(source, target) == expected
    state = distinct_state(source)
    with pytest.raises(LthError) as error:
        elastic.transfer(state, layerwise_top_mask(source, state), source, target, "interleave")
    assert str(error.value) == message


def test_weights_or_mask_of_another_network_are_refused():
    deep = distinct_state("resnet32")
    mask = layerwise_top_mask("resnet20", distinct_state("resnet20"))
    with pytest.raises(LthError) as error:
        elastic.transfer(deep, mask, "resnet20", "resnet44", "tail")
    assert str(error.value) == ("elastic transfer: the source weights are not those of resnet20 "
                                "(72 keys differ, e.g. stage1.block4.bn1.bias)")
    state = distinct_state("resnet20")
    wrong = dict(mask, **{"output.weight": mask["output.weight"].float()})
    with pytest.raises(LthError) as error:
        elastic.transfer(state, wrong, "resnet20", "resnet44", "tail")
    assert str(error.value) == ("elastic transfer: source mask output.weight is torch.float32 "
                                "(10, 64), resnet20's is torch.bool (10, 64)")
    with pytest.raises(LthError) as error:
        elastic.transfer({"fc1.weight": torch.zeros(3, 4)}, {}, "resnet20", "resnet32", "tail")
    assert str(error.value) == "elastic transfer: the source weights have no conv.weight"
