"""The method registry: every method family declares itself once, torch-free.

A family is one block of the workflow config (imp, finetune, at_init, ...). Its module in
lth.plan.families defines `FAMILY = Family(...)`: the run folders its jobs write (methods,
each with its report group and whether it is a control), its rules, its config checks
and its description. Everything that lists methods derives from here: the report's groups and
line styles, what counts as a control, the names a configured method may not take, and the
rules whose names the config check keeps apart. A new family is a new module there.
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


@dataclass(frozen=True)
class Method:
    """A run folder a family's jobs write (results/<exp>/seed<S>/<name>/<level>), or, with
    `pattern`, a regular expression of such folders named from the config."""

    name: str
    group: str
    control: bool = False
    pattern: bool = False
    label: str = ""  # a pattern's name in words, e.g. reinit_draw<D>
    below_target: str = ""  # why its mask may keep under half its level's target, for the report

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
    report (`position`), the run folders it writes, its rules (one Snakemake rule
    `<rule>_<experiment>` each), the verbs it adds, its config checks (each takes a
    lth.plan.checks.Experiment and yields (key, message) problems) and the config keys it has
    renamed (a config using an old one gets one line naming the new one)."""

    name: str
    position: int
    description: str
    methods: tuple[Method, ...] = ()
    folders: tuple[str, ...] = ()  # seed folders it writes that hold no network (e.g. a search)
    groups: tuple[Group, ...] = ()  # the report groups it declares (others may use them)
    cohorts: tuple = ()  # its rules of training jobs (lth.plan.jobs.CohortRule)
    verbs: tuple[Verb, ...] = ()
    checks: tuple[Callable[..., Iterator[tuple[str, str]]], ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()  # (old key, new key) in an experiment's block


def declaration_modules() -> tuple[str, ...]:
    """The modules of lth.plan.families, one per family (found, not listed)."""
    from lth.plan import families as package

    return tuple(f"{package.__name__}.{info.name}"
                 for info in pkgutil.iter_modules(package.__path__))


@functools.cache
def families() -> tuple[Family, ...]:
    """Every family of lth.plan.families, in the order of their positions."""
    return in_order([importlib.import_module(m).FAMILY for m in declaration_modules()])


def in_order(found: list[Family]) -> tuple[Family, ...]:
    """Families by position; ValueError for a method whose report group none declares."""
    ordered = tuple(sorted(found, key=lambda f: f.position))
    names = [g.name for f in ordered for g in f.groups]
    for family in ordered:
        for method in family.methods:
            if method.group not in names:
                raise ValueError(f"method {method.name}: group {method.group!r} is not one of "
                                 f"{tuple(names)}")
    return ordered


def groups() -> tuple[Group, ...]:
    """The report's groups (summary.csv's `family` column), in the families' order."""
    return tuple(g for f in families() for g in f.groups)


def group_names() -> tuple[str, ...]:
    """The names of groups(), in order."""
    return tuple(g.name for g in groups())


def method_of(folder: str) -> tuple[Family, Method] | None:
    """The family and method that write the run folder `folder`; None for a folder the
    config names (a method pruned at initialisation)."""
    for family in families():
        for method in family.methods:
            if method.names(folder):
                return family, method
    return None


def below_target_reason(folder: str) -> str:
    """Why the method of run folder `folder` may keep fewer weights than its target, in
    words; "" when its family gives no reason."""
    found = method_of(folder)
    return found[1].below_target if found else ""


def is_control(folder: str) -> bool:
    """Whether a method is a control of a ticket (kept off Pareto fronts)."""
    found = method_of(folder)
    return found is not None and found[1].control


def family_of(folder: str) -> str | None:
    """The name of the family whose jobs write `folder`, or None (a configured method)."""
    found = method_of(folder)
    return found[0].name if found else None


def method_labels() -> tuple[str, ...]:
    """Every seed folder the workflow names itself: run folders (patterns by their labels),
    then the families' other folders."""
    return (*(m.label or m.name for f in families() for m in f.methods),
            *(folder for f in families() for folder in f.folders))


def names_a_workflow_folder(name: str) -> bool:
    """Whether a seed folder `name` is one the workflow writes itself (a configured method
    may not take it)."""
    return method_of(name) is not None or any(name in f.folders for f in families())


def verbs() -> dict[str, Verb]:
    """The verbs the families add, by name."""
    return {v.name: v for f in families() for v in f.verbs}


def load(path: str):
    """The object a "module:name" string names."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def rules() -> tuple[str, ...]:
    """Every family's rules: the names of its cohort rules."""
    return tuple(rule.name for f in families() for rule in f.cohorts)
