# Lottery tickets: theta_0, the dense run (round 0), iterative magnitude pruning with reset
# to theta_0 or rewinding to theta_k, the one-shot variant, and Han et al.'s fine-tuning.
# A job that makes a mask prunes and trains in one process (`lth prune ... :: train ...`).


rule init:
    output:
        "results/{exp}/seed{seed}/init.safetensors",
    input:
        manifest=lambda w: f"{data_dir(exp(w)['dataset'])}/manifest.json",
        tensors=data_tensors,
        code=library("data", "models"),
    params:
        model=lambda w: exp(w)["model"],
        data_root=lambda w: data_dir(exp(w)["dataset"]),
    shell:
        "{LTH} init --experiment {wildcards.exp} --seed {wildcards.seed} "
        "--model {params.model} --data-root {params.data_root} --out {output}"


rule dense:
    input:
        init="results/{exp}/seed{seed}/init.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("imp", "round0", with_mask=True, with_rewind=True),
    params:
        prune="",
        args=train_args(
            "imp", "lottery", "round0",
            extra=lambda w, e: f"--save-at {e['imp']['rewind_iteration']}",
        ),
    log:
        f"{level_dir('imp', 'round0')}/train.log",
    threads: TRAIN_THREADS
    resources:
        gpu=lambda w: exp(w)["resources"]["gpu"],
        mem_mb=lambda w: exp(w)["resources"]["mem_mb"],
        runtime=lambda w: exp(w)["resources"]["runtime"],
    shell:
        "{LTH} {params.prune} {params.args} --threads {threads} 2>&1 | tee {log}"


use rule dense as train_imp with:
    input:
        weights=prev_run("imp", "final.safetensors"),
        start_mask=prev_run("imp", "mask.safetensors"),
        init=lambda w: f"{run_dir(w.exp, w.seed, 'imp', 'round0')}/rewind.safetensors",
        data=data_tensors,
        code=PRUNE_CODE + TRAIN_CODE,
    output:
        **run_outputs("imp", "round{r}", with_mask=True),
    params:
        prune=prune_args(
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, i: f"--rates {imp_rates(e)}",
            purpose="imp/round{r}",
        ),
        args=train_args("imp", "lottery", "round{r}", mask="output"),
    log:
        f"{level_dir('imp', 'round{r}')}/train.log",


use rule dense as train_imp_oneshot with:
    input:
        weights=lambda w: f"{run_dir(w.exp, w.seed, 'imp', 'round0')}/final.safetensors",
        reference=f"{level_dir('imp', 'round{r}')}/mask.safetensors",
        init=lambda w: f"{run_dir(w.exp, w.seed, 'imp', 'round0')}/rewind.safetensors",
        data=data_tensors,
        code=PRUNE_CODE + TRAIN_CODE,
    output:
        **run_outputs("imp_oneshot", "round{r}", with_mask=True),
    params:
        prune=prune_args(
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, i: f"--match-counts {i.reference}",
            purpose="imp_oneshot/round{r}",
        ),
        args=train_args("imp_oneshot", "lottery", "round{r}", mask="output"),
    log:
        f"{level_dir('imp_oneshot', 'round{r}')}/train.log",


use rule dense as train_finetune with:
    input:
        weights=prev_run("finetune", "final.safetensors"),
        start_mask=prev_run("finetune", "mask.safetensors"),
        init=prev_run("finetune", "final.safetensors"),
        data=data_tensors,
        code=PRUNE_CODE + TRAIN_CODE,
    output:
        **run_outputs("finetune", "round{r}", with_mask=True),
    params:
        prune=prune_args(
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, i: f"--rates {imp_rates(e)}",
            purpose="finetune/round{r}",
        ),
        args=train_args("finetune", "baseline", "round{r}", schedule=finetune_schedule,
                        mask="output"),
    log:
        f"{level_dir('finetune', 'round{r}')}/train.log",
