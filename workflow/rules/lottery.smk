# Lottery tickets: theta_0 and the dense run (round 0), iterative magnitude pruning with reset
# to theta_0 or rewinding to theta_k, and the one-shot variant.
# Each kind is one job per experiment (and round) training every seed as one cohort.


def dense_members(e_name, e, w, seed):
    member = dict(
        method="imp",
        family="lottery",
        level="round0",
        init=init_path(e_name, seed),
        save_at=e["imp"]["rewind_iteration"],
    )
    return [(member, None)]


def imp_members(e_name, e, w, seed):
    how = dict(
        weights=prev_round(e_name, seed, "imp", w.r, "final.safetensors"),
        mask=prev_round(e_name, seed, "imp", w.r, "mask.safetensors"),
        criterion="magnitude",
        scope=e["imp"]["scope"],
        rates=rates(e),
        purpose=f"imp/round{w.r}",
    )
    member = dict(
        method="imp",
        family="lottery",
        level=f"round{w.r}",
        init=rewind_path(e_name, seed),
        start_iteration=rewind_start(e),
        counted_kinds=pruned_kinds(e),
    )
    return [(member, how)]


def imp_oneshot_members(e_name, e, w, seed):
    """The LTH paper's one-shot comparison: the dense run pruned once to IMP's counts."""
    how = dict(
        weights=f"{run_dir(e_name, seed, 'imp', 'round0')}/final.safetensors",
        match_counts=f"{run_dir(e_name, seed, 'imp', f'round{w.r}')}/mask.safetensors",
        criterion="magnitude",
        scope=e["imp"]["scope"],
        purpose=f"imp_oneshot/round{w.r}",
    )
    member = dict(
        method="imp_oneshot",
        family="lottery",
        level=f"round{w.r}",
        init=rewind_path(e_name, seed),
        start_iteration=rewind_start(e),
        counted_kinds=pruned_kinds(e),
    )
    return [(member, how)]


COHORT_RULES += [
    CohortRule(
        name="dense",
        methods=lambda e: ["imp"],
        level="round0",
        enabled=lambda e: True,
        members=dense_members,
        networks=lambda e: [("imp", "round0")],
        rewind=True,
        makes_init=True,
        priority=3,
    ),
    # IMP's rounds are the longest chain of the DAG: keep it moving, fill the cores around it
    CohortRule(
        name="imp",
        methods=lambda e: ["imp"],
        level="round{r}",
        enabled=lambda e: e["imp"]["rounds"] > 0,
        members=imp_members,
        networks=lambda e: [("imp", level) for level in round_levels(e)],
        priority=3,
    ),
    CohortRule(
        name="imp_oneshot",
        methods=lambda e: ["imp_oneshot"],
        level="round{r}",
        enabled=lambda e: e["imp"]["oneshot"],
        members=imp_oneshot_members,
        networks=lambda e: [("imp_oneshot", level) for level in round_levels(e)],
        priority=1,
    ),
]
