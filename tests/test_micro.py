"""MicroPython runtime (edgeq/micro/edgeq_micro.py) against the C host runtime, bit for bit.

Every layer type and encoding, whole MNIST-shaped models (random and, when torch is present,
trained), wire inputs and bad blobs run on REAL MicroPython: the official WebAssembly port
(npm @micropython/micropython-webassembly-pyscript, installed into build/mpwasm/ on first use)
driven by tests/mp_harness/run.mjs.  The same runtime also runs under CPython (quick).
"""

from __future__ import annotations

import struct
import sys
import zlib

import numpy as np
import pytest

from edgeq.format import pack
from edgeq.native import runtime
from edgeq import spec
from edgeq.deploy.micro import RUNTIME_FILES
from edgeq.reference import testing
from edgeq.errors import BlobFormatError, KernelError
from edgeq.format.graph import Conv, Flatten, Graph, MaxPool, infer_shapes
from edgeq.reference.refnet import apply_stage, conv_acc, maxpool, preprocess

sys.path.insert(0, "edgeq/micro")
sys.path.insert(0, "tests/mp_harness")
import edgeq_micro
import mpwasm

# --------------------------------------------------------------------------------------------
# graph builder covering every layer type / encoding with small shapes


def _build(seed, pre, pre_param, in_shape, specs, n_classes=10):
    """specs: ("conv", w_enc, (kh, kw), n, stride, pad, out, out_bits|wbits) / ("pool", k, s) /
    ("flatten",) / ("dense", w_enc, out, bits) -- a conv covering the whole input."""
    rng = np.random.default_rng(seed)
    g = Graph(tuple(in_shape), pre, pre_param, [], classes=[str(i) for i in range(n_classes)])
    acts = [preprocess(g, rng.integers(0, 256, in_shape).astype(np.uint8)) for _ in range(8)]
    enc = "B1" if pre == "THRESH" else "U8"
    levels = {"THRESH": 2, "RAW": 256, "QUANT": 1 << pre_param}[pre]
    for sp in specs:
        h, w, c = acts[0].shape
        if sp[0] == "pool":
            layer = MaxPool(k=sp[1], stride=sp[2])
            acts = [maxpool(layer, a) for a in acts]
            g.layers.append(layer)
            continue
        if sp[0] == "flatten":
            g.layers.append(Flatten())
            acts = [a.reshape(1, 1, -1) for a in acts]
            continue
        if sp[0] == "dense":
            _, w_enc, out, bits = sp
            (kh, kw), n, stride, pad = (h, w), n_classes, 1, 0
        else:
            _, w_enc, (kh, kw), n, stride, pad, out, bits = sp
        wbits = bits if w_enc == "KBIT" else 2
        layer = Conv(testing._weights(rng, w_enc, (n, kh, kw, c), wbits), w_enc, out,
                     stride=stride, pad=pad)
        if w_enc == "KBIT":
            layer.wbits = wbits
            layer.lut = rng.integers(-9, 10, (1 << wbits, levels)).astype(np.int32)
        if out == "MULTI":
            layer.out_bits = bits if w_enc != "KBIT" else 2
        accs = np.stack([conv_acc(layer, a, enc) for a in acts])
        testing._fit_stage(rng, layer, accs)
        g.layers.append(layer)
        acts = [apply_stage(layer, a) for a in accs]
        enc = {"SIGN": "B1", "MULTI": "U8", "AFFINE": "I32"}[out]
        levels = {"SIGN": 2, "MULTI": 1 << layer.out_bits, "AFFINE": 0}[out]
    infer_shapes(g)
    return g


CASES = {
    # B1 input: XNOR (B1), ternary planes, skip-zero stream; padding, stride, rectangular kernels
    "b1_b1_pad_pool_b1": ("THRESH", 100, (1, 8, 8), [
        ("conv", "B1", (3, 3), 8, 1, 1, "SIGN", 0), ("pool", 2, 2), ("dense", "B1", "AFFINE", 0)]),
    "b1_tern_stride_multi_pool_u8": ("THRESH", 128, (1, 9, 7), [
        ("conv", "TERN", (3, 2), 6, 2, 1, "MULTI", 2), ("pool", 2, 1), ("dense", "KBIT", "AFFINE", 2)]),
    "b1_sparse_rect_pad2": ("THRESH", 90, (2, 7, 7), [
        ("conv", "TERN_SPARSE", (2, 3), 5, 1, 2, "SIGN", 0), ("dense", "I8", "MULTI", 3)]),
    "b1_wide_channels": ("THRESH", 128, (3, 6, 6), [
        ("conv", "B1", (3, 3), 40, 1, 1, "SIGN", 0), ("conv", "TERN", (3, 3), 36, 2, 1, "SIGN", 0),
        ("conv", "TERN_SPARSE", (1, 1), 33, 1, 0, "SIGN", 0), ("flatten",),
        ("dense", "B1", "AFFINE", 0)]),
    "b1_kbit_i8": ("THRESH", 128, (1, 6, 6), [
        ("conv", "KBIT", (3, 3), 7, 1, 1, "SIGN", 1), ("conv", "I8", (2, 2), 5, 2, 1, "SIGN", 0),
        ("dense", "B1", "SIGN", 0)]),
    # F32 layers: float32 sums one rounding at a time (first layer on raw pixels, float head)
    "raw_f32_first_and_head": ("RAW", 0, (1, 6, 6), [
        ("conv", "F32", (3, 3), 6, 1, 1, "SIGN", 0), ("conv", "B1", (3, 3), 8, 1, 1, "MULTI", 2),
        ("dense", "F32", "AFFINE", 0)]),
    "b1_f32_multi_sign": ("THRESH", 100, (2, 5, 5), [
        ("conv", "F32", (2, 2), 5, 1, 0, "MULTI", 2), ("dense", "F32", "SIGN", 0)]),
    "b1_i16_u8_i16": ("THRESH", 128, (2, 5, 5), [
        ("conv", "I16", (3, 3), 6, 1, 1, "MULTI", 2), ("conv", "I16", (2, 2), 4, 1, 0, "SIGN", 0),
        ("dense", "I16", "AFFINE", 0)]),
    # U8 input: RAW and QUANT; bit-plane kernels (B1/TERN/SPARSE weights) and value kernels
    "raw_i16_pad_b1": ("RAW", 0, (1, 6, 6), [
        ("conv", "I16", (3, 3), 6, 1, 1, "SIGN", 0), ("conv", "B1", (1, 1), 10, 1, 0, "SIGN", 0),
        ("pool", 2, 2), ("flatten",), ("dense", "I8", "AFFINE", 0)]),
    "quant_kbit_tern_u8": ("QUANT", 3, (1, 7, 7), [
        ("conv", "KBIT", (3, 3), 6, 1, 1, "MULTI", 3), ("conv", "TERN", (2, 3), 5, 1, 1, "MULTI", 2),
        ("pool", 2, 2), ("dense", "TERN_SPARSE", "AFFINE", 0)]),
    "quant_b1_planes_affine_pool_i32": ("QUANT", 2, (2, 6, 6), [
        ("conv", "B1", (2, 2), 4, 2, 0, "MULTI", 1), ("conv", "B1", (3, 3), 10, 1, 1, "AFFINE", 0),
        ("pool", 3, 3)]),
    "raw_sparse_planes_multi": ("RAW", 0, (1, 6, 5), [
        ("conv", "TERN_SPARSE", (3, 3), 5, 1, 1, "MULTI", 1), ("dense", "KBIT", "AFFINE", 1)]),
    # KBIT codes packed at 1-, 2-, 4- and 8-bit slots (weights of 1, 2, 3, 4, 5, 8 bits), rows
    # with padding bits, on B1 and U8 inputs (a KBIT MULTI stage outputs 2-bit codes)
    "kbit_w1_w2_w3_b1_u8": ("THRESH", 128, (2, 7, 7), [
        ("conv", "KBIT", (3, 3), 6, 1, 1, "SIGN", 1), ("conv", "KBIT", (2, 3), 5, 2, 1, "MULTI", 2),
        ("conv", "KBIT", (3, 3), 4, 1, 1, "MULTI", 3), ("dense", "KBIT", "AFFINE", 3)]),
    "kbit_w4_w8_w5_u8_b1": ("QUANT", 2, (3, 6, 6), [
        ("conv", "KBIT", (3, 3), 6, 1, 1, "MULTI", 4), ("conv", "KBIT", (2, 2), 5, 1, 1, "SIGN", 8),
        ("conv", "KBIT", (3, 3), 7, 2, 1, "SIGN", 5), ("dense", "KBIT", "AFFINE", 8)]),
    "kbit_w1_w2_w5_w8_u8": ("QUANT", 3, (1, 7, 7), [
        ("conv", "KBIT", (3, 3), 5, 1, 1, "MULTI", 1), ("conv", "KBIT", (3, 3), 6, 1, 1, "MULTI", 2),
        ("conv", "KBIT", (2, 2), 4, 2, 0, "MULTI", 5), ("dense", "KBIT", "AFFINE", 8)]),
}


def _case(name, seed=1):
    pre, param, shape, specs = CASES[name]
    return _build(seed, pre, param, shape, specs)


def _inputs(g, n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n,) + tuple(g.input_shape)).astype(np.uint8)


def _check(res, cls, scores, what):
    assert res["ok"], f"{what}: {res}"
    got = np.asarray(res["scores"], np.int64)
    bad = np.flatnonzero((got != scores).any(axis=1))
    assert not len(bad), (f"{what}: {len(bad)} of {len(scores)} inputs differ; first #{bad[0]}: "
                          f"micro {got[bad[0]].tolist()} vs C {scores[bad[0]].tolist()}")
    assert res["classes"] == cls.tolist(), what


# --------------------------------------------------------------------------------------------
# CPython (quick)


@pytest.mark.parametrize("name", sorted(CASES))
def test_cpython_layer_types_match_c(name):
    g = _case(name)
    blob = pack.write_blob(g)
    c = runtime.Model(blob)
    m = edgeq_micro.Model(blob)
    x = _inputs(g, 60, 2)
    cls, sc = c.predict(x)
    for i in range(len(x)):
        s = m.scores(x[i].tobytes())
        assert s == sc[i].tolist(), f"{name} input {i}: {s} vs {sc[i].tolist()}"
        assert m.predict(c.wire_input(x[i]), wire=True) == cls[i]
    assert len(m.layer_ms) == len(m.layers) == c.n_layers


def test_cpython_random_graphs_match_c():
    for seed in range(30):
        g = testing.random_graph(seed, "small")
        blob = pack.write_blob(g)
        c, m = runtime.Model(blob), edgeq_micro.Model(blob)
        x = _inputs(g, 8, seed)
        _, sc = c.predict(x)
        for i in range(len(x)):
            assert m.scores(x[i].tobytes()) == sc[i].tolist(), f"seed {seed} input {i}"


def test_crc_table_matches_zlib():
    data = bytes(range(256)) * 5
    assert edgeq_micro.crc32_py(data) == zlib.crc32(data)
    assert edgeq_micro.crc32_py(data[100:], edgeq_micro.crc32_py(data[:100])) == zlib.crc32(data)
    blob = pack.write_blob(_case("b1_b1_pad_pool_b1"))
    edgeq_micro.Model(blob, native_crc=False)


def test_popcount_against_python():
    rng = np.random.default_rng(0)
    for nbytes in (1, 3, 4, 13, 100, 3136, 9000):
        x = int.from_bytes(rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes(), "little")
        assert edgeq_micro.popcount(x, nbytes) == bin(x).count("1")
        full = (1 << (8 * nbytes)) - 1
        assert edgeq_micro.popcount(full, nbytes) == 8 * nbytes


def test_input_size_checked():
    m = edgeq_micro.Model(pack.write_blob(_case("b1_b1_pad_pool_b1")))
    with pytest.raises(ValueError, match="input"):
        m.scores(bytes(63))
    with pytest.raises(ValueError, match="wire"):
        m.scores(bytes(9), wire=True)


_reseal = pack.reseal


def _bad_blobs():
    """(name, bytes, expected status) -- each rejected by the C loader too."""
    blob = pack.write_blob(_case("b1_sparse_rect_pad2"))
    off = spec.offsets(spec.HEADER)
    out = [("truncated", blob[:-5], spec.value(spec.STATUS, "ERR_TRUNCATED")),
           ("short", blob[:40], spec.value(spec.STATUS, "ERR_TRUNCATED"))]
    b = bytearray(blob)
    b[len(b) // 2] ^= 0x10
    out.append(("bitflip", bytes(b), spec.value(spec.STATUS, "ERR_CRC")))
    b = bytearray(blob)
    b[0:4] = b"XXXX"
    out.append(("magic", bytes(b), spec.value(spec.STATUS, "ERR_MAGIC")))
    b = bytearray(blob)
    struct.pack_into("<H", b, off["version_major"], 2)
    out.append(("version", _reseal(b), spec.value(spec.STATUS, "ERR_VERSION")))
    # a tensor pointing outside the blob (CRC recomputed, so only the structure is wrong)
    b = bytearray(blob)
    t0 = struct.unpack_from("<I", b, off["tensor_table_off"])[0]
    struct.pack_into("<I", b, t0, len(b) + 64)
    out.append(("tensor_bounds", _reseal(b), spec.value(spec.STATUS, "ERR_BOUNDS")))
    # an invalid nibble (15) in the skip-zero stream
    b = bytearray(blob)
    toff, tn = struct.unpack_from("<II", b, t0)
    n = struct.unpack_from("<I", b, t0 + 12)[0]
    b[toff + 4 * (n + 1)] |= 0x0F
    out.append(("sparse_nibble", _reseal(b), spec.value(spec.STATUS, "ERR_BOUNDS")))
    # a layer whose input shape does not chain
    b = bytearray(blob)
    l0 = struct.unpack_from("<I", b, off["layer_table_off"])[0]
    struct.pack_into("<H", b, l0 + spec.offsets(spec.LAYER)["in_h"], 99)
    out.append(("shape_chain", _reseal(b), spec.value(spec.STATUS, "ERR_SHAPE")))
    # packed KBIT weights: a code >= 2**bits in a 4- or 8-bit slot, a nonzero padding bit
    for bits, kind in ((3, "code"), (5, "code"), (2, "pad"), (8, "pad")):
        bad = testing.kbit_tamper(pack.write_blob(testing.kbit_graph(bits, "QUANT")), kind)
        out.append((f"kbit{bits}_{kind}", bad, spec.value(spec.STATUS, "ERR_BOUNDS")))
    out += f32_bad_blobs()
    return out


def f32_bad_blobs():
    """F32 values the loaders refuse: F32 tensors of raw_f32_first_and_head are, in order,
    conv weights, its thresholds, head weights, head mul, head add."""
    blob = pack.write_blob(_case("raw_f32_first_and_head"))
    bounds = spec.value(spec.STATUS, "ERR_BOUNDS")
    return [(name, testing.f32_tamper(blob, idx, v), bounds)
            for name, idx, v in (("f32_nan_weight", 0, float("nan")), ("f32_inf_weight", 2, float("inf")),
                                 ("f32_nan_thr", 1, float("nan")), ("f32_big_mul", 3, 2.0**40),
                                 ("f32_inf_add", 4, float("-inf")))]


def test_cpython_bad_blobs():
    for name, data, status in _bad_blobs():
        with pytest.raises(edgeq_micro.BlobError) as e:
            edgeq_micro.Model(data)
        assert e.value.status == status, f"{name}: {e.value}"
        assert isinstance(e.value, ValueError)
        with pytest.raises((BlobFormatError, KernelError)):
            runtime.Model(data)


# --------------------------------------------------------------------------------------------
# real MicroPython (WebAssembly port)


@pytest.fixture(scope="module")
def port():
    try:
        return mpwasm.ensure_port()
    except mpwasm.PortMissing as e:
        pytest.skip(str(e))


N_LAYER_INPUTS = 200


def test_micropython_layer_types_match_c(port):
    jobs, files, refs = [], {}, []
    for k, name in enumerate(sorted(CASES)):
        g = _case(name)
        blob = pack.write_blob(g)
        c = runtime.Model(blob)
        x = _inputs(g, N_LAYER_INPUTS, 10 + k)
        refs.append((name, *c.predict(x)))
        files[f"{name}.eqb"] = blob
        files[f"{name}.bin"] = x.tobytes()
        jobs.append({"blob": f"{name}.eqb", "inputs": f"{name}.bin", "n": len(x)})
        if k == 0:  # the same inputs in wire format
            files["wire.bin"] = b"".join(c.wire_input(img) for img in x)
            jobs.append({"blob": f"{name}.eqb", "inputs": "wire.bin", "n": len(x), "wire": True})
            refs.append((name + " (wire)", *c.predict(x)))
    results = mpwasm.run_jobs(jobs, files)
    for (name, cls, sc), res in zip(refs, results):
        _check(res, cls, sc, name)


def test_micropython_mnist_models_match_c(port, mnist_test):
    x_all, _ = mnist_test
    jobs, files, refs = [], {}, []
    graphs = [("mlp", mpwasm.reference_mlp(0))]
    graphs += [(f"random{s}", testing.random_graph(s, "mnist")) for s in (3, 7)]
    for k, (name, g) in enumerate(graphs):
        blob = pack.write_blob(g)
        c = runtime.Model(blob)
        n = 300 if name == "mlp" else 40
        x = x_all[k * 300:k * 300 + n][:, None]
        refs.append((name, *c.predict(x)))
        files[f"{name}.eqb"] = blob
        files[f"{name}.bin"] = x.tobytes()
        jobs.append({"blob": f"{name}.eqb", "inputs": f"{name}.bin", "n": n})
    for (name, cls, sc), res in zip(refs, mpwasm.run_jobs(jobs, files)):
        _check(res, cls, sc, name)


def test_micropython_trained_model_matches_c(port, mnist_test):
    pytest.importorskip("torch")
    from edgeq.train import loop as train

    x, y = mnist_test
    x = x[:, None]
    model, _ = train.build_and_train("bnn-mlp", x[:1000], y[:1000], [str(i) for i in range(10)],
                                     epochs=1, width=0.25)
    from edgeq.train import export

    blob = export.export_blob(model)
    c = runtime.Model(blob)
    xt = x[4000:4200].reshape((200,) + c.input_shape)  # an MLP may take the image as channels
    cls, sc = c.predict(xt)
    res = mpwasm.run_jobs([{"blob": "t.eqb", "inputs": "t.bin", "n": len(xt)}],
                          {"t.eqb": blob, "t.bin": xt.tobytes()})[0]
    _check(res, cls, sc, "trained bnn-mlp")


def test_micropython_bad_blobs(port):
    bad = _bad_blobs()
    files = {f"{name}.eqb": data for name, data, _ in bad}
    jobs = [{"blob": f"{name}.eqb"} for name, _, _ in bad]
    good = pack.write_blob(_case("b1_b1_pad_pool_b1"))
    files["good.eqb"] = good
    jobs.append({"blob": "good.eqb", "native_crc": False})  # the pure-Python CRC table path
    results = mpwasm.run_jobs(jobs, files)
    for (name, _, status), res in zip(bad, results):
        assert not res["ok"] and res["error"] == "BlobError", f"{name}: {res}"
        assert res["status"] == status, f"{name}: {res}"
    assert results[-1]["ok"]


# --------------------------------------------------------------------------------------------
# deploy: everything up to the serial transport (no board here)


def test_deploy_commands_on_micropython(port, tmp_path):
    from edgeq.deploy import micro as D

    mpys = D.compile_mpy(tmp_path)
    assert [p.name for p in mpys] == [n.replace(".py", ".mpy") for n in RUNTIME_FILES]
    assert all(p.read_bytes()[:1] == b"M" for p in mpys)  # .mpy header
    g = _case("b1_tern_stride_multi_pool_u8")
    blob = pack.write_blob(g)
    c = runtime.Model(blob)
    x = _inputs(g, 5, 3)
    cls, sc = c.predict(x)
    # what deploy()/infer_remote() exec on the board, run on wasm MicroPython from the .mpy files
    script = D.load_command("/work/model.eqb") + "".join(D.infer_command(D.wire_frame(blob, img)) for img in x)
    sp = tmp_path / "board.py"
    sp.write_text("import sys\nsys.path.insert(0, '/work')\n" + script)
    files = {p.name: p.read_bytes() for p in mpys}
    files["model.eqb"] = blob
    out = mpwasm.run_script(sp, files, runtime=False).strip().splitlines()
    n_classes, wire_bytes, _ = D.parse_reply(out[0])
    assert n_classes == c.n_classes and wire_bytes == c.input_wire_bytes
    for i, line in enumerate(out[1:]):
        got_cls, got, layer_ms = D.parse_reply(line)
        assert (got_cls, got) == (cls[i], sc[i].tolist())
        assert len(layer_ms) == c.n_layers
