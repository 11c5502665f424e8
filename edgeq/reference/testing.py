"""Random graphs for tests and fuzzing: every preprocessing mode, weight encoding, output stage,
padding, stride and pool, with integer parameters drawn so the thresholds actually split the
accumulator range (random thresholds far from it would make every bit the same and hide bugs).
"""

from __future__ import annotations

import numpy as np

from ..format.graph import Add, AvgPool, Concat, Conv, Graph, MaxPool, infer_shapes, input_enc
from .refnet import add_acc, apply_stage, avgpool_acc, conv_acc, maxpool, preprocess


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


def _fit_requant(rng, layer, flat: np.ndarray) -> None:
    """REQUANT mul/add/shift mapping each channel's observed range [q5, q95] onto the codes
    0..2**out_bits - 1 (some values clamp at both ends; a few channels get a negative mul)."""
    n = flat.shape[1]
    top = (1 << layer.out_bits) - 1
    lo = np.quantile(flat, 0.05, axis=0).astype(np.float64)
    hi = np.quantile(flat, 0.95, axis=0).astype(np.float64)
    scale = (top + 0.999) / np.maximum(hi - lo, 1.0) * rng.uniform(0.8, 1.3, n)
    neg = rng.random(n) < 0.2
    # enough fraction bits that mul keeps ~12 significant bits (wide I32 inputs need large shifts)
    shift = int(np.clip(np.ceil(np.log2(2.0**12 / scale.min())), 0, 31)) - int(rng.integers(0, 4))
    shift = max(shift, 0)
    while True:
        mul = np.round(scale * 2.0**shift) * np.where(neg, -1, 1)
        mul = np.where(mul == 0, 1, mul)
        start = np.where(neg, hi, lo)
        add = np.round(-start * mul + rng.uniform(-0.5, 0.5, n) * 2.0**shift)
        if shift == 0 or max(np.abs(mul).max(), np.abs(add).max()) < 2.0**31 - 1:
            break
        shift -= 1
    layer.mul = np.clip(mul, -(2**31), 2**31 - 1).astype(np.int32)
    layer.add = np.clip(add, -(2**31), 2**31 - 1).astype(np.int32)
    layer.shift = shift


def _fit_stage(rng, layer, acc: np.ndarray) -> None:
    """Choose thresholds/affine/requant parameters from the observed accumulator distribution
    (CONV, AVGPOOL or ADD layers; acc (..., C))."""
    n = acc.shape[-1]
    flat = acc.reshape(-1, n)
    if layer.out == "REQUANT":
        _fit_requant(rng, layer, flat)
        return
    if getattr(layer, "w_enc", "") == "F32":  # float32 thresholds at observed values (ties exercise >= / <=)
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


# --------------------------------------------------------------------------------------------
# blob 1.1: random DAGs


INT_W_ENCS = ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16")


class _DagBuilder:
    """Grows a Graph layer by layer on a calibration batch, fitting every output stage to the
    accumulators it actually sees (refnet semantics), so thresholds and REQUANT ranges split."""

    def __init__(self, rng, g: Graph, calib: np.ndarray):
        self.rng, self.g = rng, g
        enc, levels = input_enc(g)
        self.vals = [[preprocess(g, x) for x in calib]]
        self.kind = [(enc, levels)]

    def shape(self, v: int) -> tuple:
        return self.vals[v][0].shape

    def enc(self, v: int) -> str:
        return self.kind[v][0]

    def emit(self, layer) -> int:
        """Append layer, fit its stage, run it on the batch; returns its value id."""
        self.g.layers.append(layer)
        s = infer_shapes(self.g)[-1]
        ins = [self.vals[v] for v in s.src]
        if isinstance(layer, Conv):
            accs = [conv_acc(layer, a, s.in_enc) for a in ins[0]]
        elif isinstance(layer, AvgPool):
            accs = [avgpool_acc(layer, a) for a in ins[0]]
        elif isinstance(layer, Add):
            accs = [add_acc(layer, a, b) for a, b in zip(*ins)]
        else:
            accs = None
        if accs is not None:
            _fit_stage(self.rng, layer, np.stack(accs))
            outs = [apply_stage(layer, acc) for acc in accs]
        elif isinstance(layer, MaxPool):
            outs = [maxpool(layer, a) for a in ins[0]]
        elif isinstance(layer, Concat):
            outs = [np.concatenate([a, b], axis=2) for a, b in zip(*ins)]
        else:
            outs = [a.reshape(1, 1, -1) for a in ins[0]]
        self.vals.append(outs)
        self.kind.append((s.out_enc, s.out_levels))
        return len(self.vals) - 1

    # ---- layer makers ----------------------------------------------------------------------
    def stage(self, layer, outs=("SIGN", "MULTI", "REQUANT")):
        out = str(self.rng.choice(outs))
        if out == "REQUANT" and getattr(layer, "w_enc", "") == "F32":
            out = "MULTI"
        layer.out = out
        if out in ("MULTI", "REQUANT"):
            layer.out_bits = int(self.rng.integers(1, 9 if out == "REQUANT" else 4))
        return layer

    def geometry(self, v: int, one_d: bool, same: bool = False):
        """(kh, kw, sh, sw, ph, pw) for a conv on value v; same: output H, W = input H, W."""
        rng = self.rng
        h, w, _ = self.shape(v)
        if same:
            kh = 1 if one_d or h == 1 else int(rng.choice([1, 3]))
            kw = int(rng.choice([1, 3, 5])) if w >= 3 else 1
            return kh, kw, 1, 1, kh // 2, kw // 2
        kh = 1 if one_d or h == 1 else int(rng.integers(1, min(h, 3) + 1))
        kw = int(rng.integers(1, min(w, 5 if one_d else 3) + 1))
        sh = 1 if kh == 1 and h == 1 else int(rng.choice([1, 1, 2]))
        sw = int(rng.choice([1, 1, 2]))
        kmax = max(kh, kw)
        ph = 0 if one_d or h == 1 else int(rng.integers(0, kmax))
        pw = int(rng.integers(0, kmax))
        return kh, kw, sh, sw, ph, pw

    def conv(self, v: int, n: int | None = None, groups: int | None = None, geo=None,
             outs=("SIGN", "MULTI", "REQUANT"), w_enc: str | None = None, one_d: bool = False,
             name: str = "") -> Conv:
        rng = self.rng
        _, _, c = self.shape(v)
        if groups is None:
            divs = [d for d in range(2, c + 1) if c % d == 0]
            pick = rng.random()
            groups = 1 if pick < 0.4 or not divs else c if pick < 0.75 else int(rng.choice(divs))
        if n is None:
            n = groups * int(rng.choice([1, 2])) if groups > 1 else int(rng.choice([3, 8, 16, 33, 40]))
        kh, kw, sh, sw, ph, pw = geo if geo is not None else self.geometry(v, one_d)
        w_enc = w_enc or str(rng.choice(INT_W_ENCS + ("F32",)))
        wbits = int(rng.integers(1, 9))
        layer = Conv(_weights(rng, w_enc, (n, kh, kw, c // groups), wbits), w_enc, "SIGN", stride=sh, pad=ph,
                     stride_w=sw if sw != sh else None, pad_w=pw if pw != ph else None, groups=groups,
                     src=(v,), name=name)
        if w_enc == "KBIT":
            layer.wbits = wbits
            layer.lut = rng.integers(-7, 8, (1 << wbits, max(self.kind[v][1], 2))).astype(np.int32)
        return self.stage(layer, outs)


def random_dag(rng, kind: str | None = None, n_classes: int | None = None, max_blocks: int = 5,
               one_d: bool | None = None) -> Graph:
    """A random valid blob-1.1 Graph, its stages fitted on a random calibration batch.

    rng: np.random.Generator or an int seed. kind: 'dag' (residual ADDs, CONCAT branches, an
    occasional unread branch), 'seq11' (one chain using 1.1 features: groups, non-square
    stride/pad, AVGPOOL, REQUANT, non-square MAXPOOL), 'seq10' (a 1.0-style chain:
    random_graph) or None (random, mostly 'dag'). Weight encodings cover B1, TERN, TERN_SPARSE,
    KBIT, I8, I16 and F32, with groups (depthwise and grouped) on each; one_d (None: random)
    makes the input (C, 1, W) with kernels and padding along W only. Inputs stay small (at most
    3 x 12 x 12) so every runtime runs them quickly."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    if kind is None:
        kind = str(rng.choice(["dag", "dag", "dag", "seq11", "seq10"]))
    if kind == "seq10":
        return random_graph(int(rng.integers(0, 2**31)), "small", n_classes or 10)
    if kind not in ("dag", "seq11"):
        raise ValueError(f"kind must be 'dag', 'seq11', 'seq10' or None, got {kind!r}")
    one_d = bool(rng.random() < 0.25) if one_d is None else one_d
    c = int(rng.choice([1, 2, 3]))
    h, w = (1, int(rng.integers(12, 33))) if one_d else (int(rng.integers(5, 13)), int(rng.integers(5, 13)))
    pre = str(rng.choice(["THRESH", "RAW", "QUANT"]))
    pre_param = {"THRESH": int(rng.integers(60, 200)), "RAW": 0, "QUANT": int(rng.integers(1, 5))}[pre]
    g = Graph((c, h, w), pre, pre_param, [])
    b = _DagBuilder(rng, g, rng.integers(0, 256, (6, c, h, w)).astype(np.uint8))
    dag = kind == "dag"
    x = b.emit(b.conv(0, groups=1, one_d=one_d, name="stem"))
    deck = ["res", "cat", "dw", "avg", "max", "conv", "dead"] if dag else ["conv", "dw", "avg", "max"]
    deck = [str(d) for d in rng.permutation(deck)]  # distinct block kinds first, then repeats
    for blk in range(int(rng.integers(2, max_blocks + 1))):
        hh, ww, cc = b.shape(x)
        choice = deck[blk % len(deck)]
        if choice in ("avg", "max") and (hh < 2 and ww < 2):
            choice = "conv"
        if choice == "conv":
            x = b.emit(b.conv(x, one_d=one_d, name=f"conv{blk}"))
        elif choice == "dw":  # depthwise (every encoding), then a pointwise conv
            x = b.emit(b.conv(x, groups=cc, n=cc * int(rng.choice([1, 2])), one_d=one_d, name=f"dw{blk}"))
            x = b.emit(b.conv(x, groups=1, geo=(1, 1, 1, 1, 0, 0), name=f"pw{blk}"))
        elif choice == "res":  # y = conv(conv(x)) same shape; x + y (the inner stage may be AFFINE)
            y = b.emit(b.conv(x, n=cc, geo=b.geometry(x, one_d, same=True), name=f"res{blk}a"))
            if rng.random() < 0.5:
                y = b.emit(b.conv(y, n=cc, geo=b.geometry(y, one_d, same=True),
                                  outs=("SIGN", "MULTI", "REQUANT", "AFFINE"), name=f"res{blk}b"))
            big = rng.random() < 0.2
            m = rng.integers(-2**30, 2**30 + 1, (2, cc)) if big else rng.integers(-4, 5, (2, cc))
            pair = (x, y) if rng.random() < 0.7 else (y, x)
            x = b.emit(b.stage(Add(m.astype(np.int32), src=pair, name=f"add{blk}")))
        elif choice == "cat":  # two branches of the same geometry and output encoding
            geo = b.geometry(x, one_d)
            outs = [("SIGN",), ("MULTI", "REQUANT"), ("AFFINE",)][int(rng.integers(0, 3))]
            a1 = b.emit(b.conv(x, geo=geo, outs=outs, name=f"cat{blk}a"))
            a2 = b.emit(b.conv(x, geo=geo, outs=outs, name=f"cat{blk}b"))
            x = b.emit(Concat(src=(a1, a2) if rng.random() < 0.7 else (a2, a2), name=f"cat{blk}"))
            if outs == ("AFFINE",):  # I32 values: max-pool them, then back to codes (AVGPOOL REQUANT)
                hh, ww, _ = b.shape(x)
                if min(hh, ww) >= 2 or (hh == 1 and ww >= 2):
                    x = b.emit(MaxPool(1 if hh == 1 else 2, 1, kw=2, src=(x,), name=f"max{blk}"))
                x = b.emit(b.stage(AvgPool(1, 1, 1, src=(x,), name=f"rq{blk}"), ("REQUANT", "SIGN")))
        elif choice == "dead":  # a branch nobody reads, then the chain goes on from x
            b.emit(b.conv(x, name=f"dead{blk}"))
            x = b.emit(b.conv(x, one_d=one_d, name=f"conv{blk}"))
        elif choice == "avg":
            kh = 1 if hh == 1 else int(rng.integers(1, min(hh, 3) + 1))
            kw = int(rng.integers(1, min(ww, 3) + 1))
            x = b.emit(b.stage(AvgPool(kh, kw, int(rng.integers(1, 3)), stride_w=int(rng.integers(1, 3)),
                                       src=(x,), name=f"avg{blk}")))
        else:
            kh = 1 if hh == 1 else int(rng.integers(1, min(hh, 3) + 1))
            kw = int(rng.integers(1, min(ww, 3) + 1))
            x = b.emit(MaxPool(kh, int(rng.integers(1, 3)), kw=kw, stride_w=int(rng.integers(1, 3)),
                               src=(x,), name=f"max{blk}"))
    n_cls = n_classes or int(rng.integers(2, 11))
    hh, ww, cc = b.shape(x)
    head = str(rng.choice(["dense", "gap"]))
    if head == "gap" and b.enc(x) != "I32":  # global average pool, then a 1x1 conv
        x = b.emit(b.stage(AvgPool(hh, ww, 1, src=(x,), name="gap")))
    if b.enc(x) == "I32":  # an AFFINE result cannot feed a CONV: requantize it first
        x = b.emit(b.stage(AvgPool(1, 1, 1, src=(x,), name="requant"), ("REQUANT",)))
    hh, ww, cc = b.shape(x)
    w_enc = str(rng.choice(INT_W_ENCS + ("F32",)))
    b.emit(b.conv(x, n=n_cls, groups=1, geo=(hh, ww, 1, 1, 0, 0), outs=("AFFINE",), w_enc=w_enc,
                  name="head"))
    g.classes = [f"c{i}" for i in range(n_cls)]
    if not dag:  # a sequential chain: src () everywhere
        for layer in g.layers:
            layer.src = ()
    infer_shapes(g)
    return g
