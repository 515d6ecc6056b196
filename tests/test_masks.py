"""Exact counts, deterministic ties, nesting and FLOPs of lth.core.masks."""

import torch
from torch import nn

from helpers import is_nested
from lth.core import masks as M
from lth.plan.catalog import round_half_up


def scores_and_mask():
    gen = torch.Generator().manual_seed(0)
    scores = {"a": torch.rand(10, 20, generator=gen), "b": torch.rand(7, 3, generator=gen)}
    return scores, M.full_mask(scores)


def test_layerwise_rate_removes_exact_count_of_remaining():
    scores, mask = scores_and_mask()
    for _ in range(5):
        alive = {n: int(m.sum()) for n, m in mask.items()}
        mask = M.prune_fraction_layerwise(scores, mask, {"a": 0.2, "b": 0.1})
        for n, rate in (("a", 0.2), ("b", 0.1)):
            assert int(mask[n].sum()) == alive[n] - round_half_up(rate * alive[n])
    assert int(mask["a"].sum()) == 66  # 200 -> 160 -> 128 -> 102 -> 82 -> 66


def test_global_rate_pools_layers_and_keeps_highest_scores():
    scores = {"a": torch.tensor([0.1, 0.9, 0.5]), "b": torch.tensor([0.2, 0.8, 0.3, 0.7])}
    mask = M.prune_fraction_global(scores, M.full_mask(scores), 0.5, ["a", "b"])
    # 7 alive, remove round(3.5)=4 lowest: 0.1, 0.2, 0.3, 0.5
    assert mask["a"].tolist() == [False, True, False]
    assert mask["b"].tolist() == [False, True, False, True]


def test_masks_nest_across_rounds_and_only_alive_weights_are_kept():
    scores, mask = scores_and_mask()
    for r in range(6):
        # scores change every round, as trained weights do
        scores = {n: torch.rand(s.shape, generator=torch.Generator().manual_seed(r))
                  for n, s in scores.items()}
        new = M.prune_fraction_global(scores, mask, 0.2, ["a", "b"])
        assert is_nested(new, mask)
        assert not is_nested(mask, new)
        mask = new


def test_ties_are_broken_by_lower_index():
    scores = {"a": torch.ones(6)}
    mask = M.prune_to_density(scores, M.full_mask(scores), 0.5, "layerwise", ["a"])
    assert mask["a"].tolist() == [True, True, True, False, False, False]


def test_prune_to_density_is_exact_in_both_scopes():
    scores, mask = scores_and_mask()
    layer = M.prune_to_density(scores, mask, 0.1, "layerwise", ["a", "b"])
    assert int(layer["a"].sum()) == 20 and int(layer["b"].sum()) == 2
    glob = M.prune_to_density(scores, mask, 0.1, "global", ["a", "b"])
    assert M.counts(glob) == (22, 221)  # round_half_up(22.1)


def test_density_counts_every_layer():
    mask = {"a": torch.tensor([True, False, False, False]), "b": torch.zeros(4, dtype=torch.bool)}
    assert M.density(mask) == 0.125


def test_macs_count_conv_positions_and_kept_weights():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    dense = M.layer_macs(model, (1, 8, 8))
    assert dense == {"0.weight": 4 * 9 * 64, "2.weight": 256 * 10}
    mask = {"0.weight": torch.zeros(4, 1, 3, 3, dtype=torch.bool),
            "2.weight": torch.ones(10, 256, dtype=torch.bool)}
    mask["0.weight"][0] = True  # one filter of four kept
    assert M.macs(model, (1, 8, 8), mask) == 9 * 64 + 2560


def test_top_k_keeps_what_a_stable_descending_sort_keeps_ties_included():
    """The topk-threshold selection equals ranking by a stable sort (ties: lower index kept),
    on continuous scores and on scores with many ties, for every count up to the alive ones."""
    gen = torch.Generator().manual_seed(0)
    for trial in range(100):
        n = int(torch.randint(1, 300, (1,), generator=gen))
        scores = (torch.randint(0, 4, (n,), generator=gen).float() if trial % 2
                  else torch.rand(n, generator=gen))
        alive = torch.rand(n, generator=gen) < 0.7
        alive_idx = alive.nonzero().squeeze(1)
        order = torch.sort(scores[alive_idx], descending=True, stable=True).indices
        for keep in {0, 1, len(alive_idx) // 2, len(alive_idx)}:
            kept = M.keep_top_layerwise({"w": scores}, {"w": alive}, {"w": keep})["w"]
            expected = torch.zeros(n, dtype=torch.bool)
            expected[alive_idx[order[:keep]]] = True
            assert torch.equal(kept, expected)
