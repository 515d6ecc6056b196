"""Pruning at initialisation (one shot, then the IMP schedule): magnitude, random, SNIP (Lee
et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et al. 2020). The config names each
method's run folder; those names may not be the workflow's own."""

from __future__ import annotations

from collections.abc import Iterator

from lth.plan import catalog, registry
from lth.plan.checks import Experiment, Problem, density_levels
from lth.plan.jobs import CohortRule, init_path
from lth.plan.registry import Family, Group


def _oneshot(e: Experiment) -> Iterator[Problem]:
    """Methods and densities come together; method names are not the workflow's own; each
    density names a level lth can read, and keeps weights in the model."""
    densities, methods = e.cfg["at_init"]["densities"], e.cfg["at_init"]["methods"]
    if densities and not methods:
        yield e.key("at_init.densities"), "set, but no at_init.methods prunes to them"
    if methods and not densities:
        yield e.key("at_init.methods"), "set, but at_init.densities is empty: no level to prune to"
    for method in methods:
        if registry.names_a_workflow_folder(method):
            yield e.key("at_init.methods", method), (
                f"{method!r} names a folder of the workflow itself "
                f"({', '.join(registry.method_labels())})")
    if methods:
        layerwise = [m for m, how in methods.items() if how["scope"] == "layerwise"]
        yield from density_levels(e, "at_init", densities,
                                  f"method {layerwise[0]}" if layerwise else None)


def configured_methods(e: dict) -> dict:
    """The methods the config prunes at initialisation (none without densities)."""
    return e["at_init"]["methods"] if e["at_init"]["densities"] else {}


def at_init_members(e_name, e, w, seed):
    method = e["at_init"]["methods"][w.method]
    members = []
    for d in e["at_init"]["densities"]:
        level = catalog.density_level(d)
        how = dict(
            weights=init_path(e_name, seed),
            criterion=method["criterion"],
            scope=method["scope"],
            density=float(d),
            purpose=f"{w.method}/{level}",
            iterations=method["iterations"],
            save_scores=True,
        )
        member = dict(method=w.method, family="at_init", level=level, init=init_path(e_name, seed))
        members.append((member, how))
    return members


_COHORTS_at_init = (
    CohortRule(
        name="at_init",
        methods=lambda e: ["{method}"],
        level="",
        enabled=lambda e: bool(configured_methods(e)),
        members=at_init_members,
        networks=lambda e: [
            (m, catalog.density_level(d))
            for m in configured_methods(e)
            for d in e["at_init"]["densities"]
        ],
        levels=lambda e: [catalog.density_level(d) for d in e["at_init"]["densities"]],
        constraints=lambda e: {"method": "|".join(configured_methods(e))},
        log_tag="{method}",
    ),
)


FAMILY = Family(
    name="at_init",
    position=1,
    description="pruning at initialisation, one shot, then trained",
    groups=(Group("at_init", "pruning at initialization", ":", "^", "dotted"),),
    cohorts=_COHORTS_at_init,
    renamed=(("oneshot", "at_init"),),
    checks=(_oneshot,),
)
