"""The public API of `import edgeq` (docs/python-api.md, "The public API"): each name does what
its long form does, and the deploy names never load torch."""

import subprocess
import sys

import numpy as np
import pytest

import edgeq
from edgeq.errors import EdgeqError
from edgeq.format import pack
from edgeq.native.runtime import Model
from edgeq.reference import refnet
from edgeq.reference.testing import random_dag


@pytest.fixture(scope="module")
def blob_and_graph():
    g = random_dag(3, kind="dag")
    return pack.write_blob(g), g


def test_load_bytes_and_path_equal_model_and_reference(tmp_path, blob_and_graph):
    blob, g = blob_and_graph
    path = tmp_path / "m.eqb"
    path.write_bytes(blob)
    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (5, *g.input_shape), dtype=np.uint8)
    want_s, want_c = refnet.run(g, px)
    for m in (edgeq.load(blob), edgeq.load(str(path)), edgeq.load(path, threads=2)):
        cls, scores = m.predict(px)
        assert np.array_equal(scores, want_s) and np.array_equal(cls, want_c)
    assert isinstance(edgeq.load(blob), Model)


def test_connect_host_target_infers_and_profiles(tmp_path, blob_and_graph):
    blob, g = blob_and_graph
    path = tmp_path / "m.eqb"
    path.write_bytes(blob)
    m = edgeq.load(blob)
    px = np.random.default_rng(1).integers(0, 256, (3, *g.input_shape), dtype=np.uint8)
    with edgeq.connect("host", model=str(path)) as t:
        cls, scores = t.infer([m.wire_input(p) for p in px])
        rep = edgeq.profile(t, blob, px[0], runs=1)
    assert np.array_equal(scores, m.predict(px)[1])
    assert len(rep["layers"]) == m.n_layers  # the stored layers (a dense layer is FLATTEN + CONV)
    # one row per stored layer, in order, with its op and MACs; the times add up
    ops = [type(layer).__name__.upper() for layer in pack.read_blob(blob).layers]
    assert [lay["op"] for lay in rep["layers"]] == ops
    assert all(lay["cycles"] >= 0 for lay in rep["layers"]) and rep["layer_sum_cycles"] > 0
    assert rep["layer_sum_cycles"] == pytest.approx(sum(lay["cycles"] for lay in rep["layers"]))
    assert rep["total_cycles"] >= rep["layer_sum_cycles"]
    assert sum(lay["macs"] for lay in rep["layers"]) > 0


def test_connect_host_without_model_is_one_clear_error():
    with pytest.raises(EdgeqError, match="needs --model"):
        edgeq.connect("host")


def test_unknown_name_and_no_torch_on_the_deploy_path():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = edgeq.nope
    code = ("import sys, edgeq; edgeq.load, edgeq.connect, edgeq.flash, edgeq.profile; "
            "import edgeq.deploy.targets, edgeq.deploy.profile, edgeq.deploy.boards; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
