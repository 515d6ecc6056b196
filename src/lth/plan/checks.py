"""What every config check of an experiment stands on: the Experiment it reads (defaults
filled in, as written, its model's layers, its training set) and the level-name checks the
families share. Torch-free."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lth.core.errors import LthError
from lth.plan import catalog
from lth.plan.catalog import Layer, round_half_up

Problem = tuple[str, str]
"""(dotted config key, what is wrong with its value)."""


LEVEL_NUMBER = re.compile(r"[0-9.]+")
"""What lth reads back after `density` in a level name (lth.core.records.LEVEL_PATTERN)."""

READ_AS_NUMBERED_LEVEL = re.compile(r"round\d+|density[0-9.]+")
"""Level names lth reads as an IMP round or a one-shot density."""


@dataclass(frozen=True)
class TrainingSet:
    """Training examples of a dataset before any hold-out, and where the count comes from."""

    examples: int
    where: str


def speech_features(datasets: dict) -> catalog.SpeechFeatures:
    """The speech front end the config's datasets block sets."""
    kind = datasets["speech_features"]
    return catalog.SpeechFeatures(
        kind=kind, n_fft=datasets["speech_n_fft"], win_length=datasets["speech_win_length"],
        hop_length=datasets["speech_hop_length"], n_mels=datasets["speech_n_mels"],
        n_mfcc=datasets["speech_n_mfcc"] if kind == "mfcc" else None)


@dataclass(frozen=True)
class Experiment:
    """One experiment of the config with what its checks need to know."""

    name: str
    cfg: dict  # defaults filled in
    written: dict  # as written in the config
    layers: tuple[Layer, ...] | None  # None: the model does not take the dataset's inputs
    model_problem: str | None
    training: TrainingSet | None
    experiments: dict  # every experiment of the config (defaults filled in), by name

    @classmethod
    def of(cls, name, e, written, datasets, training, experiments) -> Experiment:
        dataset = e["dataset"]
        speech = speech_features(datasets) if dataset == "speech_commands" else None
        info = catalog.dataset_info(dataset, speech)
        try:
            layers, problem = tuple(catalog.prunable_layers(e["model"], info.input_shape,
                                                            info.num_classes)), None
        except LthError as err:
            layers, problem = None, str(err)
        return cls(name, e, written, layers, problem, training, experiments)

    def key(self, *path) -> str:
        return ".".join(map(str, ("experiments", self.name, *path)))

    def is_written(self, *path) -> bool:
        """Whether the config as written sets this key (not only its schema default)."""
        node = self.written
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def kept_for_training(self) -> int | None:
        """Training examples left after the validation hold-out, if known."""
        if self.training is None:
            return None
        return self.training.examples - (self.cfg["val_size"] or 0)


def named_levels(e: Experiment, key: str, densities: list, name: Callable[[float], str],
                  unreadable: Callable[[float, str], str | None]) -> Iterator[Problem]:
    """Each density of the list at `key` names its level name(density) once, and one lth can
    read back (unreadable(density, level) says why it cannot, else None)."""
    levels: dict[str, float] = {}
    for index, density in enumerate(densities):
        level = name(density)
        why = unreadable(density, level)
        if why:
            yield e.key(key, index), why
        elif level in levels:
            yield e.key(key, index), f"{density} and {levels[level]} both name the level {level}"
        levels.setdefault(level, density)


def density_levels(e: Experiment, block: str, densities: list,
                    layerwise: str | None) -> Iterator[Problem]:
    """Each density of `block` names a level lth can read, once; under a layerwise method
    (named by `layerwise`) it keeps round(density x size) >= 1 weights of every layer.
    (Global scopes keep round(density x total) >= 1 of any model at a density lth can name.)"""

    def unreadable(density: float, level: str) -> str | None:
        if LEVEL_NUMBER.fullmatch(level.removeprefix("density")):
            return None
        return (f"{density} would name its level {level}, which lth cannot read back "
                f"(densities from 0.0001 name levels in plain digits)")

    yield from named_levels(e, f"{block}.densities", densities, catalog.density_level,
                             unreadable)
    if e.layers is None or layerwise is None:
        return
    for index, density in enumerate(densities):
        empty = [layer for layer in e.layers if round_half_up(density * layer.size) == 0]
        if empty:
            yield e.key(block, "densities", index), (
                f"{density} keeps no weight of {empty[0].name} ({empty[0].size} weights) "
                f"under {layerwise}'s layerwise scope")
