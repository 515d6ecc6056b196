"""Iterative magnitude pruning with its controls (Frankle & Carbin 2019): the dense run and
IMP's rounds (reset to theta_0 or rewound to theta_k), the one-shot comparison, the reinit
draws and random pruning, and Liu et al. 2019's Scratch-E/B on IMP's masks."""

from __future__ import annotations

from collections.abc import Iterator

from lth.plan.catalog import round_half_up
from lth.plan.checks import Experiment, Problem
from lth.plan.registry import Family, Group, Method


def _rates_of_present_kinds(e: Experiment) -> dict[str, float]:
    """IMP's rate of each layer kind the model has (the config's rate_<kind>)."""
    return {layer.kind: e.cfg["imp"][f"rate_{layer.kind}"] for layer in e.layers}


def _imp(e: Experiment) -> Iterator[Problem]:
    """The rewind point lies in the dense run; the rounds prune something, at one rate when
    global, and leave every pruned layer (layerwise) or the network (global) a weight."""
    imp, iterations = e.cfg["imp"], e.cfg["train"]["iterations"]
    if imp["rewind_iteration"] >= iterations:
        yield e.key("imp.rewind_iteration"), (f"{imp['rewind_iteration']} is not before "
                                              f"train.iterations ({iterations}): a rewound "
                                              f"network would train no iteration")
    if imp["rounds"] == 0:
        yield from _needs_rounds(e)
        return
    if e.layers is None:
        return
    rates = _rates_of_present_kinds(e)
    pruned = {kind: rate for kind, rate in rates.items() if rate > 0}
    if not pruned:
        named = " and ".join(f"rate_{kind}" for kind in rates)
        yield e.key("imp.rounds"), (f"{imp['rounds']} rounds prune nothing: {e.cfg['model']}'s "
                                    f"layers are pruned by {named}, which are 0")
    elif imp["scope"] == "global" and len(set(pruned.values())) > 1:
        yield e.key("imp.scope"), (f"global pools the pruned layer kinds at one rate; "
                                   f"{e.cfg['model']} gets " + ", ".join(
                                       f"rate_{k} {r}" for k, r in pruned.items()))
    else:
        yield from _rounds_keep_weights(e, pruned)


def _rounds_keep_weights(e: Experiment, pruned: dict[str, float]) -> Iterator[Problem]:
    """Count the weights every round keeps, as lth.core.masks does; none may reach zero."""
    imp = e.cfg["imp"]
    if imp["scope"] == "layerwise":
        groups = [([layer], pruned[layer.kind]) for layer in e.layers if layer.kind in pruned]
    else:
        groups = [([layer for layer in e.layers if layer.kind in pruned],
                   next(iter(pruned.values())))]
    for layers, rate in groups:
        alive = sum(layer.size for layer in layers)
        for round_ in range(1, imp["rounds"] + 1):
            alive -= round_half_up(rate * alive)
            if alive == 0:
                what = (layers[0].name if imp["scope"] == "layerwise"
                        else f"the {'/'.join(pruned)} layers")
                yield e.key("imp.rounds"), (
                    f"{imp['rounds']} rounds prune every weight of {what} by round {round_} "
                    f"(rate {rate}, {imp['scope']}); at most {round_ - 1} keep one")
                return


def _needs_rounds(e: Experiment) -> Iterator[Problem]:
    """Settings written true that only act on IMP's rounds, with imp.rounds 0."""
    wanted = [("imp", "oneshot"), ("finetune", "enabled"),
              *(("controls", m) for m in ("reinit", "random_pruning", "scratch_e",
                                          "scratch_b"))]
    for path in wanted:
        if e.is_written(*path) and e.cfg[path[0]][path[1]]:
            yield e.key(*path), "true, but imp.rounds is 0: there is no IMP round to act on"


def _scratch(e: Experiment) -> Iterator[Problem]:
    """Scratch-E/B on fine-tuning's masks need the fine-tuning rounds that make them."""
    c = e.cfg["controls"]
    on = c["scratch_e"] or c["scratch_b"]
    if on and "finetune" in c["scratch_masks"] and not e.cfg["finetune"]["enabled"]:
        yield e.key("controls.scratch_masks"), (
            "holds finetune, but finetune.enabled is false: there are no fine-tuned masks "
            "for Scratch-E/B to train")


FAMILY = Family(
    name="imp",
    position=0,
    description="iterative magnitude pruning, its one-shot comparison and its controls",
    groups=(Group("lottery", "winning tickets and their one-shot comparison (Frankle & Carbin "
                  "2019)", "-", "o", "solid"),
            Group("control", "controls of a ticket: its mask or its counts with another init "
                  "(Frankle & Carbin 2019; Liu et al. 2019)", "--", "s", "dashed")),
    methods=(
        Method("imp", "lottery"),
        Method("imp_oneshot", "lottery"),
        Method("reinit", "control", control=True),
        Method(r"reinit_draw\d+", "control", control=True, pattern=True, label="reinit_draw<D>"),
        Method("random_pruning", "control", control=True),
        Method("scratch_e_imp", "control", control=True),
        Method("scratch_b_imp", "control", control=True),
    ),
    rules=("dense", "imp", "imp_oneshot", "controls", "scratch_e", "scratch_b"),
    checks=(_imp, _scratch),
)
