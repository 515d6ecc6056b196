import copy
import math

import pytest
import torch
from torch import nn

from lth.core.io import LthError
from lth.core.masks import macs
from lth.core.models import build_model, vgg
from lth.methods.filters import (
    VGG16_PRUNED_A,
    build_pruned_architecture,
    filter_l1_norms,
    keep_filters,
    measure_latency,
    prune_filters,
    pruned_cfg,
)
from lth.plan.catalog import POOL, VGG_CFGS

CIFAR = (3, 32, 32)
VGG16_CFG = VGG_CFGS["vgg16"]
M = POOL
PRUNED_A_CFG = (32, 64, M, 128, 128, M, 256, 256, 256, M, 256, 256, 256, M, 256, 256, 256)
# Removes 30% of conv2 (64 -> 45, 19.2 rounds to 19), 10% of conv5 (256 -> 230, 25.6 -> 26)
# and 75% of conv13 (512 -> 128): uneven widths, keys by number and by name.
UNEVEN = {2: 0.3, 5: 0.1, "conv13.weight": 0.75}
UNEVEN_CFG = (64, 45, M, 128, 128, M, 230, 256, 256, M, 512, 512, 512, M, 512, 512, 128)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def conv_pairs(model):
    return [(name, m) for name, m in model.named_children() if isinstance(m, nn.Conv2d)]


def batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


@torch.no_grad()
def randomise_batchnorm_(model, g):
    """Give every BN non-trivial affine parameters and running statistics."""
    for bn in batchnorms(model):
        bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(bn.num_features, generator=g))
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)


@pytest.fixture(scope="module")
def vgg16():
    model = build_model("vgg16", CIFAR, 10, gen(0), 0.0)
    randomise_batchnorm_(model, gen(1))
    return model.eval()


def vgg_parameter_count(cfg, in_channels, num_classes):
    """Hand count: per conv 9*in*out weights + BN weight and bias; linear weights and bias."""
    count, channels = 0, in_channels
    for width in (item for item in cfg if item != POOL):
        count += 9 * channels * width + 2 * width
        channels = width
    return count + channels * num_classes + num_classes


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def test_pruned_a_configuration():
    assert pruned_cfg(VGG16_CFG, VGG16_PRUNED_A) == PRUNED_A_CFG
    assert pruned_cfg(VGG16_CFG, UNEVEN) == UNEVEN_CFG


@pytest.mark.parametrize(
    ("fractions", "cfg"), [(VGG16_PRUNED_A, PRUNED_A_CFG), (UNEVEN, UNEVEN_CFG)]
)
def test_pruned_model_has_the_hand_counted_parameters(vgg16, fractions, cfg):
    pruned = prune_filters(vgg16, fractions)
    assert pruned.cfg == cfg
    assert parameter_count(pruned) == vgg_parameter_count(cfg, 3, 10)
    assert parameter_count(vgg16) == vgg_parameter_count(VGG16_CFG, 3, 10) == 14_724_042


def test_pruned_a_has_li_et_al_table2_size_and_macs(vgg16):
    pruned = prune_filters(vgg16, VGG16_PRUNED_A)
    # conv weights 5,253,984 + BN 2*2,656 + output 256*10 + 10
    assert parameter_count(pruned) == 5_261_866
    # Conv multiply-adds per 32x32 image, by resolution (weights x positions):
    # 32x32 (3*32 + 32*64)*9*1024, 16x16 (64*128 + 128*128)*9*256, 8x8 (128*256 + 2*256*256)*9*64,
    # 4x4 3*256*256*9*16, 2x2 3*256*256*9*4; the output layer has 256*10.
    conv_macs = 19_759_104 + 56_623_104 + 94_371_840 + 28_311_552 + 7_077_888
    assert macs(pruned, CIFAR) == conv_macs + 2_560
    assert macs(vgg16, CIFAR) == 313_196_544 + 5_120
    assert macs(vgg16, CIFAR) - macs(pruned, CIFAR) == 107_053_056 + 2_560
    # Li et al. 2017, Tables 1-2: 3.13e8 -> 2.06e8 FLOPs, 34.2% fewer
    assert round(conv_macs / 1e8, 2) == 2.06
    assert round(100 * (1 - conv_macs / 313_196_544), 1) == 34.2


def test_kept_filters_are_the_largest_l1_norms_copied_exactly(vgg16):
    pruned = prune_filters(vgg16, UNEVEN)
    norms = filter_l1_norms(vgg16)
    original, smaller = dict(vgg16.named_children()), dict(pruned.named_children())
    previous = torch.arange(3)
    for index, (name, conv) in enumerate(conv_pairs(pruned), start=1):
        width = conv.out_channels
        kept = torch.topk(norms[f"{name}.weight"], width).indices.sort().values
        expected = original[name].weight[kept][:, previous]
        assert torch.equal(conv.weight, expected)
        bn, source = smaller[f"bn{index}"], original[f"bn{index}"]
        for key in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(bn, key), getattr(source, key)[kept])
        previous = kept
    assert torch.equal(pruned.output.weight, vgg16.output.weight[:, previous])
    assert torch.equal(pruned.output.bias, vgg16.output.bias)


def test_filter_l1_norms_values():
    model = vgg((4, POOL, 2), (3, 8, 8), 5, gen(0))
    with torch.no_grad():
        for j in range(4):
            model.conv1.weight[j].fill_(j - 2.5)
    norms = filter_l1_norms(model)
    assert list(norms) == ["conv1.weight", "conv2.weight"]
    torch.testing.assert_close(norms["conv1.weight"], torch.tensor([2.5, 1.5, 0.5, 0.5]) * 27)


def test_ties_keep_the_lower_index():
    model = vgg((4,), (3, 4, 4), 2, gen(0))
    with torch.no_grad():
        model.conv1.weight.fill_(1.0)
    pruned = prune_filters(model, {1: 0.5})
    assert torch.equal(pruned.bn1.running_var, model.bn1.running_var[:2])
    with torch.no_grad():
        model.conv1.weight[0].zero_()
    pruned = prune_filters(model, {1: 0.5})
    assert torch.equal(pruned.output.weight, model.output.weight[:, 1:3])


@torch.no_grad()
def test_pruning_filters_that_output_zero_leaves_the_function_unchanged(vgg16):
    model = copy.deepcopy(vgg16)
    g = gen(5)
    kept_widths = [item for item in PRUNED_A_CFG if item != POOL]
    convs = [conv for _, conv in conv_pairs(model)]
    for index, (conv, kept) in enumerate(zip(convs, kept_widths, strict=True), start=1):
        dead = torch.randperm(conv.out_channels, generator=g)[: conv.out_channels - kept]
        conv.weight[dead] = 0.0
        bn = getattr(model, f"bn{index}")
        bn.bias[dead] = 0.0
        bn.running_mean[dead] = 0.0
    pruned = prune_filters(model, VGG16_PRUNED_A)
    x = torch.randn(2, *CIFAR, generator=g)
    out = pruned(x)
    assert out.shape == (2, 10)
    torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-5)


def test_pruning_copies_and_keeps_mode_and_trainability(vgg16):
    before = {k: v.clone() for k, v in vgg16.state_dict().items()}
    pruned = prune_filters(vgg16, VGG16_PRUNED_A)
    assert all(torch.equal(before[k], v) for k, v in vgg16.state_dict().items())
    assert not pruned.training
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in pruned.parameters())
    with torch.no_grad():
        pruned.output.bias.add_(1.0)
    assert torch.equal(vgg16.output.bias, before["output.bias"])


def test_scratch_baseline_has_the_pruned_architecture_and_fresh_weights(vgg16):
    pruned = prune_filters(vgg16, VGG16_PRUNED_A)
    scratch = build_pruned_architecture(VGG16_CFG, VGG16_PRUNED_A, CIFAR, 10, gen(7))
    again = build_pruned_architecture(VGG16_CFG, VGG16_PRUNED_A, CIFAR, 10, gen(7))
    shapes = {k: v.shape for k, v in pruned.state_dict().items()}
    assert {k: v.shape for k, v in scratch.state_dict().items()} == shapes
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in scratch.state_dict().items())
    assert not torch.equal(scratch.conv1.weight, pruned.conv1.weight)
    assert torch.equal(scratch.bn1.running_var, torch.ones(32))


def test_keep_filters_keeps_the_given_filters_and_the_matching_inputs():
    model = vgg((4, POOL, 3), (3, 8, 8), 5, gen(0))
    randomise_batchnorm_(model, gen(1))
    first, second = [0, 2], [1]
    pruned = keep_filters(model, {"conv1.weight": torch.tensor(first),
                                  "conv2.weight": torch.tensor(second)})
    assert pruned.cfg == (2, POOL, 1)
    assert torch.equal(pruned.conv1.weight, model.conv1.weight[first])
    assert torch.equal(pruned.conv2.weight, model.conv2.weight[second][:, first])
    for key in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(pruned.bn1, key), getattr(model.bn1, key)[first])
        assert torch.equal(getattr(pruned.bn2, key), getattr(model.bn2, key)[second])
    assert torch.equal(pruned.output.weight, model.output.weight[:, second])


LONG = torch.long


@pytest.mark.parametrize(("conv1", "conv2", "message"), [
    (torch.tensor([0, 2]), None, "expected kept filters for conv1.weight, conv2.weight"),
    (torch.tensor([], dtype=LONG), torch.tensor([0]), "conv1.weight needs at least one"),
    (torch.tensor([2, 0]), torch.tensor([0]), r"conv1.weight .* ascending, distinct"),
    (torch.tensor([1, 1]), torch.tensor([0]), r"conv1.weight .* ascending, distinct"),
    (torch.tensor([0, 4]), torch.tensor([0]), r"conv1.weight .* in \[0, 4\)"),
    (torch.tensor([0]), torch.tensor([0.0]), "conv2.weight .* integer"),
])
def test_bad_kept_filters_raise(conv1, conv2, message):
    model = vgg((4, POOL, 3), (3, 8, 8), 5, gen(0))
    kept = {"conv1.weight": conv1} | ({} if conv2 is None else {"conv2.weight": conv2})
    with pytest.raises(LthError, match=f"^keep_filters: {message}"):
        keep_filters(model, kept)


@pytest.mark.parametrize(
    "fractions", [{14: 0.5}, {0: 0.5}, {"conv1": 0.5}, {1: 1.0}, {1: -0.1}]
)
def test_bad_fractions_raise(fractions):
    with pytest.raises(LthError, match="^filter fractions"):
        pruned_cfg(VGG16_CFG, fractions)


def test_only_vgg_can_be_filter_pruned():
    resnet = build_model("resnet20", CIFAR, 10, gen(0), 0.0)
    with pytest.raises(LthError, match="^prune_filters: expected a lth.core.models.VGG"):
        prune_filters(resnet, {1: 0.5})


def test_latency_is_a_positive_finite_time_and_leaves_the_model_alone():
    model = vgg((8, POOL, 16), (3, 8, 8), 10, gen(0)).train()
    seconds = measure_latency(model, (3, 8, 8), batch_size=4, repeats=3, warmup=1, device="cpu")
    assert 0 < seconds < 10 and math.isfinite(seconds)
    assert model.training
    with pytest.raises(LthError, match="^measure_latency"):
        measure_latency(model, (3, 8, 8), batch_size=4, repeats=0, warmup=1, device="cpu")
