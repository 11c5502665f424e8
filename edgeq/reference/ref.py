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
def conv2d_ref(act, act_enc, weight_values, w_enc, stride: int = 1, pad: int = 0, lut=None):
    """Accumulators of a CONV layer, int32 (out_h, out_w, N).

    act: (H, W, C) activation *values*: B1 -> +-1 (any int dtype; >= 0 is read as +1),
    U8 -> codes 0..255. weight_values: (N, kh, kw, C): B1 -> +-1, TERN / TERN_SPARSE -> {-1,0,1},
    I8 -> int8, KBIT -> codes (then ``lut`` (2**wbits, 2**abits) int gives the products
    ``lut[w][a]``, with a = the B1 bit 0/1 or the U8 code). Taps outside the input contribute 0.
    """
    ae, we = _enc(act_enc), _enc(w_enc)
    a = np.asarray(act).astype(np.int64)
    w = np.asarray(weight_values).astype(np.int64)
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


def affine_f32_ref(acc, mul, add):
    """floor((acc * mul) + add) with float32 roundings, saturated to int32."""
    t = np.asarray(acc, np.float32) * np.asarray(mul, np.float32)
    t = t + np.asarray(add, np.float32)
    return np.clip(np.floor(t.astype(np.float64)), -(2**31), 2**31 - 1).astype(np.int32)


def eq_conv2d_row(act, act_enc, weight_values, w_enc, stride, pad, oy, lut=None):
    """Row ``oy`` of conv2d_ref: int32 (out_w, N)."""
    return conv2d_ref(act, act_enc, weight_values, w_enc, stride, pad, lut)[oy]


# ---- output stages ---------------------------------------------------------------------------
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
