"""`edgeq eval`: accuracy of a blob on a data set, on the host C runtime or on a board (where it
also counts predictions that differ from the host runtime: they must be 0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import EdgeqError


def evaluate(blob: bytes, x: np.ndarray, y: np.ndarray, target=None, progress=None,
             threads: int | None = None) -> dict:
    """Host accuracy; with a target, also its accuracy and mismatches against the host.
    threads: host executor threads (default: all cores)."""
    from .runtime import Model

    m = Model(blob, threads=threads)
    host_cls, host_scores = m.predict(x)
    out = {"accuracy": float(np.mean(host_cls == y)), "n": int(len(y))}
    if target is None:
        return out
    cls = np.empty(len(x), np.int64)
    mism = 0
    for i, img in enumerate(x):
        c, s = target.infer(m.wire_input(img))
        cls[i] = c
        mism += int(c != host_cls[i] or not np.array_equal(s, host_scores[i]))
        if progress:
            progress(i + 1)
    out.update(accuracy=float(np.mean(cls == y)), host_accuracy=out["accuracy"], mismatches=mism)
    return out


def cmd_eval(args) -> int:
    from .data import load, load_split

    p = Path(args.model)
    if not p.is_file():
        raise EdgeqError(f"model file {args.model!r} not found")
    blob = p.read_bytes()
    if args.split == "all":
        x, y, _ = load(args.data)
    else:
        xtr, ytr, xte, yte, _ = load_split(args.data)
        x, y = (xte, yte) if args.split == "test" else (xtr, ytr)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    target = None
    if args.board or args.port:
        from .targets import open_target

        target = open_target(args.board, args.port, args.model, args.runtime)
    try:
        if target is not None and not args.json:
            from rich.progress import Progress

            with Progress(transient=True) as prog:
                task = prog.add_task(f"eval on {target.name}", total=len(x))
                res = evaluate(blob, x, y, target, progress=lambda n: prog.update(task, completed=n),
                               threads=args.threads)
        else:
            res = evaluate(blob, x, y, target, threads=args.threads)
    finally:
        if target is not None:
            target.close()
    if args.json:
        print(json.dumps(res))
    else:
        where = f"on {target.name}" if target is not None else "on the host C runtime"
        line = f"accuracy {100 * res['accuracy']:.2f}% on {res['n']} images {where}"
        if "mismatches" in res:
            line += f"; {res['mismatches']} predictions differ from the host runtime"
        print(line)
    return 1 if res.get("mismatches") else 0


def register(sub) -> None:
    p = sub.add_parser("eval", help="accuracy of a blob on a data set (host C runtime or a board)")
    p.add_argument("model")
    p.add_argument("--data", default="digits", help="digits (default), idx:PREFIX, folder:DIR, npz:FILE, mnist:DIR")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="which part of the data set (the fixed split of edgeq.data); default test")
    p.add_argument("--board", help="also run every image on this board and compare with the host")
    p.add_argument("--port", help="serial port or URL of the board")
    p.add_argument("--runtime", choices=("c", "micropython"), default="c",
                   help="micropython: a stock MicroPython board at --port running edgeq_micro")
    p.add_argument("--limit", type=int, help="only the first N images")
    from .cli import add_threads_arg

    add_threads_arg(p)
    p.add_argument("--json", action="store_true", help='print {"accuracy": ..., "n": ...[, "mismatches": ...]}')
    p.set_defaults(func=cmd_eval)
