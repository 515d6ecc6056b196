# Controls of each IMP round's mask: random reinitialisation (Frankle & Carbin 2019, Fig. 4)
# and random structure with the same per-layer densities trained from scratch with the same
# budget (Scratch-E) and a FLOPs-matched budget (Scratch-B) (Liu et al. 2019). The round's
# reinit and random networks of every seed train as one job; Scratch-B as another.


def imp_mask(e_name, seed, r):
    return f"{run_dir(e_name, seed, 'imp', f'round{r}')}/mask.safetensors"


def control_members(e_name, e, w, seed):
    """The round's reinit and random controls of one seed."""
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
    return members


def scratch_b_members(e_name, e, w, seed):
    """Scratch-B: the random control's mask and init with a compute-matched schedule."""
    return [(dict(method="random_b", family="control", level=f"round{w.r}",
                  init=init_path(e_name, seed),
                  mask=f"{run_dir(e_name, seed, 'random', f'round{w.r}')}/mask.safetensors",
                  fresh_init=f"random/round{w.r}", budget_cap=e["controls"]["budget_cap"]),
             None)]


def needs_random_mask(e):
    """Scratch-B trains the random control's mask, so it needs that network too."""
    return e["controls"]["random"] or e["controls"]["random_b"]


def control_methods(e):
    on = {"reinit": e["controls"]["reinit"], "random": needs_random_mask(e)}
    return [m for m, enabled in on.items() if enabled]


COHORT_KINDS += [
    CohortKind("controls", control_methods, "round{r}",
               lambda e: e["imp"]["rounds"] > 0 and bool(control_methods(e)), control_members,
               priority=1),
    # its own job: a Scratch-B setting (budget_cap) reruns only Scratch-B
    CohortKind("random_b", lambda e: ["random_b"], "round{r}",
               lambda e: e["imp"]["rounds"] > 0 and e["controls"]["random_b"],
               scratch_b_members, priority=1),
]
