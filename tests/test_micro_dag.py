"""Blob 1.1 on the MicroPython runtime (edgeq/micro): random DAGs from
edgeq.reference.testing.random_dag (residual ADDs, CONCAT branches, unread branches, groups and
depthwise on every weight encoding, per-axis stride/pad, 1-D inputs, AVGPOOL incl. global, REQUANT)
give the numpy reference's scores bit for bit, under CPython and on real MicroPython (the
WebAssembly port, small graphs: it is slow), and the C runtime's (cffi) when this build's C loader
reads blob 1.1. The 1.1 loader rules (tests/blobgen.py dag_regression_blobs) give the C status.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import blobgen
from edgeq.format import pack
from edgeq.format.graph import Add, AvgPool, Concat, Conv, MaxPool, infer_shapes
from edgeq.reference import refnet
from edgeq.reference.testing import random_dag

sys.path.insert(0, "edgeq/micro")
sys.path.insert(0, "tests/mp_harness")
import edgeq_micro  # noqa: E402
import mpwasm  # noqa: E402
from test_micro import port  # noqa: E402,F401 - the wasm port fixture
from test_micro_rules import C_1_1  # noqa: E402

N_CPYTHON = 60  # graphs under CPython
N_WASM = 8  # graphs on the wasm port (each with N_WASM_INPUTS inputs)
N_WASM_INPUTS = 6


def _inputs(g, n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n,) + tuple(g.input_shape)).astype(np.uint8)


def _c_scores(blob, x):
    from edgeq.native import runtime

    return runtime.Model(blob).predict(x)[1]


def _check(g, n: int, seed: int, what: str) -> np.ndarray:
    """n random inputs through edgeq_micro (CPython) == the numpy reference (and == C when the C
    loader reads 1.1); returns the reference scores."""
    blob = pack.write_blob(g)
    x = _inputs(g, n, seed)
    want = refnet.run(g, x)[0]
    m = edgeq_micro.Model(blob)
    got = np.array([m.scores(img.tobytes()) for img in x], np.int64)
    assert np.array_equal(got, want), f"{what}: micro {got[0].tolist()} vs reference {want[0].tolist()}"
    assert len(m.layer_ms) == len(m.layers)
    if C_1_1:
        assert np.array_equal(_c_scores(blob, x), want), f"{what}: C differs from the reference"
    return want


def test_cpython_random_dags_match_reference_and_c():
    """Seeds 0..59 (tests/test_format_dag.py checks that seeds 0..39 already cover every op,
    stage, weight encoding with and without groups, skips, non-square geometry and 1-D)."""
    for seed in range(N_CPYTHON):
        _check(random_dag(seed), 4, seed, f"seed {seed}")


def test_cpython_dag_arena_plan_is_the_packers():
    """The MicroPython loader places values where the C loader does (pack.plan_values mirrors it),
    so its arena_need equals the header's arena_size."""
    for seed in range(20):
        g = random_dag(seed)
        blob = pack.write_blob(g)
        m = edgeq_micro.Model(blob)
        assert m.arena_need == pack.read_header(blob)["arena_size"], seed
        if m.dag:
            offs, sizes, peak = pack.plan_values(pack.canonical(g))
            assert (m.val_off, m.val_size, m.arena_peak) == (offs, sizes, peak), seed


def test_cpython_layer_activation_of_a_dag():
    """layer_activation(n) of a DAG gives value n (here: every layer's output, against the
    reference's layer outputs in the runtime layout)."""
    g = pack.canonical(random_dag(3, "dag"))  # the stored layers (dense heads: FLATTEN + 1x1)
    m = edgeq_micro.Model(pack.write_blob(g))
    x = _inputs(g, 1, 0)[0]
    shapes = infer_shapes(g)
    for i, out in enumerate(refnet.layer_outputs(g, x)):
        got = m.layer_activation(x.tobytes(), i + 1)
        enc = shapes[i].out_enc
        if enc == "I32":
            assert got == out.reshape(-1).tolist(), i
        elif enc == "U8":
            assert got == out.astype(np.uint8).tobytes(), i
        else:  # B1: bits per pixel, padded to 32-bit words
            h, w, c = out.shape
            cw4 = (c + 31) // 32 * 4
            want = bytearray(h * w * cw4)
            for p, px in enumerate(out.reshape(h * w, c)):
                want[p * cw4:(p + 1) * cw4] = int(sum(1 << j for j in range(c) if px[j] > 0)).to_bytes(cw4, "little")
            assert got == bytes(want), i


def _small_ops_graph():
    """Every 1.1 op in one small hand-built DAG (stages fitted on a calibration batch by the
    reference generator's builder): grouped TERN conv with non-square stride/pad, residual ADD
    of a U8 and a B1 value, grouped KBIT, CONCAT of a value with itself, AVGPOOL + REQUANT, MAXPOOL
    with a non-square window, global average pool, I8 head."""
    from edgeq.format.graph import Graph
    from edgeq.reference.testing import _DagBuilder, _weights

    rng = np.random.default_rng(7)
    g = Graph((2, 7, 9), "QUANT", 3, [])
    b = _DagBuilder(rng, g, rng.integers(0, 256, (8, 2, 7, 9)).astype(np.uint8))
    c1 = b.emit(Conv(_weights(rng, "TERN", (4, 3, 2, 1)), "TERN", "MULTI", out_bits=2, stride=1, stride_w=2,
                     pad=1, pad_w=0, groups=2, name="dw"))
    c2 = b.emit(Conv(_weights(rng, "B1", (4, 1, 1, 4)), "B1", "SIGN", src=(c1,), name="pw"))
    a = b.emit(Add(rng.integers(-5, 6, (2, 4)).astype(np.int32), out="REQUANT", out_bits=3, src=(c1, c2),
                   name="add"))
    k = b.emit(Conv(_weights(rng, "KBIT", (4, 2, 2, 2), 2), "KBIT", "MULTI", out_bits=2, pad=1, groups=2,
                    src=(a,), name="kb", wbits=2, lut=rng.integers(-5, 6, (4, 8)).astype(np.int32)))
    cat = b.emit(Concat(src=(k, k), name="cat"))
    p = b.emit(AvgPool(2, 3, 1, stride_w=2, out="REQUANT", out_bits=4, src=(cat,), name="avg"))
    mp = b.emit(MaxPool(2, 1, kw=1, src=(p,), name="max"))
    h, w = b.shape(mp)[:2]
    b.emit(AvgPool(h, w, 1, out="MULTI", out_bits=2, src=(mp,), name="gap"))
    b.emit(Conv(_weights(rng, "I8", (5, 1, 1, 8)), "I8", "AFFINE", name="head"))
    g.classes = [str(i) for i in range(5)]
    infer_shapes(g)
    return g


def test_cpython_hand_built_dag_matches_reference():
    want = _check(_small_ops_graph(), 20, 1, "every-op DAG")
    assert len({tuple(r) for r in want.tolist()}) > 1  # the inputs reach different scores


def _grouped_graph(w_enc: str, in_enc: str, c: int, groups: int, n: int, seed: int):
    """input -> one grouped CONV (3x3, stride 2x1, pad 1x0) -> I8 head, stages fitted."""
    from edgeq.format.graph import Graph
    from edgeq.reference.testing import _DagBuilder, _weights

    rng = np.random.default_rng(seed)
    g = Graph((c, 6, 7), "THRESH" if in_enc == "B1" else "QUANT", 100 if in_enc == "B1" else 3, [])
    b = _DagBuilder(rng, g, rng.integers(0, 256, (6, c, 6, 7)).astype(np.uint8))
    layer = Conv(_weights(rng, w_enc, (n, 3, 3, c // groups), 3), w_enc, "MULTI", out_bits=2, stride=2,
                 stride_w=1, pad=1, pad_w=0, groups=groups, name="g")
    if w_enc == "KBIT":
        layer.wbits = 3
        layer.lut = rng.integers(-9, 10, (8, 2 if in_enc == "B1" else 8)).astype(np.int32)
    x = b.emit(layer)
    h, w, cc = b.shape(x)
    b.emit(Conv(_weights(rng, "I8", (4, h, w, cc)), "I8", "AFFINE", name="head"))
    g.classes = [str(i) for i in range(4)]
    return g


@pytest.mark.parametrize("w_enc", ["B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32"])
def test_cpython_grouped_conv_both_paths(w_enc):
    """Depthwise (K = 9: the value kernel over all groups) and groups of 16 channels (K = 144:
    B1/TERN/TERN_SPARSE one group at a time on the bit kernels) on B1 and U8 inputs."""
    for k, (in_enc, c, groups, n) in enumerate([("B1", 6, 6, 12), ("U8", 5, 5, 5), ("B1", 32, 2, 6),
                                                ("U8", 48, 3, 9)]):
        _check(_grouped_graph(w_enc, in_enc, c, groups, n, k), 6, k, f"{w_enc} {in_enc} C={c} groups={groups}")


@pytest.mark.parametrize("name,blob,status", blobgen.dag_regression_blobs(),
                         ids=[c[0] for c in blobgen.dag_regression_blobs()])
def test_cpython_dag_loader_rules(name, blob, status):
    with pytest.raises(edgeq_micro.BlobError) as e:
        edgeq_micro.Model(blob)
    assert e.value.status == status, f"{name}: {e.value}"
    assert "\n" not in str(e.value)


def test_cpython_dag_base_blob_loads():
    m = edgeq_micro.Model(blobgen.dag_base_blob())
    assert m.dag


# --------------------------------------------------------------------------------------------
# real MicroPython (WebAssembly port)


def test_micropython_random_dags_match_reference(port):  # noqa: F811 - the fixture
    jobs, files, refs = [], {}, []
    graphs = [(f"dag{s}", random_dag(1000 + s, "dag", max_blocks=3)) for s in range(N_WASM - 2)]
    graphs += [("seq11", random_dag(77, "seq11", max_blocks=3)), ("ops", _small_ops_graph())]
    for k, (name, g) in enumerate(graphs):
        blob = pack.write_blob(g)
        x = _inputs(g, N_WASM_INPUTS, k)
        sc, cls = refnet.run(g, x)
        if C_1_1:
            assert np.array_equal(_c_scores(blob, x), sc), f"{name}: C differs from the reference"
        refs.append((name, cls, sc))
        files[f"{name}.eqb"] = blob
        files[f"{name}.bin"] = x.tobytes()
        jobs.append({"blob": f"{name}.eqb", "inputs": f"{name}.bin", "n": len(x)})
    bad = blobgen.dag_regression_blobs()
    files.update({f"{name}.eqb": b for name, b, _ in bad})
    jobs += [{"blob": f"{name}.eqb"} for name, _, _ in bad]
    results = mpwasm.run_jobs(jobs, files)
    for (name, cls, sc), res in zip(refs, results):
        assert res["ok"], f"{name}: {res}"
        got = np.asarray(res["scores"], np.int64)
        assert np.array_equal(got, sc), f"{name}: micro {got[0].tolist()} vs reference {sc[0].tolist()}"
        assert res["classes"] == cls.tolist(), name
    for (name, _, status), res in zip(bad, results[len(refs):]):
        assert not res["ok"] and res["error"] == "BlobError" and res["status"] == status, f"{name}: {res}"
