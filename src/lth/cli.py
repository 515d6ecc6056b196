"""`python -m lth <verb>`: one verb per artifact kind. Every hyperparameter is an explicit
argument (the workflow passes them all; defaults live in the config schema, not here).

Bad arguments or input files give one error line on stderr and exit status 2, before any
expensive work, and nothing already written is touched.
"""

from __future__ import annotations

import argparse
import sys

from lth.io import LthError

FAMILIES = ("lottery", "control", "at_init", "baseline")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line."""

    def error(self, message: str):
        raise LthError(f"{self.prog}: {message}")


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "null", "") else int(text)


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_run_identity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", required=True)
    p.add_argument("--seed", type=int, required=True)


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="make a dataset available; write tensors + manifest")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root", required=True, help="data/<dataset>")
    p.add_argument("--source", default=None, help="local folder holding the raw files")
    p.add_argument("--download", type=_bool, required=True)
    p.add_argument("--speech-features", choices=("mfcc", "logmel"), required=True,
                   help="speech_commands only: feature kind")
    for name in ("n-fft", "win-length", "hop-length", "n-mels", "n-mfcc"):
        p.add_argument(f"--speech-{name}", type=int, required=True)


def _add_init(sub) -> None:
    p = sub.add_parser("init", help="theta_0: seeded initial weights of a model")
    _add_run_identity(p)
    p.add_argument("--model", required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", required=True)


def _add_prune(sub) -> None:
    p = sub.add_parser("prune", help="a mask from scores of weights")
    _add_run_identity(p)
    p.add_argument("--weights", required=True, help="weights the criterion scores")
    p.add_argument("--mask", default=None, help="mask to prune further (default: dense)")
    p.add_argument("--criterion", required=True)
    p.add_argument("--scope", choices=("layerwise", "global"), required=True)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--rates", type=_floats, metavar="CONV,FC,OUTPUT",
                     help="remove these fractions of the remaining weights per layer kind")
    how.add_argument("--density", type=float, help="keep this fraction of prunable weights")
    how.add_argument("--match-counts", metavar="MASK",
                     help="keep as many weights as MASK keeps (per layer, or in total if global)")
    p.add_argument("--purpose", required=True, help="names the random stream, e.g. snip/density0.1")
    p.add_argument("--data-root", default=None, help="training data, for data-driven criteria")
    p.add_argument("--val-size", type=_optional_int, default=None)
    p.add_argument("--score-batch-size", type=int, default=None, help="SNIP batch size")
    p.add_argument("--samples-per-class", type=int, default=None, help="GraSP samples")
    p.add_argument("--grasp-temperature", type=float, default=None)
    p.add_argument("--iterations", type=int, required=True, help="pruning iterations (SynFlow 100)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a masked network; final weights, metrics, run.json")
    _add_run_identity(p)
    p.add_argument("--method", required=True)
    p.add_argument("--family", required=True, choices=FAMILIES)
    p.add_argument("--level", required=True)
    p.add_argument("--init", required=True, help="starting weights (theta_0, theta_k or trained)")
    p.add_argument("--fresh-init", default=None, metavar="PURPOSE",
                   help="ignore --init's values: draw a new init from this random stream")
    p.add_argument("--mask", default=None, help="mask (default: dense)")
    p.add_argument("--data-root", required=True)
    p.add_argument("--val-size", type=_optional_int, required=True,
                   help="validation examples held out of train; none for official splits")
    p.add_argument("--optimizer", choices=("sgd", "adam"), required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--momentum", type=float, required=True)
    p.add_argument("--nesterov", type=_bool, required=True)
    p.add_argument("--weight-decay", type=float, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--iterations", type=int, required=True)
    p.add_argument("--milestones", type=_ints, required=True, help="e.g. 20000,25000 or ''")
    p.add_argument("--gamma", type=float, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--eval-every", type=int, required=True)
    p.add_argument("--eval-batch-size", type=int, required=True)
    p.add_argument("--dropout", type=float, required=True)
    p.add_argument("--augment", type=_bool, required=True)
    p.add_argument("--budget-cap", type=float, default=None,
                   help="Scratch-B: stretch the schedule by min(cap, dense/sparse FLOPs)")
    p.add_argument("--save-at", type=int, default=None, help="also save the weights at this "
                   "iteration as rewind.safetensors (late rewinding)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out-dir", required=True)


def _fractions(text: str) -> dict[str, float]:
    """'conv1=0.5,conv8=0.5' -> {'conv1.weight': 0.5, 'conv8.weight': 0.5}."""
    pairs = [item.split("=") for item in text.split(",") if item.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(f"expected conv<i>=<fraction>,..., got {text!r}")
    return {f"{name.strip()}.weight": float(value) for name, value in pairs}


def _add_filter_prune(sub) -> None:
    p = sub.add_parser("filter-prune", help="Li et al. 2017: remove the filters of smallest "
                       "L1 norm, giving a smaller dense VGG")
    _add_run_identity(p)
    p.add_argument("--weights", required=True, help="trained dense VGG weights")
    p.add_argument("--fractions", type=_fractions, required=True,
                   help="share of filters removed per conv, e.g. conv1=0.5,conv8=0.5")
    p.add_argument("--latency-batch-size", type=int, required=True)
    p.add_argument("--latency-repeats", type=int, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True)


def _add_summarize(sub) -> None:
    p = sub.add_parser("summarize", help="summary.csv, layers.csv, curves.csv of an experiment")
    p.add_argument("--experiment", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("runs", nargs="+", help="run.json files")


def _add_audit(sub) -> None:
    p = sub.add_parser("audit", help="lineage of an artifact down to the dataset files")
    p.add_argument("artifact")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=OneLineParser)
    for add in (_add_prepare, _add_init, _add_prune, _add_filter_prune, _add_train,
                _add_summarize, _add_audit):
        add(sub)
    from lth import report_cli

    report_cli.add_parsers(sub)
    return parser


CHAIN = "::"


def segments(argv: list[str]) -> list[list[str]]:
    """Split `verb args :: verb args ...` into one argument list per verb."""
    out: list[list[str]] = [[]]
    for arg in argv:
        if arg == CHAIN:
            out.append([])
        else:
            out[-1].append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse every verb of a `::` chain first, then run them in order in this process.

    A chain (e.g. `prune ... :: train ...`) saves the interpreter start-up (~2 s of
    importing torch) between dependent steps; each verb still writes its own artifact and
    record. LthError becomes one line on stderr and exit status 2.
    """
    from lth import provenance

    try:
        parser = build_parser()
        chain = segments(sys.argv[1:] if argv is None else argv)
        parsed = [(seg, parser.parse_args(seg)) for seg in chain]
        from lth import commands

        for seg, args in parsed:
            provenance.ARGV[:] = seg
            commands.run(args)
        return 0
    except LthError as err:
        print(f"lth: error: {err}", file=sys.stderr)
        return 2
