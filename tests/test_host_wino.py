"""Integer Winograd F(2x2, 3x3) on the host (host/eq_wino_i8.c, eq_avx2_wino_i8.c,
eq_avx512_wino_i8.c), for every kernel variant this CPU runs:
- the kernel (edgeq.native.kernels.winograd_conv3x3_i8) equals the numpy reference
  (edgeq.reference.ref.conv2d_ref, U8 x I8, stride 1, pad 1) exactly, on random shapes (odd H/W,
  1..67 input and 1..70 output channels, several images) and at the accumulator extremes;
- the host executor (Model.predict) with Winograd forced on equals the numpy network reference
  and the executor's direct path, whatever the stage, batch and thread count; with it forced off
  or on layers it does not apply to, the direct path runs; AUTO follows eq_host_wino_i8_worth.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.errors import KernelError, ShapeError
from edgeq.format import pack
from edgeq.format.graph import Conv, Graph, MaxPool
from edgeq.native import kernels as K
from edgeq.native.runtime import Model
from edgeq.reference import ref, refnet
from tests.test_conv_fast_i8 import wino_graph
from tests.test_kernels import VARIANTS, assert_same, report_variants, variant_or_skip

_RAN: set = set()


@pytest.fixture(scope="module", autouse=True)
def _variants_report(request):
    yield
    report_variants(request, _RAN)


@pytest.fixture(params=VARIANTS)
def variant(request):
    name = variant_or_skip(request.param)
    with K.use_variant(name):
        _RAN.add(name)
        yield name


def _ref(x, w):
    return np.stack([ref.conv2d_ref(xi, "U8", w, "I8", 1, 1) for xi in x])


@pytest.mark.parametrize("seed", range(16))
def test_kernel_equals_reference_on_random_shapes(variant, seed):
    r = np.random.default_rng(1000 + seed)
    b = int(r.integers(1, 4))
    h, w = (int(v) for v in r.integers(1, 14, 2))
    c, n = int(r.integers(1, 68)), int(r.integers(1, 71))
    if seed < 4:  # the tails of every vector width: channel counts around 16 / 32 / 64
        c, n = ((1, 1), (15, 17), (33, 31), (67, 70))[seed]
    x = r.integers(0, 256, (b, h, w, c)).astype(np.uint8)
    wt = r.integers(-128, 128, (n, 3, 3, c)).astype(np.int8)
    assert_same(K.winograd_conv3x3_i8(x, wt), _ref(x, wt), f"wino i8 {variant} {(b, h, w, c, n)}")


@pytest.mark.parametrize("c", [1, 8, 64, 1827])
def test_kernel_at_the_accumulator_extremes(variant, c):
    """codes 255 against weights -128 / 127 (the largest |acc|; c = 1827 is the int32 bound of
    4 * acc), plus a striped image so border and inner tiles differ"""
    h, w = (3, 5) if c > 100 else (7, 6)
    x = np.full((2, h, w, c), 255, np.uint8)
    x[1, :, ::2] = 0
    for v in (-128, 127):
        wt = np.full((3, 3, 3, c), v, np.int8)
        wt[1] = np.random.default_rng(c).integers(-128, 128, (3, 3, c))
        got = K.winograd_conv3x3_i8(x, wt)
        assert_same(got, _ref(x, wt), f"wino i8 extremes {variant} c={c} w={v}")
        assert got[0, 1, 1, 0] == 9 * c * 255 * v


def test_kernel_rejects_bad_arguments():
    x = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ShapeError, match="K, 3, 3, C"):
        K.winograd_conv3x3_i8(x, np.zeros((2, 3, 3, 4), np.int8))
    with pytest.raises(KernelError, match="dtype"):
        K.winograd_conv3x3_i8(x.astype(np.int16), np.zeros((2, 3, 3, 3), np.int8))
    with pytest.raises(ShapeError, match="at most 1827"):
        K.winograd_conv3x3_i8(np.zeros((2, 2, 1828), np.uint8), np.zeros((1, 3, 3, 1828), np.int8))
    with pytest.raises(KernelError, match="mode"):
        K.use_winograd_i8("sometimes")
    lib = K._lib()[1]
    assert lib.eq_host_conv3x3_wino_i8_scratch(1, 4, 4, 1828, 1) == 0
    assert lib.eq_host_set_wino_i8(2) != 0  # EQ_ERR_ARG, the mode unchanged
    assert lib.eq_host_get_wino_i8() == -1


def test_kernel_reports_too_little_scratch():
    ffi, lib = K._lib()
    x, wt = np.zeros((1, 4, 4, 3), np.uint8), np.zeros((2, 3, 3, 3), np.int8)
    out = np.zeros((1, 4, 4, 2), np.int32)
    size = lib.eq_host_conv3x3_wino_i8_scratch(1, 4, 4, 3, 2)
    scratch = np.zeros(size, np.uint8)
    args = (ffi.cast("uint8_t *", ffi.from_buffer(x)), ffi.cast("int8_t *", ffi.from_buffer(wt)),
            1, 4, 4, 3, 2, ffi.cast("void *", ffi.from_buffer(scratch)))
    assert lib.eq_host_conv3x3_wino_i8(*args, size - 1, ffi.cast("int32_t *", ffi.from_buffer(out))) \
        == lib.EQ_ERR_ARENA
    assert lib.eq_host_conv3x3_wino_i8(*args, size, ffi.NULL) == lib.EQ_ERR_ARG


# ---- the host executor -----------------------------------------------------------------------
def _model_check(g, x, what, threads=1):
    """direct (never), Winograd (always) and the numpy reference agree; returns the model"""
    m = Model(pack.write_blob(g), threads=threads)
    want = refnet.run(g, x)[0]
    with K.use_winograd_i8("never"):
        direct = m.predict(x)[1]
        assert not any(m._lib.eq_host_plan_layer_wino(m._plan, i) for i in range(m.n_layers))
    with K.use_winograd_i8("always"):
        got = m.predict(x)[1]
    assert_same(direct, want, f"{what}: direct path")
    assert_same(got, want, f"{what}: Winograd path")
    return m


def _wino_layers(m):
    return [int(m._lib.eq_host_plan_layer_wino(m._plan, i)) for i in range(m.n_layers)]


@pytest.mark.parametrize("seed", range(12))
def test_executor_winograd_equals_reference(variant, seed):
    r = np.random.default_rng(300 + seed)
    c, n = int(r.integers(1, 68)), int(r.integers(1, 71))
    h, w = (int(v) for v in r.integers(1, 12, 2))
    out = ("SIGN", "MULTI", "AFFINE")[seed % 3]
    g = wino_graph(seed, c, n, h, w, out, ("RAW", "QUANT")[seed % 2], tail=seed % 4 == 1 and h > 1 and w > 1)
    batch = (1, 3, 70)[seed % 3]  # 70: more images than one chunk (64) of small layers
    x = r.integers(0, 256, (batch, c, h, w)).astype(np.uint8)
    m = _model_check(g, x, (variant, c, n, h, w, out, batch), threads=1 + seed % 2)
    with K.use_winograd_i8("always"):
        assert _wino_layers(m)[0] == 1


def test_executor_winograd_on_a_hidden_layer(variant):
    """the Winograd candidate fed by a MULTI layer's U8 codes (not the input's), then a head"""
    r = np.random.default_rng(7)
    w1 = r.integers(-128, 128, (9, 3, 3, 3)).astype(np.int8)
    w2 = r.integers(-128, 128, (13, 3, 3, 9)).astype(np.int8)
    thr1 = np.sort(r.integers(-9000, 9000, (9, 3)), axis=1).astype(np.int32)
    layers = [Conv(w1, "I8", "MULTI", stride=2, pad=1, thr=thr1, flip=r.random(9) < 0.3, out_bits=2),
              Conv(w2, "I8", "SIGN", pad=1, thr=r.integers(-400, 400, 13).astype(np.int32),
                   flip=r.random(13) < 0.3),
              MaxPool(2, 2),
              Conv(r.choice(np.array([-1, 1], np.int8), (4, 3, 3, 13)), "B1", "AFFINE",
                   mul=np.ones(4, np.int32), add=np.zeros(4, np.int32))]
    g = Graph((3, 13, 13), "RAW", 0, layers)
    x = r.integers(0, 256, (5, 3, 13, 13)).astype(np.uint8)
    m = _model_check(g, x, variant)
    with K.use_winograd_i8("always"):
        wl = _wino_layers(m)  # stride 2, then the candidate; pool, (flatten,) B1 input after it
        assert wl[:2] == [0, 1] and sum(wl) == 1, wl


def test_executor_keeps_the_direct_path_where_winograd_does_not_apply():
    r = np.random.default_rng(9)
    w8 = r.integers(-99, 99, (8, 3, 3, 8)).astype(np.int8)
    w5 = r.integers(-99, 99, (8, 5, 5, 8)).astype(np.int8)
    aff = dict(mul=np.ones(8, np.int32), add=np.zeros(8, np.int32))
    cases = [Graph((8, 8, 8), "RAW", 0, [Conv(w8, "I8", "AFFINE", stride=2, pad=1, **aff)]),
             Graph((8, 8, 8), "RAW", 0, [Conv(w8, "I8", "AFFINE", pad=0, **aff)]),
             Graph((8, 8, 8), "RAW", 0, [Conv(w5, "I8", "AFFINE", pad=2, **aff)]),
             Graph((8, 8, 8), "THRESH", 128, [Conv(w8, "I8", "AFFINE", pad=1, **aff)]),
             Graph((8, 8, 8), "RAW", 0, [Conv(w8.astype(np.int16), "I16", "AFFINE", pad=1, **aff)])]
    x = r.integers(0, 256, (2, 8, 8, 8)).astype(np.uint8)
    for g in cases:
        m = _model_check(g, x, g.layers[0])
        with K.use_winograd_i8("always"):
            assert _wino_layers(m) == [0], g.layers[0]


def test_auto_mode_follows_the_shape_rule(variant):
    lib = K._lib()[1]
    kind = lib.eq_host_u8_kind()
    for c, n, h, w in [(64, 64, 16, 16), (32, 32, 8, 8), (16, 16, 32, 32), (4, 4, 4, 4), (3, 8, 9, 9)]:
        g = wino_graph(1, c, n, h, w, "SIGN")
        m = Model(pack.write_blob(g), threads=1)
        with K.use_winograd_i8("auto"):
            assert _wino_layers(m) == [int(lib.eq_host_wino_i8_worth(kind, c, n, h, w))], (c, n, h, w)
