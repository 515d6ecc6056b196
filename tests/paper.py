"""Hyperparameters the papers give, recorded as data with citations: what the workflow presets
are checked against (tests/test_workflow.py, tests/test_config_checks.py, tests/test_spec.py).
Test data, not library code: no verb imports it.

Every `PaperSetting` names the paper and the place in it (section, table, figure, appendix)
its numbers come from. Its `notes` say which numbers were checked against a source and which
were not: "verified" marks a number read in the paper's text, in an excerpt of it, or in the
authors' released code or configs (named); "UNVERIFIED" marks a number recalled from the paper
that no source at hand could confirm. Iteration counts that a paper states in epochs are
converted here and the arithmetic is written next to the number. Section, table and figure
locators are recalled from the papers and were not all checked; "verified" covers the numbers.

Field meanings:
- optimizer "sgd" | "adam"; momentum/nesterov/weight_decay as in torch.optim (0 where unused).
- iterations, milestones, warmup, rewind_iteration count optimizer steps; at each
  milestone the learning rate is multiplied by gamma; warmup is linear from 0 to lr.
- scope "layerwise": each layer loses its own kind's rate per pruning round; "global": all
  weights of the kinds with a nonzero rate are ranked together and that one rate is removed.
- rate_conv / rate_fc / rate_output / rate_shortcut: fraction of the remaining weights removed
  per iterative pruning round for conv, hidden fully-connected, output and ResNet 1x1
  projection-shortcut layers; 0.0 means that kind is not pruned, or the paper prunes once to
  target densities (pruning at initialization, one-shot).
- init: the weight initialiser (lth.plan.catalog.INITS: glorot, kaiming_fan_in,
  kaiming_fan_out); biases start at 0 and BatchNorm at weight 1, bias 0.
- rewind_iteration: weights are reset to their values at this iteration after each round
  (0 = the initialization, Frankle & Carbin 2019).
- augment: CIFAR pad-4 random crop + horizontal flip.

Frankle & Carbin 2019 hold out a validation set of 5,000 training examples (Sec. 2 / Fig. 2;
verified: excerpt "we randomly sampled a 5,000-example validation set"); the data split is
not a training hyperparameter and lives in the workflow config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from lth.core.errors import LthError
from lth.plan.catalog import INITS, schedule_problems
from lth.plan.spec import Schedule, Training

SCOPES = ("layerwise", "global")


@dataclass(frozen=True)
class PaperSetting(Training):
    """One training-and-pruning setting as a paper gives it (see module docstring): the
    training fields of lth.plan.spec.Training, then the pruning and citation fields."""

    model: str
    dataset: str
    scope: str
    rate_conv: float
    rate_fc: float
    rate_output: float
    rate_shortcut: float
    rewind_iteration: int
    source: str
    notes: str

    def __post_init__(self) -> None:
        problems = _schedule_problems(self) + _pruning_problems(self)
        if problems:
            raise LthError(f"paper setting {self.model}/{self.dataset}: {problems[0]}")


def _schedule_problems(s: PaperSetting) -> list[str]:
    """What lth.plan.catalog.schedule_problems finds wrong with the training schedule (the
    config check's rules), read as a Schedule evaluated once at the end: papers give no
    evaluation cadence."""
    training = {f.name: getattr(s, f.name) for f in fields(Training)}
    schedule = Schedule(**training, eval_every=s.iterations, eval_batch_size=s.batch_size)
    return [f"{key}: {message}" for key, message in schedule_problems(schedule)]


def _pruning_problems(s: PaperSetting) -> list[str]:
    """What is wrong with the initialiser, the IMP scope, rates and rewind iteration."""
    rates = (s.rate_conv, s.rate_fc, s.rate_output, s.rate_shortcut)
    checks = [
        (s.init in INITS, f"init {s.init!r} is not one of {INITS}"),
        (s.scope in SCOPES, f"scope {s.scope!r} is not one of {SCOPES}"),
        (0 <= s.rewind_iteration < s.iterations,
         f"rewind_iteration {s.rewind_iteration} must be in [0, {s.iterations})"),
        (all(0 <= r < 1 for r in rates), "rates must be in [0, 1)"),
        (s.scope == "layerwise" or len({r for r in rates if r > 0}) <= 1,
         f"global scope prunes every pruned kind at one rate, got {rates}"),
    ]
    return [message for ok, message in checks if not ok]


# --- Frankle & Carbin 2019, "The Lottery Ticket Hypothesis" (ICLR 2019, arXiv:1803.03635) ---

_LTH = "Frankle & Carbin 2019 (ICLR), Fig. 2 table and Appendices"
_LTH_SMALL_NOTES = (
    "verified (Frankle & Carbin 2019, Fig. 2 and its caption 'Initializations are Gaussian "
    "Glorot', App. G.1 (LeNet), H.1/H.2/H.4 (Conv-2/4/6); LeNet rates also in "
    "google-research/lottery-ticket-hypothesis mnist_fc/constants.py PRUNE_PERCENTS "
    "0.2/0.2/0.1): optimizer, lr, iterations, batch, per-layer rates, output layer pruned at "
    "half the rate, Gaussian Glorot initialization (the TF code's truncated normal is not "
    "reproduced). UNVERIFIED: no weight decay and no data augmentation (not stated; implied "
    "by the contrast with the VGG/ResNet settings of Sec. 4). The released TF code trains "
    "LeNet with SGD 0.1; the paper's Adam is kept here."
)

LENET_MNIST = PaperSetting(
    model="lenet300_100", dataset="mnist", optimizer="adam", lr=1.2e-3, momentum=0.0,
    nesterov=False, weight_decay=0.0, batch_size=60, iterations=50_000, milestones=(),
    gamma=1.0, warmup=0, scope="layerwise", rate_conv=0.0, rate_fc=0.2,
    rate_output=0.1, rate_shortcut=0.0, rewind_iteration=0, dropout=0.0, augment=False,
    init="glorot", source=f"{_LTH}; Lenet column", notes=_LTH_SMALL_NOTES,
)
CONV2_CIFAR10 = replace(
    LENET_MNIST, model="conv2", dataset="cifar10", lr=2e-4, iterations=20_000, rate_conv=0.1,
    source=f"{_LTH}; Conv-2 column",
)
CONV4_CIFAR10 = replace(CONV2_CIFAR10, model="conv4", lr=3e-4, iterations=25_000,
                        source=f"{_LTH}; Conv-4 column")
CONV6_CIFAR10 = replace(CONV2_CIFAR10, model="conv6", lr=3e-4, iterations=30_000,
                        rate_conv=0.15, source=f"{_LTH}; Conv-6 column")

_LTH_DROPOUT_NOTES = (
    "verified (Frankle & Carbin 2019, Sec. 3 'Dropout': rate 0.5; Fig. 6 caption: learning "
    "rates Conv-2 0.0003, Conv-4 and Conv-6 0.0002; App. H.5: 'three times as many "
    "iterations: 60,000 for Conv-2, 75,000 for Conv-4, 90,000 for Conv-6', and at 0.0002 "
    "some Conv-2 trials 'failed to learn productively'). Other numbers as the no-dropout "
    "setting: "
)


def _with_dropout(setting: PaperSetting, lr: float, iterations: int) -> PaperSetting:
    """The Conv-N setting trained with dropout 0.5 at the paper's dropout learning rate and
    length (Frankle & Carbin 2019, Sec. 3, Fig. 6, App. H.5)."""
    return replace(setting, dropout=0.5, lr=lr, iterations=iterations,
                   source=f"{setting.source}; Sec. 3 dropout, Fig. 6, App. H.5",
                   notes=_LTH_DROPOUT_NOTES + setting.notes)


VGG19_CIFAR10 = PaperSetting(
    model="vgg19", dataset="cifar10", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False,
    weight_decay=1e-4, batch_size=64,
    iterations=112_480,  # 160 epochs x 703 (= floor(45,000 / 64)) iterations
    milestones=(56_240, 84_360),  # epochs 80 and 120 x 703
    gamma=0.1, warmup=10_000, scope="global", rate_conv=0.2, rate_fc=0.0,
    rate_output=0.0, rate_shortcut=0.0, rewind_iteration=0, dropout=0.0, augment=True,
    init="glorot", source=f"{_LTH}; VGG-19 column, Sec. 4 (warmup)",
    notes=(
        "verified (Frankle & Carbin 2019, App. I.2/I.3/I.5 and Sec. 4): 160 epochs at batch "
        "64, SGD lr 0.1 momentum 0.9, 10x decay at epochs 80/120, weight decay 1e-4, warmup "
        "10,000 iterations to lr 0.1, global pruning of 20% of conv weights with the output "
        "layer unpruned, flips and 4-pixel pad+crop augmentation, Gaussian Glorot "
        "initialization. Iterations derived: 703 = floor(45,000 / 64) per epoch, so 112,480 "
        "in all and milestones at epochs 80 and 120."
    ),
)
RESNET18_CIFAR10 = replace(
    VGG19_CIFAR10, model="resnet20", lr=0.03, batch_size=128, iterations=30_000,
    milestones=(20_000, 25_000), warmup=20_000,
    source=f"{_LTH}; Resnet-18 column, Sec. 4 (warmup), App. I.3/I.5",
    notes=(
        "verified (Frankle & Carbin 2019, App. I.3, I.5 and Sec. 4): 30K iterations at batch "
        "128, 10x decays at 20K and 25K, SGD momentum 0.9, weight decay 1e-4, flips and "
        "4-pixel pad+crop, Gaussian Glorot initialization, global pruning of 20% of conv "
        "weights leaving the 2,560 projection-shortcut weights and the 640 output weights "
        "unpruned; the warmup setting is lr 0.03 with 20,000 iterations of warmup ('even "
        "with warmup, we could not find hyperparameters for which iterative pruning could "
        "find winning tickets at the original learning rate 0.1'). Model 'resnet20' because "
        "the paper's 'Resnet-18' is the 20-layer CIFAR ResNet ('271,000 parameters'; 16, "
        "3x[16,16], 3x[32,32], 3x[64,64], avg-pool, 10)."
    ),
)


def _low_lr(setting: PaperSetting) -> PaperSetting:
    """The same network at lr 0.01 without warmup (Frankle & Carbin 2019, Sec. 4)."""
    return replace(
        setting, lr=0.01, warmup=0, source=f"{setting.source}; lr 0.01 variant",
        notes="verified: lr 0.01 is the rate at which the paper finds winning tickets for "
        "VGG-19 and ResNet without warmup (Ma et al. 2021, Sec. 1). UNVERIFIED: that the "
        "milestones and other numbers stay those of the lr 0.1 setting: " + setting.notes,
    )


# --- Frankle, Dziugaite, Roy & Carbin: "Stabilizing the LTH" (arXiv:1903.01611) and
# --- "Linear Mode Connectivity and the LTH" (ICML 2020, arXiv:1912.05671) ---

_STABILIZING = "Frankle, Dziugaite, Roy & Carbin 2019 (arXiv:1903.01611), IMP with rewinding"
_STABILIZING_NOTES = (
    "verified: rewinding to an iteration 0.1% to 7% through training instead of 0 (abstract). "
    "UNVERIFIED: the rewind iteration 500 (0.4% of VGG-19's and 1.7% of ResNet's training) "
    "and training as Frankle & Carbin 2019 at lr 0.1 without warmup. Base setting: "
)


def _late_rewind(setting: PaperSetting, source: str) -> PaperSetting:
    """IMP with rewinding to iteration 500 instead of 0, at lr 0.1 without warmup."""
    return replace(setting, lr=0.1, warmup=0, rewind_iteration=500, source=source,
                   notes=_STABILIZING_NOTES + setting.notes)


_LMC = "Frankle, Dziugaite, Roy & Carbin 2020 (ICML), Table 1"
_LMC_NOTES = (
    "verified (the authors' OpenLTH default_hparams for {openlth}; the same CIFAR-10 regime "
    "in Frankle et al. 2020, 'The Early Phase of Neural Network Training'): SGD lr 0.1 "
    "momentum 0.9, weight decay 1e-4, batch 128, 160 epochs with 10x drops at epochs 80 and "
    "120, flips and 4-pixel crops, global pruning of 20% per round{ignore}, Kaiming-normal "
    "fan-in initialization (open_lth's kaiming_normal initializer; its BatchNorm weights "
    "~ U(0, 1) are not reproduced: here 1). Iterations "
    "derived: 391 = ceil(50,000 / 128) per epoch (OpenLTH's DataLoader), so 62,560 in all "
    "and drops at 31,280 / 46,920 (UNVERIFIED: the paper's Table 1 rounds these to 63K and "
    "about 32K/48K). UNVERIFIED: rewind iteration {rewind} (the paper finds IMP subnetworks "
    "matching once rewound to about {percent} of training)."
)

RESNET20_CIFAR10_LMC = PaperSetting(
    model="resnet20", dataset="cifar10", optimizer="sgd", lr=0.1, momentum=0.9,
    nesterov=False, weight_decay=1e-4, batch_size=128,
    iterations=62_560,  # 160 epochs x 391 (= ceil(50,000 / 128)) iterations
    milestones=(31_280, 46_920),  # epochs 80 and 120 x 391
    gamma=0.1, warmup=0, scope="global", rate_conv=0.2, rate_fc=0.0,
    rate_output=0.2, rate_shortcut=0.2, rewind_iteration=2_000, dropout=0.0, augment=True,
    init="kaiming_fan_in", source=f"{_LMC}; ResNet-20 (standard)",
    notes=_LMC_NOTES.format(openlth="cifar_resnet_20",
                            ignore=" including the output layer and the shortcut convs",
                            rewind="2,000", percent="3%"),
)
VGG16_CIFAR10_LMC = replace(
    RESNET20_CIFAR10_LMC, model="vgg16", rate_output=0.0, rate_shortcut=0.0,
    rewind_iteration=1_000,
    source=f"{_LMC}; VGG-16 (standard)",
    notes=_LMC_NOTES.format(openlth="cifar_vgg_16", ignore=", output layer fc.weight ignored",
                            rewind="1,000", percent="1.5%"),
)


# --- Han, Pool, Tran & Dally 2015, "Learning both Weights and Connections" (NeurIPS 2015) ---

HAN_LENET_MNIST = replace(
    LENET_MNIST, lr=1.2e-4,
    source="Han et al. 2015 (NeurIPS), Sec. 3 (train, prune, retrain; iterative pruning), "
    "on the Frankle & Carbin 2019 LeNet schedule",
    notes=(
        "verified: the method trains, prunes low-magnitude connections and retrains the "
        "survivors from their trained values (no reset), iteratively (abstract, Sec. 3). "
        "UNVERIFIED: retraining at 1/10 of the original learning rate (the paper's exact "
        "retraining learning rate could not be checked) and the section numbers 3.3 "
        "(keep surviving weights) / 3.4 (iterative pruning). Han et al. prune each layer by a "
        "threshold (quality parameter x the layer's weight std), not by a fixed rate; the "
        "rates and schedule here are Frankle & Carbin 2019's so that fine-tuning and IMP "
        "differ only in reset vs. keep (this project's choice). rewind_iteration is unused."
    ),
)


# --- Liu, Sun, Zhou, Huang & Darrell 2019, "Rethinking the Value of Network Pruning" (ICLR) ---

_RETHINKING_CODE = "Eric-mingjie/rethinking-network-pruning"

LIU_VGG19_CIFAR10 = PaperSetting(
    model="vgg19", dataset="cifar10", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False,
    weight_decay=1e-4, batch_size=64,
    iterations=125_120,  # 160 epochs x 782 (= ceil(50,000 / 64)) iterations
    milestones=(62_560, 93_840),  # epochs 80 and 120 x 782
    gamma=0.1, warmup=0, scope="global", rate_conv=0.0, rate_fc=0.0,
    rate_output=0.0, rate_shortcut=0.0, rewind_iteration=0, dropout=0.0, augment=True,
    init="kaiming_fan_in",
    source="Liu et al. 2019 (ICLR), Sec. 4 (Scratch-E / Scratch-B) and Sec. 5 (unstructured "
    "weight-level pruning of Han et al. 2015)",
    notes=(
        f"verified ({_RETHINKING_CODE} cifar/weight-level cifar_B.py, cifar_prune.py): "
        "dense training 160 epochs, batch 64, SGD lr 0.1 momentum 0.9, weight decay 1e-4, "
        "10x decay at epochs 80/120, crop+flip; one-shot pruning of a fraction of conv "
        "weights only, by one global magnitude threshold (densities come from the preset, "
        "so rates are 0). Scratch-E trains the pruned network from a fresh random "
        "initialization for this same schedule. Initialization: models/cifar/vgg.py draws conv "
        "weights N(0, 2 / (k*k*in_channels)) (Kaiming fan-in), BatchNorm 1/0; its linear "
        "N(0, 0.01) is not reproduced (here Kaiming fan-in). Scratch-B stretches epochs (and "
        "decay points at 50%/75%) by FLOPs(dense)/FLOPs(pruned); the released CIFAR code "
        "(l1-norm-pruning/main_B.py:109) applies that factor with no cap, and weight-level "
        "cifar_B.py computes both FLOPs before loading the pruned model, so there the factor "
        "is 1. UNVERIFIED: the paper's rule that when the pruned model saves more than 2x "
        "FLOPs Scratch-B only doubles the epochs (recalled, for ImageNet; not found in the "
        "sources at hand)."
    ),
)

LI_VGG16_PRUNED_A_FINETUNE = PaperSetting(
    model="vgg16", dataset="cifar10", optimizer="sgd", lr=1e-3, momentum=0.9, nesterov=False,
    weight_decay=1e-4, batch_size=64,
    iterations=31_280,  # 40 epochs x 782 (= ceil(50,000 / 64)) iterations
    milestones=(), gamma=1.0, warmup=0, scope="layerwise", rate_conv=0.5,
    rate_fc=0.0, rate_output=0.0, rate_shortcut=0.0, rewind_iteration=0, dropout=0.0,
    augment=True, init="kaiming_fan_out",
    source="Li et al. 2017 (ICLR), Sec. 4.1 / Table 2 (VGG-16-pruned-A), as re-implemented "
    "by Liu et al. 2019",
    notes=(
        f"verified ({_RETHINKING_CODE} cifar/l1-norm-pruning vggprune.py, main_finetune.py): "
        "VGG-16-pruned-A keeps the filters of largest L1 norm, removing 50% of the filters "
        "of conv layer 1 and of conv layers 8-13 (64->32 and 512->256) and none elsewhere; "
        "fine-tuning 40 epochs at constant lr 0.001, momentum 0.9, weight decay 1e-4, "
        "batch 64, crop+flip. rate_conv is that structured filter fraction, not an "
        "unstructured rate. Training from scratch in the same code (main_B.py): 160 epochs "
        "scaled by the FLOPs ratio, lr 0.1, 10x decays at 50%/75%. Initialization "
        "(models/vgg.py): conv N(0, 2 / (k*k*out_channels)) (Kaiming fan-out); its BatchNorm "
        "weight 0.5 and linear N(0, 0.01) are not reproduced (here 1 and Kaiming fan-in). "
        "UNVERIFIED: that Li et al.'s own text gives the same fine-tuning numbers."
    ),
)


# --- Pruning at initialization: Lee et al. 2019 (SNIP), Wang et al. 2020 (GraSP),
# --- Tanaka et al. 2020 (SynFlow) ---

SNIP_LENET_MNIST = PaperSetting(
    model="lenet300_100", dataset="mnist", optimizer="sgd", lr=0.1, momentum=0.9,
    nesterov=False, weight_decay=5e-4, batch_size=100, iterations=100_000,
    milestones=(25_000, 50_000, 75_000), gamma=0.1, warmup=0,
    scope="global", rate_conv=0.0, rate_fc=0.0, rate_output=0.0, rate_shortcut=0.0,
    rewind_iteration=0, dropout=0.0, augment=False, init="glorot",
    source="Lee et al. 2019 (ICLR), experiments: training setup paragraph",
    notes=(
        "verified (paper excerpt): SGD momentum 0.9, batch 100 for MNIST (128 for CIFAR), "
        "weight decay 5e-4, lr 0.1 decayed by 0.1 every 25k iterations on MNIST (30k on "
        "CIFAR), 10% of the training data held out for validation; one-shot global pruning "
        "at initialization to a target sparsity. DIFFERS: the SNIP code initialises with "
        "tf.variance_scaling_initializer() (fan-in, scale 1, truncated normal), which is none "
        "of lth's initialisers; Glorot here. UNVERIFIED: the total number of iterations "
        "was not found; 100,000 (four decay intervals) is this project's choice (the released "
        "VGG-D recipe trains 150K iterations with x0.2 decays every 30K)."
    ),
)

GRASP_VGG19_CIFAR10 = PaperSetting(
    model="vgg19", dataset="cifar10", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=False,
    weight_decay=5e-4, batch_size=128,
    iterations=62_560,  # 160 epochs x 391 (= ceil(50,000 / 128)) iterations
    milestones=(31_280, 46_920),  # epochs 80 and 120 (1/2 and 3/4 of 160) x 391
    gamma=0.1, warmup=0, scope="global", rate_conv=0.0, rate_fc=0.0,
    rate_output=0.0, rate_shortcut=0.0, rewind_iteration=0, dropout=0.0, augment=True,
    init="kaiming_fan_out",
    source="Wang et al. 2020 (ICLR), experiments: training setup paragraph",
    notes=(
        "verified (alecwangcq/GraSP configs/cifar10/vgg19/GraSP_98.json: batch 128, 160 "
        "epochs, lr 0.1, weight decay 5e-4, 10 samples per class; main_prune_non_imagenet.py "
        "170-172: 10x decays at int(0.5 * 160) and int(0.75 * 160); utils/data_utils.py: "
        "crop+flip; SGD momentum 0.9; one-shot global pruning of all conv and linear weights "
        "at initialization; models/base/init_utils.py weights_init: conv Kaiming-normal "
        "fan-out, BatchNorm 1/0). Its linear N(0, 0.01) is not reproduced (here Kaiming "
        "fan-in). UNVERIFIED: that the VGG-19 model applies weights_init (its model file is "
        "not in the stored copy)."
    ),
)

SYNFLOW_VGG16_CIFAR10 = PaperSetting(
    model="vgg16", dataset="cifar10", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
    weight_decay=1e-4, batch_size=128,
    iterations=62_560,  # 160 epochs x 391 (= ceil(50,000 / 128)) iterations
    milestones=(23_460, 46_920),  # epochs 60 and 120 x 391
    gamma=0.1, warmup=0, scope="global", rate_conv=0.0, rate_fc=0.0,
    rate_output=0.0, rate_shortcut=0.0, rewind_iteration=0, dropout=0.0, augment=True,
    init="kaiming_fan_in",
    source="Tanaka et al. 2020 (NeurIPS), Sec. 7 and Appendix (hyperparameter table)",
    notes=(
        "verified (ganguli-lab/Synaptic-Flow: Results/data args.json of the CIFAR-10 VGG-11 "
        "and CIFAR-100 VGG-16 runs; Utils/load.py): optimizer 'momentum' = SGD momentum 0.9 "
        "with Nesterov, lr 0.1, drops x0.1 at epochs 60/120, 160 epochs, batch 128, weight "
        "decay 1e-4, crop+flip, global mask scope, biases and batch-norm not pruned; "
        "Models/lottery_vgg.py: kaiming_normal_ (fan-in) on conv and linear weights, "
        "BatchNorm 1/0; "
        "compression ratios 10^0..10^3 in steps of 10^0.25 (see TANAKA2020_LOG10_COMPRESSIONS)."
        " UNVERIFIED: the CIFAR-10 VGG-16 args themselves (assumed equal to those two runs)."
    ),
)
SYNFLOW_RESNET18_CIFAR10 = replace(
    SYNFLOW_VGG16_CIFAR10, model="resnet18", lr=0.01, gamma=0.2, weight_decay=5e-4,
    init="kaiming_fan_out",
    source="Tanaka et al. 2020 (NeurIPS), Fig. 6 and Appendix (hyperparameter table), ResNet "
    "column",
    notes=(
        "verified (ganguli-lab/Synaptic-Flow Results/figures.ipynb: the CIFAR-10 row of Fig. 6 "
        "is 'cifar10_tiny_resnet18'; Models/tinyimagenet_resnet.py: 3x3 stem without max "
        "pool, 1x1 conv + BatchNorm projection shortcuts, 11M weights, conv kaiming_normal_ "
        "fan-out, BatchNorm 1/0; its linear layer keeps PyTorch's default uniform init, not "
        "reproduced: here Kaiming fan-in). UNVERIFIED: lr 0.01, drop factor 0.2 and weight "
        "decay 5e-4 for the residual networks (recalled from the appendix table; no stored "
        "run config for a ResNet). Other numbers as the VGG-16 setting: "
        + SYNFLOW_VGG16_CIFAR10.notes
    ),
)


# --- No paper: the speech-commands MLP is this project's own setting ---

SPEECH_MLP = replace(
    LENET_MNIST, model="speech_mlp", dataset="speech_commands", lr=1e-3, batch_size=128,
    iterations=20_000, source="this project",
    notes=(
        "No paper gives this setting; Frankle & Carbin 2019 have no speech experiment. Chosen "
        "by analogy with their LeNet-300-100: Adam, layer-wise pruning of 20% of hidden fc "
        "weights and 10% of the output layer per round, no weight decay. Nothing here is "
        "verified against a source."
    ),
)


SETTINGS: dict[str, PaperSetting] = {
    "frankle2019_lenet300_100_mnist": LENET_MNIST,
    "frankle2019_conv2_cifar10": CONV2_CIFAR10,
    "frankle2019_conv4_cifar10": CONV4_CIFAR10,
    "frankle2019_conv6_cifar10": CONV6_CIFAR10,
    "frankle2019_conv2_cifar10_dropout": _with_dropout(CONV2_CIFAR10, 3e-4, 60_000),
    "frankle2019_conv4_cifar10_dropout": _with_dropout(CONV4_CIFAR10, 2e-4, 75_000),
    "frankle2019_conv6_cifar10_dropout": _with_dropout(CONV6_CIFAR10, 2e-4, 90_000),
    "frankle2019_vgg19_cifar10_warmup": VGG19_CIFAR10,
    "frankle2019_vgg19_cifar10_lr0.01": _low_lr(VGG19_CIFAR10),
    "frankle2019_resnet18_cifar10_warmup": RESNET18_CIFAR10,
    "frankle2019_resnet18_cifar10_lr0.01": _low_lr(RESNET18_CIFAR10),
    "frankle2019b_vgg19_cifar10_rewind": _late_rewind(VGG19_CIFAR10, f"{_STABILIZING}; VGG-19"),
    "frankle2019b_resnet18_cifar10_rewind": _late_rewind(
        RESNET18_CIFAR10, f"{_STABILIZING}; Resnet-18"),
    "frankle2020_resnet20_cifar10": RESNET20_CIFAR10_LMC,
    "frankle2020_vgg16_cifar10": VGG16_CIFAR10_LMC,
    "han2015_lenet300_100_mnist_finetune": HAN_LENET_MNIST,
    "liu2019_vgg19_cifar10": LIU_VGG19_CIFAR10,
    "li2017_vgg16_pruned_a_cifar10_finetune": LI_VGG16_PRUNED_A_FINETUNE,
    "lee2019_snip_lenet300_100_mnist": SNIP_LENET_MNIST,
    "wang2020_grasp_vgg19_cifar10": GRASP_VGG19_CIFAR10,
    "tanaka2020_synflow_vgg16_cifar10": SYNFLOW_VGG16_CIFAR10,
    "tanaka2020_synflow_resnet18_cifar10": SYNFLOW_RESNET18_CIFAR10,
    "project_speech_mlp_speech_commands": SPEECH_MLP,
}


# --- How the pruning-at-initialization criteria were scored ---

TANAKA2020_LOG10_COMPRESSIONS = tuple(k / 4 for k in range(13))
"""log10 of the compression ratios swept by Tanaka et al. 2020 (Sec. 7, Fig. 6): 10^0 to 10^3
in steps of 10^0.25 (verified: US patent text of the method, 'α = [0, 0.25, ..., 2.75, 3]')."""


@dataclass(frozen=True)
class ScoringSetting:
    """How a paper computed a pruning-at-initialization score."""

    criterion: str  # key of lth.methods.criteria.CRITERIA
    examples_per_class: int  # scoring data = examples_per_class x num_classes (0: data-free)
    class_balanced: bool  # exactly examples_per_class per class, or that many drawn at random
    iterations: int  # pruning rounds; > 1 means an exponential density schedule
    temperature: float  # logits are divided by it before the loss (1.0: none)
    batchnorm: str  # "batch": BatchNorm on the scoring batch's statistics; "running": inference
    source: str
    notes: str


_SYNFLOW_CODE = "verified (ganguli-lab/Synaptic-Flow Experiments/singleshot.py, args.json"
SCORING_SETTINGS: dict[str, ScoringSetting] = {
    "tanaka2020_synflow": ScoringSetting(
        criterion="synflow", examples_per_class=0, class_balanced=False, iterations=100,
        temperature=1.0, batchnorm="running",
        source="Tanaka et al. 2020 (NeurIPS), Sec. 6 and Algorithm 1",
        notes=f"{_SYNFLOW_CODE} prune_epoch_list; patent text 'n=100 pruning iterations', "
        "exponential schedule): data-free, one all-ones input, |weights| during scoring.",
    ),
    "tanaka2020_snip": ScoringSetting(
        criterion="snip", examples_per_class=10, class_balanced=False, iterations=1,
        temperature=1.0, batchnorm="running",
        source="Tanaka et al. 2020 (NeurIPS), Sec. 7 baselines",
        notes=f"{_SYNFLOW_CODE} prune_dataset_ratio 10, prune_batch_size 256; prune.py "
        "prune_loop model.eval(), unconditional before commit e329c2e of 2020-08-07): "
        "10 x num_classes random training examples in batches of 256, one shot, BatchNorm on "
        "running statistics.",
    ),
    "tanaka2020_grasp": ScoringSetting(
        criterion="grasp", examples_per_class=10, class_balanced=False, iterations=1,
        temperature=200.0, batchnorm="running",
        source="Tanaka et al. 2020 (NeurIPS), Sec. 7 baselines",
        notes=f"{_SYNFLOW_CODE} and Pruners/pruners.py temp = 200): same data and BatchNorm "
        "mode as SNIP. Until commit e329c2e (2020-08-07) the code's GraSP score had the "
        "opposite sign to Wang et al.'s (it kept the highest -theta*Hg); the stored run "
        "configs are dated 2020-06-30. UNVERIFIED: which sign produced the paper's Fig. 6 "
        "GraSP curve; lth follows Wang et al.",
    ),
    "wang2020_grasp": ScoringSetting(
        criterion="grasp", examples_per_class=10, class_balanced=True, iterations=1,
        temperature=200.0, batchnorm="batch",
        source="Wang et al. 2020 (ICLR), Algorithm 1 and Sec. 5",
        notes="verified (alecwangcq/GraSP pruner/GraSP.py T=200, the network in train mode; "
        "configs samples_per_class 10): exactly 10 examples per class, gradients over two "
        "halves of them, BatchNorm on batch statistics. Not reproduced: the two halves, the "
        "augmented sampling and the xavier re-initialization of linear layers on the scoring "
        "copy.",
    ),
    "lee2019_snip": ScoringSetting(
        criterion="snip", examples_per_class=10, class_balanced=False, iterations=1,
        temperature=1.0, batchnorm="running",
        source="Lee et al. 2019 (ICLR), Sec. 4 / Algorithm 1",
        notes="verified (the released SNIP code, snip/prune.py and main.py: "
        "get_next_batch('train', batch_size), model.is_train False): one random mini-batch of "
        "training data of the training batch size (100 on MNIST = 10 per class on average), "
        "the network in inference mode. DIFFERS: the SNIP code ranks biases with the weights; "
        "lth ranks weights only.",
    ),
}


NOT_CONFIG = frozenset({"model", "dataset", "source", "notes"})
"""PaperSetting fields that are citations or experiment keys, not schedule/IMP settings."""


def paper_schedule(name: str) -> dict:
    """The setting `name` of SETTINGS as the flat hyperparameter dict the workflow config uses
    (the field names are the config's keys: `train` block and `imp` block)."""
    if name not in SETTINGS:
        raise LthError(f"paper setting {name!r} is unknown; expected one of: "
                       + ", ".join(sorted(SETTINGS)))
    values = asdict(SETTINGS[name])
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()
            if k not in NOT_CONFIG}
