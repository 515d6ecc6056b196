"""Writers of small datasets in the real on-disk formats, shared by the tests."""

import contextlib
import gzip
import hashlib
import pickle
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def numbered_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random uint8 images whose first value is the image's index (identifies it later)."""
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    images.reshape(n, -1)[:, 0] = np.arange(n)
    return images


def write_idx_gz(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """IDX files as LeCun's MNIST page defines them: big-endian magic 2051/2049 and sizes."""
    n, rows, cols = images.shape
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">IIII", 2051, n, rows, cols) + images.tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


def learnable_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten noisy class templates (28x28 uint8): a small network learns them in a few steps."""
    rng = np.random.default_rng(1234)  # templates shared by every split
    templates = rng.integers(0, 256, (10, 28, 28))
    labels = np.random.default_rng(seed).integers(0, 10, n)
    noise = np.random.default_rng(seed + 1).normal(0, 60, (n, 28, 28))
    return np.clip(templates[labels] + noise, 0, 255).astype(np.uint8), labels


def write_learnable_idx_folder(folder: Path, n_train: int, n_test: int) -> Path:
    """The four gz IDX files of a small, learnable Fashion-MNIST stand-in."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx_gz(folder, "train", *learnable_images(n_train, seed=0))
    write_idx_gz(folder, "t10k", *learnable_images(n_test, seed=7))
    return folder


# ---------------------------------------------------------------- CIFAR-10


def write_cifar_batches(folder: Path, train: tuple[np.ndarray, np.ndarray],
                        test: tuple[np.ndarray, np.ndarray], classes: list[str]) -> Path:
    """CIFAR-10's python batches (Krizhevsky's format: pickled dicts, rows R|G|B planes):
    the training rows split over data_batch_1..5, test_batch and batches.meta.

    Writing this format needs pickle.dump; only torchvision's CIFAR10 class reads it back.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels = train
    batches = {f"data_batch_{k + 1}": (r, y) for k, (r, y) in
               enumerate(zip(np.array_split(rows, 5), np.array_split(labels, 5), strict=True))}
    batches["test_batch"] = test
    for name, (batch_rows, batch_labels) in batches.items():
        entry = {"batch_label": name, "data": batch_rows, "labels": batch_labels.tolist(),
                 "filenames": [f"{name}_{i}.png" for i in range(len(batch_rows))]}
        (folder / name).write_bytes(pickle.dumps(entry))
    meta = {"label_names": classes, "num_vis": 3072,
            "num_cases_per_batch": len(batches["data_batch_1"][0])}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def cifar_md5_attributes(folder: Path) -> dict[str, object]:
    """torchvision's CIFAR10 class attributes holding the official files' md5s, with the md5s
    of the generated files in `folder` instead.

    CIFAR10 refuses any file whose md5 differs from the official release (`_check_integrity`,
    `_load_meta`), and so does lth.core.prepare (it reads the same attributes). Generated
    batches cannot have those md5s; with these attributes set, everything else (file layout,
    unpickling, reshaping) is torchvision's real code.
    """
    import torchvision.datasets as tvd

    cls = tvd.CIFAR10
    return {"train_list": [[n, md5(folder / n)] for n, _ in cls.train_list],
            "test_list": [[n, md5(folder / n)] for n, _ in cls.test_list],
            "meta": {**cls.meta, "md5": md5(folder / "batches.meta")}}


@contextlib.contextmanager
def cifar_files_accepted(folder: Path) -> Iterator[None]:
    """Within the block, torchvision's CIFAR10 takes the generated files in `folder` for the
    official ones (cifar_md5_attributes); restored after."""
    import torchvision.datasets as tvd

    saved = {name: getattr(tvd.CIFAR10, name) for name in ("train_list", "test_list", "meta")}
    for name, value in cifar_md5_attributes(folder).items():
        setattr(tvd.CIFAR10, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(tvd.CIFAR10, name, value)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


CIFAR_COLOURS = np.array([[r, g, b] for r in (50, 200) for g in (50, 200) for b in (50, 200)]
                         + [[125, 125, 125], [200, 125, 50]])
"""One colour a class: the corners of the RGB cube, grey and orange."""


def learnable_cifar_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n CIFAR rows (3 x 32 x 32, planes R|G|B) of ten classes: each class a colour
    (CIFAR_COLOURS) and a coarse 4 x 4 pattern of 8-pixel blocks, mirror-symmetric, plus
    pixel noise. A flip keeps the pattern and a crop shifted by up to 4 pixels most of each
    block, so a network trained with crop-and-flip augmentation learns the classes in tens
    of steps."""
    rng = np.random.default_rng(4321)  # patterns shared by every split
    half = rng.integers(-70, 71, (10, 3, 4, 2))
    blocks = np.concatenate([half, half[..., ::-1]], axis=3).repeat(8, axis=2).repeat(8, axis=3)
    labels = np.random.default_rng(seed).integers(0, 10, n)
    noise = np.random.default_rng(seed + 1).normal(0, 20, (n, 3, 32, 32))
    images = CIFAR_COLOURS[labels, :, None, None] + blocks[labels] + noise
    return np.clip(images, 0, 255).astype(np.uint8).reshape(n, -1), labels


def write_learnable_cifar_folder(folder: Path, n_train: int, n_test: int) -> Path:
    """The seven files of a small, learnable CIFAR-10 stand-in (cifar-10-batches-py)."""
    return write_cifar_batches(folder, learnable_cifar_rows(n_train, seed=0),
                               learnable_cifar_rows(n_test, seed=7),
                               [f"class{i}" for i in range(10)])


# ---------------------------------------------------------------- Speech Commands


def write_wav(path: Path, samples: np.ndarray) -> None:
    """16 kHz, 16-bit mono PCM, as the Speech Commands clips are stored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(samples.astype("<i2").tobytes())


def write_speech_lists(folder: Path, validation: list[str], testing: list[str]) -> None:
    """validation_list.txt and testing_list.txt: one clip path (word/file.wav) a line."""
    (folder / "validation_list.txt").write_text("".join(f"{p}\n" for p in validation))
    (folder / "testing_list.txt").write_text("".join(f"{p}\n" for p in testing))


def learnable_clip(word: int, rng: np.random.Generator) -> np.ndarray:
    """One second at 16 kHz: a tone at the word's own pitch (300 + 90 x word Hz) at a random
    loudness and phase, plus noise; MFCCs tell the 35 pitches apart."""
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * (300 + 90 * word) * t + rng.uniform(0, 2 * np.pi))
    return rng.uniform(3000, 9000) * tone + rng.normal(0, 800, 16000)


def write_learnable_speech_folder(folder: Path, per_word: dict[str, int]) -> Path:
    """A small, learnable speech_commands_v0.02 folder: 35 word folders with per_word
    {"train": n, "val": n, "test": n} clips each (speaker<k>_nohash_0.wav), the two split
    lists naming the val and test clips, and a _background_noise_ clip (ignored by the
    dataset class, as in the release)."""
    rng = np.random.default_rng(99)
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for word in range(35):
        speaker = 0
        for split, count in per_word.items():
            for _ in range(count):
                rel = f"w{word:02d}/{speaker:08x}_nohash_0.wav"
                write_wav(folder / rel, learnable_clip(word, rng))
                lists[split].append(rel)
                speaker += 1
    write_wav(folder / "_background_noise_" / "white_noise.wav", rng.normal(0, 800, 16000))
    write_speech_lists(folder, lists["val"], lists["test"])
    return folder
