import math

import pytest
import torch
from torch import nn

from lth.core.io import LthError
from lth.core.models import (
    INITIALISERS,
    build_model,
    layer_kinds,
    mlp,
    output_name,
    prunable_names,
    vgg,
)
from lth.plan import catalog
from lth.plan.catalog import CIFAR_RESNET_BLOCKS, INITS, MODEL_NAMES, POOL
from lth.plan.families import elastic as elastic_plan

CIFAR = (3, 32, 32)
MNIST = (1, 28, 28)
SPEECH = (1, 40, 101)
INPUTS = {"lenet300_100": (MNIST, 10), "speech_mlp": (SPEECH, 35)}
MLP_FAMILY = ("mlp300x2", "mlp300x4", "mlp64x1")
"""Members of the mlp<W>x<D> family, built on CIFAR-shaped inputs here."""
BUILDABLE = (*MODEL_NAMES, *MLP_FAMILY)


def build(name, seed=0, dropout=0.0, init=None):
    input_shape, num_classes = INPUTS.get(name, (CIFAR, 10))
    gen = torch.Generator().manual_seed(seed)
    return build_model(name, input_shape, num_classes, gen, dropout, init)


def weights_by_kind(model):
    """Layer kind -> number of prunable weights of that kind."""
    params = dict(model.named_parameters())
    sizes: dict[str, int] = {}
    for name, kind in layer_kinds(model).items():
        sizes[kind] = sizes.get(kind, 0) + params[name].numel()
    return sizes


def weight_counts(model):
    """(prunable weights, conv weights including 1x1 shortcut convs) of a model."""
    sizes = weights_by_kind(model)
    return sum(sizes.values()), sizes.get("conv", 0) + sizes.get("shortcut", 0)


# Exact counts, worked by hand from Frankle & Carbin 2019, Fig. 2 (3x3 same-padded convs):
# LeNet  784*300 + 300*100 + 100*10                                   = 266,200
# Conv-2 conv 3*64*9 + 64*64*9 = 38,592;  fc 16*16*64*256 + 256*256 + 256*10
# Conv-4 conv + 64*128*9 + 128*128*9 = 259,776;  fc 8*8*128*256 + ...
# Conv-6 conv + 128*256*9 + 256*256*9 = 1,144,512;  fc 4*4*256*256 + ...
# ResNet-20 conv 432 + 6*2,304 + (4,608 + 5*9,216) + (18,432 + 5*36,864) + 1x1 projections
#           16*32 + 32*64 = 270,256; output 64*10
# VGG-19 conv 20,018,880; output 512*10
# ResNet-(6n+2) conv 432 + 2n*2,304 + (4,608 + (2n-1)*9,216) + (18,432 + (2n-1)*36,864) + 2,560
#           = 96,768 n - 20,048 (n = 3: 270,256); output 640
# mlp<W>x<D> on CIFAR-10: 3,072*W + (D-1)*W*W + W*10
EXACT = {
    "lenet300_100": (266_200, 0),
    "conv2": (4_300_992, 38_592),
    "conv4": (2_425_024, 259_776),
    "conv6": (2_261_184, 1_144_512),
    "resnet14": (174_128, 173_488),
    "resnet20": (270_896, 270_256),
    "resnet32": (464_432, 463_792),
    "resnet44": (657_968, 657_328),
    "resnet56": (851_504, 850_864),
    "vgg19": (20_024_000, 20_018_880),
    "vgg16": (14_715_584, 14_710_464),
    "resnet18": (11_164_352, 11_159_232),
    "speech_mlp": (4040 * 512 + 512 * 256 + 256 * 35, 0),
    "mlp300x2": (3072 * 300 + 300 * 300 + 3000, 0),
    "mlp300x4": (3072 * 300 + 3 * 300 * 300 + 3000, 0),
    "mlp64x1": (3072 * 64 + 640, 0),
}

# The paper's figures (Frankle & Carbin 2019, Fig. 2, "Weights" and "Conv" rows) as
# (value, unit of its last digit); None where it gives none or where it disagrees with its own
# layer table: its Conv-6 total of 1.7M cannot be reproduced (the conv layers alone are 1.1M
# and the first fc layer 4*4*256*256 = 1.05M), and its ResNet ("Resnet-18") total of 274K is
# 3,104 above the 270,896 weights of the architecture it lists, whose conv weights (270K) match.
PAPER = {
    "lenet300_100": ((266e3, 1e3), None),
    "conv2": ((4.3e6, 0.1e6), (38e3, 1e3)),
    "conv4": ((2.4e6, 0.1e6), (260e3, 1e3)),
    "conv6": (None, (1.1e6, 0.1e6)),
    "resnet20": (None, (270e3, 1e3)),
    "vgg19": ((20.0e6, 0.1e6), (20.0e6, 0.1e6)),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_weight_counts_match_the_lth_paper_within_its_last_digit(name):
    for ours, figure in zip(EXACT[name], PAPER[name], strict=True):
        if figure is not None:
            paper, unit = figure
            assert abs(ours - paper) < unit


# He et al. 2016, Table 6, "# params" of the CIFAR-10 ResNets (option A shortcuts, so without
# our 2,560 projection weights and their BatchNorm): 0.27M, 0.46M, 0.66M, 0.85M
HE_TABLE6_PARAMS = {"resnet20": 0.27e6, "resnet32": 0.46e6, "resnet44": 0.66e6,
                    "resnet56": 0.85e6}


@pytest.mark.parametrize("name", sorted(HE_TABLE6_PARAMS))
def test_cifar_resnet_parameters_match_he_et_al_within_their_last_digit(name):
    total = sum(p.numel() for p in build(name).parameters())
    assert abs(total - HE_TABLE6_PARAMS[name]) < 0.01e6


@pytest.mark.parametrize("name", sorted(CIFAR_RESNET_BLOCKS))
def test_cifar_resnets_have_n_blocks_a_stage_and_projections_only_in_block_1(name):
    n = CIFAR_RESNET_BLOCKS[name]
    model = build(name)
    assert [len(model.get_submodule(f"stage{s}")) for s in (1, 2, 3)] == [n, n, n]
    assert [model.get_submodule(f"stage{s}.block{n}").conv2.out_channels
            for s in (1, 2, 3)] == [16, 32, 64]
    kinds = layer_kinds(model)
    assert [k for k, kind in kinds.items() if kind == "shortcut"] == [
        "stage2.block1.shortcut.conv.weight", "stage3.block1.shortcut.conv.weight"]
    assert list(kinds.values()).count("conv") == 1 + 6 * n  # 6n+2 layers: stem, convs, output
    assert elastic_plan.depth_family(name) == ("cifar_resnet", n)


def test_the_initialisers_are_the_catalogs():
    assert tuple(INITIALISERS) == INITS


def test_the_catalog_knows_the_mlp_family():
    for name in MLP_FAMILY:
        assert catalog.is_model(name)
        width, depth = (int(x) for x in name.removeprefix("mlp").split("x"))
        assert catalog.mlp_family_hidden(name) == (width,) * depth
        assert elastic_plan.depth_family(name) == (f"mlp{width}", depth)
    for name in ("mlp0x2", "mlp300x0", "mlp300", "mlpx2", "mlp300x2x2", "resnet26"):
        assert not catalog.is_model(name)
        assert catalog.mlp_family_hidden(name) is None


def test_mlp_family_is_equal_width_hidden_fc_layers_and_an_output():
    model = build("mlp300x4")
    params = dict(model.named_parameters())
    assert layer_kinds(model) == {"fc1.weight": "fc", "fc2.weight": "fc", "fc3.weight": "fc",
                                  "fc4.weight": "fc", "output.weight": "output"}
    assert [tuple(params[n].shape) for n in prunable_names(model)] == [
        (300, 3072), (300, 300), (300, 300), (300, 300), (10, 300)]
    lenet_like = build_model("mlp300x2", MNIST, 10, torch.Generator().manual_seed(0), 0.5)
    assert tuple(lenet_like.fc1.weight.shape) == (300, 784)
    assert any(isinstance(m, nn.Dropout) for m in lenet_like.modules())


def test_resnet18_is_the_11m_parameter_cifar_resnet():
    model = build("resnet18")
    assert sum(p.numel() for p in model.parameters()) == 11_173_962


@pytest.mark.parametrize("name", BUILDABLE)
def test_output_shape(name):
    input_shape, num_classes = INPUTS.get(name, (CIFAR, 10))
    model = build(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(1)))
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BUILDABLE)
def test_same_seed_same_weights_other_seed_other_weights(name):
    first, again, other = build(name, 3).state_dict(), build(name, 3).state_dict(), build(name, 4)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first[output_name(other)], other.state_dict()[output_name(other)])


def test_build_draws_only_from_the_given_generator():
    before = torch.get_rng_state()
    gen = torch.Generator().manual_seed(0)
    build_model("resnet20", CIFAR, 10, gen, 0.0)
    after_once = gen.get_state()
    assert torch.equal(torch.get_rng_state(), before)
    gen.manual_seed(0)
    build_model("resnet20", CIFAR, 10, gen, 0.0)
    assert torch.equal(gen.get_state(), after_once)


@pytest.mark.parametrize("name", BUILDABLE)
def test_exact_weight_counts(name):
    assert weight_counts(build(name)) == EXACT[name]


# (initialiser, std of a 3x3 conv weight, std of a linear weight) as functions of the fans
STD_FORMULAS = {
    "glorot": (lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)),
               lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
    "kaiming_fan_in": (lambda fan_in, fan_out: math.sqrt(2 / fan_in),
                       lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
    "kaiming_fan_out": (lambda fan_in, fan_out: math.sqrt(2 / fan_out),
                        lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
}


@pytest.mark.parametrize("init", sorted(INITIALISERS))
def test_initialiser_draws_the_std_of_its_formula(init):
    assert set(STD_FORMULAS) == set(INITIALISERS)
    conv_std, linear_std = STD_FORMULAS[init]
    gen = torch.Generator().manual_seed(0)
    net = vgg((64, POOL, 256, 512), CIFAR, 10, gen, init)  # conv3: 256 -> 512, 1.2M weights
    assert net.conv3.weight.std().item() == pytest.approx(conv_std(256 * 9, 512 * 9), rel=0.03)
    lenet = mlp((300, 100), MNIST, 10, gen, 0.0, init)  # fc1: 784 -> 300, 235K weights
    assert lenet.fc1.weight.std().item() == pytest.approx(linear_std(784, 300), rel=0.03)
    assert not lenet.fc1.bias.any() and not net.output.bias.any()


@pytest.mark.parametrize("init", sorted(INITIALISERS))
def test_every_initialiser_sets_batchnorm_to_identity_with_fresh_statistics(init):
    model = build("resnet20", init=init)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 1 + 9 * 2 + 2  # stem, two per block, two projection shortcuts
    for bn in norms:
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert not bn.bias.any() and not bn.running_mean.any()
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize(("name", "default"), [
    ("lenet300_100", "glorot"), ("conv2", "glorot"), ("speech_mlp", "glorot"),
    ("vgg16", "kaiming_fan_out"), ("resnet20", "kaiming_fan_out")])
def test_no_init_keeps_the_models_own_initialiser(name, default):
    implicit, named = build(name, seed=2).state_dict(), build(name, seed=2, init=default)
    assert all(torch.equal(implicit[k], v) for k, v in named.state_dict().items())
    other = next(i for i in INITIALISERS if i != default)
    assert not torch.equal(build(name, seed=2, init=other).output.weight, named.output.weight)


def test_glorot_init_of_lenet():
    model = build("lenet300_100")
    fc1 = model.fc1.weight
    assert fc1.std().item() == pytest.approx(math.sqrt(2 / (784 + 300)), rel=0.02)
    assert all(not m.bias.any() for m in model.modules() if isinstance(m, nn.Linear))


def test_kaiming_init_and_fresh_batchnorm_of_vgg():
    model = build("vgg16")
    conv = model.conv5.weight  # 128 -> 256 channels, fan_out = 256 * 9
    assert conv.std().item() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.02)
    assert model.output.weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.1)
    assert not model.output.bias.any()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert not bn.bias.any() and not bn.running_mean.any()
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert bn.num_batches_tracked.item() == 0


def test_layer_kinds_and_names():
    assert layer_kinds(build("conv2")) == {
        "conv1.weight": "conv",
        "conv2.weight": "conv",
        "fc1.weight": "fc",
        "fc2.weight": "fc",
        "output.weight": "output",
    }
    assert list(layer_kinds(build("lenet300_100")).values()) == ["fc", "fc", "output"]
    resnet = build("resnet20")
    kinds = layer_kinds(resnet)
    assert list(kinds) == prunable_names(resnet)
    # stem + 9 blocks x 2 convs, 2 projection shortcuts, output
    assert list(kinds.values()).count("conv") == 19
    assert [n for n, k in kinds.items() if k == "shortcut"] == [
        "stage2.block1.shortcut.conv.weight", "stage3.block1.shortcut.conv.weight"]
    assert output_name(resnet) == "output.weight"


def test_lth_resnet_prunes_267696_conv_weights_and_keeps_2560_shortcut_and_640_output():
    # Frankle & Carbin 2019, App. I.3: "We do not prune the 2560 parameters used to downsample
    # residual connections or the 640 parameters in the output layer"; 16*32 + 32*64 = 2,560
    assert weights_by_kind(build("resnet20")) == {
        "conv": 270_256 - 2_560, "shortcut": 2_560, "output": 640}
    # ResNet-18: projections 64*128 + 128*256 + 256*512
    assert weights_by_kind(build("resnet18"))["shortcut"] == 172_032


def test_vgg_has_li_et_al_conv_numbering():
    names = prunable_names(build("vgg16"))
    assert names == [f"conv{i}.weight" for i in range(1, 14)] + ["output.weight"]


def test_dropout_is_active_only_in_train_mode():
    model = build("conv2", dropout=0.5)
    plain = build("conv2")
    x = torch.randn(4, *CIFAR, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), plain.eval()(x), rtol=0, atol=0)
        torch.manual_seed(0)
        first, second = model.train()(x), model(x)
        torch.testing.assert_close(plain.train()(x), plain.eval()(x), rtol=0, atol=0)
    assert not torch.equal(first, second)
    assert not torch.equal(first, plain(x))


@pytest.mark.parametrize(
    ("name", "input_shape", "dropout"),
    [
        ("vgg17", CIFAR, 0.0),
        ("resnet26", CIFAR, 0.0),
        ("mlp300x0", CIFAR, 0.0),
        ("mlp0300x2", CIFAR, 0.0),
        ("resnet56", CIFAR, 0.1),
        ("resnet20", CIFAR, 0.5),
        ("lenet300_100", MNIST, 1.0),
        ("conv6", (3, 4, 4), 0.0),
        ("vgg16", (32, 32), 0.0),
    ],
)
def test_bad_arguments_raise_one_line_errors(name, input_shape, dropout):
    with pytest.raises(LthError, match=r"^model"):
        build_model(name, input_shape, 10, torch.Generator().manual_seed(0), dropout)


def test_unknown_initialiser_is_named_in_one_line():
    with pytest.raises(LthError, match=r"^model resnet: init must be one of glorot, "
                                       r"kaiming_fan_in, kaiming_fan_out, got 'he'$"):
        build("resnet20", init="he")


def test_a_recorded_batchnorm_init_sets_every_scale_and_survives_a_fresh_draw():
    """train.batchnorm_init (Early-Bird's VGG: 0.5): theta_0's architecture records it, and a
    fresh init drawn from that architecture (a control) starts its scales there too; the conv
    weights are the generator's, as without it."""
    from lth.core.networks import build

    arch = {"model": "vgg16", "input_shape": [3, 32, 32], "num_classes": 10}
    plain = build(arch, torch.Generator().manual_seed(3), 0.0, None)
    halved = build(dict(arch, batchnorm_init=0.5), torch.Generator().manual_seed(3), 0.0, None)
    scales = [m.weight for m in halved.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert scales and all(torch.equal(s, torch.full_like(s, 0.5)) for s in scales)
    for (name, a), (_, b) in zip(plain.state_dict().items(), halved.state_dict().items(),
                                 strict=True):
        if not any(name == f"{n}.weight" for n, m in halved.named_modules()
                   if isinstance(m, torch.nn.BatchNorm2d)):
            assert torch.equal(a, b), name
