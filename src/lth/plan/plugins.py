"""Plug-ins: pruning criteria and models that another installed distribution adds, with no
edit of lth, through the entry-point groups `lth.criteria` and `lth.models`.

An entry point's name is what a config names (`at_init.methods.<m>.criterion`, `model`); its
object is a declaration, a CriterionPlugin or a ModelPlugin, defined in a torch-free module
of the plug-in. Torch-free here: the config check and the rule files read the declarations;
the callables they name as "module:function" are imported by the jobs, except a model's
`layers`, which the config check calls (keep that module torch-free too).

A plug-in is part of the provenance of everything it makes: its distribution, version and
the sha256 of its source files (provenance), which are also code inputs of the jobs that use
it (source_files), so editing it reruns exactly those jobs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lth.core.errors import LthError
from lth.plan import catalog, spec
from lth.plan.registry import load

CRITERIA_GROUP = "lth.criteria"
MODELS_GROUP = "lth.models"

BUILTIN_CRITERIA = ("magnitude", "random", "snip", "grasp", "synflow")
"""The criteria of lth.methods.criteria.CRITERIA (tests/test_plugins.py checks they agree)."""

REFERENCE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
"""A callable named "module:function"."""

SCORING_FIELDS = tuple(f.name for f in dataclasses.fields(spec.Scoring))


@dataclass(frozen=True)
class CriterionPlugin:
    """A pruning criterion scored at initialisation, then trained as SNIP is.

    scores: "module:function", function(model, mask, data) -> {weight name: scores}, as the
        criteria of lth.methods.criteria (higher = keep; data is their ScoreData).
    reads: the at_init settings it reads (lth.plan.spec.Scoring fields): () scores without
        data; with score_batch_size, one random training batch of that size; with
        samples_per_class as well, a class-balanced sample, as GraSP.
    macs: "module:function", function(dense_macs, examples, iterations) -> the
        multiply-accumulates its scoring spends (examples: those scored, each iteration);
        None records them as unknown.
    """

    scores: str
    reads: tuple[str, ...] = ()
    macs: str | None = None


@dataclass(frozen=True)
class ModelPlugin:
    """A network.

    build: "module:function", function(input_shape, num_classes, gen, dropout, init) -> an
        nn.Module drawing every random value from the torch.Generator gen, its last nn.Linear
        the output layer (lth.core.models.build_model's contract; init names an
        lth.core.models.INITIALISERS entry or is None).
    layers: "module:function", torch-free, function(input_shape, num_classes) -> the
        lth.plan.catalog.Layer of every prunable weight (each conv and linear weight, in
        registration order); it raises LthError or ValueError when the inputs do not suit.
    """

    build: str
    layers: str


@dataclass(frozen=True)
class Plugin:
    """One installed, well-formed plug-in."""

    name: str
    group: str
    declaration: CriterionPlugin | ModelPlugin
    distribution: str
    version: str
    files: tuple[Path, ...]  # its source files: the .py files of its top-level packages
    source_sha256: str  # of their names (under site-packages or the source root) and bytes

    def provenance(self) -> dict:
        """What a record says about the plug-in."""
        return {"name": self.name, "group": self.group, "distribution": self.distribution,
                "version": self.version, "source_sha256": self.source_sha256}


DECLARATIONS = {CRITERIA_GROUP: CriterionPlugin, MODELS_GROUP: ModelPlugin}


@functools.cache
def installed(group: str) -> dict[str, Plugin | str]:
    """The plug-ins of an entry-point group by name: a Plugin, or a sentence saying why its
    declaration is malformed."""
    found: dict[str, Plugin | str] = {}
    for entry in metadata.entry_points(group=group):
        try:
            found[entry.name] = _plugin(entry, group)
        except Exception as err:  # a plug-in's import can fail in any way; say how
            found[entry.name] = f"{type(err).__name__}: {' '.join(str(err).split())}"
    return found


def _plugin(entry: metadata.EntryPoint, group: str) -> Plugin:
    declaration = entry.load()
    problem = declaration_problem(declaration, group)
    if problem:
        raise ValueError(problem)
    modules = [entry.module] + [ref.split(":")[0] for ref in _references(declaration)]
    files = _package_files(modules)
    return Plugin(entry.name, group, declaration, entry.dist.name, entry.dist.version,
                  tuple(files.values()), files_digest(files))


def _references(declaration: CriterionPlugin | ModelPlugin) -> list[str]:
    if isinstance(declaration, ModelPlugin):
        return [declaration.build, declaration.layers]
    return [declaration.scores] + ([declaration.macs] if declaration.macs else [])


def declaration_problem(declaration: object, group: str) -> str | None:
    """What makes `declaration` no declaration of `group`, or None."""
    kind = DECLARATIONS[group]
    if not isinstance(declaration, kind):
        return f"expected an lth.plan.plugins.{kind.__name__}, got {type(declaration).__name__}"
    for ref in _references(declaration):
        if not isinstance(ref, str) or not REFERENCE.fullmatch(ref):
            return f"{ref!r} is not a callable named 'module:function'"
    reads = getattr(declaration, "reads", ())
    if not isinstance(reads, tuple) or any(key not in SCORING_FIELDS for key in reads):
        return f"reads {reads!r}: expected a tuple of {', '.join(SCORING_FIELDS)}"
    if reads and "score_batch_size" not in reads:
        return f"reads {reads!r}: a criterion that reads data reads score_batch_size"
    return None


def _package_files(modules: list[str]) -> dict[str, Path]:
    """The .py files of the top-level packages (or modules) of `modules`, by their name
    relative to the folder holding the package, found without importing anything: they are
    where the interpreter imports them from, for an editable install as for a copied one."""
    files: dict[str, Path] = {}
    for top in dict.fromkeys(m.split(".")[0] for m in modules):
        found = importlib.util.find_spec(top)
        if found is None:
            raise ModuleNotFoundError(f"no module named {top!r}")
        for root in map(Path, found.submodule_search_locations or []):
            files.update((p.relative_to(root.parent).as_posix(), p)
                         for p in root.rglob("*.py") if "__pycache__" not in p.parts)
        if not found.submodule_search_locations and found.origin:
            files[Path(found.origin).name] = Path(found.origin)
    return dict(sorted(files.items()))


def files_digest(files: dict[str, Path]) -> str:
    """sha256 over the files' names and bytes, in name order."""
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def plugin(group: str, name: str) -> Plugin:
    """The installed plug-in `name` of `group`; LthError in one line naming it, when it is
    missing or malformed, with the installed ones."""
    entry = installed(group).get(name)
    if isinstance(entry, Plugin):
        return entry
    if entry is None:
        what = "criterion" if group == CRITERIA_GROUP else "model"
        raise LthError(f"{what} {name!r} is neither built in nor an installed {group} plug-in "
                       f"(installed: {_listing(group)})")
    raise LthError(f"{group} plug-in {name!r} is malformed: {entry} (installed: "
                   f"{_listing(group)})")


def _listing(group: str) -> str:
    return ", ".join(sorted(installed(group))) or "none"


def is_criterion_plugin(name: str) -> bool:
    return name not in BUILTIN_CRITERIA and name in installed(CRITERIA_GROUP)


def is_builtin_model(name: str) -> bool:
    return name in catalog.MODEL_NAMES or catalog.mlp_family_hidden(name) is not None


def is_model_plugin(name: str) -> bool:
    return not is_builtin_model(name) and name in installed(MODELS_GROUP)


def config_problems(experiments: dict) -> list[tuple[str, str]]:
    """(config key, message) for each model or criterion that is neither built in nor a
    well-formed installed plug-in."""
    problems = []
    for exp, e in experiments.items():
        if not is_builtin_model(e["model"]):
            problems += _named_problem(f"experiments.{exp}.model", MODELS_GROUP, e["model"])
        for method, how in e["at_init"]["methods"].items():
            if how["criterion"] not in BUILTIN_CRITERIA:
                key = f"experiments.{exp}.at_init.methods.{method}.criterion"
                problems += _named_problem(key, CRITERIA_GROUP, how["criterion"])
    return problems


def _named_problem(key: str, group: str, name: str) -> list[tuple[str, str]]:
    try:
        plugin(group, name)
    except LthError as err:
        return [(key, str(err))]
    return []


def scoring_settings(criterion: str) -> tuple[str, ...]:
    """The at_init settings a criterion reads (built in: lth.plan.spec.SCORING_SETTINGS)."""
    if criterion in spec.SCORING_SETTINGS or not is_criterion_plugin(criterion):
        return spec.SCORING_SETTINGS.get(criterion, ())
    return plugin(CRITERIA_GROUP, criterion).declaration.reads


def criterion_scores(name: str):
    """The scoring function of the criterion plug-in `name`."""
    return load(plugin(CRITERIA_GROUP, name).declaration.scores)


def criterion_macs(name: str, dense_macs: int, examples: int, iterations: int) -> int | None:
    """What the plug-in's scoring costs, as it declares; None (unknown) when it does not."""
    macs = plugin(CRITERIA_GROUP, name).declaration.macs
    return int(load(macs)(dense_macs, examples, iterations)) if macs else None


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, gen, dropout: float,
                init: str | None):
    """The network of the model plug-in `name`."""
    build = load(plugin(MODELS_GROUP, name).declaration.build)
    return build(input_shape, num_classes, gen, dropout, init)


def model_layers(name: str, input_shape: tuple[int, ...], num_classes: int) -> list:
    """The prunable layers of the model plug-in `name` (its torch-free `layers`); LthError
    when the inputs do not suit it."""
    try:
        return list(load(plugin(MODELS_GROUP, name).declaration.layers)(input_shape,
                                                                         num_classes))
    except ValueError as err:
        raise LthError(f"model {name}: {err}") from None


def in_use(model: str, criteria: tuple[str, ...] = ()) -> list[Plugin]:
    """The plug-ins among a model and criteria."""
    used = [plugin(MODELS_GROUP, model)] if is_model_plugin(model) else []
    return used + [plugin(CRITERIA_GROUP, c) for c in dict.fromkeys(criteria)
                   if is_criterion_plugin(c)]


def provenance(model: str, criteria: tuple[str, ...] = ()) -> list[dict]:
    """The records of the plug-ins among a model and criteria."""
    return [p.provenance() for p in in_use(model, criteria)]


def source_files(model: str, criteria: tuple[str, ...] = ()) -> list[str]:
    """The source files of the plug-ins among a model and criteria: code inputs of the jobs
    that use them."""
    return [str(path) for p in in_use(model, criteria) for path in p.files]
