"""`edgeq stream` and `edgeq profile`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..deploy.profile import instr_ns, rate_labels
from ..errors import EdgeqError


def _model_path(args) -> str:
    """--model, else the model recorded when the board was flashed."""
    if getattr(args, "model", None):
        return args.model
    if args.board and args.board != "host":
        from ..deploy import boards

        for r in boards.running(boards.get(args.board).name):
            if r.model:
                return r.model
    raise EdgeqError("which model? give --model model.eqb (the blob flashed to the board)")


def _blob(path: str) -> bytes:
    from .app import model_file

    return model_file(path).read_bytes()


def cmd_stream(args) -> int:
    from ..format import pack
    from ..deploy import stream
    from .app import check_limit, nothing_run, output_path
    from ..deploy.targets import open_target

    model = _model_path(args)
    g = pack.read_summary(_blob(model))
    if not check_limit(args.limit):
        return 1
    if args.save:
        output_path(args.save, "--save")
        stream.check_save(args.save)
    src = stream.open_source(args.source, g.classes) if args.source != "synthetic" else stream.SyntheticSource(
        n_frames=args.limit or 120, data=args.data)
    target = open_target(args.board, args.port, model, args.runtime)
    try:
        if args.json:
            stats = stream.StreamStats()
            stream.run_stream(target, g, src, limit=args.limit, realtime=args.realtime, invert=args.invert,
                              save=args.save, on_frame=stream.print_stream_json(g, stats), stats=stats)
            print(json.dumps({"summary": stats.summary()}), file=sys.stderr)
        else:
            stats = _stream_live(target, g, src, args)
    finally:
        target.close()
    if not stats.frames:
        nothing_run(f"the source {args.source!r} gave no frames")
        return 1
    return 0


def _stream_live(target, g, src, args):
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from ..deploy import stream

    con = Console(stderr=False)
    state = {}
    fps_label, chip_label = rate_labels(args.board)
    ns_per_instr = instr_ns(args.board)

    def render():
        t = Table(title=f"edgeq stream -> {target.name}", show_header=False, min_width=48)
        s = state.get("stats")
        t.add_row("frame", str(state.get("i", "-")))
        cls = state.get("cls")
        t.add_row("prediction", "-" if cls is None else f"{stream.class_name(g, cls)}"
                  f"  (score {state.get('score')}, margin {state.get('margin')})")
        if state.get("label") is not None:
            t.add_row("label", stream.class_name(g, state["label"]))
        if s is not None and s.frames:
            t.add_row(fps_label, f"{s.fps_at(state['now']):.1f}")
            if s.chip_fps:
                per = f"{1000 / s.chip_fps:.1f} ms"
                if ns_per_instr:  # -icount: virtual time is instructions x instr_ns
                    per += f", {1e9 / s.chip_fps / ns_per_instr / 1e6:.2f} M instructions"
                t.add_row(chip_label, f"{s.chip_fps:.1f} ({per} per inference)")
            t.add_row("latency p50 / p95", f"{s.pct(50):.1f} / {s.pct(95):.1f} ms")
            t.add_row("dropped", str(s.dropped))
            if s.labelled:
                t.add_row("accuracy", f"{100 * s.correct / s.labelled:.1f}% of {s.labelled}")
            b = target.bytes_out + target.bytes_in
            bps = b / max(state["now"] - s.t0, 1e-9)
            cap = s.link_rate
            util = f" ({100 * bps / cap:.0f}% of {cap / 1000:.1f} kB/s measured)" if cap and cap != float("inf") else ""
            t.add_row("link", f"{bps / 1000:.2f} kB/s{util}")
        return t

    import time

    stats = stream.StreamStats()
    with Live(render(), console=con, refresh_per_second=8, transient=False) as live:

        def on_frame(i, frame, cls, scores, lat, label):
            srt = sorted(int(v) for v in scores)
            state.update(i=i, cls=cls, label=label, score=srt[-1], margin=srt[-1] - (srt[-2] if len(srt) > 1 else 0),
                         now=time.perf_counter(), stats=stats)
            live.update(render())

        stream.run_stream(target, g, src, limit=args.limit, realtime=args.realtime, invert=args.invert,
                          save=args.save, on_frame=on_frame, stats=stats)
    summ = stats.summary()
    if not con.is_terminal:  # Live leaves the cursor after the table's last line
        con.print()
    con.print(" | ".join(f"{k} {v}" for k, v in summ.items() if v is not None))
    if args.save:
        con.print(f"annotated clip: {args.save}")
    return stats


def cmd_profile(args) -> int:
    import numpy as np

    from ..format import pack
    from ..deploy import profile as prof
    from .app import output_path
    from ..deploy.targets import open_target

    if args.runs < 1:
        raise EdgeqError(f"--runs must be at least 1 (inferences to take the median over), got {args.runs}")
    model = _model_path(args)
    blob = _blob(model)
    g = pack.read_summary(blob)
    old = prof.load_json(args.compare) if args.compare else None  # before the board is busy
    for path, flag in ((args.json, "--json"), (args.csv, "--csv"), (args.plot, "--plot")):
        if path:
            output_path(path, flag)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, g.input_shape).astype(np.uint8)
    target = open_target(args.board, args.port, model, args.runtime)
    try:
        rep = prof.profile_target(target, blob, image, runs=args.runs)
    finally:
        target.close()
    prof.print_table(rep, compare=old)
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2))
        print(f"wrote {args.json}")
    if args.csv:
        prof.write_csv(rep, args.csv)
        print(f"wrote {args.csv}")
    if args.plot:
        prof.plot(rep, args.plot)
        print(f"wrote {args.plot}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("stream", help="stream camera/video/folder/synthetic frames to a board")
    p.add_argument("--board", help="board name (see `edgeq boards`), or 'host' for the C host runtime")
    p.add_argument("--port", help="serial port or URL (default: the running/attached board)")
    p.add_argument("--model", help="the blob (default: the one flashed to --board)")
    p.add_argument("--source", default="synthetic",
                   help="camera:N, a video file, a folder of images (or of class sub-folders), "
                   "or synthetic (default)")
    p.add_argument("--data", default="digits", help="data set the synthetic clip draws digits from")
    p.add_argument("--limit", type=int, help="stop after N frames")
    p.add_argument("--realtime", action="store_true",
                   help="read files at their own frame rate, dropping frames the board cannot keep up with")
    p.add_argument("--invert", action="store_true", help="invert pixels (dark digits on light paper)")
    p.add_argument("--save", help="write the annotated view (frame | model input, class, score, label, "
                   "fps) to this video: .mp4, .avi (MJPG) or .mkv (lossless FFV1)")
    p.add_argument("--json", action="store_true",
                   help="one JSON line per frame on stdout (class, name, score, label, chip_ms when known)")
    p.add_argument("--runtime", choices=("c", "micropython"), default="c",
                   help="micropython: a stock MicroPython board at --port (see `edgeq flash --runtime`)")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("profile", help="per-layer latency on a board (table, JSON, CSV, chart)")
    p.add_argument("--board", help="board name, or 'host'")
    p.add_argument("--port")
    p.add_argument("--model", help="the blob (default: the one flashed to --board)")
    p.add_argument("--runs", type=int, default=5, help="inferences to take the median over")
    p.add_argument("--json", help="write the report as JSON")
    p.add_argument("--csv", help="write the table as CSV")
    p.add_argument("--plot", help="write a bar chart PNG")
    p.add_argument("--compare", help="an earlier --json report to compare against")
    p.add_argument("--runtime", choices=("c", "micropython"), default="c")
    p.set_defaults(func=cmd_profile)
