"""How a scorecard verdict follows from a claim's measurement: the schedule rule and the
spread rule (issue 25).

Schedule rule: a claim measured at early stopping is decided only from networks that reached
their early-stopping point (minimum validation loss) before their last evaluation. A network
whose validation loss was lowest at its last evaluation was still improving: its "early-stop"
accuracy measures how fast it learns, not the accuracy Frankle & Carbin (2019) compare
(Fig. 3-5). Its level is left out of the comparison; if the dense network (IMP round 0, whose
training gives every ticket its mask) was still improving, the whole schedule is short of the
paper's regime and the claim is "not tested at this schedule".

Spread rule: every comparison a verdict turns on is a Check: the difference's distance from
the rule's threshold (0, or the tolerance) and the spread there, the largest min-max range over
the networks (seeds, and reinit draws) of either side. A verdict whose deciding checks all lie
within their spread is "inconclusive": the seed-to-seed (or draw-to-draw) noise is as large as
what decides it. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_TESTED, NOT_AT_SCHEDULE = "not tested at this scale", "not tested at this schedule"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_AT_SCHEDULE, NOT_TESTED)
DENSE_NETWORK = ("imp", "round0")  # (method, level) of the dense network


@dataclass(frozen=True)
class Check:
    """One comparison a verdict turns on, at `where`: the difference's distance from the
    rule's threshold, the spread there (same unit), and whether it fails the rule."""

    where: str
    distance: float
    spread: float
    fails: bool
    unit: str = "pp"

    def within_spread(self) -> bool:
        return self.distance < self.spread

    def text(self) -> str:
        digits = 2 if self.unit == "pp" else 0
        return (f"{self.where} ({self.distance:.{digits}f} {self.unit} from the threshold, "
                f"spread {self.spread:.{digits}f} {self.unit})")


def check(where: str, diff: float, threshold: float, spread: float, strict: bool,
          unit: str = "pp") -> Check:
    """The Check of a difference against a rule 'diff > threshold' (strict) or
    'diff >= threshold'."""
    fails = bool(diff <= threshold) if strict else bool(diff < threshold)
    return Check(where, abs(diff - threshold), spread, fails, unit)


@dataclass(frozen=True)
class Measured:
    """What this run shows for one claim: the values in a line, whether the claim holds
    (None: the data cannot decide it) and the checks that decide it."""

    ours: str
    holds: bool | None
    checks: tuple[Check, ...] = ()


def deciding_checks(measured: Measured) -> list[Check]:
    """The checks the verdict rests on: all of them when the claim holds, the failing ones
    when it does not."""
    if measured.holds:
        return list(measured.checks)
    return [c for c in measured.checks if c.fails]


def verdict(measured: Measured) -> str:
    """reproduced / not reproduced, or inconclusive when the deciding checks are within their
    spread (any of them for a claim that holds, every failing one for one that does not)."""
    if measured.holds is None:
        return NOT_TESTED
    deciding = deciding_checks(measured)
    within = [c.within_spread() for c in deciding]
    if deciding and (any(within) if measured.holds else all(within)):
        return INCONCLUSIVE
    return REPRODUCED if measured.holds else NOT_REPRODUCED


def inconclusive_text(measured: Measured) -> str:
    """'; within the spread: <check>, ...' naming the checks that made a verdict
    inconclusive."""
    within = [c.text() for c in deciding_checks(measured) if c.within_spread()]
    return "; within the spread across seeds/draws: " + ", ".join(within)


# ----------------------------------------------------------------------------- schedule rule


def still_improving(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows whose minimum validation loss was at their last evaluation (the end of
    training)."""
    return rows[rows["early_stop_iteration"] >= rows["iterations"]]


def networks_text(rows: pd.DataFrame, summary: pd.DataFrame) -> str:
    """'imp at 100 % (2 of 2), reinit at 21, 16.8 % (2 of 4)': per method, the levels of the
    rows (densest first) and how many of that method's networks there the rows are."""
    parts = []
    for method, group in rows.groupby("method", sort=False):
        percents = group.groupby("level")["percent_remaining"].mean().sort_values(
            ascending=False)
        total = ((summary["method"] == method) & summary["level"].isin(percents.index)).sum()
        parts.append((-percents.iloc[0], f"{method} at "
                      f"{', '.join(f'{p:.3g}' for p in percents)} % ({len(group)} of {total})"))
    return ", ".join(text for _, text in sorted(parts))


def at_early_stop(summary: pd.DataFrame, methods: tuple[str, ...]) -> tuple[
        pd.DataFrame | None, str]:
    """(summary without the levels of `methods` where a network of them was still improving,
    or None when the dense network was; the still-improving networks as text, '' if none)."""
    method, level = DENSE_NETWORK
    compared = summary[summary["method"].isin(methods)
                       | ((summary["method"] == method) & (summary["level"] == level))]
    still = still_improving(compared)
    if still.empty:
        return summary, ""
    said = networks_text(still, summary)
    if ((still["method"] == method) & (still["level"] == level)).any():
        return None, said
    dropped = summary["method"].isin(methods) & summary["level"].isin(set(still["level"]))
    return summary[~dropped], said
