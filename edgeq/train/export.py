"""Export any torch model built from `edgeq.nn` layers to the integer IR (`edgeq.format.graph.Graph`), exactly.

    result = edgeq.export(model, example_images, "net.eqb")   # this module is callable

Tracing: `torch.fx` symbolic trace of the model's forward (a model may name another method in
`traced_forward`, as the zoo's `QNet` does with `float_forward`), edgeq.nn layers, quantizers and
torch's own modules kept as leaves (an edgeq.nn layer subclass that overrides forward is refused:
its forward is not traced), shapes from the example batch (`ShapeProp`).  The traced graph may
branch: its nodes become ops in topological order (op i's output is value i + 1, value 0 the
preprocessed input; each op names the values it reads).  Only what the output depends on is
exported.  What the IR cannot express raises `UnsupportedError` naming the node and why (ReLU,
subtraction, stack, padded average pools, ...): nothing is ever dropped silently.

A traced tensor is either a graph value (B1 +-1, U8 codes whose integer levels times a scale are
the real activation, or I32 integers times a per-channel unit) or a pending accumulator `acc`
(integer) of an op whose output stage is not chosen yet, real = a_n * acc + b_n per channel.

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
  integer op): REQUANT code = clamp((acc * mul + add) >> shift, 0, L) with mul, add the slope
                       a_n / step and offset (b_n - t_0) / step + 1 rounded at the largest shift
                       keeping them in int32 (`_requant`): one code off only within
                       step * (|acc|/2 + 1/2) / 2**shift of a threshold, which the check allows
  last layer (AFFINE): y = (acc * mul + add) >> shift, mul = round(a_n * 2**P / max|a|),
                       add = round(b_n * 2**P / max|a|) with P chosen so |acc*mul + add| < 2**30.
  float layers ('float' quantizer -> F32): acc is the float32 sum of the runtimes (fixed tap
  order, one rounding per operation); thresholds (t_i - b_n) / a_n and AFFINE mul/add
  a_n * 2**P / max|a|, b_n * 2**P / max|a| are float32, scores floor(acc * mul + add).
  Max-pooling commutes with every (monotone) quantizer, so a pool between batch norm and the
  quantizer becomes CONV(stage) -> MAXPOOL; a pool before a batch norm needs its scales >= 0.
  A linear layer after a flatten is a convolution whose kernel covers its input (weights
  reordered from torch's CHW flatten order).  Grouped / depthwise convolutions keep their
  (N, C/g, kh, kw) weights; stride and padding are per axis (a 1-D conv: (1, k) kernel on a
  (C, 1, L) map, padding along L only; 'same' = d (k - 1) / 2 when that is whole).  A dilated
  kernel is the ordinary kernel of size d (k - 1) + 1 with zero weights between the taps (weights
  without a zero, B1 and DoReFa k-bit tables, are refused).

Branches (blob 1.1 ops; every runtime value is an integer, v below):
  value of a graph tensor: real = k_n * v + c_n  (B1: k = scale, c = 0; U8 with uniform levels
                           level = alpha * code + beta: k = scale * alpha, c = scale * beta;
                           I32: k = q_n, its unit, c = 0).  Non-uniform levels (HWGQ Lloyd-Max)
                           cannot be summed: refused.
  int32 value of a pending accumulator (it feeds an add, a concatenation, an average pool, or
  two nodes): AFFINE y = (acc * mul + add) >> shift with mul = round(a_n / q_n * 2**S),
  add = floor((b_n / q_n + 1/2) * 2**S), S as large as int32 mul/add allow (<= 31): y =
  round(real / q_n) within 1/2 + (|acc| / 2 + 1) / 2**S units; q_n a power of two putting the
  value's bound at 2**23 units (or the consumer's unit).
  residual add x + y: ADD acc = m0[n] * v0 + m1[n] * v1 on a common unit q_n (a power of two
                           per channel putting the bound of |x + y| at 2**29, or the finer unit of
                           an int32 input): a convolution's pending accumulator read only by the
                           add is stored as is (AFFINE mul 1, add 0, shift 0: a copy in every
                           runtime) and enters with m = round(a_n / q_n), its b_n joining the
                           sum's offset (one rounding, of m, instead of two); any other pending
                           input is first stored in unit q (m = 1); a graph value enters with
                           m = round(k_n / q_n) (exact for B1 with scale 1 and for int32 values
                           in a power-of-two unit).  real(x + y) = q_n * acc +
                           c0_n + c1_n: a pending accumulator again, so a batch norm and a
                           quantizer after the add become ADD's SIGN / MULTI thresholds (above).
  average pool (kh x kw, no padding; AvgPool1d/2d, F.avg_pool*, adaptive pools with equal
  windows): AVGPOOL acc = window sum of v; real = (k_n / D) * acc + c_n * kh * kw / D (D =
  kh * kw or divisor_override): batch norm + quantizer after it are its thresholds (1/D folds
  in).  A global average pool (adaptive 1, a kernel covering the map, x.mean((2, 3))) read by a
  QLinear or a 1x1 QConv is folded into that layer instead: its weights at every position of
  the map, scale / (H*W) (exact); read by anything else it is an AVGPOOL of the whole map.
  batch norm / quantizer on a graph value (e.g. after a concatenation, or on an int32 sum read
  twice): a 1x1 AVGPOOL (acc = v) with that stage.
  scores from an ADD or AVGPOOL (the last op): AFFINE on one power-of-two unit u for every class
  (bound at 2**29 units), the int32 rounding above with q = u.
  torch.cat along channels: CONCAT of graph values with the same encoding (B1/U8: the same
  levels and scale, so one set of integer weights reads both; pending inputs are stored as int32).
Exactness: every op above is integer and computed the same by every runtime (int_forward is
that computation in torch).  Fixed-point rescaling (an ADD's multipliers, an int32 value's
AFFINE) rounds the real value by a bound the exporter tracks per channel (relative ~2**-23);
the export check allows a quantizer to differ from the model only where the model's input is
within that bound (plus a REQUANT stage's own rounding bound, and float rounding) of a threshold.

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
values within rounding of a threshold, and scores within the last stage's rounding bound (so the
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
from ..format.graph import (Add, AvgPool, Concat, Conv, Graph, MaxPool, conv_out_dim, infer_shapes,
                            wino_f23_auto)
from .nn import Input
from .quant import ActQuantizer, QConv1d, QConv2d, QLinear, ShiftBatchNorm2d, bn_affine_terms

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


@dataclass(kw_only=True)
class _Staged:
    """An op with an output stage (CONV, AVGPOOL, ADD) and what the export check needs of it."""

    out: str = ""
    thr: np.ndarray | None = None
    flip: np.ndarray | None = None
    out_bits: int = 0
    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    shift: int = 0
    out_levels: np.ndarray | None = None  # integer value of each output code (SIGN: [-1, 1])
    out_scale: float = 1.0  # real value of an output level (quantizer scale)
    thresholds: np.ndarray | None = None  # the quantizer's real thresholds (for the export check)
    score_unit: float = 1.0  # AFFINE scores: real value of one score unit
    acc_bound: float = 0.0  # max |accumulator| over channels and inputs (a bound)
    f32: bool = False
    name: str = ""
    src: tuple = ()  # value ids read (value 0 = the input, v = op v-1's output)


@dataclass(kw_only=True)
class FoldedBlock(_Staged):
    values: np.ndarray  # int64 (N, C/groups, kh, kw) integer weight values (float32 for F32)
    w_enc: str
    codes: np.ndarray | None = None  # KBIT codes (N, C/groups, kh, kw)
    lut: np.ndarray | None = None
    wbits: int = 0
    stride: int = 1  # vertical
    pad: int = 0  # vertical
    stride_w: int = 1
    pad_w: int = 0
    groups: int = 1
    in_levels: np.ndarray | None = None  # integer value of each input code
    in_ident: bool = True  # input values are the levels (B1, or U8 codes 0..n-1 = levels)
    winograd: bool | None = None  # F32: Winograd F(2x2, 3x3) (graph.Conv.winograd; None: the rule)

    @property
    def wino_eligible(self) -> bool:
        """F32, 3x3, stride 1 and pad 1 both ways, one group (graph.wino_f23_eligible)."""
        return (self.f32 and tuple(np.shape(self.values)[2:]) == (3, 3) and self.stride == 1
                and self.stride_w == 1 and self.pad == 1 and self.pad_w == 1 and self.groups == 1)


@dataclass(kw_only=True)
class FoldedPool:
    """Max pool (kh x kw window, strides sh / sw, no padding) of any encoding."""

    k: int
    stride: int
    kw: int = 0
    stride_w: int = 0
    name: str = ""
    src: tuple = ()


@dataclass(kw_only=True)
class FoldedAvgPool(_Staged):
    """Window sums (kh x kw, strides, no padding) of B1 (+-1) / U8 (codes) / I32 values."""

    kh: int
    kw: int
    stride: int
    stride_w: int


@dataclass(kw_only=True)
class FoldedAdd(_Staged):
    """acc = m[0] * a0 + m[1] * a1 per channel (runtime values: +-1, codes, int32)."""

    m: np.ndarray  # int64 (2, C)


@dataclass(kw_only=True)
class FoldedConcat:
    name: str = ""
    src: tuple = ()


@dataclass
class Folded:
    """A traced, folded model: the input step, ops in topological order (op i's output is value
    i + 1, value 0 the preprocessed input), and which traced node each quantizer's output equals
    (for the export check)."""

    pre: Input
    input_shape: tuple  # the graph's input (C, H, W)
    image_shape: tuple  # one raw sample as the model takes it
    ops: list  # FoldedBlock | FoldedPool | FoldedAvgPool | FoldedAdd | FoldedConcat
    checks: dict = field(default_factory=dict)  # node name -> _Check
    out_node: str = ""
    out_err: np.ndarray | None = None  # real-unit error bound of the scores (per class)

    @property
    def blocks(self) -> list:
        return [op for op in self.ops if isinstance(op, FoldedBlock)]


@dataclass
class _CheckAt:
    """A quantizer node's value in the graph: value id, its real levels, and how far (real units,
    per channel) the integer form's input may be from the model's (fixed-point rescaling)."""

    vid: int
    op: _Staged
    levels: np.ndarray
    scale: float
    tol: np.ndarray


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
_NO_POOL = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.LPPool1d, nn.LPPool2d)
_AVGM = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
_MAXM = (nn.MaxPool1d, nn.MaxPool2d)
_PASS = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_MODULE_OK = (Input, QConv1d, QConv2d, QLinear, ActQuantizer, nn.Flatten) + _MAXM + _PASS + _BN + _AVGM
_F_ADD = {operator.add, operator.iadd, torch.add}
_F_ARITH = {operator.sub, operator.isub, torch.sub, operator.mul, operator.imul, torch.mul}
_F_CAT = {torch.cat, torch.concat}
_F_STACK = {torch.stack, torch.hstack, torch.vstack}
_F_RELU = {F.relu, torch.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.elu, F.hardswish, F.relu_}
_F_AVG = {F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, torch.mean}
_F_MAX = {F.max_pool1d, F.max_pool2d}
_F_OK = {torch.flatten, getattr, operator.getitem, F.dropout} | _F_AVG | _F_MAX | _F_ADD | _F_CAT
_M_OK = {"flatten", "view", "reshape", "size", "contiguous", "mean", "add", "add_"}
_M_WHY = {"sub": "subtraction", "relu": "ReLU", "relu_": "ReLU", "sum": "a sum", "mul": "a product"}
WHY_RELU = ("ReLU is unbounded: the IR has no integer stage for it; use an activation quantizer "
            "(edgeq.nn.HWGQ is a quantized ReLU, DoReFa a clipped one)")
# layers traced as leaves: a subclass that overrides forward would hide what it computes
_LEAF_FORWARD = {QConv2d: QConv2d.forward, QConv1d: QConv1d.forward, QLinear: QLinear.forward,
                 Input: Input.forward, ShiftBatchNorm2d: ShiftBatchNorm2d.forward}


def _refusal(node: fx.Node, gm: fx.GraphModule) -> str | None:
    """Why `node` cannot be exported, or None."""
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        t = type(m).__name__
        for base, fwd in _LEAF_FORWARD.items():
            if isinstance(m, base) and type(m).forward is not fwd:
                return (f"{t} overrides forward(), which export does not trace ({base.__name__} is a leaf "
                        "whose integer form is fixed); put extra computation (a skip, an add) in the "
                        "parent module's forward")
        if isinstance(m, (QConv1d, QConv2d)):
            if m.padding_mode != "zeros":
                return f"{t}(padding_mode={m.padding_mode!r}): only zero padding is exportable"
            return None
        if isinstance(m, _MODULE_OK):
            return None
        if isinstance(m, _RELU):
            return f"{t}: {WHY_RELU}"
        if isinstance(m, _NO_POOL):
            return f"{t}: only max pooling with a fixed window and average pooling have IR ops"
        if isinstance(m, _ACTS):
            return (f"{t}: an activation without an integer form; use an edgeq.nn quantizer "
                    "(Sign, DoReFa, HWGQ)")
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            return (f"a plain torch {t} has no quantizer: use edgeq.nn.Q{t}(..., wq='int8' or 'float'), "
                    "or edgeq.quantize for a float model")
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return f"{t}: only BatchNorm1d/BatchNorm2d fold into the integer stages"
        return (f"module type {t} has no IR mapping (supported: edgeq.nn Input/QConv1d/QConv2d/QLinear/"
                "Sign/DoReFa/HWGQ/QReLU, BatchNorm1d/2d, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, "
                "Flatten, Dropout, Identity)")
    if node.op == "call_function":
        f = node.target
        if f in _F_OK:
            return None
        if f in _F_ARITH:
            return (f"{_fname(f)}: arithmetic other than an add has no IR op (ADD takes two tensors "
                    "of the same shape: x + y, torch.add)")
        if f in _F_STACK:
            return f"{_fname(f)}: only torch.cat along channels has an IR op (CONCAT)"
        if f in _F_RELU:
            return f"{_fname(f)}: {WHY_RELU}"
        return f"function {_fname(f)} has no IR mapping"
    if node.op == "call_method":
        if node.target in _M_OK:
            return None
        why = _M_WHY.get(node.target)
        if why == "ReLU":
            return f"Tensor.{node.target}: {WHY_RELU}"
        return f"Tensor.{node.target}() has no IR mapping"
    return None


# =============================================================================================
# Walking the traced graph
# =============================================================================================
@dataclass
class _T:
    """What a traced tensor is in the IR: the raw input, a value of the graph ('act': value id
    `vid`, encoding B1 / U8 / I32), or a pending accumulator ('acc': an op whose output stage is
    not chosen yet; real value = a * acc + b per channel)."""

    kind: str  # 'raw' | 'act' | 'acc'
    shape: tuple  # (C, H, W) in the IR
    flat: bool = False  # torch sees it flattened (CHW order)
    gap: str = ""  # globally average-pooled (pending; the pool's name): torch sees (N, C[, 1, 1]), the IR (C, H, W)
    err: np.ndarray | None = None  # per channel: bound of |real value - the integer form's| (real units)
    # act
    vid: int = -1
    enc: str = ""
    levels: np.ndarray | None = None  # B1/U8: integer level of each code
    scale: object = 1.0  # B1/U8: real value of one level (float); I32: real unit per channel (array)
    vmax: np.ndarray | None = None  # per channel: max |runtime value| (I32)
    offset: np.ndarray | None = None  # I32 holding a raw accumulator: real = scale * v + offset
    # acc
    op: _Staged | None = None
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    acc_bound: np.ndarray | None = None  # per channel: max |acc|
    pools: list = field(default_factory=list)
    f32: bool = False

    @property
    def C(self) -> int:
        return int(self.shape[0])


def _meta_shape(node) -> tuple | None:
    tm = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(int(v) for v in tm.shape) if tm is not None and hasattr(tm, "shape") else None


def _src(node: fx.Node):
    """A node's (first) input, passed by position or by keyword."""
    return node.args[0] if node.args else next(iter(node.kwargs.values()), None)


def _pair(v) -> tuple:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(x) for x in v)


def _args(n: fx.Node, names: tuple) -> dict:
    kw = dict(zip(names, n.args))
    kw.update(n.kwargs)
    return kw


def _pow2_unit(r: np.ndarray, bits: int) -> np.ndarray:
    """Per channel a power of two q with r / q <= 2**bits (r: a bound of |real value|)."""
    r = np.maximum(np.asarray(r, np.float64), 1e-30)
    return np.exp2(np.ceil(np.log2(r)) - bits)


# an int32 value the exporter stores spans at most +-2**23 units: an ADD can take it at a finer
# unit (the sum's own at 2**29), and window sums of up to 256 of them fit int32
I32_RANGE_BITS = 23
ACC_LIMIT = 2**31 - 1  # bound on every ADD / AVGPOOL accumulator the exporter emits (sat32 never hit)


class _Walker:
    def __init__(self, gm: fx.GraphModule, prefix: str):
        self.gm, self.prefix = gm, prefix
        self.ops: list = []
        self.checks: dict = {}
        self.pre: Input | None = None
        self.env: dict = {}
        self.live: set = set()
        self.out_err = None

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
        outs = [n for n in nodes if n.op == "output"]
        # only what the output depends on is exported (a dead branch computes nothing in the blob)
        stack = list(outs)
        while stack:
            n = stack.pop()
            if n not in self.live:
                self.live.add(n)
                stack.extend(n.all_input_nodes)
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
            if n.op in ("placeholder", "get_attr") or n not in self.live:
                continue
            if n.op == "output":
                out = self.output(n)
                break
            t = self.node(n)
            if t is not None and t.kind == "acc" and len(self.users(n)) > 1:
                t = self.materialize(n, t)  # one stage per op: a value read twice is stored as int32
            self.env[n] = t
        if self.pre is None:
            raise UnsupportedError("the model never applies edgeq.nn.Input to its input")
        return Folded(self.pre, raw, tuple(self.image_shape), self.ops, self.checks, out, self.out_err)

    def users(self, n: fx.Node) -> list:
        return [u for u in n.users if u in self.live and not self._shape_only(u)]

    @staticmethod
    def _shape_only(u: fx.Node) -> bool:
        return (u.op == "call_method" and u.target == "size") or \
            (u.op == "call_function" and u.target is getattr)

    def get(self, node, src) -> _T:
        if not isinstance(src, fx.Node) or self.env.get(src) is None:
            self.refuse(node, "its input is not a tensor the exporter tracks")
        return self.env[src]

    def arg(self, node) -> _T:
        return self.get(node, _src(node))

    def append(self, op) -> int:
        """Add an op; returns its value id."""
        self.ops.append(op)
        return len(self.ops)

    def node(self, n: fx.Node):
        if self._shape_only(n) or (n.op == "call_function" and n.target is operator.getitem):
            if n.op == "call_function" and n.target is operator.getitem and _meta_shape(n) is not None:
                self.refuse(n, "indexing a tensor has no IR mapping")
            return None
        if (n.op == "call_function" and n.target in _F_ADD) or (n.op == "call_method" and n.target in ("add", "add_")):
            return self.add(n)
        if n.op == "call_function" and n.target in _F_CAT:
            return self.cat(n)
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
            if isinstance(m, _MAXM):
                return self.maxpool(n, t, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                    m.return_indices)
            if isinstance(m, nn.Flatten):
                return self.flatten(n, t)
            if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                return self.adaptive(n, t, m.output_size)
            if isinstance(m, (nn.AvgPool1d, nn.AvgPool2d)):
                return self.avgpool(n, t, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                    getattr(m, "divisor_override", None))
            return t  # _PASS
        if n.op == "call_function":
            f = n.target
            if f in _F_MAX:
                kw = _args(n, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                               "return_indices"))
                k = kw["kernel_size"]
                return self.maxpool(n, t, k, kw.get("stride") or k, kw.get("padding", 0), kw.get("dilation", 1),
                                    kw.get("ceil_mode", False), kw.get("return_indices", False))
            if f in (F.avg_pool1d, F.avg_pool2d):
                kw = _args(n, ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                               "divisor_override"))
                return self.avgpool(n, t, kw["kernel_size"], kw.get("stride"), kw.get("padding", 0),
                                    kw.get("ceil_mode", False), kw.get("divisor_override"))
            if f in (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d):
                return self.adaptive(n, t, _args(n, ("input", "output_size"))["output_size"])
            if f is torch.flatten:
                return self.flatten(n, t)
            if f is torch.mean:
                return self.mean(n, t)
            return t  # dropout (eval: identity)
        if n.target == "contiguous":
            return t
        if n.target == "mean":
            return self.mean(n, t)
        return self.flatten(n, t)  # flatten / view / reshape

    # -------------------------------------------------------------------------------------
    # values: what the runtime holds and what it means
    def lin(self, n, t: _T, why: str) -> tuple:
        """(k, c0, vmax) per channel with real value = k * v + c0, v the runtime's value of `t`
        (B1: +-1, U8: the code, I32: the integer); refuses non-uniform levels."""
        C = t.C
        if t.enc == "I32":
            c0 = np.zeros(C) if t.offset is None else t.offset
            return np.broadcast_to(t.scale, (C,)).astype(np.float64), c0, t.vmax
        lv = np.asarray(t.levels, np.int64)
        if t.enc == "B1":
            return np.full(C, float(t.scale)), np.zeros(C), np.ones(C)
        codes = np.arange(len(lv))
        alpha, beta = (lv[1] - lv[0]) if len(lv) > 1 else 1, lv[0]
        if not np.array_equal(lv, alpha * codes + beta):
            self.refuse(n, f"{why} of an activation with non-uniform levels {lv.tolist()} (HWGQ Lloyd-Max): "
                           "the runtime works on its codes; use a uniform quantizer here")
        s = float(t.scale)
        return np.full(C, s * alpha), np.full(C, s * beta), np.full(C, float(len(lv) - 1))

    def act_of(self, vid: int, shape, enc: str, levels=None, scale=1.0, vmax=None, err=None) -> _T:
        C = int(shape[0])
        return _T("act", tuple(shape), vid=vid, enc=enc, levels=levels, scale=scale,
                  vmax=np.ones(C) if vmax is None else np.asarray(vmax, np.float64),
                  err=np.zeros(C) if err is None else np.asarray(err, np.float64))

    def pending(self, op: _Staged, shape, a, b, bound, err, f32=False) -> _T:
        C = int(shape[0])
        bc = lambda v: np.broadcast_to(np.asarray(v, np.float64), (C,)).copy()
        op.acc_bound = float(np.max(bound)) if np.size(bound) else 0.0
        return _T("acc", tuple(shape), op=op, a=bc(a), b=bc(b), acc_bound=bc(bound), err=bc(err), f32=f32)

    def plain(self, n, t: _T) -> _T:
        """A pending global average pool becomes an AVGPOOL op (it folds into a following linear
        layer's weights only)."""
        if not t.gap:
            return t
        c, h, w = t.shape
        return self.avg_op(n, dataclasses.replace(t, gap=""), h, w, 1, 1, h * w, name=t.gap)

    def materialize(self, n, t: _T, unit=None) -> _T:
        """A pending accumulator stored as an int32 value: AFFINE y = (acc * mul + add) >> shift
        ~= (a * acc + b) / q (round to nearest), q a power of two per channel (`unit`, or the
        one that puts the value's bound at 2**I32_RANGE_BITS)."""
        t = self.plain(n, t)
        if t.kind == "act":
            return t
        if t.kind != "acc":
            self.refuse(n, "its input is not a value of the graph")
        if t.f32:
            self.refuse(n, f"the output of the float (F32) layer '{t.op.name}' feeds an add, a concatenation, "
                           "an average pool or two nodes: a float layer can only end in a quantizer or be "
                           "the scores")
        r = np.abs(t.a) * t.acc_bound + np.abs(t.b)
        q = _pow2_unit(r, I32_RANGE_BITS) if unit is None else np.asarray(unit, np.float64)
        fit = _round_affine(t.a / q, t.b / q)
        if fit is None:
            self.refuse(n, "the rescaling to an int32 value does not fit int32 multipliers")
        mul, add, sh = fit
        op = t.op
        op.out, op.mul, op.add, op.shift = "AFFINE", mul, add, sh
        units = 0.5 + (0.5 * t.acc_bound + 1.0) / 2.0**sh  # |y - (a acc + b) / q|
        vmax = np.ceil(r / q + units)
        if np.any(vmax >= 2**31 - 1):
            self.refuse(n, "the value does not fit int32 at the precision it needs")
        vid = self.append(op)
        for p in t.pools:
            p.src = (vid,)
            vid = self.append(p)
        return self.act_of(vid, t.shape, "I32", scale=q, vmax=vmax, err=t.err + q * units)

    @staticmethod
    def _raw_ok(t: _T) -> bool:
        """A convolution's pending accumulator read only by an add enters the ADD as is (its
        rescaling folds into the ADD's multiplier): integer, no pending pool, small enough."""
        return (t.kind == "acc" and isinstance(t.op, FoldedBlock) and not t.f32 and not t.pools
                and not t.gap and float(np.max(t.acc_bound, initial=0.0)) < 2**24)

    def raw(self, n, t: _T) -> _T:
        """The accumulator itself as an int32 value (AFFINE with mul 1, add 0, shift 0: the
        runtimes store acc unchanged): real = a * acc + b, so the add's multiplier for it is
        round(a / q) and b joins the sum's offset, with no intermediate rounding."""
        op = t.op
        C = t.C
        op.out, op.mul, op.add, op.shift = "AFFINE", np.ones(C, np.int64), np.zeros(C, np.int64), 0
        vid = self.append(op)
        v = self.act_of(vid, t.shape, "I32", scale=np.asarray(t.a, np.float64).copy(),
                        vmax=np.asarray(t.acc_bound, np.float64), err=t.err)
        v.offset = np.asarray(t.b, np.float64).copy()
        return v

    def identity(self, n, t: _T) -> _T:
        """A graph value as a pending accumulator (a 1 x 1 AVGPOOL), for a stage (batch norm,
        quantizer) applied directly to it."""
        return self.avg_op(n, t, 1, 1, 1, 1, 1)

    def avg_op(self, n, t: _T, kh, kw, sh, sw, div, name: str = "") -> _T:
        """AVGPOOL (window sums) of a value, pending: real = (k / div) * sum + c0 * kh * kw / div."""
        if t.kind == "acc":  # sums of an int32 value within ACC_LIMIT
            r = np.abs(t.a) * t.acc_bound + np.abs(t.b)
            t = self.materialize(n, t, _pow2_unit(r * kh * kw, 29))
        if t.flat:
            self.refuse(n, "average pooling of a flattened tensor")
        c, h, w = t.shape
        if h == 1 and kh == 1:
            sh = sw  # one row: the vertical stride is free
        if not (1 <= kh <= min(h, 255) and 1 <= kw <= min(w, 255)):
            self.refuse(n, f"pool window {kh}x{kw} does not fit the {h}x{w} input (at most 255 per axis)")
        k, c0, vmax = self.lin(n, t, "average pooling")
        bound = vmax * kh * kw
        if np.any(bound >= ACC_LIMIT):
            self.refuse(n, f"window sums of up to {float(bound.max()):.3g} do not fit the int32 accumulator")
        op = FoldedAvgPool(kh=kh, kw=kw, stride=sh, stride_w=sw, src=(t.vid,),
                           name=name or _lname(n, self.prefix))
        shape = (c, (h - kh) // sh + 1, (w - kw) // sw + 1)
        return self.pending(op, shape, k / div, c0 * kh * kw / div, bound, t.err * kh * kw / div)

    # -------------------------------------------------------------------------------------
    def input(self, n, m: Input, t: _T) -> _T:
        if t.kind != "raw" or self.pre is not None:
            self.refuse(n, "edgeq.nn.Input must be applied once, to the model's input")
        self.pre = m
        C = t.C
        return self.act_of(0, t.shape, m.enc, levels=np.asarray(m.levels_int, np.int64), scale=float(m.scale),
                           vmax=np.full(C, float(np.abs(m.levels_int).max())))

    def conv(self, n, m, t: _T) -> _T:
        if t.kind == "raw":
            self.refuse(n, "the model's input must first go through edgeq.nn.Input (the blob's "
                           "preprocessing: RAW, THRESH or QUANT)")
        if t.gap and (isinstance(m, QLinear) or (m.groups == 1 and all(k == 1 for k in m.kernel_size))):
            pass  # folded below
        else:
            t = self.plain(n, t)
        if t.kind == "acc":
            self.refuse(n, f"its input is the pre-activation of '{t.op.name}' (no activation quantizer "
                           "between them): every hidden layer must end in an edgeq.nn quantizer")
        if t.enc == "I32":
            self.refuse(n, "its input is an int32 value (a sum, or a value read by two nodes, without a "
                           "quantizer): a convolution needs quantized (B1/U8) input; put an activation "
                           "quantizer before it")
        c, h, w = t.shape
        in_meta = _meta_shape(_src(n))
        wt = m.weight.detach()
        groups = 1 if isinstance(m, QLinear) else int(m.groups)
        if t.gap:  # mean over positions, then the layer == the layer's weights / (H*W) at every position
            if isinstance(m, QLinear) and (in_meta is None or len(in_meta) != 2):
                self.refuse(n, f"QLinear on a tensor of shape {in_meta}: flatten it to (N, features) first")
            pads = (0,) if isinstance(m, QLinear) or isinstance(m.padding, str) else tuple(m.padding)
            if any(pads):
                self.refuse(n, "after a global average pool only a QLinear or a 1x1 QConv without padding "
                               "folds the average into its weights")
            w4 = wt.reshape(wt.shape[0], -1, 1, 1)
            if w4.shape[1] != c:
                self.refuse(n, f"weight {tuple(wt.shape)} does not take {c} input channels")
            (kh, kw), (sh, sw), (ph, pw) = (h, w), (1, 1), (0, 0)
        elif isinstance(m, QLinear):
            if in_meta is None or len(in_meta) != 2:
                self.refuse(n, f"QLinear on a tensor of shape {in_meta}: flatten it to (N, features) first")
            if m.in_features != c * h * w:
                self.refuse(n, f"in_features {m.in_features} != {c * h * w} inputs")
            w4, (kh, kw), (sh, sw), (ph, pw) = wt.reshape(m.out_features, c, h, w), (h, w), (1, 1), (0, 0)
        else:
            if t.flat:
                self.refuse(n, "a convolution on a flattened tensor")
            one_d = isinstance(m, QConv1d)
            if one_d != (in_meta is not None and len(in_meta) == 3):
                self.refuse(n, f"{type(m).__name__} on a tensor of shape {in_meta}")
            ks = (1, m.kernel_size[0]) if one_d else tuple(m.kernel_size)
            (sh, sw) = (1, m.stride[0]) if one_d else tuple(m.stride)
            if isinstance(m.padding, str):
                if m.padding == "valid":
                    pads = (0,) * len(m.kernel_size)
                else:  # 'same' (stride 1): total d (k - 1), torch pads half before and the rest after
                    tot = tuple(d * (k - 1) for k, d in zip(m.kernel_size, m.dilation))
                    if any(v % 2 for v in tot):
                        self.refuse(n, f"padding='same' with the even kernel {tuple(m.kernel_size)} pads "
                                       "unequally on the two sides; the IR pads symmetrically (give an odd "
                                       "kernel, or pad explicitly)")
                    pads = tuple(v // 2 for v in tot)
            else:
                pads = tuple(m.padding)
            ph, pw = (0, pads[0]) if one_d else pads
            dil = (1, m.dilation[0]) if one_d else tuple(m.dilation)
            ks = tuple(d * (k - 1) + 1 for k, d in zip(ks, dil))  # a dilated kernel: zeros between taps
            kh, kw = ks
            if h == 1 and kh == 1 and ph == 0:
                sh = sw  # one row: the vertical stride is free; square keeps a 1.0 blob
            if ph >= max(ks) or pw >= max(ks):
                self.refuse(n, f"padding {(ph, pw)} >= kernel {ks}: the IR needs padding < kernel")
            if max(sh, sw, ph + 1, pw + 1) > 255:
                self.refuse(n, f"stride {(sh, sw)} / padding {(ph, pw)}: the IR stores each in one byte")
            taps = (1, wt.shape[2]) if one_d else tuple(wt.shape[2:])  # (undilated) kernel
            w4 = wt.reshape(m.out_channels, c // groups, *taps) if wt.shape[1] * groups == c else None
            if w4 is None:
                self.refuse(n, f"weight {tuple(wt.shape)} in {groups} group(s) does not take {c} input channels")
        try:
            with torch.no_grad():
                iw = m.wq.integer(w4)
        except (UnsupportedError, NotImplementedError, AttributeError) as e:
            self.refuse(n, f"its weight quantizer {type(m.wq).__name__} has no integer form ({e})")
        if not (t.gap or isinstance(m, QLinear)) and any(d != 1 for d in m.dilation):
            iw = self.dilate(n, m, iw, (1, m.dilation[0]) if isinstance(m, QConv1d) else tuple(m.dilation))
        if t.gap and h * w > 1:
            tile = lambda v: None if v is None else np.ascontiguousarray(np.broadcast_to(v, v.shape[:2] + (h, w)))
            iw = dataclasses.replace(iw, values=tile(np.asarray(iw.values)), codes=tile(iw.codes),
                                     scale=np.asarray(iw.scale, np.float64) / (h * w))
        ident = t.enc == "B1" or np.array_equal(t.levels, np.arange(len(t.levels)))
        try:
            w_enc, codes, lut, wbits = _encode_weights(iw, t.enc, t.levels, ident and t.enc == "U8")
        except UnsupportedError as e:
            self.refuse(n, str(e))
        oh, ow = conv_out_dim(h, kh, sh, ph), conv_out_dim(w, kw, sw, pw)
        if oh < 1 or ow < 1:
            self.refuse(n, f"kernel {kh}x{kw} larger than its input {h}x{w}")
        nout = int(w4.shape[0])
        vals = np.asarray(iw.values)
        blk = FoldedBlock(values=vals, w_enc=w_enc, codes=codes, lut=lut, wbits=wbits, stride=sh, pad=ph,
                          stride_w=sw, pad_w=pw, groups=groups, in_levels=t.levels, in_ident=ident,
                          name=_lname(n, self.prefix), src=(t.vid,), f32=w_enc == "F32")
        b = np.zeros(nout) if m.bias is None else m.bias.detach().cpu().double().numpy()
        lvmax = float(np.abs(t.levels).max())
        bound = np.abs(vals.astype(np.float64)).reshape(nout, -1).sum(1) * lvmax
        return self.pending(blk, (nout, oh, ow), t.scale * np.asarray(iw.scale, np.float64), b, bound, 0.0,
                            f32=w_enc == "F32")

    def dilate(self, n, m, iw, dil: tuple):
        """A dilated kernel as an ordinary one with zero weights between the taps (exact; d_h * d_w
        times the multiply-adds of the taps)."""
        zero = {"B1": None, "KBIT": None}.get(iw.kind, 0)
        if iw.kind == "KBIT" and 0 in list(iw.table):
            zero = list(iw.table).index(0)
        if zero is None:
            self.refuse(n, f"{type(m).__name__}(dilation={m.dilation}) with {type(m.wq).__name__} weights: a "
                           "dilated kernel is stored with zero weights between its taps, and these weights "
                           "have no zero (use ternary / int8 / float weights, or no dilation)")

        def spread(v, fill):
            if v is None:
                return None
            nn_, cg, kh, kw = v.shape
            out = np.full((nn_, cg, dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1), fill, dtype=v.dtype)
            out[:, :, ::dil[0], ::dil[1]] = v
            return out

        return dataclasses.replace(iw, values=spread(np.asarray(iw.values), 0), codes=spread(iw.codes, zero))

    def bn(self, n, m, t: _T) -> _T:
        t = self.plain(n, t)
        if t.kind == "raw":
            self.refuse(n, "batch norm after edgeq.nn.Input, not before")
        if t.flat and t.shape[1] * t.shape[2] > 1:
            self.refuse(n, "batch norm of a flattened spatial tensor")
        if not m.track_running_stats or m.running_mean is None:
            self.refuse(n, "batch norm without running statistics uses batch statistics in eval")
        if m.num_features != t.C:
            self.refuse(n, f"{m.num_features} features on {t.C} channels")
        if t.kind == "act":
            t = self.identity(n, t)
        g, h = bn_affine_terms(m)
        if t.pools and np.any(g < 0):
            self.refuse(n, "max-pool before a batch norm with negative scales does not commute with it; "
                           "pool after the batch norm")
        return dataclasses.replace(t, a=g * t.a, b=g * t.b + h, err=np.abs(g) * t.err, pools=list(t.pools))

    def stage(self, n, m: ActQuantizer, t: _T) -> _T:
        t = self.plain(n, t)
        if t.kind == "raw":
            self.refuse(n, "an activation quantizer after edgeq.nn.Input, not before")
        if t.flat and t.shape[1] * t.shape[2] > 1:
            self.refuse(n, "a quantizer on a flattened spatial tensor: quantize before the flatten")
        if t.kind == "act":
            t = self.identity(n, t)
        blk = t.op
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
        rq_tol = _fold_stage(blk, t.a, t.b, th, lv, enc, bits, t.f32, t.acc_bound)
        blk.out_levels, blk.out_scale, blk.thresholds = lv, scale, th
        vid = self.append(blk)
        for p in t.pools:
            p.src = (vid,)
            vid = self.append(p)
        self.checks[n.name] = _CheckAt(vid, blk, lv, scale, t.err + rq_tol)
        return self.act_of(vid, t.shape, enc, levels=lv, scale=scale, vmax=np.full(t.C, float(np.abs(lv).max())))

    def maxpool(self, n, t: _T, k, stride, padding, dilation, ceil_mode, indices) -> _T:
        t = self.plain(n, t)
        one_d = len(_meta_shape(n) or ()) == 3
        k, s = _pair(k), _pair(stride if stride else k)
        if one_d:
            k, s = (1, k[0]), (1, s[0])
        if indices or any(_pair(padding)) or any(d != 1 for d in _pair(dilation)) or ceil_mode:
            self.refuse(n, "max-pool with padding, dilation, ceil_mode or return_indices has no IR mapping")
        if t.kind == "raw":
            self.refuse(n, "pool after edgeq.nn.Input, not before")
        if t.flat:
            self.refuse(n, "max-pool of a flattened tensor")
        c, h, w = t.shape
        if k[0] > h or k[1] > w or max(k + s) > 255:
            self.refuse(n, f"pool {k} does not fit its input {h}x{w} (at most 255 per axis)")
        if h == 1 and k[0] == 1:
            s = (s[1], s[1])  # one row: the vertical stride is free
        p = FoldedPool(k=k[0], kw=k[1], stride=s[0], stride_w=s[1], name=_lname(n, self.prefix))
        shape = (c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1)
        if t.kind == "act":
            p.src = (t.vid,)
            return dataclasses.replace(t, vid=self.append(p), shape=shape)
        return dataclasses.replace(t, shape=shape, pools=t.pools + [p])

    def avgpool(self, n, t: _T, k, stride, padding, ceil_mode, divisor, ir: bool = False) -> _T:
        """Average pool (torch's window and stride; `ir`: already the IR's (kh, kw))."""
        one_d = len(_meta_shape(n) or ()) == 3 and not ir
        k = _pair(k)
        s = _pair(stride) if stride else k
        if one_d:
            k, s = (1, k[0]), (1, s[0])
        if any(_pair(padding)) or ceil_mode:
            self.refuse(n, "average pooling with padding or ceil_mode (windows of varying size) has no IR "
                           "mapping; the IR pools without padding")
        if t.kind == "raw":
            self.refuse(n, "pool after edgeq.nn.Input, not before")
        t = self.plain(n, t)
        c, h, w = t.shape
        if k == (h, w) and divisor is None and t.kind == "act":
            return dataclasses.replace(t, gap=_lname(n, self.prefix))  # may fold into the next linear layer
        return self.avg_op(n, t, k[0], k[1], s[0], s[1], int(divisor or k[0] * k[1]))

    def adaptive(self, n, t: _T, size) -> _T:
        c, h, w = t.shape
        one_d = len(_meta_shape(n) or ()) == 3
        size = (1, int(size if isinstance(size, int) else size[0])) if one_d else _pair(size)
        size = tuple(d if o is None else o for o, d in zip(size, (h, w)))
        if h % size[0] or w % size[1]:
            self.refuse(n, f"adaptive average pool {h}x{w} -> {size[0]}x{size[1]}: windows of unequal "
                           "size (the IR's windows are fixed; give a size that divides the input)")
        k = (h // size[0], w // size[1])
        return self.avgpool(n, t, k, k, 0, False, None, ir=True)

    def mean(self, n, t: _T) -> _T:
        ins = _meta_shape(_src(n))
        dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
        dims = {int(d) % len(ins) for d in ((dims,) if isinstance(dims, int) else (dims or ()))}
        if n.kwargs.get("dtype") is not None or dims != set(range(2, len(ins))):
            self.refuse(n, f"a mean over dims {sorted(dims)} is not a global average pool (dims 2.. of "
                           "(N, C, ...)): no IR mapping")
        return self.adaptive(n, t, 1)

    def add(self, n) -> _T:
        a = n.args if len(n.args) >= 2 else (_src(n), n.kwargs.get("other"))
        alpha = n.kwargs.get("alpha", 1)
        if len(a) != 2 or not all(isinstance(v, fx.Node) for v in a) or alpha != 1:
            self.refuse(n, "only the sum of two tensors (x + y, torch.add(x, y)) has an IR op (ADD); "
                           "constants and alpha do not")
        ins = [self.plain(n, self.get(n, v)) for v in a]
        if ins[0].shape != ins[1].shape or ins[0].flat != ins[1].flat or any(v.kind == "raw" for v in ins):
            self.refuse(n, f"an add of shapes {ins[0].shape} and {ins[1].shape}: ADD takes two graph values of "
                           "the same shape (no broadcasting)")
        # the common unit q: a power of two per channel that puts the sum's bound at 2**29 (or the
        # finer unit of an int32 input, which then enters with the exact multiplier q_in / q)
        r = np.zeros(ins[0].C)
        for v in ins:
            if v.kind == "acc":
                r = r + np.abs(v.a) * v.acc_bound + np.abs(v.b)
            else:
                k, c0, vmax = self.lin(n, v, "an add")
                r = r + np.abs(k) * vmax + np.abs(c0)
        q = _pow2_unit(r, 29)
        for v in ins:
            if v.kind == "act" and v.enc == "I32" and v.offset is None:
                q = np.minimum(q, v.scale)
        done = {}  # x + x: one stored value read twice
        for v in ins:
            if id(v) not in done:
                done[id(v)] = self.raw(n, v) if self._raw_ok(v) else \
                    self.materialize(n, v, q) if v.kind == "acc" else v
        ins = [done[id(v)] for v in ins]
        m, b, err, bound = [], np.zeros_like(q), np.zeros_like(q), np.zeros_like(q)
        for v in ins:
            k, c0, vmax = self.lin(n, v, "an add")
            mi = np.round(k / q)
            m.append(mi)
            b, bound = b + c0, bound + np.abs(mi) * vmax
            err = err + v.err + np.abs(mi * q - k) * vmax
        m = np.stack(m)
        if np.abs(m).max() > 2**30 or bound.max() >= ACC_LIMIT:
            self.refuse(n, "the two inputs' scales are too far apart for an exact int32 ADD (multipliers "
                           f"up to {np.abs(m).max():.3g}, sums up to {bound.max():.3g})")
        op = FoldedAdd(m=m.astype(np.int64), src=(ins[0].vid, ins[1].vid), name=_lname(n, self.prefix))
        t = self.pending(op, ins[0].shape, q, b, bound, err)
        t.flat = ins[0].flat
        return t

    def cat(self, n) -> _T:
        kw = _args(n, ("tensors", "dim"))
        xs, dim = kw.get("tensors"), kw.get("dim", 0)
        ins = [self.plain(n, self.get(n, v)) for v in (xs or ())]
        nd = len(_meta_shape(n) or ())
        if len(ins) < 1 or dim % max(nd, 1) != 1 or nd < 3:
            self.refuse(n, f"torch.cat along dim {dim} of a {nd}-d tensor: the IR concatenates channels (dim 1) "
                           "of (N, C, H, W) / (N, C, L) tensors")
        ins = [self.materialize(n, v) for v in ins]
        out = ins[0]
        for v in ins[1:]:
            if v.shape[1:] != out.shape[1:] or v.enc != out.enc:
                self.refuse(n, f"torch.cat of {out.enc} {out.shape} and {v.enc} {v.shape}: CONCAT needs the "
                               "same height, width and encoding")
            levels, scale = out.levels, out.scale
            if v.enc == "I32":
                scale = np.concatenate([np.broadcast_to(out.scale, (out.C,)), np.broadcast_to(v.scale, (v.C,))])
            else:
                lo, hi = sorted((np.asarray(out.levels), np.asarray(v.levels)), key=len)
                if not np.array_equal(hi[:len(lo)], lo) or not np.isclose(out.scale, v.scale, rtol=1e-12):
                    self.refuse(n, f"torch.cat of activations with different levels/scales ({out.levels.tolist()} x "
                                   f"{out.scale:.6g}, {v.levels.tolist()} x {v.scale:.6g}): the next layer could "
                                   "not read them with one set of integer weights")
                levels = hi
            op = FoldedConcat(src=(out.vid, v.vid), name=_lname(n, self.prefix))
            out = self.act_of(self.append(op), (out.C + v.C,) + out.shape[1:], out.enc, levels=levels,
                              scale=scale, vmax=np.concatenate([out.vmax, v.vmax]),
                              err=np.concatenate([out.err, v.err]))
        return out

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
        return dataclasses.replace(t, flat=True)

    def output(self, n) -> str:
        src = n.args[0]
        if not isinstance(src, fx.Node):
            self.refuse(n, "the model must return one tensor (the scores)")
        t = self.env.get(src)
        if t is None or t.kind == "raw" or (t.kind == "act" and not t.gap and t.enc != "I32"):
            self.refuse(src, "the model's output must be a QConv/QLinear layer's value (with its batch "
                             "norm), without an activation quantizer: the scores")
        t = self.plain(src, t)
        if t.kind == "act":  # an int32 value (read by other nodes too): the scores are a last op
            t = self.identity(src, t)
        if t.pools:
            self.refuse(src, "max-pool of the scores has no IR mapping")
        if t.shape[1] * t.shape[2] != 1:
            self.refuse(src, f"the scores must be (N, classes); the output is {t.shape[0]} channels of "
                             f"{t.shape[1]}x{t.shape[2]}")
        self.append(_affine(t))
        self.out_err = t.err
        return src.name


def _affine(t: _T) -> _Staged:
    """The last layer's AFFINE stage (see module docstring)."""
    fb, a, b = t.op, t.a, t.b
    fb.out = "AFFINE"
    if not isinstance(fb, FoldedBlock):  # ADD / AVGPOOL scores: accumulators up to 2**31
        return _affine_wide(t)
    amax = float(np.abs(a).max()) or 1.0
    bound = float(t.acc_bound.max())
    bmax = float(np.abs(b).max()) / amax
    p = 20
    while p > 0 and (bound + bmax + 1) * 2**p >= 2**30:
        p -= 1
    if t.f32:  # scores floor(acc * mul + add), float32 mul/add, no shift
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


def _requant(a: np.ndarray, b: np.ndarray, th: np.ndarray, step: float, bits: int, bound=None):
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


def _fold_stage(blk, a, b, th, lv, enc: str, bits: int, f32: bool = False, bound=None) -> np.ndarray:
    """Set blk's output stage for quantizer(y = a*acc + b) with thresholds th and levels lv: SIGN
    (B1), REQUANT (uniform levels, >= REQUANT_MIN_BITS bits, integer op) or MULTI.  `bound`: max
    |acc| per channel (or one number) over every input.  Returns how far (quantizer input units,
    per channel) the stage may put a value from a threshold: 0 except for REQUANT (`_requant`)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    step = _uniform_step(th, lv) if enc == "U8" and bits >= REQUANT_MIN_BITS and not f32 else None
    rq = _requant(a, b, th, step, bits, bound) if step else None
    if rq is not None:
        blk.out, blk.out_bits = "REQUANT", bits
        blk.mul, blk.add, blk.shift = rq
        blk.thr, blk.flip = None, None
        acc = np.broadcast_to(np.asarray(bound if bound is not None else 2.0**31, np.float64), a.shape)
        return step * (0.5 * acc + 0.5) / 2.0**blk.shift
    thr, flip = _thresholds(a, b, th, f32=f32)
    blk.flip = flip
    if enc == "B1":
        blk.out, blk.thr = "SIGN", thr[:, 0]
    else:
        blk.out, blk.thr, blk.out_bits = "MULTI", thr, bits
    return np.zeros(len(a))


def _affine_wide(t: _T) -> _Staged:
    """AFFINE scores of an ADD / AVGPOOL: one unit u (a power of two putting the scores' bound at
    2**29) for every class, y = (acc * mul + add) >> S = round((a * acc + b) / u) within
    1/2 + (|acc| / 2 + 1) / 2**S, mul = round(a / u * 2**S), add = floor((b / u + 1/2) * 2**S),
    S the largest shift keeping mul and add in int32."""
    fb = t.op
    u = float(_pow2_unit(np.max(np.abs(t.a) * t.acc_bound + np.abs(t.b)), 29))
    mul, add, sh = _round_affine(t.a / u, t.b / u)  # |a / u| <= 2**29: always fits at shift 0
    fb.mul, fb.add, fb.shift, fb.score_unit = mul, add, sh, u
    return fb


def _round_affine(ra: np.ndarray, rb: np.ndarray):
    """(mul, add, shift) with (acc * mul + add) >> shift = round(ra * acc + rb) within
    1/2 + (|acc| / 2 + 1) / 2**shift: mul = round(ra * 2**S), add = floor((rb + 1/2) * 2**S), S the
    largest shift <= 31 keeping both in int32; None when even S = 0 does not."""
    for sh in range(31, -1, -1):
        mul, add = np.round(ra * 2.0**sh), np.floor((rb + 0.5) * 2.0**sh)
        if max(np.abs(mul).max(), np.abs(add).max()) < 2**31 - 1:
            return mul.astype(np.int64), add.astype(np.int64), sh
    return None


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


def _stage_kw(op: _Staged) -> dict:
    pt = np.float32 if op.f32 else np.int32
    if op.out in ("AFFINE", "REQUANT"):
        kw = {"mul": np.asarray(op.mul).astype(pt), "add": np.asarray(op.add).astype(pt), "shift": op.shift}
        if op.out == "REQUANT":
            kw["out_bits"] = op.out_bits
        return {"out": op.out, **kw}
    return {"out": op.out, "thr": np.asarray(op.thr).astype(pt), "flip": np.asarray(op.flip).astype(bool),
            "out_bits": op.out_bits}


def _layer(op, i: int):
    """The graph layer of folded op i (src () when it reads the previous layer's output)."""
    src = () if tuple(op.src) == (i,) else tuple(int(v) for v in op.src)
    if isinstance(op, FoldedPool):
        return MaxPool(k=op.k, stride=op.stride, kw=None if op.kw == op.k else op.kw,
                       stride_w=None if op.stride_w == op.stride else op.stride_w, name=op.name, src=src)
    if isinstance(op, FoldedConcat):
        return Concat(src=src, name=op.name)
    if isinstance(op, FoldedAdd):
        return Add(m=np.asarray(op.m).astype(np.int32), name=op.name, src=src, **_stage_kw(op))
    if isinstance(op, FoldedAvgPool):
        return AvgPool(kh=op.kh, kw=op.kw, stride=op.stride,
                       stride_w=None if op.stride_w == op.stride else op.stride_w, name=op.name, src=src,
                       **_stage_kw(op))
    fb = op
    w = np.transpose(fb.codes if fb.w_enc == "KBIT" else fb.values, (0, 2, 3, 1))
    w = np.ascontiguousarray(w.astype({"KBIT": np.uint8, "I16": np.int16, "F32": np.float32}
                                      .get(fb.w_enc, np.int8)))
    kw = {"weight": w, "w_enc": fb.w_enc, "stride": fb.stride, "pad": fb.pad, "name": fb.name, "src": src,
          "groups": fb.groups, "stride_w": None if fb.stride_w == fb.stride else fb.stride_w,
          "pad_w": None if fb.pad_w == fb.pad else fb.pad_w,
          "winograd": fb.winograd if fb.w_enc == "F32" and fb.wino_eligible else None}
    if fb.w_enc == "KBIT":
        kw.update(lut=fb.lut.astype(np.int32), wbits=fb.wbits)
    return Conv(**kw, **_stage_kw(fb))


def _check_winograd(winograd):
    if winograd not in (None, True, False):
        raise ValueError(f"winograd must be None (the packer's rule), True or False, got {winograd!r}")
    return winograd


def _graph(folded: Folded, model=None, meta: dict | None = None, classes=None,
           ternary: str = "auto", winograd: bool | None = None) -> Graph:
    # F32 3x3 stride-1 pad-1 layers: Winograd F(2x2, 3x3) by the option (None: the packer's rule,
    # graph.wino_f23_auto); the integer forward (_f32_conv) computes what the blob will hold
    for op in folded.ops:
        if isinstance(op, FoldedBlock) and op.f32:
            op.winograd = _check_winograd(winograd) if op.wino_eligible else None
    layers = [_layer(op, i) for i, op in enumerate(folded.ops)]
    n_out = int(np.prod(infer_shapes(Graph(tuple(folded.input_shape), folded.pre.mode, 0 if folded.pre.mode == "RAW"
                                           else folded.pre.param, layers))[-1].out_shape))
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
            dense = layer.pad == 0 and layer.pw == 0 and layer.g == 1 and (layer.kh, layer.kw) == (h, w)
            wt = layer.weight.reshape(layer.n_out, 1, 1, -1) if dense else layer.weight
            layer.w_enc = best_ternary_encoding(wt)
    return g



def to_graph(model, meta: dict | None = None, example=None, classes=None, ternary: str = "auto",
             winograd: bool | None = None) -> Graph:
    """The exported Graph of a model (see module docstring; `ternary`: auto | dense | sparse |
    smallest; `winograd`: None | True | False for the F32 3x3 stride-1 pad-1 layers)."""
    return _graph(fold(model, example), model, meta, classes, _check_ternary(ternary), winograd)


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


def _apply_stage(op: _Staged, acc: torch.Tensor) -> torch.Tensor:
    """The runtime's value after op's output stage (B1 +-1, U8 codes, I32 integers; float64)."""
    dev = acc.device
    C = acc.shape[1]
    view = lambda v: torch.as_tensor(np.asarray(v), device=dev).view(1, -1, *([1] * (acc.dim() - 2)))
    if op.out in ("AFFINE", "REQUANT"):
        mul, add = view(op.mul), view(op.add)
        if op.f32:  # floor(acc * mul + add), each operation rounded to float32
            y = torch.floor((acc * mul.float() + add.float()).to(torch.float64))
        else:
            y = torch.div(acc * mul + add, 2**op.shift, rounding_mode="floor")
        if op.out == "REQUANT":
            return y.clamp(0, 2**op.out_bits - 1).to(torch.float64)
        return y.clamp(I32_MIN, I32_MAX).to(torch.float64)
    thr = np.asarray(op.thr, np.float32 if op.f32 else np.int64).reshape(C, -1)
    thr = torch.as_tensor(thr, device=dev)  # (C, L), non-decreasing (flip: non-increasing)
    flip = torch.as_tensor(np.asarray(op.flip, bool), device=dev).view(-1, 1)
    if thr.shape[1] == 1 and op.out == "SIGN":
        t, f = view(thr.view(-1).cpu().numpy()), view(np.asarray(op.flip, bool))
        return torch.where(torch.where(f, acc <= t, acc >= t), 1.0, -1.0).to(torch.float64)
    # code = #{i : thr_i <= acc} (flip: #{i : -thr_i <= -acc}), a sorted search per channel
    s = torch.where(flip, -thr, thr).contiguous()
    v = acc.to(thr.dtype).transpose(0, 1).reshape(C, -1)
    code = torch.searchsorted(s, torch.where(flip, -v, v).contiguous(), right=True)
    return code.reshape(C, acc.shape[0], *acc.shape[2:]).transpose(0, 1).to(torch.float64)


@torch.no_grad()
def _run(folded: Folded, px, keep: bool = False):
    """(scores, accs, values): the exact integer forward; values[v] is value v (the runtime's
    values: B1 +-1, U8 codes, I32 integers, as float64 NCHW), accs the accumulators of every op
    with an output stage (int64, or float32 for F32 layers)."""
    px = torch.as_tensor(np.asarray(px)) if not torch.is_tensor(px) else px
    dev = px.device
    pre = folded.pre
    lv = torch.as_tensor(pre.levels_int, dtype=torch.float64, device=dev)
    x = lv[pre.codes(px)].reshape((len(px),) + tuple(folded.input_shape))  # B1 +-1, U8 codes = levels
    values, accs = [x], []
    for i, op in enumerate(folded.ops):
        ins = [values[v] for v in op.src]
        if isinstance(op, FoldedPool):
            x = F.max_pool2d(ins[0], (op.k, op.kw), (op.stride, op.stride_w))
        elif isinstance(op, FoldedConcat):
            x = torch.cat(ins, 1)
        else:
            if isinstance(op, FoldedBlock):
                acc = _conv_acc(ins[0], op)
            elif isinstance(op, FoldedAvgPool):  # exact: integer sums in float64 (< 2**53)
                s = F.avg_pool2d(ins[0], (op.kh, op.kw), (op.stride, op.stride_w), divisor_override=1)
                acc = torch.round(s).to(torch.long).clamp(I32_MIN, I32_MAX)
            else:  # ADD, in 64 bits, saturated to int32
                m = torch.as_tensor(np.asarray(op.m, np.int64), device=dev)
                a0, a1 = (v.to(torch.long) for v in ins)
                acc = (m[0].view(1, -1, 1, 1) * a0 + m[1].view(1, -1, 1, 1) * a1).clamp(I32_MIN, I32_MAX)
            accs.append(acc)
            x = _apply_stage(op, acc)
        values.append(x)
        if not keep:  # free what no later op reads
            last = {v for o in folded.ops[i + 1:] for v in o.src}
            values = [v if (j in last or j == len(values) - 1) else None for j, v in enumerate(values)]
    # scores in HWC flatten order (the runtime's)
    scores = x.permute(0, 2, 3, 1).reshape(len(x), -1)
    return scores, accs, values


def _conv_acc(x: torch.Tensor, fb: FoldedBlock) -> torch.Tensor:
    if not fb.in_ident:  # U8 codes -> the integer levels the weights multiply
        x = torch.as_tensor(np.asarray(fb.in_levels), dtype=torch.float64, device=x.device)[x.to(torch.long)]
    if fb.f32:
        return _f32_conv(x, fb)
    w = torch.as_tensor(fb.values, dtype=torch.float64, device=x.device)
    return torch.round(F.conv2d(x, w, stride=(fb.stride, fb.stride_w), padding=(fb.pad, fb.pad_w),
                                groups=fb.groups)).to(torch.long)


def int_forward(model, px, return_accs: bool = False, folded: Folded | None = None):
    """Exact integer forward in torch: scores (N, n_classes) float64 holding integers.
    `model` is a model (traced and folded here) or a `Folded`.

    return_accs=True also returns the list of accumulators (N, C, OH, OW) of every op with an
    output stage (CONV, AVGPOOL, ADD), in graph order."""
    if folded is None:
        folded = model if isinstance(model, Folded) else fold(model, px[:1])
    scores, accs, _ = _run(folded, px)
    return (scores, accs) if return_accs else scores


def _f32_conv(x: torch.Tensor, fb: FoldedBlock) -> torch.Tensor:
    """The runtimes' float32 accumulator: from +0, taps in (ky, kx, c) order (c within the output
    channel's group), acc = acc + (a * w), one float32 rounding per operation (zero-padded taps
    add a zero product: no change)."""
    w = torch.as_tensor(np.asarray(fb.values, np.float32), device=x.device)  # (N, C/g, kh, kw)
    n, cg, kh, kw = w.shape
    wino = fb.winograd if fb.winograd is not None else (
        fb.wino_eligible and wino_f23_auto(x.shape[1], n, x.shape[2], x.shape[3]))
    if wino:  # Winograd F(2x2, 3x3): the numpy reference's float32 operations, image by image
        from ..reference.ref import conv2d_f32_wino_ref

        wh = np.ascontiguousarray(np.transpose(np.asarray(fb.values, np.float32), (0, 2, 3, 1)))
        xs = x.detach().cpu().numpy()
        out = [conv2d_f32_wino_ref(img.transpose(1, 2, 0).astype(np.int64), "U8", wh) for img in xs]
        return torch.as_tensor(np.stack(out).transpose(0, 3, 1, 2).copy(), device=x.device)
    sh, sw, ph, pw = fb.stride, fb.stride_w, fb.pad, fb.pad_w
    xp = F.pad(x, (pw, pw, ph, ph)).to(torch.float32)
    oh = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow = (x.shape[3] + 2 * pw - kw) // sw + 1
    first = (torch.arange(n, device=x.device) // (n // fb.groups)) * cg  # each output's first input channel
    acc = torch.zeros((x.shape[0], n, oh, ow), dtype=torch.float32, device=x.device)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]  # (B, C, oh, ow)
            for ch in range(cg):
                prod = patch[:, first + ch] * w[:, ch, ky, kx].view(1, n, 1, 1)
                acc = acc + prod
    return acc


def accs_hwc(accs: list, index: int) -> list:
    """Per-layer accumulators of one image in the refnet layout (OH, OW, N) int64 numpy."""
    return [a[index].permute(1, 2, 0).cpu().numpy() for a in accs]



def export_blob(model, meta: dict | None = None, example=None, ternary: str = "auto",
                winograd: bool | None = None) -> bytes:
    """Graph -> blob bytes via edgeq.format.pack (no check; `edgeq.export` also proves the blob)."""
    from ..format import pack

    model.eval()
    return pack.write_blob(to_graph(model, meta, example, ternary=ternary, winograd=winograd))


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
                 verify: bool = True, ternary: str = "auto", winograd: bool | None = None) -> Exported:
    """Trace `model`, fold it into the integer IR, write the blob to `path` (when given) and prove
    it on `example_input` (raw uint8 inputs, (N, C, H, W) or (N, C, L)): the C host runtime must
    give the exported graph's scores bit for bit, and the model's eval forward (float64) must
    agree with them (see module docstring).  `ternary` chooses the storage of ternary layers:
    "auto" (the faster form), "dense" (TERN bit-planes), "sparse" (TERN_SPARSE) or "smallest".
    `winograd` chooses how float (F32) 3x3 stride-1 pad-1 layers sum: None (default) by Winograd
    F(2x2, 3x3) where the packer's rule says it takes fewer Cortex-M4F instructions, True on every
    such layer, False tap by tap (docs/blob-format.md, "F32 Winograd").
    Raises UnsupportedError for what the IR cannot
    express and ExportMismatchError when the proof fails; leaves the model in eval mode."""
    from ..format import pack

    model.eval()
    px = _example(model, example_input)
    folded = fold(model, px[:1])
    g = _graph(folded, model, meta, classes, _check_ternary(ternary), winograd)
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
    px_np = np.asarray(px.cpu() if torch.is_tensor(px) else px)
    cls, scores = _blob_scores(blob, graph_input(folded, px_np))
    ref, accs, values = _run(folded, torch.as_tensor(px_np), keep=True)
    ref = ref.numpy().astype(np.int64)
    bad = np.nonzero((np.asarray(scores, np.int64) != ref).any(1))[0]
    if len(bad):
        raise ExportMismatchError(
            f"the C runtime's scores differ from the exported graph's integer forward on {len(bad)} of "
            f"{len(ref)} inputs (first: {int(bad[0])}); this is an edgeq bug, please report it")
    report = {"images": int(len(ref)), "threshold_ties": 0, "score_ties": 0}
    y = _float_check(model, folded, px_np, values, report)
    fb = folded.ops[-1]
    y = y.reshape(len(ref), -1)
    accmax = float(accs[-1].abs().amax().item()) if len(accs[-1]) else 0.0
    if fb.f32:
        bound = fb.score_unit * (1.0 + 1e-4 * (accmax * float(np.abs(fb.mul).max()) + float(np.abs(fb.add).max())))
        bound = bound + 1e-4 * np.abs(y)
    else:
        bound = fb.score_unit * ((0.5 * accmax + 0.5) / 2**fb.shift + 1.0) + 1e-9 * np.abs(y)
    if folded.out_err is not None:  # fixed-point rescaling before the last op (residual adds)
        bound = bound + np.asarray(folded.out_err, np.float64)[None, :] * (1 + 1e-9)
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


def _blob_scores(blob: bytes, gin: np.ndarray):
    """(classes, scores) of the blob: the C host runtime."""
    try:
        from ..native.runtime import Model
    except (ImportError, EdgeqError) as e:
        raise EdgeqError(f"the C host runtime is needed to check the blob ({e}); build it with "
                         "`python host/build_cffi.py`, or pass verify=False") from None
    return Model(blob).predict(gin)


def _float_check(model: nn.Module, folded: Folded, px: np.ndarray, values: list, report: dict) -> np.ndarray:
    """Run the model's traced forward in float64 on px, comparing each quantizer's output with the
    integer graph's activation there (and continuing from the graph's value); returns the output.
    A quantizer's input may differ from the integer form's by the fixed-point rescaling bound of
    its branch (`_CheckAt.tol`, zero where the form is exact) plus float rounding."""
    m64 = copy.deepcopy(model).cpu().double().eval()
    gm, prefix = trace(m64)
    pre = folded.pre
    x_in = torch.as_tensor(np.asarray(pre.levels_int, np.float64))[values[0].long()] * pre.scale \
        if pre.enc == "U8" else values[0] * pre.scale

    class _Check(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.op == "call_module" and isinstance(self.module.get_submodule(n.target), Input):
                return x_in.reshape(out.shape)
            hit = folded.checks.get(n.name)
            if hit is None:
                return out
            v = values[hit.vid]
            lv = torch.as_tensor(np.asarray(hit.levels, np.float64))
            real = (v if hit.op.out == "SIGN" else lv[v.long()]) * hit.scale  # B1: the value is the level
            want = real.reshape(out.shape)
            off = (out - want).abs() > 1e-6 * (1 + want.abs())  # levels may be float32-rounded
            if bool(off.any()):
                y = self.env[_src(n)]
                t = torch.as_tensor(hit.op.thresholds, dtype=torch.float64)
                d = (y[off].unsqueeze(-1) - t).abs().amin(-1)
                tolc = torch.as_tensor(np.asarray(hit.tol, np.float64)).view(1, -1, *([1] * (y.dim() - 2)))
                tol = torch.broadcast_to(tolc, y.shape)[off] * (1 + 1e-9) + \
                    (1e-4 if hit.op.f32 else 1e-9) * (1 + t.abs().max())
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
