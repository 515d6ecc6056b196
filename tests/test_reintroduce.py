"""Re-introduction (Double-/Scored-pruning, METHODS §5): exact counts, IMP at ratio 0, the
hand cases, and the alignment-score accumulator on real training."""

import dataclasses

import pytest
import torch
from torch import nn

from lth.core import masks as M
from lth.core.errors import LthError
from lth.core.models import prunable_names
from lth.core.train import train
from lth.methods.reintroduce import (
    AlignmentScores,
    complement,
    random_regrow_scores,
    regrow_scores_of,
    regrown_counts,
    reintroduce,
)
from lth.plan.catalog import round_half_up
from networks import SCHEDULE, cluster_splits, lenet, magnitude_mask

RATES = {"fc": 0.2, "output": 0.1}  # LTH's LeNet rates by layer kind
SHORT = dataclasses.replace(SCHEDULE, iterations=30, eval_every=30)


def lenet_shapes() -> dict[str, torch.Size]:
    model = lenet()
    params = dict(model.named_parameters())
    return {n: params[n].shape for n in prunable_names(model)}


def random_scores(seed: int, ties: bool = False) -> M.Scores:
    """Random scores over LeNet's prunable weights; with ties, on a coarse grid (many equal)."""
    gen = torch.Generator().manual_seed(seed)
    scores = {n: torch.rand(shape, generator=gen) for n, shape in lenet_shapes().items()}
    return {n: (s * 8).floor() if ties else s for n, s in scores.items()}


def lenet_rates() -> dict[str, float]:
    names = list(lenet_shapes())
    return {n: RATES["output"] if n == names[-1] else RATES["fc"] for n in names}


def previous_mask() -> M.Mask:
    """A round-2-like parent: 40% of each layer kept, by unrelated scores."""
    scores = random_scores(1)
    return M.prune_to_density(scores, M.full_mask(scores), 0.4, "layerwise", list(scores))


def imp_step(previous: M.Mask, alive: M.Scores, scope: str) -> M.Mask:
    if scope == "layerwise":
        return M.prune_fraction_layerwise(alive, previous, lenet_rates())
    return M.prune_fraction_global(alive, previous, 0.2, list(previous))


def single_layer(kept: list[int], size: int = 6) -> M.Mask:
    m = torch.zeros(size, dtype=torch.bool)
    m[kept] = True
    return {"w": m}


def kept(mask: M.Mask) -> list[int]:
    return mask["w"].nonzero().flatten().tolist()


@pytest.mark.parametrize("scope", ["layerwise", "global"])
@pytest.mark.parametrize("ties", [False, True])
def test_ratio_zero_gives_imps_mask_bitwise(scope, ties):
    previous, alive = previous_mask(), random_scores(2, ties)
    imp = imp_step(previous, alive, scope)
    new = reintroduce(imp, previous, alive, random_scores(3), 0.0)
    assert all(torch.equal(new[n], imp[n]) for n in imp)


@pytest.mark.parametrize("scope", ["layerwise", "global"])
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 1.0])
def test_counts_equal_imps_and_regrowth_comes_from_the_pruned(scope, ratio):
    previous, alive, regrow = previous_mask(), random_scores(2), random_scores(3)
    imp = imp_step(previous, alive, scope)
    new = reintroduce(imp, previous, alive, regrow, ratio)
    for n, prev in previous.items():
        removed_by_imp = int(prev.sum()) - int(imp[n].sum())
        back = new[n] & ~prev
        assert int(new[n].sum()) == int(imp[n].sum())
        assert int(back.sum()) == round_half_up(ratio * removed_by_imp)
        assert not bool((new[n] & prev & ~imp[n]).any())  # the alive kept are IMP's best
        assert int((imp[n] & ~new[n]).sum()) == int(back.sum())  # one more removed per regrown
        if ratio > 0:  # the best-scoring pruned weights come back
            assert regrow[n][back].min() >= regrow[n][~prev & ~new[n]].max()
    if scope == "layerwise":
        names = list(previous)
        assert int(imp[names[0]].sum()) == 94080 - round_half_up(0.2 * 94080)  # 0.4*784*300


def test_dense_parent_reintroduces_nothing():
    alive = random_scores(2)
    dense = M.full_mask(alive)
    imp = imp_step(dense, alive, "layerwise")
    new = reintroduce(imp, dense, alive, random_scores(3), 1.0)
    assert all(torch.equal(new[n], imp[n]) for n in imp)


def scored_hand_scores(g4: float) -> M.Scores:
    """S of METHODS 5.5's hand case, through AlignmentScores on one step of set gradients."""
    layer = nn.Linear(6, 1, bias=False)
    model = nn.Sequential(layer)
    mask = {"0.weight": torch.tensor([[True, True, True, True, False, False]])}
    reset = {"0.weight": torch.tensor([[9.0, 9.0, 9.0, 9.0, 1.0, -1.0]])}
    acc = AlignmentScores(reset, mask)
    layer.weight.grad = torch.tensor([[0.7, -0.1, 0.2, 0.3, g4, -0.2]])
    acc(0, model)
    return {"w": acc.scores()["0.weight"].flatten()}


def test_scored_hand_case():
    previous = single_layer([0, 1, 2, 3])
    alive = {"w": torch.tensor([5.0, 4.0, 3.0, 2.0, 0.0, 0.0])}  # |theta_T|
    imp = M.prune_fraction_layerwise(alive, previous, {"w": 0.5})
    assert kept(imp) == [0, 1]
    s = scored_hand_scores(-0.3)
    assert s["w"].tolist() == pytest.approx([0, 0, 0, 0, 0.3, -0.2])
    assert kept(reintroduce(imp, previous, alive, s, 0.5, positive_only=True)) == [0, 4]
    s = scored_hand_scores(0.3)  # no positive score: nothing comes back, IMP's mask
    assert kept(reintroduce(imp, previous, alive, s, 0.5, positive_only=True)) == [0, 1]


def test_double_hand_case():
    previous = single_layer([0, 1, 2, 3])
    alive = {"w": torch.tensor([5.0, 4.0, 3.0, 2.0, 0.0, 0.0])}
    imp = M.prune_fraction_layerwise(alive, previous, {"w": 0.5})
    theta_c = {"w": torch.tensor([0.0, 0.0, 0.0, 0.0, 0.1, -0.7])}
    regrow = regrow_scores_of("double", previous, theta_c, torch.Generator())
    assert kept(reintroduce(imp, previous, alive, regrow, 0.5)) == [0, 5]


def test_positive_only_with_few_positive_scores_keeps_more_alive():
    previous, alive = previous_mask(), random_scores(2)
    regrow = {n: s - 0.98 for n, s in random_scores(3).items()}  # 2% positive
    imp = imp_step(previous, alive, "layerwise")
    new = reintroduce(imp, previous, alive, regrow, 1.0, positive_only=True)
    for n, prev in previous.items():
        positive = int((~prev & (regrow[n] > 0)).sum())
        assert 0 < positive < int(prev.sum()) - int(imp[n].sum())
        assert int((new[n] & ~prev).sum()) == positive
        assert int(new[n].sum()) == int(imp[n].sum())


def test_bad_inputs_are_refused():
    previous = single_layer([0, 1, 2, 3])
    scores = {"w": torch.arange(6.0)}
    with pytest.raises(ValueError, match="ratio 1.5"):
        reintroduce(previous, previous, scores, scores, 1.5)
    with pytest.raises(ValueError, match="keeps weights the previous mask pruned"):
        reintroduce(single_layer([0, 5]), previous, scores, scores, 0.5)
    with pytest.raises(LthError, match="scores.safetensors: no tensor shaped like .* w"):
        regrow_scores_of("scored", previous, {"w": torch.zeros(5)}, torch.Generator(),
                         "scores.safetensors")
    with pytest.raises(LthError, match="ranking 'grow'"):
        regrow_scores_of("grow", previous, None, torch.Generator())


def test_random_regrow_scores_rank_the_pruned_uniformly():
    previous = single_layer([0, 2, 4, 6, 8], size=15)
    gen = torch.Generator().manual_seed(0)
    first = random_regrow_scores(previous, gen)["w"]
    assert torch.all(first[previous["w"]] == 0)
    assert sorted(first[~previous["w"]].tolist())[0] >= 1
    assert len(set(first[~previous["w"]].tolist())) == 10  # distinct ranks
    imp = single_layer([0, 2, 4, 6], size=15)
    alive = {"w": -torch.arange(15.0)}
    chosen = torch.zeros(15)
    for _ in range(1000):
        regrow = regrow_scores_of("random", previous, None, gen)
        chosen += (reintroduce(imp, previous, alive, regrow, 1.0)["w"] & ~previous["w"]).float()
    assert chosen.sum() == 1000 and torch.all(chosen[previous["w"]] == 0)
    assert torch.all((chosen[~previous["w"]] > 60) & (chosen[~previous["w"]] < 140))  # 100+-4sd


def short_run(after_backward=None) -> dict[str, torch.Tensor]:
    """The final weights of 30 Adam steps of LeNet at 30% density (same start, data, mask)."""
    model = lenet()
    train(model, magnitude_mask(model, 0.3), cluster_splits(), SHORT,
          torch.Generator().manual_seed(5), log=lambda _: None, after_backward=after_backward)
    return model.state_dict()


def test_alignment_scores_observe_training_and_equal_a_hand_accumulation():
    model = lenet()
    mask = magnitude_mask(model, 0.3)
    theta_k = {n: p.detach().clone() for n, p in model.named_parameters()}  # pruned included
    acc = AlignmentScores(theta_k, mask, window_start=10)
    with_hook = short_run(acc)
    without = short_run()
    assert all(torch.equal(with_hook[k], without[k]) for k in without)

    grads: dict[int, dict[str, torch.Tensor]] = {}

    def capture(it, net):
        grads[it] = {n: net.get_parameter(n).grad.clone() for n in mask}

    captured = short_run(capture)
    assert all(torch.equal(captured[k], without[k]) for k in without)
    assert acc.steps == 20
    scores = acc.scores()
    for n, m in mask.items():
        hand = sum(-grads[it][n].double() * theta_k[n].double() for it in range(10, 30)) / 20
        assert torch.all(scores[n][m] == 0)
        assert torch.count_nonzero(scores[n][~m]) > 0.8 * int((~m).sum())  # dead units: 0
        torch.testing.assert_close(scores[n][~m].double(), hand[~m], rtol=1e-4, atol=1e-9)


def test_alignment_scores_need_an_iteration_in_the_window():
    model = lenet()
    mask = magnitude_mask(model)
    acc = AlignmentScores(dict(model.named_parameters()), mask, window_start=30)
    train(model, mask, cluster_splits(), SHORT, torch.Generator().manual_seed(5),
          log=lambda _: None, after_backward=acc)
    with pytest.raises(ValueError, match="window_start 30"):
        acc.scores()


def test_complement_training_leaves_the_kept_positions_exactly_zero():
    model = lenet()
    mask = magnitude_mask(model, 0.3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(model, complement(mask), cluster_splits(), SHORT, torch.Generator().manual_seed(5),
          log=lambda _: None)
    params = dict(model.named_parameters())
    for n, m in mask.items():
        assert torch.all(params[n][m] == 0)
        assert torch.count_nonzero(params[n][~m] - before[n][~m]) > 0.9 * int((~m).sum())


def test_a_random_control_reintroduces_its_methods_counts():
    """regrow_random_<method> gives back exactly the method's g_l per layer (capped by the
    pruned weights), whatever its own ratio would give."""
    previous = single_layer([0, 1, 2, 3, 4, 5], size=12)
    imp = single_layer([0, 1, 2, 3], size=12)
    alive = {"w": torch.arange(12.0, 0, -1)}
    regrow = random_regrow_scores(previous, torch.Generator().manual_seed(0))
    new = reintroduce(imp, previous, alive, regrow, 0.5, counts={"w": 1})
    assert int((new["w"] & ~previous["w"]).sum()) == 1 and int(new["w"].sum()) == 4
    method_after = single_layer([0, 1, 6, 7], size=12)
    assert regrown_counts(method_after, previous) == {"w": 2}
    many = reintroduce(imp, previous, alive, regrow, 0.0, counts={"w": 99})
    assert int((many["w"] & ~previous["w"]).sum()) == 4  # every kept weight a pruned one
