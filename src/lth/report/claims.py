"""The reproduction scorecard: each paper claim as data (the paper, where it says it, the
claim, the paper's value and the rule with its tolerance) with its measurement as code on
one experiment's summary.csv, and a verdict.

Accuracies are compared in percentage points. The LTH claims use test accuracy at the
early-stopping iteration, the metric of Frankle & Carbin (2019), Fig. 3-5; the others use final
test accuracy. Values are means per level: over reinit draws within a seed (when summary.csv
has several), then over seeds. Methods are compared at the same level (IMP round r, or the
same target density). A claim whose methods are not all in summary.csv, or whose data cannot
decide it (e.g. no round at or below 21.1 % remaining), is "not tested at this scale", never a
pass. A claim measured at early stopping is decided only at the schedule it is about, and a
difference within the spread across seeds (or draws) is inconclusive (lth.report.evidence).
Torch-free: the report reads it without loading torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from lth.report.evidence import (
    INCONCLUSIVE,
    NOT_AT_SCHEDULE,
    NOT_TESTED,
    Check,
    Measured,
    at_early_stop,
    check,
    inconclusive_text,
    verdict,
)

TOLERANCE_PP = 0.5
LTH_SPARSE_PERCENT = 21.1  # Frankle & Carbin 2019, Fig. 3-4: tickets beat reinit up to here
LIU_MODERATE_PERCENT = 20.0  # "moderate" pruning: at least this percent remaining
ES_ACC = "early_stop_test_accuracy"
FINAL_ACC = "final_test_accuracy"
SCORECARD_COLUMNS = ["key", "paper", "where", "claim", "metric", "paper_value", "ours", "verdict"]
DENSE_LEVEL = "round0"  # IMP's round 0 is the dense network


@dataclass(frozen=True)
class Claim:
    """One claim of a paper. metric states the rule and its tolerance; needs are the methods
    that must be in summary.csv; measure computes the verdict's input from summary.csv;
    early_stop: the claim is about accuracy or iteration at early stopping (the schedule rule
    of lth.report.evidence applies)."""

    key: str
    paper: str
    where: str
    claim: str
    metric: str
    paper_value: str
    needs: tuple[str, ...]
    measure: Callable[[pd.DataFrame], Measured]
    early_stop: bool = False


# ----------------------------------------------------------------------------- helpers


def level_means(summary: pd.DataFrame, method: str, value: str) -> pd.DataFrame:
    """Per level of method: mean percent remaining ("percent") and mean of value ("value"),
    over draws within a seed, then over seeds, and the min-max range of value over all its
    networks ("spread"); densest level first."""
    rows = summary[summary["method"] == method]
    per_seed = rows.groupby(["level", "seed"])[["percent_remaining", value]].mean()
    per_level = per_seed.groupby("level").mean()
    per_level.columns = ["percent", "value"]
    values = rows.groupby("level")[value]
    per_level["spread"] = values.max() - values.min()
    return per_level.sort_values("percent", ascending=False)


def accuracy_means(summary: pd.DataFrame, method: str, column: str) -> pd.DataFrame:
    """level_means of an accuracy column, in percent."""
    means = level_means(summary, method, column)
    return means.assign(value=100 * means["value"], spread=100 * means["spread"])


def paired(summary: pd.DataFrame, a: str, b: str, column: str) -> pd.DataFrame:
    """Accuracy (%) of methods a and b at the levels both ran: columns percent (a's), a, b,
    diff = a - b and spread (the larger of the two sides' ranges); densest first."""
    left, right = accuracy_means(summary, a, column), accuracy_means(summary, b, column)
    both = left.join(right[["value", "spread"]].rename(columns={"value": "b", "spread": "sb"}),
                     how="inner").rename(columns={"value": "a"})
    spread = both[["spread", "sb"]].max(axis=1)
    return both.drop(columns="sb").assign(diff=both["a"] - both["b"], spread=spread)


def collapsed_levels(summary: pd.DataFrame, method: str) -> pd.Series:
    """Per level of method: whether any seed had a fully pruned layer."""
    rows = summary[summary["method"] == method]
    return rows.groupby("level")["collapsed"].any()


def percent_of(summary: pd.DataFrame, levels) -> list[str]:
    """The levels as '<mean percent remaining> %' texts, densest first."""
    percent = summary[summary["level"].isin(levels)].groupby("level")["percent_remaining"].mean()
    return [pct(p) for p in percent.sort_values(ascending=False)]


def pct(percent: float) -> str:
    return f"{percent:.3g} %"


def _nearest(means: pd.DataFrame, percent: float) -> str:
    """The level of means whose percent is nearest to percent on a log scale."""
    return (means["percent"].apply(math.log) - math.log(percent)).abs().idxmin()


def _count(levels: int) -> str:
    return f"{levels} level" + ("s" if levels > 1 else "")


def level_checks(pairs: pd.DataFrame, threshold: float, strict: bool) -> tuple[Check, ...]:
    """One Check per level of pairs (columns percent, diff, spread): diff against threshold."""
    return tuple(check(pct(row["percent"]), row["diff"], threshold, row["spread"], strict)
                 for _, row in pairs.iterrows())


def _worst_margin(pairs: pd.DataFrame, a: str, b: str, strict: bool, scope: str) -> Measured:
    """Holds if a - b > 0 (strict) or a - b >= -TOLERANCE_PP at every level of pairs; None if
    pairs is empty. ours names the worst level."""
    if pairs.empty:
        return Measured(f"no level with both {a} and {b}{scope}", None)
    worst = pairs.loc[pairs["diff"].idxmin()]
    checks = level_checks(pairs, 0.0 if strict else -TOLERANCE_PP, strict)
    return Measured(
        f"worst {a} − {b} = {worst['diff']:+.2f} pp at {pct(worst['percent'])} "
        f"({worst['a']:.2f} vs {worst['b']:.2f}), {_count(len(pairs))}{scope}",
        not any(c.fails for c in checks), checks,
    )


# ----------------------------------------------------------------------------- measurements


def match_checks(pruned: pd.DataFrame, dense: pd.Series) -> tuple[Check, ...]:
    """The rounds lth_match turns on, against dense (within TOLERANCE_PP): every round down to
    and including the first at or below LTH_SPARSE_PERCENT."""
    window = pruned[(pruned["percent"] > LTH_SPARSE_PERCENT).shift(fill_value=True)]
    diffs = window.assign(diff=window["value"] - dense["value"],
                          spread=window["spread"].clip(lower=dense["spread"]))
    return level_checks(diffs, -TOLERANCE_PP, strict=False)


def measure_lth_match(summary: pd.DataFrame) -> Measured:
    """Smallest percent remaining with IMP within TOLERANCE_PP of dense there and at every
    denser round; holds if at most LTH_SPARSE_PERCENT."""
    imp = accuracy_means(summary, "imp", ES_ACC)
    if DENSE_LEVEL not in imp.index:
        return Measured("no dense network (imp round0)", None)
    dense = imp.loc[DENSE_LEVEL]
    pruned = imp.drop(DENSE_LEVEL)
    if pruned.empty:
        return Measured("no pruned round", None)
    checks = match_checks(pruned, dense)
    matched = pruned[(pruned["value"] >= dense["value"] - TOLERANCE_PP).cummin()]
    if len(matched) == len(pruned) and pruned["percent"].min() > LTH_SPARSE_PERCENT:
        return Measured(f"matches at every round; the sparsest is {pct(pruned['percent'].min())}",
                        None)
    if matched.empty:
        first = pruned.iloc[0]
        return Measured(f"below dense already at {pct(first['percent'])} "
                        f"(imp {first['value']:.2f} vs dense {dense['value']:.2f})", False,
                        checks)
    last = matched.iloc[-1]
    return Measured(
        f"matches down to {pct(last['percent'])} (imp {last['value']:.2f} vs dense "
        f"{dense['value']:.2f})",
        bool(last["percent"] <= LTH_SPARSE_PERCENT), checks,
    )


def measure_lth_beats_reinit(summary: pd.DataFrame) -> Measured:
    pairs = paired(summary, "imp", "reinit", ES_ACC)
    sparse = pairs[pairs["percent"] <= LTH_SPARSE_PERCENT]
    return _worst_margin(sparse, "imp", "reinit", True, f" at or below {LTH_SPARSE_PERCENT} %")


def measure_lth_early_stop(summary: pd.DataFrame) -> Measured:
    """IMP's mean early-stop iteration at the round nearest LTH_SPARSE_PERCENT vs dense's
    (the schedule rule has already left out networks still improving at their end)."""
    imp = level_means(summary, "imp", "early_stop_iteration")
    if DENSE_LEVEL not in imp.index or len(imp) < 2:
        return Measured("needs the dense network and a pruned imp round", None)
    dense = imp.loc[DENSE_LEVEL]
    sparse = imp.loc[_nearest(imp.drop(DENSE_LEVEL), LTH_SPARSE_PERCENT)]
    earlier = check(pct(sparse["percent"]), dense["value"] - sparse["value"], 0.0,
                    max(sparse["spread"], dense["spread"]), strict=True, unit="iterations")
    return Measured(
        f"at {pct(sparse['percent'])}: {sparse['value']:.0f} vs dense {dense['value']:.0f} "
        "iterations",
        not earlier.fails, (earlier,),
    )


def measure_lth_reinit_degrades(summary: pd.DataFrame) -> Measured:
    reinit = accuracy_means(summary, "reinit", ES_ACC)
    if len(reinit) < 2:
        return Measured("needs reinit at two or more rounds", None)
    densest, sparsest = reinit.iloc[0], reinit.iloc[-1]
    where = f"{pct(densest['percent'])} → {pct(sparsest['percent'])}"
    falls = check(where, densest["value"] - sparsest["value"], TOLERANCE_PP,
                  max(densest["spread"], sparsest["spread"]), strict=True)
    return Measured(
        f"{densest['value']:.2f} at {pct(densest['percent'])} → {sparsest['value']:.2f} at "
        f"{pct(sparsest['percent'])}",
        not falls.fails, (falls,),
    )


def measure_lth_oneshot(summary: pd.DataFrame) -> Measured:
    pairs = paired(summary, "imp", "imp_oneshot", ES_ACC)
    return _worst_margin(pairs.iloc[-1:], "imp", "imp_oneshot", True, " at the sparsest")


def measure_liu_scratch_e(summary: pd.DataFrame) -> Measured:
    """Scratch-E within TOLERANCE_PP of (or above) fine-tuning at every moderate round; the
    sparsest common round is reported beside it."""
    pairs = paired(summary, "scratch_e_finetune", "finetune", FINAL_ACC)
    moderate = pairs[pairs["percent"] >= LIU_MODERATE_PERCENT]
    measured = _worst_margin(moderate, "scratch_e_finetune", "finetune", False,
                             f" at or above {LIU_MODERATE_PERCENT:g} %")
    if pairs.empty:
        return measured
    sparsest = pairs.iloc[-1]
    return Measured(f"{measured.ours}; at {pct(sparsest['percent'])}: "
                    f"{sparsest['diff']:+.2f} pp", measured.holds, measured.checks)


def measure_liu_scratch_b(summary: pd.DataFrame) -> Measured:
    pairs = paired(summary, "scratch_b_finetune", "finetune", FINAL_ACC)
    return _worst_margin(pairs, "scratch_b_finetune", "finetune", False, "")


def measure_liu_filters(summary: pd.DataFrame) -> Measured:
    pairs = paired(summary, "filter_scratch", "filter_l1", FINAL_ACC)
    return _worst_margin(pairs, "filter_scratch", "filter_l1", False, "")


def measure_han_keep_vs_reset(summary: pd.DataFrame) -> Measured:
    pairs = paired(summary, "finetune", "scratch_e_finetune", FINAL_ACC)
    return _worst_margin(pairs, "finetune", "scratch_e_finetune", True, "")


COLLAPSE_PEERS = ("magnitude_init", "snip")


def measure_synflow_no_collapse(summary: pd.DataFrame) -> Measured:
    """At every level SynFlow ran where magnitude_init or SNIP collapsed in some seed,
    SynFlow collapsed in none; None if neither collapsed there."""
    synflow = collapsed_levels(summary, "synflow")
    peers = [collapsed_levels(summary, m) for m in COLLAPSE_PEERS]
    broken = sorted({lvl for p in peers for lvl in p.index[p] if lvl in synflow.index})
    if not broken:
        return Measured("neither magnitude_init nor snip collapsed at a density synflow ran",
                        None)
    also = [lvl for lvl in broken if synflow[lvl]]
    where = ", ".join(percent_of(summary, broken))
    said = ", ".join(percent_of(summary, also)) if also else "none of them"
    return Measured(f"others collapse at {where}; synflow collapses at {said}", not also)


def measure_synflow_extreme(summary: pd.DataFrame) -> Measured:
    """At SynFlow's sparsest level, SynFlow >= every other at-init method - TOLERANCE_PP."""
    synflow = accuracy_means(summary, "synflow", FINAL_ACC)
    level = synflow.index[-1]
    at_level = summary[(summary["family"] == "at_init") & (summary["level"] == level)]
    others = {m: accuracy_means(summary, m, FINAL_ACC).loc[level]
              for m in sorted(set(at_level["method"]) - {"synflow"})}
    where = pct(synflow["percent"].iloc[-1])
    if not others:
        return Measured(f"no other at-init method at {where}", None)
    best = max(others, key=lambda m: others[m]["value"])
    ours, theirs = synflow.iloc[-1], others[best]
    on_par = check(where, ours["value"] - theirs["value"], -TOLERANCE_PP,
                   max(ours["spread"], theirs["spread"]), strict=False)
    return Measured(
        f"at {where}: synflow {ours['value']:.2f} vs best other ({best}) {theirs['value']:.2f}",
        not on_par.fails, (on_par,),
    )


def beats_random(method: str) -> Callable[[pd.DataFrame], Measured]:
    """The measurement of '<method> beats random pruning': at every level where neither
    collapsed, method >= random_init - TOLERANCE_PP, and method > random_init at the
    sparsest of them."""

    def measure(summary: pd.DataFrame) -> Measured:
        pairs = paired(summary, method, "random_init", FINAL_ACC)
        broken = collapsed_levels(summary, method) | collapsed_levels(summary, "random_init")
        intact = pairs[~broken.reindex(pairs.index, fill_value=True)]
        measured = _worst_margin(intact, method, "random_init", False, " without collapse")
        if intact.empty:
            return measured
        sparsest = intact.iloc[-1]
        above = check(pct(sparsest["percent"]), sparsest["diff"], 0.0, sparsest["spread"],
                      strict=True)
        return Measured(f"{measured.ours}; at {pct(sparsest['percent'])}: "
                        f"{sparsest['diff']:+.2f} pp",
                        measured.holds and not above.fails, (*measured.checks, above))

    return measure


# ----------------------------------------------------------------------------- the claims

LTH = "Frankle & Carbin 2019"
LIU = "Liu et al. 2019"
TANAKA = "Tanaka et al. 2020"
TOL = f"{TOLERANCE_PP} pp"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "lth_match", LTH, "Fig. 3; Sec. 2",
        "Winning tickets reach the dense network's accuracy down to a small fraction of the "
        "weights.",
        f"Smallest % remaining where imp's early-stop test accuracy is within {TOL} of dense "
        f"(imp round 0) there and at every denser round; reproduced if ≤ {LTH_SPARSE_PERCENT} %.",
        "winning tickets less than 10-20 % of the size (abstract); LeNet on MNIST: at 3.6 % "
        "remaining 'a winning ticket regresses to the performance of the original network' "
        "(Sec. 2, on Fig. 3)",
        ("imp",), measure_lth_match, early_stop=True,
    ),
    Claim(
        "lth_beats_reinit", LTH, "Fig. 4; Sec. 2",
        f"Winning tickets beat the same masks randomly re-initialised at "
        f"≤ {LTH_SPARSE_PERCENT} % remaining.",
        f"imp − reinit early-stop test accuracy > 0 at every common round with "
        f"≤ {LTH_SPARSE_PERCENT} % remaining.",
        "at 21 % the ticket is 'half a percentage point more accurate' than reinitialised "
        "(LeNet, Sec. 2, on Fig. 4)",
        ("imp", "reinit"), measure_lth_beats_reinit, early_stop=True,
    ),
    Claim(
        "lth_early_stop", LTH, "Fig. 4 (early-stop iteration); Sec. 2",
        "Winning tickets stop early sooner than the dense network.",
        f"imp's mean early-stop iteration at the round nearest {LTH_SPARSE_PERCENT} % < dense's; "
        "undecided if dense stopped at its last iteration.",
        "tickets learn faster down to 21 %, where early stopping occurs 38 % earlier than for "
        "the original network (LeNet, Sec. 2, on Fig. 4)",
        ("imp",), measure_lth_early_stop, early_stop=True,
    ),
    Claim(
        "lth_reinit_degrades", LTH, "Fig. 4; Sec. 2",
        "Randomly re-initialised tickets lose accuracy as the density falls.",
        f"reinit's early-stop test accuracy at its sparsest round < at its densest − {TOL}.",
        "reinitialised networks 'lose test accuracy after little pruning' (LeNet, Sec. 2, on "
        "Fig. 4)",
        ("reinit",), measure_lth_reinit_degrades, early_stop=True,
    ),
    Claim(
        "lth_oneshot", LTH, "Fig. 4 (one-shot vs iterative); Sec. 2",
        "Iterative pruning finds better tickets than one-shot pruning at small sizes.",
        "imp − imp_oneshot early-stop test accuracy > 0 at the sparsest common round.",
        "iterative tickets stay accurate to smaller sizes than one-shot ones",
        ("imp", "imp_oneshot"), measure_lth_oneshot, early_stop=True,
    ),
    Claim(
        "liu_scratch_e", LIU, "Sec. 4-5 (weight-level pruning)",
        "The pruned masks trained from a fresh init (Scratch-E) are competitive with "
        "fine-tuning them.",
        f"scratch_e_finetune ≥ finetune − {TOL} (final test accuracy) at every common round "
        f"with ≥ {LIU_MODERATE_PERCENT:g} % remaining; the sparsest round is shown beside it.",
        "comparable at moderate pruning ratios on CIFAR (numbers UNVERIFIED)",
        ("finetune", "scratch_e_finetune"), measure_liu_scratch_e,
    ),
    Claim(
        "liu_scratch_b", LIU, "Sec. 4-5",
        "Scratch-B (compute-matched training from a fresh init) matches or beats fine-tuning.",
        f"scratch_b_finetune ≥ finetune − {TOL} (final test accuracy) at every common round.",
        "on par or better than fine-tuned on CIFAR (numbers UNVERIFIED)",
        ("finetune", "scratch_b_finetune"), measure_liu_scratch_b,
    ),
    Claim(
        "liu_filters", LIU, "Table 1 (Li et al. 2017's VGG-16-pruned-A)",
        "The pruned architecture trained from scratch matches L1-norm filter pruning with "
        "fine-tuning.",
        f"filter_scratch ≥ filter_l1 − {TOL} (final test accuracy) at every structure.",
        "for every structured method examined (Li et al.'s L1-norm filter pruning among them), "
        "fine-tuning gives 'comparable or worse performance' than training from a random init "
        "(abstract; Table 1's numbers not checked here)",
        ("filter_l1", "filter_scratch"), measure_liu_filters,
    ),
    Claim(
        "synflow_no_collapse", TANAKA, "Fig. 1, Fig. 6; Sec. 7",
        "SynFlow avoids layer collapse where magnitude and SNIP pruning at init collapse.",
        "At every density where magnitude_init or snip has a fully pruned layer in some seed, "
        "synflow has none in any seed; undecided if neither collapses.",
        "no layer collapse up to 1000× compression",
        ("synflow",), measure_synflow_no_collapse,
    ),
    Claim(
        "synflow_extreme", TANAKA, "Fig. 6; Sec. 7",
        "SynFlow is the best pruning-at-initialisation method at extreme sparsity.",
        f"At synflow's sparsest density, its final test accuracy ≥ every other at-init "
        f"method's − {TOL}.",
        "best or on par at the highest compressions",
        ("synflow",), measure_synflow_extreme,
    ),
    Claim(
        "snip_vs_random", "Lee et al. 2019 (SNIP)", "as compared in Tanaka et al. 2020, Fig. 6",
        "SNIP beats random pruning at the same density.",
        f"snip ≥ random_init − {TOL} (final test accuracy) at every density where neither "
        "collapsed, and snip > random_init at the sparsest of them.",
        "above random pruning at every compression shown",
        ("snip", "random_init"), beats_random("snip"),
    ),
    Claim(
        "grasp_vs_random", "Wang et al. 2020 (GraSP)", "as compared in Tanaka et al. 2020, Fig. 6",
        "GraSP beats random pruning at the same density.",
        f"grasp ≥ random_init − {TOL} (final test accuracy) at every density where neither "
        "collapsed, and grasp > random_init at the sparsest of them.",
        "above random pruning at every compression shown",
        ("grasp", "random_init"), beats_random("grasp"),
    ),
    Claim(
        "han_keep_vs_reset", "Han et al. 2015", "Sec. 3.3",
        "Fine-tuning the surviving trained weights beats re-initialising the pruned network.",
        "finetune − scratch_e_finetune final test accuracy > 0 at every common round.",
        "'it is better to retain the weights from the initial training phase ... than it is "
        "to re-initialize the pruned layers' (Sec. 3.3; no number given)",
        ("finetune", "scratch_e_finetune"), measure_han_keep_vs_reset,
    ),
)


def judge(claim: Claim, summary: pd.DataFrame) -> tuple[str, str]:
    """(what this run shows, verdict) of one claim: its methods present, the schedule rule
    for an early-stop claim, its measurement, the spread rule (lth.report.evidence)."""
    missing = [m for m in claim.needs if m not in set(summary["method"])]
    if missing:
        return f"not in this experiment: {', '.join(missing)}", NOT_TESTED
    still = ""
    if claim.early_stop:
        summary, still = at_early_stop(summary, claim.needs)
        if summary is None:
            return f"still improving at their last evaluation: {still}", NOT_AT_SCHEDULE
    measured = claim.measure(summary)
    said, judged = measured.ours, verdict(measured)
    if still:
        said += f"; left out, still improving at their last evaluation: {still}"
        judged = NOT_AT_SCHEDULE if judged == NOT_TESTED else judged
    if judged == INCONCLUSIVE:
        said += inconclusive_text(measured)
    return said, judged


def score(claim: Claim, summary: pd.DataFrame) -> dict:
    """The scorecard row of one claim."""
    ours, judged = judge(claim, summary)
    return {
        "key": claim.key, "paper": claim.paper, "where": claim.where, "claim": claim.claim,
        "metric": claim.metric, "paper_value": claim.paper_value, "ours": ours,
        "verdict": judged,
    }  # fmt: skip


def scorecard(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of CLAIMS, with SCORECARD_COLUMNS."""
    return pd.DataFrame([score(c, summary) for c in CLAIMS], columns=SCORECARD_COLUMNS)
