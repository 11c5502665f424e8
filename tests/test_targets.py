"""Targets behind stream/eval/profile: host, and the MicroPython target's host side driven through
a transport that executes the board commands with the real edgeq_micro code (the same command
strings run on wasm MicroPython in tests/test_micro.py)."""

import contextlib
import io
import sys

import numpy as np
import pytest

from edgeq import pack, stream
from edgeq.cli_eval import evaluate
from edgeq.errors import EdgeqError
from edgeq.targets import HostTarget, MicroTarget, open_target
from edgeq.runtime import Model
from edgeq.testing import random_graph
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
