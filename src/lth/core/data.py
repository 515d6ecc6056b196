"""Datasets as training reads them: the cached tensors split, normalised and augmented.

`load_splits` is what every training job calls: it only reads `<root>/tensors.safetensors`,
which the `prepare` verb writes once per dataset (lth.core.prepare: the raw files fetched and
read through torchvision/torchaudio, with `<root>/manifest.json`). Neither torchvision nor
torchaudio nor the raw-file code is imported by a training job (importing them costs seconds
per process).

The facts about each dataset (shapes, classes, raw file names) are in lth.plan.catalog, which the
config checks read without importing torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lth.core.io import LthError, load_tensors, read_metadata
from lth.core.seeding import generator
from lth.plan.catalog import AUGMENTED_DATASETS, DATASETS, DatasetInfo

# the dataset facts live in lth.plan.catalog (torch-free, shared with the config checks); these
# names stay importable from lth.core.data, where the verbs and the tests use them
from lth.plan.catalog import SPEECH_LIST_FILES as SPEECH_LIST_FILES
from lth.plan.catalog import SpeechFeatures as SpeechFeatures
from lth.plan.catalog import check_speech_features as check_speech_features
from lth.plan.catalog import speech_input_shape as speech_input_shape

TENSORS_FILE = "tensors.safetensors"
MANIFEST_FILE = "manifest.json"

# He et al. 2016, Section 4.2: pad 4 pixels on each side, take a random 32x32 crop, flip.
CIFAR_PAD = 4


@dataclass
class Splits:
    """Train/validation/test tensors on the training device, inputs normalised."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    info: DatasetInfo
    augment: bool


# ---------------------------------------------------------------- prepare


def prepare(name: str, root: str | os.PathLike, **options) -> dict:
    """Make dataset `name` available under root as tensors + manifest; return the manifest
    (lth.core.prepare.prepare, which takes the options). Imported only when called, so a
    training job never loads the raw-file code."""
    from lth.core.prepare import prepare as prepare_dataset

    return prepare_dataset(name, root, **options)


# ---------------------------------------------------------------- load


def load_splits(root: str | os.PathLike, val_size: int | None, device) -> Splits:
    """Normalised splits from <root>/tensors.safetensors, on device.

    Image datasets: val_size training examples are held out as validation by a fixed
    permutation (Frankle & Carbin 2019, Appendix G, hold out 5,000 of MNIST's 60,000).
    speech_commands has its official validation list (Warden 2018, Section 7): val_size must
    be None. Inputs are scaled to [0, 1] if stored as uint8, then each channel is normalised
    with the mean and std of the training split that remains.
    """
    path = Path(root) / TENSORS_FILE
    name = read_metadata(path).get("dataset")
    if name not in DATASETS:
        raise LthError(f"{path}: no known dataset name in its metadata (got {name!r})")
    tensors = load_tensors(path, "cpu")
    _require_keys(path, tensors)
    train_x, train_y, val_x, val_y = _train_and_validation(path, name, tensors, val_size)
    splits = [_as_float(x) for x in (train_x, val_x, tensors["test_x"])]
    mean, std = _channel_stats(path, splits[0])
    for x in splits:
        x.sub_(mean).div_(std)
    info = DatasetInfo(name, tuple(train_x.shape[1:]), DATASETS[name].num_classes)
    return Splits(
        train_x=splits[0].to(device), train_y=train_y.to(device),
        val_x=splits[1].to(device), val_y=val_y.to(device),
        test_x=splits[2].to(device), test_y=tensors["test_y"].to(device),
        info=info, augment=name in AUGMENTED_DATASETS,
    )


def _require_keys(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    missing = {"train_x", "train_y", "test_x", "test_y"} - tensors.keys()
    if missing:
        raise LthError(f"{path}: missing tensors {sorted(missing)}")


def _train_and_validation(
    path: Path, name: str, tensors: dict[str, torch.Tensor], val_size: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x, train_y, val_x, val_y): the stored official split or a seeded hold-out."""
    train_x, train_y = tensors["train_x"], tensors["train_y"]
    if "val_x" in tensors:
        if val_size is not None:
            raise LthError(f"val_size: expected null for {name} (it has an official "
                           f"validation split), got {val_size!r}")
        return train_x, train_y, tensors["val_x"], tensors["val_y"]
    if not isinstance(val_size, int) or not 1 <= val_size < len(train_x):
        raise LthError(f"val_size: expected an integer in 1..{len(train_x) - 1} (training "
                       f"examples in {path}), got {val_size!r}")
    order = torch.randperm(len(train_x), generator=generator(name, 0, "validation-split"))
    val_idx, train_idx = order[:val_size].sort().values, order[val_size:].sort().values
    return train_x[train_idx], train_y[train_idx], train_x[val_idx], train_y[val_idx]


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def _channel_stats(path: Path, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (dim 1) mean and std, shaped (1, C, 1, ...) to broadcast over inputs."""
    dims = [d for d in range(x.dim()) if d != 1]
    std, mean = torch.std_mean(x, dim=dims, correction=0, keepdim=True)
    constant = (std == 0).flatten().nonzero().flatten().tolist()
    if constant:
        raise LthError(f"{path}: input channels {constant} are constant over the training "
                       f"split; cannot normalise")
    return mean, std


# ---------------------------------------------------------------- augmentation


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding by CIFAR_PAD, then random horizontal flip, per example.

    He et al. 2016, Section 4.2. x is a normalised (B, C, H, W) batch, so zero padding is
    padding with the mean pixel. Offsets and flips are drawn on gen's device (CPU) and moved.
    """
    batch, _, height, width = x.shape
    span = 2 * CIFAR_PAD + 1
    dy = torch.randint(span, (batch,), generator=gen).to(x.device)
    dx = torch.randint(span, (batch,), generator=gen).to(x.device)
    flip = torch.randint(2, (batch,), generator=gen).bool().to(x.device)
    padded = torch.nn.functional.pad(x, (CIFAR_PAD,) * 4)
    rows = dy[:, None] + torch.arange(height, device=x.device)
    cols = dx[:, None] + torch.arange(width, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    gathered = padded.gather(2, rows[:, None, :, None].expand(-1, x.shape[1], -1, padded.shape[3]))
    return gathered.gather(3, cols[:, None, None, :].expand(-1, x.shape[1], height, -1))
