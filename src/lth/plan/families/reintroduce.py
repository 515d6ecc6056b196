"""IMP that re-introduces pruned weights (METHODS.md 5): Double-pruning (with its complement
network), Scored-pruning, and random re-introduction as their control."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lth.plan.checks import Experiment, Problem
from lth.plan.registry import Family, Group, Method

RANKINGS = ("double", "scored", "random")
"""What ranks the pruned weights a round gives back: the complement network's trained
weights, the alignment scores, or uniformly random ranks."""


@dataclass(frozen=True)
class Reintroduce:
    """How a round of Double- or Scored-pruning re-introduces pruned weights (METHODS §5):
    `ratio` of the weights IMP removes this round are replaced by pruned weights ranked by
    `scores` (the complement network's trained weights for double, the alignment scores for
    scored, none for random); `positive_only` keeps only scores above 0 (scored)."""

    ranking: str  # one of RANKINGS
    ratio: float
    scores: str | None = None  # weights or scores file ranking the pruned weights
    positive_only: bool = False
    # a random control: (mask after, mask before) the round of the method it controls, whose
    # per-layer counts of re-introduced weights g_l it re-introduces too
    counts_from: tuple[str, ...] = ()


CONTROLS = {"regrow_random_double": "double", "regrow_random_scored": "scored"}
"""The random control of each method: as many weights re-introduced per layer and round as
the method re-introduces (g_l), chosen uniformly among the pruned ones."""


@dataclass(frozen=True)
class MemberRole:
    """A training member's part in re-introduction: Double-pruning's complement network
    (trains the weights this mask prunes) or Scored-pruning's network (accumulates alignment
    scores of its pruned weights against these reset weights)."""

    complement_of: str | None = None
    alignment_from: str | None = None


def _reintroduce(e: Experiment) -> Iterator[Problem]:
    """Re-introduction chains need IMP's rounds; a random control needs the method it
    controls."""
    methods = e.cfg["reintroduce"]["methods"]
    if methods and e.cfg["imp"]["rounds"] == 0:
        yield e.key("reintroduce.methods"), ("set, but imp.rounds is 0: there is no IMP "
                                             "round to re-introduce weights into")
    for index, method in enumerate(methods):
        if method in CONTROLS and CONTROLS[method] not in methods:
            yield e.key("reintroduce.methods", index), (
                f"{method} re-introduces as many weights as {CONTROLS[method]} does, which "
                f"reintroduce.methods does not run")


FAMILY = Family(
    name="reintroduce",
    position=7,
    description="IMP re-introducing pruned weights",
    groups=(Group("reintroduce", "IMP with pruned weights re-introduced (METHODS.md 5)",
                  (0, (8, 2)), "h", "long dashes"),),
    methods=(Method("double", "reintroduce"), Method("double_complement", "reintroduce"),
             Method("scored", "reintroduce"),
             *(Method(control, "reintroduce", control=True) for control in CONTROLS)),
    rules=("reintroduce",),
    checks=(_reintroduce,),
)
