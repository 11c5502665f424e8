"""Post-training quantization: a plain PyTorch CNN -> an exportable edgeq.nn model.

    qmodel = edgeq.quantize(float_model, calibration_images)          # int8 weights, 8-bit ReLUs
    edgeq.export(qmodel, test_images, "net.eqb")

The float model is traced (torch.fx) and rewritten: an `edgeq.nn.Input` step first (the float
model must take ``pixel / 255``: RAW preprocessing), every nn.Conv2d / nn.Conv1d / nn.Linear
becomes the edgeq.nn layer with the same weights and bias under the weight quantizer `weights`
('int8' per-channel symmetric by default; 'twn', 'sign', ... give a starting point for
quantization-aware fine-tuning), every ReLU (module or function) a `QReLU(act_bits, clip)` whose
clip is the `percentile` of the ReLU's input on the calibration images (run through the float
model).  BatchNorm, MaxPool2d, Flatten and Dropout stay as they are (export folds batch norm into
the integer stages).  The result is an ordinary torch module: fine-tune it, then export it.

Size: a QReLU's levels are uniform, so with act_bits >= 4 export folds batch norm + QReLU into a
REQUANT stage, code = clamp((acc * mul + add) >> shift, 0, 2**k - 1): 8 bytes per channel (an int32
mul and add) instead of 2**k - 1 int32 thresholds (1,020 bytes per channel at 8 bits, 60 at 4).
mul/add are the stage's real slope and offset rounded at the largest shift that keeps them in
int32, so a value moves by one code only within step * (|acc|/2 + 1/2) / 2**shift of a threshold;
the export proof allows exactly that (`edgeq.train.export._requant`).  Below 4 bits the MULTI
thresholds stay (exact, 12 bytes per channel at 2 bits).  `edgeq info` shows the weights' bits per
weight, the stages' bytes and the whole blob.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import UnsupportedError
from .nn import Input, QConv1d, QConv2d, QLinear
from .quant import QReLU

_RELU_F = {F.relu, torch.relu}


def _swap(gm: fx.GraphModule, target: str, new: nn.Module) -> None:
    parent, _, name = target.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, name, new)


def _q_layer(m: nn.Module, wq: str) -> nn.Module:
    if isinstance(m, nn.Linear):
        q = QLinear(m.in_features, m.out_features, bias=m.bias is not None, wq=wq)
    else:
        cls = QConv2d if isinstance(m, nn.Conv2d) else QConv1d
        q = cls(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode,
                wq=wq)
    q.load_state_dict(m.state_dict())
    return q.to(m.weight.device)


def quantize(float_model: nn.Module, calibration_data, *, weights: str = "int8", act_bits: int = 8,
             percentile: float = 99.99, input_mode: str = "RAW") -> fx.GraphModule:
    """A plain CNN (Conv/BatchNorm/ReLU/MaxPool/Flatten/Linear, taking pixel / 255) -> an
    edgeq.nn model taking raw uint8 pixels, with clips calibrated on `calibration_data` (raw
    uint8 images, (N, C, H, W)).  See the module docstring; the float model is not modified."""
    model = copy.deepcopy(float_model).eval()
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - any tracing failure
        raise UnsupportedError(f"torch.fx cannot trace {type(float_model).__name__}: {e}") from None
    graph = gm.graph
    inputs = [n for n in graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise UnsupportedError("quantize needs a model with one input")
    gm.add_submodule("edgeq_input", Input(input_mode))
    with graph.inserting_after(inputs[0]):
        inp = graph.call_module("edgeq_input", (inputs[0],))
    inputs[0].replace_all_uses_with(inp, delete_user_cb=lambda u: u is not inp)
    relus = []
    for n in list(graph.nodes):
        if n.op == "call_module":
            m = gm.get_submodule(n.target)
            if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)) and not isinstance(m, (QConv1d, QConv2d, QLinear)):
                _swap(gm, n.target, _q_layer(m, weights))
            elif isinstance(m, nn.ReLU):
                q = QReLU(act_bits)
                _swap(gm, n.target, q)
                relus.append(q)
        elif (n.op == "call_function" and n.target in _RELU_F) or (n.op == "call_method" and n.target == "relu"):
            name = f"edgeq_relu{len(relus)}"
            q = QReLU(act_bits)
            gm.add_submodule(name, q)
            with graph.inserting_after(n):
                new = graph.call_module(name, (n.args[0],))
            n.replace_all_uses_with(new)
            graph.erase_node(n)
            relus.append(q)
    gm.recompile()
    # calibration: the QReLUs pass a float ReLU through and record their inputs
    px = torch.as_tensor(np.array(calibration_data))  # a writable copy
    with torch.no_grad():
        for i in range(0, len(px), 256):
            gm(px[i:i + 256])
    for q in relus:
        y = torch.cat(q.observed) if q.observed else torch.zeros(1)
        pos = y[y > 0]
        clip = float(np.percentile(pos.numpy(), percentile)) if len(pos) else 1.0
        q.clip, q.observed = max(clip, 1e-6), []
    return gm.eval()
