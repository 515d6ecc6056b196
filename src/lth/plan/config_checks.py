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
from collections.abc import Callable, Iterator
from pathlib import Path

from lth.plan import catalog, plugins, registry, spec
from lth.plan.catalog import DATASETS
from lth.plan.checks import Experiment, Problem, TrainingSet, speech_features

DATA_DIR = "data/{dataset}"
"""Where the workflow prepares a dataset (workflow/rules/common.smk, data_dir)."""

RULE_NAMES = (*registry.rules(), "figures")
"""Snakemake gets one rule `<name>_<experiment>` ('-' written '_') per experiment and name:
the families' rules (lth.plan.registry) and the figures rule."""


def first_problem(cfg: dict, schema_path: str | os.PathLike) -> Problem | None:
    """The first key of `cfg` that breaks the schema, else its first inconsistency, else None.

    The schema's defaults are filled into a copy; `cfg` itself is not changed.
    """
    schema_error = _renamed_key(cfg) or _first_schema_error(cfg, schema_path)
    if schema_error:
        return schema_error
    return next(_problems(with_defaults(cfg, schema_path), cfg), None)


def _renamed_key(cfg: dict) -> Problem | None:
    """The first key an experiment sets under a name its family has since changed."""
    experiments = cfg.get("experiments") if isinstance(cfg, dict) else None
    for name, e in (experiments or {}).items():
        for family in registry.families():
            for old, new in family.renamed:
                *parents, last = old.split(".")
                block = e
                for part in parents:
                    block = block.get(part) if isinstance(block, dict) else None
                if isinstance(block, dict) and last in block:
                    return f"experiments.{name}.{old}", f"renamed: write {new} instead"
    return None


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
                            sizes[e["dataset"]], cfg["experiments"])
        for check in experiment_checks():
            yield from check(exp)




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
        for kind in RULE_NAMES:
            rule = f"{kind}_{name}".replace("-", "_")
            owner = rules.setdefault(rule, name)
            if owner != name:
                yield (f"experiments.{name}", f"its rule {rule} would also be a rule of "
                       f"experiment {owner!r} (rules are named <rule>_<experiment>, '-' as '_')")
                break


# ---------------------------------------------------------------- datasets




def _speech_problems(datasets: dict) -> Iterator[Problem]:
    for key, message in catalog.speech_problems(speech_features(datasets)):
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
    criteria = {m["criterion"] for m in e.cfg["at_init"]["methods"].values()}
    at_init = e.cfg["at_init"]
    if "snip" in criteria and at_init["score_batch_size"] > left:
        yield e.key("at_init.score_batch_size"), (
            f"{at_init['score_batch_size']} is more than the {left} training examples SNIP "
            f"can draw from ({where})")
    classes = DATASETS[e.cfg["dataset"]].num_classes
    if "grasp" in criteria and at_init["samples_per_class"] * classes > left:
        yield e.key("at_init.samples_per_class"), (
            f"{at_init['samples_per_class']} examples of each of {classes} classes are more "
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






























GENERAL_CHECKS = (_model_takes_the_inputs, _hold_out, _batches_fit, _schedules,
                  _training_options)
"""The checks of one experiment that no method family owns."""


def experiment_checks() -> tuple[Callable[[Experiment], Iterator[Problem]], ...]:
    """Every check of one experiment: the general ones, then each family's (lth.plan.registry),
    in the order of its keys in the config."""
    return GENERAL_CHECKS + tuple(c for f in registry.families() for c in f.checks)
