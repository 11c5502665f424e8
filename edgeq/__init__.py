"""edgeq: binary/ternary/k-bit neural nets from PyTorch training to microcontrollers.

`import edgeq` loads nothing heavy; torch is imported only when one of these is first used:
  edgeq.nn        quantized layers for your own nn.Module (QConv2d, QLinear, Sign, ...)
  edgeq.export    edgeq.export(model, example_input, path): trace, fold, write and prove a blob
  edgeq.quantize  edgeq.quantize(float_model, calibration_images): a plain CNN -> an edgeq.nn model
"""

import importlib

__all__ = ["export", "nn", "quantize"]


def __getattr__(name):
    if name in ("export", "nn"):
        return importlib.import_module(f".train.{name}", __name__)
    if name == "quantize":
        return importlib.import_module(".train.ptq", __name__).quantize
    raise AttributeError(f"module 'edgeq' has no attribute {name!r}")
