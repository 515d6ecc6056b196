"""Early-Bird tickets (You et al., ICLR 2020): masks drawn during dense training once the
newest is within epsilon of the ones before it; the magnitude variant and the channel variant
(VGG BatchNorm scales)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from lth.plan import catalog
from lth.plan.checks import Experiment, Problem, density_levels, named_levels
from lth.plan.jobs import CohortRule, data_dir, init_path, run_dir
from lth.plan.registry import Family, Group, Method, Verb
from lth.plan.spec import Extension, Schedule, schedule_from_config

TICKETS = "earlybird"
"""The folder of a seed's search (results/<exp>/seed<S>/earlybird/): search.json, and per level
the drawn ticket (mask, weights_at_eb; the channel variant's channels and weights_at_init)."""


@dataclass(frozen=True)
class Retraining:
    """One reading of how a drawn Early-Bird ticket is trained: from which weights (theta_0's,
    the ones it was drawn at, or a fresh init), over the whole schedule or on from t_EB (the
    schedule continuing), and whose reading it is."""

    weights: str  # theta_0 | drawn | fresh
    resume: bool
    source: str


RETRAININGS = {
    "rewind": Retraining("theta_0", False, "the lottery-ticket reading (Frankle & Carbin 2019): "
                         "the ticket on theta_0, trained over the whole schedule"),
    "resume": Retraining("drawn", True, "the ticket trained on from the weights it was drawn "
                         "at for the rest of the schedule: the abstract's \"continuing to train "
                         "merely the EB tickets\" read literally; not what the authors' code "
                         "runs"),
    "scratch_rest": Retraining("fresh", True, "the authors' code's EB Train "
                               "(retrain_continue.sh: main_c.py --scratch builds the pruned VGG "
                               "with a fresh random init and trains the epochs after the draw; "
                               "METHODS.md 1.1 step 6)"),
    "scratch": Retraining("fresh", False, "the authors' retrain_scratch.sh: the pruned network "
                          "from a fresh random init over the whole schedule"),
}
"""Early-Bird's retrainings by the name earlybird.retrain uses; run folders earlybird_<name>."""


def method_name(reading: str) -> str:
    """The run folder of a retraining: earlybird_<reading>."""
    return f"{TICKETS}_{reading}"


def slimming_extension(strength: float) -> Extension:
    """Network slimming during a channel ticket's retraining, as the authors' retrain scripts
    run it (--sparsity-regularization; lth.methods.earlybird.training_monitor)."""
    return Extension(hooks="lth.methods.earlybird", settings={"slimming": strength})


@dataclass(frozen=True)
class EarlyBird:
    """Early-Bird's detector (You et al. 2020): a mask at each density every `check_every`
    iterations of dense training; a ticket is drawn when the newest mask is within `epsilon`
    of each of the `queue - 1` before it."""

    densities: tuple[float, ...]
    scope: str  # layerwise | global
    check_every: int
    epsilon: float
    queue: int
    distance: str  # changed_fraction | hamming
    variant: str = "magnitude"  # magnitude (weight masks) | channel (VGG BatchNorm channels)
    slimming: float = 0.0  # channel: network slimming's L1 strength s on the BatchNorm scales


@dataclass(frozen=True)
class EarlyBirdJob:
    """Early-Bird's search of one seed: dense training from theta_0 until every density's
    ticket is drawn; writes <out_dirs[i]>/mask.safetensors and weights_at_eb.safetensors."""

    experiment: str
    seed: int
    data_root: str
    val_size: int | None
    device: str
    init: str
    schedule: Schedule
    earlybird: EarlyBird
    out_dirs: tuple[str, ...]  # one per density
    record: str  # search.json: detection iterations and distance history

    def reads(self) -> list[str | None]:
        """The files the job reads besides the dataset."""
        return [self.init]


def _channel_levels(e: Experiment, densities: list) -> Iterator[Problem]:
    """The channel variant removes VGG channels; each kept fraction names a level
    channels<P>, P a whole percent, once."""
    if not e.cfg["model"].startswith("vgg"):
        yield e.key("earlybird.variant"), (f"channel removes BatchNorm channels physically, "
                                           f"which lth does for VGGs only, not {e.cfg['model']}")

    def unreadable(density: float, _level: str) -> str | None:
        if abs(100 * density - round(100 * density)) <= 1e-9 and round(100 * density) > 0:
            return None
        return (f"{density}: the channel variant's fractions of channels kept are whole "
                f"percents (they name the levels channels<percent>)")

    yield from named_levels(e, "earlybird.densities", densities, channel_level,
                             unreadable)


def _earlybird(e: Experiment) -> Iterator[Problem]:
    """Early-Bird checks within the training, and its distance can tell masks apart."""
    b = e.cfg["earlybird"]
    if not b["densities"]:
        return
    if b["variant"] == "channel":
        yield from _channel_levels(e, b["densities"])
    else:
        yield from density_levels(e, "earlybird", b["densities"],
                                   "earlybird" if b["scope"] == "layerwise" else None)
    iterations = e.cfg["train"]["iterations"]
    if b["check_every"] >= iterations:
        yield e.key("earlybird.check_every"), (
            f"{b['check_every']} is not below train.iterations ({iterations}): the search "
            f"would check only the initial weights")
    if b["distance"] == "hamming":
        for index, d in enumerate(b["densities"]):
            if vacuous_hamming(d, b["epsilon"]):
                yield e.key("earlybird.densities", index), (
                    f"{d}: the Early-Bird threshold is vacuous at this density (a Hamming "
                    f"distance of two masks keeping {d} is at most {2 * min(d, 1 - d):g} <= "
                    f"epsilon {b['epsilon']}); use distance changed_fraction")



def vacuous_hamming(density: float, epsilon: float) -> bool:
    """True when the Hamming detector fires at `density` whatever training does: two masks
    of one count never differ by more than 2 min(d, 1 - d) (equality included, up to float
    rounding: 2 * (1 - 0.95) exceeds 0.1 by 1e-16)."""
    bound = 2 * min(density, 1 - density)
    return bound <= epsilon or math.isclose(bound, epsilon)


def channel_level(kept: float) -> str:
    """The level of an Early-Bird channel ticket keeping the fraction `kept` of the BatchNorm
    channels: channels<P>, P the nearest whole percent (the config check requires it to be
    exact)."""
    return f"channels{round(100 * kept)}"

def channel_variant(e):
    return e["earlybird"]["variant"] == "channel"


def earlybird_level(e, density):
    """density<D>, or channels<P> (P percent of the channels kept) in the channel variant."""
    return (
        channel_level(density)
        if channel_variant(e)
        else catalog.density_level(density)
    )


def earlybird_levels(e):
    return [earlybird_level(e, d) for d in e["earlybird"]["densities"]]


def earlybird_methods(e):
    return [method_name(r) for r in e["earlybird"]["retrain"]]


def earlybird_ticket(e_name, seed, level, filename):
    return f"{run_dir(e_name, seed, TICKETS, level)}/{filename}"


def earlybird_files(e):
    """What the search writes per density: the ticket (a weight mask, or the channel
    variant's kept channels and smaller network at theta_0) and the weights at the draw."""
    ticket = ("channels", "weights_at_init") if channel_variant(e) else ("mask",)
    return [f"{f}.safetensors" for f in (*ticket, "weights_at_eb")]


def earlybird_search_record(e_name, seed):
    return f"results/{e_name}/seed{seed}/{TICKETS}/search.json"


def earlybird_search(e_name, e, seed, device):
    b = e["earlybird"]
    return EarlyBirdJob(
        experiment=e_name,
        seed=seed,
        data_root=data_dir(e["dataset"]),
        val_size=e["val_size"],
        device=device,
        init=init_path(e_name, seed),
        schedule=schedule_from_config(e["train"]),
        earlybird=EarlyBird(
            densities=tuple(float(d) for d in b["densities"]),
            **{k: b[k] for k in ("scope", "check_every", "epsilon", "queue", "distance")},
            variant=b["variant"],
            slimming=b["slimming"] if channel_variant(e) else 0.0,
        ),
        out_dirs=tuple(run_dir(e_name, seed, TICKETS, level) for level in earlybird_levels(e)),
        record=earlybird_search_record(e_name, seed),
    )


def earlybird_members(e_name, e, w, seed):
    """Each ticket in each configured retraining (RETRAININGS): from theta_0's weights (the
    surviving ones in the channel variant) or the draw's, or a fresh init, for the whole
    schedule or from t_EB on."""
    b, members = e["earlybird"], []
    for level in earlybird_levels(e):
        common = dict(family="earlybird", level=level)
        if channel_variant(e):  # the smaller network, whole
            theta_0 = earlybird_ticket(e_name, seed, level, "weights_at_init.safetensors")
        else:
            common["mask"] = earlybird_ticket(e_name, seed, level, "mask.safetensors")
            theta_0 = init_path(e_name, seed)
        drawn = earlybird_ticket(e_name, seed, level, "weights_at_eb.safetensors")
        for reading in b["retrain"]:
            how = RETRAININGS[reading]
            member = dict(
                common,
                method=method_name(reading),
                init=drawn if how.weights == "drawn" or how.resume else theta_0,
                resume=how.resume,
            )
            if how.weights == "fresh":
                member["fresh_init"] = f"{TICKETS}_fresh/{level}"
            if b["retrain_slimming"] and channel_variant(e):
                member["extension"] = slimming_extension(b["slimming"])
            members.append((member, None))
    return members


def earlybird_outputs(e_name, e):
    """The search's files of every seed: its record and each level's ticket."""
    return [f for s in e["seeds"] for f in [earlybird_search_record(e_name, s)]
            + [earlybird_ticket(e_name, s, lvl, name) for lvl in earlybird_levels(e)
               for name in earlybird_files(e)]]


_COHORTS_earlybird = (
    CohortRule(
        name="earlybird",
        methods=earlybird_methods,
        level="",
        enabled=lambda e: bool(e["earlybird"]["densities"]),
        members=earlybird_members,
        networks=lambda e: [
            (m, level) for m in earlybird_methods(e) for level in earlybird_levels(e)
        ],
        levels=earlybird_levels,
        log_tag="earlybird",
        searches=lambda e_name, e, w, device: [
            ("earlybird", earlybird_search(e_name, e, s, device)) for s in e["seeds"]
        ],
        extra_outputs=earlybird_outputs,
        code=("methods.earlybird", "methods.filters"),
    ),
)


FAMILY = Family(
    name="earlybird",
    position=4,
    description="Early-Bird tickets drawn during dense training",
    groups=(Group("earlybird", "tickets drawn early in dense training (You et al. 2020)",
                  (0, (5, 1)), "v", "short dashes"),),
    methods=tuple(Method(method_name(r), "earlybird") for r in RETRAININGS),
    folders=(TICKETS,),
    cohorts=_COHORTS_earlybird,
    renamed=(("earlybird.continue_training", "earlybird.retrain"),),
    verbs=(Verb("earlybird", f"{__name__}:EarlyBirdJob", "lth.methods.earlybird:run_earlybird_job",
                "Early-Bird: train dense until each density's ticket is drawn; per density "
                "its mask and the weights it was drawn at"),),
    checks=(_earlybird,),
)
