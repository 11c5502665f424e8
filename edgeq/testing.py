"""Random graphs for tests and fuzzing: every preprocessing mode, weight encoding, output stage,
padding, stride and pool, with integer parameters drawn so the thresholds actually split the
accumulator range (random thresholds far from it would make every bit the same and hide bugs).
"""

from __future__ import annotations

import numpy as np

from .graph import Conv, Graph, MaxPool, infer_shapes
from .refnet import apply_stage, conv_acc, maxpool, preprocess


def _weights(rng, enc: str, shape: tuple, wbits: int = 2, sparsity: float = 0.5) -> np.ndarray:
    if enc == "B1":
        return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)
    if enc in ("TERN", "TERN_SPARSE"):
        w = np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)
        w[rng.random(shape) < sparsity] = 0
        return w
    if enc == "KBIT":
        return rng.integers(0, 1 << wbits, shape).astype(np.uint8)
    return rng.integers(-128, 128, shape).astype(np.int8)


def _fit_stage(rng, layer: Conv, acc: np.ndarray) -> None:
    """Choose thresholds/affine parameters from the observed accumulator distribution."""
    n = layer.n_out
    flat = acc.reshape(-1, n)
    if layer.out == "SIGN":
        q = np.array([np.quantile(flat[:, j], rng.uniform(0.2, 0.8)) for j in range(n)])
        layer.thr = np.round(q).astype(np.int32)
        layer.flip = rng.random(n) < 0.3
    elif layer.out == "MULTI":
        nthr = (1 << layer.out_bits) - 1
        qs = np.sort(rng.uniform(0.05, 0.95, (n, nthr)), axis=1)
        thr = np.stack([np.quantile(flat[:, j], qs[j]) for j in range(n)])
        layer.flip = rng.random(n) < 0.3
        thr = np.round(thr).astype(np.int64)
        thr[layer.flip] = thr[layer.flip][:, ::-1]
        layer.thr = thr.astype(np.int32)
    else:
        layer.mul = rng.integers(-300, 300, n).astype(np.int32)
        layer.add = rng.integers(-10000, 10000, n).astype(np.int32)
        layer.shift = int(rng.integers(0, 6))


def random_graph(seed: int, size: str = "small", n_classes: int = 10) -> Graph:
    """A random valid Graph. size 'small' (8x8 input) or 'mnist' (28x28)."""
    rng = np.random.default_rng(seed)
    hw = 8 if size == "small" else 28
    c = int(rng.choice([1, 1, 3])) if size == "small" else 1
    pre = str(rng.choice(["THRESH", "RAW", "QUANT"]))
    pre_param = {"THRESH": int(rng.integers(60, 200)), "RAW": 0, "QUANT": int(rng.integers(1, 5))}[pre]
    g = Graph((c, hw, hw), pre, pre_param, [], classes=[f"c{i}" for i in range(n_classes)])
    calib = rng.integers(0, 256, (6, c, hw, hw)).astype(np.uint8)
    acts = [preprocess(g, x) for x in calib]
    enc = "B1" if pre == "THRESH" else "U8"
    levels = {"THRESH": 2, "RAW": 256, "QUANT": 1 << pre_param}[pre]
    n_conv = int(rng.integers(1, 4))
    for i in range(n_conv + 1):
        last = i == n_conv
        h, w, cin = acts[0].shape
        if last:  # dense head over the whole input
            kh, kw, stride, pad = h, w, 1, 0
            out, n = "AFFINE", n_classes
        else:
            kh, kw = int(rng.choice([1, 2, 3])), int(rng.choice([1, 3]))
            kh, kw = min(kh, h), min(kw, w)
            stride = int(rng.choice([1, 1, 2])) if min(h, w) > 3 else 1
            pad = int(rng.integers(0, max(kh, kw)))
            out = str(rng.choice(["SIGN", "MULTI"]))
            n = int(rng.choice([3, 8, 33, 40]))
        w_enc = str(rng.choice(["B1", "TERN", "TERN_SPARSE", "KBIT", "I8"]))
        wbits = int(rng.integers(1, 4))
        layer = Conv(_weights(rng, w_enc, (n, kh, kw, cin), wbits), w_enc, out, stride=stride,
                     pad=pad, name=f"conv{i}")
        if w_enc == "KBIT":  # the LUT covers every code the input can take
            layer.wbits = wbits
            layer.lut = rng.integers(-7, 8, (1 << wbits, levels)).astype(np.int32)
        if out == "MULTI":
            layer.out_bits = int(rng.integers(1, 4))
        accs = [conv_acc(layer, a, enc) for a in acts]
        _fit_stage(rng, layer, np.stack(accs))
        g.layers.append(layer)
        acts = [apply_stage(layer, a) for a in accs]
        enc = {"SIGN": "B1", "MULTI": "U8", "AFFINE": "I32"}[out]
        levels = {"SIGN": 2, "MULTI": 1 << layer.out_bits, "AFFINE": 0}[out]
        if not last and rng.random() < 0.4 and min(acts[0].shape[:2]) >= 2:
            pool = MaxPool(k=2, stride=int(rng.choice([1, 2])), name=f"pool{i}")
            g.layers.append(pool)
            acts = [maxpool(pool, a) for a in acts]
    infer_shapes(g)
    return g
