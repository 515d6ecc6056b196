# Lottery tickets: theta_0, the dense run (round 0), iterative magnitude pruning with reset
# to theta_0 or rewinding to theta_k, the one-shot variant, and Han et al.'s fine-tuning.


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


rule train_imp:
    input:
        init=lambda w: f"{run_dir(w.exp, w.seed, 'imp', 'round0')}/rewind.safetensors",
        mask=f"{level_dir('imp', 'round{r}')}/mask.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("imp", "round{r}"),
    params:
        args=train_args("imp", "lottery", "round{r}"),
    log:
        f"{level_dir('imp', 'round{r}')}/train.log",
    threads: TRAIN_THREADS
    resources:
        gpu=lambda w: exp(w)["resources"]["gpu"],
        mem_mb=lambda w: exp(w)["resources"]["mem_mb"],
        runtime=lambda w: exp(w)["resources"]["runtime"],
    shell:
        "{LTH} train {params.args} --threads {threads} 2>&1 | tee {log}"


use rule train_imp as dense with:
    input:
        init="results/{exp}/seed{seed}/init.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("imp", "round0", with_mask=True, with_rewind=True),
    params:
        args=train_args(
            "imp", "lottery", "round0",
            extra=lambda w, e: f"--save-at {e['imp']['rewind_iteration']}",
        ),
    log:
        f"{level_dir('imp', 'round0')}/train.log",


rule prune_imp:
    input:
        weights=prev_run("imp", "final.safetensors"),
        mask=prev_run("imp", "mask.safetensors"),
        code=PRUNE_CODE,
    output:
        mask=f"{level_dir('imp', 'round{r}')}/mask.safetensors",
    params:
        args=prune_args(
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, i: f"--rates {imp_rates(e)}",
            purpose="imp/round{r}",
        ),
    localrule: True
    shell:
        "{LTH} prune {params.args}"


use rule prune_imp as prune_imp_oneshot with:
    input:
        weights=lambda w: f"{run_dir(w.exp, w.seed, 'imp', 'round0')}/final.safetensors",
        reference=f"{level_dir('imp', 'round{r}')}/mask.safetensors",
        code=PRUNE_CODE,
    output:
        mask=f"{level_dir('imp_oneshot', 'round{r}')}/mask.safetensors",
    params:
        args=prune_args(
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, i: f"--match-counts {i.reference}",
            purpose="imp_oneshot/round{r}",
        ),


use rule train_imp as train_imp_oneshot with:
    input:
        init=lambda w: f"{run_dir(w.exp, w.seed, 'imp', 'round0')}/rewind.safetensors",
        mask=f"{level_dir('imp_oneshot', 'round{r}')}/mask.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("imp_oneshot", "round{r}"),
    params:
        args=train_args("imp_oneshot", "lottery", "round{r}"),
    log:
        f"{level_dir('imp_oneshot', 'round{r}')}/train.log",


use rule prune_imp as prune_finetune with:
    input:
        weights=prev_run("finetune", "final.safetensors"),
        mask=prev_run("finetune", "mask.safetensors"),
        code=PRUNE_CODE,
    output:
        mask=f"{level_dir('finetune', 'round{r}')}/mask.safetensors",
    params:
        args=prune_args(
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, i: f"--rates {imp_rates(e)}",
            purpose="finetune/round{r}",
        ),


use rule train_imp as train_finetune with:
    input:
        init=prev_run("finetune", "final.safetensors"),
        mask=f"{level_dir('finetune', 'round{r}')}/mask.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("finetune", "round{r}"),
    params:
        args=train_args("finetune", "baseline", "round{r}", schedule=finetune_schedule),
    log:
        f"{level_dir('finetune', 'round{r}')}/train.log",
