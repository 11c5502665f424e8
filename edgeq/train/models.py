"""Model zoo: extremely low-bit nets written with `edgeq.nn`, exported by `edgeq.export` (the same
traced path as any user model) and whose eval-mode forward is *exactly* the exported integer graph.

Every model is a `QNet`: an input preprocessing step (`Pre`, an `edgeq.nn.Input`) and a chain of
`QBlock`s.  A block is
``QConv2d -> BatchNorm -> activation quantizer -> [max-pool]``; the last block has no activation
and ends in an AFFINE output stage (the scores).  Dense layers are convolutions whose kernel covers
their whole input (as in the IR).  Blocks after a binary activation pool ORs of bits; every
quantizer is monotone, so training pools before quantizing (same forward, less work).

Training (``model.train()``) runs the float forward with straight-through quantizers.  Evaluation
(``model.eval()``) runs `edgeq.export.int_forward`: the conv accumulators are computed on integer
activation levels and integer weights (exactly, in float64), batch norm + quantizer are applied as
the folded integer thresholds (ceil/floor, flipped for negative scale), and the last layer uses the
same integer ``(acc * mul + add) >> shift`` as the runtime.  So the exported blob reproduces the
eval forward bit for bit (argmax included); `QNet.float_forward` gives the unfolded float eval.

Input preprocessing (stored in the graph as pre_mode/pre_param; pixels are raw uint8 CHW):
  THRESH t : first activation is binary, +1 where pixel >= t (the network sees +-1);
  RAW      : the pixel code 0..255 itself (the network sees pixel / 255 in training);
  QUANT k  : code = (pixel * (2**k - 1) + 127) // 255 (the network sees code / (2**k - 1)).
The packer stores dense layers (e.g. the MLP's first layer, whose kernel covers the image) as
FLATTEN + 1x1 CONV, so binary weights cost 1 bit each.

Architectures (`ARCHS`, each for 28x28 and 8x8 inputs; any square size works):
  bnn-mlp     THRESH input (binary), [BNN] sign weights and activations, dense 256-256-n
  bnn-cnn     RAW input (first layer: pixel codes x +-1 weights, as in [BNN]), then binary
              weights and activations everywhere
  xnor-cnn    RAW input, [XNOR] BWN weights (alpha per channel, folded) and sign activations
  twn-cnn     RAW input, [TWN] ternary weights, 2-bit uniform activations (TERN x U8 codes)
  twn5-cnn    RAW input, 5-level {-2..2} weights (3-bit KBIT), 2-bit activations
  dorefa-w1a2 RAW input, [DoReFa] 1-bit weights, 2-bit activations (B1 x U8 codes)
  dorefa-w2a2 QUANT(4) input, [DoReFa] 2-bit weights (KBIT LUT), 2-bit activations
  dorefa-cnn  alias of dorefa-w2a2
  hwgq-cnn    RAW input, BWN weights, [HWGQ] 2-bit Lloyd-Max activations (fixed point, KBIT LUT)
  hwgq-uniform  as hwgq-cnn with the 2-bit uniform HWGQ quantizer (B1 weights x U8 codes, no LUT)
First/last layer weight precision is configurable (`first_wq`, `last_wq`, e.g. 'int8').

Reference models of the MCU benchmarks (MLPerf Tiny), `RefNet`s (input step -> body -> global
average pool -> dense), binary (`-bnn`: sign weights and activations) and ternary (`-twn`: TWN
weights, 2-bit DoReFa activations), first and last layers with the hidden quantizer as in the rest
of the zoo (`first_wq`/`last_wq` to change it); `reference_model` builds one at its benchmark input
with random weights and calibrated batch norms:
  resnet8-*            32x32x3: conv 3x3 16, residual stages 16/32/64 (stride 1/2/2; strided 1x1
                       shortcut convs in stages 2 and 3; the shortcut is added to the block's
                       real-valued pre-activation, then quantized: `ResBlock`)
  ds-cnn-*             49x10x1: conv 10x4 stride 2 (64), 4 x (3x3 depthwise + 1x1 pointwise, 64)
  mobilenet-v1-0.25-*  96x96x3: conv 3x3 stride 2 (8), 13 depthwise-separable blocks up to 256
                       filters (5 stride-2 steps in all)
(aliases: resnet8, ds-cnn, mobilenet-v1-0.25 = the binary ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedError
from .archs import ALIASES, ARCHS, ArchSpec, arch_names, get_arch  # noqa: F401 - the zoo's table
from .nn import DoReFa, HWGQ, Input, QConv2d, QLinear, Sign
from .quant import ActQuantizer, ShiftBatchNorm2d


class Pre(Input):
    """The zoo's input step: `edgeq.nn.Input` with the image shape given (C, H, W)."""

    def __init__(self, mode: str, param: int, input_shape: tuple):
        super().__init__(mode, param, input_shape)


class QBlock(nn.Module):
    """QConv2d -> BN -> act -> [maxpool k=pool].  act=None marks the last (AFFINE) block.
    (Training pools before the quantizer: identical forward, see forward.)"""

    def __init__(self, in_c, out_c, k, stride=1, pad=0, wq="sign", act: ActQuantizer | None = None,
                 pool: int = 0, bn: str = "bn", kw: int | None = None):
        super().__init__()
        self.conv = QConv2d(in_c, out_c, (k, kw or k), stride=stride, padding=pad, wq=wq)
        self.bn = ShiftBatchNorm2d(out_c) if bn == "shift" else nn.BatchNorm2d(out_c)
        self.act = act
        self.pool = pool

    def forward(self, x):
        y = self.bn(self.conv(x))
        if self.act is None:
            return y
        # every quantizer is monotone non-decreasing, so act(maxpool(y)) == maxpool(act(y)): the
        # same forward as the exported CONV(stage) -> MAXPOOL, with 1/pool**2 of the quantizer work
        # and the gradient routed to the largest pre-activation
        if self.pool:
            y = F.max_pool2d(y, self.pool)
        return self.act(y)


class ZooModel(nn.Module):
    """A zoo model: `pre` (the input step), `float_forward`, classes, arch and config.
    forward(pixels uint8 NCHW) -> scores (N, n_classes).

    train(): float forward with quantizers; eval(): the exact integer forward of the exported
    graph (int-valued float64 scores, see `edgeq.export.int_forward`).  Export traces
    `float_forward` (`traced_forward`), the same way as any user model."""

    traced_forward = "float_forward"

    def __init__(self, pre: Pre, classes: list, arch: str = "", config: dict | None = None):
        super().__init__()
        self.pre = pre
        self.classes = [str(c) for c in classes]
        self.arch = arch
        self.config = dict(config or {})

    def float_forward(self, px):
        raise NotImplementedError

    def forward(self, px):
        if self.training:
            return self.float_forward(px)
        from .export import int_forward

        return int_forward(self, px)


class QNet(ZooModel):
    """Preprocessing + a chain of blocks (see ZooModel)."""

    def __init__(self, pre: Pre, blocks: list, classes: list, arch: str = "", config: dict | None = None):
        super().__init__(pre, classes, arch, config)
        self.blocks = nn.ModuleList(blocks)

    def float_forward(self, px):
        x = self.pre(px)
        for b in self.blocks:
            x = b(x)
        return x.flatten(1)


# ---------------------------------------------------------------------------------------------
# Reference models of the MCU benchmarks (MLPerf Tiny): residual adds, depthwise-separable
# convolutions, strides, global average pooling.  Every hidden conv is conv -> BN -> quantizer.
class ConvBNAct(nn.Module):
    """QConv2d -> BatchNorm -> activation quantizer (groups=in_c: depthwise)."""

    def __init__(self, in_c, out_c, k, stride=1, pad=0, wq="sign", act: ActQuantizer | None = None,
                 groups: int = 1, bn: str = "bn"):
        super().__init__()
        self.conv = QConv2d(in_c, out_c, k, stride=stride, padding=pad, groups=groups, wq=wq)
        self.bn = ShiftBatchNorm2d(out_c) if bn == "shift" else nn.BatchNorm2d(out_c)
        self.act = act

    def forward(self, x):
        y = self.bn(self.conv(x))
        return y if self.act is None else self.act(y)


class ResBlock(nn.Module):
    """ResNet-8 stage: 3x3 conv-BN-quantizer (with the stride), 3x3 conv-BN; the shortcut (the
    input itself, or a strided 1x1 conv-BN) is added to that real-valued pre-activation, then
    quantized (the binary ResNet form of Bi-Real Net: the shortcut carries real values).  Export:
    the conv-BN outputs become int32 values (AFFINE), the sum an ADD with the quantizer's stage.
    (Adding two quantized activations instead, an exact ADD of +-1 values, measured 59 % against
    73 % for this form on digits after 15 epochs, binary, one seed.)"""

    def __init__(self, in_c, out_c, stride, wq, act, bn="bn"):
        super().__init__()
        self.c1 = ConvBNAct(in_c, out_c, 3, stride, 1, wq, act(), bn=bn)
        self.c2 = ConvBNAct(out_c, out_c, 3, 1, 1, wq, None, bn=bn)
        self.short = ConvBNAct(in_c, out_c, 1, stride, 0, wq, None, bn=bn) \
            if stride != 1 or in_c != out_c else None
        self.act = act()

    def forward(self, x):
        s = x if self.short is None else self.short(x)
        return self.act(self.c2(self.c1(x)) + s)


class Head(nn.Module):
    """Global average pool -> flatten -> QLinear (the scores, AFFINE)."""

    def __init__(self, in_c, n, wq):
        super().__init__()
        self.fc = QLinear(in_c, n, wq=wq)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class RefNet(ZooModel):
    """Preprocessing -> body (a Sequential) -> head."""

    def __init__(self, pre: Pre, body: list, head: Head, classes: list, arch: str = "",
                 config: dict | None = None):
        super().__init__(pre, classes, arch, config)
        self.body = nn.Sequential(*body)
        self.head = head

    def float_forward(self, px):
        return self.head(self.body(self.pre(px)))


def _resnet8(c, spec, fw, lw, W, n, bn):
    """MLPerf Tiny ResNet-8 (32x32x3): conv 3x3 16, three residual stages of 16/32/64 filters
    (stride 1/2/2, 1x1 strided shortcut convs in stages 2 and 3), global average pool, dense."""
    act = lambda: _act(spec.act)  # noqa: E731
    f1, f2, f3 = W(16), W(32), W(64)
    body = [ConvBNAct(c, f1, 3, 1, 1, fw, act(), bn=bn),
            ResBlock(f1, f1, 1, spec.wq, act, bn), ResBlock(f1, f2, 2, spec.wq, act, bn),
            ResBlock(f2, f3, 2, spec.wq, act, bn)]
    return body, Head(f3, n, lw)


def _ds_cnn(c, spec, fw, lw, W, n, bn):
    """MLPerf Tiny DS-CNN (49x10x1 MFCC map): conv 10x4 stride 2 (64 filters; padding (5, 1) gives
    the 'same' output size 25x5), four depthwise-separable blocks (3x3 depthwise + 1x1
    pointwise, 64 filters), global average pool, dense."""
    act = lambda: _act(spec.act)  # noqa: E731
    f = W(64)
    body = [ConvBNAct(c, f, (10, 4), 2, (5, 1), fw, act(), bn=bn)]
    for _ in range(4):
        body += [ConvBNAct(f, f, 3, 1, 1, spec.wq, act(), groups=f, bn=bn),
                 ConvBNAct(f, f, 1, 1, 0, spec.wq, act(), bn=bn)]
    return body, Head(f, n, lw)


# MobileNetV1 (pointwise filters at alpha = 1, stride of the depthwise conv)
_MOBILENET = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
              (512, 1), (512, 1), (1024, 2), (1024, 1))


def _mobilenet(c, spec, fw, lw, W, n, bn):
    """MobileNetV1 (MLPerf Tiny visual wake words: alpha 0.25 at 96x96x3): conv 3x3 stride 2 (32
    * alpha filters), 13 depthwise-separable blocks (3x3 depthwise, strided where the spatial size
    halves, + 1x1 pointwise), global average pool, dense."""
    act = lambda: _act(spec.act)  # noqa: E731
    alpha = spec.extra.get("alpha", 1.0)
    ch = lambda v: W(v * alpha)  # noqa: E731
    f = ch(32)
    body = [ConvBNAct(c, f, 3, 2, 1, fw, act(), bn=bn)]
    for out, stride in _MOBILENET:
        body += [ConvBNAct(f, f, 3, stride, 1, spec.wq, act(), groups=f, bn=bn),
                 ConvBNAct(f, ch(out), 1, 1, 0, spec.wq, act(), bn=bn)]
        f = ch(out)
    return body, Head(f, n, lw)


_REFERENCE = {"resnet8": _resnet8, "ds-cnn": _ds_cnn, "mobilenet": _mobilenet}


# ---------------------------------------------------------------------------------------------
def _act(spec: str) -> ActQuantizer:
    if spec == "sign":
        return Sign()
    if spec.startswith("dorefa"):
        return DoReFa(int(spec[6:]))
    if spec.startswith("hwgq"):
        u = spec.endswith("u")
        return HWGQ(int(spec[4:].rstrip("u")), "uniform" if u else "lloyd")
    raise UnsupportedError(f"unknown activation quantizer {spec!r}")


def build_model(arch: str, input_shape: tuple, classes: list, *, first_wq: str | None = None,
                last_wq: str | None = None, width: float = 1.0, bn: str = "bn") -> QNet:
    """Build `arch` for raw images of `input_shape` (C, H, W) and len(classes) outputs."""
    name = ALIASES.get(arch, arch)
    spec = get_arch(name)
    c, h, w = (int(v) for v in input_shape)
    n = len(classes)
    fw = first_wq or spec.first_wq or spec.wq
    lw = last_wq or spec.last_wq or spec.wq
    W = lambda v: max(8, round(v * width))
    pre = Pre(spec.pre[0], spec.pre[1], (c, h, w))
    blocks = []
    cfg = {"arch": name, "input_shape": [c, h, w], "first_wq": fw, "last_wq": lw, "width": width, "bn": bn}
    if spec.kind in _REFERENCE:
        body, head = _REFERENCE[spec.kind](c, spec, fw, lw, W, n, bn)
        return RefNet(pre, body, head, classes, arch=name, config=cfg)
    if spec.kind == "mlp":
        hid = W(256)
        blocks = [QBlock(c, hid, h, wq=fw, act=_act(spec.act), bn=bn, kw=w),
                  QBlock(hid, hid, 1, wq=spec.wq, act=_act(spec.act), bn=bn),
                  QBlock(hid, n, 1, wq=lw, act=None)]
    elif h >= 16:  # 28x28-style
        c1, c2, c3, fc = W(32), W(64), W(64), W(128)
        s = h // 2 // 2 // 2
        blocks = [QBlock(c, c1, 3, pad=1, wq=fw, act=_act(spec.act), pool=2, bn=bn),
                  QBlock(c1, c2, 3, pad=1, wq=spec.wq, act=_act(spec.act), pool=2, bn=bn),
                  QBlock(c2, c3, 3, pad=1, wq=spec.wq, act=_act(spec.act), pool=2, bn=bn),
                  QBlock(c3, fc, s, wq=spec.wq, act=_act(spec.act), bn=bn, kw=(w // 8)),
                  QBlock(fc, n, 1, wq=lw, act=None)]
    else:  # 8x8-style
        c1, c2, fc = W(32), W(64), W(128)
        blocks = [QBlock(c, c1, 3, pad=1, wq=fw, act=_act(spec.act), bn=bn),
                  QBlock(c1, c2, 3, pad=1, wq=spec.wq, act=_act(spec.act), pool=2, bn=bn),
                  QBlock(c2, fc, h // 2, wq=spec.wq, act=_act(spec.act), bn=bn, kw=w // 2),
                  QBlock(fc, n, 1, wq=lw, act=None)]
    return QNet(pre, blocks, classes, arch=name, config=cfg)


def model_from_config(cfg: dict, classes: list) -> QNet:
    return build_model(cfg["arch"], tuple(cfg["input_shape"]), classes, first_wq=cfg.get("first_wq"),
                       last_wq=cfg.get("last_wq"), width=cfg.get("width", 1.0), bn=cfg.get("bn", "bn"))


def reference_model(arch: str, classes: list | None = None, *, seed: int = 0, calib: int = 64,
                    input_shape: tuple | None = None) -> ZooModel:
    """A reference model (`archs.REFERENCE_MODELS`) at its benchmark input shape with random
    initial weights (torch seed `seed`) and batch norms calibrated on `calib` random images
    (uniform pixels, numpy seed `seed`), in eval mode: an untrained model with the architecture,
    encodings and activation statistics (about half the binary activations +1) of a trained one,
    for export, size and speed checks."""
    import numpy as np

    from .loop import recalibrate_bn

    spec = get_arch(arch)
    shape = tuple(input_shape or spec.extra.get("input_shape") or (1, 28, 28))
    if classes is None:
        classes = [str(i) for i in range(2 if spec.kind == "mobilenet" else 12 if spec.kind == "ds-cnn" else 10)]
    torch.manual_seed(seed)
    model = build_model(arch, shape, classes)
    x = np.random.default_rng(seed).integers(0, 256, (calib,) + shape, dtype=np.uint8)
    recalibrate_bn(model, x, batch=calib)
    return model.eval()
