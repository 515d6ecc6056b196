# Controls of each IMP round's mask. `controls`: the IMP mask with fresh random inits (reinit,
# Frankle & Carbin 2019, Fig. 4; several draws per seed, their Sec. 2) and random pruning to
# the IMP mask's per-layer counts from the rewind point (Frankle & Carbin 2019, App. E;
# open_lth randomly_prune). `scratch_e` / `scratch_b`: Liu et al. 2019's Scratch-E and
# Scratch-B, a pruned network's mask (IMP's or fine-tuning's) with a fresh init, trained
# with the same schedule (E) or stretched to the dense network's compute (B). One job per
# round and kind trains every seed; Scratch-B is its own job, so scratch_b_cap reruns only it.


def imp_mask(e_name, seed, r):
    return f"{run_dir(e_name, seed, 'imp', f'round{r}')}/mask.safetensors"


def reinit_folder(draw):
    """Run folder of a reinit draw: draw 0 keeps the folder `reinit`."""
    return "reinit" if draw == 0 else f"reinit_draw{draw}"


def control_members(e_name, e, w, seed):
    """The round's reinit draws and random-pruning control of one seed; both start where the
    ticket does (the rewind iteration under a continuing schedule)."""
    c, members = e["controls"], []
    common = dict(
        family="control",
        level=f"round{w.r}",
        start_iteration=rewind_start(e),
        counted_kinds=pruned_kinds(e),
    )
    if c["reinit"]:
        members += [
            (
                dict(
                    common,
                    method="reinit",
                    folder=reinit_folder(draw),
                    draw=draw,
                    init=init_path(e_name, seed),
                    mask=imp_mask(e_name, seed, w.r),
                    fresh_init=f"reinit/round{w.r}",
                ),
                None,
            )
            for draw in range(c["reinit_draws"])
        ]
    if c["random_pruning"]:
        how = dict(
            weights=rewind_path(e_name, seed),
            criterion="random",
            scope="layerwise",
            match_counts=imp_mask(e_name, seed, w.r),
            purpose=f"random_pruning/round{w.r}",
        )
        member = dict(common, method="random_pruning", init=rewind_path(e_name, seed))
        members.append((member, how))
    return members


def control_rounds(e):
    """The IMP rounds the controls train at: every `controls.every`-th, counted back from
    the last (which always has them)."""
    last, every = e["imp"]["rounds"], e["controls"]["every"]
    return [r for r in range(1, last + 1) if (last - r) % every == 0]


def control_rounds_constraint(e):
    return {"r": "|".join(map(str, control_rounds(e))) or "_none_"}


def control_methods(e):
    """Run folders of the `controls` job."""
    c = e["controls"]
    reinit = [reinit_folder(d) for d in range(c["reinit_draws"])] if c["reinit"] else []
    return reinit + (["random_pruning"] if c["random_pruning"] else [])


def scratch_source_mask(e_name, seed, source, r):
    """The mask Scratch-E/B train: IMP's round r, or fine-tuning's round r."""
    return f"{run_dir(e_name, seed, source, f'round{r}')}/mask.safetensors"


def scratch_methods(e, variant):
    """scratch_<variant>_<source> for each configured mask source, if the variant is on."""
    c = e["controls"]
    return (
        [f"scratch_{variant}_{source}" for source in c["scratch_masks"]]
        if c[f"scratch_{variant}"]
        else []
    )


def scratch_members(variant):
    """Members of Scratch-E (variant "e") or Scratch-B ("b"): the source's mask, a fresh
    init from theta_0's stream shared by E and B (so only the budget differs), iteration 0."""

    def members(e_name, e, w, seed):
        c = e["controls"]
        return [
            (
                dict(
                    method=f"scratch_{variant}_{source}",
                    family="control",
                    level=f"round{w.r}",
                    init=init_path(e_name, seed),
                    mask=scratch_source_mask(e_name, seed, source, w.r),
                    fresh_init=f"scratch_{source}/round{w.r}",
                    counted_kinds=pruned_kinds(e),
                    **(
                        dict(compute_matched=True, budget_cap=c["scratch_b_cap"])
                        if variant == "b"
                        else {}
                    ),
                ),
                None,
            )
            for source in c["scratch_masks"]
        ]

    return members


COHORT_RULES += [
    CohortRule(
        name="controls",
        methods=control_methods,
        level="round{r}",
        enabled=lambda e: e["imp"]["rounds"] > 0 and bool(control_methods(e)),
        members=control_members,
        networks=lambda e: [
            (m, f"round{r}") for m in control_methods(e) for r in control_rounds(e)
        ],
        priority=1,
        constraints=control_rounds_constraint,
    ),
    *(
        CohortRule(
            name=f"scratch_{variant}",
            methods=lambda e, variant=variant: scratch_methods(e, variant),
            level="round{r}",
            enabled=lambda e, variant=variant: e["imp"]["rounds"] > 0
            and bool(scratch_methods(e, variant)),
            members=scratch_members(variant),
            networks=lambda e, variant=variant: [
                (m, f"round{r}") for m in scratch_methods(e, variant) for r in control_rounds(e)
            ],
            priority=1,
            constraints=control_rounds_constraint,
        )
        for variant in ("e", "b")
    ),
]
