"""INFER inputs larger than one frame (docs/protocol.md, "Inputs larger than a frame"): the host
stages them with INPUT_CHUNK and runs them with an empty INFER. Against the `sim` board (ASan,
UBSan), the reference `qemu-mps2-an386` and the 64 KB `qemu-lm3s6965` (1 KB frames, window 1):
bit-exact with the numpy reference and the host runtime, every refusal with its status and detail,
a faulty link, small inputs still in one frame, and the host's line for firmware without it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import boardutil as U
import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.deploy import protocol as P
from edgeq.deploy.client import Board, open_serial
from edgeq.deploy.faultlink import FaultyLink
from edgeq.deploy.targets import BoardTarget
from edgeq.errors import BoardError
from edgeq.format.graph import Conv, Graph, MaxPool
from edgeq.format.pack import write_blob
from edgeq.native.runtime import Model
from edgeq.reference import refnet

pytestmark = pytest.mark.qemu
REF, SMALL = "qemu-mps2-an386", "qemu-lm3s6965"


@pytest.fixture(scope="module", autouse=True)
def private_state(private_board_state):
    """Boards started here live in a private state folder (tests/conftest.py)."""


def big_graph(seed: int, shape=(3, 64, 64), n_cls: int = 10) -> Graph:
    """RAW uint8 input of `shape` (3x64x64: a 12,288-byte wire input): I8 conv 3x3 stride 2 pad 1
    (SIGN, thresholds at the median accumulator) -> 2x2 max-pool -> dense AFFINE."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    g = Graph(shape, "RAW", 0, [], classes=[f"c{i}" for i in range(n_cls)])
    n1 = 8
    conv = Conv(rng.integers(-128, 128, (n1, 3, 3, c)).astype(np.int8), "I8", "SIGN", stride=2, pad=1,
                name="conv1")
    calib = rng.integers(0, 256, (4, *shape)).astype(np.uint8)
    acc = np.stack([refnet.conv_acc(conv, refnet.preprocess(g, x), "U8") for x in calib])
    conv.thr = np.median(acc.reshape(-1, n1), axis=0).round().astype(np.int32)
    conv.flip = rng.random(n1) < 0.3
    oh, ow = (h + 1) // 2 // 2, (w + 1) // 2 // 2
    dense = Conv(rng.choice(np.array([-1, 1], np.int8), size=(n_cls, oh, ow, n1)), "B1", "AFFINE",
                 mul=rng.integers(1, 9, n_cls).astype(np.int32),
                 add=rng.integers(-99, 99, n_cls).astype(np.int32), name="fc")
    g.layers = [conv, MaxPool(2, 2, name="pool"), dense]
    return g


@pytest.fixture(scope="module")
def big():
    g = big_graph(1)
    blob = write_blob(g)
    imgs = np.random.default_rng(7).integers(0, 256, (6, *g.input_shape)).astype(np.uint8)
    return g, blob, Model(blob), imgs


def _start(name, tmp_path_factory, blob=None):
    """Flash `name` (with `blob` in its flash model region, or the small MNIST model) and return
    its URL."""
    U.need_board(name)
    path = tmp_path_factory.mktemp(name) / "m.eqb"
    path.write_bytes(blob if blob is not None else U.small_blob(seed=0))
    run, _ = boards.flash(name, path, log=lambda s: None)
    return run


@pytest.fixture(scope="module")
def sim(tmp_path_factory, big):
    run = _start("sim", tmp_path_factory, big[1])
    yield run.url
    boards.stop("sim")
    with open(run.log, errors="replace") as fh:
        log = fh.read()
    assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log, log[-2000:]


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    yield _start(REF, tmp_path_factory).url
    boards.stop(REF)


def _check_bit_exact(b: Board, g, model, imgs):
    """Every image: board == host runtime == numpy reference, scores bit for bit."""
    ref_scores, ref_cls = refnet.run(g, imgs)
    for img, rs, rc in zip(imgs, ref_scores, ref_cls):
        wire = model.wire_input(img)
        cls, scores = b.infer(wire)
        hcls, hscores = model.predict_wire(wire)
        assert np.array_equal(scores, hscores) and cls == hcls
        assert np.array_equal(scores.astype(np.int64), rs) and cls == rc


def _cmds(b: Board) -> list:
    """Record the command of every request `b` sends from now on."""
    sent = []
    send = b.send

    def spy(cmd, payload=b"", **kw):
        sent.append((cmd, len(payload)))
        return send(cmd, payload, **kw)

    b.send = spy
    return sent


def test_big_graph_wire_is_larger_than_a_frame(big):
    g, blob, model, imgs = big
    assert model.input_wire_bytes == 3 * 64 * 64 > P.MAX_PAYLOAD
    for name in boards.names():  # every board takes the inputs its board.toml promises
        b = boards.get(name)
        assert b.input_max >= int(b.firmware["max_payload"])


def test_sim_runs_chunked_inputs_bit_exact(sim, big):
    g, blob, model, imgs = big
    with Board(sim) as b:
        assert b.hello_info.caps & P.CAP_INPUT_CHUNK
        m = b.info().model
        assert m.source == "flash" and m.input_wire == model.input_wire_bytes
        sent = _cmds(b)
        _check_bit_exact(b, g, model, imgs)
        chunks = [n for c, n in sent if c == P.CMD["INPUT_CHUNK"]]
        assert len(chunks) == 6 * 4 and max(chunks) <= b.max_payload  # 12,288 B in 4,084-B chunks
        assert [n for c, n in sent if c == P.CMD["INFER"]] == [0] * 6  # the staged input runs
        # the same input again: the board still holds it (same name), INFER runs it at once
        wire = model.wire_input(imgs[0])
        b.stage_input(wire)
        cls, scores = b.infer(wire)
        assert np.array_equal(scores, model.predict_wire(wire)[1])
        # a profile of a chunked input through the Target interface
        t = BoardTarget(b, name="sim")
        prof = t.profile(wire)
        assert len(prof.ticks) == model.n_layers and prof.total > 0
        # a batch through the Target pipeline (depth 2 for one-frame inputs)
        c, s = t.infer([model.wire_input(x) for x in imgs])
        hc, hs = model.predict(imgs)
        assert np.array_equal(s, hs) and np.array_equal(c, hc)
        assert t.bytes_out > 6 * len(wire) and t.bytes_in > 0


def test_sim_refusals_have_status_and_detail(sim, big):
    g, blob, model, imgs = big
    wire = model.wire_input(imgs[1])
    total, crc = len(wire), P.crc32(wire)
    ic, infer = P.CMD["INPUT_CHUNK"], P.CMD["INFER"]

    def chunk(off, data, tot=total, c=crc):
        return P.INPUT_HEAD.pack(off, tot, c) + data

    def refused(cmd, payload, status, detail):
        r = b.request(cmd, payload, check=False)
        assert r.status == P.STATUS[status], P.status_text(r.status)
        assert P.fields("ERROR_REPLY", r.payload)["detail"] == detail
        with pytest.raises(BoardError, match=P.spec.STATUS[status][1]):
            b.check(r, P.cmd_name(cmd))

    with Board(sim) as b:
        n = b.max_payload - P.INPUT_HEAD.size
        nxt = P.fields("NEXT_REPLY", b.request(ic, chunk(0, wire[:n])).payload)["next"]
        assert nxt == n
        refused(ic, chunk(2 * n, wire[2 * n:3 * n]), "ERR_SEQUENCE", n)  # a chunk missing: resume at n
        refused(infer, b"", "ERR_SEQUENCE", n)                            # INFER before it is complete
        refused(ic, chunk(0, wire[:10], tot=total - 1), "ERR_INPUT", total)  # not the model's input
        refused(ic, chunk(total - 4, wire[-8:]), "ERR_BOUNDS", total)      # past the end
        refused(ic, P.INPUT_HEAD.pack(0, total, crc)[:8], "ERR_ARG", 0)    # no room for the header
        refused(ic, chunk(n, wire[n:2 * n], c=crc ^ 1), "ERR_SEQUENCE", 0)  # another name: from 0
        refused(infer, b"", "ERR_SEQUENCE", 0)
        # every byte there, but not the input its name says: ERR_CRC, and nothing is staged
        bad = bytearray(wire)
        bad[5] ^= 1
        for off in range(0, total, n):
            r = b.request(ic, chunk(off, bytes(bad[off:off + n])), check=False)
        assert r.status == P.STATUS["ERR_CRC"]
        refused(infer, b"", "ERR_SEQUENCE", 0)
        # an input one byte short of the model's on one frame still gets ERR_INPUT
        refused(infer, wire[:100], "ERR_INPUT", total)
        # a model whose input is larger than the input buffer: refused at LOAD_END, limit in detail
        limit = boards.get("sim").input_max
        too_big = write_blob(big_graph(2, shape=(4, 256, limit // 1024 + 1)))
        with pytest.raises(BoardError, match=f"limit is {limit} bytes") as e:
            b.load(too_big)
        assert e.value.status == P.STATUS["ERR_TOO_LARGE"]
        # no model (the flash model came back with RESET, then LOAD_BEGIN of a RAM model drops
        # nothing: load one and start another upload to drop it)
        small = write_blob(big_graph(3, shape=(1, 8, 8)))
        b.load(small)
        b.request(P.CMD["LOAD_BEGIN"], P.LOAD_BEGIN.pack(len(small), P.crc32(small)))
        refused(ic, P.INPUT_HEAD.pack(0, 64, 0) + bytes(64), "ERR_NO_MODEL", 0)
        assert b.reset().source == "flash"
        # still serving, bit-exact, after all of that
        _check_bit_exact(b, g, model, imgs[:2])


def test_sim_small_inputs_still_go_in_one_frame(sim):
    g = big_graph(4, shape=(3, 32, 32))  # 3,072 B: one INFER frame
    blob = write_blob(g)
    model = Model(blob)
    imgs = np.random.default_rng(2).integers(0, 256, (3, 3, 32, 32)).astype(np.uint8)
    with Board(sim) as b:
        b.load(blob)
        sent = _cmds(b)
        _check_bit_exact(b, g, model, imgs)
        assert sent == [(P.CMD["INFER"], 3072)] * 3
        b.reset()


def test_sim_chunked_inputs_over_a_faulty_link(sim, big):
    g, blob, model, imgs = big
    rng = np.random.default_rng(11)
    xs = rng.integers(0, 256, (40, *g.input_shape)).astype(np.uint8)
    wires = [model.wire_input(x) for x in xs]
    hc, hs = model.predict(xs)
    link = FaultyLink(open_serial(sim), rate=0.05, seed=5)
    with Board(link, timeout=3.0) as b:
        t = BoardTarget(b, name="sim")
        c, s = t.infer(wires)
        rep = link.report()
    assert np.array_equal(c, hc) and np.array_equal(s, hs)
    assert rep["tx"]["faulted"] > 5 and rep["rx"]["faulted"] > 0  # faults did happen both ways
    assert rep["tx"]["frames"] > 40 * 4


def test_host_refuses_chunked_input_on_firmware_without_it(sim, big):
    g, blob, model, imgs = big
    with Board(sim) as b:
        b.hello_info = dataclasses.replace(b.hello_info, caps=b.hello_info.caps & ~P.CAP_INPUT_CHUNK,
                                           fw_version=(1, 1))
        sent = _cmds(b)
        for call in (lambda: b.infer(model.wire_input(imgs[0])), lambda: b.load(blob)):
            with pytest.raises(BoardError) as e:
                call()
            msg = str(e.value)
            assert "\n" not in msg and "12288 bytes" in msg and "INPUT_CHUNK" in msg
            assert "edgeq flash" in msg
        assert sent == []  # said before sending anything


def test_reference_board_chunked_bit_exact_and_deterministic_ticks(ref, big):
    g, blob, model, imgs = big
    with Board(ref) as b:
        assert b.hello_info.caps & P.CAP_INPUT_CHUNK and b.window >= 2
        b.load(blob)
        _check_bit_exact(b, g, model, imgs)
        t = BoardTarget(b, name=REF)
        wire = model.wire_input(imgs[0])
        p1, p2 = t.profile(wire), t.profile(wire)
        assert p1.ticks == p2.ticks and p1.total == p2.total > 0 and len(p1.ticks) == model.n_layers
        # a 96x96x3 frame (27,648 B, the MobileNet input) in 7 chunks
        g96 = big_graph(5, shape=(3, 96, 96))
        m96 = Model(write_blob(g96))
        b.load(write_blob(g96))
        x = np.random.default_rng(3).integers(0, 256, (2, 3, 96, 96)).astype(np.uint8)
        _check_bit_exact(b, g96, m96, x)
        limit = boards.get(REF).input_max
        with pytest.raises(BoardError, match=f"limit is {limit} bytes"):
            b.load(write_blob(big_graph(2, shape=(3, 128, 192))))
        assert b.reset().source == "flash"


def test_small_board_chunked_with_1k_frames(tmp_path_factory):
    """The 64 KB M3: 1,024-byte frames, window 1, a 4,096-byte input buffer."""
    g = big_graph(6, shape=(1, 64, 64))  # 4,096 B
    blob = write_blob(g)
    model = Model(blob)
    run = _start(SMALL, tmp_path_factory, blob)
    try:
        with Board(run.url) as b:
            assert b.max_payload == 1024 and b.hello_info.caps & P.CAP_INPUT_CHUNK
            sent = _cmds(b)
            x = np.random.default_rng(4).integers(0, 256, (3, 1, 64, 64)).astype(np.uint8)
            _check_bit_exact(b, g, model, x)
            assert sum(c == P.CMD["INPUT_CHUNK"] for c, _ in sent) == 3 * 5  # 4096 / 1012 -> 5
            with pytest.raises(BoardError, match="limit is 4096 bytes"):
                b.load(write_blob(big_graph(2, shape=(1, 64, 65))))
    finally:
        boards.stop(SMALL)


def test_firmware_without_an_input_buffer(tmp_path, big):
    """The same firmware built with input_buf = 0 (as firmware before INPUT_CHUNK behaves for
    large inputs): CAP_INPUT_CHUNK clear, the host says so in one line before sending, the board
    refuses INPUT_CHUNK and models with larger inputs (ERR_TOO_LARGE, detail = one frame)."""
    U.need_board("sim")
    g, blob, model, imgs = big
    b0 = boards.get("sim")
    out = tmp_path / "fw"
    boards.generate(dataclasses.replace(b0, firmware=dict(b0.firmware, input_buf=0)), out)
    subprocess.run(["make", "-C", str(boards.ROOT / "firmware"), "BOARD=sim", f"O={out}",
                    f"PYTHON={sys.executable}", "-j2"], check=True, capture_output=True)
    (tmp_path / "m.eqb").write_bytes(blob)
    pty = tmp_path / "pty"
    proc = subprocess.Popen([str(out / "firmware"), "--pty-file", str(pty), "--model", str(tmp_path / "m.eqb")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    try:
        t0 = time.monotonic()
        while not pty.exists() and time.monotonic() - t0 < 10:
            time.sleep(0.02)
        with Board(pty.read_text().strip()) as b:
            assert not b.hello_info.caps & P.CAP_INPUT_CHUNK
            assert b.info().model.source == "none"  # the flash model's input does not fit: not used
            sent = _cmds(b)
            for call in (lambda: b.infer(model.wire_input(imgs[0])), lambda: b.load(blob)):
                with pytest.raises(BoardError, match="cannot take larger inputs in chunks"):
                    call()
            assert sent == []
            r = b.request(P.CMD["INPUT_CHUNK"], P.INPUT_HEAD.pack(0, 12288, 0) + bytes(8), check=False)
            assert r.status == P.STATUS["ERR_TOO_LARGE"] and P.ERROR.unpack(r.payload)[1] == 4096
            b.hello_info = dataclasses.replace(b.hello_info, caps=b.hello_info.caps | P.CAP_INPUT_CHUNK)
            with pytest.raises(BoardError, match="limit is 4096 bytes") as e:  # the board's own check
                b.load(blob)
            assert e.value.status == P.STATUS["ERR_TOO_LARGE"]
            small = big_graph(8, shape=(3, 32, 32))
            b.load(write_blob(small))
            _check_bit_exact(b, small, Model(write_blob(small)), imgs[:2, :, :32, :32].copy())
    finally:
        proc.kill()
        err = proc.communicate()[1].decode(errors="replace")
    assert "AddressSanitizer" not in err and "runtime error" not in err, err[-2000:]
