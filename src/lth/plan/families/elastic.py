"""Elastic ticket transfer (Chen et al., NeurIPS 2021): an IMP ticket of another depth
stretched or squeezed block-wise to this network; the control shuffles the copied masks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lth.plan import catalog
from lth.plan.checks import Experiment, Problem
from lth.plan.jobs import CohortRule, pruned_kinds, rewind_path, rewind_start, run_dir
from lth.plan.registry import Family, Group, Method, Verb


@dataclass(frozen=True)
class ElasticJob:
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

def elastic_methods(e):
    x = e["elastic"]
    suffixes = [""] + (["_randmask"] if x["random_mask_control"] else [])
    return [f"elastic_{s}{suffix}" for s in x["strategies"] for suffix in suffixes]


def elastic_levels(e):
    return [f"round{r}" for r in e["elastic"]["rounds"]]


def elastic_steps(e_name, e, seed, r):
    """(transfer job, member) of every method of one seed at source round r."""
    source = e["elastic"]["source_experiment"]
    steps = []
    for method in elastic_methods(e):
        strategy = method.split("_")[1]
        out = run_dir(e_name, seed, method, f"round{r}")
        job = ElasticJob(
            experiment=e_name,
            seed=seed,
            source_weights=rewind_path(source, seed),
            source_mask=f"{run_dir(source, seed, 'imp', f'round{r}')}/mask.safetensors",
            target_model=e["model"],
            strategy=strategy,
            permute_copies=method.endswith("_randmask"),
            purpose=f"elastic/permute/round{r}",
            out_weights=f"{out}/start.safetensors",
            out_mask=f"{out}/mask.safetensors",
        )
        member = dict(
            method=method,
            family="control" if job.permute_copies else "elastic",
            level=f"round{r}",
            init=job.out_weights,
            mask=job.out_mask,
            start_iteration=rewind_start(e),
            counted_kinds=pruned_kinds(e),
        )
        steps.append((job, member))
    return steps


_COHORTS_elastic = (
    CohortRule(
        name="elastic",
        methods=elastic_methods,
        level="round{r}",
        enabled=lambda e: e["elastic"]["source_experiment"] is not None
        and bool(e["elastic"]["rounds"]),
        members=lambda e_name, e, w, seed: [
            (m, None) for _, m in elastic_steps(e_name, e, seed, w.r)
        ],
        networks=lambda e: [(m, level) for m in elastic_methods(e) for level in elastic_levels(e)],
        constraints=lambda e: {"r": "|".join(map(str, e["elastic"]["rounds"]))},
        searches=lambda e_name, e, w, _device: [
            ("elastic", job)
            for s in e["seeds"]
            for job, _ in elastic_steps(e_name, e, s, w.r)
        ],
        extra_outputs=lambda e_name, e: [
            f"{run_dir(e_name, s, m, 'round{r}')}/start.safetensors"
            for s in e["seeds"]
            for m in elastic_methods(e)
        ],
        code=("methods.elastic",),
    ),
)


FAMILY = Family(
    name="elastic",
    position=7,
    description="tickets transferred from a network of another depth",
    groups=(Group("elastic", "tickets transferred from a network of another depth (Chen et "
                  "al. 2021)", (0, (3, 1, 1, 1, 1, 1)), "*", "dash-dot-dot"),),
    methods=(Method("elastic_.*_randmask", "control", control=True, pattern=True,
                    label="elastic_<strategy>_randmask"),
             Method("elastic_.*", "elastic", pattern=True, label="elastic_<strategy>")),
    cohorts=_COHORTS_elastic,
    verbs=(Verb("elastic", f"{__name__}:ElasticJob",
                "lth.methods.elastic:run_elastic_job", "Elastic LTH: a ticket's mask and "
                "rewound weights stretched or squeezed to another depth", threads=False),),
    checks=(_elastic,),
)
