# Lottery tickets: theta_0, the dense run (round 0), iterative magnitude pruning with reset
# to theta_0 or rewinding to theta_k, the one-shot variant, and Han et al.'s fine-tuning.
# A job that makes a mask prunes and trains in one process (`lth prune ... :: train ...`).
# Each rule's files are declared once (*_IN, *_OUT) and shared by its params.

INIT = "results/{exp}/seed{seed}/init.safetensors"
REWIND = "results/{exp}/seed{seed}/imp/round0/rewind.safetensors"
DENSE_FINAL = "results/{exp}/seed{seed}/imp/round0/final.safetensors"


rule init:
    output:
        INIT,
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


DENSE_IN = dict(init=INIT, data=data_tensors, code=TRAIN_CODE)
DENSE_OUT = run_outputs("imp", "round0", with_mask=True, with_rewind=True)


rule dense:
    input:
        **DENSE_IN,
    output:
        **DENSE_OUT,
    params:
        prune="",
        args=train_args(
            DENSE_IN, DENSE_OUT, "imp", "lottery", "round0",
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


IMP_IN = dict(weights=prev_run("imp", "final.safetensors"),
              start_mask=prev_run("imp", "mask.safetensors"), init=REWIND, data=data_tensors,
              code=PRUNE_CODE + TRAIN_CODE)
IMP_OUT = run_outputs("imp", "round{r}", with_mask=True)


use rule dense as train_imp with:
    input:
        **IMP_IN,
    output:
        **IMP_OUT,
    params:
        prune=prune_args(
            IMP_IN, IMP_OUT,
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, path: f"--rates {imp_rates(e)}",
            purpose="imp/round{r}",
        ),
        args=train_args(IMP_IN, IMP_OUT, "imp", "lottery", "round{r}", mask="output"),
    log:
        f"{level_dir('imp', 'round{r}')}/train.log",


ONESHOT_IMP_IN = dict(weights=DENSE_FINAL, reference=f"{level_dir('imp', 'round{r}')}/mask.safetensors",
                      init=REWIND, data=data_tensors, code=PRUNE_CODE + TRAIN_CODE)
ONESHOT_IMP_OUT = run_outputs("imp_oneshot", "round{r}", with_mask=True)


use rule dense as train_imp_oneshot with:
    input:
        **ONESHOT_IMP_IN,
    output:
        **ONESHOT_IMP_OUT,
    params:
        prune=prune_args(
            ONESHOT_IMP_IN, ONESHOT_IMP_OUT,
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, path: f"--match-counts {path('reference')}",
            purpose="imp_oneshot/round{r}",
        ),
        args=train_args(ONESHOT_IMP_IN, ONESHOT_IMP_OUT, "imp_oneshot", "lottery", "round{r}",
                        mask="output"),
    log:
        f"{level_dir('imp_oneshot', 'round{r}')}/train.log",


FINETUNE_IN = dict(weights=prev_run("finetune", "final.safetensors"),
                   start_mask=prev_run("finetune", "mask.safetensors"),
                   init=prev_run("finetune", "final.safetensors"), data=data_tensors,
                   code=PRUNE_CODE + TRAIN_CODE)
FINETUNE_OUT = run_outputs("finetune", "round{r}", with_mask=True)


use rule dense as train_finetune with:
    input:
        **FINETUNE_IN,
    output:
        **FINETUNE_OUT,
    params:
        prune=prune_args(
            FINETUNE_IN, FINETUNE_OUT,
            criterion=lambda e, w: "magnitude",
            scope=lambda e, w: e["imp"]["scope"],
            how=lambda e, w, path: f"--rates {imp_rates(e)}",
            purpose="finetune/round{r}",
        ),
        args=train_args(FINETUNE_IN, FINETUNE_OUT, "finetune", "baseline", "round{r}",
                        schedule=finetune_schedule, mask="output"),
    log:
        f"{level_dir('finetune', 'round{r}')}/train.log",
