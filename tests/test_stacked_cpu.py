"""The stacked step on the CPU against the reference loop, on the paths `stack: auto` takes on
a GPU: a VGG with BatchNorm under SGD with Nesterov momentum, weight decay, warm-up and a
milestone; a CIFAR ResNet whose basic blocks have identity and projection shortcuts; an MLP on
examples of two dimensions (the speech MLP's MFCC frames); and a
cohort longer than its slots (trained chunk by chunk). Tolerances are those of the LeNet/Adam
comparison in test_cohort: losses within 1e-4 relative, weights within 1e-4."""

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from lth.core.cohort import Net, train_cohort, train_stacked
from lth.core.models import build_model
from lth.core.train import train
from lth.plan.spec import Engine
from networks import SCHEDULE, cluster_splits, lenet, magnitude_mask, small_resnet, small_vgg


def smaller(splits, size: int, pool: int):
    """The first `size` validation and test examples, images average-pooled by `pool`."""
    shrink = {f"{split}_{xy}": getattr(splits, f"{split}_{xy}")[:size]
              for split in ("val", "test") for xy in "xy"}
    shrink |= {f"{split}_x": F.avg_pool2d(shrink.get(f"{split}_x", splits.train_x), pool)
               for split in ("train", "val", "test")}
    return dataclasses.replace(splits, **shrink)


SPLITS = smaller(cluster_splits(n_train=320), 100, 1)
IMAGES = smaller(SPLITS, 100, 2)
"""The cluster images at 14x14 for the convolutional networks (global average pooling makes
them indifferent to the image size): a quarter of the work."""
ADAM = dataclasses.replace(SCHEDULE, iterations=8, eval_every=4, train_eval_size=100)
SGD = dataclasses.replace(ADAM, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=1e-4, warmup=2, milestones=(5,), gamma=0.1)


def quiet(_line: str) -> None:
    pass


def order(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + seed)


def reference_run(make, seed: int, mask, s, splits):
    """(final state dict, metrics) of one network trained by the reference loop."""
    model = make(seed)
    result = train(model, mask, splits, s, order(seed), log=quiet)
    return model.state_dict(), result.metrics


def assert_follows(state: dict, metrics: list[dict], reference) -> None:
    """The same evaluations with losses within 1e-4 relative, every tensor of the state
    (weights, BatchNorm running statistics and counts) within 1e-4."""
    ref_state, ref_metrics = reference
    assert [(r["iteration"], r["split"]) for r in metrics] == [
        (r["iteration"], r["split"]) for r in ref_metrics]
    for row, ref in zip(metrics, ref_metrics, strict=True):
        assert row["loss"] == pytest.approx(ref["loss"], rel=1e-4)
    assert state.keys() == ref_state.keys()
    for name, value in ref_state.items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=1e-4)


@pytest.mark.parametrize("make", [small_vgg, small_resnet], ids=["vgg", "resnet"])
def test_stacked_sgd_with_batchnorm_follows_the_reference_loop(make):
    """Two networks stacked, each with its own mask and data order, under SGD with Nesterov
    momentum, weight decay, two warm-up iterations and a milestone at 6 of 12."""
    masks = [magnitude_mask(make(seed)) for seed in range(2)]
    runs = train_stacked([make(seed) for seed in range(2)], masks, [0, 1], IMAGES, SGD, order,
                         [()] * 2, log=quiet)
    for seed, (state, result) in enumerate(runs):
        assert_follows(state, result.metrics, reference_run(make, seed, masks[seed], SGD,
                                                            IMAGES))


def mlp_on_features(seed=0):
    """An MLP on examples of two dimensions, as the speech MLP on MFCC frames (40 x 101)."""
    return build_model("mlp32x2", (28, 28), 10, torch.Generator().manual_seed(seed), 0.0)


def test_stacked_mlp_on_two_dimensional_examples_follows_the_reference_loop():
    """Speech features [B, F, T] stack to [N, B, F, T], four dimensions as the grouped
    layout of convolutions: the stacked MLP must still flatten each example."""
    features = dataclasses.replace(SPLITS, **{f"{split}_x": getattr(SPLITS, f"{split}_x")[:, 0]
                                              for split in ("train", "val", "test")})
    masks = [magnitude_mask(mlp_on_features(seed)) for seed in range(2)]
    runs = train_stacked([mlp_on_features(seed) for seed in range(2)], masks, [0, 1], features,
                         ADAM, order, [()] * 2, log=quiet)
    for seed, (state, result) in enumerate(runs):
        assert_follows(state, result.metrics, reference_run(mlp_on_features, seed, masks[seed],
                                                            ADAM, features))


def test_the_resnet_has_the_shortcuts_the_stacked_step_must_follow():
    """small_resnet exercises both branches of a basic block: an identity shortcut, and a
    1x1 projection whose weights are pruned with the rest (lth.core.models.layer_kinds)."""
    model = small_resnet()
    assert isinstance(model.stage1.block1.shortcut, torch.nn.Identity)
    assert model.stage2.block1.shortcut.conv.weight.shape == (8, 4, 1, 1)
    assert "stage2.block1.shortcut.conv.weight" in magnitude_mask(model)


def test_a_cohort_longer_than_its_slots_trains_every_network_as_the_reference_loop():
    """Five networks in two slots: chunks of 2, 2 and 1 (the last padded with a copy)."""
    masks = [magnitude_mask(lenet(seed), density=0.1 + 0.1 * seed) for seed in range(5)]
    nets = [Net(lenet(seed), masks[seed], seed, f"[{seed}]", (4,), seed) for seed in range(5)]
    engine = Engine(stack="on", slots=2, capture=False, tf32=False)
    assert train_cohort(nets, SPLITS, ADAM, order, engine, log=quiet)
    for seed, net in enumerate(nets):
        reference = reference_run(lenet, seed, masks[seed], ADAM, SPLITS)
        assert_follows(net.model.state_dict(), net.result.metrics, reference)
        assert sorted(net.result.checkpoints) == [4]
        kept = net.result.checkpoints[4]["fc1.weight"] != 0
        assert torch.equal(kept, masks[seed]["fc1.weight"])


def test_a_cohort_of_two_architectures_stacks_each_apart():
    """Early-Bird's channel tickets at two densities are two widths of VGG in one cohort: the
    networks of each width stack together, each still as the reference loop trains it."""
    makers = [lenet, mlp_on_images, lenet, mlp_on_images]
    masks = [magnitude_mask(make(seed)) for seed, make in enumerate(makers)]
    nets = [Net(make(seed), masks[seed], seed, f"[{seed}]") for seed, make in enumerate(makers)]
    engine = Engine(stack="on", slots=2, capture=False, tf32=False)
    assert train_cohort(nets, SPLITS, ADAM, order, engine, log=quiet)
    for seed, (net, make) in enumerate(zip(nets, makers, strict=True)):
        reference = reference_run(make, seed, masks[seed], ADAM, SPLITS)
        assert_follows(net.model.state_dict(), net.result.metrics, reference)


def mlp_on_images(seed=0):
    """An MLP narrower than LeNet-300-100 on the same images."""
    return build_model("mlp32x2", (1, 28, 28), 10, torch.Generator().manual_seed(seed), 0.0)

