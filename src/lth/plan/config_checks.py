"""Is a workflow config consistent? Checked in the Snakemake process before the first job.

The JSON schema (workflow/schemas/config.schema.yaml) judges each value alone. These checks
judge values against each other and against what they refer to: the model's layers and the
dataset's shape and size (lth.plan.catalog), the source folders and prepared data on disk, and the
names the workflow builds from the config (folders, rule names, level names). No torch
import: this runs on every dry run.

`first_problem(config, schema_path)` gives the first problem as (key, message), the key
dotted as in the config (experiments.<exp>.imp.rewind_iteration); workflow/rules/validate.smk
prints it as one line and stops before any job.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lth.core.errors import LthError
from lth.plan import catalog, plugins, spec
from lth.plan.catalog import DATASETS, Layer, round_half_up

Problem = tuple[str, str]
"""(dotted config key, what is wrong with its value)."""

DATA_DIR = "data/{dataset}"
"""Where the workflow prepares a dataset (workflow/rules/common.smk, data_dir)."""

RULE_KINDS = ("dense", "imp", "imp_oneshot", "finetune", "controls", "scratch_e", "scratch_b",
              "oneshot", "filter_l1", "filter_scratch", "earlybird", "edge_popup", "gem_miner",
              "reintroduce", "elastic", "figures")
"""Snakemake gets one rule `<kind>_<experiment>` ('-' written '_') per experiment and kind:
the cohort kinds of workflow/rules/*.smk and the figures rule."""

WORKFLOW_METHODS = ("imp", "imp_oneshot", "reinit", "random_pruning", "scratch_e_imp",
                    "scratch_e_finetune", "scratch_b_imp", "scratch_b_finetune", "finetune",
                    "filter_l1", "filter_scratch", "eb", "eb_continue", "edge_popup",
                    "gem_miner_gem", "gem_miner", "double", "double_complement", "scored",
                    "regrow_random")
"""The methods the workflow itself names (results/<exp>/seed<S>/<method>/...); a one-shot
method of the config must be called otherwise."""

REINIT_DRAW_FOLDER = re.compile(r"reinit_draw\d+|elastic_.*")
"""Run folders named by pattern: the reinit draws after the first (workflow/rules/controls.smk)
and the elastic transfers (elastic.smk)."""

LEVEL_NUMBER = re.compile(r"[0-9.]+")
"""What lth reads back after `density` in a level name (lth.verbs.commands.LEVEL_PATTERN)."""

READ_AS_NUMBERED_LEVEL = re.compile(r"round\d+|density[0-9.]+")
"""Level names lth reads as an IMP round or a one-shot density."""


def first_problem(cfg: dict, schema_path: str | os.PathLike) -> Problem | None:
    """The first key of `cfg` that breaks the schema, else its first inconsistency, else None.

    The schema's defaults are filled into a copy; `cfg` itself is not changed.
    """
    schema_error = _first_schema_error(cfg, schema_path)
    if schema_error:
        return schema_error
    return next(_problems(with_defaults(cfg, schema_path), cfg), None)


def _first_schema_error(cfg: dict, schema_path) -> Problem | None:
    import jsonschema
    import yaml

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg),
                    key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return None
    first = errors[0]
    message = first.message
    if first.validator == "anyOf" and "description" in first.schema:
        message += f": expected {first.schema['description']}"
    return ".".join(map(str, first.absolute_path)) or "(top level)", message


def with_defaults(cfg: dict, schema_path: str | os.PathLike) -> dict:
    """A copy of cfg with the schema's defaults filled in, exactly as the Snakefile fills them
    (snakemake.utils.validate)."""
    from snakemake.utils import validate

    filled = copy.deepcopy(cfg)
    validate(filled, str(Path(schema_path).resolve()))
    return filled


def _problems(cfg: dict, written: dict) -> Iterator[Problem]:
    """The inconsistencies of `cfg` (schema-valid, defaults filled in) in the order of its
    keys, as far as the checks can go: the first is the one to report. `written` is the
    config as written, for settings that matter only where they are set."""
    yield from _name_problems(cfg["experiments"])
    yield from plugins.config_problems(cfg["experiments"])  # names beyond the built-ins
    speech = list(_speech_problems(cfg["datasets"]))
    yield from speech
    if speech:
        return  # the speech input shape, which the experiment checks need, is unknown
    sizes = {}
    for dataset in dict.fromkeys(e["dataset"] for e in cfg["experiments"].values()):
        dataset_problems = list(_dataset_problems(dataset, cfg["datasets"]))
        yield from dataset_problems
        sizes[dataset] = None if dataset_problems else _training_examples(dataset, cfg)
    yield from _figure_problems(cfg["figures"], written.get("figures", {}))
    for name, e in cfg["experiments"].items():
        exp = Experiment.of(name, e, written["experiments"][name], cfg["datasets"],
                            sizes[e["dataset"]])
        for check in EXPERIMENT_CHECKS:
            yield from check(exp)
        yield from _elastic(name, e, cfg["experiments"])


def _elastic(name: str, e: dict, experiments: dict) -> Iterator[Problem]:
    """An elastic transfer's source is another experiment on the same dataset and seeds,
    rewinding to the same iteration, whose model has this one's depth family, and which runs
    the IMP rounds transferred."""
    x = e["elastic"]
    source_name = x["source_experiment"]
    if source_name is None:
        return
    key = f"experiments.{name}.elastic"
    source = experiments.get(source_name)
    if source is None or source_name == name:
        yield f"{key}.source_experiment", (f"{source_name!r} is not another experiment of this "
                                           f"config ({', '.join(sorted(experiments))})")
        return
    for setting in ("dataset", "seeds"):
        if source[setting] != e[setting]:
            yield f"{key}.source_experiment", (f"{source_name}'s {setting} {source[setting]} "
                                               f"differs from this experiment's {e[setting]}")
    if source["imp"]["rewind_iteration"] != e["imp"]["rewind_iteration"]:
        yield f"{key}.source_experiment", (
            f"{source_name} rewinds to iteration {source['imp']['rewind_iteration']}, this "
            f"experiment to {e['imp']['rewind_iteration']}: the transferred weights are the "
            f"source's and train on from the target's rewind point")
    problem = catalog.elastic_problem(source["model"], e["model"])
    if problem:
        yield f"{key}.source_experiment", problem
    for index, r in enumerate(x["rounds"]):
        if r > source["imp"]["rounds"]:
            yield f"{key}.rounds.{index}", (f"{r} is beyond {source_name}'s "
                                            f"{source['imp']['rounds']} IMP rounds")


# ---------------------------------------------------------------- names


def _name_problems(experiments: dict) -> Iterator[Problem]:
    """Experiment names give distinct folders (also where case does not count) and distinct
    Snakemake rule names."""
    folded: dict[str, str] = {}
    rules: dict[str, str] = {}
    for name in experiments:
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            yield (f"experiments.{name}", f"differs from experiment {other!r} only in case: "
                   f"their results/ folders are one folder where case does not count (macOS, "
                   f"Windows)")
        for kind in RULE_KINDS:
            rule = f"{kind}_{name}".replace("-", "_")
            owner = rules.setdefault(rule, name)
            if owner != name:
                yield (f"experiments.{name}", f"its rule {rule} would also be a rule of "
                       f"experiment {owner!r} (rules are named <kind>_<experiment>, '-' as '_')")
                break


# ---------------------------------------------------------------- datasets


def _speech_features(datasets: dict) -> catalog.SpeechFeatures:
    kind = datasets["speech_features"]
    return catalog.SpeechFeatures(
        kind=kind, n_fft=datasets["speech_n_fft"], win_length=datasets["speech_win_length"],
        hop_length=datasets["speech_hop_length"], n_mels=datasets["speech_n_mels"],
        n_mfcc=datasets["speech_n_mfcc"] if kind == "mfcc" else None)


def _speech_problems(datasets: dict) -> Iterator[Problem]:
    for key, message in catalog.speech_problems(_speech_features(datasets)):
        yield f"datasets.{'speech_features' if key == 'kind' else 'speech_' + key}", message


def _dataset_problems(dataset: str, datasets: dict) -> Iterator[Problem]:
    """A configured source folder of a dataset in use holds its files (and, for IDX files,
    readable headers of the dataset's image size); without one, something provides it."""
    folder = datasets["source"].get(dataset)
    key = f"datasets.source.{dataset}"
    if folder is not None:
        problem = catalog.source_folder_problem(dataset, folder)
        if problem:
            where = "" if Path(folder).is_absolute() else f" (relative to {os.getcwd()})"
            yield key, f"folder {problem}{where}"
        elif dataset in ("mnist", "fashion_mnist"):
            yield from _idx_header_problems(dataset, Path(folder), key)
    elif not datasets["download"] and not _is_prepared(dataset) and not (
            dataset == "fashion_mnist" and _holds_idx_files(catalog.DEBIAN_FASHION_MNIST)):
        ways = [f"set datasets.source.{dataset} to a folder of its raw files",
                f"prepare {DATA_DIR.format(dataset=dataset)} first"]
        if dataset == "fashion_mnist":
            ways.append(f"`apt-get install {catalog.DEBIAN_PACKAGE}`")
        yield ("datasets.download", f"false, and nothing else provides {dataset}: "
               + ", or ".join(ways))


def _holds_idx_files(folder: Path) -> bool:
    return catalog.source_folder_problem("fashion_mnist", folder) is None


def _is_prepared(dataset: str) -> bool:
    root = Path(DATA_DIR.format(dataset=dataset))
    return (root / "manifest.json").is_file() and (root / "tensors.safetensors").is_file()


def _idx_shape(path: Path, dims: int) -> tuple[int, ...] | str:
    """The shape in the header of a gz IDX file, or what is wrong with the file."""
    try:
        with gzip.open(path, "rb") as fh:
            header = fh.read(4 + 4 * dims)
    except (OSError, EOFError) as err:
        return f"{path}: not a readable gzip file ({' '.join(str(err).split())})"
    shape = catalog.idx_shape(header, dims)
    return shape if shape else f"{path}: not an IDX file of unsigned bytes ({dims}-dimensional)"


def _idx_header_problems(dataset: str, folder: Path, key: str) -> Iterator[Problem]:
    """Headers of the images and labels: readable, the dataset's image size, one label per
    image (what the files hold beyond their headers is checked when they are prepared)."""
    side = DATASETS[dataset].input_shape[1:]
    for split in ("train", "t10k"):
        images = _idx_shape(folder / f"{split}-images-idx3-ubyte.gz", 3)
        labels = _idx_shape(folder / f"{split}-labels-idx1-ubyte.gz", 1)
        for shape in (images, labels):
            if isinstance(shape, str):
                yield key, shape
                return
        if tuple(images[1:]) != side:
            yield key, (f"{folder / f'{split}-images-idx3-ubyte.gz'}: images of "
                        f"{images[1]}x{images[2]}, {dataset} has {side[0]}x{side[1]}")
        elif images[0] != labels[0]:
            yield key, (f"{folder / f'{split}-labels-idx1-ubyte.gz'}: {labels[0]} labels for "
                        f"{images[0]} images")


def _stored_rows(path: Path, tensor: str) -> int | None:
    """Rows of one tensor of a safetensors file, from its JSON header; None if unreadable."""
    try:
        with open(path, "rb") as fh:
            length = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(min(length, 1 << 20)))
        return int(header[tensor]["shape"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


@dataclass(frozen=True)
class TrainingSet:
    """Training examples of a dataset before any hold-out, and where the count comes from."""

    examples: int
    where: str


def _training_examples(dataset: str, cfg: dict) -> TrainingSet | None:
    """What the training split will hold: the prepared tensors if there are any, else the
    configured source's IDX header, else the official release; None if not known yet."""
    tensors = Path(DATA_DIR.format(dataset=dataset), "tensors.safetensors")
    rows = _stored_rows(tensors, "train_x")
    if rows is not None:
        return TrainingSet(rows, str(tensors))
    folder = cfg["datasets"]["source"].get(dataset)
    if folder is None:
        official = catalog.OFFICIAL_TRAINING_EXAMPLES.get(dataset)
        return TrainingSet(official, f"the official {dataset}") if official else None
    if dataset in ("mnist", "fashion_mnist"):
        path = Path(folder, "train-images-idx3-ubyte.gz")
        return TrainingSet(_idx_shape(path, 3)[0], str(path))
    return None


# ---------------------------------------------------------------- figures


def _figure_problems(figures: dict, written: dict) -> Iterator[Problem]:
    """A palette or colormap set in the config is one seaborn / matplotlib knows (imported
    only then: seaborn alone takes about a second to import; the defaults are known good)."""
    if "palette" in written:
        import seaborn

        try:
            seaborn.color_palette(figures["palette"])
        except ValueError:
            yield "figures.palette", f"{figures['palette']!r} is not a seaborn palette"
    if "cmap" in written:
        import matplotlib

        if figures["cmap"] not in matplotlib.colormaps:
            yield "figures.cmap", f"{figures['cmap']!r} is not a matplotlib colormap"


# ---------------------------------------------------------------- experiments


@dataclass(frozen=True)
class Experiment:
    """One experiment of the config with what its checks need to know."""

    name: str
    cfg: dict  # defaults filled in
    written: dict  # as written in the config
    layers: tuple[Layer, ...] | None  # None: the model does not take the dataset's inputs
    model_problem: str | None
    training: TrainingSet | None

    @classmethod
    def of(cls, name, e, written, datasets, training) -> Experiment:
        dataset = e["dataset"]
        speech = _speech_features(datasets) if dataset == "speech_commands" else None
        info = catalog.dataset_info(dataset, speech)
        try:
            layers, problem = tuple(catalog.prunable_layers(e["model"], info.input_shape,
                                                            info.num_classes)), None
        except LthError as err:
            layers, problem = None, str(err)
        return cls(name, e, written, layers, problem, training)

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


def _model_takes_the_inputs(e: Experiment) -> Iterator[Problem]:
    if e.model_problem:
        yield e.key("model"), f"{e.model_problem} ({e.cfg['dataset']})"


def _hold_out(e: Experiment) -> Iterator[Problem]:
    """val_size is null exactly for speech_commands (its official validation list) and
    holds out fewer than all training examples."""
    dataset, val_size = e.cfg["dataset"], e.cfg["val_size"]
    if dataset == "speech_commands":
        if val_size is not None:
            yield e.key("val_size"), (f"{val_size} is not for speech_commands: it has an "
                                      f"official validation list (expected null)")
        return
    if val_size is None:
        yield e.key("val_size"), (f"null is only for speech_commands; {dataset} needs a "
                                  f"number of training examples to hold out for validation")
        return
    if e.training and val_size >= e.training.examples:
        yield e.key("val_size"), (f"{val_size} holds out every training example "
                                  f"({e.training.examples} in {e.training.where})")


def _batches_fit(e: Experiment) -> Iterator[Problem]:
    """A training batch, SNIP's batch and GraSP's sample fit in the training examples."""
    left = e.kept_for_training()
    if left is None or left < 1:
        return
    where = f"{e.training.examples} in {e.training.where}, less val_size {e.cfg['val_size']}"
    batch = e.cfg["train"]["batch_size"]
    if batch > left:
        yield e.key("train.batch_size"), (f"{batch} is more than the {left} training examples "
                                          f"({where}): an epoch would have no batch")
    criteria = {m["criterion"] for m in _oneshot_methods(e).values()}
    oneshot = e.cfg["oneshot"]
    if "snip" in criteria and oneshot["score_batch_size"] > left:
        yield e.key("oneshot.score_batch_size"), (
            f"{oneshot['score_batch_size']} is more than the {left} training examples SNIP "
            f"can draw from ({where})")
    classes = DATASETS[e.cfg["dataset"]].num_classes
    if "grasp" in criteria and oneshot["samples_per_class"] * classes > left:
        yield e.key("oneshot.samples_per_class"), (
            f"{oneshot['samples_per_class']} examples of each of {classes} classes are more "
            f"than the {left} training examples ({where})")


def _schedules(e: Experiment) -> Iterator[Problem]:
    """The train schedule is consistent (lth.plan.catalog.schedule_problems); the fine-tuning
    schedules, which reuse its evaluation cadence, are long enough for it."""
    train = e.cfg["train"]
    for key, message in catalog.schedule_problems(spec.schedule_from_config(train)):
        yield e.key("train", key), message
    stages = {"finetune": e.cfg["finetune"]["enabled"] and e.cfg["imp"]["rounds"] > 0,
              "filters": bool(e.cfg["filters"]["structures"])}
    for stage, runs in stages.items():
        iterations = e.cfg[stage]["iterations"]
        if runs and iterations < train["eval_every"]:
            yield e.key(stage, "iterations"), (
                f"{iterations} is fewer than train.eval_every ({train['eval_every']}): only "
                f"its start and end would be evaluated")


def _training_options(e: Experiment) -> Iterator[Problem]:
    """Dropout, augmentation and the stacked engine fit the model and the dataset."""
    train, model, dataset = e.cfg["train"], e.cfg["model"], e.cfg["dataset"]
    if train["dropout"] > 0 and model in catalog.BATCHNORM_MODELS:
        yield e.key("train.dropout"), (f"{train['dropout']} is not for {model}: it uses "
                                       f"BatchNorm (expected 0)")
    if train["augment"] and dataset not in catalog.AUGMENTED_DATASETS:
        yield e.key("train.augment"), (f"true applies CIFAR-10's crop and flip (He et al. "
                                       f"2016), not meant for {dataset}")
    if e.cfg["engine"]["stack"] == "on" and train["dropout"] > 0:
        yield e.key("engine.stack"), (f"'on' cannot train dropout networks (train.dropout "
                                      f"{train['dropout']}) stacked; use auto or off")


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


def _oneshot_methods(e: Experiment) -> dict:
    return e.cfg["oneshot"]["methods"]


def _oneshot(e: Experiment) -> Iterator[Problem]:
    """Methods and densities come together; method names are not the workflow's own; each
    density names a level lth can read, and keeps weights in the model."""
    densities, methods = e.cfg["oneshot"]["densities"], _oneshot_methods(e)
    if densities and not methods:
        yield e.key("oneshot.densities"), "set, but no oneshot.methods prunes to them"
    if methods and not densities:
        yield e.key("oneshot.methods"), "set, but oneshot.densities is empty: no level to prune to"
    for method in methods:
        if method in WORKFLOW_METHODS or REINIT_DRAW_FOLDER.fullmatch(method):
            yield e.key("oneshot.methods", method), (
                f"{method!r} is a method of the workflow itself ({', '.join(WORKFLOW_METHODS)}, "
                f"reinit_draw<D>, elastic_<strategy>...)")
    if methods:
        layerwise = [m for m, how in methods.items() if how["scope"] == "layerwise"]
        yield from _density_levels(e, "oneshot", densities,
                                   f"method {layerwise[0]}" if layerwise else None)


def _named_levels(e: Experiment, key: str, densities: list, name: Callable[[float], str],
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


def _density_levels(e: Experiment, block: str, densities: list,
                    layerwise: str | None) -> Iterator[Problem]:
    """Each density of `block` names a level lth can read, once; under a layerwise method
    (named by `layerwise`) it keeps round(density x size) >= 1 weights of every layer.
    (Global scopes keep round(density x total) >= 1 of any model at a density lth can name.)"""

    def unreadable(density: float, level: str) -> str | None:
        if LEVEL_NUMBER.fullmatch(level.removeprefix("density")):
            return None
        return (f"{density} would name its level {level}, which lth cannot read back "
                f"(densities from 0.0001 name levels in plain digits)")

    yield from _named_levels(e, f"{block}.densities", densities, catalog.density_level,
                             unreadable)
    if e.layers is None or layerwise is None:
        return
    for index, density in enumerate(densities):
        empty = [layer for layer in e.layers if round_half_up(density * layer.size) == 0]
        if empty:
            yield e.key(block, "densities", index), (
                f"{density} keeps no weight of {empty[0].name} ({empty[0].size} weights) "
                f"under {layerwise}'s layerwise scope")


def _channel_levels(e: Experiment, densities: list) -> Iterator[Problem]:
    """The channel variant removes VGG channels; each kept fraction names a level
    channels<P>, P a whole percent, once."""
    if not e.cfg["model"].startswith("vgg"):
        yield e.key("earlybird.variant"), (f"channel removes BatchNorm channels physically, "
                                           f"which lth does for VGGs only, not {e.cfg['model']}")

    def unreadable(density: float, _level: str) -> str | None:
        if abs(100 * density - round(100 * density)) <= 1e-9 and round(100 * density) > 0:
            return None
        return (f"{density}: the channel variant's fractions of channels kept are whole "
                f"percents (they name the levels channels<percent>)")

    yield from _named_levels(e, "earlybird.densities", densities, catalog.channel_level,
                             unreadable)


def _earlybird(e: Experiment) -> Iterator[Problem]:
    """Early-Bird checks within the training, and its distance can tell masks apart."""
    b = e.cfg["earlybird"]
    if not b["densities"]:
        return
    if b["variant"] == "channel":
        yield from _channel_levels(e, b["densities"])
    else:
        yield from _density_levels(e, "earlybird", b["densities"],
                                   "earlybird" if b["scope"] == "layerwise" else None)
    iterations = e.cfg["train"]["iterations"]
    if b["check_every"] >= iterations:
        yield e.key("earlybird.check_every"), (
            f"{b['check_every']} is not below train.iterations ({iterations}): the search "
            f"would check only the initial weights")
    if b["distance"] == "hamming":
        for index, d in enumerate(b["densities"]):
            if catalog.vacuous_hamming(d, b["epsilon"]):
                yield e.key("earlybird.densities", index), (
                    f"{d}: the Early-Bird threshold is vacuous at this density (a Hamming "
                    f"distance of two masks keeping {d} is at most {2 * min(d, 1 - d):g} <= "
                    f"epsilon {b['epsilon']}); use distance changed_fraction")


def _supermask(e: Experiment) -> Iterator[Problem]:
    """Mining has densities and a method; GEM-MINER freezes within the mining; batches fit."""
    m = e.cfg["supermask"]
    enabled = [algo for algo in ("edge_popup", "gem_miner") if m[algo]["enabled"]]
    if m["densities"] and not enabled:
        yield e.key("supermask.densities"), ("set, but neither edge_popup nor gem_miner is "
                                             "enabled")
    if enabled and not m["densities"]:
        yield e.key("supermask", enabled[0], "enabled"), ("true, but supermask.densities is "
                                                          "empty: no level to mine")
    if not (enabled and m["densities"]):
        return
    yield from _density_levels(e, "supermask", m["densities"],
                               "edge_popup" if "edge_popup" in enabled else None)
    iterations = m["iterations"] or e.cfg["train"]["iterations"]
    freeze = m["gem_miner"]["freeze_every"]
    if "gem_miner" in enabled and freeze >= iterations:
        yield e.key("supermask.gem_miner.freeze_every"), (
            f"{freeze} is not below the {iterations} mining iterations: GEM-MINER would "
            f"never freeze its way to the target density")
    left = e.kept_for_training()
    batch = m["batch_size"]
    if batch is not None and left is not None and 0 < left < batch:
        yield e.key("supermask.batch_size"), (f"{batch} is more than the {left} training "
                                              f"examples: an epoch would have no batch")


def _reintroduce(e: Experiment) -> Iterator[Problem]:
    """Re-introduction chains need IMP's rounds."""
    if e.cfg["reintroduce"]["methods"] and e.cfg["imp"]["rounds"] == 0:
        yield e.key("reintroduce.methods"), ("set, but imp.rounds is 0: there is no IMP "
                                             "round to re-introduce weights into")


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


def _scratch(e: Experiment) -> Iterator[Problem]:
    """Scratch-E/B on fine-tuning's masks need the fine-tuning rounds that make them."""
    c = e.cfg["controls"]
    on = c["scratch_e"] or c["scratch_b"]
    if on and "finetune" in c["scratch_masks"] and not e.cfg["finetune"]["enabled"]:
        yield e.key("controls.scratch_masks"), (
            "holds finetune, but finetune.enabled is false: there are no fine-tuned masks "
            "for Scratch-E/B to train")


EXPERIMENT_CHECKS = (_model_takes_the_inputs, _hold_out, _batches_fit, _schedules,
                     _training_options, _imp, _scratch, _oneshot, _filters, _earlybird,
                     _supermask, _reintroduce)
"""Every check of one experiment, in the order of its keys in the config."""
