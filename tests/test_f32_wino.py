"""F32 Winograd F(2x2, 3x3) as a blob-defined conv algorithm (blob 1.2, LFLAG_WINO_F23;
docs/blob-format.md, "F32 Winograd"): random F32 3x3 pad-1 layers (1..17 input and output
channels, odd and even sizes, B1 / U8 inputs from THRESH / RAW / QUANT, SIGN / MULTI / AFFINE
stages fitted at the Winograd accumulators' own values, so one ulp moves an output) give the
numpy reference's scores bit for bit on the host C runtime (batched executor under every kernel
variant, and the firmware's executor), MicroPython under CPython and on the WebAssembly port, and
the emulated boards (qemu-mps2-an386 with its FPU, qemu-lm3s6965 soft float, sim); the loaders
refuse the flag where it does not belong."""

from __future__ import annotations

import shutil
import struct
import sys

import numpy as np
import pytest

from edgeq import spec
from edgeq.errors import BlobFormatError, ShapeError
from edgeq.format import pack
from edgeq.format.graph import Conv, Graph, MaxPool, wino_f23
from edgeq.native.runtime import Model
from edgeq.reference import refnet
from edgeq.reference.ref import conv2d_f32_ref, conv2d_f32_wino_ref, wino_f23_weight_f32
from edgeq.reference.testing import _fit_stage, _weights

sys.path.insert(0, "edgeq/micro")
sys.path.insert(0, "tests/mp_harness")
import edgeq_micro  # noqa: E402
import mpwasm  # noqa: E402
from test_kernels import _variants_report, variant  # noqa: E402,F401 (fixtures)
from test_micro import port  # noqa: E402,F401 - the wasm port fixture
from test_c_strict import _load_run, load_run  # noqa: E402,F401 - the sanitizer fixture

WINO = spec.value(spec.LFLAG, "WINO_F23")
PRE = {"THRESH": 128, "RAW": 0, "QUANT": 3}


def _layer_graph(seed: int, c=None, n=None, h=None, w=None, pre=None, out=None, winograd=True,
                 max_c: int = 17, max_hw: int = 9) -> Graph:
    """input (c, h, w) -> one F32 3x3 pad-1 CONV (n outputs, its stage fitted on a calibration
    batch through the same algorithm) -> its output is the score vector."""
    rng = np.random.default_rng(seed)
    c = c or int(rng.integers(1, max_c + 1))
    n = n or int(rng.integers(1, max_c + 1))
    h = h or int(rng.integers(1, max_hw + 1))
    w = w or int(rng.integers(1, max_hw + 1))
    pre = pre or str(rng.choice(list(PRE)))
    out = out or str(rng.choice(["SIGN", "MULTI", "AFFINE"]))
    layer = Conv(_weights(rng, "F32", (n, 3, 3, c)), "F32", out, stride=1, pad=1, winograd=winograd,
                 out_bits=2 if out == "MULTI" else 0, name="wino")
    g = Graph((c, h, w), pre, PRE[pre], [layer])
    x = rng.integers(0, 256, (8, c, h, w)).astype(np.uint8)
    in_enc = "B1" if pre == "THRESH" else "U8"
    acc = np.stack([refnet.conv_acc(layer, refnet.preprocess(g, img), in_enc) for img in x])
    _fit_stage(rng, layer, acc)
    g.classes = [str(i) for i in range(h * w * n)]
    return g


def _inputs(g: Graph, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 1000).integers(0, 256, (k,) + tuple(g.input_shape)).astype(np.uint8)


def _micro_scores(blob: bytes, x: np.ndarray) -> np.ndarray:
    m = edgeq_micro.Model(blob)
    return np.array([m.scores(img.tobytes()) for img in x], np.int64)


# --------------------------------------------------------------------------------------------
# the numpy reference


def test_reference_is_winograd_of_the_exact_conv():
    """The Winograd reference is a float32 evaluation of the exact conv (close to float64) with
    its own roundings: it differs from the direct tap-order semantics on some outputs."""
    differs = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        c, n, h, w = (int(v) for v in rng.integers(1, 18, 4))
        enc = "B1" if seed % 2 else "U8"
        a = rng.integers(-1, 2, (h, w, c)) if enc == "B1" else rng.integers(0, 256, (h, w, c))
        wt = _weights(rng, "F32", (n, 3, 3, c))
        got = conv2d_f32_wino_ref(a, enc, wt)
        direct = conv2d_f32_ref(a, enc, wt, 1, 1)
        av = np.where(a >= 0, 1, -1) if enc == "B1" else a
        exact = np.zeros((h, w, n))
        ap = np.pad(av.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
        for ky in range(3):
            for kx in range(3):
                exact += ap[ky:ky + h, kx:kx + w] @ wt[:, ky, kx, :].astype(np.float64).T
        scale = np.abs(ap).max() * np.abs(wt.astype(np.float64)).sum(axis=(1, 2, 3)) + 1e-30
        assert got.dtype == np.float32 and got.shape == (h, w, n)
        assert np.all(np.abs(got - exact) <= 1e-5 * scale), seed
        differs += int(np.any(got != direct))
    assert differs >= 5, "Winograd and direct F32 sums should round differently somewhere"


def test_weight_transform_order():
    """U = G g G^T with the documented order: rows then columns, 0.5 * ((g0 +- g1) + g2), each
    step a float32 rounding (checked against a scalar evaluation in numpy float32)."""
    rng = np.random.default_rng(3)
    g = _weights(rng, "F32", (2, 3, 3, 3))
    u = wino_f23_weight_f32(g)
    f = np.float32
    for n in range(2):
        for c in range(3):
            t = [[None] * 3 for _ in range(4)]
            for kx in range(3):
                g0, g1, g2 = (f(g[n, ky, kx, c]) for ky in range(3))
                t[0][kx], t[3][kx] = g0, g2
                t[1][kx] = f(0.5) * f(f(g0 + g1) + g2)
                t[2][kx] = f(0.5) * f(f(g0 - g1) + g2)
            for r in range(4):
                a0, a1, a2 = t[r]
                want = [a0, f(0.5) * f(f(a0 + a1) + a2), f(0.5) * f(f(a0 - a1) + a2), a2]
                assert [float(v) for v in u[n, r, :, c]] == [float(v) for v in want]


# --------------------------------------------------------------------------------------------
# host C and MicroPython (CPython)


def _check_host_and_micro(g: Graph, x: np.ndarray, what: str) -> np.ndarray:
    blob = pack.write_blob(g)
    hdr = pack.read_header(blob)
    assert hdr["version_minor"] == 2, what
    want = refnet.run(g, x)[0]
    m = Model(blob)
    assert m.arena_size == hdr["arena_size"], what
    assert np.array_equal(m.scores(x), want), f"{what}: host batch differs from the reference"
    assert np.array_equal(m.predict_one(x)[1], want), f"{what}: eq_model_run differs from the reference"
    mm = edgeq_micro.Model(blob)
    assert mm.arena_need == hdr["arena_size"], what
    assert np.array_equal(_micro_scores(blob, x), want), f"{what}: MicroPython differs from the reference"
    return want


def test_random_layers_host_and_micro_equal_reference():
    """... and the stages are sensitive enough that the direct F32 semantics would fail them."""
    differs = 0
    for seed in range(40):
        g = _layer_graph(seed)
        x = _inputs(g, 3, seed)
        want = _check_host_and_micro(g, x, f"seed {seed}")
        g.layers[0].winograd = False
        differs += int(not np.array_equal(refnet.run(g, x)[0], want))
    assert differs >= 10, differs


@pytest.mark.parametrize("pre,out", [(p, o) for p in PRE for o in ("SIGN", "MULTI", "AFFINE")])
def test_every_input_and_stage(pre, out):
    """Odd sizes (partial tiles on both axes), even sizes, 1 x W and H x 1 inputs."""
    for k, (c, n, h, w) in enumerate([(3, 5, 7, 9), (17, 2, 4, 6), (1, 17, 1, 5), (6, 1, 5, 1)]):
        g = _layer_graph(100 + k, c, n, h, w, pre, out)
        _check_host_and_micro(g, _inputs(g, 3, k), f"{pre} {out} {c}x{h}x{w}->{n}")


def test_every_host_variant(variant):  # noqa: F811
    """The host executor's Winograd layers under each compiled kernel variant (the layer runs
    the firmware's portable kernel, so every variant must agree)."""
    for seed in range(8):
        g = _layer_graph(200 + seed)
        x = _inputs(g, 4, seed)
        assert np.array_equal(Model(pack.write_blob(g)).scores(x), refnet.run(g, x)[0]), (variant, seed)


def test_in_a_model_with_other_layers():
    """A Winograd layer between integer layers (a maxpool after it, an I8 head), sequential."""
    rng = np.random.default_rng(5)
    g = _layer_graph(5, 4, 8, 8, 8, "RAW", "MULTI")
    g.layers += [MaxPool(2, 2), Conv(_weights(rng, "I8", (4, 4, 4, 8)), "I8", "AFFINE",
                                     mul=np.ones(4, np.int32), add=np.zeros(4, np.int32))]
    g.classes = [str(i) for i in range(4)]
    _check_host_and_micro(g, _inputs(g, 5, 5), "conv-pool-head")


# --------------------------------------------------------------------------------------------
# the packer's choice and the stored form


def test_packer_choice_and_round_trip():
    base = _layer_graph(7, 8, 8, 6, 6, "RAW", "SIGN", winograd=None)
    layer = base.layers[0]
    assert wino_f23(layer, (6, 6, 8))  # the rule: outputs >= 4x4, out_c >= in_c / 2
    assert not wino_f23(layer, (3, 6, 8)) and not wino_f23(layer, (6, 6, 17))
    for wg, flag, minor in ((None, WINO, 2), (True, WINO, 2), (False, 0, 0)):
        layer.winograd = wg
        blob = pack.write_blob(base)
        hdr = pack.read_header(blob)
        assert _layer_flags(blob) == [flag] and hdr["version_minor"] == minor, wg
        g2 = pack.read_blob(blob)
        assert g2.layers[0].winograd is bool(flag)
        assert pack.write_blob(g2) == blob  # the stored form is unique
    layer.winograd = False  # an explicit False packs exactly as a non-Winograd F32 layer always did
    assert pack.read_header(pack.write_blob(base))["arena_size"] == pack.arena_size(base)


@pytest.mark.parametrize("change", ["1x1", "stride2", "pad0", "groups", "I8"])
def test_winograd_true_on_an_ineligible_layer_is_refused(change):
    rng = np.random.default_rng(1)
    kw = dict(stride=1, pad=1)
    shape, w_enc = (4, 3, 3, 4), "F32"
    if change == "1x1":
        shape, kw["pad"] = (4, 1, 1, 4), 0
    elif change == "stride2":
        kw["stride"] = 2
    elif change == "pad0":
        kw["pad"] = 0
    elif change == "groups":
        shape, kw["groups"] = (4, 3, 3, 2), 2
    else:
        w_enc = "I8"
    layer = Conv(_weights(rng, w_enc, shape), w_enc, "AFFINE", winograd=True,
                 mul=np.ones(4, np.float32 if w_enc == "F32" else np.int32),
                 add=np.zeros(4, np.float32 if w_enc == "F32" else np.int32), **kw)
    g = Graph((4, 6, 6), "RAW", 0, [layer])
    with pytest.raises(ShapeError, match="winograd=True needs"):
        pack.write_blob(g)
    layer.winograd = None  # auto never picks an ineligible layer
    hdr = pack.read_header(pack.write_blob(g))
    assert hdr["version_minor"] <= 1


# --------------------------------------------------------------------------------------------
# loader rules: C (cffi), MicroPython, the Python reader


def _c_load_status(blob: bytes) -> int:
    from edgeq.native.runtime import native

    nat = native()
    buf = nat.ffi.new("uint64_t[]", (len(blob) + 7) // 8)
    nat.ffi.memmove(buf, blob, len(blob))
    m = nat.ffi.new("eq_model_t *")
    return nat.lib.eq_model_load(m, nat.ffi.cast("uint8_t *", buf), len(blob))


def _patched(blob: bytes, flags: int | None = None, minor: int | None = None) -> bytes:
    b = bytearray(blob)
    hdr = pack.read_header(blob)
    if flags is not None:
        b[hdr["layer_table_off"] + spec.offsets(spec.LAYER)["flags"]] = flags
    if minor is not None:
        struct.pack_into("<H", b, spec.offsets(spec.HEADER)["version_minor"], minor)
    return pack.reseal(b)


def _ineligible_blobs() -> list:
    """(name, blob marked 1.2 with the flag on layer 0, where the flag does not belong)."""
    rng = np.random.default_rng(2)
    out = []
    f32 = dict(mul=np.ones(4, np.float32), add=np.zeros(4, np.float32))
    cases = {
        "kernel_1x1": Conv(_weights(rng, "F32", (4, 1, 1, 4)), "F32", "AFFINE", **f32),
        "kernel_3x1": Conv(_weights(rng, "F32", (4, 3, 1, 4)), "F32", "AFFINE", pad=1, **f32),
        "stride_2": Conv(_weights(rng, "F32", (4, 3, 3, 4)), "F32", "AFFINE", stride=2, pad=1, **f32),
        "stride_w_2": Conv(_weights(rng, "F32", (4, 3, 3, 4)), "F32", "AFFINE", pad=1, stride_w=2, **f32),
        "pad_0": Conv(_weights(rng, "F32", (4, 3, 3, 4)), "F32", "AFFINE", pad=0, **f32),
        "pad_w_0": Conv(_weights(rng, "F32", (4, 3, 3, 4)), "F32", "AFFINE", pad=1, pad_w=0, **f32),
        "groups_2": Conv(_weights(rng, "F32", (4, 3, 3, 2)), "F32", "AFFINE", pad=1, groups=2, **f32),
        "i8_weights": Conv(_weights(rng, "I8", (4, 3, 3, 4)), "I8", "AFFINE", pad=1,
                           mul=np.ones(4, np.int32), add=np.zeros(4, np.int32)),
    }
    for name, layer in cases.items():
        layer.winograd = False
        blob = pack.write_blob(Graph((4, 6, 6), "RAW", 0, [layer]))
        out.append((name, _patched(blob, flags=WINO, minor=2)))
    flat = pack.write_blob(Graph((4, 2, 2), "RAW", 0, [MaxPool(2, 2)]))
    out.append(("maxpool", _patched(flat, flags=WINO, minor=2)))
    return out


def _loader_cases() -> list:
    """(name, blob, C / MicroPython status)."""
    good = pack.write_blob(_layer_graph(9, 3, 4, 5, 5, "RAW", "AFFINE"))
    s = lambda k: spec.value(spec.STATUS, k)  # noqa: E731
    cases = [("flag_in_blob_1_1", _patched(good, minor=1), s("ERR_VERSION")),
             ("flag_in_blob_1_0", _patched(good, minor=0), s("ERR_VERSION")),
             ("unknown_flag_2", _patched(good, flags=2), s("ERR_UNSUPPORTED")),
             ("unknown_flag_129", _patched(good, flags=WINO | 128), s("ERR_UNSUPPORTED")),
             ("minor_3", _patched(good, minor=3), s("ERR_VERSION"))]
    cases += [(f"flag_on_{name}", blob, s("ERR_UNSUPPORTED")) for name, blob in _ineligible_blobs()]
    return cases


def test_loaders_refuse_the_flag_where_it_does_not_belong():
    good = pack.write_blob(_layer_graph(9, 3, 4, 5, 5, "RAW", "AFFINE"))
    assert _c_load_status(good) == 0
    edgeq_micro.Model(good)
    for name, blob, status in _loader_cases():
        assert _c_load_status(blob) == status, f"C: {name}"
        with pytest.raises(edgeq_micro.BlobError) as e:
            edgeq_micro.Model(blob)
        assert e.value.status == status and "\n" not in str(e.value), f"MicroPython: {name}: {e.value}"
        with pytest.raises(BlobFormatError) as e2:
            pack.read_blob(blob)
        assert "\n" not in str(e2.value), name


def test_older_blobs_are_unchanged():
    """A graph without an eligible F32 layer packs to minor 0 / 1 as before (no flag byte set),
    and the same F32 layer with winograd=False to the bytes of the direct F32 layer."""
    g = _layer_graph(11, 3, 4, 5, 5, "RAW", "SIGN", winograd=False)
    blob = pack.write_blob(g)
    hdr = pack.read_header(blob)
    assert hdr["version_minor"] == 0
    assert all(r == 0 for r in _layer_flags(blob))
    assert Model(blob).scores(_inputs(g, 2, 0)).shape == (2, len(g.classes))


def _layer_flags(blob: bytes) -> list:
    hdr = pack.read_header(blob)
    off = spec.offsets(spec.LAYER)["flags"]
    return [blob[hdr["layer_table_off"] + i * spec.LAYER_SIZE + off] for i in range(hdr["n_layers"])]


# --------------------------------------------------------------------------------------------
# real MicroPython (WebAssembly port)


def test_micropython_wasm_port_equals_reference(port):  # noqa: F811 - the fixture
    jobs, files, refs = [], {}, []
    for k in range(6):
        g = _layer_graph(300 + k, max_c=9, max_hw=7)
        blob = pack.write_blob(g)
        x = _inputs(g, 2, k)
        refs.append((k, refnet.run(g, x)))
        files[f"w{k}.eqb"], files[f"w{k}.bin"] = blob, x.tobytes()
        jobs.append({"blob": f"w{k}.eqb", "inputs": f"w{k}.bin", "n": len(x)})
    bad = _loader_cases()[:4]
    files.update({f"{name}.eqb": b for name, b, _ in bad})
    jobs += [{"blob": f"{name}.eqb"} for name, _, _ in bad]
    results = mpwasm.run_jobs(jobs, files)
    for (k, (sc, cls)), res in zip(refs, results):
        assert res["ok"], f"w{k}: {res}"
        assert np.array_equal(np.asarray(res["scores"], np.int64), sc), f"w{k}"
        assert res["classes"] == cls.tolist(), k
    for (name, _, status), res in zip(bad, results[len(refs):]):
        assert not res["ok"] and res["error"] == "BlobError" and res["status"] == status, f"{name}: {res}"


# --------------------------------------------------------------------------------------------
# emulated boards


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-lm3s6965", "sim"])
def test_boards_equal_reference(name, tmp_path, private_board_state):
    """The M4F (hard float), the M3 (soft float, 16 KB arena) and the sim board (ASan/UBSan)."""
    from edgeq.deploy import boards
    from edgeq.deploy.client import Board
    from edgeq.errors import BoardError

    why = boards.toolchain_missing(name)
    if why or (boards.get(name).kind == "qemu" and not shutil.which(boards.QEMU)):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
    # scores (h * w * n int32) fit the M3's 1 KB reply frames
    graphs = [_layer_graph(400 + k, max_c=9, max_hw=5) for k in range(5)]
    graphs += [_layer_graph(410, 17, 7, 5, 7, "RAW", "AFFINE"), _layer_graph(411, 5, 3, 7, 7, "THRESH", "SIGN")]
    blobs = [pack.write_blob(g) for g in graphs]
    path = tmp_path / "first.eqb"
    path.write_bytes(blobs[0])
    run, _ = boards.flash(name, path, log=lambda s: None)
    try:
        with Board(run.url) as b:
            for k, (g, blob) in enumerate(zip(graphs, blobs)):
                summary = b.load(blob)
                assert summary.arena_need == pack.read_header(blob)["arena_size"], (name, k)
                model = Model(blob)
                x = _inputs(g, 3, k)
                want, want_cls = refnet.run(g, x)
                for i, img in enumerate(x):
                    cls, scores = b.infer(model.wire_input(img))
                    assert cls == want_cls[i] and np.array_equal(scores, want[i]), (name, k, i)
            for rname, rblob, status in _loader_cases():
                with pytest.raises(BoardError) as e:
                    b.load(rblob)
                assert e.value.status == status, f"{name}: {rname}: {e.value}"
    finally:
        boards.stop(name)
    if name == "sim":
        with open(run.log, errors="replace") as fh:
            log = fh.read()
        assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log, log[-2000:]


def test_under_sanitizers(load_run, tmp_path):  # noqa: F811 - the fixture
    """Winograd blobs load and run under ASan/UBSan (tests/c/load_run.c: strict flags, every
    kernel), and the loader cases answer their statuses there too."""
    blobs = {f"w{k}": pack.write_blob(_layer_graph(500 + k)) for k in range(12)}
    assert _load_run(load_run, blobs, tmp_path) == {k: 0 for k in blobs}
    cases = _loader_cases()
    got = _load_run(load_run, {name: blob for name, blob, _ in cases}, tmp_path)
    assert got == {name: status for name, _, status in cases}


# --------------------------------------------------------------------------------------------
# the exporter (edgeq.export): its integer forward computes what the blob holds


@pytest.mark.parametrize("winograd", [None, True, False])
def test_export_float_first_layer(winograd):
    """bnn-cnn with a float (F32) first layer (3x3 pad 1 on a 1-channel 8x8 input): exported with
    winograd None / True / False, proven by export_model (C runtime == the torch integer forward,
    which runs the Winograd reference for flagged layers), flags as asked."""
    import torch

    from edgeq.train import export, models

    torch.manual_seed(0)
    model = models.build_model("bnn-cnn", (1, 8, 8), [str(i) for i in range(4)], first_wq="float")
    px = np.random.default_rng(0).integers(0, 256, (12, 1, 8, 8)).astype(np.uint8)
    ex = export.export_model(model, px, winograd=winograd)
    flags = _layer_flags(ex.blob)
    first = ex.graph.layers[0]
    assert first.w_enc == "F32"
    want = 0 if winograd is False else WINO  # the rule picks it: 8x8 outputs, out_c >= in_c / 2
    assert flags[0] == want and not any(flags[1:])
    assert pack.read_header(ex.blob)["version_minor"] == (2 if want else 0)
    assert np.array_equal(Model(ex.blob).scores(export.graph_input(model, px)), ex.scores(px))


def test_kernel_checks_its_arguments():
    """eq_conv_wino_f32 (public in eq_conv_fast.h): NULL job / missing pointers EQ_ERR_ARG, a
    layer it does not compute EQ_ERR_UNSUPPORTED, scratch short of eq_rule_wino_f23_scratch
    EQ_ERR_ARENA, and with enough scratch the runtime's result."""
    from edgeq.native.runtime import native

    nat = native()
    ffi, lib = nat.ffi, nat.lib
    s = lambda k: spec.value(spec.STATUS, k)  # noqa: E731
    g = _layer_graph(21, 5, 6, 5, 7, "RAW", "AFFINE")
    layer = g.layers[0]
    x = _inputs(g, 1, 0)[0]
    act = np.ascontiguousarray(x.transpose(1, 2, 0))  # HWC codes
    shape = ffi.new("eq_conv_shape_t *", dict(in_h=5, in_w=7, in_c=5, out_h=5, out_w=7, out_c=6, kh=3, kw=3,
                                              stride=1, pad=1))
    w = np.ascontiguousarray(layer.weight, np.float32)
    wd = ffi.new("eq_weights_t *", dict(enc=spec.value(spec.ENC, "F32"), data=ffi.from_buffer(w)))
    mul, add = np.asarray(layer.mul, np.float32), np.asarray(layer.add, np.float32)
    out = np.zeros((5, 7, 6), np.int32)
    need = spec.wino_f23_scratch(5, 7, 6)
    scratch = np.zeros(need // 8 + 1, np.uint64)
    job = ffi.new("eq_conv_job_t *", dict(
        s=shape, in_enc=spec.value(spec.ENC, "U8"), **{"in": ffi.from_buffer(act)}, w=wd,
        out_stage=spec.value(spec.OUT, "AFFINE"), thr=ffi.from_buffer(mul), aux=ffi.from_buffer(add),
        out=ffi.from_buffer(out), scratch=ffi.from_buffer(scratch), scratch_bytes=need))
    assert lib.eq_conv_wino_f32(ffi.NULL) == s("ERR_ARG")
    assert lib.eq_conv_wino_f32_scratch(shape) == need
    assert lib.eq_conv_wino_f32(job) == s("OK")
    assert np.array_equal(out.reshape(-1), refnet.run(g, x[None])[0][0])
    job.scratch_bytes = need - 4
    assert lib.eq_conv_wino_f32(job) == s("ERR_ARENA")
    job.scratch_bytes = need
    shape.stride = 2
    assert lib.eq_conv_wino_f32(job) == s("ERR_UNSUPPORTED")
    shape.stride = 1
    job.thr = ffi.NULL
    assert lib.eq_conv_wino_f32(job) == s("ERR_ARG")
