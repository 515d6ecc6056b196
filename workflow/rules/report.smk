# Figures (PDF for LaTeX, PNG for HTML) and the reports; what they draw is in figures.smk.
# Captions for `snakemake --report` live next to this file in workflow/report/.

for _e_name in EXPERIMENTS:

    rule:
        name:
            f"figures_{_e_name}".replace("-", "_")
        input:
            **{t: f"results/{_e_name}/{t}.csv" for t in TABLE_NAMES},
            code=library(*FIGURE_MODULES),
        output:
            figure_outputs(_e_name, "pdf") + figure_outputs(_e_name, "png"),
        log:
            f"results/{_e_name}/logs/figures.log",
        localrule: True
        conda:
            "../../envs/lth.yaml"
        params:
            verbs=figure_command(_e_name),
        shell:
            "python -m lth {params.verbs} 2>&1 | tee {log}"


rule report_html:
    input:
        **TABLES,
        figures=figure_pdfs,
        code=library(*REPORT_MODULES),
        templates=REPORT_TEMPLATES,
    output:
        html=report(
            "reports/{exp}/report.html",
            caption="../report/report.rst",
            category="{exp}",
            labels={"figure": "report", "format": "html"},
        ),
        tex="reports/{exp}/report.tex",
        provenance="reports/{exp}/provenance.json",
        scorecard="reports/{exp}/scorecard.csv",
        findings="reports/{exp}/findings.csv",
    log:
        "results/{exp}/logs/report_html.log",
    localrule: True
    conda:
        "../../envs/lth.yaml"
    params:
        style=FIGURE_STYLE,
        settings=report_settings,
        tables=lambda w: table_args(w.exp),
    shell:
        "python -m lth report --experiment {wildcards.exp} {params.tables} "
        "--style {params.style} --settings {params.settings} --figures {input.figures} "
        "--out-dir reports/{wildcards.exp} 2>&1 | tee {log}"


rule report_pdf:
    input:
        tex="reports/{exp}/report.tex",
        figures=figure_pdfs,
        code=library(*PDF_MODULES),
    output:
        report(
            "reports/{exp}/report.pdf",
            caption="../report/report.rst",
            category="{exp}",
            labels={"figure": "report", "format": "pdf"},
        ),
    log:
        "results/{exp}/logs/report_pdf.log",
    localrule: True
    conda:
        "../../envs/lth.yaml"
    shell:
        "python -m lth pdf --tex {input.tex} 2>&1 | tee {log}"
