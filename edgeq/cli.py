"""The `edgeq` command line. Only this module prints and exits; everything else raises EdgeqError.

Each command module exposes `register(subparsers)`, adding its sub-commands with `func` set to a
handler `func(args) -> int`. The list of modules is explicit (no hidden registry).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import EdgeqError


def _read_blob(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise EdgeqError(f"model file {path!r} not found; train one with `edgeq train --out {path}`")
    return p.read_bytes()


def _console():
    from rich.console import Console

    return Console()


# ---- info ---------------------------------------------------------------------------------
def cmd_info(args) -> int:
    from . import pack

    info = pack.blob_info(_read_blob(args.model))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.table import Table

    from .profile import wide_console

    con = wide_console()
    con.print(f"[bold]{args.model}[/]: edgeq blob v{info['version']}, {info['total_size']} bytes, "
              f"crc {info['crc32']}, hash {info['model_hash']}")
    con.print(f"input {tuple(info['input_shape'])} (C,H,W), preprocessing {info['pre_mode']}"
              f"({info['pre_param']}), {info['n_classes']} classes, arena {info['arena_size']} bytes")
    t = Table(show_lines=False)
    for col in ("#", "name", "op", "in", "out", "kernel", "weights", "enc", "stage", "bytes",
                "bits/w", "sparsity", "MACs"):
        t.add_column(col, justify="right" if col in ("#", "weights", "bytes", "bits/w", "MACs") else "left",
                     no_wrap=True)
    for r in info["layers"]:
        shape = lambda s: "x".join(str(v) for v in s)  # noqa: E731
        t.add_row(str(r["index"]), r["name"], r["op"], f"{shape(r['in_shape'])} {r['in_enc']}",
                  f"{shape(r['out_shape'])} {r['out_enc']}", r.get("kernel", ""),
                  str(r.get("weights", "")), r.get("w_enc", ""), r.get("out_stage", ""),
                  str(r.get("weight_bytes", "")), str(r.get("bits_per_weight", "")),
                  f"{100 * r['sparsity']:.1f}%" if "sparsity" in r else "", f"{r['macs']:,}")
    con.print(t)
    con.print(f"{info['weights']:,} weights in {info['weight_bytes']:,} bytes: "
              f"{info['bits_per_weight']} bits/weight, {info['compression_vs_f32']}x smaller than float32")
    return 0


# ---- run ------------------------------------------------------------------------------------
def cmd_run(args) -> int:
    from .runtime import Model

    m = Model(_read_blob(args.model), threads=args.threads)
    p = Path(args.input)
    if not p.is_file():
        raise EdgeqError(f"input file {args.input!r} not found (expected a .npy of uint8 images)")
    try:
        x = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise EdgeqError(f"{args.input}: not a numpy .npy file of uint8 images ({e})") from None
    classes, scores = m.predict(x)
    if args.json:
        print(json.dumps({"predictions": classes.tolist(), "scores": scores.tolist()}))
        return 0
    names = m.graph.classes
    for i, (c, s) in enumerate(zip(classes, scores)):
        label = names[c] if c < len(names) else str(c)
        print(f"{i}: class {c} ({label}) score {s[c]}")
    return 0


def add_threads_arg(p) -> None:
    """--threads N for commands that run the host executor (same results for any N)."""
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="host threads splitting the batch (default: all cores; results do not "
                        "depend on it)")


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--threads needs a positive integer, got {text!r}")
    return n


def register(sub) -> None:
    p = sub.add_parser("info", help="show a blob's layers, shapes, encodings and sizes")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("run", help="run a blob on the host (C runtime) over images in a .npy file")
    p.add_argument("model")
    p.add_argument("--input", required=True, help=".npy of raw uint8 images, (N,H,W) or (N,C,H,W)")
    p.add_argument("--json", action="store_true")
    add_threads_arg(p)
    p.set_defaults(func=cmd_run)


COMMAND_MODULES = ("cli_train", "cli_eval", "cli_board", "cli_stream")


def _modules():
    import importlib

    mods = [sys.modules[__name__]]
    for name in COMMAND_MODULES:
        mods.append(importlib.import_module(f"edgeq.{name}"))
    return mods


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeq", description="extremely low-bit neural networks, "
                                 "from PyTorch training to microcontrollers")
    ap.add_argument("--version", action="version", version="edgeq 0.1.0")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _modules():
        mod.register(sub)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeqError as e:
        print(f"edgeq: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
