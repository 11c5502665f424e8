"""Targets behind stream/eval/profile: host, and the MicroPython target's host side driven through
a transport that executes the board commands with the real edgeq_micro code (the same command
strings run on wasm MicroPython in tests/test_micro.py)."""

import contextlib
import io
import sys

import numpy as np
import pytest

from edgeq.format import pack
from edgeq.deploy import stream
from edgeq.deploy.evaluate import evaluate
from edgeq.errors import EdgeqError
from edgeq.deploy.profile import profile_target
from edgeq.deploy.targets import HostTarget, MicroTarget, Profile, Target, TargetInfo, open_target
from edgeq.native.runtime import Model
from edgeq.reference.testing import random_graph
from edgeq.spec import MICRO_SPEC_PATH


class ExecTransport:
    """Stands in for mpremote's SerialTransport: exec() runs the command, returns its stdout."""

    def __init__(self, blob: bytes, tmp_path):
        sys.path.insert(0, str(MICRO_SPEC_PATH.parent))
        self.ns = {}
        (tmp_path / "model.eqb").write_bytes(blob)
        self.cwd = tmp_path

    def exec(self, cmd: str) -> bytes:
        import os

        out = io.StringIO()
        old = os.getcwd()
        os.chdir(self.cwd)
        try:
            with contextlib.redirect_stdout(out):
                exec(cmd, self.ns)
        finally:
            os.chdir(old)
        return out.getvalue().encode()

    def fs_writefile(self, name: str, data: bytes) -> None:
        (self.cwd / name).write_bytes(data)


@pytest.mark.parametrize("seed", [0, 6, 9])
def test_micro_target_equals_host(tmp_path, seed, monkeypatch):
    import gc

    monkeypatch.setattr(gc, "mem_free", lambda: 0, raising=False)  # MicroPython-only API
    g = random_graph(seed, "small")
    blob = pack.write_blob(g)
    x = np.random.default_rng(seed).integers(0, 256, (25,) + g.input_shape).astype(np.uint8)
    y = np.zeros(25, np.int64)
    res = evaluate(blob, x, y, MicroTarget(ExecTransport(blob, tmp_path)))
    assert res["mismatches"] == 0 and res["n"] == 25


def test_host_target_streams_in_order(tmp_path):
    g = random_graph(1, "small")
    blob = pack.write_blob(g)
    path = tmp_path / "m.eqb"
    path.write_bytes(blob)
    t = open_target("host", None, str(path))
    assert isinstance(t, HostTarget)
    seen = []
    st = stream.run_stream(t, g, stream.SyntheticSource(n_frames=20, size=32), measure_link=False,
                           on_frame=lambda i, f, c, s, lat, lab: seen.append((i, c)))
    assert [i for i, _ in seen] == list(range(20)) and st.frames == 20 and st.dropped == 0
    m = Model(blob)
    assert st.predictions == [c for _, c in seen]
    assert all(0 <= c < m.n_classes for c in st.predictions)


def test_open_target_errors():
    with pytest.raises(EdgeqError, match="needs --model"):
        open_target("host", None, None)
    with pytest.raises(EdgeqError, match="needs --port"):
        open_target(None, None, "m.eqb", runtime="micropython")
    with pytest.raises(EdgeqError, match="cannot reach a MicroPython REPL"):
        MicroTarget.open("/dev/ttyEDGEQ-NONE")


def _micro(blob, tmp_path, monkeypatch):
    import gc

    monkeypatch.setattr(gc, "mem_free", lambda: 0, raising=False)  # MicroPython-only API
    return MicroTarget(ExecTransport(blob, tmp_path))


@pytest.mark.parametrize("kind", ["host", "micropython"])
def test_every_target_has_the_one_interface(tmp_path, monkeypatch, kind):
    """info / load / infer on a batch / profile / byte counters, the same on each target; the
    answers equal the host Model's bit for bit."""
    g1, g2 = random_graph(3, "small"), random_graph(4, "small")
    b1, b2 = pack.write_blob(g1), pack.write_blob(g2)
    t = HostTarget(Model(b1)) if kind == "host" else _micro(b1, tmp_path, monkeypatch)
    assert isinstance(t, Target)
    for blob, g in ((b1, g1), (b2, g2)):
        t.load(blob)
        m = Model(blob)
        info = t.info()
        assert isinstance(info, TargetInfo) and info.name == t.name
        assert (info.n_classes, info.input_wire) == (m.n_classes, m.input_wire_bytes)
        x = np.random.default_rng(5).integers(0, 256, (7,) + g.input_shape).astype(np.uint8)
        out0 = t.bytes_out
        cls, scores = t.infer([m.wire_input(img) for img in x])
        want_cls, want_scores = m.predict(x)
        assert cls.dtype == np.int64 and scores.dtype == np.int32
        assert np.array_equal(cls, want_cls) and np.array_equal(scores, want_scores)
        assert (t.bytes_out > out0) == (kind != "host")
        prof = t.profile(m.wire_input(x[0]))
        assert isinstance(prof, Profile) and len(prof.ticks) == m.n_layers and prof.tick_hz > 0
        assert prof.total >= 0 and prof.clock
    empty_cls, empty_scores = t.infer([])
    assert empty_cls.shape == (0,) and empty_scores.shape[0] == 0


def test_profile_and_micro_target_keep_no_state_outside_the_target(tmp_path, monkeypatch):
    """profile_target asks every target the same way (no branching on its name), and the
    MicroPython target stores nothing on mpremote's transport."""
    g = random_graph(2, "small")
    blob = pack.write_blob(g)
    img = np.random.default_rng(0).integers(0, 256, g.input_shape).astype(np.uint8)
    t = _micro(blob, tmp_path, monkeypatch)
    before = set(vars(t.t))
    rep = profile_target(t, blob, img, runs=2)
    assert set(vars(t.t)) == before
    assert rep["runs"] == 2 and rep["board"] == t.name and len(rep["layers"]) == Model(blob).n_layers
    host = HostTarget(Model(blob), name="renamed-host")
    rep = profile_target(host, blob, img, runs=2)
    assert rep["tick_hz"] == 1_000_000_000 and rep["board"] == "renamed-host"


def test_board_target_has_the_same_interface(private_board_state, tmp_path):
    """The firmware board target (the `sim` board: the real firmware over a pty) answers the same
    methods: info, load (LOAD_* to RAM), infer on a batch, profile, byte counters."""
    import boardutil as U

    from edgeq.deploy import boards
    from edgeq.deploy.targets import BoardTarget

    if boards.toolchain_missing("sim"):
        pytest.skip(f"sim: {boards.toolchain_missing('sim')}")
    b1, b2 = U.small_blob(seed=3), U.small_blob(seed=4)
    path = tmp_path / "m.eqb"
    path.write_bytes(b1)
    boards.flash("sim", path, log=lambda s: None)
    try:
        t = open_target("sim", None, str(path))
        assert isinstance(t, BoardTarget) and isinstance(t, Target)
        with t:
            for blob in (b1, b2):
                if blob is b2:
                    t.load(blob)
                m = Model(blob)
                info = t.info()
                assert (info.n_classes, info.input_wire) == (m.n_classes, m.input_wire_bytes)
                x = np.random.default_rng(1).integers(0, 256, (9,) + m.input_shape).astype(np.uint8)
                out0, in0 = t.bytes_out, t.bytes_in
                cls, scores = t.infer([m.wire_input(img) for img in x])
                want_cls, want_scores = m.predict(x)
                assert np.array_equal(cls, want_cls) and np.array_equal(scores, want_scores)
                assert t.bytes_out > out0 and t.bytes_in > in0
                prof = t.profile(m.wire_input(x[0]))
                assert len(prof.ticks) == m.n_layers and prof.tick_hz == info.tick_hz > 0
    finally:
        boards.stop("sim")
