# Controls of each IMP round's mask: random reinitialisation (Frankle & Carbin 2019, Fig. 4)
# and random structure with the same per-layer densities trained from scratch with the same
# budget (Scratch-E) and a FLOPs-matched budget (Scratch-B) (Liu et al. 2019).


use rule dense as train_reinit with:
    input:
        init="results/{exp}/seed{seed}/init.safetensors",
        mask=f"{level_dir('imp', 'round{r}')}/mask.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("reinit", "round{r}", with_mask=True),
    params:
        prune="",
        args=train_args("reinit", "control", "round{r}", mask="input",
                        extra=lambda w, e: f"--fresh-init reinit/round{w.r}"),
    log:
        f"{level_dir('reinit', 'round{r}')}/train.log",


use rule dense as train_random with:
    input:
        weights="results/{exp}/seed{seed}/init.safetensors",
        reference=f"{level_dir('imp', 'round{r}')}/mask.safetensors",
        init="results/{exp}/seed{seed}/init.safetensors",
        data=data_tensors,
        code=PRUNE_CODE + TRAIN_CODE,
    output:
        **run_outputs("random", "round{r}", with_mask=True),
    params:
        prune=prune_args(
            criterion=lambda e, w: "random",
            scope=lambda e, w: "layerwise",
            how=lambda e, w, i: f"--match-counts {i.reference}",
            purpose="random/round{r}",
        ),
        args=train_args("random", "control", "round{r}", mask="output",
                        extra=lambda w, e: f"--fresh-init random/round{w.r}"),
    log:
        f"{level_dir('random', 'round{r}')}/train.log",


use rule dense as train_random_b with:
    input:
        init="results/{exp}/seed{seed}/init.safetensors",
        mask=f"{level_dir('random', 'round{r}')}/mask.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("random_b", "round{r}", with_mask=True),
    params:
        prune="",
        args=train_args(
            "random_b", "control", "round{r}", mask="input",
            extra=lambda w, e: (f"--fresh-init random/round{w.r} "
                                f"--budget-cap {e['controls']['budget_cap']}"),
        ),
    log:
        f"{level_dir('random_b', 'round{r}')}/train.log",
