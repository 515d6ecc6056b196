# Controls of each IMP round's mask: random reinitialisation (Frankle & Carbin 2019, Fig. 4)
# and random structure with the same per-layer densities trained from scratch with the same
# budget (Scratch-E) and a FLOPs-matched budget (Scratch-B) (Liu et al. 2019).

IMP_MASK = f"{level_dir('imp', 'round{r}')}/mask.safetensors"
REINIT_IN = dict(init=INIT, mask=IMP_MASK, data=data_tensors, code=TRAIN_CODE)
REINIT_OUT = run_outputs("reinit", "round{r}", with_mask=True)


use rule dense as train_reinit with:
    input:
        **REINIT_IN,
    output:
        **REINIT_OUT,
    params:
        prune="",
        args=train_args(REINIT_IN, REINIT_OUT, "reinit", "control", "round{r}", mask="input",
                        extra=lambda w, e: f"--fresh-init reinit/round{w.r}"),
    log:
        f"{level_dir('reinit', 'round{r}')}/train.log",


RANDOM_IN = dict(weights=INIT, reference=IMP_MASK, init=INIT, data=data_tensors,
                 code=PRUNE_CODE + TRAIN_CODE)
RANDOM_OUT = run_outputs("random", "round{r}", with_mask=True)


use rule dense as train_random with:
    input:
        **RANDOM_IN,
    output:
        **RANDOM_OUT,
    params:
        prune=prune_args(
            RANDOM_IN, RANDOM_OUT,
            criterion=lambda e, w: "random",
            scope=lambda e, w: "layerwise",
            how=lambda e, w, path: f"--match-counts {path('reference')}",
            purpose="random/round{r}",
        ),
        args=train_args(RANDOM_IN, RANDOM_OUT, "random", "control", "round{r}", mask="output",
                        extra=lambda w, e: f"--fresh-init random/round{w.r}"),
    log:
        f"{level_dir('random', 'round{r}')}/train.log",


RANDOM_B_IN = dict(init=INIT, mask=RANDOM_OUT["mask"], data=data_tensors, code=TRAIN_CODE)
RANDOM_B_OUT = run_outputs("random_b", "round{r}", with_mask=True)


use rule dense as train_random_b with:
    input:
        **RANDOM_B_IN,
    output:
        **RANDOM_B_OUT,
    params:
        prune="",
        args=train_args(
            RANDOM_B_IN, RANDOM_B_OUT, "random_b", "control", "round{r}", mask="input",
            extra=lambda w, e: (f"--fresh-init random/round{w.r} "
                                f"--budget-cap {e['controls']['budget_cap']}"),
        ),
    log:
        f"{level_dir('random_b', 'round{r}')}/train.log",
