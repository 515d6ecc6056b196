"""lth.report.claims: the reproduction scorecard on hand-built summaries (the columns
`lth summarize` writes), one claim kind at a time: reproduced, not reproduced, not tested at
this scale; and the rules of lth.report.evidence: not tested at this schedule (networks still
improving at their last evaluation), inconclusive (a difference within the spread)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from lth.report import claims
from lth.report.scorecard import scorecard_table

ROUNDS = 9  # 100, 80, 64, 51.2, 41, 32.8, 26.2, 21.0, 16.8 % remaining
DENSITIES = (0.5, 0.1, 0.01, 0.001)
FAMILY = {
    "imp": "lottery", "imp_oneshot": "lottery", "reinit": "control",
    "random_pruning": "control", "scratch_e_finetune": "control",
    "scratch_b_finetune": "control", "finetune": "baseline", "filter_l1": "baseline",
    "filter_scratch": "baseline", "synflow": "at_init", "snip": "at_init", "grasp": "at_init",
    "magnitude_init": "at_init", "random_init": "at_init",
}  # fmt: skip


def rounds(accuracy, first: int = 1) -> dict[str, tuple[float, float]]:
    """IMP-style levels round<r> -> (percent remaining, accuracy(r))."""
    return {f"round{r}": (100 * 0.8**r, accuracy(r)) for r in range(first, ROUNDS)}


def densities(*accuracies: float) -> dict[str, tuple[float, float]]:
    """At-init levels density<d> -> (percent remaining, accuracy), one per DENSITIES."""
    return {f"density{d:g}": (100 * d, a) for d, a in zip(DENSITIES, accuracies, strict=True)}


def networks(method: str, levels: dict, stop=lambda level: 500, collapsed=(), draws=None,
             shift: float = 0.0001):
    """summary.csv rows of one method at two seeds: seed 0 is `shift` above the level's
    accuracy and seed 1 as far below it, so the mean is exact and the spread is 2 shift; both
    accuracy columns get it. Seed 1 has a collapsed layer at the levels in `collapsed`."""
    rows = []
    for level, (percent, acc) in levels.items():
        for seed, offset in ((0, shift), (1, -shift)):
            row = {
                "experiment": "x", "method": method, "family": FAMILY[method], "seed": seed,
                "level": level, "round": int(level[5:]) if level.startswith("round") else -1,
                "percent_remaining": percent, "density": percent / 100,
                "early_stop_test_accuracy": acc + offset, "final_test_accuracy": acc + offset,
                "early_stop_iteration": stop(level), "iterations": 1000,
                "collapsed": seed == 1 and level in collapsed,
            }  # fmt: skip
            rows += [row | {"draw": d} for d in draws] if draws else [row]
    return rows


def full_summary(**replaced) -> pd.DataFrame:
    """An experiment where every claim holds; replaced maps a method to its rows (None
    drops the method)."""
    methods = {
        "imp": networks("imp", {"round0": (100.0, 0.85)} | rounds(lambda r: 0.87),
                        stop=lambda level: 800 if level == "round0" else 500),
        "imp_oneshot": networks("imp_oneshot", rounds(lambda r: 0.86)),
        "reinit": networks("reinit", rounds(lambda r: 0.85 - 0.01 * r)),
        "random_pruning": networks("random_pruning", rounds(lambda r: 0.84 - 0.01 * r)),
        "finetune": networks("finetune", rounds(lambda r: 0.86)),
        "scratch_e_finetune": networks("scratch_e_finetune", rounds(lambda r: 0.858)),
        "scratch_b_finetune": networks("scratch_b_finetune", rounds(lambda r: 0.862)),
        "filter_l1": networks("filter_l1", {"pruned_a": (64.0, 0.90)}),
        "filter_scratch": networks("filter_scratch", {"pruned_a": (64.0, 0.902)}),
        "synflow": networks("synflow", densities(0.85, 0.84, 0.80, 0.60)),
        "snip": networks("snip", densities(0.85, 0.83, 0.75, 0.10), collapsed={"density0.001"}),
        "grasp": networks("grasp", densities(0.85, 0.835, 0.77, 0.30)),
        "magnitude_init": networks("magnitude_init", densities(0.845, 0.82, 0.72, 0.20)),
        "random_init": networks("random_init", densities(0.84, 0.80, 0.70, 0.20)),
    }
    methods |= replaced
    return pd.DataFrame([row for rows in methods.values() if rows for row in rows])


def card(summary: pd.DataFrame) -> pd.DataFrame:
    return claims.scorecard(summary).set_index("key")


def verdict_of(key: str, **replaced) -> tuple[str, str]:
    row = card(full_summary(**replaced)).loc[key]
    return row["verdict"], row["ours"]


def test_scorecard_has_one_row_per_claim_and_exact_columns():
    scorecard = claims.scorecard(full_summary())
    assert list(scorecard.columns) == [
        "key", "paper", "where", "claim", "metric", "paper_value", "ours", "verdict"
    ]  # fmt: skip
    assert scorecard["key"].tolist() == [c.key for c in claims.CLAIMS]
    assert len(set(scorecard["key"])) == len(claims.CLAIMS) >= 13
    assert set(scorecard["verdict"]) == {"reproduced"}
    assert scorecard.set_index("key").loc["lth_match", "paper"] == "Frankle & Carbin 2019"


def test_a_claim_without_its_methods_is_not_tested_never_passed():
    scorecard = card(full_summary(reinit=None, scratch_b_finetune=None))
    for key in ("lth_beats_reinit", "lth_reinit_degrades"):
        assert scorecard.loc[key, "verdict"] == "not tested at this scale"
        assert scorecard.loc[key, "ours"] == "not in this experiment: reinit"
    assert scorecard.loc["liu_scratch_b", "ours"] == "not in this experiment: scratch_b_finetune"
    imp_only = card(pd.DataFrame(full_summary().query("method == 'imp'")))
    assert imp_only["verdict"].value_counts().to_dict() == {
        "not tested at this scale": len(claims.CLAIMS) - 2, "reproduced": 2,
    }  # fmt: skip


def test_lth_match_threshold_is_the_last_round_of_the_matching_prefix():
    verdict, ours = verdict_of("lth_match")
    assert (verdict, ours) == ("reproduced", "matches down to 16.8 % (imp 87.00 vs dense 85.00)")
    below = networks("imp", {"round0": (100.0, 0.85)}
                     | rounds(lambda r: 0.87 if r < 7 else 0.80))  # 21.0 % and 16.8 % fall
    assert verdict_of("lth_match", imp=below) == (
        "not reproduced", "matches down to 26.2 % (imp 87.00 vs dense 85.00)"
    )
    dip = networks("imp", {"round0": (100.0, 0.85)} | rounds(lambda r: 0.80 if r == 3 else 0.87))
    assert verdict_of("lth_match", imp=dip)[1].startswith("matches down to 64 %")
    shallow = networks("imp", {"round0": (100.0, 0.85), "round1": (80.0, 0.87)})
    assert verdict_of("lth_match", imp=shallow)[0] == "not tested at this scale"
    never = networks("imp", {"round0": (100.0, 0.85)} | rounds(lambda r: 0.84))
    assert verdict_of("lth_match", imp=never) == (
        "not reproduced", "below dense already at 80 % (imp 84.00 vs dense 85.00)"
    )


def test_lth_tickets_beat_reinit_only_at_or_below_21_percent():
    verdict, ours = verdict_of("lth_beats_reinit")
    # rounds 7 and 8 (21.0 %, 16.8 %); the worst margin is at round 7: 87 - 78
    assert verdict == "reproduced"
    assert ours == "worst imp − reinit = +9.00 pp at 21 % (87.00 vs 78.00), 2 levels at or " \
        "below 21.1 %"
    close = networks("reinit", rounds(lambda r: 0.88 if r == 8 else 0.80))
    assert verdict_of("lth_beats_reinit", reinit=close)[0] == "not reproduced"
    dense_only = networks("reinit", rounds(lambda r: 0.80))[:12]  # rounds 1-6 only
    assert verdict_of("lth_beats_reinit", reinit=dense_only)[0] == "not tested at this scale"


def test_lth_early_stop_compares_the_round_nearest_21_percent_with_dense():
    assert verdict_of("lth_early_stop") == (
        "reproduced", "at 21 %: 500 vs dense 800 iterations"
    )
    late = networks("imp", {"round0": (100.0, 0.85)} | rounds(lambda r: 0.87),
                    stop=lambda level: 800 if level in ("round0", "round7") else 100)
    assert verdict_of("lth_early_stop", imp=late)[0] == "not reproduced"
    never_stopped = networks("imp", {"round0": (100.0, 0.85)} | rounds(lambda r: 0.87),
                             stop=lambda level: 1000 if level == "round0" else 500)
    assert verdict_of("lth_early_stop", imp=never_stopped)[0] == "not tested at this schedule"


def test_lth_reinit_degrades_and_oneshot():
    assert verdict_of("lth_reinit_degrades") == ("reproduced", "84.00 at 80 % → 77.00 at 16.8 %")
    flat = networks("reinit", rounds(lambda r: 0.85 - 0.0001 * r))  # falls 0.07 pp
    assert verdict_of("lth_reinit_degrades", reinit=flat)[0] == "not reproduced"
    assert verdict_of("lth_oneshot")[0] == "reproduced"
    better = networks("imp_oneshot", rounds(lambda r: 0.875))
    assert verdict_of("lth_oneshot", imp_oneshot=better)[0] == "not reproduced"


def test_liu_scratch_e_within_tolerance_at_moderate_rounds():
    verdict, ours = verdict_of("liu_scratch_e")
    assert verdict == "reproduced"
    assert ours.startswith("worst scratch_e_finetune − finetune = -0.20 pp")
    assert ours.endswith("7 levels at or above 20 %; at 16.8 %: -0.20 pp")
    sparse_only = networks("scratch_e_finetune", rounds(lambda r: 0.80 if r == 8 else 0.858))
    assert verdict_of("liu_scratch_e", scratch_e_finetune=sparse_only)[0] == "reproduced"
    moderate = networks("scratch_e_finetune", rounds(lambda r: 0.85 if r == 3 else 0.858))
    assert verdict_of("liu_scratch_e", scratch_e_finetune=moderate)[0] == "not reproduced"


def test_liu_scratch_b_filters_and_han():
    worse = networks("scratch_b_finetune", rounds(lambda r: 0.854))
    assert verdict_of("liu_scratch_b", scratch_b_finetune=worse)[0] == "not reproduced"
    assert verdict_of("liu_filters")[0] == "reproduced"
    pruned = networks("filter_scratch", {"pruned_a": (64.0, 0.89)})
    assert verdict_of("liu_filters", filter_scratch=pruned)[0] == "not reproduced"
    assert verdict_of("han_keep_vs_reset")[1].startswith(
        "worst finetune − scratch_e_finetune = +0.20 pp"
    )
    reset_wins = networks("scratch_e_finetune", rounds(lambda r: 0.861))
    assert verdict_of("han_keep_vs_reset", scratch_e_finetune=reset_wins)[0] == "not reproduced"


def test_synflow_no_collapse_where_snip_collapses():
    assert verdict_of("synflow_no_collapse") == (
        "reproduced", "others collapse at 0.1 %; synflow collapses at none of them"
    )
    collapsing = networks("synflow", densities(0.85, 0.84, 0.80, 0.60), collapsed={"density0.001"})
    assert verdict_of("synflow_no_collapse", synflow=collapsing) == (
        "not reproduced", "others collapse at 0.1 %; synflow collapses at 0.1 %"
    )
    intact = networks("snip", densities(0.85, 0.83, 0.75, 0.10))
    assert verdict_of("synflow_no_collapse", snip=intact)[0] == "not tested at this scale"


def test_synflow_best_at_the_sparsest_density():
    assert verdict_of("synflow_extreme") == (
        "reproduced", "at 0.1 %: synflow 60.00 vs best other (grasp) 30.00"
    )
    grasp = networks("grasp", densities(0.85, 0.835, 0.77, 0.604))
    assert verdict_of("synflow_extreme", grasp=grasp)[0] == "reproduced"  # within 0.5 pp
    grasp = networks("grasp", densities(0.85, 0.835, 0.77, 0.606))
    assert verdict_of("synflow_extreme", grasp=grasp)[0] == "not reproduced"
    alone = {m: None for m in ("snip", "grasp", "magnitude_init", "random_init")}
    assert verdict_of("synflow_extreme", **alone)[0] == "not tested at this scale"


def test_snip_beats_random_where_neither_collapsed():
    verdict, ours = verdict_of("snip_vs_random")
    assert verdict == "reproduced"  # density0.001 (snip collapsed) is left out
    assert ours.endswith("3 levels without collapse; at 1 %: +5.00 pp")
    tied = networks("snip", densities(0.85, 0.83, 0.70, 0.10), collapsed={"density0.001"})
    assert verdict_of("snip_vs_random", snip=tied)[0] == "inconclusive"  # 0 pp, seeds differ
    behind = networks("snip", densities(0.85, 0.83, 0.69, 0.10), collapsed={"density0.001"})
    assert verdict_of("snip_vs_random", snip=behind)[0] == "not reproduced"
    behind = networks("grasp", densities(0.83, 0.835, 0.77, 0.30))
    assert verdict_of("grasp_vs_random", grasp=behind)[0] == "not reproduced"


def test_means_over_draws_within_a_seed_then_over_seeds():
    rows = networks("reinit", {"round1": (80.0, 0.80)}, draws=(0, 1, 2), shift=0.001)
    rows = [r for r in rows if r["seed"] == 0 or r["draw"] == 0]  # seed 1: one draw only
    for r in rows:
        r["early_stop_test_accuracy"] += 0.01 * r["draw"]
    means = claims.level_means(pd.DataFrame(rows), "reinit", "early_stop_test_accuracy")
    # seed 0: mean(0.801, 0.811, 0.821) = 0.811; seed 1: 0.799; the plain row mean is 0.808
    assert means.loc["round1", "value"] == pytest.approx((0.811 + 0.799) / 2)
    assert means.loc["round1", "percent"] == pytest.approx(80.0)


def test_claims_import_no_torch():
    code = "import sys, lth.report.claims; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


EARLY_STOP_CLAIMS = ("lth_match", "lth_beats_reinit", "lth_early_stop", "lth_reinit_degrades",
                     "lth_oneshot")


def test_early_stop_claims_are_not_tested_when_the_dense_network_was_still_improving():
    """The quick default's case: dense's validation loss is lowest at its last evaluation, so
    no early-stop claim is decided, whatever the tickets show; final-accuracy claims are."""
    imp = networks("imp", {"round0": (100.0, 0.85)} | rounds(lambda r: 0.87),
                   stop=lambda level: 1000 if level == "round0" else 500)
    scorecard = card(full_summary(imp=imp))
    for key in EARLY_STOP_CLAIMS:
        assert scorecard.loc[key, "verdict"] == "not tested at this schedule"
        assert scorecard.loc[key, "ours"] == (
            "still improving at their last evaluation: imp at 100 % (2 of 2)"
        )
    assert scorecard.loc["liu_scratch_e", "verdict"] == "reproduced"
    assert {c.key for c in claims.CLAIMS if c.early_stop} == set(EARLY_STOP_CLAIMS)


def test_a_level_with_a_network_still_improving_is_left_out_and_named():
    # reinit seed 1 at 16.8 % (round 8) never stopped improving: only 21 % is compared
    reinit = networks("reinit", rounds(lambda r: 0.85 - 0.01 * r))
    reinit[-1]["early_stop_iteration"] = 1000
    verdict, ours = verdict_of("lth_beats_reinit", reinit=reinit)
    assert verdict == "reproduced"
    assert ours == ("worst imp − reinit = +9.00 pp at 21 % (87.00 vs 78.00), 1 level at or "
                    "below 21.1 %; left out, still improving at their last evaluation: "
                    "reinit at 16.8 % (1 of 2)")
    # at 21 % too: no level at or below 21.1 % is left to decide it
    reinit[-3]["early_stop_iteration"] = 1000
    verdict, ours = verdict_of("lth_beats_reinit", reinit=reinit)
    assert verdict == "not tested at this schedule"
    assert ours.endswith("still improving at their last evaluation: reinit at 21, 16.8 % "
                         "(2 of 4)")


def test_a_difference_within_the_spread_across_seeds_is_inconclusive():
    # imp 87 % against reinit 86.8 % at every round: +0.2 pp, with seeds 1 pp apart
    noisy = networks("reinit", rounds(lambda r: 0.868), shift=0.005)
    verdict, ours = verdict_of("lth_beats_reinit", reinit=noisy)
    assert verdict == "inconclusive"
    assert ours.endswith("within the spread across seeds/draws: 21 % (0.20 pp from the "
                         "threshold, spread 1.00 pp), 16.8 % (0.20 pp from the threshold, "
                         "spread 1.00 pp)")
    # the same spread with a 3 pp gap decides it either way
    assert verdict_of("lth_beats_reinit", reinit=networks(
        "reinit", rounds(lambda r: 0.84), shift=0.005))[0] == "reproduced"
    assert verdict_of("lth_beats_reinit", reinit=networks(
        "reinit", rounds(lambda r: 0.90), shift=0.005))[0] == "not reproduced"
    # a failure within the spread is not "not reproduced" either
    assert verdict_of("lth_beats_reinit", reinit=networks(
        "reinit", rounds(lambda r: 0.872), shift=0.005))[0] == "inconclusive"


def test_a_ticket_just_under_dense_is_inconclusive_when_seeds_disagree_more():
    """Issue 25's run: one round 0.71 pp under dense with two seeds further apart."""
    imp = networks("imp", {"round0": (100.0, 0.885)}
                   | rounds(lambda r: 0.8779 if r == 1 else 0.886), shift=0.006)
    verdict, ours = verdict_of("lth_match", imp=imp)
    assert verdict == "inconclusive"
    assert ours.startswith("below dense already at 80 % (imp 87.79 vs dense 88.50); within")
    tight = networks("imp", {"round0": (100.0, 0.885)}
                     | rounds(lambda r: 0.8779 if r == 1 else 0.886), shift=0.0005)
    assert verdict_of("lth_match", imp=tight)[0] == "not reproduced"


def test_the_spread_counts_reinit_draws_and_one_network_has_none():
    draws = networks("reinit", rounds(lambda r: 0.868), shift=0.0, draws=(0, 1, 2))
    for row in draws:
        row["early_stop_test_accuracy"] += 0.005 * (row["draw"] - 1)  # draws 1 pp apart
    assert verdict_of("lth_beats_reinit", reinit=draws)[0] == "inconclusive"
    single = full_summary(reinit=networks("reinit", rounds(lambda r: 0.868), shift=0.0),
                          imp=networks("imp", {"round0": (100.0, 0.85)}
                                       | rounds(lambda r: 0.87), shift=0.0,
                                       stop=lambda level: 800 if level == "round0" else 500))
    one_seed = single[single["seed"] == 0]
    assert card(one_seed).loc["lth_beats_reinit", "verdict"] == "reproduced"


def test_the_schedule_note_says_what_the_schedule_can_decide():
    short = networks("imp", {"round0": (100.0, 0.85)} | rounds(lambda r: 0.87),
                     stop=lambda level: 1000 if level == "round0" else 500)
    note = scorecard_table(full_summary(imp=short))["schedule"]
    assert note.startswith("Schedule: 1,000 training iterations a network; the dense "
                           "network's validation loss was lowest at iteration 1,000 in seed 0 "
                           "and 1,000 in seed 1. It was still falling at the last evaluation "
                           "in 2 of 2 seeds: this schedule is short")
    assert note.endswith("Not decidable at this schedule: " + ", ".join(EARLY_STOP_CLAIMS) + ".")
    assert "Decided at this schedule: liu_scratch_e, liu_scratch_b," in note
    assert "Within the seed/draw spread (inconclusive): none." in note
    full = scorecard_table(full_summary())
    assert "The dense network stopped improving before the end of training." in full["schedule"]
    assert full["schedule"].endswith("Not decidable at this schedule: none.")
    assert "is inconclusive when the differences it turns on" in full["note"]
    assert "not tested at this schedule" in full["note"]
