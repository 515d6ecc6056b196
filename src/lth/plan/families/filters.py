"""Structured filter pruning of VGG (Li et al. 2017): a physically smaller network, fine-tuned
(filter_l1) or trained from scratch (filter_scratch, Liu et al. 2019)."""

from __future__ import annotations

from collections.abc import Iterator

from lth.plan import catalog
from lth.plan.catalog import round_half_up
from lth.plan.checks import READ_AS_NUMBERED_LEVEL, Experiment, Problem
from lth.plan.jobs import CohortRule
from lth.plan.registry import Family, Group, Method


def _filters(e: Experiment) -> Iterator[Problem]:
    """Filter pruning is for a VGG, names its convolutions, and leaves every one a filter."""
    structures, model = e.cfg["filters"]["structures"], e.cfg["model"]
    if not structures:
        return
    if model not in catalog.VGG_CFGS:
        yield e.key("filters.structures"), (f"{model} has no filters to prune: filter pruning "
                                            f"(Li et al. 2017) is for vgg16 and vgg19")
        return
    widths = catalog.vgg_conv_widths(model)
    for name, fractions in structures.items():
        key = e.key("filters.structures", name)
        if READ_AS_NUMBERED_LEVEL.fullmatch(name):
            yield key, "names a level lth reads as an IMP round or a density; choose another name"
        removed = 0
        for conv, fraction in fractions.items():
            index = int(conv.removeprefix("conv"))
            if not 1 <= index <= len(widths):
                yield f"{key}.{conv}", f"{model} has conv1 ... conv{len(widths)}"
                continue
            width = widths[index - 1]
            removed += round_half_up(fraction * width)
            if round_half_up(fraction * width) == width:
                yield f"{key}.{conv}", f"{fraction} removes all {width} filters of {conv}"
        if removed == 0:
            yield key, "removes no filter: filter_l1 would fine-tune the dense network"


PRUNED = "results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors"


def filter_finetune_schedule(e):
    """Li et al. 2017: fine-tune the smaller network at a constant, small learning rate."""
    s = dict(e["train"])
    s.update(lr=e["filters"]["lr"], iterations=e["filters"]["iterations"], milestones=[], warmup=0)
    return s


def filter_members(method, fresh):
    def members(e_name, e, w, seed):
        pruned = PRUNED.format(exp=e_name, seed=seed, structure=w.structure)
        fresh_init = f"filter_scratch/{w.structure}" if fresh else None
        member = dict(
            method=method, family="baseline", level=w.structure, init=pruned, fresh_init=fresh_init
        )
        return [(member, None)]

    return members


def structure_networks(method):
    return lambda e: [(method, s) for s in e["filters"]["structures"]]


_COHORTS_filters = (
    CohortRule(
        name="filter_l1",
        methods=lambda e: ["filter_l1"],
        level="{structure}",
        enabled=lambda e: bool(e["filters"]["structures"]),
        members=filter_members("filter_l1", False),
        networks=structure_networks("filter_l1"),
        schedule=filter_finetune_schedule,
        constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])},
    ),
    CohortRule(
        name="filter_scratch",
        methods=lambda e: ["filter_scratch"],
        level="{structure}",
        enabled=lambda e: bool(e["filters"]["structures"]) and e["filters"]["scratch"],
        members=filter_members("filter_scratch", True),
        networks=structure_networks("filter_scratch"),
        constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])},
    ),
)


FAMILY = Family(
    name="filters",
    position=3,
    description="structured filter pruning of VGG, fine-tuned or trained from scratch",
    groups=(Group("baseline", "baselines pruned after training (Han et al. 2015; Li et al. "
                  "2017)", "-.", "D", "dash-dotted"),),
    methods=(Method("filter_l1", "baseline"), Method("filter_scratch", "baseline")),
    cohorts=_COHORTS_filters,
    checks=(_filters,),
)
