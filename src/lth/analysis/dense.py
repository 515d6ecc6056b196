"""The dense reference of a run, torch-free: each seed's dense network (IMP's round 0), the
yardstick of the target accuracy and of every cost in dense trainings."""

from __future__ import annotations

import pandas as pd

DENSE_RUN = ("imp", "round0")
"""(method, level) of each seed's dense network: the reference of the target and the cost."""


def with_sparse_trainings(summary: pd.DataFrame) -> pd.DataFrame:
    """summary with sparse_trainings: total_macs over the train_macs_dense of the same
    seed's dense run (NaN without one)."""
    dense = summary[(summary["method"] == DENSE_RUN[0]) & (summary["level"] == DENSE_RUN[1])]
    per_seed = dense.groupby("seed")["train_macs_dense"].first()
    per_seed = per_seed.where(per_seed > 0)
    return summary.assign(sparse_trainings=summary["total_macs"] / summary["seed"].map(per_seed))
