"""What each `python -m lth <verb>` does. Arguments arrive parsed (see lth.cli)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import time
from pathlib import Path

import torch
from safetensors import safe_open

from lth import masks as M
from lth.io import (
    LthError,
    atomic_write_text,
    load_tensors,
    read_json,
    read_metadata,
    save_tensors,
    write_json,
)
from lth.provenance import file_entry, make_record
from lth.seeding import derive_seed, generator

LEVEL_PATTERN = re.compile(
    r"^(round(?P<round>\d+)|density(?P<density>[0-9.]+)|(?P<structure>[a-z][a-z0-9_]*))$"
)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LthError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def dataset_architecture(data_root: str) -> dict:
    """Dataset name, input shape and class count of a prepared dataset folder."""
    from lth.data import DATASETS

    root = Path(data_root)
    manifest = read_json(root / "manifest.json")
    tensors = root / "tensors.safetensors"
    if not tensors.is_file():
        raise LthError(f"{tensors}: file not found (run `lth prepare` first)")
    with safe_open(str(tensors), "pt") as fh:
        shape = fh.get_slice("train_x").get_shape()
    name = manifest["dataset"]
    return {"dataset": name, "input_shape": list(shape[1:]),
            "num_classes": DATASETS[name].num_classes}


def architecture_of(weights_path: str) -> dict:
    """The architecture recorded in a weights file by `init` or `train`."""
    record = read_metadata(weights_path)
    try:
        return record["architecture"]
    except KeyError:
        raise LthError(f"{weights_path}: no architecture recorded (not made by lth?)") from None


def build(arch: dict, gen: torch.Generator, dropout: float):
    """An nn.Module of the recorded architecture, initialised from gen.

    A filter-pruned VGG (lth.filters) records its narrower conv widths as "cfg".
    """
    from lth.models import build_model, vgg

    shape = tuple(arch["input_shape"])
    if "cfg" in arch:
        return vgg(arch["cfg"], shape, arch["num_classes"], gen)
    return build_model(arch["model"], shape, arch["num_classes"], gen, dropout)


def load_model(weights_path: str, dropout: float, device: torch.device):
    """Build the recorded architecture and load the file's weights into it."""
    arch = architecture_of(weights_path)
    model = build(arch, torch.Generator().manual_seed(0), dropout)
    model.load_state_dict(load_tensors(weights_path))
    return model.to(device), arch


def prunable_params(model) -> dict[str, torch.Tensor]:
    from lth.models import prunable_names

    params = dict(model.named_parameters())
    return {n: params[n] for n in prunable_names(model)}


def call_params(args, *excluded: str) -> dict:
    """Every argument of this verb call, for its record (output paths excluded)."""
    return {k: v for k, v in vars(args).items() if k not in ("verb", *excluded)}


def load_mask(path: str | None, params: dict[str, torch.Tensor]) -> M.Mask:
    """The mask in `path` (checked against the model), or a dense mask."""
    if path is None:
        return M.full_mask(params)
    mask = {k: v.bool() for k, v in load_tensors(path, next(iter(params.values())).device).items()}
    if set(mask) != set(params) or any(mask[n].shape != params[n].shape for n in params):
        raise LthError(f"{path}: mask does not match the model's prunable weights")
    return {n: mask[n] for n in params}


def cmd_prepare(args) -> None:
    from lth.data import DATASETS, SpeechFeatures, check_speech_features, prepare

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


def cmd_init(args) -> None:
    arch = dict(dataset_architecture(args.data_root), model=args.model)
    model = build(arch, generator(args.experiment, args.seed, "init"), dropout=0.0)
    record = make_record("init", {"experiment": args.experiment, "seed": args.seed,
                                  "purpose": "init"},
                         [Path(args.data_root) / "manifest.json"])
    record["architecture"] = arch
    save_tensors(args.out, model.state_dict(), record)


def _kind_rates(model, rates: tuple[float, ...]) -> dict[str, float]:
    from lth.models import layer_kinds

    if len(rates) != 3 or not all(0 <= r < 1 for r in rates):
        raise LthError(f"--rates {rates}: expected three fractions in [0, 1): conv,fc,output")
    by_kind = dict(zip(("conv", "fc", "output"), rates, strict=True))
    return {name: by_kind[kind] for name, kind in layer_kinds(model).items()}


def prune_by_rates(scores, mask, rates: dict[str, float], scope: str) -> M.Mask:
    """One IMP step: remove a fraction of the remaining weights (per layer or pooled)."""
    if scope == "layerwise":
        return M.prune_fraction_layerwise(scores, mask, rates)
    pooled = [n for n, r in rates.items() if r > 0]
    if len({rates[n] for n in pooled}) > 1:
        raise LthError("--scope global needs the same rate for every pruned layer kind")
    return M.prune_fraction_global(scores, mask, rates[pooled[0]], pooled) if pooled else mask


def prune_to_counts(scores, mask, reference: M.Mask, scope: str) -> M.Mask:
    """Keep as many weights as `reference` keeps: per layer, or in total when global."""
    if scope == "layerwise":
        return M.keep_top_layerwise(scores, mask, {n: int(reference[n].sum()) for n in mask})
    return M.keep_top_global(scores, mask, M.counts(reference)[0], list(mask))


DATA_CRITERIA = frozenset({"snip", "grasp"})


def score_batches(args, arch, gen, device) -> list:
    """Training batches a data-driven criterion scores on: one random batch for SNIP
    (Lee et al. 2019), a class-balanced sample for GraSP (Wang et al. 2020)."""
    if args.criterion not in DATA_CRITERIA:
        return []
    from lth.data import load_splits
    from lth.pruning import balanced_batches

    needed = [args.data_root, args.score_batch_size, args.samples_per_class]
    if any(v is None for v in needed) or (args.criterion == "grasp"
                                          and args.grasp_temperature is None):
        raise LthError(f"--criterion {args.criterion} needs --data-root, --score-batch-size, "
                       "--samples-per-class and --grasp-temperature")
    splits = load_splits(Path(args.data_root), args.val_size, device)
    if args.criterion == "snip":
        idx = torch.randperm(len(splits.train_x), generator=gen)[: args.score_batch_size]
        return [(splits.train_x[idx.to(device)], splits.train_y[idx.to(device)])]
    return balanced_batches(splits.train_x, splits.train_y, args.samples_per_class,
                            arch["num_classes"], gen, args.score_batch_size)


def score_data(args, model, arch, device):
    """The ScoreData of a prune call: names, batches, generator and criterion settings."""
    from lth.models import prunable_names
    from lth.pruning import ScoreData

    gen = generator(args.experiment, args.seed, args.purpose)
    return ScoreData(
        names=prunable_names(model), batches=score_batches(args, arch, gen, device), gen=gen,
        num_classes=arch["num_classes"], input_shape=tuple(arch["input_shape"]),
        grasp_temperature=args.grasp_temperature,
    )


def cmd_prune(args) -> None:
    from lth.pruning import CRITERIA, prune_at_init

    if args.criterion not in CRITERIA:
        raise LthError(f"--criterion {args.criterion!r}: expected one of {', '.join(CRITERIA)}")
    if args.density is not None and not 0 < args.density <= 1:
        raise LthError(f"--density {args.density}: expected a fraction in (0, 1]")
    device = resolve_device(args.device)
    model, arch = load_model(args.weights, 0.0, device)
    params = prunable_params(model)
    mask = load_mask(args.mask, params)
    reference = load_mask(args.match_counts, params) if args.match_counts else None
    data = score_data(args, model, arch, device)
    if args.density is not None:
        new = prune_at_init(model, mask, args.criterion, args.density, args.scope, data,
                            args.iterations)
    else:
        scores = CRITERIA[args.criterion](model, mask, data)
        new = (prune_by_rates(scores, mask, _kind_rates(model, args.rates), args.scope)
               if args.rates else prune_to_counts(scores, mask, reference, args.scope))
    inputs = [p for p in (args.weights, args.mask, args.match_counts) if p]
    if args.criterion in DATA_CRITERIA:
        inputs.append(Path(args.data_root) / "tensors.safetensors")
    record = make_record("prune", call_params(args, "out"), inputs, str(device))
    record["architecture"] = arch
    save_tensors(args.out, new, record)


def cmd_filter_prune(args) -> None:
    from lth.filters import measure_latency, prune_filters
    from lth.models import VGG

    device = resolve_device(args.device)
    model, arch = load_model(args.weights, 0.0, device)
    if not isinstance(model, VGG) or "cfg" in arch:
        raise LthError(f"{args.weights}: filter pruning needs a dense, unpruned VGG")
    if not all(0 <= f < 1 for f in args.fractions.values()):
        raise LthError("--fractions: every fraction must be in [0, 1)")
    small = prune_filters(model, args.fractions)
    shape = tuple(arch["input_shape"])
    latency = {name: measure_latency(net, shape, args.latency_batch_size, args.latency_repeats,
                                     warmup=2, device=device)
               for name, net in (("dense_latency_seconds", model),
                                 ("latency_seconds", small))}
    dense_params = sum(p.numel() for p in prunable_params(model).values())
    record = make_record("filter-prune", call_params(args, "out"), [args.weights], str(device))
    record["architecture"] = dict(arch, cfg=list(small.cfg), unpruned={
        "params_total": dense_params, "dense_flops": M.macs(model, shape), **latency})
    print(f"filter pruning: {dense_params} -> "
          f"{sum(p.numel() for p in prunable_params(small).values())} weights, latency "
          f"{latency['dense_latency_seconds'] * 1e3:.2f} -> {latency['latency_seconds'] * 1e3:.2f}"
          f" ms per batch of {args.latency_batch_size}")
    save_tensors(args.out, small.state_dict(), record)


def schedule_from(args):
    from lth.train import Schedule

    if args.iterations < 1 or args.batch_size < 1 or args.eval_every < 1:
        raise LthError("--iterations, --batch-size and --eval-every must be positive")
    return Schedule(
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
        weight_decay=args.weight_decay, batch_size=args.batch_size, iterations=args.iterations,
        milestones=args.milestones, gamma=args.gamma, warmup=args.warmup,
        eval_every=args.eval_every, eval_batch_size=args.eval_batch_size,
    )


def parse_level(level: str) -> tuple[int, float | None]:
    """(round, target density) of a level name: round<R> -> (R, None), density<D> -> (-1, D),
    a structure name (filter pruning) -> (-1, None)."""
    match = LEVEL_PATTERN.match(level)
    if match is None:
        raise LthError(f"--level {level!r}: expected round<R>, density<D> or a structure name")
    if match["round"] is not None:
        return int(match["round"]), None
    return -1, float(match["density"]) if match["density"] else None


def network_facts(model, arch: dict, mask: M.Mask) -> dict:
    """Density, per-layer counts, FLOPs and collapse (no input-output path) of a network."""
    from lth.models import layer_kinds
    from lth.pruning import input_reaches_output

    shape = tuple(arch["input_shape"])
    kept, total = M.counts(mask)
    kinds = layer_kinds(model)
    facts = {
        "params_kept": kept, "params_total": total,
        "flops": M.macs(model, shape, mask), "dense_flops": M.macs(model, shape),
        "collapsed": not input_reaches_output(model, mask, list(mask), shape),
        "layers": [{"layer": n, "kind": kinds[n], "kept": int(m.sum()), "size": m.numel()}
                   for n, m in mask.items()],
    }
    facts.update(arch.get("unpruned", {}))  # a smaller dense network counts against its parent
    facts["density"] = facts["params_kept"] / facts["params_total"]
    return facts


def metrics_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["iteration", "split", "loss", "accuracy"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def cmd_train(args) -> None:
    from lth.data import augment_batch, load_splits
    from lth.train import train

    round_, target = parse_level(args.level)
    schedule = schedule_from(args)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model, arch = load_model(args.init, args.dropout, device)
    if args.fresh_init:
        fresh = build(arch, generator(args.experiment, args.seed, args.fresh_init), args.dropout)
        model.load_state_dict(fresh.state_dict())
    mask = load_mask(args.mask, prunable_params(model))
    splits = load_splits(Path(args.data_root), args.val_size, device)
    facts = network_facts(model, arch, mask)
    if args.budget_cap is not None:
        schedule = schedule.scaled(min(args.budget_cap, facts["dense_flops"] / facts["flops"]))
    loaded = time.perf_counter()
    torch.manual_seed(derive_seed(args.experiment, args.seed, "dropout"))  # nn.Dropout's RNG
    result = train(
        model, mask, splits, schedule, generator(args.experiment, args.seed, "data-order"),
        checkpoint_iterations=(args.save_at,) if args.save_at is not None else (),
        augment=augment_batch if args.augment else None,
        prefix=f"[{args.experiment} seed{args.seed} {args.method}/{args.level}]",
    )
    write_training_outputs(args, arch, model, mask, result, facts, schedule, device,
                           round_, target, {"load": loaded - started,
                                            "train": result.wall_seconds})


def write_training_outputs(args, arch, model, mask, result, facts, schedule, device,
                           round_, target, timings) -> None:
    """final/mask/rewind safetensors, metrics.csv, then run.json (written last)."""
    from lth.train import early_stop

    out = Path(args.out_dir)
    inputs = [p for p in (args.init, args.mask) if p]
    inputs.append(Path(args.data_root) / "tensors.safetensors")
    params = call_params(args, "out_dir", "threads")
    params["schedule_used"] = dataclasses.asdict(schedule)
    record = make_record("train", params, inputs, str(device))
    record["architecture"] = arch
    outputs = [out / "final.safetensors", out / "metrics.csv"]
    save_tensors(outputs[0], model.state_dict(), record)
    if args.mask is None or Path(args.mask).resolve() != (out / "mask.safetensors").resolve():
        outputs.append(out / "mask.safetensors")
        save_tensors(outputs[-1], mask, record)
    if args.save_at is not None:
        outputs.append(out / "rewind.safetensors")
        save_tensors(outputs[-1], result.checkpoints[args.save_at], record)
    atomic_write_text(outputs[1], metrics_csv(result.metrics))
    es_iter, es_acc = early_stop(result.metrics)
    final = {r["split"]: r["accuracy"] for r in result.metrics
             if r["iteration"] == schedule.iterations}
    record["outputs"] = [file_entry(p) for p in outputs]
    record["timings"] = timings
    record["result"] = dict(
        facts, method=args.method, family=args.family, level=args.level, round=round_,
        target_density=facts["density"] if target is None else target,
        iterations=schedule.iterations, early_stop_iteration=es_iter,
        early_stop_test_accuracy=es_acc, final_test_accuracy=final["test"],
        final_val_accuracy=final["val"], final_train_accuracy=final["train"],
        wall_seconds=result.wall_seconds,
    )
    write_json(out / "run.json", record)


def cmd_summarize(args) -> None:
    from lth.summary import summarize

    summarize(args.experiment, [Path(p) for p in args.runs], Path(args.out_dir))


def cmd_audit(args) -> None:
    from lth.provenance import lineage

    path = Path(args.artifact)
    if not path.exists():
        raise LthError(f"{path}: no such artifact")
    print("\n".join(lineage(path)))


def run(args) -> int:
    """Dispatch to the verb's command."""
    from lth import report_cli

    verbs = {"prepare": cmd_prepare, "init": cmd_init, "prune": cmd_prune,
             "train": cmd_train, "summarize": cmd_summarize, "audit": cmd_audit,
             "filter-prune": cmd_filter_prune,
             **report_cli.COMMANDS}
    verbs[args.verb](args)
    return 0

