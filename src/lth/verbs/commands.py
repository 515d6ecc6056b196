"""What each `python -m lth <verb>` does. Arguments arrive parsed (see lth.verbs.cli), with
the verb's own argv for its records. A verb reads its job, calls one method or analysis
function, and writes what it made; each imports only the modules it needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from lth.core.io import LthError, save_tensors
from lth.core.provenance import make_record


def call_params(args, *excluded: str) -> dict:
    """Every argument of this verb call, for its record (output paths excluded)."""
    return {k: v for k, v in vars(args).items() if k not in ("verb", *excluded)}


def use_threads(threads: int | None) -> None:
    """Let torch use `threads` CPU threads (None: its default)."""
    if threads:
        torch.set_num_threads(threads)


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
    model = build(arch, generator(args.experiment, args.seed, "init"), 0.0, args.init)
    record = make_record("init", {"experiment": args.experiment, "seed": args.seed,
                                  "purpose": "init"},
                         [Path(args.data_root) / "manifest.json"], argv=argv)
    record["architecture"] = arch
    save_tensors(args.out, model.state_dict(), record)


def cmd_prune(args, argv: list[str]) -> None:
    from lth.core.networks import resolve_device
    from lth.methods.imp import check_prune_job, prune_inputs, run_prune_job

    job = args.job
    check_prune_job(job)
    device = resolve_device(job.device)
    pruned = run_prune_job(job, device)
    params = dataclasses.asdict(job)
    del params["out"]
    record = make_record("prune", params, prune_inputs(job), str(device), argv=argv)
    record["architecture"] = pruned.arch
    record["macs"] = {"sparse": pruned.macs, "dense": pruned.macs}
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


def cmd_train(args, argv: list[str]) -> None:
    """Train a cohort; each member writes its own run folder, whose record's argv retrains
    that member alone (lth.methods.train_jobs)."""
    from lth.core.networks import resolve_device
    from lth.methods.train_jobs import check_train_job, train_members, write_trained

    job = args.job
    check_train_job(job)
    device = resolve_device(job.device)
    use_threads(args.threads)
    for trained in train_members(job, device):
        write_trained(job, trained, device)


def cmd_mine(args, argv: list[str]) -> None:
    """edge-popup / GEM-MINER: mine a mask of frozen weights per member, each written to its
    run folder with a record whose argv mines that member alone (lth.methods.supermask)."""
    from lth.core.networks import resolve_device, splits_of
    from lth.methods.supermask import mine_member

    job = args.job
    device = resolve_device(job.device)
    use_threads(args.threads)
    splits = splits_of(job.data_root, job.val_size, device)
    for m in job.members:
        mine_member(job, m, splits, device)


def cmd_eb_search(args, argv: list[str]) -> None:
    """Early-Bird's search of one seed: each density's ticket files, then search.json with the
    detection history (lth.methods.earlybird)."""
    from lth.core.networks import resolve_device
    from lth.methods.earlybird import save_search, search_job

    job = args.job
    device = resolve_device(job.device)
    use_threads(args.threads)
    model, arch, found = search_job(job, device)
    save_search(job, model, arch, found, device, argv)


def cmd_transfer_depth(args, argv: list[str]) -> None:
    """Elastic ticket transformation (lth.methods.elastic): the target network's weights and
    mask."""
    from lth.methods.elastic import transfer_job

    job = args.job
    target_arch, target, new_mask = transfer_job(job)
    record = make_record("transfer-depth", dataclasses.asdict(job),
                         [job.source_weights, job.source_mask], argv=argv)
    record["architecture"] = target_arch
    save_tensors(job.out_weights, target.state_dict(), record)
    save_tensors(job.out_mask, new_mask, record)


def cmd_summarize(args, argv: list[str]) -> None:
    from lth.analysis.summary import summarize

    summarize(args.experiment, [Path(p) for p in args.runs], Path(args.out_dir),
              args.target_fraction, argv=argv)


def cmd_similarity(args, argv: list[str]) -> None:
    from lth.analysis.similarity import similarity

    similarity(args.experiment, Path(args.summary), [Path(p) for p in args.masks],
               Path(args.out), argv=argv)


def cmd_audit(args, argv: list[str]) -> None:
    from lth.core.provenance import lineage

    path = Path(args.artifact)
    if not path.exists():
        raise LthError(f"{path}: no such artifact")
    print("\n".join(lineage(path)))


def run(args, argv: list[str]) -> int:
    """Dispatch to the verb's command; argv: the verb's arguments, for its records."""
    verbs = {"prepare": cmd_prepare, "init": cmd_init, "prune": cmd_prune,
             "train": cmd_train, "mine": cmd_mine, "eb-search": cmd_eb_search,
             "transfer-depth": cmd_transfer_depth, "summarize": cmd_summarize,
             "similarity": cmd_similarity, "audit": cmd_audit,
             "filter-prune": cmd_filter_prune}
    if args.verb not in verbs:
        from lth.verbs import report as report_cli

        verbs = report_cli.COMMANDS
    verbs[args.verb](args, argv)
    return 0
