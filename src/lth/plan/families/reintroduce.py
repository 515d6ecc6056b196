"""IMP that re-introduces pruned weights (METHODS.md 5): Double-pruning (with its complement
network), Scored-pruning, and random re-introduction as their control."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from lth.plan import spec
from lth.plan.checks import Experiment, Problem
from lth.plan.jobs import (
    CohortRule,
    imp_step,
    rewind_path,
    rewound_member,
    round_levels,
    run_dir,
)
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


REINTRODUCE_RANKINGS = {"double": "double", "scored": "scored"} | {
    control: "random" for control in CONTROLS
}
REINTRODUCE_MODULE = "lth.methods.reintroduce"


def reintroduce_extension(settings, *files):
    """The Extension by which re-introduction changes an IMP step or a training member."""
    return spec.Extension(
        hooks=REINTRODUCE_MODULE, settings=asdict(settings), files=tuple(files)
    )


def reintroduce_step(e_name, e, seed, method, r):
    """How round r re-introduces weights (None in round 1: nothing is pruned before it)."""
    if int(r) == 1:
        return None
    ranking = REINTRODUCE_RANKINGS[method]
    previous = run_dir(e_name, seed, method, f"round{int(r) - 1}")
    scores = {
        "double": f"{run_dir(e_name, seed, 'double_complement', f'round{int(r) - 1}')}"
        "/final.safetensors",
        "scored": f"{previous}/regrow_scores.safetensors",
        "random": None,
    }[ranking]
    controlled = CONTROLS.get(method)
    how = Reintroduce(
        ranking=ranking,
        ratio=e["reintroduce"]["ratio"],
        scores=scores,
        positive_only=ranking == "scored",
        counts_from=(
            tuple(
                f"{run_dir(e_name, seed, controlled, f'round{k}')}/mask.safetensors"
                for k in (int(r), int(r) - 1)
            )
            if controlled
            else ()
        ),
    )
    return reintroduce_extension(how, *([scores] if scores else []))


def reintroduce_members(e_name, e, w, seed):
    """Every configured chain's round-r network of one seed (and Double-pruning's complement
    network, whose trained weights rank the pruned weights for the next round)."""
    members = []
    for method in reintroduce_methods(e):
        how = dict(imp_step(e_name, e, seed, method, w.r),
                   extension=reintroduce_step(e_name, e, seed, method, w.r))
        own = rewound_member(e_name, e, seed, method, "reintroduce", w.r)
        if method == "scored":
            reset = rewind_path(e_name, seed)
            own["extension"] = reintroduce_extension(
                MemberRole(alignment_from=reset), reset
            )
        members.append((own, how))
        if method == "double":
            mask = f"{run_dir(e_name, seed, method, f'round{w.r}')}/mask.safetensors"
            role = MemberRole(complement_of=mask)
            complement = dict(
                rewound_member(e_name, e, seed, "double_complement", "reintroduce", w.r),
                extension=reintroduce_extension(role, mask),
            )
            members.append((complement, None))
    return members


def reintroduce_methods(e):
    """The configured chains, each method before the controls (a control's prune step reads
    the mask its method's step writes in the same job)."""
    methods = e["reintroduce"]["methods"] if e["imp"]["rounds"] > 0 else []
    return sorted(methods, key=lambda m: m in CONTROLS)


def reintroduce_folders(e):
    methods = reintroduce_methods(e)
    return methods + (["double_complement"] if "double" in methods else [])


_COHORTS_reintroduce = (
    CohortRule(
        name="reintroduce",
        methods=reintroduce_folders,
        level="round{r}",
        enabled=lambda e: bool(reintroduce_methods(e)),
        members=reintroduce_members,
        # double_complement's networks only serve double: they are not compared
        networks=lambda e: [
            (m, level) for m in reintroduce_methods(e) for level in round_levels(e)
        ],
        priority=2,
        extra_outputs=lambda e_name, e: [
            f"{run_dir(e_name, s, 'scored', 'round{r}')}/regrow_scores.safetensors"
            for s in e["seeds"]
            if "scored" in reintroduce_methods(e)
        ],
        code=("methods.reintroduce", "plan.checks", "plan.jobs", "plan.families.reintroduce"),
    ),
)


FAMILY = Family(
    name="reintroduce",
    position=6,
    description="IMP re-introducing pruned weights",
    groups=(Group("reintroduce", "IMP with pruned weights re-introduced (METHODS.md 5; each "
                  "method's random control re-introduces as many weights per layer at random; "
                  "METHODS.md 5.4's IMP arm with as many trainings is not run, so compare at "
                  "equal compute in the cost figures)",
                  (0, (8, 2)), "h", "long dashes"),),
    methods=(Method("double", "reintroduce"), Method("double_complement", "reintroduce"),
             Method("scored", "reintroduce"),
             *(Method(control, "reintroduce", control=True) for control in CONTROLS)),
    cohorts=_COHORTS_reintroduce,
    checks=(_reintroduce,),
)
