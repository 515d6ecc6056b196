"""One source of randomness: every random choice derives from (experiment, seed, purpose).

Purposes are short strings such as "init", "reinit/round3", "data-order/imp/round2" or
"mask/random/round4". Two different purposes give independent streams, and the same triple
gives the same stream on every run and machine.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(experiment: str, seed: int, purpose: str) -> int:
    """A 63-bit integer seed from sha256 of the triple."""
    key = f"{experiment}\x1f{seed}\x1f{purpose}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


def generator(experiment: str, seed: int, purpose: str, device="cpu") -> torch.Generator:
    """A torch.Generator seeded from derive_seed(experiment, seed, purpose)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(experiment, seed, purpose))
    return gen
