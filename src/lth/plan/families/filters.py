"""Structured filter pruning of VGG (Li et al. 2017): a physically smaller network, fine-tuned
(filter_l1) or trained from scratch (filter_scratch, Liu et al. 2019)."""

from __future__ import annotations

from collections.abc import Iterator

from lth.plan import catalog
from lth.plan.catalog import round_half_up
from lth.plan.checks import READ_AS_NUMBERED_LEVEL, Experiment, Problem
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


FAMILY = Family(
    name="filters",
    position=3,
    description="structured filter pruning of VGG, fine-tuned or trained from scratch",
    groups=(Group("baseline", "baselines pruned after training (Han et al. 2015; Li et al. "
                  "2017)", "-.", "D", "dash-dotted"),),
    methods=(Method("filter_l1", "baseline"), Method("filter_scratch", "baseline")),
    rules=("filter_l1", "filter_scratch"),
    checks=(_filters,),
)
