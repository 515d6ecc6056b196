# IMP chains that re-introduce pruned weights (METHODS.md 5): Double-pruning (double, with
# the complement network double_complement trained alongside each round), Scored-pruning
# (scored, whose training accumulates the alignment scores of the pruned weights) and the
# random control (regrow_random). Each round prunes its own chain's previous round like IMP
# (round 1 from the dense run, so it equals IMP's round 1), then re-introduces. One job per
# round trains every configured method and seed (the chains advance together; one job a
# round saves the start-up of two more per round).

REINTRODUCE_KINDS = {"double": "double", "scored": "scored", "regrow_random": "random"}


def reintroduce_step(e_name, e, seed, method, r):
    """How round r re-introduces weights (None in round 1: nothing is pruned before it)."""
    if int(r) == 1:
        return None
    kind = REINTRODUCE_KINDS[method]
    previous = run_dir(e_name, seed, method, f"round{int(r) - 1}")
    scores = {
        "double": f"{run_dir(e_name, seed, 'double_complement', f'round{int(r) - 1}')}/final.safetensors",
        "scored": f"{previous}/regrow_scores.safetensors",
        "random": None,
    }[kind]
    return spec.Reintroduce(
        kind=kind,
        ratio=e["reintroduce"]["ratio"],
        scores=scores,
        positive_only=kind == "scored",
    )


def reintroduce_members(e_name, e, w, seed):
    """Every configured chain's round-r network of one seed (and Double-pruning's complement
    network, whose trained weights rank the pruned weights for the next round)."""
    common = dict(
        family="reintroduce",
        level=f"round{w.r}",
        init=rewind_path(e_name, seed),
        start_iteration=rewind_start(e),
        counted_kinds=pruned_kinds(e),
    )
    members = []
    for method in reintroduce_methods(e):
        how = dict(
            weights=prev_round(e_name, seed, method, w.r, "final.safetensors"),
            mask=prev_round(e_name, seed, method, w.r, "mask.safetensors"),
            criterion="magnitude",
            scope=e["imp"]["scope"],
            rates=rates(e),
            purpose=f"{method}/round{w.r}",
            reintroduce=reintroduce_step(e_name, e, seed, method, w.r),
        )
        own = dict(common, method=method)
        if method == "scored":
            own["alignment_from"] = rewind_path(e_name, seed)
        members.append((own, how))
        if method == "double":
            mask = f"{run_dir(e_name, seed, method, f'round{w.r}')}/mask.safetensors"
            members.append((dict(common, method="double_complement", complement_of=mask), None))
    return members


def reintroduce_methods(e):
    return e["reintroduce"]["methods"] if e["imp"]["rounds"] > 0 else []


def reintroduce_folders(e):
    methods = reintroduce_methods(e)
    return methods + (["double_complement"] if "double" in methods else [])


COHORT_KINDS.append(
    CohortKind(
        name="reintroduce",
        methods=reintroduce_folders,
        level="round{r}",
        enabled=lambda e: bool(reintroduce_methods(e)),
        members=reintroduce_members,
        # double_complement's networks only serve double: they are not compared
        networks=lambda e: [
            (m, level) for m in reintroduce_methods(e) for level in round_levels(e)
        ],
        priority=2,
        extra_outputs=lambda e_name, e: [
            f"{run_dir(e_name, s, 'scored', 'round{r}')}/regrow_scores.safetensors"
            for s in e["seeds"]
            if "scored" in reintroduce_methods(e)
        ],
        code=("methods.reintroduce",),
    )
)
