"""What the study can run, as torch-free facts: the datasets, the networks' prunable layers,
and what a training schedule must satisfy.

The config checks read these in the Snakemake process on every dry run (lth.plan.config_checks,
no torch import); the verbs read the same facts (lth.core.data, lth.methods), so a setting is
judged by one rule wherever it is checked. The network tables below are the one table of model
facts: lth.core.models builds every network from them, and tests/test_config_checks.py compares
the layers of every built network with `prunable_layers`.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from lth.core.errors import LthError

# ---------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    input_shape is None only in DATASETS["speech_commands"]: it depends on the feature
    settings; `dataset_info(name, speech)` and `lth.core.data.Splits.info` give the full shape.
    """

    name: str
    input_shape: tuple[int, ...] | None
    num_classes: int


DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo("fashion_mnist", (1, 28, 28), 10),
    "mnist": DatasetInfo("mnist", (1, 28, 28), 10),
    "cifar10": DatasetInfo("cifar10", (3, 32, 32), 10),
    # Warden 2018: version 0.02 has 35 words (one folder each besides _background_noise_).
    "speech_commands": DatasetInfo("speech_commands", None, 35),
}

OFFICIAL_TRAINING_EXAMPLES = {"fashion_mnist": 60_000, "mnist": 60_000, "cifar10": 50_000}
"""Training examples of the official releases (what the download and the Debian package
give); speech_commands has official validation and test lists instead of a hold-out."""

AUGMENTED_DATASETS = frozenset({"cifar10"})
"""Datasets trained with crop-and-flip augmentation when a schedule asks for it."""

IDX_GZ_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)
SPEECH_LIST_FILES = ("validation_list.txt", "testing_list.txt")
SOURCE_FILES = {"fashion_mnist": IDX_GZ_FILES, "mnist": IDX_GZ_FILES, "cifar10": CIFAR_FILES,
                "speech_commands": SPEECH_LIST_FILES}
"""Files a configured source folder of each dataset must hold."""

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"
"""Where the Debian package of Fashion-MNIST puts its gz IDX files (a way to get them
without a download, taken only when no source folder is configured)."""

IDX_TYPE_UBYTE = 0x08
"""IDX type code of unsigned bytes (LeCun's MNIST page: magic = 0, 0, type, dimensions)."""


def source_folder_problem(name: str, folder: str | os.PathLike) -> str | None:
    """What keeps `folder` from being the source folder of dataset `name` (a sentence with the
    folder as its subject), or None if it can be."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder} does not exist"
    missing = [f for f in SOURCE_FILES[name] if not (folder / f).is_file()]
    if missing:
        return f"{folder} lacks {', '.join(missing)}"
    return None


def idx_shape(header: bytes, dims: int) -> tuple[int, ...] | None:
    """The shape an IDX header announces (magic 0, 0, unsigned-byte type, `dims`, then `dims`
    big-endian sizes), or None if `header` is not the header of such a file."""
    size = 4 + 4 * dims
    if len(header) < size or header[:4] != bytes((0, 0, IDX_TYPE_UBYTE, dims)):
        return None
    return struct.unpack(f">{dims}I", header[4:size])


# Warden 2018 (arXiv:1804.03209): one-second clips at 16 kHz, 16-bit PCM mono WAV.
SPEECH_SAMPLE_RATE = 16000
SPEECH_SAMPLES = SPEECH_SAMPLE_RATE
SPEECH_FEATURE_KINDS = ("logmel", "mfcc")


@dataclass(frozen=True)
class SpeechFeatures:
    """Feature settings for Speech Commands: log-mel ("logmel") or MFCC ("mfcc") frames.

    Window and hop are in samples at 16 kHz; n_mfcc is required for "mfcc" and must be None
    for "logmel". Each clip becomes an (n_features, frames) tensor.
    """

    kind: str
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    n_mfcc: int | None


def speech_problems(features: SpeechFeatures) -> list[tuple[str, str]]:
    """(setting, what is wrong) for every speech feature setting out of range."""
    if features.kind not in SPEECH_FEATURE_KINDS:
        return [("kind", f"expected one of {SPEECH_FEATURE_KINDS}, got {features.kind!r}")]
    for key in ("n_fft", "win_length", "hop_length", "n_mels"):
        value = getattr(features, key)
        if not isinstance(value, int) or value < 1:
            return [(key, f"expected a positive integer, got {value!r}")]
    problems = []
    if features.n_fft > SPEECH_SAMPLES:
        problems.append(("n_fft", f"expected at most one clip ({SPEECH_SAMPLES} samples), "
                                  f"got {features.n_fft}"))
    if features.win_length > features.n_fft:
        problems.append(("win_length", f"expected <= n_fft ({features.n_fft}), "
                                       f"got {features.win_length}"))
    if features.kind == "logmel" and features.n_mfcc is not None:
        problems.append(("n_mfcc", f"expected null for kind 'logmel', got {features.n_mfcc!r}"))
    if features.kind == "mfcc" and not (
        isinstance(features.n_mfcc, int) and 1 <= features.n_mfcc <= features.n_mels
    ):
        problems.append(("n_mfcc", f"expected an integer in 1..n_mels ({features.n_mels}) "
                                   f"for kind 'mfcc', got {features.n_mfcc!r}"))
    return problems


def check_speech_features(features: SpeechFeatures) -> None:
    """Raise LthError naming the first speech feature setting that is out of range."""
    for key, message in speech_problems(features):
        raise LthError(f"speech features {key}: {message}")


def speech_input_shape(features: SpeechFeatures) -> tuple[int, int]:
    """(n_features, frames) of one clip: centred STFT frames over one second."""
    check_speech_features(features)
    n_features = features.n_mfcc if features.kind == "mfcc" else features.n_mels
    return n_features, 1 + SPEECH_SAMPLES // features.hop_length


def dataset_info(name: str, speech: SpeechFeatures | None) -> DatasetInfo:
    """The full DatasetInfo of a dataset; speech needs its features, the others need None."""
    if name not in DATASETS:
        raise LthError(f"dataset: expected one of {sorted(DATASETS)}, got {name!r}")
    if (name == "speech_commands") != (speech is not None):
        need = "speech feature settings" if speech is None else "no speech feature settings"
        raise LthError(f"dataset {name}: expected {need}")
    if speech is None:
        return DATASETS[name]
    return DatasetInfo(name, speech_input_shape(speech), DATASETS[name].num_classes)


# ---------------------------------------------------------------- networks

POOL = "M"
"""Marker of a 2x2 max pool in a VGG configuration."""

MLP_HIDDEN = {"lenet300_100": (300, 100), "speech_mlp": (512, 256)}
"""Hidden widths of the fully-connected networks with a fixed name.

lenet300_100: LeNet-300-100 (LeCun et al. 1998; Frankle & Carbin 2019, Fig. 2).
speech_mlp: the MLP on flattened speech features (e.g. a log-mel spectrogram). No paper fixes
this network. It keeps LeNet-300-100's shape (two hidden ReLU layers narrowing towards the
output), wider because the input has thousands of features (e.g. 40 mel bands x ~100 frames,
versus 784 pixels) and Speech Commands has 35 classes rather than 10."""

CONVNET_BLOCKS = {"conv2": (64,), "conv4": (64, 128), "conv6": (64, 128, 256)}
"""Conv-2/4/6 (Frankle & Carbin 2019, Fig. 2): per block, two 3x3 convs of this width and a
2x2 max pool."""

CONVNET_HIDDEN = (256, 256)
"""Conv-2/4/6 fully-connected hidden widths (Frankle & Carbin 2019, Fig. 2: "FC 256, 256,
10")."""

VGG_CFGS = {
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
              512, 512, 512),
    "vgg19": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512,
              POOL, 512, 512, 512, 512),
}
"""VGG conv widths in CIFAR form (global average pool, one linear output layer).

vgg16: Simonyan & Zisserman 2015, Table 1 column D. Li et al. 2017 (Sec. 4.1, Table 2) end
VGG-16 with a fifth max pool and two linear layers (512, 10) instead of our global average
pool and one linear layer; the 13 convolutions, and so filter pruning and conv multiply-adds,
are the same.
vgg19: as in Frankle & Carbin 2019, Fig. 2: "2x64 pool 2x128 pool 4x256 pool 4x512 pool 4x512
avg-pool 10" (Simonyan & Zisserman 2015, Table 1 column E)."""

CIFAR_RESNET_BLOCKS = {"resnet14": 2, "resnet20": 3, "resnet32": 5, "resnet44": 7,
                       "resnet56": 9}
"""The CIFAR ResNets of depth 6n+2 (He et al. 2016, Sec. 4.2): name -> n, the basic blocks of
each of the three stages (16, 32, 64 filters). ResNet-20/32/44/56 are the paper's (Table 6);
ResNet-14 (n=2) is the shallowest one with a block beside block 1 of each stage, which a
depth transfer (Chen et al. 2021) keeps as it is, to replicate or drop."""

RESNET_STAGES = {**{name: ((16, n), (32, n), (64, n)) for name, n in CIFAR_RESNET_BLOCKS.items()},
                 "resnet18": ((64, 2), (128, 2), (256, 2), (512, 2))}
"""CIFAR ResNets: (filters, basic blocks) per stage. resnet18 is He et al. 2016's ImageNet
ResNet-18 (Table 1, "18-layer") in CIFAR form (lth.core.models.resnet)."""

MODEL_NAMES = (*MLP_HIDDEN, *CONVNET_BLOCKS, *VGG_CFGS, *RESNET_STAGES)
"""The networks with a fixed name (the config schema's enum of experiment.model); besides them,
every name MLP_FAMILY_PATTERN matches."""

MLP_FAMILY_PATTERN = r"^mlp([1-9][0-9]*)x([1-9][0-9]*)$"
"""mlp<W>x<D>: D hidden fully-connected layers of equal width W (inputs -> W, (D-1) x W -> W,
W -> classes), the MLPs whose depth a ticket transfer can change (Chen et al. 2021; their
mnist_lenet_300_300_300). A regular expression for the config schema as well."""

BATCHNORM_MODELS = frozenset({*VGG_CFGS, *RESNET_STAGES})
"""Networks with BatchNorm, trained without dropout."""

INITS = ("glorot", "kaiming_fan_in", "kaiming_fan_out")
"""The weight initialisers (lth.core.models.INITIALISERS; the config's train.init)."""


@dataclass(frozen=True)
class Layer:
    """One prunable weight: its name in the model, its kind (conv, shortcut: a ResNet's 1x1
    projection, fc, output: the last linear layer), its shape."""

    name: str
    kind: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _linear_layers(in_features: int, hidden: tuple[int, ...], num_classes: int) -> list[Layer]:
    layers = []
    for index, width in enumerate(hidden, start=1):
        layers.append(Layer(f"fc{index}.weight", "fc", (width, in_features)))
        in_features = width
    return [*layers, Layer("output.weight", "output", (num_classes, in_features))]


def _conv(name: str, out_channels: int, in_channels: int, kernel: int = 3,
          kind: str = "conv") -> Layer:
    return Layer(f"{name}.weight", kind, (out_channels, in_channels, kernel, kernel))


def require_image(subject: str, input_shape: tuple[int, ...], pools: int) -> None:
    """Raise unless input_shape is (channels, height, width) surviving `pools` 2x2 pools; the
    message begins with `subject` (the network)."""
    if len(input_shape) != 3 or min(input_shape[1:]) < 2**pools:
        side = 2**pools
        raise LthError(f"{subject} needs images (channels, height, width) of at least "
                       f"{side}x{side}, got inputs of shape {tuple(input_shape)}")


def _convnet_layers(blocks, input_shape, num_classes) -> list[Layer]:
    channels, height, width = input_shape
    layers = []
    for width_out in (w for w in blocks for _ in range(2)):
        layers.append(_conv(f"conv{len(layers) + 1}", width_out, channels))
        channels = width_out
    side = 2 ** len(blocks)
    flat = channels * (height // side) * (width // side)
    return layers + _linear_layers(flat, CONVNET_HIDDEN, num_classes)


def _vgg_layers(cfg, in_channels: int, num_classes: int) -> list[Layer]:
    layers, channels = [], in_channels
    for width in (item for item in cfg if item != POOL):
        layers.append(_conv(f"conv{len(layers) + 1}", width, channels))
        channels = width
    return [*layers, Layer("output.weight", "output", (num_classes, channels))]


def _resnet_layers(stages, in_channels: int, num_classes: int) -> list[Layer]:
    channels = stages[0][0]
    layers = [_conv("conv", channels, in_channels)]
    for stage, (width, blocks) in enumerate(stages, start=1):
        for block in range(1, blocks + 1):
            prefix = f"stage{stage}.block{block}"
            strided = stage > 1 and block == 1
            layers += [_conv(f"{prefix}.conv1", width, channels),
                       _conv(f"{prefix}.conv2", width, width)]
            if strided or channels != width:
                layers.append(_conv(f"{prefix}.shortcut.conv", width, channels, kernel=1,
                                    kind="shortcut"))
            channels = width
    return [*layers, Layer("output.weight", "output", (num_classes, channels))]


def mlp_family_hidden(model: str) -> tuple[int, ...] | None:
    """The hidden widths (W,) * D of an mlp<W>x<D>; None for any other name."""
    match = re.fullmatch(MLP_FAMILY_PATTERN, model)
    return (int(match[1]),) * int(match[2]) if match else None


def is_model(model: str) -> bool:
    """Whether lth.core.models.build_model knows `model` (built in or an installed plug-in)."""
    from lth.plan import plugins

    return plugins.is_builtin_model(model) or plugins.is_model_plugin(model)


def require_model(model: str) -> None:
    """Raise LthError naming the known networks unless `model` is one of them."""
    if not is_model(model):
        raise LthError(f"model: expected one of {', '.join(MODEL_NAMES)} or mlp<W>x<D>, "
                       f"got {model!r}")


def density_level(density: float) -> str:
    """The level of a network pruned to a target `density` (at init, mined, drawn during
    training): density<D>, D in %g format (0.05 -> density0.05)."""
    return f"density{float(density):g}"


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (Python's round() rounds halves to even): how
    every method counts the weights, channels or filters it keeps, and how the config checks
    count them before any training."""
    return math.floor(x + 0.5)


def prunable_layers(model: str, input_shape: tuple[int, ...], num_classes: int) -> list[Layer]:
    """The prunable weights of `model` (lth.core.models.build_model) on inputs of input_shape, in
    the order of lth.core.models.prunable_names; LthError if the inputs do not suit the model."""
    require_model(model)
    input_shape = tuple(input_shape)
    hidden = MLP_HIDDEN.get(model) or mlp_family_hidden(model)
    if hidden:
        return _linear_layers(math.prod(input_shape), hidden, num_classes)
    if model in CONVNET_BLOCKS:
        require_image(model, input_shape, len(CONVNET_BLOCKS[model]))
        return _convnet_layers(CONVNET_BLOCKS[model], input_shape, num_classes)
    if model in VGG_CFGS:
        require_image(model, input_shape, VGG_CFGS[model].count(POOL))
        return _vgg_layers(VGG_CFGS[model], input_shape[0], num_classes)
    if model in RESNET_STAGES:
        require_image(model, input_shape, len(RESNET_STAGES[model]) - 1)
        return _resnet_layers(RESNET_STAGES[model], input_shape[0], num_classes)
    from lth.plan import plugins

    return plugins.model_layers(model, input_shape, num_classes)


def vgg_conv_widths(model: str) -> list[int]:
    """Filters of conv1, conv2, ... of a VGG (what filter pruning removes)."""
    return [item for item in VGG_CFGS[model] if item != POOL]


# ---------------------------------------------------------------- schedules


def schedule_problems(s) -> list[tuple[str, str]]:
    """(setting, what is wrong) for every rule a training schedule breaks.

    `s` is an lth.plan.spec.Schedule (or anything with its fields). The first problem is the one
    to report: later rules assume the earlier ones hold.
    """
    for key in ("iterations", "batch_size", "eval_every", "eval_batch_size"):
        if getattr(s, key) < 1:
            return [(key, f"expected a positive integer, got {getattr(s, key)}")]
    if s.optimizer not in ("sgd", "adam"):
        return [("optimizer", f"expected sgd or adam, got {s.optimizer!r}")]
    ranges = {"lr": (s.lr > 0, "> 0"), "weight_decay": (s.weight_decay >= 0, ">= 0"),
              "momentum": (0 <= s.momentum < 1, "in [0, 1)"),
              "gamma": (0 < s.gamma <= 1, "in (0, 1]"),
              "dropout": (0 <= s.dropout < 1, "in [0, 1)"), "warmup": (s.warmup >= 0, ">= 0")}
    problems = [(key, f"expected {expected}, got {getattr(s, key)}")
                for key, (ok, expected) in ranges.items() if not ok]
    return problems + _milestone_problems(s) + _schedule_relations(s)


def _milestone_problems(s) -> list[tuple[str, str]]:
    """Milestones increase strictly inside the training; at gamma 1 they would do nothing."""
    previous = 0
    for index, milestone in enumerate(s.milestones):
        if milestone >= s.iterations:
            return [(f"milestones.{index}",
                     f"{milestone} is not before the end of training ({s.iterations} "
                     f"iterations)")]
        if milestone <= previous:
            return [(f"milestones.{index}", f"{milestone} does not come after {previous}")]
        previous = milestone
    if s.milestones and s.gamma == 1:
        return [("gamma", f"1 makes the milestones {list(s.milestones)} change nothing")]
    return []


def _schedule_relations(s) -> list[tuple[str, str]]:
    """Warmup, evaluation cadence and the optimizer's settings agree with each other."""
    problems = []
    if s.warmup > s.iterations:
        problems.append(("warmup", f"{s.warmup} is beyond the {s.iterations} training "
                                   f"iterations"))
    if s.eval_every > s.iterations:
        problems.append(("eval_every", f"{s.eval_every} is beyond the {s.iterations} training "
                                       f"iterations: only the start and the end would be "
                                       f"evaluated"))
    if s.nesterov and not (s.optimizer == "sgd" and s.momentum > 0):
        problems.append(("nesterov", f"true needs optimizer sgd with momentum > 0, got "
                                     f"{s.optimizer} with momentum {s.momentum}"))
    if s.optimizer == "adam" and s.momentum > 0:
        problems.append(("momentum", f"{s.momentum} is an SGD setting; adam does not use it "
                                     f"(set 0, or optimizer sgd)"))
    return problems
