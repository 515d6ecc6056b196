"""The real Snakemake on the tiny config: the whole DAG to the report, then what reruns."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import workflow_runner
from generated import write_learnable_idx_folder
from helpers import is_nested
from lth.plan.config_checks import with_defaults
from lth.report import claims
from lth.report.figures import FIGURES
from lth.verbs.cli import main
from paper import SETTINGS, paper_schedule
from workflow_runner import REPO, TINY, copy_checkout, output_of

PRESETS = sorted((REPO / "workflow" / "presets").glob("*.yaml"))


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run ({} if nothing to do)."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def variant(workdir: Path, edit) -> Path:
    """A copy of the tiny config changed by edit(config)."""
    cfg = yaml.safe_load(TINY.read_text())
    edit(cfg)
    path = workdir / "variant.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """A copied checkout, as its working directory, where the tiny workflow ran to its
    reports (a test may edit its code)."""
    workdir = copy_checkout(tmp_path_factory.mktemp("tiny"))
    write_learnable_idx_folder(workdir / "tiny_fmnist", n_train=600, n_test=200)
    output_of(workdir, "all")
    return workdir


def test_summary_has_a_row_per_method_level_and_seed(done):
    summary = pd.read_csv(done / "results/tiny/summary.csv")
    counts = summary.groupby("method").size().to_dict()
    assert counts == {"imp": 3, "imp_oneshot": 2, "reinit": 4, "random_pruning": 2,
                      "scratch_e_imp": 2, "scratch_e_finetune": 2, "scratch_b_imp": 2,
                      "scratch_b_finetune": 2, "finetune": 2, "snip": 1, "grasp": 1,
                      "synflow": 1, "earlybird_rewind": 1, "earlybird_resume": 1,
                      "earlybird_scratch_rest": 1, "earlybird_scratch": 1, "edge_popup": 1,
                      "gem_miner_gem": 1, "gem_miner": 1, "double": 2, "scored": 2,
                      "regrow_random_double": 2, "regrow_random_scored": 2}
    imp = summary[summary.method == "imp"].sort_values("round")
    assert imp.density.is_monotonic_decreasing and imp.density.iloc[0] == 1.0
    # imp_oneshot keeps exactly the per-layer counts of the IMP round it matches
    merged = summary[summary.method == "imp_oneshot"].merge(imp, on="round")
    assert (merged.params_kept_x == merged.params_kept_y).all()
    trained = summary[summary.weights_trained]  # edge-popup and the gem are not trained
    assert (trained.final_test_accuracy > 0.5).all()  # the tiny data are learnable
    assert set(summary.loc[summary.method.isin(["snip", "synflow"]), "target_density"]) == {0.1}
    reinit = summary[summary.method == "reinit"]
    draws = sorted(zip(reinit["round"], reinit.draw, strict=True))
    assert draws == [(1, 0), (1, 1), (2, 0), (2, 1)]


def run_json(done: Path, method: str, level: str) -> dict:
    return json.loads((done / f"results/tiny/seed0/{method}/{level}/run.json").read_text())


def tensors(done: Path, method: str, level: str, name: str) -> dict:
    return load_file(done / f"results/tiny/seed0/{method}/{level}/{name}.safetensors")


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def test_scratch_trains_the_source_mask_from_a_fresh_init(done):
    """Liu et al. 2019: Scratch-E/B keep the pruned network's mask and re-initialise it;
    Scratch-B trains dense/sparse MACs times the schedule (uncapped by default)."""
    for source in ("imp", "finetune"):
        mask = tensors(done, source, "round2", "mask")
        for variant in ("e", "b"):
            method = f"scratch_{variant}_{source}"
            assert same_tensors(tensors(done, method, "round2", "mask"), mask)
            assert not same_tensors(tensors(done, method, "round2", "final"),
                                    tensors(done, source, "round2", "final"))
            result = run_json(done, method, "round2")["result"]
            assert result["start_iteration"] == 0
            factor = result["dense_macs"] / result["macs"]
            assert result["budget_factor"] == (factor if variant == "b" else 1.0)
            assert result["iterations"] == (math.ceil(30 * factor) if variant == "b" else 30)
    job = json.loads(run_json(done, "scratch_e_finetune", "round2")["argv"][2])
    (member,) = job["members"]
    assert member["fresh_init"] == "scratch_finetune/round2"
    assert member["init"] == "results/tiny/seed0/init.safetensors"


def test_reinit_draws_share_the_mask_and_differ_in_init(done):
    assert same_tensors(tensors(done, "reinit", "round1", "mask"),
                        tensors(done, "reinit_draw1", "round1", "mask"))
    assert not same_tensors(tensors(done, "reinit", "round1", "final"),
                            tensors(done, "reinit_draw1", "round1", "final"))
    assert run_json(done, "reinit_draw1", "round1")["result"]["draw"] == 1


def test_rewound_networks_train_from_the_rewind_iteration(done):
    """imp.rewind_iteration 5, schedule continuing: the ticket and its controls train
    iterations 5..30 (their metrics start at 5); Scratch-E trains 0..30."""
    for method in ("imp", "imp_oneshot", "reinit", "reinit_draw1", "random_pruning"):
        assert run_json(done, method, "round1")["result"]["start_iteration"] == 5, method
        metrics = pd.read_csv(done / f"results/tiny/seed0/{method}/round1/metrics.csv")
        assert metrics.iteration.min() == 5 and metrics.iteration.max() == 30
    job = json.loads(run_json(done, "random_pruning", "round1")["argv"][2])
    (member,) = [m for m in job["members"] if m["method"] == "random_pruning"]
    assert member["init"] == "results/tiny/seed0/imp/round0/rewind.safetensors"
    assert member["fresh_init"] is None
    metrics = pd.read_csv(done / "results/tiny/seed0/scratch_e_imp/round1/metrics.csv")
    assert metrics.iteration.min() == 0


def test_reports_are_complete(done):
    html = (done / "reports/tiny/report.html").read_text()
    assert html.count("data:image/png;base64,") >= 8
    assert "Reproduction scorecard" in html
    scorecard = pd.read_csv(done / "reports/tiny/scorecard.csv")
    assert len(scorecard) == len(claims.CLAIMS)
    assert (done / "reports/tiny/report.pdf").read_bytes().startswith(b"%PDF")
    provenance = json.loads((done / "reports/tiny/provenance.json").read_text())
    # the DAG's figure list (workflow/rules/figures.smk) is the registry of lth.report
    drawn = {p.stem for p in (done / "reports/tiny/figures").glob("*.pdf")}
    assert drawn == set(provenance["figures"]) == set(FIGURES)


def test_similarity_compares_the_methods_masks_at_each_round(done):
    """Scratch-E and reinit train IMP's masks, one-shot IMP's first round is IMP's, random
    pruning keeps IMP's per-layer counts and is at chance; one seed: no view across seeds."""
    table = pd.read_csv(done / "results/tiny/similarity.csv")
    assert set(table.view) == {"mask"}
    overall = table[table.layer == "all"]

    def pair(a, b, level):
        rows = overall[(overall.method_a == a) & (overall.method_b == b)
                       & (overall.level_a == level) & (overall.level_b == level)]
        assert len(rows) >= 1, (a, b, level)
        return rows

    for level in ("round1", "round2"):
        for same in (pair("imp", "scratch_e_imp", level), pair("imp", "reinit", level)):
            assert (same.jaccard == 1).all() and (same.excess == 1).all()
            assert (same.hamming == 0).all()
        assert len(pair("imp", "reinit", level)) == 2  # both draws
        random = pair("imp", "random_pruning", level)
        assert (random.profile_distance == 0).all()
        assert (random.excess.abs() < 4 * random.excess_sd).all()
        assert random.jaccard.iloc[0] == pytest.approx(random.expected_jaccard.iloc[0],
                                                       abs=0.02)
    assert pair("imp", "imp_oneshot", "round1").excess.iloc[0] == 1
    assert 0 < pair("imp", "imp_oneshot", "round2").excess.iloc[0] < 1
    assert len(pair("snip", "synflow", "density0.1")) == 1
    first = table[(table.layer == "fc1.weight") & (table.method_a == "imp")
                  & (table.method_b == "scratch_e_imp")]
    assert (first.in_degree_correlation == 1).all()
    vgg = pd.read_csv(done / "results/tiny_vgg/similarity.csv")
    smaller = vgg.method_a.str.startswith("filter") | vgg.method_b.str.startswith("filter")
    assert set(vgg[smaller].method_a + " " + vgg[smaller].method_b) == {
        "filter_l1 filter_scratch"}  # a smaller network compares only with its own shape
    assert (vgg[smaller].jaccard == 1).all()


def test_tickets_found_early_or_without_weight_training(done):
    """Early-Bird draws its ticket within the search; earlybird_resume trains on from there,
    earlybird_scratch_rest from a fresh init (the authors' code's EB Train) from t_EB on;
    edge-popup and the GEM-MINER gem never train a weight (final = frozen start x mask);
    gem_miner trains the weights of the gem's flags from that start; every ticket but the gem
    hits its density exactly, the gem (the rounded mask) keeps at most that, inside the flags."""
    search = json.loads((done / "results/tiny/seed0/earlybird/search.json").read_text())
    (ticket,) = search["search"]["tickets"]
    assert 0 < ticket["iteration"] <= 30 and ticket["iteration"] % 5 == 0
    readings = {"earlybird_rewind": (0, None), "earlybird_resume": (ticket["iteration"], None),
                "earlybird_scratch_rest": (ticket["iteration"], "earlybird_fresh/density0.1"),
                "earlybird_scratch": (0, "earlybird_fresh/density0.1")}
    for method, (start, fresh) in readings.items():
        record = run_json(done, method, "density0.1")
        assert record["result"]["start_iteration"] == start, method
        assert record["params"]["members"][0]["fresh_init"] == fresh, method
    init = load_file(done / "results/tiny/seed0/init.safetensors")
    target = round(0.1 * 266200)
    for method in (*readings, "edge_popup", "gem_miner"):
        result = run_json(done, method, "density0.1")["result"]
        assert result["params_kept"] == target, method
    gem = run_json(done, "gem_miner_gem", "density0.1")["result"]
    assert 0 < gem["params_kept"] <= target
    assert gem["mining"]["flags"] == {"kept": target, "density": target / 266200}
    flags = tensors(done, "gem_miner_gem", "density0.1", "flags")
    assert is_nested(tensors(done, "gem_miner_gem", "density0.1", "mask"), flags)
    assert same_tensors(tensors(done, "gem_miner", "density0.1", "mask"), flags)
    for method, name in (("edge_popup", "final"), ("gem_miner_gem", "final"),
                         ("gem_miner_gem", "start")):
        result = run_json(done, method, "density0.1")["result"]
        assert result["weights_trained"] is False
        # only the final mask is kept: its accuracy is the early-stop one
        assert (result["early_stop_iteration"], result["early_stop_test_accuracy"]) == (
            30, result["final_test_accuracy"])
        values = tensors(done, method, "density0.1", name)
        mask = flags if name == "start" else tensors(done, method, "density0.1", "mask")
        for layer, kept in mask.items():
            sigma = (2 / init[layer][0].numel()) ** 0.5
            expected = torch.where(init[layer] >= 0, sigma, -sigma) * kept
            assert torch.allclose(values[layer], expected), (method, name, layer)
        assert values["fc1.bias"].equal(init["fc1.bias"])
    trained = tensors(done, "gem_miner", "density0.1", "final")
    assert not trained["fc1.weight"].equal(
        tensors(done, "gem_miner_gem", "density0.1", "start")["fc1.weight"])


def test_reintroduction_keeps_imps_counts_and_round_one(done):
    """Round 1 of Double-/Scored-pruning and their random controls is IMP's round 1 (nothing
    was pruned before it); later rounds keep IMP's per-layer counts with other weights; each
    control re-introduces exactly its method's g_l, which run.json records."""
    imp1 = tensors(done, "imp", "round1", "mask")
    for method in ("double", "scored", "regrow_random_double", "regrow_random_scored"):
        assert same_tensors(tensors(done, method, "round1", "mask"), imp1)
        mask = tensors(done, method, "round2", "mask")
        imp2 = tensors(done, "imp", "round2", "mask")
        assert {n: int(m.sum()) for n, m in mask.items()} == {
            n: int(m.sum()) for n, m in imp2.items()}
        assert not same_tensors(mask, imp2), method
    for control, method in (("regrow_random_double", "double"),
                            ("regrow_random_scored", "scored")):
        own = run_json(done, method, "round2")["pruning_extension"]["reintroduced"]
        assert run_json(done, control, "round2")["pruning_extension"]["reintroduced"] == own
        assert sum(own.values()) > 0, method
    complement = tensors(done, "double_complement", "round1", "mask")
    assert all(complement[n].equal(~imp1[n].bool()) for n in imp1)
    assert (done / "results/tiny/seed0/scored/round1/regrow_scores.safetensors").is_file()


def test_cost_columns_count_each_tickets_lineage(done):
    """IMP round r costs the trainings of rounds 0..r-1 to find; a control costs what its
    mask cost; edge-popup's cost is its mining; iterations to target are never 0 by default."""
    summary = pd.read_csv(done / "results/tiny/summary.csv").set_index(["method", "level"])
    imp = summary.loc["imp"]
    assert imp.loc["round2", "find_macs"] == (imp.loc["round0", "train_macs"]
                                              + imp.loc["round1", "train_macs"])
    assert summary.loc[("reinit", "round2"), "find_macs"].tolist() == [
        imp.loc["round2", "find_macs"]] * 2
    assert bool(summary.loc[("reinit", "round2"), "control"].all())
    popup = summary.loc[("edge_popup", "density0.1")]
    assert popup.find_macs == 0 and popup.train_macs > 0 and not popup.weights_trained


def test_elastic_transfer_trains_the_stretched_ticket(done):
    """mlp32x2's round-1 ticket stretched to mlp32x3: the copied layer's mask is the
    source's (interleave) or shuffled with the same count (the random-mask control)."""
    def mask(exp, method):
        return load_file(done / f"results/{exp}/seed0/{method}/round1/mask.safetensors")

    source = mask("tiny_mlp_src", "imp")
    stretched = mask("tiny_mlp", "elastic_interleave")
    assert stretched["fc1.weight"].equal(source["fc1.weight"])
    copies = [n for n in stretched if n.startswith("fc") and n != "fc1.weight"]
    assert all(stretched[n].equal(source["fc2.weight"]) for n in copies)
    shuffled = mask("tiny_mlp", "elastic_interleave_randmask")
    assert [int(shuffled[n].sum()) for n in copies] == [int(source["fc2.weight"].sum())] * 2
    summary = pd.read_csv(done / "results/tiny_mlp/summary.csv")
    assert set(summary.method) == {"imp", "elastic_interleave", "elastic_interleave_randmask",
                                   "elastic_tail", "elastic_tail_randmask"}


def test_a_jobs_output_is_kept_in_its_log(done):
    """Each job tees what it prints into its own log: a training cohort's progress lines,
    the filter pruning's sizes."""
    training = (done / "results/tiny/logs/imp/round1.log").read_text()
    assert "[tiny seed0 imp/round1] it 30/30 " in training
    pruning = (done / "results/tiny_vgg/logs/filter_prune/half_ends/seed0.log").read_text()
    before, after = map(int, re.match(r"filter pruning: (\d+) -> (\d+) weights", pruning).groups())
    assert after < before


def test_second_dry_run_has_nothing_to_do(done):
    assert planned_jobs(output_of(done, "-n", "all")) == {}


COHORTS = ["dense_tiny", "imp_tiny", "imp_oneshot_tiny", "controls_tiny", "scratch_e_tiny",
           "scratch_b_tiny", "finetune_tiny", "at_init_tiny", "earlybird_tiny",
           "edge_popup_tiny", "gem_miner_tiny", "reintroduce_tiny"]
ONE_JOB = {"dense_tiny": 1, "at_init_tiny": 3, "earlybird_tiny": 1, "edge_popup_tiny": 1,
           "gem_miner_tiny": 1}  # the kinds that are not one job per IMP round
OTHER_TRAINING = {"dense_tiny_vgg", "imp_tiny_vgg", "filter_prune", "filter_l1_tiny_vgg",
                  "filter_scratch_tiny_vgg", "earlybird_tiny_vgg", "dense_tiny_mlp_src",
                  "imp_tiny_mlp_src", "dense_tiny_mlp", "imp_tiny_mlp", "elastic_tiny_mlp"}
AGGREGATES = {"summarize": 1, "similarity": 1, "figures_tiny": 1, "report_html": 1,
              "report_pdf": 1, "all": 1}
REPORTS = {"figures_tiny", "figures_tiny_vgg", "figures_tiny_mlp", "figures_tiny_mlp_src",
           "report_html", "report_pdf", "all"}


def test_adding_a_seed_reruns_its_cohorts_and_keeps_the_old_seeds_bytes(done, tmp_path):
    """A cohort is every seed of one method and level: a new seed joins (reruns) each
    cohort, and the old seed's networks come out byte-identical (shown on one job, the
    dense cohort, retrained with both seeds)."""
    copy = tmp_path / "copy"
    shutil.copytree(done, copy, symlinks=True)
    config = variant(copy, lambda c: c["experiments"]["tiny"].update(seeds=[0, 1]))
    jobs = planned_jobs(output_of(copy, "-n", "all", config=config))
    assert jobs == AGGREGATES | ONE_JOB | {
        rule: 2 for rule in COHORTS if rule not in ONE_JOB}
    dense = copy / "results/tiny/seed0/imp/round0"
    before = {p: p.read_bytes() for p in dense.iterdir() if p.suffix in (".safetensors", ".csv")}
    output_of(copy, "results/tiny/seed1/imp/round0/run.json", config=config)
    assert json.loads((dense / "run.json").read_text())["cohort"]["size"] == 2  # retrained
    assert len(before) == 4  # final, mask, rewind, metrics
    assert all(p.read_bytes() == data for p, data in before.items())


def test_moving_a_checkout_with_its_results_reruns_nothing(tmp_path):
    """Run in the checkout itself, the rules name the checkout's code files relative to it:
    a moved (or renamed) checkout keeps its jobs' inputs and params."""
    checkout = copy_checkout(tmp_path / "checkout")
    write_learnable_idx_folder(checkout / "tiny_fmnist", n_train=600, n_test=200)
    target = "data/fashion_mnist/manifest.json"
    output_of(checkout, target)
    moved = checkout.rename(tmp_path / "moved")
    assert planned_jobs(output_of(moved, "-n", target)) == {}


def test_changing_the_pruning_rate_keeps_theta_0_and_the_dense_run(done):
    jobs = planned_jobs(output_of(done, "-n", "all", config=variant(
        done, lambda c: c["experiments"]["tiny"]["imp"].update(rate_fc=0.4))))
    assert "dense_tiny" not in jobs and "prepare_data" not in jobs
    assert jobs["imp_tiny"] == 2 and jobs["imp_oneshot_tiny"] == 2
    assert jobs["controls_tiny"] == jobs["scratch_e_tiny"] == jobs["scratch_b_tiny"] == 2
    assert "at_init_tiny" not in jobs  # pruning at init does not depend on the IMP rate


def planned_outputs(output: str) -> set[str]:
    """The run folders (method/level) of the training jobs a dry run plans."""
    return set(re.findall(r"results/tiny/seed0/([a-z_0-9]+/[a-z0-9.]+)/final.safetensors",
                          "\n".join(line for line in output.splitlines()
                                    if line.strip().startswith("output:"))))


@pytest.mark.parametrize("edit,jobs,folders", [
    (lambda e: e["at_init"]["methods"]["synflow"].update(iterations=20), {"at_init_tiny": 1},
     {"synflow/density0.1"}),
    (lambda e: e["at_init"].update(grasp_temperature=100.0), {"at_init_tiny": 1},
     {"grasp/density0.1"}),
    (lambda e: e["at_init"].update(samples_per_class=3), {"at_init_tiny": 1},
     {"grasp/density0.1"}),
    (lambda e: e["at_init"].update(grasp_batchnorm="running"), {"at_init_tiny": 1},
     {"grasp/density0.1"}),
    (lambda e: e["at_init"].update(snip_batchnorm="batch"), {"at_init_tiny": 1},
     {"snip/density0.1"}),
    (lambda e: e["at_init"].update(score_batch_size=40), {"at_init_tiny": 2},
     {"snip/density0.1", "grasp/density0.1"}),
    (lambda e: e["controls"].update(scratch_b_cap=2.0), {"scratch_b_tiny": 2},
     {f"scratch_b_{s}/round{r}" for s in ("imp", "finetune") for r in (1, 2)}),
    (lambda e: e["controls"].update(reinit_draws=3), {"controls_tiny": 2},
     {f"{m}/round{r}" for m in ("reinit", "reinit_draw1", "reinit_draw2", "random_pruning")
      for r in (1, 2)}),
    # fine-tuning's masks are Scratch-E/B's too: their jobs (one per round) rerun with it
    (lambda e: e["finetune"].update(lr_scale=0.2),
     {"finetune_tiny": 2, "scratch_e_tiny": 2, "scratch_b_tiny": 2},
     {f"{m}/round{r}" for m in ("finetune", "scratch_e_imp", "scratch_e_finetune",
                                "scratch_b_imp", "scratch_b_finetune") for r in (1, 2)}),
])
def test_a_methods_setting_reruns_only_that_method(done, edit, jobs, folders):
    """A method's setting reruns only its jobs (a scoring setting only the criteria that read
    it, spec.SCORING_SETTINGS); nothing downstream of them but the aggregates."""
    output = output_of(done, "-n", "all", config=variant(
        done, lambda c: edit(c["experiments"]["tiny"])))
    assert planned_jobs(output) == AGGREGATES | jobs
    assert planned_outputs(output) == folders


@pytest.mark.parametrize("module,reruns", [
    ("report/figures.py", REPORTS),
    ("report/claims.py", {"report_html", "report_pdf", "all"}),
    ("report/latex.py", {"report_html", "report_pdf", "all"}),
    ("analysis/summary.py", REPORTS | {"summarize", "similarity"}),
    ("analysis/similarity.py", REPORTS | {"similarity"}),  # the figures read similarity.csv
    ("analysis/cost.py", REPORTS | {"summarize", "similarity"}),
    ("methods/supermask.py", set(AGGREGATES) | {"edge_popup_tiny", "gem_miner_tiny"}),
    ("core/cohort.py", REPORTS | {"summarize", "similarity"} | set(COHORTS) | OTHER_TRAINING),
    ("core/masks.py", REPORTS | {"summarize", "similarity"} | set(COHORTS)
     | OTHER_TRAINING),  # every verb that builds networks imports it
    ("core/provenance.py", REPORTS | {"prepare_data", "summarize", "similarity"} | set(COHORTS)
     | OTHER_TRAINING),  # every verb imports it (through lth.verbs.commands)
])
def test_a_code_change_reruns_only_the_jobs_that_import_it(done, module, reruns):
    """Each rule's code inputs are the modules its verb imports (editing the report never
    reruns training); shown by adding a comment line to one source file of the run's own
    copied checkout for a dry run."""
    path = done / "src" / "lth" / module
    original, stat = path.read_bytes(), path.stat()
    try:
        path.write_bytes(original + b"# an edit\n")
        jobs = planned_jobs(output_of(done, "-n", "all"))
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert set(jobs) == reruns


def test_a_training_job_imports_only_its_declared_code(done, tmp_path):
    """The lth modules a training job loads are exactly those its rule lists as code."""
    run = json.loads((done / "results/tiny/seed0/imp/round1/run.json").read_text())
    job = json.loads(run["argv"][2])
    job["members"][0]["out_dir"] = str(tmp_path / "probe")  # leave the workflow's files be
    job = json.dumps(job)
    probe = ("import sys; from lth.verbs.cli import main; main(sys.argv[1:]); "
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('lth.'))))")
    out = subprocess.run([sys.executable, "-c", probe, "train", "--job", job],
                         capture_output=True, text=True, cwd=done, check=True).stdout
    loaded = {m.removeprefix("lth.") for m in out.split("\n")[-2].split()}
    declared = {"core", "methods", "plan", "verbs", "verbs.cli", "verbs.commands", "core.errors",
                "core.io", "core.provenance", "plan.catalog", "plan.spec", "plan.registry",
                "plan.plugins", "core.seeding", "core.masks", "core.data", "core.models",
                "core.networks", "core.records", "core.train", "core.cohort", "core.workers",
                "methods.criteria", "methods.imp", "methods.train_jobs"}
    assert loaded <= declared and "report" not in loaded and "verbs.report" not in loaded


def declared_code(done: Path) -> dict[str, set[str]]:
    """Rule -> the lth modules its code inputs list (as in sys.modules, less 'lth.'), for
    the figures and report jobs of a forced dry run."""
    output = output_of(done, "-n", "reports/tiny/report.pdf", "--forcerun", "figures_tiny",
                       "report_html", "report_pdf")
    blocks = re.finditer(r"^(?:local)?rule (\w+):\n\s+input: (.*)$", output, re.M)
    return {m[1]: {name.removesuffix("/__init__").replace("/", ".")
                   for name in re.findall(r"src/lth/([\w/]+)\.py", m[2])} for m in blocks}


def report_verbs(done: Path, out: Path) -> dict[str, list[str]]:
    """Rule -> the arguments of one verb it runs, writing under out."""
    record = json.loads((done / "reports/tiny/figures/layer_density.pdf.provenance.json")
                        .read_text())
    tables = [a for t in ("summary", "layers", "curves", "similarity", "indegree")
              for a in (f"--{t}", f"results/tiny/{t}.csv")]
    told = ["--experiment", "tiny", *tables, "--style", json.dumps(record["params"]["style"]),
            "--settings", json.dumps(record["params"]["settings"])]
    figures = sorted(str(p) for p in (done / "reports/tiny/figures").glob("*.pdf"))
    return {
        "figures_tiny": ["figure", "--name", "layer_density", *told, "--out-dir", str(out)],
        "report_html": ["report", *told, "--figures", *figures, "--out-dir", str(out)],
        "report_pdf": ["pdf", "--tex", str(out / "report.tex")],
    }


def reporting(modules: set[str]) -> set[str]:
    """The report-side modules among modules."""
    return {m for m in modules
            if m.startswith("report") or m in ("verbs.report", "analysis.summary")}


def test_a_report_job_imports_exactly_its_report_code(done, tmp_path):
    """The report modules (lth.report.*, verbs.report, analysis.summary) each figures/report job
    loads are exactly those its rule lists as code: an edit reruns it if and only if it matters."""
    declared = declared_code(done)
    probe = ("import sys; from lth.verbs.cli import main; rc = main(sys.argv[1:]); "
             "print(' '.join(sorted(m for m in sys.modules if m.startswith('lth.')))); "
             "sys.exit(rc)")
    for rule, argv in report_verbs(done, tmp_path).items():  # in order: pdf needs the .tex
        out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                             text=True, cwd=done, check=True).stdout
        loaded = {m.removeprefix("lth.") for m in out.split("\n")[-2].split()}
        assert reporting(loaded) == reporting(declared[rule]), rule
    assert "report.claims" in declared["report_html"]
    assert "report.claims" not in declared["figures_tiny"] | declared["report_pdf"]


def test_changing_a_figure_style_reruns_only_figures_and_reports(done):
    jobs = planned_jobs(output_of(done, "-n", "all", config=variant(
        done, lambda c: c["figures"].update(dpi=80))))
    assert set(jobs) == REPORTS


def test_audit_of_a_figure_reaches_the_dataset_files(done, capsys, monkeypatch):
    monkeypatch.chdir(done)
    assert main(["audit", "reports/tiny/figures/accuracy_vs_density.pdf"]) == 0
    lines = capsys.readouterr().out.splitlines()
    raw = [line for line in lines if "FashionMNIST/raw/train-images-idx3-ubyte.gz" in line]
    assert raw and all("[ok]" in line and "sha256=" in line for line in raw)
    assert any("made by: lth train" in line for line in lines)
    assert any("made by: lth init" in line for line in lines)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_passes_a_dry_run(preset, tmp_path):
    jobs = planned_jobs(output_of(tmp_path, "-n", "report", config=preset))
    assert jobs["report_pdf"] >= 1 and any(rule.startswith("dense_") for rule in jobs)


PRESET_SETTINGS = {  # (preset, experiment) -> the tests/paper.py setting its train/imp blocks hold
    ("lth_lenet_mnist", "lenet300_100_mnist"): "frankle2019_lenet300_100_mnist",
    ("lth_lenet_fmnist", "lenet300_100_fmnist"): "frankle2019_lenet300_100_mnist",
    ("lth_conv_cifar10", "conv2_cifar10"): "frankle2019_conv2_cifar10",
    ("lth_conv_cifar10", "conv4_cifar10"): "frankle2019_conv4_cifar10",
    ("lth_conv_cifar10", "conv6_cifar10"): "frankle2019_conv6_cifar10",
    ("lth_conv_cifar10", "conv2_cifar10_dropout"): "frankle2019_conv2_cifar10_dropout",
    ("lth_resnet18_cifar10_rewind", "resnet20_cifar10_rewind"):
        "frankle2019b_resnet18_cifar10_rewind",
    ("lth_vgg19_cifar10_rewind", "vgg19_cifar10_rewind"): "frankle2019b_vgg19_cifar10_rewind",
    ("synflow_cifar10", "vgg16_cifar10_synflow"): "tanaka2020_synflow_vgg16_cifar10",
    ("synflow_cifar10", "resnet18_cifar10_synflow"): "tanaka2020_synflow_resnet18_cifar10",
    ("speech_commands_mlp", "speech_mlp_speech_commands"): "project_speech_mlp_speech_commands",
}
"""li2017_vgg16_cifar10_filters is left out: it trains on 45,000 images (its header)."""


@pytest.mark.parametrize(("preset", "experiment"), sorted(PRESET_SETTINGS))
def test_a_preset_runs_its_papers_setting(preset, experiment):
    """Every value of the cited tests/paper.py setting is the preset's (schema defaults filled
    in): model, training (incl. the initialiser) and IMP (incl. the shortcut rate)."""
    key = PRESET_SETTINGS[preset, experiment]
    cfg = yaml.safe_load((REPO / "workflow/presets" / f"{preset}.yaml").read_text())
    e = with_defaults(cfg, REPO / "workflow/schemas/config.schema.yaml")["experiments"][experiment]
    assert e["model"] == SETTINGS[key].model
    blocks = e["train"] | e["imp"]
    assert {k: blocks[k] for k in paper_schedule(key)} == paper_schedule(key)


@pytest.mark.parametrize("experiment", ["lenet300_100_mnist", "conv2_cifar10", "conv4_cifar10",
                                        "conv6_cifar10", "conv2_cifar10_dropout"])
def test_the_lth_presets_evaluate_every_100_iterations_with_three_reinit_draws(experiment):
    """Frankle & Carbin 2019, App. G.1/H.1 (every 100 iterations) and Sec. 2 (three
    reinitialisations per trial)."""
    preset = "lth_lenet_mnist" if experiment.startswith("lenet") else "lth_conv_cifar10"
    cfg = yaml.safe_load((REPO / "workflow/presets" / f"{preset}.yaml").read_text())
    e = cfg["experiments"][experiment]
    assert e["train"]["eval_every"] == 100 and e["controls"]["reinit_draws"] == 3


def test_bad_config_is_rejected_naming_the_key(tmp_path):
    bad = variant(tmp_path, lambda c: c["experiments"]["tiny"]["imp"].update(rate_fc=1.5))
    run = workflow_runner.run(tmp_path, "-n", config=bad, check=False)
    assert run.returncode != 0 and "rate_fc" in run.stdout + run.stderr


def vgg_weights(cfg: list[int], in_channels: int, classes: int) -> int:
    """Conv weights (3x3) plus the output layer of a CIFAR-form VGG with these widths."""
    widths = [in_channels, *cfg]
    return sum(9 * a * b for a, b in zip(widths, widths[1:], strict=False)) + cfg[-1] * classes


def test_filter_pruning_makes_a_smaller_dense_network(done):
    summary = pd.read_csv(done / "results/tiny_vgg/summary.csv").set_index("method")
    vgg16 = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    half_ends = [32, *vgg16[1:-1], 256]  # conv1 and conv13 lose half their filters
    dense = vgg_weights(vgg16, 1, 10)
    assert summary.loc["imp"].query("round == 0").params_total.item() == dense
    for method in ("filter_l1", "filter_scratch"):
        row = summary.loc[method]
        assert row.params_total == dense
        assert row.params_kept == vgg_weights(half_ends, 1, 10)
        assert row.macs < row.dense_macs and row.latency_seconds > 0
        assert row.family == "baseline"


def test_early_birds_channel_tickets_are_smaller_vggs(done):
    """The channel variant keeps round(0.7 x 4,224) BatchNorm channels over all layers;
    earlybird_rewind starts from theta_0's surviving weights, earlybird_resume from the
    draw's at t_EB, the scratch readings from a fresh init (at t_EB for scratch_rest)."""
    out = done / "results/tiny_vgg/seed0"
    channels = load_file(out / "earlybird/channels70/channels.safetensors")
    kept = [int(channels[f"bn{i}"].sum()) for i in range(1, 14)]  # forward order
    assert sum(kept) == 2957 and min(kept) > 0
    (ticket,) = json.loads((out / "earlybird/search.json").read_text())["search"]["tickets"]
    init = load_file(out / "init.safetensors")
    at_init = load_file(out / "earlybird/channels70/weights_at_init.safetensors")
    first = channels["bn1"].nonzero().squeeze(1)
    assert at_init["conv1.weight"].equal(init["conv1.weight"][first])
    summary = pd.read_csv(done / "results/tiny_vgg/summary.csv").set_index("method")
    vgg16 = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    t_eb = ticket["iteration"]
    for method, start in (("earlybird_rewind", 0), ("earlybird_resume", t_eb),
                          ("earlybird_scratch_rest", t_eb), ("earlybird_scratch", 0)):
        row = summary.loc[method]
        assert row.level == "channels70" and row.family == "earlybird"
        assert row.params_total == vgg_weights(vgg16, 1, 10)
        assert row.params_kept == vgg_weights(kept, 1, 10)
        result = json.loads((out / method / "channels70/run.json").read_text())["result"]
        assert result["start_iteration"] == start
