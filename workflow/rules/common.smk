# Helpers shared by the rules: config access, artifact paths, and the typed job specs.
#
# A training job trains a cohort: every seed of one method and level (or a round's controls)
# in one process. Each stage file declares its cohort kinds as data (CohortKind); training.smk
# turns every (experiment, kind) into one rule. A job's settings are built here, from the
# config, into the typed specs of lth.plan.spec and handed to the verb as one JSON param.
import os
import shlex
import sys
from dataclasses import dataclass, field, fields

SRC = f"{workflow.basedir}/src"
sys.path.insert(0, SRC)
from lth.plan import catalog, plugins, registry, spec  # noqa: E402  (torch-free)

# Every job runs `python -m lth` with this checkout's src/ on its PYTHONPATH, set once here
# for all rules by the shell prefix (it runs before each rule's shell command):
# - conda jobs: lth is not installed in the env (envs/lth.yaml) and Snakemake clears an
#   inherited PYTHONPATH there, but the prefix runs after the env's activation;
# - SLURM jobs: the job's own Snakemake reads this file again and sets the same prefix;
# - not a param: a param reruns its jobs when it changes, and this path changes whenever the
#   checkout moves (nor is the prefix part of a rule's code, which is a rerun trigger too).
# It replaces Snakemake's default prefix, `set -euo pipefail;`, kept here so that a verb
# that fails in `python -m lth ... 2>&1 | tee {log}` still fails its job.
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(SRC)}; ")

EXPERIMENTS = config["experiments"]


wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "_none_",
    seed=r"\d+",
    r=r"[1-9]\d*",
    name=r"[a-z_]+",
    dataset=r"[a-z0-9_]+",
    structure=r"[a-z][a-z0-9_]*",


def checkout_path(path):
    """A file of this checkout as a job input, named so that moving the working directory
    changes no job's inputs (reruns nothing): relative when the file lies inside it (the
    usual case, the checkout is the working directory: they move together), else absolute."""
    absolute = f"{workflow.basedir}/{path}"
    relative = os.path.relpath(absolute)
    return absolute if relative.split(os.sep)[0] == os.pardir else relative


LIBRARY_BASE = (
    "__main__",
    "verbs.cli",
    "verbs.commands",
    "core.errors",
    "core.io",
    "core.provenance",
    "plan.catalog",
    "plan.plugins",
    "plan.registry",
    "plan.spec",
)
"""The lth modules every verb imports (dotted, under lth); each verb imports the others it
needs itself."""
REGISTRY = ["plan.checks"] + [m.removeprefix("lth.") for m in registry.declaration_modules()]
"""The family declarations the registry reads (lth.plan.registry.families): the code of
every verb that asks which family a method belongs to."""


def library(*modules):
    """The lth source files a verb imports, given as dotted names under lth (e.g. core.data),
    with the __init__ of every package on their way: a code change reruns what it affects."""
    names = [*LIBRARY_BASE, *modules]
    packages = sorted({n.rsplit(".", 1)[0] for n in names if "." in n})
    files = ["__init__", *(f"{p}.__init__" for p in packages), *names]
    return [checkout_path(f"src/lth/{n.replace('.', '/')}.py") for n in dict.fromkeys(files)]


TRAIN_CODE = library(
    "core.seeding",
    "core.masks",
    "core.data",
    "core.models",
    "core.networks",
    "core.records",
    "core.train",
    "core.cohort",
    "core.workers",
    "methods.criteria",
    "methods.imp",
    "methods.train_jobs",
)
"""The lth modules a cohort job's init, prune and train verbs import."""


def data_dir(dataset):
    return f"data/{dataset}"


def run_dir(e_name, seed, method, level):
    return f"results/{e_name}/seed{seed}/{method}/{level}"


def init_path(e_name, seed):
    return f"results/{e_name}/seed{seed}/init.safetensors"


def rewind_path(e_name, seed):
    return f"{run_dir(e_name, seed, 'imp', 'round0')}/rewind.safetensors"


def prev_round(e_name, seed, method, r, filename):
    """The previous round's file of an iterative method (round 0 is the dense IMP run)."""
    source = "imp" if int(r) == 1 else method
    return f"{run_dir(e_name, seed, source, f'round{int(r) - 1}')}/{filename}"


def round_levels(e):
    """round1 ... round<R> of IMP's rounds, the levels of every iterative method."""
    return [f"round{r}" for r in range(1, e["imp"]["rounds"] + 1)]


def oneshot_methods(e):
    return e["oneshot"]["methods"] if e["oneshot"]["densities"] else {}


def run_levels(e):
    """(method, level) of every trained network of an experiment, as configured: the
    networks of every enabled cohort kind, in the order the rule files declare them."""
    return [net for kind in COHORT_KINDS if kind.enabled(e) for net in kind.networks(e)]


def runs_of(e_name, filename="run.json"):
    e = EXPERIMENTS[e_name]
    return [
        f"{run_dir(e_name, s, m, lvl)}/{filename}" for s in e["seeds"] for m, lvl in run_levels(e)
    ]


def report_targets():
    return [f"reports/{e}/report.{ext}" for e in EXPERIMENTS for ext in ("html", "pdf")]


def rates(e):
    """IMP's per-kind pruning rates as the typed spec holds them."""
    i = e["imp"]
    return spec.Rates(**{kind: i[f"rate_{kind}"] for kind in LAYER_KINDS})


LAYER_KINDS = [f.name for f in fields(spec.Rates)]


def pruned_kinds(e):
    """The layer kinds IMP prunes (rate > 0): the weights whose kept fraction is the density
    of an IMP-mask network (Frankle & Carbin 2019, App. I.3 count neither the shortcuts nor
    the output layer they leave whole)."""
    return tuple(kind for kind in LAYER_KINDS if e["imp"][f"rate_{kind}"] > 0)


def rewind_start(e):
    """The iteration a rewound network starts training at: k under the continuing schedule
    (Frankle et al. 2020; open_lth), 0 when the schedule restarts."""
    i = e["imp"]
    return i["rewind_iteration"] if i["rewind_schedule"] == "continue" else 0


def train_schedule(e):
    return e["train"]


def prune_job(e_name, e, seed, out, **how):
    """A PruneJob writing `out` (a member's mask). A data-driven criterion also gets the data
    and only the scoring settings it reads, so another method's setting never reruns it."""
    reads = plugins.scoring_settings(how["criterion"])
    if reads:
        how.update(
            data_root=data_dir(e["dataset"]),
            val_size=e["val_size"],
            scoring=spec.Scoring(**{key: e["oneshot"][key] for key in reads}),
        )
    how.setdefault("iterations", 1)
    return spec.PruneJob(experiment=e_name, seed=seed, device=config["device"], out=out, **how)


RUN_FILES = ("final.safetensors", "metrics.csv", "run.json", "mask.safetensors")


@dataclass(kw_only=True)
class CohortKind:
    """One kind of training job. members(e_name, e, w, seed) gives, for one seed, a list of
    (member fields, prune how or None): a member whose `mask` is None and who has a prune
    step gets the mask that step writes into its run directory. networks(e) lists the
    (method, level) of the trained networks its jobs write (what summary and similarity
    read). searches(e_name, e, w) gives the (verb, job spec) steps that run first
    (a ticket search, mining, a transfer), whose files beyond the run files are
    extra_outputs(e_name, e); code names the library modules they import beyond training's."""

    name: str
    methods: object  # e -> method names (output paths; may hold {wildcards})
    level: str  # level pattern, e.g. round{r}, {structure}, or a literal
    enabled: object  # e -> bool
    members: object
    networks: object  # e -> [(method, level)]
    schedule: object = train_schedule
    levels: object = None  # e -> level patterns when one job covers several levels
    rewind: bool = False
    makes_init: bool = False
    constraints: object = field(default_factory=lambda: (lambda e: {}))
    log_tag: str = ""  # names the job's log (holds every wildcard); default: the level
    priority: int = 0  # Snakemake runs higher first: the sequential chains (IMP, fine-tuning)
    searches: object = None
    extra_outputs: object = None
    code: tuple = ()

    def level_patterns(self, e):
        return self.levels(e) if self.levels else [self.level]

    def outputs(self, e_name, e):
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

    def steps(self, e_name, wildcards):
        """(search steps, prune jobs, train job or None) of one job of this kind."""
        e = EXPERIMENTS[e_name]
        searches = self.searches(e_name, e, wildcards) if self.searches else []
        prunes, members = [], []
        for seed in e["seeds"]:
            for member, how in self.members(e_name, e, wildcards, seed):
                member = dict(member)  # "folder": the run folder, when not the method's
                folder = member.pop("folder", member["method"])
                out_dir = run_dir(e_name, seed, folder, member["level"])
                if how is not None:
                    member["mask"] = f"{out_dir}/mask.safetensors"
                    prunes.append(prune_job(e_name, e, seed, member["mask"], **how))
                members.append(spec.Member(seed=seed, out_dir=out_dir, **member))
        job = None
        if members:
            job = spec.TrainJob(
                experiment=e_name,
                data_root=data_dir(e["dataset"]),
                val_size=e["val_size"],
                device=config["device"],
                schedule=spec.schedule_from_config(self.schedule(e)),
                engine=spec.from_dict(spec.Engine, e["engine"], f"experiments.{e_name}.engine"),
                members=tuple(members),
            )
        return searches, prunes, job


def cohort_inputs(kind, e_name):
    """Input function: every file the job's steps read that the job does not write."""

    def inputs(wildcards):
        e = EXPERIMENTS[e_name]
        searches, prunes, job = kind.steps(e_name, wildcards)
        search_code = REGISTRY if searches else ()  # a family's verbs: lth.plan.registry
        written = {f.format(**wildcards) for f in kind.outputs(e_name, e)}
        steps = [s for _, s in searches] + prunes + ([job] if job else [])
        read = [f for step in steps for f in step.reads()]
        return {
            "files": sorted({f for f in read if f and f not in written}),
            "data": f"{data_dir(e['dataset'])}/tensors.safetensors",
            "code": list(dict.fromkeys(TRAIN_CODE + library(*kind.code, *search_code)))
            + plugins.source_files(e["model"], tuple(p.criterion for p in prunes)),
        }

    return inputs


def cohort_command(kind, e_name):
    """Params function: the `lth` verbs of one job, chained with `::` in one process:
    init (dense only), the searches, one prune per produced mask, then train of the cohort."""

    def command(wildcards):
        e = EXPERIMENTS[e_name]
        searches, prunes, job = kind.steps(e_name, wildcards)
        verbs = []
        if kind.makes_init:
            verbs += [
                f"init --experiment {e_name} --seed {s} --model {e['model']} "
                f"--init {e['train']['init']} "
                f"--data-root {data_dir(e['dataset'])} --out {init_path(e_name, s)}"
                for s in e["seeds"]
            ]
        steps = searches + [("prune", p) for p in prunes] + ([("train", job)] if job else [])
        verbs += [f"{verb} --job {shlex.quote(spec.to_json(step))}" for verb, step in steps]
        return " :: ".join(verbs)

    return command


def cohort_threads(kind, e_name):
    """Threads function: a CPU job gets one thread per member of its cohort, and at least
    resources.threads (Snakemake caps it at --cores): lth.core.workers trains the members
    side by side, one intra-op thread each. A GPU job gets resources.threads."""

    def threads(wildcards):
        e = EXPERIMENTS[e_name]
        own = e["resources"]["threads"]
        if e["resources"]["gpu"] > 0 or config["device"].startswith("cuda"):
            return own
        _, _, job = kind.steps(e_name, wildcards)
        return max(own, len(job.members) if job else 1)

    return threads


COHORT_KINDS = []
