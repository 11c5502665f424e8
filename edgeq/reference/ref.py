"""Plain numpy references of the C kernels, one per kernel and with the kernel's name.

They work on *unpacked* values (+-1 or 0/1 arrays, ternary int8, k-bit codes), never on packed
words: the tests pack, run C, unpack and compare against these. Semantics are those of
docs/blob-format.md; integer results are exact (int64 inside, int32 out).

``conv2d_ref`` is the whole-layer convolution the numpy network reference (edgeq/reference/refnet.py) uses.
"""

from __future__ import annotations

import numpy as np

from ..format import bits as _bits
from .. import spec as _spec

__all__ = [
    "conv2d_ref",
    "eq_conv2d_row",
    "eq_threshold_sign_b1",
    "eq_threshold_multi_u8",
    "eq_affine_i32",
    "eq_maxpool_b1",
    "eq_maxpool_u8",
    "eq_maxpool_i32",
    "eq_pack_threshold_chw_b1",
    "eq_unpack_wire_chw_b1",
    "eq_quant_chw_u8",
    "eq_pack_wire_chw_b1",
    "eq_argmax_i32",
    "eq_gemm_xnor_b1b1",
    "eq_gemm_tern_b1",
    "eq_gemm_tern_sparse_i8",
    "eq_gemm_i8",
    "eq_gemm_lut_u8",
    "eq_gemm_f32",
    "eq_conv3x3_wino_f23_f32",
    "eq_conv3x3_im2col_f32",
    "eq_conv_wino_f32",
    "eq_pack_signs_i8_b1",
    "eq_pack_tern_i8",
    "eq_sparse_encode_i8",
]


def _enc(e) -> str:
    """Accept an encoding as a name ("B1") or its spec value; return the name."""
    if isinstance(e, str):
        return e.upper()
    return _spec.name_of(_spec.ENC, int(e))


def _i32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.size and (x.max() > np.iinfo(np.int32).max or x.min() < np.iinfo(np.int32).min):
        raise OverflowError("accumulator does not fit int32")
    return x.astype(np.int32)


# ---- convolution ---------------------------------------------------------------------------
def conv2d_ref(act, act_enc, weight_values, w_enc, stride=1, pad=0, lut=None, groups: int = 1):
    """Accumulators of a CONV layer, int32 (out_h, out_w, N).

    stride, pad: an int or a (vertical, horizontal) pair. groups: weights (N, kh, kw, C/groups);
    output channel n reads input channels [gi*C/g, (gi+1)*C/g), gi = n // (N/g).

    act: (H, W, C) activation *values*: B1 -> +-1 (any int dtype; >= 0 is read as +1),
    U8 -> codes 0..255. weight_values: (N, kh, kw, C): B1 -> +-1, TERN / TERN_SPARSE -> {-1,0,1},
    I8 -> int8, KBIT -> codes (then ``lut`` (2**wbits, 2**abits) int gives the products
    ``lut[w][a]``, with a = the B1 bit 0/1 or the U8 code). Taps outside the input contribute 0.
    """
    ae, we = _enc(act_enc), _enc(w_enc)
    a = np.asarray(act).astype(np.int64)
    w = np.asarray(weight_values).astype(np.int64)
    if groups != 1:
        n, g = w.shape[0], int(groups)
        ng, cg = n // g, a.shape[2] // g
        return np.concatenate([conv2d_ref(a[..., gi * cg:(gi + 1) * cg], act_enc, w[gi * ng:(gi + 1) * ng],
                                          w_enc, stride, pad, lut) for gi in range(g)], axis=2)
    if not np.isscalar(stride) or not np.isscalar(pad):
        return _conv2d_ref_axes(a, ae, w, we, stride, pad, lut)
    if a.ndim != 3 or w.ndim != 4 or a.shape[2] != w.shape[3]:
        raise ValueError(f"conv2d_ref: act (H,W,C) {a.shape} and weights (N,kh,kw,C) {w.shape}")
    if ae == "B1":
        a = np.where(a >= 0, 1, -1) if we != "KBIT" else (a >= 0).astype(np.int64)
    elif ae != "U8":
        raise ValueError(f"conv2d_ref: activation encoding {ae} is not B1 or U8")
    h, wd, c = a.shape
    n, kh, kw, _ = w.shape
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    ap = np.zeros((h + 2 * pad, wd + 2 * pad, c), np.int64)
    ap[pad:pad + h, pad:pad + wd] = a
    valid = np.zeros((h + 2 * pad, wd + 2 * pad), bool)
    valid[pad:pad + h, pad:pad + wd] = True
    acc = np.zeros((oh, ow, n), np.int64)
    if we == "KBIT":
        if lut is None:
            raise ValueError("conv2d_ref: KBIT weights need a lut")
        lut = np.asarray(lut).astype(np.int64)
    for ky in range(kh):
        for kx in range(kw):
            sl = (slice(ky, ky + stride * (oh - 1) + 1, stride),
                  slice(kx, kx + stride * (ow - 1) + 1, stride))
            patch = ap[sl]  # (oh, ow, C)
            m = valid[sl][..., None]  # (oh, ow, 1)
            wt = w[:, ky, kx, :]  # (N, C)
            if we == "KBIT":
                prod = lut[wt[None, None, :, :], patch[:, :, None, :]].sum(-1)  # (oh, ow, N)
                acc += np.where(m, prod, 0)
            else:
                acc += patch @ wt.T  # zero padded taps contribute 0 already
    return _i32(acc)


def _conv2d_ref_axes(a, ae, w, we, stride, pad, lut):
    """conv2d_ref with per-axis stride / pad ((sh, sw), (ph, pw)): a direct loop over taps."""
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (pad, pad) if np.isscalar(pad) else pad
    if ae == "B1":
        a = np.where(a >= 0, 1, -1) if we != "KBIT" else (a >= 0).astype(np.int64)
    h, wd, c = a.shape
    n, kh, kw, _ = w.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    acc = np.zeros((oh, ow, n), np.int64)
    lut = None if lut is None else np.asarray(lut).astype(np.int64)
    for ky in range(kh):
        for kx in range(kw):
            ys, xs = np.arange(oh) * sh + ky - ph, np.arange(ow) * sw + kx - pw
            ok = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < wd))[None, :]
            patch = a[np.clip(ys, 0, h - 1)[:, None], np.clip(xs, 0, wd - 1)[None, :]]  # (oh, ow, C)
            wt = w[:, ky, kx, :]
            prod = lut[wt[None, None], patch[:, :, None, :]].sum(-1) if we == "KBIT" else patch @ wt.T
            acc += np.where(ok[..., None], prod, 0)
    return _i32(acc)


def conv2d_f32_ref(act, act_enc, weight, stride=1, pad=0, groups: int = 1):
    """F32-weight CONV accumulators, float32 (out_h, out_w, N): from +0.0, for each in-bounds tap
    in (ky, kx, c) order (c over the output channel's group of C/groups input channels),
    acc = acc + (a * w), every operation rounded to float32. stride and pad: an int or a
    (vertical, horizontal) pair."""
    ae = _enc(act_enc)
    a = np.asarray(act).astype(np.int64)
    if ae == "B1":
        a = np.where(a >= 0, 1, -1)
    w = np.asarray(weight, np.float32)
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (pad, pad) if np.isscalar(pad) else pad
    h, wd, c = a.shape
    n, kh, kw, cg = w.shape
    ng = n // groups
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    acc = np.zeros((oh, ow, n), np.float32)
    ys0, xs0 = np.arange(oh) * sh - ph, np.arange(ow) * sw - pw
    for gi in range(groups):
        wg = w[gi * ng:(gi + 1) * ng]
        part = acc[..., gi * ng:(gi + 1) * ng]
        for ky in range(kh):
            for kx in range(kw):
                ys, xs = ys0 + ky, xs0 + kx
                ok = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < wd))[None, :]
                for cl in range(cg):
                    av = a[np.clip(ys, 0, h - 1)[:, None], np.clip(xs, 0, wd - 1)[None, :], gi * cg + cl]
                    prod = av.astype(np.float32)[..., None] * wg[None, None, :, ky, kx, cl]
                    part = np.where(ok[..., None], part + prod, part)  # skipped taps add nothing
        acc[..., gi * ng:(gi + 1) * ng] = part
    return acc


_F32_HALF = np.float32(0.5)


def wino_f23_weight_f32(weight):
    """U = G g G^T of F32 weights (N, 3, 3, C) -> (N, 4, 4, C) float32, every operation rounded
    to float32 in this order (docs/blob-format.md, "F32 Winograd"): rows first (over ky, for each
    kx): u0 = g0, u1 = 0.5 * ((g0 + g1) + g2), u2 = 0.5 * ((g0 - g1) + g2), u3 = g2; then the same
    over kx on each of the 4 rows."""
    g = np.asarray(weight, np.float32)

    def tr(a0, a1, a2):
        return (a0, _F32_HALF * ((a0 + a1) + a2), _F32_HALF * ((a0 - a1) + a2), a2)

    rows = tr(g[:, 0], g[:, 1], g[:, 2])  # 4 x (N, 3, C): kx, c
    return np.stack([np.stack(tr(r[:, 0], r[:, 1], r[:, 2]), axis=1) for r in rows], axis=1)


def conv2d_f32_wino_ref(act, act_enc, weight):
    """F32-weight 3x3 CONV, stride 1, pad 1, by Winograd F(2x2, 3x3) (blob LFLAG_WINO_F23):
    float32 accumulators (H, W, N). Output tile (ty, tx) covers outputs rows 2ty, 2ty+1 and
    columns 2tx, 2tx+1 (those inside); its input d (4, 4) is a[2ty - 1 + r, 2tx - 1 + s] (0
    outside the input). V = B^T d B exactly on the integer values (+-1 for B1, codes for U8):
    rows v0 = d0 - d2, v1 = d1 + d2, v2 = d2 - d1, v3 = d1 - d3, then the same on columns.
    U = wino_f23_weight_f32(weight). M = +0.0, then for each input channel c in order
    M = fl(M + fl(U[c] * V[c])) elementwise. Y = A^T M A: rows y0 = (m0 + m1) + m2,
    y1 = (m1 - m2) - m3, then the same on columns, each operation rounded to float32."""
    ae = _enc(act_enc)
    a = np.asarray(act).astype(np.int64)
    if ae == "B1":
        a = np.where(a >= 0, 1, -1)
    h, wd, c = a.shape
    u = wino_f23_weight_f32(weight)  # (N, 4, 4, C)
    n = u.shape[0]
    th, tw = (h + 1) // 2, (wd + 1) // 2
    ap = np.zeros((2 * th + 2, 2 * tw + 2, c), np.int64)
    ap[1:h + 1, 1:wd + 1] = a
    ys = (2 * np.arange(th))[:, None] + np.arange(4)[None, :]  # (th, 4)
    xs = (2 * np.arange(tw))[:, None] + np.arange(4)[None, :]
    d = ap[ys[:, None, :, None], xs[None, :, None, :]]  # (th, tw, 4, 4, C)

    def bt(d0, d1, d2, d3):
        return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)

    t = np.stack(bt(d[:, :, 0], d[:, :, 1], d[:, :, 2], d[:, :, 3]), axis=2)  # rows
    v = np.stack(bt(t[:, :, :, 0], t[:, :, :, 1], t[:, :, :, 2], t[:, :, :, 3]), axis=3)
    v = v.astype(np.float32)  # exact: |v| <= 4 * 255
    m = np.zeros((th, tw, 4, 4, n), np.float32)
    for ch in range(c):  # channel order, one float32 rounding per product and per sum
        m = m + u[None, None, :, :, :, ch].transpose(0, 1, 3, 4, 2) * v[..., ch, None]
    r0 = (m[:, :, 0] + m[:, :, 1]) + m[:, :, 2]  # (th, tw, 4, N)
    r1 = (m[:, :, 1] - m[:, :, 2]) - m[:, :, 3]
    y = np.empty((th, 2, tw, 2, n), np.float32)
    for r, row in enumerate((r0, r1)):
        y[:, r, :, 0] = (row[:, :, 0] + row[:, :, 1]) + row[:, :, 2]
        y[:, r, :, 1] = (row[:, :, 1] - row[:, :, 2]) - row[:, :, 3]
    return np.ascontiguousarray(y.reshape(2 * th, 2 * tw, n)[:h, :wd])


eq_conv_wino_f32 = conv2d_f32_wino_ref


def affine_f32_ref(acc, mul, add):
    """floor((acc * mul) + add) with float32 roundings, saturated to int32."""
    t = np.asarray(acc, np.float32) * np.asarray(mul, np.float32)
    t = t + np.asarray(add, np.float32)
    return np.clip(np.floor(t.astype(np.float64)), -(2**31), 2**31 - 1).astype(np.int32)


def eq_conv2d_row(act, act_enc, weight_values, w_enc, stride, pad, oy, lut=None):
    """Row ``oy`` of conv2d_ref: int32 (out_w, N)."""
    return conv2d_ref(act, act_enc, weight_values, w_enc, stride, pad, lut)[oy]


# ---- output stages ---------------------------------------------------------------------------
def eq_conv2d_row_grouped(act, act_enc, weight_values, w_enc, stride, pad, groups, oy, lut=None):
    """Row ``oy`` of a grouped conv (conv2d_ref with groups; F32 weights: conv2d_f32_ref)."""
    if _enc(w_enc) == "F32":
        return conv2d_f32_ref(act, act_enc, weight_values, stride, pad, groups)[oy]
    return conv2d_ref(act, act_enc, weight_values, w_enc, stride, pad, lut, groups)[oy]


def eq_requant_u8(acc, mul, add, shift, out_bits):
    """REQUANT stage: clamp(((int64)acc * mul + add) >> shift, 0, 2**out_bits - 1) -> uint8,
    the shift arithmetic (floor)."""
    v = np.asarray(acc, np.int64) * np.asarray(mul, np.int64) + np.asarray(add, np.int64)
    return np.clip(v >> int(shift), 0, (1 << int(out_bits)) - 1).astype(np.uint8)


def eq_threshold_sign_b1(acc, thr, flip):
    """acc (n_pix, c) -> bits uint8 0/1 (n_pix, c): flip ? acc <= thr : acc >= thr."""
    acc = np.asarray(acc, np.int64)
    thr = np.asarray(thr, np.int64)
    flip = np.asarray(flip).astype(bool)
    return np.where(flip, acc <= thr, acc >= thr).astype(np.uint8)


def eq_threshold_multi_u8(acc, thr, flip):
    """acc (n_pix, c), thr (c, n_thr) -> codes uint8 (n_pix, c) = #{i: flip ? acc <= t : acc >= t}."""
    acc = np.asarray(acc, np.int64)[..., None]
    thr = np.asarray(thr, np.int64)[None]
    flip = np.asarray(flip).astype(bool)[None, :, None]
    return np.where(flip, acc <= thr, acc >= thr).sum(-1).astype(np.uint8)


def eq_affine_i32(acc, mul, add, shift):
    """sat32(((int64)acc * mul + add) >> shift), shift arithmetic (floor)."""
    v = np.asarray(acc, np.int64) * np.asarray(mul, np.int64) + np.asarray(add, np.int64)
    v = v >> int(shift)
    return np.clip(v, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)


# ---- pooling ----------------------------------------------------------------------------------
def _maxpool(x, k, stride):
    x = np.asarray(x)
    h, w = x.shape[:2]
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = None
    for dy in range(k):
        for dx in range(k):
            v = x[dy:dy + stride * (oh - 1) + 1:stride, dx:dx + stride * (ow - 1) + 1:stride]
            out = v.copy() if out is None else np.maximum(out, v)
    return out


def eq_maxpool_b1(x, k, stride):
    """x (h, w, c) of +-1 (or 0/1 bits) -> max over k x k windows (OR of the bits)."""
    return _maxpool(x, k, stride)


def eq_maxpool_u8(x, k, stride):
    return _maxpool(np.asarray(x, np.uint8), k, stride)


def eq_maxpool_i32(x, k, stride):
    return _maxpool(np.asarray(x, np.int32), k, stride)


# ---- input preparation -------------------------------------------------------------------------
def eq_pack_threshold_chw_b1(pix, thr):
    """pix (c, h, w) uint8 -> bits (h, w, c) uint8 0/1, bit = pix >= thr."""
    return (np.asarray(pix).transpose(1, 2, 0) >= thr).astype(np.uint8)


def eq_unpack_wire_chw_b1(wire, c, h, w):
    """wire bytes (CHW bits, LSB first) -> bits (h, w, c) uint8 0/1."""
    b = np.unpackbits(np.frombuffer(bytes(wire), np.uint8), bitorder="little")[: c * h * w]
    return b.reshape(c, h, w).transpose(1, 2, 0).copy()


def eq_quant_chw_u8(pix, bits):
    """pix (c, h, w) uint8 -> codes (h, w, c) = (pix * (2**bits - 1) + 127) // 255."""
    p = np.asarray(pix, np.int64).transpose(1, 2, 0)
    levels = 255 if bits >= 8 else (1 << bits) - 1
    return ((p * levels + 127) // 255).astype(np.uint8)


def eq_pack_wire_chw_b1(pix, thr):
    """pix (any shape, CHW order) -> wire bytes."""
    return _bits.pack_wire(pix, thr)


def eq_argmax_i32(x):
    """First index of the maximum; 0 for an empty vector."""
    x = np.asarray(x)
    return int(np.argmax(x)) if x.size else 0


# ---- GEMMs -------------------------------------------------------------------------------------
def eq_gemm_xnor_b1b1(a, b):
    """a (M, K), b (N, K) of +-1 -> int32 a @ b.T."""
    return _i32(np.asarray(a, np.int64) @ np.asarray(b, np.int64).T)


def eq_gemm_tern_b1(a, w):
    """a (M, K) +-1, w (N, K) in {-1, 0, 1} -> int32 a @ w.T."""
    return _i32(np.asarray(a, np.int64) @ np.asarray(w, np.int64).T)


def eq_gemm_tern_sparse_i8(a, w):
    """a (M, K) int8, w (N, K) in {-1, 0, 1} -> int32 a @ w.T."""
    return _i32(np.asarray(a, np.int64) @ np.asarray(w, np.int64).T)


def eq_gemm_i8(a, w):
    """a (M, K) int8, w (N, K) int8 -> int32 a @ w.T."""
    return _i32(np.asarray(a, np.int64) @ np.asarray(w, np.int64).T)


def eq_gemm_lut_u8(a, w, lut):
    """a (M, K) codes, w (N, K) codes, lut (rows, cols) -> int32 out[m, n] = sum_k lut[w[n,k], a[m,k]]."""
    a = np.asarray(a, np.int64)
    w = np.asarray(w, np.int64)
    lut = np.asarray(lut, np.int64)
    out = np.empty((a.shape[0], w.shape[0]), np.int64)
    for n in range(w.shape[0]):
        out[:, n] = lut[w[n][None, :], a].sum(axis=1)
    return _i32(out)


def eq_gemm_f32(a, b):
    """a (M, K) @ b (K, N) in float64."""
    return np.asarray(a, np.float64) @ np.asarray(b, np.float64)


def _conv3x3_direct(x, w):
    """Float64 3x3 cross-correlation, stride 1, zero pad 1: (C,H,W), (K,C,3,3) -> (K,H,W)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    c, h, wd = x.shape
    xp = np.zeros((c, h + 2, wd + 2))
    xp[:, 1:-1, 1:-1] = x
    out = np.zeros((w.shape[0], h, wd))
    for ky in range(3):
        for kx in range(3):
            out += np.einsum("kc,chw->khw", w[:, :, ky, kx], xp[:, ky:ky + h, kx:kx + wd])
    return out


def eq_conv3x3_wino_f23_f32(x, w):
    """Exact (float64) value the Winograd kernel approximates: 3x3 conv, stride 1, pad 1."""
    return _conv3x3_direct(x, w)


def eq_conv3x3_im2col_f32(x, w):
    return _conv3x3_direct(x, w)


# ---- packing --------------------------------------------------------------------------------
def eq_pack_signs_i8_b1(x):
    """x (rows, k) -> (rows, words(k)) uint32, bit = x >= 0."""
    return _bits.pack_signs(np.asarray(x))


def eq_pack_tern_i8(w):
    """w (rows, k) in {-1, 0, 1} -> (rows, 2 * words(k)) TERN planes."""
    return _bits.tern_planes(np.asarray(w))


def eq_sparse_encode_i8(w):
    """w (rows, k) in {-1, 0, 1} -> TERN_SPARSE bytes."""
    return _bits.sparse_to_bytes(*_bits.sparse_encode(np.asarray(w)))
