"""`edgeq eval`: accuracy of a blob on a data set, on the host C runtime or on a board (where it
also counts predictions that differ from the host runtime: they must be 0), with per-class
accuracy and a confusion matrix.

The data default to the blob's own (metadata "data", its test split), read with the blob's
preprocessing spec (`edgeq.format.preprocess`); other data are evaluated whole unless --split says
otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..deploy.evaluate import confusion, evaluate, load_eval_data, per_class
from ..errors import EdgeqError


def plot_confusion(cm: np.ndarray, names: list, path: str, title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise EdgeqError("--plot needs matplotlib: pip install 'edgeq[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cm)
    labels = [names[i] if i < len(names) else str(i) for i in range(n)]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.55 * n), max(3.5, 1.2 + 0.5 * n)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    big = cm.max(initial=0) / 2
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > big else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise EdgeqError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def cmd_eval(args) -> int:
    from ..format import pack

    from .app import check_limit, model_file, nothing_run

    blob = model_file(args.model).read_bytes()
    if not check_limit(args.limit):
        return 1
    g = pack.read_summary(blob)  # what eval shows; the target's loader validates the rest
    x, y, what = load_eval_data(g, args.data, args.split)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    if len(x) == 0:
        nothing_run(f"{what} has no images")
        return 1
    target = None
    if args.board or args.port or args.runtime != "c":
        from ..deploy.targets import open_target

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
    pred = res.pop("predictions")
    cm = confusion(y, pred, len(g.classes))
    res.update(data=what, per_class=per_class(cm, g.classes), confusion=cm.tolist())
    where = f"on {target.name}" if target is not None else "on the host C runtime"
    if args.plot:
        plot_confusion(cm, g.classes, args.plot, f"{Path(args.model).name}, {what}\n{where}: "
                       f"{100 * res['accuracy']:.2f}% of {res['n']}")
    if args.json:
        print(json.dumps(res))
    else:
        _print_table(cm, res["per_class"], g.classes)
        line = f"accuracy {100 * res['accuracy']:.2f}% on {res['n']} images of {what} {where}"
        if "mismatches" in res:
            line += f"; {res['mismatches']} predictions differ from the host runtime"
        print(line)
        if args.plot:
            print(f"wrote {args.plot}")
    return 1 if res.get("mismatches") else 0


def _print_table(cm: np.ndarray, rows: list, names: list) -> None:
    """Confusion matrix (rows true, columns predicted) with per-class accuracy."""
    from rich.table import Table

    from ..deploy.profile import wide_console

    t = Table(title="confusion matrix (rows: true class, columns: predicted)", show_lines=False)
    t.add_column("true \\ pred", no_wrap=True)
    for j in range(len(cm)):
        t.add_column(names[j] if j < len(names) else str(j), justify="right", no_wrap=True)
    t.add_column("n", justify="right")
    t.add_column("accuracy", justify="right")
    for i, r in enumerate(rows):
        acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
        t.add_row(r["class"], *[str(v) if v else "." for v in cm[i]], str(r["n"]), acc)
    wide_console().print(t)


def register(sub) -> None:
    p = sub.add_parser("eval", help="accuracy of a blob on a data set (host C runtime or a board)")
    p.add_argument("model")
    p.add_argument("--data", default=None,
                   help="digits, idx:PREFIX, folder:DIR, npz:FILE, mnist:DIR (default: the data set the "
                   "blob records, read with its preprocessing)")
    p.add_argument("--split", choices=("test", "train", "all"), default=None,
                   help="which part (the fixed split of edgeq.train.data); default: test for the blob's own "
                   "data set, all for other data")
    p.add_argument("--board", help="also run every image on this board and compare with the host")
    p.add_argument("--port", help="serial port or URL of the board")
    p.add_argument("--runtime", choices=("c", "micropython"), default="c",
                   help="micropython: a stock MicroPython board at --port running edgeq_micro")
    p.add_argument("--limit", type=int, help="only the first N images")
    from .app import add_threads_arg

    add_threads_arg(p)
    p.add_argument("--json", action="store_true",
                   help='print {"accuracy", "n", "data", "per_class", "confusion"[, "mismatches", "host_accuracy"]}')
    p.add_argument("--plot", metavar="PNG", help="write the confusion matrix as an image")
    p.set_defaults(func=cmd_eval)
