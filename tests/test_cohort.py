"""The cohort engine against the reference loop: gradients, masks, data order, determinism,
BatchNorm, and the independence of a network's bytes from its companions."""

import dataclasses

import pytest
import torch
from torch.nn import functional as F

from lth.core.cohort import (
    Net,
    StackedNet,
    _SeedBatches,
    _Step,
    set_tf32,
    stacked_loss,
    stacked_masks,
    train_cohort,
    train_stacked,
    uses_stacking,
)
from lth.core.data import augment_batch
from lth.core.io import LthError
from lth.core.models import build_model
from lth.core.train import batch_indices, make_optimizer, train
from lth.plan.spec import Engine
from networks import SCHEDULE, cluster_splits, image_splits, lenet, magnitude_mask, small_vgg

SPLITS = cluster_splits()
S = dataclasses.replace(SCHEDULE, iterations=12, eval_every=4)


def order(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + seed)


def stacked(models, masks, seeds, s=S):
    return train_stacked(models, masks, seeds, SPLITS, s, order, [(0,)] * len(models),
                         log=lambda _: None)


def tensor_bytes(state: dict) -> dict:
    return {k: v.numpy().tobytes() for k, v in state.items()}


@pytest.mark.parametrize("make", [lenet, small_vgg])
def test_cohort_of_three_gives_each_network_its_own_gradient(make):
    models = [make(seed) for seed in range(3)]
    x = torch.randn(3, 16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(10, (3, 16), generator=torch.Generator().manual_seed(1))
    net = StackedNet(models)
    stacked_loss(net(x, training=True), y).backward()
    for i, model in enumerate(models):
        F.cross_entropy(model(x[i]), y[i]).backward()
        for name, p in model.named_parameters():
            # rtol 1e-5, and for entries that nearly cancel (a conv weight sums over every
            # pixel) 1e-4 of the tensor's largest: a loss averaged over networks is off by 3x
            scale = float(p.grad.abs().max())
            torch.testing.assert_close(net.unpad(name, net.params[name].grad)[i], p.grad,
                                       rtol=1e-5, atol=1e-4 * scale)


def test_grouped_conv_and_batch_norm_equal_per_network_ones_with_running_stats():
    models = [small_vgg(seed) for seed in range(3)]
    x = torch.randn(3, 16, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    net = StackedNet(models)
    for _ in range(2):  # two training-mode passes move the running statistics
        out = net(x, training=True)
        for i, model in enumerate(models):
            model.train()
            torch.testing.assert_close(out[i], model(x[i]), rtol=1e-5, atol=1e-6)
    for i, model in enumerate(models):
        for name, value in model.state_dict().items():
            torch.testing.assert_close(net.state(i)[name], value, rtol=1e-5, atol=1e-7)
        model.eval()
        torch.testing.assert_close(net(x, training=False)[i], model(x[i]), rtol=1e-5, atol=1e-6)


def test_masked_weights_gradients_and_adam_state_stay_exactly_zero_at_every_step():
    models = [lenet(seed) for seed in range(3)]
    masks = [magnitude_mask(m, density=0.2 + 0.1 * i) for i, m in enumerate(models)]
    net = StackedNet(models)
    masked = stacked_masks(net, masks)
    with torch.no_grad():
        for p, m in masked:
            p.mul_(m)
    opt = make_optimizer(list(net.params.values()), S)
    step = _Step(net, opt, masked, S, _SeedBatches([0, 1, 2], SPLITS, S, order, None),
                 capture=False)
    for it in range(5):
        step(it)
        for k in masks[0]:
            keep = torch.stack([m[k] for m in masks])
            p = net.params[k]
            state = [p, p.grad, opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]]
            for value in (net.unpad(k, v) for v in state):
                assert torch.all(value[~keep] == 0)
            assert torch.any(net.unpad(k, state[2])[keep] != 0)


def test_each_network_sees_its_seeds_single_network_batches():
    batches = _SeedBatches([2, 0, 2], SPLITS, S, order, None)
    single = {seed: batch_indices(len(SPLITS.train_x), S, order(seed), "cpu") for seed in (0, 2)}
    for _ in range(40):  # more than an epoch of 960 / 32 batches
        x, y = batches.batch()
        idx = {seed: next(stream) for seed, stream in single.items()}
        for i, seed in enumerate((2, 0, 2)):
            assert torch.equal(x[i], SPLITS.train_x[idx[seed]])
            assert torch.equal(y[i], SPLITS.train_y[idx[seed]])


def test_stacked_training_follows_the_reference_loop_and_learns():
    models = [lenet(seed) for seed in range(2)]
    masks = [magnitude_mask(m) for m in models]
    results = stacked([lenet(seed) for seed in range(2)], masks, [0, 1])
    for i, model in enumerate(models):
        reference = train(model, masks[i], SPLITS, S, order(i), log=lambda _: None)
        for row, ref in zip(results[i][1].metrics, reference.metrics, strict=True):
            assert (row["iteration"], row["split"]) == (ref["iteration"], ref["split"])
            assert row["loss"] == pytest.approx(ref["loss"], rel=1e-4)
        final = results[i][0]
        for name, value in model.state_dict().items():
            torch.testing.assert_close(final[name], value, rtol=0, atol=1e-4)
        first = results[i][1].metrics[1]["loss"]
        assert results[i][1].metrics[-2]["loss"] < 0.5 * first  # val loss fell
        assert torch.equal(results[i][1].checkpoints[0]["fc1.weight"],
                           lenet(i).state_dict()["fc1.weight"] * masks[i]["fc1.weight"])


def test_permuting_a_cohort_gives_bitwise_identical_networks():
    masks = [magnitude_mask(lenet(seed)) for seed in range(3)]
    forward = stacked([lenet(seed) for seed in range(3)], masks, [0, 1, 2])
    backward = stacked([lenet(seed) for seed in (2, 1, 0)], masks[::-1], [2, 1, 0])
    for i in range(3):
        assert tensor_bytes(forward[i][0]) == tensor_bytes(backward[2 - i][0])
        assert forward[i][1].metrics == backward[2 - i][1].metrics


def test_the_same_cohort_twice_gives_identical_bytes():
    masks = [magnitude_mask(lenet(seed)) for seed in range(2)]
    first = stacked([lenet(seed) for seed in range(2)], masks, [0, 1])
    again = stacked([lenet(seed) for seed in range(2)], masks, [0, 1])
    for a, b in zip(first, again, strict=True):
        assert tensor_bytes(a[0]) == tensor_bytes(b[0]) and a[1].metrics == b[1].metrics


def cohort_nets(seeds):
    return [Net(lenet(seed), magnitude_mask(lenet(seed)), seed, f"[{seed}]", (), seed)
            for seed in seeds]


@pytest.mark.parametrize("stack", ["on", "off"])
def test_a_networks_bytes_do_not_depend_on_its_companions(stack):
    engine = Engine(stack=stack, slots=4, capture=False, tf32=False)
    alone, crowd = cohort_nets([0]), cohort_nets([3, 0, 5])
    for nets in (alone, crowd):
        train_cohort(nets, SPLITS, S, order, engine, log=lambda _: None)
    assert tensor_bytes(alone[0].model.state_dict()) == tensor_bytes(crowd[1].model.state_dict())
    assert alone[0].result.metrics == crowd[1].result.metrics


def test_one_after_another_is_exactly_the_reference_loop():
    nets = cohort_nets([0, 1])
    engine = Engine(stack="off", slots=4, capture=False, tf32=False)
    assert not train_cohort(nets, SPLITS, S, order, engine, log=lambda _: None)
    for net in nets:
        model = lenet(net.seed)
        torch.manual_seed(net.seed)
        reference = train(model, magnitude_mask(lenet(net.seed)), SPLITS, S, order(net.seed),
                          log=lambda _: None)
        assert tensor_bytes(model.state_dict()) == tensor_bytes(net.model.state_dict())
        assert reference.metrics == net.result.metrics


def test_stacking_choice_follows_device_and_dropout():
    auto = Engine(stack="auto", slots=16, capture=True, tf32=False)
    assert not uses_stacking(auto, torch.device("cpu"), S)
    assert uses_stacking(auto, torch.device("cuda"), S)
    assert not uses_stacking(auto, torch.device("cuda"), dataclasses.replace(S, dropout=0.5))
    with pytest.raises(LthError, match="dropout"):
        uses_stacking(dataclasses.replace(auto, stack="on"), torch.device("cpu"),
                      dataclasses.replace(S, dropout=0.5))


def test_a_layer_without_stacked_form_is_named():
    model = build_model("lenet300_100", (1, 28, 28), 10, torch.Generator().manual_seed(0), 0.5)
    with pytest.raises(LthError, match="Dropout: no stacked form"):
        StackedNet([model])(torch.zeros(1, 2, 1, 28, 28), training=True)


SGD_SCHEDULE = dataclasses.replace(S, optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True,
                                   weight_decay=1e-4, warmup=2, milestones=(6,), gamma=0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("make", "s"), [(lenet, S), (small_vgg, SGD_SCHEDULE)])
def test_cuda_cohort_eager_and_captured_match_the_cpu_reference_loop(make, s):
    """On CUDA the stacked step, eager or replayed as a CUDA graph, trains each network as
    the reference loop does on the CPU: Adam on LeNet; SGD with Nesterov momentum, weight
    decay, warm-up and a milestone (the learning rate changes under the graph) on a VGG with
    BatchNorm. TF32 off, so only reduction orders differ."""
    set_tf32(Engine(stack="on", slots=3, capture=True, tf32=False))
    splits = cluster_splits()
    masks = [magnitude_mask(make(seed)) for seed in range(3)]
    reference = []
    for seed in range(3):
        model = make(seed)
        train(model, masks[seed], splits, s, order(seed), log=lambda _: None)
        reference.append(model.state_dict())
    for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        setattr(splits, name, getattr(splits, name).cuda())
    on_gpu = [{k: v.cuda() for k, v in mask.items()} for mask in masks]
    runs = {}
    for capture in (False, True):
        models = [make(seed).cuda() for seed in range(3)]
        runs[capture] = train_stacked(models, on_gpu, [0, 1, 2], splits, s, order, [()] * 3,
                                      capture=capture, log=lambda _: None)
    for eager, captured, ref in zip(runs[False], runs[True], reference, strict=True):
        for name, value in ref.items():
            torch.testing.assert_close(captured[0][name], eager[0][name], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(eager[0][name], value, rtol=0, atol=5e-4)
        assert eager[1].metrics[-1]["accuracy"] == pytest.approx(
            captured[1].metrics[-1]["accuracy"], abs=0.02)


def test_stacked_and_reference_loops_agree_on_a_run_resumed_at_k():
    """Both loops train k..T from weights at k with the schedule and the (augmented) data
    stream continuing: same evaluated iterations, losses and final weights."""
    splits = image_splits()
    s = dataclasses.replace(S, iterations=20, warmup=5, milestones=(12,), eval_every=5)

    def nets():
        models = [build_model("lenet300_100", (3, 28, 28), 10,
                              torch.Generator().manual_seed(seed), 0.0) for seed in range(2)]
        return [Net(m, magnitude_mask(m), seed, f"[{seed}]", (7, 9), seed)
                for seed, m in enumerate(models)]

    runs = {}
    for stack in ("on", "off"):
        runs[stack] = nets()
        engine = Engine(stack=stack, slots=2, capture=False, tf32=False)
        assert train_cohort(runs[stack], splits, s, order, engine, augment_batch,
                            log=lambda _: None, start=7) == (stack == "on")
    for stacked_net, reference in zip(runs["on"], runs["off"], strict=True):
        rows, ref_rows = stacked_net.result.metrics, reference.result.metrics
        assert [(r["iteration"], r["split"]) for r in rows] == [
            (r["iteration"], r["split"]) for r in ref_rows]
        assert [r["iteration"] for r in rows if r["split"] == "val"] == [7, 10, 15, 20]
        for row, ref in zip(rows, ref_rows, strict=True):
            assert row["loss"] == pytest.approx(ref["loss"], rel=1e-4)
        assert tensor_bytes(stacked_net.result.checkpoints[7]) == tensor_bytes(
            reference.result.checkpoints[7])
        for name, value in reference.model.state_dict().items():
            torch.testing.assert_close(stacked_net.model.state_dict()[name], value,
                                       rtol=0, atol=1e-4)
