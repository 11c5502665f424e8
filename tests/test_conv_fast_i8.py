"""The I8-weight whole-layer fast paths through eq_model_run equal the numpy reference and the
host executor's direct path bit for bit, on the host and on the emulated boards, and the packer's
arena equals the C loader's:
- integer Winograd F(2x2, 3x3) (firmware/kernels/eq_conv_wino_i8.c): U8 x I8 3x3 stride 1 pad 1;
- I8 weights on B1 activations as 8 bit planes through the B1 x B1 row kernel (eq_conv_i8_b1.c)."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from edgeq.format import pack
from edgeq.format.graph import Conv, Graph, MaxPool, infer_shapes
from edgeq.native.runtime import Model
from edgeq.reference import refnet


def _stage(rng, n, out):
    if out == "SIGN":
        return dict(thr=rng.integers(-3000, 3000, n).astype(np.int32), flip=rng.random(n) < 0.3)
    if out == "MULTI":
        thr = np.sort(rng.integers(-20000, 20000, (n, 3)), axis=1).astype(np.int32)
        return dict(thr=thr, flip=rng.random(n) < 0.3, out_bits=2)
    return dict(mul=rng.integers(-3, 4, n).astype(np.int32), add=rng.integers(-99, 99, n).astype(np.int32),
                shift=int(rng.integers(0, 3)))


def wino_graph(seed: int, c: int, n: int, h: int, w: int, out: str = "AFFINE", pre: str = "RAW",
               extreme: int = 0, tail: bool = False) -> Graph:
    """input (c, h, w) -> I8 3x3 pad-1 conv (the Winograd candidate) [-> maxpool -> dense]."""
    rng = np.random.default_rng(seed)
    wt = rng.integers(-128, 128, (n, 3, 3, c)).astype(np.int8)
    if extreme:
        wt[: max(1, n // 2)] = extreme
    layers = [Conv(wt, "I8", out, pad=1, name="wino", **_stage(rng, n, out))]
    if tail and out != "AFFINE":  # a small head on the layer's B1 / U8 output
        oh, ow = h // 2, w // 2
        layers += [MaxPool(2, 2), Conv(rng.choice(np.array([-1, 1], np.int8), (5, oh, ow, n)), "B1", "AFFINE",
                                       mul=np.ones(5, np.int32), add=np.zeros(5, np.int32))]
    return Graph((c, h, w), pre, {"RAW": 0, "QUANT": 3}.get(pre, 128), layers)


def i8b1_graph(seed: int, c: int, n: int, h: int, w: int, out: str, kh: int = 3, kw: int = 3,
               stride: int = 1, pad: int = 1, extreme: int = 0) -> Graph:
    """THRESH (B1) input (c, h, w) -> I8 conv (the bit-plane candidate)."""
    rng = np.random.default_rng(seed)
    wt = rng.integers(-128, 128, (n, kh, kw, c)).astype(np.int8)
    if extreme:
        wt[: max(1, n // 2)] = extreme
    return Graph((c, h, w), "THRESH", 128, [Conv(wt, "I8", out, stride=stride, pad=pad, name="planes",
                                                 **_stage(rng, n, out))])


def _check(g, x, what):
    blob = pack.write_blob(g)
    m = Model(blob)
    ref = refnet.run(g, x)[0]
    got = m.predict_one(x)[1]  # eq_model_run: the fast path
    direct = m.predict(x)[1]   # host executor: im2col + u8 x s8 GEMM (or the row loop)
    assert np.array_equal(direct, ref), f"{what}: host executor differs from the reference"
    if not np.array_equal(got, ref):
        bad = tuple(np.argwhere(got != ref)[0])
        pytest.fail(f"{what}: eq_model_run {got[bad]} != reference {ref[bad]} at {bad}")
    return m, blob


def _uses_fast(g) -> bool:
    s = infer_shapes(g)[0]
    return pack.conv_fast_scratch(g.layers[0], s) > 0


_uses_wino = _uses_fast


@pytest.mark.parametrize("seed", range(24))
def test_winograd_equals_reference_on_random_shapes(seed):
    rng = np.random.default_rng(100 + seed)
    c = int(rng.choice([4, 5, 7, 8, 13, 16, 33]))
    n = int(rng.choice([4, 5, 8, 9, 31]))
    h, w = (int(v) for v in rng.integers(4, 12, 2))
    out = ("SIGN", "MULTI", "AFFINE")[seed % 3]
    pre = ("RAW", "QUANT")[seed % 2]
    g = wino_graph(seed, c, n, h, w, out, pre, tail=seed % 4 == 1)
    assert _uses_wino(g)
    x = rng.integers(0, 256, (4, c, h, w)).astype(np.uint8)
    _check(g, x, (c, n, h, w, out, pre))


@pytest.mark.parametrize("c,n,h,w", [(4, 4, 4, 4), (5, 7, 5, 4), (4, 9, 4, 13), (9, 4, 13, 5),
                                     (6, 6, 7, 7), (64, 64, 16, 16)])
def test_winograd_at_the_accumulator_extremes(c, n, h, w):
    """weights -128 / 127 on codes 255: the largest |acc| the layer can reach, both signs"""
    for v in (-128, 127):
        g = wino_graph(c * n + h, c, n, h, w, "AFFINE", extreme=v)
        g.layers[0].mul[:] = 1
        g.layers[0].add[:] = 0
        g.layers[0].shift = 0
        x = np.full((3, c, h, w), 255, np.uint8)
        x[1] = np.random.default_rng(v & 0xFF).integers(0, 256, (c, h, w))
        x[2, :, ::2] = 0
        m, _ = _check(g, x, (c, n, h, w, v))
        acc = m.predict_one(x)[1]
        if v == -128:  # the centre pixel of the all-255 image: 9 taps x C x 255 x -128
            assert acc.min() == -128 * 255 * 9 * c


def test_winograd_accumulator_bound_is_the_shape_rule():
    """4 * |acc| must fit int32: C = 1827 still runs Winograd (exactly), C = 1828 the direct loop."""
    for c, wino in ((1827, True), (1828, False)):
        g = wino_graph(c, c, 4, 4, 4, "AFFINE", extreme=-128)
        g.layers[0].mul[:] = 1
        g.layers[0].add[:] = 0
        g.layers[0].shift = 0
        assert _uses_wino(g) is wino
        x = np.full((1, c, 4, 4), 255, np.uint8)
        m, _ = _check(g, x, c)
        assert m.predict_one(x)[1].min() == -128 * 255 * 9 * c  # -2**29 + ... : near the bound


def test_packer_arena_equals_the_c_loader():
    """The header's arena_size (pack.conv_fast_scratch) is what the C loader asks for, with and
    without the fast path (too few channels or pixels, stride 2, 5x5, B1 input, I16 weights)."""
    rng = np.random.default_rng(3)
    cases = [wino_graph(1, 8, 8, 8, 8), wino_graph(2, 3, 8, 8, 8), wino_graph(3, 8, 3, 8, 8),
             wino_graph(4, 8, 8, 3, 9), wino_graph(5, 200, 100, 6, 30, "SIGN")]
    w16 = rng.integers(-99, 99, (8, 3, 3, 8)).astype(np.int16)
    cases.append(Graph((8, 8, 8), "RAW", 0, [Conv(w16, "I16", "AFFINE", pad=1, mul=np.ones(8, np.int32),
                                                   add=np.zeros(8, np.int32))]))
    w8 = rng.integers(-99, 99, (8, 3, 3, 8)).astype(np.int8)
    for kw in (dict(stride=2, pad=1), dict(pad=0)):
        cases.append(Graph((8, 8, 8), "RAW", 0, [Conv(w8, "I8", "AFFINE", mul=np.ones(8, np.int32),
                                                      add=np.zeros(8, np.int32), **kw)]))
    cases.append(Graph((8, 8, 8), "THRESH", 128, [Conv(w8, "I8", "AFFINE", pad=1, mul=np.ones(8, np.int32),
                                                       add=np.zeros(8, np.int32))]))
    for g in cases:
        blob = pack.write_blob(g)
        assert pack.read_header(blob)["arena_size"] == Model(blob).arena_size, g.layers[0]
    assert [_uses_wino(g) for g in cases[:5]] == [True, False, False, False, True]


@pytest.mark.parametrize("seed", range(24))
def test_i8_on_b1_planes_equal_reference_on_random_shapes(seed):
    rng = np.random.default_rng(200 + seed)
    c = int(rng.choice([8, 9, 31, 32, 33, 64, 95]))
    n = int(rng.choice([1, 2, 5, 8, 17]))
    out = ("SIGN", "MULTI", "AFFINE")[seed % 3]
    ext = (0, -128, 127)[seed % 3]
    while True:  # a shape with at least 16 output pixels (the path's rule)
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, min(kh, kw)))
        h, w = (int(v) for v in rng.integers(max(kh, kw) + 2, 14, 2))
        g = i8b1_graph(seed, c, n, h, w, out, kh, kw, stride, pad, ext)
        if _uses_fast(g):
            break
    x = rng.integers(0, 256, (4, c, h, w)).astype(np.uint8)
    x[0] = 255  # all +1
    _check(g, x, (c, n, h, w, kh, kw, stride, pad, out))


def test_i8_on_b1_extremes_and_rule():
    """-128 / 127 everywhere on all +1 / all -1 inputs: acc = +-128 K exactly; the shape rule
    (8 input channels, 16 output pixels) decides, and both sides agree with the reference."""
    for c, h, w, fast in ((8, 4, 4, True), (7, 8, 8, False), (8, 3, 5, False), (300, 5, 4, True)):
        for v in (-128, 127):
            g = i8b1_graph(c + abs(v), c, 3, h, w, "AFFINE", extreme=v)
            g.layers[0].weight[:] = v
            g.layers[0].mul[:] = 1
            g.layers[0].add[:] = 0
            g.layers[0].shift = 0
            assert _uses_fast(g) is fast
            x = np.stack([np.full((c, h, w), 255, np.uint8), np.zeros((c, h, w), np.uint8)])
            m, _ = _check(g, x, (c, h, w, v))
            got = m.predict_one(x)[1].reshape(2, h, w, 3)
            assert got[0, 1, 1, 0] == 9 * c * v and got[1, 1, 1, 0] == -9 * c * v


# ---- the emulated boards: Winograd with SMLAD on the M4, portable on the M3 and sim; bit planes -

BOARD_GRAPHS = (  # (c, n, h, w, out, pre, extreme): inputs <= 1 KB and blobs <= 24 KB (the M3)
    (8, 9, 7, 9, "SIGN", "RAW", 0),
    (12, 8, 8, 6, "SIGN", "QUANT", -128),
    (8, 16, 6, 8, "MULTI", "RAW", 127),
    (5, 6, 5, 7, "AFFINE", "RAW", 0),  # portable rule only (DSP cores: the direct loop)
    (40, 7, 6, 6, "SIGN", "THRESH", -128),  # I8 x B1 bit planes
    (9, 5, 7, 5, "MULTI", "THRESH", 127),
)


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["sim", "qemu-mps2-an386", "qemu-lm3s6965"])
def test_i8_fast_paths_on_the_boards_equal_the_host(name, tmp_path, private_board_state):
    from edgeq.deploy import boards
    from edgeq.deploy.client import Board
    import boardutil as U

    why = boards.toolchain_missing(name)
    if why or (boards.get(name).kind == "qemu" and not shutil.which(boards.QEMU)):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
    blobs = []
    for i, (c, n, h, w, out, pre, ext) in enumerate(BOARD_GRAPHS):
        if pre == "THRESH":
            g = i8b1_graph(40 + i, c, n, h, w, out, extreme=ext)
            g.layers += wino_graph(0, 1, n, h, w, out, tail=True).layers[1:]
        else:
            g = wino_graph(40 + i, c, n, h, w, out, pre, extreme=ext, tail=True)
        assert _uses_fast(g)
        blobs.append((g, pack.write_blob(g)))
    path = tmp_path / "m.eqb"
    path.write_bytes(blobs[0][1])
    run, _ = boards.flash(name, path, log=lambda s: None)
    rng = random.Random(11)
    try:
        with Board(run.url) as b:
            for g, blob in blobs:
                assert b.load(blob).source == "ram"
                model = Model(blob)
                x = [np.frombuffer(bytes(rng.randrange(256) for _ in range(int(np.prod(g.input_shape)))),
                                   np.uint8).reshape(g.input_shape) for _ in range(6)]
                x.append(np.full(g.input_shape, 255, np.uint8))
                n, bad_cls, bad_scores, first = U.compare_on_board(b, model, x)
                assert n == 7 and bad_cls == 0 and bad_scores == 0, (name, g.input_shape, first)
                assert np.array_equal(model.predict(np.stack(x))[1], refnet.run(g, np.stack(x))[0])
    finally:
        boards.stop(name)
