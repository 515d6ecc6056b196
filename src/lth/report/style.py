"""Styling: the explicit look of every figure (FigureStyle, from the workflow config), the
seaborn context figures are drawn in, and each method's one visual identity (MethodStyle:
colour, marker and line), derived from the method registry's groups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, fields

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lth.core.io import LthError
from lth.plan.registry import group_names, groups, method_of
from lth.report.tables import sorted_by_family

FAMILY_LINESTYLE = {g.name: g.linestyle for g in groups()}
FAMILY_MARKER = {g.name: g.marker for g in groups()}
CONTROL_LINESTYLE = "--"
CONTROL_MARKER = "s"
"""Every control is drawn grey and dashed, whatever its group; its markers start here."""
MARKERS = ("o", "s", "^", "D", "v", "P", "*", "h", "X", "<", ">", "p", "d", "H", "8")
"""Markers a group's later members take (its first member takes the group's marker)."""
SPREADS = {"std": "±1 sample standard deviation", "minmax": "the minimum to maximum"}
CONTEXTS = ("paper", "notebook", "talk", "poster")
AXES_STYLES = ("white", "whitegrid", "ticks", "dark", "darkgrid")


@dataclass(frozen=True)
class FigureStyle:
    """Explicit look of every figure, and which levels the selective figures show.

    context/axes_style/font_scale: seaborn plotting context, axes style and font scale;
    palette: seaborn palette for methods; cmap: colormap of the layer-density heatmap;
    dpi, width, height: PNG resolution and figure size in inches;
    spread: "std" or "minmax", the band drawn around the mean over seeds;
    curve_percents: percents remaining whose nearest IMP rounds get learning curves (Frankle
    & Carbin 2019, Fig. 3 shows 100, 51.3, 21.1, 7.0, 3.6, 1.9); the sparsest round is added;
    control_curve_percent: percent remaining whose nearest reinit level gets a curve;
    profile_percents: overall percents remaining faceted in density_profiles and in the
    similarity heatmaps (mask_overlap_heatmap's density bands);
    profile_match_factor: a method's level joins a facet if its percent is within this
    factor of the facet's;
    diverging_cmap: colormap of the heatmaps centred at 0 (excess overlap, rank correlation);
    degree_map_percent: percent remaining whose nearest level per method input_degree_maps
    shows. The last two have defaults (style keys added after configs were written).
    """

    context: str
    axes_style: str
    font_scale: float
    palette: str
    cmap: str
    dpi: int
    width: float
    height: float
    spread: str
    curve_percents: tuple[float, ...]
    control_curve_percent: float
    profile_percents: tuple[float, ...]
    profile_match_factor: float
    diverging_cmap: str = "vlag"
    degree_map_percent: float = 5.0

    def __post_init__(self):
        checks = {
            "context": self.context in CONTEXTS,
            "axes_style": self.axes_style in AXES_STYLES,
            "spread": self.spread in SPREADS,
            "font_scale": self.font_scale > 0,
            "dpi": self.dpi > 0,
            "width": self.width > 0,
            "height": self.height > 0,
            "curve_percents": len(self.curve_percents) > 0,
            "profile_percents": len(self.profile_percents) > 0,
            "profile_match_factor": self.profile_match_factor >= 1,
            "degree_map_percent": 0 < self.degree_map_percent <= 100,
        }
        for key, ok in checks.items():
            if not ok:
                raise LthError(f"report style: bad value {key}={getattr(self, key)!r}")
        try:
            sns.color_palette(self.palette)
            matplotlib.colormaps[self.cmap]
            sns.color_palette(self.diverging_cmap, as_cmap=True)
        except (ValueError, KeyError):
            raise LthError(
                f"report style: unknown palette {self.palette!r} or cmap {self.cmap!r} "
                f"or diverging_cmap {self.diverging_cmap!r}"
            ) from None


def style_from_config(cfg: dict) -> FigureStyle:
    """FigureStyle from the workflow config's report style mapping (every key without a
    default required)."""
    names = [f.name for f in fields(FigureStyle)]
    required = [f.name for f in fields(FigureStyle) if f.default is MISSING]
    missing = [n for n in required if n not in cfg]
    unknown = [k for k in cfg if k not in names]
    if missing or unknown:
        raise LthError(f"report style: missing keys {missing}, unknown keys {unknown}")
    listed = ("curve_percents", "profile_percents")
    return FigureStyle(**{n: tuple(v) if n in listed else v for n, v in cfg.items()})


@contextmanager
def styled(style: FigureStyle) -> Iterator[None]:
    """seaborn context, axes style and font scale, with embeddable TrueType fonts in PDFs."""
    with (
        sns.axes_style(style.axes_style),
        sns.plotting_context(style.context, font_scale=style.font_scale),
        matplotlib.rc_context({"pdf.fonttype": 42, "legend.frameon": True}),
    ):
        yield


def new_figure(style: FigureStyle, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(style.width, style.height), dpi=style.dpi, layout="constrained")
    return fig, list(fig.subplots(1, ncols, sharey=True, squeeze=False)[0])


@dataclass(frozen=True)
class MethodStyle:
    """The one look of a method in every figure: colour, marker and line style."""

    color: tuple
    marker: str
    linestyle: str | tuple

    def line(self, **extra) -> dict:
        """matplotlib keyword arguments of a line drawn in this style."""
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle,
                "markersize": 4} | extra


def shades(base, n: int) -> list[tuple]:
    """n shades of one colour, dark to light (the colour itself in the middle): a family's
    members share its hue."""
    if n == 1:
        return [tuple(base)]
    base = np.asarray(base, dtype=float)
    reach = min(0.45, 0.15 * (n - 1))
    mixed = [base * (1 + t) if t < 0 else base + (1 - base) * t
             for t in np.linspace(-reach, reach, n)]
    return [tuple(float(c) for c in color) for color in mixed]


def group_hues(palette: str) -> dict[str, tuple]:
    """A hue per registry group, in registry order, from palette's colours that are not
    grey (grey is the controls')."""
    colors = [c for c in sns.color_palette(palette, n_colors=len(groups()) + 4)
              if max(c) - min(c) > 0.1]
    return {name: tuple(colors[i % len(colors)]) for i, name in enumerate(group_names())}


def members_markers(first: str, n: int) -> list[str]:
    """n markers, distinct up to len(MARKERS): the group's own first, then MARKERS without
    it, cycling."""
    cycle = [first, *[m for m in MARKERS if m != first]]
    return [cycle[i % len(cycle)] for i in range(n)]


def panel_group(method: str, family: str) -> str:
    """The group a method is shown with: its own, or for a control the group of the first
    method of the registry family that writes it (a ticket's controls beside the ticket);
    a configured method's summary family."""
    found = method_of(method)
    if found is None or not found[1].control:
        return family
    owner = next((m for m in found[0].methods if not m.control), None)
    return owner.group if owner is not None else family


def ordered_methods(summary: pd.DataFrame) -> pd.DataFrame:
    """Each method once (family, method, control), in report order."""
    pairs = summary.groupby(["family", "method"], sort=False)["control"].any().reset_index()
    return sorted_by_family(pairs, ["method"], [True])


def method_styles(summary: pd.DataFrame, palette: str) -> dict[str, MethodStyle]:
    """One MethodStyle per method of summary, the same in every figure: each registry group
    has a hue of `palette` (by its position in the registry, so a group keeps its hue in
    every experiment), its members shades of that hue and distinct markers (the group's
    marker first) and the group's line style; controls are grey shades, dashed."""
    hues = group_hues(palette)
    methods = ordered_methods(summary)
    controls = methods[methods["control"]]
    styles = {}
    for family, members in methods[~methods["control"]].groupby("family", sort=False):
        looks = zip(shades(hues[family], len(members)),
                    members_markers(FAMILY_MARKER[family], len(members)), strict=True)
        for method, (color, mark) in zip(members["method"], looks, strict=True):
            styles[method] = MethodStyle(color, mark, FAMILY_LINESTYLE[family])
    greys = [(g, g, g) for g in np.linspace(0.2, 0.65, len(controls)).tolist()]
    looks = zip(greys, members_markers(CONTROL_MARKER, len(controls)), strict=True)
    for method, (color, mark) in zip(controls["method"], looks, strict=True):
        styles[method] = MethodStyle(color, mark, CONTROL_LINESTYLE)
    return styles
