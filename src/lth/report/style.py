"""Styling: the explicit look of every figure (FigureStyle, from the workflow config), the
seaborn context figures are drawn in, and each method's color and line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, fields

import matplotlib
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lth.core.io import LthError
from lth.plan.registry import groups
from lth.report.tables import sorted_by_family

FAMILY_LINESTYLE = {g.name: g.linestyle for g in groups()}
FAMILY_MARKER = {g.name: g.marker for g in groups()}
CONTROL_COLOR = "0.6"
"""Grey of the controls where a figure sets them apart (the cost Pareto figure)."""
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


def method_colors(summary: pd.DataFrame, palette: str) -> dict[str, tuple]:
    """One color per method, stable across figures (methods ordered by family, then name)."""
    pairs = summary[["family", "method"]].drop_duplicates()
    methods = sorted_by_family(pairs, ["method"], [True])["method"].tolist()
    return dict(zip(methods, sns.color_palette(palette, n_colors=len(methods)), strict=True))


def method_line(family: str, color) -> dict:
    """Line style of a method: color per method, dash and marker per family."""
    return {
        "color": color,
        "linestyle": FAMILY_LINESTYLE[family],
        "marker": FAMILY_MARKER[family],
        "markersize": 4,
    }
