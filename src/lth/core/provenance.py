"""Provenance: what made each artifact, and the lineage of any artifact for `lth audit`.

Every verb records, for the files it writes: the verb, every hyperparameter, its inputs
(path + sha256), its outputs (path + sha256), the code version, package versions, device,
host and its CPU, SLURM job id when there is one, and timings. The record lives next to
the artifact:

- in the header metadata of a safetensors file (key "lth"),
- in `run.json` of a training directory (final.safetensors, metrics.csv),
- in `<name>.provenance.json` beside any other file (summary.csv, figures, reports),
- in `manifest.json` for dataset files (the roots of every lineage).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import torch

from lth.core.io import LthError, read_json, read_metadata, sha256_file
from lth.plan import plugins

PACKAGES = ("torch", "torchvision", "torchaudio", "safetensors", "snakemake", "pandas",
            "seaborn", "matplotlib", "jinja2", "numpy")
SOURCE_DIR = Path(__file__).resolve().parents[1]  # src/lth
DATASET_OWN_FILES = ("manifest.json", "tensors.safetensors")


def source_digest() -> str:
    """sha256 over the library's source files (paths under lth and bytes), stable across
    machines."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.rglob("*.py")):
        name = path.relative_to(SOURCE_DIR).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the checkout holding the library, with '-dirty' if src/ has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(SOURCE_DIR), *args], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", str(SOURCE_DIR))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def code_version() -> dict:
    """Git commit (if any) and the digest of the library source (read once per process: a
    cohort job writes many records)."""
    return dict(_code_version())


@functools.cache
def _code_version() -> dict:
    return {"git": git_commit(), "source_sha256": source_digest()}


def package_versions() -> dict:
    """Versions of the packages that can change an artifact (read once per process)."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_entry(path: str | os.PathLike) -> dict:
    """{'path', 'sha256'} of an existing file."""
    return {"path": str(path), "sha256": sha256_file(path)}


@functools.cache
def processor() -> dict:
    """The CPU a record was made on: its model name and the instruction set PyTorch's CPU
    kernels dispatch to (e.g. AVX2, AVX512). Another processor may round them differently,
    so the same code and inputs can give other last bits, and a long training other numbers."""
    return {"model": cpu_model(), "torch_capability": torch.backends.cpu.get_cpu_capability()}


def cpu_model() -> str:
    """The first 'model name' of /proc/cpuinfo (Linux), else what platform reports."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    named = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return named[0] if named else platform.processor() or platform.machine()


def make_record(verb: str, params: dict, inputs: list, device: str | None = None, *,
                argv: Sequence[str]) -> dict:
    """The provenance record of one verb call, before its outputs exist; argv: the verb's
    arguments that make it again (empty where library code is called directly)."""
    return {
        "verb": verb,
        "argv": list(argv),
        "params": params,
        "inputs": [file_entry(p) for p in inputs],
        "code_version": code_version(),
        "packages": package_versions(),
        "device": device,
        "host": socket.gethostname(),
        "cpu": processor(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def plugins_of(model: str, criteria: tuple[str, ...] = (),
               inputs: tuple[str | os.PathLike, ...] = ()) -> dict:
    """{"plugins": [...]}: the provenance of the plug-ins among the model and criteria and of
    those the safetensors `inputs` record (a mask's criterion), once each; {} when there is
    none, so a record without plug-ins is unchanged."""
    found = {(p["group"], p["name"]): p for p in plugins.provenance(model, criteria)}
    for path in inputs:
        found.update({(p["group"], p["name"]): p for p in read_metadata(path).get("plugins", [])})
    return {"plugins": list(found.values())} if found else {}


def sidecar_path(path: Path) -> Path:
    """Where the record of a plain file (csv, figure, report) lives."""
    return path.with_name(path.name + ".provenance.json")


def find_record(path: Path) -> dict | None:
    """The provenance record that describes `path`, or None for a dataset root file."""
    if path.suffix == ".safetensors":
        meta = read_metadata(path)
        if "verb" in meta:
            return meta
    for candidate in (path.parent / "run.json", sidecar_path(path)):
        if candidate.is_file():
            record = read_json(candidate)
            if any(Path(o["path"]).name == path.name for o in record.get("outputs", [])):
                return record
    return None


def find_manifest(path: Path) -> tuple[Path, dict] | None:
    """The dataset manifest listing `path`, searching the file's ancestors."""
    for folder in path.resolve().parents:
        manifest = folder / "manifest.json"
        if manifest.is_file():
            data = read_json(manifest)
            rel = os.path.relpath(path.resolve(), folder)
            if rel in data.get("files", {}) or path.name in DATASET_OWN_FILES:
                return manifest, data
    return None


def _status(path: Path, recorded: str | None) -> str:
    if not path.exists():
        return "MISSING"
    if recorded is None:
        return "audited file"
    return "ok" if sha256_file(path) == recorded else "CHANGED"


def lineage(path: Path, recorded_sha: str | None = None, depth: int = 0,
            seen: set | None = None) -> list[str]:
    """Lines describing `path` and, recursively, every input that made it.

    Each node shows the sha256 recorded by the verb that used it and whether the file still
    has that content; a node already expanded above is not expanded again.
    """
    seen = set() if seen is None else seen
    pad = "  " * depth
    shown = recorded_sha or (sha256_file(path) if path.exists() else "-")
    lines = [f"{pad}{path}  sha256={shown}  [{_status(path, recorded_sha)}]"]
    key = str(path.resolve())
    if not path.exists():
        return lines
    if key in seen:
        lines[-1] += "  (lineage above)"
        return lines
    seen.add(key)
    record = find_record(path)
    if record is not None:
        lines.append(f"{pad}  made by: lth {record['verb']}  code {record['code_version']}")
        params = ", ".join(f"{k}={v}" for k, v in sorted(record.get("params", {}).items()))
        lines.append(f"{pad}  params: {params}")
        for entry in record.get("inputs", []):
            lines += lineage(Path(entry["path"]), entry["sha256"], depth + 1, seen)
        return lines
    found = find_manifest(path)
    if found is None:
        raise LthError(f"{path}: no provenance record found (not an lth artifact?)")
    manifest_path, manifest = found
    lines.append(f"{pad}  dataset {manifest['dataset']} (manifest {manifest_path}, "
                 f"source: {manifest.get('source')})")
    for rel, sha in sorted(manifest.get("files", {}).items()):
        raw = manifest_path.parent / rel
        lines.append(f"{pad}    {raw}  sha256={sha}  [{_status(raw, sha)}]")
    return lines
