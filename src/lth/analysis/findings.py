"""What a run shows, in words computed from its own tables (torch-free): the best method per
density band, where each method collapses, whether re-introducing pruned weights helps IMP at
equal rounds and at equal compute, which methods find the same networks (excess overlap), and
the cheapest route to a given accuracy.

Every sentence is built from summary.csv (and similarity.csv) by the rule its Finding's
`source` states, and names the (method, level) rows it used, so that each number can be
traced like a figure's; nothing is written about one run in particular. Accuracies are test
accuracies at the early-stopping iteration (the metric of Frankle & Carbin 2019, Fig. 4-5),
in percent, means over seeds (and reinit draws), differences in percentage points (pp);
densities are percents of weights remaining.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lth.analysis.dense import DENSE_RUN, with_sparse_trainings

ACCURACY = "early_stop_test_accuracy"
LEVEL = ["family", "method", "level"]
COLLAPSE_DROP_PP = 10.0
"""A method collapses at the densest level whose accuracy is this many pp below dense."""
TARGET_DROPS_PP = (1.0, 5.0)
"""Accuracies the cheapest-route finding aims at: the dense network's less these pp."""
REINTRODUCE = "reintroduce"
"""The group (summary.csv's family) of IMP with pruned weights re-introduced (METHODS.md 5)."""
MASK_VIEW = "mask"
"""similarity.csv's view of two masks of one seed (same initialization)."""
OVERALL = "all"
"""similarity.csv's layer of the measures summed over all layers."""
SAME_MASK = 0.999
"""An excess overlap at least this at every matched level: one method trains the other's mask."""
TOP_PAIRS = 3


@dataclass(frozen=True)
class Finding:
    """One statement of the findings: the question it answers, the sentence, the rule that
    computed it from which table and columns, and the (method, level) rows it cites."""

    question: str
    text: str
    source: str
    rows: str


def pct(value: float) -> str:
    """A percent of weights remaining, to 3 significant digits."""
    return f"{value:.3g}%"


def acc(value: float) -> str:
    """An accuracy in percent, to 0.1 pp."""
    return f"{value:.1f}%"


def cited(levels: pd.DataFrame) -> str:
    """The rows a finding used, as method/level; ..."""
    return "; ".join(f"{m}/{lv}" for m, lv in zip(levels["method"], levels["level"],
                                                   strict=True))


def level_means(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (family, method, level): mean percent remaining, accuracy (%) mean and sample std
    over seeds (NaN for a single seed: no spread), control, round, cost in dense trainings in
    both views (sparse: MACs, dense_trainings: every run counted dense) and whether a layer
    collapsed in any seed."""
    costed = with_sparse_trainings(summary).assign(acc=100 * summary[ACCURACY])
    return costed.groupby(LEVEL, sort=False).agg(
        percent=("percent_remaining", "mean"), acc=("acc", "mean"), std=("acc", "std"),
        control=("control", "any"), round=("round", "first"),
        mac_cost=("sparse_trainings", "mean"), epoch_cost=("dense_trainings", "mean"),
        collapsed=("collapsed", "any"),
    ).reset_index()


def dense_level(levels: pd.DataFrame) -> pd.Series | None:
    """The dense network's row (lth.analysis.cost.DENSE_RUN), None without one."""
    rows = levels[(levels["method"] == DENSE_RUN[0]) & (levels["level"] == DENSE_RUN[1])]
    return rows.iloc[0] if len(rows) else None


def pruned(levels: pd.DataFrame) -> pd.DataFrame:
    """The levels of methods that are not controls, the dense network left out."""
    dense = (levels["method"] == DENSE_RUN[0]) & (levels["level"] == DENSE_RUN[1])
    return levels[~levels["control"] & ~dense]


def decade_bands(percents) -> list[tuple[float, float]]:
    """(lo, hi] decades of percent remaining, densest first, that hold any of percents."""
    exponents = sorted({math.floor(math.log10(p) - 1e-9) for p in percents if p > 0},
                       reverse=True)
    return [(10.0**k, 10.0 ** (k + 1)) for k in exponents]


def in_band(percent: pd.Series, band: tuple[float, float]) -> pd.Series:
    lo, hi = band
    return (percent > lo * (1 + 1e-9)) & (percent <= hi * (1 + 1e-9))


def band_text(band: tuple[float, float]) -> str:
    return f"{band[0]:g}–{band[1]:g}%"


# ----------------------------------------------------------------------------- the findings


def best_per_band(levels: pd.DataFrame) -> list[Finding]:
    """Per decade of percent remaining: the most accurate level of any method that is not a
    control, and the best level of the runner-up method, with the gap and the larger of
    their standard deviations over seeds (one seed has none)."""
    candidates = pruned(levels)
    found = []
    for band in decade_bands(candidates["percent"]):
        rows = candidates[in_band(candidates["percent"], band)]
        best = rows.sort_values("acc", ascending=False).drop_duplicates("method")
        top = best.iloc[0]
        text = f"{band_text(band)} of weights remaining: {top.method} is best, " \
               f"{acc(top.acc)} at {pct(top.percent)}"
        if len(best) > 1:
            second = best.iloc[1]
            gap, noise = top.acc - second.acc, float(np.fmax(top["std"], second["std"]))
            text += (f"; next {second.method}, {acc(second.acc)} at {pct(second.percent)} "
                     f"({gap:.2f} pp behind, {against_spread(gap, noise)})")
        found.append(Finding(
            "Best method per density band", text + f" [{len(best)} methods in the band].",
            "summary.csv: early_stop_test_accuracy, mean and sample std over seeds per "
            "method and level; methods that are not controls; the best level per method "
            "within the band",
            cited(best.head(2))))
    return found


def collapses(levels: pd.DataFrame) -> list[Finding]:
    """Per method that is not a control: the densest level more than COLLAPSE_DROP_PP below
    the dense network's accuracy, or the sparsest level tested if none; and the densest
    level at which some layer was fully pruned in some seed."""
    dense = dense_level(levels)
    if dense is None:
        return []
    floor = dense.acc - COLLAPSE_DROP_PP
    fell, held, layers = [], [], []
    for _, rows in pruned(levels).groupby("method", sort=False):
        rows = rows.sort_values("percent", ascending=False)
        low = rows[rows["acc"] < floor]
        if len(low):
            fell.append(low.iloc[0])
        else:
            held.append(rows.iloc[-1])
        if rows["collapsed"].any():
            layers.append(rows[rows["collapsed"]].iloc[0])
    fell.sort(key=lambda r: -r.percent)
    parts = [f"More than {COLLAPSE_DROP_PP:g} pp below the dense network "
             f"({acc(dense.acc)}) from: "
             + (", ".join(f"{r.method} at {pct(r.percent)} ({acc(r.acc)})" for r in fell)
                or "no method")]
    if held:
        parts.append("no such drop down to the sparsest level run: " + ", ".join(
            f"{r.method} ({pct(r.percent)}, {acc(r.acc)})" for r in held))
    if layers:
        parts.append("a layer fully pruned in some seed: " + ", ".join(
            f"{r.method} from {pct(r.percent)}" for r in layers))
    return [Finding(
        "Where each method collapses", "; ".join(parts) + ".",
        "summary.csv: early_stop_test_accuracy (mean over seeds) per method and level against "
        f"the dense network's ({DENSE_RUN[0]}/{DENSE_RUN[1]}) less {COLLAPSE_DROP_PP:g} "
        "pp, densest first; collapsed (any seed)",
        cited(pd.DataFrame([dense, *fell, *held, *layers])))]


def against_spread(gap: float, noise: float) -> str:
    """A gap in pp against the seeds' spread `noise`, in words; NaN noise: one seed a side."""
    if math.isnan(noise):
        return "one seed a side: no spread to judge it by"
    return f"{'more' if gap > noise else 'no more'} than the seeds' spread of {noise:.2f}"


def verdict(diff: float, noise: float, other: str) -> tuple[int, str]:
    """A difference in pp against `other` as a sign (1 ahead, 0 level within the seeds'
    spread `noise`, -1 behind) and in words; with one seed a side (NaN noise) the sign is
    the difference's, and the words say there is no spread."""
    if abs(diff) <= noise:
        return 0, (f"level with {other} ({diff:+.2f} pp, within the seeds' spread of "
                   f"{noise:.2f})")
    ahead = diff > 0
    said = f"{'ahead of' if ahead else 'behind'} {other} by {abs(diff):.2f} pp"
    return (1 if ahead else -1), said + (" (one seed a side)" if math.isnan(noise) else "")


def at_equal_rounds(method: str, both: pd.DataFrame) -> tuple[int, str]:
    """A re-introducing method against IMP over the rounds both ran (both: one row per
    round, IMP's columns suffixed _imp)."""
    diff = both["acc"] - both["acc_imp"]
    noise = float(np.fmax(both["std"], both["std_imp"]).mean())
    sign, said = verdict(float(diff.mean()), noise, DENSE_RUN[0])
    last = both.sort_values("percent").iloc[0]
    return sign, (f"at equal rounds ({len(both)} in common) it is on average {said}, better at "
                  f"{(diff > 0).sum()} and worse at {(diff < 0).sum()}; at the sparsest, "
                  f"{pct(last.percent)}: {acc(last.acc)} vs {acc(last.acc_imp)}")


def at_equal_compute(last: pd.Series, reference: pd.DataFrame) -> tuple[int, str, list]:
    """A re-introducing method's sparsest network against the most accurate IMP level at
    least as sparse that cost no more (sparse view); its cited rows."""
    affordable = reference[(reference["mac_cost"] <= last.mac_cost * (1 + 1e-9))
                           & (reference["percent"] <= last.percent * (1 + 1e-6))]
    cost = (f"at equal compute, its {pct(last.percent)} network cost {last.mac_cost:.3g} "
            f"dense trainings (MACs; {last.epoch_cost:.3g} counted dense) for {acc(last.acc)}")
    if affordable.empty:
        return 0, f"{cost}, and no {DENSE_RUN[0]} level as sparse costs as little", [last]
    imp = affordable.sort_values("acc", ascending=False).iloc[0]
    sign, said = verdict(last.acc - imp.acc, float(np.fmax(last["std"], imp["std"])),
                         DENSE_RUN[0])
    return sign, (f"{cost}; {DENSE_RUN[0]} reaches {acc(imp.acc)} at {pct(imp.percent)} for "
                  f"{imp.mac_cost:.3g} ({imp.epoch_cost:.3g}): {said}"), [last, imp]


def reintroduction(levels: pd.DataFrame) -> list[Finding]:
    """Per re-introducing method (group REINTRODUCE, not a control) against IMP: at equal
    rounds, the mean accuracy difference over the rounds both ran and at the sparsest of
    them; at equal compute, its sparsest common round's cost (sparse view) against the best
    IMP level as sparse that cost no more. It helps where it is ahead in either."""
    reference = levels[(levels["method"] == DENSE_RUN[0]) & (levels["round"] >= 1)]
    found = []
    for method, rows in pruned(levels[levels["family"] == REINTRODUCE]).groupby(
            "method", sort=False):
        both = rows.merge(reference, on="round", suffixes=("", "_imp"))
        if both.empty:
            continue
        rounds_sign, rounds = at_equal_rounds(method, both)
        last = rows[rows["round"].isin(both["round"])].sort_values("percent").iloc[0]
        compute_sign, compute, cite = at_equal_compute(last, reference)
        helps = "helps" if max(rounds_sign, compute_sign) > 0 else "does not help"
        found.append(Finding(
            "Does re-introduction help?",
            f"{method} {helps} here: {rounds}; {compute}.",
            "summary.csv: early_stop_test_accuracy (mean, sample std over seeds) paired by "
            f"round with {DENSE_RUN[0]}; cost: total_macs over the seed's dense training's "
            "MACs (sparse view) and dense_trainings (epoch view), means over seeds",
            cited(pd.DataFrame(cite))))
    return found


def matched_overlaps(similarity: pd.DataFrame, controls: set[str]) -> pd.DataFrame:
    """Mean excess overlap over seeds per pair of methods (neither a control) and pair of
    matched levels, all layers, with the pair's mean percent remaining."""
    rows = similarity[(similarity["view"] == MASK_VIEW) & (similarity["layer"] == OVERALL)
                      & ~similarity["method_a"].isin(controls)
                      & ~similarity["method_b"].isin(controls)]
    rows = rows.assign(percent=50 * (rows["density_a"] + rows["density_b"]))
    return rows.groupby(["method_a", "level_a", "method_b", "level_b"], as_index=False,
                        sort=False).agg(excess=("excess", "mean"), percent=("percent", "mean"))


def overlap(levels: pd.DataFrame, similarity: pd.DataFrame | None) -> list[Finding]:
    """Per decade of percent remaining: the most and the least alike pairs of methods by
    excess overlap over chance (0: chance, 1: nested masks), pairs that share one mask at
    every level (one trains the other's mask) named once apart."""
    if similarity is None:
        return []
    pairs = matched_overlaps(similarity, set(levels.loc[levels["control"], "method"]))
    if pairs.empty:
        return []
    same = pairs.groupby(["method_a", "method_b"])["excess"].min() >= SAME_MASK
    twins = [pair for pair, s in same.items() if s]
    shared = [f"{a} = {b}" for a, b in twins]
    repeats = {b for _, b in twins}
    pairs = pairs[~pairs["method_a"].isin(repeats) & ~pairs["method_b"].isin(repeats)]
    found = []
    for band in decade_bands(pairs["percent"]):
        rows = pairs[in_band(pairs["percent"], band)]
        per_pair = rows.groupby(["method_a", "method_b"], as_index=False)["excess"].mean()
        per_pair = per_pair.sort_values("excess", ascending=False)
        def named(r):
            return f"{r.method_a}–{r.method_b} {r.excess + 0.0:.2f}".replace("-0.00", "0.00")
        top = per_pair.head(TOP_PAIRS)
        low = per_pair.tail(min(TOP_PAIRS, len(per_pair) - len(top)))
        text = (f"{band_text(band)} of weights remaining: most alike "
                + ", ".join(named(r) for r in top.itertuples()))
        if len(low):
            text += "; least alike " + ", ".join(named(r) for r in low.itertuples())
        found.append(Finding(
            "Do methods find the same networks?",
            text + f" [{len(per_pair)} pairs].",
            "similarity.csv: excess over all layers of two masks of the same seed, mean over "
            "seeds and the pair's matched levels within the band; controls left out",
            "; ".join(f"{r.method_a}×{r.method_b}" for r in pd.concat([top, low])
                      .itertuples())))
    if shared:
        found.insert(0, Finding(
            "Do methods find the same networks?",
            "The same mask at every matched level (one trains the other's; the second is left "
            "out below): "
            + ", ".join(shared) + ".",
            f"similarity.csv: excess of at least {SAME_MASK} at every matched level",
            "; ".join(shared)))
    return found


def cheapest_routes(levels: pd.DataFrame) -> list[Finding]:
    """Per target (the dense accuracy less each of TARGET_DROPS_PP): the level of any method
    that is not a control reaching it at the least cost, in each cost view."""
    dense = dense_level(levels)
    if dense is None:
        return []
    candidates = pruned(levels).dropna(subset=["mac_cost", "epoch_cost"])
    found = []
    for drop in TARGET_DROPS_PP:
        target = dense.acc - drop
        reached = candidates[candidates["acc"] >= target]
        if reached.empty:
            found.append(Finding(
                "Cheapest route to an accuracy",
                f"No pruned network reaches {acc(target)} (dense {acc(dense.acc)} less "
                f"{drop:g} pp).", "summary.csv: early_stop_test_accuracy", ""))
            continue
        views = [("mac_cost", "dense trainings in MACs"),
                 ("epoch_cost", "trainings counted dense")]
        best = [reached.sort_values([cost, "acc"], ascending=[True, False]).iloc[0]
                for cost, _ in views]
        said = "; ".join(
            f"in {words}, {r.method} at {pct(r.percent)} ({r[cost]:.3g} for {acc(r.acc)})"
            for r, (cost, words) in zip(best, views, strict=True))
        found.append(Finding(
            "Cheapest route to an accuracy",
            f"To reach {acc(target)} (the dense network's {acc(dense.acc)} less {drop:g} "
            f"pp) at least cost: {said} [{reached['method'].nunique()} methods reach it].",
            "summary.csv: early_stop_test_accuracy (mean over seeds) at or above the target; "
            "cost: total_macs over the seed's dense training's MACs, and dense_trainings, "
            "means over seeds; methods that are not controls",
            cited(pd.DataFrame(best))))
    return found


def findings(summary: pd.DataFrame, similarity: pd.DataFrame | None = None) -> list[Finding]:
    """Every finding of a run, in the order of the questions."""
    levels = level_means(summary)
    return [*best_per_band(levels), *collapses(levels), *reintroduction(levels),
            *overlap(levels, similarity), *cheapest_routes(levels)]


def findings_table(summary: pd.DataFrame, similarity: pd.DataFrame | None = None,
                   ) -> pd.DataFrame:
    """The findings as a table (findings.csv): question, text, source, rows."""
    columns = ["question", "text", "source", "rows"]
    return pd.DataFrame([vars(f) for f in findings(summary, similarity)], columns=columns)
