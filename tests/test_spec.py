"""One declaration per setting: the config schema and the typed specs hold the same keys."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from lth.core.errors import LthError
from lth.plan.spec import (
    SCORING_SETTINGS,
    Engine,
    Member,
    PruneJob,
    Rates,
    Schedule,
    Scoring,
    TrainJob,
    from_json,
    to_json,
)
from paper import SETTINGS, paper_schedule

SCHEMA = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml")
                        .read_text())
EXPERIMENT = SCHEMA["definitions"]["experiment"]["properties"]


def names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_the_schemas_train_and_engine_blocks_are_the_specs_fields():
    assert set(SCHEMA["definitions"]["schedule"]["properties"]) == names(Schedule)
    assert set(EXPERIMENT["engine"]["properties"]) == names(Engine)
    assert {f"rate_{k}" for k in names(Rates)} <= set(EXPERIMENT["imp"]["properties"])


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_paper_setting_speaks_the_configs_keys(name):
    keys = set(SCHEMA["definitions"]["schedule"]["properties"]) | set(
        EXPERIMENT["imp"]["properties"])
    assert set(paper_schedule(name)) <= keys


def test_a_job_survives_its_json_and_bad_values_are_named():
    schedule = Schedule(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                        weight_decay=5e-4, batch_size=128, iterations=100, milestones=(50, 75),
                        gamma=0.1, warmup=10, dropout=0.0, augment=True, eval_every=10,
                        eval_batch_size=1000)
    job = TrainJob("e", "data/x", None, "cpu", schedule,
                   Engine(stack="auto", slots=16, capture=True, tf32=False),
                   (Member(seed=3, method="scratch_b_imp", family="control", level="round2",
                           init="a.safetensors", out_dir="o", mask="m.safetensors",
                           fresh_init="scratch_b_imp/round2", draw=2, start_iteration=0,
                           compute_matched=True, budget_cap=2, counted_kinds=("conv", "fc")),
                    Member(seed=3, method="imp", family="lottery", level="round2",
                           init="r.safetensors", out_dir="p", start_iteration=500)))
    assert from_json(TrainJob, to_json(job)) == job
    assert from_json(TrainJob, to_json(job)).members[0].budget_cap == 2.0
    with pytest.raises(LthError, match=r"^--job.schedule.nesterov: expected true or false"):
        from_json(TrainJob, to_json(job).replace('"nesterov":true', '"nesterov":1'))


def test_a_data_criterion_reads_exactly_its_scoring_settings():
    assert set(SCORING_SETTINGS) == {"snip", "grasp"}
    assert set().union(*SCORING_SETTINGS.values()) == names(Scoring)
    assert SCORING_SETTINGS["snip"] == ("score_batch_size", "snip_batchnorm")
    job = PruneJob(experiment="e", seed=0, weights="w", criterion="grasp", scope="global",
                   purpose="grasp/density0.1", iterations=1, device="cpu", out="o",
                   density=0.1, scoring=Scoring(64, 10, 200.0, grasp_batchnorm="batch"))
    assert from_json(PruneJob, to_json(job)) == job
