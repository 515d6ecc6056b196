# The rules that make networks. One rule per (experiment, cohort rule): a job trains the
# rule's whole cohort in one process (`lth init/prune ... :: train --job <cohort>`), writing
# every network's own files. The cohort of a job is a pure function of the config, so reruns
# are byte-identical.

for _e_name, _e in EXPERIMENTS.items():
    for _cohort in COHORT_RULES:
        if not _cohort.enabled(_e):
            continue

        rule:
            name:
                f"{_cohort.name}_{_e_name}".replace("-", "_")
            input:
                unpack(cohort_inputs(_cohort, _e_name)),
            output:
                _cohort.outputs(_e_name, _e),
            log:
                f"results/{_e_name}/logs/{_cohort.name}/{_cohort.log_tag or _cohort.level}.log",
            wildcard_constraints:
                **_cohort.constraints(_e),
            priority: _cohort.priority
            conda:
                "../../envs/lth.yaml"
            threads: cohort_threads(_cohort, _e_name)
            resources:
                gpu=_e["resources"]["gpu"],
                mem_mb=_e["resources"]["mem_mb"],
                runtime=_e["resources"]["runtime"],
            params:
                verbs=cohort_command(_cohort, _e_name),
            shell:
                "python -m lth {params.verbs} --threads {threads} 2>&1 | tee {log}"


# Filter pruning's cut (lth.plan.families.filters): a smaller dense VGG from the dense run.
from lth.plan.families import filters as filters_plan  # noqa: E402  (torch-free)


rule filter_prune:
    input:
        weights="results/{exp}/seed{seed}/imp/round0/final.safetensors",
        code=library(
            "plan.catalog", "core.masks", "core.models", "core.networks", "methods.filters"
        ),
    output:
        filters_plan.PRUNED,
    log:
        "results/{exp}/logs/filter_prune/{structure}/seed{seed}.log",
    conda:
        "../../envs/lth.yaml"
    resources:
        gpu=lambda w: EXPERIMENTS[w.exp]["resources"]["gpu"],
    params:
        fractions=lambda w: ",".join(
            f"{conv}={f}"
            for conv, f in EXPERIMENTS[w.exp]["filters"]["structures"][w.structure].items()
        ),
        latency=lambda w: (
            f"--latency-batch-size {EXPERIMENTS[w.exp]['filters']['latency_batch_size']} "
            f"--latency-repeats {EXPERIMENTS[w.exp]['filters']['latency_repeats']}"
        ),
        device=config["device"],
    shell:
        "python -m lth filter-prune --experiment {wildcards.exp} --seed {wildcards.seed} "
        "--weights {input.weights} --fractions {params.fractions} {params.latency} "
        "--device {params.device} --out {output} 2>&1 | tee {log}"
