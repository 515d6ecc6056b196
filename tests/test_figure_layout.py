"""Figures stay legible with many methods: one look per method (colour, marker, line) from
the registry's groups, no more than MAX_LINES methods per panel, tick labels that do not
overlap, and legends no bigger than the plots they explain."""

from __future__ import annotations

import colorsys
import itertools

import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from test_report import STYLE, synthetic_similarity, synthetic_tables

from lth.plan import registry
from lth.report.figures import FIGURES
from lth.report.plotting import MAX_LINES, method_facets
from lth.report.style import CONTROL_LINESTYLE, method_styles
from lth.report.tables import ReportTables, method_labels

CONFIGURED = tuple(f"criterion{i}" for i in range(1, 7))
"""At-init criteria a config names (plug-ins), unknown to the registry."""


def every_method_summary() -> pd.DataFrame:
    """One row per method the registry names (patterns by an example) plus CONFIGURED."""
    rows = [{"method": m.name if not m.pattern else m.label.replace("<D>", "1").replace(
        "<strategy>", "depth"), "family": m.group, "control": m.control}
        for f in registry.families() for m in f.methods]
    rows += [{"method": name, "family": "at_init", "control": False} for name in CONFIGURED]
    return pd.DataFrame(rows)


def test_every_method_has_its_own_colour_and_marker():
    summary = every_method_summary()
    styles = method_styles(summary, STYLE.palette)
    assert set(styles) == set(summary["method"]) and len(styles) >= 25
    looks = [(tuple(round(c, 6) for c in s.color), s.marker) for s in styles.values()]
    assert len(set(looks)) == len(looks)


def hue(color) -> float:
    return colorsys.rgb_to_hsv(*to_rgb(color))[0]


def test_a_group_shares_a_hue_and_controls_are_grey_and_dashed():
    summary = every_method_summary()
    styles = method_styles(summary, STYLE.palette)
    for group, members in summary[~summary["control"]].groupby("family"):
        hues = {round(hue(styles[m].color), 2) for m in members["method"]}
        assert len(hues) == 1, group
        assert {styles[m].linestyle for m in members["method"]} == {
            g.linestyle for g in registry.groups() if g.name == group}
    hues = [hue(styles[m].color) for m in summary.groupby("family")["method"].first()
            if not summary.set_index("method").loc[m, "control"]]
    assert len({round(h, 2) for h in hues}) == len(hues)  # groups apart
    for method in summary.loc[summary["control"], "method"]:
        r, g, b = styles[method].color
        assert r == g == b and styles[method].linestyle == CONTROL_LINESTYLE


def test_facets_hold_at_most_max_lines_with_imp_in_each():
    summary = every_method_summary()
    facets = method_facets(summary, summary["method"], reference="imp")
    assert all(len(methods) <= MAX_LINES and methods[0] == "imp" for _, methods in facets)
    shown = [m for _, methods in facets for m in methods if m != "imp"]
    assert sorted(shown) == sorted(set(summary["method"]) - {"imp"})
    # a control is drawn beside the ticket it controls: scratch_e_finetune with finetune
    baseline = [methods for title, methods in facets if title == "baseline"]
    assert "scratch_e_finetune" in baseline[0] and "finetune" in baseline[0]
    titles = [title for title, _ in facets]
    assert "at_init (1/2)" in titles and "at_init (2/2)" in titles  # 6 criteria, 5 a panel


@pytest.fixture(scope="module")
def many() -> ReportTables:
    """The synthetic tables with CONFIGURED criteria added as copies of snip (far sparser and
    cheaper in summary.csv): 16 methods."""
    base = synthetic_tables()

    def copies(df: pd.DataFrame) -> pd.DataFrame:
        snip = df[df["method"] == "snip"]
        return pd.concat([df, *(snip.assign(method=name) for name in CONFIGURED)],
                         ignore_index=True)

    summary = copies(base.summary)
    # the criteria run far sparser and cheaper, so that axes span 3-4 decades
    criteria = summary["method"].isin(CONFIGURED)
    for column, factor in (("percent_remaining", 0.01), ("density", 0.01),
                           ("total_macs", 1e-3)):
        summary.loc[criteria, column] *= factor
    return ReportTables(summary, copies(base.layers), copies(base.curves),
                        synthetic_similarity(summary), base.indegree)


@pytest.fixture(scope="module")
def drawn(many) -> dict:
    """Every figure of the many-method tables, drawn (so text has its extents)."""
    figures = {}
    for name, spec in FIGURES.items():
        fig = spec.make(many, STYLE)
        if fig is not None:
            fig.canvas.draw()
            figures[name] = fig
    assert len(figures) == len(FIGURES)
    return figures


def method_lines(ax, labels: set[str]) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_label() in labels]


def test_no_two_methods_in_a_figure_share_colour_and_marker(many, drawn):
    labels = set(method_labels(many.summary).values())
    for name, fig in drawn.items():
        looks = {}
        for ax in fig.axes:
            for line in method_lines(ax, labels):
                look = (to_rgb(line.get_color()), line.get_marker())
                looks.setdefault(look, set()).add(line.get_label())
        assert all(len(names) == 1 for names in looks.values()), name


def test_no_panel_draws_more_than_max_lines_methods(many, drawn):
    labels = set(method_labels(many.summary).values())
    for name, fig in drawn.items():
        for ax in fig.axes:
            styled_lines = {line.get_label() for line in method_lines(ax, labels)
                            if line.get_linestyle() not in ("None", "none", "")}
            assert len(styled_lines) <= MAX_LINES, (name, ax.get_title(), styled_lines)


def overlapping(texts) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty texts whose drawn extents overlap."""
    shown = [t for t in texts if t.get_visible() and t.get_text()]
    boxes = [(t.get_text(), t.get_window_extent()) for t in shown]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
            if box_a.overlaps(box_b)]


def test_tick_labels_never_overlap(drawn):
    for name, fig in drawn.items():
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                clash = overlapping(axis.get_ticklabels())
                assert not clash, (name, ax.get_title(), clash)


def test_heatmap_annotations_never_overlap(drawn):
    for name in ("mask_overlap_heatmap", "score_rank_correlation"):
        for ax in drawn[name].axes:
            assert not overlapping(ax.texts), (name, ax.get_title())


def legends(fig) -> list[tuple[Legend, object]]:
    """Every legend of fig with the axes it explains (None for a figure legend)."""
    found = [(ax.get_legend(), ax) for ax in fig.axes if ax.get_legend() is not None]
    return found + [(legend, None) for legend in fig.legends]


def test_legends_are_no_bigger_than_the_plots(drawn):
    for name, fig in drawn.items():
        plots = [ax for ax in fig.axes if ax.axison]
        plot_height = max(ax.get_window_extent().height for ax in plots)
        figure_box = fig.get_window_extent()
        for legend, ax in legends(fig):
            box = legend.get_window_extent()
            assert box.width <= figure_box.width, name
            if ax is not None and ax.axison:  # inside its panel: smaller than the panel
                panel = ax.get_window_extent()
                assert box.width * box.height < panel.width * panel.height, name
            else:  # beside or below the panels: no taller than the tallest panel
                assert box.height <= 1.05 * plot_height, (name, box.height, plot_height)
