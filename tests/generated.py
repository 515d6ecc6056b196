"""Writers of small datasets in the real on-disk formats, shared by the tests."""

import gzip
import struct
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
