"""Blob writer/reader: round trips, sizes, and a clear error for every corruption class."""

import struct

import numpy as np
import pytest

from edgeq.format import bits as B
from edgeq.format import pack
from edgeq.reference import refnet
from edgeq import spec
from edgeq.errors import BlobFormatError, ShapeError, UnsupportedError
from edgeq.format.graph import Conv, Graph, MaxPool
from edgeq.reference.testing import kbit_graph, kbit_tamper, random_graph


_fix_crc = pack.reseal


@pytest.mark.parametrize("seed", range(30))
def test_round_trip_random_graphs(seed):
    g = pack.canonical(random_graph(seed, "mnist" if seed % 6 == 0 else "small"))
    blob = pack.write_blob(g)
    assert len(blob) % spec.BLOB_ALIGN == 0
    g2 = pack.read_blob(blob)
    assert g2.input_shape == g.input_shape and g2.pre_mode == g.pre_mode
    for a, b in zip(g.layers, g2.layers):
        assert type(a) is type(b)
        if isinstance(a, Conv):
            assert np.array_equal(a.weight, b.weight) and a.w_enc == b.w_enc and a.out == b.out
    assert pack.write_blob(g2) == blob  # canonical: re-packing gives the same bytes
    x = np.random.default_rng(seed).integers(0, 256, (4,) + g.input_shape).astype(np.uint8)
    assert np.array_equal(refnet.run(g, x)[0], refnet.run(g2, x)[0])


def _small():
    rng = np.random.default_rng(1)
    w = np.where(rng.random((4, 3, 3, 1)) < .5, -1, 1).astype(np.int8)
    return Graph((1, 8, 8), "THRESH", 100, [
        Conv(w, "B1", "SIGN", pad=1, thr=np.zeros(4, np.int32), flip=np.zeros(4, bool)),
        MaxPool(2, 2),
        Conv(np.ones((10, 4, 4, 4), np.int8), "B1", "AFFINE", mul=np.ones(10, np.int32),
             add=np.arange(10, dtype=np.int32))])


def test_corruption_classes_each_have_their_own_message():
    blob = pack.write_blob(_small())
    cases = {
        "truncated": blob[:50],
        "header declares": blob[:-8],
        "bad magic": b"XXXX" + blob[4:],
        "CRC mismatch": blob[:200] + bytes([blob[200] ^ 4]) + blob[201:],
    }
    bad_ver = bytearray(blob)
    struct.pack_into("<H", bad_ver, spec.offsets(spec.HEADER)["version_major"], 9)
    cases["unsupported blob version"] = _fix_crc(bad_ver)
    bad_off = bytearray(blob)
    struct.pack_into("<I", bad_off, spec.HEADER_SIZE + spec.offsets(spec.TENSOR)["offset"], 10**6)
    cases["outside the blob"] = _fix_crc(bad_off)
    bad_shape = bytearray(blob)
    lo = spec.offsets(spec.HEADER)["layer_table_off"]
    layer_table = struct.unpack_from("<I", blob, lo)[0]
    struct.pack_into("<H", bad_shape, layer_table + spec.offsets(spec.LAYER)["out_c"], 5)
    cases["weight dims"] = _fix_crc(bad_shape)
    for needle, data in cases.items():
        with pytest.raises(BlobFormatError, match=needle):
            pack.read_blob(data)


def test_unsupported_and_wrong_shapes_are_named():
    g = _small()
    g.layers[0].w_enc = "FANCY"
    with pytest.raises(UnsupportedError, match="FANCY"):
        pack.write_blob(g)
    g = _small()
    g.layers[2] = Conv(np.ones((10, 3, 3, 4), np.int8), "B1", "AFFINE", mul=np.ones(10, np.int32),
                       add=np.zeros(10, np.int32))
    with pytest.raises(ShapeError, match="class"):
        g.classes = ["a", "b"]
        pack.write_blob(g)
    g = _small()
    g.layers[0].weight = g.layers[0].weight * 2
    with pytest.raises(ShapeError, match="weights must be in"):
        pack.write_blob(g)


def test_binary_model_is_30x_smaller_than_float32():
    rng = np.random.default_rng(0)
    sg = lambda *s: np.where(rng.random(s) < .5, -1, 1).astype(np.int8)  # noqa: E731
    thr = lambda n: dict(thr=np.zeros(n, np.int32), flip=np.zeros(n, bool))  # noqa: E731
    g = Graph((1, 28, 28), "THRESH", 128, [
        Conv(sg(256, 28, 28, 1), "B1", "SIGN", **thr(256)),
        Conv(sg(256, 1, 1, 256), "B1", "SIGN", **thr(256)),
        Conv(sg(10, 1, 1, 256), "B1", "AFFINE", mul=np.ones(10, np.int32), add=np.zeros(10, np.int32))])
    info = pack.blob_info(pack.write_blob(g))
    assert info["bits_per_weight"] < 1.02  # rows padded to 32-bit words: 784 -> 800 bits
    assert info["compression_vs_f32"] >= 30


def test_skip_zero_under_one_bit_per_weight_at_high_sparsity():
    rng = np.random.default_rng(0)
    # the nibble stream costs ~4 bits a nonzero plus escapes: 1.06 bits/weight at 80 % zeros,
    # 0.88 at 85 %, 0.78 at 90 % (docs/blob-format.md)
    for sparsity in (0.85, 0.9, 0.95):
        w = np.where(rng.random((64, 3, 3, 64)) < .5, -1, 1).astype(np.int8)
        w[rng.random(w.shape) < sparsity] = 0
        assert pack.best_ternary_encoding(w) == "TERN_SPARSE"
        row_off, nib = B.sparse_encode(w.reshape(64, -1))
        bpw = 8 * len(B.sparse_to_bytes(row_off, nib)) / w.size
        assert bpw < 1.0, (sparsity, bpw)
    dense = np.where(rng.random((8, 64)) < .5, -1, 1).astype(np.int8)
    assert pack.best_ternary_encoding(dense) == "TERN"


def test_sparse_encoding_round_trip_edge_rows():
    rows = np.zeros((5, 50), np.int8)
    rows[1] = 1
    rows[2, -1] = -1
    rows[3, ::7] = -1
    rows[4, 0] = 1
    r, n = B.sparse_encode(rows)
    assert np.array_equal(B.sparse_decode(B.sparse_to_bytes(r, n), 5, 50), rows)
    with pytest.raises(ValueError):
        B.sparse_decode(B.sparse_to_bytes(r, n), 5, 20)


def test_bit_conventions():
    x = np.array([[0.0, -0.5, 3, -1] + [1] * 30])
    w = B.pack_signs(x)
    assert w.dtype == np.dtype("<u4") and w.shape == (1, 2)
    assert w[0, 0] & 1 == 1  # sign(0) = +1 is bit 1
    assert (w[0, 0] >> 1) & 1 == 0  # -0.5 -> bit 0
    assert w[0, 1] == 0b11  # padding bits zero
    assert B.pack_wire(np.array([[[0, 255, 128, 7, 200, 0, 0, 0, 255]]], np.uint8), 128) == bytes([0b10110, 1])


KBIT_WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8)


@pytest.mark.parametrize("bits", KBIT_WIDTHS)
def test_kbit_codes_packed_at_slot_width(bits):
    """docs/blob-format.md: slot sb = smallest of 1, 2, 4, 8 >= bits; code i of a row at bits
    (i*sb) % 8 of byte i*sb // 8, LSB first; rows zero padded to whole 32-bit words."""
    sb = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 6: 8, 7: 8, 8: 8}[bits]
    assert B.kbit_slot_bits(bits) == sb
    rng = np.random.default_rng(bits)
    for k in (1, 5, 8, 31, 32, 33, 100):
        codes = rng.integers(0, 1 << bits, (3, k)).astype(np.uint8)
        data = B.pack_codes(codes, bits)
        rb = 4 * -(-k * sb // 32)
        assert len(data) == 3 * rb == 3 * B.kbit_row_bytes(k, bits)
        bitstream = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little").reshape(3, rb * 8)
        for r in range(3):
            for i in range(k):
                slot = bitstream[r, i * sb:(i + 1) * sb]
                assert int((slot.astype(int) << np.arange(sb)).sum()) == codes[r, i]
        assert not bitstream[:, k * sb:].any()  # padding bits are zero
        assert np.array_equal(B.unpack_codes(data, 3, k, bits), codes)
    two = B.pack_codes(np.array([[1, 2, 3, 0, 1]], np.uint8), 2)
    assert two == bytes([0b00111001, 0b01, 0, 0])


def test_kbit_unpack_rejects_bad_codes_padding_and_size():
    data = bytearray(B.pack_codes(np.full((2, 5), 7, np.uint8), 3))  # 4-bit slots: 0x77 0x77 0x07
    assert bytes(data[:3]) == b"\x77\x77\x07"
    with pytest.raises(ValueError, match=">= 2\\*\\*3"):
        B.unpack_codes(bytes(data[:1]) + b"\x87" + bytes(data[2:]), 2, 5, 3)
    with pytest.raises(ValueError, match="padding"):
        B.unpack_codes(bytes(data[:2]) + b"\x17" + bytes(data[3:]), 2, 5, 3)
    with pytest.raises(ValueError, match="padding"):
        B.unpack_codes(bytes(data[:7]) + b"\x80", 2, 5, 3)
    with pytest.raises(ValueError, match="bytes"):
        B.unpack_codes(bytes(data[:7]), 2, 5, 3)
    with pytest.raises(ValueError):
        B.pack_codes(np.full((1, 3), 8, np.uint8), 3)
    with pytest.raises(ValueError):
        B.kbit_slot_bits(9)


def _tensor_entries(blob):
    hdr = pack.read_header(blob)
    names = [f for f, _, _ in spec.TENSOR]
    return [dict(zip(names, struct.unpack_from(spec.fmt(spec.TENSOR), blob,
                                               hdr["tensor_table_off"] + i * spec.TENSOR_SIZE)))
            for i in range(hdr["n_tensors"])]


@pytest.mark.parametrize("bits", KBIT_WIDTHS)
@pytest.mark.parametrize("pre", ["THRESH", "QUANT"])
def test_kbit_blob_round_trip_every_width(bits, pre):
    g = kbit_graph(bits, pre)
    blob = pack.write_blob(g)
    sb = B.kbit_slot_bits(bits)
    canon = pack.canonical(g)
    kb = [t for t in _tensor_entries(blob) if t["enc"] == spec.value(spec.ENC, "KBIT")]
    assert len(kb) == 3
    for t, layer in zip(kb, [x for x in canon.layers if isinstance(x, Conv)]):
        n, k = layer.weight.shape[0], int(np.prod(layer.weight.shape[1:]))
        assert t["bits"] == bits and t["nbytes"] == n * 4 * -(-k * sb // 32)
    g2 = pack.read_blob(blob)
    for a, b in zip(canon.layers, g2.layers):
        if isinstance(a, Conv):
            assert np.array_equal(a.weight, b.weight) and b.wbits == bits
    assert pack.write_blob(g2) == blob
    info = pack.blob_info(blob)
    dense = info["layers"][-1]  # 10 x 96 codes: the LUT is (2**bits, 2) int32
    assert dense["weight_bytes"] == 10 * 4 * -(-96 * sb // 32) + (1 << bits) * 2 * 4


@pytest.mark.parametrize("bits,kind", [(3, "code"), (5, "code"), (6, "code"), (7, "code"),
                                       (1, "pad"), (2, "pad"), (3, "pad"), (4, "pad"), (5, "pad"),
                                       (8, "pad")])
def test_reader_rejects_bad_kbit_codes_and_padding(bits, kind):
    bad = kbit_tamper(pack.write_blob(kbit_graph(bits, "QUANT")), kind)
    with pytest.raises(BlobFormatError, match=">= 2\\*\\*" if kind == "code" else "padding"):
        pack.read_blob(bad)
