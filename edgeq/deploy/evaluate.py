"""Accuracy of a blob on a data set: on the host C runtime, or on any Target (deploy.targets) too,
counting its predictions that differ from the host runtime (they must be 0); per-class accuracy
and the confusion matrix. The data default to the blob's own (metadata "data", its test split),
read with the blob's preprocessing spec (edgeq.format.preprocess). `edgeq eval` prints these."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
