"""Prepare a dataset: fetch its raw files, read them through torchvision/torchaudio, cache
them as tensors (the `prepare` verb; lth.core.data.prepare calls it).

`prepare` runs once per dataset (a Snakemake rule). It makes the raw files available under
`root`, reads them through the real torchvision / torchaudio dataset classes and writes
`<root>/tensors.safetensors` (images as uint8, speech as float32 features) and
`<root>/manifest.json` (sha256 of every raw file, of the tensors, where the files came from and
the feature settings), which lth.core.data.load_splits reads. torchvision and torchaudio are
imported inside the functions that use them (importing them costs seconds per process).

The facts about each dataset (shapes, classes, raw file names) are in lth.plan.catalog, which the
config checks read without importing torch. Raw folders under root, as the dataset classes
expect them:
  fashion_mnist   FashionMNIST/raw/            the 4 gz IDX files and their uncompressed copies
  mnist           MNIST/raw/                   the same for MNIST
  cifar10         cifar-10-batches-py/         data_batch_1..5, test_batch, batches.meta
  speech_commands SpeechCommands/speech_commands_v0.02/   word folders + the two split lists
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tarfile
import tempfile
import wave
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from lth.core.data import MANIFEST_FILE, TENSORS_FILE
from lth.core.io import LthError, read_json, save_tensors, sha256_file, write_json
from lth.plan.catalog import (
    CIFAR_FILES,
    DATASETS,
    DEBIAN_FASHION_MNIST,
    DEBIAN_PACKAGE,
    IDX_GZ_FILES,
    SOURCE_FILES,
    SPEECH_SAMPLE_RATE,
    SPEECH_SAMPLES,
    DatasetInfo,
    SpeechFeatures,
    dataset_info,
    idx_shape,
    source_folder_problem,
)

SPEECH_ARCHIVE_FOLDER = "SpeechCommands"
SPEECH_VERSION = "speech_commands_v0.02"
SPEECH_NOISE_FOLDER = "_background_noise_"
# Clips turned into features at once; bounds memory only, the features do not depend on it.
SPEECH_CHUNK = 512


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
    still matches the files (delete root to fetch the files again from elsewhere). A source
    folder that is given must hold the dataset's files, prepared or not: a source that cannot
    be used is an error, never a reason to take the files from elsewhere.
    """
    info = dataset_info(name, speech)
    root = Path(root)
    source = _usable_source(name, source)
    request = {"dataset": name, "features": asdict(speech) if speech else None}
    if _is_prepared(root, request):
        return read_json(root / MANIFEST_FILE)
    root.mkdir(parents=True, exist_ok=True)
    source_used = _obtain_raw_files(name, root, source, download, debian_dir)
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


def _usable_source(name: str, source: str | os.PathLike | None) -> Path | None:
    """The source folder as a Path (None if not given); LthError if it cannot be used."""
    if source is None:
        return None
    problem = source_folder_problem(name, source)
    if problem:
        raise LthError(f"dataset {name}: source folder {problem}")
    return Path(source)


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


def _holds(folder: Path, names: tuple[str, ...]) -> bool:
    return all((folder / n).is_file() for n in names)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _obtain_raw_files(
    name: str, root: Path, source: Path | None, download: bool, debian_dir: Path
) -> dict:
    """Put the raw files under root by the first way that works; return which way it was.

    A given source folder is the only way tried. Without one: the torchvision/torchaudio
    download, then (fashion_mnist only) the folder of the Debian package dataset-fashion-mnist.
    """
    if source is not None:
        _install_from_folder(name, root, source)
        return {"way": "folder", "path": str(source)}
    needed = SOURCE_FILES[name]
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
    raise LthError(_no_way_message(name, needed, download_failure, debian_dir))


def _no_way_message(
    name: str, needed: tuple[str, ...], download_failure: str, debian_dir: Path
) -> str:
    """One line naming every way to get the files and why each did not work."""
    ways = [
        f"(1) a source folder holding {', '.join(needed)} (not set)",
        f"(2) the torchvision/torchaudio download ({download_failure})",
    ]
    if name == "fashion_mnist":
        ways.append(f"(3) `apt-get install {DEBIAN_PACKAGE}` ({debian_dir} lacks the files)")
    return f"dataset {name}: no way to get the raw files worked; use " + "; or ".join(ways)


def _install_from_folder(name: str, root: Path, folder: Path) -> None:
    """Lay out a local folder's files under root the way the dataset class expects, once
    they have proven whole: a truncated or corrupt file is named and root stays as it was."""
    target = root / _raw_folder(name)
    if name in ("fashion_mnist", "mnist"):
        _install_idx_gz(folder, root, target)
    elif name == "cifar10":
        _check_official_cifar_files(folder)
        target.mkdir(parents=True, exist_ok=True)
        for file_name in CIFAR_FILES:
            shutil.copyfile(folder / file_name, target / file_name)
    else:
        _link_speech_folder(folder, target)


def _install_idx_gz(folder: Path, root: Path, raw: Path) -> None:
    """Copy the gz IDX files into raw/ and decompress them there (torchvision reads those).

    Every file is unpacked into a scratch folder and checked first (IDX header against its
    length, as many labels as images); raw/ is only written once all four are whole.
    """
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        items = {}
        for gz_name in IDX_GZ_FILES:
            unpacked = Path(scratch, gz_name[:-3])
            _unpack_gz(folder / gz_name, unpacked)
            items[gz_name] = _idx_items(unpacked, folder / gz_name)
        for split in ("train", "t10k"):
            images, labels = f"{split}-images-idx3-ubyte.gz", f"{split}-labels-idx1-ubyte.gz"
            if items[images] != items[labels]:
                raise LthError(f"{folder / labels}: {items[labels]} labels for the "
                               f"{items[images]} images of {images}")
        raw.mkdir(parents=True, exist_ok=True)
        for gz_name in IDX_GZ_FILES:
            shutil.copyfile(folder / gz_name, raw / gz_name)
            os.replace(Path(scratch, gz_name[:-3]), raw / gz_name[:-3])


def _unpack_gz(packed: Path, out: Path) -> None:
    """Decompress a gz file; LthError naming it if it is not whole."""
    try:
        with gzip.open(packed, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as err:
        raise LthError(f"{packed}: not a readable gzip file ({_one_line(err)})") from None


def _idx_items(unpacked: Path, origin: Path) -> int:
    """Items (images or labels) of an unpacked IDX file; LthError naming `origin` unless its
    header is an unsigned-byte IDX header (3 dimensions for images, 1 for labels) and the
    file holds exactly the bytes the header announces."""
    dims = 3 if "-images-" in origin.name else 1
    with open(unpacked, "rb") as fh:
        header = fh.read(4 + 4 * dims)
    shape = idx_shape(header, dims)
    if shape is None:
        raise LthError(f"{origin}: not an IDX file of unsigned bytes with {dims} "
                       f"dimension{'s' if dims > 1 else ''} (header {header[:4].hex()})")
    expected, held = len(header) + math.prod(shape), unpacked.stat().st_size
    if held != expected:
        raise LthError(f"{origin}: truncated or corrupt: its IDX header announces {shape} "
                       f"({expected} bytes unpacked), it holds {held} bytes")
    return shape[0]


def _check_official_cifar_files(folder: Path) -> None:
    """LthError naming the first file whose md5 is not that of the official CIFAR-10 release
    (the md5s torchvision's CIFAR10 checks): a truncated or corrupt batch."""
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10
    expected = dict(cls.train_list + cls.test_list) | {cls.meta["filename"]: cls.meta["md5"]}
    for file_name in CIFAR_FILES:
        digest = hashlib.md5((folder / file_name).read_bytes(), usedforsecurity=False)
        if digest.hexdigest() != expected[file_name]:
            raise LthError(f"{folder / file_name}: not the official CIFAR-10 file (md5 "
                           f"{digest.hexdigest()}, expected {expected[file_name]}): truncated "
                           f"or corrupt")


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
    """One 16 kHz 16-bit mono WAV as float32 in [-1, 1), zero-padded or cut to one second.

    LthError naming the file if it cannot be read, is not in that layout, or holds fewer
    samples than its header announces (truncated).
    """
    try:
        with wave.open(str(path), "rb") as wav:
            layout = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
            announced = wav.getnframes()
            pcm = wav.readframes(announced)
    except (wave.Error, EOFError, OSError) as err:
        raise LthError(f"{path}: not a readable WAV file ({_one_line(err)})") from None
    if layout != (1, 2, SPEECH_SAMPLE_RATE):
        raise LthError(f"{path}: expected mono 16-bit {SPEECH_SAMPLE_RATE} Hz WAV, got "
                       f"channels, bytes per sample, rate = {layout}")
    if len(pcm) != 2 * announced:
        raise LthError(f"{path}: truncated: its header announces {announced} samples, it "
                       f"holds {len(pcm) // 2}")
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
