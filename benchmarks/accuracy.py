"""Accuracy / size benchmark on the fixed MNIST split (`edgeq.train.data.mnist_benchmark_split`):
train on train5k + test8k[0:6000], evaluate on test8k[6000:8000] with the host C runtime.

    python -m benchmarks.accuracy [--root ../shared/data/mnist] [--arch bnn-mlp --arch ...]
                                  [--threads 2] [--json out.json]

Every arch is trained with its default settings (`edgeq.train.loop.build_and_train`, as `edgeq train`
does).  Columns: accuracy (C runtime on the 2,000 test images), whether it equals the torch eval
forward prediction for prediction, blob bytes, weight bits per weight (weight + LUT tensors /
number of weights), compression of the weights vs float32, train seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
DEFAULT_RUNS = [("bnn-mlp", 0.0), ("bnn-cnn", 0.0), ("xnor-cnn", 0.0), ("twn-cnn", 0.0),
                ("twn-cnn", 0.9), ("twn5-cnn", 0.0), ("dorefa-w1a2", 0.0), ("dorefa-w2a2", 0.0),
                ("hwgq-cnn", 0.0), ("hwgq-uniform", 0.0)]
BARS = {"bnn-mlp": 0.95, "bnn-cnn": 0.97, "twn-cnn": 0.98, "dorefa-w2a2": 0.98, "hwgq-cnn": 0.98}


def run_one(arch: str, prune: float, data, seed: int = 0, epochs=None) -> dict:
    from edgeq.train import export, loop as train
    from edgeq.format import pack
    from edgeq.native import runtime

    xtr, ytr, xte, yte = data
    t0 = time.time()
    model, hist = train.build_and_train(arch, xtr, ytr, [str(i) for i in range(10)], seed=seed,
                                        prune=prune, epochs=epochs)
    secs = time.time() - t0
    # pruned rows: the README's figures are for --ternary-storage smallest (skip-zero where smaller)
    blob = export.export_blob(model, meta={"train": "mnist-benchmark"},
                              ternary="smallest" if prune else "auto")
    info = pack.blob_info(blob)
    cls, _ = runtime.Model(blob).predict(export.graph_input(model, xte))
    torch_cls = train.predict(model, xte)
    zeros = sum(r["sparsity"] * r["weights"] for r in info["layers"] if "weights" in r)
    return {"arch": arch, "prune": prune, "accuracy": float((cls == yte).mean()),
            "exact": bool((cls == torch_cls).all()), "blob_bytes": len(blob), "weights": info["weights"],
            "bits_per_weight": info["bits_per_weight"], "compression": info["compression_vs_f32"],
            "sparsity": round(zeros / info["weights"], 4), "train_s": round(secs, 1),
            "epochs": hist["epochs"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--arch", action="append", help="arch[@sparsity], repeatable (default: all)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: edgeq.train.loop.auto_threads)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch
    from rich.console import Console
    from rich.table import Table

    from edgeq.train.data import mnist_benchmark_split
    from edgeq.train.loop import auto_threads

    args.threads = args.threads or auto_threads()
    torch.set_num_threads(args.threads)
    runs = DEFAULT_RUNS
    if args.arch:
        runs = [(a.split("@")[0], float(a.split("@")[1]) if "@" in a else 0.0) for a in args.arch]
    data = mnist_benchmark_split(os.path.normpath(args.root))
    con = Console(width=130)
    rows = []
    for arch, pr in runs:
        r = run_one(arch, pr, data, epochs=args.epochs)
        rows.append(r)
        con.print(json.dumps(r))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    t = Table(title=f"MNIST (train 11,000 / test 2,000), {args.threads} threads")
    for col in ("arch", "prune", "zeros", "accuracy", "bar", "exact", "blob bytes", "bits/w", "x vs f32",
                "train s"):
        t.add_column(col, justify="left" if col == "arch" else "right")
    ok = True
    for r in rows:
        bar = BARS.get(r["arch"]) if not r["prune"] else None
        if bar and r["accuracy"] < bar:
            ok = False
        t.add_row(r["arch"], f"{r['prune']:.2f}" if r["prune"] else "-", f"{100 * r['sparsity']:.1f}%",
                  f"{100 * r['accuracy']:.2f}%",
                  f"{100 * bar:.0f}%" if bar else "", "yes" if r["exact"] else "NO", f"{r['blob_bytes']:,}",
                  f"{r['bits_per_weight']:.3f}", f"{r['compression']:.1f}", f"{r['train_s']:.0f}")
    con.print(t)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
