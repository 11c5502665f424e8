"""`edgeq export-c`: a blob as a C header (edgeq.deploy.export_c), docs/embedding.md."""

from __future__ import annotations

from pathlib import Path

from ..deploy.export_c import blob_to_c, c_identifier
from ..errors import EdgeqError


def cmd_export_c(args) -> int:
    p = Path(args.model)
    if not p.is_file():
        raise EdgeqError(f"model file {args.model!r} not found; train one with `edgeq train --out {args.model}`")
    name = args.name or (c_identifier(Path(args.out).stem) if args.out else "model_blob")
    src = f"{p.name}" + (f" -o {Path(args.out).name}" if args.out else "")
    text = blob_to_c(p.read_bytes(), name, src)
    if not args.out:
        print(text, end="")
        return 0
    try:
        Path(args.out).write_text(text)
    except OSError as e:
        raise EdgeqError(f"cannot write {args.out}: {e.strerror}") from None
    print(f"wrote {args.out}: {name}[{name.upper()}_SIZE], arena {name.upper()}_ARENA_SIZE "
          f"(docs/embedding.md shows how to build it into your firmware)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("export-c", help="write a blob as a C header (const aligned array + size/CRC/arena "
                       "macros) for your own firmware")
    p.add_argument("model", help="model blob (.eqb)")
    p.add_argument("-o", "--out", help="header to write (default: standard output)")
    p.add_argument("--name", help="C name of the array (default: the output file's stem, or model_blob); "
                   "macros use it upper-cased")
    p.set_defaults(func=cmd_export_c)
