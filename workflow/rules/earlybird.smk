# Early-Bird tickets (You et al., ICLR 2020): one job per experiment runs each seed's search
# (dense training from theta_0 until every density's ticket is drawn, `lth eb-search`), then
# trains the tickets: eb from theta_0 (the lottery-ticket reading) and eb_continue from the
# weights the ticket was drawn at, for the rest of the schedule (the paper's EB Train). The
# channel variant's tickets are smaller VGGs (weights_at_init, weights_at_eb), trained whole.

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
    return ["eb"] + (["eb_continue"] if e["earlybird"]["continue_training"] else [])


def eb_ticket(e_name, seed, level, filename):
    return f"{run_dir(e_name, seed, 'eb', level)}/{filename}"


def eb_files(e):
    """What the search writes per density besides the run files."""
    channel = ("channels", "weights_at_init")
    return [f"{f}.safetensors" for f in ("weights_at_eb", *(channel if channel_variant(e) else ()))]


def eb_search_record(e_name, seed):
    return f"results/{e_name}/seed{seed}/eb/search.json"


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
        out_dirs=tuple(run_dir(e_name, seed, "eb", level) for level in eb_levels(e)),
        record=eb_search_record(e_name, seed),
    )


def eb_members(e_name, e, w, seed):
    members = []
    for level in eb_levels(e):
        if channel_variant(e):  # the smaller network, whole
            common = dict(family="early", level=level)
            start = eb_ticket(e_name, seed, level, "weights_at_init.safetensors")
        else:
            common = dict(
                family="early", level=level, mask=eb_ticket(e_name, seed, level, "mask.safetensors")
            )
            start = init_path(e_name, seed)
        members.append((dict(common, method="eb", init=start), None))
        if e["earlybird"]["continue_training"]:
            weights = eb_ticket(e_name, seed, level, "weights_at_eb.safetensors")
            members.append((dict(common, method="eb_continue", init=weights, resume=True), None))
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
        log_tag="eb",
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
