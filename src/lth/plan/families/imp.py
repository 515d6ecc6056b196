"""Iterative magnitude pruning with its controls (Frankle & Carbin 2019): the dense run and
IMP's rounds (reset to theta_0 or rewound to theta_k), the one-shot comparison, the reinit
draws and random pruning, and Liu et al. 2019's Scratch-E/B on IMP's masks."""

from __future__ import annotations

from collections.abc import Iterator

from lth.plan.catalog import round_half_up
from lth.plan.checks import Experiment, Problem
from lth.plan.jobs import (
    CohortRule,
    imp_step,
    init_path,
    pruned_kinds,
    rewind_path,
    rewind_start,
    rewound_member,
    round_rule,
    run_dir,
)
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


def dense_members(e_name, e, w, seed):
    member = dict(
        method="imp",
        family="lottery",
        level="round0",
        init=init_path(e_name, seed),
        save_at=e["imp"]["rewind_iteration"],
    )
    return [(member, None)]


def imp_members(e_name, e, w, seed):
    member = rewound_member(e_name, e, seed, "imp", "lottery", w.r)
    return [(member, imp_step(e_name, e, seed, "imp", w.r))]


def imp_oneshot_members(e_name, e, w, seed):
    """The LTH paper's one-shot comparison: the dense run pruned once to IMP's counts."""
    how = dict(
        weights=f"{run_dir(e_name, seed, 'imp', 'round0')}/final.safetensors",
        match_counts=f"{run_dir(e_name, seed, 'imp', f'round{w.r}')}/mask.safetensors",
        criterion="magnitude",
        scope=e["imp"]["scope"],
        purpose=f"imp_oneshot/round{w.r}",
    )
    return [(rewound_member(e_name, e, seed, "imp_oneshot", "lottery", w.r), how)]


_COHORTS_lottery = (
    CohortRule(
        name="dense",
        methods=lambda e: ["imp"],
        level="round0",
        enabled=lambda e: True,
        members=dense_members,
        networks=lambda e: [("imp", "round0")],
        rewind=True,
        makes_init=True,
        priority=3,
    ),
    # IMP's rounds are the longest chain of the DAG: keep it moving, fill the cores around it
    round_rule("imp", lambda e: e["imp"]["rounds"] > 0, imp_members, priority=3),
    round_rule("imp_oneshot", lambda e: e["imp"]["oneshot"], imp_oneshot_members, priority=1),
)

def imp_mask(e_name, seed, r):
    return f"{run_dir(e_name, seed, 'imp', f'round{r}')}/mask.safetensors"


def reinit_folder(draw):
    """Run folder of a reinit draw: draw 0 keeps the folder `reinit`."""
    return "reinit" if draw == 0 else f"reinit_draw{draw}"


def control_members(e_name, e, w, seed):
    """The round's reinit draws and random-pruning control of one seed; both start where the
    ticket does (the rewind iteration under a continuing schedule)."""
    c, members = e["controls"], []
    common = dict(
        family="control",
        level=f"round{w.r}",
        start_iteration=rewind_start(e),
        counted_kinds=pruned_kinds(e),
    )
    if c["reinit"]:
        members += [
            (
                dict(
                    common,
                    method="reinit",
                    folder=reinit_folder(draw),
                    draw=draw,
                    init=init_path(e_name, seed),
                    mask=imp_mask(e_name, seed, w.r),
                    fresh_init=f"reinit/round{w.r}",
                ),
                None,
            )
            for draw in range(c["reinit_draws"])
        ]
    if c["random_pruning"]:
        how = dict(
            weights=rewind_path(e_name, seed),
            criterion="random",
            scope="layerwise",
            match_counts=imp_mask(e_name, seed, w.r),
            purpose=f"random_pruning/round{w.r}",
        )
        member = dict(common, method="random_pruning", init=rewind_path(e_name, seed))
        members.append((member, how))
    return members


def control_rounds(e):
    """The IMP rounds the controls train at: every `controls.every`-th, counted back from
    the last (which always has them)."""
    last, every = e["imp"]["rounds"], e["controls"]["every"]
    return [r for r in range(1, last + 1) if (last - r) % every == 0]


def control_rounds_constraint(e):
    return {"r": "|".join(map(str, control_rounds(e))) or "_none_"}


def control_methods(e):
    """Run folders of the `controls` job."""
    c = e["controls"]
    reinit = [reinit_folder(d) for d in range(c["reinit_draws"])] if c["reinit"] else []
    return reinit + (["random_pruning"] if c["random_pruning"] else [])


def scratch_source_mask(e_name, seed, source, r):
    """The mask Scratch-E/B train: IMP's round r, or fine-tuning's round r."""
    return f"{run_dir(e_name, seed, source, f'round{r}')}/mask.safetensors"


def scratch_methods(e, variant):
    """scratch_<variant>_<source> for each configured mask source, if the variant is on."""
    c = e["controls"]
    return (
        [f"scratch_{variant}_{source}" for source in c["scratch_masks"]]
        if c[f"scratch_{variant}"]
        else []
    )


def scratch_members(variant):
    """Members of Scratch-E (variant "e") or Scratch-B ("b"): the source's mask, a fresh
    init from theta_0's stream shared by E and B (so only the budget differs), iteration 0."""

    def members(e_name, e, w, seed):
        c = e["controls"]
        return [
            (
                dict(
                    method=f"scratch_{variant}_{source}",
                    family="control",
                    level=f"round{w.r}",
                    init=init_path(e_name, seed),
                    mask=scratch_source_mask(e_name, seed, source, w.r),
                    fresh_init=f"scratch_{source}/round{w.r}",
                    counted_kinds=pruned_kinds(e),
                    **(
                        dict(compute_matched=True, budget_cap=c["scratch_b_cap"])
                        if variant == "b"
                        else {}
                    ),
                ),
                None,
            )
            for source in c["scratch_masks"]
        ]

    return members


_COHORTS_controls = (
    CohortRule(
        name="controls",
        methods=control_methods,
        level="round{r}",
        enabled=lambda e: e["imp"]["rounds"] > 0 and bool(control_methods(e)),
        members=control_members,
        networks=lambda e: [
            (m, f"round{r}") for m in control_methods(e) for r in control_rounds(e)
        ],
        priority=1,
        constraints=control_rounds_constraint,
    ),
    *(
        CohortRule(
            name=f"scratch_{variant}",
            methods=lambda e, variant=variant: scratch_methods(e, variant),
            level="round{r}",
            enabled=lambda e, variant=variant: e["imp"]["rounds"] > 0
            and bool(scratch_methods(e, variant)),
            members=scratch_members(variant),
            networks=lambda e, variant=variant: [
                (m, f"round{r}") for m in scratch_methods(e, variant) for r in control_rounds(e)
            ],
            priority=1,
            constraints=control_rounds_constraint,
        )
        for variant in ("e", "b")
    ),
)


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
    cohorts=_COHORTS_lottery + _COHORTS_controls,
    checks=(_imp, _scratch),
)
