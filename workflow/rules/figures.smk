# What the figure and report jobs (report.smk) draw and are told: each experiment's figures,
# the settings their captions name, and the figure verbs of one experiment's figures job.
import glob
import json
from types import SimpleNamespace

from lth.plan.families import at_init as at_init_plan  # noqa: E402  (torch-free)

FIGURES_ALWAYS = [
    "accuracy_vs_density",
    "early_stop_vs_density",
    "learning_curves",
    "generalization_gap",
    "layer_density",
    "cost_vs_accuracy",
    "iterations_to_target",
]
FIGURES_COMPARISON = [
    "all_methods",
    "layer_collapse",
    "density_profiles",
    "mask_overlap_heatmap",
    "mask_overlap_layers",
    "input_degree_maps",
    "score_rank_correlation",
]
REPORT_TEMPLATES = [
    checkout_path(t)
    for t in sorted(glob.glob("src/lth/report/templates/*.j2", root_dir=workflow.basedir))
]
# The lth.report modules each report verb imports (figure, report, pdf), for library().
FIGURE_MODULES = [
    "verbs.report",
    "analysis.cost",
    "analysis.dense",
    "analysis.findings",
    "plan.registry",
    "plan.spec",
] + [
    f"report.{m}"
    for m in (
        "tables",
        "style",
        "plotting",
        "overlap_figures",
        "layer_figures",
        "cost_figures",
        "figures",
        "figure_files",
    )
]
REPORT_MODULES = (
    FIGURE_MODULES
    + ["analysis.summary"]
    + [f"report.{m}" for m in ("claims", "evidence", "scorecard", "html", "latex", "render")]
)
PDF_MODULES = ["verbs.report", "report.latex"]


def compared_methods(e):
    """The methods of an experiment beyond IMP and the controls on its masks (the methods
    of lth.plan's imp family)."""
    return {m for m, _ in jobs.run_levels(e) if registry.family_of(m) != "imp"}


def figures_of(e):
    """The figures an experiment has data for (the comparison needs more than IMP)."""
    return FIGURES_ALWAYS + (FIGURES_COMPARISON if compared_methods(e) else [])


def figure_pdfs(wildcards):
    return [
        f"reports/{wildcards.exp}/figures/{n}.pdf" for n in figures_of(EXPERIMENTS[wildcards.exp])
    ]


def scoring_settings(e):
    """The scoring settings of the configured data-driven criteria, in words ("" if none)."""
    criteria = {m["criterion"] for m in at_init_plan.configured_methods(e).values()}
    return "; ".join(
        f"{c}: " + ", ".join(f"{key} {e['at_init'][key]}" for key in spec.SCORING_SETTINGS[c])
        for c in sorted(criteria & set(spec.SCORING_SETTINGS))
    )


def report_settings(wildcards):
    """What captions name: the experiment's settings that matter, as JSON."""
    e = EXPERIMENTS[wildcards.exp]
    t, i = e["train"], e["imp"]
    rates = (
        f"{i['scope']}; conv {i['rate_conv']}, fc {i['rate_fc']}, output {i['rate_output']}, "
        f"shortcut {i['rate_shortcut']} per round; rewind to iteration {i['rewind_iteration']}"
    )
    if i["rewind_iteration"] > 0:
        rates += (
            "; rewound runs train k..T, schedule continuing"
            if i["rewind_schedule"] == "continue"
            else "; rewound runs train T iterations, schedule restarted"
        )
    schedule = (
        "{optimizer} lr {lr}, batch {batch_size}, {iterations} iterations, {init} init".format(**t)
    )
    settings = {
        "model": e["model"],
        "dataset": e["dataset"],
        "schedule": schedule,
        "pruning_rate": rates,
        "seeds": ", ".join(map(str, e["seeds"])),
        "description": e["description"].strip(),
    }
    if scoring_settings(e):
        settings["scoring"] = scoring_settings(e)
    return shlex.quote(json.dumps(settings, sort_keys=True))


FIGURE_STYLE = shlex.quote(json.dumps(config["figures"], sort_keys=True))
# The experiment's tables the figures read: summarize's and the similarity verb's.
TABLE_NAMES = ("summary", "layers", "curves", "similarity", "indegree")
TABLES = {t: f"results/{{exp}}/{t}.csv" for t in TABLE_NAMES}


def table_args(e_name):
    """--<table> <path> of every table, for the figure and report verbs."""
    return " ".join(f"--{t} results/{e_name}/{t}.csv" for t in TABLE_NAMES)


def figure_command(e_name):
    """Params function: every figure of the experiment drawn in one process (`::` chain)."""
    tables = table_args(e_name)

    def command(wildcards):
        return " :: ".join(
            f"figure --experiment {e_name} --name {name} {tables} --style {FIGURE_STYLE} "
            f"--settings {report_settings(SimpleNamespace(exp=e_name))} "
            f"--out-dir reports/{e_name}/figures"
            for name in figures_of(EXPERIMENTS[e_name])
        )

    return command


def figure_output(e_name, name, ext):
    """One figure file, shown by `snakemake --report` in the experiment's category."""
    labels = {"figure": name, "format": ext}
    path = f"reports/{e_name}/figures/{name}.{ext}"
    return report(path, caption="../report/figure.rst", category=e_name, labels=labels)


def figure_outputs(e_name, ext):
    return [figure_output(e_name, name, ext) for name in figures_of(EXPERIMENTS[e_name])]
