"""IMP that re-introduces pruned weights (METHODS.md 5): Double-pruning (with its complement
network), Scored-pruning, and random re-introduction as their control."""

from __future__ import annotations

from collections.abc import Iterator

from lth.plan.checks import Experiment, Problem
from lth.plan.registry import Family, Method


def _reintroduce(e: Experiment) -> Iterator[Problem]:
    """Re-introduction chains need IMP's rounds."""
    if e.cfg["reintroduce"]["methods"] and e.cfg["imp"]["rounds"] == 0:
        yield e.key("reintroduce.methods"), ("set, but imp.rounds is 0: there is no IMP "
                                             "round to re-introduce weights into")


FAMILY = Family(
    name="reintroduce",
    position=6,
    description="IMP re-introducing pruned weights",
    methods=(Method("double", "reintroduce"), Method("double_complement", "reintroduce"),
             Method("scored", "reintroduce"),
             Method("regrow_random", "reintroduce", control=True)),
    rule_kinds=("reintroduce",),
    checks=(_reintroduce,),
)
