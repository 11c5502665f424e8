"""Streaming speed on emulated boards: frames per second vs what the link allows.

    python -m benchmarks.stream [--boards qemu-mps2-an386,sim] [--frames 200]

For each board: flash an MNIST-shaped binary model, measure in the same run
  - the link's byte rate (ECHO round trips of frames as large as one INFER exchange),
  - the board's compute time per frame (INFER round trip minus the link time of its bytes),
  - the pipelined stream (`edgeq.stream.run_stream`, bit-packed 98-byte frames),
and report whether the stream is link-bound (>= 80 % of the link's byte rate) or compute-bound.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _model(seed=0):
    from edgeq.graph import Conv, Graph, MaxPool

    rng = np.random.default_rng(seed)
    sg = lambda *s: np.where(rng.random(s) < .5, -1, 1).astype(np.int8)  # noqa: E731
    thr = lambda n: dict(thr=rng.integers(-2, 3, n).astype(np.int32), flip=np.zeros(n, bool))  # noqa: E731
    return Graph((1, 28, 28), "THRESH", 128, [
        Conv(sg(16, 3, 3, 1), "B1", "SIGN", pad=1, **thr(16), name="conv1"),
        MaxPool(2, 2, name="pool1"),
        Conv(sg(32, 3, 3, 16), "B1", "SIGN", pad=1, **thr(32), name="conv2"),
        MaxPool(2, 2, name="pool2"),
        Conv(sg(10, 7, 7, 32), "B1", "AFFINE", mul=np.ones(10, np.int32), add=np.zeros(10, np.int32),
             name="fc")], classes=[str(i) for i in range(10)])


def bench_board(board: str, frames: int) -> dict:
    from edgeq import boards, pack, protocol as P, stream
    from edgeq.runtime import Model
    from edgeq.targets import open_target

    tmp = Path(tempfile.mkdtemp())
    blob = pack.write_blob(_model())
    path = tmp / "bench.eqb"
    path.write_bytes(blob)
    boards.flash(board, str(path), log=lambda *_: None)
    try:
        m = Model(blob)
        g = m.graph
        target = open_target(board, None, str(path))
        wire = m.wire_input(np.zeros(g.input_shape, np.uint8))
        seq = target.board.send(P.CMD["INFER"], wire)
        reply = target.board.receive(P.CMD["INFER"], seq)
        per_frame = (len(P.encode_frame(P.CMD["INFER"], seq, wire))
                     + len(P.encode_frame(reply.cmd, reply.seq, reply.payload)))
        # link: ECHO frames of the same total size, one at a time
        payload = bytes(range(256)) * 4
        payload = payload[:max(1, per_frame // 2 - 12)]
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            target.board.echo(payload)
            n += 1
        echo_s = (time.perf_counter() - t0) / n
        link_rate = 2 * len(P.encode_frame(P.CMD["ECHO"], 1, payload)) / echo_s  # bytes/s, both ways
        # compute: INFER round trip minus the link time of its bytes
        lat = []
        for _ in range(30):
            t = time.perf_counter()
            target.board.infer(wire)
            lat.append(time.perf_counter() - t)
        infer_s = float(np.median(lat))
        compute_s = max(infer_s - per_frame / link_rate, 0.0)
        # the stream, pipelined
        src = stream.SyntheticSource(n_frames=frames, size=28, seed=0)
        st = stream.run_stream(target, g, src, measure_link=False)
        target.close()
    finally:
        boards.stop(board)
    link_fps = link_rate / per_frame
    compute_fps = 1 / compute_s if compute_s > 0 else float("inf")
    used = st.fps * per_frame / link_rate
    bound = "link" if link_fps <= compute_fps else "compute"
    verdict = (f"link-bound: {100 * used:.0f}% of the link's byte rate" if bound == "link"
               else f"compute-bound: {100 * st.fps / compute_fps:.0f}% of the board's compute rate")
    return dict(board=board, frame_bytes=per_frame, wire_bytes=len(wire), link_kBps=link_rate / 1000,
                link_fps=link_fps, compute_ms=compute_s * 1000, compute_fps=compute_fps, fps=st.fps,
                p50=st.pct(50), p95=st.pct(95), used=used, bound=bound, verdict=verdict,
                ok=(used >= 0.8) if bound == "link" else (st.fps >= 0.8 * compute_fps))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boards", default="qemu-mps2-an386,sim")
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args(argv)
    os.environ.setdefault("EDGEQ_STATE_DIR", tempfile.mkdtemp(prefix="edgeq-bench-"))
    from rich.console import Console
    from rich.table import Table

    rows = [bench_board(b, args.frames) for b in args.boards.split(",")]
    t = Table(title=f"edgeq stream speed ({args.frames} frames, bit-packed input; load average "
                    f"{os.getloadavg()[0]:.1f})")
    for c in ("board", "wire B", "B/frame", "link kB/s", "link fps", "compute ms", "compute fps",
              "stream fps", "p50 ms", "p95 ms", "verdict"):
        t.add_column(c, justify="left" if c in ("board", "verdict") else "right")
    for r in rows:
        t.add_row(r["board"], str(r["wire_bytes"]), str(r["frame_bytes"]), f"{r['link_kBps']:.1f}",
                  f"{r['link_fps']:.0f}", f"{r['compute_ms']:.2f}",
                  f"{r['compute_fps']:.0f}", f"{r['fps']:.1f}", f"{r['p50']:.1f}", f"{r['p95']:.1f}",
                  ("" if r["ok"] else "[red]below 80%[/] ") + r["verdict"])
    Console().print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
