# Figures (PDF for LaTeX, PNG for HTML) and the reports. Captions for `snakemake --report`
# live next to this file in workflow/report/.
import glob
import json

FIGURES_ALWAYS = ["accuracy_vs_density", "early_stop_vs_density", "learning_curves",
                  "generalization_gap", "layer_density"]
FIGURES_COMPARISON = ["all_methods", "layer_collapse", "density_profiles"]


def figures_of(e):
    """The figures an experiment has data for (the comparison needs more than IMP)."""
    compared = oneshot_methods(e) or e["finetune"]["enabled"] or e["filters"]["structures"]
    return FIGURES_ALWAYS + (FIGURES_COMPARISON if compared else [])


def figure_pdfs(wildcards):
    return [f"reports/{wildcards.exp}/figures/{n}.pdf" for n in figures_of(EXPERIMENTS[wildcards.exp])]


def report_settings(wildcards):
    """What captions name: the experiment's settings that matter, as JSON."""
    e = EXPERIMENTS[wildcards.exp]
    t, i = e["train"], e["imp"]
    rates = (f"{i['scope']}; conv {i['rate_conv']}, fc {i['rate_fc']}, "
             f"output {i['rate_output']} per round; rewind to iteration {i['rewind_iteration']}")
    schedule = (f"{t['optimizer']} lr {t['lr']}, batch {t['batch_size']}, "
                f"{t['iterations']} iterations")
    settings = {"model": e["model"], "dataset": e["dataset"], "schedule": schedule,
                "pruning_rate": rates, "seeds": ", ".join(map(str, e["seeds"])),
                "description": e["description"].strip()}
    return shlex.quote(json.dumps(settings, sort_keys=True))


FIGURE_STYLE = shlex.quote(json.dumps(config["figures"], sort_keys=True))
TABLES = {t: f"results/{{exp}}/{t}.csv" for t in ("summary", "layers", "curves")}


def figure_command(e_name):
    """Params function: every figure of the experiment drawn in one process (`::` chain)."""
    tables = " ".join(f"--{t} results/{e_name}/{t}.csv" for t in ("summary", "layers", "curves"))

    def command(wildcards):
        return " :: ".join(
            f"figure --experiment {e_name} --name {name} {tables} --style {FIGURE_STYLE} "
            f"--settings {report_settings(SimpleNamespace(exp=e_name))} "
            f"--out-dir reports/{e_name}/figures"
            for name in figures_of(EXPERIMENTS[e_name]))

    return command


def figure_outputs(e_name, ext):
    return [report(f"reports/{e_name}/figures/{name}.{ext}", caption="../report/figure.rst",
                   category=e_name, labels={"figure": name, "format": ext})
            for name in figures_of(EXPERIMENTS[e_name])]


for _e_name in EXPERIMENTS:

    rule:
        name:
            f"figures_{_e_name}".replace("-", "_")
        input:
            **{t: f"results/{_e_name}/{t}.csv" for t in ("summary", "layers", "curves")},
            code=library("report", "report_cli"),
        output:
            figure_outputs(_e_name, "pdf") + figure_outputs(_e_name, "png"),
        params:
            verbs=figure_command(_e_name),
        localrule: True
        shell:
            "{LTH} {params.verbs}"


rule report_html:
    input:
        **TABLES,
        figures=figure_pdfs,
        code=library("report", "report_cli"),
        templates=glob.glob(f"{workflow.basedir}/reports/templates/*.j2"),
    output:
        html=report("reports/{exp}/report.html", caption="../report/report.rst",
                    category="{exp}", labels={"figure": "report", "format": "html"}),
        tex="reports/{exp}/report.tex",
        provenance="reports/{exp}/provenance.json",
    params:
        style=FIGURE_STYLE,
        settings=report_settings,
    localrule: True
    shell:
        "{LTH} report --experiment {wildcards.exp} --summary {input.summary} "
        "--layers {input.layers} --curves {input.curves} --style {params.style} "
        "--settings {params.settings} --figures {input.figures} --out-dir reports/{wildcards.exp}"


rule report_pdf:
    input:
        tex="reports/{exp}/report.tex",
        figures=figure_pdfs,
        code=library("report", "report_cli"),
    output:
        report("reports/{exp}/report.pdf", caption="../report/report.rst", category="{exp}",
               labels={"figure": "report", "format": "pdf"}),
    localrule: True
    shell:
        "{LTH} pdf --tex {input.tex}"
