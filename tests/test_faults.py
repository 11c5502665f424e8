"""The serial client over a faulty link (edgeq/deploy/faultlink.py) around the real `sim` and QEMU boards:
lost, truncated, duplicated, bit-flipped and garbage frames and lost delimiters must cost re-sends,
never an abort or a wrong answer; a board that dies gives one line; the firmware's own checks
(over-long payloads, protocol version, the kept last reply)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import boardutil as U
import numpy as np
import pytest

from edgeq.deploy import boards, stream
from edgeq.deploy import protocol as P
from edgeq.deploy.client import Board, _why, open_serial
from edgeq.deploy.evaluate import evaluate
from edgeq.errors import BoardError, TransportError
from edgeq.deploy.faultlink import KINDS, FaultyLink, from_env
from edgeq.native.runtime import Model
from edgeq.deploy.targets import BoardTarget, HostTarget


@pytest.fixture(scope="module", autouse=True)
def private_state(private_board_state):
    """Boards started here live in a private state folder (tests/conftest.py)."""


def _need(name):
    why = boards.toolchain_missing(name)
    if why or (boards.get(name).kind == "qemu" and not shutil.which(boards.QEMU)):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("faults") / "m.eqb"
    p.write_bytes(U.small_blob(seed=3))
    return p


def _flash(name, model_path):
    _need(name)
    run, _ = boards.flash(name, model_path, log=lambda s: None)
    return run


@pytest.fixture(scope="module")
def sim(model_path):
    yield _flash("sim", model_path)
    boards.stop("sim")


# ---- the wrapper itself ----------------------------------------------------------------------
class _Sink:
    def __init__(self):
        self.data = bytearray()
        self.timeout = 0

    def write(self, b):
        self.data += b

    def close(self):
        pass


def test_faulty_link_injects_every_kind_and_counts_them():
    frames = [P.encode_frame(P.CMD["ECHO"], i + 1, bytes([i % 256]) * 20) for i in range(3000)]
    sink = _Sink()
    link = FaultyLink(sink, rate=0.1, seed=4)
    for f in frames:
        link.write(f)
    rep = link.report()["tx"]
    assert rep["frames"] == 3000 and 240 < rep["faulted"] < 360
    assert all(rep["faults"][k] > 20 for k in KINDS)
    got = [f for f in P.FrameReader().feed(bytes(sink.data)) if isinstance(f, P.Frame)]
    # lost, truncated, flipped and merged frames are gone, duplicates doubled, garbage dropped
    n = rep["faults"]
    assert len(got) <= 3000 - n["lost"] - n["truncated"] + n["duplicated"]
    assert len(got) >= 3000 - n["lost"] - n["truncated"] - n["bitflip"] - 2 * n["delimiter"] \
        - n["garbage"] + n["duplicated"]
    clean = FaultyLink(_Sink(), rate=0.0)
    for f in frames[:50]:
        clean.write(f)
    assert bytes(clean.ser.data) == b"".join(frames[:50])
    with pytest.raises(ValueError, match="unknown key"):
        from_env(_Sink(), "rate=0.1,colour=red")


# ---- sim: the eval and stream paths over a faulty link -----------------------------------------
def _eval_and_stream(url, blob, n, rate, seed):
    """n frames through `evaluate` (stop-and-wait) and n through `run_stream` (pipelined) over a
    faulty link; returns (eval result, stream wrong answers, stream frames, [link reports])."""
    m = Model(blob)
    x = np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)
    y = m.predict(x)[0]
    reports = []
    link = FaultyLink(open_serial(url), rate=rate, seed=seed)
    target = BoardTarget(Board(link))
    try:
        res = evaluate(blob, x, y, target)
    finally:
        target.close()
    reports.append(link.report())
    g = m.summary
    host = stream.run_stream(HostTarget(m), g, stream.SyntheticSource(n, size=28, seed=seed),
                             measure_link=False)
    link = FaultyLink(open_serial(url), rate=rate, seed=seed + 1)
    target = BoardTarget(Board(link))
    try:
        st = stream.run_stream(target, g, stream.SyntheticSource(n, size=28, seed=seed),
                               measure_link=False)
    finally:
        target.close()
    reports.append(link.report())
    wrong = sum(a != b for a, b in zip(st.predictions, host.predictions))
    return res, wrong, st.frames, reports


def _check(res, wrong, frames, reports, n):
    assert res["mismatches"] == 0 and res["n"] == n
    assert frames == n and wrong == 0
    for rep in reports:
        faulted = rep["tx"]["faulted"] + rep["rx"]["faulted"]
        assert faulted > 0, rep
        resent = rep["client"]["resent_timeout"] + rep["client"]["resent_damaged"]
        assert resent > 0, rep
    kinds = {k for rep in reports for d in ("tx", "rx") for k, v in rep[d]["faults"].items() if v}
    assert kinds == set(KINDS), reports


def test_sim_eval_and_stream_survive_a_faulty_link(sim, model_path):
    pytest.importorskip("cv2")
    n = 1500
    res, wrong, frames, reports = _eval_and_stream(sim.url, model_path.read_bytes(), n, 0.02, 11)
    print(reports)
    _check(res, wrong, frames, reports, n)


@pytest.mark.qemu
@pytest.mark.slow
def test_qemu_eval_and_stream_survive_a_faulty_link(model_path):
    pytest.importorskip("cv2")
    run = _flash("qemu-mps2-an386", model_path)
    try:
        n = 400
        res, wrong, frames, reports = _eval_and_stream(run.url, model_path.read_bytes(), n, 0.04, 21)
        print(reports)
        _check(res, wrong, frames, reports, n)
    finally:
        boards.stop("qemu-mps2-an386")


def test_upload_survives_a_faulty_link(sim):
    other = U.small_blob(seed=8, c1=32)
    m2 = Model(other)
    link = FaultyLink(open_serial(sim.url), rate=0.05, seed=3)
    with Board(link) as b:
        for _ in range(3):
            assert b.load(other, chunk=512).crc32 == P.crc32(other)
        _, bad_cls, bad_scores, first = U.compare_on_board(
            b, m2, np.random.default_rng(1).integers(0, 256, (50, 28, 28)).astype(np.uint8))
        assert bad_cls == bad_scores == 0, first
        assert b.reset().source == "flash"
    assert link.report()["tx"]["faulted"] > 0


# ---- firmware checks -------------------------------------------------------------------------
def test_firmware_refuses_over_long_payloads_and_other_protocol_versions(sim, model_path):
    with Board(sim.url) as b:
        mp = b.max_payload
        seq = 4242
        for extra in (1, 9):  # fits the COBS slack of the receive buffer: once processed
            b._write(P.encode_frame(P.CMD["INFER"], seq, bytes(mp + extra)))
            f = b._read_frame(time.monotonic() + 3)
            assert isinstance(f, P.Frame) and f.seq == seq and f.cmd == P.CMD["INFER"] | P.REPLY_BIT
            status, detail = P.ERROR.unpack_from(f.payload)
            assert status == P.STATUS["ERR_FRAME"] and detail == mp
            seq += 1
        with pytest.raises(TransportError, match="more than the board accepts"):
            b.send(P.CMD["ECHO"], bytes(mp + 1))
        seq = b.send(P.CMD["INFO"], version=P.PROTOCOL_VERSION + 1)
        r = b.receive(P.CMD["INFO"], seq)
        assert r.status == P.STATUS["ERR_PROTOCOL"]
        with pytest.raises(BoardError, match=r"protocol v1, this host v1") as e:
            b.check(r, "INFO")
        assert "blob version" not in str(e.value)
        assert b.info().model.source == "flash"


def test_firmware_answers_a_repeated_request_from_its_kept_reply(sim, model_path):
    m = Model(model_path.read_bytes())
    wire = m.wire_input(np.full((28, 28), 200, np.uint8))
    with Board(sim.url) as b:
        frame = P.encode_frame(P.CMD["INFER"], 777, wire)
        b._write(frame + frame)
        f1 = b._read_frame(time.monotonic() + 3)
        f2 = b._read_frame(time.monotonic() + 3)
        assert f1 == f2 and f1.seq == 777
        # ticks are wall-clock on sim: equal replies mean the second one was not run again
        assert P.parse_infer(f1.payload)[2] == P.parse_infer(f2.payload)[2]
        cls, scores = m.predict_wire(wire)
        assert P.parse_infer(f1.payload)[0] == cls


# ---- a board that dies -------------------------------------------------------------------------
class _KillAfter:
    """A port that kills the board process after `n` writes (mid-upload)."""

    def __init__(self, ser, pid, n):
        self.ser, self.pid, self.n = ser, pid, n
        self.port = "sim"

    def __getattr__(self, k):
        return getattr(self.ser, k)

    def __setattr__(self, k, v):
        if k in ("ser", "pid", "n", "port"):
            object.__setattr__(self, k, v)
        else:
            setattr(self.ser, k, v)

    def write(self, data):
        self.n -= 1
        if self.n == 0:
            os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.2)
        return self.ser.write(data)


def test_board_killed_mid_upload_is_one_transport_error(model_path):
    run = _flash("sim", model_path)
    other = U.small_blob(seed=8, c1=32)
    b = Board(_KillAfter(open_serial(run.url), run.pid, 6))
    with pytest.raises(TransportError) as e:
        b.load(other, chunk=256)
    msg = str(e.value)
    assert "\n" not in msg and "lost the connection" in msg and "read failed: read failed" not in msg
    b.close()
    boards.stop("sim")


def test_board_killed_mid_stream_is_one_line(model_path):
    pytest.importorskip("cv2")
    run = _flash("sim", model_path)
    p = subprocess.Popen([sys.executable, "-m", "edgeq", "stream", "--board", "sim", "--model",
                          str(model_path), "--limit", "100000", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(20):
            assert p.stdout.readline()
        os.kill(run.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 2, err
        assert err.startswith("edgeq: ") and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and "read failed: read failed" not in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        boards.stop("sim")


def test_serial_reasons_are_not_repeated():
    import serial
    import termios

    assert _why(serial.SerialException("read failed: read failed: socket disconnected")) == \
        "socket disconnected"
    assert _why(termios.error(5, "Input/output error")) == "Input/output error"
    assert _why(serial.SerialException("read failed: [Errno 104] Connection reset by peer")) == \
        "Connection reset by peer"
    assert _why(OSError(5, "Input/output error")) == "Input/output error"
