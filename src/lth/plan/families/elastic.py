"""Elastic ticket transfer (Chen et al., NeurIPS 2021): an IMP ticket of another depth
stretched or squeezed block-wise to this network; the control shuffles the copied masks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lth.plan import catalog
from lth.plan.checks import Experiment, Problem
from lth.plan.registry import Family, Method, Verb


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
    problem = catalog.elastic_problem(source["model"], e["model"])
    if problem:
        yield f"{key}.source_experiment", problem
    for index, r in enumerate(x["rounds"]):
        if r > source["imp"]["rounds"]:
            yield f"{key}.rounds.{index}", (f"{r} is beyond {source_name}'s "
                                            f"{source['imp']['rounds']} IMP rounds")


FAMILY = Family(
    name="elastic",
    position=7,
    description="tickets transferred from a network of another depth",
    methods=(Method("elastic_.*_randmask", "control", control=True, pattern=True,
                    label="elastic_<strategy>_randmask"),
             Method("elastic_.*", "transfer", pattern=True, label="elastic_<strategy>")),
    rule_kinds=("elastic",),
    verbs=(Verb("transfer-depth", f"{__name__}:TransferJob",
                "lth.methods.elastic:run_transfer_job", "Elastic LTH: a ticket's mask and "
                "rewound weights stretched or squeezed to another depth", threads=False),),
    checks=(_elastic,),
)
