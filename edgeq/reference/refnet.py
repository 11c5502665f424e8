"""Plain-numpy reference executor for a Graph: the semantics of docs/blob-format.md, written for
clarity. The C runtime, the firmware and the MicroPython runtime must match it bit for bit.

Activations are int64 arrays (H, W, C) of *values*: +-1 for B1, codes for U8, ints for I32.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..format.graph import Conv, Flatten, Graph, MaxPool, infer_shapes
from .ref import affine_f32_ref, conv2d_f32_ref


def preprocess(g: Graph, pixels_chw: np.ndarray) -> np.ndarray:
    """Raw uint8 CHW pixels -> first activation (H, W, C) int64 values."""
    c, h, w = g.input_shape
    px = np.asarray(pixels_chw)
    if px.shape == (h, w) and c == 1:
        px = px[None]
    if px.shape != (c, h, w):
        raise ShapeError(f"input has shape {px.shape}, the model takes (C,H,W) = {(c, h, w)}")
    px = px.astype(np.int64).transpose(1, 2, 0)
    if g.pre_mode == "THRESH":
        return np.where(px >= g.pre_param, 1, -1)
    if g.pre_mode == "RAW":
        return px
    return (px * ((1 << g.pre_param) - 1) + 127) // 255


def _patches(a: np.ndarray, kh: int, kw: int, stride: int, pad: int):
    """(H, W, C) -> patches (OH, OW, kh, kw, C) and valid mask (OH, OW, kh, kw, 1)."""
    h, w, c = a.shape
    ap = np.zeros((h + 2 * pad, w + 2 * pad, c), a.dtype)
    ap[pad:pad + h, pad:pad + w] = a
    valid = np.zeros((h + 2 * pad, w + 2 * pad, 1), np.int64)
    valid[pad:pad + h, pad:pad + w] = 1
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (w + 2 * pad - kw) // stride + 1
    ys = (np.arange(oh) * stride)[:, None] + np.arange(kh)[None, :]  # (oh, kh)
    xs = (np.arange(ow) * stride)[:, None] + np.arange(kw)[None, :]  # (ow, kw)
    pat = ap[ys[:, None, :, None], xs[None, :, None, :]]  # (oh, ow, kh, kw, c)
    val = valid[ys[:, None, :, None], xs[None, :, None, :]]
    return pat, val


def conv_acc(layer: Conv, a: np.ndarray, in_enc: str) -> np.ndarray:
    """int64 accumulators (OH, OW, N) of a CONV layer on activation values a (H, W, C); float32
    for F32 weights (edgeq.reference.ref.conv2d_f32_ref: the runtimes' fixed order and roundings)."""
    if layer.w_enc == "F32":
        return conv2d_f32_ref(a, in_enc, layer.weight, layer.stride, layer.pad)
    pat, val = _patches(a, layer.kh, layer.kw, layer.stride, layer.pad)
    oh, ow = pat.shape[:2]
    n = layer.n_out
    if layer.w_enc == "KBIT":
        codes = (pat > 0).astype(np.int64) if in_enc == "B1" else pat
        lut = np.asarray(layer.lut, np.int64)
        w = np.asarray(layer.weight, np.int64).reshape(n, -1)  # (N, T)
        codes = codes.reshape(oh * ow, -1)  # (P, T)
        mask = np.broadcast_to(val, pat.shape).reshape(oh * ow, -1)
        acc = np.zeros((oh * ow, n), np.int64)
        for j in range(n):
            acc[:, j] = (lut[w[j][None, :], codes] * mask).sum(axis=1)
        return acc.reshape(oh, ow, n)
    vals = (pat * val).reshape(oh * ow, -1)
    w = np.asarray(layer.weight, np.int64).reshape(n, -1)
    return (vals @ w.T).reshape(oh, ow, n)


def apply_stage(layer: Conv, acc: np.ndarray) -> np.ndarray:
    """Output stage on accumulators (int64, or float32 with float32 thresholds / mul / add for
    F32 layers)."""
    dt = np.float32 if layer.w_enc == "F32" else np.int64
    if layer.out == "SIGN":
        thr = np.asarray(layer.thr, dt).reshape(-1)
        flip = np.asarray(layer.flip, bool)
        bit = np.where(flip, acc <= thr, acc >= thr)
        return np.where(bit, 1, -1).astype(np.int64)
    if layer.out == "MULTI":
        thr = np.asarray(layer.thr, dt).reshape(layer.n_out, -1)  # (N, L)
        flip = np.asarray(layer.flip, bool)[:, None]
        cond = np.where(flip, acc[..., None] <= thr, acc[..., None] >= thr)
        return cond.sum(axis=-1).astype(np.int64)
    if dt is np.float32:
        return affine_f32_ref(acc, layer.mul, layer.add).astype(np.int64)
    y = (acc * np.asarray(layer.mul, np.int64) + np.asarray(layer.add, np.int64)) >> layer.shift
    return np.clip(y, -(2**31), 2**31 - 1)


def maxpool(layer: MaxPool, a: np.ndarray) -> np.ndarray:
    pat, _ = _patches(a, layer.k, layer.k, layer.stride, 0)
    return pat.max(axis=(2, 3))


def _walk(g: Graph, pixels_chw: np.ndarray):
    shapes = infer_shapes(g)
    a = preprocess(g, pixels_chw)
    for layer, s in zip(g.layers, shapes):
        if isinstance(layer, Conv):
            acc = conv_acc(layer, a, s.in_enc)
            a = apply_stage(layer, acc)
            yield acc, a
        elif isinstance(layer, Flatten):
            a = a.reshape(1, 1, -1)
            yield None, a
        else:
            a = maxpool(layer, a)
            yield None, a


def layer_outputs(g: Graph, pixels_chw: np.ndarray) -> list:
    """Activation values after every layer, each (H, W, C) int64."""
    return [out for _, out in _walk(g, pixels_chw)]


def layer_accs(g: Graph, pixels_chw: np.ndarray) -> list:
    """Accumulators before the output stage of every CONV layer (None for pools)."""
    return [acc for acc, _ in _walk(g, pixels_chw)]


def run(g: Graph, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run a batch: pixels (N, C, H, W) or (N, H, W) uint8 -> (scores int64 (N, n), classes (N,))."""
    px = np.asarray(pixels)
    c, h, w = g.input_shape
    if px.ndim == 3 and c == 1 and px.shape[1:] == (h, w):
        px = px[:, None]
    if px.ndim != 4:
        raise ShapeError(f"expected a batch (N, C, H, W) or (N, H, W), got shape {px.shape}")
    scores = []
    for img in px:
        *_, (_, out) = _walk(g, img)
        scores.append(out.reshape(-1))
    s = np.stack(scores).astype(np.int64)
    return s, s.argmax(axis=1)
