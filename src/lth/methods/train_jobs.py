"""Training jobs: their checks, their members made ready for the cohort engine
(lth.core.cohort: starting weights or a fresh draw, a mask or the one its extension makes,
Scratch-B's budget, the start iteration, its extension's monitor), their training, and each
member's run folder."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from lth.core import masks as M
from lth.core.io import LthError, read_metadata
from lth.core.networks import build, load_mask, load_model, prunable_params, splits_of
from lth.core.provenance import make_record, plugins_of
from lth.core.records import (
    network_facts,
    one_member,
    parse_level,
    rerun_argv,
    training_macs,
    write_run,
)
from lth.core.seeding import derive_seed, generator
from lth.plan.catalog import schedule_problems
from lth.plan.registry import load
from lth.plan.spec import Extension, Member, Rates, Schedule, TrainJob

LAYER_KINDS = tuple(f.name for f in dataclasses.fields(Rates))
"""The layer kinds of lth.core.models.layer_kinds (Rates has one rate per kind)."""


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


def member_problem(m: Member, iterations: int) -> str | None:
    """What is wrong with one member of a job training `iterations` iterations, or None.
    (Its family, a report group, is checked where the report reads it: a training job
    imports no family declaration.)"""
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
    own = extension_call(m.extension, "training_mask", params)
    mask = own if own is not None else load_mask(m.mask, params)
    facts = network_facts(model, arch, mask, m.counted_kinds)
    factor = budget_factor(m, facts)
    schedule = job.schedule.scaled(factor) if factor != 1 else job.schedule
    start = recorded_iteration(m.init, schedule.iterations) if m.resume else m.start_iteration
    return Prepared(m, model, arch, mask, facts, schedule, factor, start)


def recorded_iteration(weights_path: str, iterations: int) -> int:
    """The training iteration a weights file was saved at (a ticket drawn during training),
    for a member that resumes from it. A ticket drawn at the end of training (the detector never
    fired) resumes at `iterations`: nothing is left to train, and it is evaluated as drawn."""
    iteration = read_metadata(weights_path).get("iteration")
    if not isinstance(iteration, int) or not 0 <= iteration <= iterations:
        raise LthError(f"{weights_path}: records no training iteration up to {iterations} "
                       f"to resume from (got {iteration!r})")
    return iteration


@dataclasses.dataclass
class Trained:
    """A member after training: its result, its place in the cohort, its timings and the
    tensors beyond final/mask/rewind it saves (its extension's monitor's files)."""

    prepared: Prepared
    result: object  # lth.core.train.TrainResult
    cohort: dict
    timings: dict
    extra: dict


def train_members(job: TrainJob, device: torch.device) -> Iterator[Trained]:
    """Train a cohort: every member shares the job, the data and (per effective schedule
    and start iteration) one training call; yields each member of a call as soon as the
    call is done. On CPU a call trains its members in up to the job's threads of worker
    processes (lth.core.workers); its run.json's cohort block records the workers, the
    process that trained it and its intra-op threads."""
    from lth.core.cohort import Net, set_tf32, train_cohort
    from lth.core.data import augment_batch
    from lth.core.workers import worker_count

    tf32 = set_tf32(job.engine) if device.type == "cuda" else None
    started = time.perf_counter()
    splits = splits_of(job.data_root, job.val_size, device)
    prepared = [prepare_member(job, m, device) for m in job.members]
    load_seconds = time.perf_counter() - started
    groups: dict[tuple[Schedule, int], list[Prepared]] = {}
    for p in prepared:
        groups.setdefault((p.schedule, p.start), []).append(p)
    workers = worker_count(len(prepared), device, torch.get_num_threads())
    for (schedule, start), group in groups.items():
        hooks = [extension_call(p.member.extension, "training_monitor", p.mask, device)
                 for p in group]
        nets = [Net(p.model, p.mask, p.member.seed,
                    f"[{job.experiment} seed{p.member.seed} {p.member.method}/{p.member.level}]",
                    (p.member.save_at,) if p.member.save_at is not None else (),
                    derive_seed(job.experiment, p.member.seed, "dropout"), after_backward=hook)
                for p, hook in zip(group, hooks, strict=True)]
        stacked = train_cohort(nets, splits, schedule,
                               lambda seed: generator(job.experiment, seed, "data-order"),
                               job.engine, augment_batch if schedule.augment else None,
                               start=start, workers=workers)
        processes = len({net.process for net in nets})
        for position, (p, net) in enumerate(zip(group, nets, strict=True)):
            cohort = {"size": len(group), "position": position, "stacked": stacked,
                      "slots": job.engine.slots if stacked else 1, "device": str(device),
                      "threads": net.threads, "workers": processes, "tf32": tf32}
            hook = net.after_backward  # a worker's hook comes back with what it accumulated
            # the process that trained it varies between runs, as times do: with the timings
            yield Trained(p, net.result, cohort,
                          {"load": load_seconds, "train": net.result.wall_seconds,
                           "process": net.process},
                          hook.files() if hook else {})


def extension_call(extension: Extension | None, function: str, *args):
    """A member's extension's `function` (lth.plan.spec.Extension) on args; None without
    one."""
    if extension is None:
        return None
    return load(f"{extension.hooks}:{function}")(extension, *args)


def train_record(job: TrainJob, p: Prepared, device) -> dict:
    """The provenance of one network: its own member and the shared settings only, so a
    network's files do not change when other networks join or leave its cohort. argv is a
    one-member job that retrains exactly this network."""
    own = one_member(job, p.member)
    m = p.member
    inputs = [x for x in own.reads() if x]
    inputs.append(Path(job.data_root) / "tensors.safetensors")
    params = dataclasses.asdict(own)
    params.update(seed=m.seed, schedule_used=dataclasses.asdict(p.schedule))
    record = make_record("train", params, inputs, str(device), argv=rerun_argv("train", own))
    record["architecture"] = p.arch
    record["macs"] = training_macs(p.schedule.iterations - p.start, p.schedule.batch_size,
                                   p.facts)
    pruning = read_metadata(m.mask).get("extension") if m.mask else None
    if pruning is not None:
        record["pruning_extension"] = pruning  # what the mask's prune step recorded
    record.update(plugins_of(p.arch["model"], inputs=(m.mask,) if m.mask else ()))
    return record


def write_trained(job: TrainJob, t: Trained, device) -> None:
    """A trained member's run folder: final/mask/rewind (and its extra) safetensors,
    metrics.csv, then run.json (last)."""
    p, m = t.prepared, t.prepared.member
    record = train_record(job, p, device)
    tensors = {"final.safetensors": p.model.state_dict()}
    if m.mask is None or Path(m.mask).resolve() != (Path(m.out_dir) / "mask.safetensors").resolve():
        tensors["mask.safetensors"] = p.mask
    if m.save_at is not None:
        tensors["rewind.safetensors"] = t.result.checkpoints[m.save_at]
    tensors.update(t.extra)
    _, target = parse_level(m.level)
    result_fields = dict(
        p.facts, method=m.method, family=m.family, level=m.level,
        target_density=p.facts["density"] if target is None else target,
        iterations=p.schedule.iterations, start_iteration=p.start, draw=m.draw,
        budget_factor=p.budget_factor, weights_trained=True,
    )
    write_run(Path(m.out_dir), record, tensors, t.result, result_fields, t.timings,
              cohort=t.cohort)
