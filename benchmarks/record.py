"""The benchmark record: one JSON file per machine and day, benchmarks/results/<date>-<device>.json.

Each benchmark run with `--record PATH` adds its section to the file (a later run of the same
benchmark replaces its section): the command that ran, every figure it printed, and the
machine it ran on (device, CPU count, package versions, the library's git commit and source
digest, so that a copy of the tree without .git is still identified).
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
from pathlib import Path

import torch

from lth.core.io import read_json, write_json
from lth.core.provenance import code_version, package_versions

RESULTS = Path(__file__).resolve().parent / "results"


def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA, else the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def default_path(device: torch.device) -> Path:
    """benchmarks/results/<today>-<device name, lower case, dashes>.json."""
    slug = re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-")
    return RESULTS / f"{datetime.date.today().isoformat()}-{slug}.json"


def machine(device: torch.device) -> dict:
    """What ran the benchmarks."""
    facts = {"device": device_name(device), "device_type": device.type,
             "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
             "torch_build": torch.__version__,
             "packages": package_versions(), "code_version": code_version()}
    if device.type == "cuda":
        facts |= {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                  "gpu_memory_bytes": torch.cuda.get_device_properties(device).total_memory}
    return facts


def add_section(path: str | os.PathLike | None, name: str, device: torch.device,
                figures: dict) -> Path:
    """Write `figures` as section `name` of the record at path (default_path(device) if None),
    with the command line that produced them; other sections are kept."""
    path = Path(path) if path else default_path(device)
    record = read_json(path) if path.exists() else {"sections": {}}
    record["machine"] = machine(device)
    record["sections"][name] = {"command": shlex.join([Path(sys.executable).name, *sys.argv]),
                                "date": datetime.datetime.now().isoformat(timespec="seconds"),
                                "figures": figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return path
