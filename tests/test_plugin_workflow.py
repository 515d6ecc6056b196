"""The example plug-in installed by pip into a fresh venv and run by the real Snakemake from
that venv, through summary, similarity, figures and the HTML report (the PDF is left out: it
would double the time and shows the same tables); then what editing the plug-in reruns, and
the one line a config naming a missing plug-in gets."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest
import yaml
from safetensors import safe_open

from generated import write_learnable_idx_folder

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "configs" / "plugin.yaml"
EXAMPLE = REPO / "examples" / "lth-example-plugin"
TARGETS = ["reports/plug/report.html", "results/plug/similarity.csv",
           "results/builtin/summary.csv"]
TRAINING_RULES = re.compile(r"^(dense|imp|at_init)_")


def run(cmd: list, venv: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin"})


def snakemake(venv: Path, workdir: Path, config: Path, *args) -> subprocess.CompletedProcess:
    """Snakemake run by the fresh venv's interpreter (jobs call its `python` too)."""
    return run([venv / "bin" / "python", "-m", "snakemake", "--snakefile", REPO / "Snakefile",
                "--directory", workdir, "--cores", "2", *args, "--configfile", config],
               venv, workdir)  # --configfile last: it takes several values


def pip_install(venv: Path, package: Path) -> None:
    done = run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps",
                "--no-build-isolation", "--no-index", "--quiet", package], venv, package.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def fresh_venv(root: Path) -> Path:
    """A new venv that sees the project's installed packages through a .pth file (torch,
    Snakemake, pip and setuptools are not installed again) and nothing of the plug-in."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    project = sysconfig.get_paths()["purelib"]
    (site / "project_packages.pth").write_text(f"import site; site.addsitedir({project!r})\n")
    return venv


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run ({} if nothing to do)."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> dict:
    """The plug-in installed into a fresh venv, and the workflow run to the HTML reports."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "lth-example-plugin"
    shutil.copytree(EXAMPLE, package)
    venv = fresh_venv(root)
    pip_install(venv, package)
    workdir = root / "work"
    write_learnable_idx_folder(workdir / "tiny_fmnist", n_train=600, n_test=200)
    ran = snakemake(venv, workdir, CONFIG, *TARGETS)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-4000:]
    return {"venv": venv, "workdir": workdir, "package": package}


def test_plugin_networks_are_summarised_at_their_densities_and_learn(done):
    summary = pd.read_csv(done["workdir"] / "results/plug/summary.csv")
    assert set(summary.model) == {"example_mlp"}
    grad = summary[summary.method == "grad"].set_index("target_density")
    assert sorted(grad.index) == [0.05, 0.2]
    assert (grad.family == "at_init").all() and not grad.control.any()
    assert (grad.params_total == 784 * 128 + 128 * 32 + 32 * 10).all()
    for density, row in grad.iterrows():
        assert row.params_kept == round(density * row.params_total)  # global: exact count
    assert (summary.final_test_accuracy > 0.5).all()  # chance is 0.1
    builtin = pd.read_csv(done["workdir"] / "results/builtin/summary.csv")
    assert sorted(zip(builtin.method, builtin.family, strict=True)) == [
        ("grad", "at_init"), ("imp", "lottery"), ("snip", "at_init")]
    similarity = pd.read_csv(done["workdir"] / "results/plug/similarity.csv")
    assert {("grad", "snip")} <= set(zip(similarity.method_a, similarity.method_b,
                                         strict=True))


def installed_digest(venv: Path) -> str:
    """sha256 over the installed plug-in's .py files, by name under site-packages, and bytes."""
    (site,) = venv.glob("lib/python*/site-packages")
    digest = hashlib.sha256()
    for path in sorted((site / "lth_example_plugin").glob("*.py")):
        name = path.relative_to(site).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def test_run_json_records_the_plugins_and_the_declared_scoring_cost(done):
    run_dir = done["workdir"] / "results/plug/seed0/grad/density0.2"
    record = json.loads((run_dir / "run.json").read_text())
    expected = {"distribution": "lth-example-plugin", "version": "0.1.0",
                "source_sha256": installed_digest(done["venv"])}
    assert [(p["group"], p["name"]) for p in record["plugins"]] == [
        ("lth.models", "example_mlp"), ("lth.criteria", "gradient_magnitude")]
    assert all({k: p[k] for k in expected} == expected for p in record["plugins"])
    with safe_open(str(run_dir / "mask.safetensors"), "pt") as fh:
        prune = json.loads(fh.metadata()["lth"])
    dense_macs = record["result"]["dense_macs"]
    assert prune["macs"]["sparse"] == 3 * dense_macs * 50 * 1  # its formula, 50 examples
    summary = pd.read_csv(done["workdir"] / "results/plug/summary.csv")
    assert (summary.loc[summary.method == "grad", "find_macs"] == 3 * dense_macs * 50).all()
    html = (done["workdir"] / "reports/plug/report.html").read_text()
    assert "grad" in html and "example_mlp" in html
    builtin = json.loads((done["workdir"] / "results/builtin/seed0/snip/density0.2/run.json")
                         .read_text())
    assert "plugins" not in builtin


def test_editing_the_plugin_plans_exactly_its_jobs(done):
    venv, workdir, package = done["venv"], done["workdir"], done["package"]
    assert planned_jobs(snakemake(venv, workdir, CONFIG, "-n", *TARGETS).stdout) == {}
    criterion = package / "src" / "lth_example_plugin" / "criterion.py"
    criterion.write_text(criterion.read_text() + "\n# an edit\n")
    pip_install(venv, package)
    planned = planned_jobs(snakemake(venv, workdir, CONFIG, "-n", *TARGETS).stdout)
    training = {rule: n for rule, n in planned.items() if TRAINING_RULES.match(rule)}
    # every job of the plug-in's model; of the built-in model, the plug-in criterion's only
    assert training == {"dense_plug": 1, "imp_plug": 1, "at_init_plug": 2,
                        "at_init_builtin": 1}
    assert planned["summarize"] == 2


def test_a_config_naming_a_missing_plugin_fails_in_one_line(done):
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["experiments"]["builtin"]["at_init"]["methods"]["grad"]["criterion"] = "gradient_norm"
    variant = done["workdir"] / "missing.yaml"
    variant.write_text(yaml.safe_dump(cfg))
    failed = snakemake(done["venv"], done["workdir"], variant, *TARGETS)
    assert failed.returncode != 0
    lines = [line for line in (failed.stdout + failed.stderr).splitlines() if "lth:" in line]
    assert lines == [
        "lth: config error at experiments.builtin.at_init.methods.grad.criterion: criterion "
        "'gradient_norm' is neither built in nor an installed lth.criteria plug-in "
        "(installed: gradient_magnitude)"]
    assert "rule " not in failed.stdout + failed.stderr  # before any job
