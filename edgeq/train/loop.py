"""Training loop, evaluation and checkpoints for `edgeq.train.models` nets.

Defaults (used by `edgeq train`): Adam with the arch's learning rate and a one-cycle cosine
schedule, batch 64, random +-2 px shifts (+-1 px for images under 16 px), latent weights of
sign/BWN layers clipped to [-1, 1] after every step [BNN].  Epochs default to the arch's MNIST
setting, scaled so that small data sets (digits) get about 3000 steps capped by a time budget.

`--prune S` trains dense for the first 30 % of the epochs, ramps the sparsity of every layer but
the first cubically to S until 70 % (masks recomputed each epoch, keeping earlier zeros) and
retrains at fixed masks for the rest; the masks are enforced inside the optimizer step
(`edgeq.train.prune.enforce_masks`).

Checkpoints are `torch.save` of a dict holding only tensors, strings, numbers and lists (a
state_dict and the model config), loaded with ``torch.load(weights_only=True)``: no pickle of
arbitrary objects is ever unpickled.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import prune as P
from ..errors import EdgeqError
from .models import QNet, build_model, get_arch, model_from_config
from .quant import clip_latent_weights

CKPT_FORMAT = "edgeq-ckpt-1"


def pick_device(device: str | None = None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def set_threads(n: int) -> None:
    """torch CPU threads: n, or auto_threads() when n is 0."""
    torch.set_num_threads(n if n > 0 else auto_threads())


def auto_threads(max_threads: int = 2) -> int:
    """CPU threads for torch: up to `max_threads`, one less per core already busy (1-minute load
    average).  OpenMP threads that share a core with another busy process spin and slow small
    convolutions down several-fold, so a loaded 2-core machine gets 1 thread."""
    import os

    n = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        busy = 0.0
    return int(max(1, min(max_threads, n, round(n - busy))))


def default_epochs(arch: str, n_train: int, batch: int = 64) -> int:
    """The arch's MNIST epochs for >= 5000 images; small sets get ~900 steps (digits: 40 epochs)."""
    base = get_arch(arch).epochs
    if n_train >= 5000:
        return base
    steps = max(1, math.ceil(n_train / batch))
    return int(min(60, max(base, round(900 / steps))))


def shift_batch(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random integer shifts of every image by up to +-max_shift pixels (zero fill)."""
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    s = max_shift
    pad = F.pad(x, (s, s, s, s))
    dy = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * s + 1, (n,), generator=gen)
    iy = (dy.view(n, 1, 1, 1) + torch.arange(h).view(1, 1, h, 1)).expand(n, c, h, w + 2 * s)
    rows = torch.gather(pad, 2, iy)  # (n, c, h, w + 2s)
    ix = (dx.view(n, 1, 1, 1) + torch.arange(w).view(1, 1, 1, w)).expand(n, c, h, w)
    return torch.gather(rows, 3, ix)


@torch.no_grad()
def predict(model: QNet, x: np.ndarray, batch: int = 512, device=None) -> np.ndarray:
    """Predicted classes of uint8 images: the exact integer forward of the exported graph (a QNet's
    eval forward; for any edgeq.nn model, what every runtime computes)."""
    from .export import fold, int_forward

    model.eval()
    dev = next(model.parameters()).device if device is None else device
    folded = fold(model, torch.as_tensor(x[:1], device=dev)) if len(x) else None  # traced once
    out = []
    for i in range(0, len(x), batch):
        xb = torch.as_tensor(x[i:i + batch], device=dev)
        out.append(int_forward(model, xb, folded=folded).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def accuracy(model: QNet, x, y) -> float:
    return float((predict(model, x) == np.asarray(y)).mean())


def train_model(model: QNet, xtr: np.ndarray, ytr: np.ndarray, *, epochs: int, lr: float,
                batch: int = 64, seed: int = 0, prune: float = 0.0, device=None,
                max_shift: int | None = None, progress=None, xval=None, yval=None,
                time_budget: float | None = None) -> dict:
    """Train in place.  progress(epoch, step, n_steps, loss) is called every step when given.
    Returns a history dict (loss per epoch, val accuracy when xval given, seconds, sparsity)."""
    dev = pick_device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(dev)
    xt = torch.as_tensor(np.array(xtr, dtype=np.float32))  # a writable copy
    yt = torch.as_tensor(np.array(ytr, dtype=np.int64))
    n = len(xt)
    if n == 0:
        raise EdgeqError("no training data")
    if max_shift is None:
        max_shift = 2 if xt.shape[-1] >= 16 else 1
    steps_per_epoch = math.ceil(n / batch)
    total = max(1, epochs * steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15,
                                                anneal_strategy="cos", div_factor=10, final_div_factor=100)
    masks: dict = {}
    if prune:
        P.enforce_masks(opt, model, masks)
    hist = {"loss": [], "val_acc": [], "sparsity": 0.0}
    t0 = time.time()
    step = 0
    for ep in range(epochs):
        if prune:
            s = P.gradual_schedule(prune, ep, int(0.3 * epochs), max(int(0.7 * epochs), int(0.3 * epochs) + 1))
            if s > 0:
                masks.update(P.magnitude_masks(model, s, "layer", skip_first=True, old=dict(masks)))
                P.apply_masks(model, masks)
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb = shift_batch(xt[idx], max_shift, gen).to(dev)
            yb = yt[idx].to(dev)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step < total - 1:
                sched.step()
            step += 1
            clip_latent_weights(model)
            tot += float(loss.detach()) * len(idx)
            if progress:
                progress(ep, step, total, float(loss.detach()))
        hist["loss"].append(tot / n)
        if xval is not None:
            hist["val_acc"].append(accuracy(model, xval, yval))
        if time_budget and time.time() - t0 > time_budget:
            break
    if prune:
        hist["sparsity"] = P.sparsity(model)["total"]
    hist["seconds"] = time.time() - t0
    hist["epochs"] = len(hist["loss"])
    model.eval()
    return hist


# ---------------------------------------------------------------------------------------------
def save_checkpoint(model: QNet, path) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": CKPT_FORMAT, "config": _plain(model.config), "classes": list(model.classes),
                "state_dict": state}, str(path))


def _plain(d):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def load_checkpoint(path) -> QNet:
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise EdgeqError(f"{path}: not a readable edgeq checkpoint ({e})") from None
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise EdgeqError(f"{path}: not an edgeq checkpoint (format {CKPT_FORMAT})")
    model = model_from_config(ck["config"], ck["classes"])
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model


def build_and_train(arch: str, xtr, ytr, classes, *, epochs: int | None = None, seed: int = 0,
                    prune: float = 0.0, device=None, progress=None, lr: float | None = None,
                    first_wq=None, last_wq=None, width: float = 1.0):
    """Build `arch` for the training images and train it with the defaults.  -> (model, history)"""
    torch.manual_seed(seed)
    model = build_model(arch, tuple(xtr.shape[1:]), classes, first_wq=first_wq, last_wq=last_wq,
                        width=width)
    spec = get_arch(arch)
    ep = epochs if epochs is not None else default_epochs(arch, len(xtr))
    hist = train_model(model, xtr, ytr, epochs=ep, lr=lr or spec.lr, seed=seed, prune=prune,
                       device=device, progress=progress)
    model.cpu().eval()
    return model, hist


@torch.no_grad()
def alternating_finetune(model: QNet, x_calib: np.ndarray, iters: int = 2, max_rows: int = 4096) -> dict:
    """HWGQ-style layer-wise alternating fine-tune of BWN scales and binary weights.

    For every BWN-quantized block (first to last), its inputs X are taken from the current
    network on `x_calib` (im2col'ed, at most `max_rows` rows) and the target is the layer's output
    with its latent float weights, Y = X W.  `quant.alternating_fit` then alternates the closed-form
    per-channel scale and a coordinate sweep over the binary weights to minimise
    ||Y - alpha * X b||^2; the latent weights become alpha * b (so BWN's alpha = mean|w| and
    sign(w) = b reproduce them exactly).  Batch-norm statistics are then re-estimated on x_calib.
    Returns {block index: (loss before, loss after)}."""
    from .quant import BWNWeight, alternating_fit

    model.eval()
    px = torch.as_tensor(np.asarray(x_calib), dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    out = {}
    for i, blk in enumerate(model.blocks):
        conv = blk.conv
        if not isinstance(conv.wq, BWNWeight):
            continue
        x = model.pre(px)
        for b in model.blocks[:i]:
            b.eval()
            x = b(x)
        cols = F.unfold(x, conv.kernel_size, padding=conv.padding, stride=conv.stride)  # (B, K, L)
        cols = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        if len(cols) > max_rows:
            cols = cols[torch.randperm(len(cols), generator=gen)[:max_rows]]
        w = conv.weight.reshape(conv.out_channels, -1)
        y = cols @ w.T
        b0 = torch.where(w >= 0, 1.0, -1.0)
        a0 = w.abs().mean(1)
        before = float(((y - (cols @ b0.T) * a0) ** 2).sum())
        alpha, b = alternating_fit(cols, y, b0, iters=iters)
        after = float(((y - (cols @ b.T) * alpha) ** 2).sum())
        if after < before:
            conv.weight.copy_((alpha[:, None] * b).reshape_as(conv.weight))
        out[i] = (before, min(before, after))
    recalibrate_bn(model, x_calib)
    return out


@torch.no_grad()
def recalibrate_bn(model: QNet, x: np.ndarray, batch: int = 256) -> None:
    """Re-estimate every batch-norm's running statistics (cumulative average) on images x."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(x), batch):
        model.float_forward(torch.as_tensor(np.asarray(x[i:i + batch]), dtype=torch.float32))
    for m in bns:
        m.momentum = 0.1
    model.eval()
