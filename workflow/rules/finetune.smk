# Magnitude pruning with fine-tuning (Han et al., NeurIPS 2015): each round prunes the
# previous round's trained weights by IMP's rates and keeps training them (no reset), at a
# reduced learning rate. One job per round trains every seed.


def finetune_schedule(e):
    """Han et al. 2015: continue from the trained weights at a reduced learning rate."""
    s = dict(e["train"])
    s.update(
        lr=s["lr"] * e["finetune"]["lr_scale"],
        iterations=e["finetune"]["iterations"],
        milestones=[],
        warmup=0,
    )
    return s


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


COHORT_RULES.append(
    CohortRule(
        name="finetune",
        methods=lambda e: ["finetune"],
        level="round{r}",
        enabled=lambda e: e["finetune"]["enabled"],
        members=finetune_members,
        networks=lambda e: [("finetune", level) for level in round_levels(e)],
        schedule=finetune_schedule,
        priority=2,
    )
)
