"""Masks mined on frozen weights: edge-popup (Ramanujan et al. 2020) and GEM-MINER
(Sreenivasan et al. 2022; its rounded rare gem, and the flagged weights trained)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lth.plan import catalog
from lth.plan.checks import Experiment, Problem, density_levels
from lth.plan.jobs import CohortRule, data_dir, init_path, run_dir
from lth.plan.registry import Family, Group, Method, Verb


@dataclass(frozen=True)
class Mining:
    """How edge-popup (Ramanujan et al. 2020) or GEM-MINER (Sreenivasan et al. 2022) trains
    a score per weight of frozen weights, with a cosine learning rate over `iterations`."""

    algo: str  # edge_popup | gem_miner
    weights: str  # signed_constant (sigma_l * sign(theta_0)) | theta0
    optimizer: str  # sgd | adam
    lr: float
    momentum: float
    weight_decay: float  # on the scores
    batch_size: int
    iterations: int
    eval_every: int
    eval_batch_size: int
    train_eval_size: int | None = None  # as Schedule's
    regularization: float = 0.0  # GEM-MINER: lambda of the L2 penalty on the scores
    freeze_every: int = 0  # GEM-MINER: iterations between freezing steps


@dataclass(frozen=True)
class MiningMember:
    """One mask to mine: a seed's theta_0 and the kept fraction."""

    seed: int
    method: str
    level: str
    density: float
    init: str
    out_dir: str


@dataclass(frozen=True)
class SupermaskJob:
    experiment: str
    data_root: str
    val_size: int | None
    device: str
    mining: Mining
    members: tuple[MiningMember, ...]

    def reads(self) -> list[str | None]:
        """The files the job reads besides the dataset."""
        return [m.init for m in self.members]


def _supermask(e: Experiment) -> Iterator[Problem]:
    """Mining has densities and a method; GEM-MINER freezes within the mining; batches fit."""
    m = e.cfg["supermask"]
    enabled = [algo for algo in ("edge_popup", "gem_miner") if m[algo]["enabled"]]
    if m["densities"] and not enabled:
        yield e.key("supermask.densities"), ("set, but neither edge_popup nor gem_miner is "
                                             "enabled")
    if enabled and not m["densities"]:
        yield e.key("supermask", enabled[0], "enabled"), ("true, but supermask.densities is "
                                                          "empty: no level to mine")
    if not (enabled and m["densities"]):
        return
    yield from density_levels(e, "supermask", m["densities"],
                               "edge_popup" if "edge_popup" in enabled else None)
    iterations = m["iterations"] or e.cfg["train"]["iterations"]
    freeze = m["gem_miner"]["freeze_every"]
    if "gem_miner" in enabled and freeze >= iterations:
        yield e.key("supermask.gem_miner.freeze_every"), (
            f"{freeze} is not below the {iterations} mining iterations: GEM-MINER would "
            f"never freeze its way to the target density")
    left = e.kept_for_training()
    batch = m["batch_size"]
    if batch is not None and left is not None and 0 < left < batch:
        yield e.key("supermask.batch_size"), (f"{batch} is more than the {left} training "
                                              f"examples: an epoch would have no batch")


def supermask_levels(e):
    return [catalog.density_level(d) for d in e["supermask"]["densities"]]


def mining(e, algo):
    m, t = e["supermask"], e["train"]
    own = m[algo]
    gem = ("regularization", "freeze_every") if algo == "gem_miner" else ()
    return Mining(
        algo=algo,
        weights=m["weights"],
        optimizer=own["optimizer"],
        lr=own["lr"],
        momentum=own["momentum"],
        weight_decay=own["weight_decay"],
        batch_size=m["batch_size"] or t["batch_size"],
        iterations=m["iterations"] or t["iterations"],
        eval_every=t["eval_every"],
        eval_batch_size=t["eval_batch_size"],
        train_eval_size=t["train_eval_size"],
        **{key: own[key] for key in gem},
    )


def mining_job(e_name, e, algo, method, device):
    members = tuple(
        MiningMember(
            seed=s,
            method=method,
            level=catalog.density_level(d),
            density=float(d),
            init=init_path(e_name, s),
            out_dir=run_dir(e_name, s, method, catalog.density_level(d)),
        )
        for s in e["seeds"]
        for d in e["supermask"]["densities"]
    )
    return SupermaskJob(
        experiment=e_name,
        data_root=data_dir(e["dataset"]),
        val_size=e["val_size"],
        device=device,
        mining=mining(e, algo),
        members=members,
    )


def mined_files(method, names):
    return lambda e_name, e: [
        f"{run_dir(e_name, s, method, lvl)}/{name}.safetensors"
        for s in e["seeds"]
        for lvl in supermask_levels(e)
        for name in names
    ]


def gem_miner_members(e_name, e, w, seed):
    """The flagged weights trained from the frozen start they were mined on."""
    members = []
    for level in supermask_levels(e):
        gem = run_dir(e_name, seed, "gem_miner_gem", level)
        member = dict(
            method="gem_miner",
            family="supermask",
            level=level,
            init=f"{gem}/start.safetensors",
            mask=f"{gem}/flags.safetensors",
        )
        members.append((member, None))
    return members


def supermask_enabled(algo):
    return lambda e: bool(e["supermask"]["densities"]) and e["supermask"][algo]["enabled"]


_COHORTS_supermask = (
    CohortRule(
        name="edge_popup",
        methods=lambda e: ["edge_popup"],
        level="",
        enabled=supermask_enabled("edge_popup"),
        members=lambda e_name, e, w, seed: [],
        networks=lambda e: [("edge_popup", level) for level in supermask_levels(e)],
        levels=supermask_levels,
        log_tag="edge_popup",
        searches=lambda e_name, e, w, device: [
            ("supermask", mining_job(e_name, e, "edge_popup", "edge_popup", device))
        ],
        extra_outputs=mined_files("edge_popup", ["scores"]),
        code=("methods.supermask",),
    ),
    CohortRule(
        name="gem_miner",
        methods=lambda e: ["gem_miner_gem", "gem_miner"],
        level="",
        enabled=supermask_enabled("gem_miner"),
        members=gem_miner_members,
        networks=lambda e: [
            (m, level) for m in ("gem_miner_gem", "gem_miner") for level in supermask_levels(e)
        ],
        levels=supermask_levels,
        log_tag="gem_miner",
        searches=lambda e_name, e, w, device: [
            ("supermask", mining_job(e_name, e, "gem_miner", "gem_miner_gem", device))
        ],
        extra_outputs=mined_files("gem_miner_gem", ["scores", "flags", "start"]),
        code=("methods.supermask",),
    ),
)


_ROUNDED = (
    "GEM-MINER's rare gem keeps the flagged weights whose score exceeds 0.5 (Sreenivasan et "
    "al. 2022, the accuracy 'after rounding'), and the L2 penalty on the scores "
    "(supermask.gem_miner.regularization) pulls flagged scores under 0.5.")

FAMILY = Family(
    name="supermask",
    position=5,
    description="masks mined on frozen weights",
    groups=(Group("supermask", "masks mined on frozen weights (Ramanujan et al. 2020; "
                  "Sreenivasan et al. 2022)", (0, (1, 1)), "P", "fine dots"),),
    methods=(Method("edge_popup", "supermask"),
             Method("gem_miner_gem", "supermask", below_target=_ROUNDED),
             Method("gem_miner", "supermask")),
    cohorts=_COHORTS_supermask,
    verbs=(Verb("supermask", f"{__name__}:SupermaskJob", "lth.methods.supermask:run_supermask_job",
                "edge-popup / GEM-MINER: masks mined on frozen weights; per network the "
                "untrained ticket, its scores, metrics, run.json"),),
    checks=(_supermask,),
)
