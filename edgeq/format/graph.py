"""The exported model: a plain-numpy, framework-free graph (no torch past export).

A `Graph` is a preprocessing step plus a sequential list of layers; its exact integer semantics
are in docs/blob-format.md.  `edgeq.format.pack` turns it into a blob and back, `edgeq.reference.refnet` runs it in
numpy (the reference every runtime must match bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ShapeError, UnsupportedError

W_ENCS = ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32")
ACT_ENCS = ("B1", "U8", "I32")
OUT_STAGES = ("SIGN", "MULTI", "AFFINE")
PRE_MODES = ("THRESH", "RAW", "QUANT")


@dataclass
class Conv:
    """Integer convolution (dense = kernel covering the input).

    weight: (N, kh, kw, C) values: int8 +-1 (B1), int8 -1/0/1 (TERN, TERN_SPARSE), int8 (I8),
            int16 (I16), float32 (F32),
            or uint8 codes (KBIT, with `lut` int32 (2**wbits, 2**abits) and `wbits`).
    out:    'SIGN'   -> thr int32 (N,), flip bool (N,)
            'MULTI'  -> thr int32 (N, 2**out_bits - 1), flip bool (N,), out_bits
            'AFFINE' -> mul int32 (N,), add int32 (N,), shift
    F32 weights: float32 accumulators and float32 thr / mul / add (AFFINE: shift 0,
            y = floor(acc * mul + add) saturated to int32; docs/blob-format.md).
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

    @property
    def kh(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kw(self) -> int:
        return int(self.weight.shape[2])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class MaxPool:
    k: int = 2
    stride: int = 2
    name: str = ""


@dataclass
class Flatten:
    """(H, W, C) -> (1, 1, H*W*C), HWC order. The packer stores every dense layer (a CONV whose
    kernel covers its input) as FLATTEN + 1x1 CONV, so a 1-channel input costs 1 bit per weight."""

    name: str = ""


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
    in_shape: tuple  # (H, W, C)
    out_enc: str
    out_shape: tuple  # (H, W, C)
    in_levels: int  # number of distinct activation codes the input can hold (U8), 2 for B1


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


def infer_shapes(g: Graph) -> list[LayerShape]:
    """Walk the graph, checking every layer against its input; returns one LayerShape per layer."""
    c, h, w = (int(v) for v in g.input_shape)
    enc, levels = input_enc(g)
    shapes = []
    for i, layer in enumerate(g.layers):
        where = f"layer {i} ({layer.name or type(layer).__name__})"
        if isinstance(layer, Conv):
            if layer.w_enc not in W_ENCS:
                raise UnsupportedError(f"{where}: weight encoding {layer.w_enc!r} not in {W_ENCS}")
            if layer.out not in OUT_STAGES:
                raise UnsupportedError(f"{where}: output stage {layer.out!r} not in {OUT_STAGES}")
            if enc == "I32":
                raise UnsupportedError(
                    f"{where}: a CONV cannot take int32 (AFFINE) activations; end the net with AFFINE")
            if layer.weight.ndim != 4 or layer.weight.shape[3] != c:
                raise ShapeError(
                    f"{where}: weight shape {layer.weight.shape} does not take {c} input channels;"
                    " weights must be (N, kh, kw, C)")
            if layer.stride < 1 or not 0 <= layer.pad < max(layer.kh, layer.kw):
                raise ShapeError(f"{where}: stride must be >= 1 and 0 <= pad < kernel")
            oh = conv_out_dim(h, layer.kh, layer.stride, layer.pad)
            ow = conv_out_dim(w, layer.kw, layer.stride, layer.pad)
            if oh < 1 or ow < 1:
                raise ShapeError(f"{where}: kernel {layer.kh}x{layer.kw} larger than input {h}x{w}")
            n = layer.n_out
            if layer.w_enc == "KBIT":
                if layer.lut is None or layer.lut.ndim != 2:
                    raise ShapeError(f"{where}: KBIT weights need a 2-D lut")
                if layer.lut.shape[0] != 1 << layer.wbits:
                    raise ShapeError(f"{where}: lut has {layer.lut.shape[0]} rows, wbits={layer.wbits}")
                if layer.lut.shape[1] < levels:
                    raise ShapeError(
                        f"{where}: lut has {layer.lut.shape[1]} columns but the input activation "
                        f"takes {levels} codes")
            if layer.out == "SIGN":
                out_enc, out_levels = "B1", 2
            elif layer.out == "MULTI":
                if not 1 <= layer.out_bits <= 8:
                    raise ShapeError(f"{where}: out_bits must be 1..8")
                out_enc, out_levels = "U8", 1 << layer.out_bits
            else:
                out_enc, out_levels = "I32", 0
            shapes.append(LayerShape(enc, (h, w, c), out_enc, (oh, ow, n), levels))
            h, w, c, enc, levels = oh, ow, n, out_enc, out_levels
        elif isinstance(layer, MaxPool):
            if layer.k < 1 or layer.stride < 1 or layer.k > min(h, w):
                raise ShapeError(f"{where}: pool {layer.k}/{layer.stride} does not fit {h}x{w}")
            oh = (h - layer.k) // layer.stride + 1
            ow = (w - layer.k) // layer.stride + 1
            shapes.append(LayerShape(enc, (h, w, c), enc, (oh, ow, c), levels))
            h, w = oh, ow
        elif isinstance(layer, Flatten):
            shapes.append(LayerShape(enc, (h, w, c), enc, (1, 1, h * w * c), levels))
            h, w, c = 1, 1, h * w * c
        else:
            raise UnsupportedError(f"{where}: unsupported layer type {type(layer).__name__}")
    if not shapes:
        raise ShapeError("the graph has no layers")
    return shapes
