"""What each `python -m lth <verb>` does. Arguments arrive parsed (see lth.verbs.cli), with
the verb's own argv for its records. A verb reads its job, calls one method or analysis
function, and writes what it made; each imports only the modules it needs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from lth.core.io import LthError, save_tensors
from lth.core.provenance import make_record, plugins_of
from lth.plan import registry


def call_params(args, *excluded: str) -> dict:
    """Every argument of this verb call, for its record (output paths excluded)."""
    return {k: v for k, v in vars(args).items() if k not in ("verb", *excluded)}


def cmd_prepare(args, argv: list[str]) -> None:
    from lth.core.data import DATASETS, SpeechFeatures, check_speech_features, prepare

    if args.dataset not in DATASETS:
        raise LthError(f"--dataset {args.dataset!r}: expected one of {', '.join(DATASETS)}")
    speech = None
    if args.dataset == "speech_commands":
        speech = SpeechFeatures(
            kind=args.speech_features, n_fft=args.speech_n_fft,
            win_length=args.speech_win_length, hop_length=args.speech_hop_length,
            n_mels=args.speech_n_mels,
            n_mfcc=args.speech_n_mfcc if args.speech_features == "mfcc" else None,
        )
        check_speech_features(speech)
    prepare(args.dataset, Path(args.root), source=args.source, download=args.download,
            speech=speech)


def cmd_init(args, argv: list[str]) -> None:
    from lth.core.networks import build, dataset_architecture
    from lth.core.seeding import generator

    arch = dict(dataset_architecture(args.data_root), model=args.model, init=args.init)
    if args.batchnorm_init is not None:
        arch["batchnorm_init"] = args.batchnorm_init
    model = build(arch, generator(args.experiment, args.seed, "init"), 0.0, args.init)
    record = make_record("init", {"experiment": args.experiment, "seed": args.seed,
                                  "purpose": "init"},
                         [Path(args.data_root) / "manifest.json"], argv=argv)
    record["architecture"] = arch
    record.update(plugins_of(arch["model"]))
    save_tensors(args.out, model.state_dict(), record)


def prune_job(job, argv: list[str], threads: int | None) -> None:
    """One mask of a prune job (lth.methods.imp), with its scores when asked."""
    from lth.core.networks import resolve_device
    from lth.methods.imp import check_prune_job, prune_inputs, run_prune_job

    check_prune_job(job)
    device = resolve_device(job.device)
    pruned = run_prune_job(job, device)
    params = dataclasses.asdict(job)
    del params["out"]
    record = make_record("prune", params, prune_inputs(job), str(device), argv=argv)
    record["architecture"] = pruned.arch
    record["macs"] = {"sparse": pruned.macs, "dense": pruned.macs}
    record.update(plugins_of(pruned.arch["model"], (job.criterion,)))
    if pruned.extension is not None:
        record["extension"] = pruned.extension
    save_tensors(job.out, pruned.mask, record)
    if job.save_scores:
        save_tensors(Path(job.out).with_name("scores.safetensors"),
                     {n: v.float().cpu() for n, v in pruned.scores.items()}, record)


def cmd_filter_prune(args, argv: list[str]) -> None:
    from lth.core.networks import load_model, resolve_device
    from lth.methods.filters import filter_pruned

    device = resolve_device(args.device)
    model, arch = load_model(args.weights, 0.0, device)
    small, small_arch = filter_pruned(model, arch, args.fractions, args.latency_batch_size,
                                      args.latency_repeats, device, where=args.weights)
    record = make_record("filter-prune", call_params(args, "out"), [args.weights], str(device),
                         argv=argv)
    record["architecture"] = small_arch
    save_tensors(args.out, small.state_dict(), record)


def train_job(job, argv: list[str], threads: int | None) -> None:
    """Train a cohort; each member writes its own run folder, whose record's argv retrains
    that member alone (lth.methods.train_jobs)."""
    from lth.core.networks import resolve_device, use_threads
    from lth.methods.train_jobs import check_train_job, train_members, write_trained

    check_train_job(job)
    device = resolve_device(job.device)
    use_threads(threads)
    for trained in train_members(job, device):
        write_trained(job, trained, device)


def cmd_summarize(args, argv: list[str]) -> None:
    from lth.analysis.summary import summarize

    summarize(args.experiment, [Path(p) for p in args.runs], Path(args.out_dir),
              args.target_fraction, argv=argv)


def cmd_similarity(args, argv: list[str]) -> None:
    from lth.analysis.similarity import similarity

    similarity(args.experiment, Path(args.summary), [Path(p) for p in args.masks],
               Path(args.out), argv=argv)


AUDIT_FAILURES = ("[CHANGED]", "[MISSING]")


def cmd_audit(args, argv: list[str]) -> int:
    """Print the lineage of an artifact; exit status 1 when any file in it is CHANGED or
    MISSING, so that a script can tell."""
    from lth.core.provenance import lineage

    path = Path(args.artifact)
    if not path.exists():
        raise LthError(f"{path}: no such artifact")
    lines = lineage(path)
    print("\n".join(lines))
    failed = sum(any(status in line for status in AUDIT_FAILURES) for line in lines)
    if failed:
        print(f"lth audit: {failed} file(s) of the lineage CHANGED or MISSING", file=sys.stderr)
        return 1
    return 0


PLAIN_COMMANDS = {"prepare": cmd_prepare, "init": cmd_init, "filter-prune": cmd_filter_prune,
                  "summarize": cmd_summarize, "similarity": cmd_similarity, "audit": cmd_audit}


def run(args, argv: list[str]) -> int:
    """Dispatch to the verb's command; argv: the verb's arguments, for its records. A verb
    that takes a JSON job runs as run(job, argv, threads) (lth.plan.registry.Verb). The exit
    status is 0 unless the command returns another."""
    from lth.verbs.cli import CORE_JOB_VERBS, REPORT_VERBS

    job_verbs = {v.name: v for v in CORE_JOB_VERBS}
    if args.verb in PLAIN_COMMANDS:
        return PLAIN_COMMANDS[args.verb](args, argv) or 0
    if args.verb in REPORT_VERBS:
        from lth.verbs import report as report_cli

        return report_cli.COMMANDS[args.verb](args, argv) or 0
    verb = job_verbs.get(args.verb) or registry.verbs()[args.verb]
    registry.load(verb.run)(args.job, argv, getattr(args, "threads", None))
    return 0
