"""A config whose values disagree with each other, the model, the dataset or the files they
name is rejected before the first job, in one line naming the key (lth.plan.config_checks).

Each case is a variant of the tiny test config (tests/configs/tiny.yaml) whose source folder
holds a small Fashion-MNIST in the real gz IDX format. Every case is checked by calling
`first_problem`; a case of each kind is also given to the real `snakemake -n`, which must
stop with exactly that line and start no job. The torch-free facts of lth.plan.catalog are held
against the torch models and the workflow's own rules.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import gzip
import importlib
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import workflow_runner
from generated import numbered_images, write_idx_gz, write_learnable_idx_folder
from lth.core import masks, models
from lth.core.errors import LthError
from lth.plan import catalog, checks, config_checks, registry, spec
from lth.plan.config_checks import RULE_NAMES, first_problem
from lth.plan.spec import Engine, Member, TrainJob, to_json
from lth.verbs.cli import main
from networks import TINY_SCHEDULE
from paper import SETTINGS, paper_schedule

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA_BLOCKS = yaml.safe_load(SCHEMA.read_text())["definitions"]


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> Path:
    """The tiny config's Fashion-MNIST: 600 training and 200 test images, gz IDX files."""
    return write_learnable_idx_folder(tmp_path_factory.mktemp("src") / "tiny_fmnist", 600, 200)


def tiny_config(source: Path) -> dict:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["datasets"]["source"]["fashion_mnist"] = str(source)
    return cfg


def at(path: str, **values) -> Callable[[dict], None]:
    """An edit of a config: set `values` in the block at the dotted `path`."""

    def edit(cfg: dict) -> None:
        node = cfg
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.update(values)

    return edit


def copied(name: str, new: str) -> Callable[[dict], None]:
    """An edit adding experiment `new`, a copy of experiment `name`."""
    return lambda cfg: cfg["experiments"].update({new: copy.deepcopy(cfg["experiments"][name])})


def only_speech(**values) -> Callable[[dict], None]:
    """An edit making the config one speech_commands experiment (downloaded)."""

    def edit(cfg: dict) -> None:
        cfg["datasets"]["download"] = True
        cfg["experiments"] = {"speech": {"dataset": "speech_commands", "model": "speech_mlp",
                                         "val_size": None, **values}}

    return edit


def source_variant(name: str, write) -> Callable[[dict], None]:
    """An edit pointing the source at a copy of it (made once, beside it) changed by
    write(folder)."""

    def edit(cfg: dict) -> None:
        source = Path(cfg["datasets"]["source"]["fashion_mnist"])
        variant = source.parent / name
        if not variant.exists():
            shutil.copytree(source, variant)
            write(variant)
        cfg["datasets"]["source"]["fashion_mnist"] = str(variant)

    return edit


def labels_not_gzip(folder: Path) -> None:
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")


def labels_with_an_images_header(folder: Path) -> None:
    """A gzip file whose IDX magic is that of images (2051), where labels (2049) belong."""
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">II", 2051, 600))


def images_of_32x32(folder: Path) -> None:
    write_idx_gz(folder, "t10k", numbered_images(5, (32, 32), seed=0), np.arange(5))


def more_labels_than_images(folder: Path) -> None:
    """6 test labels, 5 test images."""
    write_idx_gz(folder, "t10k", numbered_images(6, (28, 28), seed=0), np.arange(6))
    five = folder / "five"
    five.mkdir()
    write_idx_gz(five, "t10k", numbered_images(5, (28, 28), seed=0), np.arange(5))
    (five / "t10k-images-idx3-ubyte.gz").replace(folder / "t10k-images-idx3-ubyte.gz")
    shutil.rmtree(five)


@dataclass(frozen=True)
class Case:
    """A config edit and the one problem it must give: its key, and its message (where
    {source} is the tiny source folder and {cwd} the working directory)."""

    id: str
    edits: tuple
    key: str
    message: str
    dry_run: bool = False  # also given to the real `snakemake -n`

    def config(self, source: Path) -> dict:
        cfg = tiny_config(source)
        for edit in self.edits:
            edit(cfg)
        return cfg

    def line(self, source: Path, cwd: Path) -> str:
        message = self.message.format(source=source, cwd=cwd)
        return f"lth: config error at {self.key}: {message}"


T, V, M = "experiments.tiny", "experiments.tiny_vgg", "experiments.tiny_mlp"
TRAIN_SET = "600 in {source}/train-images-idx3-ubyte.gz"
CASES = [
    Case("reintroduce-control-without-its-method",
         (at(f"{T}.reintroduce", methods=["double", "regrow_random_scored"]),),
         f"{T}.reintroduce.methods.1", "regrow_random_scored re-introduces as many weights as "
         "scored does, which reintroduce.methods does not run"),
    # a key a family has renamed: one line naming the new key, before the schema's error
    Case("renamed-key", (at(T, oneshot={"densities": [0.1]}),), f"{T}.oneshot",
         "renamed: write at_init instead", dry_run=True),
    # the three of the issue: each used to fail only inside a job, or not at all
    Case("rewind-beyond-training", (at(f"{T}.imp", rewind_iteration=5000),),
         f"{T}.imp.rewind_iteration", "5000 is not before train.iterations (30): a rewound "
         "network would train no iteration", dry_run=True),
    Case("rewind-at-the-last-iteration", (at(f"{T}.imp", rewind_iteration=30),),
         f"{T}.imp.rewind_iteration", "30 is not before train.iterations (30): a rewound "
         "network would train no iteration"),
    Case("filters-on-an-mlp", (at(f"{T}.filters", structures={"half": {"conv1": 0.5}}),),
         f"{T}.filters.structures",
         "lenet300_100 has no filters to prune: filter pruning (Li et al. 2017) is for vgg16 "
         "and vgg19", dry_run=True),
    Case("eb-channel-on-an-mlp", (at(f"{T}.earlybird", variant="channel"),),
         f"{T}.earlybird.variant", "channel removes BatchNorm channels physically, which lth "
         "does for VGGs only, not lenet300_100"),
    Case("eb-channel-fraction-not-a-whole-percent",
         (at(f"{V}.earlybird", variant="channel", densities=[0.5, 0.255]),),
         f"{V}.earlybird.densities.1", "0.255: the channel variant's fractions of channels kept "
         "are whole percents (they name the levels channels<percent>)"),
    Case("eb-slimming-negative", (at(f"{V}.earlybird", variant="channel", slimming=-1e-4),),
         f"{V}.earlybird.slimming", "-0.0001 is less than the minimum of 0"),
    Case("eb-hamming-vacuous", (at(f"{T}.earlybird", distance="hamming", densities=[0.05]),),
         f"{T}.earlybird.densities.0", "0.05: the Early-Bird threshold is vacuous at this "
         "density (a Hamming distance of two masks keeping 0.05 is at most 0.1 <= epsilon 0.1); "
         "use distance changed_fraction"),
    Case("source-does-not-exist", (at("datasets.source", fashion_mnist="nowhere"),),
         "datasets.source.fashion_mnist", "folder nowhere does not exist (relative to {cwd})",
         dry_run=True),
    # sources and data files
    Case("source-lacks-its-files", (at("datasets.source", fashion_mnist="."),),
         "datasets.source.fashion_mnist",
         f"folder . lacks {', '.join(catalog.IDX_GZ_FILES)} (relative to {{cwd}})"),
    Case("source-file-not-gzip", (source_variant("labels_not_gzip", labels_not_gzip),),
         "datasets.source.fashion_mnist",
         "{source.parent}/labels_not_gzip/train-labels-idx1-ubyte.gz: not a readable gzip file "
         "(Not a gzipped file (b'no'))", dry_run=True),
    Case("source-file-not-idx", (source_variant("not_idx", labels_with_an_images_header),),
         "datasets.source.fashion_mnist", "{source.parent}/not_idx/train-labels-idx1-ubyte.gz: "
         "not an IDX file of unsigned bytes (1-dimensional)"),
    Case("source-images-of-another-size", (source_variant("32x32", images_of_32x32),),
         "datasets.source.fashion_mnist", "{source.parent}/32x32/t10k-images-idx3-ubyte.gz: "
         "images of 32x32, fashion_mnist has 28x28"),
    Case("source-labels-for-other-images",
         (source_variant("6_labels", more_labels_than_images),),
         "datasets.source.fashion_mnist",
         "{source.parent}/6_labels/t10k-labels-idx1-ubyte.gz: 6 labels for 5 images"),
    Case("source-not-a-dataset", (at("datasets.source", fmnist="x"),), "datasets.source",
         "'fmnist' is not one of ['fashion_mnist', 'mnist', 'cifar10', 'speech_commands']"),
    Case("source-empty-name", (at("datasets.source", fashion_mnist=""),),
         "datasets.source.fashion_mnist", "'' should be non-empty"),
    Case("nothing-provides-mnist", (at(T, dataset="mnist"), at(V, dataset="mnist")),
         "datasets.download", "false, and nothing else provides mnist: set "
         "datasets.source.mnist to a folder of its raw files, or prepare data/mnist first"),
    # schedules: iterations against milestones, warmup, evaluation, the optimizer
    Case("milestone-at-the-end", (at(f"{T}.train", milestones=[10, 30]),),
         f"{T}.train.milestones.1", "30 is not before the end of training (30 iterations)",
         dry_run=True),
    Case("milestones-not-increasing", (at(f"{T}.train", milestones=[20, 10]),),
         f"{T}.train.milestones.1", "10 does not come after 20"),
    Case("milestones-at-gamma-1", (at(f"{T}.train", milestones=[10], gamma=1.0),),
         f"{T}.train.gamma", "1 makes the milestones [10] change nothing"),
    Case("gamma-above-1", (at(f"{T}.train", gamma=2.0),), f"{T}.train.gamma",
         "2.0 is greater than the maximum of 1"),
    Case("warmup-beyond-training", (at(f"{T}.train", warmup=31),), f"{T}.train.warmup",
         "31 is beyond the 30 training iterations", dry_run=True),
    Case("eval-every-beyond-training", (at(f"{T}.train", eval_every=31),),
         f"{T}.train.eval_every", "31 is beyond the 30 training iterations: only the start "
         "and the end would be evaluated"),
    Case("finetune-shorter-than-eval", (at(f"{T}.finetune", iterations=5),),
         f"{T}.finetune.iterations",
         "5 is fewer than train.eval_every (10): only its start and end would be evaluated",
         dry_run=True),
    Case("filter-finetune-shorter-than-eval", (at(f"{V}.filters", iterations=2),),
         f"{V}.filters.iterations",
         "2 is fewer than train.eval_every (3): only its start and end would be evaluated"),
    Case("nesterov-with-adam", (at(f"{T}.train", nesterov=True),), f"{T}.train.nesterov",
         "true needs optimizer sgd with momentum > 0, got adam with momentum 0.0"),
    Case("momentum-with-adam", (at(f"{T}.train", momentum=0.9),), f"{T}.train.momentum",
         "0.9 is an SGD setting; adam does not use it (set 0, or optimizer sgd)"),
    Case("momentum-1", (at(f"{T}.train", optimizer="sgd", momentum=1.0),),
         f"{T}.train.momentum", "1.0 is greater than or equal to the maximum of 1"),
    Case("dropout-with-batchnorm", (at(f"{V}.train", dropout=0.5),), f"{V}.train.dropout",
         "0.5 is not for vgg16: it uses BatchNorm (expected 0)", dry_run=True),
    Case("augment-fashion-mnist", (at(f"{T}.train", augment=True),), f"{T}.train.augment",
         "true applies CIFAR-10's crop and flip (He et al. 2016), not meant for fashion_mnist"),
    Case("stacked-dropout", (at(f"{T}.train", dropout=0.5), at(f"{T}.engine", stack="on")),
         f"{T}.engine.stack",
         "'on' cannot train dropout networks (train.dropout 0.5) stacked; use auto or off",
         dry_run=True),
    # batch sizes against the training split
    Case("hold-out-takes-everything", (at(T, val_size=600),), f"{T}.val_size",
         f"600 holds out every training example ({TRAIN_SET})", dry_run=True),
    Case("batch-larger-than-the-split", (at(f"{T}.train", batch_size=501),),
         f"{T}.train.batch_size", f"501 is more than the 500 training examples ({TRAIN_SET}, "
         f"less val_size 100): an epoch would have no batch", dry_run=True),
    Case("snip-batch-larger-than-the-split", (at(f"{T}.at_init", score_batch_size=501),),
         f"{T}.at_init.score_batch_size", f"501 is more than the 500 training examples SNIP "
         f"can draw from ({TRAIN_SET}, less val_size 100)"),
    Case("grasp-sample-larger-than-the-split",
         (at(f"{T}.at_init", samples_per_class=51, methods={"grasp": {"criterion": "grasp"}}),),
         f"{T}.at_init.samples_per_class", f"51 examples of each of 10 classes are more than "
         f"the 500 training examples ({TRAIN_SET}, less val_size 100)"),
    Case("no-hold-out-for-images", (at(T, val_size=None),), f"{T}.val_size",
         "null is only for speech_commands; fashion_mnist needs a number of training "
         "examples to hold out for validation"),
    Case("hold-out-for-speech", (only_speech(val_size=100),), "experiments.speech.val_size",
         "100 is not for speech_commands: it has an official validation list (expected null)"),
    # the model against the dataset
    Case("conv-net-on-speech-features", (only_speech(model="conv2"),),
         "experiments.speech.model", "conv2 needs images (channels, height, width) of at "
         "least 2x2, got inputs of shape (40, 101) (speech_commands)", dry_run=True),
    # IMP rounds and rates against the model's layers
    Case("rounds-empty-a-layer", (at(f"{T}.imp", rounds=10, rate_output=0.5),),
         f"{T}.imp.rounds", "10 rounds prune every weight of output.weight by round 10 (rate "
         "0.5, layerwise); at most 9 keep one", dry_run=True),
    Case("global-rounds-empty-the-network", (at(f"{V}.imp", rounds=30, rate_conv=0.9),),
         f"{V}.imp.rounds", "30 rounds prune every weight of the conv layers by round 8 (rate "
         "0.9, global); at most 7 keep one"),
    Case("rounds-prune-nothing", (at(f"{T}.imp", rate_fc=0.0, rate_output=0.0),),
         f"{T}.imp.rounds", "2 rounds prune nothing: lenet300_100's layers are pruned by "
         "rate_fc and rate_output, which are 0"),
    Case("global-at-two-rates", (at(f"{T}.imp", scope="global"),), f"{T}.imp.scope",
         "global pools the pruned layer kinds at one rate; lenet300_100 gets rate_fc 0.5, "
         "rate_output 0.25"),
    Case("controls-without-rounds",
         (at(f"{T}.imp", rounds=0, oneshot=False), at(f"{T}.finetune", enabled=False)),
         f"{T}.controls.reinit", "true, but imp.rounds is 0: there is no IMP round to act on"),
    Case("finetune-without-rounds", (at(f"{T}.imp", rounds=0, oneshot=False),),
         f"{T}.finetune.enabled", "true, but imp.rounds is 0: there is no IMP round to act on"),
    # one-shot densities against the model, and the names they make
    Case("density-1", (at(f"{T}.at_init", densities=[1.0]),), f"{T}.at_init.densities.0",
         "1.0 is greater than or equal to the maximum of 1"),
    Case("density-empties-a-layer",
         (at(f"{T}.at_init", densities=[0.0004]),
          at(f"{T}.at_init.methods.snip", scope="layerwise")),
         f"{T}.at_init.densities.0", "0.0004 keeps no weight of output.weight (1000 weights) "
         "under method snip's layerwise scope", dry_run=True),
    Case("density-level-name-unreadable", (at(f"{T}.at_init", densities=[0.00005]),),
         f"{T}.at_init.densities.0", "5e-05 would name its level density5e-05, which lth "
         "cannot read back (densities from 0.0001 name levels in plain digits)"),
    Case("densities-one-level-name", (at(f"{T}.at_init", densities=[0.1, 0.1000001]),),
         f"{T}.at_init.densities.1", "0.1000001 and 0.1 both name the level density0.1"),
    Case("densities-without-methods", (at(f"{T}.at_init", methods={}),),
         f"{T}.at_init.densities", "set, but no at_init.methods prunes to them"),
    Case("methods-without-densities", (at(f"{T}.at_init", densities=[]),),
         f"{T}.at_init.methods", "set, but at_init.densities is empty: no level to prune to"),
    Case("method-named-like-the-workflows", (at(f"{T}.at_init.methods.imp",
                                                criterion="magnitude"),),
         f"{T}.at_init.methods.imp", "'imp' names a folder of the workflow itself ("
         + ", ".join(registry.method_labels()) + ")"),
    Case("method-named-like-a-search-folder", (at(f"{T}.at_init.methods.earlybird",
                                                  criterion="magnitude"),),
         f"{T}.at_init.methods.earlybird", "'earlybird' names a folder of the workflow itself ("
         + ", ".join(registry.method_labels()) + ")"),
    Case("method-named-like-a-reinit-draw", (at(f"{T}.at_init.methods.reinit_draw2",
                                                criterion="magnitude"),),
         f"{T}.at_init.methods.reinit_draw2", "'reinit_draw2' names a folder of the workflow "
         "itself (" + ", ".join(registry.method_labels()) + ")"),
    Case("scratch-on-finetune-masks-without-finetuning", (at(f"{T}.finetune", enabled=False),),
         f"{T}.controls.scratch_masks", "holds finetune, but finetune.enabled is false: there "
         "are no fine-tuned masks for Scratch-E/B to train"),
    Case("scratch-b-cap-below-one", (at(f"{T}.controls", scratch_b_cap=0.5),),
         f"{T}.controls.scratch_b_cap", "0.5 is less than the minimum of 1"),
    Case("global-at-two-rates-with-shortcuts", (at(V, model="resnet20"),
                                                at(f"{V}.imp", rate_shortcut=0.25)),
         f"{V}.imp.scope", "global pools the pruned layer kinds at one rate; resnet20 gets "
         "rate_conv 0.5, rate_shortcut 0.25"),
    Case("unknown-initialiser", (at(f"{T}.train", init="orthogonal"),),
         f"{T}.train.init", "'orthogonal' is not one of ['glorot', 'kaiming_fan_in', "
         "'kaiming_fan_out']"),
    Case("method-name-not-a-folder-name", (at(f"{T}.at_init.methods.a/b",
                                              criterion="magnitude"),),
         f"{T}.at_init.methods", "'a/b' does not match '^[a-z][a-z0-9_]*$'"),
    # filter structures against the VGG's convolutions
    Case("filters-of-a-conv-vgg16-lacks", (at(f"{V}.filters.structures.half_ends",
                                              conv14=0.5),),
         f"{V}.filters.structures.half_ends.conv14", "vgg16 has conv1 ... conv13",
         dry_run=True),
    Case("filters-all-removed", (at(f"{V}.filters.structures.half_ends", conv1=0.995),),
         f"{V}.filters.structures.half_ends.conv1", "0.995 removes all 64 filters of conv1"),
    Case("filters-none-removed", (at(f"{V}.filters.structures.none", conv1=0.001),),
         f"{V}.filters.structures.none",
         "removes no filter: filter_l1 would fine-tune the dense network"),
    Case("structure-named-like-a-round", (at(f"{V}.filters.structures.round1", conv1=0.5),),
         f"{V}.filters.structures.round1",
         "names a level lth reads as an IMP round or a density; choose another name"),
    # seeds and experiment names
    Case("seed-twice", (at(T, seeds=[0, 0]),), f"{T}.seeds", "[0, 0] has non-unique elements",
         dry_run=True),
    Case("seed-negative", (at(T, seeds=[-1]),), f"{T}.seeds.0",
         "-1 is less than the minimum of 0", dry_run=True),
    Case("names-one-rule", (copied("tiny", "a-b"), copied("tiny", "a_b")), "experiments.a_b",
         "its rule dense_a_b would also be a rule of experiment 'a-b' (rules are named "
         "<rule>_<experiment>, '-' as '_')", dry_run=True),
    Case("names-one-rule-across-rules", (copied("tiny", "oneshot_tiny"),),
         "experiments.oneshot_tiny", "its rule imp_oneshot_tiny would also be a rule of "
         "experiment 'tiny' (rules are named <rule>_<experiment>, '-' as '_')"),
    Case("names-differ-in-case", (copied("tiny", "Tiny"),), "experiments.Tiny",
         "differs from experiment 'tiny' only in case: their results/ folders are one folder "
         "where case does not count (macOS, Windows)"),
    Case("name-like-an-option", (copied("tiny", "-x"),), "experiments",
         "'-x' does not match '^[A-Za-z0-9][A-Za-z0-9_-]*$'"),
    # speech features and figures
    Case("speech-window-longer-than-fft", (at("datasets", speech_win_length=600),),
         "datasets.speech_win_length", "expected <= n_fft (480), got 600"),
    Case("more-mfccs-than-mels", (at("datasets", speech_n_mfcc=50),),
         "datasets.speech_n_mfcc", "expected an integer in 1..n_mels (40) for kind 'mfcc', "
         "got 50"),
    Case("fft-longer-than-a-clip", (at("datasets", speech_n_fft=20000),),
         "datasets.speech_n_fft", "expected at most one clip (16000 samples), got 20000"),
    Case("unknown-palette", (at("figures", palette="nope"),), "figures.palette",
         "'nope' is not a seaborn palette", dry_run=True),
    Case("unknown-colormap", (at("figures", cmap="nope"),), "figures.cmap",
         "'nope' is not a matplotlib colormap"),
    Case("percent-above-100", (at("figures", curve_percents=[150]),),
         "figures.curve_percents.0", "150 is greater than the maximum of 100"),
    # Early-Bird's cadence, mining, re-introduction
    Case("eb-checks-only-theta-0", (at(f"{T}.earlybird", check_every=30),),
         f"{T}.earlybird.check_every", "30 is not below train.iterations (30): the search "
         "would check only the initial weights"),
    Case("mining-densities-without-a-miner", (at(f"{T}.supermask.edge_popup", enabled=False),
                                              at(f"{T}.supermask.gem_miner", enabled=False)),
         f"{T}.supermask.densities", "set, but neither edge_popup nor gem_miner is enabled"),
    Case("miner-without-densities", (at(f"{T}.supermask", densities=[]),),
         f"{T}.supermask.edge_popup.enabled",
         "true, but supermask.densities is empty: no level to mine"),
    Case("gem-miner-never-freezes", (at(f"{T}.supermask.gem_miner", freeze_every=30),),
         f"{T}.supermask.gem_miner.freeze_every", "30 is not below the 30 mining iterations: "
         "GEM-MINER would never freeze its way to the target density"),
    Case("mining-batch-larger-than-the-split", (at(f"{T}.supermask", batch_size=501),),
         f"{T}.supermask.batch_size",
         "501 is more than the 500 training examples: an epoch would have no batch"),
    Case("reintroduce-without-rounds",
         (at(f"{T}.imp", rounds=0, oneshot=False), at(f"{T}.finetune", enabled=False),
          at(f"{T}.controls", reinit=False, random_pruning=False, scratch_e=False,
             scratch_b=False)),
         f"{T}.reintroduce.methods", "set, but imp.rounds is 0: there is no IMP round to "
         "re-introduce weights into"),
    # elastic transfer against its source experiment
    Case("elastic-source-unknown", (at(f"{M}.elastic", source_experiment="nope"),),
         f"{M}.elastic.source_experiment", "'nope' is not another experiment of this config "
         "(tiny, tiny_mlp, tiny_mlp_src, tiny_vgg)"),
    Case("elastic-source-itself", (at(f"{M}.elastic", source_experiment="tiny_mlp"),),
         f"{M}.elastic.source_experiment", "'tiny_mlp' is not another experiment of this "
         "config (tiny, tiny_mlp, tiny_mlp_src, tiny_vgg)"),
    Case("elastic-seeds-differ", (at(M, seeds=[0, 1]),), f"{M}.elastic.source_experiment",
         "tiny_mlp_src's seeds [0] differs from this experiment's [0, 1]"),
    Case("elastic-rewinds-differ", (at(f"{M}.imp", rewind_iteration=5),),
         f"{M}.elastic.source_experiment", "tiny_mlp_src rewinds to iteration 0, this "
         "experiment to 5: the transferred weights are the source's and train on from the "
         "target's rewind point"),
    Case("elastic-round-beyond-the-source", (at(f"{M}.elastic", rounds=[1, 2]),),
         f"{M}.elastic.rounds.1", "2 is beyond tiny_mlp_src's 1 IMP rounds"),
    Case("elastic-model-without-depth-family", (at(M, model="lenet300_100"),),
         f"{M}.elastic.source_experiment", "lenet300_100 has no depth family: elastic "
         "transfer needs resnet14, resnet20, resnet32, resnet44, resnet56 or mlp<W>x<D> "
         "networks"),
    Case("elastic-depth-families-differ", (at(M, model="mlp16x3"),),
         f"{M}.elastic.source_experiment", "mlp32x2 and mlp16x3 are not of one depth family"),
    Case("elastic-one-block-cannot-grow", (at(f"{M}_src", model="mlp32x1"),),
         f"{M}.elastic.source_experiment", "mlp32x1 has 1 block per stage, which is never "
         "replicated, so it cannot grow into mlp32x3"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_config_gives_the_key_and_what_is_wrong(case, tiny_source, tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)  # the relative paths of a config are the working directory's
    cfg = case.config(tiny_source)
    untouched = copy.deepcopy(cfg)
    key, message = first_problem(cfg, SCHEMA)
    assert f"lth: config error at {key}: {message}" == case.line(tiny_source, tmp_path)
    assert cfg == untouched


def message_pattern(node: ast.expr) -> str:
    """A regular expression matching every value of a string expression of the source: its
    literal text exactly, anything in place of a formatted or computed part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(message_pattern(part) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return message_pattern(node.left) + message_pattern(node.right)
    if isinstance(node, ast.IfExp):
        return f"(?:{message_pattern(node.body)}|{message_pattern(node.orelse)})"
    return ".*"


def is_text(node: ast.expr) -> bool:
    """Whether an expression is written text (a string literal or f-string, or a sum or
    choice of them), not a value computed elsewhere."""
    if isinstance(node, ast.BinOp):
        return is_text(node.left) or is_text(node.right)
    if isinstance(node, ast.IfExp):
        return is_text(node.body) and is_text(node.orelse)
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant)
                                               and isinstance(node.value, str))


def written_messages(node: ast.expr) -> list[ast.expr]:
    """The text expressions a message expression can give: both branches of a choice
    between a computed value and a text (`shape if shape else f"..."`) count apart."""
    if isinstance(node, ast.IfExp) and not is_text(node):
        return written_messages(node.body) + written_messages(node.orelse)
    return [node] if is_text(node) else []


def returns_str(node: ast.AST) -> bool:
    """A function that returns a message (not a level name: <kind>_level)."""
    return isinstance(node, ast.FunctionDef) and node.returns is not None and (
        "str" in ast.unparse(node.returns)) and not node.name.endswith("_level")


def check_modules() -> list[Path]:
    """The source of every module the config check runs: lth.plan.config_checks, the shared
    check base and each family's declaration (lth.plan.registry)."""
    return [Path(config_checks.__file__), Path(checks.__file__),
            *(Path(importlib.import_module(m).__file__) for m in registry.declaration_modules())]


def check_messages() -> dict[str, str]:
    """File:line -> pattern of every message the config check writes: the text of each
    `yield key, message` and of each str returned by a function that returns one (as
    `_idx_shape` and the level checks' `unreadable` do)."""
    messages = {}
    for path in check_modules():
        tree = ast.parse(path.read_text())
        found = [n.value.elts[-1] for n in ast.walk(tree)
                 if isinstance(n, ast.Yield) and isinstance(n.value, ast.Tuple)]
        found += [r.value for f in ast.walk(tree) if returns_str(f) for r in ast.walk(f)
                  if isinstance(r, ast.Return) and r.value is not None]
        messages |= {f"{path.name}:{text.lineno}": message_pattern(text) for node in found
                     for text in written_messages(node)}
    return messages


def test_every_message_of_the_config_checks_has_a_case():
    """Each message that the config check can write is the message of some case above, so
    every check is shown to fire (and to name its key) at least once."""
    messages = check_messages()
    assert len(messages) >= 50  # the walk found the checks' messages
    written = [case.message.format(source=Path("/src"), cwd=Path("/cwd")) for case in CASES]
    uncovered = {line: pattern for line, pattern in messages.items()
                 if not any(re.fullmatch(pattern, text, re.S) for text in written)}
    assert uncovered == {}, "config check messages without a case (file:line: pattern)"


def test_the_tiny_config_and_a_customised_look_pass(tiny_source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tiny_source)
    assert first_problem(cfg, SCHEMA) is None
    at("figures", palette="deep", cmap="magma")(cfg)
    assert first_problem(cfg, SCHEMA) is None


def test_without_download_or_source_the_debian_package_provides_fashion_mnist(
        tiny_source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tiny_source)
    cfg["datasets"]["source"] = {}
    monkeypatch.setattr(catalog, "DEBIAN_FASHION_MNIST", tiny_source)
    assert first_problem(cfg, SCHEMA) is None
    monkeypatch.setattr(catalog, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    assert first_problem(cfg, SCHEMA) == (
        "datasets.download", "false, and nothing else provides fashion_mnist: set "
        "datasets.source.fashion_mnist to a folder of its raw files, or prepare "
        "data/fashion_mnist first, or `apt-get install dataset-fashion-mnist`")


def test_a_prepared_dataset_counts_its_stored_training_examples(tiny_source, tmp_path,
                                                                monkeypatch):
    """Once prepared, the split sizes come from data/<dataset>/tensors.safetensors."""
    from lth.core.data import prepare

    monkeypatch.chdir(tmp_path)
    prepare("fashion_mnist", "data/fashion_mnist", source=tiny_source, download=False,
            speech=None)
    cfg = tiny_config(tiny_source)
    del cfg["datasets"]["source"]["fashion_mnist"]
    at("experiments.tiny", val_size=600)(cfg)
    assert first_problem(cfg, SCHEMA) == (
        "experiments.tiny.val_size",
        "600 holds out every training example (600 in data/fashion_mnist/tensors.safetensors)")


def test_the_official_release_counts_when_the_download_provides_the_data(tiny_source,
                                                                         tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tiny_source)
    cfg["datasets"] = {"download": True}
    at("experiments.tiny", val_size=60000)(cfg)
    assert first_problem(cfg, SCHEMA) == (
        "experiments.tiny.val_size",
        "60000 holds out every training example (60000 in the official fashion_mnist)")


RATE_KINDS = [f.name for f in dataclasses.fields(spec.Rates)]
"""The layer kinds IMP rates (imp.rate_<kind>)."""


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_paper_setting_is_a_consistent_experiment(name, tmp_path, monkeypatch):
    """A setting of tests/paper.py, as the train and imp blocks of an experiment, passes."""
    monkeypatch.chdir(tmp_path)
    values, setting = paper_schedule(name), SETTINGS[name]
    train = {k: v for k, v in values.items() if k in SCHEMA_BLOCKS["schedule"]["properties"]}
    imp = {k: v for k, v in values.items() if k not in train}
    imp["rounds"] = 1 if any(imp[f"rate_{kind}"] for kind in RATE_KINDS) else 0
    speech = setting.dataset == "speech_commands"
    cfg = {"experiments": {"paper": {
        "dataset": setting.dataset, "model": setting.model, "val_size": None if speech else 5000,
        "train": dict(train, eval_every=500), "imp": imp,
        "controls": {"reinit": False, "random_pruning": False}}}}
    assert first_problem(cfg, SCHEMA) is None


def test_the_checks_import_no_torch(tiny_source, tmp_path):
    code = ("import sys, yaml; from lth.plan.config_checks import first_problem; "
            f"cfg = yaml.safe_load(open({str(TINY)!r})); "
            f"cfg['datasets']['source']['fashion_mnist'] = {str(tiny_source)!r}; "
            f"assert first_problem(cfg, {str(SCHEMA)!r}) is None; "
            "print(sorted(m for m in ('torch', 'torchvision', 'lth.core.data') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, check=True)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- the real Snakemake


def dry_run(workdir: Path, cfg: dict) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return workflow_runner.run(workdir, "-n", "all", config=workdir / "config.yaml",
                               check=False)


DRY_RUNS = [case for case in CASES if case.dry_run]


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory, tiny_source) -> dict[str, tuple]:
    """(result, working directory) of `snakemake -n` for each dry-run case and for the tiny
    config as it is ("tiny"); side by side, a Snakemake start-up being mostly waiting."""
    configs = {case.id: case.config(tiny_source) for case in DRY_RUNS}
    configs["tiny"] = tiny_config(tiny_source)
    workdirs = {name: tmp_path_factory.mktemp(name) for name in configs}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda name: dry_run(workdirs[name], configs[name]), configs)
        return {name: (result, workdirs[name]) for name, result in zip(configs, results,
                                                                        strict=True)}


@pytest.mark.parametrize("case", DRY_RUNS, ids=[c.id for c in DRY_RUNS])
def test_snakemake_stops_before_any_job_with_one_line(case, dry_runs, tiny_source):
    result, workdir = dry_runs[case.id]
    assert result.returncode == 1
    assert workflow_runner.said(result) == [case.line(tiny_source, workdir)]
    assert sorted(p.name for p in workdir.iterdir()) == ["config.yaml"]  # nothing started


def kind_of(rule: str) -> str | None:
    """The family rule of a rule named <rule>_<a tiny experiment>, else None."""
    for suffix in ("_tiny_vgg", "_tiny_mlp_src", "_tiny_mlp", "_tiny"):
        if rule.endswith(suffix):
            return rule.removesuffix(suffix)
    return None


def test_rule_kinds_and_method_names_are_the_workflows(dry_runs):
    """RULE_NAMES and the registry's method names are what the workflow makes of the tiny
    config, which has every kind of job (its experiments tiny, tiny_vgg and the elastic pair,
    its one-shot methods snip, grasp and synflow, two reinit draws)."""
    result, _ = dry_runs["tiny"]
    assert result.returncode == 0, result.stderr[-3000:]
    rules = {line.split()[1].rstrip(":") for line in result.stdout.splitlines()
             if line.startswith("rule ")}
    assert {kind_of(rule) for rule in rules} - {None} == set(RULE_NAMES)
    outputs = [path for line in result.stdout.splitlines() if line.startswith("    output: ")
               for path in line.removeprefix("    output: ").split(", ")]
    methods = {Path(p).parts[3] for p in outputs if p.startswith("results/") and "/seed" in p
               and len(Path(p).parts) > 4}
    draws = {m for m in methods if registry.method_of(m) and registry.method_of(m)[1].pattern}
    assert draws == {"reinit_draw1", "elastic_interleave", "elastic_interleave_randmask",
                     "elastic_tail", "elastic_tail_randmask"}
    fixed = {m.name for f in registry.families() for m in f.methods if not m.pattern}
    folders = {folder for f in registry.families() for folder in f.folders}
    assert folders == {"earlybird"}
    assert methods - draws - {"snip", "grasp", "synflow"} == fixed | folders


def test_a_rejected_run_changes_no_file_of_an_earlier_run(tmp_path, tiny_source):
    """A run that its config stops leaves the data and results of an earlier run as they
    were, though its config changes the dense run's params (a good config reruns it)."""
    good = tiny_config(tiny_source)
    good["experiments"] = {"tiny": good["experiments"]["tiny"]}
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    workflow_runner.run(tmp_path, "results/tiny/seed0/imp/round0/run.json",
                        config=tmp_path / "good.yaml")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")
              if p.is_file()}
    at("experiments.tiny.imp", rewind_iteration=50)(good)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(good))
    rejected = workflow_runner.run(tmp_path, "all", config=tmp_path / "bad.yaml", check=False)
    assert rejected.returncode == 1
    assert workflow_runner.said(rejected) == [
        "lth: config error at experiments.tiny.imp.rewind_iteration: 50 is not before "
        "train.iterations (30): a rewound network would train no iteration"]
    assert any(p.name == "final.safetensors" for p in before)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before} == before
    new = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()} - {
        p.relative_to(tmp_path) for p in before}
    assert all(p.parts[:2] == (".snakemake", "log") for p in new - {Path("bad.yaml")})


# ---------------------------------------------------------------- the verbs


@pytest.mark.parametrize(("changes", "expected"), [
    ({"milestones": (20, 40)}, "schedule.milestones.1: 40 is not before the end of training "
                               "(40 iterations)"),
    ({"warmup": 41}, "schedule.warmup: 41 is beyond the 40 training iterations"),
    ({"eval_every": 50}, "schedule.eval_every: 50 is beyond the 40 training iterations: only "
                         "the start and the end would be evaluated"),
    ({"nesterov": True}, "schedule.nesterov: true needs optimizer sgd with momentum > 0, got "
                         "adam with momentum 0.0"),
    ({"gamma": 1.5}, "schedule.gamma: expected in (0, 1], got 1.5"),
])
def test_the_train_verb_applies_the_same_schedule_rules(changes, expected, tmp_path,
                                                        monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    member = Member(seed=0, method="imp", family="lottery", level="round0",
                    init="init.safetensors", out_dir="out")
    job = TrainJob("t", "data", 100, "cpu", dataclasses.replace(TINY_SCHEDULE, **changes),
                   Engine(stack="auto", slots=4, capture=False, tf32=False), (member,))
    assert main(["train", "--job", to_json(job)]) == 2
    assert capsys.readouterr().err == f"lth: error: {expected}\n"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- lth.plan.catalog vs torch


IMAGE_AND_SPEECH_SHAPES = [((1, 28, 28), 10), ((3, 32, 32), 10), ((40, 101), 35),
                           ((3, 8, 8), 10)]


@pytest.mark.parametrize("model", (*catalog.MODEL_NAMES, "mlp300x2", "mlp64x5"))
@pytest.mark.parametrize(("shape", "classes"), IMAGE_AND_SPEECH_SHAPES,
                         ids=["mnist", "cifar10", "speech", "small-images"])
def test_prunable_layers_are_those_of_the_torch_model(model, shape, classes):
    """Names, kinds and shapes of every prunable weight, in order; or both refuse the inputs."""
    try:
        net = models.build_model(model, shape, classes, torch.Generator(), 0.0)
    except LthError:
        with pytest.raises(LthError):
            catalog.prunable_layers(model, shape, classes)
        return
    params, kinds = dict(net.named_parameters()), models.layer_kinds(net)
    expected = [(name, kinds[name], tuple(params[name].shape))
                for name in models.prunable_names(net)]
    layers = catalog.prunable_layers(model, shape, classes)
    assert [(layer.name, layer.kind, layer.shape) for layer in layers] == expected


def test_the_catalog_knows_the_models_and_datasets_the_schema_allows():
    experiment = SCHEMA_BLOCKS["experiment"]["properties"]
    assert experiment["model"] == {"type": "string", "description": experiment["model"][
        "description"]}  # any name: the config check knows the installed plug-ins too
    assert all(name in experiment["model"]["description"] for name in catalog.MODEL_NAMES)
    assert set(catalog.DATASETS) == set(experiment["dataset"]["enum"])
    init = SCHEMA_BLOCKS["schedule"]["properties"]["init"]
    assert set(catalog.INITS) == set(models.INITIALISERS) == set(init["enum"])
    with_batchnorm = {m for m in catalog.MODEL_NAMES if any(
        isinstance(x, torch.nn.BatchNorm2d)
        for x in models.build_model(m, (3, 32, 32), 10, torch.Generator(), 0.0).modules())}
    assert with_batchnorm == catalog.BATCHNORM_MODELS


def test_counting_imp_rounds_agrees_with_pruning_real_masks():
    """The check's count of a layerwise layer's weights round by round is lth.core.masks's: the
    output layer of the tiny config (1000 weights, rate 0.5) keeps 1 weight after round 9 and
    none after round 10."""
    scores = {"w": torch.rand(100, 10, generator=torch.Generator().manual_seed(0))}
    mask = {"w": torch.ones(100, 10, dtype=torch.bool)}
    kept = []
    for _ in range(10):
        mask = masks.prune_fraction_layerwise(scores, mask, {"w": 0.5})
        kept.append(int(mask["w"].sum()))
    assert kept[-2:] == [1, 0]
    assert catalog.round_half_up(0.5) == 1
