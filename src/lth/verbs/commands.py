"""What each `python -m lth <verb>` does. Arguments arrive parsed (see lth.verbs.cli)."""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import io
import re
import time
from pathlib import Path

import torch
from safetensors import safe_open

from lth.core import masks as M
from lth.core.io import (
    LthError,
    atomic_write_text,
    load_tensors,
    read_json,
    read_metadata,
    save_tensors,
    write_json,
)
from lth.core.provenance import file_entry, make_record, plugins_of
from lth.core.seeding import derive_seed, generator
from lth.plan.catalog import schedule_problems
from lth.plan.plugins import is_criterion_plugin, scoring_settings
from lth.plan.spec import (
    FAMILIES,
    SCORING_SETTINGS,
    Member,
    PruneJob,
    Rates,
    Schedule,
    TrainJob,
    to_json,
)

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
    from lth.core.data import DATASETS

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


def build(arch: dict, gen: torch.Generator, dropout: float, init: str | None):
    """An nn.Module of the recorded architecture, initialised from gen by the initialiser
    `init` (lth.core.models.INITIALISERS; None: the model's own default).

    A filter-pruned VGG (lth.methods.filters) records its narrower conv widths as "cfg".
    """
    from lth.core.models import build_model, vgg

    shape = tuple(arch["input_shape"])
    if "cfg" in arch:
        return vgg(arch["cfg"], shape, arch["num_classes"], gen, init)
    return build_model(arch["model"], shape, arch["num_classes"], gen, dropout, init)


def load_model(weights_path: str, dropout: float, device: torch.device):
    """Build the recorded architecture and load the file's weights into it."""
    arch = architecture_of(weights_path)
    model = build(arch, torch.Generator().manual_seed(0), dropout, arch.get("init"))
    model.load_state_dict(load_tensors(weights_path))
    return model.to(device), arch


def prunable_params(model) -> dict[str, torch.Tensor]:
    from lth.core.models import prunable_names

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
    check_mask(mask, params, path)
    return {n: mask[n] for n in params}


def check_mask(mask: M.Mask, params: dict, where: str) -> None:
    """One line naming `where` unless the mask covers exactly the prunable weights."""
    if set(mask) != set(params) or any(mask[n].shape != params[n].shape for n in params):
        raise LthError(f"{where}: mask does not match the model's prunable weights")


def cmd_prepare(args) -> None:
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


def cmd_init(args) -> None:
    arch = dict(dataset_architecture(args.data_root), model=args.model, init=args.init)
    model = build(arch, generator(args.experiment, args.seed, "init"), 0.0, args.init)
    record = make_record("init", {"experiment": args.experiment, "seed": args.seed,
                                  "purpose": "init"},
                         [Path(args.data_root) / "manifest.json"])
    record["architecture"] = arch
    record.update(plugins_of(arch["model"]))
    save_tensors(args.out, model.state_dict(), record)


def kind_rates(model, rates: Rates) -> dict[str, float]:
    """Each prunable weight's IMP rate, by its layer kind (conv, shortcut, hidden fc,
    output: lth.core.models.layer_kinds)."""
    from lth.core.models import layer_kinds

    by_kind = dataclasses.asdict(rates)
    if not all(0 <= r < 1 for r in by_kind.values()):
        raise LthError(f"rates {by_kind}: expected fractions in [0, 1)")
    return {name: by_kind[kind] for name, kind in layer_kinds(model).items()}


def prune_by_rates(scores, mask, rates: dict[str, float], scope: str) -> M.Mask:
    """One IMP step: remove a fraction of the remaining weights (per layer or pooled)."""
    if scope == "layerwise":
        return M.prune_fraction_layerwise(scores, mask, rates)
    pooled = [n for n, r in rates.items() if r > 0]
    if len({rates[n] for n in pooled}) > 1:
        raise LthError("scope global needs the same rate for every pruned layer kind")
    return M.prune_fraction_global(scores, mask, rates[pooled[0]], pooled) if pooled else mask


def prune_to_counts(scores, mask, reference: M.Mask, scope: str) -> M.Mask:
    """Keep as many weights as `reference` keeps: per layer, or in total when global, pooled
    over the layers `reference` pruned (a layer it kept whole, e.g. a kind IMP's rate 0
    leaves alone, stays whole)."""
    if scope == "layerwise":
        return M.keep_top_layerwise(scores, mask, {n: int(reference[n].sum()) for n in mask})
    pooled = [n for n in mask if not bool(reference[n].all())]
    if not pooled:
        return mask
    keep = sum(int(reference[n].sum()) for n in pooled)
    return M.keep_top_global(scores, mask, keep, pooled)


@functools.lru_cache(maxsize=2)
def splits_of(data_root: str, val_size: int | None, device: torch.device):
    """The normalised splits, loaded once per process (a cohort job's verbs share them)."""
    from lth.core.data import load_splits

    return load_splits(Path(data_root), val_size, device)


def score_batches(job: PruneJob, arch, gen, device) -> list:
    """Training batches a data-driven criterion scores on: one random batch for SNIP
    (Lee et al. 2019), a class-balanced sample for GraSP (Wang et al. 2020)."""
    needed = scoring_settings(job.criterion)
    if not needed:
        return []
    from lth.methods.criteria import balanced_batches

    if job.data_root is None or job.scoring is None or any(
            getattr(job.scoring, key) is None for key in needed):
        raise LthError(f"criterion {job.criterion} needs data_root and scoring settings "
                       f"{', '.join(needed)}")
    splits = splits_of(job.data_root, job.val_size, device)
    size = job.scoring.score_batch_size
    if "samples_per_class" not in needed:  # SNIP's one random batch
        idx = torch.randperm(len(splits.train_x), generator=gen)[:size]
        return [(splits.train_x[idx.to(device)], splits.train_y[idx.to(device)])]
    return balanced_batches(splits.train_x, splits.train_y, job.scoring.samples_per_class,
                            arch["num_classes"], gen, size)


def score_data(job: PruneJob, model, arch, device):
    """The ScoreData of a prune job: names, batches, generator and criterion settings."""
    from lth.core.models import prunable_names
    from lth.methods.criteria import ScoreData

    gen = generator(job.experiment, job.seed, job.purpose)
    return ScoreData(
        names=prunable_names(model), batches=score_batches(job, arch, gen, device), gen=gen,
        num_classes=arch["num_classes"], input_shape=tuple(arch["input_shape"]),
        grasp_temperature=job.scoring.grasp_temperature if job.scoring else None,
        batchnorm_training=batchnorm_training(job),
    )


BATCHNORM_STATISTICS = ("batch", "running")
"""How BatchNorm normalises while SNIP or GraSP scores: with the scoring batch's statistics
(train mode) or with the running ones (eval mode)."""


def batchnorm_training(job: PruneJob) -> bool | None:
    """Whether the job's criterion scores with BatchNorm on batch statistics (its
    `<criterion>_batchnorm` setting is "batch"); None for the criteria without one."""
    key = f"{job.criterion}_batchnorm"
    if job.scoring is None or key not in SCORING_SETTINGS.get(job.criterion, ()):
        return None
    return getattr(job.scoring, key) == "batch"


def check_prune_job(job: PruneJob) -> None:
    """One line naming what is wrong with a prune job, before any work."""
    from lth.methods.criteria import CRITERIA

    if job.criterion not in CRITERIA and not is_criterion_plugin(job.criterion):
        raise LthError(f"criterion {job.criterion!r}: expected one of {', '.join(CRITERIA)}")
    if job.scope not in ("layerwise", "global"):
        raise LthError(f"scope {job.scope!r}: expected layerwise or global")
    amounts = [job.rates is not None, job.density is not None, job.match_counts is not None]
    if sum(amounts) != 1:
        raise LthError("a prune job needs exactly one of rates, density and match_counts")
    if job.density is not None and not 0 < job.density <= 1:
        raise LthError(f"density {job.density}: expected a fraction in (0, 1]")
    how = job.reintroduce
    if how is not None:
        from lth.methods.reintroduce import KINDS

        if job.rates is None or job.criterion != "magnitude":
            raise LthError("reintroduce: only with an IMP step (magnitude criterion and rates)")
        if how.kind not in KINDS or not 0 <= how.ratio <= 1:
            raise LthError(f"reintroduce: expected kind {'|'.join(KINDS)} and a ratio in "
                           f"[0, 1], got {how.kind!r}, {how.ratio}")
        if (how.scores is None) != (how.kind == "random"):
            raise LthError(f"reintroduce: kind {how.kind} "
                           + ("takes no scores file" if how.kind == "random" else
                              "needs a scores file"))
    for key in ("snip_batchnorm", "grasp_batchnorm"):
        value = getattr(job.scoring, key) if job.scoring else None
        if value is not None and value not in BATCHNORM_STATISTICS:
            raise LthError(f"scoring.{key} {value!r}: expected batch or running")


def cmd_prune(args) -> None:
    from lth.methods.criteria import CRITERIA, scored_steps, scoring_macs

    job = args.job
    check_prune_job(job)
    device = resolve_device(job.device)
    model, arch = load_model(job.weights, 0.0, device)
    params = prunable_params(model)
    mask = load_mask(job.mask, params)
    reference = load_mask(job.match_counts, params) if job.match_counts else None
    data = score_data(job, model, arch, device)
    if job.density is not None:
        *_, (scores, new) = scored_steps(model, mask, job.criterion, job.density, job.scope,
                                         data, job.iterations)
    else:
        scores = CRITERIA[job.criterion](model, mask, data)
        new = (prune_by_rates(scores, mask, kind_rates(model, job.rates), job.scope)
               if job.rates else prune_to_counts(scores, mask, reference, job.scope))
    if job.reintroduce is not None:
        new = reintroduced(job, new, mask, scores, data.gen)
    inputs = [p for p in (job.weights, job.mask, job.match_counts) if p]
    if job.reintroduce is not None and job.reintroduce.scores:
        inputs.append(job.reintroduce.scores)
    if scoring_settings(job.criterion):
        inputs.append(Path(job.data_root) / "tensors.safetensors")
    params = dataclasses.asdict(job)
    del params["out"]
    record = make_record("prune", params, inputs, str(device))
    record["architecture"] = arch
    examples = sum(len(x) for x, _ in data.batches)
    work = scoring_macs(job.criterion, M.macs(model, tuple(arch["input_shape"])), examples,
                        job.iterations)
    record["macs"] = {"sparse": work, "dense": work}
    record.update(plugins_of(arch["model"], (job.criterion,)))
    save_tensors(job.out, new, record)
    if job.save_scores:
        save_tensors(Path(job.out).with_name("scores.safetensors"),
                     {n: v.float().cpu() for n, v in scores.items()}, record)


def reintroduced(job: PruneJob, imp_mask: M.Mask, previous: M.Mask, alive_scores: M.Scores,
                 gen: torch.Generator) -> M.Mask:
    """Double-/Scored-pruning (or the random control): IMP's new mask with a share of the
    removed weights swapped for pruned weights ranked by the job's regrowth scores."""
    from lth.methods.reintroduce import regrow_scores_of, reintroduce

    how = job.reintroduce
    stored = load_tensors(how.scores) if how.scores else None
    ranking = regrow_scores_of(how.kind, previous, stored, gen, how.scores or "reintroduce")
    return reintroduce(imp_mask, previous, alive_scores, ranking, how.ratio, how.positive_only)


def cmd_filter_prune(args) -> None:
    from lth.core.models import VGG
    from lth.methods.filters import measure_latency, prune_filters

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
    record["architecture"] = smaller_architecture(arch, model, small, **latency)
    print(f"filter pruning: {dense_params} -> "
          f"{sum(p.numel() for p in prunable_params(small).values())} weights, latency "
          f"{latency['dense_latency_seconds'] * 1e3:.2f} -> {latency['latency_seconds'] * 1e3:.2f}"
          f" ms per batch of {args.latency_batch_size}")
    save_tensors(args.out, small.state_dict(), record)


def smaller_architecture(arch: dict, dense, small, **facts) -> dict:
    """The recorded architecture of a VGG with channels removed from the dense one (filter
    pruning, Early-Bird's channel tickets): its conv widths, and the dense network's weights
    and MACs that its density and cost count against (with any further `facts`)."""
    dense_params = sum(p.numel() for p in prunable_params(dense).values())
    macs = M.macs(dense, tuple(arch["input_shape"]))
    return dict(arch, cfg=list(small.cfg),
                unpruned={"params_total": dense_params, "dense_macs": macs, **facts})


def parse_level(level: str) -> tuple[int, float | None]:
    """(round, target density) of a level name: round<R> -> (R, None), density<D> -> (-1, D),
    a structure name (filter pruning) -> (-1, None)."""
    match = LEVEL_PATTERN.match(level)
    if match is None:
        raise LthError(f"--level {level!r}: expected round<R>, density<D> or a structure name")
    if match["round"] is not None:
        return int(match["round"]), None
    return -1, float(match["density"]) if match["density"] else None


def network_facts(model, arch: dict, mask: M.Mask,
                  counted_kinds: tuple[str, ...] | None = None) -> dict:
    """Density, per-layer counts, FLOPs and collapse (no input-output path) of a network.

    params_kept/params_total (and so density) count the layers of `counted_kinds` (None:
    every prunable layer): the weights a method prunes, e.g. not the shortcuts Frankle &
    Carbin 2019 leave whole. params_kept_all/params_total_all count every prunable layer.
    """
    from lth.core.models import layer_kinds
    from lth.methods.criteria import input_reaches_output

    shape = tuple(arch["input_shape"])
    kinds = layer_kinds(model)
    counted = [n for n in mask if counted_kinds is None or kinds[n] in counted_kinds]
    if not counted:
        raise LthError(f"counted_kinds {list(counted_kinds)}: the model has no layer of these "
                       f"kinds (it has {sorted(set(kinds.values()))})")
    kept_all, total_all = M.counts(mask)
    kept, total = M.counts({n: mask[n] for n in counted})
    facts = {
        "params_kept": kept, "params_total": total,
        "params_kept_all": kept_all, "params_total_all": total_all,
        "macs": M.macs(model, shape, mask), "dense_macs": M.macs(model, shape),
        "collapsed": not input_reaches_output(model, mask, list(mask), shape),
        "layers": [{"layer": n, "kind": kinds[n], "kept": int(m.sum()), "size": m.numel()}
                   for n, m in mask.items()],
    }
    unpruned = arch.get("unpruned", {})  # a smaller dense network counts against its parent
    facts.update(unpruned)
    facts["params_total_all"] = unpruned.get("params_total", total_all)
    facts["density"] = facts["params_kept"] / facts["params_total"]
    return facts


def metrics_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["iteration", "split", "loss", "accuracy"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def check_train_job(job: TrainJob) -> None:
    """One line naming what is wrong with a training job, before any work."""
    s, e = job.schedule, job.engine
    problems = schedule_problems(s)
    if problems:
        key, message = problems[0]
        raise LthError(f"schedule.{key}: {message}")
    if e.stack not in ("auto", "on", "off") or e.slots < 1:
        raise LthError(f"engine: expected stack auto|on|off and slots >= 1, got {e}")
    if not job.members:
        raise LthError("a training job needs at least one member")
    for m in job.members:
        problem = member_problem(m, s.iterations)
        if problem:
            raise LthError(f"member {m.out_dir}: {problem}")


LAYER_KINDS = tuple(f.name for f in dataclasses.fields(Rates))
"""The layer kinds of lth.core.models.layer_kinds (Rates has one rate per kind)."""


def member_problem(m: Member, iterations: int) -> str | None:
    """What is wrong with one member of a job training `iterations` iterations, or None."""
    if m.family not in FAMILIES:
        return f"family {m.family!r} is not one of {FAMILIES}"
    parse_level(m.level)
    if not 0 <= m.start_iteration < iterations:
        return (f"start_iteration {m.start_iteration} is outside the {iterations} training "
                "iterations")
    if m.save_at is not None and not m.start_iteration <= m.save_at <= iterations:
        return (f"save_at {m.save_at} is outside the training iterations "
                f"{m.start_iteration}..{iterations}")
    if m.draw < 0 or (m.draw > 0 and m.fresh_init is None):
        return f"draw {m.draw}: expected 0, or a positive draw of a fresh_init"
    if m.budget_cap is not None and not (m.compute_matched and m.budget_cap >= 1):
        return f"budget_cap {m.budget_cap}: expected >= 1, on a compute_matched member"
    if m.compute_matched and (m.mask is None or m.start_iteration != 0):
        return "compute_matched needs a mask and trains from iteration 0 (start_iteration 0)"
    if m.counted_kinds is not None and not (
            m.counted_kinds and set(m.counted_kinds) <= set(LAYER_KINDS)):
        return f"counted_kinds {list(m.counted_kinds)}: expected some of {LAYER_KINDS}"
    return None


@dataclasses.dataclass
class Prepared:
    """A member made ready: its model (initialised), mask, facts and effective schedule."""

    member: Member
    model: torch.nn.Module
    arch: dict
    mask: M.Mask
    facts: dict
    schedule: Schedule
    budget_factor: float
    start: int  # the iteration training starts at


def fresh_init_purpose(m: Member) -> str:
    """The random stream of a member's fresh init: draw 0 is the purpose itself, draw D > 0
    the purpose + "/draw<D>" (so adding draws leaves draw 0's bytes as they were)."""
    return m.fresh_init if m.draw == 0 else f"{m.fresh_init}/draw{m.draw}"


def budget_factor(m: Member, facts: dict) -> float:
    """Scratch-B's training budget (Liu et al. 2019): dense MACs / the mask's MACs, capped
    at budget_cap when one is set; 1 for every member not compute_matched."""
    if not m.compute_matched:
        return 1.0
    ratio = facts["dense_macs"] / facts["macs"]
    return min(ratio, m.budget_cap) if m.budget_cap is not None else ratio


def prepare_member(job: TrainJob, m: Member, device: torch.device) -> Prepared:
    """Load a member's starting weights (or draw its fresh init with the schedule's
    initialiser) and its mask; stretch its schedule by its budget factor."""
    dropout = job.schedule.dropout
    model, arch = load_model(m.init, dropout, device)
    if m.fresh_init:
        arch = dict(arch, init=job.schedule.init)
        fresh = build(arch, generator(job.experiment, m.seed, fresh_init_purpose(m)), dropout,
                      job.schedule.init)
        model.load_state_dict(fresh.state_dict())
    params = prunable_params(model)
    if m.complement_of is not None:
        from lth.methods.reintroduce import complement

        mask = complement(load_mask(m.complement_of, params))
    else:
        mask = load_mask(m.mask, params)
    facts = network_facts(model, arch, mask, m.counted_kinds)
    factor = budget_factor(m, facts)
    schedule = job.schedule.scaled(factor) if factor != 1 else job.schedule
    start = recorded_iteration(m.init, schedule.iterations) if m.resume else m.start_iteration
    return Prepared(m, model, arch, mask, facts, schedule, factor, start)


def recorded_iteration(weights_path: str, iterations: int) -> int:
    """The training iteration a weights file was saved at (Early-Bird's ticket weights), for
    a member that resumes from it. A ticket drawn at the end of training (the detector never
    fired) resumes at `iterations`: nothing is left to train, and it is evaluated as drawn."""
    iteration = read_metadata(weights_path).get("iteration")
    if not isinstance(iteration, int) or not 0 <= iteration <= iterations:
        raise LthError(f"{weights_path}: records no training iteration up to {iterations} "
                       f"to resume from (got {iteration!r})")
    return iteration


def alignment_hook(p: Prepared, device: torch.device):
    """Scored-pruning's accumulator of a member with alignment_from, else None."""
    if p.member.alignment_from is None:
        return None
    from lth.methods.reintroduce import AlignmentScores

    reset = load_tensors(p.member.alignment_from, device)
    return AlignmentScores(reset, p.mask)


def cmd_train(args) -> None:
    """Train a cohort: every member shares the process, the data and (per effective
    schedule and start iteration) one training call; each writes its own artifacts."""
    from lth.core.cohort import Net, set_tf32, train_cohort
    from lth.core.data import augment_batch

    job = args.job
    check_train_job(job)
    device = resolve_device(job.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    tf32 = set_tf32(job.engine) if device.type == "cuda" else None
    started = time.perf_counter()
    splits = splits_of(job.data_root, job.val_size, device)
    prepared = [prepare_member(job, m, device) for m in job.members]
    load_seconds = time.perf_counter() - started
    groups: dict[tuple[Schedule, int], list[Prepared]] = {}
    for p in prepared:
        groups.setdefault((p.schedule, p.start), []).append(p)
    for (schedule, start), group in groups.items():
        hooks = [alignment_hook(p, device) for p in group]
        nets = [Net(p.model, p.mask, p.member.seed,
                    f"[{job.experiment} seed{p.member.seed} {p.member.method}/{p.member.level}]",
                    (p.member.save_at,) if p.member.save_at is not None else (),
                    derive_seed(job.experiment, p.member.seed, "dropout"), after_backward=hook)
                for p, hook in zip(group, hooks, strict=True)]
        stacked = train_cohort(nets, splits, schedule,
                               lambda seed: generator(job.experiment, seed, "data-order"),
                               job.engine, augment_batch if schedule.augment else None,
                               start=start)
        for position, (p, net, hook) in enumerate(zip(group, nets, hooks, strict=True)):
            cohort = {"size": len(group), "position": position, "stacked": stacked,
                      "slots": job.engine.slots if stacked else 1, "device": str(device),
                      "threads": torch.get_num_threads(), "tf32": tf32}
            extra = {"regrow_scores.safetensors": hook.scores()} if hook else {}
            write_training_outputs(job, p, net.result, device, cohort,
                                   {"load": load_seconds, "train": net.result.wall_seconds},
                                   extra)


def one_member(job, member):
    """The job with this member only: what one network's record holds and its argv reruns
    (its files do not change when other members join or leave the job)."""
    return dataclasses.replace(job, members=(member,))


def train_record(job: TrainJob, p: Prepared, device) -> dict:
    """The provenance of one network: its own member and the shared settings only, so a
    network's files do not change when other networks join or leave its cohort. argv is a
    one-member job that retrains exactly this network."""
    from lth.core import provenance

    own = one_member(job, p.member)
    provenance.ARGV[:] = ["train", "--job", to_json(own)]
    m = p.member
    inputs = [x for x in (m.init, m.mask, m.complement_of, m.alignment_from) if x]
    inputs.append(Path(job.data_root) / "tensors.safetensors")
    params = dataclasses.asdict(own)
    params.update(seed=m.seed, schedule_used=dataclasses.asdict(p.schedule))
    record = make_record("train", params, inputs, str(device))
    record["architecture"] = p.arch
    record["macs"] = training_macs(p.schedule.iterations - p.start, p.schedule.batch_size,
                                   p.facts)
    record.update(plugins_of(p.arch["model"], inputs=(m.mask,) if m.mask else ()))
    return record


def training_macs(iterations: int, batch_size: int, facts: dict) -> dict:
    """Multiply-accumulates of training a network: forward, backward to the inputs and to
    the weights, about 3 forwards per example (Evci et al. 2020, App.), counted on the kept
    weights (sparse) and as a dense network would (dense)."""
    return {view: 3 * iterations * batch_size * facts[key]
            for view, key in (("sparse", "macs"), ("dense", "dense_macs"))}


def write_training_outputs(job: TrainJob, p: Prepared, result, device, cohort: dict,
                           timings: dict, extra: dict | None = None) -> None:
    """final/mask/rewind (and `extra`) safetensors, metrics.csv, then run.json (last)."""
    m = p.member
    record = train_record(job, p, device)
    tensors = {"final.safetensors": p.model.state_dict()}
    if m.mask is None or Path(m.mask).resolve() != (Path(m.out_dir) / "mask.safetensors").resolve():
        tensors["mask.safetensors"] = p.mask
    if m.save_at is not None:
        tensors["rewind.safetensors"] = result.checkpoints[m.save_at]
    tensors.update(extra or {})
    _, target = parse_level(m.level)
    result_fields = dict(
        p.facts, method=m.method, family=m.family, level=m.level,
        target_density=p.facts["density"] if target is None else target,
        iterations=p.schedule.iterations, start_iteration=p.start, draw=m.draw,
        budget_factor=p.budget_factor, weights_trained=True,
    )
    write_run(Path(m.out_dir), record, tensors, result, result_fields, timings, cohort=cohort)


def write_run(out: Path, record: dict, tensors: dict, result, fields: dict,
              timings: dict, stops_early: bool = True, cohort: dict | None = None) -> None:
    """A network's run folder: its safetensors files and metrics.csv, then run.json (written
    last) with the record, the outputs' hashes and the results (early stop, accuracies).
    stops_early False (a mined mask): the early-stop figures are the final ones, since only
    the final mask is saved (GEM-MINER's earlier masks are not even at the target density)."""
    from lth.core.train import early_stop

    outputs = []
    for name, values in tensors.items():
        outputs.append(out / name)
        save_tensors(outputs[-1], values, record)
    outputs.append(out / "metrics.csv")
    atomic_write_text(outputs[-1], metrics_csv(result.metrics))
    last = max(r["iteration"] for r in result.metrics)
    final = {r["split"]: r["accuracy"] for r in result.metrics if r["iteration"] == last}
    es_iter, es_acc = early_stop(result.metrics) if stops_early else (last, final["test"])
    record["outputs"] = [file_entry(x) for x in outputs]
    record["timings"] = timings
    if cohort is not None:
        record["cohort"] = cohort
    record["result"] = dict(
        fields, round=parse_level(fields["level"])[0], early_stop_iteration=es_iter,
        early_stop_test_accuracy=es_acc, final_test_accuracy=final["test"],
        final_val_accuracy=final["val"], final_train_accuracy=final["train"],
        wall_seconds=result.wall_seconds,
    )
    write_json(out / "run.json", record)


def cmd_mine(args) -> None:
    """edge-popup / GEM-MINER: mine a mask of frozen weights per member; each member's run
    folder gets the untrained ticket (final = frozen weights under the mask), its mask, the
    final scores, metrics.csv and run.json; GEM-MINER's also its final flags
    (flags.safetensors) and the frozen weights under them (start.safetensors), the ticket
    gem_miner trains."""
    from lth.core import provenance
    from lth.methods.supermask import frozen_start_, mine

    job = args.job
    device = resolve_device(job.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = splits_of(job.data_root, job.val_size, device)
    for m in job.members:
        model, arch = load_model(m.init, 0.0, device)
        frozen_start_(model, list(prunable_params(model)), job.mining.weights)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        mined = mine(model, splits, job.mining, m.density,
                     generator(job.experiment, m.seed, f"{m.method}/{m.level}"),
                     generator(job.experiment, m.seed, "data-order"),
                     prefix=f"[{job.experiment} seed{m.seed} {m.method}/{m.level}]")
        facts = network_facts(model, arch, mined.mask)
        own = one_member(job, m)
        provenance.ARGV[:] = ["mine", "--job", to_json(own)]
        record = make_record("mine", dict(dataclasses.asdict(own), seed=m.seed),
                             [m.init, Path(job.data_root) / "tensors.safetensors"], str(device))
        record["architecture"] = arch
        record["macs"] = mined.macs
        fields = dict(facts, method=m.method, family="supermask", level=m.level,
                      target_density=m.density, iterations=job.mining.iterations,
                      start_iteration=0, draw=0, budget_factor=1.0, weights_trained=False,
                      mining=mined.extra)
        tensors = {"final.safetensors": model.state_dict(), "mask.safetensors": mined.mask,
                   "scores.safetensors": mined.scores}
        if mined.flags is not None:
            M.apply_mask_(start, mined.flags)
            tensors |= {"flags.safetensors": mined.flags, "start.safetensors": start}
        write_run(Path(m.out_dir), record, tensors, mined, fields,
                  {"train": mined.wall_seconds}, stops_early=False)


def cmd_eb_search(args) -> None:
    """Early-Bird's search of one seed, and search.json with the detection history. Per
    density, the magnitude variant writes the ticket's mask and the weights it was drawn at
    (EB Train continues from them); the channel variant writes the kept channels and the
    smaller VGG twice: with the weights at the draw and with theta_0's."""
    from lth.methods.earlybird import search

    job = args.job
    device = resolve_device(job.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = splits_of(job.data_root, job.val_size, device)
    model, arch = load_model(job.init, 0.0, device)
    names = list(prunable_params(model))
    found = search(model, splits, job.schedule, generator(job.experiment, job.seed, "data-order"),
                   job.earlybird, names, prefix=f"[{job.experiment} seed{job.seed} eb search]")
    dense = M.macs(model, tuple(arch["input_shape"]))
    inputs = [job.init, Path(job.data_root) / "tensors.safetensors"]
    summary = {"last_iteration": found.last_iteration, "metrics": found.metrics, "tickets": []}
    theta0 = load_model(job.init, 0.0, device)[0] if job.earlybird.variant == "channel" else None
    for density, out_dir, ticket in zip(job.earlybird.densities, job.out_dirs, found.tickets,
                                        strict=True):
        params = dict(dataclasses.asdict(job), density=density, out_dir=out_dir)
        del params["out_dirs"]
        record = make_record("eb-search", params, inputs, str(device))
        record["architecture"] = arch
        record["iteration"] = ticket.iteration
        record["macs"] = training_macs(ticket.iteration, job.schedule.batch_size,
                                       {"macs": dense, "dense_macs": dense})  # dense search
        record["earlybird"] = {"fired": ticket.fired, "iteration": ticket.iteration}
        if theta0 is not None:
            save_channel_ticket(Path(out_dir), ticket, theta0, arch, record)
        else:
            save_tensors(Path(out_dir) / "weights_at_eb.safetensors", ticket.weights, record)
            save_tensors(Path(out_dir) / "mask.safetensors", ticket.mask, record)
        summary["tickets"].append({"density": density, "fired": ticket.fired,
                                   "iteration": ticket.iteration, "history": ticket.history})
    record = make_record("eb-search", dataclasses.asdict(job), inputs, str(device))
    write_json(job.record, dict(record, search=summary, timings={"search": found.wall_seconds}))


def save_channel_ticket(out: Path, ticket, theta0: torch.nn.Module, arch: dict,
                        record: dict) -> None:
    """channels.safetensors (BatchNorm name -> kept channels) and the smaller VGG without the
    others: weights_at_eb.safetensors (EB Train continues from it, at ticket.iteration) and
    weights_at_init.safetensors (theta_0's surviving weights, at iteration 0). theta0, the
    dense VGG at theta_0 (architecture arch), is left unchanged."""
    from lth.methods.earlybird import prune_channels

    at_init = prune_channels(theta0, ticket.mask)
    at_eb = copy.deepcopy(theta0)
    at_eb.load_state_dict(ticket.weights)
    record = dict(record, architecture=smaller_architecture(arch, theta0, at_init))
    save_tensors(out / "channels.safetensors", ticket.mask, record)
    save_tensors(out / "weights_at_eb.safetensors",
                 prune_channels(at_eb, ticket.mask).state_dict(), record)
    save_tensors(out / "weights_at_init.safetensors", at_init.state_dict(),
                 dict(record, iteration=0))


def cmd_transfer_depth(args) -> None:
    """Elastic ticket transformation: the source ticket's mask and rewound weights copied
    block-wise into a deeper or shallower network of the same family."""
    from lth.methods.elastic import transfer

    job = args.job
    source_arch = architecture_of(job.source_weights)
    target_arch = dict(source_arch, model=job.target_model)
    weights = load_tensors(job.source_weights)
    mask = {k: v.bool() for k, v in load_tensors(job.source_mask).items()}
    gen = generator(job.experiment, job.seed, job.purpose) if job.permute_copies else None
    state, new_mask = transfer(weights, mask, source_arch["model"], job.target_model,
                               job.strategy, gen)
    target = build(target_arch, torch.Generator().manual_seed(0), 0.0, target_arch.get("init"))
    target.load_state_dict(state)
    check_mask(new_mask, prunable_params(target), job.out_mask)
    params = dataclasses.asdict(job)
    record = make_record("transfer-depth", params, [job.source_weights, job.source_mask])
    record["architecture"] = target_arch
    save_tensors(job.out_weights, target.state_dict(), record)
    save_tensors(job.out_mask, new_mask, record)


def cmd_summarize(args) -> None:
    from lth.analysis.summary import summarize

    summarize(args.experiment, [Path(p) for p in args.runs], Path(args.out_dir),
              args.target_fraction)


def cmd_similarity(args) -> None:
    from lth.analysis.similarity import similarity

    similarity(args.experiment, Path(args.summary), [Path(p) for p in args.masks],
               Path(args.out))


def cmd_audit(args) -> None:
    from lth.core.provenance import lineage

    path = Path(args.artifact)
    if not path.exists():
        raise LthError(f"{path}: no such artifact")
    print("\n".join(lineage(path)))


def run(args) -> int:
    """Dispatch to the verb's command."""
    verbs = {"prepare": cmd_prepare, "init": cmd_init, "prune": cmd_prune,
             "train": cmd_train, "mine": cmd_mine, "eb-search": cmd_eb_search,
             "transfer-depth": cmd_transfer_depth, "summarize": cmd_summarize,
             "similarity": cmd_similarity, "audit": cmd_audit,
             "filter-prune": cmd_filter_prune}
    if args.verb not in verbs:
        from lth.verbs import report as report_cli

        verbs = report_cli.COMMANDS
    verbs[args.verb](args)
    return 0

