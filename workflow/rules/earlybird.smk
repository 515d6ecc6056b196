# Early-Bird tickets (You et al., ICLR 2020): one job per experiment runs each seed's search
# (dense training from theta_0 until every density's ticket is drawn, `lth eb-search`), then
# trains the tickets: eb from theta_0 (the lottery-ticket reading) and eb_continue from the
# weights the ticket was drawn at, for the rest of the schedule (the paper's EB Train).


def eb_levels(e):
    return [fmt_density(d) for d in e["earlybird"]["densities"]]


def eb_methods(e):
    return ["eb"] + (["eb_continue"] if e["earlybird"]["continue_training"] else [])


def eb_ticket(e_name, seed, level, filename):
    return f"{run_dir(e_name, seed, 'eb', level)}/{filename}"


def eb_search_record(e_name, seed):
    return f"results/{e_name}/seed{seed}/eb/search.json"


def eb_search(e_name, e, seed):
    b = e["earlybird"]
    return spec.SearchJob(
        experiment=e_name,
        seed=seed,
        data_root=data_dir(e["dataset"]),
        val_size=e["val_size"],
        device=config["device"],
        init=init_path(e_name, seed),
        schedule=spec.schedule_from_config(e["train"]),
        earlybird=spec.EarlyBird(
            densities=tuple(float(d) for d in b["densities"]),
            **{k: b[k] for k in ("scope", "check_every", "epsilon", "queue", "distance")},
        ),
        out_dirs=tuple(run_dir(e_name, seed, "eb", level) for level in eb_levels(e)),
        record=eb_search_record(e_name, seed),
    )


def eb_members(e_name, e, w, seed):
    members = []
    for level in eb_levels(e):
        mask = eb_ticket(e_name, seed, level, "mask.safetensors")
        common = dict(family="early", level=level, mask=mask)
        members.append((dict(common, method="eb", init=init_path(e_name, seed)), None))
        if e["earlybird"]["continue_training"]:
            weights = eb_ticket(e_name, seed, level, "weights_at_eb.safetensors")
            members.append((dict(common, method="eb_continue", init=weights, resume=True), None))
    return members


COHORT_KINDS.append(
    CohortKind(
        "earlybird",
        eb_methods,
        "",
        lambda e: bool(e["earlybird"]["densities"]),
        eb_members,
        levels=eb_levels,
        log_tag="eb",
        searches=lambda e_name, e, w: [("eb-search", eb_search(e_name, e, s)) for s in e["seeds"]],
        extra_outputs=lambda e_name, e: [
            f
            for s in e["seeds"]
            for f in [eb_search_record(e_name, s)]
            + [eb_ticket(e_name, s, lvl, "weights_at_eb.safetensors") for lvl in eb_levels(e)]
        ],
        code=("earlybird",),
    )
)
