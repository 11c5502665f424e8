"""The CLI as a user runs it (subprocess), including its error messages."""

import json

import numpy as np
import pytest
from cliutil import edgeq

from edgeq import pack
from edgeq.runtime import Model
from edgeq.testing import random_graph


@pytest.fixture(scope="module")
def blob_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "m.eqb"
    p.write_bytes(pack.write_blob(random_graph(2, "mnist")))
    return p


def test_info_json_and_table(blob_path):
    info = json.loads(edgeq("info", blob_path, "--json").stdout)
    assert info["input_shape"] == [1, 28, 28] and info["layers"]
    table = edgeq("info", blob_path).stdout
    assert "bits/w" in table and "MACs" in table


def test_run_json_matches_python_api(blob_path, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (7, 28, 28)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    out = json.loads(edgeq("run", blob_path, "--input", tmp_path / "x.npy", "--json").stdout)
    cls, scores = Model(blob_path.read_bytes()).predict(x)
    assert out["predictions"] == cls.tolist() and out["scores"] == scores.tolist()
    x4 = x[:, None]
    np.save(tmp_path / "x4.npy", x4)
    out4 = json.loads(edgeq("run", blob_path, "--input", tmp_path / "x4.npy", "--json").stdout)
    assert out4 == out


@pytest.mark.parametrize("case", ["missing", "corrupt", "truncated", "shape", "not-npy"])
def test_errors_are_one_clear_line(blob_path, tmp_path, case):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 28, 28), np.uint8))
    model = blob_path
    if case == "missing":
        model = tmp_path / "nope.eqb"
        needle = "not found"
    elif case == "corrupt":
        b = bytearray(blob_path.read_bytes())
        b[300] ^= 0x10
        model = tmp_path / "bad.eqb"
        model.write_bytes(bytes(b))
        needle = "CRC mismatch"
    elif case == "truncated":
        model = tmp_path / "short.eqb"
        model.write_bytes(blob_path.read_bytes()[:1000])
        needle = "truncated"
    elif case == "shape":
        np.save(x, np.zeros((2, 8, 8), np.uint8))
        needle = "does not match the model's input"
    else:
        x.write_text("hello")
        needle = "not a numpy"
    r = edgeq("run", model, "--input", x, check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("edgeq: ") and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
