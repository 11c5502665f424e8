"""QEMU boards end to end (real toolchain, real emulator): flash a model, INFER MNIST digits over
the serial link, compare with the host runtime bit for bit; protocol robustness against the
running firmware; the CLI (`edgeq build/flash/boards`)."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time

import boardutil as U
import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.deploy import protocol as P
from edgeq.deploy.client import Board
from edgeq.errors import BoardError, BoardTimeout

REF = "qemu-mps2-an386"
pytestmark = pytest.mark.qemu


def _need(name):
    why = boards.toolchain_missing(name)
    if why or (boards.get(name).kind == "qemu" and not shutil.which(boards.QEMU)):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")


@pytest.fixture(scope="module", autouse=True)
def private_state(private_board_state):
    """Boards started here live in a private state folder (tests/conftest.py)."""


@pytest.fixture(scope="module")
def mnist():
    data = U.mnist_test(600)
    if data is None:
        pytest.skip("../shared/data/mnist not present")
    return data


def _flash(name, blob, tmp_path):
    _need(name)
    path = tmp_path / f"{name}.eqb"
    path.write_bytes(blob)
    return boards.flash(name, path, log=lambda s: None)


@pytest.fixture(scope="module")
def ref_board(tmp_path_factory):
    from edgeq.native.runtime import Model

    blob = U.small_blob(seed=0)
    run, _ = _flash(REF, blob, tmp_path_factory.mktemp("ref"))
    yield run, blob, Model(blob)
    boards.stop(REF)


@pytest.mark.slow
def test_reference_board_matches_host_on_500_mnist_digits(ref_board, mnist):
    run, blob, model = ref_board
    with boards.connect(REF) as b:  # --port auto: found through the state directory
        assert b.url == run.url
        info = b.info()
        assert info.board == REF and info.model.source == "flash"
        assert info.model.crc32 == P.crc32(blob) and info.model.model_hash == blob[64:72]
        t = time.monotonic()
        n, bad_cls, bad_scores, first = U.compare_on_board(b, model, mnist[0][:500])
        dt = time.monotonic() - t
    print(f"{REF}: {n} digits, {bad_cls} class / {bad_scores} score mismatches, "
          f"{1000 * dt / n:.1f} ms per INFER round trip")
    assert n == 500 and bad_cls == 0 and bad_scores == 0, first


def test_reference_board_profile_is_deterministic(ref_board, mnist):
    _, _, model = ref_board
    with boards.connect(REF) as b:
        wire = model.wire_input(mnist[0][0])
        profs, totals = [], []
        for i in range(3):
            if i == 2:
                b.echo(b"x" * 300)  # other traffic in between changes nothing
            b.infer(wire)
            totals.append(b.last_ticks)
            profs.append(b.profile())
    # -icount + the counter restarted with each inference, nothing interrupting it: exact
    assert profs[0].ticks == profs[1].ticks == profs[2].ticks, [p.ticks for p in profs]
    assert profs[0].total == profs[1].total == profs[2].total == totals[0] == totals[2]
    assert len(profs[0].ticks) == model.n_layers and profs[0].tick_hz == 25_000_000
    assert sum(profs[0].ticks) <= profs[0].total


@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-mps3-an547", "qemu-lm3s6965", "qemu-netduinoplus2"])
def test_tick_rate_and_determinism(name, tmp_path):
    """boards/common/probe/tick_probe.c times busy loops of 2 instructions per iteration with the
    board's tick source; under -icount shift=5 an instruction is 32 ns, so N loops must take
    2 N x 32 ns x tick_hz ticks: board.toml's tick_hz is what QEMU's counter really runs at."""
    _need(name)
    b = boards.get(name)
    rows = U.run_tick_probe(name, U.build_tick_probe(name, tmp_path))
    assert len(rows) == 6, rows
    for i in range(0, 6, 2):  # the same span twice, from different phases: identical counts
        assert rows[i] == rows[i + 1], rows
    (n1, t1), (n2, t2) = rows[2], rows[4]
    expect = 2 * (n2 - n1) * b.qemu["instr_ns"] * 1e-9 * b.tick_hz
    # the systick source executes its wrap interrupt (a few instructions per 2^16 ticks)
    slack = 2 + (2e-4 * expect if b.ticks["source"] == "systick" else 0)
    assert abs((t2 - t1) - expect) <= slack, (name, rows, expect)


@pytest.mark.parametrize("name", ["qemu-mps3-an547", "qemu-lm3s6965", "qemu-netduinoplus2"])
def test_small_model_on_other_qemu_boards(name, mnist, tmp_path):
    from edgeq.native.runtime import Model

    blob = U.small_blob(seed=5, c1=8)
    model = Model(blob)
    run, _ = _flash(name, blob, tmp_path)
    try:
        with Board(run.url) as b:
            n, bad_cls, bad_scores, first = U.compare_on_board(b, model, mnist[0][:100])
            assert n == 100 and bad_cls == 0 and bad_scores == 0, first
            # the RAM upload path too (small chunks and window 1 on the 64 KB board)
            other = U.small_blob(seed=6, c1=4)
            assert b.load(other).source == "ram"
            m2 = Model(other)
            assert U.compare_on_board(b, m2, mnist[0][100:120])[1:3] == (0, 0)
    finally:
        boards.stop(name)


@pytest.mark.parametrize("name", ["qemu-netduinoplus2"])
def test_cli_flash_eval_stream_profile(name, tmp_path):
    """The user's commands on a board whose HAL drives vendor peripherals (STM32 USART1 and TIM2
    under QEMU): flash, eval bit-exact, a stream equal to the host's, deterministic profiles."""
    import json

    from cliutil import edgeq

    _need(name)
    model = tmp_path / "m.eqb"
    model.write_bytes(U.small_blob(seed=3))
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, 40))
    try:
        assert "verified on the board" in edgeq("flash", model, "--board", name).stdout
        res = json.loads(edgeq("eval", model, "--board", name, "--data", f"npz:{tmp_path / 'd.npz'}",
                               "--split", "all", "--json").stdout)
        assert res["n"] == 40 and res["mismatches"] == 0 and res["accuracy"] == res["host_accuracy"], res
        runs = {}
        for where in (name, "host"):
            out = edgeq("stream", "--board", where, "--model", model, "--limit", "16", "--json").stdout
            runs[where] = [(x["class"], x["score"]) for x in map(json.loads, out.splitlines())]
        assert len(runs[name]) == 16 and runs[name] == runs["host"], runs
        reports = []
        for i in range(2):
            edgeq("profile", "--board", name, "--model", model, "--runs", "2", "--json", tmp_path / f"p{i}.json")
            reports.append(json.loads((tmp_path / f"p{i}.json").read_text()))
        a, b = reports
        assert [x["cycles"] for x in a["layers"]] == [x["cycles"] for x in b["layers"]], (a, b)
        assert a["total_cycles"] == b["total_cycles"] > 0
    finally:
        boards.stop(name)


def test_model_that_does_not_fit_is_refused_with_numbers(tmp_path):
    _need("qemu-lm3s6965")
    big = U.small_blob(seed=1, c1=64)  # arena and weights beyond the 64 KB board's buffers
    path = tmp_path / "big.eqb"
    path.write_bytes(big)
    with pytest.raises(BoardError, match=r"arena but the firmware has 16,384 B"):
        boards.flash("qemu-lm3s6965", path, log=lambda s: None)
    assert not boards.running("qemu-lm3s6965")


# ---- robustness: the firmware survives abuse and keeps answering correctly -----------------
def _raw(b: Board, data: bytes):
    b._write(data)


def _expect_frame_error(b: Board, seq=None, timeout=3.0):
    """Next reply must be the board's 'bad frame' report."""
    deadline = time.monotonic() + timeout
    f = b._read_frame(deadline)
    assert isinstance(f, P.Frame) and f.cmd == P.CMD_ERROR, f
    assert f.payload[0] == P.STATUS["ERR_FRAME"]
    return f


def _still_correct(b, model, images):
    _, bad_cls, bad_scores, first = U.compare_on_board(b, model, images)
    assert bad_cls == 0 and bad_scores == 0, first


def test_survives_garbage_bitflips_drops_truncation_oversize(ref_board, mnist):
    run, _, model = ref_board
    rng = random.Random(7)
    imgs = mnist[0][:5]
    with Board(run.url, timeout=3.0) as b:
        bad0 = b.info().frames_bad
        wire = model.wire_input(imgs[0])
        frame = P.encode_frame(P.CMD["INFER"], 999, wire)
        # 1. random garbage (zeros included) -> some number of 'bad frame' reports, then service
        _raw(b, bytes(rng.randrange(256) for _ in range(3000)) + b"\x00")
        b._drain(0.3)
        _still_correct(b, model, imgs)
        # 2. one flipped bit anywhere in a frame
        for pos in (3, len(frame) // 2, len(frame) - 3):
            bad = bytearray(frame)
            bad[pos] ^= 0x04
            if bad[pos] == 0:
                bad[pos] = 0x77
            _raw(b, bytes(bad))
            _expect_frame_error(b)
        # 3. dropped bytes
        _raw(b, frame[:20] + frame[23:])
        _expect_frame_error(b)
        # 4. truncated frame (delimiter comes early)
        _raw(b, frame[: len(frame) // 3] + b"\x00")
        _expect_frame_error(b)
        # 5. oversized frame: longer than any frame the board accepts
        _raw(b, b"\x00" + b"\x42" * 9000 + b"\x00")
        f = _expect_frame_error(b, timeout=10)
        assert P.ERROR.unpack_from(f.payload)[1] >= 4096
        _still_correct(b, model, imgs)
        info = b.info()
        assert info.frames_bad >= bad0 + 6 and info.rx_overruns == 0
        assert info.model.source == "flash"


def test_protocol_errors_get_their_status(ref_board, mnist):
    run, _, model = ref_board
    with Board(run.url) as b:
        with pytest.raises(BoardError) as e:
            b.request(0x55)
        assert e.value.status == P.STATUS["ERR_UNKNOWN_CMD"]
        seq = b.send(P.CMD["INFO"], version=9)
        r = b.receive(P.CMD["INFO"], seq)
        assert r.status == P.STATUS["ERR_PROTOCOL"]
        with pytest.raises(BoardError, match="takes 98 bytes") as e:
            b.infer(bytes(97))
        assert e.value.status == P.STATUS["ERR_INPUT"]
        with pytest.raises(BoardError) as e:
            b.echo(bytes(b.max_payload))
        assert e.value.status == P.STATUS["ERR_TOO_LARGE"]
        with pytest.raises(BoardError, match="limit is") as e:
            b.request(P.CMD["LOAD_BEGIN"], P.LOAD_BEGIN.pack(50 << 20, 0))
        assert e.value.status == P.STATUS["ERR_TOO_LARGE"]
        with pytest.raises(BoardError) as e:
            b.request(P.CMD["LOAD_CHUNK"], P.CHUNK_HEAD.pack(0) + b"x")
        assert e.value.status == P.STATUS["ERR_SEQUENCE"]
        _still_correct(b, model, mnist[0][:3])


def test_interrupted_load_then_retry_and_bad_crc_blobs(ref_board, mnist):
    from edgeq.native.runtime import Model

    run, _, model = ref_board
    other = U.small_blob(seed=11)
    m2 = Model(other)
    imgs = mnist[0][:10]
    with Board(run.url) as b:
        # LOAD interrupted halfway: the flash model keeps serving
        b.request(P.CMD["LOAD_BEGIN"], P.LOAD_BEGIN.pack(len(other), P.crc32(other)))
        half = len(other) // 2
        b.request(P.CMD["LOAD_CHUNK"], P.CHUNK_HEAD.pack(0) + other[:1000])
        with pytest.raises(BoardError) as e:  # a gap: the board says where to resume
            b.request(P.CMD["LOAD_CHUNK"], P.CHUNK_HEAD.pack(2000) + other[2000:half])
        assert e.value.status == P.STATUS["ERR_SEQUENCE"] and "offset 1000" in str(e.value)
        with pytest.raises(BoardError) as e:  # LOAD_END before all bytes arrived
            b.request(P.CMD["LOAD_END"])
        assert e.value.status == P.STATUS["ERR_SEQUENCE"]
        _still_correct(b, model, imgs[:3])
        # ... and retried from the start
        assert b.load(other).source == "ram"
        _still_correct(b, m2, imgs)
        # transport CRC mismatch (bytes changed on the way)
        b.request(P.CMD["LOAD_BEGIN"], P.LOAD_BEGIN.pack(len(other), P.crc32(other) ^ 1))
        b.request(P.CMD["LOAD_CHUNK"], P.CHUNK_HEAD.pack(0) + other[:4000])
        b.request(P.CMD["LOAD_CHUNK"], P.CHUNK_HEAD.pack(4000) + other[4000:])
        with pytest.raises(BoardError) as e:
            b.request(P.CMD["LOAD_END"])
        assert e.value.status == P.STATUS["ERR_CRC"]
        # a blob whose own CRC is wrong (transport CRC right): eq_model_load refuses it
        corrupt = bytearray(other)
        corrupt[-1] ^= 0xFF
        with pytest.raises(BoardError) as e:
            b.load(bytes(corrupt))
        assert e.value.status == P.STATUS["ERR_CRC"]
        with pytest.raises(BoardError) as e:
            b.infer(model.wire_input(imgs[0]))
        assert e.value.status == P.STATUS["ERR_NO_MODEL"]
        # RESET goes back to the model in flash
        assert b.reset().source == "flash"
        _still_correct(b, model, imgs)


def test_reconnect_and_idle_sleep(ref_board, mnist):
    """Clients come and go like on a USB port; an idle board sleeps (WFI) instead of spinning."""
    run, _, model = ref_board
    for _ in range(3):
        with Board(run.url) as b:
            _still_correct(b, model, mnist[0][:2])
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu():
        with open(f"/proc/{run.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / ticks

    c0 = cpu()
    time.sleep(1.0)
    assert cpu() - c0 < 0.5, "the emulated board burns CPU while idle"


def test_board_timeout_when_nothing_answers():
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        t = time.monotonic()
        with pytest.raises(BoardTimeout):
            Board(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=0.3)
        assert time.monotonic() - t < 2
    finally:
        srv.close()


# ---- CLI ------------------------------------------------------------------------------------
def _cli(*argv):
    from edgeq.cli import board as cli_board

    ap = argparse.ArgumentParser(prog="edgeq")
    cli_board.register(ap.add_subparsers())
    args = ap.parse_args(list(argv))
    return args.func(args)


def test_cli_build_flash_boards_stop(tmp_path, capsys):
    _need("qemu-lm3s6965")
    blob = U.small_blob(seed=2, c1=4)
    path = tmp_path / "m.eqb"
    path.write_bytes(blob)
    assert _cli("build", "--board", "qemu-lm3s6965") == 0
    out = capsys.readouterr().out
    assert "flash" in out and "RAM" in out and "of    65,536" in out
    assert _cli("flash", str(path), "--board", "qemu-lm3s6965") == 0
    out = capsys.readouterr().out
    assert "verified on the board" in out and f"CRC {P.crc32(blob):08x}" in out
    assert _cli("boards") == 0
    out = capsys.readouterr().out
    assert "qemu-lm3s6965" in out and "running pid" in out and "nucleo-f411re" in out
    assert _cli("boards", "--stop", "qemu-lm3s6965") == 0
    assert not boards.running("qemu-lm3s6965")


# seeds of testing.random_graph (8x8 inputs) that together use every weight encoding, every
# output stage, pads, strides and pools
EVERY_ENCODING_SEEDS = (1, 2, 4, 5, 7, 8, 15)


@pytest.mark.parametrize("name", [REF, "qemu-mps3-an547", "qemu-lm3s6965", "qemu-netduinoplus2", "sim"])
def test_every_encoding_on_the_board_equals_the_host(name, tmp_path, request):
    """The core promise on each emulated board: random graphs over every weight encoding (B1,
    TERN planes, TERN_SPARSE skip-zero, KBIT + LUT, I8, I16, F32 on the M4F/M55 FPU, soft float
    on the M3, x86 on sim) give the host runtime's classes and scores, uploaded over serial."""
    from edgeq.format import pack
    from edgeq.reference import testing
    from edgeq.native.runtime import Model

    limit = int(boards.get(name).firmware["model_buf"])  # the 64 KB M3 takes the smaller ones
    graphs, blobs, seeds = [], [], []
    for s in EVERY_ENCODING_SEEDS:
        g = testing.random_graph(s)
        blob = pack.write_blob(g)
        if len(blob) <= limit:
            graphs.append(g)
            blobs.append(blob)
            seeds.append(s)
    encs = {getattr(layer, "w_enc", None) for g in graphs for layer in g.layers}
    need = {"F32", "I16", "TERN"} if limit < 65536 else {"B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32"}
    assert need <= encs, (name, encs)
    if name == REF:  # the module's reference board (models go to RAM; this test runs last)
        url, own = request.getfixturevalue("ref_board")[0].url, False
    else:
        url, own = _flash(name, blobs[0], tmp_path)[0].url, True
    rng = random.Random(7)
    try:
        with Board(url) as b:
            for seed, g, blob in zip(seeds, graphs, blobs):
                assert b.load(blob).source == "ram"
                model = Model(blob)
                imgs = [bytes(rng.randrange(256) for _ in range(int(np.prod(g.input_shape))))
                        for _ in range(12)]
                x = [np.frombuffer(v, np.uint8).reshape(g.input_shape) for v in imgs]
                n, bad_cls, bad_scores, first = U.compare_on_board(b, model, x)
                assert n == 12 and bad_cls == 0 and bad_scores == 0, (name, seed, first)
    finally:
        if own:
            boards.stop(name)
