# IMP chains that re-introduce pruned weights (METHODS.md 5): Double-pruning (double, with
# the complement network double_complement trained alongside each round), Scored-pruning
# (scored, whose training accumulates the alignment scores of the pruned weights) and each
# one's random control (regrow_random_<method>: as many weights per layer, at random). Each
# round prunes its own chain's previous round like IMP
# (round 1 from the dense run, so it equals IMP's round 1), then re-introduces. One job per
# round trains every configured method and seed (the chains advance together; one job a
# round saves the start-up of two more per round).

from dataclasses import asdict

from lth.plan.families import reintroduce as reintroduce_plan  # noqa: E402  (torch-free)

REINTRODUCE_RANKINGS = {"double": "double", "scored": "scored"} | {
    control: "random" for control in reintroduce_plan.CONTROLS
}
REINTRODUCE_MODULE = "lth.methods.reintroduce"


def reintroduce_extension(settings, *files):
    """The Extension by which re-introduction changes an IMP step or a training member."""
    return spec.Extension(
        hooks=REINTRODUCE_MODULE, settings=asdict(settings), files=tuple(files)
    )


def reintroduce_step(e_name, e, seed, method, r):
    """How round r re-introduces weights (None in round 1: nothing is pruned before it)."""
    if int(r) == 1:
        return None
    ranking = REINTRODUCE_RANKINGS[method]
    previous = run_dir(e_name, seed, method, f"round{int(r) - 1}")
    scores = {
        "double": f"{run_dir(e_name, seed, 'double_complement', f'round{int(r) - 1}')}/final.safetensors",
        "scored": f"{previous}/regrow_scores.safetensors",
        "random": None,
    }[ranking]
    controlled = reintroduce_plan.CONTROLS.get(method)
    how = reintroduce_plan.Reintroduce(
        ranking=ranking,
        ratio=e["reintroduce"]["ratio"],
        scores=scores,
        positive_only=ranking == "scored",
        counts_from=(
            tuple(
                f"{run_dir(e_name, seed, controlled, f'round{k}')}/mask.safetensors"
                for k in (int(r), int(r) - 1)
            )
            if controlled
            else ()
        ),
    )
    return reintroduce_extension(how, *([scores] if scores else []))


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
            extension=reintroduce_step(e_name, e, seed, method, w.r),
        )
        own = dict(common, method=method)
        if method == "scored":
            reset = rewind_path(e_name, seed)
            own["extension"] = reintroduce_extension(
                reintroduce_plan.MemberRole(alignment_from=reset), reset
            )
        members.append((own, how))
        if method == "double":
            mask = f"{run_dir(e_name, seed, method, f'round{w.r}')}/mask.safetensors"
            role = reintroduce_plan.MemberRole(complement_of=mask)
            complement = dict(
                common,
                method="double_complement",
                extension=reintroduce_extension(role, mask),
            )
            members.append((complement, None))
    return members


def reintroduce_methods(e):
    """The configured chains, each method before the controls (a control's prune step reads
    the mask its method's step writes in the same job)."""
    methods = e["reintroduce"]["methods"] if e["imp"]["rounds"] > 0 else []
    return sorted(methods, key=lambda m: m in reintroduce_plan.CONTROLS)


def reintroduce_folders(e):
    methods = reintroduce_methods(e)
    return methods + (["double_complement"] if "double" in methods else [])


COHORT_RULES.append(
    CohortRule(
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
        code=("methods.reintroduce", "plan.families.reintroduce"),
    )
)
