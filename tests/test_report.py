"""lth.report: tables, figures, the scorecard and the rendered report, on synthetic but
realistic results of LeNet-300-100 (IMP, its controls, SNIP/SynFlow at init, fine-tuning and
Scratch-E on its masks; 2 seeds)."""

from __future__ import annotations

import base64
import math
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lth.io import LthError, read_json, sha256_file
from lth.provenance import find_record
from lth.report import claims
from lth.report.figures import (
    FIGURES,
    fig_accuracy_vs_density,
    fig_all_methods,
    fig_density_profiles,
    fig_early_stop_vs_density,
    fig_generalization_gap,
    fig_layer_collapse,
    fig_layer_density,
    fig_learning_curves,
)
from lth.report.latex import compile_pdf, latex_escape
from lth.report.render import make_report, render_report
from lth.report.style import FigureStyle, style_from_config
from lth.report.tables import (
    REQUIRED_COLUMNS,
    ReportTables,
    collapse_table,
    dense_accuracy,
    read_tables,
    results_table,
    shrinkbench_table,
)

REPO = Path(__file__).resolve().parents[1]
SEEDS = (0, 1)
LAYERS = (("fc1.weight", "fc", 235200), ("fc2.weight", "fc", 30000), ("fc3.weight", "output", 1000))
TOTAL = sum(size for _, _, size in LAYERS)
FAMILY = {
    "imp": "lottery", "reinit": "control", "random_pruning": "control",
    "scratch_b_imp": "control", "scratch_e_finetune": "control", "snip": "at_init",
    "synflow": "at_init", "finetune": "baseline",
}  # fmt: skip
TEST_ACCURACY = {
    "imp": lambda d: 0.89 + 0.02 * (1 - d) - 3 * max(0.0, 0.03 - d),
    "reinit": lambda d: 0.89 - 0.08 * (1 - d) ** 3,
    "random_pruning": lambda d: 0.89 - 0.12 * (1 - d) ** 2,
    "scratch_b_imp": lambda d: 0.89 - 0.10 * (1 - d) ** 2,
    "scratch_e_finetune": lambda d: 0.891 - 0.012 * (1 - d),
    "snip": lambda d: 0.885 - 0.05 * (1 - d) ** 4,
    "synflow": lambda d: 0.885 - 0.04 * (1 - d) ** 4,
    "finetune": lambda d: 0.892 - 0.01 * (1 - d),
}
STOP_DELAY = {
    "imp": 0, "reinit": 300, "random_pruning": 600, "scratch_b_imp": 450,
    "scratch_e_finetune": 350, "snip": 200, "synflow": 150, "finetune": 100,
}  # fmt: skip
STYLE = FigureStyle(
    context="paper", axes_style="whitegrid", font_scale=1.0, palette="colorblind",
    cmap="viridis", dpi=60, width=6.0, height=3.8, spread="std",
    curve_percents=(100.0, 51.3, 21.1), control_curve_percent=51.3,
    profile_percents=(50.0, 20.0, 5.0), profile_match_factor=1.25,
)  # fmt: skip
SETTINGS = {
    "model": "lenet300_100", "dataset": "fashion_mnist", "schedule": "1000 iterations, Adam",
    "pruning_rate": "fc 0.2, output 0.1", "seeds": "0, 1",
}  # fmt: skip


def layer_densities(method: str, density: float, seed: int) -> list[float]:
    """IMP and its relatives prune every layer alike; SNIP prunes the output layer harder
    and collapses it from 5% on in seed 1; SynFlow keeps the output layer denser."""
    if method == "snip":
        return [density, density, 0.0 if (density <= 0.05 and seed == 1) else density / 5]
    if method == "synflow":
        return [0.95 * density, density, min(1.0, 10 * density)]
    return [density] * 3


def runs(rounds: int, one_shot: tuple[float, ...]):
    """(method, level, round, density) of every trained network."""
    for method in ("imp", "reinit", "random_pruning", "scratch_b_imp", "finetune",
                   "scratch_e_finetune"):
        first = 0 if method == "imp" else 1
        for r in range(first, rounds):
            yield method, f"round{r}", r, 0.8**r
    for method in ("snip", "synflow"):
        for d in one_shot:
            yield method, f"density{d:g}", -1, d


def synthetic_tables(
    rounds: int = 6, one_shot: tuple[float, ...] = (0.5, 0.2, 0.05), seeds=SEEDS,
    iterations: int = 1000,
) -> ReportTables:  # fmt: skip
    """summary/layers/curves as `lth summarize` writes them; final accuracies from
    TEST_ACCURACY, test accuracy at early stop exactly 0.01 below; seed s lowers accuracy by
    0.004 s and delays early stopping by 100 s iterations."""
    summary, layers, curves = [], [], []
    for method, level, rnd, d in runs(rounds, one_shot):
        for seed in seeds:
            key = {"experiment": "lenet_fmnist", "method": method, "seed": seed, "level": level,
                   "round": rnd, "density": d}  # fmt: skip
            densities = layer_densities(method, d, seed)
            acc = TEST_ACCURACY[method](d) - 0.004 * seed
            stop = round(1000 + 2000 * d + STOP_DELAY[method] * (1 - d)) + 100 * seed
            summary.append(
                key | {
                    "dataset": "fashion_mnist", "model": "lenet300_100",
                    "family": FAMILY[method], "target_density": d, "percent_remaining": 100 * d,
                    "compression": 1 / d, "params_kept": round(d * TOTAL), "params_total": TOTAL,
                    "flops": d * TOTAL, "dense_flops": TOTAL, "speedup": 1 / d,
                    "collapsed": 0.0 in densities, "final_test_accuracy": acc,
                    "final_val_accuracy": acc + 0.001,
                    "final_train_accuracy": acc + 0.02 + 0.05 * d,
                    "early_stop_iteration": stop,
                    "early_stop_test_accuracy": acc - 0.01, "iterations": iterations,
                    "wall_seconds": 1.0, "run_dir": f"results/x/seed{seed}/{method}/{level}",
                }
            )  # fmt: skip
            for (name, kind, size), ld in zip(LAYERS, densities, strict=True):
                layers.append(key | {"layer": name, "kind": kind, "kept": round(ld * size),
                                     "size": size, "layer_density": ld})  # fmt: skip
            for t in range(0, iterations + 1, 100):
                rise = acc * (1 - 0.88 * math.exp(-t / (100 + 200 * d)))
                for split, shift in (("test", 0.0), ("val", 0.002)):
                    curves.append(key | {"iteration": t, "split": split, "loss": 1 - rise,
                                         "accuracy": rise + shift})  # fmt: skip
    columns = REQUIRED_COLUMNS
    return ReportTables(
        pd.DataFrame(summary),
        pd.DataFrame(layers, columns=[*columns["layers"], "experiment", "kind", "kept", "size"]),
        pd.DataFrame(curves, columns=[*columns["curves"], "experiment", "loss"]),
    )


@pytest.fixture(scope="module")
def tables() -> ReportTables:
    return synthetic_tables()


def imp_only(tables: ReportTables) -> ReportTables:
    """The tables of a config that ran only IMP, and wrote no curves."""
    return ReportTables(
        tables.summary[tables.summary["method"] == "imp"],
        tables.layers[tables.layers["method"] == "imp"],
        tables.curves.iloc[0:0],
    )


# ----------------------------------------------------------------------------- tables


def test_results_table_mean_and_std_over_seeds(tables):
    table = results_table(tables.summary)
    row = table[(table["method"] == "imp") & (table["level"] == "round2")].iloc[0]
    # d = 0.64: seed 0 -> 0.89 + 0.02 * 0.36 = 0.8972, seed 1 -> 0.8932
    assert row["percent_remaining"] == pytest.approx(64.0)
    assert row["final_accuracy_mean"] == pytest.approx(89.52)
    assert row["final_accuracy_std"] == pytest.approx(0.4 / math.sqrt(2))
    assert row["early_stop_accuracy_mean"] == pytest.approx(88.52)
    assert row["early_stop_accuracy_std"] == pytest.approx(0.4 / math.sqrt(2))
    assert row["early_stop_iteration"] == pytest.approx(2280 + 50)
    assert row["n_networks"] == 2
    assert table["method"].tolist()[:6] == ["imp"] * 6  # lottery first, dense first
    assert table["percent_remaining"].tolist()[:6] == pytest.approx(
        [100 * 0.8**r for r in range(6)]
    )
    assert len(table) == 6 + 5 * 5 + 2 * 3


def test_shrinkbench_change_vs_dense(tables):
    table = shrinkbench_table(tables.summary)
    snip = table[(table["method"] == "snip") & (table["level"] == "density0.2")].iloc[0]
    dense = 100 * (0.89 + 0.886) / 2
    accuracy = 100 * (0.885 - 0.05 * 0.8**4 - 0.002)
    assert dense_accuracy(tables.summary) == pytest.approx(dense)
    assert snip["accuracy"] == pytest.approx(accuracy)
    assert snip["accuracy_change"] == pytest.approx(accuracy - dense)
    assert snip["compression"] == pytest.approx(5.0)
    assert snip["speedup"] == pytest.approx(5.0)
    assert snip["collapsed_seeds"] == 0
    collapsed = table[(table["method"] == "snip") & (table["level"] == "density0.05")]
    assert collapsed["collapsed_seeds"].tolist() == [1]


def test_collapse_table_largest_compression_without_collapse(tables):
    table = collapse_table(tables.summary).set_index("method")
    assert table.loc["snip", "max_compression_no_collapse"] == pytest.approx(5.0)
    assert table.loc["snip", "first_collapse_compression"] == pytest.approx(20.0)
    assert table.loc["synflow", "max_compression_no_collapse"] == pytest.approx(20.0)
    assert math.isnan(table.loc["synflow", "first_collapse_compression"])
    assert table.loc["imp", "max_compression_no_collapse"] == pytest.approx(0.8**-5)
    assert table.index.tolist()[0] == "imp"


def test_collapse_table_stops_at_the_first_collapse():
    summary = synthetic_tables(one_shot=(0.5, 0.2, 0.05, 0.02)).summary
    summary.loc[summary["level"] == "density0.02", "collapsed"] = False  # intact again at 50x
    table = collapse_table(summary).set_index("method")
    assert table.loc["snip", "max_compression_no_collapse"] == pytest.approx(5.0)
    assert table.loc["snip", "first_collapse_compression"] == pytest.approx(20.0)


# ----------------------------------------------------------------------------- figures


def mean_over_seeds(tables, method: str, column: str, scale: float = 100.0) -> np.ndarray:
    rows = tables.summary[tables.summary["method"] == method]
    return scale * rows.groupby("density")[column].mean().sort_index(ascending=False).to_numpy()


def lines_by_label(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def test_accuracy_vs_density_at_early_stop_left_and_final_right(tables):
    fig = fig_accuracy_vs_density(tables, STYLE)
    early, final = fig.axes[:2]
    assert [early.get_title(), final.get_title()] == ["At early stop", "At the end of training"]
    for ax, column in ((early, "early_stop_test_accuracy"), (final, "final_test_accuracy")):
        lines = lines_by_label(ax)
        # controls on fine-tuning's masks are not in the LTH figure
        assert sorted(lines) == ["imp", "random_pruning", "reinit", "scratch_b_imp"]
        assert ax.get_xscale() == "log"
        left, right = ax.get_xlim()
        assert left > 100 > right
        assert lines["imp"].get_xdata() == pytest.approx([100 * 0.8**r for r in range(6)])
        assert lines["imp"].get_ydata() == pytest.approx(mean_over_seeds(tables, "imp", column))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["50", "100"]
    assert lines_by_label(early)["reinit"].get_ydata() == pytest.approx(
        lines_by_label(final)["reinit"].get_ydata() - 1.0
    )


def test_band_is_std_or_min_max_over_seeds(tables):
    for spread, half_width in (("std", 0.4 / math.sqrt(2)), ("minmax", 0.2)):
        style = FigureStyle(**{**asdict(STYLE), "spread": spread})
        ax = fig_accuracy_vs_density(tables, style).axes[0]
        band = ax.collections[0].get_paths()[0].vertices[:, 1]  # imp is drawn first
        mean = mean_over_seeds(tables, "imp", "early_stop_test_accuracy")
        assert band.max() == pytest.approx(mean.max() + half_width)


def test_early_stop_vs_density_plots_mean_iterations(tables):
    ax = fig_early_stop_vs_density(tables, STYLE).axes[0]
    imp = lines_by_label(ax)["imp"]
    assert imp.get_ydata() == pytest.approx([round(1000 + 2000 * 0.8**r) + 50 for r in range(6)])
    assert ax.get_xscale() == "log"


def test_learning_curves_select_rounds_and_reinit(tables):
    ax = fig_learning_curves(tables, STYLE).axes[0]
    lines = lines_by_label(ax)
    # 100 -> round 0, 51.3 -> round 3 (51.2%), 21.1 and the sparsest -> round 5 (32.8%)
    assert list(lines) == ["imp 100%", "imp 51.2%", "imp 32.8%", "reinit 51.2%"]
    assert lines["reinit 51.2%"].get_linestyle() == "--"
    test = tables.curves[(tables.curves["split"] == "test") & (tables.curves["level"] == "round0")]
    expected = 100 * test.groupby("iteration")["accuracy"].mean().to_numpy()
    assert lines["imp 100%"].get_ydata() == pytest.approx(expected)


def test_generalization_gap_train_and_test(tables):
    lines = lines_by_label(fig_generalization_gap(tables, STYLE).axes[0])
    assert sorted(lines) == ["imp test", "imp train", "reinit test", "reinit train"]
    assert lines["imp train"].get_ydata() == pytest.approx(
        mean_over_seeds(tables, "imp", "final_train_accuracy")
    )


def test_layer_density_heatmap_values(tables):
    ax = fig_layer_density(tables, STYLE).axes[0]
    cells = np.asarray(ax.collections[0].get_array()).reshape(3, 6)
    imp = tables.layers[tables.layers["method"] == "imp"]
    expected = 100 * imp.pivot_table(index="layer", columns="round", values="layer_density")
    assert cells == pytest.approx(expected.loc[[name for name, _, _ in LAYERS]].to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == [name for name, _, _ in LAYERS]


def test_all_methods_line_style_by_family(tables):
    ax = fig_all_methods(tables, STYLE).axes[0]
    lines = lines_by_label(ax)
    assert len(lines) == 8 and "scratch_e_finetune" in lines
    styles = {name: line.get_linestyle() for name, line in lines.items()}
    assert styles["imp"] == "-" and styles["reinit"] == "--"
    assert styles["snip"] == ":" and styles["finetune"] == "-."
    assert ax.get_xscale() == "log"


def test_layer_collapse_bars_and_collapse_marks(tables):
    ax = fig_layer_collapse(tables, STYLE).axes[0]
    widths = [bar.get_width() for bar in ax.patches]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert dict(zip(labels, widths, strict=True))["snip"] == pytest.approx(5.0)
    assert dict(zip(labels, widths, strict=True))["synflow"] == pytest.approx(20.0)
    (marks,) = ax.get_lines()
    assert np.nanmax(marks.get_xdata()) == pytest.approx(20.0)
    assert ax.get_xscale() == "log"


def test_density_profiles_facets_match_overall_density(tables):
    axes = fig_density_profiles(tables, STYLE).axes
    assert [ax.get_title() for ax in axes] == ["50% remaining", "20% remaining", "5% remaining"]
    assert sorted(lines_by_label(axes[1])) == ["snip", "synflow"]  # IMP 32.8% is too far
    assert len(lines_by_label(axes[0])) == 8
    synflow = lines_by_label(axes[2])["synflow"]
    assert synflow.get_xdata().tolist() == [1, 2, 3]
    assert synflow.get_ydata() == pytest.approx([100 * 0.95 * 0.05, 5.0, 50.0])
    assert axes[0].get_yscale() == "log"


def test_figures_without_data_are_skipped(tables):
    only = imp_only(tables)
    made = {name: spec.make(only, STYLE) is not None for name, spec in FIGURES.items()}
    assert made == {
        "accuracy_vs_density": True, "early_stop_vs_density": True, "learning_curves": False,
        "generalization_gap": True, "layer_density": True, "all_methods": False,
        "layer_collapse": True, "density_profiles": True,
    }  # fmt: skip


# ----------------------------------------------------------------------------- rendering


def write_csvs(tables: ReportTables, folder) -> dict:
    paths = {name: folder / f"{name}.csv" for name in ("summary", "layers", "curves")}
    for name, path in paths.items():
        getattr(tables, name).to_csv(path, index=False)
    return paths


@pytest.fixture(scope="module")
def made(tables, tmp_path_factory) -> dict:
    """One full report (figures, provenance, HTML, TeX, PDF) and the CSVs it was made from."""
    folder = tmp_path_factory.mktemp("report")
    paths = write_csvs(tables, folder)
    out_dir = folder / "reports" / "lenet_fmnist"
    out = make_report("lenet_fmnist", paths, STYLE, SETTINGS, out_dir)
    return out | {"csv": paths, "out_dir": out_dir}


def test_html_is_self_contained_with_captions_and_audit(made):
    html = made["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert 'href="http' not in html and "<link" not in html and "<style>" in html
    assert "Appendix: audit trail" in html
    for name in ("summary", "layers", "curves"):
        assert sha256_file(made["csv"][name]) in html
    pdf = made["out_dir"] / "figures" / "layer_collapse.pdf"
    assert f"python -m lth audit {pdf.as_posix()}" in html
    assert "Experiment lenet_fmnist: lenet300_100 on fashion_mnist" in html
    assert "88.52 ± 0.28" in html and "89.52 ± 0.28" in html  # early stop, final
    assert "not configured" not in html


def test_tex_escapes_text_includes_pdfs_and_compiles(made):
    tex = made["tex"].read_text()
    for name in FIGURES:
        assert f"keepaspectratio]{{figures/{name}.pdf}}" in tex
    assert r"lenet300\_100" in tex and r"random\_pruning" in tex
    assert r"89.52 \ensuremath{\pm} 0.28" in tex and r"Weights left (\%)" in tex
    assert made["pdf"].read_bytes().startswith(b"%PDF")


def test_scorecard_csv_matches_claims_with_provenance(tables, made):
    path = made["out_dir"] / "scorecard.csv"
    assert made["scorecard"] == path
    written = pd.read_csv(path, keep_default_na=False)
    expected = claims.scorecard(tables.summary)
    assert written.to_dict("records") == expected.to_dict("records")
    verdicts = written.set_index("key")["verdict"]
    # IMP reaches only 32.8 %: LTH's 21.1 % claims cannot be decided; SNIP collapses at 5 %
    # in seed 1, SynFlow never
    assert verdicts["lth_match"] == verdicts["lth_beats_reinit"] == "not tested at this scale"
    assert verdicts["lth_reinit_degrades"] == verdicts["synflow_no_collapse"] == "reproduced"
    assert verdicts["snip_vs_random"] == "not tested at this scale"  # no random_init
    assert verdicts["liu_scratch_e"] == verdicts["han_keep_vs_reset"] == "reproduced"
    record = find_record(path)
    assert record["verb"] == "report"
    assert record["inputs"] == [
        {"path": str(made["csv"]["summary"]), "sha256": sha256_file(made["csv"]["summary"])}
    ]
    assert record["outputs"] == [{"path": str(path), "sha256": sha256_file(path)}]


def test_scorecard_opens_the_html_with_verdicts_in_text(made):
    html = made["html"].read_text()
    assert html.index("<h2>Reproduction scorecard</h2>") < html.index("<h2>Settings</h2>")
    assert html.index("</h1>") < html.index("Reproduction scorecard")
    assert '<a href="#scorecard">Reproduction scorecard</a>' in html
    rows = re.findall(r'<tr id="claim-(\w+)">(.*?)</tr>', html, flags=re.S)
    assert [key for key, _ in rows] == [c.key for c in claims.CLAIMS]
    cells = dict(rows)
    assert '<td class="verdict ok">reproduced</td>' in cells["synflow_no_collapse"]
    assert '<td class="verdict untested">not tested at this scale</td>' in cells["lth_match"]
    assert "others collapse at 5 %; synflow collapses at none of them" in cells[
        "synflow_no_collapse"
    ]
    assert "Verdicts: 5 reproduced, 0 not reproduced, 8 not tested at this scale." in html


def test_scorecard_opens_the_tex_escaped(made):
    tex = made["tex"].read_text()
    assert tex.index("maketitle") < tex.index(r"\section*{Reproduction scorecard}") < tex.index(
        r"\section*{Settings}"
    )
    assert tex.count(r"\textbf{reproduced} \\") == 5
    assert tex.count(r"\textbf{not tested at this scale} \\") == 8
    assert r"imp \ensuremath{-} reinit early-stop test accuracy > 0" in tex
    assert r"\ensuremath{\leq} 21.1 \%" in tex


def tex_packages_installed_by_setup() -> set[str]:
    """The texlive packages .ci/system-packages.sh installs, and texlive-base (their base)."""
    script = (REPO / ".ci" / "system-packages.sh").read_text()
    listed = script.split("packages=(", 1)[1].split(")", 1)[0].split()
    return {p for p in listed if p.startswith("texlive-")} | {"texlive-base"}


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs Debian's dpkg")
def test_the_pdf_needs_only_the_tex_packages_that_setup_installs(made, tmp_path):
    """Every TeX file the PDF build reads belongs to a package the setup installs."""
    shutil.copytree(made["out_dir"], tmp_path / "r")
    subprocess.run(["latexmk", "-pdf", "-recorder", "-interaction=nonstopmode", "report.tex"],
                   cwd=tmp_path / "r", capture_output=True, check=True)
    read = sorted({line.split(" ", 1)[1] for line in (tmp_path / "r" / "report.fls")
                   .read_text().splitlines() if line.startswith("INPUT /usr/")})
    owners = subprocess.run(["dpkg", "-S", *read], capture_output=True, text=True, check=True)
    packages = {line.split(":", 1)[0] for line in owners.stdout.splitlines()}
    assert len(read) > 20
    assert packages <= tex_packages_installed_by_setup(), packages


def test_provenance_records_inputs_and_outputs_of_each_figure(made):
    provenance = read_json(made["provenance"])
    assert set(provenance["code_version"]) == {"git", "source_sha256"}
    assert provenance["style"] == asdict(STYLE) | {
        "curve_percents": list(STYLE.curve_percents),
        "profile_percents": list(STYLE.profile_percents),
    }
    figure = provenance["figures"]["density_profiles"]
    assert figure["inputs"] == [
        {"path": str(made["csv"][t]), "sha256": sha256_file(made["csv"][t])}
        for t in ("summary", "layers")
    ]
    pdf = made["out_dir"] / "figures" / "density_profiles.pdf"
    assert figure["outputs"][0] == {"path": str(pdf), "sha256": sha256_file(pdf)}
    assert figure["verb"] == "report" and figure["params"]["settings"] == SETTINGS
    assert find_record(pdf) == figure  # what `python -m lth audit <figure>` reads


def test_report_says_not_configured_for_skipped_figures(tables, made, tmp_path):
    provenance = read_json(made["provenance"])
    figures = {
        name: (
            made["out_dir"] / "figures" / f"{name}.pdf",
            made["out_dir"] / "figures" / f"{name}.png",
        )
        for name in FIGURES
        if name not in ("learning_curves", "all_methods")
    }
    html, tex = render_report("imp_only", tables, figures, provenance, SETTINGS, tmp_path)
    assert html.read_text().count("Not configured") == 2
    assert re.search(r"all_methods</a>\s*\(not configured\)", html.read_text())
    assert "learning_curves.pdf" not in tex.read_text()
    assert tex.read_text().count("Not configured") == 2


def test_latex_escape_and_failed_compile_names_the_error(tmp_path):
    assert latex_escape("a_b 50% & #1 ±2 {x}") == r"a\_b 50\% \& \#1 \ensuremath{\pm}2 \{x\}"
    broken = tmp_path / "broken.tex"
    broken.write_text("\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}\n")
    with pytest.raises(LthError, match="Undefined control sequence"):
        compile_pdf(broken)
    assert not (tmp_path / "broken.pdf").exists()


def test_bad_style_settings_and_tables_raise_one_line_errors(tables, tmp_path):
    config = asdict(STYLE)
    assert style_from_config(config) == STYLE
    with pytest.raises(LthError, match="missing keys \\['dpi'\\]"):
        style_from_config({k: v for k, v in config.items() if k != "dpi"})
    with pytest.raises(LthError, match="spread"):
        FigureStyle(**{**config, "spread": "sem"})
    with pytest.raises(LthError, match="unknown palette 'nope'"):
        FigureStyle(**{**config, "palette": "nope"})
    paths = write_csvs(tables, tmp_path)
    tables.summary.drop(columns="collapsed").to_csv(paths["summary"], index=False)
    with pytest.raises(LthError, match="summary.csv: missing columns \\['collapsed'\\]"):
        read_tables(paths["summary"], paths["layers"], paths["curves"])
    with pytest.raises(LthError, match="missing keys \\['seeds'\\]"):
        render_report(
            "x",
            tables,
            {},
            {"code_version": "v", "style": config, "figures": {}},
            {k: v for k, v in SETTINGS.items() if k != "seeds"},
            tmp_path,
        )


def test_an_installed_wheel_renders_from_its_own_templates(tmp_path):
    """The templates are package data: a wheel built from the sources carries them, and the
    report's template environments, imported from that wheel's install, load them."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path,
                    source], capture_output=True, check=True)
    (wheel,) = tmp_path.glob("lth-*.whl")
    templates = {f"lth/report/templates/{t.name}" for t in
                 (resources.files("lth.report") / "templates").iterdir() if t.name.endswith(".j2")}
    assert templates == {"lth/report/templates/report.html.j2",
                         "lth/report/templates/report.tex.j2"}
    with zipfile.ZipFile(wheel) as archive:
        assert templates <= set(archive.namelist())
        archive.extractall(tmp_path / "site")
    probe = ("import lth; from lth.report.html import html_env; "
             "from lth.report.latex import latex_env; html_env().get_template('report.html.j2'); "
             "latex_env().get_template('report.tex.j2'); print(lth.__file__)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")})
    assert out.stdout.strip() == str(tmp_path / "site" / "lth" / "__init__.py")
