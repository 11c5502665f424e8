"""The residual-block kernels of the C runtime (eq_exec.c, eq_conv1x1_b1b1.c) against the numpy
reference, on the host and on the emulated boards (the Thumb-2 paths: qemu-mps2-an386 is a
Cortex-M4 with DSP, qemu-mps3-an547 a Cortex-M55, qemu-lm3s6965 a Cortex-M3 without DSP):

- ADD -> SIGN fused in one pass per pixel (a 64-bit sum's sign per channel), for every pair of
  input encodings (I32 + I32, I32 + B1, B1 + I32, B1 + B1, U8 with each), channel counts around
  the 8-channel groups and the 32-channel chunks, multipliers at and near +-2**30, I32 inputs
  saturated at +-2**31 by an AFFINE stage, thresholds at INT32_MIN / INT32_MAX (constant
  channels) and flipped channels; ADD with the other stages (AFFINE, REQUANT) beside it.
- the AFFINE stage of B1 / TERN convs in its 32-bit form (|acc| bounded by K * max|a|) and its
  64-bit form, chunk by chunk.
- 1x1 B1 x B1 convs with in_c <= 32 (one word a pixel), strided and per-axis strided, for 8, 16,
  17, 32 and 33 input channels, with the AFFINE stage fused as a table over the in_c + 1
  accumulators (large mul / add / shift: saturating) and with SIGN / REQUANT stages."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.deploy.client import Board
from edgeq.format.graph import Add, Conv, Graph, infer_shapes
from edgeq.format.pack import write_blob
from edgeq.native.runtime import Model
from edgeq.reference import refnet

I32_MIN, I32_MAX = -2**31, 2**31 - 1


def _conv_stage(rng, w, out, n, src, name, pad=1, stride=1, stride_w=None, big=True):
    """Conv with weights w and a random out stage: AFFINE with mul/add over the whole int32
    range (big: most values saturate at +-2**31), REQUANT 8-bit, or SIGN."""
    kw = dict(stride=stride, pad=pad, stride_w=stride_w, src=src, name=name)
    if out == "AFFINE":
        if big:
            mul = rng.integers(I32_MIN, I32_MAX, n, endpoint=True)
            add = rng.integers(I32_MIN, I32_MAX, n, endpoint=True)
            shift = int(rng.integers(0, 24))
        else:
            mul, add, shift = rng.integers(-9, 10, n), rng.integers(-50, 50, n), 0
        return Conv(w, "B1", "AFFINE", mul=mul.astype(np.int32), add=add.astype(np.int32),
                    shift=shift, **kw)
    if out == "REQUANT":
        return Conv(w, "B1", "REQUANT", mul=rng.integers(1, 2**16, n).astype(np.int32),
                    add=rng.integers(-2**20, 2**20, n).astype(np.int32), shift=12, out_bits=8, **kw)
    return Conv(w, "B1", "SIGN", thr=rng.integers(-6, 7, n).astype(np.int32), flip=rng.random(n) < 0.4,
                **kw)


def _edge_thresholds(rng, n):
    thr = rng.choice(np.array([I32_MIN, I32_MIN + 1, I32_MAX, I32_MAX - 1, 0, -1, 1], np.int64), n)
    rnd = rng.random(n) < 0.3
    thr[rnd] = rng.integers(I32_MIN, I32_MAX, int(rnd.sum()), endpoint=True)
    return thr.astype(np.int32), rng.random(n) < 0.5


def _multipliers(rng, c):
    m = rng.choice(np.array([2**30, -2**30, 2**30 - 1, -(2**30 - 1), 1, -1, 0, 3, 2**25], np.int64), (2, c))
    rnd = rng.random((2, c)) < 0.25
    m[rnd] = rng.integers(-2**30, 2**30, int(rnd.sum()), endpoint=True)
    return m.astype(np.int32)


# (first input encoding, second input encoding, channels, h, w); h * w * c <= 252 scores (the
# M3's 1 KB reply frame)
ADD_CASES = [(e0, e1, c, h, w)
             for e0, e1 in (("I32", "I32"), ("I32", "B1"), ("B1", "I32"), ("B1", "B1"), ("U8", "I32"),
                            ("I32", "U8"), ("U8", "U8"), ("U8", "B1"), ("B1", "U8"), ("RAW", "I32"))
             for c, h, w in ((5, 6, 6), (17, 3, 4), (37, 2, 3))]


def _add_graph(seed, e0, e1, c, h, w, out="SIGN"):
    """Two convs from the raw input (their stages give the ADD's encodings; RAW: the input
    itself, U8 codes) -> ADD with edge multipliers -> out stage (the scores: every bit / value)."""
    rng = np.random.default_rng(seed)
    cin = c if "RAW" in (e0, e1) else 3
    g = Graph((cin, h, w), "RAW", 0, [])
    stage = {"I32": "AFFINE", "B1": "SIGN", "U8": "REQUANT"}
    srcs = []
    for k, e in enumerate((e0, e1)):
        if e == "RAW":
            srcs.append(0)
            continue
        wt = rng.choice(np.array([-1, 1], np.int8), (c, 3, 3, cin))
        g.layers.append(_conv_stage(rng, wt, stage[e], c, (0,), f"in{k}"))
        srcs.append(len(g.layers))
    m = _multipliers(rng, c)
    if out == "SIGN":
        thr, flip = _edge_thresholds(rng, c)
        g.layers.append(Add(m, src=tuple(srcs), out="SIGN", thr=thr, flip=flip, name="add"))
    elif out == "AFFINE":
        g.layers.append(Add(m, src=tuple(srcs), out="AFFINE", mul=rng.integers(-2**20, 2**20, c).astype(np.int32),
                            add=rng.integers(I32_MIN, I32_MAX, c).astype(np.int32), shift=20, name="add"))
    else:
        g.layers.append(Add(m, src=tuple(srcs), out="REQUANT", mul=rng.integers(1, 2**8, c).astype(np.int32),
                            add=rng.integers(-2**20, 2**20, c).astype(np.int32), shift=30, out_bits=8,
                            name="add"))
    g.classes = [f"c{i}" for i in range(h * w * c)]
    infer_shapes(g)
    return g, rng.integers(0, 256, (3, cin, h, w)).astype(np.uint8)


# (in_c, h, w, n, stride, stride_w, out stage): LUT-fused AFFINE (in_c + 1 < out pixels and the
# table fits the accumulator row, some in several channel chunks), SIGN / REQUANT through the row
# kernel, in_c 33 (two words: the general kernel), odd channel counts for the paired halves
C1X1_CASES = [(8, 9, 9, 7, 2, 2, "AFFINE"), (16, 11, 11, 6, 2, 2, "AFFINE"), (17, 7, 11, 4, 1, 2, "AFFINE"),
              (32, 11, 11, 6, 2, 2, "AFFINE"), (33, 9, 9, 6, 2, 2, "AFFINE"), (16, 6, 7, 5, 2, 1, "SIGN"),
              (32, 2, 5, 33, 1, 2, "SIGN"), (17, 6, 6, 11, 2, 2, "REQUANT"), (8, 4, 4, 3, 1, 1, "AFFINE"),
              (32, 4, 4, 6, 1, 1, "AFFINE"), (16, 5, 5, 9, 1, 1, "AFFINE")]


def _c1x1_graph(seed, cin, h, w, n, stride, stride_w, out):
    """THRESH bit input (cin channels) -> 1x1 B1 conv, strided, with the given stage; a SIGN /
    REQUANT output then goes through an ADD with itself (AFFINE, m = 1, 0) so the scores show it."""
    rng = np.random.default_rng(seed)
    g = Graph((cin, h, w), "THRESH", 128, [])
    wt = rng.choice(np.array([-1, 1], np.int8), (n, 1, 1, cin))
    g.layers.append(_conv_stage(rng, wt, out, n, (), "pw", pad=0, stride=stride, stride_w=stride_w,
                                big=seed % 2 == 0))
    if out != "AFFINE":
        one = np.stack([np.ones(n), np.zeros(n)]).astype(np.int32)
        g.layers.append(Add(one, src=(1, 1), out="AFFINE", mul=np.ones(n, np.int32),
                            add=np.zeros(n, np.int32), name="show"))
    shapes = infer_shapes(g)
    oh, ow, oc = shapes[-1].out_shape
    g.classes = [f"c{i}" for i in range(oh * ow * oc)]
    return g, rng.integers(0, 256, (3, cin, h, w)).astype(np.uint8)


# (input: "B1" THRESH bits / "U8" raw pixels, weight encoding, in channels, h, n, mul kind):
# out_w 13 (a row of >= 12 pixels takes the 32-bit AFFINE), 40 channels = two 32-channel chunks;
# "bn": |mul| ~2**29..2**31, shift ~10 (batch-norm folds: the 32-bit form); "big": mul / add over
# int32 with small shifts (the 64-bit form, saturating); "mixed": small mul but a few channels
# near 2**30 at shift 0..2 (their chunk falls back, the other stays 32-bit)
AFF_CASES = [("B1", "B1", 16, 2, 9, "bn"), ("B1", "B1", 16, 1, 40, "bn"), ("U8", "B1", 3, 2, 9, "bn"),
             ("U8", "TERN", 3, 1, 40, "bn"), ("B1", "TERN", 32, 2, 9, "big"), ("B1", "B1", 8, 1, 40, "mixed"),
             ("U8", "B1", 3, 2, 9, "mixed")]


def _affine_graph(seed, act, w_enc, cin, h, n, kind):
    """One 3x3 conv (pad 1, 13 columns) with an AFFINE stage of the given kind: the scores are
    its outputs."""
    rng = np.random.default_rng(seed)
    g = Graph((cin, h, 13), ("THRESH" if act == "B1" else "RAW"), (128 if act == "B1" else 0), [])
    wt = rng.choice(np.array([-1, 1] if w_enc == "B1" else [-1, 0, 1], np.int8), (n, 3, 3, cin))
    k = 9 * cin * (1 if act == "B1" else 255)
    if kind == "bn":
        shift = max(int(np.ceil(np.log2(k + 1))), 8) + int(rng.integers(0, 3))
        mul = rng.integers(2**29, 2**31, n) * rng.choice([-1, 1], n)
        add = rng.integers(I32_MIN, I32_MAX, n, endpoint=True)
    elif kind == "big":
        shift = int(rng.integers(0, 4))
        mul, add = (rng.integers(I32_MIN, I32_MAX, n, endpoint=True) for _ in range(2))
    else:
        shift = int(rng.integers(0, 3))
        mul, add = rng.integers(-2**12, 2**12, n), rng.integers(-2**20, 2**20, n)
        mul[rng.choice(n, 3, replace=False)] = 2**30 - int(rng.integers(0, 9))
    g.layers.append(Conv(wt, w_enc, "AFFINE", pad=1, mul=np.clip(mul, I32_MIN, I32_MAX).astype(np.int32),
                         add=add.astype(np.int32), shift=shift, name="conv"))
    g.classes = [f"c{i}" for i in range(h * 13 * n)]
    infer_shapes(g)
    return g, rng.integers(0, 256, (3, cin, h, 13)).astype(np.uint8)


def _all_cases():
    cases = [(f"add {e0}+{e1} c{c}",) + _add_graph(i, e0, e1, c, h, w)
             for i, (e0, e1, c, h, w) in enumerate(ADD_CASES)]
    cases += [(f"add {e0}+{e1} -> {out}",) + _add_graph(100 + i, e0, e1, 17, 3, 4, out)
              for i, (e0, e1) in enumerate((("I32", "I32"), ("I32", "B1"), ("U8", "B1")))
              for out in ("AFFINE", "REQUANT")]
    cases += [(f"1x1 {c}",) + _c1x1_graph(200 + i, *c) for i, c in enumerate(C1X1_CASES)]
    cases += [(f"affine {c}",) + _affine_graph(300 + i, *c) for i, c in enumerate(AFF_CASES)]
    return cases


def _check_host(what, g, x):
    blob = write_blob(g)
    m = Model(blob)
    rs, rc = refnet.run(g, x)
    c1, s1 = m.predict_one(x)
    assert np.array_equal(s1, rs) and np.array_equal(c1, rc), f"{what}: C runtime != numpy reference"
    return blob, rs


@pytest.mark.parametrize("i", range(len(ADD_CASES)))
def test_add_sign_every_encoding_pair_equals_reference(i):
    e0, e1, c, h, w = ADD_CASES[i]
    g, x = _add_graph(i, e0, e1, c, h, w)
    _, rs = _check_host(f"ADD {e0} + {e1}, {c} channels", g, x)
    assert len(np.unique(rs)) == 2  # both signs occur


def test_add_sign_saturation_edges_are_exercised():
    """The I32 inputs reach +-2**31 and the sums leave int32 (so sat32 matters) in these cases."""
    g, x = _add_graph(2, "I32", "I32", 37, 2, 3)
    outs = refnet.layer_outputs(g, x[0])
    a0, a1 = (np.asarray(outs[i], np.int64) for i in (0, 1))
    assert (a0 == I32_MAX).any() and (a0 == I32_MIN).any()
    s = g.layers[2].m[0].astype(np.int64) * a0 + g.layers[2].m[1].astype(np.int64) * a1
    assert (s > I32_MAX).any() and (s < I32_MIN).any()


@pytest.mark.parametrize("out", ["AFFINE", "REQUANT"])
@pytest.mark.parametrize("pair", [("I32", "I32"), ("I32", "B1"), ("U8", "B1")])
def test_add_other_stages_equal_reference(pair, out):
    g, x = _add_graph(7, *pair, 17, 3, 4, out)
    _check_host(f"ADD {pair} -> {out}", g, x)


@pytest.mark.parametrize("case", C1X1_CASES)
def test_conv1x1_b1b1_equals_reference(case):
    for seed in (0, 1):  # even: AFFINE mul / add over the whole int32 range; odd: small
        g, x = _c1x1_graph(seed, *case)
        _check_host(f"1x1 {case} seed {seed}", g, x)


@pytest.mark.parametrize("case", AFF_CASES)
def test_affine_stage_32_and_64_bit_forms_equal_reference(case):
    for seed in (0, 1, 2):
        g, x = _affine_graph(seed, *case)
        _check_host(f"AFFINE {case} seed {seed}", g, x)


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-mps3-an547", "qemu-lm3s6965"])
def test_residual_kernels_on_board_equal_reference(name, tmp_path, private_board_state):
    why = boards.toolchain_missing(name)
    if why or not shutil.which(boards.QEMU):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
    fw = boards.get(name).firmware
    cases = []
    for what, g, x in _all_cases():
        blob, rs = _check_host(what, g, x)
        m = Model(blob)
        if len(blob) <= int(fw["model_buf"]) and m.arena_size <= int(fw["arena"]) \
                and 4 * m.n_classes + 16 <= int(fw["max_payload"]):
            cases.append((what, blob, x, rs))
    n_big = sum(1 for c in AFF_CASES if c[4] > 9)  # 40 channels x 13: over the M3's reply frame
    assert len(cases) >= len(_all_cases()) - n_big, "the cases fit the board"
    path = tmp_path / "m.eqb"
    path.write_bytes(cases[0][1])
    run, _ = boards.flash(name, path, log=lambda s: None)
    try:
        with Board(run.url) as b:
            for what, blob, x, rs in cases:
                b.load(blob)
                model = Model(blob)
                for i, img in enumerate(x):
                    _, got = b.infer(model.wire_input(img), timeout=60)
                    assert np.array_equal(got, rs[i]), (name, what, i)
    finally:
        boards.stop(name)
