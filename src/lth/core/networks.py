"""Networks as jobs meet them: the device, a prepared dataset's architecture and splits, a
network built from its recorded architecture or loaded from a weights file, its prunable
weights and their masks, and whether a mask still connects its input to its output."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from lth.core import masks as M
from lth.core.io import LthError, load_tensors, read_json, read_metadata


def use_threads(threads: int | None) -> None:
    """Let torch use `threads` CPU threads (None: its default)."""
    if threads:
        torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LthError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def dataset_architecture(data_root: str) -> dict:
    """Dataset name, input shape and class count of a prepared dataset folder."""
    from lth.core.data import DATASETS

    root = Path(data_root)
    manifest = read_json(root / "manifest.json")
    tensors = root / "tensors.safetensors"
    if not tensors.is_file():
        raise LthError(f"{tensors}: file not found (run `lth prepare` first)")
    with safe_open(str(tensors), "pt") as fh:
        shape = fh.get_slice("train_x").get_shape()
    name = manifest["dataset"]
    return {"dataset": name, "input_shape": list(shape[1:]),
            "num_classes": DATASETS[name].num_classes}


@functools.lru_cache(maxsize=2)
def splits_of(data_root: str, val_size: int | None, device: torch.device):
    """The normalised splits, loaded once per process (a cohort job's verbs share them)."""
    from lth.core.data import load_splits

    return load_splits(Path(data_root), val_size, device)


def architecture_of(weights_path: str) -> dict:
    """The architecture recorded in a weights file by `init` or `train`."""
    record = read_metadata(weights_path)
    try:
        return record["architecture"]
    except KeyError:
        raise LthError(f"{weights_path}: no architecture recorded (not made by lth?)") from None


def build(arch: dict, gen: torch.Generator, dropout: float, init: str | None):
    """An nn.Module of the recorded architecture, initialised from gen by the initialiser
    `init` (lth.core.models.INITIALISERS; None: the model's own default).

    A filter-pruned VGG (lth.methods.filters) records its narrower conv widths as "cfg"; a
    network whose BatchNorm scales start elsewhere than 1 records "batchnorm_init".
    """
    from lth.core.models import build_model, fill_batchnorm_scales_, vgg

    shape = tuple(arch["input_shape"])
    if "cfg" in arch:
        model = vgg(arch["cfg"], shape, arch["num_classes"], gen, init)
    else:
        model = build_model(arch["model"], shape, arch["num_classes"], gen, dropout, init)
    if "batchnorm_init" in arch:
        fill_batchnorm_scales_(model, arch["batchnorm_init"])
    return model


def load_model(weights_path: str, dropout: float, device: torch.device):
    """Build the recorded architecture and load the file's weights into it."""
    arch = architecture_of(weights_path)
    model = build(arch, torch.Generator().manual_seed(0), dropout, arch.get("init"))
    model.load_state_dict(load_tensors(weights_path))
    return model.to(device), arch


def prunable_params(model) -> dict[str, torch.Tensor]:
    """The model's prunable weights by name (lth.core.models.prunable_names), in order."""
    from lth.core.models import prunable_names

    params = dict(model.named_parameters())
    return {n: params[n] for n in prunable_names(model)}


def load_mask(path: str | None, params: dict[str, torch.Tensor]) -> M.Mask:
    """The mask in `path` (checked against the model), or a dense mask."""
    if path is None:
        return M.full_mask(params)
    mask = {k: v.bool() for k, v in load_tensors(path, next(iter(params.values())).device).items()}
    check_mask(mask, params, path)
    return {n: mask[n] for n in params}


def check_mask(mask: M.Mask, params: dict, where: str) -> None:
    """One line naming `where` unless the mask covers exactly the prunable weights."""
    if set(mask) != set(params) or any(mask[n].shape != params[n].shape for n in params):
        raise LthError(f"{where}: mask does not match the model's prunable weights")


def smaller_architecture(arch: dict, dense, small, **facts) -> dict:
    """The recorded architecture of a VGG with channels removed from the dense one (filter
    pruning, channel tickets drawn during training): its conv widths, and the dense network's
    weights and MACs that its density and cost count against (with any further `facts`)."""
    dense_params = sum(p.numel() for p in prunable_params(dense).values())
    macs = M.macs(dense, tuple(arch["input_shape"]))
    return dict(arch, cfg=list(small.cfg),
                unpruned={"params_total": dense_params, "dense_macs": macs, **facts})


@contextmanager
def scoring_mode(model: nn.Module, batchnorm_training: bool) -> Iterator[None]:
    """Dropout off; BatchNorm on batch (True) or running (False) statistics; modes restored."""
    saved = [(module, module.training) for module in model.modules()]
    model.eval()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train(batchnorm_training)
    try:
        yield
    finally:
        for module, training in saved:
            module.training = training


@torch.no_grad()
def input_reaches_output(model: nn.Module, mask: M.Mask, names: list[str],
                         input_shape: tuple[int, ...]) -> bool:
    """Whether any path of kept weights still connects the input to the output.

    Layer collapse (Tanaka et al. 2020, Sec. 3) is the loss of every such path: the network
    then computes a constant and trains to chance accuracy. The test is SynFlow's positive
    network with every bias (and BatchNorm shift and running mean) set to zero: each output
    is then a sum over input-output paths of products of positive weights, so it is > 0
    exactly when a path survives. Unlike "some layer is empty", this is right for residual
    networks, where an emptied shortcut convolution leaves the main branch connected.
    """
    state = {n: p.detach().double().abs() for n, p in model.named_parameters()}
    state.update({n: torch.zeros_like(p) for n, p in state.items() if n.endswith(".bias")})
    for n, b in model.named_buffers():
        if n.endswith("running_mean"):
            state[n] = torch.zeros_like(b, dtype=torch.float64)
        elif n.endswith("running_var"):
            state[n] = torch.ones_like(b, dtype=torch.float64)
        else:
            state[n] = b
    state.update({n: state[n] * mask[n] for n in names})
    device = state[names[0]].device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    with scoring_mode(model, batchnorm_training=False):
        return bool(functional_call(model, state, (ones,)).sum() > 0)
