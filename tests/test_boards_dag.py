"""Blob 1.1 on the emulated boards (issue 14): random DAGs (residual ADD, CONCAT, grouped and
depthwise conv on every weight encoding, per-axis stride/pad, 1-D, AVGPOOL, REQUANT) uploaded
over serial to every emulated board -- the M4s (qemu-mps2-an386, qemu-netduinoplus2: DSP
kernels), the M55 (qemu-mps3-an547), the M3 (qemu-lm3s6965: no DSP, soft float, 4 KB of stack),
the `sim` board -- and to MicroPython (the WebAssembly port, driven through the same Target
interface as a MicroPython board) give the numpy reference's classes and scores bit for bit."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import blobgen
import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.deploy.micro import RUNTIME_FILES
from edgeq.deploy.targets import MicroTarget
from edgeq.deploy.client import Board
from edgeq.errors import BoardError
from edgeq.format import pack
from edgeq.native.runtime import Model
from edgeq.reference import refnet
from edgeq.reference.testing import random_dag

pytestmark = pytest.mark.qemu

MODEL_BUF, ARENA = 24576, 16384  # the M3 (qemu-lm3s6965) limits, the smallest board here
NEED = {"Add", "Concat", "AvgPool", "MaxPool", "REQUANT", "groups", "per-axis", "1-D",
        *(f"conv {e}" for e in ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32"))}


def _features(g) -> set:
    f = {"1-D"} if g.input_shape[1] == 1 else set()
    for layer in g.layers:
        kind = type(layer).__name__
        f.add(f"conv {layer.w_enc}" if kind == "Conv" else kind)
        if kind == "Conv" and layer.groups > 1:
            f.add("groups")
        if getattr(layer, "stride_w", None) not in (None, getattr(layer, "stride", None)) \
                or getattr(layer, "pad_w", None) not in (None, getattr(layer, "pad", None)):
            f.add("per-axis")
        if getattr(layer, "out", "") == "REQUANT":
            f.add("REQUANT")
    return f


def pick_graphs(min_graphs: int = 4, max_graphs: int = 6) -> list:
    """A few random_dag graphs (greedy over seeds) that fit the M3 and together hold every
    feature in NEED: (seed, graph, blob)."""
    cands = []
    for seed in range(80):
        g = random_dag(seed)
        blob = pack.write_blob(g)
        if len(blob) <= MODEL_BUF and pack.read_header(blob)["arena_size"] <= ARENA:
            cands.append((seed, g, blob, _features(g) & NEED))
    out, have = [], set()
    while (have != NEED or len(out) < min_graphs) and len(out) < max_graphs and cands:
        best = max(cands, key=lambda c: (len(c[3] - have), len(c[3])))
        cands.remove(best)
        out.append(best[:3])
        have |= best[3]
    assert have == NEED, f"random_dag seeds 0..79 miss {NEED - have} within the M3's limits"
    return out


@pytest.fixture(scope="module", autouse=True)
def private_state(private_board_state):
    """Boards started here live in a private state folder (tests/conftest.py)."""


@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-mps3-an547", "qemu-netduinoplus2",
                                  "qemu-lm3s6965", "sim"])
def test_random_dags_on_the_board_equal_the_reference(name, tmp_path):
    why = boards.toolchain_missing(name)
    if why or (boards.get(name).kind == "qemu" and not shutil.which(boards.QEMU)):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
    seeds, graphs, blobs = zip(*pick_graphs())
    path = tmp_path / "first.eqb"
    path.write_bytes(blobs[0])
    run, _ = boards.flash(name, path, log=lambda s: None)
    try:
        with Board(run.url) as b:
            for seed, g, blob in zip(seeds, graphs, blobs):
                summary = b.load(blob)
                assert summary.source == "ram" and summary.arena_need == pack.read_header(blob)["arena_size"]
                model = Model(blob)
                x = np.random.default_rng(seed).integers(0, 256, (6,) + g.input_shape).astype(np.uint8)
                want, want_cls = refnet.run(g, x)
                for i, img in enumerate(x):
                    cls, scores = b.infer(model.wire_input(img))
                    assert cls == want_cls[i] and np.array_equal(scores, want[i]), (name, seed, i)
            if name == "sim":  # the blob 1.1 loader rules over the protocol, under ASan/UBSan
                for rname, rblob, status in blobgen.dag_regression_blobs():
                    with pytest.raises(BoardError) as e:
                        b.load(rblob)
                    assert e.value.status == status, f"{rname}: {e.value}"
    finally:
        boards.stop(name)
    if name == "sim":  # sim runs the firmware under ASan/UBSan: no report in its log
        with open(run.log, errors="replace") as fh:
            log = fh.read()
        assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log, log[-2000:]


# --------------------------------------------------------------------------------------------
# MicroPython (the official WebAssembly port) through the Target interface of a MicroPython board

MP_HARNESS = Path(__file__).resolve().parent / "mp_harness"


class WasmTransport:
    """mpremote's raw-REPL transport (exec, fs_writefile) over a long-lived MicroPython on the
    WebAssembly port (tests/mp_harness/repl.mjs), holding edgeq_micro's runtime files."""

    def __init__(self, runtime_dir: Path):
        import mpwasm

        port = mpwasm.ensure_port()
        env = dict(os.environ, EDGEQ_MPWASM=str(port))
        self.p = subprocess.Popen(["node", str(MP_HARNESS / "repl.mjs"), "--mount", str(runtime_dir)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def _ask(self, req: dict) -> dict:
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"MicroPython exited (rc {self.p.poll()})")
        return json.loads(line)

    def exec(self, cmd: str) -> bytes:
        r = self._ask({"exec": cmd})
        if not r["ok"]:
            raise RuntimeError(r["error"])
        return r["out"].encode()

    def fs_writefile(self, name: str, data: bytes) -> None:
        self._ask({"write": name, "b64": base64.b64encode(data).decode()})

    def exit_raw_repl(self) -> None:
        pass

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait(timeout=30)


def test_random_dags_on_micropython_through_the_target_interface(tmp_path):
    """MicroTarget (what `edgeq stream/eval/profile --runtime micropython` drive) over the wasm
    MicroPython: load each DAG blob (put_blob + load), infer a batch, profile one input."""
    sys.path.insert(0, str(MP_HARNESS))
    import mpwasm

    try:
        mpwasm.ensure_port()
    except mpwasm.PortMissing as e:
        pytest.skip(str(e))
    for f in RUNTIME_FILES:
        shutil.copy(mpwasm.MICRO / f, tmp_path)
    seeds, graphs, blobs = zip(*pick_graphs())
    t = WasmTransport(tmp_path)
    t.fs_writefile("model.eqb", blobs[0])
    with MicroTarget(t, name="micropython-wasm") as target:
        for seed, g, blob in zip(seeds, graphs, blobs):
            target.load(blob)
            model = Model(blob)
            info = target.info()
            assert (info.n_classes, info.input_wire) == (model.n_classes, model.input_wire_bytes)
            x = np.random.default_rng(seed).integers(0, 256, (4,) + g.input_shape).astype(np.uint8)
            want, want_cls = refnet.run(g, x)
            cls, scores = target.infer([model.wire_input(img) for img in x])
            assert np.array_equal(cls, want_cls) and np.array_equal(scores, want), seed
            prof = target.profile(model.wire_input(x[0]))
            assert len(prof.ticks) == model.n_layers, seed
        with pytest.raises(BoardError):  # a damaged blob: the runtime's error, one line
            target.load(blobs[0][:-1] + bytes([blobs[0][-1] ^ 1]))
