"""The findings (lth.analysis.findings) on small hand-built tables: each sentence's numbers
are the ones computed here by hand."""

from __future__ import annotations

import pandas as pd

from lth.analysis.findings import Finding, findings, findings_table

DENSE_MACS = 1000.0


def level(method, family, name, rnd, percent, accs, cost=1.0, epochs=1.0, control=False,
          collapsed=False) -> list[dict]:
    """One level's summary.csv rows, one per seed: accs (fractions) per seed, cost in dense
    trainings (sparse view), epochs the epoch view."""
    return [
        {"method": method, "family": family, "level": name, "round": rnd, "seed": seed,
         "control": control, "percent_remaining": percent, "early_stop_test_accuracy": a,
         "total_macs": cost * DENSE_MACS, "train_macs_dense": DENSE_MACS,
         "dense_trainings": epochs, "collapsed": collapsed}
        for seed, a in enumerate(accs)
    ]


def table(*levels) -> pd.DataFrame:
    return pd.DataFrame([row for rows in levels for row in rows])


DENSE = level("imp", "lottery", "round0", 0, 100.0, [0.90, 0.90])
SUMMARY = table(
    DENSE,
    level("imp", "lottery", "round1", 1, 50.0, [0.91, 0.93], cost=2.0, epochs=2.0),
    level("imp", "lottery", "round2", 2, 25.0, [0.90, 0.90], cost=2.5, epochs=3.0),
    level("reinit", "control", "round1", 1, 50.0, [0.95, 0.95], control=True),
    level("snip", "at_init", "density0.4", -1, 40.0, [0.88, 0.88], cost=0.4),
    level("snip", "at_init", "density0.05", -1, 5.0, [0.70, 0.72], cost=0.05,
          collapsed=True),
    level("double", "reintroduce", "round1", 1, 50.0, [0.93, 0.95], cost=4.0, epochs=4.0),
    level("double", "reintroduce", "round2", 2, 25.0, [0.89, 0.89], cost=5.0, epochs=6.0),
)


def texts(found: list[Finding], question: str) -> list[str]:
    return [f.text for f in found if f.question == question]


def test_best_method_per_decade_with_the_runner_up_and_the_seed_spread():
    best = texts(findings(SUMMARY), "Best method per density band")
    # 10-100%: double 94.0% (round1), imp 92.0% (round1), gap 2.00 > std 1.41; the
    # control reinit (95%) and the dense network are not candidates.
    assert best[0] == (
        "10–100% of weights remaining: double is best, 94.0% at 50%; next imp, 92.0% at 50% "
        "(2.00 pp behind, more than the seeds' spread of 1.41) [3 methods in the band].")
    assert best[1] == "1–10% of weights remaining: snip is best, 71.0% at 5% [1 methods in " \
                      "the band]."


def test_collapse_is_the_densest_level_ten_points_below_dense():
    (text,) = texts(findings(SUMMARY), "Where each method collapses")
    assert text == (
        "More than 10 pp below the dense network (90.0%) from: snip at 5% (71.0%); no such "
        "drop down to the sparsest level run: imp (25%, 90.0%), double (25%, 89.0%); a layer "
        "fully pruned in some seed: snip from 5%.")


def test_reintroduction_at_equal_rounds_and_at_equal_compute():
    (text,) = texts(findings(SUMMARY), "Does re-introduction help?")
    # rounds: +2.0 at round1, -1.0 at round2: mean +0.5 <= mean spread (1.41 + 0) / 2.
    # compute: double's 25% network costs 5 dense trainings; imp's 25% costs 2.5: 90.0%.
    assert text == (
        "double does not help here: at equal rounds (2 in common) it is on average level "
        "with imp (+0.50 pp, within the seeds' spread of 0.71), better at 1 and worse at 1; "
        "at the sparsest, 25%: 89.0% vs 90.0%; at equal compute, its 25% network cost 5 "
        "dense trainings (MACs; 6 counted dense) for 89.0%; imp reaches 90.0% at 25% for "
        "2.5 (3): behind imp by 1.00 pp.")


def test_reintroduction_that_wins_at_equal_rounds_helps():
    ahead = table(DENSE, level("imp", "lottery", "round1", 1, 50.0, [0.80, 0.80]),
                  level("scored", "reintroduce", "round1", 1, 50.0, [0.85, 0.85]))
    (text,) = texts(findings(ahead), "Does re-introduction help?")
    assert text.startswith("scored helps here: at equal rounds (1 in common) it is on "
                           "average ahead of imp by 5.00 pp")


def similarity_rows(a, b, pairs) -> list[dict]:
    """Mask rows (all layers) of methods a and b: (level, density, excess per seed)."""
    return [
        {"view": "mask", "layer": "all", "method_a": a, "level_a": lv, "density_a": d,
         "method_b": b, "level_b": lv, "density_b": d, "excess": x}
        for lv, d, excesses in pairs for x in excesses
    ]


def test_overlap_ranks_pairs_per_band_and_names_shared_masks_once():
    similarity = pd.DataFrame(
        similarity_rows("imp", "snip", [("l1", 0.5, [0.6, 0.8])])
        + similarity_rows("imp", "double", [("l1", 0.5, [0.3, 0.3])])
        + similarity_rows("double", "snip", [("l1", 0.5, [0.0, 0.1])])
        + similarity_rows("imp", "reinit", [("l1", 0.5, [1.0, 1.0])])
        + similarity_rows("snip", "snip_twin", [("l1", 0.5, [1.0, 1.0])])
        + similarity_rows("imp", "snip_twin", [("l1", 0.5, [0.7, 0.7])])
    )
    said = texts(findings(SUMMARY, similarity), "Do methods find the same networks?")
    assert said == [
        "The same mask at every matched level (one trains the other's; the second is left "
        "out below): snip = snip_twin.",
        "10–100% of weights remaining: most alike imp–snip 0.70, imp–double 0.30, "
        "double–snip 0.05 [3 pairs].",
    ]


def test_cheapest_route_to_each_target_in_both_cost_views():
    said = texts(findings(SUMMARY), "Cheapest route to an accuracy")
    # target 89.0%: imp round1 (2, 92.0%), imp round2 (2.5), double: cheapest imp round1.
    assert said[0] == (
        "To reach 89.0% (the dense network's 90.0% less 1 pp) at least cost: in dense "
        "trainings in MACs, imp at 50% (2 for 92.0%); in trainings counted dense, imp at 50% "
        "(2 for 92.0%) [2 methods reach it].")
    # target 85.0%: snip at 40% (0.4 dense trainings, 1 counted dense) is cheapest in MACs.
    assert said[1].startswith("To reach 85.0% (the dense network's 90.0% less 5 pp) at least "
                              "cost: in dense trainings in MACs, snip at 40% (0.4 for 88.0%)")


def test_a_run_without_the_dense_network_or_the_compared_methods_says_less():
    only_snip = table(level("snip", "at_init", "density0.4", -1, 40.0, [0.88, 0.88]))
    found = findings_table(only_snip)
    assert found["question"].tolist() == ["Best method per density band"]
    assert list(found.columns) == ["question", "text", "source", "rows"]
    assert found["rows"].iloc[0] == "snip/density0.4"


def test_cited_rows_name_the_levels_the_numbers_came_from():
    found = {}
    for finding in findings(SUMMARY):
        found.setdefault(finding.question, finding)
    assert found["Does re-introduction help?"].rows == "double/round2; imp/round2"
    assert found["Best method per density band"].rows == "double/round1; imp/round1"


def test_one_seed_has_no_spread_to_judge_a_gap_by():
    one_seed = table(
        level("imp", "lottery", "round0", 0, 100.0, [0.90]),
        level("imp", "lottery", "round1", 1, 50.0, [0.91], cost=2.0, epochs=2.0),
        level("imp_oneshot", "lottery", "round1", 1, 40.0, [0.905], cost=1.0),
        level("double", "reintroduce", "round1", 1, 50.0, [0.90], cost=4.0, epochs=4.0),
    )
    found = findings(one_seed)
    (best,) = texts(found, "Best method per density band")
    assert best == (
        "10–100% of weights remaining: imp is best, 91.0% at 50%; next imp_oneshot, 90.5% at "
        "40% (0.50 pp behind, one seed a side: no spread to judge it by) [3 methods in the "
        "band].")
    (helps,) = texts(found, "Does re-introduction help?")
    assert "on average behind imp by 1.00 pp (one seed a side)" in helps

