"""The gradient-magnitude criterion: keep the weights whose loss gradient at initialisation
is largest, |dL/dw|.

SNIP's connection sensitivity without its weight factor (Lee et al. 2019, Eq. 6 scores
|w dL/dw|): where SNIP asks how much the loss changes when a weight is removed, this asks
only how fast it changes along the weight, so small weights with large gradients are kept.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def gradient_magnitude_scores(model: nn.Module, mask: dict, data) -> dict:
    """|dL/dw| of every prunable weight, L the mean cross-entropy over data.batches, computed
    on detached copies of the masked weights with dropout off and BatchNorm on running
    statistics (the model itself is left as it is)."""
    params = dict(model.named_parameters())
    weights = {n: (params[n].detach() * mask[n]).requires_grad_() for n in data.names}
    state = {n: p.detach() for n, p in params.items()}
    state.update({n: b.clone() for n, b in model.named_buffers()})
    state.update(weights)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        total = sum(len(y) for _, y in data.batches)
        loss = sum(F.cross_entropy(functional_call(model, state, (x,)), y, reduction="sum")
                   for x, y in data.batches) / total
    finally:
        for module, training in modes:
            module.training = training
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {n: g.abs() for n, g in zip(weights, grads, strict=True)}
