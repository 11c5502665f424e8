"""Export a trained `edgeq.models.QNet` to the integer IR (`edgeq.graph.Graph`), exactly.

Folding (per block, eval mode; `fold`):
  real pre-activation  z_n = acc_n * s_in * s_w[n]       (acc = integer accumulator of the layer:
                                                           sum of integer weight values times
                                                           integer input levels)
  batch norm           y_n = g_n * z_n + h_n              (`quant.bn_affine_terms`)
                         = a_n * acc_n + b_n,  a_n = g_n * s_in * s_w[n],  b_n = h_n
  quantizer            code = #{i : y >= t_i}             (t = act.thresholds; sign: t = [0])
  => integer thresholds on acc: a_n > 0: acc >= ceil((t_i - b_n) / a_n)
                                a_n < 0: acc <= floor((t_i - b_n) / a_n)  (flip = 1)
                                a_n = 0: constant (thr = INT32_MIN or INT32_MAX, flip = 0)
  last block (AFFINE): y = (acc * mul + add) >> shift, mul = round(a_n * 2**P / max|a|),
                       add = round(b_n * 2**P / max|a|) with P chosen so |acc*mul + add| < 2**30.
  float layers ('float' quantizer -> F32): acc is the float32 sum of the runtimes (fixed tap
  order, one rounding per operation); thresholds (t_i - b_n) / a_n and AFFINE mul/add
  a_n * 2**P / max|a|, b_n * 2**P / max|a| are float32, scores floor(acc * mul + add).

Weight encodings: integer values +-1 -> B1; -1/0/1 -> TERN or TERN_SPARSE (whichever is smaller:
pruned zeros become skip-zero data); int8 -> I8, int16 -> I16; k-bit codes -> KBIT with
lut[code][a] = table[code] * level_in[a].  When the input levels are not the codes themselves
(HWGQ Lloyd-Max fixed-point levels), every weight goes through a KBIT LUT so products stay exact.

`int_forward` is the same integer computation in torch; `QNet.eval()` uses it, so the blob and
the torch eval forward agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import bits as B
from .errors import UnsupportedError
from .graph import Conv, Graph, MaxPool, infer_shapes
from .quant import bn_affine_terms

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


@dataclass
class FoldedBlock:
    values: np.ndarray  # int64 (N, C, kh, kw) integer weight values
    w_enc: str
    codes: np.ndarray | None  # KBIT codes (N, C, kh, kw)
    lut: np.ndarray | None
    wbits: int
    stride: int
    pad: int
    out: str
    thr: np.ndarray | None = None
    flip: np.ndarray | None = None
    out_bits: int = 0
    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    shift: int = 0
    pool: int = 0
    in_levels: np.ndarray | None = None  # integer value of each input code
    out_levels: np.ndarray | None = None  # integer value of each output code (SIGN: [-1, 1])
    name: str = ""


def _thresholds(a: np.ndarray, b: np.ndarray, t: np.ndarray, f32: bool = False):
    """Thresholds (N, L) and flip (N,) for y = a*acc + b >= t_i (see module docstring): int64
    on an integer accumulator, float32 on an F32 layer's float accumulator."""
    a = a[:, None]
    b = b[:, None]
    t = np.asarray(t, np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (t - b) / a
    flip = a[:, 0] < 0
    if f32:  # a == 0: constant channel, -inf (always on) or +inf (never)
        return np.where(a != 0, r, np.where(b >= t, -np.inf, np.inf)).astype(np.float32), flip
    const = np.where(b >= t, I32_MIN, I32_MAX).astype(np.float64)
    thr = np.where(a > 0, np.ceil(r), np.where(a < 0, np.floor(r), const))
    thr = np.clip(np.nan_to_num(thr, nan=I32_MAX, posinf=I32_MAX, neginf=I32_MIN), I32_MIN, I32_MAX)
    return thr.astype(np.int64), flip


def _encode_weights(iw, in_enc: str, in_levels: np.ndarray, identity_levels: bool):
    """Choose the IR weight encoding; returns (w_enc, codes, lut, wbits)."""
    v = iw.values
    if iw.kind != "KBIT" and (in_enc == "B1" or identity_levels):
        if iw.kind == "B1":
            return "B1", None, None, 0
        if iw.kind == "TERN":
            n = v.shape[0]
            wt = np.transpose(v, (0, 2, 3, 1))
            planes = B.tern_planes(wt).nbytes
            ro, nib = B.sparse_encode(wt.reshape(n, -1))
            sparse = len(B.sparse_to_bytes(ro, nib))
            return ("TERN_SPARSE" if sparse < planes else "TERN"), None, None, 0
        if iw.kind in ("I8", "I16", "F32"):
            return iw.kind, None, None, 0
    if iw.kind == "F32":
        raise UnsupportedError("a float (F32) layer needs B1 or uniform U8 input codes; keep it "
                               "first, or after a uniform activation quantizer")
    if iw.kind == "I16":
        raise UnsupportedError("int16 weights need B1 or uniform U8 input codes (a table of up to "
                               "65536 values cannot be a KBIT lut); use int8 for this layer")
    if iw.kind == "KBIT":
        table, codes, wbits = iw.table, iw.codes.astype(np.int64), iw.wbits
    else:
        table = np.unique(v)
        wbits = max(1, int(np.ceil(np.log2(len(table)))))
        codes = np.searchsorted(table, v)
        table = np.concatenate([table, np.zeros((1 << wbits) - len(table), np.int64)])
    lvl = np.array([-1, 1], np.int64) if in_enc == "B1" else in_levels
    lut = table.astype(np.int64)[:, None] * lvl[None, :]
    return "KBIT", codes.astype(np.uint8), lut, wbits


def fold(model) -> list:
    """Fold a QNet (its current parameters, eval-mode statistics) into integer FoldedBlocks."""
    pre = model.pre
    in_enc, in_levels, s_in = pre.enc, pre.levels_int, pre.scale
    out = []
    for i, blk in enumerate(model.blocks):
        conv = blk.conv
        if conv.bias is not None:
            raise UnsupportedError("QConv2d with bias is not exported; let batch norm carry it")
        with torch.no_grad():
            iw = conv.wq.integer(conv.weight)
        ident = in_enc == "U8" and np.array_equal(in_levels, np.arange(len(in_levels)))
        w_enc, codes, lut, wbits = _encode_weights(iw, in_enc, in_levels, ident)
        g, h = bn_affine_terms(blk.bn)
        a = g * s_in * iw.scale
        b = h.astype(np.float64)
        fb = FoldedBlock(iw.values, w_enc, codes, lut, wbits, int(conv.stride[0]), int(conv.padding[0]),
                         "", pool=int(blk.pool), in_levels=in_levels, name=f"block{i}")
        act = blk.act
        if act is None:
            if i != len(model.blocks) - 1:
                raise UnsupportedError("only the last block may have no activation quantizer")
            fb.out = "AFFINE"
            amax = float(np.abs(a).max()) or 1.0
            lv_max = int(np.abs(in_levels).max())
            bound = float(np.abs(iw.values).reshape(len(a), -1).sum(1).max()) * lv_max
            bmax = float(np.abs(b).max()) / amax
            p = 20
            while p > 0 and (bound + bmax + 1) * 2**p >= 2**30:
                p -= 1
            if w_enc == "F32":  # scores floor(acc * mul + add), float32 mul/add, no shift
                fb.mul = (a / amax * 2 ** min(p, 12)).astype(np.float32)
                fb.add = (b / amax * 2 ** min(p, 12)).astype(np.float32)
                out.append(fb)
                break
            fb.mul = np.round(a / amax * 2**p).astype(np.int64)
            fb.add = np.round(b / amax * 2**p).astype(np.int64)
            fb.shift = max(0, p - 12)
            out.append(fb)
            break
        thr, flip = _thresholds(a, b, act.thresholds, f32=w_enc == "F32")
        fb.flip = flip
        if act.enc == "B1":
            fb.out, fb.thr = "SIGN", thr[:, 0]
            fb.out_levels = np.array([-1, 1], np.int64)
            in_enc, in_levels, s_in = "B1", fb.out_levels, 1.0
        else:
            fb.out, fb.thr, fb.out_bits = "MULTI", thr, act.bits
            fb.out_levels = act.levels_int
            in_enc, in_levels, s_in = "U8", act.levels_int, act.scale
        out.append(fb)
    return out


def to_graph(model, meta: dict | None = None) -> Graph:
    """The exported Graph of a QNet (see module docstring)."""
    layers = []
    for fb in fold(model):
        w = np.transpose(fb.codes if fb.w_enc == "KBIT" else fb.values, (0, 2, 3, 1))
        w = np.ascontiguousarray(w.astype({"KBIT": np.uint8, "I16": np.int16, "F32": np.float32}
                                          .get(fb.w_enc, np.int8)))
        f32 = fb.w_enc == "F32"
        kw = {"weight": w, "w_enc": fb.w_enc, "out": fb.out, "stride": fb.stride, "pad": fb.pad, "name": fb.name}
        if fb.w_enc == "KBIT":
            kw.update(lut=fb.lut.astype(np.int32), wbits=fb.wbits)
        pt = np.float32 if f32 else np.int32
        if fb.out == "AFFINE":
            kw.update(mul=fb.mul.astype(pt), add=fb.add.astype(pt), shift=fb.shift)
        else:
            kw.update(thr=fb.thr.astype(pt), flip=fb.flip.astype(bool), out_bits=fb.out_bits)
        layers.append(Conv(**kw))
        if fb.pool:
            layers.append(MaxPool(k=fb.pool, stride=fb.pool, name=fb.name + "_pool"))
    m = {"arch": model.arch, "config": model.config, "image_shape": list(model.pre.image_shape)}
    m.update(meta or {})
    g = Graph(input_shape=tuple(model.pre.graph_input_shape), pre_mode=model.pre.mode,
              pre_param=model.pre.param if model.pre.mode != "RAW" else 0, layers=layers,
              classes=list(model.classes), meta=m)
    # ternary: skip-zero stream or bit-planes, whichever is smaller in the stored form (dense
    # layers are stored as FLATTEN + 1x1 CONV, without per-tap word padding)
    from .pack import best_ternary_encoding

    for layer, s in zip(g.layers, infer_shapes(g)):
        if isinstance(layer, Conv) and layer.w_enc in ("TERN", "TERN_SPARSE"):
            h, w, _ = s.in_shape
            dense = layer.pad == 0 and (layer.kh, layer.kw) == (h, w)
            wt = layer.weight.reshape(layer.n_out, 1, 1, -1) if dense else layer.weight
            layer.w_enc = best_ternary_encoding(wt)
    return g


def graph_input(model, px: np.ndarray) -> np.ndarray:
    """Raw uint8 images (N, C, H, W) -> the graph's input shape (only differs for Pre(flatten=True))."""
    px = np.asarray(px, np.uint8)
    return px.reshape((len(px),) + tuple(model.pre.graph_input_shape))


@torch.no_grad()
def int_forward(model, px, return_accs: bool = False, folded: list | None = None):
    """Exact integer forward in torch: scores (N, n_classes) float64 holding integers.

    return_accs=True also returns the list of int64 accumulators (N, N_out, OH, OW) per block."""
    folded = folded if folded is not None else fold(model)
    px = torch.as_tensor(np.asarray(px)) if not torch.is_tensor(px) else px
    dev = px.device
    lv = torch.as_tensor(model.pre.levels_int, dtype=torch.float64, device=dev)
    x = lv[model.pre.codes(px)]
    accs = []
    for fb in folded:
        f32 = fb.w_enc == "F32"
        if f32:
            acc = _f32_conv(x, fb)
        else:
            w = torch.as_tensor(fb.values, dtype=torch.float64, device=dev)
            acc = torch.round(F.conv2d(x, w, stride=fb.stride, padding=fb.pad)).to(torch.long)
        accs.append(acc)
        if fb.out == "AFFINE":
            mul = torch.as_tensor(fb.mul, device=dev).view(1, -1, 1, 1)
            add = torch.as_tensor(fb.add, device=dev).view(1, -1, 1, 1)
            if f32:  # floor(acc * mul + add), each operation rounded to float32
                y = torch.floor((acc * mul.float() + add.float()).to(torch.float64))
            else:
                y = torch.div(acc * mul + add, 2**fb.shift, rounding_mode="floor")
            x = y.clamp(I32_MIN, I32_MAX).to(torch.float64)
        else:
            thr = np.asarray(fb.thr, np.float32 if f32 else np.int64).reshape(len(fb.flip), -1)
            thr = torch.as_tensor(thr, device=dev)  # (N, L)
            flip = torch.as_tensor(fb.flip, device=dev).view(1, -1, 1, 1, 1)
            t = thr.view(1, thr.shape[0], 1, 1, thr.shape[1])
            a5 = acc.unsqueeze(-1)
            code = torch.where(flip, a5 <= t, a5 >= t).sum(-1)
            olv = torch.as_tensor(fb.out_levels, dtype=torch.float64, device=dev)
            x = olv[code]
        if fb.pool:
            x = F.max_pool2d(x, fb.pool)
    # scores in HWC flatten order (the runtime's)
    scores = x.permute(0, 2, 3, 1).reshape(len(x), -1)
    return (scores, accs) if return_accs else scores


def _f32_conv(x: torch.Tensor, fb: FoldedBlock) -> torch.Tensor:
    """The runtimes' float32 accumulator: from +0, taps in (ky, kx, c) order, acc = acc + (a * w),
    one float32 rounding per operation (zero-padded taps add a zero product: no change)."""
    w = torch.as_tensor(np.asarray(fb.values, np.float32), device=x.device)  # (N, C, kh, kw)
    n, c, kh, kw = w.shape
    xp = F.pad(x, (fb.pad, fb.pad, fb.pad, fb.pad)).to(torch.float32)
    oh = (x.shape[2] + 2 * fb.pad - kh) // fb.stride + 1
    ow = (x.shape[3] + 2 * fb.pad - kw) // fb.stride + 1
    acc = torch.zeros((x.shape[0], n, oh, ow), dtype=torch.float32, device=x.device)
    s = fb.stride
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s]  # (B, C, oh, ow)
            for ch in range(c):
                prod = patch[:, ch:ch + 1] * w[:, ch, ky, kx].view(1, n, 1, 1)
                acc = acc + prod
    return acc


def accs_hwc(accs: list, index: int) -> list:
    """Per-block accumulators of one image in the refnet layout (OH, OW, N) int64 numpy."""
    return [a[index].permute(1, 2, 0).cpu().numpy() for a in accs]


def export_blob(model, meta: dict | None = None) -> bytes:
    """Graph -> blob bytes via edgeq.pack."""
    from . import pack

    model.eval()
    return pack.write_blob(to_graph(model, meta))
