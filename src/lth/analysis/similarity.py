"""Ticket similarity: how far two masks (or two criteria's scores) agree, against chance.

Masks are dicts layer name -> bool numpy array (a torch mask converts with .numpy()); this
module never imports torch. Per layer l, with n_l weights, k_A,l and k_B,l kept and
I_l = |A_l and B_l|; "all" sums each quantity over the layers:

- jaccard J = I / (K_A + K_B - I); 1 for two empty masks.
- chance: two masks drawn uniformly at random with these per-layer kept counts. I_l is then
  hypergeometric: E[I_l] = k_A k_B / n, Var[I_l] = k_A k_B (n - k_A)(n - k_B) / (n^2 (n - 1)),
  and the layers are independent, so E[I] and Var[I] are sums over layers (not the
  layer-blind K_A K_B / N, which counts agreeing layer profiles as agreeing weights).
- expected_jaccard = E[I] / (K_A + K_B - E[I]): the Jaccard at the expected intersection (a
  ratio of expectations, close to E[J] for large layers).
- excess X = (I - E[I]) / (I_max - E[I]), with I_max = sum_l min(k_A,l, k_B,l) the largest
  intersection the per-layer counts allow. X = 1 exactly for identical masks (and for masks
  nested in every layer), E[X] = 0 exactly for random masks with these counts, and
  sd(X) = sqrt(Var[I]) / (I_max - E[I]). Undefined (NaN) when the counts force the overlap
  (I_max = E[I]: in each layer one mask keeps all or nothing). For one layer X is
  METHODS.md 6.1's (I - E[I]) / (min(K_A, K_B) - E[I]), and Cohen's kappa for equal counts;
  over several layers min(K_A, K_B) would be an overlap the counts may not allow, so X
  could not reach 1.
- z = (I - E[I]) / sqrt(Var[I]).
- hamming = #(A xor B) / N.
- profile_distance = sum_l |k_A,l - k_B,l| / N = sum_l (n_l / N) |d_A,l - d_B,l|, the
  weight-weighted L1 distance of the per-layer densities (for one layer, |d_A - d_B|).

Two masks of one seed compare weight by weight, but a kept position is the same weight only
when both networks started from the same weights. Each pair is tagged `init`: "same" when
both start from one file (theta_0 of the seed, or the weights trained from it: a rewind point,
the trained dense network, a drawn ticket) transformed alike, "different" otherwise: a fresh
init (the reinit controls), mining's signed constants (edge-popup and GEM-MINER against
theta_0's networks; not against each other), another network's weights stretched to this
depth (elastic transfer), another seed. The start is read from the provenance records.

Across seeds, hidden units are exchangeable, so only views that do not depend on their
order are compared: the layer profile and the in-degree of every input of the layer that
reads the input (per pixel for a linear first layer; per input channel and kernel position
for a convolution).

The similarity verb writes two tidy tables: similarity.csv (every pair of networks at
matched density, per layer and "all") and indegree.csv beside it (every network's in-degree
per input of its first layer, for the report's in-degree maps).
"""

from __future__ import annotations

import json
import math
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file

from lth.core.errors import LthError

Masks = dict[str, np.ndarray]


def hypergeometric_overlap(n: int, k_a: int, k_b: int) -> tuple[float, float]:
    """Mean and variance of |A and B| for random subsets of sizes k_a, k_b of n items."""
    mean = k_a * k_b / n
    variance = k_a * k_b * (n - k_a) * (n - k_b) / (n * n * (n - 1)) if n > 1 else 0.0
    return mean, variance


@dataclass(frozen=True)
class Overlap:
    """The counts of two masks over one layer (or, summed, several) and their chance
    expectation; the measures of the module docstring are its properties."""

    n: int
    k_a: int
    k_b: int
    intersection: int
    expected: float
    variance: float
    most: int  # the largest intersection the per-layer counts allow
    count_gap: int  # sum over layers of |k_A,l - k_B,l|

    def __add__(self, other: Overlap) -> Overlap:
        return Overlap(*(x + y for x, y in zip(astuple(self), astuple(other), strict=True)))

    @property
    def jaccard(self) -> float:
        union = self.k_a + self.k_b - self.intersection
        return self.intersection / union if union else 1.0

    @property
    def expected_jaccard(self) -> float:
        union = self.k_a + self.k_b - self.expected
        return self.expected / union if union else 1.0

    @property
    def excess(self) -> float:
        room = self.most - self.expected
        return (self.intersection - self.expected) / room if room > 0 else math.nan

    @property
    def excess_sd(self) -> float:
        """Standard deviation of the excess of two random masks with these counts."""
        room = self.most - self.expected
        return math.sqrt(self.variance) / room if room > 0 else math.nan

    @property
    def z(self) -> float:
        sd = math.sqrt(self.variance)
        return (self.intersection - self.expected) / sd if sd > 0 else math.nan

    @property
    def hamming(self) -> float:
        return (self.k_a + self.k_b - 2 * self.intersection) / self.n

    @property
    def profile_distance(self) -> float:
        return self.count_gap / self.n


NO_WEIGHTS = Overlap(0, 0, 0, 0, 0.0, 0.0, 0, 0)
"""The Overlap of no layer (the start of a sum)."""


def layer_overlap(a: np.ndarray, b: np.ndarray) -> Overlap:
    """The Overlap of two masks of one layer (same shape)."""
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    n, k_a, k_b = a.size, int(a.sum()), int(b.sum())
    expected, variance = hypergeometric_overlap(n, k_a, k_b)
    return Overlap(n, k_a, k_b, int((a & b).sum()), expected, variance, min(k_a, k_b),
                   abs(k_a - k_b))


def overlaps(a: Masks, b: Masks) -> dict[str, Overlap]:
    """Per layer of a (in a's order), then "all": the Overlap of two masks."""
    per_layer = {name: layer_overlap(a[name], b[name]) for name in a}
    return per_layer | {"all": sum(per_layer.values(), start=NO_WEIGHTS)}


def same_layout(a: Masks, b: Masks) -> bool:
    """Whether two masks cover the same layers with the same shapes (weight by weight
    comparable)."""
    return a.keys() == b.keys() and all(a[n].shape == b[n].shape for n in a)


def profile_distance(a: Masks, b: Masks) -> float:
    """sum_l |k_A,l - k_B,l| / N over the layers of a and b (same layers and sizes)."""
    gap = sum(abs(int(a[n].sum()) - int(b[n].sum())) for n in a)
    return gap / sum(m.size for m in a.values())


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of x, ties sharing their mean rank."""
    order = np.argsort(x, kind="stable")
    _, first, count = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(first + (count - 1) / 2, count)
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equal-length vectors; NaN when either is constant."""
    x, y = x.astype(np.float64) - x.mean(), y.astype(np.float64) - y.mean()
    norm = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / norm if norm > 0 else math.nan


def input_layer(mask: Masks, input_shape: tuple[int, ...]) -> str | None:
    """The layer that reads the input: the one linear layer whose fan-in is the flattened
    input, or the one convolution whose input channels are the input's; None when no single
    layer qualifies."""
    def reads_input(m: np.ndarray) -> bool:
        if m.ndim == 2:
            return m.shape[1] == math.prod(input_shape)
        return m.ndim == 4 and m.shape[1] == input_shape[0]

    found = [name for name, m in mask.items() if reads_input(m)]
    return found[0] if len(found) == 1 else None


def in_degree(layer: np.ndarray) -> np.ndarray:
    """Kept weights per input of a layer (weights shaped (out, in, ...)), flattened: it does
    not depend on the order of the layer's output units."""
    return layer.sum(axis=0).ravel()


# --- similarity.csv: every pair of an experiment's networks at matched density ---------

DENSITY_TOLERANCE = 0.1
"""Two networks on different level grids pair when each one's density is the other
method's nearest and the two differ by at most this share of the larger."""

COLUMNS = [
    "experiment", "view", "init", "seed_a", "seed_b", "method_a", "draw_a", "level_a", "density_a",
    "method_b", "draw_b", "level_b", "density_b", "layer", "n", "k_a", "k_b", "intersection",
    "expected_intersection", "var_intersection", "jaccard", "expected_jaccard", "excess",
    "excess_sd", "z", "hamming", "profile_distance", "in_degree_correlation", "score_spearman",
]
SUMMARY_KEYS = ["experiment", "method", "draw", "seed", "level", "density", "run_dir"]
SCORES_FILE = "scores.safetensors"
"""The scores that made a mask, beside it in the run folder, when the method has them: taken
at theta_0 (pruning at initialization) or trained (mined supermasks)."""


@dataclass(frozen=True)
class Network:
    """One trained network of summary.csv and its mask file; `start`: what its weights
    started from (start_of_run)."""

    method: str
    draw: int
    seed: int
    level: str
    density: float
    mask_path: str
    start: str


def file_record(path: str | Path) -> dict:
    """The provenance record in a safetensors file's header ({} when it has none)."""
    with safe_open(str(path), framework="np") as fh:
        return json.loads((fh.metadata() or {}).get("lth", "{}"))


def start_of_record(record: dict) -> str | None:
    """What the weights of a training or mining record started from: a fresh init's stream,
    or its init file's start (start_of_file) as mining's weights transform it; None when the
    record names no starting weights (init, or a verb that made them, as elastic)."""
    params = record.get("params", {})
    member = params["members"][0] if params.get("members") else params
    if member.get("fresh_init"):
        return (f"fresh init {params.get('experiment')}/seed{params.get('seed')}/"
                f"{member['fresh_init']}/draw{member.get('draw', 0)}")
    if record.get("verb") == "init" or not isinstance(member.get("init"), str):
        return None
    start = start_of_file(member["init"])
    weights = params.get("mining", {}).get("weights", "theta0")
    return start if weights == "theta0" else f"{weights} of {start}"


def start_of_file(path: str) -> str:
    """The start of the weights in a file: that of the record that made them, followed back
    to the file that has none (theta_0, transferred weights)."""
    record = file_record(path) if Path(path).is_file() else {}
    return start_of_record(record) or str(Path(path).resolve())


def start_of_run(run_dir: str | Path) -> str:
    """What the network of a run folder started from, from its run.json."""
    path = Path(run_dir) / "run.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise LthError(f"{path}: cannot read the record of where the network started "
                       f"({err})") from None
    return start_of_record(record) or str(path.parent.resolve())


def networks(summary: pd.DataFrame, mask_paths: list[Path], experiment: str) -> list[Network]:
    """The network of each mask file, from the summary.csv row of its run folder and the
    run.json beside it."""
    missing = [k for k in SUMMARY_KEYS if k not in summary.columns]
    if missing:
        raise LthError(f"summary.csv lacks the columns {missing}")
    rows = {Path(r.run_dir).resolve(): r for r in summary.itertuples()}
    found = []
    for path in mask_paths:
        row = rows.get(path.parent.resolve())
        if row is None:
            raise LthError(f"{path}: no row of summary.csv has the run folder {path.parent}")
        if row.experiment != experiment:
            raise LthError(f"{path}: belongs to experiment {row.experiment!r}, not "
                           f"{experiment!r}")
        if not path.is_file():
            raise LthError(f"{path}: file not found")
        found.append(Network(row.method, int(row.draw), int(row.seed), str(row.level),
                             float(row.density), str(path), start_of_run(path.parent)))
    return sorted(found, key=lambda n: (n.seed, n.method, n.draw, -n.density))


class Grid:
    """The levels and densities of every (seed, method) among the networks."""

    def __init__(self, nets: list[Network]):
        self.levels: dict[tuple[int, str], set[str]] = {}
        self.densities: dict[tuple[int, str], np.ndarray] = {}
        for key in {(n.seed, n.method) for n in nets}:
            own = [n for n in nets if (n.seed, n.method) == key]
            self.levels[key] = {n.level for n in own}
            self.densities[key] = np.array(sorted({n.density for n in own}))

    def nearest(self, density: float, seed: int, method: str) -> float:
        grid = self.densities[seed, method]
        return float(grid[np.abs(grid - density).argmin()])

    def matched(self, x: Network, y: Network, tolerance: float) -> bool:
        """Same level; or, when neither method has the other's level, mutually nearest
        densities within the tolerance."""
        if x.level == y.level:
            return True
        if x.level in self.levels[y.seed, y.method] or y.level in self.levels[x.seed, x.method]:
            return False
        return (self.nearest(x.density, y.seed, y.method) == y.density
                and self.nearest(y.density, x.seed, x.method) == x.density
                and abs(x.density - y.density) <= tolerance * max(x.density, y.density))


def matched_pairs(nets: list[Network], tolerance: float) -> list[tuple[Network, Network]]:
    """Every pair of networks at matched density: of two methods within a seed, and of any
    methods (one included) across two seeds."""
    grid = Grid(nets)
    return [(x, y) for i, x in enumerate(nets) for y in nets[i + 1:]
            if (x.seed, x.method) != (y.seed, y.method) and grid.matched(x, y, tolerance)]


def read_arrays(path: str) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as numpy arrays (torch-free)."""
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise LthError(f"{path}: not a valid safetensors file ({err})") from None


def load_masks(path: str) -> Masks:
    """A mask.safetensors file as bool arrays."""
    return {k: v.astype(bool) for k, v in read_arrays(path).items()}


def input_shape_of(path: str) -> tuple[int, ...] | None:
    """The model's input shape recorded in a mask file's provenance header, if any."""
    shape = file_record(path).get("architecture", {}).get("input_shape")
    return tuple(shape) if shape else None


def _ranker(scores: dict[str, np.ndarray]):
    """layers -> average_ranks of those layers' scores, concatenated in that order."""
    return lambda layers: average_ranks(np.concatenate([scores[n].ravel() for n in layers]))


def score_correlations(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray] | None,
                       layers, ranks_a=None, ranks_b=None) -> dict[str, float]:
    """Spearman correlation of two criteria's scores, per layer of `layers` that both
    scored (same shape) and over those layers pooled. ranks_a / ranks_b: each side's
    _ranker (ScoreRanks passes memoised ones); made here when not given."""
    if a is None or b is None:
        return {}
    shared = tuple(n for n in layers if n in a and n in b and a[n].shape == b[n].shape)
    if not shared:
        return {}
    ranks_a, ranks_b = ranks_a or _ranker(a), ranks_b or _ranker(b)
    per_layer = {n: pearson(ranks_a((n,)), ranks_b((n,))) for n in shared}
    return per_layer | {"all": pearson(ranks_a(shared), ranks_b(shared))}


class ScoreRanks:
    """The scores behind each network's mask (its scores.safetensors, if any) and their
    ranks, each read or computed once per experiment: a network's scores meet those of
    every other network at its density."""

    def __init__(self) -> None:
        self._scores: dict[str, dict[str, np.ndarray] | None] = {}
        self._ranks: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    def scores(self, net: Network) -> dict[str, np.ndarray] | None:
        path = str(Path(net.mask_path).with_name(SCORES_FILE))
        if path not in self._scores:
            self._scores[path] = read_arrays(path) if Path(path).is_file() else None
        return self._scores[path]

    def ranker(self, net: Network):
        """The network's _ranker, memoised."""
        def ranks(layers: tuple[str, ...]) -> np.ndarray:
            key = (net.mask_path, layers)
            if key not in self._ranks:
                self._ranks[key] = _ranker(self.scores(net))(layers)
            return self._ranks[key]

        return ranks

    def correlations(self, x: Network, y: Network, layers) -> dict[str, float]:
        return score_correlations(self.scores(x), self.scores(y), layers,
                                  self.ranker(x), self.ranker(y))


def pair_rows(experiment: str, x: Network, y: Network, load, ranks: ScoreRanks) -> list[dict]:
    """The rows of one pair: per layer and "all". Within a seed every measure; across seeds
    only the views that do not depend on the order of hidden units."""
    a, b = load(x.mask_path), load(y.mask_path)
    if not same_layout(a, b):
        return []  # a structurally pruned, smaller network: no weight-by-weight comparison
    view = "mask" if x.seed == y.seed else "in_degree_across_seeds"
    shape = input_shape_of(x.mask_path)
    first = input_layer(a, shape) if shape else None
    degree = pearson(in_degree(a[first]), in_degree(b[first])) if first else math.nan
    correlations = ranks.correlations(x, y, a) if view == "mask" else {}
    base = {"experiment": experiment, "view": view,
            "init": "same" if x.start == y.start else "different"}
    for side, net in (("a", x), ("b", y)):
        base |= {f"{key}_{side}": getattr(net, key)
                 for key in ("seed", "method", "draw", "level", "density")}
    rows = []
    for layer, ov in overlaps(a, b).items():
        row = base | {"layer": layer, "n": ov.n, "k_a": ov.k_a, "k_b": ov.k_b,
                      "profile_distance": ov.profile_distance,
                      "in_degree_correlation": degree if layer == first else math.nan,
                      "score_spearman": correlations.get(layer, math.nan)}
        if view == "mask":
            row |= {"intersection": ov.intersection, "expected_intersection": ov.expected,
                    "var_intersection": ov.variance, "jaccard": ov.jaccard,
                    "expected_jaccard": ov.expected_jaccard, "excess": ov.excess,
                    "excess_sd": ov.excess_sd, "z": ov.z, "hamming": ov.hamming}
        rows.append(row)
    return rows


INDEGREE_COLUMNS = ["experiment", "seed", "method", "draw", "level", "density", "layer",
                    "kind", "channel", "row", "col", "in_degree", "fan_out"]
INDEGREE_FILE = "indegree.csv"


def in_degree_table(experiment: str, net: Network, mask: Masks,
                    shape: tuple[int, ...] | None) -> pd.DataFrame | None:
    """The in-degree of every input of the network's first layer (input_layer, for a model
    input of this shape), one row per input: channel, row, col of an input pixel (linear
    layer; the input shape padded to channels x rows x cols) or of a kernel position
    (convolution); None without a shape or when no single layer reads the input."""
    first = input_layer(mask, shape) if shape else None
    if first is None:
        return None
    layer = mask[first]
    positions = shape if layer.ndim == 2 else layer.shape[1:]
    positions = (1,) * (3 - len(positions)) + tuple(positions)
    degree = in_degree(layer)
    channel, row, col = np.unravel_index(np.arange(degree.size), positions)
    return pd.DataFrame({
        "experiment": experiment, "seed": net.seed, "method": net.method, "draw": net.draw,
        "level": net.level, "density": net.density, "layer": first,
        "kind": "linear" if layer.ndim == 2 else "conv", "channel": channel, "row": row,
        "col": col, "in_degree": degree, "fan_out": layer.shape[0]}, columns=INDEGREE_COLUMNS)


def mask_files(paths: list[Path]) -> list[Path]:
    """Mask files given directly or as their run folders."""
    return [p / "mask.safetensors" if p.is_dir() else p for p in paths]


def similarity(experiment: str, summary_csv: Path, paths: list[Path], out: Path,
               tolerance: float = DENSITY_TOLERANCE, argv=()) -> None:
    """Write the similarity.csv of an experiment to `out` and its indegree.csv beside it,
    each with its provenance sidecar."""
    from lth.analysis.summary import (
        write_csv,  # imports torch (lth.core.io); the measures above do not
    )

    if not summary_csv.is_file():
        raise LthError(f"{summary_csv}: file not found")
    nets = networks(pd.read_csv(summary_csv), mask_files(paths), experiment)
    cache: dict[str, Masks] = {}

    def load(path: str) -> Masks:
        if path not in cache:
            cache[path] = load_masks(path)
        return cache[path]

    ranks = ScoreRanks()
    rows = [row for x, y in matched_pairs(nets, tolerance)
            for row in pair_rows(experiment, x, y, load, ranks)]
    used_scores = [p for n in nets
                   if (p := Path(n.mask_path).with_name(SCORES_FILE)).is_file()]
    degrees = [t for n in nets if (t := in_degree_table(
        experiment, n, load(n.mask_path), input_shape_of(n.mask_path))) is not None]
    masks = [Path(n.mask_path) for n in nets]
    records = [m.with_name("run.json") for m in masks]  # where each network started
    write_csv(pd.DataFrame(rows, columns=COLUMNS), out,
              [summary_csv, *masks, *records, *used_scores], experiment, verb="similarity",
              argv=argv)
    write_csv(pd.concat(degrees, ignore_index=True) if degrees else
              pd.DataFrame(columns=INDEGREE_COLUMNS), out.with_name(INDEGREE_FILE),
              [summary_csv, *masks], experiment, verb="similarity", argv=argv)
