"""The benchmark scripts' own logic: the record they write, the preset slice, the log parser."""

import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import preset_timing  # noqa: E402
import record  # noqa: E402

LOG = """\
Select jobs to execute...
Execute 2 jobs...
[Mon Nov 23 16:08:32 2026]
localrule prepare_data:
    output: data/fashion_mnist/manifest.json, data/fashion_mnist/tensors.safetensors
    jobid: 4
    wildcards: dataset=fashion_mnist
[Mon Nov 23 16:08:33 2026]
rule imp_lenet_fmnist:
    output: results/lenet_fmnist/seed0/imp/round1/final.safetensors
    jobid: 7
    wildcards: r=1
[Mon Nov 23 16:08:36 2026]
Finished jobid: 4 (Rule: prepare_data)
1 of 3 steps (33%) done
[Mon Nov 23 16:08:45 2026]
rule imp_lenet_fmnist:
    jobid: 8
    wildcards: r=2
[Mon Nov 23 16:08:47 2026]
Finished jobid: 7 (Rule: imp_lenet_fmnist)
[Mon Nov 23 16:09:47 2026]
Finished jobid: 8 (Rule: imp_lenet_fmnist)
"""


def test_job_durations_pair_each_finish_with_its_start_even_interleaved():
    durations = preset_timing.job_durations(LOG)
    assert durations == [("prepare_data", 4.0), ("imp_lenet_fmnist", 14.0),
                         ("imp_lenet_fmnist", 62.0)]
    assert preset_timing.per_rule(durations) == {
        "imp_lenet_fmnist": {"jobs": 2, "seconds": 76.0, "longest": 62.0},
        "prepare_data": {"jobs": 1, "seconds": 4.0, "longest": 4.0}}


def test_a_slice_sets_dotted_keys_in_every_experiment_and_leaves_the_preset():
    preset = {"experiments": {"a": {"seeds": [0, 1], "imp": {"rounds": 20}},
                              "b": {"seeds": [3]}}}
    before = json.dumps(preset)
    out = preset_timing.sliced(preset, ["seeds=[0]", "imp.rounds=2", "train.iterations=500"])
    assert out == {"a": {"seeds": [0], "imp": {"rounds": 2}, "train": {"iterations": 500}},
                   "b": {"seeds": [0], "imp": {"rounds": 2}, "train": {"iterations": 500}}}
    assert json.dumps(preset) == before


def test_the_record_keeps_other_sections_and_replaces_its_own(tmp_path):
    path, cpu = tmp_path / "r.json", torch.device("cpu")
    record.add_section(path, "cohort_throughput", cpu, {"cohort_speedup": 1.5})
    record.add_section(path, "preset_timing", cpu, {"wall_seconds": 60.0})
    record.add_section(path, "cohort_throughput", cpu, {"cohort_speedup": 2.5})
    saved = json.loads(path.read_text())
    assert {k: v["figures"] for k, v in saved["sections"].items()} == {
        "cohort_throughput": {"cohort_speedup": 2.5}, "preset_timing": {"wall_seconds": 60.0}}
    machine = saved["machine"]
    assert machine["device_type"] == "cpu" and machine["torch_build"] == torch.__version__
    assert machine["packages"]["torch"] == torch.__version__.split("+")[0]
    assert len(machine["code_version"]["source_sha256"]) == 64


def test_the_default_record_path_names_the_day_and_the_device():
    path = record.default_path(torch.device("cpu"))
    assert path.parent == REPO / "benchmarks" / "results"
    assert path.name[:4].isdigit() and path.suffix == ".json" and " " not in path.name
