"""Supermasks (edge-popup, GEM-MINER): frozen weights, straight-through scores, exact counts."""

import math
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from helpers import is_nested
from lth.core import masks as M
from lth.core.errors import LthError
from lth.core.models import prunable_names
from lth.core.train import evaluate
from lth.methods.supermask import (
    EdgePopup,
    GemMiner,
    MiningResult,
    freeze_schedule,
    frozen_start_,
    gem_mask,
    mine,
    popup_mask,
)
from lth.plan.catalog import round_half_up
from lth.plan.families.supermask import Mining
from networks import cluster_splits, lenet


def mining(algo: str, **changes) -> Mining:
    settings = dict(algo=algo, weights="signed_constant", optimizer="sgd", lr=0.1, momentum=0.9,
                    weight_decay=1e-4, batch_size=60, iterations=20, eval_every=10,
                    eval_batch_size=500, regularization=0.0, freeze_every=0)
    return Mining(**{**settings, **changes})


def frozen_lenet(weights: str = "signed_constant") -> nn.Module:
    model = lenet()
    frozen_start_(model, prunable_names(model), weights)
    return model


# ---------------------------------------------------------------- frozen start


def test_signed_constant_is_sqrt_2_over_fan_in_with_the_signs_of_theta0():
    model = lenet()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    frozen_start_(model, prunable_names(model), "signed_constant")
    params = dict(model.named_parameters())
    expected = {"fc1.weight": 0.050508, "fc2.weight": 0.081650, "output.weight": 0.141421}
    for name, sigma in expected.items():
        assert torch.allclose(params[name].abs(), torch.full_like(params[name], sigma), atol=1e-6)
        assert torch.equal(params[name].sign(), theta0[name].sign())
    for name in ("fc1.bias", "fc2.bias", "output.bias"):
        assert torch.equal(params[name], theta0[name])
    again = {k: v.clone() for k, v in model.state_dict().items()}
    frozen_start_(model, prunable_names(model), "signed_constant")  # idempotent
    assert all(torch.equal(v, again[k]) for k, v in model.state_dict().items())


def test_signed_constant_of_a_conv_uses_channels_times_kernel_and_zero_gets_plus():
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    with torch.no_grad():
        model[0].weight.view(-1)[:3] = torch.tensor([0.0, -1e-9, 2.0])
    frozen_start_(model, ["0.weight"], "signed_constant")
    sigma = math.sqrt(2 / 27)  # 0.272166
    assert model[0].weight.view(-1)[:3].tolist() == pytest.approx([sigma, -sigma, sigma])
    assert torch.allclose(model[0].weight.abs(), torch.full((4, 3, 3, 3), 0.272166), atol=1e-6)


def test_theta0_weights_are_left_as_they_are_and_unknown_weights_are_refused():
    model = lenet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen_start_(model, prunable_names(model), "theta0")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(LthError, match="weights must be one of"):
        frozen_start_(model, prunable_names(model), "kaiming")


# ---------------------------------------------------------------- edge-popup's straight-through


def kept_edges_only(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """A wrong edge-popup: the same mask, but a gradient only through the kept edges."""
    m = popup_mask(scores, keep).detach()
    return m + (scores.abs() - scores.abs().detach()) * m


def popup_hand_step(mask_fn):
    """METHODS 2.3: one unit, x = [1, 2], W = [0.5, -0.5], S = [0.9, 0.1], keep 1, L = output;
    one SGD step with lr 1. Returns (loss, dL/dS, mask after, loss after)."""
    x, w = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.5])
    s = torch.tensor([0.9, 0.1], requires_grad=True)
    loss = (w * mask_fn(s, 1)) @ x
    loss.backward()
    grad = s.grad.clone()
    torch.optim.SGD([s], lr=1.0).step()
    after = mask_fn(s, 1)
    return float(loss.detach()), grad.tolist(), after.tolist(), float(((w * after) @ x).detach())


def test_a_pruned_edge_gets_a_gradient_and_pops_up_after_one_step():
    loss, grad, after, loss_after = popup_hand_step(popup_mask)
    assert loss == pytest.approx(0.5)
    assert grad == pytest.approx([0.5, -1.0])  # sign(S) * W * x: the pruned edge 1 has one
    assert after == [0.0, 1.0]  # S = [0.4, 1.1]
    assert loss_after == pytest.approx(-1.0)


def test_the_hand_case_fails_a_gradient_through_kept_edges_only():
    _, grad, after, _ = popup_hand_step(kept_edges_only)
    assert grad == pytest.approx([0.5, 0.0]) and after == [1.0, 0.0]  # edge 1 never pops up


def test_score_gradient_is_sign_s_times_w_times_the_effective_weight_gradient():
    gen = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (6, 7), (3, 6)]
    w = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    s = [torch.randn(sh, generator=gen, dtype=torch.float64, requires_grad=True) for sh in shapes]
    x, y = torch.randn(4, 5, generator=gen, dtype=torch.float64), torch.tensor([0, 2, 1, 2])

    def loss_of(effective):
        h = x
        for i, e in enumerate(effective):
            h = h @ e.T if i == len(effective) - 1 else torch.relu(h @ e.T)
        return nn.functional.cross_entropy(h, y)

    keeps = [12, 20, 9]
    through_function = torch.autograd.grad(
        loss_of([wi * popup_mask(si, k) for wi, si, k in zip(w, s, keeps, strict=True)]), s)
    effective = [(wi * popup_mask(si, k)).detach().requires_grad_()
                 for wi, si, k in zip(w, s, keeps, strict=True)]
    d_effective = torch.autograd.grad(loss_of(effective), effective)
    for si, wi, de, got in zip(s, w, d_effective, through_function, strict=True):
        torch.testing.assert_close(got, si.sign() * wi * de, rtol=1e-6, atol=0)
        assert bool((got != 0).any() & (popup_mask(si, 1) == 0).any())


def test_edge_popup_scores_start_uniform_within_one_over_sqrt_fan_in():
    weights = {"fc1.weight": torch.zeros(300, 784), "output.weight": torch.zeros(10, 100)}
    state = EdgePopup(weights, 0.5, torch.Generator().manual_seed(0))
    for name, bound in (("fc1.weight", 1 / 28), ("output.weight", 0.1)):
        magnitude = state.scores[name].detach().abs()
        assert float(magnitude.max()) <= bound and float(magnitude.max()) > 0.99 * bound
        assert abs(float(state.scores[name].detach().mean())) < 0.05 * bound


# ---------------------------------------------------------------- one observed mining run


@dataclass
class Observed:
    """A mining run on LeNet and cluster data, watched from outside."""

    start: dict[str, torch.Tensor]  # the frozen start, computed independently
    model: nn.Module
    splits: object
    result: MiningResult | None = None
    forwards: list[dict[str, int]] = field(default_factory=list)  # training forwards: kept
    eval_counts: list[dict[str, int]] = field(default_factory=list)
    unchanged_at_each_log: list[bool] = field(default_factory=list)
    optimizers: list[torch.optim.Optimizer] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)


def observed_run(m: Mining, density: float) -> Observed:
    model, splits = lenet(), cluster_splits()
    obs = Observed({k: v.clone() for k, v in frozen_lenet(m.weights).state_dict().items()},
                   model, splits)
    names = prunable_names(model)

    def counter(name):
        def count(module, args):
            if len(args[0]) == 1:
                return  # lth.core.masks.layer_macs's probe of the dense model
            counts = obs.forwards if module.training else obs.eval_counts
            if name == names[0]:
                counts.append({})
            counts[-1][name] = int(torch.count_nonzero(module.weight))
        return count

    def watch(_line):
        state = model.state_dict()
        obs.unchanged_at_each_log.append(all(torch.equal(state[k], v)
                                             for k, v in obs.start.items()))

    def seen(opt, _args, _kwargs):
        obs.optimizers.append(opt)
        obs.lrs.append(opt.param_groups[0]["lr"])

    hooks = [model.get_submodule(n.removesuffix(".weight")).register_forward_pre_hook(counter(n))
             for n in names]
    hooks.append(register_optimizer_step_pre_hook(seen))
    try:
        obs.result = mine(model, splits, m, density, torch.Generator().manual_seed(1),
                          torch.Generator().manual_seed(2), log=watch)
    finally:
        for h in hooks:
            h.remove()
    return obs


@pytest.fixture(scope="module")
def popup_run() -> Observed:
    return observed_run(mining("edge_popup"), density=0.3125)


@pytest.fixture(scope="module")
def gem_run() -> Observed:
    return observed_run(mining("gem_miner", lr=1.0, weight_decay=0.0, regularization=1e-4,
                               freeze_every=4), density=0.1)


POPUP_KEEP = {"fc1.weight": 73500, "fc2.weight": 9375, "output.weight": 313}  # 312.5 rounds up


def test_edge_popup_keeps_exactly_round_half_up_density_per_layer_at_every_forward(popup_run):
    assert len(popup_run.forwards) == 20
    assert all(c == POPUP_KEEP for c in popup_run.forwards)
    assert all(c == POPUP_KEEP for c in popup_run.eval_counts)
    mask = popup_run.result.mask
    assert {n: int(v.sum()) for n, v in mask.items()} == POPUP_KEEP
    scores = popup_run.result.scores  # |S|: what the mask ranks, so no negative entry
    assert all(bool((s >= 0).all()) for s in scores.values())
    top = M.keep_top_layerwise(scores, M.full_mask(scores), POPUP_KEEP)
    assert all(torch.equal(top[n], mask[n]) for n in mask)


def test_mining_never_writes_the_weights_and_leaves_w_times_mask(popup_run, gem_run):
    for run in (popup_run, gem_run):
        assert run.unchanged_at_each_log == [True, True, True]  # iterations 0, 10, 20
        state, mask = run.model.state_dict(), run.result.mask
        for name, value in run.start.items():
            expected = value * mask[name] if name in mask else value
            assert torch.equal(state[name], expected)
            if name in mask:
                assert bool((state[name][~mask[name]] == 0).all())


def test_the_optimiser_holds_only_the_scores_with_the_cosine_learning_rate(popup_run, gem_run):
    for run in (popup_run, gem_run):
        opts = {id(o) for o in run.optimizers}
        assert len(opts) == 1 and len(run.optimizers) == 20
        opt = run.optimizers[0]
        held = [p for g in opt.param_groups for p in g["params"]]
        saved = list(run.result.scores.values())  # |S| of edge-popup, p of GEM-MINER
        assert len(held) == len(saved)
        assert all(torch.equal(p.detach().abs(), s) for p, s in zip(held, saved, strict=True))
        weights = {p.data_ptr() for p in run.model.parameters()}
        assert not {p.data_ptr() for p in held} & weights
        assert isinstance(opt, torch.optim.SGD)
        assert opt.param_groups[0]["momentum"] == 0.9
    assert popup_run.optimizers[0].param_groups[0]["weight_decay"] == 1e-4
    assert popup_run.lrs[0] == 0.1 and popup_run.lrs[10] == pytest.approx(0.05)
    assert popup_run.lrs[19] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))


def test_edge_popup_finds_an_accurate_subnetwork_without_training_weights(popup_run):
    rows = popup_run.result.metrics
    final = {r["split"]: r for r in rows if r["iteration"] == 20}
    assert [(r["iteration"], r["split"]) for r in rows] == [
        (0, "val"), (0, "test"), (10, "val"), (10, "test"), (20, "val"), (20, "test"),
        (20, "train")]
    assert rows[1]["accuracy"] < 0.3
    assert final["test"]["accuracy"] > 0.8 and final["train"]["accuracy"] > 0.8
    splits = popup_run.splits
    assert evaluate(popup_run.model, splits.test_x, splits.test_y, 500) == pytest.approx(
        (final["test"]["loss"], final["test"]["accuracy"]))


def test_edge_popup_macs_count_sparse_forward_and_input_grad_plus_dense_score_grad(popup_run):
    shape, mask = (1, 28, 28), popup_run.result.mask
    dense, sparse = M.macs(lenet(), shape), M.macs(lenet(), shape, mask)
    assert sparse == sum(POPUP_KEEP.values())  # one MAC per linear weight and example
    assert popup_run.result.macs == {"sparse": 20 * 60 * (2 * sparse + dense),
                                     "dense": 20 * 60 * 3 * dense}


# ---------------------------------------------------------------- GEM-MINER


def test_gem_mask_rounds_at_one_half_and_passes_the_gradient_where_flagged():
    x, w = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -0.5])
    for flag, grad in (([True, True], [0.5, -1.0]), ([True, False], [0.5, 0.0])):
        p = torch.tensor([0.6, 0.4], requires_grad=True)
        m = gem_mask(p, torch.tensor(flag))
        assert m.tolist() == [1.0, 0.0]
        ((w * m) @ x).backward()
        assert p.grad.tolist() == pytest.approx(grad)  # the unkept edge 1 has one if flagged


def gem_state(scores, density: float, iterations: int, freeze_every: int, seed: int = 0):
    scores = torch.as_tensor(scores, dtype=torch.float32)
    m = mining("gem_miner", iterations=iterations, freeze_every=freeze_every)
    state = GemMiner({"w": torch.zeros(scores.shape)}, density, m,
                     torch.Generator().manual_seed(seed))
    with torch.no_grad():
        state.scores["w"].copy_(scores)
    return state


def test_a_freeze_of_an_all_tied_layer_keeps_an_unstructured_seeded_random_subset():
    """Every score clamped to 0: the freeze keeps 500 of 5,000 weights spread over the
    layer (by flat index it would keep rows 0-9 only), the same ones for the same seed, and
    records 5,000 tied scores."""
    flags = {}
    for seed in (0, 0, 1):
        state = gem_state(torch.full((100, 50), -0.3), density=0.1, iterations=2,
                          freeze_every=1, seed=seed)
        state.after_step(1)
        flags.setdefault(seed, []).append(state.flag["w"])
        assert int(state.flag["w"].sum()) == 500 and state.facts()["tied_at_threshold"] == [5000]
    rows, columns = flags[0][0].any(dim=1).sum(), flags[0][0].any(dim=0).sum()
    assert rows > 90 and columns == 50  # 500 of 5,000 at random hit ~99.5 rows
    assert torch.equal(flags[0][0], flags[0][1]) and not torch.equal(flags[0][0], flags[1][0])


def test_a_freeze_keeps_every_score_above_the_threshold_and_counts_only_flagged_ties():
    scores = [0.9, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0, 0.0]
    state = gem_state(scores, density=0.25, iterations=3, freeze_every=1)
    assert state.freezes == {1: 4, 2: 2}
    state.after_step(1)  # keeps 0.9, 0.7 and 2 of the 6 zeros
    first = state.flag["w"]
    assert first[[0, 3]].all() and int(first.sum()) == 4
    state.after_step(2)  # keeps 0.9, 0.7: 2 flagged zeros are tied below them, 4 are frozen
    assert state.flag["w"].nonzero().flatten().tolist() == [0, 3]
    assert state.facts()["tied_at_threshold"] == [6, 1]  # the 2nd threshold is 0.7, untied


def test_scores_are_projected_to_the_unit_interval_after_each_step():
    state = gem_state([1.3, -0.2], density=0.5, iterations=3, freeze_every=2)
    state.after_step(1)
    assert state.scores["w"].tolist() == [1.0, 0.0] and state.flag["w"].tolist() == [True, True]


def test_freezing_removes_the_lowest_flagged_scores_and_never_brings_one_back():
    state = gem_state([0.9, 0.2, 0.7, 0.4], density=0.5, iterations=2, freeze_every=1)
    state.after_step(1)
    assert state.flag["w"].tolist() == [True, False, True, False]

    state = gem_state([0.9, 0.2, 0.7, 0.4, 0.8, 0.1, 0.6, 0.3], density=0.25, iterations=3,
                      freeze_every=1)
    assert state.freezes == {1: 4, 2: 2}  # 8 * 0.25^(1/2), 8 * 0.25
    state.after_step(1)
    first = state.flag["w"].clone()
    assert first.tolist() == [True, False, True, False, True, False, True, False]
    with torch.no_grad():
        state.scores["w"].copy_(torch.tensor([0.1, 1.0, 0.9, 1.0, 0.2, 1.0, 0.3, 1.0]))
    state.after_step(2)
    assert state.flag["w"].tolist() == [False, False, True, False, False, False, True, False]
    assert is_nested(state.flag, {"w": first})


def test_freeze_schedule_decays_geometrically_to_exactly_the_target():
    assert freeze_schedule(1000, 0.1, 100, 10) == dict(zip(
        range(10, 100, 10), [774, 599, 464, 359, 278, 215, 167, 129, 100], strict=True))
    reference = freeze_schedule(272474, 0.0144, 150, 5)  # E = 150, T_p = 5: 29 freezes
    assert list(reference) == list(range(5, 150, 5))
    assert reference[145] == round_half_up(0.0144 * 272474)
    assert list(reference.values()) == sorted(reference.values(), reverse=True)
    for iterations, every in ((10, 10), (100, 0)):
        with pytest.raises(LthError, match="freeze_every"):
            freeze_schedule(1000, 0.1, iterations, every)


def test_the_regulariser_alone_shrinks_scores_by_two_lr_lambda():
    """With zero weights the data gradient of every score is 0: p <- p (1 - 2 lr_t lambda)."""
    model = lenet()
    with torch.no_grad():
        for name in prunable_names(model):
            model.get_parameter(name).zero_()
    m = mining("gem_miner", weights="theta0", lr=0.5, momentum=0.0, weight_decay=0.0,
               regularization=0.1, iterations=2, freeze_every=1, eval_every=2)
    shapes = {n: model.get_parameter(n).detach() for n in prunable_names(model)}
    p0 = GemMiner(shapes, 0.5, m, torch.Generator().manual_seed(4)).scores
    result = mine(model, cluster_splits(), m, 0.5, torch.Generator().manual_seed(4),
                  torch.Generator().manual_seed(2), log=lambda _: None)
    factor = (1 - 2 * 0.5 * 0.1) * (1 - 2 * 0.5 * 0.5 * 0.1)  # lr factors 1, then 0.5
    for name, p in result.scores.items():
        torch.testing.assert_close(p, p0[name].detach() * factor, rtol=1e-6, atol=1e-7)
    # the shrunk scores leave flagged weights below 0.5: the gem keeps fewer than the flags
    assert M.counts(result.flags)[0] == round_half_up(0.5 * 266200)
    assert all(torch.equal(result.mask[n], (p > 0.5) & result.flags[n])
               for n, p in result.scores.items())
    assert M.counts(result.mask)[0] < 0.45 * 266200


def test_gem_miner_flags_end_at_the_exact_count_and_the_rounded_gem_is_above_chance(gem_run):
    """The flags (what gem_miner trains) keep exactly the target count; the returned mask is
    the rare gem, the rounded mask of the last forward, nested in them, and every evaluation
    (the final ones too) is of the network the forward uses."""
    result, total = gem_run.result, 266200
    target = round_half_up(0.1 * total)
    assert M.counts(result.flags) == (target, total)
    assert result.extra["flags"] == {"kept": target, "density": target / total}
    assert result.extra["freeze_iterations"] == [4, 8, 12, 16]
    assert result.extra["flagged_after_freeze"] == list(freeze_schedule(total, 0.1, 20, 4)
                                                        .values())
    assert result.extra["flagged_after_freeze"][-1] == target
    assert all(bool(((s >= 0) & (s <= 1)).all()) for s in result.scores.values())
    gem = {n: (p > 0.5) & result.flags[n] for n, p in result.scores.items()}
    assert all(torch.equal(result.mask[n], gem[n]) for n in gem)
    assert is_nested(result.mask, result.flags)
    kept = M.counts(result.mask)[0]
    assert sum(gem_run.forwards[-1].values()) == kept  # the last forward's mask
    assert [sum(c.values()) for c in gem_run.eval_counts[-3:]] == [kept] * 3  # val, test, train
    final = {r["split"]: r["accuracy"] for r in result.metrics if r["iteration"] == 20}
    assert final["test"] > 0.8 and final["train"] > 0.8


def test_gem_miner_records_the_ties_of_every_freeze(gem_run):
    tied = gem_run.result.extra["tied_at_threshold"]
    assert len(tied) == len(gem_run.result.extra["freeze_iterations"])
    assert all(isinstance(t, int) and t >= 1 for t in tied)


def test_gem_miner_forwards_only_flagged_weights_and_counts_their_macs(gem_run):
    kept = [sum(c.values()) for c in gem_run.forwards]
    flagged = [266200] * 4 + [n for n in gem_run.result.extra["flagged_after_freeze"]
                              for _ in range(4)]
    assert all(k <= f for k, f in zip(kept, flagged, strict=True))
    dense = M.macs(lenet(), (1, 28, 28))
    assert gem_run.result.macs == {"sparse": 60 * sum(2 * k + dense for k in kept),
                                   "dense": 20 * 60 * 3 * dense}


# ---------------------------------------------------------------- settings it cannot run with


@pytest.mark.parametrize("algo,density,changes,message", [
    ("edge_popup", 0.0004, {}, "keeps no weight of layer output.weight"),
    ("edge_popup", 0.0, {}, r"density must be in \(0, 1\]"),
    ("gem_miner", 1.5, {"freeze_every": 10}, r"density must be in \(0, 1\]"),
    ("gem_miner", 1e-7, {"freeze_every": 10}, "keeps none of the 266200 weights"),
    ("gem_miner", 0.1, {"freeze_every": 100}, "freeze_every"),
    ("popup", 0.1, {}, "algo must be one of"),
])
def test_settings_it_cannot_run_with_fail_in_one_line_before_any_work(algo, density, changes,
                                                                      message):
    lines = []
    model = lenet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(LthError, match=message) as err:
        mine(model, cluster_splits(), mining(algo, **changes), density,
             torch.Generator().manual_seed(1), torch.Generator().manual_seed(2), log=lines.append)
    assert "\n" not in str(err.value) and lines == []
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_adam_mines_the_same_way():
    m = mining("gem_miner", optimizer="adam", lr=0.01, weight_decay=0.0, iterations=3,
               freeze_every=1, eval_every=3, regularization=1e-4)
    seen = []
    handle = register_optimizer_step_pre_hook(lambda opt, _a, _k: seen.append(opt))
    try:
        result = mine(lenet(), cluster_splits(), m, 0.2, torch.Generator().manual_seed(1),
                      torch.Generator().manual_seed(2), log=lambda _: None)
    finally:
        handle.remove()
    assert all(isinstance(o, torch.optim.Adam) for o in seen) and len(seen) == 3
    assert M.counts(result.mask) == (round_half_up(0.2 * 266200), 266200)
