"""Magnitude pruning with fine-tuning (Han et al., NeurIPS 2015): the trained weights pruned
and trained on, round after round (no reset); Liu et al. 2019's Scratch-E/B on its masks."""

from __future__ import annotations

from lth.plan.registry import Family, Method

FAMILY = Family(
    name="finetune",
    position=1,
    description="magnitude pruning with fine-tuning, and Scratch-E/B on its masks",
    methods=(
        Method("finetune", "baseline"),
        Method("scratch_e_finetune", "control", control=True),
        Method("scratch_b_finetune", "control", control=True),
    ),
    rules=("finetune",),
)
