"""`python -m lth <verb>`: one verb per artifact kind. Every hyperparameter is an explicit
argument (the workflow passes them all; defaults live in the config schema, not here).

Bad arguments or input files give one error line on stderr and exit status 2, before any
expensive work, and nothing already written is touched.
"""

from __future__ import annotations

import argparse
import sys

from lth.io import LthError

CORE_VERBS = ("prepare", "init", "prune", "filter-prune", "train", "mine", "eb-search",
              "transfer-depth", "summarize", "similarity", "audit")
"""Verbs of lth.commands. The report verbs (lth.report_cli) are imported only for another
first word (a report verb, --help, a typo), so editing the report code never changes what a
training job imports."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line."""

    def error(self, message: str):
        raise LthError(f"{self.prog}: {message}")


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
    p.add_argument("--init", required=True,
                   help="weight initialiser: glorot, kaiming_fan_in or kaiming_fan_out")
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", required=True)


def _job(cls):
    """An argparse type reading a JSON job spec of dataclass cls (lth.spec)."""
    from lth import spec

    def parse(text: str):
        return spec.from_json(getattr(spec, cls), text)

    parse.__name__ = cls
    return parse


def _add_job_verb(sub, verb: str, cls: str, summary: str, what: str, threads: bool) -> None:
    """A verb that takes its whole job as one JSON object of lth.spec.<cls>."""
    p = sub.add_parser(verb, help=summary)
    p.add_argument("--job", type=_job(cls), required=True,
                   help=f"{what} as JSON (lth.spec.{cls}; the workflow builds it)")
    if threads:
        p.add_argument("--threads", type=int, default=None)


JOB_VERBS = (
    ("prune", "PruneJob", "a mask from scores of weights", "the prune job", False),
    ("train", "TrainJob", "train a cohort of masked networks; per network final weights, "
     "metrics, run.json", "the cohort", True),
    ("mine", "MiningJob", "edge-popup / GEM-MINER: masks mined on frozen weights; per network "
     "the untrained ticket, its scores, metrics, run.json", "the mining job", True),
    ("eb-search", "SearchJob", "Early-Bird: train dense until each density's ticket is drawn; "
     "per density its mask and the weights it was drawn at", "the search", True),
    ("transfer-depth", "TransferJob", "Elastic LTH: a ticket's mask and rewound weights "
     "stretched or squeezed to another depth", "the transfer", False),
)


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
    p.add_argument("--target-fraction", type=float, required=True,
                   help="iterations to target: the first validation accuracy at or above "
                   "this fraction of the same seed's dense network's best")
    p.add_argument("runs", nargs="+", help="run.json files")


def _add_similarity(sub) -> None:
    p = sub.add_parser("similarity", help="similarity.csv: every pair of an experiment's "
                       "masks at matched density, against chance")
    p.add_argument("--experiment", required=True)
    p.add_argument("--summary", required=True, help="summary.csv of the experiment")
    p.add_argument("--out", required=True, help="results/<exp>/similarity.csv")
    p.add_argument("masks", nargs="+", help="mask.safetensors files or their run folders")


def _add_audit(sub) -> None:
    p = sub.add_parser("audit", help="lineage of an artifact down to the dataset files")
    p.add_argument("artifact")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser of every verb; the report verbs' unless `verb` is a core verb."""
    parser = OneLineParser(prog="lth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=OneLineParser)
    for add in (_add_prepare, _add_init, _add_filter_prune, _add_summarize, _add_similarity,
                _add_audit):
        add(sub)
    for declaration in JOB_VERBS:
        _add_job_verb(sub, *declaration)
    if verb not in CORE_VERBS:
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
    record. LthError becomes one line on stderr and exit status 2; a verb that returns
    another status (audit: 1 when its lineage has a changed or missing file) ends the chain
    with it.
    """
    from lth import provenance

    try:
        chain = segments(sys.argv[1:] if argv is None else argv)
        parsed = [(seg, build_parser(seg[0] if seg else None).parse_args(seg)) for seg in chain]
        from lth import commands

        for seg, args in parsed:
            provenance.ARGV[:] = seg
            status = commands.run(args)
            if status:
                return status
        return 0
    except LthError as err:
        print(f"lth: error: {err}", file=sys.stderr)
        return 2
