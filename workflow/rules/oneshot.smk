# Pruning at initialisation (one shot, before training), trained with the IMP schedule:
# magnitude, random, SNIP (Lee et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et
# al. 2020). Each configured method is a criterion, a scope and a number of iterations.


ONESHOT_IN = dict(weights=INIT, init=INIT, data=data_tensors, code=PRUNE_CODE + TRAIN_CODE)
ONESHOT_OUT = run_outputs("{method}", "density{density}", with_mask=True)


def oneshot_setting(key):
    return lambda e, w: e["oneshot"]["methods"][w.method][key]


use rule dense as train_oneshot with:
    input:
        **ONESHOT_IN,
    output:
        **ONESHOT_OUT,
    params:
        prune=prune_args(
            ONESHOT_IN, ONESHOT_OUT,
            criterion=oneshot_setting("criterion"),
            scope=oneshot_setting("scope"),
            how=lambda e, w, path: f"--density {w.density}",
            purpose="{method}/density{density}",
            iterations=oneshot_setting("iterations"),
            data=True,
        ),
        args=train_args(ONESHOT_IN, ONESHOT_OUT, "{method}", "at_init", "density{density}",
                        mask="output"),
    log:
        "results/{exp}/seed{seed}/{method}/density{density}/train.log",


# Structured pruning (Li et al. 2017): a physically smaller VGG, fine-tuned, and the same
# architecture trained from scratch (Liu et al. 2019).

PRUNED = "results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors"


rule filter_prune:
    input:
        weights=DENSE_FINAL,
        code=library("models", "masks", "filters"),
    output:
        PRUNED,
    params:
        fractions=lambda w: ",".join(
            f"{conv}={f}" for conv, f in exp(w)["filters"]["structures"][w.structure].items()),
        latency=lambda w: (f"--latency-batch-size {exp(w)['filters']['latency_batch_size']} "
                           f"--latency-repeats {exp(w)['filters']['latency_repeats']}"),
    resources:
        gpu=lambda w: exp(w)["resources"]["gpu"],
    shell:
        "{LTH} filter-prune --experiment {wildcards.exp} --seed {wildcards.seed} "
        "--weights {input.weights} --fractions {params.fractions} {params.latency} "
        "--device " + config["device"] + " --out {output}"


FILTER_IN = dict(init=PRUNED, data=data_tensors, code=TRAIN_CODE)
FILTER_L1_OUT = run_outputs("filter_l1", "{structure}", with_mask=True)
FILTER_SCRATCH_OUT = run_outputs("filter_scratch", "{structure}", with_mask=True)


use rule dense as train_filter_l1 with:
    input:
        **FILTER_IN,
    output:
        **FILTER_L1_OUT,
    params:
        prune="",
        args=train_args(FILTER_IN, FILTER_L1_OUT, "filter_l1", "baseline", "{structure}",
                        schedule=filter_finetune_schedule),
    log:
        "results/{exp}/seed{seed}/filter_l1/{structure}/train.log",


use rule dense as train_filter_scratch with:
    input:
        **FILTER_IN,
    output:
        **FILTER_SCRATCH_OUT,
    params:
        prune="",
        args=train_args(FILTER_IN, FILTER_SCRATCH_OUT, "filter_scratch", "baseline",
                        "{structure}",
                        extra=lambda w, e: f"--fresh-init filter_scratch/{w.structure}"),
    log:
        "results/{exp}/seed{seed}/filter_scratch/{structure}/train.log",
