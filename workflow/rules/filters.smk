# Structured pruning (Li et al. 2017): a physically smaller VGG, fine-tuned, and the same
# architecture trained from scratch (Liu et al. 2019). Both train from the smaller network
# that filter_prune (in training.smk, as snakemake --lint keeps rules and functions apart)
# cuts out of the dense run.

PRUNED = "results/{exp}/seed{seed}/filter_l1/{structure}/pruned.safetensors"


def filter_finetune_schedule(e):
    """Li et al. 2017: fine-tune the smaller network at a constant, small learning rate."""
    s = dict(e["train"])
    s.update(lr=e["filters"]["lr"], iterations=e["filters"]["iterations"], milestones=[], warmup=0)
    return s


def filter_members(method, fresh):
    def members(e_name, e, w, seed):
        pruned = PRUNED.format(exp=e_name, seed=seed, structure=w.structure)
        fresh_init = f"filter_scratch/{w.structure}" if fresh else None
        member = dict(
            method=method, family="baseline", level=w.structure, init=pruned, fresh_init=fresh_init
        )
        return [(member, None)]

    return members


def structure_networks(method):
    return lambda e: [(method, s) for s in e["filters"]["structures"]]


COHORT_RULES += [
    CohortRule(
        name="filter_l1",
        methods=lambda e: ["filter_l1"],
        level="{structure}",
        enabled=lambda e: bool(e["filters"]["structures"]),
        members=filter_members("filter_l1", False),
        networks=structure_networks("filter_l1"),
        schedule=filter_finetune_schedule,
        constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])},
    ),
    CohortRule(
        name="filter_scratch",
        methods=lambda e: ["filter_scratch"],
        level="{structure}",
        enabled=lambda e: bool(e["filters"]["structures"]) and e["filters"]["scratch"],
        members=filter_members("filter_scratch", True),
        networks=structure_networks("filter_scratch"),
        constraints=lambda e: {"structure": "|".join(e["filters"]["structures"])},
    ),
]
