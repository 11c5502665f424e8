"""Streaming speed on emulated boards: frames per second vs what the link allows.

    python -m benchmarks.stream [--boards qemu-mps2-an386,sim] [--frames 200]

For each board: flash an MNIST-shaped binary model, measure in the same run
  - the link's byte rate (ECHO frames carrying one INFER payload, pipelined 2 deep as the stream),
  - the board's compute time per frame (INFER round trip minus an ECHO round trip),
  - the host's own work per frame (synthesise, preprocess, bit-pack, frame + COBS, parse reply),
  - the pipelined stream (`edgeq.deploy.stream.run_stream`, bit-packed 98-byte frames),
and report which limit the stream, and how close (bar: >= 80 % of it). Boards that hold their
UART during an inference (QEMU boards, for exact tick counts) cannot overlap the next frame's
transfer with compute, so their limit is link time + compute time per frame; the `sim` board
shares the host's CPU, so its limit is the sum of all three per-frame times.
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
    from edgeq.format.graph import Conv, Graph, MaxPool

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
    from edgeq.deploy import boards, protocol as P, stream
    from edgeq.format import pack
    from edgeq.native.runtime import Model
    from edgeq.deploy.targets import open_target

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
        dev = target.board
        # link: ECHO frames carrying the INFER payload, pipelined like the stream
        # (BoardTarget.link_rate), measured in rounds alternating with the stream itself, since
        # QEMU's UART rate drifts
        # board compute: INFER round trip minus an ECHO round trip of the same payload
        rtt = {}
        for cmd in ("ECHO", "INFER"):
            lat = []
            for _ in range(30):
                t = time.perf_counter()
                dev.receive(P.CMD[cmd], dev.send(P.CMD[cmd], wire))
                lat.append(time.perf_counter() - t)
            rtt[cmd] = float(np.median(lat))
        compute_s = max(rtt["INFER"] - rtt["ECHO"], 1e-6)
        # host: producing + preparing + packing one frame (the pipeline's own work)
        src = stream.SyntheticSource(n_frames=200, size=28, seed=0)
        t = time.perf_counter()
        for frame, _ in src.frames():
            stream.wire_of(stream.prepare(frame, g), g)
        host_s = (time.perf_counter() - t) / 200
        enc_reply = P.encode_frame(reply.cmd, reply.seq, reply.payload)
        t = time.perf_counter()
        for k in range(500):  # the host's protocol work per frame: frame + COBS out, decode + parse in
            P.encode_frame(P.CMD["INFER"], k, wire)
            P.parse_infer(P.decode_frame(enc_reply.strip(b"\0")).payload)
        host_s += (time.perf_counter() - t) / 500
        # the stream, pipelined, in rounds alternating with the link measurement
        rates, fps, lat = [], [], []
        for r in range(3):
            rates.append(target.link_rate(wire, 0.5))
            src = stream.SyntheticSource(n_frames=max(frames // 3, 10), size=28, seed=r)
            st = stream.run_stream(target, g, src, measure_link=False)
            fps.append(st.fps)
            lat += st.latencies
        st.latencies = lat
        link_rate = float(np.median(rates))
        stream_fps = float(np.median(fps))
        target.close()
    finally:
        boards.stop(board)
    limits = {"link": link_rate / per_frame, "board compute": 1 / compute_s, "host (prepare + protocol)": 1 / host_s}
    if boards.get(board).ticks.get("hold_uart"):
        # the firmware holds its UART while it computes (exact ticks under icount): the next
        # frame's bytes cannot arrive during an inference, so link and compute add up
        limits["link + compute (serial)"] = 1 / (per_frame / link_rate + compute_s)
    if boards.get(board).kind == "sim":
        # the sim board is a process on this same 2-core machine: host, pty and board work share
        # the CPU, so their per-frame times add up
        limits["one machine (serial)"] = 1 / (per_frame / link_rate + compute_s + host_s)
    bound = min(limits, key=limits.get)
    eff = stream_fps / limits[bound]
    used = stream_fps * per_frame / link_rate
    verdict = (f"{bound}-bound: {100 * eff:.0f}% of the {bound} limit; link {100 * used:.0f}% used")
    return dict(board=board, frame_bytes=per_frame, wire_bytes=len(wire), link_kBps=link_rate / 1000,
                link_fps=limits["link"], compute_ms=compute_s * 1000, compute_fps=limits["board compute"],
                host_fps=limits["host (prepare + protocol)"], fps=stream_fps, p50=st.pct(50), p95=st.pct(95), used=used,
                bound=bound, verdict=verdict, ok=eff >= 0.8)


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
              "host fps", "stream fps", "p50 ms", "p95 ms", "verdict"):
        t.add_column(c, justify="left" if c in ("board", "verdict") else "right")
    for r in rows:
        t.add_row(r["board"], str(r["wire_bytes"]), str(r["frame_bytes"]), f"{r['link_kBps']:.1f}",
                  f"{r['link_fps']:.0f}", f"{r['compute_ms']:.2f}",
                  f"{r['compute_fps']:.0f}", f"{r['host_fps']:.0f}", f"{r['fps']:.1f}",
                  f"{r['p50']:.1f}", f"{r['p95']:.1f}",
                  ("" if r["ok"] else "[red]below 80%[/] ") + r["verdict"])
    Console().print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
