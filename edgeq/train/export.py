"""Export any torch model built from `edgeq.nn` layers to the integer IR (`edgeq.format.graph.Graph`), exactly.

    result = edgeq.export(model, example_images, "net.eqb")   # this module is callable

Tracing: `torch.fx` symbolic trace of the model's forward (a model may name another method in
`traced_forward`, as the zoo's `QNet` does with `float_forward`), edgeq.nn layers, quantizers and
torch's own modules kept as leaves, shapes from the example batch (`ShapeProp`).  The traced graph
must be a chain `Input -> (QConv2d | QConv1d | QLinear) [-> BatchNorm] [-> MaxPool] -> quantizer
[-> MaxPool] [-> Flatten] -> ... -> (QConv2d | QLinear) [-> BatchNorm]` (the scores); everything
else raises `UnsupportedError` naming the node and why (residual add, torch.cat, ReLU, average
pooling, grouped convolution, branches, ...): nothing is ever dropped silently.

Folding (per conv/linear layer, eval mode):
  real pre-activation  z_n = acc_n * s_in * s_w[n] + bias_n  (acc = integer accumulator of the
                                                           layer: sum of integer weight values times
                                                           integer input levels)
  batch norm(s)        y_n = g_n * z_n + h_n              (`quant.bn_affine_terms`)
                         = a_n * acc_n + b_n
  quantizer            code = #{i : y >= t_i}             (t = act.thresholds; sign: t = [0])
  => integer thresholds on acc: a_n > 0: acc >= ceil((t_i - b_n) / a_n)
                                a_n < 0: acc <= floor((t_i - b_n) / a_n)  (flip = 1)
                                a_n = 0: constant (thr = INT32_MIN or INT32_MAX, flip = 0)
  uniform quantizer (levels = codes 0..L, equally spaced thresholds, >= REQUANT_MIN_BITS bits,
  integer layer): REQUANT code = clamp((acc * mul + add) >> shift, 0, L) with mul, add the
                       slope a_n / step and offset (b_n - t_0) / step + 1 rounded at the largest
                       shift keeping them in int32 (`_requant`): one code off only within
                       step * (|acc|/2 + 1/2) / 2**shift of a threshold, which the proof allows
  last layer (AFFINE): y = (acc * mul + add) >> shift, mul = round(a_n * 2**P / max|a|),
                       add = round(b_n * 2**P / max|a|) with P chosen so |acc*mul + add| < 2**30.
  float layers ('float' quantizer -> F32): acc is the float32 sum of the runtimes (fixed tap
  order, one rounding per operation); thresholds (t_i - b_n) / a_n and AFFINE mul/add
  a_n * 2**P / max|a|, b_n * 2**P / max|a| are float32, scores floor(acc * mul + add).
  Max-pooling commutes with every (monotone) quantizer, so a pool between batch norm and the
  quantizer becomes CONV(stage) -> MAXPOOL; a pool before a batch norm needs its scales >= 0.
  A linear layer after a flatten is a convolution whose kernel covers its input (weights
  reordered from torch's CHW flatten order).

Weight encodings: integer values +-1 -> B1; -1/0/1 -> TERN (two bit-planes) or TERN_SPARSE
(skip-zero stream), by `ternary`: "auto" (default) takes TERN_SPARSE only where it is the faster
form on the Cortex-M4 measured (docs/boards.md): U8-code input of at most 3 channels (gray/RGB first
layers) when the stream is smaller; "dense" always TERN; "sparse" always TERN_SPARSE; "smallest"
whichever is smaller (pruned zeros become skip-zero data: the smallest blob); int8 -> I8,
int16 -> I16; k-bit codes -> KBIT with lut[code][a] = table[code] * level_in[a].  When the
input levels are not the codes themselves (HWGQ Lloyd-Max fixed-point levels), every weight goes
through a KBIT LUT so products stay exact.

`int_forward` is the same integer computation in torch; `QNet.eval()` uses it.  `edgeq.export`
proves each blob on the example batch: (1) the C host runtime's scores equal `int_forward`'s bit
for bit; (2) the model's own eval forward, run in float64 layer by layer (each quantizer's input
taken from the integer graph), gives the integer graph's activation at every quantizer except
values within rounding of a threshold (for a REQUANT stage: within its bound above), and scores within the last stage's rounding bound (so the
same class except for exact score ties).  Anything else raises `ExportMismatchError`.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import EdgeqError, ExportMismatchError, ShapeError, UnsupportedError
from ..format.graph import Conv, Graph, MaxPool, conv_out_dim, infer_shapes
from .nn import Input
from .quant import ActQuantizer, QConv1d, QConv2d, QLinear, ShiftBatchNorm2d, bn_affine_terms

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


@dataclass
class FoldedBlock:
    values: np.ndarray  # int64 (N, C, kh, kw) integer weight values (float32 for F32)
    w_enc: str
    codes: np.ndarray | None  # KBIT codes (N, C, kh, kw)
    lut: np.ndarray | None
    wbits: int
    stride: int
    pad: int
    out: str
    thr: np.ndarray | None = None
    flip: np.ndarray | None = None
    out_bits: int = 0
    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    shift: int = 0
    in_levels: np.ndarray | None = None  # integer value of each input code
    out_levels: np.ndarray | None = None  # integer value of each output code (SIGN: [-1, 1])
    out_scale: float = 1.0  # real value of an output level (quantizer scale)
    thresholds: np.ndarray | None = None  # the quantizer's real thresholds (for the export check)
    score_unit: float = 1.0  # AFFINE: real value of one score unit
    rq_step: float = 0.0  # REQUANT: the quantizer's threshold spacing (for the export check)
    name: str = ""


@dataclass
class FoldedPool:
    k: int
    stride: int
    name: str = ""


@dataclass
class Folded:
    """A traced, folded model: the input step, ops in order, and which traced node each op's
    output equals (for the export check)."""

    pre: Input
    input_shape: tuple  # the graph's input (C, H, W)
    image_shape: tuple  # one raw sample as the model takes it
    ops: list  # FoldedBlock | FoldedPool
    checks: dict = field(default_factory=dict)  # node name -> (op index, FoldedBlock)
    out_node: str = ""

    @property
    def blocks(self) -> list:
        return [op for op in self.ops if isinstance(op, FoldedBlock)]


# =============================================================================================
# Tracing
# =============================================================================================
_LEAVES = (Input, QConv1d, QConv2d, QLinear, ActQuantizer, ShiftBatchNorm2d)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, qualname)


class _Traced(nn.Module):
    """Wraps a model whose exported forward is another method (`traced_forward`)."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.m = model
        self.method = method

    def forward(self, x):
        return getattr(self.m, self.method)(x)


def trace(model: nn.Module) -> tuple:
    """(GraphModule, prefix of module paths inside it) of `model`'s exported forward."""
    method = getattr(model, "traced_forward", None)
    root, prefix = (_Traced(model, method), "m.") if method else (model, "")
    try:
        graph = _Tracer().trace(root)
    except Exception as e:  # noqa: BLE001 - any tracing failure is reported the same way
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UnsupportedError(
            f"{type(model).__name__}.forward cannot be traced by torch.fx ({msg}); export needs a "
            "forward without Python control flow on tensor values") from None
    return fx.GraphModule(root, graph), prefix


def _label(node: fx.Node, prefix: str) -> str:
    """How a node is named in messages: its module path, or its name and the module it is in."""
    if node.op == "call_module":
        return str(node.target)[len(prefix):] if str(node.target).startswith(prefix) else str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    where = ""
    if stack:
        path = list(stack.values())[-1][0]
        path = path[len(prefix):] if path.startswith(prefix) else path
        if path and path != prefix.rstrip("."):
            where = f" in {path}.forward"
    return f"{node.name}{where}"


def _lname(node: fx.Node, prefix: str) -> str:
    """A layer's name in the graph: its module path, or the enclosing module's path and the
    function's node name ('blocks.0.max_pool2d')."""
    if node.op == "call_module":
        return _label(node, prefix)
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack.values())[-1][0] if stack else ""
    path = path[len(prefix):] if path.startswith(prefix) else ("" if path == prefix.rstrip(".") else path)
    return f"{path}.{node.name}" if path else node.name


def _fname(target) -> str:
    return getattr(target, "__name__", str(target))


_RELU = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
         nn.Hardswish)
_ACTS = (nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Softmax, nn.LogSoftmax, nn.Softplus,
         nn.Softsign, nn.Tanhshrink, nn.Threshold)
_AVG = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.LPPool1d, nn.LPPool2d)
_GAP = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)  # global ones only
_PASS = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_MODULE_OK = (Input, QConv1d, QConv2d, QLinear, ActQuantizer, nn.MaxPool2d, nn.Flatten) + _PASS + _BN + _GAP
_F_ADD = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
_F_CAT = {torch.cat, torch.stack, torch.concat, torch.hstack, torch.vstack}
_F_RELU = {F.relu, torch.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.elu, F.hardswish, F.relu_}
_F_GAP = {F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, torch.mean}
_F_OK = {F.max_pool2d, torch.flatten, getattr, operator.getitem, F.dropout} | _F_GAP
_M_OK = {"flatten", "view", "reshape", "size", "contiguous", "mean"}
_M_WHY = {"add": "residual add", "add_": "residual add", "sub": "subtraction", "relu": "ReLU",
          "relu_": "ReLU", "sum": "a sum"}
WHY_RELU = ("ReLU is unbounded: the IR has no integer stage for it; use an activation quantizer "
            "(edgeq.nn.HWGQ is a quantized ReLU, DoReFa a clipped one)")
WHY_ADD = ("a residual add / skip connection: the IR is a chain of layers and has no ADD op yet "
           "(issue 14, phase 2)")
WHY_AVG = ("average pooling: the IR has no average-pool op yet (use MaxPool2d, or issue 14, phase 2); "
           "only a global average pool right before a QLinear / 1x1 QConv folds into its weights")


def _refusal(node: fx.Node, gm: fx.GraphModule) -> str | None:
    """Why `node` cannot be exported, or None."""
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        t = type(m).__name__
        if isinstance(m, (QConv1d, QConv2d)):
            if m.groups != 1:
                return (f"{t}(groups={m.groups}): grouped/depthwise convolution has no IR op yet "
                        "(issue 14, phase 2)")
            if any(d != 1 for d in m.dilation):
                return f"{t}(dilation={m.dilation}): dilated convolution has no IR op"
            if m.padding_mode != "zeros":
                return f"{t}(padding_mode={m.padding_mode!r}): only zero padding is exportable"
            return None
        if isinstance(m, _MODULE_OK):
            return None
        if isinstance(m, _RELU):
            return f"{t}: {WHY_RELU}"
        if isinstance(m, _AVG):
            return f"{t}: {WHY_AVG}"
        if isinstance(m, _ACTS):
            return (f"{t}: an activation without an integer form; use an edgeq.nn quantizer "
                    "(Sign, DoReFa, HWGQ)")
        if isinstance(m, nn.MaxPool1d):
            return ("MaxPool1d: the IR's max-pool window is square (k x k), a (C, 1, L) signal would "
                    "need a (1 x k) window")
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            return (f"a plain torch {t} has no quantizer: use edgeq.nn.Q{t}(..., wq='int8' or 'float'), "
                    "or edgeq.quantize for a float model")
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return f"{t}: only BatchNorm1d/BatchNorm2d fold into the integer stages"
        return (f"module type {t} has no IR mapping (supported: edgeq.nn Input/QConv1d/QConv2d/QLinear/"
                "Sign/DoReFa/HWGQ/QReLU, BatchNorm1d/2d, MaxPool2d, Flatten, Dropout, Identity)")
    if node.op == "call_function":
        f = node.target
        if f in _F_OK:
            return None
        if f in _F_ADD:
            return WHY_ADD if f in (operator.add, operator.iadd, torch.add) else \
                f"{_fname(f)}: arithmetic between tensors has no IR op"
        if f in _F_CAT:
            return f"{_fname(f)}: concatenation has no IR op yet (issue 14, phase 2)"
        if f in _F_RELU:
            return f"{_fname(f)}: {WHY_RELU}"
        return f"function {_fname(f)} has no IR mapping"
    if node.op == "call_method":
        if node.target in _M_OK:
            return None
        why = _M_WHY.get(node.target)
        if why == "residual add":
            return WHY_ADD
        if why == "ReLU":
            return f"Tensor.{node.target}: {WHY_RELU}"
        return f"Tensor.{node.target}() has no IR mapping"
    return None


# =============================================================================================
# Walking the traced graph
# =============================================================================================
@dataclass
class _T:
    """What a traced tensor is in the IR: the raw input, a quantized activation, or a pending
    accumulator (conv/linear output, possibly batch-normed and pooled, stage not yet chosen)."""

    kind: str  # 'raw' | 'act' | 'acc'
    shape: tuple  # (C, H, W) in the IR
    flat: bool = False  # torch sees it flattened (CHW order)
    enc: str = ""
    levels: np.ndarray | None = None
    scale: float = 1.0
    blk: FoldedBlock | None = None
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    pools: list = field(default_factory=list)
    f32: bool = False
    gap: bool = False  # globally average-pooled: torch sees (N, C[, 1, 1]), the IR still (C, H, W)


def _meta_shape(node) -> tuple | None:
    tm = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(int(v) for v in tm.shape) if tm is not None and hasattr(tm, "shape") else None


def _src(node: fx.Node):
    """A node's (first) input, passed by position or by keyword."""
    return node.args[0] if node.args else next(iter(node.kwargs.values()), None)


def _pair(v) -> tuple:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(x) for x in v)


class _Walker:
    def __init__(self, gm: fx.GraphModule, prefix: str):
        self.gm, self.prefix = gm, prefix
        self.ops: list = []
        self.checks: dict = {}
        self.pre: Input | None = None
        self.env: dict = {}

    def refuse(self, node, why: str):
        raise UnsupportedError(f"node '{_label(node, self.prefix)}': {why}")

    def prepass(self):
        """The first construct the IR cannot express, named before shapes are propagated."""
        for n in self.gm.graph.nodes:
            why = _refusal(n, self.gm)
            if why:
                self.refuse(n, why)
            if n.op == "placeholder":
                for u in n.users:
                    if not (u.op == "call_module" and isinstance(self.gm.get_submodule(u.target), Input)):
                        self.refuse(u, "the model's input must first go through edgeq.nn.Input (the blob's "
                                       "preprocessing: RAW, THRESH or QUANT)")

    # -------------------------------------------------------------------------------------
    def run(self) -> Folded:
        nodes = list(self.gm.graph.nodes)
        inputs = [n for n in nodes if n.op == "placeholder"]
        if len(inputs) != 1:
            raise UnsupportedError(f"the model's forward takes {len(inputs)} inputs; export needs one")
        for n in nodes:
            if n.op in ("placeholder", "get_attr", "output"):
                continue
            users = [u for u in n.users if not self._shape_only(u)]
            if len(users) > 1 and _meta_shape(n) is not None:
                names = ", ".join(f"'{_label(u, self.prefix)}'" for u in users)
                self.refuse(n, f"its value feeds {len(users)} nodes ({names}): the IR is a chain of "
                               "layers, a branch or skip connection has no IR op yet (issue 14, phase 2)")
        shape = _meta_shape(inputs[0])
        if shape is None or not 2 <= len(shape) <= 4:
            raise ShapeError(f"the example input must be (N, C, H, W), (N, C, L) or (N, F); got {shape}")
        raw = shape[1:] + (1,) * (3 - len(shape[1:]))
        if len(shape) == 3:
            raw = (shape[1], 1, shape[2])
        self.image_shape = shape[1:]
        self.env[inputs[0]] = _T("raw", raw)
        out = None
        for n in nodes:
            if n.op == "placeholder" or n.op == "get_attr":
                continue
            if n.op == "output":
                out = self.output(n)
                break
            self.env[n] = self.node(n)
        if self.pre is None:
            raise UnsupportedError("the model never applies edgeq.nn.Input to its input")
        return Folded(self.pre, raw, tuple(self.image_shape), self.ops, self.checks, out)

    @staticmethod
    def _shape_only(u: fx.Node) -> bool:
        return (u.op == "call_method" and u.target == "size") or \
            (u.op == "call_function" and u.target is getattr)

    def arg(self, node) -> _T:
        src = _src(node)
        if not isinstance(src, fx.Node) or self.env.get(src) is None:
            self.refuse(node, "its input is not a tensor the exporter tracks")
        return self.env[src]

    def node(self, n: fx.Node):
        if self._shape_only(n) or (n.op == "call_function" and n.target is operator.getitem):
            if n.op == "call_function" and n.target is operator.getitem and _meta_shape(n) is not None:
                self.refuse(n, "indexing a tensor has no IR mapping")
            return None
        t = self.arg(n)
        if n.op == "call_module":
            m = self.gm.get_submodule(n.target)
            if isinstance(m, Input):
                return self.input(n, m, t)
            if isinstance(m, (QConv1d, QConv2d, QLinear)):
                return self.conv(n, m, t)
            if isinstance(m, _BN):
                return self.bn(n, m, t)
            if isinstance(m, ActQuantizer):
                return self.stage(n, m, t)
            if isinstance(m, nn.MaxPool2d):
                return self.pool(n, t, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
            if isinstance(m, nn.Flatten):
                return self.flatten(n, t)
            if isinstance(m, _GAP):
                return self.gap(n, t, not_global=isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)) and (
                    any(_pair(m.padding) if not isinstance(m, nn.AvgPool1d) else m.padding) or m.ceil_mode
                    or tuple(_pair(m.kernel_size) if isinstance(m, nn.AvgPool2d) else m.kernel_size) !=
                    tuple(_meta_shape(_src(n))[2:])))
            return t  # _PASS
        if n.op == "call_function":
            if n.target is F.max_pool2d:
                names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
                kw = dict(zip(names, n.args[1:]))
                kw.update(n.kwargs)
                if kw.get("return_indices"):
                    self.refuse(n, "max_pool2d(return_indices=True) has no IR mapping")
                k = kw["kernel_size"]
                return self.pool(n, t, k, kw.get("stride") or k, kw.get("padding", 0), kw.get("dilation", 1),
                                 kw.get("ceil_mode", False))
            if n.target is torch.flatten:
                return self.flatten(n, t)
            if n.target in _F_GAP:
                return self.gap(n, t, not_global=n.target in (F.avg_pool1d, F.avg_pool2d) and (
                    len(n.args) > 2 or any(k != "kernel_size" for k in n.kwargs) or
                    tuple(_pair(n.args[1] if len(n.args) > 1 else n.kwargs["kernel_size"]))[:len(_meta_shape(n)) - 2]
                    != tuple(_meta_shape(_src(n))[2:])))
            return t  # dropout (eval: identity)
        if n.target == "contiguous":
            return t
        if n.target == "mean":
            return self.gap(n, t)
        return self.flatten(n, t)  # flatten / view / reshape

    # -------------------------------------------------------------------------------------
    def input(self, n, m: Input, t: _T) -> _T:
        if t.kind != "raw" or self.pre is not None:
            self.refuse(n, "edgeq.nn.Input must be applied once, to the model's input")
        self.pre = m
        return _T("act", t.shape, enc=m.enc, levels=np.asarray(m.levels_int, np.int64), scale=float(m.scale))

    def conv(self, n, m, t: _T) -> _T:
        if t.kind == "raw":
            self.refuse(n, "the model's input must first go through edgeq.nn.Input (the blob's "
                           "preprocessing: RAW, THRESH or QUANT)")
        if t.kind == "acc":
            self.refuse(n, f"its input is the pre-activation of '{t.blk.name}' (no activation quantizer "
                           "between them): every hidden layer must end in an edgeq.nn quantizer")
        c, h, w = t.shape
        in_meta = _meta_shape(_src(n))
        wt = m.weight.detach()
        if t.gap:  # mean over positions, then the layer == the layer's weights / (H*W) at every position
            if isinstance(m, QLinear) and (in_meta is None or len(in_meta) != 2):
                self.refuse(n, f"QLinear on a tensor of shape {in_meta}: flatten it to (N, features) first")
            pads = (0,) if isinstance(m, QLinear) or isinstance(m.padding, str) else tuple(m.padding)
            if not isinstance(m, QLinear) and (any(k != 1 for k in m.kernel_size) or any(pads)):
                self.refuse(n, "after a global average pool only a QLinear or a 1x1 QConv without padding "
                               "folds the average into its weights")
            w4 = wt.reshape(wt.shape[0], -1, 1, 1)
            if w4.shape[1] != c:
                self.refuse(n, f"weight {tuple(wt.shape)} does not take {c} input channels")
            kh, kw, stride, pad = h, w, 1, 0
        elif isinstance(m, QLinear):
            if in_meta is None or len(in_meta) != 2:
                self.refuse(n, f"QLinear on a tensor of shape {in_meta}: flatten it to (N, features) first")
            if m.in_features != c * h * w:
                self.refuse(n, f"in_features {m.in_features} != {c * h * w} inputs")
            w4, (kh, kw), stride, pad = wt.reshape(m.out_features, c, h, w), (h, w), 1, 0
        else:
            if t.flat:
                self.refuse(n, "a convolution on a flattened tensor")
            one_d = isinstance(m, QConv1d)
            if one_d != (in_meta is not None and len(in_meta) == 3):
                self.refuse(n, f"{type(m).__name__} on a tensor of shape {in_meta}")
            ks = (1, m.kernel_size[0]) if one_d else tuple(m.kernel_size)
            st = (m.stride[0],) * 2 if one_d else tuple(m.stride)
            if st[0] != st[1]:
                self.refuse(n, f"stride {st}: the IR has one stride for both axes (non-square stride "
                               "is issue 14, phase 2)")
            if isinstance(m.padding, str):
                if m.padding == "valid":
                    pads = (0,) * len(m.kernel_size)
                else:  # 'same' (stride 1): total k - 1, split left = total // 2
                    if any((k - 1) % 2 for k in m.kernel_size):
                        self.refuse(n, f"padding='same' with the even kernel {tuple(m.kernel_size)} pads "
                                       "unequally on the two sides; the IR pads symmetrically")
                    pads = tuple((k - 1) // 2 for k in m.kernel_size)
            else:
                pads = tuple(m.padding)
            if one_d and pads[0]:
                self.refuse(n, f"QConv1d(padding={pads[0]}): the IR pads both axes alike, so a (C, 1, L) "
                               "signal can only take padding 0 (1-D padding is issue 14, phase 2)")
            if len(set(pads)) != 1:
                self.refuse(n, f"padding {pads}: the IR has one padding for both axes")
            pad = pads[0]
            if pad >= max(ks):
                self.refuse(n, f"padding {pad} >= kernel {ks}: the IR needs padding < kernel")
            kh, kw = ks
            stride = st[0]
            w4 = wt.reshape(m.out_channels, c, kh, kw) if wt.shape[1] == c else None
            if w4 is None:
                self.refuse(n, f"weight {tuple(wt.shape)} does not take {c} input channels")
        try:
            with torch.no_grad():
                iw = m.wq.integer(w4)
        except (UnsupportedError, NotImplementedError, AttributeError) as e:
            self.refuse(n, f"its weight quantizer {type(m.wq).__name__} has no integer form ({e})")
        if t.gap and h * w > 1:
            tile = lambda v: None if v is None else np.ascontiguousarray(np.broadcast_to(v, v.shape[:2] + (h, w)))
            iw = dataclasses.replace(iw, values=tile(np.asarray(iw.values)), codes=tile(iw.codes),
                                     scale=np.asarray(iw.scale, np.float64) / (h * w))
        ident = t.enc == "U8" and np.array_equal(t.levels, np.arange(len(t.levels)))
        try:
            w_enc, codes, lut, wbits = _encode_weights(iw, t.enc, t.levels, ident)
        except UnsupportedError as e:
            self.refuse(n, str(e))
        oh, ow = conv_out_dim(h, kh, stride, pad), conv_out_dim(w, kw, stride, pad)
        if oh < 1 or ow < 1:
            self.refuse(n, f"kernel {kh}x{kw} larger than its input {h}x{w}")
        nout = int(w4.shape[0])
        blk = FoldedBlock(np.asarray(iw.values), w_enc, codes, lut, wbits, stride, pad, "", in_levels=t.levels,
                          name=_lname(n, self.prefix))
        b = np.zeros(nout) if m.bias is None else m.bias.detach().cpu().double().numpy()
        return _T("acc", (nout, oh, ow), blk=blk, a=t.scale * np.asarray(iw.scale, np.float64), b=b,
                  f32=w_enc == "F32")

    def bn(self, n, m, t: _T) -> _T:
        self.no_gap(n, t)
        if t.kind != "acc":
            self.refuse(n, "batch norm must follow a QConv/QLinear layer (it folds into that layer's "
                           "integer stage); on a quantized activation it has no IR op")
        if not m.track_running_stats or m.running_mean is None:
            self.refuse(n, "batch norm without running statistics uses batch statistics in eval")
        if m.num_features != t.shape[0]:
            self.refuse(n, f"{m.num_features} features on {t.shape[0]} channels")
        g, h = bn_affine_terms(m)
        if t.pools and np.any(g < 0):
            self.refuse(n, "max-pool before a batch norm with negative scales does not commute with it; "
                           "pool after the batch norm")
        return _T("acc", t.shape, blk=t.blk, a=g * t.a, b=g * t.b + h, pools=list(t.pools), f32=t.f32)

    def stage(self, n, m: ActQuantizer, t: _T) -> _T:
        self.no_gap(n, t)
        if t.kind != "acc":
            self.refuse(n, "an activation quantizer must follow a QConv/QLinear layer (and its batch "
                           "norm); on the input or on a quantized activation it has no IR op")
        blk = t.blk
        try:
            th, lv, scale, enc, bits = m.thresholds, m.levels_int, float(m.scale), m.enc, int(m.bits)
        except (UnsupportedError, NotImplementedError, AttributeError) as e:
            self.refuse(n, f"{type(m).__name__} does not declare its integer form (thresholds, levels_int, "
                           f"scale, enc, bits): {e}")
        th, lv = np.asarray(th, np.float64), np.asarray(lv, np.int64)
        ok = enc in ("B1", "U8") and 1 <= bits <= 8 and len(lv) == 1 << bits and len(th) == len(lv) - 1
        if not ok or np.any(np.diff(th) <= 0) or np.any(np.diff(lv) <= 0) or (enc == "B1" and list(lv) != [-1, 1]):
            self.refuse(n, f"{type(m).__name__}: enc {enc!r}, {bits} bits, {len(lv)} increasing levels and "
                           f"{len(th)} increasing thresholds do not describe a B1/U8 quantizer")
        _fold_stage(blk, t.a, t.b, th, lv, enc, bits, t.f32)
        blk.out_levels, blk.out_scale, blk.thresholds = lv, scale, th
        self.ops.append(blk)
        self.ops.extend(t.pools)
        self.checks[n.name] = (len(self.ops) - 1, blk)
        return _T("act", t.shape, enc=enc, levels=lv, scale=scale)

    def pool(self, n, t: _T, k, stride, padding, dilation, ceil_mode) -> _T:
        self.no_gap(n, t)
        k, s = _pair(k), _pair(stride if stride else k)
        if k[0] != k[1] or s[0] != s[1]:
            self.refuse(n, f"max-pool window {k} / stride {s}: the IR's window and stride are square")
        if any(_pair(padding)) or any(d != 1 for d in _pair(dilation)) or ceil_mode:
            self.refuse(n, "max-pool with padding, dilation or ceil_mode has no IR mapping")
        if t.kind == "raw":
            self.refuse(n, "pool after edgeq.nn.Input, not before")
        if t.flat:
            self.refuse(n, "max-pool of a flattened tensor")
        c, h, w = t.shape
        if k[0] > min(h, w):
            self.refuse(n, f"pool {k[0]} larger than its input {h}x{w}")
        p = FoldedPool(k[0], s[0], _lname(n, self.prefix))
        shape = (c, (h - k[0]) // s[0] + 1, (w - k[0]) // s[0] + 1)
        if t.kind == "act":
            self.ops.append(p)
            return _T("act", shape, enc=t.enc, levels=t.levels, scale=t.scale)
        return _T("acc", shape, blk=t.blk, a=t.a, b=t.b, pools=t.pools + [p], f32=t.f32)

    def no_gap(self, n, t: _T):
        if t.gap:
            self.refuse(n, "a global average pool is exportable only right before a QLinear / 1x1 QConv "
                           "(the average folds into its weights)")

    def gap(self, n, t: _T, not_global: bool = False) -> _T:
        """A global average pool (adaptive to 1, a kernel covering the input, or a spatial mean):
        exportable right before a QLinear / 1x1 QConv, whose weights it is folded into."""
        ins, outs = _meta_shape(_src(n)), _meta_shape(n)
        if not_global:
            self.refuse(n, WHY_AVG)
        if ins is None or outs is None or len(ins) < 3 or outs[:2] != ins[:2] or any(v != 1 for v in outs[2:]):
            self.refuse(n, f"{WHY_AVG} ({ins} -> {outs} is not a global average pool)")
        if n.op != "call_module" and n.target in (torch.mean, "mean"):
            dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
            dims = {int(d) % len(ins) for d in ((dims,) if isinstance(dims, int) else (dims or ()))}
            if dims != set(range(2, len(ins))):
                self.refuse(n, f"a mean over dims {sorted(dims)} is not a global average pool")
        if t.kind != "act" or t.flat:
            self.refuse(n, "global average pooling is exportable only on a quantized activation, right "
                           "before a QLinear / 1x1 QConv")
        return _T("act", t.shape, enc=t.enc, levels=t.levels, scale=t.scale, gap=True)

    def flatten(self, n, t: _T) -> _T:
        ins, outs = _meta_shape(_src(n)), _meta_shape(n)
        if ins is None or outs is None:
            self.refuse(n, "a reshape the exporter cannot follow")
        if outs == ins:
            return t
        if len(outs) != 2 or outs[0] != ins[0] or outs[1] != int(np.prod(ins[1:])):
            self.refuse(n, f"reshape {ins} -> {outs} is not a flatten to (N, features)")
        if t.kind == "raw":
            self.refuse(n, "flatten after edgeq.nn.Input, not before")
        if t.gap:
            return t
        c, h, w = t.shape
        if h * w == 1:
            return t
        if t.kind == "acc":
            self.refuse(n, "flattening a pre-activation with spatial size > 1: put the activation "
                           "quantizer before the flatten")
        return _T("act", t.shape, flat=True, enc=t.enc, levels=t.levels, scale=t.scale)

    def output(self, n) -> str:
        src = n.args[0]
        if not isinstance(src, fx.Node):
            self.refuse(n, "the model must return one tensor (the scores)")
        t = self.env.get(src)
        if t is None or t.kind != "acc":
            self.refuse(src, "the model's output must be a QConv/QLinear layer's value (with its batch "
                             "norm), without an activation quantizer: the scores")
        if t.pools:
            self.refuse(src, "max-pool of the scores has no IR mapping")
        if t.shape[1] * t.shape[2] != 1:
            self.refuse(src, f"the scores must be (N, classes); the output is {t.shape[0]} channels of "
                             f"{t.shape[1]}x{t.shape[2]}")
        self.ops.append(_affine(t))
        return src.name


def _affine(t: _T) -> FoldedBlock:
    """The last layer's AFFINE stage (see module docstring)."""
    fb, a, b = t.blk, t.a, t.b
    fb.out = "AFFINE"
    amax = float(np.abs(a).max()) or 1.0
    lv_max = int(np.abs(fb.in_levels).max())
    bound = float(np.abs(fb.values).reshape(len(a), -1).sum(1).max()) * lv_max
    bmax = float(np.abs(b).max()) / amax
    p = 20
    while p > 0 and (bound + bmax + 1) * 2**p >= 2**30:
        p -= 1
    if fb.w_enc == "F32":  # scores floor(acc * mul + add), float32 mul/add, no shift
        q = min(p, 12)
        fb.mul = (a / amax * 2**q).astype(np.float32)
        fb.add = (b / amax * 2**q).astype(np.float32)
        fb.score_unit = amax / 2**q
        return fb
    fb.mul = np.round(a / amax * 2**p).astype(np.int64)
    fb.add = np.round(b / amax * 2**p).astype(np.int64)
    fb.shift = max(0, p - 12)
    fb.score_unit = amax * 2**fb.shift / 2**p
    return fb


# A uniform k-bit activation quantizer (levels = codes 0..2**k - 1, equally spaced thresholds) of at
# least this many bits gets a REQUANT stage (8 bytes per channel) instead of MULTI thresholds
# (4 * (2**k - 1) bytes per channel: 60 at 4 bits, 1,020 at 8). Below it MULTI stays (exact, and
# at 2 bits only 12 bytes): the zoo's 2-bit blobs are unchanged.
REQUANT_MIN_BITS = 4


def _uniform_step(th: np.ndarray, lv: np.ndarray) -> float | None:
    """The threshold spacing of a uniform quantizer (levels = codes, equally spaced thresholds),
    or None."""
    if len(th) < 2 or not np.array_equal(lv, np.arange(len(lv))):
        return None
    step = (th[-1] - th[0]) / (len(th) - 1)
    ok = step > 0 and np.all(np.abs(np.diff(th) - step) <= 1e-9 * max(step, float(np.abs(th).max())))
    return float(step) if ok else None


def acc_bound(blk) -> float | None:
    """max |acc| over every possible input of a conv block (sum |w| * max |level|), or None."""
    v, lv = getattr(blk, "values", None), getattr(blk, "in_levels", None)
    if v is None or lv is None or not len(lv):
        return None
    return float(np.abs(np.asarray(v, np.float64)).reshape(len(v), -1).sum(1).max()) * float(np.abs(lv).max())


def _requant(a: np.ndarray, b: np.ndarray, th: np.ndarray, step: float, bits: int, bound: float | None):
    """REQUANT (mul, add, shift) for code = #{i : a*acc + b >= th_i} with equally spaced th (spacing
    `step`), or None when the slopes do not fit int32.

    code = clamp(floor(alpha*acc + beta), 0, L), alpha = a/step, beta = (b - th_0)/step + 1, L =
    2**bits - 1; mul = round(alpha * 2**s), add = round(beta * 2**s) with the largest s <= 31
    keeping both in int32.  Then (acc*mul + add) / 2**s = alpha*acc + beta + e, |e| <= (|acc|/2 +
    1/2) / 2**s, so the code is the quantizer's except where a*acc + b is within
    step * (|acc|/2 + 1/2) / 2**s of a threshold (the export proof's tolerance, `_stage_tol`).
    A channel whose code cannot change over |acc| <= bound (or a = 0) is a constant, exactly."""
    top = (1 << bits) - 1
    alpha = a / step
    beta = (b - th[0]) / step + 1.0
    const = a == 0
    if bound is not None:
        span = np.abs(alpha) * bound
        const |= (beta + span < 1) | (beta - span >= top)
    code = (b[:, None] >= th[None, :]).sum(1)  # a = 0: the exact count
    code = np.where(a == 0, code, np.where(beta >= top, top, 0))
    alpha = np.where(const, 0.0, alpha)
    beta = np.where(const, code + 0.5, beta)
    lim = 2.0**31 - 2
    amax, bmax = float(np.abs(alpha).max()), float(np.abs(beta).max())
    if amax > lim or bmax > lim:
        return None
    s = 31
    while s > 0 and (amax * 2.0**s > lim or bmax * 2.0**s > lim):
        s -= 1
    return np.round(alpha * 2.0**s).astype(np.int64), np.round(beta * 2.0**s).astype(np.int64), s


def _fold_stage(blk, a, b, th, lv, enc: str, bits: int, f32: bool = False) -> None:
    """Set blk's output stage for quantizer(y = a*acc + b) with thresholds th and levels lv: SIGN
    (B1), REQUANT (uniform levels, >= REQUANT_MIN_BITS bits, integer layer) or MULTI."""
    step = _uniform_step(th, lv) if enc == "U8" and bits >= REQUANT_MIN_BITS and not f32 else None
    rq = _requant(np.asarray(a, np.float64), np.asarray(b, np.float64), th, step, bits,
                  acc_bound(blk)) if step else None
    if rq is not None:
        blk.out, blk.out_bits = "REQUANT", bits
        blk.mul, blk.add, blk.shift = rq
        blk.thr, blk.flip, blk.rq_step = None, None, step
        return
    thr, flip = _thresholds(a, b, th, f32=f32)
    blk.flip = flip
    if enc == "B1":
        blk.out, blk.thr = "SIGN", thr[:, 0]
    else:
        blk.out, blk.thr, blk.out_bits = "MULTI", thr, bits


def _stage_tol(blk, accmax: float) -> float:
    """How far (in the quantizer's input units) from a threshold a REQUANT stage may move a value,
    for accumulators up to accmax (see `_requant`); 0 for exact stages."""
    if getattr(blk, "out", "") != "REQUANT":
        return 0.0
    return blk.rq_step * (0.5 * accmax + 0.5) / 2.0**blk.shift


def apply_stage(blk, acc: torch.Tensor) -> torch.Tensor:
    """The output stage of blk on its int64 (or F32 float) accumulator (N, C, H, W): the
    activation's integer levels (SIGN/MULTI/REQUANT) or the AFFINE scores, float64."""
    dev = acc.device
    f32 = blk.w_enc == "F32"
    if blk.out == "AFFINE":
        mul = torch.as_tensor(blk.mul, device=dev).view(1, -1, 1, 1)
        add = torch.as_tensor(blk.add, device=dev).view(1, -1, 1, 1)
        if f32:  # floor(acc * mul + add), each operation rounded to float32
            y = torch.floor((acc * mul.float() + add.float()).to(torch.float64))
        else:
            y = torch.div(acc * mul + add, 2**blk.shift, rounding_mode="floor")
        return y.clamp(I32_MIN, I32_MAX).to(torch.float64)
    olv = torch.as_tensor(blk.out_levels, dtype=torch.float64, device=dev)
    if blk.out == "REQUANT":  # clamp((acc * mul + add) >> shift, 0, 2**bits - 1), 64-bit
        mul = torch.as_tensor(np.asarray(blk.mul, np.int64), device=dev).view(1, -1, 1, 1)
        add = torch.as_tensor(np.asarray(blk.add, np.int64), device=dev).view(1, -1, 1, 1)
        code = torch.bitwise_right_shift(acc.to(torch.long) * mul + add, blk.shift)
        return olv[code.clamp(0, (1 << blk.out_bits) - 1)]
    thr = np.asarray(blk.thr, np.float32 if f32 else np.int64).reshape(len(blk.flip), -1)
    thr = torch.as_tensor(thr, device=dev)  # (N, L), non-decreasing (flip: non-increasing)
    flip = torch.as_tensor(blk.flip, device=dev).view(-1, 1)
    if thr.shape[1] == 1:  # SIGN
        t, f = thr.view(1, -1, 1, 1), flip.view(1, -1, 1, 1)
        code = torch.where(f, acc <= t, acc >= t).long()
    else:  # code = #{i : thr_i <= acc} (flip: #{i : -thr_i <= -acc}), a sorted search per channel
        s = torch.where(flip, -thr, thr).contiguous()
        v = acc.to(thr.dtype).transpose(0, 1).reshape(len(s), -1)
        code = torch.searchsorted(s, torch.where(flip, -v, v).contiguous(), right=True)
        code = code.reshape(acc.shape[1], acc.shape[0], *acc.shape[2:]).transpose(0, 1)
    return olv[code]


def _thresholds(a: np.ndarray, b: np.ndarray, t: np.ndarray, f32: bool = False):
    """Thresholds (N, L) and flip (N,) for y = a*acc + b >= t_i (see module docstring): int64
    on an integer accumulator, float32 on an F32 layer's float accumulator."""
    a = a[:, None]
    b = b[:, None]
    t = np.asarray(t, np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (t - b) / a
    flip = a[:, 0] < 0
    if f32:  # a == 0: constant channel, -inf (always on) or +inf (never)
        return np.where(a != 0, r, np.where(b >= t, -np.inf, np.inf)).astype(np.float32), flip
    const = np.where(b >= t, I32_MIN, I32_MAX).astype(np.float64)
    thr = np.where(a > 0, np.ceil(r), np.where(a < 0, np.floor(r), const))
    thr = np.clip(np.nan_to_num(thr, nan=I32_MAX, posinf=I32_MAX, neginf=I32_MIN), I32_MIN, I32_MAX)
    return thr.astype(np.int64), flip


def _encode_weights(iw, in_enc: str, in_levels: np.ndarray, identity_levels: bool):
    """Choose the IR weight encoding; returns (w_enc, codes, lut, wbits)."""
    v = iw.values
    if iw.kind != "KBIT" and (in_enc == "B1" or identity_levels):
        if iw.kind == "B1":
            return "B1", None, None, 0
        if iw.kind == "TERN":
            return "TERN", None, None, 0  # TERN_SPARSE is chosen by _graph's ternary policy
        if iw.kind in ("I8", "I16", "F32"):
            return iw.kind, None, None, 0
    if iw.kind == "F32":
        raise UnsupportedError("a float (F32) layer needs B1 or uniform U8 input codes; keep it "
                               "first, or after a uniform activation quantizer")
    if iw.kind == "I16":
        raise UnsupportedError("int16 weights need B1 or uniform U8 input codes (a table of up to "
                               "65536 values cannot be a KBIT lut); use int8 for this layer")
    if iw.kind == "KBIT":
        table, codes, wbits = iw.table, iw.codes.astype(np.int64), iw.wbits
    else:
        table = np.unique(v)
        wbits = max(1, int(np.ceil(np.log2(len(table)))))
        codes = np.searchsorted(table, v)
        table = np.concatenate([table, np.zeros((1 << wbits) - len(table), np.int64)])
    lvl = np.array([-1, 1], np.int64) if in_enc == "B1" else in_levels
    lut = table.astype(np.int64)[:, None] * lvl[None, :]
    return "KBIT", codes.astype(np.uint8), lut, wbits


# =============================================================================================
# Folding, graph, integer forward
# =============================================================================================
def _example(model, example) -> torch.Tensor:
    try:
        dev = next(model.parameters()).device
    except StopIteration:
        dev = torch.device("cpu")
    if example is None:
        pre = next((m for m in model.modules() if isinstance(m, Input)), None)
        if pre is None or pre.image_shape is None:
            raise EdgeqError("export needs an example input (a batch of raw images) for this model")
        return torch.zeros((1,) + tuple(pre.image_shape), dtype=torch.uint8, device=dev)
    x = example if torch.is_tensor(example) else torch.as_tensor(np.asarray(example))
    return x.to(dev)


def fold(model: nn.Module, example=None) -> Folded:
    """Trace `model` (eval mode; shapes from `example`, one raw input batch) and fold it into
    integer ops (see module docstring).  Raises UnsupportedError naming the first node the IR
    cannot express."""
    from torch.fx.passes.shape_prop import ShapeProp

    gm, prefix = trace(model)
    walker = _Walker(gm, prefix)
    walker.prepass()
    was = model.training
    model.eval()
    try:
        x = _example(model, example)[:1]
        try:
            with torch.no_grad():
                ShapeProp(gm).propagate(x)
        except EdgeqError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's forward failed on the example
            e = e.__cause__ or e
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ShapeError(f"the model's forward fails on the example input {tuple(x.shape)}: {msg}") from None
        return walker.run()
    finally:
        model.train(was)


TERNARY_STORAGE = ("auto", "dense", "sparse", "smallest")
# "auto": skip-zero only on U8 input of at most this many channels (measured on the Cortex-M4,
# docs/boards.md: faster there; on B1 input, and on U8 input of 64 channels even at 95 % zeros,
# the bit-planes are)
AUTO_SPARSE_MAX_C = 3


def _check_ternary(ternary: str) -> str:
    if ternary not in TERNARY_STORAGE:
        raise EdgeqError(f"ternary storage {ternary!r} is not one of {', '.join(TERNARY_STORAGE)}")
    return ternary


def _graph(folded: Folded, model=None, meta: dict | None = None, classes=None,
           ternary: str = "auto") -> Graph:
    layers = []
    for op in folded.ops:
        if isinstance(op, FoldedPool):
            layers.append(MaxPool(k=op.k, stride=op.stride, name=op.name))
            continue
        fb = op
        w = np.transpose(fb.codes if fb.w_enc == "KBIT" else fb.values, (0, 2, 3, 1))
        w = np.ascontiguousarray(w.astype({"KBIT": np.uint8, "I16": np.int16, "F32": np.float32}
                                          .get(fb.w_enc, np.int8)))
        kw = {"weight": w, "w_enc": fb.w_enc, "out": fb.out, "stride": fb.stride, "pad": fb.pad,
              "name": fb.name}
        if fb.w_enc == "KBIT":
            kw.update(lut=fb.lut.astype(np.int32), wbits=fb.wbits)
        pt = np.float32 if fb.w_enc == "F32" else np.int32
        if fb.out == "AFFINE":
            kw.update(mul=fb.mul.astype(pt), add=fb.add.astype(pt), shift=fb.shift)
        elif fb.out == "REQUANT":
            kw.update(mul=fb.mul.astype(np.int32), add=fb.add.astype(np.int32), shift=fb.shift,
                      out_bits=fb.out_bits)
        else:
            kw.update(thr=fb.thr.astype(pt), flip=fb.flip.astype(bool), out_bits=fb.out_bits)
        layers.append(Conv(**kw))
    n_out = folded.blocks[-1].values.shape[0]
    if classes is None:
        classes = getattr(model, "classes", None) or [str(i) for i in range(n_out)]
    if len(classes) != n_out:
        raise ShapeError(f"{len(classes)} class names for {n_out} scores")
    m = {"image_shape": list(folded.image_shape)}
    if getattr(model, "arch", None):
        m.update(arch=model.arch, config=model.config)
    m.update(meta or {})
    pre = folded.pre
    g = Graph(input_shape=tuple(folded.input_shape), pre_mode=pre.mode,
              pre_param=pre.param if pre.mode != "RAW" else 0, layers=layers,
              classes=[str(c) for c in classes], meta=m)
    # ternary storage (see module docstring); sizes compared in the stored form (dense layers
    # are stored as FLATTEN + 1x1 CONV, without per-tap word padding)
    from ..format.pack import best_ternary_encoding

    for layer, s in zip(g.layers, infer_shapes(g)):
        if isinstance(layer, Conv) and layer.w_enc in ("TERN", "TERN_SPARSE") and ternary != "dense":
            if ternary == "sparse":
                layer.w_enc = "TERN_SPARSE"
                continue
            h, w, c = s.in_shape
            if ternary == "auto" and not (s.in_enc == "U8" and c <= AUTO_SPARSE_MAX_C):
                layer.w_enc = "TERN"
                continue
            dense = layer.pad == 0 and (layer.kh, layer.kw) == (h, w)
            wt = layer.weight.reshape(layer.n_out, 1, 1, -1) if dense else layer.weight
            layer.w_enc = best_ternary_encoding(wt)
    return g


def to_graph(model, meta: dict | None = None, example=None, classes=None, ternary: str = "auto") -> Graph:
    """The exported Graph of a model (see module docstring; `ternary`: auto | dense | sparse |
    smallest)."""
    return _graph(fold(model, example), model, meta, classes, _check_ternary(ternary))


def graph_input(model, px) -> np.ndarray:
    """Raw uint8 inputs (N, ...) -> the graph's input shape (a 1-D signal (N, C, L) becomes
    (N, C, 1, L)).  `model` is a model or a `Folded`."""
    px = np.asarray(px)
    if px.size and (px.min() < 0 or px.max() > 255 or not np.array_equal(px, np.round(px))):
        raise ShapeError("inputs must be raw pixel codes 0..255 (uint8)")
    px = px.astype(np.uint8)
    if isinstance(model, Folded):
        shape = model.input_shape
    else:
        pre = getattr(model, "pre", None)
        shape = pre.image_shape if pre is not None and pre.image_shape is not None else \
            fold(model, px[:1]).input_shape
    return px.reshape((len(px),) + tuple(shape))


@torch.no_grad()
def _run(folded: Folded, px, keep: bool = False):
    """(scores, accs, values): the exact integer forward; values[i] is op i's output."""
    px = torch.as_tensor(np.asarray(px)) if not torch.is_tensor(px) else px
    dev = px.device
    pre = folded.pre
    lv = torch.as_tensor(pre.levels_int, dtype=torch.float64, device=dev)
    x = lv[pre.codes(px)].reshape((len(px),) + tuple(folded.input_shape))
    accs, values = [], [x] if keep else []
    for op in folded.ops:
        if isinstance(op, FoldedPool):
            x = F.max_pool2d(x, op.k, op.stride)
            if keep:
                values.append(x)
            continue
        fb = op
        f32 = fb.w_enc == "F32"
        if f32:
            acc = _f32_conv(x, fb)
        else:
            w = torch.as_tensor(fb.values, dtype=torch.float64, device=dev)
            acc = torch.round(F.conv2d(x, w, stride=fb.stride, padding=fb.pad)).to(torch.long)
        accs.append(acc)
        x = apply_stage(fb, acc)
        if keep:
            values.append(x)
    # scores in HWC flatten order (the runtime's)
    scores = x.permute(0, 2, 3, 1).reshape(len(x), -1)
    return scores, accs, values


def int_forward(model, px, return_accs: bool = False, folded: Folded | None = None):
    """Exact integer forward in torch: scores (N, n_classes) float64 holding integers.
    `model` is a model (traced and folded here) or a `Folded`.

    return_accs=True also returns the list of int64 accumulators (N, N_out, OH, OW) per layer."""
    if folded is None:
        folded = model if isinstance(model, Folded) else fold(model, px[:1])
    scores, accs, _ = _run(folded, px)
    return (scores, accs) if return_accs else scores


def _f32_conv(x: torch.Tensor, fb: FoldedBlock) -> torch.Tensor:
    """The runtimes' float32 accumulator: from +0, taps in (ky, kx, c) order, acc = acc + (a * w),
    one float32 rounding per operation (zero-padded taps add a zero product: no change)."""
    w = torch.as_tensor(np.asarray(fb.values, np.float32), device=x.device)  # (N, C, kh, kw)
    n, c, kh, kw = w.shape
    xp = F.pad(x, (fb.pad, fb.pad, fb.pad, fb.pad)).to(torch.float32)
    oh = (x.shape[2] + 2 * fb.pad - kh) // fb.stride + 1
    ow = (x.shape[3] + 2 * fb.pad - kw) // fb.stride + 1
    acc = torch.zeros((x.shape[0], n, oh, ow), dtype=torch.float32, device=x.device)
    s = fb.stride
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s]  # (B, C, oh, ow)
            for ch in range(c):
                prod = patch[:, ch:ch + 1] * w[:, ch, ky, kx].view(1, n, 1, 1)
                acc = acc + prod
    return acc


def accs_hwc(accs: list, index: int) -> list:
    """Per-layer accumulators of one image in the refnet layout (OH, OW, N) int64 numpy."""
    return [a[index].permute(1, 2, 0).cpu().numpy() for a in accs]


def export_blob(model, meta: dict | None = None, example=None, ternary: str = "auto") -> bytes:
    """Graph -> blob bytes via edgeq.format.pack (no check; `edgeq.export` also proves the blob)."""
    from ..format import pack

    model.eval()
    return pack.write_blob(to_graph(model, meta, example, ternary=ternary))


# =============================================================================================
# edgeq.export: write the blob and prove it
# =============================================================================================
@dataclass
class Exported:
    """What `edgeq.export` returns: the blob, its graph, the folded model and the check report
    (images checked, class agreement between the C runtime and the torch model, ties)."""

    blob: bytes
    graph: Graph
    folded: Folded
    report: dict | None

    def scores(self, px) -> np.ndarray:
        """The blob's integer scores, computed in torch (equal to every runtime's)."""
        return int_forward(self.folded, px).numpy().astype(np.int64)

    def predict(self, px) -> np.ndarray:
        return self.scores(px).argmax(1)


def export_model(model: nn.Module, example_input, path=None, *, classes=None, meta: dict | None = None,
                 verify: bool = True, ternary: str = "auto") -> Exported:
    """Trace `model`, fold it into the integer IR, write the blob to `path` (when given) and prove
    it on `example_input` (raw uint8 inputs, (N, C, H, W) or (N, C, L)): the C host runtime must
    give the exported graph's scores bit for bit, and the model's eval forward (float64) must
    agree with them (see module docstring).  `ternary` chooses the storage of ternary layers:
    "auto" (the faster form), "dense" (TERN bit-planes), "sparse" (TERN_SPARSE) or "smallest".
    Raises UnsupportedError for what the IR cannot
    express and ExportMismatchError when the proof fails; leaves the model in eval mode."""
    from ..format import pack

    model.eval()
    px = _example(model, example_input)
    folded = fold(model, px[:1])
    g = _graph(folded, model, meta, classes, _check_ternary(ternary))
    blob = pack.write_blob(g)
    report = verify_blob(model, folded, blob, px) if verify else None
    if path is not None:
        from pathlib import Path

        try:
            Path(path).write_bytes(blob)
        except OSError as e:
            raise EdgeqError(f"cannot write {path}: {e.strerror}") from None
    return Exported(blob, g, folded, report)


def verify_blob(model: nn.Module, folded: Folded, blob: bytes, px) -> dict:
    """The proof of `export_model` on inputs px; returns the report dict."""
    try:
        from ..native.runtime import Model
    except (ImportError, EdgeqError) as e:
        raise EdgeqError(f"the C host runtime is needed to check the blob ({e}); build it with "
                         "`python host/build_cffi.py`, or pass verify=False") from None
    px_np = np.asarray(px.cpu() if torch.is_tensor(px) else px)
    cls, scores = Model(blob).predict(graph_input(folded, px_np))
    ref, accs, values = _run(folded, torch.as_tensor(px_np), keep=True)
    ref = ref.numpy().astype(np.int64)
    bad = np.nonzero((np.asarray(scores, np.int64) != ref).any(1))[0]
    if len(bad):
        raise ExportMismatchError(
            f"the C runtime's scores differ from the exported graph's integer forward on {len(bad)} of "
            f"{len(ref)} inputs (first: {int(bad[0])}); this is an edgeq bug, please report it")
    report = {"images": int(len(ref)), "threshold_ties": 0, "score_ties": 0}
    y = _float_check(model, folded, px_np, values, report, accs)
    fb = folded.blocks[-1]
    y = y.reshape(len(ref), -1)
    accmax = float(accs[-1].abs().amax().item()) if len(accs[-1]) else 0.0
    if fb.w_enc == "F32":
        bound = fb.score_unit * (1.0 + 1e-4 * (accmax * float(np.abs(fb.mul).max()) + float(np.abs(fb.add).max())))
        bound = bound + 1e-4 * np.abs(y)
    else:
        bound = fb.score_unit * ((0.5 * accmax + 0.5) / 2**fb.shift + 1.0) + 1e-9 * np.abs(y)
    err = np.abs(ref * fb.score_unit - y)
    bound = np.broadcast_to(bound, y.shape)
    if np.any(err > bound):
        i, j = np.unravel_index(int(np.argmax(err - bound)), err.shape)
        raise ExportMismatchError(
            f"output '{fb.name}': the model's score {y[i, j]:.6g} (input {i}, class {j}) is not the "
            f"blob's {ref[i, j]} x {fb.score_unit:.6g} within the rounding bound {bound[i, j]:.3g}")
    fcls = y.argmax(1)
    diff = np.nonzero(fcls != cls)[0]
    for i in diff:
        gap = y[i, fcls[i]] - y[i, cls[i]]
        if gap > 2 * float(bound[i].max()):
            raise ExportMismatchError(f"input {i}: the model predicts class {fcls[i]}, the blob {cls[i]}")
    report["score_ties"] = int(len(diff))
    report["class_agreement"] = float((fcls == cls).mean()) if len(cls) else 1.0
    return report


def _float_check(model: nn.Module, folded: Folded, px: np.ndarray, values: list, report: dict,
                 accs: list | None = None) -> np.ndarray:
    """Run the model's traced forward in float64 on px, comparing each quantizer's output with the
    integer graph's activation there (and continuing from the graph's value); returns the output.
    A REQUANT stage may differ from the quantizer within `_stage_tol` of a threshold (accs: the
    blocks' accumulators on px, as `_run` gives them)."""
    m64 = copy.deepcopy(model).cpu().double().eval()
    accmax = {id(b): float(a.abs().amax().item()) if a.numel() else 0.0
              for b, a in zip(folded.blocks, accs or [])}
    gm, prefix = trace(m64)
    x_in = values[0] * folded.pre.scale

    class _Check(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.op == "call_module" and isinstance(self.module.get_submodule(n.target), Input):
                return x_in.reshape(out.shape)
            hit = folded.checks.get(n.name)
            if hit is None:
                return out
            idx, fb = hit
            want = (values[idx + 1] * fb.out_scale).reshape(out.shape)
            off = (out - want).abs() > 1e-6 * (1 + want.abs())  # levels may be float32-rounded
            if bool(off.any()):
                y = self.env[_src(n)][off]
                t = torch.as_tensor(fb.thresholds, dtype=torch.float64)
                d = (y.unsqueeze(-1) - t).abs().amin(-1)
                tol = (1e-4 if fb.w_enc == "F32" else 1e-9) * (1 + t.abs().max())
                if fb.out == "REQUANT":
                    tol = tol + _stage_tol(fb, accmax.get(id(fb), acc_bound(fb) or 0.0))
                if bool((d > tol).any()):
                    raise ExportMismatchError(
                        f"node '{_label(n, prefix)}': the model's activations differ from the exported "
                        f"graph's on {int((d > tol).sum())} values not at a threshold (of "
                        f"{out.numel()}): the export does not express this model; please report it")
                report["threshold_ties"] += int(off.sum())
            return want

    with torch.no_grad():
        out = _Check(gm).run(torch.as_tensor(px))
    return out.detach().numpy()


class _CallableModule(types.ModuleType):
    """`edgeq.export(model, example_input, path, ...)` calls `export_model`."""

    def __call__(self, *args, **kwargs):
        return export_model(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
