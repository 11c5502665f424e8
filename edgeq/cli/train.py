"""`edgeq train`: train a low-bit net, export it exactly, write the blob and a checkpoint.

    edgeq train --arch bnn-cnn --data digits --out model.eqb
    edgeq train --arch twn-cnn --data mnist:../shared/data/mnist --prune 0.9 --ternary-storage smallest --out twn.eqb

Prints the test accuracy measured with the host C runtime on the blob (the fixed test split of
`edgeq.train.data`), the torch/runtime agreement, and the blob size.  The checkpoint (``--ckpt``, by
default the blob path with ``.pt``) is a plain state_dict loaded with weights_only=True.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import EdgeqError
from ..train.archs import arch_names  # torch-free: the CLI starts without torch


def register(sub) -> None:
    p = sub.add_parser("train", help="train a low-bit model and write its blob",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="bnn-cnn", choices=arch_names(), help="architecture (default bnn-cnn)")
    p.add_argument("--data", default="digits",
                   help="digits (default) | idx:PREFIX | folder:DIR | npz:FILE | mnist:DIR")
    p.add_argument("--color", choices=("gray", "rgb"), default=None,
                   help="image colour (default: the data's own; folder: keeps colour when images have it)")
    p.add_argument("--size", default=None, metavar="HxW", help="resize images to H x W (default: their size)")
    p.add_argument("--resize", choices=("stretch", "crop", "letterbox"), default="crop",
                   help="how images of another size are fitted, here and by run/eval/stream (default crop)")
    p.add_argument("--epochs", type=int, default=None, help="default: per arch and data size")
    p.add_argument("--prune", type=float, default=0.0, metavar="SPARSITY",
                   help="magnitude-prune every layer but the first to this sparsity (0..0.99)")
    p.add_argument("--ternary-storage", choices=("auto", "dense", "sparse", "smallest"), default="auto",
                   help="ternary weights: auto (default: skip-zero TERN_SPARSE only where it runs faster, "
                        "gray/RGB first layers), dense (TERN bit-planes), sparse (TERN_SPARSE), or "
                        "smallest (whichever is smaller per layer: the smallest blob after --prune)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help="default: per arch")
    p.add_argument("--first-w", default=None, help="first-layer weight quantizer (e.g. int8, int16, float, sign)")
    p.add_argument("--last-w", default=None, help="last-layer weight quantizer (e.g. int8, int16, float)")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default: up to 2, fewer when the cores are busy)")
    p.add_argument("--ckpt", default=None, help="checkpoint path (default: OUT with .pt)")
    p.add_argument("--out", required=True, help="blob path to write (.eqb)")
    p.set_defaults(func=run)


def _writable(path: str, flag: str) -> Path:
    """Create the folders of an output path and check the file can be written there."""
    from .app import output_path

    existing = next(p for p in Path(path).absolute().parents if p.exists())
    if not existing.is_dir():
        raise EdgeqError(f"{flag} {path}: {existing} is a file, not a folder; choose another path")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeqError(f"{flag} {path}: cannot create its folder ({e.strerror}); choose another path") \
            from None
    return output_path(path, flag)


def run(args) -> int:
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..train import data, export, loop as train
    from ..train.quant import make_weight_quantizer
    from .app import size_summary

    if not 0.0 <= args.prune < 1.0:
        raise EdgeqError(f"--prune must be in [0, 1), got {args.prune}")
    if args.epochs is not None and args.epochs < 1:
        raise EdgeqError("--epochs must be >= 1")
    if args.lr is not None and not args.lr > 0:
        raise EdgeqError(f"--lr must be > 0, got {args.lr}")
    if not args.width > 0:
        raise EdgeqError(f"--width must be > 0 (a channel multiplier such as 0.5 or 2), got {args.width}")
    if args.threads < 0:
        raise EdgeqError(f"--threads must be >= 0 (0: automatic), got {args.threads}")
    try:
        dev = train.pick_device(args.device)
    except RuntimeError:
        raise EdgeqError(f"--device {args.device!r}: not a torch device; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not train.cuda_available():
        raise EdgeqError(f"--device {args.device}: CUDA is not available here; use auto or cpu")
    for q in (args.first_w, args.last_w):
        if q:
            make_weight_quantizer(q)
    out = _writable(args.out, "--out")  # before training, not after
    ckpt = _writable(args.ckpt, "--ckpt") if args.ckpt else _writable(str(out.with_suffix(".pt")), "--ckpt")
    train.set_threads(args.threads)
    con = Console(stderr=True)
    from ..format.preprocess import parse_size, spec_for_data

    xtr, ytr, xte, yte, classes = data.load_split(args.data, args.color, parse_size(args.size), args.resize)
    pre = spec_for_data(xtr, args.resize) if xtr.shape[1] in (1, 3) else None  # recorded in the blob
    con.print(f"data {args.data}: {len(xtr)} train / {len(xte)} test images "
              f"{pre.describe() if pre else tuple(xtr.shape[1:])}, "
              f"{len(classes)} classes; arch {args.arch}, device {train.pick_device(args.device)}")
    t0 = time.time()
    with Progress(TextColumn("[bold]train[/] epoch {task.fields[ep]}"), BarColumn(),
                  TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), console=con,
                  transient=False) as prog:
        task = prog.add_task("train", total=1, ep=0, loss=float("nan"))

        def progress(ep, step, total, loss):
            prog.update(task, total=total, completed=step, ep=ep + 1, loss=loss)

        model, hist = train.build_and_train(
            args.arch, xtr, ytr, classes, epochs=args.epochs, seed=args.seed, prune=args.prune,
            device=args.device, progress=progress, lr=args.lr, first_wq=args.first_w,
            last_wq=args.last_w, width=args.width)
    secs = time.time() - t0
    meta = {"data": args.data, "seed": args.seed, "prune": args.prune}
    if pre is not None:
        meta["preprocess"] = pre.to_meta()
    # the one export path (edgeq.export): trace, fold, and prove the blob on the test images
    proof = export.export_model(model, xte if len(xte) else xtr[:256], meta=meta,
                                ternary=args.ternary_storage)
    blob = proof.blob
    try:
        out.write_bytes(blob)
        train.save_checkpoint(model, ckpt)
    except OSError as e:
        raise EdgeqError(f"cannot write {e.filename}: {e.strerror}") from None
    from ..format import pack
    from ..native.runtime import Model

    info = pack.blob_info(blob)
    cls, _ = Model(blob).predict(export.graph_input(model, xte))
    acc = float((cls == yte).mean())
    agree = float((cls == train.predict(model, xte)).mean())
    con.print(f"trained {hist['epochs']} epochs in {secs:.1f}s"
              + (f", sparsity {100 * hist['sparsity']:.1f}%" if args.prune else ""))
    print(f"test accuracy {100 * acc:.2f}% ({len(yte)} images, C host runtime); "
          f"torch/runtime agreement {100 * agree:.2f}% (export proof on {proof.report['images']} images: "
          f"float torch eval == blob, {proof.report['threshold_ties']} threshold ties)")
    print(f"wrote {out} and {ckpt}: {size_summary(info)}")
    if agree < 1.0:
        raise EdgeqError("the exported blob disagrees with the torch model: please report this bug")
    return 0 if np.isfinite(acc) else 1
