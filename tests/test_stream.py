"""Streaming and profiling against the real emulated board (qemu-mps2-an386), as users run them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cliutil import edgeq

from edgeq.format import pack
from edgeq.deploy import stream
from edgeq.native.runtime import Model

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
BOARD = "qemu-mps2-an386"

if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
    pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed (scripts/install.sh installs them)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def flashed(tmp_path_factory, private_board_state):
    """A 28x28 model flashed to the QEMU board, in a private board-state folder."""
    from boardutil import small_graph

    d = tmp_path_factory.mktemp("stream")
    model = d / "m.eqb"
    model.write_bytes(pack.write_blob(small_graph(seed=3)))
    edgeq("flash", model, "--board", BOARD)
    return d, model


def _host_predictions(model, video):
    from edgeq.format.preprocess import video_frames

    m = Model(model.read_bytes())
    return [int(m.predict(stream.prepare(frame, m.summary))[0][0]) for frame in video_frames(video)]


def test_stream_video_through_qemu_equals_host(flashed):
    d, model = flashed
    video = d / "clip.mp4"
    labels = stream.write_synthetic_video(str(video), n_frames=40, size=64, seed=1)
    r = edgeq("stream", "--board", BOARD, "--model", model, "--source", video, "--json")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["frame"] for x in lines] == list(range(len(labels)))
    assert all(set(x) == {"frame", "class", "name", "score", "label", "latency_ms", "chip_ms"} for x in lines)
    assert [x["class"] for x in lines] == _host_predictions(model, video)
    assert [x["label"] for x in lines] == labels and all(x["name"] == str(x["class"]) for x in lines)
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    assert summary["frames"] == 40 and summary["dropped"] == 0
    # chip time from the INFER replies' tick counts (QEMU -icount: virtual time per instruction;
    # the same model every frame, so within 1 % of each other) next to the measured rate
    chip = np.array([x["chip_ms"] for x in lines])
    assert chip.min() > 0 and chip.max() < 1.01 * chip.min(), chip
    assert abs(summary["chip_fps"] - 1000 / float(np.median(chip))) < 0.05, summary
    assert summary["fps"] > 0


class _FastLive(stream.Source):
    """A live source far faster than the board: frames must be dropped, never queued unboundedly."""

    live = True

    def __init__(self, n):
        self.n = n

    def frames(self):
        rng = np.random.default_rng(0)
        for _ in range(self.n):
            yield rng.integers(0, 256, (28, 28)).astype(np.uint8), None


def test_dropped_frame_accounting(flashed):
    from edgeq.deploy.targets import open_target

    _, model = flashed
    g = pack.read_blob(model.read_bytes())
    target = open_target(BOARD, None, str(model))
    try:
        live = stream.run_stream(target, g, _FastLive(300), measure_link=False)
        assert live.dropped > 0, "a live source faster than the board must drop frames"
        assert live.frames + live.dropped == 300
        src = _FastLive(30)
        src.live = False  # a file-like source at the board's pace: nothing dropped
        paced = stream.run_stream(target, g, src, measure_link=False)
        assert paced.dropped == 0 and paced.frames == 30
    finally:
        target.close()


def test_profile_is_deterministic_under_icount(flashed):
    d, model = flashed
    a, b = d / "a.json", d / "b.json"
    edgeq("profile", "--board", BOARD, "--model", model, "--runs", "3", "--json", a, "--plot", d / "p.png")
    edgeq("profile", "--board", BOARD, "--model", model, "--runs", "3", "--json", b, "--compare", a)
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert [x["cycles"] for x in ra["layers"]] == [x["cycles"] for x in rb["layers"]]
    assert ra["total_cycles"] == rb["total_cycles"]
    # layers sum to the whole inference minus the documented overhead (input unpacking, argmax,
    # timer reads): at most 10 % here
    assert 0 <= ra["overhead_cycles"] <= 0.10 * ra["total_cycles"], ra
    assert (d / "p.png").stat().st_size > 1000


def test_cli_errors(flashed, tmp_path):
    d, model = flashed
    r = edgeq("stream", "--port", "/dev/ttyEDGEQ-NONE", "--model", model, "--limit", "3", check=False)
    assert r.returncode == 2 and r.stderr.startswith("edgeq: ") and "/dev/ttyEDGEQ-NONE" in r.stderr
    r = edgeq("stream", "--board", BOARD, "--model", model, "--source", tmp_path / "nope.mp4", check=False)
    assert r.returncode == 2 and "does not exist" in r.stderr
    from edgeq.reference.testing import random_graph

    other = tmp_path / "other.eqb"
    other.write_bytes(pack.write_blob(random_graph(1, "small")))
    r = edgeq("stream", "--board", BOARD, "--model", other, "--limit", "3", check=False)
    assert r.returncode == 2 and "runs another model" in r.stderr and "edgeq flash" in r.stderr
    assert "Traceback" not in r.stderr


def test_board_that_stops_answering_mid_stream(flashed):
    from edgeq.deploy import boards

    d, model = flashed
    video = d / "long.mp4"
    stream.write_synthetic_video(str(video), n_frames=400, size=32, seed=2)
    p = subprocess.Popen([sys.executable, "-m", "edgeq", "stream", "--board", BOARD, "--model", str(model),
                          "--source", str(video), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        for _ in range(5):  # a few frames come back, then the emulator dies
            assert p.stdout.readline()
        (run,) = boards.running(BOARD)
        os.kill(run.pid, signal.SIGKILL)
        t0 = time.monotonic()
        out, err = p.communicate(timeout=60)
        assert p.returncode == 2, err
        assert time.monotonic() - t0 < 30
        assert err.startswith("edgeq: ") and "Traceback" not in err, err
    finally:
        if p.poll() is None:
            p.kill()
        edgeq("flash", model, "--board", BOARD)  # leave a running board for other tests
