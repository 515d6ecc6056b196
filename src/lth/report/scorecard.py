"""The reproduction scorecard of lth.report.claims, as the templates show it and as
scorecard.csv."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from lth.analysis.summary import write_csv
from lth.report import claims

SCORECARD_NOTE = (
    "Each claim is measured on this experiment's summary.csv by the rule shown; accuracies "
    "are means over seeds (and reinit draws) in percent, compared at the same level (IMP "
    "round or target density) with a tolerance of {tolerance} percentage points where the "
    "rule says so. LTH claims use test accuracy at the early-stopping iteration, the others "
    "final test accuracy. A claim is not tested at this scale when its methods were not run "
    "or its data cannot decide it (the 'This run' column says which). Verdicts: {counts}."
)


def scorecard_table(summary: pd.DataFrame) -> dict:
    """The scorecard as both templates show it: note, and rows with each verdict's CSS
    class (the verdict is also in the text, so nothing depends on colour)."""
    css = {claims.REPRODUCED: "ok", claims.NOT_REPRODUCED: "fail", claims.NOT_TESTED: "untested"}
    card = claims.scorecard(summary)
    counts = card["verdict"].value_counts()
    said = ", ".join(f"{counts.get(v, 0)} {v}" for v in css)
    rows = [row | {"css": css[row["verdict"]]} for row in card.to_dict("records")]
    return {"note": SCORECARD_NOTE.format(tolerance=claims.TOLERANCE_PP, counts=said),
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
