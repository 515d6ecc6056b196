# Pruning at initialisation (one shot, before training), trained with the IMP schedule:
# magnitude, random, SNIP (Lee et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et
# al. 2020). Each configured method is a criterion, a scope and a number of iterations.


use rule prune_imp as prune_oneshot with:
    input:
        weights="results/{exp}/seed{seed}/init.safetensors",
        data=data_tensors,
        code=PRUNE_CODE,
    output:
        mask="results/{exp}/seed{seed}/{method}/density{density}/mask.safetensors",
    params:
        args=prune_args(
            criterion=lambda e, w: e["oneshot"]["methods"][w.method]["criterion"],
            scope=lambda e, w: e["oneshot"]["methods"][w.method]["scope"],
            how=lambda e, w, i: f"--density {w.density}",
            purpose="{method}/density{density}",
            iterations=lambda e, w: e["oneshot"]["methods"][w.method]["iterations"],
            data=True,
        ),
    localrule: False


use rule train_imp as train_oneshot with:
    input:
        init="results/{exp}/seed{seed}/init.safetensors",
        mask="results/{exp}/seed{seed}/{method}/density{density}/mask.safetensors",
        data=data_tensors,
        code=TRAIN_CODE,
    output:
        **run_outputs("{method}", "density{density}"),
    params:
        args=train_args("{method}", "at_init", "density{density}"),
    log:
        "results/{exp}/seed{seed}/{method}/density{density}/train.log",
