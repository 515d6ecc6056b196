"""The networks of the study, built deterministically from a torch.Generator.

Every model is an ``nn.Sequential`` whose last module is the ``nn.Linear`` output layer named
``output``; layer names are readable (``conv3.weight``, ``fc1.weight``, ``stage2.block1.conv1``)
because they key masks and the per-layer tables of the report.

Models are created on the meta device and then materialised on the generator's device, so
PyTorch's default initialisation (which would draw from the global RNG) never runs: every
random value comes from the generator passed to :func:`build_model`, and the same generator
state gives bit-identical weights.

The widths of every network are lth.plan.catalog's (the one, torch-free table of model facts
that the config checks read too); this module turns them into modules.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from lth.core.io import LthError
from lth.plan import plugins
from lth.plan.catalog import (
    CONVNET_BLOCKS,
    CONVNET_HIDDEN,
    MLP_HIDDEN,
    POOL,
    RESNET_STAGES,
    VGG_CFGS,
    mlp_family_hidden,
    require_image,
    require_model,
)


def _mlp_layers(
    in_features: int, hidden: Sequence[int], num_classes: int, dropout: float
) -> list[tuple[str, nn.Module]]:
    """Hidden Linear+ReLU layers ``fc1, fc2, ...`` (each followed by dropout when > 0), output."""
    layers: list[tuple[str, nn.Module]] = []
    for index, width in enumerate(hidden, start=1):
        layers += [(f"fc{index}", nn.Linear(in_features, width)), (f"relu_fc{index}", nn.ReLU())]
        if dropout > 0:
            layers.append((f"dropout{index}", nn.Dropout(dropout)))
        in_features = width
    layers.append(("output", nn.Linear(in_features, num_classes)))
    return layers


def _fully_connected(
    input_shape: tuple[int, ...], hidden: Sequence[int], num_classes: int, dropout: float
) -> nn.Sequential:
    """Flatten the input, then a multilayer perceptron."""
    layers = _mlp_layers(math.prod(input_shape), hidden, num_classes, dropout)
    return nn.Sequential(OrderedDict([("flatten", nn.Flatten()), *layers]))


def _convnet(
    input_shape: tuple[int, ...], blocks: Sequence[int], num_classes: int, dropout: float
) -> nn.Sequential:
    """Conv-2/4/6: blocks of two 3x3 same-padded conv+ReLU and a 2x2 max pool, then the MLP."""
    channels, height, width = input_shape
    layers: list[tuple[str, nn.Module]] = []
    conv_index = 0
    for block, block_width in enumerate(blocks, start=1):
        for _ in range(2):
            conv_index += 1
            conv = nn.Conv2d(channels, block_width, kernel_size=3, padding=1)
            layers += [(f"conv{conv_index}", conv), (f"relu{conv_index}", nn.ReLU())]
            channels = block_width
        layers.append((f"pool{block}", nn.MaxPool2d(2)))
    side = 2 ** len(blocks)
    flat = channels * (height // side) * (width // side)
    layers.append(("flatten", nn.Flatten()))
    layers += _mlp_layers(flat, CONVNET_HIDDEN, num_classes, dropout)
    return nn.Sequential(OrderedDict(layers))


def _conv_bn_relu(in_channels: int, out_channels: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    """3x3 same-padded conv (no bias: BatchNorm follows), BatchNorm, ReLU."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
    return conv, nn.BatchNorm2d(out_channels), nn.ReLU()


class VGG(nn.Sequential):
    """VGG in CIFAR form: 3x3 conv + BatchNorm + ReLU layers, 2x2 max pools where ``cfg`` says
    :data:`POOL`, then global average pooling and one linear output layer.

    This is the VGG-19 of Frankle & Carbin 2019, Fig. 2 ("... 4x512 avg-pool 10"); BatchNorm
    after every convolution follows Li et al. 2017, Sec. 4.1 and Liu et al. 2019. ``cfg`` lists
    the conv widths in order, so a filter-pruned VGG (lth.methods.filters) is the same class with
    narrower widths. Convolutions are named ``conv1 ... convN`` (Li et al. 2017, Table 2 numbers
    them conv_1 ... conv_13), each followed by ``bn<i>`` and ``relu<i>``.
    """

    def __init__(self, cfg: Sequence[int | str], in_channels: int, num_classes: int) -> None:
        layers: list[tuple[str, nn.Module]] = []
        conv_index = pool_index = 0
        channels = in_channels
        for item in cfg:
            if item == POOL:
                pool_index += 1
                layers.append((f"pool{pool_index}", nn.MaxPool2d(2)))
                continue
            conv_index += 1
            conv, bn, relu = _conv_bn_relu(channels, item)
            layers += [(self.conv_name(conv_index), conv), (f"bn{conv_index}", bn)]
            layers.append((f"relu{conv_index}", relu))
            channels = item
        layers += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
        layers.append(("output", nn.Linear(channels, num_classes)))
        super().__init__(OrderedDict(layers))
        self.cfg = tuple(cfg)

    @staticmethod
    def conv_name(index: int) -> str:
        """Module name of the index-th convolution, counted from 1."""
        return f"conv{index}"


class BasicBlock(nn.Module):
    """Residual block of two 3x3 conv+BN layers (He et al. 2016, Fig. 2 left).

    The shortcut is the identity, or a 1x1 conv + BN projection where the shape changes (He et
    al. 2016, Sec. 3.3, Eqn. 2, option B), as in open_lth's CIFAR ResNets and Tanaka et al.
    2020's ResNet-18. He et al.'s own CIFAR ResNets (Sec. 4.2) use option A instead (zero-padded
    identity shortcuts, no weights); Frankle & Carbin 2019's ResNet has the 2,560 projection
    weights of option B (App. I.3).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            projection = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut = nn.Sequential(
                OrderedDict([("conv", projection), ("bn", nn.BatchNorm2d(out_channels))])
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _resnet(
    in_channels: int, stages: Sequence[tuple[int, int]], num_classes: int
) -> nn.Sequential:
    """CIFAR ResNet: 3x3 stem conv+BN+ReLU (no max pool), stages of basic blocks (stride 2 at
    the start of every stage but the first), global average pool, linear output."""
    stem_width = stages[0][0]
    stem = _conv_bn_relu(in_channels, stem_width)
    layers: list[tuple[str, nn.Module]] = list(zip(("conv", "bn", "relu"), stem, strict=True))
    channels = stem_width
    for stage, (width, blocks) in enumerate(stages, start=1):
        stride = 1 if stage == 1 else 2
        stage_blocks = []
        for block in range(1, blocks + 1):
            stage_blocks.append((f"block{block}", BasicBlock(channels, width, stride)))
            channels, stride = width, 1
        layers.append((f"stage{stage}", nn.Sequential(OrderedDict(stage_blocks))))
    layers += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
    layers.append(("output", nn.Linear(channels, num_classes)))
    return nn.Sequential(OrderedDict(layers))


Initialiser = Callable[[nn.Module, torch.Generator], None]
"""Initialises a module in place from a generator (a whole model, or one layer's weight)."""


def _init_batchnorm_(module: nn.Module) -> None:
    """BatchNorm weight 1, bias 0 and fresh running statistics (mean 0, variance 1)."""
    nn.init.ones_(module.weight)
    nn.init.zeros_(module.bias)
    module.reset_running_stats()


@torch.no_grad()
def fill_batchnorm_scales_(model: nn.Module, scale: float) -> None:
    """Every BatchNorm weight (scale) set to `scale`: You et al. 2020's reference VGG starts
    them at 0.5 (their models/vgg.py:65), which
    sets how strongly network slimming acts. Draws nothing from a generator."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.fill_(scale)


def _init_layers_(model: nn.Module, gen: torch.Generator, init_weight: Initialiser) -> None:
    """Every conv and linear weight by ``init_weight``, in registration order; biases 0;
    BatchNorm by :func:`_init_batchnorm_`."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            init_weight(module, gen)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            _init_batchnorm_(module)


@torch.no_grad()
def init_glorot_(model: nn.Module, gen: torch.Generator) -> None:
    """Gaussian Glorot weights (Glorot & Bengio 2010), std sqrt(2 / (fan_in + fan_out)): the
    initialisation of every network of Frankle & Carbin 2019 (Fig. 2 caption; App. I.2, I.3)."""
    _init_layers_(model, gen, lambda m, g: nn.init.xavier_normal_(m.weight, generator=g))


@torch.no_grad()
def init_kaiming_fan_in_(model: nn.Module, gen: torch.Generator) -> None:
    """Kaiming normal weights (He et al. 2015, Sec. 2.2), std sqrt(2 / fan_in) for conv and
    linear layers alike: ``nn.init.kaiming_normal_``'s default, used by open_lth and by Tanaka
    et al. 2020's VGGs (Synaptic-Flow Models/lottery_vgg.py)."""
    _init_layers_(model, gen, lambda m, g: nn.init.kaiming_normal_(
        m.weight, mode="fan_in", nonlinearity="relu", generator=g))


@torch.no_grad()
def init_kaiming_fan_out_(model: nn.Module, gen: torch.Generator) -> None:
    """Kaiming normal weights as in the ResNet paper (He et al. 2016, Sec. 3.4): conv weights
    std sqrt(2 / fan_out) (the backward-propagation case of He et al. 2015), linear weights
    std sqrt(2 / fan_in) (the forward case), as torchvision's ResNets."""
    def weight(module: nn.Module, g: torch.Generator) -> None:
        mode = "fan_out" if isinstance(module, nn.Conv2d) else "fan_in"
        nn.init.kaiming_normal_(module.weight, mode=mode, nonlinearity="relu", generator=g)

    _init_layers_(model, gen, weight)


INITIALISERS: dict[str, Initialiser] = {
    "glorot": init_glorot_,
    "kaiming_fan_in": init_kaiming_fan_in_,
    "kaiming_fan_out": init_kaiming_fan_out_,
}
"""Weight initialisers by the name the config uses (``train.init``). Every one sets biases to 0
and BatchNorm to weight 1, bias 0, running mean 0, running variance 1."""


def _initialiser(model: str, init: str | None, default: str) -> Initialiser:
    """The initialiser named ``init`` (``default`` when None); LthError naming a bad name."""
    name = default if init is None else init
    if name not in INITIALISERS:
        raise LthError(
            f"model {model}: init must be one of {', '.join(INITIALISERS)}, got {name!r}"
        )
    return INITIALISERS[name]


def _materialise(
    make: Callable[[], nn.Module],
    init: Initialiser,
    gen: torch.Generator,
) -> nn.Module:
    """Create the module on the meta device (no default init, no global RNG draw), allocate it
    on the generator's device and initialise every parameter and buffer with ``init``."""
    with torch.device("meta"):
        model = make()
    model.to_empty(device=gen.device)
    init(model, gen)
    return model


def mlp(
    hidden: Sequence[int],
    input_shape: tuple[int, ...],
    num_classes: int,
    gen: torch.Generator,
    dropout: float,
    init: str | None = None,
) -> nn.Sequential:
    """Multilayer perceptron on the flattened input: LeNet-300-100 and the speech MLP with
    their widths in lth.plan.catalog.MLP_HIDDEN. ``init`` names an :data:`INITIALISERS`
    entry, None meaning "glorot" (Frankle & Carbin 2019, Fig. 2).

    ``dropout`` > 0 adds dropout after each hidden layer, as in the dropout experiments of
    Frankle & Carbin 2019 (Sec. 3, "Dropout", run there on Conv-2/4/6).
    """
    initialiser = _initialiser("mlp", init, "glorot")
    return _materialise(
        lambda: _fully_connected(input_shape, hidden, num_classes, dropout), initialiser, gen
    )


def convnet(
    blocks: Sequence[int],
    input_shape: tuple[int, ...],
    num_classes: int,
    gen: torch.Generator,
    dropout: float,
    init: str | None = None,
) -> nn.Sequential:
    """Conv-2, Conv-4 or Conv-6 (Frankle & Carbin 2019, Fig. 2; blocks from
    lth.plan.catalog.CONVNET_BLOCKS), ReLU, no BatchNorm. ``init`` as for :func:`mlp` (None:
    "glorot").

    ``dropout`` > 0 adds dropout after each fully-connected hidden layer (Frankle & Carbin
    2019, Sec. 3 "Dropout"; the placement on the fully-connected layers is our reading).
    """
    require_image("model convnet", input_shape, len(blocks))
    initialiser = _initialiser("convnet", init, "glorot")
    return _materialise(
        lambda: _convnet(input_shape, blocks, num_classes, dropout), initialiser, gen
    )


def vgg(
    cfg: Sequence[int | str],
    input_shape: tuple[int, ...],
    num_classes: int,
    gen: torch.Generator,
    init: str | None = None,
) -> VGG:
    """A :class:`VGG` with the given conv configuration. ``init`` names an
    :data:`INITIALISERS` entry, None meaning "kaiming_fan_out" (this project's choice before
    the initialiser became a setting)."""
    require_image("model vgg", input_shape, sum(item == POOL for item in cfg))
    initialiser = _initialiser("vgg", init, "kaiming_fan_out")
    return _materialise(lambda: VGG(cfg, input_shape[0], num_classes), initialiser, gen)


def resnet(
    stages: Sequence[tuple[int, int]],
    input_shape: tuple[int, ...],
    num_classes: int,
    gen: torch.Generator,
    init: str | None = None,
) -> nn.Sequential:
    """A CIFAR ResNet with the given (filters, blocks) stages. ``init`` as for :func:`vgg`
    (None: "kaiming_fan_out", He et al. 2016, Sec. 3.4).

    With the stages of lth.plan.catalog.RESNET_STAGES["resnet20"] this is ResNet-20 (He et al.
    2016, Sec. 4.2, but with 1x1 projection shortcuts, see :class:`BasicBlock`), which is the
    network Frankle & Carbin 2019 (Fig. 2) call "Resnet-18" (16/32/64 filters, 3 blocks per
    stage, 274K weights). With RESNET_STAGES["resnet18"] it is the CIFAR form of He et al.'s
    ImageNet ResNet-18 (Table 1): the 7x7 stride-2 stem and its max pool become one 3x3
    stride-1 conv, since CIFAR images are 32x32; 11,164,352 prunable weights. This is the
    ResNet-18 of Tanaka et al. 2020's CIFAR-10 experiments (Synaptic-Flow
    Models/tinyimagenet_resnet.py: 3x3 stem, no max pool, 1x1 conv + BN projection shortcuts).
    """
    require_image("model resnet", input_shape, len(stages) - 1)
    initialiser = _initialiser("resnet", init, "kaiming_fan_out")
    return _materialise(lambda: _resnet(input_shape[0], stages, num_classes), initialiser, gen)


def _no_dropout(name: str, dropout: float) -> None:
    """BatchNorm networks are used without dropout; say so rather than ignore it."""
    if dropout != 0:
        raise LthError(f"model {name}: dropout must be 0 (it uses BatchNorm), got {dropout}")


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    gen: torch.Generator,
    dropout: float,
    init: str | None = None,
) -> nn.Module:
    """Build model ``name`` (one of lth.plan.catalog.MODEL_NAMES, or ``mlp<W>x<D>``: D hidden
    layers of width W) on the generator's device, from the catalog's table of its widths.

    ``init`` names an :data:`INITIALISERS` entry; None keeps the model's own default ("glorot"
    for the MLPs and Conv-2/4/6, "kaiming_fan_out" for VGG and ResNet). Every random value is
    drawn from ``gen``; the same generator state gives identical weights.
    """
    require_model(name)
    if plugins.is_model_plugin(name):
        return plugins.build_model(name, tuple(input_shape), num_classes, gen, dropout, init)
    hidden = MLP_HIDDEN.get(name) or mlp_family_hidden(name)
    if not 0 <= dropout < 1:
        raise LthError(f"model {name}: dropout must be in [0, 1), got {dropout}")
    if num_classes < 1:
        raise LthError(f"model {name}: num_classes must be >= 1, got {num_classes}")
    input_shape = tuple(input_shape)
    if hidden:
        return mlp(hidden, input_shape, num_classes, gen, dropout, init)
    if name in CONVNET_BLOCKS:
        return convnet(CONVNET_BLOCKS[name], input_shape, num_classes, gen, dropout, init)
    _no_dropout(name, dropout)
    if name in VGG_CFGS:
        return vgg(VGG_CFGS[name], input_shape, num_classes, gen, init)
    return resnet(RESNET_STAGES[name], input_shape, num_classes, gen, init)


def prunable_names(model: nn.Module) -> list[str]:
    """The ``.weight`` of every nn.Conv2d and nn.Linear, in registration order."""
    return [
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]


def output_name(model: nn.Module) -> str:
    """The weight of the last nn.Linear: the output layer."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise LthError(f"{type(model).__name__}: model has no nn.Linear output layer")
    return f"{linear[-1]}.weight"


SHORTCUT_SUFFIX = "shortcut.conv"
"""Module-name ending of a residual block's 1x1 projection convolution (:class:`BasicBlock`)."""


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """Prunable weight name -> "conv", "shortcut" (a ResNet's 1x1 projection shortcut conv),
    "fc" (hidden linear) or "output" (last linear).

    Shortcuts are their own kind so that IMP can leave them unpruned, as Frankle & Carbin
    2019, App. I.3 do ("We do not prune the 2560 parameters used to downsample residual
    connections"), or prune them with the other convolutions, as open_lth does.
    """
    output = output_name(model)
    modules = dict(model.named_modules())
    kinds = {}
    for name in prunable_names(model):
        module_name = name.removesuffix(".weight")
        if name == output:
            kinds[name] = "output"
        elif not isinstance(modules[module_name], nn.Conv2d):
            kinds[name] = "fc"
        else:
            kinds[name] = "shortcut" if module_name.endswith(SHORTCUT_SUFFIX) else "conv"
    return kinds
