"""Structured blob generator for adversarial tests: CRC-valid blobs whose fields are set
consistently (shapes, counts, offsets) so that a chosen field can sit at an extreme (2**31, 2**32
boundaries) and still pass every other check. Random mutation almost never reaches these corners;
each needs several fields to agree.

    blob = build(layers=[...], tensors=[...], in_chw=(c, h, w), pre="THRESH", n_classes=10)

tensors: dicts with data (bytes), enc (name), dims (up to 4), bits, aux; nbytes / offset override
the true values. layers: dicts of spec.LAYER fields (names for op / enc / stage; t_* default -1).
`regression_blobs()` gives one named blob per loader bug of issue 13, with the status the C loader
must answer.
"""

from __future__ import annotations

import struct

import numpy as np

from edgeq.format import pack
from edgeq import spec

_ENC = {k: spec.value(spec.ENC, k) for k in ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32",
                                             "U8", "I32")}


def tensor(data: bytes, enc: str, dims: tuple, bits: int = 0, aux: int = 0, **over) -> dict:
    return dict(data=bytes(data), enc=enc, dims=tuple(dims), bits=bits, aux=aux, **over)


def layer(op: str, in_enc: str, out_enc: str, in_hwc: tuple, out_hwc: tuple, stage: str | None = None,
          k: tuple = (1, 1), stride: int = 1, pad: int = 0, w_enc: str | None = None, out_bits: int = 0,
          shift: int = 0, t_weight: int = -1, t_lut: int = -1, t_thr: int = -1, t_aux: int = -1,
          src0: int = 0, src1: int = 0, groups: int = 0, stride_w: int = 0, pad_w: int = 0,
          flags: int = 0) -> dict:
    """One layer record; src0/src1/groups/stride_w/pad_w are the stored 1.1 fields (src stored as
    value + 1, pad_w as pad + 1; 0 = the 1.0 meaning); flags the 1.2 layer flags (LFLAG_*)."""
    return dict(op=spec.value(spec.OP, op), in_enc=_ENC[in_enc], out_enc=_ENC[out_enc],
                out_stage=spec.value(spec.OUT, stage) if stage else 0,
                in_h=in_hwc[0], in_w=in_hwc[1], in_c=in_hwc[2],
                out_h=out_hwc[0], out_w=out_hwc[1], out_c=out_hwc[2], kh=k[0], kw=k[1],
                stride=stride, pad=pad, w_enc=_ENC[w_enc] if w_enc else 0, out_bits=out_bits,
                shift=shift, flags=flags, t_weight=t_weight, t_lut=t_lut, t_thr=t_thr, t_aux=t_aux,
                name_off=0, macs=0, src0=src0, src1=src1, groups=groups, stride_w=stride_w, pad_w=pad_w)


def build(layers: list, tensors: list, in_chw: tuple, pre: str, n_classes: int, pre_param: int = 128,
          meta: bytes = b"{}", **hdr_over) -> bytes:
    """Header, tensor table, layer table, metadata, then each tensor's data (4-byte aligned; the
    last tensor ends the blob exactly, so a reader running past it leaves the buffer). The header
    says minor 1 when a layer uses a 1.1 feature (pack.uses_1_1), as the writer does, unless
    hdr_over sets version_minor."""
    off = spec.HEADER_SIZE
    t_off = off
    off += len(tensors) * spec.TENSOR_SIZE
    l_off = off
    off += len(layers) * spec.LAYER_SIZE
    m_off = off
    off += len(meta)
    data_off = []
    for t in tensors:
        off = (off + 3) // 4 * 4
        data_off.append(off)
        off += len(t["data"])
    buf = bytearray(off)
    for i, t in enumerate(tensors):
        d = tuple(t["dims"]) + (0,) * (4 - len(t["dims"]))
        struct.pack_into(spec.fmt(spec.TENSOR), buf, t_off + i * spec.TENSOR_SIZE,
                         t.get("offset", data_off[i]), t.get("nbytes", len(t["data"])), _ENC[t["enc"]],
                         t["bits"], len(t["dims"]), 0, *d, t["aux"])
        buf[data_off[i]:data_off[i] + len(t["data"])] = t["data"]
    for i, L in enumerate(layers):
        struct.pack_into(spec.fmt(spec.LAYER), buf, l_off + i * spec.LAYER_SIZE,
                         *[L[f] for f, _, _ in spec.LAYER])
    buf[m_off:m_off + len(meta)] = meta
    c, h, w = in_chw
    hdr = dict(magic=spec.BLOB_MAGIC, version_major=spec.BLOB_VERSION_MAJOR,
               version_minor=pack.blob_minor(layers),
               total_size=len(buf), crc32=0, header_size=spec.HEADER_SIZE, flags=0,
               n_tensors=len(tensors), tensor_table_off=t_off, n_layers=len(layers),
               layer_table_off=l_off, meta_off=m_off, meta_size=len(meta), in_c=c, in_h=h, in_w=w,
               pre_mode=spec.value(spec.PRE, pre), pre_param=pre_param, n_classes=n_classes,
               reserved0=0, arena_size=0, model_hash=b"\0" * 8, reserved1=b"\0" * 8)
    hdr.update(hdr_over)
    struct.pack_into(spec.fmt(spec.HEADER), buf, 0, *[hdr[f] for f, _, _ in spec.HEADER])
    return pack.reseal(buf)


def _status(name: str) -> int:
    return spec.value(spec.STATUS, name)


def f32_nk_2pow32() -> bytes:
    """F32 conv with n * K = 32768 * (128*128*8) = 2**32 weights and a 0-byte weight tensor: a
    32-bit product truncates to 0 and the empty tensor passes; the executor reads 2**32 floats."""
    n, kh, kw, c = 32768, 128, 128, 8
    ts = [tensor(b"", "F32", (n, kh, kw, c)),
          tensor(np.zeros(n, "<f4").tobytes(), "F32", (n,)),
          tensor(bytes(n), "U8", (n,))]
    L = layer("CONV", "B1", "B1", (kh, kw, c), (1, 1, n), "SIGN", k=(kh, kw), w_enc="F32",
              t_weight=0, t_thr=1, t_aux=2)
    return build([L], ts, (c, kh, kw), "THRESH", n)


def sparse_nibbles_wrap() -> bytes:
    """TERN_SPARSE weights declaring 0xFFFFFFFF nibbles in an 8-byte tensor (row_off only):
    (total + 1) / 2 wraps to 0 in 32 bits, the size check passes and the decoder walks 2 GiB of
    nibbles past the end of the blob (the tensor is the blob's last bytes)."""
    ts = [tensor(np.zeros(1, "<i4").tobytes(), "I32", (1,)), tensor(np.zeros(1, "<i4").tobytes(), "I32", (1,)),
          tensor(struct.pack("<II", 0, 0xFFFFFFFF), "TERN_SPARSE", (1, 3, 3, 1), aux=0xFFFFFFFF)]
    L = layer("CONV", "B1", "I32", (3, 3, 1), (1, 1, 1), "AFFINE", k=(3, 3), w_enc="TERN_SPARSE",
              t_weight=2, t_thr=0, t_aux=1)
    return build([L], ts, (1, 3, 3), "THRESH", 1)


def sparse_skip_past_k() -> bytes:
    """TERN_SPARSE row of two skip-7 nibbles over K = 9: the loaders accepted it (a skip was not
    checked against K) and every inference then failed in the kernel (ERR_ARG): a loader hole."""
    ts = [tensor(np.ones(1, "<i4").tobytes(), "I32", (1,)), tensor(np.zeros(1, "<i4").tobytes(), "I32", (1,)),
          tensor(struct.pack("<II", 0, 2) + b"\x77", "TERN_SPARSE", (1, 3, 3, 1), aux=2)]
    L = layer("CONV", "B1", "I32", (3, 3, 1), (1, 1, 1), "AFFINE", k=(3, 3), w_enc="TERN_SPARSE",
              t_weight=2, t_thr=0, t_aux=1)
    return build([L], ts, (1, 3, 3), "THRESH", 1)


def _pool_net(c: int, h: int, w: int, pre: str) -> bytes:
    """Two max-pools (255/255, then the rest) over a huge declared input: no tensors at all."""
    enc = "B1" if pre == "THRESH" else "U8"
    h1, w1 = (h - 255) // 255 + 1, (w - 255) // 255 + 1
    L1 = layer("MAXPOOL", enc, enc, (h, w, c), (h1, w1, c), k=(255, 255), stride=255)
    L2 = layer("MAXPOOL", enc, enc, (h1, w1, c), (1, 1, c), k=(min(h1, w1),) * 2, stride=255)
    h2, w2 = (h1 - min(h1, w1)) // 255 + 1, (w1 - min(h1, w1)) // 255 + 1
    L2["out_h"], L2["out_w"] = h2, w2
    return build([L1, L2], [], (c, h, w), pre, h2 * w2 * c)


def input_pixels_wrap() -> bytes:
    """THRESH input 32x8192x16384: in_c*in_h*in_w = 2**32 wraps to 0 input pixels (0 wire bytes)
    while the activation (2**29 bytes of bits) fits the arena limit."""
    return _pool_net(32, 8192, 16384, "THRESH")


def input_wire_wrap() -> bytes:
    """THRESH input 31x49981x2772 = 0xFFFFFFFC pixels: fits 32 bits, but (pixels + 7) / 8 wraps
    to 0 wire bytes."""
    return _pool_net(31, 49981, 2772, "THRESH")


def input_pixels_over_2pow31() -> bytes:
    """THRESH input 32x16384x16383 = 0xFFF80000 pixels: fits 32 bits, but an input buffer over
    2 GiB is past the loader's limit (the same 2**31 as the arena)."""
    return _pool_net(32, 16384, 16383, "THRESH")


def regression_blobs() -> list:
    """(name, blob, C loader status) for each loader bug of issue 13 (and sparse_skip_past_k,
    found while auditing the loader for it)."""
    return [("f32_nk_2pow32", f32_nk_2pow32(), _status("ERR_SHAPE")),
            ("sparse_nibbles_wrap", sparse_nibbles_wrap(), _status("ERR_BOUNDS")),
            ("sparse_skip_past_k", sparse_skip_past_k(), _status("ERR_BOUNDS")),
            ("input_pixels_wrap", input_pixels_wrap(), _status("ERR_TOO_LARGE")),
            ("input_wire_wrap", input_wire_wrap(), _status("ERR_TOO_LARGE")),
            ("input_pixels_over_2pow31", input_pixels_over_2pow31(), _status("ERR_TOO_LARGE"))]


def big_u8_binary_graph():
    """The blob our own packer writes that hit `2*pos - total` signed overflow in
    eq_conv2d_row.c: RAW 128x255x255 input, one 255x255 binary conv (K = 8,323,200, so
    255*K = 2,122,416,000 < 2**31 passes the accumulator bound but 2*pos does not fit int32).
    Pad 1 (3x3 outputs; without padding the packer would store it as a dense layer). AFFINE with
    mul 1 so the scores are the accumulators themselves."""
    from edgeq.format.graph import Conv, Graph

    w = np.ones((1, 255, 255, 128), np.int8)
    return Graph((128, 255, 255), "RAW", 0, [Conv(w, "B1", "AFFINE", pad=1,
                                                 mul=np.ones(1, np.int32), add=np.zeros(1, np.int32))])


# ------------------------------------------------------------------------------------------
# edits of an existing blob (each reseals)

_HDR = spec.offsets(spec.HEADER)
_LAY = spec.offsets(spec.LAYER)
_TEN = spec.offsets(spec.TENSOR)
_CODES = {f: c for f, c, _ in spec.HEADER + spec.LAYER + spec.TENSOR}


def _hdr(blob: bytes, field: str) -> int:
    return struct.unpack_from("<" + _CODES[field], blob, _HDR[field])[0]


def with_meta(blob: bytes, meta: bytes) -> bytes:
    """The blob with its metadata replaced by `meta` (appended at the end, total_size grown)."""
    buf = bytearray(blob[:_hdr(blob, "total_size")]) + meta
    struct.pack_into("<III", buf, _HDR["total_size"], len(buf), 0, spec.HEADER_SIZE)
    struct.pack_into("<II", buf, _HDR["meta_off"], len(blob), len(meta))
    return pack.reseal(buf)


def set_field(blob: bytes, record: str, index: int, field: str, value: int) -> bytes:
    """Set one field of the header (record 'header'), of layer `index` ('layer') or of tensor
    `index` ('tensor') to value (masked to the field's width), then reseal."""
    code = _CODES[field]
    if record == "header":
        off = _HDR[field]
    elif record == "layer":
        off = _hdr(blob, "layer_table_off") + index * spec.LAYER_SIZE + _LAY[field]
    else:
        off = _hdr(blob, "tensor_table_off") + index * spec.TENSOR_SIZE + _TEN[field]
    size = struct.calcsize("<" + code)
    buf = bytearray(blob)
    buf[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return pack.reseal(buf)


def sparse_dense_huge(c: int = 65535) -> bytes:
    """A ~400-byte blob whose skip-zero weights are 16 rows of K = 255*255*c (no nibbles): the
    Python reader decoded them into a dense (16, K) int8 array (63.5 GiB for c = 65535)."""
    n, kh, kw = 16, 255, 255
    ts = [tensor(np.zeros(n + 1, "<u4").tobytes(), "TERN_SPARSE", (n, kh, kw, c)),
          tensor(np.zeros(n, "<i4").tobytes(), "I32", (n,)), tensor(bytes(n), "U8", (n,))]
    L = layer("CONV", "B1", "B1", (kh, kw, c), (1, 1, n), "SIGN", k=(kh, kw), w_enc="TERN_SPARSE",
              t_weight=0, t_thr=1, t_aux=2)
    return build([L], ts, (c, kh, kw), "THRESH", n)


def overlapping_tensors(n: int = 30000) -> bytes:
    """n tensor entries that all cover the blob's first ~1 MB (header and tables), none used by
    the one max-pool layer: valid for every loader. A reader that copies each tensor's bytes
    allocates n x 1 MB (30 GB) for a 1 MB blob."""
    span = spec.HEADER_SIZE + n * spec.TENSOR_SIZE
    ts = [tensor(b"", "U8", (span,), offset=0, nbytes=span) for _ in range(n)]
    L = layer("MAXPOOL", "B1", "B1", (2, 2, 1), (1, 1, 1), k=(2, 2), stride=2)
    return build([L], ts, (1, 2, 2), "THRESH", 1)


def shared_weight_chain(n_layers: int = 4000, c: int = 256) -> bytes:
    """n_layers identical 3x3 pad-1 B1 convs (c -> c channels) on a 4x4 input, all referencing one
    weight tensor (c*9*c bits, 72 KB) and one threshold/flip pair: a valid ~270 KB model whose
    decoded weights are n_layers x c*9*c int8 values (2.4 GB for the defaults)."""
    cw = (c + 31) // 32
    ts = [tensor(bytes(4 * c * 9 * cw), "B1", (c, 3, 3, c)), tensor(bytes(4 * c), "I32", (c,)),
          tensor(bytes(c), "U8", (c,))]
    L = layer("CONV", "B1", "B1", (4, 4, c), (4, 4, c), "SIGN", k=(3, 3), pad=1, w_enc="B1",
              t_weight=0, t_thr=1, t_aux=2)
    return build([dict(L) for _ in range(n_layers)], ts, (c, 4, 4), "THRESH", 4 * 4 * c)


# ------------------------------------------------------------------------------------------
# blob 1.1 (DAG) loader checks: a valid base DAG and one named blob per rule it can break


def dag_base_graph():
    """A small valid DAG using every 1.1 op (THRESH 1x6x6 input; layer indices as stored):
    0 conv B1 3x3 pad 1 -> 8 SIGN (value 1); 1 depthwise TERN 3x3 (groups 8) REQUANT 2 bits
    (value 2); 2 ADD(1, 2) REQUANT 3 bits (value 3); 3 conv 1x1 I8 MULTI 2 bits (value 4);
    4 CONCAT(3, 4) U8 16 channels (value 5); 5 AVGPOOL 2x3 stride 2x3 SIGN (value 6);
    6 MAXPOOL 1x2 stride 1 (value 7); 7 FLATTEN + 8 conv F32 AFFINE -> 10 scores."""
    from edgeq.format.graph import Add, AvgPool, Concat, Conv, Graph, MaxPool

    rng = np.random.default_rng(14)
    sgn = lambda *s: np.where(rng.random(s) < 0.5, -1, 1).astype(np.int8)  # noqa: E731
    sign = lambda n: dict(thr=rng.integers(-3, 4, n).astype(np.int32), flip=rng.random(n) < 0.3)  # noqa: E731
    req = lambda n, b: dict(mul=rng.integers(1, 9, n).astype(np.int32),  # noqa: E731
                            add=rng.integers(0, 32, n).astype(np.int32), shift=2, out_bits=b)
    tern = (sgn(8, 3, 3, 1) * (rng.random((8, 3, 3, 1)) < 0.6)).astype(np.int8)
    return Graph((1, 6, 6), "THRESH", 128, [
        Conv(sgn(8, 3, 3, 1), "B1", "SIGN", pad=1, **sign(8)),
        Conv(tern, "TERN", "REQUANT", pad=1, groups=8, **req(8, 2)),
        Add(rng.integers(-3, 4, (2, 8)).astype(np.int32), out="REQUANT", src=(1, 2), **req(8, 3)),
        Conv(rng.integers(-9, 10, (8, 1, 1, 8)).astype(np.int8), "I8", "MULTI", out_bits=2,
             thr=np.sort(rng.integers(-20, 20, (8, 3)), axis=1).astype(np.int32), flip=np.zeros(8, bool)),
        Concat(src=(3, 4)),
        AvgPool(2, 3, 2, stride_w=3, out="SIGN", **sign(16)),
        MaxPool(1, 1, kw=2),
        Conv(rng.standard_normal((10, 3, 1, 16)).astype(np.float32), "F32", "AFFINE",
             mul=np.ones(10, np.float32), add=np.zeros(10, np.float32)),
    ], classes=[str(i) for i in range(10)])


def dag_base_blob() -> bytes:
    return pack.write_blob(dag_base_graph())


def concat_out_c_wrap() -> bytes:
    """CONCAT of the 40000-channel U8 input with itself: out_c = 80000 does not fit the u16
    field, which holds 80000 & 0xFFFF = 14464; a loader adding c0 + c1 in 16 bits agrees."""
    c = 40000
    L = layer("CONCAT", "U8", "U8", (1, 1, c), (1, 1, (2 * c) & 0xFFFF), src0=1, src1=1)
    return build([L], [], (c, 1, 1), "RAW", (2 * c) & 0xFFFF, pre_param=0)


def dag_too_many_layers(n_layers: int = spec.MAX_DAG_LAYERS + 1) -> bytes:
    """n_layers 1x1 max-pools reading the input (src0 = 1 on each): a DAG past MAX_DAG_LAYERS."""
    L = layer("MAXPOOL", "B1", "B1", (2, 2, 1), (2, 2, 1), k=(1, 1), stride=1, src0=1)
    return build([dict(L) for _ in range(n_layers)], [], (1, 2, 2), "THRESH", 4)


def v10_base_blob() -> bytes:
    """A valid blob 1.0 (version_minor 0, no 1.1 field): THRESH 1x6x6, conv B1 3x3 pad 1 -> 8
    SIGN, MAXPOOL 2, FLATTEN + conv I8 AFFINE -> 4 scores (layers 0..3 as stored)."""
    from edgeq.format.graph import Conv, Graph, MaxPool

    rng = np.random.default_rng(15)
    w = np.where(rng.random((8, 3, 3, 1)) < 0.5, -1, 1).astype(np.int8)
    return pack.write_blob(Graph((1, 6, 6), "THRESH", 128, [
        Conv(w, "B1", "SIGN", pad=1, thr=np.zeros(8, np.int32), flip=np.zeros(8, bool)),
        MaxPool(2),
        Conv(rng.integers(-9, 10, (4, 3, 3, 8)).astype(np.int8), "I8", "AFFINE",
             mul=np.ones(4, np.int32), add=np.zeros(4, np.int32))]))


def v10_with_1_1_blobs() -> list:
    """(name, blob, ERR_VERSION): blobs marked 1.0 (version_minor 0) that use a blob 1.1 feature,
    which every loader refuses: the DAG base marked 1.0, and v10_base_blob with one 1.1 field set
    (each would be valid, or refused for another reason, in a blob marked 1.1)."""
    base, dag = v10_base_blob(), dag_base_blob()
    s = _status("ERR_VERSION")
    out = [("v10_dag_base", set_field(dag, "header", 0, "version_minor", 0), s)]
    for name, idx, field, value in (("src0", 0, "src0", 1), ("src1", 1, "src1", 1), ("groups", 0, "groups", 1),
                                    ("stride_w", 0, "stride_w", 1), ("pad_w", 0, "pad_w", 2),
                                    ("avgpool", 1, "op", spec.value(spec.OP, "AVGPOOL")),
                                    ("add", 1, "op", spec.value(spec.OP, "ADD")),
                                    ("concat", 1, "op", spec.value(spec.OP, "CONCAT")),
                                    ("requant", 0, "out_stage", spec.value(spec.OUT, "REQUANT"))):
        out.append((f"v10_{name}", set_field(base, "layer", idx, field, value), s))
    return out


def dag_regression_blobs() -> list:
    """(name, blob, status) for each blob 1.1 loader rule (docs/blob-format.md, Validation): the
    base DAG (dag_base_blob, valid) with one field broken, CRC resealed. `status` is the C
    loader's expected answer (ERR_SHAPE for inconsistent shapes/sources, ERR_BOUNDS for a value
    out of its range, ERR_UNSUPPORTED for a combination the format does not have, ERR_TOO_LARGE
    for a size past a limit, ERR_VERSION for a newer minor). The Python reader refuses each with
    BlobFormatError (tests/test_format_dag.py)."""
    base = dag_base_blob()
    ts = pack.tensor_entries(base, pack.read_header(base))
    add_m = struct.unpack_from("<h", base, _hdr(base, "layer_table_off") + 2 * spec.LAYER_SIZE
                               + _LAY["t_weight"])[0]

    def m_value(v: int) -> bytes:  # m[1, 3] of the ADD (I32 (2, 8))
        buf = bytearray(base)
        struct.pack_into("<i", buf, ts[add_m]["offset"] + 4 * (8 + 3), v)
        return pack.reseal(buf)

    f32_requant = set_field(set_field(set_field(base, "layer", 8, "out_stage", spec.value(spec.OUT, "REQUANT")),
                                      "layer", 8, "out_bits", 4), "layer", 8, "out_enc", _ENC["U8"])
    s = _status
    return [
        ("dag_src1_forward", set_field(base, "layer", 2, "src1", 4), s("ERR_SHAPE")),  # its own output
        ("dag_src0_forward", set_field(base, "layer", 0, "src0", 2), s("ERR_SHAPE")),
        ("dag_src1_on_conv", set_field(base, "layer", 3, "src1", 1), s("ERR_SHAPE")),
        ("dag_add_src1_zero", set_field(base, "layer", 2, "src1", 0), s("ERR_SHAPE")),
        ("dag_add_shape_mismatch", set_field(base, "layer", 2, "src1", 1), s("ERR_SHAPE")),  # + the input
        ("dag_add_m_over_2pow30", m_value(2**30 + 1), s("ERR_BOUNDS")),
        ("dag_add_m_int32_min", m_value(-(2**31)), s("ERR_BOUNDS")),  # |INT32_MIN| overflows int32
        ("dag_add_m_dims", set_field(base, "tensor", add_m, "d0", 1), s("ERR_SHAPE")),
        ("dag_concat_enc_mismatch", set_field(base, "layer", 4, "src1", 2), s("ERR_SHAPE")),  # U8 + B1
        ("dag_groups_not_dividing", set_field(base, "layer", 1, "groups", 3), s("ERR_SHAPE")),
        ("dag_groups_on_pool", set_field(base, "layer", 6, "groups", 2), s("ERR_SHAPE")),
        ("dag_pad_w_too_big", set_field(base, "layer", 0, "pad_w", 4), s("ERR_SHAPE")),  # pad_w 3 >= 3
        ("dag_avgpool_window_past_input", set_field(base, "layer", 5, "kw", 7), s("ERR_SHAPE")),
        ("dag_requant_out_bits_9", set_field(base, "layer", 1, "out_bits", 9), s("ERR_SHAPE")),
        ("dag_requant_on_f32", f32_requant, s("ERR_UNSUPPORTED")),
        ("dag_concat_out_c_wrap", concat_out_c_wrap(), s("ERR_SHAPE")),
        ("dag_too_many_layers", dag_too_many_layers(), s("ERR_TOO_LARGE")),
        ("version_minor_3", set_field(base, "header", 0, "version_minor", 3), s("ERR_VERSION")),
    ] + v10_with_1_1_blobs()
