"""Elastic ticket transfer (Chen et al., NeurIPS 2021): an IMP ticket of another depth
stretched or squeezed block-wise to this network; the control shuffles the copied masks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lth.plan import catalog
from lth.plan.checks import Experiment, Problem
from lth.plan.registry import Family, Group, Method, Verb


@dataclass(frozen=True)
class TransferJob:
    """Elastic ticket transformation (Chen et al. 2021): an IMP ticket of one depth (its mask
    and rewound weights) stretched or squeezed to another depth of the same family."""

    experiment: str
    seed: int
    source_weights: str
    source_mask: str
    target_model: str
    strategy: str  # interleave | tail
    permute_copies: bool  # the random-mask control: copies get a shuffled mask
    purpose: str  # random stream of the permutations
    out_weights: str
    out_mask: str

    def reads(self) -> list[str | None]:
        """The files the job reads besides the dataset."""
        return [self.source_weights, self.source_mask]


def _elastic(exp: Experiment) -> Iterator[Problem]:
    """An elastic transfer's source is another experiment on the same dataset and seeds,
    rewinding to the same iteration, whose model has this one's depth family, and which runs
    the IMP rounds transferred."""
    name, e, experiments = exp.name, exp.cfg, exp.experiments
    x = e["elastic"]
    source_name = x["source_experiment"]
    if source_name is None:
        return
    key = f"experiments.{name}.elastic"
    source = experiments.get(source_name)
    if source is None or source_name == name:
        yield f"{key}.source_experiment", (f"{source_name!r} is not another experiment of this "
                                           f"config ({', '.join(sorted(experiments))})")
        return
    for setting in ("dataset", "seeds"):
        if source[setting] != e[setting]:
            yield f"{key}.source_experiment", (f"{source_name}'s {setting} {source[setting]} "
                                               f"differs from this experiment's {e[setting]}")
    if source["imp"]["rewind_iteration"] != e["imp"]["rewind_iteration"]:
        yield f"{key}.source_experiment", (
            f"{source_name} rewinds to iteration {source['imp']['rewind_iteration']}, this "
            f"experiment to {e['imp']['rewind_iteration']}: the transferred weights are the "
            f"source's and train on from the target's rewind point")
    problem = elastic_problem(source["model"], e["model"])
    if problem:
        yield f"{key}.source_experiment", problem
    for index, r in enumerate(x["rounds"]):
        if r > source["imp"]["rounds"]:
            yield f"{key}.rounds.{index}", (f"{r} is beyond {source_name}'s "
                                            f"{source['imp']['rounds']} IMP rounds")



def depth_family(model: str) -> tuple[str, int] | None:
    """(family, blocks per stage) of a network whose depth elastic transfer changes, None for
    the others. A CIFAR ResNet's blocks are its basic blocks (block 1 of a stage holds the
    stride and the projection); an mlp<W>x<D>'s are its D hidden layers (block 1, the layer
    reading the input, has another shape than the W -> W layers). Networks of one family
    differ only in the number of blocks."""
    if model in catalog.CIFAR_RESNET_BLOCKS:
        return "cifar_resnet", catalog.CIFAR_RESNET_BLOCKS[model]
    hidden = catalog.mlp_family_hidden(model)
    return (f"mlp{hidden[0]}", len(hidden)) if hidden else None


def elastic_problem(source: str, target: str) -> str | None:
    """Why elastic transfer cannot turn a ticket of `source` into one of `target` (a sentence
    naming both), or None if it can."""
    for model in (source, target):
        if depth_family(model) is None:
            return (f"{model} has no depth family: elastic transfer needs "
                    f"{', '.join(catalog.CIFAR_RESNET_BLOCKS)} or mlp<W>x<D> networks")
    (source_family, source_blocks), (target_family, target_blocks) = (
        depth_family(source), depth_family(target))
    if source_family != target_family:
        return f"{source} and {target} are not of one depth family"
    if source_blocks == 1 < target_blocks:
        return (f"{source} has 1 block per stage, which is never replicated, so it cannot "
                f"grow into {target}")
    return None

FAMILY = Family(
    name="elastic",
    position=6,
    description="tickets transferred from a network of another depth",
    groups=(Group("elastic", "tickets transferred from a network of another depth (Chen et "
                  "al. 2021)", (0, (3, 1, 1, 1, 1, 1)), "*", "dash-dot-dot"),),
    methods=(Method("elastic_.*_randmask", "control", control=True, pattern=True,
                    label="elastic_<strategy>_randmask"),
             Method("elastic_.*", "elastic", pattern=True, label="elastic_<strategy>")),
    rules=("elastic",),
    verbs=(Verb("transfer-depth", f"{__name__}:TransferJob",
                "lth.methods.elastic:run_transfer_job", "Elastic LTH: a ticket's mask and "
                "rewound weights stretched or squeezed to another depth", threads=False),),
    checks=(_elastic,),
)
