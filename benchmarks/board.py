"""Board benchmark on the reference Cortex-M4 (qemu-mps2-an386 under -icount).

1. Executed instructions per inference, per layer type, as binary MACs per instruction; the
   zoo's reference models (MLPerf Tiny's ResNet-8, DS-CNN, MobileNetV1-0.25, binary and ternary)
   whole, with blob and peak arena bytes, next to MLPerf Tiny's int8 cycles on a Cortex-M4. Under
   `-icount shift=5` one instruction advances virtual time by 32 ns and the board's CMSDK timer
   counts the 25 MHz clock (40 ns), so instructions = ticks * 40 / 32, exactly and identically on
   every run (docs/boards.md, "Ticks"). MACs come from each LAYER record's `macs`.
2. Link: frames/s of ECHO and INFER round trips against what the link's byte rate allows
   (the measured host->board byte rate of the emulated UART, and a real 115200-baud UART).

    python -m benchmarks.board [--board qemu-mps2-an386] [--json build/bench/board.json] [--reference-only]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeq.deploy import boards
from edgeq import spec
from edgeq.deploy import protocol as P
from edgeq.deploy.client import Board
from edgeq.format.graph import Conv, Graph, MaxPool
from edgeq.format.pack import write_blob

C = 32  # channels of the benchmarked middle layer


def _pm1(rng, shape):
    return rng.choice(np.array([-1, 1], np.int8), size=shape)


def _sign(rng, w, **kw):
    n = w.shape[0]
    dt = np.float32 if kw["w_enc"] == "F32" else np.int32  # F32 layers: float thresholds
    return Conv(w, kw.pop("w_enc"), "SIGN", thr=rng.integers(-3, 4, n).astype(dt),
                flip=np.zeros(n, bool), **kw)


def _wide(rng, enc, shape):
    """I8 / I16 / F32 weights of the layer under test."""
    if enc == "I8":
        return rng.integers(-127, 128, shape).astype(np.int8)
    if enc == "I16":
        return rng.integers(-3000, 3001, shape).astype(np.int16)
    return rng.standard_normal(shape).astype(np.float32)


def models() -> dict:
    """name -> Graph: 28x28 input -> conv 3x3 (1->C) -> the layer under test (3x3, C->C, pad 1)
    on 28x28 -> maxpool 2 -> dense AFFINE 10."""
    rng = np.random.default_rng(0)
    out = {}

    def head(pre="THRESH", param=128, first=None):
        return [first or _sign(rng, _pm1(rng, (C, 3, 3, 1)), w_enc="B1", pad=1, name="conv1")], pre, param

    def tail(layers, pre, param):
        dense = Conv(_pm1(rng, (10, 14, 14, C)), "B1", "AFFINE", mul=np.ones(10, np.int32),
                     add=np.zeros(10, np.int32), name="fc")
        return Graph((1, 28, 28), pre, param, layers + [MaxPool(2, 2, name="pool"), dense])

    for enc in ("B1", "TERN", "TERN_SPARSE", "I8", "I16", "F32"):
        layers, pre, param = head()
        if enc == "B1":
            w = _pm1(rng, (C, 3, 3, C))
        elif enc in ("I8", "I16", "F32"):
            w = _wide(rng, enc, (C, 3, 3, C))
        else:
            zero = 0.5 if enc == "TERN" else 0.85
            w = (_pm1(rng, (C, 3, 3, C)) * (rng.random((C, 3, 3, C)) >= zero)).astype(np.int8)
        layers.append(_sign(rng, w, w_enc=enc, pad=1, name=f"conv2_{enc.lower()}"))
        out[f"{enc.lower()}_on_b1"] = tail(layers, pre, param)
    # U8 activations: conv1 MULTI (2-bit codes) -> KBIT 2-bit weights with a LUT, I8/I16/F32
    for enc in ("KBIT", "I8", "I16", "F32"):
        n = C
        first = Conv(_pm1(rng, (n, 3, 3, 1)), "B1", "MULTI", pad=1, out_bits=2,
                     thr=np.sort(rng.integers(-4, 5, (n, 3)), axis=1).astype(np.int32),
                     flip=np.zeros(n, bool), name="conv1_multi")
        layers, pre, param = head(first=first)
        if enc == "KBIT":
            lut = (np.arange(4)[:, None] - 1.5).astype(np.int32) * np.arange(4)[None, :].astype(np.int32)
            w = rng.integers(0, 4, (C, 3, 3, C)).astype(np.uint8)
            conv2 = Conv(w, "KBIT", "SIGN", pad=1, thr=np.zeros(C, np.int32), flip=np.zeros(C, bool),
                         lut=lut, wbits=2, name="conv2_kbit")
        else:
            conv2 = _sign(rng, _wide(rng, enc, (C, 3, 3, C)), w_enc=enc, pad=1,
                          name=f"conv2_{enc.lower()}")
        layers.append(conv2)
        out[f"{enc.lower()}_on_u8"] = tail(layers, pre, param)
    return out


def layer_records(blob: bytes) -> list:
    hdr = dict(zip([f for f, _, _ in spec.HEADER], struct.unpack_from(spec.fmt(spec.HEADER), blob)))
    names = [f for f, _, _ in spec.LAYER]
    recs = []
    for i in range(hdr["n_layers"]):
        vals = struct.unpack_from(spec.fmt(spec.LAYER), blob, hdr["layer_table_off"] + i * spec.LAYER_SIZE)
        recs.append(dict(zip(names, vals)))
    return recs


def label(rec) -> str:
    op = spec.name_of(spec.OP, rec["op"])
    if op != "CONV":
        return f"{op} {spec.name_of(spec.ENC, rec['in_enc'])}"
    k = f"{rec['kh']}x{rec['kw']}"
    return (f"CONV {k} {spec.name_of(spec.ENC, rec['w_enc'])} w x {spec.name_of(spec.ENC, rec['in_enc'])} "
            f"in -> {spec.name_of(spec.OUT, rec['out_stage'])}")


# The layers of issue 11 (batch 1, pad 1 for 3x3): name -> (graph builder, index of the layer
# under test in the blob's layer table, MACs/instruction of the firmware before the issue-11
# kernels). The "old" column was measured once with this benchmark on qemu-mps2-an386 from the
# unmodified kernels (commit 30d1027) and is recorded here, not re-measured.
OLD = {  # instructions of the measured layer before issue 11
    "B1 x B1 3x3 8x8x32 -> 64": 1505259,
    "B1 x B1 3x3 16x16x64 -> 64": 9150154,
    "B1 x B1 dense 1024 -> 128": 94200,
    "first 3x3 28x28x1 -> 32, U8 x B1": 2728794,
    "first 3x3 28x28x1 -> 32, B1 x B1": 1538894,
    "first 3x3 28x28x1 -> 32, B1 x TERN": 14205806,
    "3x3 16x16x64 -> 64, TERN x B1": 13429434,
    "3x3 16x16x64 -> 64, TERN_SPARSE 85% x B1": 47861762,
    "3x3 16x16x64 -> 64, B1 x 2-bit U8": 40953154,
    "3x3 16x16x64 -> 64, I8 x U8": 90272954,
    "3x3 16x16x64 -> 64, I8 x B1": 133205386,
}


# instructions of the measured layer at main 1ace747, before the fused few-channel first layers
# (firmware/kernels/eq_conv_first.c): measured with this benchmark on qemu-mps2-an386 with that
# path switched off in eq_conv_fast.c, recorded here; the "prev" column of the table
PREV = {
    "first 3x3 28x28x1 -> 32, U8 x B1": 896856,
    "first 3x3 28x28x1 -> 32, B1 x B1": 1200300,
    "first 3x3 28x28x1 -> 32, B1 x TERN": 3251915,
}
PREV_MODELS = {"bnn-cnn": 2786478, "twn-cnn": 9983484, "dorefa-w2a2": 95537208}


def _thr_graph(c, h, w, layers):
    """THRESH (bit) input (c, h, w) -> layers -> a small AFFINE head (the head is not measured)."""
    return Graph((c, h, w), "THRESH", 128, layers)


def _head(rng, h, w, c):
    return Conv(_pm1(rng, (10, h, w, c)), "B1", "AFFINE", mul=np.ones(10, np.int32),
                add=np.zeros(10, np.int32), name="head")


def _multi(rng, c):
    """1x1 B1 conv with 2-bit MULTI output: turns a bit input into 2-bit U8 activation codes."""
    return Conv(_pm1(rng, (c, 1, 1, c)), "B1", "MULTI", out_bits=2,
                thr=np.sort(rng.integers(-3, 4, (c, 3)), axis=1).astype(np.int32),
                flip=np.zeros(c, bool), name="to_u8")


def _tern(rng, shape, zero):
    return (_pm1(rng, shape) * (rng.random(shape) >= zero)).astype(np.int8)


def issue_layers() -> dict:
    """name -> (Graph, index of the measured layer in the blob's layer table)."""
    rng = np.random.default_rng(11)
    out = {}
    out["B1 x B1 3x3 8x8x32 -> 64"] = (_thr_graph(32, 8, 8, [
        _sign(rng, _pm1(rng, (64, 3, 3, 32)), w_enc="B1", pad=1), _head(rng, 8, 8, 64)]), 0)
    out["B1 x B1 3x3 16x16x64 -> 64"] = (_thr_graph(64, 16, 16, [
        _sign(rng, _pm1(rng, (64, 3, 3, 64)), w_enc="B1", pad=1), _head(rng, 16, 16, 64)]), 0)
    out["B1 x B1 dense 1024 -> 128"] = (_thr_graph(1024, 1, 1, [
        _sign(rng, _pm1(rng, (128, 1, 1, 1024)), w_enc="B1"), _head(rng, 1, 1, 128)]), 0)
    first = _pm1(rng, (32, 3, 3, 1))
    out["first 3x3 28x28x1 -> 32, U8 x B1"] = (Graph((1, 28, 28), "RAW", 0, [
        _sign(rng, first, w_enc="B1", pad=1), _head(rng, 28, 28, 32)]), 0)
    out["first 3x3 28x28x1 -> 32, B1 x B1"] = (_thr_graph(1, 28, 28, [
        _sign(rng, first, w_enc="B1", pad=1), _head(rng, 28, 28, 32)]), 0)
    out["first 3x3 28x28x1 -> 32, B1 x TERN"] = (_thr_graph(1, 28, 28, [
        _sign(rng, _tern(rng, (32, 3, 3, 1), 0.3), w_enc="TERN", pad=1), _head(rng, 28, 28, 32)]), 0)
    out["3x3 16x16x64 -> 64, TERN x B1"] = (_thr_graph(64, 16, 16, [
        _sign(rng, _tern(rng, (64, 3, 3, 64), 0.5), w_enc="TERN", pad=1), _head(rng, 16, 16, 64)]), 0)
    out["3x3 16x16x64 -> 64, TERN_SPARSE 85% x B1"] = (_thr_graph(64, 16, 16, [
        _sign(rng, _tern(rng, (64, 3, 3, 64), 0.85), w_enc="TERN_SPARSE", pad=1),
        _head(rng, 16, 16, 64)]), 0)
    out["3x3 16x16x64 -> 64, B1 x 2-bit U8"] = (_thr_graph(64, 16, 16, [
        _multi(rng, 64), _sign(rng, _pm1(rng, (64, 3, 3, 64)), w_enc="B1", pad=1),
        _head(rng, 16, 16, 64)]), 1)
    out["3x3 16x16x64 -> 64, I8 x U8"] = (_thr_graph(64, 16, 16, [
        _multi(rng, 64), _sign(rng, _wide(rng, "I8", (64, 3, 3, 64)), w_enc="I8", pad=1),
        _head(rng, 16, 16, 64)]), 1)
    out["3x3 16x16x64 -> 64, I8 x B1"] = (_thr_graph(64, 16, 16, [
        _sign(rng, _wide(rng, "I8", (64, 3, 3, 64)), w_enc="I8", pad=1), _head(rng, 16, 16, 64)]), 0)
    return out


def zoo_models() -> dict:
    """name -> blob: the MNIST-shaped (1x28x28, 10 classes) zoo models with their random
    initial weights (untrained; same architecture and encodings as the trained ones)."""
    import torch

    from edgeq.train.export import export_blob
    from edgeq.train.models import build_model

    out = {}
    for arch in ("bnn-cnn", "twn-cnn", "dorefa-w2a2"):
        torch.manual_seed(0)
        out[arch] = export_blob(build_model(arch, (1, 28, 28), list(range(10))))
    return out


def _infer(b: Board, blob: bytes):
    from edgeq.native.runtime import Model

    b.load(blob)
    n = Model(blob).input_wire_bytes
    b.infer(bytes(np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8)), timeout=120)
    return b.profile()


def bench_issue(b: Board, board, results: dict) -> None:
    ipt = (1e9 / board.tick_hz) / board.qemu.get("instr_ns", 32)
    print(f"\nIssue-11 layers on {board.name} ({board.cpu}), executed instructions under -icount "
          "(conv + its output stage); 'before' = the kernels before issue 11, 'prev' = main "
          "1ace747 before the fused first layers (both recorded, MACs/instruction):")
    print(f"{'layer':<44} {'MACs':>10} {'instructions':>13} {'MACs/instr':>11} {'before':>7} {'x':>6} "
          f"{'prev':>7}")
    rows = []
    for name, (g, idx) in issue_layers().items():
        blob = write_blob(g)
        prof = _infer(b, blob)
        rec = layer_records(blob)[idx]
        instr = prof.ticks[idx] * ipt
        r = rec["macs"] / instr
        old = rec["macs"] / OLD[name] if name in OLD else 0.0
        prev = f"{rec['macs'] / PREV[name]:>7.3f}" if name in PREV else f"{'':>7}"
        print(f"{name:<44} {rec['macs']:>10,} {instr:>13,.0f} {r:>11.3f} {old:>7.3f} "
              f"{(r / old if old else 0):>5.2f}x {prev}")
        rows.append({"layer": name, "macs": rec["macs"], "instructions": round(instr),
                     "macs_per_instruction": r, "before": old,
                     "prev_instructions": PREV.get(name)})
    results["issue_layers"] = rows
    _winograd_line(rows, results)
    bench_f32_wino(b, board, results)
    print("\nWhole inference (MNIST-shaped zoo models, random initial weights):")
    zrows = {}
    for name, blob in zoo_models().items():
        prof = _infer(b, blob)
        tot = round(prof.total * ipt)
        old, prev = OLD_MODELS.get(name, 0), PREV_MODELS.get(name, 0)
        print(f"  {name:<14} {tot:>12,} instructions   before {old:>12,}   "
              f"{(old / tot if old else 0):5.2f}x fewer   prev {prev:>12,}   "
              f"{(prev / tot if prev else 0):5.2f}x fewer")
        zrows[name] = {"instructions": tot, "before": old, "prev": prev}
    results["zoo"] = zrows


# Winograd (issue 11): the I8 x U8 layer above now runs the integer Winograd F(2x2, 3x3) fast
# path (firmware/kernels/eq_conv_wino_i8.c). Its direct row loop (SMLAD, eq_conv2d_row.c at
# commit 1ace747) took this many instructions on the same layer, blob and input on
# qemu-mps2-an386, measured once with Winograd switched off and recorded here.
WINO_LAYER, WINO_DIRECT = "3x3 16x16x64 -> 64, I8 x U8", 16457615


def _winograd_line(rows, results) -> None:
    row = next((r for r in rows if r["layer"] == WINO_LAYER), None)
    if row is None:
        return
    x = WINO_DIRECT / row["instructions"]
    print(f"Winograd F(2x2,3x3) {WINO_LAYER}: direct {WINO_DIRECT:,} (recorded) -> "
          f"{row['instructions']:,} instructions, {x:.2f}x fewer (bar 1.5x)")
    results["winograd"] = {"layer": WINO_LAYER, "direct": WINO_DIRECT,
                           "winograd": row["instructions"], "x": x}


# F32 Winograd (issue 11): an F32 3x3 layer (U8 input, SIGN stage) packed twice, winograd=False
# (the direct tap-by-tap loop, eq_conv2d_row_f32) and winograd=True (LFLAG_WINO_F23,
# eq_conv_wino_f32.c), both measured in this run on the same board and input.
F32_WINO_LAYERS = ((16, 16, 16, 16), (16, 16, 64, 64))  # (h, w, in_c, out_c)


def f32_wino_graph(h: int, w: int, c: int, n: int, winograd: bool, seed: int = 11) -> Graph:
    """RAW (U8) input (c, h, w) -> F32 3x3 pad-1 conv to n channels, SIGN -> a small B1 head."""
    rng = np.random.default_rng(seed)
    conv = _sign(rng, _wide(rng, "F32", (n, 3, 3, c)), w_enc="F32", pad=1)
    conv.thr = (conv.thr * 64).astype(np.float32)
    conv.winograd = winograd
    return Graph((c, h, w), "RAW", 0, [conv, _head(rng, h, w, n)])


def bench_f32_wino(b: Board, board, results: dict, shapes=F32_WINO_LAYERS) -> list:
    ipt = (1e9 / board.tick_hz) / board.qemu.get("instr_ns", 32)
    print("\nF32 3x3 conv (U8 input, SIGN stage), direct tap-by-tap vs Winograd F(2x2,3x3) "
          "(LFLAG_WINO_F23), both measured now:")
    print(f"{'layer':<34} {'MACs':>10} {'direct':>12} {'Winograd':>12} {'x fewer':>8}")
    rows = []
    for h, w, c, n in shapes:
        instr = []
        for wino in (False, True):
            blob = write_blob(f32_wino_graph(h, w, c, n, wino))
            instr.append(round(_infer(b, blob).ticks[0] * ipt))
        macs = h * w * n * 9 * c
        name = f"F32 3x3 {h}x{w}x{c} -> {n}, U8 in"
        print(f"{name:<34} {macs:>10,} {instr[0]:>12,} {instr[1]:>12,} {instr[0] / instr[1]:>7.2f}x")
        rows.append({"layer": name, "macs": macs, "direct": instr[0], "winograd": instr[1],
                     "x": instr[0] / instr[1]})
    results["f32_winograd"] = rows
    return rows


# whole-inference instructions before issue 11 (same models, same input; recorded as OLD)
OLD_MODELS = {
    "bnn-cnn": 9193169,
    "twn-cnn": 127834819,
    "dorefa-w2a2": 116243510,
}


# MLPerf Tiny v1.0 closed division, reference submission (TFLite Micro + CMSIS-NN, int8 weights
# and activations) on a 120 MHz Cortex-M4 (STM32 Nucleo-L4R5ZI): latency in ms; cycles = ms x 120e3
MLPERF = {
    "resnet8": ("ResNet-8, CIFAR-10 32x32x3", 165.0),
    "ds-cnn": ("DS-CNN, keyword spotting 49x10x1", 43.0),
    "mobilenet": ("MobileNetV1-0.25, visual wake words 96x96x3", 89.0),
}
MLPERF_HZ = 120e6
REFERENCE_GOAL = {"resnet8-bnn": 5_000_000}  # instructions per inference (issue 14)
# resnet8-bnn per layer before the pair / RGB / ADD / AFFINE / FLATTEN fast paths (integration
# commit 20e8b2b, same blob and input, qemu-mps2-an386 -icount), recorded: the per-layer table
# prints them next to today's figures
REFERENCE_BEFORE = {"resnet8-bnn": [2117859, 2438101, 2812335, 762065, 1152559, 1015741, 500352,
                                    266549, 393675, 905400, 269546, 127140, 66395, 12676]}


def reference_blob(name: str) -> tuple:
    """(blob, export report) of a zoo reference model at its benchmark input, random initial
    weights and batch norms calibrated on random pixels (`models.reference_model`), exported by
    edgeq.export, which proves the C host runtime equal to the exported graph's integer forward
    (and the torch model) on 8 random inputs."""
    import edgeq
    from edgeq.train.models import reference_model

    m = reference_model(name)
    x = np.random.default_rng(1).integers(0, 256, (8,) + tuple(m.config["input_shape"]), dtype=np.uint8)
    r = edgeq.export(m, x)
    return r.blob, r.report


def _by_kind(recs: list, instr: list) -> dict:
    """Instructions and MACs summed per layer kind (`label`, depthwise/grouped convs apart)."""
    out: dict = {}
    for rec, n in zip(recs, instr):
        key = label(rec) + (" grouped" if rec.get("groups", 0) > 1 else "")
        d = out.setdefault(key, {"instructions": 0, "macs": 0, "layers": 0})
        d["instructions"] += round(n)
        d["macs"] += rec["macs"]
        d["layers"] += 1
    return out


REFERENCE_INPUTS = 3  # random inputs per reference model compared with the host runtime


def _reference_on_board(b: Board, board, blob: bytes, ipt: float, n: int = REFERENCE_INPUTS) -> tuple:
    """Load `blob` on the running board, INFER n random wire inputs (a MobileNet's 27,648 bytes go
    up in INPUT_CHUNK frames) and compare classes and scores with the C host runtime. Returns
    (whole-inference instructions of the last input, per-kind instructions (`_by_kind`), every
    input bit-exact, n, per-layer instructions of the last input)."""
    from edgeq.native.runtime import Model

    boards.check_fit(board, blob)
    b.load(blob)
    model = Model(blob)
    rng = np.random.default_rng(1)
    same = True
    for _ in range(n):
        x = bytes(rng.integers(0, 256, model.input_wire_bytes, dtype=np.uint8))
        cls, scores = b.infer(x, timeout=300)
        hcls, host = model.predict_wire(x)  # the C host runtime on the same input
        same = same and cls == hcls and np.array_equal(host, scores)
    prof = b.profile()
    per_layer = [t * ipt for t in prof.ticks]
    return (round(prof.total * ipt), _by_kind(layer_records(blob), per_layer), bool(same), n, per_layer)


def _per_layer(name: str, blob: bytes, instr: list, row: dict) -> None:
    """Per-layer instructions of `name` next to the recorded REFERENCE_BEFORE figures."""
    before = REFERENCE_BEFORE[name]
    recs = layer_records(blob)
    same = len(before) == len(recs)
    note = "" if same else ", other layers: not shown"
    print(f"  {name} per layer (instructions; before = recorded at 20e8b2b{note}):")
    print(f"  {'#':>3} {'layer':<44} {'shape':<18} {'MACs':>10} {'before':>11} {'now':>11} {'MACs/instr':>10}")
    rows = []
    for i, (rec, n) in enumerate(zip(recs, instr)):
        shape = f"{rec['in_h']}x{rec['in_w']}x{rec['in_c']}->{rec['out_c']}"
        shape += f" s{rec['stride']}" if rec["stride"] > 1 else ""
        b = f"{before[i]:>11,}" if same else f"{'-':>11}"
        ratio = f"{rec['macs'] / n:>10.2f}" if n and rec["macs"] else f"{'-':>10}"
        print(f"  {i:>3} {label(rec):<44} {shape:<18} {rec['macs']:>10,} {b} {round(n):>11,} {ratio}")
        rows.append({"layer": label(rec), "shape": shape, "macs": rec["macs"], "instructions": round(n),
                     "before": before[i] if same else None})
    if same:
        print(f"  {'':>3} {'total':<44} {'':<18} {'':>10} {sum(before):>11,} {round(sum(instr)):>11,}")
    row["per_layer"] = rows


def bench_reference(b: Board | None, board, results: dict, names=None) -> None:
    """Whole-inference instructions of the reference models on the board (None: host only), blob
    and peak arena bytes against the board's limits, next to MLPerf Tiny's int8 cycles."""
    from edgeq.errors import EdgeqError
    from edgeq.format.pack import read_header
    from edgeq.train.archs import REFERENCE_MODELS, get_arch

    ipt = (1e9 / board.tick_hz) / board.qemu.get("instr_ns", 32)
    region, arena_max = board.model_region[1], int(board.firmware["arena"])
    print(f"\nReference models (MLPerf Tiny architectures, random weights, BN calibrated on random pixels) "
          f"on {board.name} ({board.cpu}): executed instructions per inference under -icount; "
          f"limits: blob <= {region:,} B (flash model region), arena <= {arena_max:,} B")
    print("MLPerf Tiny int8 = the reference submission's latency on a 120 MHz Cortex-M4, as cycles "
          "(ms x 120e3). Instructions are not cycles: on a Cortex-M4 every instruction takes >= 1 "
          "cycle (loads 2, taken branches 2-4), so the cycle count is higher than the instruction count.")
    print(f"{'model':<24} {'blob B':>9} {'arena B':>9} {'MACs':>12} {'instructions':>13} {'MACs/instr':>10} "
          f"{'= host':>7}   {'MLPerf int8 cycles':>18}")
    rows = {}
    for name in names or REFERENCE_MODELS:
        try:
            blob, report = reference_blob(name)
        except EdgeqError as e:
            print(f"{name:<24} skipped: {e}")
            rows[name] = {"skipped": str(e)}
            continue
        kind = get_arch(name).kind
        hdr = read_header(blob)
        macs = sum(rec["macs"] for rec in layer_records(blob))
        row = {"blob_bytes": len(blob), "arena_bytes": int(hdr["arena_size"]), "macs": macs,
               "proof_images": report["images"]}
        title, ms = MLPERF[kind]
        row["mlperf_int8_cycles"] = round(ms * MLPERF_HZ / 1e3)
        instr, why, per_layer = None, None, []
        if b is None:
            why = "no board"
        else:
            try:
                instr, row["layers"], row["board_equals_host"], row["inputs"], per_layer = _reference_on_board(
                    b, board, blob, ipt)
            except EdgeqError as e:
                why = str(e)
        if instr is not None:
            row["instructions"] = instr
            goal = REFERENCE_GOAL.get(name)
            if goal:
                row["goal_instructions"] = goal
        else:
            row["skipped"] = why
        rows[name] = row
        shown = f"{instr:>13,}" if instr is not None else f"{'-':>13}"
        ratio = f"{macs / instr:>10.2f}" if instr else f"{'-':>10}"
        same = {True: f"{'yes':>7}", False: f"{'NO':>7}"}.get(row.get("board_equals_host"), f"{'-':>7}")
        print(f"{name:<24} {len(blob):>9,} {row['arena_bytes']:>9,} {macs:>12,} {shown} {ratio} {same}   "
              f"{row['mlperf_int8_cycles']:>18,}  ({title}, {ms:g} ms)")
        if why:
            print(f"  {name}: not run on the board: {why}")
        elif not row["board_equals_host"]:
            print(f"  {name}: the board's scores differ from the host runtime's: a bug, please report it")
        else:
            top = sorted(row["layers"].items(), key=lambda kv: -kv[1]["instructions"])[:4]
            print("  " + "; ".join(f"{k} {v['instructions'] / 1e6:.2f} M ({100 * v['instructions'] / instr:.0f} %, "
                                   f"{v['macs'] / v['instructions']:.2f} MACs/instr)" for k, v in top))
        if instr is not None and not why and name in REFERENCE_BEFORE:
            _per_layer(name, blob, per_layer, row)
        if instr is not None and name in REFERENCE_GOAL:
            g = REFERENCE_GOAL[name]
            print(f"  {name}: goal <= {g:,} instructions: {'met' if instr <= g else 'NOT met'}")
    results["reference"] = rows


def bench_layers(b: Board, board, results: dict) -> None:
    instr_per_tick = (1e9 / board.tick_hz) / board.qemu.get("instr_ns", 32)
    rows = {}
    for name, g in models().items():
        blob = write_blob(g)
        b.load(blob)
        wire = bytes(np.random.default_rng(1).integers(0, 256, 98, dtype=np.uint8))
        b.infer(wire, timeout=60)
        prof = b.profile()
        for rec, t in zip(layer_records(blob), prof.ticks):
            key = label(rec)
            instr = t * instr_per_tick
            rows.setdefault(key, []).append((rec["macs"], instr, name))
        results.setdefault("models", {})[name] = {
            "total_instructions": round(prof.total * instr_per_tick), "blob_bytes": len(blob)}
    print(f"\nPer-layer cost on {board.name} ({board.cpu}), executed instructions under -icount:")
    print(f"{'layer':<44} {'MACs':>10} {'instructions':>13} {'MACs/instr':>11}   model")
    out = []
    for key, items in rows.items():
        for macs, instr, model in items:
            if key.startswith("CONV 3x3 B1 w x B1 in") and model != "b1_on_b1":
                continue  # the shared first layer: shown once
            if key.startswith(("CONV 1x1", "MAXPOOL", "FLATTEN")) and model != "b1_on_b1":
                continue
            ratio = macs / instr if instr else 0.0
            print(f"{key:<44} {macs:>10,} {instr:>13,.0f} {ratio:>11.3f}   {model}")
            out.append({"layer": key, "model": model, "macs": macs, "instructions": round(instr),
                        "macs_per_instruction": ratio})
    results["layers"] = out


def bench_link(b: Board, results: dict, seconds: float = 2.0) -> None:
    print("\nLink: round trips (stop-and-wait) vs the byte rate")
    # host -> board byte rate: one big ECHO (request bytes dominate)
    big = bytes(range(1, 256)) * (min(b.max_payload - 1, 4000) // 255)
    t = time.perf_counter()
    for _ in range(3):
        b.echo(big)
    dt = (time.perf_counter() - t) / 3
    enc_up = len(P.encode_frame(9, 0, big))
    rate = 2 * enc_up / dt  # the reply is as long as the request
    print(f"  ECHO {len(big)} B: {1000 * dt:.1f} ms per round trip -> link ~{rate / 1000:.1f} kB/s "
          "(both directions)")
    results["link_bytes_per_s"] = rate
    rows = []
    for what, payload in (("ECHO 0 B", b""), ("ECHO 98 B", bytes(98)), ("ECHO 1000 B", bytes(1000))):
        up = len(P.encode_frame(9, 0, payload))
        down = len(P.encode_frame(9 | 0x80, 0, b"\x00" + payload))
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            b.echo(payload)
            n += 1
        fps = n / (time.perf_counter() - t0)
        bound = rate / (up + down)
        uart = 11520 / (up + down)
        print(f"  {what:<12} {up:>5}+{down:<5} B/frame pair: {fps:8.1f} frames/s; the measured byte "
              f"rate allows {bound:8.1f}/s ({100 * fps / bound:5.1f} %); a 115200-baud UART {uart:6.1f}/s")
        rows.append({"what": what, "bytes_up": up, "bytes_down": down, "frames_per_s": fps,
                     "byte_rate_bound": bound, "uart_115200_bound": uart})
    results["link"] = rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="qemu-mps2-an386")
    ap.add_argument("--json", default=str(ROOT / "build" / "bench" / "board.json"))
    ap.add_argument("--issue-only", action="store_true",
                    help="only the issue-11 layer table and the zoo models")
    ap.add_argument("--reference-only", action="store_true",
                    help="only the reference models (ResNet-8, DS-CNN, MobileNetV1-0.25)")
    ap.add_argument("--models", default=None,
                    help="comma-separated reference models to run (default: all), e.g. resnet8-bnn")
    args = ap.parse_args(argv)
    board = boards.get(args.board)
    why = boards.toolchain_missing(board)
    if why:
        print(f"board benchmark skipped: {why}")
        return 0
    os.environ.setdefault("EDGEQ_STATE_DIR", tempfile.mkdtemp(prefix="edgeq-bench-"))
    res = boards.build(board)
    print(res.summary())
    blob = write_blob(models()["b1_on_b1"])
    with tempfile.NamedTemporaryFile(suffix=".eqb") as f:
        f.write(blob)
        f.flush()
        run, _ = boards.flash(board, f.name, log=lambda s: None)
    results = {"board": board.name, "flash_used": res.flash_used, "ram_used": res.ram_used}
    try:
        with Board(run.url, timeout=30) as b:
            if not args.reference_only:
                bench_issue(b, board, results)
            if not args.issue_only:
                bench_reference(b, board, results,
                                names=args.models.split(",") if args.models else None)
            if not (args.issue_only or args.reference_only):
                bench_layers(b, board, results)
                bench_link(b, results)
    finally:
        boards.stop(board.name)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
