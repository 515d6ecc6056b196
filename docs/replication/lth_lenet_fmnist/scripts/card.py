"""scorecard.csv and scorecard.md (schedule note, rule note, one row per claim) of a summary."""
import sys
from pathlib import Path

import pandas as pd

from lth.report import claims
from lth.report.scorecard import scorecard_table

summary = pd.read_csv(sys.argv[1])
out = Path(sys.argv[2])
claims.scorecard(summary).to_csv(out / "scorecard.csv", index=False, lineterminator="\n")
table = scorecard_table(summary)
lines = [table["schedule"], "", table["note"], "",
         "| claim | paper, where | paper's value | this run | verdict |", "|---|---|---|---|---|"]
for r in table["rows"]:
    cells = [f"`{r['key']}`: {r['claim']}", f"{r['paper']}, {r['where']}", r["paper_value"],
             r["ours"], f"**{r['verdict']}**"]
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
(out / "scorecard.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
