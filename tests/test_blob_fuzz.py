"""Trust nothing (issue 13): crafted and mutated blobs through every reader.

- CRC-valid regression blobs (tests/blobgen.py), one per C loader bug: the host C loader (cffi),
  runtime.Model and the MicroPython loader (on CPython) answer a clean status / BlobFormatError.
  (The ASan/UBSan build of the same blobs: tests/test_c_strict.py.)
- Reader seeds, one per cause of the Python reader's tracebacks: BlobFormatError naming the field,
  from the library and as one line from `edgeq info` / `info --json`.
- Mutation fuzzing of the Python read paths (read_blob, blob_info + JSON, Model + one inference):
  seeded, a bounded count of mutated and re-sealed blobs; only BlobFormatError may come out.
- The libFuzzer target tests/c/fuzz_blob.c (loader + executor, clang -fsanitize=fuzzer,address,
  undefined), seeded with the structured generator's blobs, run briefly (docs/fuzzing.md).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import blobgen
from edgeq.format import pack
from edgeq import spec
from edgeq.errors import BlobFormatError
from edgeq.native.runtime import Model, native

sys.path.insert(0, "edgeq/micro")  # as on the board: edgeq_micro imports edgeq_spec directly
import edgeq_micro  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _c_load(blob: bytes):
    """(status, eq_model_t) of eq_model_load alone (what runtime.Model validates through)."""
    ffi, lib = native().ffi, native().lib
    buf = ffi.new("uint64_t[]", (len(blob) + 7) // 8)
    ffi.memmove(buf, blob, len(blob))
    m = ffi.new("eq_model_t *")
    return lib.eq_model_load(m, ffi.cast("uint8_t *", buf), len(blob)), m


# --------------------------------------------------------------------------------------------
# C loader regression blobs


@pytest.mark.parametrize("name,blob,status", blobgen.regression_blobs(),
                         ids=[c[0] for c in blobgen.regression_blobs()])
def test_regression_blob_rejected_everywhere(name, blob, status):
    st, m = _c_load(blob)
    assert st == status, f"{name}: C loader answered {st}"
    ffi, lib = native().ffi, native().lib
    assert m.blob == ffi.NULL and m.input_pixels == 0 and m.arena_need == 0  # nothing half-filled
    arena, scores = ffi.new("uint64_t[]", 64), ffi.new("int32_t[]", 64)
    run = ffi.new("eq_run_t *")
    run.input, run.input_size, run.input_kind = ffi.new("uint8_t[]", 16), 16, 0
    run.scores, run.n_scores = scores, 64
    st = lib.eq_model_run(m, ffi.cast("uint8_t *", arena), 512, run)
    assert st == spec.value(spec.STATUS, "ERR_ARG")  # a failed load cannot be run
    with pytest.raises(BlobFormatError):
        Model(blob)
    with pytest.raises(edgeq_micro.BlobError) as e:
        edgeq_micro.Model(blob)
    assert e.value.status == status, f"{name}: MicroPython loader: {e.value}"


def test_regression_blobs_on_micropython():
    """The same blobs through edgeq_micro on the real MicroPython (WebAssembly port)."""
    refused_on_micropython(blobgen.regression_blobs())


def refused_on_micropython(cases: list):
    """Each (name, blob, status) is refused by edgeq_micro on the real MicroPython (WebAssembly
    port) with a BlobError of that status; skips where the port is not built."""
    sys.path.insert(0, "tests/mp_harness")
    import mpwasm

    try:
        mpwasm.ensure_port()
    except mpwasm.PortMissing as e:
        pytest.skip(str(e))
    res = mpwasm.run_jobs([{"blob": f"{name}.eqb"} for name, _, _ in cases],
                          {f"{name}.eqb": blob for name, blob, _ in cases})
    for (name, _, status), r in zip(cases, res):
        assert not r["ok"] and r["error"] == "BlobError" and r["status"] == status, f"{name}: {r}"


def test_input_limit_is_exact():
    """input pixels < 2**31: 32x16384x16383 passes the pixel check only if it fits; one fewer
    row of a model that fits loads."""
    st, _ = _c_load(blobgen.input_pixels_over_2pow31())
    assert st == spec.value(spec.STATUS, "ERR_TOO_LARGE")
    ok = blobgen._pool_net(32, 8192, 8191, "THRESH")  # 2**31 - 2**18 pixels, 2**28 bytes of bits
    st, m = _c_load(ok)
    assert st == 0 and m.input_pixels == 32 * 8192 * 8191 and m.input_wire == 4 * 8192 * 8191


def test_u8_binary_conv_exact_near_int32_limit():
    """RAW 128x255x255, one 255x255 binary conv (pad 1), all pixels 255, all weights +1: each
    accumulator is (in-bounds taps) * 128 * 255, up to 2,122,416,000 (2*pos overflowed int32
    before; the value is checked here, the UB in test_c_strict under UBSan)."""
    m = Model(pack.write_blob(blobgen.big_u8_binary_graph()))
    _, scores = m.predict(np.full((1, 128, 255, 255), 255, np.uint8))
    rows = np.array([254, 255, 254])
    want = (rows[:, None] * rows[None, :] * 128 * 255).reshape(-1)
    assert np.array_equal(scores[0], want)


# --------------------------------------------------------------------------------------------
# Python reader seeds: one per cause found by the mutation fuzzing of issue 13


def _base() -> bytes:
    from test_micro import _case

    return pack.write_blob(_case("b1_kbit_i8"))


def _deep(n: int) -> bytes:
    return b'{"x": ' + b"[" * n + b"]" * n + b"}"


def reader_seeds() -> list:
    """(name, blob, regex the BlobFormatError must match)."""
    b = _base()
    return [
        ("meta_not_object", blobgen.with_meta(b, b"[1, 2, 3]"), "metadata must be a JSON object"),
        ("meta_string", blobgen.with_meta(b, b'"classes"'), "metadata must be a JSON object"),
        ("classes_int", blobgen.with_meta(b, b'{"classes": 5}'), "'classes' must be a list"),
        ("classes_of_dicts", blobgen.with_meta(b, b'{"classes": [{"a": 1}]}'), "'classes' must be a list"),
        ("names_string", blobgen.with_meta(b, b'{"names": "conv"}'), "'names' must be a list"),
        ("meta_deep_recursion", blobgen.with_meta(b, _deep(100000)), "nests too deeply|nests deeper"),
        ("meta_deep_40", blobgen.with_meta(b, _deep(40)), "nests deeper than 32"),
        ("lut_on_i8_layer", blobgen.set_field(b, "layer", 1, "t_lut", 999), None),
        ("sparse_dense_63gib", blobgen.sparse_dense_huge(), "TERN_SPARSE weights .* decode to"),
        ("sparse_dense_32gib", blobgen.sparse_dense_huge(32767), "TERN_SPARSE weights .* decode to"),
        ("shared_weight_chain", blobgen.shared_weight_chain(), "B1 weights .* decode to"),
        ("overlapping_tensors", blobgen.overlapping_tensors(), None),
        ("input_2pow32_pixels", blobgen.input_pixels_wrap(), "pixels exceeds"),
    ]


@pytest.mark.parametrize("name,blob,match", reader_seeds(), ids=[s[0] for s in reader_seeds()])
def test_reader_seed(name, blob, match):
    tracemalloc.start()
    try:
        if match is None:  # a valid blob
            info = pack.blob_info(blob)
            json.dumps(info)
            if name == "lut_on_i8_layer":  # the loaders ignore t_lut on a non-KBIT layer
                assert info["layers"][1]["w_enc"] == "I8" and info["layers"][1]["weight_bytes"] > 0
            assert _c_load(blob)[0] == 0
        else:
            with pytest.raises(BlobFormatError, match=match):
                pack.read_blob(blob)
            with pytest.raises(BlobFormatError, match=match):
                pack.blob_info(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # no allocation before the shape that sizes it is checked against the blob's length: at most the
    # reader's decode budget (max(2**26, 64 x blob size), docs/blob-format.md) plus a little
    limit = max(pack.MAX_DECODED_BYTES, 64 * len(blob)) + (8 << 20)
    assert peak < limit, f"{name}: {peak} bytes allocated for a {len(blob)}-byte blob"


@pytest.mark.parametrize("args", [["info"], ["info", "--json"]])
def test_reader_seeds_cli_one_line(args, tmp_path):
    for name, blob, match in reader_seeds():
        if match is None:
            continue
        p = tmp_path / f"{name}.eqb"
        p.write_bytes(blob)
        r = subprocess.run([sys.executable, "-m", "edgeq", *args, str(p)], capture_output=True,
                           text=True, timeout=120, cwd=ROOT)
        assert r.returncode != 0 and "Traceback" not in r.stderr, f"{name}: {r.stderr}"
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert len(lines) == 1, f"{name}: {r.stderr}"


# --------------------------------------------------------------------------------------------
# mutation fuzzing of the Python read paths

INTERESTING = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 127, 128, 255, 256, 0x7FFF, 0x8000, 0xFFFF,
               0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 30]
NASTY_META = [b"[]", b"null", b"7", b'"x"', b'{"classes": null}', b'{"classes": "abc"}',
              b'{"names": {"a": 1}}', b'{"names": [[1]]}', b'{"classes": [1, 2.5, null, true]}',
              b"{", b"\xff\xfe", _deep(5000), b'{"a": NaN}', b'{"classes": [' + b'"x",' * 300 + b'"y"]}']


def _mutate(rng: random.Random, blob: bytes) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:  # bytes anywhere
        buf = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] = rng.randrange(256) if rng.random() < .5 else buf[i] ^ (1 << rng.randrange(8))
        return pack.reseal(buf) if rng.random() < .9 else bytes(buf)
    if kind in (1, 2, 3):  # one field of a record at an interesting value
        n_l = blobgen._hdr(blob, "n_layers")
        n_t = blobgen._hdr(blob, "n_tensors")
        record = ("header", "layer", "tensor")[kind - 1]
        fields = {"header": spec.HEADER, "layer": spec.LAYER, "tensor": spec.TENSOR}[record]
        field = rng.choice([f for f, c, _ in fields if c not in ("4s", "8s")])
        if record == "header" and field in ("crc32", "total_size", "header_size", "magic"):
            field = rng.choice(["n_layers", "n_tensors", "in_c", "in_h", "in_w", "n_classes"])
        index = rng.randrange(n_l if record == "layer" else max(n_t, 1))
        value = rng.choice(INTERESTING) + rng.choice([0, 0, 0, -1, 1])
        out = blobgen.set_field(blob, record, index, field, value)
        if rng.random() < .3:  # a second field of the same record: shapes that agree with each other
            field2 = rng.choice([f for f, c, _ in fields if c not in ("4s", "8s")])
            if not (record == "header" and field2 in ("crc32", "total_size", "header_size", "magic")):
                out = blobgen.set_field(out, record, index, field2, rng.choice(INTERESTING))
        return out
    if kind == 4:
        return blobgen.with_meta(blob, rng.choice(NASTY_META))
    cut = rng.randrange(len(blob))  # truncated, or total_size shrunk to match, resealed
    if rng.random() < .5:
        return blob[:cut]
    return blobgen.set_field(blob[:max(cut, spec.HEADER_SIZE)], "header", 0, "total_size",
                             max(cut, spec.HEADER_SIZE))


def _exercise(blob: bytes) -> str:
    """Every read path `edgeq info`, `info --json` and `run` take. 'ok' or 'rejected'."""
    try:
        pack.read_blob(blob)
        info = pack.blob_info(blob)
        json.dumps(info)
        m = Model(blob)
        if m.arena_size <= (16 << 20) and int(np.prod(m.input_shape)) <= (1 << 20):
            m.predict(np.zeros((1,) + tuple(m.input_shape), np.uint8))
        return "ok"
    except BlobFormatError as e:
        assert str(e) and "\n" not in str(e)
        return "rejected"


def _bases() -> list:
    from edgeq.reference.testing import random_graph
    from test_micro import CASES, _case

    return [pack.write_blob(_case(n)) for n in CASES] + [pack.write_blob(random_graph(s)) for s in (1, 2)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_blobs_give_only_blob_format_errors(seed):
    """1,000 mutated (mostly re-sealed) blobs a seed: fields at 2**k boundaries, broken
    metadata, truncation, random bytes. Anything but BlobFormatError fails the test."""
    rng = random.Random(seed)
    bases = _bases()
    counts = {"ok": 0, "rejected": 0}
    for i in range(1000):
        blob = _mutate(rng, rng.choice(bases))
        try:
            counts[_exercise(blob)] += 1
        except Exception as e:  # noqa: BLE001 - the point of the test
            path = os.path.join(ROOT, "build", f"fuzz_reader_{seed}_{i}.eqb")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(blob)
            raise AssertionError(f"mutant {i} ({path}): {type(e).__name__}: {e}") from e
    assert counts["ok"] > 0 and counts["rejected"] > 500, counts


# --------------------------------------------------------------------------------------------
# libFuzzer over the C loader and executor

FUZZ_SECONDS = int(os.environ.get("EDGEQ_FUZZ_SECONDS", "25"))


def _clang_fuzzer(tmp_path):
    clang = shutil.which("clang") or shutil.which("clang-14")
    if not clang:
        pytest.skip("clang not installed (scripts/install.sh: apt-get install clang libclang-rt-14-dev)")
    exe = tmp_path / "fuzz_blob"
    r = subprocess.run([clang, "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=fuzzer,address,undefined",
                        "-fno-sanitize-recover=all", "-Ifirmware/include", "-Ifirmware/runtime",
                        "-Itests/c", "tests/c/fuzz_blob.c", "firmware/runtime/eq_load.c", "firmware/runtime/eq_exec.c",
                        *sorted(f"firmware/kernels/{f}" for f in os.listdir("firmware/kernels")
                                if f.endswith(".c")),
                        "-o", str(exe)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode and ("fuzzer" in r.stderr and "No such file" in r.stderr
                         or "libclang_rt.fuzzer" in r.stderr):
        pytest.skip(f"clang has no libFuzzer runtime (apt-get install libclang-rt-14-dev): {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr
    return exe


def write_seed_corpus(path) -> int:
    """The structured generator's blobs plus one packed model per layer type: the fuzzer's seeds."""
    from test_micro import CASES, _case

    os.makedirs(path, exist_ok=True)
    seeds = {name: blob for name, blob, _ in blobgen.regression_blobs()}
    seeds["sparse_dense_huge"] = blobgen.sparse_dense_huge()
    seeds.update({name: pack.write_blob(_case(name)) for name in CASES})
    for name, blob in seeds.items():
        with open(os.path.join(path, name + ".eqb"), "wb") as f:
            f.write(blob)
    return len(seeds)


def test_libfuzzer_loader_and_executor(tmp_path):
    exe = _clang_fuzzer(tmp_path)
    corpus, seeds = tmp_path / "corpus", tmp_path / "seeds"
    corpus.mkdir()
    write_seed_corpus(seeds)
    r = subprocess.run([str(exe), f"-max_total_time={FUZZ_SECONDS}", "-rss_limit_mb=2048",
                        "-timeout=20", "-print_final_stats=1", f"-artifact_prefix={tmp_path}/",
                        str(corpus), str(seeds)], capture_output=True, text=True,
                       timeout=FUZZ_SECONDS + 240)
    assert r.returncode == 0, r.stderr[-6000:]
    runs = [line for line in r.stderr.splitlines() if line.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split(":")[-1]) > 100, r.stderr[-2000:]


# --------------------------------------------------------------------------------------------
# the `sim` board (the firmware under ASan/UBSan): regression blobs uploaded over the protocol


def test_sim_board_refuses_regression_blobs(private_board_state, tmp_path):
    """Each regression blob uploaded to `sim` gets its loader status as a BoardError; the board
    survives (no sanitizer report in its log) and still answers an inference with the flash model
    after RESET."""
    from boardutil import small_blob

    from edgeq.deploy import boards
    from edgeq.deploy.client import Board
    from edgeq.errors import BoardError

    why = boards.toolchain_missing("sim")
    if why:
        pytest.skip(f"sim: {why}")
    good = small_blob(seed=3)
    path = tmp_path / "m.eqb"
    path.write_bytes(good)
    model = Model(good)
    run, _ = boards.flash("sim", path, log=lambda s: None)
    try:
        img = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
        with Board(run.url) as b:
            for name, blob, status in blobgen.regression_blobs():
                with pytest.raises(BoardError) as e:
                    b.load(blob)
                assert e.value.status == status, f"{name}: {e.value}"
            assert b.reset().source == "flash"
            cls, scores = b.infer(model.wire_input(img))[:2]
            want_cls, want_scores = model.predict(img)
            assert cls == want_cls[0] and list(scores) == want_scores[0].tolist()
    finally:
        boards.stop("sim")
    with open(run.log, errors="replace") as fh:
        log = fh.read()
    assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log, log[-2000:]
