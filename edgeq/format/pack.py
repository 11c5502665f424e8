"""Write and read edgeq blobs (format: docs/blob-format.md, numbers: edgeq/spec.py).

    blob = write_blob(graph)          # Graph -> bytes
    graph = read_blob(blob)           # bytes -> Graph, validating everything (BlobFormatError)
    info = blob_info(blob)            # dict for `edgeq info`
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib

import numpy as np

from . import bits as B
from .. import spec
from ..errors import BlobFormatError, EdgeqError, ShapeError, UnsupportedError
from .graph import Conv, Flatten, Graph, LayerShape, MaxPool, infer_shapes

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
    if layer.w_enc != "I8" or layer.out not in ("SIGN", "MULTI", "AFFINE") or getattr(layer, "groups", 1) != 1:
        return 0
    square = getattr(layer, "stride_w", None) in (None, layer.stride) and getattr(layer, "pad_w", None) in (
        None, layer.pad)
    total = 0
    if (shape.in_enc == "U8" and layer.kh == 3 and layer.kw == 3 and layer.stride == 1
            and layer.pad == 1 and square and 4 <= c <= 1827 and n >= 4 and h >= 4 and w >= 4):
        npair, tpair, cpair = (n + 1) // 2, ((w + 1) // 2 + 1) // 2, (c + 1) // 2
        total = (128 * npair * cpair + _align(128 * tpair * cpair, 8) + 16 * (4 * tpair + 2) * cpair
                 + 8 * w * n)
    elif (shape.in_enc == "B1" and n <= 65535 // 8 and layer.kh * layer.kw * c * 256 < 1 << 31
          and c >= 8 and oh * ow >= 16):
        fw = layer.kh * layer.kw * ((c + 31) // 32)  # words of a B1 filter
        total = 32 * n * fw + _align(4 * fw, 8) + 32 * ow * n + _align(4 * ow, 8)
    return total if total <= 1 << 30 else 0


def _arena(g: Graph, shapes: list[LayerShape]) -> int:
    acts = [act_bytes(shapes[0].in_enc, shapes[0].in_shape)]
    acts += [act_bytes(s.out_enc, s.out_shape) for s in shapes]
    acc_row = max([max(s.out_shape[1] * s.out_shape[2] * 4, _align(conv_fast_scratch(layer, s), 8))
                   for s, layer in zip(shapes, g.layers) if isinstance(layer, Conv)] or [0])
    return 2 * _align(max(acts), 8) + acc_row


def macs(layer, shape: LayerShape) -> int:
    if isinstance(layer, Conv):
        oh, ow, n = shape.out_shape
        return oh * ow * n * layer.kh * layer.kw * shape.in_shape[2]
    return 0


def max_abs_acc(layer: Conv, shape: LayerShape) -> int:
    """Bound on |accumulator| of a CONV layer; the format requires it below 2**31 - 1."""
    k = layer.kh * layer.kw * shape.in_shape[2]
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


def canonical(g: Graph) -> Graph:
    """Same semantics, stored form: every dense layer (a CONV with pad 0 whose kernel covers its
    whole input, input larger than 1x1) becomes FLATTEN + 1x1 CONV over H*W*C channels, so
    packed weights need no per-pixel word padding."""
    shapes = infer_shapes(g)
    layers = []
    for layer, s in zip(g.layers, shapes):
        h, w, c = s.in_shape
        if (isinstance(layer, Conv) and layer.pad == 0 and (layer.kh, layer.kw) == (h, w)
                and h * w > 1):
            dense = Conv(**{**layer.__dict__})
            dense.weight = np.ascontiguousarray(layer.weight.reshape(layer.n_out, 1, 1, h * w * c))
            layers += [Flatten(name=f"{layer.name}.flatten" if layer.name else ""), dense]
        else:
            layers.append(layer)
    return Graph(g.input_shape, g.pre_mode, g.pre_param, layers, list(g.classes), dict(g.meta), g.flags)


def write_blob(g: Graph) -> bytes:
    """Serialise a Graph. Raises ShapeError/UnsupportedError for graphs the format cannot hold."""
    g = canonical(g)
    shapes = infer_shapes(g)
    c, h, w = (int(v) for v in g.input_shape)
    if max(c, h, w) > 65535:
        raise ShapeError("input dims must fit 16 bits")
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
        if max(s.in_shape + s.out_shape) > 65535:
            raise ShapeError(f"{where}: dims {s.in_shape} -> {s.out_shape} exceed the format's 65535")
        if isinstance(layer, Conv):
            n = layer.n_out
            if max(layer.kh, layer.kw, layer.stride, layer.pad) > 255:
                raise ShapeError(f"{where}: kernel, stride and pad must fit 8 bits")
            rec.update(op=spec.value(spec.OP, "CONV"), out_stage=spec.value(spec.OUT, layer.out),
                       kh=layer.kh, kw=layer.kw, stride=layer.stride, pad=layer.pad,
                       w_enc=spec.value(spec.ENC, layer.w_enc))
            if max_abs_acc(layer, s) >= spec.ACC_LIMIT:
                raise ShapeError(f"{where}: int32 accumulators could overflow; use fewer input "
                                 "channels or smaller LUT/weight values")
            rec["t_weight"] = _weight_tensor(t, layer, where)
            if layer.w_enc == "KBIT":
                lut = np.asarray(layer.lut)
                rec["t_lut"] = t.add(_i32(where, "lut", lut, lut.shape), "I32", lut.shape)
            if layer.out in ("SIGN", "MULTI"):
                nthr = 1 if layer.out == "SIGN" else (1 << layer.out_bits) - 1
                thr = np.asarray(layer.thr).reshape(n, nthr) if layer.thr is not None else None
                if thr is None or layer.flip is None:
                    raise ShapeError(f"{where}: {layer.out} stage needs thr and flip")
                if layer.w_enc == "F32":
                    rec["t_thr"] = t.add(_f32(where, "thr", thr, (n, nthr), F32_LIMITS["thr"]), "F32",
                                         (n, nthr))
                else:
                    rec["t_thr"] = t.add(_i32(where, "thr", thr, (n, nthr)), "I32", (n, nthr))
                flip = np.asarray(layer.flip).astype(bool)
                if flip.shape != (n,):
                    raise ShapeError(f"{where}: flip has shape {flip.shape}, expected ({n},)")
                rec["t_aux"] = t.add(flip.astype(np.uint8).tobytes(), "U8", (n,))
                rec["out_bits"] = 1 if layer.out == "SIGN" else layer.out_bits
            else:
                if layer.mul is None or layer.add is None:
                    raise ShapeError(f"{where}: AFFINE stage needs mul and add")
                if not 0 <= layer.shift < 32:
                    raise ShapeError(f"{where}: shift must be 0..31")
                if layer.w_enc == "F32":
                    if layer.shift:
                        raise ShapeError(f"{where}: an F32 AFFINE stage has no shift (use mul)")
                    rec["t_thr"] = t.add(_f32(where, "mul", layer.mul, (n,), F32_LIMITS["mul"]), "F32", (n,))
                    rec["t_aux"] = t.add(_f32(where, "add", layer.add, (n,), F32_LIMITS["add"]), "F32", (n,))
                else:
                    rec["t_thr"] = t.add(_i32(where, "mul", layer.mul, (n,)), "I32", (n,))
                    rec["t_aux"] = t.add(_i32(where, "add", layer.add, (n,)), "I32", (n,))
                rec["shift"] = layer.shift
        elif isinstance(layer, MaxPool):
            rec.update(op=spec.value(spec.OP, "MAXPOOL"), kh=layer.k, kw=layer.k, stride=layer.stride)
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
        version_minor=spec.BLOB_VERSION_MINOR, total_size=total, crc32=0,
        header_size=spec.HEADER_SIZE, flags=g.flags, n_tensors=n_t,
        tensor_table_off=tensor_table_off, n_layers=n_l, layer_table_off=layer_table_off,
        meta_off=meta_off, meta_size=len(meta_bytes), in_c=c, in_h=h, in_w=w,
        pre_mode=spec.value(spec.PRE, g.pre_mode), pre_param=g.pre_param, n_classes=n_scores,
        reserved0=0, arena_size=_arena(g, shapes), model_hash=model_hash, reserved1=b"\0" * 8)
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


def read_blob(blob: bytes) -> Graph:
    """Parse and fully validate a blob back into a Graph."""
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
    tensors = []
    view = memoryview(blob)
    budget = _Budget(total)
    for i, te in enumerate(tensor_entries(blob, hdr)):
        if not _range_ok(te["offset"], te["nbytes"], total):
            raise BlobFormatError(f"tensor {i} data at {te['offset']}+{te['nbytes']} lies outside the blob")
        te["data"] = view[te["offset"]:te["offset"] + te["nbytes"]]  # no copy: tensors may overlap
        te["dims"] = tuple(te[f"d{k}"] for k in range(min(te["rank"], 4)))
        tensors.append(te)
    lnames = [f for f, _, _ in spec.LAYER]
    recs = [dict(zip(lnames, struct.unpack_from(spec.fmt(spec.LAYER), blob,
                                                hdr["layer_table_off"] + i * spec.LAYER_SIZE)))
            for i in range(n_l)]
    layers = []
    for i, rec in enumerate(recs):
        try:
            layers.append(_layer_from_record(rec, tensors, i, budget))
        except (EdgeqError, ValueError, IndexError, KeyError) as e:
            raise BlobFormatError(f"layer {i}: {e}") from None
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


def _layer_from_record(rec, tensors, i, budget):
    op = spec.name_of(spec.OP, rec["op"])
    if op == "FLATTEN":
        return Flatten()
    if op == "MAXPOOL":
        if rec["kh"] != rec["kw"] or rec["pad"] != 0:
            raise BlobFormatError("MAXPOOL must be square with pad 0")
        return MaxPool(k=rec["kh"], stride=rec["stride"])
    if op != "CONV":
        raise BlobFormatError(f"unknown op code {rec['op']}")
    w_enc = spec.name_of(spec.ENC, rec["w_enc"])
    out = spec.name_of(spec.OUT, rec["out_stage"])
    n, kh, kw, c = rec["out_c"], rec["kh"], rec["kw"], rec["in_c"]
    if min(n, kh, kw, c) < 1:
        raise BlobFormatError("zero-sized convolution")
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
    layer = Conv(weight=weight, w_enc=w_enc, out=out, stride=rec["stride"], pad=rec["pad"],
                 lut=lut, wbits=wbits)
    if out in ("SIGN", "MULTI"):
        nthr = 1 if out == "SIGN" else (1 << rec["out_bits"]) - 1
        if out == "MULTI" and not 1 <= rec["out_bits"] <= 8:
            raise BlobFormatError("MULTI needs 1..8 output bits")
        fl = w_enc == "F32"
        tt = _tensor(tensors, rec["t_thr"], "threshold", "F32" if fl else "I32")
        _need(tt, n * nthr * 4, "threshold")
        ta = _tensor(tensors, rec["t_aux"], "flip", "U8")
        _need(ta, n, "flip")
        budget.take(tt["nbytes"] + ta["nbytes"], "thresholds and flips")
        if fl:
            thr = _f32_read(tt["data"][: 4 * n * nthr], "thr").reshape(n, nthr)
        else:
            thr = np.frombuffer(tt["data"], "<i4").reshape(n, nthr).copy()
        layer.thr = thr[:, 0] if out == "SIGN" else thr
        layer.flip = np.frombuffer(ta["data"], np.uint8).astype(bool)
        layer.out_bits = rec["out_bits"] if out == "MULTI" else 0
    elif out == "AFFINE":
        fl = w_enc == "F32"
        tm = _tensor(tensors, rec["t_thr"], "mul", "F32" if fl else "I32")
        ta = _tensor(tensors, rec["t_aux"], "add", "F32" if fl else "I32")
        _need(tm, n * 4, "mul")
        _need(ta, n * 4, "add")
        budget.take(tm["nbytes"] + ta["nbytes"], "mul and add")
        if rec["shift"] >= 32 or (fl and rec["shift"]):
            raise BlobFormatError("AFFINE shift must be < 32 (0 for F32 layers)")
        if fl:
            layer.mul = _f32_read(tm["data"][: 4 * n], "mul")
            layer.add = _f32_read(ta["data"][: 4 * n], "add")
        else:
            layer.mul = np.frombuffer(tm["data"], "<i4").copy()
            layer.add = np.frombuffer(ta["data"], "<i4").copy()
        layer.shift = rec["shift"]
    else:
        raise BlobFormatError(f"unknown output stage {rec['out_stage']}")
    return layer


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
                   out_enc=s.out_enc, macs=rec["macs"])
        if isinstance(layer, Conv):
            nw = int(layer.weight.size)
            # t_lut counts only on KBIT layers: the loaders ignore it elsewhere (any value passes)
            used = (rec["t_weight"], rec["t_lut"]) if layer.w_enc == "KBIT" else (rec["t_weight"],)
            wbytes = sum(tensors[t] for t in used)
            pbytes = sum(tensors[t] for t in (rec["t_thr"], rec["t_aux"]) if t >= 0)
            counted = layer.w_enc in ("TERN", "TERN_SPARSE", "I8", "I16", "F32")
            zeros = int(np.count_nonzero(layer.weight == 0)) if counted else 0
            row.update(kernel=f"{layer.kh}x{layer.kw}", stride=layer.stride, pad=layer.pad,
                       w_enc=layer.w_enc, out_stage=layer.out, weights=nw, weight_bytes=wbytes,
                       param_bytes=pbytes, bits_per_weight=round(8 * wbytes / nw, 3),
                       sparsity=round(zeros / nw, 4))
            total_w += nw
            total_wbytes += wbytes
        layers.append(row)
    return dict(
        version=f"{hdr['version_major']}.{hdr['version_minor']}", total_size=hdr["total_size"],
        crc32=f"{hdr['crc32']:#010x}", model_hash=hdr["model_hash"].hex(),
        input_shape=list(g.input_shape), pre_mode=g.pre_mode, pre_param=g.pre_param,
        n_classes=hdr["n_classes"], classes=g.classes, arena_size=hdr["arena_size"],
        weights=total_w, weight_bytes=total_wbytes,
        bits_per_weight=round(8 * total_wbytes / total_w, 3) if total_w else 0.0,
        compression_vs_f32=round(4 * total_w / total_wbytes, 2) if total_wbytes else 0.0,
        layers=layers, meta=g.meta)
