"""The networks, masks, data and schedules that the tests share: one definition of each.

Unit tests of the training code train on `cluster_splits` with `SCHEDULE`; tests of the verbs
train on the tiny Fashion-MNIST stand-in (generated.write_learnable_idx_folder) with
`TINY_SCHEDULE`.
"""

import torch

from lth.core import masks as M
from lth.core.data import DatasetInfo, Splits
from lth.core.models import build_model, prunable_names, resnet, vgg
from lth.plan.spec import Schedule

SCHEDULE = Schedule(optimizer="adam", lr=1e-3, momentum=0.0, nesterov=False, weight_decay=0.0,
                    batch_size=32, iterations=60, milestones=(), gamma=0.1, warmup=0,
                    eval_every=20, eval_batch_size=256, dropout=0.0, augment=False)
"""Adam on cluster_splits: LeNet learns the clusters in 60 iterations."""

TINY_SCHEDULE = Schedule(optimizer="adam", lr=0.002, momentum=0.0, nesterov=False,
                         weight_decay=0.0, batch_size=50, iterations=40, milestones=(),
                         gamma=0.1, warmup=0, eval_every=10, eval_batch_size=500, dropout=0.0,
                         augment=False)
"""Adam on the tiny Fashion-MNIST stand-in of the verb tests (600 training images)."""


def cluster_splits(n_train=960, seed=0) -> Splits:
    """Ten well-separated Gaussian clusters in 784 dimensions: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 1, 28, 28, generator=gen)

    def draw(n):
        y = torch.randint(0, 10, (n,), generator=gen)
        return centres[y] + 0.8 * torch.randn(n, 1, 28, 28, generator=gen), y

    (tx, ty), (vx, vy), (sx, sy) = draw(n_train), draw(300), draw(300)
    return Splits(tx, ty, vx, vy, sx, sy, DatasetInfo("clusters", (1, 28, 28), 10), False)


def image_splits() -> Splits:
    """The cluster data as 3x28x28 images, so that the CIFAR augmentation applies."""
    s = cluster_splits()
    rgb = [t.expand(-1, 3, -1, -1).contiguous() for t in (s.train_x, s.val_x, s.test_x)]
    return Splits(rgb[0], s.train_y, rgb[1], s.val_y, rgb[2], s.test_y,
                  DatasetInfo("clusters", (3, 28, 28), 10), False)


def lenet(seed=0):
    """LeNet-300-100 for 1x28x28 inputs at its Glorot initialisation (lth.core.models)."""
    return build_model("lenet300_100", (1, 28, 28), 10, torch.Generator().manual_seed(seed), 0.0)


def small_vgg(seed=0):
    """A two-conv VGG with BatchNorm on 1x28x28 images: seconds on a CPU."""
    return vgg((4, "M", 8), (1, 28, 28), 10, torch.Generator().manual_seed(seed))


def small_resnet(seed=0):
    """A two-stage CIFAR ResNet on 1x28x28 images, one basic block per stage: the stem and
    block 1 keep 4 channels (identity shortcut); stage 2 doubles them at stride 2 (a 1x1
    conv + BatchNorm projection shortcut)."""
    return resnet(((4, 1), (8, 1)), (1, 28, 28), 10, torch.Generator().manual_seed(seed))


def magnitude_mask(model, density=0.2, scope="layerwise"):
    """The mask keeping `density` of the prunable weights of largest magnitude (per layer, or
    pooled when scope is global): lth's one-shot magnitude pruning."""
    params = dict(model.named_parameters())
    names = prunable_names(model)
    scores = {n: params[n].detach().abs() for n in names}
    return M.prune_to_density(scores, M.full_mask(scores), density, scope, names)
