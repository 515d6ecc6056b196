# Lottery tickets: theta_0 and the dense run (round 0), iterative magnitude pruning with reset
# to theta_0 or rewinding to theta_k, the one-shot variant, and Han et al.'s fine-tuning.
# Each kind is one job per experiment (and round) training every seed as one cohort.


def prev_round(e_name, seed, method, r, filename):
    """The previous round's file of an iterative method (round 0 is the dense IMP run)."""
    source = "imp" if int(r) == 1 else method
    return f"{run_dir(e_name, seed, source, f'round{int(r) - 1}')}/{filename}"


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


def finetune_members(e_name, e, w, seed):
    """Han et al. 2015: prune the trained weights and keep training them (no reset)."""
    previous = prev_round(e_name, seed, "finetune", w.r, "final.safetensors")
    how = dict(
        weights=previous,
        mask=prev_round(e_name, seed, "finetune", w.r, "mask.safetensors"),
        criterion="magnitude",
        scope=e["imp"]["scope"],
        rates=rates(e),
        purpose=f"finetune/round{w.r}",
    )
    member = dict(
        method="finetune",
        family="baseline",
        level=f"round{w.r}",
        init=previous,
        counted_kinds=pruned_kinds(e),
    )
    return [(member, how)]


COHORT_KINDS += [
    CohortKind(
        "dense",
        lambda e: ["imp"],
        "round0",
        lambda e: True,
        dense_members,
        rewind=True,
        makes_init=True,
        priority=3,
    ),
    # IMP's rounds are the longest chain of the DAG: keep it moving, fill the cores around it
    CohortKind(
        "imp",
        lambda e: ["imp"],
        "round{r}",
        lambda e: e["imp"]["rounds"] > 0,
        imp_members,
        priority=3,
    ),
    CohortKind(
        "imp_oneshot",
        lambda e: ["imp_oneshot"],
        "round{r}",
        lambda e: e["imp"]["oneshot"],
        imp_oneshot_members,
        priority=1,
    ),
    CohortKind(
        "finetune",
        lambda e: ["finetune"],
        "round{r}",
        lambda e: e["finetune"]["enabled"],
        finetune_members,
        schedule=finetune_schedule,
        priority=2,
    ),
]
