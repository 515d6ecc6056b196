"""The job plan (lth.plan.jobs and the families' cohort rules) as plain Python: which jobs an
experiment has, what each prunes and trains, and what it reads and writes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml

from lth.plan import jobs, registry
from lth.plan.config_checks import with_defaults
from lth.plan.families.earlybird import RETRAININGS

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def experiment(**changes) -> dict:
    """The default config's experiment with the schema's defaults, blocks updated."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    (name,) = cfg["experiments"]
    for block, values in changes.items():
        cfg["experiments"][name][block].update(values)
    return with_defaults(cfg, SCHEMA)["experiments"][name]


def rule(name: str) -> jobs.CohortRule:
    (found,) = [r for r in jobs.cohort_rules() if r.name == name]
    return found


def test_the_default_trains_every_method_at_every_level_once():
    e = experiment()
    levels = jobs.run_levels(e)
    assert levels[0] == ("imp", "round0") and len(levels) == len(set(levels))
    per_method = {}
    for method, _ in levels:
        per_method[method] = per_method.get(method, 0) + 1
    assert per_method["imp"] == 14 and per_method["finetune"] == 13
    assert per_method["reinit"] == per_method["random_pruning"] == 5  # every 3rd of 13
    assert all(per_method[name] == 3 for name in
               ("earlybird_rewind", "earlybird_resume", "earlybird_scratch_rest",
                "earlybird_scratch"))
    assert {m for m, _ in levels} >= set(e["at_init"]["methods"])


def test_an_imp_round_prunes_the_last_rounds_weights_and_trains_from_the_rewind_point():
    e = experiment()
    searches, prunes, job = rule("imp").steps("x", e, SimpleNamespace(r="3"), "cuda:1")
    assert searches == [] and [p.seed for p in prunes] == e["seeds"]
    first = prunes[0]
    assert (first.weights, first.mask) == ("results/x/seed0/imp/round2/final.safetensors",
                                           "results/x/seed0/imp/round2/mask.safetensors")
    assert first.rates == jobs.rates(e) and first.device == "cuda:1"
    member = job.members[0]
    assert member.mask == first.out == "results/x/seed0/imp/round3/mask.safetensors"
    assert member.init == jobs.rewind_path("x", 0) and job.device == "cuda:1"


def test_each_random_control_counts_what_its_method_reintroduces_in_the_same_job():
    e = experiment(reintroduce={"methods": ["regrow_random_scored", "scored", "double",
                                            "regrow_random_double"]})
    _, prunes, job = rule("reintroduce").steps("x", e, SimpleNamespace(r="2"), "cpu")
    seed0 = [p for p in prunes if p.seed == 0]
    order = [Path(p.out).parent.parent.name for p in seed0]
    assert order == ["scored", "double", "regrow_random_scored", "regrow_random_double"]
    control = seed0[2].extension.settings
    assert control["ranking"] == "random" and control["counts_from"] == (
        "results/x/seed0/scored/round2/mask.safetensors",
        "results/x/seed0/scored/round1/mask.safetensors")
    complement = [m for m in job.members if m.method == "double_complement" and m.seed == 0]
    assert complement[0].extension.settings["complement_of"] == seed0[1].out
    assert complement[0].mask is None


def test_early_birds_readings_start_where_their_source_says():
    e = experiment()
    _, _, job = rule("earlybird").steps("x", e, SimpleNamespace(), "cpu")
    members = {m.method: m for m in job.members if m.seed == 0 and m.level == "density0.1"}
    drawn = "results/x/seed0/earlybird/density0.1/weights_at_eb.safetensors"
    for reading, how in RETRAININGS.items():
        m = members[f"earlybird_{reading}"]
        assert m.resume is how.resume
        assert m.init == (drawn if how.resume or how.weights == "drawn"
                          else jobs.init_path("x", 0))
        assert (m.fresh_init is not None) is (how.weights == "fresh")
        assert m.mask == "results/x/seed0/earlybird/density0.1/mask.safetensors"
        assert m.extension is None  # slimming only in the channel variant, when asked


def test_the_rules_of_the_registry_are_the_cohort_rules():
    assert registry.rules() == tuple(r.name for r in jobs.cohort_rules())
    outputs = rule("controls").outputs("x", experiment())
    assert "results/x/seed1/reinit/round{r}/run.json" in outputs
