"""The reproduction scorecard of lth.report.claims, as the templates show it and as
scorecard.csv."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from lth.analysis.summary import write_csv
from lth.report import claims
from lth.report.evidence import (
    DENSE_NETWORK,
    INCONCLUSIVE,
    NOT_AT_SCHEDULE,
    NOT_REPRODUCED,
    NOT_TESTED,
    REPRODUCED,
    VERDICTS,
    still_improving,
)

SCORECARD_NOTE = (
    "Each claim is measured on this experiment's summary.csv by the rule shown; accuracies "
    "are means over seeds (and reinit draws) in percent, compared at the same level (IMP "
    "round or target density) with a tolerance of {tolerance} percentage points where the "
    "rule says so. LTH claims use test accuracy at the early-stopping iteration, the others "
    "final test accuracy. A claim is not tested at this scale when its methods were not run "
    "or its data cannot decide it (the 'This run' column says which). A claim measured at "
    "early stopping is decided only from networks that reached their early-stopping point "
    "(lowest validation loss) before their last evaluation: a level where a compared network "
    "was still improving is left out, and where the dense network was, or no level is left, "
    "the claim is not tested at this schedule, and 'This run' names the networks still "
    "improving. A verdict is inconclusive when the differences it turns on lie closer to the "
    "rule's threshold (0, or the tolerance) than the spread there: the largest min-max range "
    "over seeds (and reinit draws) of the compared networks; with one network a side there "
    "is no spread, and the verdict stands as measured. Verdicts: {counts}."
)
CSS = {REPRODUCED: "ok", NOT_REPRODUCED: "fail", INCONCLUSIVE: "inconclusive",
       NOT_AT_SCHEDULE: "untested", NOT_TESTED: "untested"}


def schedule_note(summary: pd.DataFrame, card: pd.DataFrame) -> str:
    """What this run's schedule lets the scorecard decide, computed from the dense networks'
    early-stopping points and the verdicts: shown above the scorecard."""
    method, level = DENSE_NETWORK
    dense = summary[(summary["method"] == method) & (summary["level"] == level)]
    if dense.empty:
        return ""
    still = len(still_improving(dense))
    last = int(dense["iterations"].max())
    stops = " and ".join(f"{int(row.early_stop_iteration):,} in seed {row.seed}"
                         for row in dense.sort_values("seed").itertuples())
    said = (f"Schedule: {last:,} training iterations a network; the dense network's "
            f"validation loss was lowest at iteration {stops}. ")
    if still:
        said += (f"It was still falling at the last evaluation in {still} of "
                 f"{_seeds(len(dense))}: this schedule is short of the one the early-stopping "
                 "claims are about, and their differences measure speed of learning. ")
    else:
        said += "The dense network stopped improving before the end of training. "
    decided = card.loc[card["verdict"].isin([REPRODUCED, NOT_REPRODUCED]), "key"]
    noisy = card.loc[card["verdict"] == INCONCLUSIVE, "key"]
    short = card.loc[card["verdict"] == NOT_AT_SCHEDULE, "key"]
    said += (f"Decided at this schedule: {_keys(decided)}. Within the seed/draw spread "
             f"(inconclusive): {_keys(noisy)}. ")
    return said + f"Not decidable at this schedule: {_keys(short)}."


def _seeds(count: int) -> str:
    return f"{count} seed" + ("s" if count > 1 else "")


def _keys(keys: pd.Series) -> str:
    return ", ".join(keys) if len(keys) else "none"


def scorecard_table(summary: pd.DataFrame) -> dict:
    """The scorecard as both templates show it: schedule note, rule note, and rows with each
    verdict's CSS class (the verdict is also in the text, so nothing depends on colour)."""
    card = claims.scorecard(summary)
    counts = card["verdict"].value_counts()
    said = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    rows = [row | {"css": CSS[row["verdict"]]} for row in card.to_dict("records")]
    return {"schedule": schedule_note(summary, card),
            "note": SCORECARD_NOTE.format(tolerance=claims.TOLERANCE_PP, counts=said),
            "rows": rows}


def write_scorecard(
    summary: pd.DataFrame, summary_csv: str | os.PathLike, experiment: str,
    out_dir: str | os.PathLike,
    argv=(),
) -> Path:
    """Write out_dir/scorecard.csv (claims.scorecard of summary, read from summary_csv)
    atomically, with its provenance record beside it."""
    path = Path(out_dir) / "scorecard.csv"
    write_csv(claims.scorecard(summary), path, [Path(summary_csv)], experiment, verb="report",
              argv=argv)
    return path
