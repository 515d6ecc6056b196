# Pruning at initialisation (one shot, before training), trained with the IMP schedule:
# magnitude, random, SNIP (Lee et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et
# al. 2020). Each configured method is a criterion, a scope and a number of iterations; one
# job per method trains its every density and seed as one cohort, so a method's setting
# reruns only that method.


def oneshot_members(e_name, e, w, seed):
    method = e["oneshot"]["methods"][w.method]
    members = []
    for d in e["oneshot"]["densities"]:
        level = fmt_density(d)
        how = dict(weights=init_path(e_name, seed), criterion=method["criterion"],
                   scope=method["scope"], density=float(d), purpose=f"{w.method}/{level}",
                   iterations=method["iterations"])
        members.append((dict(method=w.method, family="at_init", level=level,
                             init=init_path(e_name, seed)), how))
    return members


COHORT_KINDS.append(
    CohortKind("oneshot", lambda e: ["{method}"], "", lambda e: bool(oneshot_methods(e)),
               oneshot_members,
               levels=lambda e: [fmt_density(d) for d in e["oneshot"]["densities"]],
               constraints=lambda e: {"method": "|".join(oneshot_methods(e))},
               log_tag="{method}"),
)


# Structured pruning (Li et al. 2017): a physically smaller VGG, fine-tuned, and the same
# architecture trained from scratch (Liu et al. 2019).

PRUNED = "results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors"


rule filter_prune:
    input:
        weights="results/{exp}/seed{seed}/imp/round0/final.safetensors",
        code=library("models", "masks", "filters"),
    output:
        PRUNED,
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
    resources:
        gpu=lambda w: EXPERIMENTS[w.exp]["resources"]["gpu"],
    shell:
        "{LTH} filter-prune --experiment {wildcards.exp} --seed {wildcards.seed} "
        "--weights {input.weights} --fractions {params.fractions} {params.latency} "
        "--device {params.device} --out {output}"


def filter_members(method, fresh):
    def members(e_name, e, w, seed):
        pruned = PRUNED.format(exp=e_name, seed=seed, structure=w.structure)
        fresh_init = f"filter_scratch/{w.structure}" if fresh else None
        return [(dict(method=method, family="baseline", level=w.structure, init=pruned,
                      fresh_init=fresh_init), None)]

    return members


COHORT_KINDS += [
    CohortKind("filter_l1", lambda e: ["filter_l1"], "{structure}",
               lambda e: bool(e["filters"]["structures"]), filter_members("filter_l1", False),
               schedule=filter_finetune_schedule,
               constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])}),
    CohortKind("filter_scratch", lambda e: ["filter_scratch"], "{structure}",
               lambda e: bool(e["filters"]["structures"]) and e["filters"]["scratch"],
               filter_members("filter_scratch", True),
               constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])}),
]
