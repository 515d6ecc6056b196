"""Golden values: results that must not change between code versions unless a setting does.

lth.core.seeding promises the same stream for an (experiment, seed, purpose) on every run and
machine, and every artifact descends from theta_0. The literals below were computed with the
code at the time they were written (torch 2.11); a change of the key format, of the hash, or
of how theta_0 is drawn changes them, and with them every result of every experiment.
"""

import hashlib

import pytest
import torch

from lth.core.models import build_model
from lth.core.seeding import derive_seed, generator


@pytest.mark.parametrize(("seed", "purpose", "expected"), [
    (0, "init", 948792660387303895),
    (1, "init", 6869821426049239216),
    (0, "data-order", 6082794728847666549),
    (0, "reinit/round3", 7776117417568721873),
])
def test_derive_seed_gives_the_recorded_seed(seed, purpose, expected):
    assert derive_seed("lenet_fmnist", seed, purpose) == expected


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and bytes of a state dict, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(state.items()):
        digest.update(name.encode() + b"\0" + value.contiguous().numpy().tobytes())
    return digest.hexdigest()


def test_lenet_theta_0_has_the_recorded_bytes():
    """theta_0 of LeNet-300-100 on Fashion-MNIST, seed 0, Glorot: drawn as `lth init` draws
    it (lth.verbs.commands.cmd_init: the generator of purpose "init")."""
    model = build_model("lenet300_100", (1, 28, 28), 10, generator("lenet_fmnist", 0, "init"),
                        0.0, "glorot")
    assert float(model.state_dict()["fc1.weight"][0, 0]) == pytest.approx(-0.0546112284)
    assert state_digest(model.state_dict()) == (
        "deac2d9d63cf1de9480abe1b3e8bd358614f07de380cc59c39143db5f63ce4d6")
