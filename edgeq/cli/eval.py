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

from ..errors import EdgeqError


def evaluate(blob: bytes, x: np.ndarray, y: np.ndarray, target=None, progress=None,
             threads: int | None = None) -> dict:
    """Host accuracy; with a target, also its accuracy and mismatches against the host.
    threads: host executor threads (default: all cores)."""
    from ..native.runtime import Model

    m = Model(blob, threads=threads)
    host_cls, host_scores = m.predict(x)
    out = {"accuracy": float(np.mean(host_cls == y)), "n": int(len(y)), "predictions": host_cls}
    if target is None:
        return out
    cls = np.empty(len(x), np.int64)
    mism, step = 0, 64  # a batch at a time: the target pipelines it, progress moves
    for i in range(0, len(x), step):
        c, s = target.infer([m.wire_input(img) for img in x[i:i + step]])
        cls[i:i + len(c)] = c
        mism += int(np.sum((c != host_cls[i:i + len(c)]) | np.any(s != host_scores[i:i + len(c)], axis=1)))
        if progress:
            progress(i + len(c))
    out.update(accuracy=float(np.mean(cls == y)), host_accuracy=out["accuracy"], mismatches=mism,
               predictions=cls)
    return out


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 (n, n): row = true class, column = predicted class."""
    n = max(n_classes, int(y.max(initial=-1)) + 1, int(pred.max(initial=-1)) + 1)
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def per_class(cm: np.ndarray, names: list) -> list:
    """[{"class", "n", "correct", "accuracy"}] per true class (accuracy None when it has no images)."""
    out = []
    for i in range(len(cm)):
        n = int(cm[i].sum())
        out.append({"class": names[i] if i < len(names) else str(i), "n": n, "correct": int(cm[i, i]),
                    "accuracy": round(float(cm[i, i]) / n, 4) if n else None})
    return out


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


def same_data(a: str, b: str) -> bool:
    """Two data specs name the same data (paths compared resolved: folder:x/ == folder:./x)."""
    ka, _, pa = str(a).partition(":")
    kb, _, pb = str(b).partition(":")
    if ka != kb or not pa or not pb:
        return a == b
    return Path(pa).resolve() == Path(pb).resolve()


def load_eval_data(g, data: str | None, split: str | None):
    """(x in the model's input shape, y, description): the blob's data set and test split by
    default; other data whole unless `split` is given; read with the blob's preprocessing."""
    from ..format import preprocess as P
    from ..train.data import load, load_split
    from ..errors import DataError

    own = g.meta.get("data") or "digits"
    spec = P.spec_of(g) if P.META_KEY in g.meta else None
    data = data or own
    split = split or ("test" if same_data(data, own) else "all")
    kw = dict(color=spec.color, size=spec.size, resize=spec.resize) if spec else {}
    try:
        if split == "all":
            x, y, _ = load(data, **kw)
        else:
            xtr, ytr, xte, yte, _ = load_split(data, **kw)
            x, y = (xte, yte) if split == "test" else (xtr, ytr)
    except DataError as e:
        if same_data(data, own) and g.meta.get("data"):
            raise DataError(f"{e} (the data set recorded in the blob; give --data SPEC)") from None
        raise
    if spec is not None and spec.invert:
        x = P.apply_chw(x, spec)
    x = P.to_graph_input(x, g.input_shape)
    return x, y, f"{data} ({split})"


def cmd_eval(args) -> int:
    from ..format import pack

    from .app import check_limit, model_file, nothing_run

    blob = model_file(args.model).read_bytes()
    if not check_limit(args.limit):
        return 1
    g = pack.read_blob(blob)
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
