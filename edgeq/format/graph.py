"""The exported model: a plain-numpy, framework-free graph (no torch past export).

A `Graph` is a preprocessing step plus a list of layers in topological order; its exact integer
semantics are in docs/blob-format.md.  `edgeq.format.pack` turns it into a blob and back,
`edgeq.reference.refnet` runs it in numpy (the reference every runtime must match bit for bit).

Values: value 0 is the preprocessed input, value j + 1 the output of layer j.  A layer reads
`src` (a tuple of value ids; () = the previous layer's output, i.e. value i for layer i); ADD and
CONCAT read two values.  Every source must be an earlier value (v <= i for layer i).  The scores
are the last layer's output, flattened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeError, UnsupportedError

W_ENCS = ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32")
ACT_ENCS = ("B1", "U8", "I32")
OUT_STAGES = ("SIGN", "MULTI", "AFFINE", "REQUANT")
PRE_MODES = ("THRESH", "RAW", "QUANT")
ADD_M_MAX = 2**30  # |m0|, |m1| of an ADD layer


@dataclass
class Conv:
    """Integer convolution (dense = kernel covering the input).

    weight: (N, kh, kw, C/groups) values: int8 +-1 (B1), int8 -1/0/1 (TERN, TERN_SPARSE), int8 (I8),
            int16 (I16), float32 (F32),
            or uint8 codes (KBIT, with `lut` int32 (2**wbits, 2**abits) and `wbits`).
    groups: output channel n reads input channels [gi*C/g, (gi+1)*C/g), gi = n // (N/g);
            depthwise: groups = C (N a multiple of C).
    stride, pad: vertical; stride_w, pad_w: horizontal (None = the same as stride / pad).
    out:    'SIGN'    -> thr int32 (N,), flip bool (N,)
            'MULTI'   -> thr int32 (N, 2**out_bits - 1), flip bool (N,), out_bits
            'AFFINE'  -> mul int32 (N,), add int32 (N,), shift
            'REQUANT' -> mul int32 (N,), add int32 (N,), shift, out_bits:
                         code = clamp((acc * mul + add) >> shift, 0, 2**out_bits - 1)
    F32 weights: float32 accumulators and float32 thr / mul / add (AFFINE: shift 0,
            y = floor(acc * mul + add) saturated to int32; docs/blob-format.md); no REQUANT.
    winograd: F32 3x3 stride-1 pad-1 one-group layers only: True computes the accumulators by
            Winograd F(2x2, 3x3) (its own float32 roundings, blob 1.2 flag), False tap by tap,
            None (default) as wino_f23_auto decides for the layer's shape (see wino_f23).
    src:    () = the previous layer's output, or (value id,).
    """

    weight: np.ndarray
    w_enc: str
    out: str
    stride: int = 1
    pad: int = 0
    thr: np.ndarray | None = None
    flip: np.ndarray | None = None
    out_bits: int = 0
    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    shift: int = 0
    lut: np.ndarray | None = None
    wbits: int = 0
    name: str = ""
    groups: int = 1
    stride_w: int | None = None
    pad_w: int | None = None
    src: tuple = ()
    winograd: bool | None = None

    @property
    def kh(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kw(self) -> int:
        return int(self.weight.shape[2])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def sw(self) -> int:
        """Horizontal stride."""
        return self.stride if self.stride_w is None else int(self.stride_w)

    @property
    def pw(self) -> int:
        """Horizontal padding."""
        return self.pad if self.pad_w is None else int(self.pad_w)

    @property
    def g(self) -> int:
        """Groups (0 and None read as 1)."""
        return int(self.groups or 1)


def wino_f23_eligible(layer: Conv) -> bool:
    """True when the CONV may run by Winograd F(2x2, 3x3) (spec.wino_f23_ok): F32 weights, 3x3,
    stride 1 and padding 1 both ways, one group."""
    return (layer.w_enc == "F32" and layer.kh == 3 and layer.kw == 3 and layer.stride == 1
            and layer.sw == 1 and layer.pad == 1 and layer.pw == 1 and layer.g == 1)


def wino_f23_auto(in_c: int, out_c: int, out_h: int, out_w: int) -> bool:
    """The packer's choice for an eligible layer (winograd=None): Winograd where it took fewer
    Cortex-M4F instructions than the direct tap-by-tap loop in a sweep of layer shapes on
    qemu-mps2-an386 (docs/blob-format.md, "F32 Winograd"): outputs of at least 4x4 (smaller
    images pay the transforms for too few tiles) and at least half as many output as input
    channels (the input transform is shared by the output channels)."""
    return min(out_h, out_w) >= 4 and 2 * out_c >= in_c


def wino_f23(layer: Conv, in_shape: tuple) -> bool:
    """Whether this CONV is computed by Winograd F(2x2, 3x3) (blob LFLAG_WINO_F23): the layer's
    `winograd` (True on an ineligible layer raises ShapeError), or for None wino_f23_auto on an
    eligible layer. in_shape: (H, W, C) of its input."""
    if layer.winograd is None:
        return wino_f23_eligible(layer) and wino_f23_auto(in_shape[2], layer.n_out, in_shape[0], in_shape[1])
    if layer.winograd and not wino_f23_eligible(layer):
        raise ShapeError("winograd=True needs an F32 CONV, 3x3, stride 1, pad 1, groups 1 (got "
                         f"{layer.w_enc} {layer.kh}x{layer.kw} stride {layer.stride}/{layer.sw} pad "
                         f"{layer.pad}/{layer.pw} groups {layer.g}); use winograd=None or False")
    return bool(layer.winograd)


@dataclass
class MaxPool:
    """Max over a k x kw window (kw None = k), stride vertical / stride_w horizontal, no padding."""

    k: int = 2
    stride: int = 2
    name: str = ""
    kw: int | None = None
    stride_w: int | None = None
    src: tuple = ()

    @property
    def kh(self) -> int:
        return int(self.k)

    @property
    def win_w(self) -> int:
        return int(self.k if self.kw is None else self.kw)

    @property
    def sw(self) -> int:
        return int(self.stride if self.stride_w is None else self.stride_w)


@dataclass(kw_only=True)
class _StageFields:
    """The output stage of an AVGPOOL / ADD layer (keyword-only; the same tensors as a CONV's
    over its C channels): out SIGN / MULTI / AFFINE / REQUANT with thr, flip, out_bits, mul,
    add, shift as in Conv."""

    out: str = "AFFINE"
    thr: np.ndarray | None = None
    flip: np.ndarray | None = None
    out_bits: int = 0
    mul: np.ndarray | None = None
    add: np.ndarray | None = None
    shift: int = 0
    name: str = ""
    src: tuple = ()


@dataclass
class AvgPool(_StageFields):
    """Window sums, then an output stage per channel (same tensors as a CONV's, N = C):
    acc[c] = sat32(sum of the kh x kw window) of B1 (+-1) / U8 (code) / I32 values, no padding.
    Global average pool: kh = H, kw = W."""

    kh: int
    kw: int
    stride: int
    stride_w: int | None = None

    @property
    def sw(self) -> int:
        return int(self.stride if self.stride_w is None else self.stride_w)


@dataclass
class Add(_StageFields):
    """acc[c] = sat32(m[0, c] * a0[c] + m[1, c] * a1[c]) (64-bit) of two same-shape values
    src = (a, b) (any activation encodings), then an output stage; |m| <= 2**30."""

    m: np.ndarray


@dataclass
class Concat:
    """Channels of src[0] then channels of src[1]: same H, W and encoding."""

    src: tuple = ()
    name: str = ""


@dataclass
class Flatten:
    """(H, W, C) -> (1, 1, H*W*C), HWC order. The packer stores every dense layer (a CONV whose
    kernel covers its input) as FLATTEN + 1x1 CONV, so a 1-channel input costs 1 bit per weight."""

    name: str = ""
    src: tuple = ()


STAGE_LAYERS = (Conv, AvgPool, Add)  # layers with an output stage (accumulators first)


@dataclass
class Graph:
    input_shape: tuple  # (C, H, W)
    pre_mode: str  # THRESH | RAW | QUANT
    pre_param: int  # threshold (THRESH) or bits (QUANT); 0 for RAW
    layers: list
    classes: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    flags: int = 0


@dataclass
class LayerShape:
    in_enc: str
    in_shape: tuple  # (H, W, C) of the first input (src[0])
    out_enc: str
    out_shape: tuple  # (H, W, C)
    in_levels: int  # number of distinct activation codes the input can hold (U8), 2 for B1
    src: tuple = ()  # value ids read, resolved (never empty)
    in1_enc: str | None = None  # second input (ADD, CONCAT)
    in1_shape: tuple | None = None
    in1_levels: int = 0
    out_levels: int = 0


def input_enc(g: Graph) -> tuple[str, int]:
    """Encoding of the first activation and how many codes it can take."""
    if g.pre_mode == "THRESH":
        return "B1", 2
    if g.pre_mode == "RAW":
        return "U8", 256
    if g.pre_mode == "QUANT":
        if not 1 <= g.pre_param <= 8:
            raise ShapeError(f"QUANT preprocessing needs 1..8 bits, got {g.pre_param}")
        return "U8", 1 << g.pre_param
    raise UnsupportedError(f"unknown preprocessing mode {g.pre_mode!r}; use one of {PRE_MODES}")


def conv_out_dim(n: int, k: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - k) // stride + 1


def layer_src(layer, i: int) -> tuple:
    """The value ids layer i reads: src, or (i,) (the previous layer's output) when empty."""
    src = tuple(getattr(layer, "src", ()) or ())
    return src if src else (i,)


def is_dag(g: Graph) -> bool:
    """True when some layer reads anything but the previous layer's output (stored src != 0)."""
    return any(layer_src(layer, i) != (i,) for i, layer in enumerate(g.layers))


def stage_out(layer, where: str, f32: bool = False) -> tuple[str, int]:
    """(encoding, levels) of an output stage's result; checks out_bits."""
    if layer.out not in OUT_STAGES:
        raise UnsupportedError(f"{where}: output stage {layer.out!r} not in {OUT_STAGES}")
    if layer.out == "SIGN":
        return "B1", 2
    if layer.out == "AFFINE":
        return "I32", 0
    if layer.out == "REQUANT" and f32:
        raise UnsupportedError(f"{where}: REQUANT is for integer layers; an F32 layer ends in "
                               "SIGN, MULTI or AFFINE")
    if not 1 <= layer.out_bits <= 8:
        raise ShapeError(f"{where}: {layer.out} needs out_bits 1..8, got {layer.out_bits}")
    return "U8", 1 << layer.out_bits


def _check_conv(layer: Conv, where: str, enc: str, levels: int, h: int, w: int, c: int):
    if layer.w_enc not in W_ENCS:
        raise UnsupportedError(f"{where}: weight encoding {layer.w_enc!r} not in {W_ENCS}")
    if enc == "I32":
        raise UnsupportedError(
            f"{where}: a CONV cannot take int32 (AFFINE) activations; end the net with AFFINE "
            "or give the layer before a SIGN/MULTI/REQUANT stage")
    g = layer.g
    if np.ndim(layer.weight) != 4:
        raise ShapeError(f"{where}: weights must be 4-D (N, kh, kw, C/groups), got shape "
                         f"{np.shape(layer.weight)}")
    if g < 1 or c % g or layer.n_out % g:
        raise ShapeError(f"{where}: groups={layer.groups} must divide both the {c} input channels "
                         f"and the {layer.n_out} output channels")
    if layer.weight.shape[3] != c // g:
        raise ShapeError(
            f"{where}: weight shape {layer.weight.shape} does not take {c} input channels in "
            f"{g} group(s); weights must be (N, kh, kw, C/groups) = (N, kh, kw, {c // g})")
    kmax = max(layer.kh, layer.kw)
    if min(layer.stride, layer.sw) < 1 or not (0 <= layer.pad < kmax and 0 <= layer.pw < kmax):
        raise ShapeError(f"{where}: strides must be >= 1 and 0 <= pad < max(kh, kw) = {kmax} "
                         f"(got stride {layer.stride}x{layer.sw}, pad {layer.pad}x{layer.pw})")
    oh = conv_out_dim(h, layer.kh, layer.stride, layer.pad)
    ow = conv_out_dim(w, layer.kw, layer.sw, layer.pw)
    if h + 2 * layer.pad < layer.kh or w + 2 * layer.pw < layer.kw:
        raise ShapeError(f"{where}: kernel {layer.kh}x{layer.kw} larger than the padded input "
                         f"{h + 2 * layer.pad}x{w + 2 * layer.pw}")
    if layer.w_enc == "KBIT":
        if layer.lut is None or layer.lut.ndim != 2:
            raise ShapeError(f"{where}: KBIT weights need a 2-D lut")
        if layer.lut.shape[0] != 1 << layer.wbits:
            raise ShapeError(f"{where}: lut has {layer.lut.shape[0]} rows, wbits={layer.wbits}")
        if layer.lut.shape[1] < levels:
            raise ShapeError(
                f"{where}: lut has {layer.lut.shape[1]} columns but the input activation "
                f"takes {levels} codes")
    return oh, ow


def _window(where: str, what: str, h: int, w: int, kh: int, kw: int, sh: int, sw: int):
    if min(kh, kw, sh, sw) < 1 or kh > h or kw > w:
        raise ShapeError(f"{where}: {what} window {kh}x{kw} stride {sh}x{sw} does not fit the "
                         f"{h}x{w} input (window 1..input size, stride >= 1)")
    return (h - kh) // sh + 1, (w - kw) // sw + 1


def infer_shapes(g: Graph) -> list[LayerShape]:
    """Walk the graph, checking every layer against its inputs; returns one LayerShape per layer.
    Errors (ShapeError / UnsupportedError) name the layer in one line."""
    c, h, w = (int(v) for v in g.input_shape)
    enc, levels = input_enc(g)
    values = [(enc, (h, w, c), levels)]  # value id -> (encoding, (H, W, C), levels)
    shapes = []
    for i, layer in enumerate(g.layers):
        where = f"layer {i} ({layer.name or type(layer).__name__})"
        if not isinstance(layer, (Conv, MaxPool, AvgPool, Add, Concat, Flatten)):
            raise UnsupportedError(f"{where}: unsupported layer type {type(layer).__name__}")
        src = layer_src(layer, i)
        two = isinstance(layer, (Add, Concat))
        if len(src) != (2 if two else 1):
            raise ShapeError(f"{where}: {type(layer).__name__} reads {2 if two else 1} value(s), "
                             f"got src={tuple(layer.src)}" + (" (give src=(a, b))" if two else ""))
        for v in src:
            if not isinstance(v, (int, np.integer)) or not 0 <= v <= i:
                raise ShapeError(f"{where}: source value {v!r} is not an earlier value (0..{i}: 0 = "
                                 "the input, j + 1 = layer j's output); layers must be in topological order")
        src = tuple(int(v) for v in src)
        enc, (h, w, c), levels = values[src[0]]
        in1 = values[src[1]] if two else (None, None, 0)
        if isinstance(layer, Conv):
            oh, ow = _check_conv(layer, where, enc, levels, h, w, c)
            out_enc, out_levels = stage_out(layer, where, layer.w_enc == "F32")
            out_shape = (oh, ow, layer.n_out)
        elif isinstance(layer, MaxPool):
            oh, ow = _window(where, "max-pool", h, w, layer.kh, layer.win_w, layer.stride, layer.sw)
            out_enc, out_levels, out_shape = enc, levels, (oh, ow, c)
        elif isinstance(layer, AvgPool):
            oh, ow = _window(where, "avg-pool", h, w, layer.kh, layer.kw, layer.stride, layer.sw)
            out_enc, out_levels = stage_out(layer, where)
            out_shape = (oh, ow, c)
        elif isinstance(layer, Add):
            if in1[1] != (h, w, c):
                raise ShapeError(f"{where}: ADD inputs have shapes {(h, w, c)} and {in1[1]} (H, W, C); "
                                 "they must be the same")
            m = np.asarray(layer.m)
            if m.shape != (2, c):
                raise ShapeError(f"{where}: m has shape {m.shape}, expected (2, {c})")
            if m.size and (np.abs(m.astype(np.float64)).max() > ADD_M_MAX
                           or not np.array_equal(m, np.round(m))):
                raise ShapeError(f"{where}: m must be integers with |m| <= 2**30")
            out_enc, out_levels = stage_out(layer, where)
            out_shape = (h, w, c)
        elif isinstance(layer, Concat):
            if in1[1][:2] != (h, w) or in1[0] != enc:
                raise ShapeError(f"{where}: CONCAT inputs {(h, w, c)} {enc} and {in1[1]} {in1[0]} need "
                                 "the same H, W and encoding")
            out_enc, out_levels = enc, max(levels, in1[2])
            out_shape = (h, w, c + in1[1][2])
        else:
            out_enc, out_levels, out_shape = enc, levels, (1, 1, h * w * c)
        shapes.append(LayerShape(enc, (h, w, c), out_enc, out_shape, levels, src,
                                 in1[0], in1[1], in1[2], out_levels))
        values.append((out_enc, out_shape, out_levels))
    if not shapes:
        raise ShapeError("the graph has no layers")
    return shapes
