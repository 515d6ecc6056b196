"""One prune job: IMP's step (a fraction of the remaining weights per layer kind), its
count-matching controls (as many weights kept as a reference mask keeps), pruning at
initialisation (a density reached in scored steps, lth.methods.criteria), and a family's
extension of the step (lth.plan.spec.Extension: check_prune, after_prune)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from lth.core import masks as M
from lth.core.io import LthError
from lth.core.models import layer_kinds
from lth.core.networks import load_mask, load_model, prunable_params
from lth.methods.criteria import (
    BATCHNORM_STATISTICS,
    CRITERIA,
    ScoreData,
    score_data,
    scored_steps,
    scoring_macs,
)
from lth.plan import plugins
from lth.plan.registry import load
from lth.plan.spec import PruneJob, Rates


def kind_rates(model, rates: Rates) -> dict[str, float]:
    """Each prunable weight's IMP rate, by its layer kind (conv, shortcut, hidden fc,
    output: lth.core.models.layer_kinds)."""
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


def check_prune_job(job: PruneJob) -> None:
    """One line naming what is wrong with a prune job, before any work."""
    if job.criterion not in CRITERIA and not plugins.is_criterion_plugin(job.criterion):
        raise LthError(f"criterion {job.criterion!r}: expected one of {', '.join(CRITERIA)}")
    if job.scope not in ("layerwise", "global"):
        raise LthError(f"scope {job.scope!r}: expected layerwise or global")
    amounts = [job.rates is not None, job.density is not None, job.match_counts is not None]
    if sum(amounts) != 1:
        raise LthError("a prune job needs exactly one of rates, density and match_counts")
    if job.density is not None and not 0 < job.density <= 1:
        raise LthError(f"density {job.density}: expected a fraction in (0, 1]")
    if job.extension is not None:
        load(f"{job.extension.hooks}:check_prune")(job.extension, job)
    for key in ("snip_batchnorm", "grasp_batchnorm"):
        value = getattr(job.scoring, key) if job.scoring else None
        if value is not None and value not in BATCHNORM_STATISTICS:
            raise LthError(f"scoring.{key} {value!r}: expected batch or running")


def prune(job: PruneJob, model: torch.nn.Module, mask: M.Mask, reference: M.Mask | None,
          data: ScoreData) -> tuple[M.Scores, M.Mask]:
    """(the scores, the new mask) of a prune job on `model` under `mask`: to the job's
    density in its scored steps (the last step's scores), by IMP's rates, or to the counts
    of `reference`; then as the job's extension changes it."""
    if job.density is not None:
        *_, (scores, new) = scored_steps(model, mask, job.criterion, job.density, job.scope,
                                         data, job.iterations)
    else:
        scores = CRITERIA[job.criterion](model, mask, data)
        new = (prune_by_rates(scores, mask, kind_rates(model, job.rates), job.scope)
               if job.rates else prune_to_counts(scores, mask, reference, job.scope))
    if job.extension is not None:
        new = load(f"{job.extension.hooks}:after_prune")(job.extension, new, mask, scores,
                                                          data.gen)
    return scores, new


@dataclasses.dataclass
class Pruned:
    """What a prune job made: the network's architecture, the new mask, the scores that
    made it, the multiply-accumulates spent scoring, and what its extension records."""

    arch: dict
    mask: M.Mask
    scores: M.Scores
    macs: int
    extension: dict | None = None


def run_prune_job(job: PruneJob, device: torch.device) -> Pruned:
    """Prune the job's weights under its mask (prune) and count the scoring work."""
    model, arch = load_model(job.weights, 0.0, device)
    params = prunable_params(model)
    mask = load_mask(job.mask, params)
    reference = load_mask(job.match_counts, params) if job.match_counts else None
    data = score_data(job, model, arch, device)
    scores, new = prune(job, model, mask, reference, data)
    examples = sum(len(x) for x, _ in data.batches)
    work = scoring_macs(job.criterion, M.macs(model, tuple(arch["input_shape"])), examples,
                        job.iterations)
    extension = (load(f"{job.extension.hooks}:prune_record")(job.extension, new, mask)
                 if job.extension else None)
    return Pruned(arch, new, scores, work, extension)


def prune_inputs(job: PruneJob) -> list:
    """The files a prune job reads: weights, masks, its extension's files, training data."""
    inputs = [p for p in job.reads() if p]
    if plugins.scoring_settings(job.criterion):
        inputs.append(Path(job.data_root) / "tensors.safetensors")
    return inputs
