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
1. write its scoring function here (a few lines; reuse ``_masked_weights``,
   ``_batch_losses`` and ``_scoring_mode`` when it needs gradients on training data);
2. register it in ``CRITERIA`` under the name the workflow config uses;
3. if it has a hyperparameter, add a field without default to ``ScoreData`` and the key, with
   the paper's value as default, to the workflow config schema.
``prune_at_init`` then gives it exact densities, both scopes and iterative schedules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm

from lth.core.io import LthError
from lth.core.masks import Mask, Scores, prune_to_density
from lth.plan import plugins

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
    with _scoring_mode(model, _batchnorm_training(data, "snip")):
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
    with _scoring_mode(model, batchnorm_training):
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
    with _scoring_mode(model, batchnorm_training=False):
        flow = functional_call(model, state, (ones,)).sum()
    if not torch.isfinite(flow):
        raise LthError("synflow: the synaptic flow R overflowed float64 for this model")
    grads = torch.autograd.grad(flow, list(weights.values()), materialize_grads=True)
    flows = {n: (w.detach() * g).abs() for (n, w), g in zip(weights.items(), grads, strict=True)}
    return _divide_if_positive(flows, flow.detach())


@torch.no_grad()
def input_reaches_output(model: nn.Module, mask: Mask, names: list[str],
                         input_shape: tuple[int, ...]) -> bool:
    """Whether any path of kept weights still connects the input to the output.

    Layer collapse (Tanaka et al. 2020, Sec. 3) is the loss of every such path: the network
    then computes a constant and trains to chance accuracy. The test is SynFlow's positive
    network with every bias (and BatchNorm shift and running mean) set to zero: each output
    is then a sum over input-output paths of products of positive weights, so it is > 0
    exactly when a path survives. Unlike "some layer is empty", this is right for residual
    networks, where an emptied shortcut convolution leaves the main branch connected.
    """
    state = {n: p.detach().double().abs() for n, p in model.named_parameters()}
    state.update({n: torch.zeros_like(p) for n, p in state.items() if n.endswith(".bias")})
    for n, b in model.named_buffers():
        if n.endswith("running_mean"):
            state[n] = torch.zeros_like(b, dtype=torch.float64)
        elif n.endswith("running_var"):
            state[n] = torch.ones_like(b, dtype=torch.float64)
        else:
            state[n] = b
    state.update({n: state[n] * mask[n] for n in names})
    device = state[names[0]].device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    with _scoring_mode(model, batchnorm_training=False):
        return bool(functional_call(model, state, (ones,)).sum() > 0)


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


@contextmanager
def _scoring_mode(model: nn.Module, batchnorm_training: bool) -> Iterator[None]:
    """Dropout off; BatchNorm on batch (True) or running (False) statistics; modes restored."""
    saved = [(module, module.training) for module in model.modules()]
    model.eval()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train(batchnorm_training)
    try:
        yield
    finally:
        for module, training in saved:
            module.training = training
