"""The job plan, torch-free: which training jobs an experiment has, what each reads and
writes, and the typed specs it runs (lth.plan.spec).

A training job trains a cohort: every seed of one method and level (or a round's controls)
in one process. Each family declares its cohort rules (`CohortRule`, in its module of
lth.plan.families); workflow/rules/training.smk turns every (experiment, cohort rule) into
one Snakemake rule, whose inputs, outputs and command come from here. An experiment `e` is
its config block with the schema's defaults filled in; `w` are a job's wildcards (r, method,
structure). The artifact paths are DESIGN.md's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from lth.plan import plugins, spec

RUN_FILES = ("final.safetensors", "metrics.csv", "run.json", "mask.safetensors")
"""What every trained network's run folder holds."""

LAYER_KINDS = tuple(f.name for f in fields(spec.Rates))
"""The layer kinds IMP rates (lth.plan.spec.Rates)."""


def data_dir(dataset: str) -> str:
    return f"data/{dataset}"


def run_dir(e_name: str, seed: int, method: str, level: str) -> str:
    return f"results/{e_name}/seed{seed}/{method}/{level}"


def init_path(e_name: str, seed: int) -> str:
    return f"results/{e_name}/seed{seed}/init.safetensors"


def rewind_path(e_name: str, seed: int) -> str:
    return f"{run_dir(e_name, seed, 'imp', 'round0')}/rewind.safetensors"


def prev_round(e_name: str, seed: int, method: str, r, filename: str) -> str:
    """The previous round's file of an iterative method (round 0 is the dense IMP run)."""
    source = "imp" if int(r) == 1 else method
    return f"{run_dir(e_name, seed, source, f'round{int(r) - 1}')}/{filename}"


def round_levels(e: dict) -> list[str]:
    """round1 ... round<R> of IMP's rounds, the levels of every iterative method."""
    return [f"round{r}" for r in range(1, e["imp"]["rounds"] + 1)]


def rates(e: dict) -> spec.Rates:
    """IMP's per-kind pruning rates as the typed spec holds them."""
    return spec.Rates(**{kind: e["imp"][f"rate_{kind}"] for kind in LAYER_KINDS})


def pruned_kinds(e: dict) -> tuple[str, ...]:
    """The layer kinds IMP prunes (rate > 0): the weights whose kept fraction is the density
    of an IMP-mask network (Frankle & Carbin 2019, App. I.3 count neither the shortcuts nor
    the output layer they leave whole)."""
    return tuple(kind for kind in LAYER_KINDS if e["imp"][f"rate_{kind}"] > 0)


def rewind_start(e: dict) -> int:
    """The iteration a rewound network starts training at: k under the continuing schedule
    (Frankle et al. 2020; open_lth), 0 when the schedule restarts."""
    i = e["imp"]
    return i["rewind_iteration"] if i["rewind_schedule"] == "continue" else 0


def train_schedule(e: dict) -> dict:
    return e["train"]


def imp_step(e_name: str, e: dict, seed: int, chain: str, r) -> dict:
    """IMP's pruning step at round r of an iterative chain (IMP, fine-tuning, a
    re-introduction chain): the chain's previous trained weights under its previous mask,
    pruned by IMP's rates (the fields of a PruneJob)."""
    return dict(weights=prev_round(e_name, seed, chain, r, "final.safetensors"),
                mask=prev_round(e_name, seed, chain, r, "mask.safetensors"),
                criterion="magnitude", scope=e["imp"]["scope"], rates=rates(e),
                purpose=f"{chain}/round{r}")


def rewound_member(e_name: str, e: dict, seed: int, method: str, family: str, r) -> dict:
    """A round-r network trained from the rewind point, its density counted over the layer
    kinds IMP prunes (the fields of a Member)."""
    return dict(method=method, family=family, level=f"round{r}", init=rewind_path(e_name, seed),
                start_iteration=rewind_start(e), counted_kinds=pruned_kinds(e))


def prune_job(e_name: str, e: dict, seed: int, out: str, device: str, **how) -> spec.PruneJob:
    """A PruneJob writing `out` (a member's mask). A data-driven criterion also gets the data
    and only the scoring settings it reads, so another method's setting never reruns it."""
    reads = plugins.scoring_settings(how["criterion"])
    if reads:
        how.update(
            data_root=data_dir(e["dataset"]),
            val_size=e["val_size"],
            scoring=spec.Scoring(**{key: e["at_init"][key] for key in reads}),
        )
    how.setdefault("iterations", 1)
    return spec.PruneJob(experiment=e_name, seed=seed, device=device, out=out, **how)


def _always(_e: dict) -> dict:
    return {}


@dataclass(kw_only=True)
class CohortRule:
    """One rule of training jobs. members(e_name, e, w, seed) gives, for one seed, a list of
    (member fields, prune how or None): a member whose `mask` is None and who has a prune
    step gets the mask that step writes into its run directory. networks(e) lists the
    (method, level) of the trained networks its jobs write (what summary and similarity
    read). searches(e_name, e, w, device) gives the (verb, job spec) steps that run first
    (a ticket search, mining, a transfer), whose files beyond the run files are
    extra_outputs(e_name, e); code names the library modules they import beyond training's."""

    name: str
    methods: Callable  # e -> method names (output paths; may hold {wildcards})
    level: str  # level pattern, e.g. round{r}, {structure}, or a literal
    enabled: Callable  # e -> bool
    members: Callable
    networks: Callable  # e -> [(method, level)]
    schedule: Callable = train_schedule
    levels: Callable | None = None  # e -> level patterns when one job covers several levels
    rewind: bool = False
    makes_init: bool = False
    constraints: Callable = field(default=_always)
    log_tag: str = ""  # names the job's log (holds every wildcard); default: the level
    priority: int = 0  # Snakemake runs higher first: the sequential chains (IMP, fine-tuning)
    searches: Callable | None = None
    extra_outputs: Callable | None = None
    code: tuple = ()

    def level_patterns(self, e: dict) -> list[str]:
        return self.levels(e) if self.levels else [self.level]

    def outputs(self, e_name: str, e: dict) -> list[str]:
        """Every file a job of this rule writes (patterns holding its wildcards)."""
        files = []
        for seed in e["seeds"]:
            if self.makes_init:
                files.append(init_path(e_name, seed))
            for method in self.methods(e):
                for level in self.level_patterns(e):
                    d = run_dir(e_name, seed, method, level)
                    files += [f"{d}/{f}" for f in RUN_FILES]
                    if self.rewind:
                        files.append(f"{d}/rewind.safetensors")
        return files + (self.extra_outputs(e_name, e) if self.extra_outputs else [])

    def steps(self, e_name: str, e: dict, wildcards, device: str):
        """(search steps, prune jobs, train job or None) of one job of this rule."""
        searches = self.searches(e_name, e, wildcards, device) if self.searches else []
        prunes, members = [], []
        for seed in e["seeds"]:
            for member, how in self.members(e_name, e, wildcards, seed):
                member = dict(member)  # "folder": the run folder, when not the method's
                folder = member.pop("folder", member["method"])
                out_dir = run_dir(e_name, seed, folder, member["level"])
                if how is not None:
                    member["mask"] = f"{out_dir}/mask.safetensors"
                    prunes.append(prune_job(e_name, e, seed, member["mask"], device, **how))
                members.append(spec.Member(seed=seed, out_dir=out_dir, **member))
        job = None
        if members:
            job = spec.TrainJob(
                experiment=e_name,
                data_root=data_dir(e["dataset"]),
                val_size=e["val_size"],
                device=device,
                schedule=spec.schedule_from_config(self.schedule(e)),
                engine=spec.from_dict(spec.Engine, e["engine"], f"experiments.{e_name}.engine"),
                members=tuple(members),
            )
        return searches, prunes, job


def round_rule(method: str, enabled: Callable, members: Callable, priority: int,
               **more) -> CohortRule:
    """The rule of one method trained at every IMP round: its networks are
    (method, round<r>), r = 1 ... imp.rounds; `more` sets CohortRule's other fields."""
    return CohortRule(name=method, methods=lambda e: [method], level="round{r}",
                      enabled=enabled, members=members,
                      networks=lambda e: [(method, level) for level in round_levels(e)],
                      priority=priority, **more)


def cohort_rules() -> tuple[CohortRule, ...]:
    """Every family's cohort rules, in the families' order (lth.plan.registry)."""
    from lth.plan import registry

    return tuple(rule for family in registry.families() for rule in family.cohorts)


def run_levels(e: dict) -> list[tuple[str, str]]:
    """(method, level) of every trained network of an experiment, as configured: the
    networks of every enabled cohort rule, in the families' order."""
    return [net for rule in cohort_rules() if rule.enabled(e) for net in rule.networks(e)]


def runs_of(e_name: str, e: dict, filename: str = "run.json") -> list[str]:
    """A file of every trained network of an experiment, seed by seed."""
    return [f"{run_dir(e_name, s, m, lvl)}/{filename}" for s in e["seeds"]
            for m, lvl in run_levels(e)]
