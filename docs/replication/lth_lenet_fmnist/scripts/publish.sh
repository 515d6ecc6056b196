#!/bin/bash
# Publish the lth_lenet_fmnist networks trained so far (results/lenet300_100_fmnist) into this
# folder: summary.csv (lth summarize), the key figures (lth's own figure code), the scorecard
# (lth.report.claims) and the by-round table. Run from the repository root:
#   docs/replication/lth_lenet_fmnist/scripts/publish.sh
# A finished run also has reports/lenet300_100_fmnist/ (scorecard.csv, report.html/pdf).
set -euo pipefail
here=docs/replication/lth_lenet_fmnist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PYTHONPATH=src
.venv/bin/python -m lth summarize --experiment lenet300_100_fmnist --out-dir "$work" \
    --target-fraction 0.99 results/lenet300_100_fmnist/seed*/*/*/run.json > /dev/null
cp "$work/summary.csv" "$here/summary.csv"
.venv/bin/python "$here/scripts/figs.py" "$work" "$work/figures" \
    accuracy_vs_density early_stop_vs_density learning_curves
cp "$work"/figures/*.png "$here/"
.venv/bin/python "$here/scripts/card.py" "$here/summary.csv" "$here" > /dev/null
.venv/bin/python "$here/scripts/by_round.py" "$here/summary.csv" > "$here/by_round.md"
