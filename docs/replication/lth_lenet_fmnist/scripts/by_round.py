"""Early-stop iteration and accuracy by IMP round (imp, imp_oneshot, reinit, random_pruning)
from an experiment's summary.csv, as a Markdown table (means over seeds and draws; reinit's
min-max over its draws in brackets)."""
import sys

import pandas as pd

summary = pd.read_csv(sys.argv[1])
methods = ["imp", "imp_oneshot", "reinit", "random_pruning"]
summary["method"] = summary["method"].str.replace(r"_draw\d+$", "", regex=True)
rows = summary[summary["method"].isin(methods) & (summary["round"] >= 0)]
pct = rows[rows["method"] == "imp"].groupby("round")["percent_remaining"].mean()
head = "| round | % left | " + " | ".join(f"{m} stop | {m} acc %" for m in methods) + " |"
print(head)
print("|" + "---|" * (2 + 2 * len(methods)))
for r, p in pct.items():
    cells = [str(r), f"{p:.3g}"]
    for m in methods:
        g = rows[(rows["method"] == m) & (rows["round"] == r)]
        if g.empty:
            cells += ["", ""]
            continue
        acc = 100 * g["early_stop_test_accuracy"]
        it = g["early_stop_iteration"]
        spread = f" [{acc.min():.2f}-{acc.max():.2f}]" if len(g) > 1 else ""
        cells += [f"{it.mean():,.0f}", f"{acc.mean():.2f}{spread}"]
    print("| " + " | ".join(cells) + " |")
