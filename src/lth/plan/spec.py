"""Typed job settings: one declaration per setting, no torch import.

A setting is declared once in the config schema (default, bounds, citation) and once as a
field of one of these frozen dataclasses. The workflow builds a job's spec from the config in
one place (`workflow/rules/common.smk`), serialises it to JSON as one rule param (so any
changed value reruns exactly the jobs whose spec holds it), and the verb reads it back with
`from_json`, which names the key of any missing, unknown or mistyped value in one line.
Adding a setting is one schema entry plus one field here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, replace

from lth.core.errors import LthError


@dataclass(frozen=True)
class Training:
    """How a network trains, as a paper states it (tests/paper.py's PaperSetting extends it)."""

    optimizer: str  # "sgd" or "adam"
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    batch_size: int
    iterations: int
    milestones: tuple[int, ...]  # iterations at which the learning rate is multiplied by gamma
    gamma: float
    warmup: int  # iterations of linear warmup from 0 to lr
    dropout: float
    augment: bool
    # a key of lth.core.models.INITIALISERS
    init: str = dataclasses.field(default="glorot", kw_only=True)
    # BatchNorm scales at init (theta_0's architecture records it when not 1)
    batchnorm_init: float = dataclasses.field(default=1.0, kw_only=True)


@dataclass(frozen=True)
class Schedule(Training):
    """How one network trains: the `train` block of an experiment in the config."""

    eval_every: int
    eval_batch_size: int
    train_eval_size: int | None = None  # train accuracy on the first N examples; None: all

    def scaled(self, factor: float) -> Schedule:
        """The same schedule stretched by `factor` (Scratch-B budgets, Liu et al. 2019)."""
        return replace(
            self,
            iterations=math.ceil(self.iterations * factor),
            milestones=tuple(math.ceil(m * factor) for m in self.milestones),
            warmup=math.ceil(self.warmup * factor),
        )


@dataclass(frozen=True)
class Rates:
    """Fraction of the remaining weights one IMP round removes, per layer kind."""

    conv: float
    fc: float
    output: float
    shortcut: float = 0.0  # ResNet 1x1 projection shortcuts (Frankle & Carbin 2019, App. I.3)


@dataclass(frozen=True)
class Engine:
    """How a cohort job trains its networks (the `engine` block of an experiment).

    stack: "auto" stacks the cohort into one batched step on CUDA and trains the networks one
    after another with the reference loop on CPU; "on" / "off" force either. slots: the fixed
    width of a stacked step; a cohort is cut into chunks of `slots` networks (the last one
    padded), so a network's bytes never depend on its companions. capture: replay the
    stacked step as a CUDA graph. tf32: allow TF32 matmuls and convolutions on CUDA.
    """

    stack: str
    slots: int
    capture: bool
    tf32: bool


@dataclass(frozen=True)
class Extension:
    """A method family's own step inside a core job: how a family changes IMP's prune step or
    a training member without editing the core. `hooks` names the family's module that
    holds its hooks (a lth.methods module or a plug-in's); `settings` is its own JSON object,
    which that module checks and reads; `files` are the files it reads (they join the job's
    inputs).

    For a prune job the module defines check_prune(extension, job) (LthError, one line),
    after_prune(extension, new_mask, previous_mask, scores, generator) -> the job's mask, and
    prune_record(extension, mask, previous_mask) -> what the prune record keeps of it.
    For a member it defines training_mask(extension, params) -> the mask to train (None: the
    member's own) and training_monitor(extension, mask, device) -> None or an after_backward
    hook of lth.core.train whose files() are the extra tensors saved in the run folder.
    """

    hooks: str
    settings: dict
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Member:
    """One network of a cohort: where it starts, its mask, where its artifacts go."""

    seed: int
    method: str
    family: str
    level: str
    init: str  # weights file it starts from (theta_0, theta_k or trained weights)
    out_dir: str
    mask: str | None = None  # None: dense
    fresh_init: str | None = None  # random-stream purpose of a fresh init (controls)
    save_at: int | None = None  # also save the weights at this iteration (late rewinding)
    start_iteration: int = 0  # train iterations start..T, schedule and data order continuing
    draw: int = 0  # which random draw of fresh_init (draw 0 is the purpose itself)
    compute_matched: bool = False  # Scratch-B: stretch the schedule by dense/sparse MACs
    budget_cap: float | None = None  # cap on that stretch factor (None: uncapped)
    counted_kinds: tuple[str, ...] | None = None  # layer kinds whose weights define density
    resume: bool = False  # start at the iteration recorded in `init` (a drawn ticket's)
    extension: Extension | None = None  # a family's own mask or monitor for this member


@dataclass(frozen=True)
class TrainJob:
    """A training job: a cohort of networks sharing experiment, data and schedule."""

    experiment: str
    data_root: str
    val_size: int | None
    device: str
    schedule: Schedule
    engine: Engine
    members: tuple[Member, ...]

    def reads(self) -> list[str | None]:
        """The files the job reads besides the dataset (None where a member has none)."""
        return [f for m in self.members
                for f in (m.init, m.mask, *(m.extension.files if m.extension else ()))]


SCORING_SETTINGS = {
    "snip": ("score_batch_size", "snip_batchnorm"),
    "grasp": ("score_batch_size", "samples_per_class", "grasp_temperature", "grasp_batchnorm"),
}
"""The data-driven criteria and the Scoring settings each reads: a prune job carries only
these, so a GraSP setting never reruns another method's jobs."""


@dataclass(frozen=True)
class Scoring:
    """Settings of the data-driven criteria (the `at_init` block of an experiment)."""

    score_batch_size: int  # SNIP: one batch of training data (Lee et al. 2019)
    samples_per_class: int | None = None  # GraSP: a class-balanced sample (Wang et al. 2020)
    grasp_temperature: float | None = None  # GraSP only
    snip_batchnorm: str | None = None  # "batch" or "running" statistics while SNIP scores
    grasp_batchnorm: str | None = None  # the same for GraSP


@dataclass(frozen=True)
class PruneJob:
    """One mask: scores of `weights` under `mask`, pruned by exactly one of rates, density
    or match_counts."""

    experiment: str
    seed: int
    weights: str
    criterion: str
    scope: str
    purpose: str  # names the random stream, e.g. snip/density0.1
    iterations: int  # pruning iterations (SynFlow 100)
    device: str
    out: str
    mask: str | None = None
    rates: Rates | None = None
    density: float | None = None
    match_counts: str | None = None
    data_root: str | None = None
    val_size: int | None = None
    scoring: Scoring | None = None
    extension: Extension | None = None  # a family's step after the pruning (with rates)
    save_scores: bool = False  # also write the scores, <out folder>/scores.safetensors

    def reads(self) -> list[str | None]:
        """The files the job reads besides the dataset (None where it has none)."""
        return [self.weights, self.mask, self.match_counts,
                *(self.extension.files if self.extension else ())]


def to_json(spec) -> str:
    """Compact, key-sorted JSON of a spec (stable text, so a rule param changes only when a
    value does)."""
    return json.dumps(dataclasses.asdict(spec), sort_keys=True, separators=(",", ":"))


def from_json(cls, text: str, where: str = "--job"):
    """The spec of type cls encoded in text; LthError names the first bad key."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LthError(f"{where}: not valid JSON ({err})") from None
    return from_dict(cls, data, where)


def from_dict(cls, data, where: str):
    """Build dataclass cls from a dict, checking every key and value type."""
    if not isinstance(data, dict):
        raise LthError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise LthError(f"{where}.{unknown[0]}: unknown setting")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING:
                raise LthError(f"{where}.{name}: missing")
            continue
        values[name] = _convert(hints[name], data[name], f"{where}.{name}")
    return cls(**values)


def _convert(hint, value, where: str):
    """value checked against (and converted to) the type hint."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            raise LthError(f"{where}: expected a list, got {value!r}")
        return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise LthError(f"{where}: expected true or false, got {value!r}")
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise LthError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def schedule_from_config(block: dict) -> Schedule:
    """The Schedule of a config `train` block (the schema has filled in every default)."""
    return from_dict(Schedule, block, "train")
