"""Datasets: fetch the raw files, read them through torchvision/torchaudio, cache as tensors.

`prepare` runs once per dataset (a Snakemake rule). It makes the raw files available under
`root`, reads them through the real torchvision / torchaudio dataset classes and writes
`<root>/tensors.safetensors` (images as uint8, speech as float32 features) and
`<root>/manifest.json` (sha256 of every raw file, of the tensors, where the files came from and
the feature settings). `load_splits` is what every training job calls: it only reads the
safetensors file, so torchvision and torchaudio are imported inside the prepare-side
functions and never by a training job (importing them costs seconds per process).

Raw folders under root, as the dataset classes expect them:
  fashion_mnist   FashionMNIST/raw/            the 4 gz IDX files and their uncompressed copies
  mnist           MNIST/raw/                   the same for MNIST
  cifar10         cifar-10-batches-py/         data_batch_1..5, test_batch, batches.meta
  speech_commands SpeechCommands/speech_commands_v0.02/   word folders + the two split lists
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lth.io import (
    LthError,
    load_tensors,
    read_json,
    read_metadata,
    save_tensors,
    sha256_file,
    write_json,
)
from lth.seeding import generator

TENSORS_FILE = "tensors.safetensors"
MANIFEST_FILE = "manifest.json"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"

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
SPEECH_ARCHIVE_FOLDER = "SpeechCommands"
SPEECH_VERSION = "speech_commands_v0.02"
SPEECH_NOISE_FOLDER = "_background_noise_"
# Warden 2018 (arXiv:1804.03209): one-second clips at 16 kHz, 16-bit PCM mono WAV.
SPEECH_SAMPLE_RATE = 16000
SPEECH_SAMPLES = SPEECH_SAMPLE_RATE
SPEECH_FEATURE_KINDS = ("logmel", "mfcc")
# Clips turned into features at once; bounds memory only, the features do not depend on it.
SPEECH_CHUNK = 512
# He et al. 2016, Section 4.2: pad 4 pixels on each side, take a random 32x32 crop, flip.
CIFAR_PAD = 4
AUGMENTED_DATASETS = frozenset({"cifar10"})


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    input_shape is None only in DATASETS["speech_commands"]: it depends on the feature
    settings; `dataset_info(name, speech)` and `Splits.info` always give the full shape.
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


def check_speech_features(features: SpeechFeatures) -> None:
    """Raise LthError naming the first speech feature setting that is out of range."""
    if features.kind not in SPEECH_FEATURE_KINDS:
        raise LthError(f"speech features kind: expected one of {SPEECH_FEATURE_KINDS}, "
                       f"got {features.kind!r}")
    for key in ("n_fft", "win_length", "hop_length", "n_mels"):
        value = getattr(features, key)
        if not isinstance(value, int) or value < 1:
            raise LthError(f"speech features {key}: expected a positive integer, got {value!r}")
    if features.win_length > features.n_fft:
        raise LthError(f"speech features win_length: expected <= n_fft ({features.n_fft}), "
                       f"got {features.win_length}")
    if features.kind == "logmel" and features.n_mfcc is not None:
        raise LthError(f"speech features n_mfcc: expected null for kind 'logmel', "
                       f"got {features.n_mfcc!r}")
    if features.kind == "mfcc" and not (
        isinstance(features.n_mfcc, int) and 1 <= features.n_mfcc <= features.n_mels
    ):
        raise LthError(f"speech features n_mfcc: expected an integer in 1..n_mels "
                       f"({features.n_mels}) for kind 'mfcc', got {features.n_mfcc!r}")


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


# ---------------------------------------------------------------- prepare


def prepare(
    name: str,
    root: str | os.PathLike,
    *,
    source: str | os.PathLike | None = None,
    download: bool,
    speech: SpeechFeatures | None,
    debian_dir: Path = DEBIAN_FASHION_MNIST,
) -> dict:
    """Make `name` available under root as tensors + manifest; return the manifest.

    Does nothing if the manifest asks for the same dataset and features and every hash in it
    still matches the files (delete root to fetch the files again from elsewhere).
    """
    info = dataset_info(name, speech)
    root = Path(root)
    request = {"dataset": name, "features": asdict(speech) if speech else None}
    if _is_prepared(root, request):
        return read_json(root / MANIFEST_FILE)
    root.mkdir(parents=True, exist_ok=True)
    source_used = _obtain_raw_files(name, root, _optional_path(source), download, debian_dir)
    tensors, classes = _read_raw_files(name, root, speech)
    _check_tensors(info, tensors)
    save_tensors(root / TENSORS_FILE, tensors, metadata=request)
    manifest = {
        **request,
        "source": source_used,
        "classes": classes,
        "files": _hash_files(root, _raw_folder(name)),
        "tensors": sha256_file(root / TENSORS_FILE),
    }
    write_json(root / MANIFEST_FILE, manifest)
    return manifest


def _optional_path(path: str | os.PathLike | None) -> Path | None:
    return None if path is None else Path(path)


def _raw_folder(name: str) -> Path:
    """The folder, relative to root, that the dataset class reads."""
    folders = {
        "fashion_mnist": Path("FashionMNIST", "raw"),
        "mnist": Path("MNIST", "raw"),
        "cifar10": Path("cifar-10-batches-py"),
        "speech_commands": Path(SPEECH_ARCHIVE_FOLDER, SPEECH_VERSION),
    }
    return folders[name]


def _is_prepared(root: Path, request: dict) -> bool:
    """True if the manifest matches the request and every hash in it matches its file."""
    manifest_path, tensors_path = root / MANIFEST_FILE, root / TENSORS_FILE
    if not (manifest_path.is_file() and tensors_path.is_file()):
        return False
    try:
        manifest = read_json(manifest_path)
    except LthError:
        return False
    if any(manifest.get(key) != value for key, value in request.items()):
        return False
    if manifest.get("tensors") != sha256_file(tensors_path):
        return False
    files = manifest.get("files") or {}
    return bool(files) and all(
        (root / rel).is_file() and sha256_file(root / rel) == digest
        for rel, digest in files.items()
    )


def _hash_files(root: Path, folder: Path) -> dict[str, str]:
    """{path relative to root: sha256} of every file under root/folder (a linked top too)."""
    hashes = {}
    for here, _dirs, names in os.walk(root / folder):
        for file_name in names:
            path = Path(here, file_name)
            hashes[path.relative_to(root).as_posix()] = sha256_file(path)
    return dict(sorted(hashes.items()))


def _holds(folder: Path | None, names: tuple[str, ...]) -> bool:
    return folder is not None and all((folder / n).is_file() for n in names)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _obtain_raw_files(
    name: str, root: Path, source: Path | None, download: bool, debian_dir: Path
) -> dict:
    """Put the raw files under root by the first way that works; return which way it was.

    Ways, in order: the configured source folder, the torchvision/torchaudio download, and
    (fashion_mnist only) the folder of the Debian package dataset-fashion-mnist.
    """
    needed = _source_files(name)
    if _holds(source, needed):
        _install_from_folder(name, root, source)
        return {"way": "folder", "path": str(source)}
    if download:
        try:
            _download(name, root)
            return {"way": "download", "path": None}
        except (OSError, RuntimeError, tarfile.TarError) as err:
            download_failure = f"failed: {_one_line(err)}"
    else:
        download_failure = "not allowed (download=False)"
    if name == "fashion_mnist" and _holds(debian_dir, needed):
        _install_from_folder(name, root, debian_dir)
        return {"way": "debian", "path": str(debian_dir)}
    raise LthError(_no_way_message(name, source, needed, download_failure, debian_dir))


def _no_way_message(
    name: str, source: Path | None, needed: tuple[str, ...], download_failure: str,
    debian_dir: Path,
) -> str:
    """One line naming every way to get the files and why each did not work."""
    where = "not set" if source is None else f"{source} lacks some of them"
    ways = [
        f"(1) a source folder holding {', '.join(needed)} ({where})",
        f"(2) the torchvision/torchaudio download ({download_failure})",
    ]
    if name == "fashion_mnist":
        ways.append(f"(3) `apt-get install {DEBIAN_PACKAGE}` ({debian_dir} lacks the files)")
    return f"dataset {name}: no way to get the raw files worked; use " + "; or ".join(ways)


def _source_files(name: str) -> tuple[str, ...]:
    """Files a source folder must hold for `name`."""
    if name in ("fashion_mnist", "mnist"):
        return IDX_GZ_FILES
    if name == "cifar10":
        return CIFAR_FILES
    return SPEECH_LIST_FILES


def _install_from_folder(name: str, root: Path, folder: Path) -> None:
    """Lay out a local folder's files under root the way the dataset class expects."""
    target = root / _raw_folder(name)
    if name in ("fashion_mnist", "mnist"):
        _install_idx_gz(folder, target)
    elif name == "cifar10":
        target.mkdir(parents=True, exist_ok=True)
        for file_name in CIFAR_FILES:
            shutil.copyfile(folder / file_name, target / file_name)
    else:
        _link_speech_folder(folder, target)


def _install_idx_gz(folder: Path, raw: Path) -> None:
    """Copy the gz IDX files into raw/ and decompress them there (torchvision reads those)."""
    raw.mkdir(parents=True, exist_ok=True)
    for gz_name in IDX_GZ_FILES:
        shutil.copyfile(folder / gz_name, raw / gz_name)
        try:
            with gzip.open(folder / gz_name, "rb") as packed, open(raw / gz_name[:-3], "wb") as out:
                shutil.copyfileobj(packed, out)
        except (OSError, EOFError) as err:
            raise LthError(
                f"{folder / gz_name}: not a readable gzip file ({_one_line(err)})"
            ) from None


def _link_speech_folder(folder: Path, target: Path) -> None:
    """Link root's speech folder to the source (2.3 GB, 105,829 files: no copy)."""
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        raise LthError(f"{target}: already holds a Speech Commands folder; remove it to use "
                       f"source {folder}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(folder.resolve(), target_is_directory=True)


def _download(name: str, root: Path) -> None:
    """Let torchvision / torchaudio download and unpack the official files into root."""
    if name == "speech_commands":
        from torchaudio.datasets import SPEECHCOMMANDS

        SPEECHCOMMANDS(root, url=SPEECH_VERSION, folder_in_archive=SPEECH_ARCHIVE_FOLDER,
                       download=True)
    else:
        _torchvision_class(name)(root, train=True, download=True)


def _torchvision_class(name: str):
    import torchvision.datasets as tvd

    return {"fashion_mnist": tvd.FashionMNIST, "mnist": tvd.MNIST, "cifar10": tvd.CIFAR10}[name]


def _read_raw_files(
    name: str, root: Path, speech: SpeechFeatures | None
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Tensors and class names read from root through the dataset's own class."""
    try:
        if name == "speech_commands":
            return _read_speech_commands(root, speech)
        return _read_torchvision(name, root)
    except (RuntimeError, AssertionError, TypeError, ValueError, OSError, EOFError,
            wave.Error) as err:
        raise LthError(f"{root / _raw_folder(name)}: not readable as {name} "
                       f"({_one_line(err)})") from None


def _read_torchvision(name: str, root: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """uint8 (N, C, H, W) images and int64 labels via torchvision's dataset class.

    CIFAR10 checks the md5 of the official files and unpickles them itself (its format).
    """
    cls = _torchvision_class(name)
    tensors = {}
    for split, train in (("train", True), ("test", False)):
        dataset = cls(root, train=train, download=False)
        tensors[f"{split}_x"] = _images_nchw(dataset.data)
        tensors[f"{split}_y"] = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return tensors, list(dataset.classes)


def _images_nchw(data) -> torch.Tensor:
    """(N, H, W) uint8 tensor (MNIST) or (N, H, W, C) uint8 array (CIFAR) -> (N, C, H, W)."""
    images = torch.as_tensor(data)
    if images.dim() == 3:
        return images.unsqueeze(1).contiguous()
    return images.permute(0, 3, 1, 2).contiguous()


def _read_speech_commands(
    root: Path, features: SpeechFeatures
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Features and labels of the official training/validation/testing subsets.

    torchaudio's SPEECHCOMMANDS gives the file lists, splits and labels (get_metadata);
    its waveform loading goes through torchaudio.load, which in torchaudio 2.11 needs
    torchcodec/FFmpeg, so the 16-bit PCM WAVs are decoded with the stdlib `wave` module.
    """
    from torchaudio.datasets import SPEECHCOMMANDS

    classes = _speech_classes(root / _raw_folder("speech_commands"))
    index = {word: i for i, word in enumerate(classes)}
    transform = _speech_transform(features)
    tensors = {}
    for split, subset in (("train", "training"), ("val", "validation"), ("test", "testing")):
        dataset = SPEECHCOMMANDS(root, url=SPEECH_VERSION, folder_in_archive=SPEECH_ARCHIVE_FOLDER,
                                 download=False, subset=subset)
        metadata = [dataset.get_metadata(n) for n in range(len(dataset))]
        paths = [root / SPEECH_ARCHIVE_FOLDER / relpath for relpath, *_ in metadata]
        tensors[f"{split}_x"] = _speech_features(paths, transform)
        tensors[f"{split}_y"] = torch.tensor([index[label] for _, _, label, *_ in metadata],
                                             dtype=torch.int64)
    return tensors, classes


def _speech_classes(folder: Path) -> list[str]:
    """Sorted word folders; their number must be the fixed class count of the dataset."""
    classes = sorted(p.name for p in folder.iterdir()
                     if p.is_dir() and p.name != SPEECH_NOISE_FOLDER)
    expected = DATASETS["speech_commands"].num_classes
    if len(classes) != expected:
        raise LthError(f"{folder}: expected {expected} word folders ({SPEECH_VERSION}), "
                       f"found {len(classes)}")
    return classes


def _speech_transform(features: SpeechFeatures) -> torch.nn.Module:
    """Waveforms (B, 1, samples) -> (B, 1, n_features, frames), log-mel in dB or MFCC."""
    import torchaudio.transforms as tat

    mel = {"n_fft": features.n_fft, "win_length": features.win_length,
           "hop_length": features.hop_length, "n_mels": features.n_mels}
    if features.kind == "mfcc":
        return tat.MFCC(sample_rate=SPEECH_SAMPLE_RATE, n_mfcc=features.n_mfcc, melkwargs=mel)
    return torch.nn.Sequential(tat.MelSpectrogram(sample_rate=SPEECH_SAMPLE_RATE, **mel),
                               tat.AmplitudeToDB(stype="power"))


def _speech_features(paths: list[Path], transform: torch.nn.Module) -> torch.Tensor:
    """(N, n_features, frames) float32 features of the clips, computed chunk by chunk.

    The channel axis of size 1 keeps torchaudio's dB floor (top_db) per clip, not per chunk.
    """
    chunks = []
    for start in range(0, len(paths), SPEECH_CHUNK):
        waves = torch.stack([_read_wav(p) for p in paths[start : start + SPEECH_CHUNK]])
        with torch.no_grad():
            chunks.append(transform(waves.unsqueeze(1)).squeeze(1))
    return torch.cat(chunks).float()


def _read_wav(path: Path) -> torch.Tensor:
    """One 16 kHz 16-bit mono WAV as float32 in [-1, 1), zero-padded or cut to one second."""
    with wave.open(str(path), "rb") as wav:
        layout = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
        if layout != (1, 2, SPEECH_SAMPLE_RATE):
            raise LthError(f"{path}: expected mono 16-bit {SPEECH_SAMPLE_RATE} Hz WAV, got "
                           f"channels, bytes per sample, rate = {layout}")
        pcm = wav.readframes(wav.getnframes())
    samples = torch.from_numpy(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)
    return torch.nn.functional.pad(samples[:SPEECH_SAMPLES],
                                   (0, SPEECH_SAMPLES - min(len(samples), SPEECH_SAMPLES)))


def _check_tensors(info: DatasetInfo, tensors: dict[str, torch.Tensor]) -> None:
    """Shapes match the DatasetInfo and every label is a valid class index."""
    for split in ("train", "val", "test"):
        if f"{split}_x" not in tensors:
            continue
        x, y = tensors[f"{split}_x"], tensors[f"{split}_y"]
        if tuple(x.shape[1:]) != info.input_shape or len(x) != len(y) or len(x) == 0:
            raise LthError(f"dataset {info.name} {split}: expected N x {info.input_shape} inputs "
                           f"with N labels, N > 0, got {tuple(x.shape)} and {len(y)} labels")
        if y.min() < 0 or y.max() >= info.num_classes:
            raise LthError(f"dataset {info.name} {split}: labels outside 0..{info.num_classes - 1}")


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
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


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
