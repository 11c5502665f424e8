"""Pruning for quantized nets: magnitude (per layer / global), per-layer sensitivity, structured
filter pruning, and iterative prune -> retrain with masks enforced inside the optimizer step.

Masks act on the *latent* float weights of `QConv2d`/`QLinear` layers (any nn.Conv2d/nn.Linear
works too).  A pruned latent weight is exactly 0.0; ternary quantizers map an exact zero to the
ternary 0 (|0| > Delta is false), so pruned zeros reach the blob as skip-zero data
(`TERN_SPARSE`) when the export asks for it (`ternary="smallest"`: where it is smaller than the
two bit-planes; the default "auto" keeps the faster `TERN` planes past gray/RGB first layers).  Sign/BWN
quantizers have no zero (sign(0) = +1): pruning them only fixes the weight at +alpha.

`enforce_masks(optimizer, masks)` registers optimizer hooks: before every step the gradients of
pruned weights are zeroed, after it the pruned weights are set back to exactly 0.0 and their
optimizer state (momentum, Adam moments) zeroed, so no update ever revives them.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..errors import EdgeqError


def prunable(model: nn.Module, skip_first: bool = False) -> dict:
    """name -> weight Parameter of every conv/linear layer (in module order)."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            out[name] = m.weight
    if skip_first and out:
        out.pop(next(iter(out)))
    return out


def _kth_abs(values: torch.Tensor, sparsity: float) -> float:
    k = round(sparsity * values.numel())
    if k <= 0:
        return -1.0
    return float(values.abs().flatten().kthvalue(min(k, values.numel())).values)


def magnitude_masks(model: nn.Module, sparsity, scope: str = "layer", skip_first: bool = False,
                    old: dict | None = None) -> dict:
    """Boolean keep-masks (True = kept) zeroing the smallest-|w| fraction `sparsity`.

    scope='layer': every layer pruned to `sparsity` (a float, or a dict name -> sparsity);
    scope='global': one magnitude threshold over all prunable weights.
    Weights already pruned in `old` stay pruned.  Ties at the threshold are pruned."""
    params = prunable(model, skip_first)
    masks = {}
    if scope == "global":
        allw = torch.cat([p.detach().abs().flatten() for p in params.values()])
        thr = _kth_abs(allw, float(sparsity))
        for n, p in params.items():
            masks[n] = p.detach().abs() > thr
    elif scope == "layer":
        for n, p in params.items():
            s = sparsity.get(n, 0.0) if isinstance(sparsity, dict) else float(sparsity)
            masks[n] = p.detach().abs() > _kth_abs(p.detach(), s)
    else:
        raise EdgeqError(f"pruning scope must be 'layer' or 'global', got {scope!r}")
    if old:
        for n in masks:
            if n in old:
                masks[n] &= old[n]
    return masks


def filter_masks(model: nn.Module, layer: str, amount: float) -> dict:
    """Structured pruning: keep-mask zeroing the `amount` fraction of output filters of `layer`
    with the smallest L1 norm (whole rows of the weight)."""
    p = prunable(model)[layer].detach()
    norms = p.abs().flatten(1).sum(1)
    k = round(amount * len(norms))
    keep = torch.ones(len(norms), dtype=torch.bool)
    if k > 0:
        keep[torch.argsort(norms)[:k]] = False
    return {layer: keep.view(-1, *([1] * (p.dim() - 1))).expand_as(p).clone()}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict) -> None:
    """Set every pruned weight to exactly +0.0."""
    params = prunable(model)
    for n, m in masks.items():
        params[n].masked_fill_(~m.to(params[n].device), 0.0)


def sparsity(model: nn.Module) -> dict:
    """name -> fraction of exactly-zero latent weights, plus 'total'."""
    out, z, t = {}, 0, 0
    for n, p in prunable(model).items():
        nz = int((p == 0).sum())
        out[n] = nz / p.numel()
        z, t = z + nz, t + p.numel()
    out["total"] = z / max(t, 1)
    return out


def enforce_masks(optimizer: torch.optim.Optimizer, model: nn.Module, masks: dict):
    """Enforce keep-masks in every optimizer step (see module docstring).  Returns the two hook
    handles (call .remove() on them to stop).  `masks` may be mutated later (e.g. by a schedule);
    the hooks read the current dict."""
    params = prunable(model)

    def pre(opt, args, kwargs):
        for n, m in masks.items():
            p = params[n]
            if p.grad is not None:
                p.grad.masked_fill_(~m, 0.0)

    @torch.no_grad()
    def post(opt, args, kwargs):
        for n, m in masks.items():
            p = params[n]
            p.masked_fill_(~m, 0.0)
            for v in opt.state.get(p, {}).values():
                if torch.is_tensor(v) and v.shape == p.shape:
                    v.masked_fill_(~m, 0.0)

    return optimizer.register_step_pre_hook(pre), optimizer.register_step_post_hook(post)


def gradual_schedule(final: float, step: int, begin: int, end: int) -> float:
    """Cubic sparsity ramp (Zhu & Gupta 2017): 0 before `begin`, `final` from `end` on."""
    if step < begin:
        return 0.0
    if step >= end:
        return float(final)
    f = (step - begin) / max(end - begin, 1)
    return float(final) * (1 - (1 - f) ** 3)


def iterative_prune(model: nn.Module, optimizer, retrain, steps, scope: str = "layer",
                    skip_first: bool = False) -> dict:
    """Iterative prune -> retrain: for each target sparsity in `steps` (increasing), prune by
    magnitude (keeping earlier zeros), then call `retrain(model)` with the masks enforced in
    `optimizer`'s steps.  Returns the final masks (still enforced after return)."""
    masks = {}
    enforce_masks(optimizer, model, masks)
    for s in steps:
        masks.update(magnitude_masks(model, s, scope, skip_first, old=dict(masks)))
        apply_masks(model, masks)
        retrain(model)
    return masks


@torch.no_grad()
def sensitivity(model: nn.Module, evaluate, sparsities=(0.5, 0.7, 0.8, 0.9, 0.95)) -> dict:
    """Per-layer sensitivity: prune one layer at a time to each sparsity (no retraining) and
    call `evaluate(model) -> float` (e.g. accuracy).  Returns {'baseline': v, layer: [(s, v)...]}.
    The model is restored afterwards."""
    state = copy.deepcopy(model.state_dict())
    out = {"baseline": float(evaluate(model))}
    for name in prunable(model):
        rows = []
        for s in sparsities:
            masks = magnitude_masks(model, {name: s}, "layer")
            apply_masks(model, {name: masks[name]})
            rows.append((float(s), float(evaluate(model))))
            model.load_state_dict(state)
        out[name] = rows
    return out


def layer_sparsity_from_sensitivity(sens: dict, max_drop: float) -> dict:
    """Pick, per layer, the largest tested sparsity whose metric drop stays within `max_drop`."""
    base = sens["baseline"]
    out = {}
    for name, rows in sens.items():
        if name == "baseline":
            continue
        ok = [s for s, v in rows if base - v <= max_drop]
        out[name] = float(np.max(ok)) if ok else 0.0
    return out
