# Early-Bird tickets (You et al., ICLR 2020): one job per experiment runs each seed's search
# (dense training from theta_0 until every density's ticket is drawn, `lth eb-search`; the
# tickets go to earlybird/<level>/), then trains each ticket in the configured retrainings
# (earlybird.retrain; lth.plan.families.earlybird.RETRAININGS says which reading is whose).
# The channel variant's tickets are smaller VGGs (weights_at_init, weights_at_eb), trained
# whole.

from lth.plan.families import earlybird as earlybird_plan  # noqa: E402  (torch-free)


def channel_variant(e):
    return e["earlybird"]["variant"] == "channel"


def eb_level(e, density):
    """density<D>, or channels<P> (P percent of the channels kept) in the channel variant."""
    return (
        earlybird_plan.channel_level(density)
        if channel_variant(e)
        else catalog.density_level(density)
    )


def eb_levels(e):
    return [eb_level(e, d) for d in e["earlybird"]["densities"]]


def eb_methods(e):
    return [earlybird_plan.method_name(r) for r in e["earlybird"]["retrain"]]


def eb_ticket(e_name, seed, level, filename):
    return f"{run_dir(e_name, seed, earlybird_plan.TICKETS, level)}/{filename}"


def eb_files(e):
    """What the search writes per density besides the run files."""
    channel = ("channels", "weights_at_init")
    ticket = ("mask", "weights_at_eb", *(channel if channel_variant(e) else ()))
    return [f"{f}.safetensors" for f in ticket]


def eb_search_record(e_name, seed):
    return f"results/{e_name}/seed{seed}/{earlybird_plan.TICKETS}/search.json"


def eb_search(e_name, e, seed):
    b = e["earlybird"]
    return earlybird_plan.SearchJob(
        experiment=e_name,
        seed=seed,
        data_root=data_dir(e["dataset"]),
        val_size=e["val_size"],
        device=config["device"],
        init=init_path(e_name, seed),
        schedule=spec.schedule_from_config(e["train"]),
        earlybird=earlybird_plan.EarlyBird(
            densities=tuple(float(d) for d in b["densities"]),
            **{k: b[k] for k in ("scope", "check_every", "epsilon", "queue", "distance")},
            variant=b["variant"],
            slimming=b["slimming"] if channel_variant(e) else 0.0,
        ),
        out_dirs=tuple(run_dir(e_name, seed, earlybird_plan.TICKETS, level) for level in eb_levels(e)),
        record=eb_search_record(e_name, seed),
    )


def eb_members(e_name, e, w, seed):
    """Each ticket in each configured retraining (RETRAININGS): from theta_0's weights (the
    surviving ones in the channel variant) or the draw's, or a fresh init, for the whole
    schedule or from t_EB on."""
    b, members = e["earlybird"], []
    for level in eb_levels(e):
        common = dict(family="earlybird", level=level)
        if channel_variant(e):  # the smaller network, whole
            theta_0 = eb_ticket(e_name, seed, level, "weights_at_init.safetensors")
        else:
            common["mask"] = eb_ticket(e_name, seed, level, "mask.safetensors")
            theta_0 = init_path(e_name, seed)
        drawn = eb_ticket(e_name, seed, level, "weights_at_eb.safetensors")
        for reading in b["retrain"]:
            how = earlybird_plan.RETRAININGS[reading]
            member = dict(
                common,
                method=earlybird_plan.method_name(reading),
                init=drawn if how.weights == "drawn" or how.resume else theta_0,
                resume=how.resume,
            )
            if how.weights == "fresh":
                member["fresh_init"] = f"{earlybird_plan.TICKETS}_fresh/{level}"
            if b["retrain_slimming"] and channel_variant(e):
                member["extension"] = earlybird_plan.slimming_extension(b["slimming"])
            members.append((member, None))
    return members


COHORT_RULES.append(
    CohortRule(
        name="earlybird",
        methods=eb_methods,
        level="",
        enabled=lambda e: bool(e["earlybird"]["densities"]),
        members=eb_members,
        networks=lambda e: [(m, level) for m in eb_methods(e) for level in eb_levels(e)],
        levels=eb_levels,
        log_tag="earlybird",
        searches=lambda e_name, e, w: [("eb-search", eb_search(e_name, e, s)) for s in e["seeds"]],
        extra_outputs=lambda e_name, e: [
            f
            for s in e["seeds"]
            for f in [eb_search_record(e_name, s)]
            + [eb_ticket(e_name, s, lvl, name) for lvl in eb_levels(e) for name in eb_files(e)]
        ],
        code=("methods.earlybird", "methods.filters"),
    )
)
