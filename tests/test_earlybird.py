"""Early-Bird tickets: mask distances, the detector's queue semantics, magnitude and channel
tickets, network slimming, and the search on a real training run."""

import copy
import dataclasses
import pickle

import pytest
import torch
import torch.nn.functional as F

from lth.core.data import DatasetInfo
from lth.core.errors import LthError
from lth.core.masks import counts, full_mask
from lth.core.models import prunable_names, vgg
from lth.core.train import train
from lth.methods.earlybird import (
    Detector,
    Slimming,
    changed_fraction,
    channel_ticket,
    check_earlybird,
    hamming,
    magnitude_ticket,
    prune_channels,
    search,
    training_monitor,
    vacuous_hamming,
)
from lth.plan.catalog import POOL, round_half_up
from lth.plan.families.earlybird import EarlyBird, slimming_extension
from networks import SCHEDULE, cluster_splits, lenet, magnitude_mask, small_vgg

EB = EarlyBird(densities=(0.2, 0.05), scope="global", check_every=10, epsilon=0.1, queue=5,
               distance="changed_fraction")
ADAM = dataclasses.replace(SCHEDULE, iterations=300, eval_every=100)  # Adam, lr 1e-3
LENET_WEIGHTS = 784 * 300 + 300 * 100 + 100 * 10  # 266,200


def kept(n, positions, split=6):
    """A mask over n positions kept at `positions`, as two layers (the first `split`
    positions and the rest), so that every measure pools over layers."""
    flat = torch.zeros(n, dtype=torch.bool)
    flat[list(positions)] = True
    return {"a": flat[:split], "b": flat[split:]}


# ---- distances and the detector ---------------------------------------------------------


def test_hand_case_distances():
    m0, m1 = kept(10, {0, 1, 2}), kept(10, {0, 1, 3})
    assert hamming(m1, m0) == 0.2
    assert changed_fraction(m1, m0) == 1 / 3  # 0.2 / (2 * 0.3)


@pytest.mark.parametrize("distance", ["hamming", "changed_fraction"])
def test_detector_fires_when_the_newest_matches_all_four_older_at_index_5_not_4(distance):
    detector = Detector(0.1, queue=5, distance=distance)
    masks = [kept(10, {0, 1, 2})] + [kept(10, {0, 1, 3}) for _ in range(5)]
    fired = [detector.push(m) for m in masks]
    assert fired == [False] * 5 + [True]
    first = 0.2 if distance == "hamming" else 1 / 3
    assert detector.history[0] == [0]
    assert detector.history[1] == [1, first]
    assert detector.history[4] == [4, first, 0.0, 0.0, 0.0]  # m4 vs m0..m3, oldest first
    assert detector.history[5] == [5, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("distance", ["hamming", "changed_fraction"])
def test_slow_drift_never_fires_though_consecutive_masks_are_close(distance):
    """Each check swaps 3 of 30 kept weights for 3 never used: consecutive masks are within
    epsilon (a consecutive-pair detector would fire at index 4), the newest is 4 swaps from
    the oldest in the queue (hamming 0.24, changed fraction 0.4)."""
    masks = [kept(100, range(3 * k, 3 * k + 30), split=37) for k in range(15)]
    measure = hamming if distance == "hamming" else changed_fraction
    consecutive = [measure(masks[k], masks[k - 1]) for k in range(1, 15)]
    assert consecutive == [0.06 if distance == "hamming" else 0.1] * 14
    detector = Detector(0.1, queue=5, distance=distance)
    assert not any(detector.push(m, at=10 * k) for k, m in enumerate(masks))
    assert detector.history[4][0] == 40
    assert detector.history[4][1] == pytest.approx(0.24 if distance == "hamming" else 0.4)
    assert [len(row) for row in detector.history] == [1, 2, 3, 4] + [5] * 11


def random_masks(n, density, count, seed):
    """Independent uniformly random masks keeping round(density * n) of n positions."""
    g = torch.Generator().manual_seed(seed)
    k = round_half_up(density * n)
    return [kept(n, torch.randperm(n, generator=g)[:k].tolist(), split=n // 3)
            for _ in range(count)]


def test_metric_identities():
    a, b = random_masks(1000, 0.3, 2, seed=0)
    k, n = counts(a)
    common = sum(int((a[x] & b[x]).sum()) for x in a)
    assert hamming(a, a) == 0 and changed_fraction(a, a) == 0
    assert hamming(a, b) == hamming(b, a) == 2 * (k - common) / n
    assert changed_fraction(a, b) == pytest.approx(1 - common / k)
    assert hamming({x: ~m for x, m in a.items()}, a) == 1.0
    # above density 1/2 the bound is 2 (N - K): the complement's disjoint partner gives 1
    dense = kept(10, range(7))
    assert changed_fraction(dense, kept(10, {0, 1, 2, 3, 7, 8, 9})) == 1.0
    dense_pairs = zip(random_masks(500, 0.8, 5, 1), random_masks(500, 0.8, 5, 2), strict=True)
    for x, y in [(a, b), *dense_pairs]:
        assert 0 <= changed_fraction(x, y) <= 1
    with pytest.raises(ValueError, match="density strictly between 0 and 1"):
        changed_fraction(kept(10, range(10)), kept(10, range(10)))


def test_hamming_is_vacuous_at_high_sparsity_and_changed_fraction_is_not():
    """Independent random masks at d = 0.05: the Hamming detector fires at its first full
    queue, changed_fraction (expected 1 - d = 0.95) never does."""
    assert vacuous_hamming(0.05, 0.1) and vacuous_hamming(0.95, 0.1)
    assert not vacuous_hamming(0.2, 0.1) and not vacuous_hamming(0.06, 0.1)
    masks = random_masks(2000, 0.05, 10, seed=3)
    by_hamming, by_changed = Detector(0.1, 5, "hamming"), Detector(0.1, 5, "changed_fraction")
    assert [by_hamming.push(m) for m in masks][4]
    assert not any(by_changed.push(m) for m in masks)
    distances = [d for row in by_changed.history for d in row[1:]]
    assert min(distances) > 0.85 and max(distances) <= 1.0


def eb(**changes):
    return dataclasses.replace(EB, **changes)


@pytest.mark.parametrize(("settings", "message"), [
    (eb(distance="hamming", densities=(0.2, 0.05)),
     "^earlybird: the hamming threshold is vacuous at density 0.05"),
    (eb(densities=(0.2, 1.0)), r"^earlybird.densities must be in \(0, 1\)"),
    (eb(densities=()), r"^earlybird.densities must be in \(0, 1\)"),
    (eb(densities=(0.2, 0.2)), r"^earlybird.densities must be distinct, got \[0.2, 0.2\]"),
    (eb(scope="per_layer"), "^earlybird.scope must be"),
    (eb(check_every=0), "^earlybird.check_every must be >= 1"),
    (eb(epsilon=1.0), r"^earlybird.epsilon must be in \[0, 1\)"),
    (eb(queue=1), "^earlybird.queue must be >= 2"),
    (eb(distance="cosine"), "^earlybird.distance must be one of changed_fraction, hamming"),
    (eb(check_every=100), "^earlybird: a queue of 5 checks every 100 iterations first fills at "
                          "iteration 400, but training has 300"),
])
def test_bad_settings_give_one_clear_error(settings, message):
    with pytest.raises(LthError, match=message):
        check_earlybird(settings, 300)


def test_faithful_hamming_settings_pass():
    check_earlybird(eb(distance="hamming", densities=(0.7, 0.5, 0.3)), 300)


# ---- tickets ----------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_magnitude_ticket_keeps_the_largest_weights_exactly(scope):
    model = lenet(seed=4)
    before = copy.deepcopy(model.state_dict())
    names = prunable_names(model)
    mask = magnitude_ticket(model, 0.05, scope, names)
    assert all(torch.equal(mask[n], m) for n, m in magnitude_mask(model, 0.05, scope).items())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    params = dict(model.named_parameters())
    groups = [names] if scope == "global" else [[n] for n in names]
    for group in groups:  # the top-k of |w| (float weights: no ties)
        flat = torch.cat([params[n].detach().abs().flatten() for n in group])
        keep = round_half_up(0.05 * flat.numel())
        expected = torch.zeros(flat.numel(), dtype=torch.bool)
        expected[torch.topk(flat, keep).indices] = True
        assert torch.equal(torch.cat([mask[n].flatten() for n in group]), expected)
        assert int(expected.sum()) == keep


def slimmable_vgg(cfg=(8, POOL, 16, 21), seed=0):
    """A VGG on 3x8x8 inputs whose BatchNorm layers hold random scales, shifts and running
    statistics, as network slimming leaves them (a channel ticket must carry them over)."""
    model = vgg(cfg, (3, 8, 8), 10, torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.randn(c, generator=g))
                module.bias.copy_(torch.randn(c, generator=g))
                module.running_mean.copy_(torch.randn(c, generator=g))
                module.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return model


def test_channel_ticket_hand_case_keeps_an_exact_count_by_global_abs_gamma():
    model = vgg((2, POOL, 3), (3, 8, 8), 10, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.bn1.weight.copy_(torch.tensor([0.5, -2.0]))
        model.bn2.weight.copy_(torch.tensor([1.0, -0.5, 0.1]))
    # |gamma| = 0.5, 2.0 | 1.0, 0.5, 0.1; ratio 0.5 keeps round_half_up(2.5) = 3 of 5: 2.0, 1.0
    # and the tie at 0.5 goes to the lower index (bn1's). The reference's strict threshold
    # |gamma| > sorted[int(5 * 0.5)] = 0.5 would keep only 2.
    mask = channel_ticket(model, 0.5)
    assert list(mask) == ["bn1", "bn2"]
    assert mask["bn1"].tolist() == [True, True] and mask["bn2"].tolist() == [True, False, False]
    assert torch.equal(model.bn1.weight, torch.tensor([0.5, -2.0]))  # untouched
    assert channel_ticket(model, 0.0)["bn2"].all()
    with pytest.raises(LthError, match=r"^channel_ticket: ratio must be in \[0, 1\)"):
        channel_ticket(model, 1.0)
    with pytest.raises(LthError, match="^channel_ticket: Sequential has no BatchNorm layer"):
        channel_ticket(lenet(), 0.5)


@pytest.mark.parametrize("training", [False, True])
@torch.no_grad()
def test_pruned_channels_compute_what_the_masked_network_computes(training):
    model = slimmable_vgg()
    mask = channel_ticket(model, 0.5)
    assert counts(mask) == (23, 45)  # round_half_up(0.5 * 45)
    assert hamming(mask, channel_ticket(model, 0.2)) == 13 / 45  # the same ranking, 13 more
    pruned = prune_channels(model, mask)
    widths = [int(mask[f"bn{i}"].sum()) for i in (1, 2, 3)]
    assert pruned.cfg == (widths[0], POOL, widths[1], widths[2]) and all(widths)
    masked = copy.deepcopy(model)
    for name, keep in mask.items():  # a dropped channel outputs exactly zero
        bn = masked.get_submodule(name)
        bn.weight[~keep] = 0.0
        bn.bias[~keep] = 0.0
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    masked.train(training), pruned.train(training)
    out = pruned(x)
    torch.testing.assert_close(out, masked(x), rtol=1e-5, atol=1e-5)
    assert out.abs().max() > 0.1
    assert sum(p.numel() for p in pruned.parameters()) < sum(
        p.numel() for p in model.parameters())


def test_prune_channels_rejects_an_emptied_layer_and_other_models():
    model = slimmable_vgg()
    mask = {name: torch.ones_like(m) for name, m in channel_ticket(model, 0.5).items()}
    mask["bn2"] = torch.zeros_like(mask["bn2"])
    with pytest.raises(LthError, match="^prune_channels: bn2 would keep no channel"):
        prune_channels(model, mask)
    with pytest.raises(LthError, match="^prune_channels: expected channel masks for bn1, bn2"):
        prune_channels(model, {"bn1": mask["bn1"]})
    with pytest.raises(LthError, match="^prune_channels: expected a lth.core.models.VGG"):
        prune_channels(lenet(), mask)


def small_image_splits():
    """The cluster data average-pooled to 1x7x7 images: a VGG trains on it in milliseconds."""
    s = cluster_splits()
    small = [F.avg_pool2d(x, 4) for x in (s.train_x, s.val_x, s.test_x)]
    return dataclasses.replace(s, train_x=small[0], val_x=small[1], test_x=small[2],
                               info=DatasetInfo("clusters", (1, 7, 7), 10))


def test_slimming_moves_gamma_by_exactly_lr_s_sign_without_data_gradient():
    """A zero output layer gives every conv and BatchNorm parameter a zero data gradient, so
    one plain-SGD step moves only gamma, by -lr * s * sign(gamma)."""
    model = vgg((4, POOL, 6), (1, 7, 7), 10, torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.output.weight.zero_()
        model.bn1.weight.copy_(torch.tensor([0.5, -0.25, 0.0, 2.0]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = dataclasses.replace(SCHEDULE, optimizer="sgd", lr=0.1, momentum=0.0, iterations=1)
    names = prunable_names(model)
    dense = full_mask({n: p for n, p in model.named_parameters() if n in names})
    train(model, dense, small_image_splits(), s, torch.Generator().manual_seed(1),
          log=lambda _: None, after_backward=Slimming(1e-4))
    for bn in ("bn1", "bn2"):
        gamma = before[f"{bn}.weight"]
        step = torch.sign(gamma) * torch.tensor(1e-4)
        assert torch.equal(getattr(model, bn).weight, gamma - 0.1 * step)
        assert torch.equal(getattr(model, bn).bias, before[f"{bn}.bias"])
    assert model.bn1.weight[2] == 0.0  # sign(0) = 0: a zero scale stays
    assert (model.bn1.weight - before["bn1.weight"]).abs().max() > 0
    assert torch.equal(model.conv1.weight, before["conv1.weight"])


# ---- the search -------------------------------------------------------------------------


def quiet(_line):
    pass


def run_search(settings, s=ADAM, seed=1):
    model = lenet()
    return search(model, cluster_splits(), s, torch.Generator().manual_seed(seed), settings,
                  prunable_names(model), log=quiet), model


def uninterrupted(s, until, seed=1):
    """Checkpoints at every check of a plain train() run with the search's generator."""
    model = lenet()
    names = prunable_names(model)
    dense = full_mask({n: p for n, p in model.named_parameters() if n in names})
    result = train(model, dense, cluster_splits(), dataclasses.replace(s, iterations=until),
                   torch.Generator().manual_seed(seed), log=quiet,
                   checkpoint_iterations=tuple(range(0, until + 1, 10)))
    return result.checkpoints


def expected_history(checkpoints, density, until, queue=5):
    """[it, changed fractions of its mask to up to queue - 1 earlier ones] per check,
    recomputed from the checkpoints with prune_to_density(magnitude_scores)."""
    model = lenet()
    masks = []
    for it in range(0, until + 1, 10):
        model.load_state_dict(checkpoints[it])
        masks.append(magnitude_mask(model, density, "global"))
    return [[10 * k, *(changed_fraction(masks[k], masks[j])
                       for j in range(max(0, k - queue + 1), k))] for k in range(len(masks))]


def test_a_settled_run_fires_with_exact_masks_and_the_weights_of_t_eb():
    """Adam on learnable clusters: the masks settle within a few checks. Each ticket comes
    from the weights after t_EB iterations of the same run uninterrupted (bitwise), every
    check's mask is prune_to_density(magnitude_scores) of the weights then (the first at
    iteration 0, before any update), and training stops at the last detection."""
    settings = eb(epsilon=0.045)
    result, _ = run_search(settings)
    first, second = result.tickets
    assert first.fired and second.fired
    assert 40 <= first.iteration < second.iteration == result.last_iteration < 300
    checkpoints = uninterrupted(ADAM, result.last_iteration)
    for ticket in result.tickets:
        t = ticket.iteration
        assert t % 10 == 0
        assert all(torch.equal(ticket.weights[k], v) for k, v in checkpoints[t].items())
        assert counts(ticket.mask) == (round_half_up(ticket.density * LENET_WEIGHTS),
                                       LENET_WEIGHTS)
        history = expected_history(checkpoints, ticket.density, t)
        assert ticket.history == history
        assert history[0] == [0]
        assert max(history[-1][1:]) <= 0.045 < max(history[-2][1:])
        model = lenet()
        model.load_state_dict(checkpoints[t])
        mask = magnitude_mask(model, ticket.density, "global")
        assert all(torch.equal(ticket.mask[n], m) for n, m in mask.items())
    assert counts(second.mask)[0] == 13_310
    rows = [r for r in result.metrics if r["iteration"] == result.last_iteration]
    assert {r["split"] for r in rows} == {"val", "test", "train"}


def test_a_density_that_never_settles_gets_the_final_mask_and_fired_false():
    s = dataclasses.replace(ADAM, iterations=40)
    result, model = run_search(eb(densities=(0.2,), epsilon=0.0, queue=3), s)
    (ticket,) = result.tickets
    assert not ticket.fired and ticket.iteration == result.last_iteration == 40
    assert [row[0] for row in ticket.history] == [0, 10, 20, 30, 40]  # 40 is a check too
    assert max(ticket.history[-1][1:]) > 0
    assert all(torch.equal(ticket.weights[k], v) for k, v in model.state_dict().items())
    final = magnitude_mask(model, 0.2, "global")
    assert all(torch.equal(ticket.mask[n], m) for n, m in final.items())
    assert counts(ticket.mask)[0] == 53_240


def test_the_channel_variant_searches_with_slimming_and_prunes_physically():
    model = vgg((8, POOL, 16), (1, 7, 7), 10, torch.Generator().manual_seed(0))
    s = dataclasses.replace(SCHEDULE, optimizer="sgd", lr=0.02, momentum=0.9, iterations=30)
    settings = eb(densities=(0.5,), distance="hamming", queue=3)
    slimming, slimmed = Slimming(1e-4), []

    def slim(it, m):
        slimmed.append(it)
        slimming(it, m)

    result = search(model, small_image_splits(), s, torch.Generator().manual_seed(1), settings,
                    prunable_names(model), log=quiet,
                    ticket=lambda m, d: channel_ticket(m, 1 - d), after_backward=slim)
    (ticket,) = result.tickets
    assert slimmed == list(range(result.last_iteration))
    assert [row[0] for row in ticket.history][:3] == [0, 10, 20]
    assert ticket.iteration == result.last_iteration
    assert counts(ticket.mask) == (12, 24) and list(ticket.mask) == ["bn1", "bn2"]
    at_eb = vgg((8, POOL, 16), (1, 7, 7), 10, torch.Generator().manual_seed(0))
    at_eb.load_state_dict(ticket.weights)
    assert all(torch.equal(ticket.mask[n], m) for n, m in channel_ticket(at_eb, 0.5).items())
    pruned = prune_channels(at_eb, ticket.mask)
    assert sum(w for w in pruned.cfg if w != POOL) == 12


def test_a_retraining_slims_the_batchnorm_scales_as_its_extension_says():
    """earlybird.retrain_slimming: the retraining's after_backward hook adds s * sign(gamma) to
    every BatchNorm scale's gradient, as both of the authors' retrain scripts do
    (--sparsity-regularization); the hook saves no file and refuses a strength <= 0."""
    model = small_vgg()
    with torch.no_grad():
        model.get_parameter("bn1.weight").neg_()  # negative scales: sign -1
    x = torch.randn(4, 1, 28, 28)
    F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    hook = training_monitor(slimming_extension(0.25), {}, "cpu")
    hook(0, model)
    for name, p in model.named_parameters():
        if name in ("bn1.weight", "bn2.weight"):
            assert torch.equal(p.grad, before[name] + 0.25 * torch.sign(p.detach())), name
        else:
            assert torch.equal(p.grad, before[name]), name
    assert hook.files() == {}
    assert pickle.loads(pickle.dumps(hook)).strength == 0.25  # a CPU worker sends it back
    with pytest.raises(LthError, match="slimming: expected a strength > 0"):
        training_monitor(slimming_extension(0.0), {}, "cpu")


def test_every_retraining_reading_is_a_registered_run_folder_of_the_family():
    """The four readings of Early-Bird's retraining name four run folders of the earlybird
    family, and each states whose reading it is."""
    from lth.plan import registry
    from lth.plan.families.earlybird import RETRAININGS, method_name

    assert set(RETRAININGS) == {"rewind", "resume", "scratch_rest", "scratch"}
    for reading, how in RETRAININGS.items():
        assert registry.family_of(method_name(reading)) == "earlybird"
        assert how.weights in ("theta_0", "drawn", "fresh") and how.source
    assert RETRAININGS["scratch_rest"] == dataclasses.replace(RETRAININGS["scratch"],
                                                              resume=True,
                                                              source=RETRAININGS[
                                                                  "scratch_rest"].source)
