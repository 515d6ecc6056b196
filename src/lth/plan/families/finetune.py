"""Magnitude pruning with fine-tuning (Han et al., NeurIPS 2015): the trained weights pruned
and trained on, round after round (no reset); Liu et al. 2019's Scratch-E/B on its masks."""

from __future__ import annotations

from lth.plan.jobs import imp_step, pruned_kinds, round_rule
from lth.plan.registry import Family, Method


def finetune_schedule(e):
    """Han et al. 2015: continue from the trained weights at a reduced learning rate."""
    s = dict(e["train"])
    s.update(
        lr=s["lr"] * e["finetune"]["lr_scale"],
        iterations=e["finetune"]["iterations"],
        milestones=[],
        warmup=0,
    )
    return s


def finetune_members(e_name, e, w, seed):
    """Han et al. 2015: prune the trained weights and keep training them (no reset)."""
    how = imp_step(e_name, e, seed, "finetune", w.r)
    member = dict(
        method="finetune",
        family="baseline",
        level=f"round{w.r}",
        init=how["weights"],
        counted_kinds=pruned_kinds(e),
    )
    return [(member, how)]


_COHORTS_finetune = (
    round_rule("finetune", lambda e: e["finetune"]["enabled"], finetune_members, priority=2,
               schedule=finetune_schedule),
)


FAMILY = Family(
    name="finetune",
    position=2,
    description="magnitude pruning with fine-tuning, and Scratch-E/B on its masks",
    methods=(
        Method("finetune", "baseline"),
        Method("scratch_e_finetune", "control", control=True),
        Method("scratch_b_finetune", "control", control=True),
    ),
    cohorts=_COHORTS_finetune,
)
