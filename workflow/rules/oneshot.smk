# Pruning at initialisation (one shot, before training), trained with the IMP schedule:
# magnitude, random, SNIP (Lee et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et
# al. 2020). Each configured method is a criterion, a scope and a number of iterations.


use rule dense as train_oneshot with:
    input:
        weights="results/{exp}/seed{seed}/init.safetensors",
        init="results/{exp}/seed{seed}/init.safetensors",
        data=data_tensors,
        code=PRUNE_CODE + TRAIN_CODE,
    output:
        **run_outputs("{method}", "density{density}", with_mask=True),
    params:
        prune=prune_args(
            criterion=lambda e, w: e["oneshot"]["methods"][w.method]["criterion"],
            scope=lambda e, w: e["oneshot"]["methods"][w.method]["scope"],
            how=lambda e, w, i: f"--density {w.density}",
            purpose="{method}/density{density}",
            iterations=lambda e, w: e["oneshot"]["methods"][w.method]["iterations"],
            data=True,
        ),
        args=train_args("{method}", "at_init", "density{density}", mask="output"),
    log:
        "results/{exp}/seed{seed}/{method}/density{density}/train.log",


# Structured pruning (Li et al. 2017): a physically smaller VGG, fine-tuned, and the same
# architecture trained from scratch (Liu et al. 2019).


rule filter_prune:
    input:
        weights=lambda w: f"{run_dir(w.exp, w.seed, 'imp', 'round0')}/final.safetensors",
        code=library("models", "masks", "filters"),
    output:
        "results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors",
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


use rule dense as train_filter_l1 with:
    input:
        init="results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("filter_l1", "{structure}", with_mask=True),
    params:
        prune="",
        args=train_args("filter_l1", "baseline", "{structure}",
                        schedule=filter_finetune_schedule),
    log:
        "results/{exp}/seed{seed}/filter_l1/{structure}/train.log",


use rule dense as train_filter_scratch with:
    input:
        init="results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("filter_scratch", "{structure}", with_mask=True),
    params:
        prune="",
        args=train_args("filter_scratch", "baseline", "{structure}",
                        extra=lambda w, e: f"--fresh-init filter_scratch/{w.structure}"),
    log:
        "results/{exp}/seed{seed}/filter_l1/{structure}/scratch.log",
