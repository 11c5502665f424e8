"""Random graphs for tests and fuzzing: every preprocessing mode, weight encoding, output stage,
padding, stride and pool, with integer parameters drawn so the thresholds actually split the
accumulator range (random thresholds far from it would make every bit the same and hide bugs).
"""

from __future__ import annotations

import numpy as np

from ..format.graph import Conv, Graph, MaxPool, infer_shapes
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
    if enc == "F32":  # float weights over several binades (sums round at every step)
        return (rng.standard_normal(shape) * np.exp2(rng.integers(-6, 7, shape))).astype(np.float32)
    if enc == "I16":  # wide values, still far from the int32 accumulator bound
        return rng.integers(-3000, 3001, shape).astype(np.int16)
    return rng.integers(-128, 128, shape).astype(np.int8)


def _fit_stage(rng, layer: Conv, acc: np.ndarray) -> None:
    """Choose thresholds/affine parameters from the observed accumulator distribution."""
    n = layer.n_out
    flat = acc.reshape(-1, n)
    if layer.w_enc == "F32":  # float32 thresholds at observed values (ties exercise >= / <=)
        if layer.out == "AFFINE":  # |acc * mul| near 2**28: one ulp of acc moves the score
            big = np.maximum(np.abs(flat).max(axis=0).astype(np.float64), 2.0**-20)
            mul = np.minimum(2.0**28 / big, 2.0**31) * rng.uniform(0.5, 1.0, n)
            layer.mul = (mul * np.where(rng.random(n) < 0.5, -1, 1)).astype(np.float32)
            layer.add = rng.uniform(-1000, 1000, n).astype(np.float32)
            layer.shift = 0
            return
        nthr = 1 if layer.out == "SIGN" else (1 << layer.out_bits) - 1
        thr = np.sort(np.stack([rng.choice(flat[:, j], nthr) for j in range(n)]), axis=1)
        layer.flip = rng.random(n) < 0.3
        thr[layer.flip] = thr[layer.flip][:, ::-1]
        layer.thr = (thr[:, 0] if layer.out == "SIGN" else thr).astype(np.float32)
        return
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
        w_enc = str(rng.choice(["B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32"]))
        wbits = int(rng.integers(1, 9))
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


def kbit_graph(wbits: int, pre: str = "QUANT", seed: int = 0) -> Graph:
    """KBIT weights of one width on both activation encodings, with rows whose packed length is
    not a whole number of words (padding bits): a 3x3 conv (pad 1) on the input (B1 for THRESH,
    U8 for QUANT), a 2x3 stride-2 conv on its 2-bit MULTI codes, a dense head on B1 bits."""
    rng = np.random.default_rng(seed)
    pre_param = {"THRESH": 128, "QUANT": 2, "RAW": 0}[pre]
    g = Graph((2, 7, 7), pre, pre_param, [], classes=[f"c{i}" for i in range(10)])
    acts = [preprocess(g, x) for x in rng.integers(0, 256, (6, 2, 7, 7)).astype(np.uint8)]
    enc = "B1" if pre == "THRESH" else "U8"
    levels = {"THRESH": 2, "RAW": 256, "QUANT": 1 << pre_param}[pre]
    specs = [((3, 3), 5, 1, 1, "MULTI"), ((2, 3), 6, 2, 1, "SIGN"), (None, 10, 1, 0, "AFFINE")]
    for i, (k, n, stride, pad, out) in enumerate(specs):
        h, w, cin = acts[0].shape
        kh, kw = k if k else (h, w)
        layer = Conv(_weights(rng, "KBIT", (n, kh, kw, cin), wbits), "KBIT", out, stride=stride,
                     pad=pad, name=f"conv{i}", wbits=wbits,
                     lut=rng.integers(-9, 10, (1 << wbits, levels)).astype(np.int32))
        if out == "MULTI":
            layer.out_bits = 2
        accs = [conv_acc(layer, a, enc) for a in acts]
        _fit_stage(rng, layer, np.stack(accs))
        g.layers.append(layer)
        acts = [apply_stage(layer, a) for a in accs]
        enc = {"SIGN": "B1", "MULTI": "U8", "AFFINE": "I32"}[out]
        levels = {"SIGN": 2, "MULTI": 4, "AFFINE": 0}[out]
    infer_shapes(g)
    return g


def kbit_tamper(blob: bytes, kind: str) -> bytes:
    """A copy of blob (CRC resealed) with its first suitable KBIT weight tensor broken: kind
    'code' puts a code >= 2**bits into row 0 (needs bits of 3, 5, 6 or 7), 'pad' sets the last
    padding bit of row 0 (needs K * slot bits not a multiple of 32)."""
    from ..format import bits as B
    from ..format import pack
    from .. import spec

    b = bytearray(blob)
    for t in pack.tensor_entries(blob, pack.read_header(blob)):
        if t["enc"] != spec.value(spec.ENC, "KBIT"):
            continue
        bits, k = t["bits"], t["d1"] * t["d2"] * t["d3"]
        sb = B.kbit_slot_bits(bits)
        if kind == "code" and bits != sb:
            b[t["offset"]] |= 1 << bits  # slot 0 of row 0 gets its bit `bits` set
            break
        if kind == "pad" and (k * sb) % 32:
            b[t["offset"] + B.kbit_row_bytes(k, bits) - 1] |= 0x80  # last bit of row 0
            break
    else:
        raise ValueError(f"no KBIT tensor in this blob can take a {kind!r} fault")
    return pack.reseal(b)


def f32_tamper(blob: bytes, index: int, value: float) -> bytes:
    """A copy of blob (CRC resealed) whose index-th F32 tensor (in table order) starts with
    `value` (e.g. NaN or infinity, which the loaders must refuse)."""
    import struct

    from ..format import pack
    from .. import spec

    found = [t["offset"] for t in pack.tensor_entries(blob, pack.read_header(blob))
             if t["enc"] == spec.value(spec.ENC, "F32")]
    b = bytearray(blob)
    struct.pack_into("<f", b, found[index], value)
    return pack.reseal(b)
