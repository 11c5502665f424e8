"""The Cortex-M kernel variants (issue 11) against the numpy reference, on the emulated boards.

The host runs only the portable C path of firmware/kernels; the Thumb-2 DSP loops (Cortex-M4
on qemu-mps2-an386, M55 on qemu-mps3-an547) and the M3's portable build (qemu-lm3s6965) run
here: one-layer models (B1 and TERN weights on B1, U8 and 2-/4-bit code activations, I8 on U8,
TERN_SPARSE on B1) whose AFFINE output (mul 1, add 0, shift 0) is the conv's accumulators, over
awkward shapes (channel counts around the 32-bit word and the 3-word groups, output channels past
the 64-channel chunk, borders, strides, 1x1 and dense), compared with edgeq.reference.ref.conv2d_ref and
with the host runtime, exactly."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.deploy.client import Board
from edgeq.format.graph import Conv, Graph
from edgeq.format.pack import write_blob
from edgeq.reference.ref import conv2d_ref
from edgeq.native.runtime import Model

pytestmark = pytest.mark.qemu

# (C, H, W, N, kh, kw, stride, pad); out_h * out_w * N <= 1000 (the scores fit one reply frame)
SHAPES = [
    (32, 3, 4, 70, 3, 3, 1, 1), (64, 4, 5, 3, 3, 3, 1, 1), (33, 5, 4, 65, 3, 3, 2, 1),
    (31, 6, 3, 5, 2, 3, 1, 0), (70, 3, 4, 4, 3, 3, 1, 2), (96, 2, 2, 9, 1, 1, 1, 0),
    (1024, 1, 1, 20, 1, 1, 1, 0), (40, 4, 4, 6, 4, 4, 1, 0), (5, 5, 5, 7, 5, 5, 1, 2),
    (1, 5, 5, 33, 3, 3, 1, 1), (3, 5, 4, 2, 1, 1, 2, 0),
    (16, 6, 7, 20, 3, 3, 1, 1), (12, 7, 6, 10, 3, 3, 2, 1),  # B1: two pixels a word (C <= 16)
    # B1 x B1 3x3 on <= 16 channels fused with the stage (eq_conv_b1_pair.c): stride 2, pad 0,
    # 8 / 15 channels, odd widths, 1x1 / 2x2 / 3x3 images, several 16-channel passes
    (15, 5, 9, 17, 3, 3, 2, 1), (8, 3, 3, 33, 3, 3, 1, 1), (16, 2, 2, 40, 3, 3, 1, 1),
    (16, 1, 1, 16, 3, 3, 1, 1), (16, 9, 8, 16, 3, 3, 2, 0),
]


def _need(name):
    why = boards.toolchain_missing(name)
    if why or not shutil.which(boards.QEMU):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")


@pytest.fixture(scope="module", autouse=True)
def private_state(private_board_state):
    """Boards started here live in a private state folder (tests/conftest.py)."""


def _case(i, shape, act_enc, w_enc="B1"):
    """One-layer model (B1 or TERN weights on a THRESH bit input or RAW U8 pixels), its input,
    and the numpy reference accumulators."""
    c, h, w, n, kh, kw, stride, pad = shape
    rng = np.random.default_rng(100 + i)
    wt = rng.choice(np.array([-1, 1], np.int8), size=(n, kh, kw, c))
    if w_enc == "I8":
        wt = rng.integers(-128, 128, wt.shape).astype(np.int8)
    if w_enc in ("TERN", "TERN_SPARSE"):
        wt = (wt * (rng.random(wt.shape) >= 0.5)).astype(np.int8)
        wt[0] = 0  # an all-zero row
    quant = act_enc.startswith("Q")  # "Q2" / "Q4": QUANT input, 2-/4-bit U8 codes
    pre = ("THRESH", 128) if act_enc == "B1" else ("QUANT", int(act_enc[1])) if quant else ("RAW", 0)
    g = Graph((c, h, w), *pre, [Conv(wt, w_enc, "AFFINE", stride=stride, pad=pad,
                                     mul=np.ones(n, np.int32), add=np.zeros(n, np.int32))])
    px = rng.integers(0, 256, (c, h, w), dtype=np.uint8)
    hwc = px.transpose(1, 2, 0).astype(np.int64)
    if quant:
        hwc = (hwc * ((1 << int(act_enc[1])) - 1) + 127) // 255
    act = np.where(hwc >= 128, 1, -1) if act_enc == "B1" else hwc
    enc = "U8" if quant else act_enc
    return write_blob(g), px, conv2d_ref(act, enc, wt, w_enc, stride, pad).astype(np.int64)


def _sign_case(n, c=8, h=4, w=5, stride=1):
    """B1 conv -> SIGN (random thresholds, some flipped, n channels: whole and partial words)
    -> 1x1 B1 conv with AFFINE output, so every output bit of the SIGN stage reaches the scores
    (no numpy reference here: the host runtime is checked against numpy in test_runtime)."""
    rng = np.random.default_rng(n + 100 * c)
    w1 = rng.choice(np.array([-1, 1], np.int8), size=(n, 3, 3, c))
    w2 = rng.choice(np.array([-1, 1], np.int8), size=(5, 1, 1, n))
    g = Graph((c, h, w), "THRESH", 128, [
        Conv(w1, "B1", "SIGN", stride=stride, pad=1,
             thr=rng.integers(-3 * c, 3 * c + 1, n).astype(np.int32), flip=rng.random(n) < 0.4),
        Conv(w2, "B1", "AFFINE", mul=rng.integers(1, 4, 5).astype(np.int32),
             add=rng.integers(-9, 9, 5).astype(np.int32))])
    return write_blob(g), rng.integers(0, 256, (c, h, w), dtype=np.uint8), None


def _affine_case(c, h, w, n, stride, shift):
    """B1 x B1 3x3 conv whose AFFINE constants are the exporter's scale (|mul|, |add| near 2**31):
    the fused path's 32-bit split of the 64-bit stage (eq_conv_b1_pair.c)."""
    rng = np.random.default_rng(c * h + n)
    wt = rng.choice(np.array([-1, 1], np.int8), size=(n, 3, 3, c))
    g = Graph((c, h, w), "THRESH", 128, [
        Conv(wt, "B1", "AFFINE", stride=stride, pad=1, shift=shift,
             mul=rng.integers(-2**31, 2**31, n).astype(np.int32),
             add=rng.integers(-2**31, 2**31, n).astype(np.int32))])
    px = rng.integers(0, 256, (c, h, w), dtype=np.uint8)
    acc = conv2d_ref(np.where(px.transpose(1, 2, 0) >= 128, 1, -1), "B1", wt, "B1", stride, 1).astype(np.int64)
    g0 = g.layers[0]
    y = (acc * g0.mul.astype(np.int64) + g0.add.astype(np.int64)) >> shift
    return write_blob(g), px, np.clip(y, -2**31, 2**31 - 1)


@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-mps3-an547", "qemu-lm3s6965"])
def test_conv_accumulators_equal_reference_on_board(name, tmp_path):
    _need(name)
    fw = boards.get(name).firmware  # the small M3 takes the cases that fit its buffers
    cases = [_case(i, s, a, w) for a, w in (("B1", "B1"), ("U8", "B1"), ("B1", "TERN"),
                                            ("Q2", "B1"), ("Q4", "B1"), ("Q2", "TERN"),
                                            ("Q4", "TERN"), ("U8", "TERN"), ("U8", "I8"),
                                            ("B1", "TERN_SPARSE"))
             for i, s in enumerate(SHAPES)]
    cases += [_sign_case(n) for n in (1, 31, 64, 70)]
    cases += [_sign_case(*a) for a in ((17, 16, 5, 7, 1), (40, 12, 6, 5, 2), (16, 15, 1, 3, 1), (33, 16, 3, 3, 2))]
    cases += [_affine_case(*a) for a in ((16, 5, 6, 16, 1, 9), (15, 7, 5, 20, 2, 11), (16, 2, 3, 9, 1, 10))]
    cases = [c for c in cases if len(c[0]) <= int(fw["model_buf"])
             and Model(c[0]).arena_size <= int(fw["arena"])
             and 4 * Model(c[0]).n_classes + 16 <= int(fw["max_payload"])
             and Model(c[0]).input_wire_bytes <= int(fw["max_payload"])]
    assert cases
    path = tmp_path / "m.eqb"
    path.write_bytes(min((c[0] for c in cases), key=len))  # flashed first; the rest over serial
    run, _ = boards.flash(name, path, log=lambda s: None)
    try:
        with Board(run.url) as b:
            for blob, px, want in cases:
                b.load(blob)
                model = Model(blob)
                wire = model.wire_input(px)
                _, got = b.infer(wire, timeout=60)
                _, host = model.predict_wire(wire)
                if want is not None:
                    assert np.array_equal(host, want.reshape(-1)), "host runtime != numpy reference"
                assert np.array_equal(got, host), (name, px.shape, "board != host runtime")
    finally:
        boards.stop(name)
