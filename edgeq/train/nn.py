"""Quantized layers for your own `torch.nn.Module` (in the manner of larq / Brevitas layers).

    import torch.nn as tnn
    import edgeq.nn as qnn

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.Input("RAW")                        # uint8 pixels -> pixel / 255
            self.conv1 = qnn.QConv2d(1, 32, 3, padding="same", wq="int8")
            self.bn1 = tnn.BatchNorm2d(32)
            self.act1 = qnn.Sign()
            self.pool = tnn.MaxPool2d(2)
            self.flat = tnn.Flatten()
            self.fc = qnn.QLinear(32 * 14 * 14, 10, wq="sign")
            self.bn2 = tnn.BatchNorm1d(10)

        def forward(self, x):
            x = self.pool(self.act1(self.bn1(self.conv1(self.inp(x)))))
            return self.bn2(self.fc(self.flat(x)))

`edgeq.export(model, example_images, "net.eqb")` traces such a model (torch.fx), maps it onto the
integer graph and proves the blob equals the model; docs/python-api.md lists what it accepts.

Layers: `QConv2d`, `QConv1d`, `QLinear` (any weight quantizer by name: 'sign', 'bwn', 'twn',
'tern5', 'dorefaK', 'int8', 'int16', 'float'; see `edgeq.train.quant.make_weight_quantizer`).
Activation quantizers: `Sign`, `DoReFa(bits)`, `HWGQ(bits, levels)`, `QReLU(bits, clip)`.  Input step: `Input`.
Torch's own BatchNorm1d/2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, Flatten, Dropout and
Identity, `x + y` / `torch.add` (residual adds), `torch.cat` along channels and `x.mean((2, 3))`
are understood by export; the forward may branch (a DAG).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedError
from ..format.graph import PRE_MODES
from .quant import (ActQuantizer, DoReFaAct, HWGQAct, QConv1d, QConv2d, QLinear, QReLU, ShiftBatchNorm2d,
                    SignAct, WeightQuantizer, make_weight_quantizer)

__all__ = ["Input", "QConv1d", "QConv2d", "QLinear", "Sign", "DoReFa", "HWGQ", "QReLU", "ActQuantizer",
           "ShiftBatchNorm2d", "WeightQuantizer", "make_weight_quantizer"]

Sign = SignAct
DoReFa = DoReFaAct
HWGQ = HWGQAct


class Input(nn.Module):
    """The blob's input preprocessing, as the first step of a model fed raw uint8 pixels
    (N, C, H, W), or (N, C, L) for 1-D signals; the exported graph applies the same step:

      RAW          : code = pixel (0..255); the network sees pixel / 255;
      THRESH t     : binary, +1 where pixel >= t else -1 (the network sees +-1);
      QUANT k      : code = (pixel * (2**k - 1) + 127) // 255; the network sees code / (2**k - 1).

    `input_shape` (C, H, W) is optional (export reads it from the example batch)."""

    def __init__(self, mode: str = "RAW", param: int = 0, input_shape: tuple | None = None):
        super().__init__()
        if mode not in PRE_MODES:
            raise UnsupportedError(f"preprocessing {mode!r} not in {PRE_MODES}")
        if mode == "QUANT" and not 1 <= int(param) <= 8:
            raise UnsupportedError(f"QUANT preprocessing needs 1..8 bits, got {param}")
        self.mode, self.param = mode, int(param)
        self.image_shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
        if mode == "THRESH":
            self.enc, self.levels_int, self.scale = "B1", np.array([-1, 1], np.int64), 1.0
        elif mode == "RAW":
            self.enc, self.levels_int, self.scale = "U8", np.arange(256, dtype=np.int64), 1.0 / 255
        else:
            n = (1 << self.param) - 1
            self.enc, self.levels_int, self.scale = "U8", np.arange(n + 1, dtype=np.int64), 1.0 / n
        # follows model.double() / .half() / .to(device): the dtype and device of the output
        self.register_buffer("_like", torch.zeros(0), persistent=False)

    def codes(self, px: torch.Tensor) -> torch.Tensor:
        """uint8 (or integral float) pixels -> long codes (index into levels_int)."""
        p = px.to(torch.long)
        if self.mode == "THRESH":
            return (p >= self.param).long()
        if self.mode == "RAW":
            return p
        return torch.div(p * ((1 << self.param) - 1) + 127, 255, rounding_mode="floor")

    def forward(self, px):
        lv = torch.as_tensor(self.levels_int * self.scale, dtype=self._like.dtype, device=px.device)
        return lv[self.codes(px)]

    def extra_repr(self):
        return f"{self.mode}({self.param})"
