"""The training loop: masked weights stay exactly zero, schedules, early stopping, learning."""

import dataclasses

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from lth.core import masks as M
from lth.core.errors import LthError
from lth.core.models import build_model, prunable_names
from lth.core.train import batch_indices, early_stop, evaluate, lr_factor, train
from networks import SCHEDULE, cluster_splits, image_splits, lenet, magnitude_mask


@pytest.mark.parametrize("optimizer,momentum,wd", [("adam", 0.0, 0.0), ("sgd", 0.9, 1e-3)])
def test_pruned_weights_and_their_optimizer_state_stay_exactly_zero(optimizer, momentum, wd):
    model = lenet()
    mask = magnitude_mask(model)
    s = dataclasses.replace(SCHEDULE, optimizer=optimizer, momentum=momentum, weight_decay=wd,
                            lr=0.05 if optimizer == "sgd" else 1e-3, nesterov=optimizer == "sgd")
    result = train(model, mask, cluster_splits(), s, torch.Generator().manual_seed(1),
                   log=lambda _: None)
    params = dict(model.named_parameters())
    for name, m in mask.items():
        assert torch.all(params[name][~m] == 0)
        assert torch.any(params[name][m] != 0)
        state = [v for v in result.optimizer.state[params[name]].values()
                 if torch.is_tensor(v) and v.shape == m.shape]
        assert state  # momentum buffer, or Adam's two moments
        for value in state:
            assert torch.all(value[~m] == 0) and torch.any(value[m] != 0)


def test_short_training_learns_far_above_chance():
    model = lenet()
    result = train(model, magnitude_mask(model, 0.3), cluster_splits(), SCHEDULE,
                   torch.Generator().manual_seed(1), log=lambda _: None)
    final = {r["split"]: r["accuracy"] for r in result.metrics if r["iteration"] == 60}
    first = {r["split"]: r["accuracy"] for r in result.metrics if r["iteration"] == 0}
    assert first["test"] < 0.4
    assert final["test"] > 0.9 and final["train"] > 0.9


def test_train_accuracy_is_measured_on_the_first_train_eval_size_examples():
    """A subset whose accuracy differs from the whole split's: its first 100 examples are
    relabelled, so only an evaluation of exactly those 100 gives the recorded value."""
    splits = cluster_splits()
    splits.train_y[:100] = (splits.train_y[:100] + 1) % 10
    s = dataclasses.replace(SCHEDULE, train_eval_size=100)
    model = lenet()
    result = train(model, magnitude_mask(model, 0.3), splits, s, torch.Generator().manual_seed(1),
                   log=lambda _: None)
    train_row = next(r for r in result.metrics if r["split"] == "train")
    expected = evaluate(model, splits.train_x[:100], splits.train_y[:100], 256)
    whole = evaluate(model, splits.train_x, splits.train_y, 256)
    assert (train_row["loss"], train_row["accuracy"]) == expected
    assert abs(expected[1] - whole[1]) > 0.3


def test_training_is_byte_identical_for_the_same_seed():
    def run():
        model = lenet()
        train(model, magnitude_mask(model), cluster_splits(), SCHEDULE,
              torch.Generator().manual_seed(3), log=lambda _: None)
        return model.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_at_iteration_zero_is_the_masked_initial_weights():
    model = lenet()
    mask = magnitude_mask(model)
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, mask, cluster_splits(), SCHEDULE, torch.Generator().manual_seed(1),
                   checkpoint_iterations=(0, 20), log=lambda _: None)
    for name, m in mask.items():
        assert torch.equal(result.checkpoints[0][name], theta0[name] * m)
        assert not torch.equal(result.checkpoints[20][name], result.checkpoints[0][name])


def test_progress_lines_report_iteration_accuracy_and_eta():
    lines = []
    model = lenet()
    train(model, M.full_mask({n: p for n, p in model.named_parameters()
                              if n in prunable_names(model)}),
          cluster_splits(), SCHEDULE, torch.Generator().manual_seed(1), log=lines.append,
          prefix="[t]")
    assert len(lines) == 4  # iterations 0, 20, 40, 60
    assert lines[-1].startswith("[t] it 60/60 ") and "test_acc" in lines[-1] and "ETA" in lines[-1]


def test_early_stop_is_the_iteration_of_minimum_validation_loss():
    log = []
    for it, val_loss, test_acc in [(0, 2.3, 0.1), (100, 0.5, 0.80), (200, 0.4, 0.85),
                                   (300, 0.4, 0.86), (400, 0.6, 0.88)]:
        log += [{"iteration": it, "split": "val", "loss": val_loss, "accuracy": 0.0},
                {"iteration": it, "split": "test", "loss": 9.9, "accuracy": test_acc}]
    assert early_stop(log) == (200, 0.85)  # tie at 0.4 goes to the earlier iteration


def test_learning_rate_warmup_and_milestones():
    s = dataclasses.replace(SCHEDULE, warmup=10, milestones=(50, 80), gamma=0.1, iterations=100)
    assert lr_factor(0, s) == pytest.approx(0.1)
    assert lr_factor(9, s) == pytest.approx(1.0)
    assert lr_factor(49, s) == pytest.approx(1.0)
    assert lr_factor(50, s) == pytest.approx(0.1)
    assert lr_factor(80, s) == pytest.approx(0.01)
    stretched = s.scaled(2.0)
    assert (stretched.iterations, stretched.milestones, stretched.warmup) == (200, (100, 160), 20)


RESUME = dataclasses.replace(SCHEDULE, optimizer="sgd", lr=0.05, momentum=0.0, weight_decay=1e-3,
                             iterations=20, warmup=5, milestones=(12,), gamma=0.5, eval_every=5)


@pytest.mark.parametrize("augmented", [False, True])
def test_a_run_resumed_at_k_from_its_own_checkpoint_ends_bitwise_equal(augmented):
    """Late rewinding trains k..T with the schedule and the data stream continuing: with SGD
    without momentum (no optimizer state to lose) a run resumed at k = 7 from its own weights
    at 7 ends exactly where the uninterrupted run ends."""
    from lth.core.data import augment_batch

    splits = image_splits() if augmented else cluster_splits()
    shape = tuple(splits.train_x.shape[1:])

    def net():
        return build_model("lenet300_100", shape, 10, torch.Generator().manual_seed(0), 0.0)

    mask = magnitude_mask(net(), 0.5)
    augment = augment_batch if augmented else None
    whole = net()
    full = train(whole, mask, splits, RESUME, torch.Generator().manual_seed(1),
                 checkpoint_iterations=(7,), augment=augment, log=lambda _: None)
    resumed = net()
    resumed.load_state_dict(full.checkpoints[7])
    lrs = []
    hook = register_optimizer_step_pre_hook(
        lambda opt, *_: lrs.append(opt.param_groups[0]["lr"]))
    try:
        part = train(resumed, mask, splits, RESUME, torch.Generator().manual_seed(1),
                     checkpoint_iterations=(7, 9), augment=augment, log=lambda _: None, start=7)
    finally:
        hook.remove()
    assert all(torch.equal(v, whole.state_dict()[k]) for k, v in resumed.state_dict().items())
    assert lrs[0] == RESUME.lr * lr_factor(7, RESUME) == pytest.approx(0.05)
    assert lrs[12 - 7] == pytest.approx(0.025) and len(lrs) == 13
    assert all(torch.equal(part.checkpoints[7][k], full.checkpoints[7][k]) for k in mask)
    evaluated = [r["iteration"] for r in part.metrics if r["split"] == "val"]
    assert evaluated == [7, 10, 15, 20]
    shared = [r for r in full.metrics if r["iteration"] >= 10]
    assert [r for r in part.metrics if r["iteration"] >= 10] == shared


def test_a_resumed_runs_progress_line_counts_from_its_start():
    lines = []
    model = lenet()
    train(model, magnitude_mask(model), cluster_splits(), SCHEDULE,
          torch.Generator().manual_seed(1), log=lines.append, prefix="[t]", start=30)
    assert [line.split()[2] for line in lines] == ["30/60", "40/60", "60/60"]
    assert "ETA nans" in lines[0] and "ETA nans" not in lines[1]


def test_a_batch_larger_than_the_training_set_is_one_error_not_an_endless_loop():
    s = dataclasses.replace(SCHEDULE, batch_size=11)
    batches = batch_indices(10, s, torch.Generator().manual_seed(0), "cpu")
    with pytest.raises(LthError, match="batch_size 11 is more than the 10 training examples"):
        next(batches)


def test_a_run_resumed_at_its_last_iteration_trains_nothing_and_is_evaluated_once():
    """Early-Bird's ticket drawn at the end (the detector never fired): EB Train resumes at
    T, so the weights stay as drawn and val, test and train are evaluated at T."""
    model = lenet()
    mask = magnitude_mask(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, mask, cluster_splits(), SCHEDULE, torch.Generator().manual_seed(1),
                   log=lambda _: None, start=SCHEDULE.iterations)
    assert [(r["iteration"], r["split"]) for r in result.metrics] == [
        (60, "val"), (60, "test"), (60, "train")]
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k] * mask[k] if k in mask else before[k])
               for k in before)
