# Aggregation: tidy tables per experiment (summary.csv, layers.csv, curves.csv; similarity.csv
# and indegree.csv).


rule summarize:
    input:
        runs=lambda w: runs_of(w.exp),
        metrics=lambda w: runs_of(w.exp, "metrics.csv"),
        finals=lambda w: runs_of(w.exp, "final.safetensors"),
        code=library("analysis.summary", "analysis.cost", "analysis.dense", *REGISTRY),
    output:
        summary="results/{exp}/summary.csv",
        layers="results/{exp}/layers.csv",
        curves="results/{exp}/curves.csv",
    log:
        "results/{exp}/logs/summarize.log",
    localrule: True
    conda:
        "../../envs/lth.yaml"
    params:
        target=lambda w: EXPERIMENTS[w.exp]["cost"]["target_fraction"],
    shell:
        "python -m lth summarize --experiment {wildcards.exp} --out-dir results/{wildcards.exp} "
        "--target-fraction {params.target} {input.runs} 2>&1 | tee {log}"


rule similarity:
    input:
        summary="results/{exp}/summary.csv",
        masks=lambda w: runs_of(w.exp, "mask.safetensors"),
        code=library(
            "analysis.similarity", "analysis.summary", "analysis.cost", "analysis.dense", *REGISTRY
        ),
    output:
        similarity="results/{exp}/similarity.csv",
        indegree="results/{exp}/indegree.csv",  # written beside similarity.csv
    log:
        "results/{exp}/logs/similarity.log",
    localrule: True
    conda:
        "../../envs/lth.yaml"
    shell:
        "python -m lth similarity --experiment {wildcards.exp} --summary {input.summary} "
        "--out {output.similarity} {input.masks} 2>&1 | tee {log}"
