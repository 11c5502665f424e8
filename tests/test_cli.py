"""The CLI as a user runs it (subprocess), including its error messages."""

import json

import numpy as np
import pytest
from cliutil import edgeq

from edgeq.format import pack
from edgeq.native.runtime import Model
from edgeq.reference.testing import random_graph


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
    # the size line: weights' bits/weight, the stages counted separately, the whole blob per weight
    stages = sum(r.get("param_bytes", 0) for r in info["layers"])
    assert stages > 0
    line = " ".join(table.split())
    assert f"weights {info['bits_per_weight']} bits/weight ({info['weights']:,} in" in line
    assert f"stages {stages:,} bytes; whole blob {info['total_size']:,} bytes = " \
        f"{8 * info['total_size'] / info['weights']:.3f} bits/weight" in line


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


# ---- mistakes a user makes: one line naming the problem and the fix, never a traceback --------
def _npy_claiming(path, n):
    hdr = np.lib.format.header_data_from_array_1_0(np.zeros((1, 28, 28), np.uint8))
    hdr["shape"] = (n, 28, 28)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, hdr)
        f.write(bytes(2 * 784))
    return path


def _setup(case, d, model):
    """(argv, text expected in the one stderr line, exit status)."""
    rng = np.random.default_rng(0)
    np.savez(d / "ok.npz", x=rng.integers(0, 256, (6, 28, 28)).astype(np.uint8), y=np.arange(6) % 3)
    if case == "run-empty-npy":
        np.save(d / "e.npy", np.zeros((0, 28, 28), np.uint8))
        return ["run", model, "--input", d / "e.npy"], "holds no images (shape (0, 28, 28)): nothing was run", 1
    if case == "run-zero-byte-npy":
        (d / "e.npy").write_bytes(b"")
        return ["run", model, "--input", d / "e.npy"], "the file is empty (0 bytes)", 2
    if case == "run-npy-claims-1e12-images":
        return ["run", model, "--input", _npy_claiming(d / "h.npy", 10**12)], "truncated or corrupt", 2
    if case == "run-input-is-empty-folder":  # a folder of images is an input; one without any is not
        (d / "empty").mkdir()
        return ["run", model, "--input", d / "empty"], "no images", 2
    if case == "eval-npz-without-images":
        np.savez(d / "z.npz", x=np.zeros((0, 28, 28), np.uint8), y=np.zeros(0, np.int64))
        return ["eval", model, "--data", f"npz:{d / 'z.npz'}"], "holds no images", 2
    if case == "eval-npz-not-a-zip":
        (d / "t.npz").write_text("hello")
        return ["eval", model, "--data", f"npz:{d / 't.npz'}"], "not an .npz archive", 2
    if case == "eval-limit-0":
        return ["eval", model, "--data", f"npz:{d / 'ok.npz'}", "--split", "all", "--limit", "0"], \
            "--limit 0: nothing was run", 1
    if case == "eval-limit-negative":
        return ["eval", model, "--data", f"npz:{d / 'ok.npz'}", "--limit", "-2"], "--limit must be >= 0", 2
    if case == "flash-missing-model":
        return ["flash", d / "nope.eqb", "--board", "sim"], "not found; train one", 2
    if case == "flash-model-is-folder":
        return ["flash", d, "--board", "sim"], "is a folder; give the model blob", 2
    if case == "profile-runs-0":
        return ["profile", "--board", "host", "--model", model, "--runs", "0"], "--runs must be at least 1", 2
    if case == "profile-compare-not-json":
        (d / "old.json").write_text("not json {")
        return ["profile", "--board", "host", "--model", model, "--compare", d / "old.json"], \
            "not a JSON profile report", 2
    if case == "profile-compare-binary":
        return ["profile", "--board", "host", "--model", model, "--compare", d / "ok.npz"], \
            "not a JSON profile report", 2
    if case == "profile-compare-wrong-json":
        (d / "old.json").write_text('{"layers": 3}')
        return ["profile", "--board", "host", "--model", model, "--compare", d / "old.json"], \
            "without a 'layers' list", 2
    if case == "profile-plot-missing-folder":
        return ["profile", "--board", "host", "--model", model, "--plot", d / "no" / "p.png"], \
            "does not exist; create it first", 2
    if case == "stream-limit-0":
        return ["stream", "--board", "host", "--model", model, "--limit", "0"], "nothing was run", 1
    if case == "stream-save-missing-folder":
        return ["stream", "--board", "host", "--model", model, "--save", d / "no" / "o.mp4"], \
            "does not exist; create it first", 2
    if case == "train-out-under-a-file":
        (d / "afile").write_text("x")
        return ["train", "--out", d / "afile" / "m.eqb"], "is a file, not a folder", 2
    if case == "train-out-is-folder":
        return ["train", "--out", d], "is a folder; give a file name", 2
    if case == "train-lr-negative":
        return ["train", "--out", d / "m.eqb", "--lr", "-1"], "--lr must be > 0", 2
    if case == "train-device-bogus":
        return ["train", "--out", d / "m.eqb", "--device", "bogus"], "not a torch device", 2
    if case == "train-width-0":
        return ["train", "--out", d / "m.eqb", "--width", "0"], "--width must be > 0", 2
    if case == "eval-micropython-without-port":
        return ["eval", model, "--data", f"npz:{d / 'ok.npz'}", "--runtime", "micropython"], "needs --port", 2
    if case == "port-missing-device":
        return ["eval", model, "--data", f"npz:{d / 'ok.npz'}", "--port", d / "ttyNOPE"], "no such device", 2
    if case == "port-not-a-tty":
        return ["eval", model, "--data", f"npz:{d / 'ok.npz'}", "--port", d / "ok.npz"], "not a serial device", 2
    if case == "port-bad-url":
        return ["eval", model, "--data", f"npz:{d / 'ok.npz'}", "--port", "bogus://x"], "check --port", 2
    if case == "boards-stop-unknown":
        return ["boards", "--stop", "nosuch"], "unknown board 'nosuch'", 2
    raise AssertionError(case)


CASES = ["run-empty-npy", "run-zero-byte-npy", "run-npy-claims-1e12-images", "run-input-is-empty-folder",
         "eval-npz-without-images", "eval-npz-not-a-zip", "eval-limit-0", "eval-limit-negative",
         "flash-missing-model", "flash-model-is-folder", "profile-runs-0", "profile-compare-not-json",
         "profile-compare-binary", "profile-compare-wrong-json", "profile-plot-missing-folder",
         "stream-limit-0", "stream-save-missing-folder", "train-out-under-a-file",
         "train-out-is-folder", "train-lr-negative", "train-device-bogus", "train-width-0",
         "eval-micropython-without-port", "port-missing-device", "port-not-a-tty", "port-bad-url",
         "boards-stop-unknown"]


@pytest.mark.parametrize("case", CASES)
def test_user_mistakes_are_one_line(blob_path, tmp_path, case, monkeypatch):
    monkeypatch.setenv("EDGEQ_STATE_DIR", str(tmp_path / "state"))
    argv, needle, status = _setup(case, tmp_path, blob_path)
    r = edgeq(*argv, check=False)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == status, r.stderr
    assert len(lines) == 1 and lines[0].startswith("edgeq: ") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not r.stdout.strip()


@pytest.mark.parametrize("labels", ['{"0": 1}', "not json", '[1, "two"]'])
def test_stream_bad_labels_file_is_one_line(blob_path, tmp_path, labels):
    pytest.importorskip("cv2")
    from edgeq.deploy import stream

    video = tmp_path / "v.mp4"
    stream.write_synthetic_video(str(video), n_frames=3, size=32)
    (tmp_path / "v.labels.json").write_text(labels)
    r = edgeq("stream", "--board", "host", "--model", blob_path, "--source", video, "--json", check=False)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "v.labels.json" in lines[0], r.stderr
    assert "JSON list of class indices" in lines[0]
