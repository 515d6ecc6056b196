# Structured pruning (Li et al. 2017): a physically smaller VGG, fine-tuned, and the same
# architecture trained from scratch (Liu et al. 2019). Both train from the smaller network
# that the filter_prune rule (training.smk) cuts out of the dense run.

PRUNED = "results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors"


def filter_members(method, fresh):
    def members(e_name, e, w, seed):
        pruned = PRUNED.format(exp=e_name, seed=seed, structure=w.structure)
        fresh_init = f"filter_scratch/{w.structure}" if fresh else None
        member = dict(
            method=method, family="baseline", level=w.structure, init=pruned, fresh_init=fresh_init
        )
        return [(member, None)]

    return members


COHORT_KINDS += [
    CohortKind(
        "filter_l1",
        lambda e: ["filter_l1"],
        "{structure}",
        lambda e: bool(e["filters"]["structures"]),
        filter_members("filter_l1", False),
        schedule=filter_finetune_schedule,
        constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])},
    ),
    CohortKind(
        "filter_scratch",
        lambda e: ["filter_scratch"],
        "{structure}",
        lambda e: bool(e["filters"]["structures"]) and e["filters"]["scratch"],
        filter_members("filter_scratch", True),
        constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])},
    ),
]
