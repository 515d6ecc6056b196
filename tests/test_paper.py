"""tests/paper.py: paper hyperparameters are consistent, cite a source, and match the papers."""

import math
from dataclasses import replace

import pytest

from lth.core.data import DATASETS
from lth.core.io import LthError
from lth.plan import catalog
from lth.plan.catalog import MODEL_NAMES, prunable_layers
from paper import (
    SCORING_SETTINGS,
    SETTINGS,
    TANAKA2020_LOG10_COMPRESSIONS,
    paper_schedule,
)

SCHEDULE_KEYS = {"optimizer", "lr", "momentum", "nesterov", "weight_decay", "batch_size",
                 "iterations", "milestones", "gamma", "warmup", "rewind_iteration", "scope",
                 "rate_conv", "rate_fc", "rate_output", "rate_shortcut", "dropout", "augment",
                 "init", "batchnorm_init"}

ALL = pytest.mark.parametrize("name", sorted(SETTINGS))


@ALL
def test_setting_names_a_known_model_and_dataset(name):
    assert SETTINGS[name].model in MODEL_NAMES
    assert SETTINGS[name].dataset in DATASETS


@ALL
def test_milestones_increase_inside_training(name):
    s = SETTINGS[name]
    assert list(s.milestones) == sorted(set(s.milestones))
    assert all(0 < m < s.iterations for m in s.milestones)


@ALL
def test_rates_are_fractions_below_one(name):
    s = SETTINGS[name]
    rates = (s.rate_conv, s.rate_fc, s.rate_output, s.rate_shortcut, s.dropout)
    assert all(0.0 <= r < 1.0 for r in rates)


@ALL
def test_warmup_and_rewind_fit_inside_training(name):
    s = SETTINGS[name]
    assert 0 <= s.warmup <= s.iterations
    assert 0 <= s.rewind_iteration < s.iterations


@ALL
def test_global_scope_prunes_every_pruned_kind_at_one_rate(name):
    s = SETTINGS[name]
    if s.scope == "global":
        rates = (s.rate_conv, s.rate_fc, s.rate_output, s.rate_shortcut)
        assert len({r for r in rates if r > 0}) <= 1


@ALL
def test_setting_cites_a_source_and_says_what_was_verified(name):
    s = SETTINGS[name]
    assert s.source
    assert "verified" in s.notes.lower()


def test_lenet_matches_frankle_carbin_2019_fig2():
    s = SETTINGS["frankle2019_lenet300_100_mnist"]
    assert (s.optimizer, s.lr, s.batch_size, s.iterations) == ("adam", 1.2e-3, 60, 50_000)
    assert (s.scope, s.rate_fc, s.rate_output, s.rewind_iteration) == ("layerwise", 0.2, 0.1, 0)


@pytest.mark.parametrize(("model", "lr", "iterations", "rate_conv"), [
    ("conv2", 2e-4, 20_000, 0.10), ("conv4", 3e-4, 25_000, 0.10), ("conv6", 3e-4, 30_000, 0.15)])
def test_conv_nets_match_frankle_carbin_2019_fig2(model, lr, iterations, rate_conv):
    s = SETTINGS[f"frankle2019_{model}_cifar10"]
    assert (s.optimizer, s.lr, s.iterations, s.batch_size) == ("adam", lr, iterations, 60)
    assert (s.rate_conv, s.rate_fc, s.rate_output) == (rate_conv, 0.2, 0.1)


@pytest.mark.parametrize(("model", "lr", "iterations"), [
    ("conv2", 3e-4, 60_000), ("conv4", 2e-4, 75_000), ("conv6", 2e-4, 90_000)])
def test_dropout_variants_follow_fig6_and_appendix_h5(model, lr, iterations):
    """Frankle & Carbin 2019, Fig. 6 caption (Conv-2 0.0003, Conv-4/6 0.0002) and App. H.5
    (three times as many iterations); nothing else changes."""
    base = SETTINGS[f"frankle2019_{model}_cifar10"]
    drop = SETTINGS[f"frankle2019_{model}_cifar10_dropout"]
    assert (drop.dropout, drop.lr, drop.iterations) == (0.5, lr, iterations)
    assert drop.iterations == 3 * base.iterations
    assert replace(drop, dropout=0.0, lr=base.lr, iterations=base.iterations,
                   source=base.source, notes=base.notes) == base


def test_vgg19_schedule_is_160_epochs_of_703_iterations_with_drops_at_80_and_120():
    s = SETTINGS["frankle2019_vgg19_cifar10_warmup"]
    per_epoch = 45_000 // 64
    assert (s.iterations, s.milestones) == (160 * per_epoch, (80 * per_epoch, 120 * per_epoch))
    assert (s.lr, s.momentum, s.batch_size, s.warmup) == (0.1, 0.9, 64, 10_000)
    assert (s.scope, s.rate_conv, s.rate_fc, s.rate_output) == ("global", 0.2, 0.0, 0.0)


def test_lth_resnet_is_the_20_layer_cifar_resnet_with_lr_003_and_warmup_20k():
    """Frankle & Carbin 2019, Sec. 4 and App. I.5: no tickets at lr 0.1 even with warmup."""
    s = SETTINGS["frankle2019_resnet18_cifar10_warmup"]
    assert (s.model, s.iterations, s.batch_size) == ("resnet20", 30_000, 128)
    assert (s.milestones, s.gamma) == ((20_000, 25_000), 0.1)
    assert (s.lr, s.warmup) == (0.03, 20_000)
    assert (s.rate_conv, s.rate_shortcut, s.rate_output) == (0.2, 0.0, 0.0)  # App. I.3
    assert SETTINGS["frankle2019b_resnet18_cifar10_rewind"].lr == 0.1


def test_open_lth_resnet20_prunes_its_shortcuts_with_the_other_convs():
    s = SETTINGS["frankle2020_resnet20_cifar10"]
    assert s.rate_shortcut == s.rate_conv == 0.2


def test_synflow_resnet_is_the_11m_resnet18():
    """Tanaka et al. 2020, Fig. 6: 'cifar10_tiny_resnet18' (Synaptic-Flow figures.ipynb)."""
    s = SETTINGS["tanaka2020_synflow_resnet18_cifar10"]
    assert s.model == "resnet18" and s.init == "kaiming_fan_out"
    assert sum(layer.size for layer in prunable_layers(s.model, (3, 32, 32), 10)) == 11_164_352
    assert not any(s.model == "resnet20" for k, s in SETTINGS.items() if "synflow" in k)


INITS = {  # setting -> initialiser of its paper or the authors' code
    "frankle2019_lenet300_100_mnist": "glorot",  # LTH Fig. 2 caption
    "frankle2019_conv2_cifar10_dropout": "glorot",
    "frankle2019_vgg19_cifar10_warmup": "glorot",  # LTH App. I.2
    "frankle2019_resnet18_cifar10_warmup": "glorot",  # LTH App. I.3
    "frankle2019b_vgg19_cifar10_rewind": "glorot",
    "frankle2019b_resnet18_cifar10_rewind": "glorot",
    "frankle2020_resnet20_cifar10": "kaiming_fan_in",  # open_lth
    "frankle2020_vgg16_cifar10": "kaiming_fan_in",
    "liu2019_vgg19_cifar10": "kaiming_fan_in",  # weight-level models/cifar/vgg.py
    "li2017_vgg16_pruned_a_cifar10_finetune": "kaiming_fan_out",  # l1-norm-pruning vgg.py
    "wang2020_grasp_vgg19_cifar10": "kaiming_fan_out",  # GraSP init_utils.py
    "tanaka2020_synflow_vgg16_cifar10": "kaiming_fan_in",  # Synaptic-Flow lottery_vgg.py
    "tanaka2020_synflow_resnet18_cifar10": "kaiming_fan_out",  # tinyimagenet_resnet.py
}


@pytest.mark.parametrize(("name", "init"), sorted(INITS.items()))
def test_setting_records_its_papers_initialiser(name, init):
    assert SETTINGS[name].init == init
    assert init in catalog.INITS


def test_no_settled_fact_is_still_marked_unverified():
    for model in ("conv2", "conv4", "conv6"):
        notes = SETTINGS[f"frankle2019_{model}_cifar10_dropout"].notes
        assert notes.startswith("verified (") and "Fig. 6" in notes and "H.5" in notes
        assert "UNVERIFIED: dropout" not in notes
    for name in ("frankle2019_vgg19_cifar10_warmup", "frankle2019_resnet18_cifar10_warmup"):
        assert "UNVERIFIED" not in SETTINGS[name].notes
    grasp = SETTINGS["wang2020_grasp_vgg19_cifar10"].notes
    assert "GraSP_98.json" in grasp and grasp.count("UNVERIFIED") == 1
    assert "UNVERIFIED: that the VGG-19 model applies weights_init" in grasp
    assert SCORING_SETTINGS["lee2019_snip"].notes.startswith("verified (")
    assert "no cap" in SETTINGS["liu2019_vgg19_cifar10"].notes


def test_scoring_settings_record_the_batchnorm_mode_of_each_code():
    """SNIP's code and Tanaka et al.'s baselines score in inference mode; Wang et al.'s GraSP
    in train mode (FIDELITY Top-10 #10)."""
    modes = {k: s.batchnorm for k, s in SCORING_SETTINGS.items()}
    assert modes == {"tanaka2020_synflow": "running", "tanaka2020_snip": "running",
                     "tanaka2020_grasp": "running", "wang2020_grasp": "batch",
                     "lee2019_snip": "running"}


def test_low_lr_variants_drop_warmup_and_keep_the_schedule():
    for net in ("vgg19", "resnet18"):
        base = SETTINGS[f"frankle2019_{net}_cifar10_warmup"]
        low = SETTINGS[f"frankle2019_{net}_cifar10_lr0.01"]
        assert (low.lr, low.warmup) == (0.01, 0)
        assert low.milestones == base.milestones and low.iterations == base.iterations


def test_late_rewinding_lies_in_the_first_7_percent_of_training():
    for name in ("frankle2019b_vgg19_cifar10_rewind", "frankle2019b_resnet18_cifar10_rewind",
                 "frankle2020_resnet20_cifar10", "frankle2020_vgg16_cifar10"):
        s = SETTINGS[name]
        assert 0.001 <= s.rewind_iteration / s.iterations <= 0.07


def test_openlth_cifar_regime_is_160_epochs_of_391_iterations():
    per_epoch = math.ceil(50_000 / 128)
    for name in ("frankle2020_resnet20_cifar10", "frankle2020_vgg16_cifar10"):
        s = SETTINGS[name]
        assert s.iterations == 160 * per_epoch == 62_560
        assert s.milestones == (80 * per_epoch, 120 * per_epoch)
        assert (s.lr, s.momentum, s.weight_decay, s.batch_size) == (0.1, 0.9, 1e-4, 128)


def test_finetuning_baselines_keep_weights_at_a_lower_learning_rate():
    han = SETTINGS["han2015_lenet300_100_mnist_finetune"]
    lth = SETTINGS["frankle2019_lenet300_100_mnist"]
    assert math.isclose(han.lr, lth.lr / 10)
    li = SETTINGS["li2017_vgg16_pruned_a_cifar10_finetune"]
    assert (li.lr, li.milestones, li.iterations, li.rate_conv) == (1e-3, (), 40 * 782, 0.5)


def test_pruning_at_init_baselines_use_their_papers_optimizers():
    synflow = SETTINGS["tanaka2020_synflow_vgg16_cifar10"]
    assert (synflow.nesterov, synflow.weight_decay) == (True, 1e-4)
    assert synflow.milestones == (60 * 391, 120 * 391)
    snip = SETTINGS["lee2019_snip_lenet300_100_mnist"]
    assert (snip.lr, snip.momentum, snip.weight_decay, snip.batch_size) == (0.1, 0.9, 5e-4, 100)
    assert all(b - a == 25_000 for a, b in zip((0, *snip.milestones), snip.milestones,
                                                strict=False))
    assert SETTINGS["wang2020_grasp_vgg19_cifar10"].milestones == (80 * 391, 120 * 391)


def test_scoring_settings_record_grasp_temperature_and_synflow_iterations():
    assert SCORING_SETTINGS["wang2020_grasp"].temperature == 200.0
    assert SCORING_SETTINGS["wang2020_grasp"].examples_per_class == 10
    assert SCORING_SETTINGS["wang2020_grasp"].class_balanced
    assert SCORING_SETTINGS["tanaka2020_synflow"].iterations == 100
    assert SCORING_SETTINGS["tanaka2020_synflow"].examples_per_class == 0
    assert all(s.iterations == 1 for k, s in SCORING_SETTINGS.items() if "synflow" not in k)


def test_synflow_compressions_span_one_to_a_thousand_in_quarter_decades():
    ratios = [10 ** c for c in TANAKA2020_LOG10_COMPRESSIONS]
    assert len(ratios) == 13
    assert math.isclose(ratios[0], 1.0) and math.isclose(ratios[-1], 1000.0)
    assert all(math.isclose(b / a, 10 ** 0.25) for a, b in zip(ratios, ratios[1:], strict=False))


def test_speech_setting_says_it_comes_from_no_paper():
    s = SETTINGS["project_speech_mlp_speech_commands"]
    assert (s.model, s.dataset, s.source) == ("speech_mlp", "speech_commands", "this project")


def test_paper_schedule_flattens_a_setting_into_the_config_keys():
    schedule = paper_schedule("frankle2019_vgg19_cifar10_warmup")
    assert set(schedule) == SCHEDULE_KEYS
    assert schedule["milestones"] == [56_240, 84_360]
    assert (schedule["gamma"], schedule["warmup"], schedule["scope"]) == (0.1, 10_000, "global")
    assert (schedule["optimizer"], schedule["lr"], schedule["batch_size"]) == ("sgd", 0.1, 64)


@ALL
def test_paper_schedule_carries_every_value_of_the_setting(name):
    s, schedule = SETTINGS[name], paper_schedule(name)
    assert schedule["milestones"] == list(s.milestones)
    assert (schedule["gamma"], schedule["warmup"]) == (s.gamma, s.warmup)
    for key in SCHEDULE_KEYS - {"milestones", "gamma", "warmup"}:
        assert schedule[key] == getattr(s, key)


def test_paper_schedule_rejects_an_unknown_name_naming_it():
    with pytest.raises(LthError, match="'lenet_typo'.*frankle2019_lenet300_100_mnist"):
        paper_schedule("lenet_typo")


@pytest.mark.parametrize(("change", "complaint"), [
    ({"milestones": (60_000,)}, "milestones"),
    ({"milestones": (200, 100)}, "milestones"),
    ({"warmup": 50_001}, "warmup"),
    ({"rewind_iteration": 50_000}, "rewind_iteration"),
    ({"rate_fc": 1.0}, "rates"),
    ({"scope": "per-layer"}, "scope"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"nesterov": True}, "nesterov"),
    ({"scope": "global"}, "one rate"),
    ({"init": "he_normal"}, "init 'he_normal' is not one of"),
    ({"rate_conv": 0.2, "rate_shortcut": 0.3, "scope": "global", "rate_fc": 0.0,
      "rate_output": 0.0},
     "one rate"),
])
def test_inconsistent_setting_is_refused_with_one_clear_line(change, complaint):
    with pytest.raises(LthError, match=complaint):
        replace(SETTINGS["frankle2019_lenet300_100_mnist"], **change)
