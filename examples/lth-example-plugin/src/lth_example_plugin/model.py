"""example_mlp: a multilayer perceptron narrower than LeNet-300-100 (128 and 32 hidden ReLU
units), built by lth's own MLP builder, so every random value comes from the generator."""

from lth.core.models import mlp
from lth_example_plugin.declarations import HIDDEN


def example_mlp(input_shape, num_classes, gen, dropout, init):
    """The network, initialised from `gen` by the initialiser `init` (None: Glorot)."""
    return mlp(HIDDEN, tuple(input_shape), num_classes, gen, dropout, init)
