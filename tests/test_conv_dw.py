"""Depthwise convolutions (groups = C = N) through the fused bit-sliced paths (eq_conv_dw.c) and
the row loop: one-layer-plus-head models over awkward shapes (channels around the 32-bit word,
strides 1 and 2, per-axis stride/pad, paddings past the kernel, odd sizes, 1-D and 1x1 kernels),
every output stage (SIGN: fused; MULTI / AFFINE: the row loop), B1 and TERN weights on B1 inputs,
thresholds at and past the accumulator's range (clamps, INT32 extremes, flips). The C runtime's
every layer output equals the numpy reference (edgeq.reference.refnet); on the emulated boards
(Cortex-M4 qemu-mps2-an386 and the M3 qemu-lm3s6965, no DSP, 4 KB stack) the scores equal the
host runtime's, whose head (a 1x1 conv with AFFINE output over every depthwise output bit) makes
each output bit count."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.deploy.client import Board
from edgeq.format import pack
from edgeq.format.graph import Conv, Graph, infer_shapes
from edgeq.native.kernels import _lib as lib
from edgeq.native.runtime import Model
from edgeq.reference import refnet
from test_c_strict import _load_run, load_run  # noqa: F401 (fixture: ASan/UBSan loader + executor)
from test_runtime_dag import _value_bytes

# (C, H, W, kh, kw, stride, pad): stride / pad an int or (vertical, horizontal)
SHAPES = [
    (1, 5, 6, 3, 3, 1, 1), (7, 5, 5, 3, 3, 1, 1), (31, 4, 7, 3, 3, 2, 1), (32, 6, 5, 3, 3, 1, 1),
    (33, 5, 3, 3, 3, 2, 1), (64, 3, 4, 3, 3, 1, 1), (65, 4, 3, 3, 3, 1, 0), (8, 7, 9, 3, 3, 2, 1),
    (16, 6, 6, 3, 3, 2, 0), (5, 1, 9, 1, 3, 1, 1), (9, 7, 1, 3, 1, 1, (1, 0)), (12, 5, 5, 2, 2, 1, 1),
    (3, 6, 5, 3, 2, (2, 1), (1, 0)), (40, 3, 3, 3, 3, 1, 2), (6, 2, 2, 3, 3, 1, 2), (10, 4, 4, 1, 1, 1, 0),
    (2, 4, 6, 3, 3, (1, 2), (0, 1)), (70, 2, 3, 3, 3, 1, 1), (4, 9, 8, 4, 4, 1, 1),  # 16 taps: row loop
    # wide rows: the U8 path's ring of plane rows fits the accumulator row with few channels too
    (7, 3, 40, 3, 3, 1, 1), (8, 5, 30, 3, 3, 2, 1), (16, 4, 20, 3, 2, (1, 2), (1, 0)), (12, 3, 25, 1, 3, 1, 1),
]
STAGES = ["SIGN", "MULTI", "AFFINE"]


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def dw_graph(rng, shape, w_enc, stage, extreme=False, bits=0, out_bits=2):
    """Input (C, H, W): THRESH bits (bits 0) or QUANT `bits`-bit U8 codes -> depthwise conv
    (w_enc, `stage`, MULTI with `out_bits`) -> 1x1 head, AFFINE."""
    c, h, w, kh, kw, stride, pad = shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(pad)
    wt = rng.choice(np.array([-1, 1], np.int8), (c, kh, kw, 1))
    if w_enc == "TERN":
        wt = (wt * (rng.random(wt.shape) < 0.6)).astype(np.int8)
        wt[0] = 0  # a channel of all-zero weights
    k = kh * kw * (1 if bits == 0 else (1 << bits) - 1)  # |acc| <= k
    kwargs = {}
    if stage == "SIGN":
        thr = rng.integers(-k - 2, k + 3, c)
        if extreme:
            thr[::3] = rng.choice([-2**31, 2**31 - 1, -2**31 + 1, 2**31 - 2], len(thr[::3]))
        kwargs = dict(thr=thr.astype(np.int32), flip=rng.random(c) < 0.4)
    elif stage == "MULTI":
        nt = (1 << out_bits) - 1
        thr = rng.integers(-k - 1, k + 2, (c, nt))
        if extreme:
            thr[::4, 0] = rng.choice([-2**31, 2**31 - 1], len(thr[::4]))
        kwargs = dict(thr=thr.astype(np.int32), flip=rng.random(c) < 0.4, out_bits=out_bits)
    else:
        kwargs = dict(mul=np.ones(c, np.int32), add=np.zeros(c, np.int32))
    dw = Conv(wt, w_enc, stage, stride=sh, pad=ph, stride_w=sw, pad_w=pw, groups=c, **kwargs)
    layers = [dw]
    if stage != "AFFINE":  # a head that reads every output of the depthwise layer
        hw = rng.choice(np.array([-1, 1], np.int8), (6, 1, 1, c))
        head_enc = "B1" if stage == "SIGN" else "TERN"
        layers.append(Conv(hw, head_enc, "AFFINE", mul=rng.integers(1, 9, 6).astype(np.int32),
                           add=rng.integers(-9, 9, 6).astype(np.int32)))
    return Graph((c, h, w), *(("THRESH", 128) if bits == 0 else ("QUANT", bits)), layers)


def _cases():
    out = []
    for i, shape in enumerate(SHAPES):
        for w_enc in ("B1", "TERN"):
            for stage in STAGES:
                rng = np.random.default_rng(1000 * i + 10 * STAGES.index(stage) + (w_enc == "TERN"))
                out.append((f"{shape} {w_enc} {stage}", dw_graph(rng, shape, w_enc, stage, extreme=i % 2 == 1),
                            rng.integers(0, 256, (3,) + (shape[0], shape[1], shape[2]), dtype=np.uint8)))
                # U8 codes: 2-bit (the fused plane path; MULTI with 3 and 1 thresholds) and
                # 3-bit (codes past 3: the row loop)
                for bits, ob in ((2, 2), (2, 1), (3, 2)):
                    if stage == "AFFINE" and ob == 1:
                        continue
                    out.append((f"{shape} {w_enc} {stage} u{bits} o{ob}",
                                dw_graph(rng, shape, w_enc, stage, extreme=i % 2 == 0, bits=bits, out_bits=ob),
                                rng.integers(0, 256, (3,) + (shape[0], shape[1], shape[2]), dtype=np.uint8)))
    return out


def test_fused_path_applies_where_documented():
    """eq_conv_dw_applies: the fused depthwise paths take groups = C = N, kernels up to 3x3, B1 /
    TERN weights, and B1 input with SIGN or U8 input with SIGN / MULTI; the rest: the row loop."""
    ffi, L = lib()
    s = ffi.new("eq_conv_shape_t *")
    s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c = 5, 5, 40, 5, 5, 40
    s.kh, s.kw, s.stride, s.pad = 3, 3, 1, 1
    B1, TERN, U8, I8 = L.EQ_ENC_B1, L.EQ_ENC_TERN, L.EQ_ENC_U8, L.EQ_ENC_I8
    assert L.eq_conv_dw_applies(s, 40, B1, B1, L.EQ_OUT_SIGN)
    assert L.eq_conv_dw_applies(s, 40, B1, TERN, L.EQ_OUT_SIGN)
    assert not L.eq_conv_dw_applies(s, 20, B1, B1, L.EQ_OUT_SIGN)  # grouped, not depthwise
    assert not L.eq_conv_dw_applies(s, 40, B1, I8, L.EQ_OUT_SIGN)
    assert not L.eq_conv_dw_applies(s, 40, B1, B1, L.EQ_OUT_AFFINE)
    assert not L.eq_conv_dw_applies(s, 40, B1, B1, L.EQ_OUT_MULTI)
    assert L.eq_conv_dw_applies(s, 40, U8, TERN, L.EQ_OUT_MULTI)
    assert L.eq_conv_dw_applies(s, 40, U8, B1, L.EQ_OUT_SIGN)
    assert not L.eq_conv_dw_applies(s, 40, U8, TERN, L.EQ_OUT_AFFINE)
    s.kh = s.kw = 4
    assert not L.eq_conv_dw_applies(s, 40, B1, B1, L.EQ_OUT_SIGN)  # 16 taps


@pytest.mark.parametrize("what,g,x", _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_depthwise_c_equals_reference(what, g, x):
    blob = pack.write_blob(g)
    m = Model(blob)
    rs, rc = refnet.run(g, x)
    c1, s1 = m.predict_one(x)
    assert np.array_equal(s1, rs) and np.array_equal(c1, rc), f"{what}: eq_model_run != refnet"
    c2, s2 = m.predict(x, threads=2)
    assert np.array_equal(s2, rs) and np.array_equal(c2, rc), f"{what}: host executor != refnet"
    gs = pack.read_blob(blob)
    shapes = infer_shapes(gs)
    for img in x[:2]:
        outs = refnet.layer_outputs(gs, img)
        for i in range(len(gs.layers)):
            got = m.layer_output(img, i).tobytes()
            want = _value_bytes(outs[i], shapes[i].out_enc)
            if got != want:
                a, b = np.frombuffer(got, np.uint8), np.frombuffer(want, np.uint8)
                j = int(np.flatnonzero(a != b)[0])
                pytest.fail(f"{what}: layer {i} output differs first at byte {j}: {a[j]} != {b[j]}")


@pytest.fixture(scope="module")
def private_state(private_board_state):
    """Boards started here live in a private state folder (tests/conftest.py)."""


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-lm3s6965"])
def test_depthwise_on_board_equals_host(name, tmp_path, private_state):
    why = boards.toolchain_missing(name)
    if why or not shutil.which(boards.QEMU):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
    fw = boards.get(name).firmware
    cases = []
    for what, g, x in _cases():
        blob = pack.write_blob(g)
        m = Model(blob)
        if (len(blob) <= int(fw["model_buf"]) and m.arena_size <= int(fw["arena"])
                and 4 * m.n_classes + 16 <= int(fw["max_payload"]) and m.input_wire_bytes <= int(fw["max_payload"])):
            cases.append((what, blob, m, x))
    assert len(cases) >= len(SHAPES) * 4, "most cases must fit the board"
    # every case runs on the host (test_depthwise_c_equals_reference); the boards take a
    # deterministic sample (their load + CRC check per blob dominates): half on the M4 (its DSP /
    # Thumb-2 variants), a third, offset, on the M3 (the portable C the host runs too)
    cases = cases[::2] if name == "qemu-mps2-an386" else cases[1::3]
    path = tmp_path / "m.eqb"
    path.write_bytes(cases[0][1])
    run, _ = boards.flash(name, path, log=lambda s: None)
    try:
        with Board(run.url) as b:
            for what, blob, m, x in cases:
                b.load(blob)
                for img in x[:1]:  # one image per case on the board (the host tests take all three)
                    wire = m.wire_input(img)
                    cls, got = b.infer(wire, timeout=60)
                    hcls, host = m.predict_wire(wire)
                    assert cls == hcls and np.array_equal(got, host), f"{name} {what}: board != host runtime"
    finally:
        boards.stop(name)


# ---- TERN weights on 2-bit U8 codes (eq_row_u8_tern2: bit planes, SWAR popcounts) ---------------
# (C, H, W, N, kh, kw, stride, pad): 1x1 (the TWN pointwise layers, any C), 3x3 with K =
# kh*kw*CW up to and past the 32-word patch, channel counts around the word and the 4-byte step
T2_SHAPES = [
    (64, 5, 5, 64, 1, 1, 1, 0), (8, 6, 7, 16, 1, 1, 1, 0), (16, 4, 4, 32, 1, 1, 1, 0), (32, 3, 3, 32, 1, 1, 1, 0),
    (1, 5, 4, 7, 1, 1, 1, 0), (7, 4, 5, 9, 1, 1, 2, 0), (31, 3, 4, 5, 1, 1, 1, 0), (33, 3, 3, 65, 1, 1, 1, 0),
    (65, 2, 3, 3, 1, 1, 1, 0), (128, 2, 2, 20, 1, 1, 1, 0), (1024, 1, 1, 4, 1, 1, 1, 0), (1056, 1, 1, 3, 1, 1, 1, 0),
    (2100, 1, 3, 5, 1, 1, 1, 0), (1030, 2, 2, 3, 1, 1, 2, 0),  # 1x1 past 32 words: in chunks
    (5, 3, 4, 6, 1, 1, 1, 0), (12, 3, 3, 5, 1, 1, 2, 0), (16, 2, 3, 70, 1, 1, 1, 0), (3, 2, 2, 130, 1, 1, 1, 0),
    (5, 6, 5, 8, 3, 3, 1, 1), (64, 4, 4, 6, 3, 3, 2, 1), (96, 3, 3, 4, 3, 3, 1, 1), (97, 3, 3, 4, 3, 3, 1, 1),
    (3, 7, 6, 5, 3, 2, (2, 1), (1, 0)),
]


@pytest.mark.parametrize("shape", T2_SHAPES, ids=str)
def test_tern_on_2bit_codes_equals_reference(shape):
    """eq_conv2d_row (TERN x U8) on codes 0..3 (the 2-bit plane path) and on codes past 3 (a
    code of 4 or 255 in the patch: the general path) equals conv2d_ref."""
    from edgeq.native import kernels as K
    from edgeq.reference.ref import conv2d_ref
    c, h, w, n, kh, kw, st, pd = shape
    rng = np.random.default_rng(c * 1000 + n)
    wt = rng.choice(np.array([-1, 0, 0, 1], np.int8), (n, kh, kw, c))
    wt[0] = 0
    for hi in (3, 4, 255):
        a = rng.integers(0, 4, (h, w, c))
        if hi > 3:
            a.flat[int(rng.integers(0, a.size))] = hi
        got = K.conv2d(a, "U8", wt, "TERN", st, pd)
        want = conv2d_ref(a, "U8", wt, "TERN", st, pd)
        assert np.array_equal(got, want), (shape, hi, np.argwhere(got != want)[:3])


def test_depthwise_and_2bit_paths_under_sanitizers(load_run, tmp_path):  # noqa: F811
    """Every depthwise model above and 1x1 TERN layers on 2-bit codes (few channels, one patch,
    32-word chunks) load and run under ASan/UBSan."""
    blobs = {f"dw{i}": pack.write_blob(g) for i, (_, g, _) in enumerate(_cases())}
    rng = np.random.default_rng(5)
    for c, w, n in ((8, 9, 16), (64, 5, 64), (2100, 3, 5)):
        wt = rng.choice(np.array([-1, 0, 1], np.int8), (n, 1, 1, c))
        blobs[f"t2_{c}"] = pack.write_blob(Graph((c, 2, w), "QUANT", 2, [
            Conv(wt, "TERN", "AFFINE", mul=np.ones(n, np.int32), add=np.zeros(n, np.int32))]))
    assert _load_run(load_run, blobs, tmp_path) == {k: 0 for k in blobs}
