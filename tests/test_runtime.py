"""The C host runtime equals the numpy reference bit for bit; the C loader survives hostile blobs."""

import shutil
import struct
import subprocess

import numpy as np
import pytest

from edgeq import spec
from edgeq.format import pack
from edgeq.reference import refnet
from edgeq.errors import BlobFormatError, ShapeError
from edgeq.format.graph import Conv, Graph
from edgeq.native.runtime import Model
from edgeq.reference.testing import kbit_graph, kbit_tamper, random_graph
from test_kernels import _variants_report, variant  # noqa: F401, F811 (fixtures: every variant, report)


def _same_as_firmware_executor(m, x, what, threads=(1, 3)):
    """Model.predict (host executor, batch in C) equals eq_model_run image by image."""
    ref_cls, ref = m.predict_one(x)
    for nt in threads:
        cls, got = m.predict(x, threads=nt)
        if not np.array_equal(got, ref):
            bad = tuple(np.argwhere(got != ref)[0])
            pytest.fail(f"{what}, {nt} threads: first mismatch at image/score {bad}: host executor "
                        f"{got[bad]}, eq_model_run {ref[bad]}; layer paths {m.layer_paths()}")
        assert np.array_equal(cls, ref_cls), what


def test_host_executor_equals_firmware_executor_on_random_graphs(variant):  # noqa: F811
    """Every encoding pair, stage, pad, stride and pool of the random graphs, per variant."""
    paths = set()
    for seed in range(60):
        g = random_graph(seed, "mnist" if seed % 6 == 0 else "small")
        m = Model(pack.write_blob(g))
        x = np.random.default_rng(1000 + seed).integers(0, 256, (8,) + g.input_shape).astype(np.uint8)
        _same_as_firmware_executor(m, x, f"{variant} seed {seed}")
        paths.update(m.layer_paths())
    assert {"bits", "u8", "rows"} <= paths  # all three executor paths were exercised


def test_host_executor_kbit_graphs(variant):  # noqa: F811
    """KBIT on B1 and U8 inputs: rank-one LUTs go to the u8 GEMM, the others to the row loops."""
    for bits in (1, 2, 3, 4, 5, 8):
        for pre in ("THRESH", "QUANT"):
            g = kbit_graph(bits, pre, seed=bits)
            m = Model(pack.write_blob(g))
            x = np.random.default_rng(bits).integers(0, 256, (40,) + g.input_shape).astype(np.uint8)
            _same_as_firmware_executor(m, x, f"{variant} kbit {bits} {pre}")


ARCH_PATHS = {"bnn-cnn": "bits", "xnor-cnn": "bits", "bnn-mlp": "bits", "twn-cnn": "u8",
              "dorefa-w1a2": "u8", "dorefa-w2a2": "u8", "hwgq-cnn": "u8", "twn5-cnn": "u8",
              "hwgq-uniform": "u8"}


@pytest.fixture(scope="module")
def arch_blobs():
    """Blobs of the model zoo's architectures (28x28 and 8x8), exported from randomly
    initialised nets (folded batch norm gives real thresholds; no training needed here)."""
    torch = pytest.importorskip("torch")
    from edgeq.train import export, models

    out = {}
    for arch in ARCH_PATHS:
        for side in (28, 8):
            torch.manual_seed(side)
            net = models.build_model(arch, (1, side, side), [str(i) for i in range(10)])
            out[arch, side] = export.export_blob(net)
    return out


def test_host_executor_on_model_zoo_architectures(variant, arch_blobs):  # noqa: F811
    rng = np.random.default_rng(7)
    for (arch, side), blob in arch_blobs.items():
        m = Model(blob)
        # the main layers take the fast path (the first layer on raw pixels is u8)
        assert ARCH_PATHS[arch] in m.layer_paths() and "rows" not in m.layer_paths(), \
            (arch, m.layer_paths())
        x = rng.integers(0, 256, (33, 1, side, side)).astype(np.uint8)
        _same_as_firmware_executor(m, x, f"{variant} {arch} {side}x{side}", threads=(1, 4))


def test_threads_and_batch_sizes_do_not_change_results():
    g = random_graph(6, "mnist")
    m = Model(pack.write_blob(g), threads=2)
    x = np.random.default_rng(6).integers(0, 256, (130,) + g.input_shape).astype(np.uint8)
    ref = m.predict_one(x)[1]
    for nt in (1, 2, 3, 64, 1000):
        for n in (0, 1, 7, 130):
            cls, got = m.predict(x[:n], threads=nt)
            assert got.shape == (n, m.n_classes) and cls.shape == (n,)
            assert np.array_equal(got, ref[:n]), (nt, n)
    assert np.array_equal(m.scores(x), ref)
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ShapeError, match="threads"):
            m.predict(x, threads=bad)
    with pytest.raises(ShapeError, match="threads"):
        Model(pack.write_blob(g), threads=0)


@pytest.mark.parametrize("seed", range(60))
def test_c_runtime_equals_reference_on_random_graphs(seed):
    g = random_graph(seed, "mnist" if seed % 6 == 0 else "small")
    blob = pack.write_blob(g)
    m = Model(blob)
    x = np.random.default_rng(1000 + seed).integers(0, 256, (8,) + g.input_shape).astype(np.uint8)
    ref_scores, ref_cls = refnet.run(g, x)
    cls, scores = m.predict(x)
    if not np.array_equal(scores, ref_scores):
        bad = np.argwhere(scores != ref_scores)[0]
        pytest.fail(f"first mismatch at image/score {tuple(bad)}: C {scores[tuple(bad)]} ref "
                    f"{ref_scores[tuple(bad)]}; layers {[type(x).__name__ for x in g.layers]}")
    assert np.array_equal(cls, ref_cls)


@pytest.mark.parametrize("seed", range(0, 60, 7))
def test_every_layer_output_equals_reference(seed):
    """Intermediate activations, decoded from the runtime layout, match layer by layer."""
    from edgeq.format import bits as B

    g = pack.canonical(random_graph(seed, "small"))
    m = Model(pack.write_blob(g))
    x = np.random.default_rng(seed).integers(0, 256, g.input_shape).astype(np.uint8)
    outs = refnet.layer_outputs(g, x)
    from edgeq.format.graph import infer_shapes

    for i, (ref, s) in enumerate(zip(outs, infer_shapes(g))):
        raw = m.layer_output(x, i)
        h, w, c = s.out_shape
        if s.out_enc == "B1":
            got = B.unpack_signs(raw.view("<u4").reshape(h, w, -1), c)
        elif s.out_enc == "U8":
            got = raw.reshape(h, w, c)
        else:
            got = raw.view("<i4").reshape(h, w, c)
        assert np.array_equal(got, ref), f"layer {i} ({type(g.layers[i]).__name__}) differs"


def test_wire_input_equals_pixel_input():
    for seed in range(12):
        g = random_graph(seed, "small")
        m = Model(pack.write_blob(g))
        x = np.random.default_rng(seed).integers(0, 256, g.input_shape).astype(np.uint8)
        cls, scores = m.predict(x)
        wcls, wscores = m.predict_wire(m.wire_input(x))
        assert wcls == cls[0] and np.array_equal(wscores, scores[0])
        assert len(m.wire_input(x)) == m.input_wire_bytes
        # any wire bytes (a board takes whatever arrives): host executor == eq_model_run
        wire = np.random.default_rng(seed).integers(0, 256, m.input_wire_bytes, np.uint8).tobytes()
        got, want = m.predict_wire(wire), m.predict_wire_one(wire)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])


def test_bad_inputs_are_named():
    g = random_graph(3, "small")
    m = Model(pack.write_blob(g))
    with pytest.raises(ShapeError, match="does not match the model's input"):
        m.predict(np.zeros((2, 5, 5), np.uint8))
    with pytest.raises(ShapeError, match="uint8"):
        m.predict(np.zeros((1,) + g.input_shape, np.float32))
    with pytest.raises(BlobFormatError):
        Model(b"not a blob at all" * 10)


def test_profile_covers_every_layer():
    g = random_graph(5, "mnist")
    m = Model(pack.write_blob(g))
    ticks, total = m.profile(np.zeros(g.input_shape, np.uint8))
    assert len(ticks) == len(pack.canonical(g).layers)  # one entry per stored layer
    assert all(t > 0 for t in ticks), ticks  # every layer was timed
    assert sum(ticks) <= total


def test_dense_layers_are_stored_flat():
    """A dense layer over a 1-channel binary image costs 1 bit per weight (FLATTEN + 1x1 CONV)."""
    rng = np.random.default_rng(0)
    w = np.where(rng.random((16, 28, 28, 1)) < .5, -1, 1).astype(np.int8)
    g = Graph((1, 28, 28), "THRESH", 128, [Conv(w, "B1", "AFFINE", mul=np.ones(16, np.int32),
                                                   add=np.zeros(16, np.int32))])
    blob = pack.write_blob(g)
    assert pack.blob_info(blob)["weight_bytes"] == 16 * 25 * 4  # 784 bits -> 25 words a row
    x = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    assert np.array_equal(Model(blob).predict(x)[1], refnet.run(g, x)[0])


FUZZ_SRC = ["tests/c/fuzz_loader.c", "firmware/runtime/eq_load.c", "firmware/runtime/eq_exec.c"]


def _asan_exe(tmp_path_factory, name: str, sources: list, flags=()) -> str:
    """Build tests/c/<name>.c with the firmware kernels under ASan/UBSan (strict warnings)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler")
    import glob

    exe = tmp_path_factory.mktemp(name) / name
    cmd = [cc, "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *flags,
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-Ifirmware/include",
           "-Ifirmware/runtime", "-Ihost", *sources, *sorted(glob.glob("firmware/kernels/*.c")),
           "-o", str(exe)]
    subprocess.run(cmd, check=True)
    return exe


@pytest.fixture(scope="module")
def fuzz_exe(tmp_path_factory):
    return _asan_exe(tmp_path_factory, "fuzz_loader", FUZZ_SRC)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_c_loader_survives_mutated_blobs_under_asan(fuzz_exe, tmp_path, seed):
    g = random_graph(seed * 11, "small" if seed % 2 else "mnist")
    path = tmp_path / "m.eqb"
    path.write_bytes(pack.write_blob(g))
    r = subprocess.run([str(fuzz_exe), str(path), "3000", str(seed)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    tried, accepted, rejected = (int(v) for v in r.stdout.split()[1::2])
    assert tried == 3000 and rejected > 0


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("pre", ["THRESH", "QUANT"])
def test_kbit_every_width_equals_reference(bits, pre):
    """Packed KBIT rows (1-, 2-, 4-, 8-bit slots, padded rows) on B1 and U8 inputs."""
    g = kbit_graph(bits, pre, seed=bits)
    m = Model(pack.write_blob(g))
    x = np.random.default_rng(bits).integers(0, 256, (40,) + g.input_shape).astype(np.uint8)
    ref_scores, ref_cls = refnet.run(g, x)
    cls, scores = m.predict(x)
    assert np.array_equal(scores, ref_scores) and np.array_equal(cls, ref_cls)


def _c_load_status(blob: bytes) -> int:
    """eq_model_load on its own (runtime.Model validates in Python first)."""
    from edgeq.native.runtime import native

    ffi, lib = native().ffi, native().lib
    buf = ffi.new("uint64_t[]", (len(blob) + 7) // 8)
    ffi.memmove(buf, blob, len(blob))
    return lib.eq_model_load(ffi.new("eq_model_t *"), ffi.cast("uint8_t *", buf), len(blob))


@pytest.mark.parametrize("bits,kind", [(3, "code"), (5, "code"), (7, "code"), (1, "pad"),
                                       (2, "pad"), (3, "pad"), (4, "pad"), (8, "pad")])
def test_c_loader_rejects_bad_kbit_codes_and_padding(bits, kind):
    from edgeq import spec

    blob = pack.write_blob(kbit_graph(bits, "THRESH"))
    assert _c_load_status(blob) == 0
    assert _c_load_status(kbit_tamper(blob, kind)) == spec.value(spec.STATUS, "ERR_BOUNDS")


@pytest.mark.parametrize("c", [1, 2, 3, 7, 13, 31])
def test_u8_input_binary_weights_few_channels(c):
    """The U8 x B1 few-channel path (gathered patch + concatenated weight bits) on odd shapes."""
    rng = np.random.default_rng(c)
    for kh, kw, stride, pad in ((3, 3, 1, 1), (3, 1, 2, 0), (2, 3, 1, 1), (5, 5, 2, 2), (1, 1, 1, 0)):
        if kh * kw * c > 256:
            continue
        n = int(rng.integers(1, 300))
        w = np.where(rng.random((n, kh, kw, c)) < .5, -1, 1).astype(np.int8)
        g = Graph((c, 9, 11), "RAW", 0, [Conv(w, "B1", "AFFINE", stride=stride, pad=pad,
                                                mul=np.ones(n, np.int32), add=np.zeros(n, np.int32))])
        x = rng.integers(0, 256, (3, c, 9, 11)).astype(np.uint8)
        got = Model(pack.write_blob(g)).predict(x)[1]
        ref = refnet.run(g, x)[0]
        assert np.array_equal(got, ref), (kh, kw, stride, pad, n)


def test_i16_weights_and_the_accumulator_bound(monkeypatch):
    """I16 layers equal the reference with extreme values; a layer whose int32 accumulator could
    overflow (raw pixels 255 x 32768 x K >= 2**31 once K >= 257) is refused by the packer, and a
    blob that slips past it is refused by both loaders."""
    from edgeq import spec

    rng = np.random.default_rng(16)
    for k_side, ok in ((16, True), (17, False)):  # K = 256 fits, K = 289 could overflow
        w = rng.integers(-32768, 32768, (3, k_side, k_side, 1)).astype(np.int16)
        w[0] = -32768  # the extreme row: 255 * -32768 * 256 = -2**31 + 8_355_840
        g = Graph((1, k_side, k_side), "RAW", 0, [Conv(w, "I16", "AFFINE", mul=np.ones(3, np.int32),
                                                       add=np.zeros(3, np.int32))])
        if ok:
            x = rng.integers(0, 256, (6, 1, k_side, k_side)).astype(np.uint8)
            x[0] = 255
            blob = pack.write_blob(g)
            assert pack.read_blob(blob).layers[-1].weight.dtype == np.int16  # stored FLATTEN + 1x1
            assert np.array_equal(Model(blob).predict(x)[1], refnet.run(g, x)[0])
            continue
        with pytest.raises(ShapeError, match="overflow"):
            pack.write_blob(g)
        monkeypatch.setattr(pack, "max_abs_acc", lambda layer, shape: 0)
        blob = pack.write_blob(g)
        monkeypatch.undo()
        assert _c_load_status(blob) == spec.value(spec.STATUS, "ERR_TOO_LARGE")
        with pytest.raises(BlobFormatError, match="overflow"):
            pack.read_blob(blob)


def test_c_loader_refuses_bad_f32_values():
    """NaN / infinite / out-of-range F32 weights, thresholds and AFFINE parameters: the C loader
    answers ERR_BOUNDS (the Python reader and MicroPython are checked in test_micro)."""
    from edgeq import spec
    from test_micro import _case, f32_bad_blobs

    assert _c_load_status(pack.write_blob(_case("raw_f32_first_and_head"))) == 0
    for name, blob, status in f32_bad_blobs():
        assert _c_load_status(blob) == status, name
        with pytest.raises(BlobFormatError, match="F32"):
            pack.read_blob(blob)
    assert status == spec.value(spec.STATUS, "ERR_BOUNDS")


def test_cli_run_threads_give_the_same_answers(tmp_path):
    """`edgeq run --threads N`: any N prints the same predictions and scores; 0 is refused."""
    import json

    from cliutil import edgeq

    g = random_graph(12, "mnist")
    (tmp_path / "m.eqb").write_bytes(pack.write_blob(g))
    x = np.random.default_rng(12).integers(0, 256, (37,) + g.input_shape).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    outs = [json.loads(edgeq("run", tmp_path / "m.eqb", "--input", tmp_path / "x.npy", "--json",
                             *t).stdout) for t in ((), ("--threads", "1"), ("--threads", "5"))]
    assert outs[0] == outs[1] == outs[2]
    assert outs[0]["scores"] == Model(pack.write_blob(g)).predict_one(x)[1].tolist()
    r = edgeq("run", tmp_path / "m.eqb", "--input", tmp_path / "x.npy", "--threads", "0", check=False)
    assert r.returncode != 0 and "--threads needs a positive integer" in r.stderr


@pytest.fixture(scope="module")
def host_exec_exe(tmp_path_factory):
    import glob

    return _asan_exe(tmp_path_factory, "host_exec_check",
                     ["tests/c/host_exec_check.c", "firmware/runtime/eq_load.c", "firmware/runtime/eq_exec.c",
                      *sorted(glob.glob("host/eq_*.c"))], ["-pthread"])


@pytest.mark.parametrize("seed", [0, 1, 2, 5, 6, 9, 12, 17])
def test_host_executor_under_asan(host_exec_exe, tmp_path, seed):
    """The executor's buffers, im2col, corrections and threads under ASan/UBSan, every variant."""
    g = random_graph(seed, "mnist" if seed % 6 == 0 else "small")
    path = tmp_path / "m.eqb"
    path.write_bytes(pack.write_blob(g))
    r = subprocess.run([str(host_exec_exe), str(path), "9", str(seed)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.split()[1]) >= 1


def test_model_load_validates_in_c_only(monkeypatch):
    """Model reads only the header, metadata and layer table in Python (pack.read_summary) and
    leaves every weight to the C loader: it never calls the Python reader pack.read_blob, and a
    broken weight tensor is refused with the C loader's one-line status."""
    g = random_graph(3, "small")
    blob = pack.write_blob(g)
    monkeypatch.setattr(pack, "read_blob", lambda *_: pytest.fail("Model called pack.read_blob"))
    m = Model(blob)
    assert m.summary.input_shape == g.input_shape and len(m.summary.layers) == m.n_layers
    assert [row["op"] for row in m.summary.layers][0] == "CONV"
    hdr = pack.read_header(blob)
    te = pack.tensor_entries(blob, hdr)[0]  # the first layer's weights: one byte short
    off = hdr["tensor_table_off"] + spec.offsets(spec.TENSOR)["nbytes"]
    bad = bytearray(blob)
    struct.pack_into("<I", bad, off, te["nbytes"] - 1)
    with pytest.raises(BlobFormatError, match=r"C loader rejected the blob: .*\(ERR_\w+, status \d+\)") as e:
        Model(pack.reseal(bad))
    assert "\n" not in str(e.value)
