# Elastic ticket transfer (Chen et al., NeurIPS 2021): the IMP tickets of a source experiment
# (its round-R masks and rewound weights) stretched or squeezed to this experiment's depth
# (`lth transfer-depth`), then trained like this experiment's own IMP tickets. One job per
# source round trains every strategy and seed; the random-mask control shuffles the masks
# of the copied blocks.

from lth.plan.families import elastic as elastic_plan  # noqa: E402  (torch-free)


def elastic_methods(e):
    x = e["elastic"]
    suffixes = [""] + (["_randmask"] if x["random_mask_control"] else [])
    return [f"elastic_{s}{suffix}" for s in x["strategies"] for suffix in suffixes]


def elastic_levels(e):
    return [f"round{r}" for r in e["elastic"]["rounds"]]


def elastic_steps(e_name, e, seed, r):
    """(transfer job, member) of every method of one seed at source round r."""
    source = e["elastic"]["source_experiment"]
    steps = []
    for method in elastic_methods(e):
        strategy = method.split("_")[1]
        out = run_dir(e_name, seed, method, f"round{r}")
        job = elastic_plan.TransferJob(
            experiment=e_name,
            seed=seed,
            source_weights=rewind_path(source, seed),
            source_mask=f"{run_dir(source, seed, 'imp', f'round{r}')}/mask.safetensors",
            target_model=e["model"],
            strategy=strategy,
            permute_copies=method.endswith("_randmask"),
            purpose=f"elastic/permute/round{r}",
            out_weights=f"{out}/start.safetensors",
            out_mask=f"{out}/mask.safetensors",
        )
        member = dict(
            method=method,
            family="control" if job.permute_copies else "elastic",
            level=f"round{r}",
            init=job.out_weights,
            mask=job.out_mask,
            start_iteration=rewind_start(e),
            counted_kinds=pruned_kinds(e),
        )
        steps.append((job, member))
    return steps


COHORT_RULES.append(
    CohortRule(
        name="elastic",
        methods=elastic_methods,
        level="round{r}",
        enabled=lambda e: e["elastic"]["source_experiment"] is not None
        and bool(e["elastic"]["rounds"]),
        members=lambda e_name, e, w, seed: [
            (m, None) for _, m in elastic_steps(e_name, e, seed, w.r)
        ],
        networks=lambda e: [(m, level) for m in elastic_methods(e) for level in elastic_levels(e)],
        constraints=lambda e: {"r": "|".join(map(str, e["elastic"]["rounds"]))},
        searches=lambda e_name, e, w: [
            ("transfer-depth", job)
            for s in e["seeds"]
            for job, _ in elastic_steps(e_name, e, s, w.r)
        ],
        extra_outputs=lambda e_name, e: [
            f"{run_dir(e_name, s, m, 'round{r}')}/start.safetensors"
            for s in e["seeds"]
            for m in elastic_methods(e)
        ],
        code=("methods.elastic",),
    )
)
