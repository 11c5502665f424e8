"""Every C kernel against its numpy reference in edgeq/reference/ref.py, for every compiled host variant.

Integer kernels must match exactly; float kernels (GEMM, Winograd, im2col) within a stated
tolerance of a float64 reference. On a mismatch the first differing index is printed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeq.format import bits as B
from edgeq.reference import ref as R
from edgeq.errors import KernelError, ShapeError

K = pytest.importorskip("edgeq.native.kernels")
try:
    from edgeq._native import lib as _lib  # noqa: F401
except ImportError:  # pragma: no cover
    pytest.skip("edgeq._native is not built (python host/build_cffi.py)", allow_module_level=True)

HYP = settings(derandomize=True, max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
# every variant a host build can have; the ones not compiled in (non-x86 hosts) or that this CPU
# cannot run are skipped with the reason, and each module prints which variants it ran
ALL_VARIANTS = ["portable", "popcnt", "avx2", "avx512"]
VARIANTS = ALL_VARIANTS + [v["name"] for v in K.variants() if v["name"] not in ALL_VARIANTS]


def variant_or_skip(name: str) -> str:
    """Select variant `name` (caller restores) or skip the test naming why it cannot run."""
    v = next((x for x in K.variants() if x["name"] == name), None)
    if v is None:
        pytest.skip(f"variant {name} is not compiled into this build (x86-64 GCC/Clang only)")
    if not v["supported"]:
        pytest.skip(f"variant {name} is compiled in but this CPU lacks {v['requires']}")
    return name


def report_variants(request, ran: set) -> None:
    """Print (past pytest's capture) which variants this module ran and which it skipped."""
    pm = request.config.pluginmanager
    tr, cm = pm.get_plugin("terminalreporter"), pm.get_plugin("capturemanager")
    info = {v["name"]: v for v in K.variants()}
    def why(n):
        if n not in info:
            return "not compiled"
        return "not selected" if info[n]["supported"] else "CPU lacks " + info[n]["requires"]

    skipped = [f"{n} ({why(n)})" for n in VARIANTS if n not in ran]
    line = (f"{request.module.__name__}: variants run: {', '.join(sorted(ran)) or 'none'}; "
            f"skipped: {', '.join(skipped) or 'none'}")
    if tr is None or cm is None:
        print(line)
        return
    with cm.global_and_fixture_disabled():
        tr.write_line(line)


_RAN: dict = {}  # module name -> variants its tests ran


# test_runtime imports these two fixtures too
@pytest.fixture(scope="module", autouse=True)
def _variants_report(request):
    yield
    report_variants(request, _RAN.get(request.module.__name__, set()))


@pytest.fixture(params=VARIANTS)
def variant(request):
    name = variant_or_skip(request.param)
    with K.use_variant(name):
        _RAN.setdefault(request.module.__name__, set()).add(name)
        yield name


def assert_same(got, want, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    bad = np.argwhere(got != want)
    if bad.size:
        i = tuple(int(t) for t in bad[0])
        pytest.fail(f"{what}: {len(bad)} mismatches; first at index {i}: "
                    f"got {got[i]}, reference {want[i]}")


def assert_close(got, want, rtol, what=""):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    err = np.abs(got - want)
    if err.size and err.max() > rtol * scale:
        i = np.unravel_index(int(np.argmax(err)), err.shape)
        pytest.fail(f"{what}: max error {err.max():.3g} > {rtol} * {scale:.3g} at index "
                    f"{tuple(int(t) for t in i)}: got {got[i]}, reference {want[i]}")


def rng(seed=0):
    return np.random.default_rng(seed)


def pm1(r, shape):
    return r.choice(np.array([-1, 1], np.int8), shape)


def tern(r, shape, p_zero=0.5):
    return np.where(r.random(shape) < p_zero, 0, pm1(r, shape)).astype(np.int8)


# ---- GEMMs: targeted shapes (tails of 32/64/256-bit vectors, register-block edges) -------------
SHAPES = [(1, 1, 1), (1, 37, 1), (3, 32, 5), (2, 64, 4), (5, 255, 9), (4, 256, 8), (7, 257, 3),
          (6, 300, 11), (1, 4096, 3), (9, 1000, 1), (3, 8200, 5)]
# M large enough for the table-driven AVX2 paths (blocks of 128 rows; K chunks of 2560 bits)
# (and the 4 x 2 table kernel for a last block of 44..64 rows)
WIDE = [(32, 64, 2), (33, 2561, 3), (129, 5200, 7), (257, 700, 130), (40, 100, 1), (100, 300, 5),
        (150, 2600, 9), (44, 40, 3), (64, 784, 17), (190, 2600, 6)]


@pytest.mark.parametrize("m,k,n", SHAPES + WIDE)
def test_xnor_gemm(variant, m, k, n):
    r = rng(m * 1000 + k + n)
    a, b = pm1(r, (m, k)), pm1(r, (n, k))
    assert_same(K.xnor_gemm(a, b), R.eq_gemm_xnor_b1b1(a, b), f"xnor {variant} {m,k,n}")


@pytest.mark.parametrize("m,k,n", SHAPES + WIDE)
def test_ternary_gemm_b1(variant, m, k, n):
    r = rng(m * 1000 + k + n + 1)
    a, w = pm1(r, (m, k)), tern(r, (n, k))
    w[0] = 0  # an all-zero row
    if n > 1:
        w[1] = pm1(r, k)  # an all-nonzero row
    assert_same(K.ternary_gemm_b1(a, w), R.eq_gemm_tern_b1(a, w), f"tern_b1 {variant}")


@pytest.mark.parametrize("m,k,n", SHAPES + [(17, 600, 4), (150, 300, 3), (128, 64, 2)])
@pytest.mark.parametrize("p_zero", [0.0, 0.5, 0.9, 1.0])
def test_ternary_gemm_sparse(variant, m, k, n, p_zero):
    r = rng(m + k + n + int(p_zero * 10))
    a = r.integers(-128, 128, (m, k)).astype(np.int8)
    a[0, : min(k, 5)] = -128  # extremes
    w = tern(r, (n, k), p_zero)
    assert_same(K.ternary_gemm(a, w), R.eq_gemm_tern_sparse_i8(a, w), f"sparse {variant}")


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_dense_i8_gemm(variant, m, k, n):
    r = rng(m + 7 * k + n)
    a = r.integers(-128, 128, (m, k)).astype(np.int8)
    w = r.integers(-128, 128, (n, k)).astype(np.int8)
    a[0, :] = -128
    w[0, :] = -128  # worst case products
    assert_same(K.dense_i8_gemm(a, w), R.eq_gemm_i8(a, w), f"i8 {variant}")


@pytest.mark.parametrize("wbits,abits", [(1, 1), (2, 2), (2, 4), (4, 8), (3, 1)])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 33, 3), (8, 130, 6)])
def test_lut_gemm(variant, wbits, abits, m, k, n):
    r = rng(wbits * 10 + abits + m)
    lut = r.integers(-1000, 1000, (2**wbits, 2**abits)).astype(np.int32)
    a = r.integers(0, 2**abits, (m, k)).astype(np.uint8)
    w = r.integers(0, 2**wbits, (n, k)).astype(np.uint8)
    assert_same(K.lut_gemm(a, w, lut), R.eq_gemm_lut_u8(a, w, lut), f"lut {variant}")


@HYP
@given(m=st.integers(1, 9), k=st.integers(1, 200), n=st.integers(1, 9), seed=st.integers(0, 99))
def test_integer_gemms_random_shapes(variant, m, k, n, seed):
    r = rng(seed)
    a, b = pm1(r, (m, k)), pm1(r, (n, k))
    w = tern(r, (n, k), r.random())
    ai = r.integers(-128, 128, (m, k)).astype(np.int8)
    assert_same(K.xnor_gemm(a, b), R.eq_gemm_xnor_b1b1(a, b), "xnor")
    assert_same(K.ternary_gemm_b1(a, w), R.eq_gemm_tern_b1(a, w), "tern_b1")
    assert_same(K.ternary_gemm(ai, w), R.eq_gemm_tern_sparse_i8(ai, w), "sparse")
    assert_same(K.dense_i8_gemm(ai, b), R.eq_gemm_i8(ai, b), "i8")


# AVX2 bit GEMMs: nibble-split panels of up to 64 b rows, K chunks of 31 x 256 bits (the
# multi-chunk path keeps partial counts in out), zero padding rows for odd M / N % 4
# AVX-512 bit GEMMs: panels of 64 columns, K chunks of 128 words (4096 bits, partial counts kept
# in out), 4-row blocks with 1..3-row tails, the direct kernel below 4 rows
@pytest.mark.parametrize("m,k,n", [(5, 100, 70), (3, 7937, 6), (2, 20000, 9), (33, 2304, 131),
                                   (1, 256, 4), (4, 255, 1), (6, 9000, 67), (7, 4097, 65),
                                   (4, 4096, 64), (9, 33, 129)])
def test_bit_gemms_panels_and_chunks(variant, m, k, n):
    r = rng(m + k + n)
    a, b = pm1(r, (m, k)), pm1(r, (n, k))
    w = tern(r, (n, k), 0.4)
    assert_same(K.xnor_gemm(a, b), R.eq_gemm_xnor_b1b1(a, b), f"xnor {variant} {m,k,n}")
    assert_same(K.ternary_gemm_b1(a, w), R.eq_gemm_tern_b1(a, w), f"tern_b1 {variant} {m,k,n}")


# M = 1 skip-zero: byte-table fast loop while p + 16 <= K, checked nibbles near the end of a row,
# rows starting mid-byte, list flushes (> 1024 nonzeros in a row)
@pytest.mark.parametrize("k,n,p_zero", [(3000, 40, 0.9), (17, 33, 0.5), (16, 9, 0.0),
                                        (5000, 3, 0.0), (200, 7, 0.97), (33, 5, 1.0)])
def test_sparse_m1(variant, k, n, p_zero):
    r = rng(k + n)
    a = r.integers(-128, 128, (1, k)).astype(np.int8)
    w = tern(r, (n, k), p_zero)
    assert_same(K.ternary_gemm(a, w), R.eq_gemm_tern_sparse_i8(a, w), f"sparse m1 {variant}")


def test_sparse_bad_stream_long_row(variant):
    w = np.zeros((2, 400), np.int8)
    w[0, ::3] = 1
    w[1, 5] = -1
    enc = bytearray(K.sparse_encode(w).tobytes())
    enc[12 + 20] = 0xF3  # a nibble 15 in the middle of row 0 (inside the fast loop)
    for m in (1, 3):
        with pytest.raises(KernelError, match="ERR_ARG"):
            K.ternary_gemm_sparse(np.ones((m, 400), np.int8), bytes(enc), 2, 400)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (6, 16, 16), (7, 300, 33), (13, 513, 5), (64, 64, 100)])
def test_gemm_f32(variant, m, k, n):
    r = rng(m + k + n)
    a = r.standard_normal((m, k)).astype(np.float32)
    b = r.standard_normal((k, n)).astype(np.float32)
    # float32 accumulation over k terms: error ~ k * eps * |a||b|, bounded generously
    assert_close(K.gemm_f32(a, b), R.eq_gemm_f32(a, b), 1e-5 * max(k, 8), f"gemm_f32 {variant}")


@pytest.mark.parametrize("c,h,w,k", [(1, 1, 1, 1), (1, 2, 2, 1), (3, 5, 7, 2), (4, 8, 8, 5),
                                     (16, 9, 11, 8), (8, 32, 32, 16), (2, 1, 6, 3),
                                     (3, 7, 37, 5), (2, 200, 6, 2), (1, 3, 2100, 2),
                                     (9, 17, 18, 3)])
def test_winograd_and_im2col(variant, c, h, w, k):
    r = rng(c + h + w + k)
    x = r.standard_normal((c, h, w)).astype(np.float32)
    wt = r.standard_normal((k, c, 3, 3)).astype(np.float32)
    want = R.eq_conv3x3_wino_f23_f32(x, wt)
    # relative to the largest output; Winograd transforms add a few float32 roundings per tap
    assert_close(K.winograd_conv3x3(x, wt), want, 1e-4, f"winograd {variant} {c,h,w,k}")
    assert_close(K.im2col_conv3x3(x, wt), want, 1e-4, f"im2col {variant} {c,h,w,k}")


def test_winograd_vs_scipy():
    signal = pytest.importorskip("scipy.signal")
    r = rng(5)
    x = r.standard_normal((3, 13, 10)).astype(np.float32)
    wt = r.standard_normal((2, 3, 3, 3)).astype(np.float32)
    want = np.stack([sum(signal.correlate2d(x[c].astype(np.float64), wt[o, c].astype(np.float64),
                                            mode="same") for c in range(3)) for o in range(2)])
    assert_close(K.winograd_conv3x3(x, wt), want, 1e-4, "winograd vs scipy")


# ---- packing helpers -------------------------------------------------------------------------
@HYP
@given(rows=st.integers(1, 5), k=st.integers(1, 130), seed=st.integers(0, 99))
def test_packing_matches_bits(rows, k, seed):
    r = rng(seed)
    x = r.integers(-128, 128, (rows, k)).astype(np.int8)
    assert_same(K.pack_signs(x), R.eq_pack_signs_i8_b1(x), "pack_signs")
    w = tern(r, (rows, k), r.random())
    assert_same(K.pack_ternary(w), R.eq_pack_tern_i8(w), "pack_ternary")
    assert K.sparse_encode(w).tobytes() == R.eq_sparse_encode_i8(w), "sparse_encode"
    if rows:
        assert_same(B.sparse_decode(K.sparse_encode(w).tobytes(), rows, k), w, "sparse roundtrip")


def test_sparse_long_gaps():
    w = np.zeros((3, 100), np.int8)
    w[0, 99] = -1  # 14 escapes then a weight
    w[2, [0, 7, 14, 15]] = [1, -1, 1, 1]
    assert K.sparse_encode(w).tobytes() == R.eq_sparse_encode_i8(w)
    a = rng(1).integers(-128, 128, (4, 100)).astype(np.int8)
    assert_same(K.ternary_gemm(a, w), R.eq_gemm_tern_sparse_i8(a, w), "long gaps")


# ---- conv2d_row (the runtime's kernel) ----------------------------------------------------------
def _conv_case(r, ae, we, h, w, c, n, kh, kw):
    act = pm1(r, (h, w, c)) if ae == "B1" else r.integers(0, 256, (h, w, c))
    lut = None
    if we == "B1":
        wt = pm1(r, (n, kh, kw, c))
    elif we in ("TERN", "TERN_SPARSE"):
        wt = tern(r, (n, kh, kw, c), 0.6)
        wt[0] = 0
    elif we == "I8":
        wt = r.integers(-128, 128, (n, kh, kw, c))
    elif we == "I16":
        wt = r.integers(-32768, 32768, (n, kh, kw, c))
    else:
        wt = r.integers(0, 8, (n, kh, kw, c))
        lut = r.integers(-300, 300, (8, 2 if ae == "B1" else 256))
    return act, wt, lut


@pytest.mark.parametrize("ae", ["B1", "U8"])
@pytest.mark.parametrize("we", ["B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16"])
@pytest.mark.parametrize("h,w,c,n,kh,kw,stride,pad", [
    (5, 5, 1, 1, 1, 1, 1, 0), (7, 6, 33, 3, 3, 3, 1, 1), (8, 9, 64, 4, 3, 3, 2, 1),
    (6, 7, 5, 2, 2, 3, 2, 1), (9, 4, 31, 5, 5, 3, 1, 2), (4, 4, 40, 3, 4, 4, 1, 0),
])
def test_conv2d_all_encodings(ae, we, h, w, c, n, kh, kw, stride, pad):
    r = rng(h * w + c + n + kh)
    act, wt, lut = _conv_case(r, ae, we, h, w, c, n, kh, kw)
    got = K.conv2d(act, ae, wt, we, stride, pad, lut)
    assert_same(got, R.conv2d_ref(act, ae, wt, we, stride, pad, lut), f"conv {ae}x{we}")
    assert_same(got[0], R.eq_conv2d_row(act, ae, wt, we, stride, pad, 0, lut), "row 0")


@HYP
@given(h=st.integers(1, 8), w=st.integers(1, 8), c=st.integers(1, 70), n=st.integers(1, 4),
       kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 3),
       ae=st.sampled_from(["B1", "U8"]),
       we=st.sampled_from(["B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16"]),
       seed=st.integers(0, 99))
def test_conv2d_random(h, w, c, n, kh, kw, stride, pad, ae, we, seed):
    pad = min(pad, kh - 1, kw - 1)
    if h + 2 * pad < kh or w + 2 * pad < kw:
        return
    act, wt, lut = _conv_case(rng(seed), ae, we, h, w, c, n, kh, kw)
    assert_same(K.conv2d(act, ae, wt, we, stride, pad, lut),
                R.conv2d_ref(act, ae, wt, we, stride, pad, lut), f"conv {ae}x{we}")


# KBIT rows are packed at the slot width the kernel derives from lut_rows (1, 2, 4 or 8 bits,
# rows padded to words; docs/blob-format.md); codes are decoded 64 at a time, so C = 70 with
# several taps crosses chunk and byte boundaries at odd offsets
@pytest.mark.parametrize("ae", ["B1", "U8"])
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 8, 16, 32, 256])
@pytest.mark.parametrize("h,w,c,n,kh,kw,stride,pad", [
    (5, 5, 1, 3, 3, 3, 1, 1), (6, 7, 5, 2, 2, 3, 2, 1), (4, 5, 70, 3, 3, 2, 1, 1),
    (3, 3, 33, 2, 3, 3, 1, 0),
])
def test_conv2d_kbit_every_slot_width(ae, rows, h, w, c, n, kh, kw, stride, pad):
    r = rng(rows * 7 + c)
    act = pm1(r, (h, w, c)) if ae == "B1" else r.integers(0, 256, (h, w, c))
    wt = r.integers(0, rows, (n, kh, kw, c))
    lut = r.integers(-300, 300, (rows, 2 if ae == "B1" else 256))
    assert_same(K.conv2d(act, ae, wt, "KBIT", stride, pad, lut),
                R.conv2d_ref(act, ae, wt, "KBIT", stride, pad, lut), f"kbit {ae} rows={rows}")


# B1 x B1 with few channels: taps' bits concatenated per output pixel (C < 32, taps * C <= 256),
# valid-bit mask at the borders, output channels in chunks of 16
# (C <= 16: two output pixels per word, eq_row_b1_b1_pair; 45 channels = three weight chunks of
# a 3x3 kernel, odd and even output widths)
@pytest.mark.parametrize("c", [1, 2, 3, 7, 16, 28, 31])
@pytest.mark.parametrize("kh,kw,stride,pad", [(3, 3, 1, 1), (3, 3, 2, 1), (5, 5, 1, 2), (2, 3, 1, 0),
                                              (1, 1, 2, 0), (1, 5, 1, 0)])
@pytest.mark.parametrize("n,w", [(20, 11), (45, 12)])
def test_binary_conv2d_few_channels(c, kh, kw, stride, pad, n, w):
    r = rng(c * 10 + kh + stride + n)
    act, wt = pm1(r, (9, w, c)), pm1(r, (n, kh, kw, c))
    assert_same(K.binary_conv2d(act, wt, stride, pad),
                R.conv2d_ref(act, "B1", wt, "B1", stride, pad), f"bconv c={c} {kh}x{kw}")


def test_binary_conv2d_wrapper():
    r = rng(3)
    act, wt = pm1(r, (10, 10, 32)), pm1(r, (8, 3, 3, 32))
    assert_same(K.binary_conv2d(act, wt, 1, 1), R.conv2d_ref(act, "B1", wt, "B1", 1, 1), "bconv")


def test_conv2d_ref_speed():
    import time

    r = rng(4)
    act, wt = pm1(r, (28, 28, 32)), pm1(r, (32, 3, 3, 32))
    t = time.perf_counter()
    R.conv2d_ref(act, "B1", wt, "B1", 1, 1)
    assert time.perf_counter() - t < 1.0


# ---- output stages, pooling, input prep, argmax ------------------------------------------------
@HYP
@given(p=st.integers(1, 6), c=st.integers(1, 70), n_thr=st.integers(1, 15), seed=st.integers(0, 99))
def test_output_stages(p, c, n_thr, seed):
    r = rng(seed)
    acc = r.integers(-2**31, 2**31, (p, c), dtype=np.int64).astype(np.int32)
    acc[:, ::3] = r.integers(-5, 5, acc[:, ::3].shape)
    flip = r.integers(0, 2, c).astype(np.uint8)
    thr = r.integers(-5, 5, c).astype(np.int32)
    got = B.unpack_bits(K.threshold_sign(acc, thr, flip), c)
    assert_same(got, R.eq_threshold_sign_b1(acc, thr, flip), "sign")
    thr2 = np.sort(r.integers(-6, 6, (c, n_thr)), axis=1).astype(np.int32)
    assert_same(K.threshold_multi(acc, thr2, flip), R.eq_threshold_multi_u8(acc, thr2, flip), "multi")
    mul = r.integers(-2**31, 2**31, c, dtype=np.int64).astype(np.int32)
    add = r.integers(-2**31, 2**31, c, dtype=np.int64).astype(np.int32)
    for shift in (0, 1, 13, 31):
        assert_same(K.affine(acc, mul, add, shift), R.eq_affine_i32(acc, mul, add, shift), "affine")
    # the identity (a raw accumulator stored for an ADD) is a copy; one channel off it is not
    one, zero = np.ones(c, np.int32), np.zeros(c, np.int32)
    assert_same(K.affine(acc, one, zero, 0), acc, "affine identity")
    j = int(r.integers(0, c))
    mul1, add1 = one.copy(), zero.copy()
    (mul1 if seed % 2 else add1)[j] = 3
    assert_same(K.affine(acc, mul1, add1, 0), R.eq_affine_i32(acc, mul1, add1, 0), "affine near identity")


@pytest.mark.parametrize("h,w,c,k,stride", [(4, 4, 1, 2, 2), (7, 5, 33, 2, 2), (6, 6, 64, 3, 1),
                                            (5, 9, 3, 3, 2), (2, 2, 70, 2, 1)])
def test_maxpools(h, w, c, k, stride):
    r = rng(h + w + c)
    x = pm1(r, (h, w, c))
    got = B.unpack_signs(K.maxpool_bits(B.pack_signs(x), c, k, stride), c)
    assert_same(got, R.eq_maxpool_b1(x, k, stride), "maxpool b1")
    xu = r.integers(0, 256, (h, w, c)).astype(np.uint8)
    assert_same(K.maxpool(xu, k, stride), R.eq_maxpool_u8(xu, k, stride), "maxpool u8")
    xi = r.integers(-2**31, 2**31, (h, w, c), dtype=np.int64).astype(np.int32)
    assert_same(K.maxpool(xi, k, stride), R.eq_maxpool_i32(xi, k, stride), "maxpool i32")


@pytest.mark.parametrize("c,h,w", [(1, 28, 28), (3, 5, 7), (33, 2, 3), (1, 1, 1)])
def test_input_prep(c, h, w):
    r = rng(c + h + w)
    pix = r.integers(0, 256, (c, h, w)).astype(np.uint8)
    for thr in (0, 1, 128, 255):
        packed = K.pack_threshold(pix, thr)
        assert_same(B.unpack_bits(packed, c), R.eq_pack_threshold_chw_b1(pix, thr), "thresh")
        wire = K.pack_wire(pix, thr)
        assert wire == R.eq_pack_wire_chw_b1(pix, thr)
        assert_same(K.unpack_wire(wire, c, h, w), packed, "wire")
        assert_same(B.unpack_bits(K.unpack_wire(wire, c, h, w), c),
                    R.eq_unpack_wire_chw_b1(wire, c, h, w), "wire ref")
    for bits in range(1, 9):
        assert_same(K.quantize_input(pix, bits), R.eq_quant_chw_u8(pix, bits), f"quant {bits}")


def test_argmax():
    assert K.argmax(np.array([], np.int32)) == R.eq_argmax_i32([]) == 0
    x = np.array([3, -1, 7, 7, 2], np.int32)
    assert K.argmax(x) == R.eq_argmax_i32(x) == 2
    x = np.full(9, -2**31, np.int64)
    assert K.argmax(x) == 0
    r = rng(1)
    for _ in range(20):
        x = r.integers(-4, 4, r.integers(1, 40)).astype(np.int32)
        assert K.argmax(x) == R.eq_argmax_i32(x)


@pytest.mark.parametrize("rows,k", [(1, 1), (3, 31), (2, 32), (5, 63), (4, 64), (3, 65), (2, 1000)])
def test_pm1_packing_checks_every_value(variant, rows, k):
    """The wrappers' one-pass C packer: same words as pack_signs; any value other than +-1 (at
    the first or the last position, or 0) is refused."""
    r = rng(rows * 1000 + k)
    x = pm1(r, (rows, k))
    assert_same(K._pack_pm1(x, "x"), K.pack_signs(x), f"pm1 pack {variant}")
    for pos, bad in ((0, 0), (-1, 2), (k // 2, -2), (-1, 0)):
        y = x.copy()
        y.reshape(-1)[pos] = bad
        with pytest.raises(KernelError, match="-1 and \\+1"):
            K.xnor_gemm(y, x)


# ---- variants and errors ------------------------------------------------------------------------
def test_variants_listed():
    names = [v["name"] for v in K.variants()]
    assert names[0] == "portable"
    assert len(set(names)) == len(names)
    with K.use_variant("portable"):
        assert K.current_variant() == "portable"
    with pytest.raises(KernelError, match="unknown kernel variant"):
        K.use_variant("no-such-variant")


def test_bad_inputs_raise_typed_errors():
    a = np.ones((2, 10), np.int8)
    with pytest.raises(ShapeError, match="K="):
        K.xnor_gemm(a, np.ones((3, 11), np.int8))
    with pytest.raises(ShapeError, match="2-D"):
        K.xnor_gemm(np.ones(10, np.int8), a)
    with pytest.raises(KernelError, match="-1 and \\+1"):
        K.xnor_gemm(np.zeros((2, 10), np.int8), a)
    with pytest.raises(KernelError, match="dtype"):
        K.xnor_gemm(a.astype(np.float32), a)
    with pytest.raises(KernelError, match="-1, 0 and \\+1"):
        K.ternary_gemm(a, 2 * a)
    with pytest.raises(KernelError, match="outside"):
        K.ternary_gemm(a.astype(np.int16) * 300, a)
    with pytest.raises(KernelError, match="lut"):
        K.lut_gemm(np.full((1, 3), 4, np.uint8), np.zeros((1, 3), np.uint8), np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="K, C, 3, 3"):
        K.winograd_conv3x3(np.zeros((2, 4, 4), np.float32), np.zeros((1, 3, 3, 3), np.float32))
    with pytest.raises(ShapeError):
        K.conv2d(np.ones((3, 3, 4), np.int8), "B1", np.ones((2, 5, 5, 4), np.int8), "B1", 1, 0)
    with pytest.raises(KernelError, match="lut"):
        K.conv2d(np.ones((3, 3, 4), np.uint8), "U8", np.ones((2, 1, 1, 4), np.uint8), "KBIT")
    with pytest.raises(ShapeError, match="1..256 rows"):
        K.conv2d(np.ones((3, 3, 4), np.uint8), "U8", np.ones((2, 1, 1, 4), np.uint8), "KBIT",
                 lut=np.zeros((257, 256), np.int32))


def test_c_status_becomes_kernel_error(variant):
    w = np.array([[1, 0, -1]], np.int8)
    enc = bytearray(K.sparse_encode(w).tobytes())
    bad = bytes(enc[:8]) + bytes([0xFF])  # nibble 15 is invalid
    with pytest.raises(KernelError, match="ERR_ARG") as e:
        K.ternary_gemm_sparse(np.ones((2, 3), np.int8), bad, 1, 3)
    assert e.value.status == 1
    with pytest.raises(KernelError, match="ERR_ARG"):  # runs past K
        K.ternary_gemm_sparse(np.ones((1, 3), np.int8), bytes(enc[:8]) + bytes([0x66]), 1, 3)


# ---- F32 layers: float32 sums in one fixed order (docs/blob-format.md, F32) --------------------
@pytest.mark.parametrize("ae", ["B1", "U8"])
@pytest.mark.parametrize("h,w,c,n,kh,kw,stride,pad", [
    (5, 5, 1, 1, 1, 1, 1, 0), (7, 6, 33, 3, 3, 3, 1, 1), (8, 9, 64, 4, 3, 3, 2, 1),
    (6, 7, 5, 2, 2, 3, 2, 1), (9, 4, 31, 5, 5, 3, 1, 2),
])
def test_conv2d_f32_bit_exact(ae, h, w, c, n, kh, kw, stride, pad):
    r = rng(h * w + c + n)
    act = pm1(r, (h, w, c)) if ae == "B1" else r.integers(0, 256, (h, w, c))
    wt = (r.standard_normal((n, kh, kw, c)) * np.exp2(r.integers(-8, 9, (n, kh, kw, c)))).astype(np.float32)
    got = K.conv2d_f32(act, ae, wt, stride, pad)
    want = R.conv2d_f32_ref(act, ae, wt, stride, pad)
    assert got.dtype == np.float32
    assert_same(got.view(np.int32), want.view(np.int32), f"conv f32 {ae} (bit patterns)")


def test_conv2d_f32_order_matters():
    """The fixed summation order is what makes runtimes agree: the same sum taken in float64 and
    rounded once differs from the C result in many outputs (so the bit-exact test above could fail)."""
    r = rng(5)
    act = r.integers(0, 256, (8, 8, 64))
    wt = (r.standard_normal((16, 3, 3, 64)) * np.exp2(r.integers(-8, 9, (16, 3, 3, 64)))).astype(np.float32)
    got = K.conv2d_f32(act, "U8", wt, 1, 1)
    f64 = np.zeros((8, 8, 16), np.float64)
    ap = np.pad(act.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
    for ky in range(3):
        for kx in range(3):
            f64 += ap[ky:ky + 8, kx:kx + 8] @ wt[:, ky, kx, :].astype(np.float64).T
    assert (got != f64.astype(np.float32)).mean() > 0.2


def test_affine_f32_floor_and_saturation():
    acc = np.array([[0.5, -0.5, -1.0, 2.9999998, 3e9, -3e9, -0.0, 1e-30]], np.float32)
    mul = np.array([1, 1, 1, 1, 1, 1, 1, -1], np.float32)
    add = np.array([0, 0, 0, 0, 0, 0, 0, 0], np.float32)
    got = K.affine_f32(acc, mul, add)
    assert got.tolist() == [[0, -1, -1, 2, 2**31 - 1, -(2**31), 0, -1]]
    r = rng(7)
    acc = (r.standard_normal((50, 9)) * 1e4).astype(np.float32)
    mul, add = r.uniform(-40, 40, 9).astype(np.float32), r.uniform(-1e3, 1e3, 9).astype(np.float32)
    assert_same(K.affine_f32(acc, mul, add), R.affine_f32_ref(acc, mul, add), "affine f32")
