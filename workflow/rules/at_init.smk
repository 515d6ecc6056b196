# Pruning at initialisation (one shot, before training), trained with the IMP schedule:
# magnitude, random, SNIP (Lee et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et
# al. 2020). Each configured method is a criterion, a scope and a number of iterations; one
# job per method trains its every density and seed as one cohort, so a method's setting
# reruns only that method.


def oneshot_members(e_name, e, w, seed):
    method = e["at_init"]["methods"][w.method]
    members = []
    for d in e["at_init"]["densities"]:
        level = catalog.density_level(d)
        how = dict(
            weights=init_path(e_name, seed),
            criterion=method["criterion"],
            scope=method["scope"],
            density=float(d),
            purpose=f"{w.method}/{level}",
            iterations=method["iterations"],
            save_scores=True,
        )
        member = dict(method=w.method, family="at_init", level=level, init=init_path(e_name, seed))
        members.append((member, how))
    return members


COHORT_RULES.append(
    CohortRule(
        name="at_init",
        methods=lambda e: ["{method}"],
        level="",
        enabled=lambda e: bool(oneshot_methods(e)),
        members=oneshot_members,
        networks=lambda e: [
            (m, catalog.density_level(d))
            for m in oneshot_methods(e)
            for d in e["at_init"]["densities"]
        ],
        levels=lambda e: [catalog.density_level(d) for d in e["at_init"]["densities"]],
        constraints=lambda e: {"method": "|".join(oneshot_methods(e))},
        log_tag="{method}",
    ),
)
