"""Mask predicates the tests assert with (no library code needs them)."""

from __future__ import annotations

import torch

Mask = dict[str, torch.Tensor]


def layer_densities(mask: Mask) -> dict[str, float]:
    """Fraction kept per layer."""
    return {name: float(m.float().mean()) for name, m in mask.items()}


def collapsed_layers(mask: Mask) -> list[str]:
    """Layers with no weight left (the network can no longer pass a signal)."""
    return [name for name, m in mask.items() if not bool(m.any())]


def is_nested(inner: Mask, outer: Mask) -> bool:
    """True when every weight kept by `inner` is also kept by `outer`."""
    return all(not bool((inner[n] & ~outer[n]).any()) for n in inner)
