"""Blob 1.1 on the emulated boards (issue 14): random DAGs (residual ADD, CONCAT, grouped and
depthwise conv on every weight encoding, per-axis stride/pad, 1-D, AVGPOOL, REQUANT) uploaded
over serial to the M4 (DSP kernels), the M3 (no DSP, soft float, 4 KB of stack) and the `sim`
board give the numpy reference's classes and scores bit for bit."""

from __future__ import annotations

import shutil

import blobgen
import numpy as np
import pytest

from edgeq.deploy import boards
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


@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-lm3s6965", "sim"])
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
