"""The method registry: every method family declares itself once, torch-free.

A family is one block of the workflow config (imp, finetune, at_init, ...). Its module in
lth.plan.families defines `FAMILY = Family(...)`: the run folders its jobs write (methods,
each with its report group and whether it is a control), its rule kinds, its config checks
and its description. Everything that lists methods derives from here: the report's groups and
line styles, what counts as a control, the names a configured method may not take, and the
rule kinds whose names the config check keeps apart. A new family is a new module there.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """What a network is, for the report (summary.csv's `family` column), and how its
    methods are drawn: dash and marker per group, `look` the dash in words (for captions)."""

    name: str
    description: str
    linestyle: str | tuple
    marker: str
    look: str


GROUPS = (
    Group("lottery", "winning tickets and their one-shot comparison (Frankle & Carbin 2019)",
          "-", "o", "solid"),
    Group("control", "controls of a ticket: its mask or its counts with another init "
          "(Frankle & Carbin 2019; Liu et al. 2019)", "--", "s", "dashed"),
    Group("at_init", "pruning at initialization", ":", "^", "dotted"),
    Group("baseline", "baselines pruned after training (Han et al. 2015; Li et al. 2017)",
          "-.", "D", "dash-dotted"),
    Group("early", "tickets drawn early in dense training (You et al. 2020)", (0, (5, 1)), "v",
          "short dashes"),
    Group("supermask", "masks mined on frozen weights (Ramanujan et al. 2020; Sreenivasan et "
          "al. 2022)", (0, (1, 1)), "P", "fine dots"),
    Group("transfer", "tickets transferred from a network of another depth (Chen et al. 2021)",
          (0, (3, 1, 1, 1, 1, 1)), "*", "dash-dot-dot"),
    Group("reintroduce", "IMP with pruned weights re-introduced (METHODS.md 5)", (0, (8, 2)),
          "h", "long dashes"),
)
GROUP_NAMES = tuple(g.name for g in GROUPS)


@dataclass(frozen=True)
class Method:
    """A run folder a family's jobs write (results/<exp>/seed<S>/<name>/<level>), or, with
    `pattern`, a regular expression of such folders named from the config."""

    name: str
    group: str
    control: bool = False
    pattern: bool = False
    label: str = ""  # a pattern's name in words, e.g. reinit_draw<D>

    def __post_init__(self):
        if self.group not in GROUP_NAMES:
            raise ValueError(f"method {self.name}: group {self.group!r} is not one of "
                             f"{GROUP_NAMES}")

    def names(self, folder: str) -> bool:
        """Whether `folder` is this method's run folder."""
        return bool(re.fullmatch(self.name, folder)) if self.pattern else folder == self.name


@dataclass(frozen=True)
class Verb:
    """A verb a family adds to `python -m lth`: it reads its whole job as one JSON object of
    the dataclass `job` and calls `run(job, argv, threads)`; both "module:name" strings, so
    that only the verb being run imports its code. `threads`: whether it takes --threads."""

    name: str
    job: str
    run: str
    help: str
    threads: bool = True


@dataclass(frozen=True)
class Family:
    """One method family: its config block `name`, its place in the config check and the
    report (`position`), the run folders it writes, its rule kinds (one Snakemake rule
    `<kind>_<experiment>` each), the verbs it adds and its config checks (each takes a
    lth.plan.checks.Experiment and yields (key, message) problems)."""

    name: str
    position: int
    description: str
    methods: tuple[Method, ...] = ()
    rule_kinds: tuple[str, ...] = ()
    verbs: tuple[Verb, ...] = ()
    checks: tuple[Callable[..., Iterator[tuple[str, str]]], ...] = ()


def declaration_modules() -> tuple[str, ...]:
    """The modules of lth.plan.families, one per family (found, not listed)."""
    from lth.plan import families as package

    return tuple(f"{package.__name__}.{info.name}"
                 for info in pkgutil.iter_modules(package.__path__))


@functools.cache
def families() -> tuple[Family, ...]:
    """Every family of lth.plan.families, in the order of their positions."""
    found = [importlib.import_module(module).FAMILY for module in declaration_modules()]
    return tuple(sorted(found, key=lambda f: f.position))


def method_of(folder: str) -> tuple[Family, Method] | None:
    """The family and method that write the run folder `folder`; None for a folder the
    config names (a method pruned at initialisation)."""
    for family in families():
        for method in family.methods:
            if method.names(folder):
                return family, method
    return None


def is_control(folder: str) -> bool:
    """Whether a method is a control of a ticket (kept off Pareto fronts)."""
    found = method_of(folder)
    return found is not None and found[1].control


def family_of(folder: str) -> str | None:
    """The name of the family whose jobs write `folder`, or None (a configured method)."""
    found = method_of(folder)
    return found[0].name if found else None


def method_labels() -> tuple[str, ...]:
    """Every run folder the workflow names itself, patterns by their labels."""
    return tuple(m.label or m.name for f in families() for m in f.methods)


def verbs() -> dict[str, Verb]:
    """The verbs the families add, by name."""
    return {v.name: v for f in families() for v in f.verbs}


def load(path: str):
    """The object a "module:name" string names."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def rule_kinds() -> tuple[str, ...]:
    """Every family's rule kinds."""
    return tuple(kind for f in families() for kind in f.rule_kinds)
