"""The deploy half of the public API (`edgeq.load`, `edgeq.connect`, `edgeq.flash`,
`edgeq.profile`; docs/python-api.md): thin names over edgeq.native and edgeq.deploy, reached
lazily through `edgeq/__init__.py`. Torch-free."""


def load(blob, threads=None):
    """A blob (path or bytes) loaded into the host C runtime (edgeq.native.runtime.Model)."""
    from .native.runtime import Model

    if not isinstance(blob, (bytes, bytearray, memoryview)):
        with open(blob, "rb") as f:
            blob = f.read()
    return Model(bytes(blob), threads=threads)


def connect(board=None, port=None, model=None, runtime="c"):
    """A Target: board="host" (with model=path), a board name (emulated boards must be running:
    see flash), or port= a serial port; runtime="micropython" for a MicroPython board on `port`.
    With `model`, a board must already run that very blob."""
    from .deploy.targets import open_target

    return open_target(board, port, model, runtime)


def flash(board, model_path, port=None, log=print):
    """Build the firmware if needed and put it and the model on `board` (QEMU/sim: start the
    emulator with the model in its flash region). Returns (running emulator or None, info)."""
    from .deploy.boards import flash as _flash

    return _flash(board, model_path, port=port, log=log)


def profile(target, blob, image, runs=5):
    """Per-layer ticks of `image` on `target` (instructions on QEMU boards, DWT cycles on real
    ones, seconds on the host) as a report dict."""
    from .deploy.profile import profile_target

    return profile_target(target, blob, image, runs=runs)
