"""Plug-ins (lth.plan.plugins): the example package's functions, discovery through real
distribution metadata on sys.path, the config check's lines, and the records of a criterion
that declares its cost and of one that does not."""

import json
import math
import os
import shutil
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import torch

from generated import write_learnable_idx_folder
from lth.analysis.summary import summarize
from lth.core import models
from lth.core.io import read_metadata
from lth.methods.criteria import CRITERIA, ScoreData, scoring_macs
from lth.plan import catalog, plugins
from lth.plan.spec import Engine, Member, PruneJob, Schedule, Scoring, TrainJob, to_json
from lth.report.render import display_tables
from lth.verbs.cli import main

SPEECH = ["--speech-features", "logmel", "--speech-n-fft", "480", "--speech-win-length",
          "480", "--speech-hop-length", "160", "--speech-n-mels", "40", "--speech-n-mfcc",
          "40"]  # prepare's required settings, unused by fashion_mnist
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lth-example-plugin"

NOCOST = {
    "nocost_plugin/__init__.py": (
        "from lth.plan.plugins import CriterionPlugin\n"
        "SQUARED = CriterionPlugin(scores='nocost_plugin.scores:squared')\n"),
    "nocost_plugin/scores.py": (
        "def squared(model, mask, data):\n"
        "    params = dict(model.named_parameters())\n"
        "    return {n: (params[n].detach() * mask[n]) ** 2 for n in data.names}\n"),
}
BROKEN = {"broken_plugin/__init__.py": (
    "from lth.plan.plugins import CriterionPlugin\n"
    "BAD = CriterionPlugin(scores='scores without a module')\n")}


def install_folder(site: Path, name: str, entry_points: dict[str, dict[str, str]],
                   files: dict[str, str]) -> None:
    """A distribution as an installer leaves it in site-packages: its modules and a
    .dist-info folder with METADATA and entry_points.txt."""
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
        for group, points in entry_points.items()))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site folder on sys.path holding the example plug-in (its sources and its
    pyproject's entry points), a criterion that declares no cost and a malformed one."""
    site = tmp_path_factory.mktemp("site")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(EXAMPLE / "src" / "lth_example_plugin", site / "lth_example_plugin")
    install_folder(site, project["name"], project["entry-points"], {})
    install_folder(site, "lth-nocost", {"lth.criteria": {"squared": "nocost_plugin:SQUARED"}},
                   NOCOST)
    install_folder(site, "lth-broken", {"lth.criteria": {"broken": "broken_plugin:BAD"}},
                   BROKEN)
    sys.path.insert(0, str(site))
    plugins.installed.cache_clear()
    yield site
    sys.path.remove(str(site))
    plugins.installed.cache_clear()


def test_the_builtin_criteria_are_those_of_lth_methods():
    assert tuple(CRITERIA) == plugins.BUILTIN_CRITERIA


def score_data(names, batches) -> ScoreData:
    return ScoreData(names=names, batches=batches, gen=torch.Generator().manual_seed(0),
                     num_classes=10, input_shape=(1, 6, 6), grasp_temperature=None,
                     batchnorm_training=None)


def test_gradient_magnitude_is_the_loss_gradient_of_the_masked_weights(site):
    from lth_example_plugin.criterion import gradient_magnitude_scores

    model = models.build_model("mlp16x2", (1, 6, 6), 10, torch.Generator().manual_seed(1), 0.0)
    names = models.prunable_names(model)
    mask = {n: torch.rand(p.shape, generator=torch.Generator().manual_seed(2)) > 0.3
            for n, p in model.named_parameters() if n in names}
    x, y = torch.randn(8, 1, 6, 6), torch.arange(8) % 10
    before = {n: p.clone() for n, p in model.named_parameters()}
    scores = gradient_magnitude_scores(model, mask, score_data(names, [(x[:5], y[:5]),
                                                                       (x[5:], y[5:])]))
    by_hand = models.build_model("mlp16x2", (1, 6, 6), 10, torch.Generator().manual_seed(1),
                                 0.0)
    with torch.no_grad():
        for n in names:
            by_hand.get_parameter(n).mul_(mask[n])
    torch.nn.functional.cross_entropy(by_hand(x), y).backward()
    grads = dict(by_hand.named_parameters())
    for n in names:
        torch.testing.assert_close(scores[n], grads[n].grad.abs())
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert model.training


def test_example_mlp_layers_are_those_of_the_network_it_builds(site):
    from lth_example_plugin.declarations import example_mlp_layers
    from lth_example_plugin.model import example_mlp

    net = example_mlp((1, 28, 28), 10, torch.Generator().manual_seed(0), 0.0, None)
    again = example_mlp((1, 28, 28), 10, torch.Generator().manual_seed(0), 0.0, None)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 again.state_dict().values(), strict=True))
    params, kinds = dict(net.named_parameters()), models.layer_kinds(net)
    assert [(layer.name, layer.kind, layer.shape) for layer in example_mlp_layers((1, 28, 28),
                                                                                  10)] == [
        (n, kinds[n], tuple(params[n].shape)) for n in models.prunable_names(net)]
    assert [layer.shape for layer in example_mlp_layers((1, 28, 28), 10)] == [
        (128, 784), (32, 128), (10, 32)]


def test_installed_plugins_are_named_like_builtins(site):
    assert catalog.is_model("example_mlp") and not catalog.is_model("example_mlp2")
    assert [layer.size for layer in catalog.prunable_layers("example_mlp", (1, 28, 28), 10)] == [
        100352, 4096, 320]
    net = models.build_model("example_mlp", (1, 28, 28), 10, torch.Generator(), 0.0)
    assert models.prunable_names(net) == ["fc1.weight", "fc2.weight", "output.weight"]
    assert scoring_macs("gradient_magnitude", 1000, 50, 2) == 3 * 1000 * 50 * 2
    assert scoring_macs("squared", 1000, 0, 1) is None
    assert plugins.scoring_settings("gradient_magnitude") == ("score_batch_size",)
    assert plugins.scoring_settings("grasp")[:2] == ("score_batch_size", "samples_per_class")
    record = plugins.provenance("example_mlp", ("gradient_magnitude", "snip"))
    assert [(r["group"], r["name"], r["distribution"], r["version"]) for r in record] == [
        ("lth.models", "example_mlp", "lth-example-plugin", "0.1.0"),
        ("lth.criteria", "gradient_magnitude", "lth-example-plugin", "0.1.0")]
    files = plugins.source_files("example_mlp")
    assert sorted(Path(f).name for f in files) == [
        "__init__.py", "criterion.py", "declarations.py", "model.py"]
    assert plugins.source_files("lenet300_100", ("snip",)) == []


def experiments(model: str, criterion: str) -> dict:
    return {"x": {"model": model, "at_init": {"methods": {"m": {"criterion": criterion}}}}}


def test_the_config_check_names_a_missing_or_malformed_plugin_in_one_line(site):
    assert plugins.config_problems(experiments("example_mlp", "gradient_magnitude")) == []
    ((key, message),) = plugins.config_problems(experiments("lenet300_100", "gradient_norm"))
    assert key == "experiments.x.at_init.methods.m.criterion"
    assert message == ("criterion 'gradient_norm' is neither built in nor an installed "
                       "lth.criteria plug-in (installed: broken, gradient_magnitude, squared)")
    ((key, message),) = plugins.config_problems(experiments("mlp_tiny", "snip"))
    assert key == "experiments.x.model"
    assert message == ("model 'mlp_tiny' is neither built in nor an installed lth.models "
                       "plug-in (installed: example_mlp)")
    ((key, message),) = plugins.config_problems(experiments("example_mlp", "broken"))
    assert message == ("lth.criteria plug-in 'broken' is malformed: ValueError: 'scores "
                       "without a module' is not a callable named 'module:function' "
                       "(installed: broken, gradient_magnitude, squared)")
    assert "\n" not in message


def test_malformed_declarations_say_what_is_wrong():
    problem = plugins.declaration_problem
    assert problem(plugins.ModelPlugin("a:b", "c:d"), plugins.CRITERIA_GROUP) == (
        "expected an lth.plan.plugins.CriterionPlugin, got ModelPlugin")
    assert problem(plugins.CriterionPlugin("a:b", reads=("batch",)), plugins.CRITERIA_GROUP) \
        .startswith("reads ('batch',): expected a tuple of score_batch_size, samples_per")
    assert problem(plugins.CriterionPlugin("a:b", macs="m"), plugins.CRITERIA_GROUP) == (
        "'m' is not a callable named 'module:function'")
    assert problem(plugins.CriterionPlugin("a.b:c", ("score_batch_size",), "d:e"),
                   plugins.CRITERIA_GROUP) is None


SCHEDULE = Schedule(optimizer="adam", lr=0.002, momentum=0.0, nesterov=False,
                    weight_decay=0.0, batch_size=50, iterations=20, milestones=(), gamma=0.1,
                    warmup=0, eval_every=10, eval_batch_size=500, dropout=0.0, augment=False)


def prune(criterion: str, level: str) -> None:
    job = PruneJob(experiment="t", seed=0, weights="init.safetensors", criterion=criterion,
                   scope="global", purpose=level, iterations=1, device="cpu",
                   out=f"{criterion}/{level}/mask.safetensors", density=0.1,
                   data_root="data", val_size=100, scoring=Scoring(score_batch_size=40))
    assert main(["prune", "--job", to_json(job)]) == 0


def train(criterion: str, level: str) -> dict:
    out = f"{criterion}/{level}"
    member = Member(seed=0, method=criterion, family="at_init", level=level,
                    init="init.safetensors", out_dir=out, mask=f"{out}/mask.safetensors")
    job = TrainJob("t", "data", 100, "cpu", SCHEDULE, Engine("auto", 4, False, False),
                   (member,))
    assert main(["train", "--job", to_json(job), "--threads", "1"]) == 0
    return json.loads(Path(out, "run.json").read_text())


def test_records_hold_the_plugins_and_their_cost_or_unknown(site, tmp_path):
    src = write_learnable_idx_folder(tmp_path / "src", n_train=400, n_test=100)
    previous = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["prepare", "--dataset", "fashion_mnist", "--root", "data", "--source",
                     str(src), "--download", "false", *SPEECH]) == 0
        assert main(["init", "--experiment", "t", "--seed", "0", "--model", "example_mlp",
                     "--init", "glorot", "--data-root", "data", "--out",
                     "init.safetensors"]) == 0
        assert main(["train", "--job", to_json(TrainJob(
            "t", "data", 100, "cpu", SCHEDULE, Engine("auto", 4, False, False),
            (Member(seed=0, method="imp", family="lottery", level="round0",
                    init="init.safetensors", out_dir="imp/round0"),))), "--threads", "1"]) == 0
        for criterion in ("gradient_magnitude", "squared"):
            prune(criterion, "density0.1")
        known, unknown = train("gradient_magnitude", "density0.1"), train("squared",
                                                                          "density0.1")
        summarize("t", sorted(Path().glob("*/*/run.json")), Path(), 0.99)
    finally:
        os.chdir(previous)
    model_record = {"group": "lth.models", "name": "example_mlp",
                    "distribution": "lth-example-plugin", "version": "0.1.0",
                    "source_sha256": plugins.plugin("lth.models", "example_mlp").source_sha256}
    assert read_metadata(tmp_path / "init.safetensors")["plugins"] == [model_record]
    dense_macs = 100352 + 4096 + 320
    mask_record = read_metadata(tmp_path / "gradient_magnitude/density0.1/mask.safetensors")
    assert mask_record["macs"] == {"sparse": 3 * dense_macs * 40, "dense": 3 * dense_macs * 40}
    assert read_metadata(tmp_path / "squared/density0.1/mask.safetensors")["macs"] == {
        "sparse": None, "dense": None}
    assert [p["name"] for p in known["plugins"]] == ["example_mlp", "gradient_magnitude"]
    (squared,) = [p for p in unknown["plugins"] if p["name"] == "squared"]
    assert (squared["distribution"], squared["version"]) == ("lth-nocost", "0.1.0")
    cost = display_tables(pd.read_csv(tmp_path / "summary.csv"))[-1]
    find = {row[0]: row[cost.headers.index("Find MACs")] for row in cost.rows}
    assert find["squared"] == "unknown" and find["gradient_magnitude"] == "1.26e+07"
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("method")
    assert summary.loc["gradient_magnitude", "find_macs"] == 3 * dense_macs * 40
    assert math.isnan(summary.loc["squared", "find_macs"])
    assert math.isnan(summary.loc["squared", "total_macs"])
    assert summary.loc["squared", "train_macs"] > 0
    assert summary.loc["squared", "density"] == pytest.approx(0.1, abs=1e-3)


def test_a_changed_plugin_source_changes_its_digest_only(site):
    before = {name: plugins.plugin(group, name).source_sha256 for group, name in
              (("lth.criteria", "squared"), ("lth.models", "example_mlp"))}
    scores = site / "nocost_plugin" / "scores.py"
    text = scores.read_text()
    scores.write_text(text + "# edited\n")
    plugins.installed.cache_clear()
    try:
        assert plugins.plugin("lth.criteria", "squared").source_sha256 != before["squared"]
        assert plugins.plugin("lth.models", "example_mlp").source_sha256 == \
            before["example_mlp"]
    finally:
        scores.write_text(text)
        plugins.installed.cache_clear()
