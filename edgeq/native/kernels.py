"""numpy convenience wrappers around the C kernels: validate -> pack -> call C -> unpack.

Hot GEMMs go through the host dispatcher (``eq_host_*``), which runs the best SIMD variant the
CPU supports; ``variants()`` lists them and ``use_variant(name)`` forces one (also as a context
manager), so tests can check every compiled variant against ``edgeq.reference.ref``.

Inputs are checked here (dtype, shape, value range) and raise ShapeError / KernelError naming the
problem and the fix; a non-OK C status becomes KernelError.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..format import bits as _bits
from .. import spec as _spec
from ..errors import KernelError, ShapeError
from .runtime import check, native

__all__ = [
    "variants",
    "current_variant",
    "use_variant",
    "pack_signs",
    "pack_ternary",
    "sparse_encode",
    "xnor_gemm",
    "ternary_gemm",
    "ternary_gemm_b1",
    "dense_i8_gemm",
    "lut_gemm",
    "gemm_f32",
    "winograd_conv3x3",
    "im2col_conv3x3",
    "winograd_conv3x3_i8",
    "use_winograd_i8",
    "conv2d",
    "binary_conv2d",
    "threshold_sign",
    "threshold_multi",
    "affine",
    "requant",
    "maxpool_bits",
    "maxpool",
    "pack_threshold",
    "pack_wire",
    "unpack_wire",
    "quantize_input",
    "argmax",
]

_OK = _spec.value(_spec.STATUS, "OK")


def _lib():
    n = native()  # the one cffi loader (runtime.native)
    return n.ffi, n.lib


def _check(status: int, what: str) -> None:
    if status != _OK:
        check(status, f"{what} failed")


def _ptr(ffi, ctype: str, arr: np.ndarray):
    return ffi.cast(ctype, ffi.from_buffer(arr))


# ---- variants --------------------------------------------------------------------------------
# CPU features each variant needs (host/eq_dispatch.c checks them with __builtin_cpu_supports)
REQUIRES = {"portable": "nothing", "popcnt": "POPCNT", "avx2": "AVX2, POPCNT, FMA",
            "avx512": "AVX2, FMA, AVX-512 F, BW, VL, VPOPCNTDQ, VNNI"}


def variants() -> list[dict]:
    """Compiled kernel variants: [{"index", "name", "supported", "requires"}], portable first."""
    ffi, lib = _lib()
    out = []
    for i in range(lib.eq_host_variant_count()):
        name = ffi.string(lib.eq_host_variant_name(i)).decode()
        out.append({"index": i, "name": name, "supported": bool(lib.eq_host_variant_supported(i)),
                    "requires": REQUIRES.get(name, "?")})
    return out


def current_variant() -> str:
    ffi, lib = _lib()
    return ffi.string(lib.eq_host_variant_name(lib.eq_host_get_variant())).decode()


def _set_variant(name: str | None) -> None:
    ffi, lib = _lib()
    if name is None or name == "auto":
        _check(lib.eq_host_set_variant(-1), "eq_host_set_variant")
        return
    for v in variants():
        if v["name"] == name:
            if not v["supported"]:
                raise KernelError(f"variant {name!r} is compiled in but this CPU cannot run it")
            _check(lib.eq_host_set_variant(v["index"]), "eq_host_set_variant")
            return
    names = ", ".join(v["name"] for v in variants())
    raise KernelError(f"unknown kernel variant {name!r}; compiled variants: {names}")


@contextlib.contextmanager
def _variant_ctx(previous: int):
    try:
        yield
    finally:
        _lib()[1].eq_host_set_variant(previous)


def use_variant(name: str | None):
    """Force kernel variant `name` ("portable", "avx2", ...; None/"auto" = best supported).

    Takes effect immediately; the return value is a context manager that restores the previous
    variant on exit, so both ``use_variant("portable")`` and ``with use_variant("portable"):``
    work. The selection is process-wide (not thread-local)."""
    previous = _lib()[1].eq_host_get_variant()
    _set_variant(name)
    return _variant_ctx(previous)


# ---- validation helpers ------------------------------------------------------------------------
def _arr(x, name: str, ndim: int, kinds: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.dtype.kind not in kinds:
        raise KernelError(f"{name} has dtype {x.dtype}; expected {_kinds(kinds)} (use .astype)")
    return x


def _kinds(kinds: str) -> str:
    return {"i": "signed integers", "u": "unsigned integers", "iu": "integers",
            "f": "floats", "fiu": "numbers"}.get(kinds, kinds)


def _int8(x: np.ndarray, name: str, lo: int = -128, hi: int = 127) -> np.ndarray:
    if x.size and (x.min() < lo or x.max() > hi):
        raise KernelError(f"{name} has values outside [{lo}, {hi}] (min {x.min()}, max {x.max()})")
    return np.ascontiguousarray(x, dtype=np.int8)


def _u32(n: int, name: str) -> int:
    if n < 0 or n >= 2**31:
        raise ShapeError(f"{name} = {n} is out of range")
    return int(n)


def _same_k(a: np.ndarray, b: np.ndarray, an: str, bn: str) -> int:
    if a.shape[1] != b.shape[1]:
        raise ShapeError(
            f"{an} has K={a.shape[1]} columns but {bn} has K={b.shape[1]}; both must be (., K)"
        )
    return a.shape[1]


def _pm1(x: np.ndarray, name: str) -> None:
    if x.size and not np.isin(x, (-1, 1)).all():
        raise KernelError(f"{name} must hold only -1 and +1 (use np.where(x >= 0, 1, -1))")


def _tern(x: np.ndarray, name: str) -> np.ndarray:
    if x.size and (x.min() < -1 or x.max() > 1):
        raise KernelError(f"{name} must hold only -1, 0 and +1 (ternary weights)")
    return np.ascontiguousarray(x, np.int8)


# ---- packing -----------------------------------------------------------------------------------
def pack_signs(x) -> np.ndarray:
    """(rows, K) int8 -> (rows, words(K)) uint32 packed signs (bit = x >= 0), in C."""
    x = _int8(_arr(x, "x", 2, "iu"), "x")
    ffi, lib = _lib()
    out = np.empty((x.shape[0], _bits.words(x.shape[1])), np.uint32)
    lib.eq_pack_signs_i8_b1(_ptr(ffi, "int8_t *", x), x.shape[0], x.shape[1],
                            _ptr(ffi, "uint32_t *", out))
    return out


def pack_ternary(w) -> np.ndarray:
    """(rows, K) in {-1,0,1} -> (rows, 2*words(K)) uint32 TERN planes, in C."""
    w = _tern(_arr(w, "w", 2, "iu"), "w")
    ffi, lib = _lib()
    out = np.empty((w.shape[0], 2 * _bits.words(w.shape[1])), np.uint32)
    _check(lib.eq_pack_tern_i8(_ptr(ffi, "int8_t *", w), w.shape[0], w.shape[1],
                               _ptr(ffi, "uint32_t *", out)), "eq_pack_tern_i8")
    return out


def sparse_encode(w) -> np.ndarray:
    """(rows, K) in {-1,0,1} -> TERN_SPARSE bytes (uint8 array), as bits.sparse_to_bytes, in C."""
    w = _tern(_arr(w, "w", 2, "iu"), "w")
    ffi, lib = _lib()
    nbytes = ffi.new("uint32_t *")
    _check(lib.eq_sparse_encode_i8(_ptr(ffi, "int8_t *", w), w.shape[0], w.shape[1], ffi.NULL, 0,
                                   nbytes), "eq_sparse_encode_i8")
    out = np.zeros((nbytes[0] + 3) & ~3, np.uint8)  # whole words: row_off is read as uint32
    _check(lib.eq_sparse_encode_i8(_ptr(ffi, "int8_t *", w), w.shape[0], w.shape[1],
                                   _ptr(ffi, "uint8_t *", out), out.size, nbytes),
           "eq_sparse_encode_i8")
    return out[: nbytes[0]]


def sparse_words(enc) -> np.ndarray:
    """TERN_SPARSE bytes in a 4-byte aligned uint32 buffer (the kernels read row_off as words)."""
    enc = np.frombuffer(enc, np.uint8) if isinstance(enc, (bytes, bytearray)) else np.asarray(enc)
    buf = np.zeros((enc.size + 3) // 4, np.uint32)
    buf.view(np.uint8)[: enc.size] = enc.view(np.uint8).reshape(-1)
    return buf


def _pack_pm1(x: np.ndarray, name: str) -> np.ndarray:
    """(rows, K) integers in {-1, +1} -> packed sign words, checked and packed in one C pass
    (eq_host_pack_pm1_i8_b1) for int8 input; other integer dtypes are range-checked first."""
    if x.dtype != np.int8:
        _pm1(x, name)
    x = np.ascontiguousarray(x, np.int8)
    ffi, lib = _lib()
    out = np.empty((x.shape[0], _bits.words(x.shape[1])), np.uint32)
    if lib.eq_host_pack_pm1_i8_b1(_ptr(ffi, "int8_t *", x), x.shape[0], x.shape[1],
                                  _ptr(ffi, "uint32_t *", out)) != _OK:
        _pm1(x, name)  # names the problem
    return out


# ---- GEMMs -------------------------------------------------------------------------------------
def xnor_gemm(a, b) -> np.ndarray:
    """a (M, K), b (N, K) int8 in {-1, +1} -> int32 (M, N) = a @ b.T by XNOR-popcount.
    Validation and packing run in C (one pass over each operand)."""
    a = _arr(a, "a", 2, "iu")
    b = _arr(b, "b", 2, "iu")
    k = _same_k(a, b, "a", "b")
    ap, bp = _pack_pm1(a, "a"), _pack_pm1(b, "b")
    ffi, lib = _lib()
    out = np.empty((a.shape[0], b.shape[0]), np.int32)
    _check(lib.eq_host_gemm_xnor_b1b1(_ptr(ffi, "uint32_t *", ap), _ptr(ffi, "uint32_t *", bp),
                                      a.shape[0], b.shape[0], _u32(k, "k"),
                                      _ptr(ffi, "int32_t *", out)), "eq_gemm_xnor_b1b1")
    return out


def _bit_gemm_packed(name: str, ap, bp, k: int, planes: int) -> np.ndarray:
    """eq_host_<name> on packed rows: ap (M, words(k)), bp (N, planes * words(k)) uint32."""
    ap = np.ascontiguousarray(_arr(ap, "ap", 2, "u"), np.uint32)
    bp = np.ascontiguousarray(_arr(bp, "bp", 2, "u"), np.uint32)
    kw = _bits.words(k)
    if ap.shape[1] != kw or bp.shape[1] != planes * kw:
        raise ShapeError(f"need packed rows of (M, {kw}) and (N, {planes * kw}) words(k)={kw} "
                         f"words, got {ap.shape}, {bp.shape}")
    ffi, lib = _lib()
    out = np.empty((ap.shape[0], bp.shape[0]), np.int32)
    _check(getattr(lib, f"eq_host_{name}")(_ptr(ffi, "uint32_t *", ap), _ptr(ffi, "uint32_t *", bp),
                                           ap.shape[0], bp.shape[0], _u32(k, "k"),
                                           _ptr(ffi, "int32_t *", out)), f"eq_{name}")
    return out


def xnor_gemm_packed(ap, bp, k: int) -> np.ndarray:
    """Packed form: ap (M, words(k)), bp (N, words(k)) uint32 -> int32 (M, N)."""
    return _bit_gemm_packed("gemm_xnor_b1b1", ap, bp, k, 1)


def ternary_gemm_b1(a, w) -> np.ndarray:
    """Binary activations x ternary weights on bit planes: a (M, K) in {-1,+1}, w (N, K) in
    {-1,0,1} -> int32 (M, N) = a @ w.T."""
    a = _arr(a, "a", 2, "iu")
    w = _arr(w, "w", 2, "iu")
    k = _same_k(a, w, "a", "w")
    return ternary_gemm_b1_packed(_pack_pm1(a, "a"), pack_ternary(w), k)


def ternary_gemm_b1_packed(ap, wp, k: int) -> np.ndarray:
    """Packed form: ap (M, words(k)) signs, wp (N, 2*words(k)) TERN planes -> int32 (M, N)."""
    return _bit_gemm_packed("gemm_tern_b1", ap, wp, k, 2)


def ternary_gemm(a, w) -> np.ndarray:
    """Skip-zero ternary GEMM: a (M, K) int8 (any values), w (N, K) in {-1, 0, 1} ->
    int32 (M, N) = a @ w.T, touching only the nonzero weights."""
    a = _int8(_arr(a, "a", 2, "iu"), "a")
    w = _arr(w, "w", 2, "iu")
    k = _same_k(a, w, "a", "w")
    return ternary_gemm_sparse(a, sparse_encode(w), w.shape[0], k)


def ternary_gemm_sparse(a, wbytes, n: int, k: int) -> np.ndarray:
    """Encoded form: a (M, K) int8, wbytes = TERN_SPARSE bytes of an (n, k) matrix."""
    a = _int8(_arr(a, "a", 2, "iu"), "a")
    if a.shape[1] != k:
        raise ShapeError(f"a has K={a.shape[1]} columns, the sparse weights K={k}")
    wb = np.asarray(wbytes if not isinstance(wbytes, (bytes, bytearray)) else
                    np.frombuffer(wbytes, np.uint8))
    buf = sparse_words(wb)
    ffi, lib = _lib()
    m = a.shape[0]
    size = lib.eq_gemm_tern_sparse_i8_scratch_size(m, k)
    scratch = np.empty((size + 3) // 4, np.uint32)
    out = np.empty((m, n), np.int32)
    _check(lib.eq_host_gemm_tern_sparse_i8(
        _ptr(ffi, "int8_t *", a), _ptr(ffi, "uint8_t *", buf), wb.size, m, _u32(n, "n"),
        _u32(k, "k"), _ptr(ffi, "void *", scratch), size, _ptr(ffi, "int32_t *", out)),
        "eq_gemm_tern_sparse_i8")
    return out


def dense_i8_gemm(a, w) -> np.ndarray:
    """Dense int8 baseline: a (M, K) int8, w (N, K) int8 -> int32 (M, N) = a @ w.T."""
    a = _int8(_arr(a, "a", 2, "iu"), "a")
    w = _int8(_arr(w, "w", 2, "iu"), "w")
    _same_k(a, w, "a", "w")
    ffi, lib = _lib()
    out = np.empty((a.shape[0], w.shape[0]), np.int32)
    _check(lib.eq_host_gemm_i8(_ptr(ffi, "int8_t *", a), _ptr(ffi, "int8_t *", w), a.shape[0],
                               w.shape[0], a.shape[1], _ptr(ffi, "int32_t *", out)), "eq_gemm_i8")
    return out


def lut_gemm(a, w, lut) -> np.ndarray:
    """Multiplier-free k-bit GEMM: a (M, K) uint8 codes < lut.shape[1], w (N, K) uint8 codes
    < lut.shape[0], lut int32 (2**wbits, 2**abits) -> int32 (M, N) = sum_k lut[w[n,k], a[m,k]]."""
    a = _arr(a, "a", 2, "iu")
    w = _arr(w, "w", 2, "iu")
    lut = _arr(lut, "lut", 2, "iu")
    _same_k(a, w, "a", "w")
    if not (1 <= lut.shape[0] <= 256 and 1 <= lut.shape[1] <= 256):
        raise ShapeError(f"lut must be (rows, cols) with 1..256 each, got {lut.shape}")
    if a.size and (a.min() < 0 or a.max() >= lut.shape[1]):
        raise KernelError(f"activation codes must be in [0, {lut.shape[1]}) (lut columns)")
    if w.size and (w.min() < 0 or w.max() >= lut.shape[0]):
        raise KernelError(f"weight codes must be in [0, {lut.shape[0]}) (lut rows)")
    if lut.size and (lut.min() < -(2**31) or lut.max() >= 2**31):
        raise KernelError("lut values must fit int32")
    a = np.ascontiguousarray(a, np.uint8)
    w = np.ascontiguousarray(w, np.uint8)
    lut = np.ascontiguousarray(lut, np.int32)
    ffi, lib = _lib()
    out = np.empty((a.shape[0], w.shape[0]), np.int32)
    _check(lib.eq_host_gemm_lut_u8(_ptr(ffi, "uint8_t *", a), _ptr(ffi, "uint8_t *", w),
                                   _ptr(ffi, "int32_t *", lut), lut.shape[0], lut.shape[1],
                                   a.shape[0], w.shape[0], a.shape[1],
                                   _ptr(ffi, "int32_t *", out)), "eq_gemm_lut_u8")
    return out


def gemm_f32(a, b) -> np.ndarray:
    """a (M, K) @ b (K, N) in float32 through the kernel GEMM (the one Winograd/im2col use)."""
    a = np.ascontiguousarray(_arr(a, "a", 2, "fiu"), np.float32)
    b = np.ascontiguousarray(_arr(b, "b", 2, "fiu"), np.float32)
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"a is {a.shape} and b is {b.shape}: need (M, K) @ (K, N)")
    ffi, lib = _lib()
    out = np.empty((a.shape[0], b.shape[1]), np.float32)
    _check(lib.eq_host_gemm_f32(_ptr(ffi, "float *", a), _ptr(ffi, "float *", b), a.shape[0],
                                b.shape[1], a.shape[1], _ptr(ffi, "float *", out)), "eq_gemm_f32")
    return out


def _conv3x3_args(x, w):
    x = np.ascontiguousarray(_arr(x, "x", 3, "fiu"), np.float32)
    w = np.ascontiguousarray(_arr(w, "w", 4, "fiu"), np.float32)
    if w.shape[1] != x.shape[0] or w.shape[2:] != (3, 3):
        raise ShapeError(f"need x (C, H, W) and w (K, C, 3, 3); got {x.shape} and {w.shape}")
    if min(x.shape) < 1 or w.shape[0] < 1:
        raise ShapeError(f"empty convolution: x {x.shape}, w {w.shape}")
    return x, w


def winograd_conv3x3(x, w) -> np.ndarray:
    """3x3 conv, stride 1, zero pad 1, by Winograd F(2x2,3x3): x float32 (C, H, W),
    w (K, C, 3, 3) -> float32 (K, H, W) (cross-correlation, like torch conv2d)."""
    x, w = _conv3x3_args(x, w)
    c, h, wd = x.shape
    k = w.shape[0]
    ffi, lib = _lib()
    size = lib.eq_conv3x3_wino_f23_f32_scratch_size(c, h, wd, k)
    scratch = np.empty(size // 4, np.float32)
    out = np.empty((k, h, wd), np.float32)
    _check(lib.eq_host_conv3x3_wino_f23_f32(_ptr(ffi, "float *", x), _ptr(ffi, "float *", w), c,
                                            h, wd, k, _ptr(ffi, "void *", scratch), size,
                                            _ptr(ffi, "float *", out)), "eq_conv3x3_wino_f23_f32")
    return out


def im2col_conv3x3(x, w) -> np.ndarray:
    """Same as winograd_conv3x3 by im2col + the same float GEMM (the baseline)."""
    x, w = _conv3x3_args(x, w)
    c, h, wd = x.shape
    k = w.shape[0]
    ffi, lib = _lib()
    size = lib.eq_conv3x3_im2col_f32_scratch_size(c, h, wd)
    scratch = np.empty(size // 4, np.float32)
    out = np.empty((k, h, wd), np.float32)
    _check(lib.eq_host_conv3x3_im2col_f32(_ptr(ffi, "float *", x), _ptr(ffi, "float *", w), c, h,
                                          wd, k, _ptr(ffi, "void *", scratch), size,
                                          _ptr(ffi, "float *", out)), "eq_conv3x3_im2col_f32")
    return out


def winograd_conv3x3_i8(x, w) -> np.ndarray:
    """Integer Winograd F(2x2,3x3) of the host executor (host/eq_wino_i8.c), on the selected
    variant: x uint8 (N, H, W, C) or (H, W, C) codes, w int8 (K, 3, 3, C) -> int32 (N, H, W, K)
    (or (H, W, K)), stride 1, zero pad 1: exactly the direct sums (edgeq.reference.ref.conv2d_ref
    with U8 x I8). C <= EQ_HWINO_MAX_C (1827)."""
    one = np.ndim(x) == 3
    x = _arr(x, "x", 3 if one else 4, "u")
    x = np.ascontiguousarray(x[None] if one else x, np.uint8)
    w = _int8(_arr(w, "w", 4, "i"), "w")
    b, h, wd, c = x.shape
    k = w.shape[0]
    if w.shape[1:] != (3, 3, c):
        raise ShapeError(f"need x (N, H, W, C) and w (K, 3, 3, C); got {x.shape} and {w.shape}")
    if min(x.shape) < 1 or k < 1:
        raise ShapeError(f"empty convolution: x {x.shape}, w {w.shape}")
    ffi, lib = _lib()
    if c > lib.EQ_HWINO_MAX_C:
        raise ShapeError(f"C = {c} input channels: integer Winograd takes at most "
                         f"{lib.EQ_HWINO_MAX_C} (4 * acc must fit int32); use conv2d")
    size = lib.eq_host_conv3x3_wino_i8_scratch(b, h, wd, c, k)
    if not size:
        raise ShapeError(f"x {x.shape}, w {w.shape}: too large for integer Winograd")
    scratch = np.empty(size, np.uint8)
    out = np.empty((b, h, wd, k), np.int32)
    _check(lib.eq_host_conv3x3_wino_i8(_ptr(ffi, "uint8_t *", x), _ptr(ffi, "int8_t *", w), b, h,
                                       wd, c, k, _ptr(ffi, "void *", scratch), size,
                                       _ptr(ffi, "int32_t *", out)), "eq_host_conv3x3_wino_i8")
    return out[0] if one else out


@contextlib.contextmanager
def _wino_ctx(previous: int):
    try:
        yield
    finally:
        _lib()[1].eq_host_set_wino_i8(previous)


def use_winograd_i8(mode):
    """When the host executor runs U8 x I8 3x3 stride-1 pad-1 layers through integer Winograd:
    "auto" (or None: the measured per-variant rule eq_host_wino_i8_worth), "never" or "always"
    (wherever it applies). Process-wide; the return value also restores the previous mode as a
    context manager."""
    modes = {None: -1, "auto": -1, "never": 0, "always": 1}
    if mode not in modes:
        raise KernelError(f"Winograd mode {mode!r} is not one of 'auto', 'never', 'always'")
    lib = _lib()[1]
    previous = lib.eq_host_get_wino_i8()
    _check(lib.eq_host_set_wino_i8(modes[mode]), "eq_host_set_wino_i8")
    return _wino_ctx(previous)


# ---- convolution (portable runtime kernel) ----------------------------------------------------
_ENC_OK = {"B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16"}


def _pair(v, what: str) -> tuple:
    """an int or a (vertical, horizontal) pair -> (v_h, v_w)"""
    if np.isscalar(v):
        return int(v), int(v)
    if len(v) != 2:
        raise ShapeError(f"{what} must be an int or a (vertical, horizontal) pair, got {v!r}")
    return int(v[0]), int(v[1])


def _conv_geometry(act_shape, w_shape, stride, pad, groups: int = 1):
    """(h, w, c, n, kh, kw, out_h, out_w, (sh, sw), (ph, pw)) of a conv, or a ShapeError naming
    what does not fit. stride / pad: an int or a (vertical, horizontal) pair."""
    h, wd, c = act_shape
    n, kh, kw, wc = w_shape
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(pad, "pad")
    if groups < 1 or c % groups or n % groups:
        raise ShapeError(f"groups={groups} must divide C={c} and N={n}")
    if wc * groups != c:
        raise ShapeError(f"act has C={c} channels but the weights (N, kh, kw, C/groups) have {wc}"
                         + (f" (groups={groups})" if groups > 1 else ""))
    if min(sh, sw) < 1 or min(ph, pw) < 0 or (np.isscalar(pad) and (ph >= kh or pw >= kw)) \
            or max(ph, pw) >= max(kh, kw):
        raise ShapeError(f"need stride >= 1 and 0 <= pad < kernel size (stride {stride}, pad {pad})")
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1 or h + 2 * ph < kh or wd + 2 * pw < kw:
        raise ShapeError(f"kernel {kh}x{kw} does not fit the padded input {h}x{wd} (pad {pad})")
    if max(h, wd, c, n, oh, ow) > 65535 or max(kh, kw, sh, sw, ph, pw) > 254:
        raise ShapeError("dims must fit the runtime's uint16 (kernel/stride/pad: uint8) fields")
    return h, wd, c, n, kh, kw, oh, ow, (sh, sw), (ph, pw)


def _conv_shape(ffi, h, wd, c, n, kh, kw, oh, ow, st, pd):
    """eq_conv_shape_t; stride_w / pad_w stored as in the blob (0 = the same as stride / pad)"""
    return ffi.new("eq_conv_shape_t *", dict(in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=n,
                                             kh=kh, kw=kw, stride=st[0], pad=pd[0],
                                             stride_w=0 if st[1] == st[0] else st[1],
                                             pad_w=0 if pd[1] == pd[0] else pd[1] + 1))


def conv2d(act, act_enc, w, w_enc, stride=1, pad=0, lut=None, groups: int = 1) -> np.ndarray:
    """Whole CONV layer through eq_conv2d_row (the runtime's kernel), row by row; groups > 1
    through eq_conv2d_row_grouped (w: (N, kh, kw, C/groups)). stride / pad: an int or a
    (vertical, horizontal) pair.

    act: (H, W, C) values (B1: +-1, U8: codes 0..255); w: (N, kh, kw, C) values (B1: +-1,
    TERN / TERN_SPARSE: {-1,0,1}, I8: int8, I16: int16, KBIT: codes with lut (rows, cols) int32).
    Returns int32 (out_h, out_w, N), equal to edgeq.reference.ref.conv2d_ref."""
    ae = act_enc.upper() if isinstance(act_enc, str) else _spec.name_of(_spec.ENC, act_enc)
    we = w_enc.upper() if isinstance(w_enc, str) else _spec.name_of(_spec.ENC, w_enc)
    act = _arr(act, "act", 3, "iu")
    w = _arr(w, "w", 4, "iu")
    if ae not in ("B1", "U8"):
        raise KernelError(f"activation encoding {ae} is not supported by conv2d (B1 or U8)")
    if we not in _ENC_OK:
        raise KernelError(f"weight encoding {we} is not one of {sorted(_ENC_OK)}")
    h, wd, c, n, kh, kw, oh, ow, st, pd = _conv_geometry(act.shape, w.shape, stride, pad, groups)
    ffi, lib = _lib()
    keep = []
    if ae == "B1":
        _pm1(act, "act")
        a_buf = _bits.pack_signs(act)  # (H, W, CW)
    else:
        if act.size and (act.min() < 0 or act.max() > 255):
            raise KernelError("U8 activations must be codes 0..255")
        a_buf = np.ascontiguousarray(act, np.uint8)
    lut_ptr, lr, lc = ffi.NULL, 0, 0
    if we == "B1":
        _pm1(w, "w")
        w_buf = _bits.pack_signs(w)
    elif we == "TERN":
        _tern(w, "w")
        w_buf = _bits.tern_planes(w)
    elif we == "TERN_SPARSE":
        _tern(w, "w")
        w_buf = sparse_words(sparse_encode(w.reshape(n, -1)))
    elif we == "I8":
        w_buf = _int8(w, "w")
    elif we == "I16":
        if w.size and (w.min() < -32768 or w.max() > 32767):
            raise KernelError("I16 weights must be in [-32768, 32767]")
        w_buf = np.ascontiguousarray(w, np.int16)
    else:  # KBIT
        if lut is None:
            raise KernelError("KBIT weights need a lut (2**wbits, 2**abits) int32")
        lut = np.ascontiguousarray(_arr(lut, "lut", 2, "iu"), np.int32)
        if not 1 <= lut.shape[0] <= 256:
            raise ShapeError(f"KBIT lut must have 1..256 rows (2**wbits), got {lut.shape[0]}")
        if w.size and (w.min() < 0 or w.max() >= lut.shape[0]):
            raise KernelError(f"KBIT weight codes must be in [0, {lut.shape[0]}) (lut rows)")
        acols = 2 if ae == "B1" else int(act.max(initial=0)) + 1
        if lut.shape[1] < acols:
            raise KernelError(f"lut has {lut.shape[1]} columns; activations need {acols}")
        # rows packed at the slot width the kernel derives from lut_rows (docs/blob-format.md)
        wbits = max(1, (lut.shape[0] - 1).bit_length())
        w_buf = np.frombuffer(_bits.pack_codes(w.reshape(n, -1).astype(np.uint8), wbits), "<u4").copy()
        lut_ptr, lr, lc = _ptr(ffi, "int32_t *", lut), lut.shape[0], lut.shape[1]
        keep.append(lut)
    shape = _conv_shape(ffi, h, wd, c, n, kh, kw, oh, ow, st, pd)
    wts = ffi.new("eq_weights_t *")
    wts.enc = _spec.value(_spec.ENC, we)
    wts.data = ffi.from_buffer(w_buf)
    wts.lut = lut_ptr
    wts.lut_rows, wts.lut_cols = lr, lc
    out = np.empty((oh, ow, n), np.int32)
    a_ptr = ffi.from_buffer(a_buf)
    for oy in range(oh):
        if groups == 1:
            _check(lib.eq_conv2d_row(shape, _spec.value(_spec.ENC, ae), a_ptr, wts, oy,
                                     _ptr(ffi, "int32_t *", out[oy])), "eq_conv2d_row")
        else:
            _check(lib.eq_conv2d_row_grouped(shape, groups, _spec.value(_spec.ENC, ae), a_ptr, wts, oy,
                                             _ptr(ffi, "int32_t *", out[oy])), "eq_conv2d_row_grouped")
    return out


def conv2d_f32(act, act_enc, w, stride=1, pad=0, groups: int = 1) -> np.ndarray:
    """F32-weight CONV layer through eq_conv2d_row_f32: act (H, W, C) values (B1 +-1 / U8 codes),
    w (N, kh, kw, C) float32 -> float32 (out_h, out_w, N), summed tap by tap in (ky, kx, c)
    order with one float32 rounding per product and per sum (equal bit for bit to
    edgeq.reference.ref.conv2d_f32_ref)."""
    ae = act_enc.upper() if isinstance(act_enc, str) else _spec.name_of(_spec.ENC, act_enc)
    act = _arr(act, "act", 3, "iu")
    w = np.ascontiguousarray(_arr(w, "w", 4, "iuf"), np.float32)
    if ae not in ("B1", "U8"):
        raise KernelError(f"activation encoding {ae} is not supported by conv2d_f32 (B1 or U8)")
    if not np.isfinite(w).all():
        raise KernelError("F32 weights must be finite")
    h, wd, c, n, kh, kw, oh, ow, st, pd = _conv_geometry(act.shape, w.shape, stride, pad, groups)
    ffi, lib = _lib()
    if ae == "B1":
        _pm1(act, "act")
        a_buf = _bits.pack_signs(act)
    else:
        if act.size and (act.min() < 0 or act.max() > 255):
            raise KernelError("U8 activations must be codes 0..255")
        a_buf = np.ascontiguousarray(act, np.uint8)
    shape = _conv_shape(ffi, h, wd, c, n, kh, kw, oh, ow, st, pd)
    out = np.empty((oh, ow, n), np.float32)
    a_ptr, w_ptr = ffi.from_buffer(a_buf), _ptr(ffi, "float *", w)
    wts = ffi.new("eq_weights_t *")
    wts.enc, wts.data = _spec.value(_spec.ENC, "F32"), w_ptr
    for oy in range(oh):
        if groups == 1:
            _check(lib.eq_conv2d_row_f32(shape, _spec.value(_spec.ENC, ae), a_ptr, w_ptr, oy,
                                         _ptr(ffi, "float *", out[oy])), "eq_conv2d_row_f32")
        else:
            _check(lib.eq_conv2d_row_grouped(shape, groups, _spec.value(_spec.ENC, ae), a_ptr, wts, oy,
                                             _ptr(ffi, "float *", out[oy])), "eq_conv2d_row_grouped")
    return out


def affine_f32(acc, mul, add) -> np.ndarray:
    """F32 AFFINE stage: acc (n_pix, c) float32 -> int32 floor(acc * mul + add), saturated."""
    acc = np.ascontiguousarray(_arr(acc, "acc", 2, "iuf"), np.float32)
    p, c = acc.shape
    mul = np.ascontiguousarray(np.asarray(mul, np.float32).reshape(c))
    add = np.ascontiguousarray(np.asarray(add, np.float32).reshape(c))
    ffi, lib = _lib()
    out = np.empty((p, c), np.int32)
    lib.eq_affine_f32_i32(_ptr(ffi, "float *", acc), p, c, _ptr(ffi, "float *", mul),
                          _ptr(ffi, "float *", add), _ptr(ffi, "int32_t *", out))
    return out


def binary_conv2d(act, w, stride: int = 1, pad: int = 0) -> np.ndarray:
    """B1 x B1 convolution: act (H, W, C) +-1, w (N, kh, kw, C) +-1 -> int32 (oh, ow, N)."""
    return conv2d(act, "B1", w, "B1", stride, pad)


# ---- output stages, pooling, input prep, argmax -------------------------------------------------
def _acc2(acc):
    acc = _arr(acc, "acc", 2, "iu")
    if acc.size and (acc.min() < -(2**31) or acc.max() >= 2**31):
        raise KernelError("acc values must fit int32")
    return np.ascontiguousarray(acc, np.int32)


def _flip(flip, c):
    flip = np.asarray(flip)
    if flip.shape != (c,):
        raise ShapeError(f"flip must have shape ({c},), got {flip.shape}")
    return np.ascontiguousarray(flip != 0, np.uint8)


def threshold_sign(acc, thr, flip) -> np.ndarray:
    """SIGN stage: acc (n_pix, c) int32 -> packed (n_pix, words(c)) uint32."""
    acc = _acc2(acc)
    p, c = acc.shape
    thr = np.ascontiguousarray(thr, np.int32)
    if thr.shape != (c,):
        raise ShapeError(f"thr must have shape ({c},), got {thr.shape}")
    flip = _flip(flip, c)
    ffi, lib = _lib()
    out = np.empty((p, _bits.words(c)), np.uint32)
    lib.eq_threshold_sign_b1(_ptr(ffi, "int32_t *", acc), p, c, _ptr(ffi, "int32_t *", thr),
                             _ptr(ffi, "uint8_t *", flip), _ptr(ffi, "uint32_t *", out))
    return out


def threshold_multi(acc, thr, flip) -> np.ndarray:
    """MULTI stage: acc (n_pix, c), thr (c, n_thr) -> codes uint8 (n_pix, c)."""
    acc = _acc2(acc)
    p, c = acc.shape
    thr = np.ascontiguousarray(thr, np.int32)
    if thr.ndim != 2 or thr.shape[0] != c or not 1 <= thr.shape[1] <= 255:
        raise ShapeError(f"thr must be ({c}, n_thr) with 1 <= n_thr <= 255, got {thr.shape}")
    flip = _flip(flip, c)
    ffi, lib = _lib()
    out = np.empty((p, c), np.uint8)
    lib.eq_threshold_multi_u8(_ptr(ffi, "int32_t *", acc), p, c, _ptr(ffi, "int32_t *", thr),
                              thr.shape[1], _ptr(ffi, "uint8_t *", flip),
                              _ptr(ffi, "uint8_t *", out))
    return out


def _acc_mul_add(acc, mul, add):
    """(acc int32 (p, c), p, c, mul int32 (c,), add int32 (c,)) of an AFFINE / REQUANT stage"""
    acc = _acc2(acc)
    p, c = acc.shape
    mul = np.ascontiguousarray(mul, np.int32)
    add = np.ascontiguousarray(add, np.int32)
    if mul.shape != (c,) or add.shape != (c,):
        raise ShapeError(f"mul and add must have shape ({c},), got {mul.shape}, {add.shape}")
    return acc, p, c, mul, add


def affine(acc, mul, add, shift: int) -> np.ndarray:
    """AFFINE stage: sat32((acc * mul + add) >> shift), acc (n_pix, c), mul/add (c,)."""
    acc, p, c, mul, add = _acc_mul_add(acc, mul, add)
    if not 0 <= shift < 32:
        raise KernelError(f"shift must be in 0..31, got {shift}")
    ffi, lib = _lib()
    out = np.empty((p, c), np.int32)
    lib.eq_affine_i32(_ptr(ffi, "int32_t *", acc), p, c, _ptr(ffi, "int32_t *", mul),
                      _ptr(ffi, "int32_t *", add), shift, _ptr(ffi, "int32_t *", out))
    return out


def requant(acc, mul, add, shift: int, out_bits: int) -> np.ndarray:
    """REQUANT stage (eq_requant_u8): clamp((acc * mul + add) >> shift, 0, 2**out_bits - 1) ->
    uint8 (n_pix, c); acc (n_pix, c) int32, mul / add (c,) int32, shift 0..63, out_bits 1..8."""
    acc, p, c, mul, add = _acc_mul_add(acc, mul, add)
    if not 0 <= shift < 64:
        raise KernelError(f"shift must be in 0..63, got {shift}")
    if not 1 <= out_bits <= 8:
        raise KernelError(f"out_bits must be in 1..8, got {out_bits}")
    ffi, lib = _lib()
    out = np.empty((p, c), np.uint8)
    lib.eq_requant_u8(_ptr(ffi, "int32_t *", acc), p, c, _ptr(ffi, "int32_t *", mul),
                      _ptr(ffi, "int32_t *", add), shift, out_bits, _ptr(ffi, "uint8_t *", out))
    return out


def _pool_dims(h, w, k, stride):
    if k < 1 or stride < 1 or k > h or k > w:
        raise ShapeError(f"pool window {k} (stride {stride}) does not fit {h}x{w}")
    return (h - k) // stride + 1, (w - k) // stride + 1


def maxpool_bits(x, c: int, k: int, stride: int) -> np.ndarray:
    """Max-pool (OR) of a packed B1 activation x (H, W, words(c)) uint32."""
    x = np.ascontiguousarray(_arr(x, "x", 3, "u"), np.uint32)
    h, w, cw = x.shape
    if cw != _bits.words(c):
        raise ShapeError(f"x has {cw} words per pixel, c={c} needs {_bits.words(c)}")
    oh, ow = _pool_dims(h, w, k, stride)
    ffi, lib = _lib()
    out = np.empty((oh, ow, cw), np.uint32)
    lib.eq_maxpool_b1(_ptr(ffi, "uint32_t *", x), h, w, c, k, stride, _ptr(ffi, "uint32_t *", out))
    return out


def maxpool(x, k: int, stride: int) -> np.ndarray:
    """Max-pool of a uint8 or int32 activation (H, W, C)."""
    x = _arr(x, "x", 3, "iu")
    h, w, c = x.shape
    oh, ow = _pool_dims(h, w, k, stride)
    ffi, lib = _lib()
    if x.dtype == np.uint8:
        x = np.ascontiguousarray(x)
        out = np.empty((oh, ow, c), np.uint8)
        lib.eq_maxpool_u8(_ptr(ffi, "uint8_t *", x), h, w, c, k, stride,
                          _ptr(ffi, "uint8_t *", out))
    elif x.dtype == np.int32:
        x = np.ascontiguousarray(x)
        out = np.empty((oh, ow, c), np.int32)
        lib.eq_maxpool_i32(_ptr(ffi, "int32_t *", x), h, w, c, k, stride,
                           _ptr(ffi, "int32_t *", out))
    else:
        raise KernelError(f"maxpool takes uint8 or int32 activations, got {x.dtype}")
    return out


def _chw(pix):
    pix = np.asarray(pix)
    if pix.ndim == 2:
        pix = pix[None]
    if pix.ndim != 3 or pix.dtype != np.uint8:
        raise ShapeError(f"pixels must be uint8 (C, H, W) or (H, W), got {pix.dtype} {pix.shape}")
    return np.ascontiguousarray(pix)


def pack_threshold(pix, thr: int) -> np.ndarray:
    """THRESH preprocessing: uint8 (C, H, W) -> packed B1 activation (H, W, words(C))."""
    pix = _chw(pix)
    c, h, w = pix.shape
    ffi, lib = _lib()
    out = np.empty((h, w, _bits.words(c)), np.uint32)
    lib.eq_pack_threshold_chw_b1(_ptr(ffi, "uint8_t *", pix), c, h, w, thr,
                                 _ptr(ffi, "uint32_t *", out))
    return out


def pack_wire(pix, thr: int) -> bytes:
    """Host side of the wire: thresholded CHW pixels -> LSB-first bytes."""
    pix = _chw(pix)
    ffi, lib = _lib()
    out = np.empty((pix.size + 7) // 8, np.uint8)
    lib.eq_pack_wire_chw_b1(_ptr(ffi, "uint8_t *", pix), pix.size, thr, _ptr(ffi, "uint8_t *", out))
    return out.tobytes()


def unpack_wire(wire: bytes, c: int, h: int, w: int) -> np.ndarray:
    """Wire bits -> packed B1 activation (H, W, words(C))."""
    wb = np.frombuffer(bytes(wire), np.uint8)
    if wb.size != (c * h * w + 7) // 8:
        raise ShapeError(f"wire input must be {(c * h * w + 7) // 8} bytes, got {wb.size}")
    ffi, lib = _lib()
    out = np.empty((h, w, _bits.words(c)), np.uint32)
    lib.eq_unpack_wire_chw_b1(_ptr(ffi, "uint8_t *", wb), c, h, w, _ptr(ffi, "uint32_t *", out))
    return out


def quantize_input(pix, bits: int) -> np.ndarray:
    """RAW (bits = 8) / QUANT preprocessing: uint8 (C, H, W) -> codes (H, W, C) uint8."""
    pix = _chw(pix)
    if not 1 <= bits <= 8:
        raise KernelError(f"bits must be 1..8, got {bits}")
    c, h, w = pix.shape
    ffi, lib = _lib()
    out = np.empty((h, w, c), np.uint8)
    lib.eq_quant_chw_u8(_ptr(ffi, "uint8_t *", pix), c, h, w, bits, _ptr(ffi, "uint8_t *", out))
    return out


def argmax(x) -> int:
    """First index of the maximum of an int32 vector (0 when empty)."""
    x = _arr(x, "x", 1, "iu")
    if x.size and (x.min() < -(2**31) or x.max() >= 2**31):
        raise KernelError("x must fit int32")
    x = np.ascontiguousarray(x, np.int32)
    ffi, lib = _lib()
    return int(lib.eq_argmax_i32(_ptr(ffi, "int32_t *", x), x.size))
