"""Artifact I/O: atomic writes, safetensors with metadata, checksums, one-line errors.

Every file an artifact consists of is written to a temporary file in the same folder and
renamed into place, so a killed job never leaves a half-written artifact and never damages
one that already exists. Tensors are only ever stored as safetensors: no pickle is loaded.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from lth.core.errors import LthError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temps(path: Path) -> None:
    """Delete the temp files a killed writer of path left behind: one job owns each output,
    so no live writer of path can be using them."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to path via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts are shared files
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> None:
    """Write obj as indented, key-sorted JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON file, raising LthError naming the file if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise LthError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LthError(f"{path}: not valid JSON ({err})") from None


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict | None = None
) -> None:
    """Save tensors as safetensors atomically; metadata (any JSON) goes into the header."""
    header = {"lth": json.dumps(metadata, sort_keys=True)} if metadata is not None else None
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(contiguous, metadata=header))


def _read_safetensors_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise LthError(f"{path}: file not found")
    return path.read_bytes()


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Load a safetensors file, raising LthError naming the file if missing or corrupt."""
    path = Path(path)
    try:
        tensors = st_load(_read_safetensors_bytes(path))
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise LthError(f"{path}: not a valid safetensors file ({err})") from None
    return {k: v.to(device) for k, v in tensors.items()}


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata stored in a safetensors header by save_tensors ({} if none).

    Reads the header only (an 8-byte little-endian length, then that much JSON), not the
    tensors behind it.
    """
    path = Path(path)
    if not path.is_file():
        raise LthError(f"{path}: file not found")
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(size))
    except (ValueError, UnicodeDecodeError) as err:
        raise LthError(f"{path}: not a valid safetensors file ({err})") from None
    raw = header.get("__metadata__", {}).get("lth")
    return json.loads(raw) if raw else {}
