"""`python -m lth <verb>`: one verb per artifact kind. Every hyperparameter is an explicit
argument (the workflow passes them all; defaults live in the config schema, not here).

Bad arguments or input files give one error line on stderr and exit status 2, before any
expensive work, and nothing already written is touched.
"""

from __future__ import annotations

import argparse
import sys

from lth.core.io import LthError
from lth.plan import registry
from lth.plan.registry import Verb

PLAIN_VERBS = ("prepare", "init", "filter-prune", "summarize", "similarity", "audit")
"""The verbs of lth.verbs.commands that take plain arguments."""
REPORT_VERBS = ("figure", "report", "pdf")
"""The verbs of lth.verbs.report."""


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
    p.add_argument("--batchnorm-init", type=float, default=None,
                   help="BatchNorm scales at init (default 1)")
    p.add_argument("--data-root", required=True)
    p.add_argument("--out", required=True)


def _job(cls: str):
    """An argparse type reading a JSON job spec of the dataclass "module:Class" `cls`."""
    from lth.plan import spec

    def parse(text: str):
        return spec.from_json(registry.load(cls), text)

    parse.__name__ = cls.split(":")[1]
    return parse


def _add_job_verb(sub, verb: Verb) -> None:
    """A verb that takes its whole job as one JSON object (the workflow builds it)."""
    p = sub.add_parser(verb.name, help=verb.help)
    p.add_argument("--job", type=_job(verb.job), required=True,
                   help=f"the job as JSON ({verb.job.replace(':', '.')})")
    if verb.threads:
        p.add_argument("--threads", type=int, default=None)


CORE_JOB_VERBS = (
    Verb("prune", "lth.plan.spec:PruneJob", "lth.verbs.commands:prune_job",
         "a mask from scores of weights", threads=False),
    Verb("train", "lth.plan.spec:TrainJob", "lth.verbs.commands:train_job",
         "train a cohort of masked networks; per network final weights, metrics, run.json"),
)


def own_verbs() -> tuple[str, ...]:
    """The verbs of lth.verbs.commands."""
    return PLAIN_VERBS + tuple(v.name for v in CORE_JOB_VERBS)


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
    """The parser of every verb. Only what `verb` may need is imported: the report verbs
    (lth.verbs.report) for a report verb, the families' verbs (lth.plan.registry) for another
    word (and, for --help or a typo, both), so that editing the report code or a family's
    declaration never changes what a training job imports."""
    parser = OneLineParser(prog="lth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=OneLineParser)
    for add in (_add_prepare, _add_init, _add_filter_prune, _add_summarize, _add_similarity,
                _add_audit):
        add(sub)
    for job_verb in CORE_JOB_VERBS:
        _add_job_verb(sub, job_verb)
    if verb in own_verbs():
        return parser
    if verb not in REPORT_VERBS:
        for job_verb in registry.verbs().values():
            _add_job_verb(sub, job_verb)
    if verb not in registry.verbs():
        from lth.verbs import report as report_cli

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
    try:
        chain = segments(sys.argv[1:] if argv is None else argv)
        parsed = [(seg, build_parser(seg[0] if seg else None).parse_args(seg)) for seg in chain]
        from lth.verbs import commands

        for seg, args in parsed:
            status = commands.run(args, seg)
            if status:
                return status
        return 0
    except LthError as err:
        print(f"lth: error: {err}", file=sys.stderr)
        return 2
