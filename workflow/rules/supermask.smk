# Masks mined on frozen random weights (`lth mine`): edge-popup (Ramanujan et al., CVPR 2020)
# never trains a weight; GEM-MINER (Sreenivasan et al., NeurIPS 2022) mines the rare gem
# (gem_miner_gem: the rounded mask, untrained) and its final flags (the target count), whose
# weights it then trains from the same frozen start with the experiment's schedule
# (gem_miner). One job per method and experiment.

from lth.plan.families import supermask as supermask_plan  # noqa: E402  (torch-free)


def supermask_levels(e):
    return [catalog.density_level(d) for d in e["supermask"]["densities"]]


def mining(e, algo):
    m, t = e["supermask"], e["train"]
    own = m[algo]
    gem = ("regularization", "freeze_every") if algo == "gem_miner" else ()
    return supermask_plan.Mining(
        algo=algo,
        weights=m["weights"],
        optimizer=own["optimizer"],
        lr=own["lr"],
        momentum=own["momentum"],
        weight_decay=own["weight_decay"],
        batch_size=m["batch_size"] or t["batch_size"],
        iterations=m["iterations"] or t["iterations"],
        eval_every=t["eval_every"],
        eval_batch_size=t["eval_batch_size"],
        train_eval_size=t["train_eval_size"],
        **{key: own[key] for key in gem},
    )


def mining_job(e_name, e, algo, method):
    members = tuple(
        supermask_plan.MiningMember(
            seed=s,
            method=method,
            level=catalog.density_level(d),
            density=float(d),
            init=init_path(e_name, s),
            out_dir=run_dir(e_name, s, method, catalog.density_level(d)),
        )
        for s in e["seeds"]
        for d in e["supermask"]["densities"]
    )
    return supermask_plan.MiningJob(
        experiment=e_name,
        data_root=data_dir(e["dataset"]),
        val_size=e["val_size"],
        device=config["device"],
        mining=mining(e, algo),
        members=members,
    )


def mined_files(method, names):
    return lambda e_name, e: [
        f"{run_dir(e_name, s, method, lvl)}/{name}.safetensors"
        for s in e["seeds"]
        for lvl in supermask_levels(e)
        for name in names
    ]


def gem_miner_members(e_name, e, w, seed):
    """The flagged weights trained from the frozen start they were mined on."""
    members = []
    for level in supermask_levels(e):
        gem = run_dir(e_name, seed, "gem_miner_gem", level)
        member = dict(
            method="gem_miner",
            family="supermask",
            level=level,
            init=f"{gem}/start.safetensors",
            mask=f"{gem}/flags.safetensors",
        )
        members.append((member, None))
    return members


def supermask_enabled(algo):
    return lambda e: bool(e["supermask"]["densities"]) and e["supermask"][algo]["enabled"]


COHORT_RULES += [
    CohortRule(
        name="edge_popup",
        methods=lambda e: ["edge_popup"],
        level="",
        enabled=supermask_enabled("edge_popup"),
        members=lambda e_name, e, w, seed: [],
        networks=lambda e: [("edge_popup", level) for level in supermask_levels(e)],
        levels=supermask_levels,
        log_tag="edge_popup",
        searches=lambda e_name, e, w: [("mine", mining_job(e_name, e, "edge_popup", "edge_popup"))],
        extra_outputs=mined_files("edge_popup", ["scores"]),
        code=("methods.supermask",),
    ),
    CohortRule(
        name="gem_miner",
        methods=lambda e: ["gem_miner_gem", "gem_miner"],
        level="",
        enabled=supermask_enabled("gem_miner"),
        members=gem_miner_members,
        networks=lambda e: [
            (m, level) for m in ("gem_miner_gem", "gem_miner") for level in supermask_levels(e)
        ],
        levels=supermask_levels,
        log_tag="gem_miner",
        searches=lambda e_name, e, w: [
            ("mine", mining_job(e_name, e, "gem_miner", "gem_miner_gem"))
        ],
        extra_outputs=mined_files("gem_miner_gem", ["scores", "flags", "start"]),
        code=("methods.supermask",),
    ),
]
