"""What this plug-in adds, as lth reads it without importing torch: the objects the entry
points of pyproject.toml name, and the torch-free functions they point at here."""

import math

from lth.plan.catalog import Layer
from lth.plan.plugins import CriterionPlugin, ModelPlugin

HIDDEN = (128, 32)
"""Hidden widths of example_mlp."""


def gradient_macs(dense_macs: int, examples: int, iterations: int) -> int:
    """One forward and one backward pass (about 3 forwards) of every scored example, per
    iteration."""
    return 3 * dense_macs * examples * iterations


def example_mlp_layers(input_shape: tuple[int, ...], num_classes: int) -> list[Layer]:
    """The prunable weights of example_mlp: fc1, fc2 and the output layer."""
    widths = (math.prod(input_shape), *HIDDEN)
    hidden = [Layer(f"fc{i}.weight", "fc", (widths[i], widths[i - 1]))
              for i in range(1, len(widths))]
    return [*hidden, Layer("output.weight", "output", (num_classes, widths[-1]))]


GRADIENT_MAGNITUDE = CriterionPlugin(
    scores="lth_example_plugin.criterion:gradient_magnitude_scores",
    reads=("score_batch_size",),
    macs="lth_example_plugin.declarations:gradient_macs",
)
EXAMPLE_MLP = ModelPlugin(
    build="lth_example_plugin.model:example_mlp",
    layers="lth_example_plugin.declarations:example_mlp_layers",
)
