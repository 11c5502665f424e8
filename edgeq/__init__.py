"""edgeq: binary/ternary/k-bit neural nets from PyTorch training to microcontrollers.

`import edgeq` loads nothing heavy: each name below is imported when first used, and only the
training names import torch.

Deploy (torch-free):
  edgeq.load      edgeq.load("net.eqb", threads=None) -> Model: .predict(images), .scores(images)
  edgeq.connect   edgeq.connect(board="qemu-mps2-an386", model="net.eqb") -> Target (host, board
                  over serial, or MicroPython): .infer(wires), .profile(wire), .info(), .close()
  edgeq.flash     edgeq.flash(board, "net.eqb") -> (running emulator or None, board info)
  edgeq.profile   edgeq.profile(target, blob, image, runs=5) -> per-layer report (dict);
                  edgeq.deploy.profile.print_table(report) prints it
Train and export (torch):
  edgeq.nn        quantized layers for your own nn.Module (QConv2d, QLinear, Sign, ...)
  edgeq.export    edgeq.export(model, example_input, path): trace, fold, write and prove a blob
  edgeq.quantize  edgeq.quantize(float_model, calibration_images): a plain CNN -> an edgeq.nn model
"""

import importlib

__all__ = ["connect", "export", "flash", "load", "nn", "profile", "quantize"]
_API = ("load", "connect", "flash", "profile")  # edgeq/api.py


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(".api", __name__), name)
    if name in ("export", "nn"):
        return importlib.import_module(f".train.{name}", __name__)
    if name == "quantize":
        return importlib.import_module(".train.ptq", __name__).quantize
    raise AttributeError(f"module 'edgeq' has no attribute {name!r}")
