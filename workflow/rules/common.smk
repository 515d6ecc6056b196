# Helpers shared by the rules: config access, artifact paths, and the typed job specs.
#
# A training job trains a cohort: every seed of one method and level (or a round's controls)
# in one process. Each family declares its cohort rules (lth.plan.jobs.CohortRule, in its
# module of lth.plan.families); training.smk turns every (experiment, cohort rule) into one
# rule, with the typed specs of lth.plan.spec handed to the verb as one JSON param.
import os
import shlex
import sys

SRC = f"{workflow.basedir}/src"
sys.path.insert(0, SRC)
from lth.plan import catalog, jobs, plugins, registry, spec  # noqa: E402  (torch-free)
from lth.plan.jobs import data_dir, init_path, run_dir  # noqa: E402

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
REGISTRY = ["plan.checks", "plan.jobs"] + [
    m.removeprefix("lth.") for m in registry.declaration_modules()
]
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


def runs_of(e_name, filename="run.json"):
    return jobs.runs_of(e_name, EXPERIMENTS[e_name], filename)


def report_targets():
    return [f"reports/{e}/report.{ext}" for e in EXPERIMENTS for ext in ("html", "pdf")]


def batchnorm_init_option(e):
    """The init verb's --batchnorm-init, given only when it is not BatchNorm's usual 1."""
    scale = e["train"]["batchnorm_init"]
    return f"--batchnorm-init {scale} " if scale != 1 else ""


def job_steps(cohort, e_name, wildcards):
    """(search steps, prune jobs, train job or None) of one job of a cohort rule."""
    return cohort.steps(e_name, EXPERIMENTS[e_name], wildcards, config["device"])


def cohort_inputs(cohort, e_name):
    """Input function: every file the job's steps read that the job does not write."""

    def inputs(wildcards):
        e = EXPERIMENTS[e_name]
        searches, prunes, job = job_steps(cohort, e_name, wildcards)
        search_code = REGISTRY if searches else ()  # a family's verbs: lth.plan.registry
        written = {f.format(**wildcards) for f in cohort.outputs(e_name, e)}
        steps = [s for _, s in searches] + prunes + ([job] if job else [])
        read = [f for step in steps for f in step.reads()]
        return {
            "files": sorted({f for f in read if f and f not in written}),
            "data": f"{data_dir(e['dataset'])}/tensors.safetensors",
            "code": list(dict.fromkeys(TRAIN_CODE + library(*cohort.code, *search_code)))
            + plugins.source_files(e["model"], tuple(p.criterion for p in prunes)),
        }

    return inputs


def cohort_command(cohort, e_name):
    """Params function: the `lth` verbs of one job, chained with `::` in one process:
    init (dense only), the searches, one prune per produced mask, then train of the cohort."""

    def command(wildcards):
        e = EXPERIMENTS[e_name]
        searches, prunes, job = job_steps(cohort, e_name, wildcards)
        verbs = []
        if cohort.makes_init:
            verbs += [
                f"init --experiment {e_name} --seed {s} --model {e['model']} "
                f"--init {e['train']['init']} {batchnorm_init_option(e)}"
                f"--data-root {data_dir(e['dataset'])} --out {init_path(e_name, s)}"
                for s in e["seeds"]
            ]
        steps = searches + [("prune", p) for p in prunes] + ([("train", job)] if job else [])
        verbs += [f"{verb} --job {shlex.quote(spec.to_json(step))}" for verb, step in steps]
        return " :: ".join(verbs)

    return command


def cohort_threads(cohort, e_name):
    """Threads function: a CPU job gets one thread per member of its cohort, and at least
    resources.threads (Snakemake caps it at --cores): lth.core.workers trains the members
    side by side, one intra-op thread each. A GPU job gets resources.threads."""

    def threads(wildcards):
        e = EXPERIMENTS[e_name]
        own = e["resources"]["threads"]
        if e["resources"]["gpu"] > 0 or config["device"].startswith("cuda"):
            return own
        _, _, job = job_steps(cohort, e_name, wildcards)
        return max(own, len(job.members) if job else 1)

    return threads


COHORT_RULES = jobs.cohort_rules()
