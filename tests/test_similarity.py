"""lth.analysis.similarity: overlap of masks against chance on hand cases, its calibration on random
masks, the permutation-invariant views, and the similarity verb on real mask files."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lth.analysis import similarity as S
from lth.core.io import read_json, save_tensors
from lth.plan.families.supermask import Mining, MiningMember
from lth.plan.spec import Member
from lth.verbs.cli import main


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation: the Pearson correlation of the average ranks."""
    return S.pearson(S.average_ranks(x.ravel()), S.average_ranks(y.ravel()))


def flat_mask(n: int, kept: list[int]) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[kept] = True
    return m


def random_mask(shape, kept: int, rng: np.random.Generator) -> np.ndarray:
    m = np.zeros(math.prod(shape), dtype=bool)
    m[rng.choice(m.size, kept, replace=False)] = True
    return m.reshape(shape)


def test_hand_case_overlap_chance_and_excess():
    ov = S.layer_overlap(flat_mask(10, [0, 1, 2, 3]), flat_mask(10, [2, 3, 4, 5]))
    assert ov.intersection == 2
    assert ov.jaccard == pytest.approx(1 / 3)
    assert ov.hamming == pytest.approx(0.4)
    assert ov.expected == pytest.approx(1.6)  # 4 * 4 / 10
    assert ov.variance == pytest.approx(0.64)  # 4 * 4 * 6 * 6 / (100 * 9)
    assert ov.z == pytest.approx(0.5)
    assert ov.excess == pytest.approx(1 / 6)  # 0.4 / (4 - 1.6); Cohen's kappa here too
    assert ov.expected_jaccard == pytest.approx(0.25)  # 1.6 / (8 - 1.6)


def test_identical_and_nested_masks_have_excess_one():
    rng = np.random.default_rng(0)
    a = {"fc1": random_mask((30, 20), 150, rng), "fc2": random_mask((10, 30), 40, rng)}
    same = S.overlaps(a, {k: v.copy() for k, v in a.items()})
    assert all(ov.excess == 1.0 and ov.jaccard == 1.0 and ov.hamming == 0.0
               for ov in same.values())
    inner = {k: v & random_mask(v.shape, v.size // 2, rng) for k, v in a.items()}
    nested = S.overlaps(a, inner)["all"]
    assert nested.excess == pytest.approx(1.0)
    assert nested.jaccard == pytest.approx(nested.k_b / nested.k_a)


def test_complement_has_jaccard_zero_and_hamming_one():
    a = flat_mask(10, [0, 1, 2, 3, 4])
    ov = S.layer_overlap(a, ~a)
    assert (ov.jaccard, ov.hamming) == (0.0, 1.0)
    assert ov.excess == pytest.approx(-1.0)  # at density 1/2: (0 - 2.5) / (5 - 2.5)


def test_chance_is_per_layer_and_the_maximum_is_what_the_counts_allow():
    a = {"l1": flat_mask(10, [0, 1, 2, 3, 4, 5, 6, 7]), "l2": flat_mask(10, [0, 1])}
    b = {"l1": flat_mask(10, [0, 1]), "l2": flat_mask(10, [0, 1, 2, 3, 4, 5, 6, 7])}
    ov = S.overlaps(a, b)["all"]
    assert ov.expected == pytest.approx(3.2)  # 8*2/10 + 2*8/10, not layer-blind 10*10/20 = 5
    assert ov.most == 4  # min(8, 2) + min(2, 8), not min(10, 10)
    assert ov.intersection == 4 and ov.excess == pytest.approx(1.0)
    assert ov.profile_distance == pytest.approx(12 / 20)


def test_overlap_of_a_layer_kept_whole_is_forced_so_excess_is_undefined():
    ov = S.layer_overlap(np.ones(10, dtype=bool), flat_mask(10, [1, 2]))
    assert ov.expected == ov.most == 2 and ov.variance == 0.0
    assert math.isnan(ov.excess) and math.isnan(ov.z)


def test_independent_large_random_masks_have_excess_near_zero():
    rng = np.random.default_rng(1)
    shapes = {"fc1": ((300, 784), 47_040), "fc2": ((100, 300), 6_000), "out": ((10, 100), 500)}
    a = {k: random_mask(s, kept, rng) for k, (s, kept) in shapes.items()}
    b = {k: random_mask(s, kept, rng) for k, (s, kept) in shapes.items()}
    ov = S.overlaps(a, b)["all"]
    assert 0 < ov.excess_sd < 0.01
    assert abs(ov.excess) < 3 * ov.excess_sd


def test_chance_mean_and_variance_calibrate_on_a_thousand_random_pairs():
    rng = np.random.default_rng(2)
    layers = {"l1": ((20, 10), 60), "l2": ((10, 20), 30), "l3": ((5, 10), 40)}
    draws = [S.overlaps({k: random_mask(s, kept, rng) for k, (s, kept) in layers.items()},
                        {k: random_mask(s, (s[0] * s[1]) // 4, rng)
                         for k, (s, _) in layers.items()})["all"]
             for _ in range(1000)]
    inter = np.array([ov.intersection for ov in draws])
    excess = np.array([ov.excess for ov in draws])
    expected, variance = draws[0].expected, draws[0].variance
    se = math.sqrt(variance / len(draws))
    assert abs(inter.mean() - expected) < 3 * se
    assert inter.var(ddof=1) == pytest.approx(variance, rel=0.2)
    assert abs(excess.mean()) < 3 * draws[0].excess_sd / math.sqrt(len(draws))


def test_spearman_on_rankings_and_ties():
    x = np.array([0.3, 0.1, 0.7, 0.5])
    assert spearman(x, x) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, np.exp(10 * x)) == pytest.approx(1.0)  # monotone transform
    # ranks (0, 1.5, 1.5, 3) vs (0, 1, 2, 3): 4.5 / sqrt(4.5 * 5)
    assert spearman(np.array([1, 2, 2, 3]), np.array([1, 2, 3, 4])) == pytest.approx(
        3 / math.sqrt(10))


def lenet_mask(rng) -> S.Masks:
    return {"fc1.weight": random_mask((300, 784), 23_520, rng),
            "fc2.weight": random_mask((100, 300), 3_000, rng),
            "output.weight": random_mask((10, 100), 500, rng)}


def test_in_degree_and_overlap_are_invariant_to_permuting_hidden_units():
    rng = np.random.default_rng(3)
    a, b = lenet_mask(rng), lenet_mask(rng)
    perm = rng.permutation(300)

    def permuted(m):
        return m | {"fc1.weight": m["fc1.weight"][perm], "fc2.weight": m["fc2.weight"][:, perm]}

    first = S.input_layer(a, (1, 28, 28))
    assert first == "fc1.weight"
    degree = S.in_degree(a[first])
    assert degree.shape == (784,) and degree.sum() == 23_520
    assert np.array_equal(S.in_degree(permuted(a)[first]), degree)
    before, after = S.overlaps(a, b)["all"], S.overlaps(permuted(a), permuted(b))["all"]
    assert (after.intersection, after.excess) == (before.intersection, before.excess)
    assert S.overlaps(a, permuted(a))["fc1.weight"].jaccard < 1  # why seeds need the view


def test_input_layer_of_a_convolution_and_an_unknown_shape():
    conv = {"conv1.weight": np.ones((64, 3, 3, 3), bool),
            "conv2.weight": np.ones((64, 64, 3, 3), bool), "fc.weight": np.ones((10, 64), bool)}
    assert S.input_layer(conv, (3, 32, 32)) == "conv1.weight"
    assert S.in_degree(conv["conv1.weight"]).shape == (27,)
    assert S.input_layer(conv, (5, 32, 32)) is None


# --- the similarity verb on real mask files ------------------------------------------------

ARCH = {"architecture": {"input_shape": [1, 28, 28], "model": "lenet300_100"}}


def theta0(root, seed) -> str:
    """The seed's init file, written once with an init record, as `lth init` writes it."""
    path = root / f"results/e/seed{seed}/init.safetensors"
    if not path.is_file():
        save_tensors(path, {"w": torch.zeros(2)},
                     {"verb": "init", "params": {"experiment": "e", "seed": seed,
                                                 "init": "kaiming_normal"}})
    return str(path.relative_to(root))


def trained_record(seed, method, level, init, **member) -> dict:
    """A train record (lth.methods.train_jobs.train_record's params: one member)."""
    own = Member(seed=seed, method=method, family="x", level=level, init=init,
                 out_dir=f"results/e/seed{seed}/{method}/{level}", **member)
    return {"verb": "train", "params": {"experiment": "e", "seed": seed,
                                        "members": [dataclasses.asdict(own)]}}


def mined_record(seed, method, level, init, weights="signed_constant") -> dict:
    """A supermask record (lth.methods.supermask.write_mined's params: one member)."""
    mining = Mining(algo="gem_miner", weights=weights, optimizer="adam", lr=0.01, momentum=0.9,
                    weight_decay=0.0, batch_size=60, iterations=10, eval_every=5,
                    eval_batch_size=100)
    own = MiningMember(seed=seed, method=method, level=level, density=0.1, init=init,
                       out_dir=f"results/e/seed{seed}/{method}/{level}")
    return {"verb": "supermask", "params": {"experiment": "e", "seed": seed,
                                       "mining": dataclasses.asdict(mining),
                                       "members": [dataclasses.asdict(own)]}}


def write_network(root, seed, method, level, mask, draw=0, scores=None, record=None) -> dict:
    """A run folder: mask, scores, and run.json (by default trained from theta_0)."""
    run_dir = root / f"results/e/seed{seed}/{method}/{level}"
    save_tensors(run_dir / "mask.safetensors",
                 {k: torch.from_numpy(v) for k, v in mask.items()}, ARCH)
    if scores is not None:
        save_tensors(run_dir / "scores.safetensors",
                     {k: torch.from_numpy(v) for k, v in scores.items()})
    record = record or trained_record(seed, method, level, theta0(root, seed))
    (run_dir / "run.json").write_text(json.dumps(record))
    kept = sum(int(m.sum()) for m in mask.values())
    total = sum(m.size for m in mask.values())
    return {"experiment": "e", "method": method, "draw": draw, "seed": seed, "level": level,
            "density": kept / total, "run_dir": str(run_dir)}


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """Seeds 0 and 1: imp rounds at densities 0.5 and 0.25, random pruning with imp's
    counts, and one-shot snip at ~0.24 (matches round2) and ~0.4 (matches none)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(4)
    rows = []
    for seed in (0, 1):
        shapes = {"fc1.weight": (30, 784), "fc2.weight": (20, 30)}
        imp = {}
        for level, keep in (("round1", 0.5), ("round2", 0.25)):
            imp[level] = {k: random_mask(s, int(keep * math.prod(s)), rng)
                          for k, s in shapes.items()}
            rows.append(write_network(tmp_path, seed, "imp", level, imp[level]))
            rows.append(write_network(tmp_path, seed, "random_pruning", level,
                                      {k: rng.permutation(m.ravel()).reshape(m.shape)
                                       for k, m in imp[level].items()}))
        scores = {k: rng.random(s) for k, s in shapes.items()}
        for level, keep in (("density0.24", 0.24), ("density0.4", 0.4)):
            rows.append(write_network(tmp_path, seed, "snip", level,
                                      {k: random_mask(s, int(keep * math.prod(s)), rng)
                                       for k, s in shapes.items()}, scores=scores))
        rows.append(write_network(tmp_path, seed, "magnitude", "density0.24",
                                  {k: random_mask(s, int(0.24 * math.prod(s)), rng)
                                   for k, s in shapes.items()},
                                  scores={k: -v for k, v in scores.items()}))
    pd.DataFrame(rows).to_csv("results/e/summary.csv", index=False)
    return [r["run_dir"] for r in rows]


def run_similarity(run_dirs, out="results/e/similarity.csv") -> int:
    return main(["similarity", "--experiment", "e", "--summary", "results/e/summary.csv",
                 "--out", out, *run_dirs])


def test_verb_pairs_methods_at_matched_density_within_a_seed(experiment):
    assert run_similarity(experiment) == 0
    table = pd.read_csv("results/e/similarity.csv")
    mask = table[(table.view == "mask") & (table.layer == "all")]
    pairs = set(zip(mask.seed_a, mask.method_a, mask.level_a, mask.method_b, mask.level_b,
                    strict=True))
    for seed in (0, 1):
        assert (seed, "imp", "round1", "random_pruning", "round1") in pairs
        assert (seed, "imp", "round2", "snip", "density0.24") in pairs  # 0.25 vs 0.24
        assert (seed, "magnitude", "density0.24", "snip", "density0.24") in pairs  # same level
        assert (seed, "imp", "round2", "magnitude", "density0.24") in pairs
    assert not any("density0.4" in p for p in pairs)  # 0.4 vs 0.5: beyond 10%
    assert len(pairs) == 2 * 7  # per seed: imp-random x2, imp/random/magnitude-snip and
    # imp/random-magnitude at ~0.25
    random = mask[(mask.method_a == "imp") & (mask.method_b == "random_pruning")]
    assert len(random) == 2 * 2
    assert (random.profile_distance == 0).all()
    assert (random.excess.abs() < 4 * random.excess_sd).all()
    ranked = table[(table.view == "mask") & (table.method_a == "magnitude")
                   & (table.method_b == "snip")]
    assert len(ranked) == 2 * 3 and (ranked.score_spearman == -1).all()  # negated scores
    assert mask[mask.method_a == "imp"].score_spearman.isna().all()  # imp has no scores file


def test_verb_compares_seeds_only_by_order_free_views(experiment):
    assert run_similarity(experiment) == 0
    table = pd.read_csv("results/e/similarity.csv")
    across = table[table.view == "in_degree_across_seeds"]
    assert set(zip(across.seed_a, across.seed_b, strict=True)) == {(0, 1)}
    assert across[["jaccard", "excess", "hamming", "intersection"]].isna().all().all()
    first = across[across.layer == "fc1.weight"]
    assert first.in_degree_correlation.between(-1, 1).all()
    assert across[across.layer != "fc1.weight"].in_degree_correlation.isna().all()
    same = across[(across.method_a == "imp") & (across.method_b == "imp")]
    assert set(same.level_a) == {"round1", "round2"} and (same.level_a == same.level_b).all()
    record = read_json("results/e/similarity.csv.provenance.json")
    assert record["verb"] == "similarity"
    assert len([i for i in record["inputs"] if i["path"].endswith("mask.safetensors")]) == 14


def test_verb_rejects_a_mask_that_summary_does_not_list(experiment, tmp_path, capsys):
    assert run_similarity(experiment) == 0
    before = (tmp_path / "results/e/similarity.csv").read_bytes()
    stray = tmp_path / "elsewhere"
    stray.mkdir()
    assert run_similarity([*experiment, str(stray)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no row of summary.csv" in err[0]
    assert (tmp_path / "results/e/similarity.csv").read_bytes() == before


def test_verb_writes_the_first_layers_in_degree_of_every_network(experiment):
    assert run_similarity(experiment) == 0
    table = pd.read_csv("results/e/indegree.csv")
    assert len(table) == 14 * 784  # 7 networks a seed, one row per input pixel
    assert set(table.layer) == {"fc1.weight"} and set(table.kind) == {"linear"}
    rows = table[(table.seed == 1) & (table.method == "snip") & (table.level == "density0.24")]
    mask = S.load_masks("results/e/seed1/snip/density0.24/mask.safetensors")["fc1.weight"]
    grid = rows.pivot(index="row", columns="col", values="in_degree").to_numpy()
    assert np.array_equal(grid, mask.sum(axis=0).reshape(28, 28))  # column sums, 28 x 28
    assert (rows.channel == 0).all() and (rows.fan_out == 30).all()
    assert rows.density.iloc[0] == pytest.approx(mask.sum() / mask.size, rel=0.05)
    record = read_json("results/e/indegree.csv.provenance.json")
    assert record["verb"] == "similarity"
    assert record["outputs"][0]["path"].endswith("results/e/indegree.csv")


def test_in_degree_table_of_a_convolution_is_per_channel_and_kernel_position():
    rng = np.random.default_rng(5)
    conv = {"conv1.weight": random_mask((8, 3, 3, 3), 100, rng),
            "fc.weight": random_mask((10, 8), 40, rng)}
    net = S.Network("snip", 0, 0, "density0.5", 0.5, "unused", "theta_0")
    table = S.in_degree_table("e", net, conv, (3, 32, 32))
    assert len(table) == 27 and set(table.kind) == {"conv"}
    one = table[(table.channel == 2) & (table.row == 1) & (table.col == 0)]
    assert one.in_degree.item() == conv["conv1.weight"][:, 2, 1, 0].sum()
    assert table.in_degree.sum() == 100
    assert S.in_degree_table("e", net, conv, None) is None  # no input shape recorded


def test_score_correlation_uses_the_layers_both_criteria_scored():
    rng = np.random.default_rng(6)
    a = {"fc1": rng.random((4, 5)), "fc2": rng.random((3, 4)), "fc1.bias": rng.random(4)}
    b = {"fc1": -a["fc1"], "fc2": rng.random((3, 4))}
    rho = S.score_correlations(a, b, ["fc1", "fc2", "out"])
    assert set(rho) == {"fc1", "fc2", "all"} and rho["fc1"] == pytest.approx(-1.0)
    pooled = spearman(np.concatenate([a["fc1"].ravel(), a["fc2"].ravel()]),
                        np.concatenate([b["fc1"].ravel(), b["fc2"].ravel()]))
    assert rho["all"] == pytest.approx(pooled)
    assert S.score_correlations(a, None, ["fc1"]) == {}


def weights_file(root, relative: str, record: dict) -> str:
    """A weights file whose header records the verb that made it."""
    save_tensors(root / relative, {"w": torch.zeros(2)}, record)
    return relative


@pytest.fixture
def starts(tmp_path, monkeypatch):
    """Seeds 0 and 1 at one level: networks trained from theta_0 and from weights trained from
    it, a fresh init, mined signed constants (and a network trained from them), mined theta_0,
    and weights transferred from another depth."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(7)
    level, rows = "density0.5", []
    for seed in (0, 1):
        init = theta0(tmp_path, seed)
        dense = weights_file(tmp_path, f"results/e/seed{seed}/imp/round0/final.safetensors",
                             trained_record(seed, "imp", "round0", init))
        gem_start = weights_file(tmp_path, f"results/e/seed{seed}/gem/{level}/start.safetensors",
                                 mined_record(seed, "gem", level, init))
        stretched = weights_file(tmp_path, f"results/e/seed{seed}/stretched.safetensors",
                                 {"verb": "elastic", "params": {
                                     "seed": seed, "source_weights": "results/d/init"}})
        records = {
            "imp": trained_record(seed, "imp", level, init),
            "finetune": trained_record(seed, "finetune", level, dense),
            "reinit": trained_record(seed, "reinit", level, init, fresh_init="reinit/round1"),
            "popup": mined_record(seed, "popup", level, init),
            "gem": mined_record(seed, "gem", level, init),
            "gem_trained": trained_record(seed, "gem_trained", level, gem_start),
            "popup_theta0": mined_record(seed, "popup_theta0", level, init, weights="theta0"),
            "elastic": trained_record(seed, "elastic", level, stretched),
        }
        for method, record in records.items():
            mask = {"fc1.weight": random_mask((30, 784), 11760, rng),
                    "fc2.weight": random_mask((20, 30), 300, rng)}
            rows.append(write_network(tmp_path, seed, method, level, mask, record=record))
    pd.DataFrame(rows).to_csv("results/e/summary.csv", index=False)
    return [r["run_dir"] for r in rows]


def test_verb_tags_each_pair_with_whether_both_started_from_the_same_weights(starts):
    assert run_similarity(starts) == 0
    table = pd.read_csv("results/e/similarity.csv")
    rows = table[table.layer == "all"]
    within = rows[rows.view == "mask"]
    tag = {frozenset((r.method_a, r.method_b)): r.init for r in within.itertuples()
           if r.seed_a == 0}
    from_theta0 = {"imp", "finetune", "popup_theta0"}
    signed = {"popup", "gem", "gem_trained"}
    assert len(tag) == 28  # 8 methods, every pair
    for pair, init in tag.items():
        same = pair <= from_theta0 or pair <= signed
        assert init == ("same" if same else "different"), pair
    assert set(within.init) == {"same", "different"}
    assert (rows[rows.view == "in_degree_across_seeds"].init == "different").all()
    record = read_json("results/e/similarity.csv.provenance.json")
    assert len([i for i in record["inputs"] if i["path"].endswith("run.json")]) == 16


def test_verb_refuses_a_run_folder_without_its_record(starts, capsys):
    (Path(starts[0]) / "run.json").unlink()
    assert run_similarity(starts) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.json" in err[0] and "where the network started" in err[0]
    assert not Path("results/e/similarity.csv").exists()
