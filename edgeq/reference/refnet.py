"""Plain-numpy reference executor for a Graph: the semantics of docs/blob-format.md, written for
clarity. The C runtime, the firmware and the MicroPython runtime must match it bit for bit.

Activations are int64 arrays (H, W, C) of *values*: +-1 for B1, codes for U8, ints for I32.
Value 0 is the preprocessed input, value j + 1 layer j's output (the graph is a DAG in
topological order; graph.layer_src says what each layer reads).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..format.graph import Add, AvgPool, Concat, Conv, Flatten, Graph, MaxPool, infer_shapes, wino_f23
from .ref import affine_f32_ref, conv2d_f32_ref, conv2d_f32_wino_ref

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


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


def _pair(v) -> tuple:
    return (v, v) if np.isscalar(v) else tuple(v)


def _patches(a: np.ndarray, kh: int, kw: int, stride, pad):
    """(H, W, C) -> patches (OH, OW, kh, kw, C) and valid mask (OH, OW, kh, kw, 1).
    stride, pad: int or (vertical, horizontal)."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    h, w, c = a.shape
    ap = np.zeros((h + 2 * ph, w + 2 * pw, c), a.dtype)
    ap[ph:ph + h, pw:pw + w] = a
    valid = np.zeros((h + 2 * ph, w + 2 * pw, 1), np.int64)
    valid[ph:ph + h, pw:pw + w] = 1
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    ys = (np.arange(oh) * sh)[:, None] + np.arange(kh)[None, :]  # (oh, kh)
    xs = (np.arange(ow) * sw)[:, None] + np.arange(kw)[None, :]  # (ow, kw)
    pat = ap[ys[:, None, :, None], xs[None, :, None, :]]  # (oh, ow, kh, kw, c)
    val = valid[ys[:, None, :, None], xs[None, :, None, :]]
    return pat, val


def _conv_acc_dense(layer: Conv, weight: np.ndarray, a: np.ndarray, in_enc: str) -> np.ndarray:
    """int64 accumulators (OH, OW, N) of weights (N, kh, kw, C) over a (H, W, C), groups = 1."""
    n, kh, kw, _ = weight.shape
    pat, val = _patches(a, kh, kw, (layer.stride, layer.sw), (layer.pad, layer.pw))
    oh, ow = pat.shape[:2]
    if layer.w_enc == "KBIT":
        codes = (pat > 0).astype(np.int64) if in_enc == "B1" else pat
        lut = np.asarray(layer.lut, np.int64)
        w = np.asarray(weight, np.int64).reshape(n, -1)  # (N, T)
        codes = codes.reshape(oh * ow, -1)  # (P, T)
        mask = np.broadcast_to(val, pat.shape).reshape(oh * ow, -1)
        acc = np.zeros((oh * ow, n), np.int64)
        for j in range(n):
            acc[:, j] = (lut[w[j][None, :], codes] * mask).sum(axis=1)
        return acc.reshape(oh, ow, n)
    vals = (pat * val).reshape(oh * ow, -1)
    w = np.asarray(weight, np.int64).reshape(n, -1)
    return (vals @ w.T).reshape(oh, ow, n)


def conv_acc(layer: Conv, a: np.ndarray, in_enc: str) -> np.ndarray:
    """int64 accumulators (OH, OW, N) of a CONV layer on activation values a (H, W, C); float32
    for F32 weights (edgeq.reference.ref.conv2d_f32_ref: the runtimes' fixed order and roundings).
    Groups: output channel n reads input channels [gi*C/g, (gi+1)*C/g) with gi = n // (N/g)."""
    if layer.w_enc == "F32" and wino_f23(layer, a.shape):  # blob LFLAG_WINO_F23
        return conv2d_f32_wino_ref(a, in_enc, layer.weight)
    if layer.w_enc == "F32":
        return conv2d_f32_ref(a, in_enc, layer.weight, (layer.stride, layer.sw),
                              (layer.pad, layer.pw), layer.g)
    g = layer.g
    if g == 1:
        return _conv_acc_dense(layer, layer.weight, a, in_enc)
    ng, cg = layer.n_out // g, a.shape[2] // g
    return np.concatenate([_conv_acc_dense(layer, layer.weight[gi * ng:(gi + 1) * ng],
                                           a[..., gi * cg:(gi + 1) * cg], in_enc)
                           for gi in range(g)], axis=2)


def apply_stage(layer, acc: np.ndarray) -> np.ndarray:
    """Output stage of a CONV / AVGPOOL / ADD layer on accumulators (int64 (..., C), or float32
    with float32 thresholds / mul / add for F32 CONV layers)."""
    f32 = getattr(layer, "w_enc", "") == "F32"
    dt = np.float32 if f32 else np.int64
    n = acc.shape[-1]
    if layer.out == "SIGN":
        thr = np.asarray(layer.thr, dt).reshape(-1)
        flip = np.asarray(layer.flip, bool)
        bit = np.where(flip, acc <= thr, acc >= thr)
        return np.where(bit, 1, -1).astype(np.int64)
    if layer.out == "MULTI":
        thr = np.asarray(layer.thr, dt).reshape(n, -1)  # (N, L)
        flip = np.asarray(layer.flip, bool)[:, None]
        cond = np.where(flip, acc[..., None] <= thr, acc[..., None] >= thr)
        return cond.sum(axis=-1).astype(np.int64)
    if f32:
        return affine_f32_ref(acc, layer.mul, layer.add).astype(np.int64)
    y = (acc * np.asarray(layer.mul, np.int64) + np.asarray(layer.add, np.int64)) >> layer.shift
    if layer.out == "REQUANT":
        return np.clip(y, 0, (1 << layer.out_bits) - 1)
    return np.clip(y, I32_MIN, I32_MAX)


def maxpool(layer: MaxPool, a: np.ndarray) -> np.ndarray:
    pat, _ = _patches(a, layer.kh, layer.win_w, (layer.stride, layer.sw), 0)
    return pat.max(axis=(2, 3))


def avgpool_acc(layer: AvgPool, a: np.ndarray) -> np.ndarray:
    """Window sums (OH, OW, C) of the values (B1 +-1, U8 codes, I32), saturated to int32."""
    pat, _ = _patches(a, layer.kh, layer.kw, (layer.stride, layer.sw), 0)
    return np.clip(pat.sum(axis=(2, 3)), I32_MIN, I32_MAX)


def add_acc(layer: Add, a0: np.ndarray, a1: np.ndarray) -> np.ndarray:
    """sat32(m0[c] * a0 + m1[c] * a1), exact in int64 (|m| <= 2**30, |a| <= 2**31)."""
    m = np.asarray(layer.m, np.int64)
    return np.clip(m[0] * a0 + m[1] * a1, I32_MIN, I32_MAX)


def _walk(g: Graph, pixels_chw: np.ndarray):
    shapes = infer_shapes(g)
    vals = [preprocess(g, pixels_chw)]
    for layer, s in zip(g.layers, shapes):
        a = vals[s.src[0]]
        acc = None
        if isinstance(layer, Conv):
            acc = conv_acc(layer, a, s.in_enc)
        elif isinstance(layer, AvgPool):
            acc = avgpool_acc(layer, a)
        elif isinstance(layer, Add):
            acc = add_acc(layer, a, vals[s.src[1]])
        if acc is not None:
            out = apply_stage(layer, acc)
        elif isinstance(layer, Flatten):
            out = a.reshape(1, 1, -1)
        elif isinstance(layer, Concat):
            out = np.concatenate([a, vals[s.src[1]]], axis=2)
        else:
            out = maxpool(layer, a)
        vals.append(out)
        yield acc, out


def layer_outputs(g: Graph, pixels_chw: np.ndarray) -> list:
    """Activation values after every layer, each (H, W, C) int64."""
    return [out for _, out in _walk(g, pixels_chw)]


def layer_accs(g: Graph, pixels_chw: np.ndarray) -> list:
    """Accumulators before the output stage of every CONV / AVGPOOL / ADD layer (None for the
    others: MAXPOOL, FLATTEN, CONCAT)."""
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
