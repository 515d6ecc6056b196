# Controls of each IMP round's mask: random reinitialisation (Frankle & Carbin 2019, Fig. 4)
# and random structure with the same per-layer densities trained from scratch with the same
# budget (Scratch-E) and a FLOPs-matched budget (Scratch-B) (Liu et al. 2019). The round's
# controls of every seed train as one job (Scratch-B, whose schedule is longer, as its own
# group in it).


def imp_mask(e_name, seed, r):
    return f"{run_dir(e_name, seed, 'imp', f'round{r}')}/mask.safetensors"


def control_members(e_name, e, w, seed):
    """The round's controls of one seed; Scratch-B trains the random control's mask (made in
    the same job) with its longer schedule."""
    members = []
    if e["controls"]["reinit"]:
        members.append((dict(method="reinit", family="control", level=f"round{w.r}",
                             init=init_path(e_name, seed), mask=imp_mask(e_name, seed, w.r),
                             fresh_init=f"reinit/round{w.r}"), None))
    if needs_random_mask(e):
        how = dict(weights=init_path(e_name, seed), criterion="random", scope="layerwise",
                   match_counts=imp_mask(e_name, seed, w.r), purpose=f"random/round{w.r}")
        members.append((dict(method="random", family="control", level=f"round{w.r}",
                             init=init_path(e_name, seed), fresh_init=f"random/round{w.r}"),
                        how))
    if e["controls"]["random_b"]:
        random_mask = f"{run_dir(e_name, seed, 'random', f'round{w.r}')}/mask.safetensors"
        members.append((dict(method="random_b", family="control", level=f"round{w.r}",
                             init=init_path(e_name, seed), mask=random_mask,
                             fresh_init=f"random/round{w.r}",
                             budget_cap=e["controls"]["budget_cap"]), None))
    return members


def needs_random_mask(e):
    """Scratch-B trains the random control's mask, so it needs that network too."""
    return e["controls"]["random"] or e["controls"]["random_b"]


def control_methods(e):
    on = {"reinit": e["controls"]["reinit"], "random": needs_random_mask(e),
          "random_b": e["controls"]["random_b"]}
    return [m for m, enabled in on.items() if enabled]


COHORT_KINDS.append(
    CohortKind("controls", control_methods, "round{r}",
               lambda e: e["imp"]["rounds"] > 0 and bool(control_methods(e)), control_members,
               priority=1),
)
