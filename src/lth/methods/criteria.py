"""Pruning at initialization: one scoring function per criterion, one shared masking step.

A criterion is a plain function

    def my_scores(model: nn.Module, mask: Mask, data: ScoreData) -> Scores

that returns one score tensor per prunable weight name in ``data.names``, shaped like the
weight. HIGHER score = KEEP (the convention of lth.core.masks). Scores are computed with the
current mask applied to the weights (removed weights count as zero). A criterion never
changes the mask, the model's parameters, buffers or train/eval modes: it works on detached
copies through ``torch.func.functional_call``. Everything random comes from ``data.gen``.
Criteria that use training data (SNIP, GraSP) run BatchNorm on batch or on running statistics
as ``data.batchnorm_training`` says (the papers' codes differ), with dropout off so that scores
are deterministic; SynFlow uses running statistics. Scores may be float64 (SynFlow's are):
lth.core.masks ranks them in their own dtype.

To add a method:
1. write its scoring function here (a few lines; reuse ``_masked_weights``, ``_batch_losses``
   and lth.core.networks.scoring_mode when it needs gradients on training data);
2. register it in ``CRITERIA`` under the name the workflow config uses;
3. if it has a hyperparameter, add a field without default to ``ScoreData`` and the key, with
   the paper's value as default, to the workflow config schema.
``prune_at_init`` then gives it exact densities, both scopes and iterative schedules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lth.core.io import LthError
from lth.core.masks import Mask, Scores, prune_to_density
from lth.core.models import prunable_names
from lth.core.networks import scoring_mode, splits_of
from lth.core.seeding import generator
from lth.plan import plugins
from lth.plan.spec import PruneJob

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ScoreData:
    """Everything a criterion may look at besides the model and the mask.

    names: prunable weight names (lth.core.models.prunable_names), in registration order.
    batches: (x, y) training batches on the model's device; empty for data-free criteria.
    gen: the generator every random choice of a criterion draws from.
    num_classes, input_shape: of the task (input_shape excludes the batch dimension).
    grasp_temperature: T dividing the logits in GraSP's loss; Wang et al. 2020 use T = 200
        (their released code and configs, alecwangcq/GraSP, pruner/GraSP.py).
    batchnorm_training: SNIP and GraSP run BatchNorm on the scoring batch's statistics (True,
        as in training: Wang et al.'s GraSP code) or on the running statistics (False, the
        inference mode of Lee et al.'s SNIP code and of Tanaka et al. 2020's baselines; at
        initialisation BatchNorm is then the identity up to its eps).
    """

    names: list[str]
    batches: list[Batch]
    gen: torch.Generator
    num_classes: int
    input_shape: tuple[int, ...]
    grasp_temperature: float | None  # None where GraSP is not the criterion
    batchnorm_training: bool | None  # None where neither SNIP nor GraSP is the criterion


Criterion = Callable[[nn.Module, Mask, ScoreData], Scores]


def magnitude_scores(model: nn.Module, mask: Mask, data: ScoreData) -> Scores:
    """|w| of the masked weights."""
    params = dict(model.named_parameters())
    return {n: (params[n].detach() * mask[n]).abs() for n in data.names}


def random_scores(model: nn.Module, mask: Mask, data: ScoreData) -> Scores:
    """Independent uniform [0, 1) scores drawn from data.gen, layer by layer in name order."""
    params = dict(model.named_parameters())
    return {
        n: torch.rand(params[n].shape, generator=data.gen, device=data.gen.device).to(
            params[n].device
        )
        for n in data.names
    }


def snip_scores(model: nn.Module, mask: Mask, data: ScoreData) -> Scores:
    """SNIP connection sensitivity |dL/dw * w| / sum over all prunable weights.

    Lee et al. 2019 (ICLR), Sec. 4.1, Eq. 6: the derivative of the loss with respect to a
    connection gate c_j at c = 1 equals w_j dL/dw_j. L is the mean cross-entropy over every
    example of data.batches; the paper uses one training mini-batch (Sec. 5: the training
    batch size, 100 on MNIST and 128 on CIFAR-10). The normalisation does not change the
    ranking; it follows the paper.
    """
    _require_batches(data, "snip")
    weights = _masked_weights(model, mask, data.names)
    with scoring_mode(model, _batchnorm_training(data, "snip")):
        grads = _accumulate(
            torch.autograd.grad(loss, list(weights.values()))
            for loss in _batch_losses(model, weights, data.batches, temperature=1.0)
        )
    pairs = zip(weights.items(), grads, strict=True)
    sensitivity = {n: (g * w.detach()).abs() for (n, w), g in pairs}
    return _divide_if_positive(sensitivity, sum(s.sum() for s in sensitivity.values()))


def grasp_scores(model: nn.Module, mask: Mask, data: ScoreData) -> Scores:
    """GraSP with our sign convention: returns theta * Hg (higher = keep).

    Wang et al. 2020 (ICLR), Sec. 4 and Algorithm 1: with g the gradient of the loss on a
    class-balanced training sample (see balanced_batches) and H its Hessian, the importance
    is S(-theta) = -theta * Hg, and the weights with the HIGHEST S are removed (their removal
    reduces the gradient norm least, or increases it). Keeping the lowest S is keeping the
    highest -S = theta * Hg, which is what this returns. Hg is computed by double backprop,
    Hg = d/dtheta (g^T stop_grad(g)), with g and H restricted to the prunable weights (as the
    authors' code does), on the mean cross-entropy of softmax(logits / grasp_temperature).
    """
    _require_batches(data, "grasp")
    if data.grasp_temperature is None or not data.grasp_temperature > 0:
        raise LthError(f"grasp_temperature must be > 0, got {data.grasp_temperature!r}")
    batchnorm_training = _batchnorm_training(data, "grasp")
    weights = _masked_weights(model, mask, data.names)
    leaves = list(weights.values())
    temperature = data.grasp_temperature
    with scoring_mode(model, batchnorm_training):
        gradient = _accumulate(
            torch.autograd.grad(loss, leaves)
            for loss in _batch_losses(model, weights, data.batches, temperature)
        )
        hessian_gradient = _accumulate(
            _hessian_vector_product(loss, leaves, gradient)
            for loss in _batch_losses(model, weights, data.batches, temperature)
        )
    return {
        n: w.detach() * hg for (n, w), hg in zip(weights.items(), hessian_gradient, strict=True)
    }


def synflow_scores(model: nn.Module, mask: Mask, data: ScoreData) -> Scores:
    """Synaptic flow |theta * dR/dtheta| / R (Tanaka et al. 2020, NeurIPS, Sec. 6).

    Data-free: every parameter (biases and BatchNorm affine ones included) is replaced by its
    absolute value, the masked weights are zeroed, BatchNorm uses its running statistics and
    dropout is off, and R is the sum of the outputs for one all-ones input. To stay finite in
    deep networks this runs on float64 copies of the parameters and buffers (the model itself
    is never touched), and the scores are divided by R, which does not change their ranking:
    each score is the fraction of the total flow through that weight (in a bias-free ReLU
    network every layer's scores then sum to 1, Tanaka et al. 2020, Theorem 2). The scores
    stay float64 and are ranked so: cast to float32, many distinct flows become exact ties
    (hundreds on LeNet-300-100), which the tie-break by index would settle instead of the
    flow. Use it iteratively (prune_at_init with iterations > 1; the paper uses 100, Sec. 7).
    """
    params = dict(model.named_parameters())
    state = {n: p.detach().double().abs() for n, p in params.items()}
    state.update({n: b.double() if b.is_floating_point() else b for n, b in model.named_buffers()})
    weights = {n: (state[n] * mask[n]).requires_grad_() for n in data.names}
    state.update(weights)
    device = params[data.names[0]].device
    ones = torch.ones((1, *data.input_shape), dtype=torch.float64, device=device)
    with scoring_mode(model, batchnorm_training=False):
        flow = functional_call(model, state, (ones,)).sum()
    if not torch.isfinite(flow):
        raise LthError("synflow: the synaptic flow R overflowed float64 for this model")
    grads = torch.autograd.grad(flow, list(weights.values()), materialize_grads=True)
    flows = {n: (w.detach() * g).abs() for (n, w), g in zip(weights.items(), grads, strict=True)}
    return _divide_if_positive(flows, flow.detach())


CRITERIA: dict[str, Criterion] = {
    "magnitude": magnitude_scores,
    "random": random_scores,
    "snip": snip_scores,
    "grasp": grasp_scores,
    "synflow": synflow_scores,
}


def exponential_densities(density: float, iterations: int) -> list[float]:
    """Densities d_k = density ** (k / n), k = 1..n, of an n-step schedule.

    Tanaka et al. 2020, Algorithm 1: compression rho^(k/n) at step k, i.e. density
    rho^(-k/n) with rho = 1 / density. The last step is exactly `density`.
    """
    return [density ** (k / iterations) for k in range(1, iterations + 1)]


def pruning_steps(
    model: nn.Module,
    mask: Mask,
    criterion_name: str,
    density: float,
    scope: str,
    data: ScoreData,
    iterations: int,
) -> Iterator[Mask]:
    """Yield the mask after each step: re-score with the current mask, keep the top d_k.

    One step (iterations == 1) is one-shot pruning to `density`; more steps follow
    exponential_densities. Each mask keeps exactly round-half-up(d_k * size) weights, per
    layer ('layerwise') or pooled over data.names ('global'), and lies inside the previous.
    """
    for _, step in scored_steps(model, mask, criterion_name, density, scope, data, iterations):
        yield step


def scored_steps(
    model: nn.Module,
    mask: Mask,
    criterion_name: str,
    density: float,
    scope: str,
    data: ScoreData,
    iterations: int,
) -> Iterator[tuple[Scores, Mask]]:
    """pruning_steps with each step's scores: (scores, the mask they made)."""
    criterion = _criterion(criterion_name)
    _check_schedule(density, scope, iterations)
    for step_density in exponential_densities(density, iterations):
        scores = criterion(model, mask, data)
        mask = prune_to_density(scores, mask, step_density, scope, data.names)
        yield scores, mask


def scoring_macs(criterion_name: str, dense_macs: int, examples: int,
                 iterations: int) -> int | None:
    """Multiply-accumulates a criterion spends scoring (forward + backward = 3 forwards):
    magnitude and random none; SNIP one forward-backward of its batch (Lee et al. 2019);
    GraSP two forward-backward passes over its sample and a Hessian-vector product, about
    5 forwards (Wang et al. 2020); SynFlow a forward-backward of one all-ones input per
    iteration (Tanaka et al. 2020); a plug-in what it declares, None (unknown) if nothing."""
    if criterion_name not in CRITERIA:
        return plugins.criterion_macs(criterion_name, dense_macs, examples, iterations)
    per_pass = {"snip": 3 * examples, "grasp": 5 * examples, "synflow": 3}
    return per_pass.get(criterion_name, 0) * dense_macs * iterations


def prune_at_init(
    model: nn.Module,
    mask: Mask,
    criterion_name: str,
    density: float,
    scope: str,
    data: ScoreData,
    iterations: int,
) -> Mask:
    """The final mask of pruning_steps: exactly `density` of the prunable weights kept."""
    *_, final = pruning_steps(model, mask, criterion_name, density, scope, data, iterations)
    return final


def balanced_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    per_class: int,
    num_classes: int,
    gen: torch.Generator,
    batch_size: int,
) -> list[Batch]:
    """`per_class` random examples of every class, shuffled together, in batches.

    GraSP's sample (Wang et al. 2020; their released configs use 10 examples per class on
    CIFAR-10 and CIFAR-100, and 1 per class drawn 10 times on Tiny-ImageNet). Shuffling
    mixes classes within each batch, which matters where BatchNorm uses batch statistics.
    """
    if per_class < 1 or batch_size < 1:
        raise LthError(f"per_class and batch_size must be >= 1, got {per_class}, {batch_size}")
    picks = []
    for label in range(num_classes):
        pool = (y == label).nonzero().squeeze(1)
        if pool.numel() < per_class:
            raise LthError(
                f"class {label} has {pool.numel()} training examples, per_class={per_class}"
            )
        picks.append(pool[_randperm(pool.numel(), gen, pool.device)[:per_class]])
    chosen = torch.cat(picks)
    chosen = chosen[_randperm(chosen.numel(), gen, chosen.device)]
    return [(x[idx], y[idx]) for idx in chosen.split(batch_size)]


BATCHNORM_STATISTICS = ("batch", "running")
"""How BatchNorm normalises while SNIP or GraSP scores: with the scoring batch's statistics
(train mode) or with the running ones (eval mode)."""


def score_data(job: PruneJob, model: nn.Module, arch: dict, device: torch.device) -> ScoreData:
    """The ScoreData of a prune job: names, batches, generator and criterion settings."""
    gen = generator(job.experiment, job.seed, job.purpose)
    return ScoreData(
        names=prunable_names(model), batches=score_batches(job, arch, gen, device), gen=gen,
        num_classes=arch["num_classes"], input_shape=tuple(arch["input_shape"]),
        grasp_temperature=job.scoring.grasp_temperature if job.scoring else None,
        batchnorm_training=batchnorm_training(job),
    )


def score_batches(job: PruneJob, arch: dict, gen: torch.Generator,
                  device: torch.device) -> list[Batch]:
    """Training batches a data-driven criterion scores on: one random batch for SNIP
    (Lee et al. 2019), a class-balanced sample for GraSP (Wang et al. 2020); a plug-in that
    reads samples_per_class the balanced sample, another one the random batch."""
    needed = plugins.scoring_settings(job.criterion)
    if not needed:
        return []
    if job.data_root is None or job.scoring is None or any(
            getattr(job.scoring, key) is None for key in needed):
        raise LthError(f"criterion {job.criterion} needs data_root and scoring settings "
                       f"{', '.join(needed)}")
    splits = splits_of(job.data_root, job.val_size, device)
    size = job.scoring.score_batch_size
    if "samples_per_class" not in needed:  # SNIP's one random batch
        idx = torch.randperm(len(splits.train_x), generator=gen)[:size]
        return [(splits.train_x[idx.to(device)], splits.train_y[idx.to(device)])]
    return balanced_batches(splits.train_x, splits.train_y, job.scoring.samples_per_class,
                            arch["num_classes"], gen, size)


def batchnorm_training(job: PruneJob) -> bool | None:
    """Whether the job's criterion scores with BatchNorm on batch statistics (its
    `<criterion>_batchnorm` setting is "batch"); None for the criteria without one."""
    key = f"{job.criterion}_batchnorm"
    if job.scoring is None or key not in plugins.scoring_settings(job.criterion):
        return None
    return getattr(job.scoring, key) == "batch"


def _criterion(name: str) -> Criterion:
    if name not in CRITERIA and plugins.is_criterion_plugin(name):  # an installed plug-in's
        return plugins.criterion_scores(name)
    if name not in CRITERIA:
        raise LthError(f"pruning criterion {name!r} is unknown; expected one of {sorted(CRITERIA)}")
    return CRITERIA[name]


def _check_schedule(density: float, scope: str, iterations: int) -> None:
    if not 0 < density <= 1:
        raise LthError(f"density must be in (0, 1], got {density!r}")
    if scope not in ("layerwise", "global"):
        raise LthError(f"scope must be 'layerwise' or 'global', got {scope!r}")
    if not isinstance(iterations, int) or iterations < 1:
        raise LthError(f"iterations must be an integer >= 1, got {iterations!r}")


def _require_batches(data: ScoreData, name: str) -> None:
    if not data.batches:
        raise LthError(
            f"pruning criterion {name!r} needs training batches; ScoreData.batches is empty"
        )


def _batchnorm_training(data: ScoreData, name: str) -> bool:
    if data.batchnorm_training is None:
        raise LthError(f"pruning criterion {name!r} needs batchnorm_training (batch or running "
                       "statistics); ScoreData.batchnorm_training is None")
    return data.batchnorm_training


def _randperm(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randperm(n, generator=gen, device=gen.device).to(device)


def _masked_weights(model: nn.Module, mask: Mask, names: list[str]) -> dict[str, torch.Tensor]:
    """Detached copies of the prunable weights times their mask, as leaves requiring grad."""
    params = dict(model.named_parameters())
    return {n: (params[n].detach() * mask[n]).requires_grad_() for n in names}


def _batch_losses(
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    batches: list[Batch],
    temperature: float,
) -> Iterator[torch.Tensor]:
    """Per batch, its share of the mean cross-entropy (on logits / temperature) over all examples.

    The model runs on detached parameters with `weights` substituted and on clones of its
    buffers, so BatchNorm's running statistics in the model are left as they are.
    """
    state = {n: p.detach() for n, p in model.named_parameters()}
    state.update({n: b.clone() for n, b in model.named_buffers()})
    state.update(weights)
    total = sum(len(y) for _, y in batches)
    for x, y in batches:
        logits = functional_call(model, state, (x,))
        yield F.cross_entropy(logits / temperature, y, reduction="sum") / total


def _hessian_vector_product(
    loss: torch.Tensor, leaves: list[torch.Tensor], vector: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, ...]:
    """H v for the Hessian H of `loss` in `leaves`: the gradient of (dloss/dleaves)^T v."""
    grads = torch.autograd.grad(loss, leaves, create_graph=True)
    inner = sum((g * v).sum() for g, v in zip(grads, vector, strict=True))
    return torch.autograd.grad(inner, leaves, materialize_grads=True)


def _accumulate(per_batch: Iterable[Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """Elementwise sum over batches of equally shaped tensor lists."""
    total: list[torch.Tensor] = []
    for parts in per_batch:
        total = [t + p for t, p in zip(total, parts, strict=True)] if total else list(parts)
    return total


def _divide_if_positive(scores: Scores, total: torch.Tensor) -> Scores:
    """Scores divided by `total`; unchanged when it is 0 (then every score is 0 as well)."""
    return {n: s / total for n, s in scores.items()} if total > 0 else scores
