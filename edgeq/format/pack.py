"""Write and read edgeq blobs (format: docs/blob-format.md, numbers: edgeq/spec.py).

    blob = write_blob(graph)          # Graph -> bytes
    graph = read_blob(blob)           # bytes -> Graph, validating everything (BlobFormatError)
    info = blob_info(blob)            # dict for `edgeq info`
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import zlib

import numpy as np

from . import bits as B
from .. import spec
from ..errors import BlobFormatError, EdgeqError, ShapeError, UnsupportedError
from .graph import (ADD_M_MAX, Add, AvgPool, Concat, Conv, Flatten, Graph, LayerShape, MaxPool,
                    infer_shapes, is_dag, wino_f23)

_HDR = spec.offsets(spec.HEADER)


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def act_bytes(enc: str, shape: tuple) -> int:
    """Bytes of an HWC activation in the runtime's layout (spec.act_bytes)."""
    return spec.act_bytes(spec.value(spec.ENC, enc), *shape)


def conv_fast_scratch(layer: Conv, shape: LayerShape) -> int:
    """Scratch bytes of the C runtime's whole-layer fast path for this CONV layer, as
    eq_conv_fast_scratch (firmware/kernels/eq_conv_fast.c) computes them; 0 if none applies.
    - integer Winograd F(2x2, 3x3) (eq_conv_wino_i8.c): U8 x I8, 3x3 stride 1 pad 1, at least 4
      input and output channels and 4x4 pixels, C <= 1827 (4 * |acc| < 2**31);
    - I8 weights on B1 activations as 8 bit planes (eq_conv_i8_b1.c): at least 8 input channels
      and 16 output pixels."""
    (h, w, c), (oh, ow, n) = shape.in_shape, shape.out_shape
    # the runtime tries the fast paths on ordinary layers only: one group, stride_w == stride and
    # pad_w == pad (eq_exec.c run_conv; the loader reserves scratch under the same rule)
    square = getattr(layer, "stride_w", None) in (None, layer.stride) and getattr(layer, "pad_w", None) in (
        None, layer.pad)
    if (layer.w_enc != "I8" or layer.out not in ("SIGN", "MULTI", "AFFINE")
            or getattr(layer, "groups", 1) != 1 or not square):
        return 0
    total = 0
    if (shape.in_enc == "U8" and layer.kh == 3 and layer.kw == 3 and layer.stride == 1
            and layer.pad == 1 and 4 <= c <= 1827 and n >= 4 and h >= 4 and w >= 4):
        npair, tpair, cpair = (n + 1) // 2, ((w + 1) // 2 + 1) // 2, (c + 1) // 2
        total = (128 * npair * cpair + _align(128 * tpair * cpair, 8) + 16 * (4 * tpair + 2) * cpair
                 + 8 * w * n)
    elif (shape.in_enc == "B1" and n <= 65535 // 8 and layer.kh * layer.kw * c * 256 < 1 << 31
          and c >= 8 and oh * ow >= 16):
        fw = layer.kh * layer.kw * ((c + 31) // 32)  # words of a B1 filter
        total = 32 * n * fw + _align(4 * fw, 8) + 32 * ow * n + _align(4 * ow, 8)
    return total if total <= 1 << 30 else 0


def wino_scratch(layer: Conv, shape: LayerShape) -> int:
    """Scratch bytes of an F32 CONV computed by Winograd F(2x2, 3x3) (graph.wino_f23; the C
    loader reserves the same spec.wino_f23_scratch for a layer flagged LFLAG_WINO_F23), else 0."""
    if not (isinstance(layer, Conv) and wino_f23(layer, shape.in_shape)):
        return 0
    return spec.wino_f23_scratch(shape.in_shape[2], shape.out_shape[1], shape.out_shape[2])


def acc_row_bytes(g: Graph, shapes: list[LayerShape]) -> int:
    """The arena's accumulator row: max over CONV / ADD / AVGPOOL layers of out_w * out_c * 4,
    (non-F32 CONV) round8(conv_fast_scratch) and (F32 Winograd CONV) round8(wino_scratch)."""
    row = 0
    for layer, s in zip(g.layers, shapes):
        if isinstance(layer, (Conv, Add, AvgPool)):
            row = max(row, s.out_shape[1] * s.out_shape[2] * 4)
        if isinstance(layer, Conv) and layer.w_enc != "F32":
            row = max(row, _align(conv_fast_scratch(layer, s), 8))
        if isinstance(layer, Conv) and layer.w_enc == "F32":
            row = max(row, _align(wino_scratch(layer, s), 8))
    return row


def plan_values(g: Graph, shapes: list[LayerShape] | None = None) -> tuple[list, list, int]:
    """The DAG arena plan (docs/blob-format.md, "Arena"): (offsets, sizes, peak) of every value
    (value 0 = the input, value j + 1 = layer j's output), exactly as the C loader places them.
    size[v] = round8(act_bytes(v)); a value lives until the last layer that reads it (the final
    value to the end, an unread value only through its producer); layer i's output goes at the
    lowest offset among {0} and the ends of the live values where it overlaps no live value.
    Without `shapes`, plans the stored form canonical(g) (value ids are then its ids); with
    them, plans g as given (g must be canonical for the numbers a loader computes)."""
    if shapes is None:
        g = canonical(g)
        shapes = infer_shapes(g)
    n = len(shapes)
    sizes = [_align(act_bytes(shapes[0].in_enc, shapes[0].in_shape), 8)]
    sizes += [_align(act_bytes(s.out_enc, s.out_shape), 8) for s in shapes]
    last = list(range(-1, n))  # unread: dies right after its producer (value v: layer v - 1)
    for i, s in enumerate(shapes):
        for v in s.src:
            last[v] = max(last[v], i)
    last[n] = n
    offs = [0] + [None] * n
    peak = sizes[0]
    for i in range(n):
        live = [v for v in range(i + 1) if last[v] >= i]
        size = sizes[i + 1]
        for o in sorted({0} | {offs[v] + sizes[v] for v in live}):
            if all(o + size <= offs[v] or offs[v] + sizes[v] <= o for v in live):
                offs[i + 1] = o
                break
        peak = max(peak, offs[i + 1] + size)
    return offs, sizes, peak


def arena_size(g: Graph, shapes: list[LayerShape] | None = None) -> int:
    """Arena bytes the runtimes need (the header's arena_size, what the C loader computes):
    sequential graphs 2 * round8(largest activation) + acc_row (ping-pong); DAGs (any layer
    reading other than the previous output) the plan_values peak + acc_row. Without `shapes`,
    of the stored form canonical(g); with them, of g as given (canonical)."""
    if shapes is None:
        g = canonical(g)
        shapes = infer_shapes(g)
    if is_dag(g):
        return plan_values(g, shapes)[2] + acc_row_bytes(g, shapes)
    acts = [act_bytes(shapes[0].in_enc, shapes[0].in_shape)]
    acts += [act_bytes(s.out_enc, s.out_shape) for s in shapes]
    return 2 * _align(max(acts), 8) + acc_row_bytes(g, shapes)


def macs(layer, shape: LayerShape) -> int:
    """Multiply-accumulates of a layer (profiling only): CONV oh*ow*N*kh*kw*C/groups, AVGPOOL
    oh*ow*C*kh*kw, ADD 2*H*W*C, 0 otherwise."""
    oh, ow, n = shape.out_shape
    if isinstance(layer, Conv):
        return oh * ow * n * layer.kh * layer.kw * (shape.in_shape[2] // layer.g)
    if isinstance(layer, AvgPool):
        return oh * ow * n * layer.kh * layer.kw
    if isinstance(layer, Add):
        return 2 * oh * ow * n
    return 0


def max_abs_acc(layer: Conv, shape: LayerShape) -> int:
    """Bound on |accumulator| of a CONV layer; the format requires it below 2**31 - 1."""
    k = layer.kh * layer.kw * (shape.in_shape[2] // layer.g)
    amax = spec.act_code_max(spec.value(spec.ENC, shape.in_enc), shape.in_levels)
    if layer.w_enc == "KBIT":
        prod = int(np.abs(np.asarray(layer.lut, np.int64)).max()) if np.size(layer.lut) else 0
    else:  # F32: 0, float accumulators (their range is bounded by F32_LIMITS instead)
        prod = spec.weight_product_max(spec.value(spec.ENC, layer.w_enc), amax)
    return k * prod


def best_ternary_encoding(weight: np.ndarray) -> str:
    """'TERN_SPARSE' when the skip-zero stream is smaller than the two bitplanes, else 'TERN'."""
    n = weight.shape[0]
    planes = B.tern_planes(weight).nbytes
    row_off, nib = B.sparse_encode(weight.reshape(n, -1))
    sparse = len(B.sparse_to_bytes(row_off, nib))
    return "TERN_SPARSE" if sparse < planes else "TERN"


class _Tensors:
    def __init__(self):
        self.items = []  # (data bytes, enc, bits, dims, aux)

    def add(self, data: bytes, enc: str, dims: tuple, bits: int = 0, aux: int = 0) -> int:
        self.items.append((bytes(data), enc, bits, tuple(int(d) for d in dims), aux))
        return len(self.items) - 1


def _check_values(where: str, w: np.ndarray, allowed: tuple | None, lo: int = 0, hi: int = 0):
    if allowed is not None:
        if not np.isin(w, allowed).all():
            raise ShapeError(f"{where}: weights must be in {allowed} for this encoding")
    elif w.size and (w.min() < lo or w.max() > hi):
        raise ShapeError(f"{where}: weights must be in [{lo}, {hi}] for this encoding")


def _weight_tensor(t: _Tensors, layer: Conv, where: str) -> int:
    w = np.asarray(layer.weight)
    n, kh, kw, c = w.shape
    enc = layer.w_enc
    if enc == "B1":
        _check_values(where, w, (-1, 1))
        data = B.pack_signs(w).tobytes()
        return t.add(data, "B1", (n, kh, kw, c))
    if enc == "TERN":
        _check_values(where, w, (-1, 0, 1))
        return t.add(B.tern_planes(w).tobytes(), "TERN", (n, kh, kw, c))
    if enc == "TERN_SPARSE":
        _check_values(where, w, (-1, 0, 1))
        row_off, nib = B.sparse_encode(w.reshape(n, -1))
        return t.add(B.sparse_to_bytes(row_off, nib), "TERN_SPARSE", (n, kh, kw, c), aux=len(nib))
    if enc == "KBIT":
        if not 1 <= layer.wbits <= 8:
            raise ShapeError(f"{where}: KBIT weights need 1..8 bits, got {layer.wbits}")
        _check_values(where, w, None, 0, (1 << layer.wbits) - 1)
        data = B.pack_codes(w.reshape(n, -1).astype(np.uint8), layer.wbits)
        return t.add(data, "KBIT", (n, kh, kw, c), bits=layer.wbits)
    if enc == "I8":
        _check_values(where, w, None, -128, 127)
        return t.add(w.astype(np.int8).tobytes(), "I8", (n, kh, kw, c))
    if enc == "I16":
        _check_values(where, w, None, -32768, 32767)
        return t.add(w.astype("<i2").tobytes(), "I16", (n, kh, kw, c))
    if enc == "F32":
        return t.add(_f32(where, "weights", w, w.shape, F32_LIMITS["weights"]), "F32", (n, kh, kw, c))
    raise UnsupportedError(f"{where}: weight encoding {enc!r}")


# F32 layers: |value| < 2**(e+1) for each field (None: anything but NaN), as the loaders check
F32_LIMITS = {"weights": spec.F32_MAX_EXP_WEIGHT, "thr": None, "mul": spec.F32_MAX_EXP_MUL,
              "add": spec.F32_MAX_EXP_ADD}


def _f32(where: str, name: str, a, shape: tuple, max_exp) -> bytes:
    a = np.asarray(a, np.float64)
    if a.shape != shape:
        raise ShapeError(f"{where}: {name} has shape {a.shape}, expected {shape}")
    f = a.astype("<f4")
    if np.isnan(f).any():
        raise ShapeError(f"{where}: {name} holds NaN")
    if max_exp is not None and f.size and not (np.abs(f) < 2.0 ** (max_exp + 1)).all():
        raise ShapeError(f"{where}: F32 {name} must be finite with |value| < 2**{max_exp + 1}")
    return f.tobytes()


def _i32(where: str, name: str, a, shape: tuple) -> bytes:
    a = np.asarray(a)
    if a.shape != shape:
        raise ShapeError(f"{where}: {name} has shape {a.shape}, expected {shape}")
    if a.size and (a.min() < -(2**31) or a.max() >= 2**31):
        raise ShapeError(f"{where}: {name} does not fit int32")
    return a.astype("<i4").tobytes()


def _src_field(layer, src: tuple, i: int) -> tuple:
    """The graph's src for layer i reading values `src`: () when a one-input layer reads the
    previous output (so a sequential graph stays sequential)."""
    if isinstance(layer, (Add, Concat)):
        return tuple(src)
    return () if tuple(src) == (i,) else tuple(src)


def canonical(g: Graph) -> Graph:
    """Same semantics, stored form: every dense layer (a groups-1 CONV with no padding whose
    kernel covers its whole input, input larger than 1x1) becomes FLATTEN + 1x1 CONV over H*W*C
    channels, so packed weights need no per-pixel word padding; value ids are renumbered for
    the inserted layers and a one-input layer reading the previous output gets src ()."""
    shapes = infer_shapes(g)
    layers = []
    remap = [0]  # value id in g -> value id in the result
    for layer, s in zip(g.layers, shapes):
        h, w, c = s.in_shape
        src = tuple(remap[v] for v in s.src)
        if (isinstance(layer, Conv) and layer.pad == 0 and layer.pw == 0 and layer.g == 1
                and (layer.kh, layer.kw) == (h, w) and h * w > 1):
            flat = Flatten(name=f"{layer.name}.flatten" if layer.name else "")
            layers.append(dataclasses.replace(flat, src=_src_field(flat, src, len(layers))))
            weight = np.ascontiguousarray(layer.weight.reshape(layer.n_out, 1, 1, h * w * c))
            layers.append(dataclasses.replace(layer, weight=weight, src=()))
        else:
            layers.append(dataclasses.replace(layer, src=_src_field(layer, src, len(layers))))
        remap.append(len(layers))
    return Graph(g.input_shape, g.pre_mode, g.pre_param, layers, list(g.classes), dict(g.meta), g.flags)


def uses_1_1(layer_recs: list) -> bool:
    """True when a layer record uses a blob 1.1 feature (spec.uses_1_1: a new op, the REQUANT
    stage or a non-zero src0/src1/groups/stride_w/pad_w); the writer then stores version_minor 1."""
    return any(spec.uses_1_1(r["op"], r["out_stage"], r["src0"], r["src1"], r["groups"], r["stride_w"],
                             r["pad_w"]) for r in layer_recs)


def uses_1_2(layer_recs: list) -> bool:
    """True when a layer record uses a blob 1.2 feature (spec.uses_1_2: non-zero layer flags, an
    F32 Winograd CONV); the writer then stores version_minor 2."""
    return any(spec.uses_1_2(r["flags"]) for r in layer_recs)


def blob_minor(layer_recs: list) -> int:
    """The lowest version_minor that holds these layer records (2, 1 or 0)."""
    return 2 if uses_1_2(layer_recs) else 1 if uses_1_1(layer_recs) else 0


def _stage_tensors(t: _Tensors, rec: dict, layer, n: int, where: str, f32: bool) -> None:
    """Output-stage tensors and fields of a CONV / AVGPOOL / ADD layer over n channels."""
    rec["out_stage"] = spec.value(spec.OUT, layer.out)
    if layer.out in ("SIGN", "MULTI"):
        nthr = 1 if layer.out == "SIGN" else (1 << layer.out_bits) - 1
        thr = np.asarray(layer.thr).reshape(n, nthr) if layer.thr is not None else None
        if thr is None or layer.flip is None:
            raise ShapeError(f"{where}: {layer.out} stage needs thr and flip")
        if f32:
            rec["t_thr"] = t.add(_f32(where, "thr", thr, (n, nthr), F32_LIMITS["thr"]), "F32", (n, nthr))
        else:
            rec["t_thr"] = t.add(_i32(where, "thr", thr, (n, nthr)), "I32", (n, nthr))
        flip = np.asarray(layer.flip).astype(bool)
        if flip.shape != (n,):
            raise ShapeError(f"{where}: flip has shape {flip.shape}, expected ({n},)")
        rec["t_aux"] = t.add(flip.astype(np.uint8).tobytes(), "U8", (n,))
        rec["out_bits"] = 1 if layer.out == "SIGN" else layer.out_bits
        return
    if layer.mul is None or layer.add is None:
        raise ShapeError(f"{where}: {layer.out} stage needs mul and add")
    if not 0 <= layer.shift < 32:
        raise ShapeError(f"{where}: shift must be 0..31")
    if f32:
        if layer.shift:
            raise ShapeError(f"{where}: an F32 AFFINE stage has no shift (use mul)")
        rec["t_thr"] = t.add(_f32(where, "mul", layer.mul, (n,), F32_LIMITS["mul"]), "F32", (n,))
        rec["t_aux"] = t.add(_f32(where, "add", layer.add, (n,), F32_LIMITS["add"]), "F32", (n,))
    else:
        rec["t_thr"] = t.add(_i32(where, "mul", layer.mul, (n,)), "I32", (n,))
        rec["t_aux"] = t.add(_i32(where, "add", layer.add, (n,)), "I32", (n,))
    rec["shift"] = layer.shift
    if layer.out == "REQUANT":
        rec["out_bits"] = layer.out_bits


def write_blob(g: Graph) -> bytes:
    """Serialise a Graph. Raises ShapeError/UnsupportedError for graphs the format cannot hold."""
    g = canonical(g)
    shapes = infer_shapes(g)
    c, h, w = (int(v) for v in g.input_shape)
    if max(c, h, w) > 65535:
        raise ShapeError("input dims must fit 16 bits")
    if is_dag(g) and len(g.layers) > spec.MAX_DAG_LAYERS:
        raise ShapeError(f"a graph with skips or branches holds at most {spec.MAX_DAG_LAYERS} layers "
                         f"(stored form: dense layers count twice), got {len(g.layers)}")
    last = shapes[-1]
    n_scores = int(np.prod(last.out_shape))
    if g.classes and len(g.classes) != n_scores:
        raise ShapeError(f"{len(g.classes)} class names but the last layer outputs {n_scores} values")
    t = _Tensors()
    layer_recs = []
    names = []
    for i, (layer, s) in enumerate(zip(g.layers, shapes)):
        where = f"layer {i} ({layer.name or type(layer).__name__})"
        names.append(layer.name or f"{type(layer).__name__.lower()}{i}")
        rec = dict.fromkeys(f for f, _, _ in spec.LAYER)
        rec.update({k: 0 for k in rec})
        rec.update(t_weight=-1, t_lut=-1, t_thr=-1, t_aux=-1)
        rec.update(in_enc=spec.value(spec.ENC, s.in_enc), out_enc=spec.value(spec.ENC, s.out_enc))
        rec.update(in_h=s.in_shape[0], in_w=s.in_shape[1], in_c=s.in_shape[2])
        rec.update(out_h=s.out_shape[0], out_w=s.out_shape[1], out_c=s.out_shape[2])
        rec["macs"] = min(macs(layer, s), 2**32 - 1)
        rec["src0"] = 0 if s.src[0] == i else s.src[0] + 1
        if len(s.src) > 1:
            rec["src1"] = s.src[1] + 1
        if max(s.in_shape + s.out_shape) > 65535:
            raise ShapeError(f"{where}: dims {s.in_shape} -> {s.out_shape} exceed the format's 65535")
        if isinstance(layer, Conv):
            n = layer.n_out
            if max(layer.kh, layer.kw, layer.stride, layer.pad, layer.sw) > 255 or layer.pw > 254:
                raise ShapeError(f"{where}: kernel, stride and pad must fit 8 bits (horizontal pad <= 254)")
            rec.update(op=spec.value(spec.OP, "CONV"), kh=layer.kh, kw=layer.kw, stride=layer.stride,
                       pad=layer.pad, w_enc=spec.value(spec.ENC, layer.w_enc),
                       groups=layer.g if layer.g > 1 else 0,
                       stride_w=0 if layer.sw == layer.stride else layer.sw,
                       pad_w=0 if layer.pw == layer.pad else layer.pw + 1,
                       flags=spec.value(spec.LFLAG, "WINO_F23") if wino_f23(layer, s.in_shape) else 0)
            if max_abs_acc(layer, s) >= spec.ACC_LIMIT:
                raise ShapeError(f"{where}: int32 accumulators could overflow; use fewer input "
                                 "channels or smaller LUT/weight values")
            rec["t_weight"] = _weight_tensor(t, layer, where)
            if layer.w_enc == "KBIT":
                lut = np.asarray(layer.lut)
                rec["t_lut"] = t.add(_i32(where, "lut", lut, lut.shape), "I32", lut.shape)
            _stage_tensors(t, rec, layer, n, where, layer.w_enc == "F32")
        elif isinstance(layer, (MaxPool, AvgPool)):
            kh, kw = (layer.kh, layer.win_w) if isinstance(layer, MaxPool) else (layer.kh, layer.kw)
            if max(kh, kw, layer.stride, layer.sw) > 255:
                raise ShapeError(f"{where}: window and stride must fit 8 bits (<= 255)")
            rec.update(op=spec.value(spec.OP, "MAXPOOL" if isinstance(layer, MaxPool) else "AVGPOOL"),
                       kh=kh, kw=kw, stride=layer.stride,
                       stride_w=0 if layer.sw == layer.stride else layer.sw)
            if isinstance(layer, AvgPool):
                _stage_tensors(t, rec, layer, s.out_shape[2], where, False)
        elif isinstance(layer, Add):
            c_out = s.out_shape[2]
            rec.update(op=spec.value(spec.OP, "ADD"))
            rec["t_weight"] = t.add(_i32(where, "m", layer.m, (2, c_out)), "I32", (2, c_out))
            _stage_tensors(t, rec, layer, c_out, where, False)
        elif isinstance(layer, Concat):
            rec.update(op=spec.value(spec.OP, "CONCAT"))
        else:
            rec.update(op=spec.value(spec.OP, "FLATTEN"))
        layer_recs.append(rec)

    meta = dict(g.meta)
    meta.update(classes=list(g.classes) or [str(i) for i in range(n_scores)], names=names)
    meta_bytes = json.dumps(meta, sort_keys=True).encode()

    n_t, n_l = len(t.items), len(layer_recs)
    tensor_table_off = spec.HEADER_SIZE
    layer_table_off = tensor_table_off + n_t * spec.TENSOR_SIZE
    meta_off = layer_table_off + n_l * spec.LAYER_SIZE
    off = _align(meta_off + len(meta_bytes), spec.BLOB_DATA_ALIGN)
    data_offs = []
    for data, *_ in t.items:
        data_offs.append(off)
        off = _align(off + len(data), spec.BLOB_DATA_ALIGN)
    total = off if t.items else _align(meta_off + len(meta_bytes), spec.BLOB_ALIGN)

    buf = bytearray(total)
    tfmt = spec.fmt(spec.TENSOR)
    for i, ((data, enc, bits, dims, aux), doff) in enumerate(zip(t.items, data_offs)):
        d = dims + (0,) * (4 - len(dims))
        struct.pack_into(tfmt, buf, tensor_table_off + i * spec.TENSOR_SIZE, doff, len(data),
                         spec.value(spec.ENC, enc), bits, len(dims), 0, *d, aux)
        buf[doff:doff + len(data)] = data
    lfmt = spec.fmt(spec.LAYER)
    for i, rec in enumerate(layer_recs):
        vals = [rec[f] if code != "8s" else b"\0" * 8 for f, code, _ in spec.LAYER]
        struct.pack_into(lfmt, buf, layer_table_off + i * spec.LAYER_SIZE, *vals)
    buf[meta_off:meta_off + len(meta_bytes)] = meta_bytes

    model_hash = hashlib.sha256(bytes(buf[spec.HEADER_SIZE:])).digest()[:8]
    hdr = dict(
        magic=spec.BLOB_MAGIC, version_major=spec.BLOB_VERSION_MAJOR,
        version_minor=blob_minor(layer_recs), total_size=total, crc32=0,
        header_size=spec.HEADER_SIZE, flags=g.flags, n_tensors=n_t,
        tensor_table_off=tensor_table_off, n_layers=n_l, layer_table_off=layer_table_off,
        meta_off=meta_off, meta_size=len(meta_bytes), in_c=c, in_h=h, in_w=w,
        pre_mode=spec.value(spec.PRE, g.pre_mode), pre_param=g.pre_param, n_classes=n_scores,
        reserved0=0, arena_size=arena_size(g, shapes), model_hash=model_hash, reserved1=b"\0" * 8)
    struct.pack_into(spec.fmt(spec.HEADER), buf, 0, *[hdr[f] for f, _, _ in spec.HEADER])
    return reseal(buf)


def blob_crc(blob) -> int:
    """CRC32 of a blob with its CRC field read as zero (the value the header stores)."""
    body = bytearray(blob)
    struct.pack_into("<I", body, spec.CRC_OFFSET, 0)
    return zlib.crc32(bytes(body))


def reseal(buf) -> bytes:
    """The blob bytes with the CRC field set to match the content (for writers and for tests
    that break one field on purpose and want only the structural checks to catch it)."""
    buf = bytearray(buf)
    struct.pack_into("<I", buf, spec.CRC_OFFSET, blob_crc(buf))
    return bytes(buf)


def tensor_entries(blob: bytes, hdr: dict) -> list:
    """The raw tensor table (one dict of spec.TENSOR fields per entry), not yet validated."""
    names = [f for f, _, _ in spec.TENSOR]
    return [dict(zip(names, struct.unpack_from(spec.fmt(spec.TENSOR), blob,
                                               hdr["tensor_table_off"] + i * spec.TENSOR_SIZE)))
            for i in range(hdr["n_tensors"])]


# ------------------------------------------------------------------------------------------
# reading


def read_header(blob: bytes) -> dict:
    """Parse and check the header, size and CRC. Raises BlobFormatError naming the problem."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise BlobFormatError(f"expected bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) < spec.HEADER_SIZE:
        raise BlobFormatError(
            f"truncated blob: {len(blob)} bytes, smaller than the {spec.HEADER_SIZE}-byte header")
    hdr = dict(zip([f for f, _, _ in spec.HEADER], struct.unpack_from(spec.fmt(spec.HEADER), blob)))
    if hdr["magic"] != spec.BLOB_MAGIC:
        raise BlobFormatError(f"bad magic {hdr['magic']!r}: not an edgeq blob (expected {spec.BLOB_MAGIC!r})")
    if hdr["version_major"] != spec.BLOB_VERSION_MAJOR:
        raise BlobFormatError(
            f"unsupported blob version {hdr['version_major']}.{hdr['version_minor']}: this edgeq reads "
            f"{spec.BLOB_VERSION_MAJOR}.x; re-pack the model with a matching edgeq")
    if hdr["version_minor"] > spec.BLOB_VERSION_MINOR:
        raise BlobFormatError(
            f"blob version {hdr['version_major']}.{hdr['version_minor']} needs a newer edgeq: this one "
            f"reads up to {spec.BLOB_VERSION_MAJOR}.{spec.BLOB_VERSION_MINOR}; upgrade edgeq")
    if hdr["total_size"] > len(blob):
        raise BlobFormatError(
            f"truncated blob: header declares {hdr['total_size']} bytes but only {len(blob)} are present")
    if hdr["total_size"] < spec.HEADER_SIZE or hdr["header_size"] != spec.HEADER_SIZE:
        raise BlobFormatError("corrupt header: sizes out of range")
    crc = blob_crc(blob[:hdr["total_size"]])
    if crc != hdr["crc32"]:
        raise BlobFormatError(
            f"CRC mismatch (stored {hdr['crc32']:#010x}, computed {crc:#010x}): the blob is corrupt; "
            "copy or re-pack it")
    return hdr


# Reader limits (docs/blob-format.md): inputs the C loader also refuses (ERR_TOO_LARGE), how deep
# the metadata JSON may nest, and how many weights a skip-zero stream may expand to in Python (its
# dense size is not bounded by the stream: all-zero rows cost no nibbles)
MAX_INPUT_PIXELS = 2**31 - 1
MAX_META_DEPTH = 32
MAX_DECODED_BYTES = 1 << 26  # or 64 bytes per blob byte, whichever is larger (see _Budget)
_META_SCALAR = (str, int, float, bool, type(None))


class _Budget:
    """Bytes the reader may still allocate for decoded weights and stage parameters: at most
    max(MAX_DECODED_BYTES, 64 x the blob's size) over all layers. Charged before each allocation:
    a short blob can declare huge shapes (a skip-zero stream of all-zero rows costs no nibbles)
    and many layers can share one tensor, so per-tensor byte checks alone do not bound it."""

    def __init__(self, total: int):
        self.total = total
        self.limit = self.left = max(MAX_DECODED_BYTES, 64 * total)

    def take(self, nbytes: int, what: str):
        if nbytes > self.left:
            raise BlobFormatError(
                f"{what} decode to {nbytes} bytes: past this reader's limit of {self.limit} bytes of "
                f"decoded weights for a {self.total}-byte blob (max(2**26, 64 x blob size))")
        self.left -= nbytes


def _json_depth(v) -> int:
    """Nesting depth of a parsed JSON value (iterative: never recurses)."""
    depth, stack = 0, [(v, 1)]
    while stack:
        v, d = stack.pop()
        depth = max(depth, d)
        if isinstance(v, dict):
            stack += [(x, d + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, d + 1) for x in v]
    return depth


def _read_meta(raw: bytes) -> dict:
    """The metadata JSON: an object, at most MAX_META_DEPTH deep; `classes` and `names`, when
    present, lists of strings or numbers."""
    if not raw:
        return {}
    try:
        meta = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BlobFormatError(f"metadata is not valid JSON: {e}") from None
    except RecursionError:
        raise BlobFormatError("metadata JSON nests too deeply") from None
    if not isinstance(meta, dict):
        raise BlobFormatError(f"metadata must be a JSON object, got {type(meta).__name__}")
    if _json_depth(meta) > MAX_META_DEPTH:
        raise BlobFormatError(f"metadata JSON nests deeper than {MAX_META_DEPTH} levels")
    for key in ("classes", "names"):
        v = meta.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, _META_SCALAR) for x in v):
            raise BlobFormatError(f"metadata {key!r} must be a list of strings, got {json.dumps(v)[:60]}")
    return meta


def _range_ok(off: int, n: int, total: int) -> bool:
    return 0 <= off and 0 <= n and off + n <= total


def _tables(blob: bytes) -> tuple[dict, bytes, dict, list]:
    """(header, blob cut to total_size, metadata, layer records): the header checked (read_header),
    the three tables inside the blob, the metadata JSON checked (_read_meta); nothing else."""
    hdr = read_header(blob)
    blob = bytes(blob[:hdr["total_size"]])
    total = hdr["total_size"]
    n_t, n_l = hdr["n_tensors"], hdr["n_layers"]
    for name, off, n in (("tensor table", hdr["tensor_table_off"], n_t * spec.TENSOR_SIZE),
                         ("layer table", hdr["layer_table_off"], n_l * spec.LAYER_SIZE),
                         ("metadata", hdr["meta_off"], hdr["meta_size"])):
        if not _range_ok(off, n, total):
            raise BlobFormatError(f"{name} at {off}+{n} lies outside the {total}-byte blob")
    meta = _read_meta(blob[hdr["meta_off"]:hdr["meta_off"] + hdr["meta_size"]])
    lnames = [f for f, _, _ in spec.LAYER]
    recs = [dict(zip(lnames, struct.unpack_from(spec.fmt(spec.LAYER), blob,
                                                hdr["layer_table_off"] + i * spec.LAYER_SIZE)))
            for i in range(n_l)]
    return hdr, blob, meta, recs


@dataclasses.dataclass
class BlobSummary:
    """What the host shows of a blob, read from its header, metadata and layer table without
    decoding a weight (read_summary). Graph-like for display and preprocessing (input_shape,
    pre_mode, pre_param, classes, meta); `layers` holds one dict per stored layer: name, op,
    in_shape / out_shape (H, W, C), in_enc, out_enc, w_enc (CONV only), macs, weight_bytes
    (CONV: weights + KBIT lut), src (value ids read). Only as trustworthy as the loader that
    accepted the blob: the host validates through the C loader (native.runtime.Model)."""
    header: dict
    input_shape: tuple
    pre_mode: str
    pre_param: int
    classes: list
    meta: dict
    flags: int
    layers: list


def read_summary(blob: bytes) -> BlobSummary:
    """The BlobSummary of a blob: header and CRC, table bounds and the metadata JSON checked
    (BlobFormatError), the layer records read as stored; weights are neither decoded nor checked."""
    hdr, blob, meta, recs = _tables(blob)
    tbytes = [te["nbytes"] for te in tensor_entries(blob, hdr)]
    names = meta.get("names", [])
    enc = lambda code: spec.name_of(spec.ENC, code)  # noqa: E731
    layers = []
    for i, rec in enumerate(recs):
        op = spec.name_of(spec.OP, rec["op"])
        src0 = i if rec["src0"] == 0 else rec["src0"] - 1
        row = dict(index=i, name=str(names[i]) if i < len(names) else "", op=op,
                   in_shape=(rec["in_h"], rec["in_w"], rec["in_c"]), in_enc=enc(rec["in_enc"]),
                   out_shape=(rec["out_h"], rec["out_w"], rec["out_c"]), out_enc=enc(rec["out_enc"]),
                   macs=rec["macs"], src=(src0, rec["src1"] - 1) if rec["src1"] else (src0,))
        if op == "CONV":
            used = (rec["t_weight"], rec["t_lut"]) if enc(rec["w_enc"]) == "KBIT" else (rec["t_weight"],)
            row.update(w_enc=enc(rec["w_enc"]),
                       weight_bytes=sum(tbytes[t] for t in used if 0 <= t < len(tbytes)))
        layers.append(row)
    return BlobSummary(header=hdr, input_shape=(hdr["in_c"], hdr["in_h"], hdr["in_w"]),
                       pre_mode=spec.name_of(spec.PRE, hdr["pre_mode"]), pre_param=hdr["pre_param"],
                       classes=list(meta.get("classes", [])),
                       meta={k: v for k, v in meta.items() if k not in ("classes", "names")},
                       flags=hdr["flags"], layers=layers)


def read_blob(blob: bytes) -> Graph:
    """Parse and fully validate a blob back into a Graph, decoding every weight (for tests and
    tools that need the graph; the host runtime validates through the C loader instead)."""
    hdr, blob, meta, recs = _tables(blob)
    total, n_l = hdr["total_size"], hdr["n_layers"]
    tensors = []
    view = memoryview(blob)
    budget = _Budget(total)
    for i, te in enumerate(tensor_entries(blob, hdr)):
        if not _range_ok(te["offset"], te["nbytes"], total):
            raise BlobFormatError(f"tensor {i} data at {te['offset']}+{te['nbytes']} lies outside the blob")
        te["data"] = view[te["offset"]:te["offset"] + te["nbytes"]]  # no copy: tensors may overlap
        te["dims"] = tuple(te[f"d{k}"] for k in range(min(te["rank"], 4)))
        tensors.append(te)
    layers = []
    for i, rec in enumerate(recs):
        if hdr["version_minor"] < 1 and uses_1_1([rec]):
            raise BlobFormatError(f"layer {i} uses a blob 1.1 feature (DAG inputs, groups, per-axis "
                                  "stride/pad, AVGPOOL/ADD/CONCAT or REQUANT) but the blob is marked "
                                  f"{hdr['version_major']}.0; re-pack it with edgeq")
        if hdr["version_minor"] < 2 and uses_1_2([rec]):
            raise BlobFormatError(f"layer {i} uses a blob 1.2 feature (layer flags: F32 Winograd) but "
                                  f"the blob is marked {hdr['version_major']}.{hdr['version_minor']}; "
                                  "re-pack it with edgeq")
        try:
            layers.append(_layer_from_record(rec, tensors, i, budget))
        except (EdgeqError, ValueError, IndexError, KeyError) as e:
            raise BlobFormatError(f"layer {i}: {e}") from None
    if any(r["src0"] or r["src1"] for r in recs) and n_l > spec.MAX_DAG_LAYERS:
        raise BlobFormatError(f"{n_l} layers: a blob with src0/src1 (a DAG) holds at most "
                              f"{spec.MAX_DAG_LAYERS}")
    names = meta.get("names", [])
    for i, layer in enumerate(layers):
        if i < len(names):
            layer.name = str(names[i])
    if hdr["in_c"] * hdr["in_h"] * hdr["in_w"] > MAX_INPUT_PIXELS:
        raise BlobFormatError(
            f"input {hdr['in_c']}x{hdr['in_h']}x{hdr['in_w']} = {hdr['in_c'] * hdr['in_h'] * hdr['in_w']} "
            f"pixels exceeds the runtimes' limit of {MAX_INPUT_PIXELS} (2**31 - 1)")
    pre = spec.name_of(spec.PRE, hdr["pre_mode"])
    if pre.startswith("?"):
        raise BlobFormatError(f"unknown preprocessing mode {hdr['pre_mode']}")
    g = Graph(input_shape=(hdr["in_c"], hdr["in_h"], hdr["in_w"]), pre_mode=pre,
              pre_param=hdr["pre_param"], layers=layers, classes=list(meta.get("classes", [])),
              meta={k: v for k, v in meta.items() if k not in ("classes", "names")}, flags=hdr["flags"])
    try:
        shapes = infer_shapes(g)
    except EdgeqError as e:
        raise BlobFormatError(f"inconsistent layers: {e}") from None
    for i, (layer, s, rec) in enumerate(zip(layers, shapes, recs)):
        if isinstance(layer, Conv) and max_abs_acc(layer, s) >= spec.ACC_LIMIT:
            raise BlobFormatError(f"layer {i}: int32 accumulators could overflow")
        got = ((rec["in_h"], rec["in_w"], rec["in_c"]), (rec["out_h"], rec["out_w"], rec["out_c"]),
               spec.name_of(spec.ENC, rec["in_enc"]), spec.name_of(spec.ENC, rec["out_enc"]))
        want = (s.in_shape, s.out_shape, s.in_enc, s.out_enc)
        if got != want:
            raise BlobFormatError(f"layer {i}: stored shapes/encodings {got} disagree with {want}")
    if int(np.prod(shapes[-1].out_shape)) != hdr["n_classes"]:
        raise BlobFormatError(f"n_classes {hdr['n_classes']} != last layer output size")
    return g


def _tensor(tensors, idx, what, enc=None):
    if not 0 <= idx < len(tensors):
        raise BlobFormatError(f"{what} tensor index {idx} out of range (0..{len(tensors) - 1})")
    te = tensors[idx]
    if enc is not None and spec.name_of(spec.ENC, te["enc"]) != enc:
        raise BlobFormatError(f"{what} tensor has encoding {spec.name_of(spec.ENC, te['enc'])}, expected {enc}")
    return te


def _f32_read(data: bytes, name: str) -> np.ndarray:
    """float32 values of an F32 field, checked against F32_LIMITS like the C loader."""
    f = np.frombuffer(data, "<f4").astype(np.float32)
    lim = F32_LIMITS[name]
    if np.isnan(f).any() or (lim is not None and f.size and not (np.abs(f) < 2.0 ** (lim + 1)).all()):
        raise BlobFormatError(f"F32 {name} out of range (NaN, infinite or |value| >= 2**{(lim or 0) + 1})")
    return f.copy()


def _need(te, nbytes, what):
    if te["nbytes"] != nbytes:
        raise BlobFormatError(f"{what} tensor holds {te['nbytes']} bytes, expected {nbytes}")


def _layer_src(rec, i: int, two: bool) -> tuple:
    """The layer's src tuple from src0/src1 (stored v + 1; src0 0 = the previous output)."""
    s0, s1 = rec["src0"], rec["src1"]
    for name, s in (("src0", s0), ("src1", s1)):
        if s > i + 1:
            raise BlobFormatError(f"{name} reads value {s - 1}, not an earlier value (0..{i}): layers "
                                  "must be in topological order")
    if two:
        if s1 == 0:
            raise BlobFormatError("src1 is 0: ADD and CONCAT read two values")
        return (i if s0 == 0 else s0 - 1, s1 - 1)
    if s1:
        raise BlobFormatError("src1 is set on a one-input layer (only ADD and CONCAT read two values)")
    return () if s0 == 0 else (s0 - 1,)


def _read_stage(rec, tensors, n: int, budget, fl: bool) -> dict:
    """Stage fields (out, thr, flip, out_bits, mul, add, shift) of a CONV / AVGPOOL / ADD record
    over n channels; fl: float32 tensors (F32 CONV)."""
    out = spec.name_of(spec.OUT, rec["out_stage"])
    st = dict(out=out)
    if out in ("SIGN", "MULTI"):
        if out == "MULTI" and not 1 <= rec["out_bits"] <= 8:
            raise BlobFormatError("MULTI needs 1..8 output bits")
        nthr = 1 if out == "SIGN" else (1 << rec["out_bits"]) - 1
        tt = _tensor(tensors, rec["t_thr"], "threshold", "F32" if fl else "I32")
        _need(tt, n * nthr * 4, "threshold")
        ta = _tensor(tensors, rec["t_aux"], "flip", "U8")
        _need(ta, n, "flip")
        budget.take(tt["nbytes"] + ta["nbytes"], "thresholds and flips")
        if fl:
            thr = _f32_read(tt["data"][: 4 * n * nthr], "thr").reshape(n, nthr)
        else:
            thr = np.frombuffer(tt["data"], "<i4").reshape(n, nthr).copy()
        st.update(thr=thr[:, 0] if out == "SIGN" else thr,
                  flip=np.frombuffer(ta["data"], np.uint8).astype(bool),
                  out_bits=rec["out_bits"] if out == "MULTI" else 0)
    elif out in ("AFFINE", "REQUANT"):
        if out == "REQUANT" and (fl or not 1 <= rec["out_bits"] <= 8):
            raise BlobFormatError("REQUANT needs 1..8 output bits and an integer layer (not F32)")
        tm = _tensor(tensors, rec["t_thr"], "mul", "F32" if fl else "I32")
        ta = _tensor(tensors, rec["t_aux"], "add", "F32" if fl else "I32")
        _need(tm, n * 4, "mul")
        _need(ta, n * 4, "add")
        budget.take(tm["nbytes"] + ta["nbytes"], "mul and add")
        if rec["shift"] >= 32 or (fl and rec["shift"]):
            raise BlobFormatError(f"{out} shift must be < 32 (0 for F32 layers)")
        if fl:
            st.update(mul=_f32_read(tm["data"][: 4 * n], "mul"), add=_f32_read(ta["data"][: 4 * n], "add"))
        else:
            st.update(mul=np.frombuffer(tm["data"], "<i4").copy(), add=np.frombuffer(ta["data"], "<i4").copy())
        st.update(shift=rec["shift"], out_bits=rec["out_bits"] if out == "REQUANT" else 0)
    else:
        raise BlobFormatError(f"unknown output stage {rec['out_stage']}")
    return st


def _layer_from_record(rec, tensors, i, budget):
    op = spec.name_of(spec.OP, rec["op"])
    if op.startswith("?"):
        raise BlobFormatError(f"unknown op code {rec['op']}")
    src = _layer_src(rec, i, op in ("ADD", "CONCAT"))
    if rec["flags"] & ~spec.LFLAG_KNOWN:
        raise BlobFormatError(f"unknown layer flags 0x{rec['flags']:02x}")
    if rec["flags"] and not spec.wino_f23_ok(rec["op"], rec["w_enc"], rec["kh"], rec["kw"], rec["stride"],
                                             rec["stride_w"], rec["pad"], rec["pad_w"], rec["groups"]):
        raise BlobFormatError("the F32 Winograd flag (LFLAG_WINO_F23) needs an F32 CONV, 3x3, stride 1, "
                              "pad 1, groups 1")
    if op != "CONV" and (rec["groups"] or rec["pad_w"]):
        raise BlobFormatError(f"{op}: groups and pad_w are for CONV only (must be 0)")
    sw = rec["stride_w"] or None
    if op == "FLATTEN":
        return Flatten(src=src)
    if op == "CONCAT":
        return Concat(src=src)
    if op in ("MAXPOOL", "AVGPOOL"):
        if rec["pad"] != 0:
            raise BlobFormatError(f"{op} has no padding (pad must be 0)")
        if op == "MAXPOOL":
            return MaxPool(k=rec["kh"], stride=rec["stride"], kw=rec["kw"] if rec["kw"] != rec["kh"] else None,
                           stride_w=sw, src=src)
        return AvgPool(rec["kh"], rec["kw"], rec["stride"], stride_w=sw, src=src,
                       **_read_stage(rec, tensors, rec["out_c"], budget, False))
    if op == "ADD":
        n = rec["out_c"]
        mt = _tensor(tensors, rec["t_weight"], "m", "I32")
        if mt["dims"] != (2, n):
            raise BlobFormatError(f"ADD m dims {mt['dims']} != (2, {n})")
        _need(mt, 8 * n, "m")
        budget.take(mt["nbytes"], "ADD m")
        m = np.frombuffer(mt["data"], "<i4").reshape(2, n).copy()
        if m.size and np.abs(m.astype(np.int64)).max() > ADD_M_MAX:
            raise BlobFormatError("ADD m holds a value with |m| > 2**30")
        return Add(m, src=src, **_read_stage(rec, tensors, n, budget, False))
    w_enc = spec.name_of(spec.ENC, rec["w_enc"])
    groups = rec["groups"] or 1
    n, kh, kw, c = rec["out_c"], rec["kh"], rec["kw"], rec["in_c"]
    if min(n, kh, kw, c) < 1:
        raise BlobFormatError("zero-sized convolution")
    if c % groups or n % groups:
        raise BlobFormatError(f"groups {groups} does not divide in_c {c} and out_c {n}")
    c //= groups  # the weights hold C/groups input channels
    wt = _tensor(tensors, rec["t_weight"], "weight", w_enc)
    if wt["dims"] != (n, kh, kw, c):
        raise BlobFormatError(f"weight dims {wt['dims']} != layer dims {(n, kh, kw, c)}")
    cw = B.words(c)
    k = kh * kw * c
    lut, wbits = None, 0
    # the decoded weights this layer keeps (int8 values or codes, int16, float32); the unpacking's
    # temporaries are a small multiple of one layer's share and freed before the next layer
    budget.take(n * k * {"I16": 2, "F32": 4}.get(w_enc, 1), f"{w_enc} weights {n}x{kh}x{kw}x{c}")
    if w_enc == "B1":
        _need(wt, n * kh * kw * cw * 4, "weight")
        words = np.frombuffer(wt["data"], "<u4").reshape(n, kh, kw, cw)
        weight = B.unpack_signs(words, c)
    elif w_enc == "TERN":
        _need(wt, 2 * n * kh * kw * cw * 4, "weight")
        planes = np.frombuffer(wt["data"], "<u4").reshape(n, 2, kh, kw, cw)
        sign = B.unpack_bits(planes[:, 0], c).astype(np.int8)
        nz = B.unpack_bits(planes[:, 1], c).astype(np.int8)
        weight = (nz * (2 * sign - 1)).astype(np.int8)
    elif w_enc == "TERN_SPARSE":
        if wt["nbytes"] != 4 * (n + 1) + (wt["aux"] + 1) // 2:
            raise BlobFormatError("sparse weight size does not match its nibble count")
        if not spec.acc_fits(k, 1):  # the accumulator bound (k * max|a*w| < 2**31 - 1) before any allocation
            raise BlobFormatError(f"K = {kh}x{kw}x{c} = {k}: int32 accumulators could overflow")
        try:
            weight = B.sparse_decode(wt["data"], n, k).reshape(n, kh, kw, c)
        except ValueError as e:
            raise BlobFormatError(f"bad skip-zero stream: {e}") from None
    elif w_enc == "KBIT":
        wbits = wt["bits"]
        if not 1 <= wbits <= 8:
            raise BlobFormatError(f"KBIT weights need 1..8 bits, got {wbits}")
        _need(wt, n * B.kbit_row_bytes(k, wbits), "weight")
        try:
            weight = B.unpack_codes(wt["data"], n, k, wbits).reshape(n, kh, kw, c)
        except ValueError as e:
            raise BlobFormatError(f"KBIT weights: {e}") from None
        lt = _tensor(tensors, rec["t_lut"], "lut", "I32")
        if len(lt["dims"]) != 2 or lt["dims"][0] != 1 << wbits or lt["dims"][1] < 1:
            raise BlobFormatError(f"lut dims {lt['dims']} do not fit {wbits}-bit weights")
        _need(lt, lt["dims"][0] * lt["dims"][1] * 4, "lut")
        budget.take(lt["nbytes"], "lut")
        lut = np.frombuffer(lt["data"], "<i4").reshape(lt["dims"]).copy()
    elif w_enc == "I8":
        _need(wt, n * k, "weight")
        weight = np.frombuffer(wt["data"], np.int8).reshape(n, kh, kw, c).copy()
    elif w_enc == "I16":
        _need(wt, 2 * n * k, "weight")
        weight = np.frombuffer(wt["data"][: 2 * n * k], "<i2").reshape(n, kh, kw, c).astype(np.int16)
    elif w_enc == "F32":
        _need(wt, 4 * n * k, "weight")
        weight = _f32_read(wt["data"][: 4 * n * k], "weights").reshape(n, kh, kw, c)
    else:
        raise BlobFormatError(f"unsupported weight encoding {w_enc}")
    fl = w_enc == "F32"
    return Conv(weight=weight, w_enc=w_enc, stride=rec["stride"], pad=rec["pad"], lut=lut, wbits=wbits,
                groups=groups, stride_w=sw, pad_w=rec["pad_w"] - 1 if rec["pad_w"] else None, src=src,
                winograd=bool(rec["flags"] & spec.value(spec.LFLAG, "WINO_F23")) if fl else None,
                **_read_stage(rec, tensors, n, budget, fl))


def blob_info(blob: bytes) -> dict:
    """Summary for `edgeq info`: header fields and per-layer shapes, encodings, bytes, bits/weight."""
    hdr = read_header(blob)
    g = read_blob(blob)
    shapes = infer_shapes(g)
    tensors = [te["nbytes"] for te in tensor_entries(blob, hdr)]
    lnames = [f for f, _, _ in spec.LAYER]
    layers = []
    total_w = total_wbytes = 0
    for i, (layer, s) in enumerate(zip(g.layers, shapes)):
        rec = dict(zip(lnames, struct.unpack_from(spec.fmt(spec.LAYER), blob,
                                                  hdr["layer_table_off"] + i * spec.LAYER_SIZE)))
        row = dict(index=i, name=layer.name, op=spec.name_of(spec.OP, rec["op"]),
                   in_shape=list(s.in_shape), in_enc=s.in_enc, out_shape=list(s.out_shape),
                   out_enc=s.out_enc, macs=rec["macs"], src=list(s.src))
        if s.in1_shape is not None:  # ADD, CONCAT: the second input
            row.update(in1_shape=list(s.in1_shape), in1_enc=s.in1_enc)
        if isinstance(layer, (MaxPool, AvgPool)):
            row.update(kernel=f"{layer.kh}x{layer.win_w if isinstance(layer, MaxPool) else layer.kw}",
                       stride=layer.stride, stride_w=layer.sw)
        if isinstance(layer, (AvgPool, Add)):
            used = [t for t in (rec["t_weight"], rec["t_thr"], rec["t_aux"]) if t >= 0]
            row.update(out_stage=layer.out, param_bytes=sum(tensors[t] for t in used))
        if isinstance(layer, Conv):
            nw = int(layer.weight.size)
            # t_lut counts only on KBIT layers: the loaders ignore it elsewhere (any value passes)
            used = (rec["t_weight"], rec["t_lut"]) if layer.w_enc == "KBIT" else (rec["t_weight"],)
            wbytes = sum(tensors[t] for t in used)
            pbytes = sum(tensors[t] for t in (rec["t_thr"], rec["t_aux"]) if t >= 0)
            counted = layer.w_enc in ("TERN", "TERN_SPARSE", "I8", "I16", "F32")
            zeros = int(np.count_nonzero(layer.weight == 0)) if counted else 0
            row.update(kernel=f"{layer.kh}x{layer.kw}", stride=layer.stride, pad=layer.pad,
                       stride_w=layer.sw, pad_w=layer.pw, groups=layer.g, w_enc=layer.w_enc)
            row.update(out_stage=layer.out, weights=nw, weight_bytes=wbytes, param_bytes=pbytes,
                       bits_per_weight=round(8 * wbytes / nw, 3), sparsity=round(zeros / nw, 4))
            total_w += nw
            total_wbytes += wbytes
        layers.append(row)
    return dict(
        version=f"{hdr['version_major']}.{hdr['version_minor']}", total_size=hdr["total_size"],
        crc32=f"{hdr['crc32']:#010x}", model_hash=hdr["model_hash"].hex(),
        input_shape=list(g.input_shape), pre_mode=g.pre_mode, pre_param=g.pre_param,
        n_classes=hdr["n_classes"], classes=g.classes, arena_size=hdr["arena_size"], dag=is_dag(g),
        weights=total_w, weight_bytes=total_wbytes,
        bits_per_weight=round(8 * total_wbytes / total_w, 3) if total_w else 0.0,
        compression_vs_f32=round(4 * total_w / total_wbytes, 2) if total_wbytes else 0.0,
        layers=layers, meta=g.meta)
