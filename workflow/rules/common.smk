# Helpers shared by the rules: config access, artifact paths, and argument rendering.
import glob
import shlex
from pathlib import Path

LTH = f"PYTHONPATH={workflow.basedir}/src python -m lth"
EXPERIMENTS = config["experiments"]


wildcard_constraints:
    exp="|".join(EXPERIMENTS) or "_none_",
    seed=r"\d+",
    r=r"[1-9]\d*",
    density=r"(0|1)(\.\d+)?",
    method=r"[A-Za-z0-9_]+",
    name=r"[a-z_]+",
    dataset=r"[a-z0-9_]+",
    structure=r"[a-z][a-z0-9_]*",


def library(*modules):
    """The lth source files a verb imports: a code change reruns what it affects."""
    return [f"{workflow.basedir}/src/lth/{m}.py" for m in ("__init__", "__main__", "cli", "commands", "io",
                                          "provenance", "seeding", *modules)]


TRAIN_CODE = library("data", "models", "masks", "pruning", "train", "report_cli")
PRUNE_CODE = library("data", "models", "masks", "pruning", "report_cli")


def exp(wildcards):
    return EXPERIMENTS[wildcards.exp]


def run_dir(e, seed, method, level):
    return f"results/{e}/seed{seed}/{method}/{level}"


def data_dir(dataset):
    return f"data/{dataset}"


def data_tensors(wildcards):
    return f"{data_dir(exp(wildcards)['dataset'])}/tensors.safetensors"


def fmt_density(d):
    """Level name of a one-shot density: 0.05 -> density0.05."""
    return f"density{float(d):g}"


def arg_list(values):
    return shlex.quote(",".join(str(v) for v in values))


def schedule_args(s):
    """Explicit `lth train` arguments of a schedule block of the config."""
    return (
        f"--optimizer {s['optimizer']} --lr {s['lr']} --momentum {s['momentum']} "
        f"--nesterov {s['nesterov']} --weight-decay {s['weight_decay']} "
        f"--batch-size {s['batch_size']} --iterations {s['iterations']} "
        f"--milestones {arg_list(s['milestones'])} --gamma {s['gamma']} --warmup {s['warmup']} "
        f"--eval-every {s['eval_every']} --eval-batch-size {s['eval_batch_size']} "
        f"--dropout {s['dropout']} --augment {s['augment']}"
    )


def filter_finetune_schedule(e):
    """Li et al. 2017: fine-tune the smaller network at a constant, small learning rate."""
    s = dict(e["train"])
    s.update(lr=e["filters"]["lr"], iterations=e["filters"]["iterations"], milestones=[],
             warmup=0)
    return s


def finetune_schedule(e):
    """Han et al. 2015: continue from the trained weights at a reduced learning rate."""
    s = dict(e["train"])
    s.update(lr=s["lr"] * e["finetune"]["lr_scale"], iterations=e["finetune"]["iterations"],
             milestones=[], warmup=0)
    return s


def imp_rates(e):
    i = e["imp"]
    return f"{i['rate_conv']},{i['rate_fc']},{i['rate_output']}"


def oneshot_methods(e):
    return e["oneshot"]["methods"] if e["oneshot"]["densities"] else {}


def run_levels(e):
    """(method, level) of every trained network of an experiment, as configured."""
    rounds = range(1, e["imp"]["rounds"] + 1)
    levels = [("imp", "round0")] + [("imp", f"round{r}") for r in rounds]
    if e["imp"]["oneshot"]:
        levels += [("imp_oneshot", f"round{r}") for r in rounds]
    levels += [(m, f"round{r}") for m in ("reinit", "random", "random_b")
               if e["controls"][m] for r in rounds]
    levels += [(m, fmt_density(d)) for m in oneshot_methods(e) for d in e["oneshot"]["densities"]]
    if e["finetune"]["enabled"]:
        levels += [("finetune", f"round{r}") for r in rounds]
    structures = e["filters"]["structures"]
    levels += [("filter_l1", s) for s in structures]
    if e["filters"]["scratch"]:
        levels += [("filter_scratch", s) for s in structures]
    return levels


def runs_of(e_name, filename="run.json"):
    e = EXPERIMENTS[e_name]
    return [f"{run_dir(e_name, s, m, lvl)}/{filename}" for s in e["seeds"] for m, lvl in run_levels(e)]


def report_targets():
    return [f"reports/{e}/report.{ext}" for e in EXPERIMENTS for ext in ("html", "pdf")]


def level_dir(method, level):
    """Output path pattern of a run directory; {r} and {density} stay wildcards."""
    return f"results/{{exp}}/seed{{seed}}/{method}/{level}"


def run_outputs(method, level, with_mask=False, with_rewind=False):
    d = level_dir(method, level)
    out = {"final": f"{d}/final.safetensors", "metrics": f"{d}/metrics.csv", "run": f"{d}/run.json"}
    if with_mask:
        out["mask"] = f"{d}/mask.safetensors"
    if with_rewind:
        out["rewind"] = f"{d}/rewind.safetensors"
    return out


def resolve(spec, wildcards):
    """A path of a rule (a pattern, or a function of the wildcards) for these wildcards."""
    return spec(wildcards) if callable(spec) else spec.format(**wildcards)


# Params functions take the wildcards only: Snakemake leaves params computed from `input` or
# `output` out of its params-changed rerun trigger, and every hyperparameter must be in it.
# They resolve file paths from the same specs the rule declares as input and output.


def train_args(files, outputs, method, family, level, schedule=lambda e: e["train"],
               extra=lambda w, e: "", mask=None):
    """A params function: every argument of one `lth train` call. mask: None (dense),
    "input" (a mask made by another job) or "output" (made by this job's prune step)."""

    def args(wildcards):
        e = exp(wildcards)
        mask_arg = ""
        if mask is not None:
            where = files if mask == "input" else outputs
            mask_arg = f"--mask {resolve(where['mask'], wildcards)}"
        return (
            f"train --experiment {wildcards.exp} --seed {wildcards.seed} "
            f"--method {method.format(**wildcards)} --family {family} "
            f"--level {level.format(**wildcards)} --init {resolve(files['init'], wildcards)} "
            f"{mask_arg} --data-root {data_dir(e['dataset'])} --val-size {e['val_size']} "
            f"{schedule_args(schedule(e))} --device {config['device']} "
            f"--out-dir {Path(resolve(outputs['run'], wildcards)).parent} {extra(wildcards, e)}"
        )

    return args


def prune_args(files, outputs, criterion, scope, how, purpose, iterations=lambda e, w: 1,
               data=False):
    """A params function: one `lth prune` call writing the rule's mask output, chained (`::`)
    before the training of the same run directory. how(e, w, path) gives the pruning amount;
    path(key) is the resolved input file `key`."""

    def args(wildcards):
        e = exp(wildcards)
        o = e["oneshot"]

        def path(key):
            return resolve(files[key], wildcards)

        start = f"--mask {path('start_mask')}" if "start_mask" in files else ""
        data_args = (
            f"--data-root {data_dir(e['dataset'])} --val-size {e['val_size']} "
            f"--score-batch-size {o['score_batch_size']} "
            f"--samples-per-class {o['samples_per_class']} "
            f"--grasp-temperature {o['grasp_temperature']}"
        ) if data else ""
        return (
            f"prune --experiment {wildcards.exp} --seed {wildcards.seed} "
            f"--weights {path('weights')} {start} --criterion {criterion(e, wildcards)} "
            f"--scope {scope(e, wildcards)} {how(e, wildcards, path)} "
            f"--purpose {purpose.format(**wildcards)} --iterations {iterations(e, wildcards)} "
            f"{data_args} --device {config['device']} "
            f"--out {resolve(outputs['mask'], wildcards)} ::"
        )

    return args


def prev_run(method, filename):
    """The previous round's file of an iterative method (round 0 is the dense IMP run)."""

    def path(wildcards):
        r = int(wildcards.r) - 1
        source = "imp" if r == 0 else method
        return f"{run_dir(wildcards.exp, wildcards.seed, source, f'round{r}')}/{filename}"

    return path


TRAIN_THREADS = lambda w: exp(w)["resources"]["threads"]
