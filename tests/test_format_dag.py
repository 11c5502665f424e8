"""Blob 1.1 (docs/blob-format.md): groups, per-axis stride/pad, 1-D, AVGPOOL, ADD, CONCAT,
REQUANT and DAG sources in the graph, the numpy reference and the packer/reader. Every op is
checked against a plain loop written here from the spec, not against refnet's own helpers."""

import struct

import numpy as np
import pytest

from edgeq import spec
from edgeq.errors import BlobFormatError, ShapeError, UnsupportedError
from edgeq.format import pack
from edgeq.format.graph import Add, AvgPool, Concat, Conv, Flatten, Graph, MaxPool, infer_shapes
from edgeq.reference import refnet
from edgeq.reference.ref import conv2d_f32_ref
from edgeq.reference.testing import _weights

I32 = (-(2**31), 2**31 - 1)


def _naive_conv(a, w, groups, stride, pad, lut=None, b1_in=False):
    """acc[oy, ox, n] = sum over (ky, kx, c in n's group) of a * w (or lut[w][code]); taps in
    the zero padding add nothing. a: (H, W, C) values; w: (N, kh, kw, C/groups)."""
    (sh, sw), (ph, pw) = stride, pad
    h, wd, c = a.shape
    n, kh, kw, cg = w.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    w = np.asarray(w, np.float64 if w.dtype.kind == "f" else np.int64)
    acc = np.zeros((oh, ow, n), w.dtype)
    for oy in range(oh):
        for ox in range(ow):
            for j in range(n):
                gi = j // (n // groups)
                for ky in range(kh):
                    for kx in range(kw):
                        y, x = oy * sh + ky - ph, ox * sw + kx - pw
                        if not (0 <= y < h and 0 <= x < wd):
                            continue
                        for cl in range(cg):
                            v = int(a[y, x, gi * cg + cl])
                            if lut is not None:
                                acc[oy, ox, j] += lut[int(w[j, ky, kx, cl]), int(v > 0) if b1_in else v]
                            else:
                                acc[oy, ox, j] += v * w[j, ky, kx, cl]
    return acc


def _act(rng, enc, shape, levels=4):
    if enc == "B1":
        return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int64)
    return rng.integers(0, levels, shape).astype(np.int64)


@pytest.mark.parametrize("w_enc", ["B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16"])
@pytest.mark.parametrize("case", [
    # (H, W, C), N, groups, (kh, kw), stride, pad
    ((5, 7, 6), 6, 6, (3, 3), (1, 1), (1, 1)),      # depthwise
    ((5, 7, 4), 8, 4, (3, 2), (2, 1), (1, 0)),      # depthwise, multiplier 2, non-square
    ((6, 5, 6), 9, 3, (2, 3), (1, 2), (0, 2)),      # grouped
    ((1, 11, 5), 4, 1, (1, 5), (1, 2), (0, 2)),     # 1-D
    ((1, 9, 64), 64, 64, (1, 3), (1, 1), (0, 1)),   # 1-D depthwise, C past one word
])
def test_conv_groups_strides_pads_match_loops(w_enc, case):
    (h, w, c), n, groups, (kh, kw), stride, pad = case
    rng = np.random.default_rng(hash((w_enc, case)) % 2**32)
    in_enc = "B1" if c % 2 else "U8"
    a = _act(rng, in_enc, (h, w, c))
    wt = _weights(rng, w_enc, (n, kh, kw, c // groups), wbits=3)
    layer = Conv(wt, w_enc, "AFFINE", stride=stride[0], pad=pad[0], stride_w=stride[1], pad_w=pad[1],
                 groups=groups, mul=np.ones(n, np.int32), add=np.zeros(n, np.int32))
    lut = None
    if w_enc == "KBIT":
        layer.wbits, layer.lut = 3, rng.integers(-9, 10, (8, 4)).astype(np.int32)
        lut = layer.lut
    want = _naive_conv(a, wt, groups, stride, pad, lut, in_enc == "B1")
    assert np.array_equal(refnet.conv_acc(layer, a, in_enc), want)


def test_f32_groups_equal_per_group_slices():
    """F32 with groups: each group is an ordinary F32 conv on its channel slice (same order of
    float32 sums), and the whole layer equals the slices side by side bit for bit."""
    rng = np.random.default_rng(3)
    a = _act(rng, "U8", (6, 5, 8), 16)
    wt = _weights(rng, "F32", (12, 3, 2, 2))
    got = conv2d_f32_ref(a, "U8", wt, (2, 1), (1, 0), groups=4)
    parts = [conv2d_f32_ref(a[..., 2 * gi:2 * gi + 2], "U8", wt[3 * gi:3 * gi + 3], (2, 1), (1, 0))
             for gi in range(4)]
    assert got.dtype == np.float32 and np.array_equal(got, np.concatenate(parts, axis=2))
    near = _naive_conv(a, wt.astype(np.float64), 4, (2, 1), (1, 0))
    assert np.allclose(got, near, rtol=1e-4, atol=1e-3)


def _stage_affine(n):
    return dict(out="AFFINE", mul=np.ones(n, np.int32), add=np.zeros(n, np.int32), shift=0)


@pytest.mark.parametrize("enc", ["B1", "U8", "I32"])
def test_avgpool_window_sums_saturate(enc):
    rng = np.random.default_rng(5)
    h, w, c = 5, 7, 3
    if enc == "I32":
        a = rng.integers(2**30, 2**31, (h, w, c))
        a[..., 1] = -a[..., 1] - 1  # saturates low
        a[..., 2] = rng.integers(-1000, 1000, (h, w))
    else:
        a = _act(rng, enc, (h, w, c), 256)
    layer = AvgPool(3, 2, 2, stride_w=3, **_stage_affine(c))
    oh, ow = (h - 3) // 2 + 1, (w - 2) // 3 + 1
    want = np.zeros((oh, ow, c), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for ch in range(c):
                s = sum(int(a[oy * 2 + dy, ox * 3 + dx, ch]) for dy in range(3) for dx in range(2))
                want[oy, ox, ch] = min(max(s, I32[0]), I32[1])
    assert np.array_equal(refnet.avgpool_acc(layer, a), want)
    if enc == "I32":
        assert want[..., 0].max() == I32[1] and want[..., 1].min() == I32[0]


def test_add_is_exact_64_bit_then_saturates():
    c = 4
    m = np.array([[2**30, -(2**30), 3, 1], [2**30, 2**30, -7, 0]], np.int32)
    a0 = np.array([[[2**31 - 1, 2**31 - 1, 5, -(2**31)]]], np.int64)
    a1 = np.array([[[2**31 - 1, 2**31 - 1, -1, 2**31 - 1]]], np.int64)
    acc = refnet.add_acc(Add(m, **_stage_affine(c)), a0, a1)
    want = [min(max(int(m[0, k]) * int(a0[0, 0, k]) + int(m[1, k]) * int(a1[0, 0, k]), I32[0]), I32[1])
            for k in range(c)]
    assert acc.reshape(-1).tolist() == want == [I32[1], 0, 22, I32[0]]


def test_requant_floors_and_clamps():
    layer = Conv(np.ones((3, 1, 1, 1), np.int8), "I8", "REQUANT", mul=np.array([3, -5, 7], np.int32),
                 add=np.array([1, 2, -100], np.int32), shift=2, out_bits=3)
    acc = np.arange(-20, 21, dtype=np.int64)[:, None].repeat(3, axis=1)[None]
    got = refnet.apply_stage(layer, acc)
    for k, (mul, add) in enumerate([(3, 1), (-5, 2), (7, -100)]):
        want = [min(max((int(v) * mul + add) // 4, 0), 7) for v in range(-20, 21)]  # // is floor
        assert got[0, :, k].tolist() == want
    assert {0, 7} <= set(got.reshape(-1).tolist())  # both clamps reached


def _thr(rng, n, lo=-6, hi=6):
    return dict(thr=rng.integers(lo, hi, n).astype(np.int32), flip=rng.random(n) < 0.3)


def _dag_graph(seed=0):
    """Input U8 -> conv (SIGN) -> depthwise (SIGN) -> ADD(1, 2) REQUANT -> CONCAT(3, 3) ->
    AVGPOOL MULTI -> MAXPOOL non-square -> 1-D-ish conv -> dense AFFINE head."""
    rng = np.random.default_rng(seed)
    return Graph((3, 9, 7), "QUANT", 3, [
        Conv(_weights(rng, "I8", (8, 3, 3, 3)), "I8", "SIGN", pad=1, name="stem", **_thr(rng, 8, -50, 50)),
        Conv(_weights(rng, "B1", (8, 3, 3, 1)), "B1", "SIGN", pad=1, groups=8, name="dw", **_thr(rng, 8)),
        Add(rng.integers(-3, 4, (2, 8)).astype(np.int32), out="REQUANT", mul=np.full(8, 3, np.int32),
            add=np.full(8, 4, np.int32), shift=1, out_bits=2, src=(1, 2), name="res"),
        Concat(src=(3, 3), name="cat"),
        AvgPool(3, 2, 2, stride_w=1, out="MULTI", thr=np.tile([2, 6, 10], (16, 1)).astype(np.int32),
                flip=np.zeros(16, bool), out_bits=2, name="avg"),
        MaxPool(2, 1, kw=3, stride_w=2, name="mp"),
        Conv(_weights(rng, "KBIT", (10, 1, 2, 16), 2), "KBIT", "AFFINE", stride=1, stride_w=2, pad_w=1,
             wbits=2, lut=rng.integers(-4, 5, (4, 4)).astype(np.int32), mul=np.ones(10, np.int32),
             add=np.zeros(10, np.int32), name="conv1d"),
    ], classes=[])


def test_dag_reference_matches_hand_walk_and_round_trips():
    g = _dag_graph()
    shapes = infer_shapes(g)
    assert [s.src for s in shapes] == [(0,), (1,), (1, 2), (3, 3), (4,), (5,), (6,)]
    assert [s.out_shape for s in shapes][:4] == [(9, 7, 8), (9, 7, 8), (9, 7, 8), (9, 7, 16)]
    x = np.random.default_rng(1).integers(0, 256, (3, 3, 9, 7)).astype(np.uint8)
    for img in x:
        outs = refnet.layer_outputs(g, img)
        accs = refnet.layer_accs(g, img)
        v0 = refnet.preprocess(g, img)
        # ADD reads layer 0's and layer 1's outputs, not the previous one only
        a = (g.layers[2].m[0] * outs[0] + g.layers[2].m[1] * outs[1])
        assert np.array_equal(accs[2], a)
        assert np.array_equal(outs[2], np.clip((a * 3 + 4) >> 1, 0, 3))
        assert np.array_equal(outs[3], np.concatenate([outs[2], outs[2]], axis=2))
        assert accs[3] is None and accs[5] is None and accs[4].shape == (4, 6, 16)
        assert outs[5].shape == (3, 2, 16) and outs[6].shape == (3, 2, 10)
        assert v0.shape == (9, 7, 3)
    blob = pack.write_blob(g)
    hdr = pack.read_header(blob)
    assert hdr["version_minor"] == 1
    g2 = pack.read_blob(blob)
    assert [type(layer).__name__ for layer in g2.layers] == [type(layer).__name__ for layer in g.layers]
    assert [layer.src for layer in g2.layers] == [(), (), (1, 2), (3, 3), (), (), ()]
    assert g2.layers[1].groups == 8 and g2.layers[6].sw == 2 and g2.layers[6].pw == 1
    assert g2.layers[5].win_w == 3 and g2.layers[5].sw == 2 and g2.layers[2].out_bits == 2
    assert pack.write_blob(g2) == blob
    assert np.array_equal(refnet.run(g, x)[0], refnet.run(g2, x)[0])
    assert hdr["arena_size"] == pack.arena_size(pack.canonical(g))


def test_sequential_graphs_stay_version_1_0_with_zero_new_fields():
    from edgeq.reference.testing import random_graph

    offs = spec.offsets(spec.LAYER)
    for seed in range(12):
        blob = pack.write_blob(random_graph(seed))
        hdr = pack.read_header(blob)
        assert hdr["version_minor"] == 0
        for i in range(hdr["n_layers"]):
            base = hdr["layer_table_off"] + i * spec.LAYER_SIZE
            assert blob[base + offs["src0"]:base + spec.LAYER_SIZE] == bytes(spec.LAYER_SIZE - offs["src0"])
        # explicit sources naming the previous output are the same sequential blob
        g = random_graph(seed)
        for i, layer in enumerate(g.layers):
            layer.src = (i,)
        assert pack.write_blob(g) == blob


def test_one_new_feature_bumps_the_minor_version():
    rng = np.random.default_rng(2)

    def net(**kw):
        first = Conv(_weights(rng, "B1", (4, 3, 3, 1)), "B1", "SIGN", pad=1, **_thr(rng, 4), **kw)
        return Graph((1, 6, 6), "THRESH", 100, [first, Flatten()])

    assert pack.read_header(pack.write_blob(net()))["version_minor"] == 0
    for kw in (dict(stride_w=2), dict(pad_w=0), dict(src=(0,))):
        minor = pack.read_header(pack.write_blob(net(**kw)))["version_minor"]
        assert minor == (0 if kw == dict(src=(0,)) else 1), kw


def test_reader_refuses_a_newer_minor_version():
    blob = bytearray(pack.write_blob(_dag_graph()))
    struct.pack_into("<H", blob, spec.offsets(spec.HEADER)["version_minor"], spec.BLOB_VERSION_MINOR + 1)
    with pytest.raises(BlobFormatError, match=r"needs a newer edgeq.*upgrade"):
        pack.read_blob(pack.reseal(blob))


def _set_layer(blob, i, field, value):
    hdr = pack.read_header(blob)
    b = bytearray(blob)
    name, code, _ = next(f for f in spec.LAYER if f[0] == field)
    struct.pack_into("<" + code, b, hdr["layer_table_off"] + i * spec.LAYER_SIZE + spec.offsets(spec.LAYER)[field],
                     value)
    return pack.reseal(b)


@pytest.mark.parametrize("layer,field,value,needle", [
    (2, "src1", 9, "not an earlier value"),          # ADD reading a later layer
    (0, "src0", 2, "not an earlier value"),
    (4, "src1", 1, "src1 is set on a one-input layer"),
    (2, "src1", 0, "ADD and CONCAT read two values"),
    (4, "groups", 2, "for CONV only"),
    (5, "pad_w", 1, "for CONV only"),
    (1, "groups", 3, "does not divide"),
    (3, "src1", 2, "CONCAT inputs"),                  # U8 + B1: encodings differ
    (2, "src1", 1, "ADD inputs have shapes"),         # (9,7,8) + the input (9,7,3)
    (6, "stride_w", 1, "disagree"),                   # stored out_w no longer matches
])
def test_reader_names_bad_1_1_fields(layer, field, value, needle):
    blob = pack.write_blob(_dag_graph())
    with pytest.raises(BlobFormatError, match=needle):
        pack.read_blob(_set_layer(blob, layer, field, value))


def test_reader_refuses_add_m_past_2_pow_30():
    g = _dag_graph()
    g.layers[2].m = g.layers[2].m.copy()
    g.layers[2].m[1, 3] = 2**30
    blob = pack.write_blob(g)  # 2**30 itself is allowed
    hdr = pack.read_header(blob)
    add_rec = 2
    t_weight = struct.unpack_from("<h", blob, hdr["layer_table_off"] + add_rec * spec.LAYER_SIZE
                                  + spec.offsets(spec.LAYER)["t_weight"])[0]
    te = pack.tensor_entries(blob, hdr)[t_weight]
    b = bytearray(blob)
    struct.pack_into("<i", b, te["offset"] + 4 * (8 + 3), 2**30 + 1)
    with pytest.raises(BlobFormatError, match=r"\|m\| > 2\*\*30"):
        pack.read_blob(pack.reseal(b))
    g.layers[2].m[1, 3] = -(2**30) - 1
    with pytest.raises(ShapeError, match=r"\|m\| <= 2\*\*30"):
        pack.write_blob(g)


def test_infer_shapes_errors_name_the_layer():
    def bad(layers, exc, needle):
        with pytest.raises(exc, match=needle):
            infer_shapes(Graph((4, 6, 6), "RAW", 0, layers))

    rng = np.random.default_rng(0)
    dw = lambda **kw: Conv(_weights(rng, "I8", (4, 3, 3, 1)), "I8", "SIGN", **_thr(rng, 4), **kw)  # noqa: E731
    bad([dw(groups=3)], ShapeError, r"layer 0 \(Conv\): groups=3 must divide")
    bad([dw(groups=4, name="dwc", src=(1,))], ShapeError, r"layer 0 \(dwc\): source value 1 is not an earlier")
    bad([dw(groups=4), Add(np.ones((2, 4), np.int32), **_stage_affine(4), src=(1,))], ShapeError,
        r"layer 1 \(Add\): Add reads 2 value")
    bad([dw(groups=4, stride_w=0)], ShapeError, "strides must be >= 1")
    bad([dw(groups=4, pad_w=3)], ShapeError, "pad < max")
    bad([dw(groups=4), AvgPool(7, 1, 1, **_stage_affine(4))], ShapeError, r"layer 1 \(AvgPool\): avg-pool window")
    bad([Conv(_weights(rng, "I8", (4, 1, 1, 4)), "I8", "AFFINE", mul=np.ones(4), add=np.ones(4)),
         Conv(_weights(rng, "I8", (4, 1, 1, 4)), "I8", "SIGN", **_thr(rng, 4))], UnsupportedError,
        r"layer 1 \(Conv\): a CONV cannot take int32")
    bad([Conv(_weights(rng, "F32", (4, 1, 1, 4)), "F32", "REQUANT", out_bits=2)], UnsupportedError,
        "REQUANT is for integer layers")
    bad([dw(groups=4), Concat(src=(0, 1))], ShapeError, r"layer 1 \(Concat\): CONCAT inputs")
    bad([dw(groups=4), Add(np.ones((2, 3), np.int32), **_stage_affine(4), src=(1, 1))], ShapeError,
        r"m has shape \(2, 3\), expected \(2, 4\)")


def test_planner_hand_example():
    """Input 64 B (B1 4x4x2 -> 16 px x 4 B), conv A (value 1, 4x4x8 U8 = 128 B), conv B reads the
    input (value 2, 128 B), ADD(1, 2) (value 3, 128 B, U8) -> flatten (value 4, 128 B)."""
    rng = np.random.default_rng(0)
    g = Graph((2, 4, 4), "THRESH", 128, [
        Conv(_weights(rng, "B1", (8, 1, 1, 2)), "B1", "REQUANT", mul=np.ones(8, np.int32),
             add=np.zeros(8, np.int32), out_bits=2),
        Conv(_weights(rng, "B1", (8, 1, 1, 2)), "B1", "REQUANT", mul=np.ones(8, np.int32),
             add=np.zeros(8, np.int32), out_bits=2, src=(0,)),
        Add(np.ones((2, 8), np.int32), out="REQUANT", mul=np.ones(8, np.int32), add=np.zeros(8, np.int32),
            out_bits=2, src=(1, 2)),
        Flatten()])
    offs, sizes, peak = pack.plan_values(g)
    assert sizes == [64, 128, 128, 128, 128]
    # layer 0: live {0} -> value 1 at 64; layer 1: live {0, 1} -> value 2 at 192;
    # layer 2: live {1, 2} (value 0 dead) -> value 3 at 0 (fits? 128 > 64: no) -> 320;
    # layer 3: live {3} -> value 4 at 0
    assert offs == [0, 64, 192, 320, 0]
    assert peak == 448
    assert pack.arena_size(g) == 448 + 4 * 8 * 4  # + acc_row (out_w * out_c * 4)
    assert pack.read_header(pack.write_blob(g))["arena_size"] == pack.arena_size(g)


def test_planner_never_overlaps_live_values():
    from edgeq.reference.testing import random_dag

    for seed in range(20):
        g = pack.canonical(random_dag(np.random.default_rng(seed)))
        shapes = infer_shapes(g)
        offs, sizes, peak = pack.plan_values(g, shapes)
        n = len(shapes)
        last = list(range(-1, n))
        for i, s in enumerate(shapes):
            for v in s.src:
                last[v] = max(last[v], i)
        last[n] = n
        for i in range(n):  # during layer i: its inputs, its output and every value read later
            live = [v for v in range(i + 2) if last[v] >= i or v == i + 1]
            for a in live:
                for b in live:
                    if a < b:
                        assert offs[a] + sizes[a] <= offs[b] or offs[b] + sizes[b] <= offs[a], (seed, i, a, b)
        assert peak == max(o + z for o, z in zip(offs, sizes)) <= sum(sizes)


def test_blobgen_dag_regression_blobs_refused_by_the_python_reader():
    import blobgen

    base = blobgen.dag_base_blob()
    g = pack.read_blob(base)  # the base is valid, uses every 1.1 op and runs
    assert {"Add", "AvgPool", "Concat", "MaxPool", "Flatten"} <= {type(layer).__name__ for layer in g.layers}
    assert refnet.run(g, np.zeros((1, 1, 6, 6), np.uint8))[0].shape == (1, 10)
    assert pack.read_blob(blobgen.dag_too_many_layers(spec.MAX_DAG_LAYERS))  # 255 layers: fine
    cases = blobgen.dag_regression_blobs()
    assert len({name for name, _, _ in cases}) == len(cases)
    for name, blob, _ in cases:
        with pytest.raises(BlobFormatError):
            pack.read_blob(blob)
            pytest.fail(name)


@pytest.mark.parametrize("seed", range(40))
def test_random_dag_round_trip(seed):
    """random_dag graphs: pack -> read -> pack is byte-identical, the reference agrees on the
    read-back graph, and the header's arena is the planner's."""
    from edgeq.reference.testing import random_dag

    g = random_dag(seed)
    blob = pack.write_blob(g)
    g2 = pack.read_blob(blob)
    assert pack.write_blob(g2) == blob
    x = np.random.default_rng(seed).integers(0, 256, (3,) + g.input_shape).astype(np.uint8)
    assert np.array_equal(refnet.run(g, x)[0], refnet.run(g2, x)[0])
    assert pack.read_header(blob)["arena_size"] == pack.arena_size(pack.canonical(g))


def test_random_dag_covers_every_feature():
    from edgeq.reference.testing import random_dag

    seen = set()
    for seed in range(40):
        g = random_dag(seed)
        blob = pack.write_blob(g)
        seen.add(f"minor{pack.read_header(blob)['version_minor']}")
        seen.add("1d" if g.input_shape[1] == 1 else "2d")
        for i, s in enumerate(infer_shapes(g)):
            layer = g.layers[i]
            seen.add(type(layer).__name__)
            if s.src != (i,):
                seen.add("skip")
            if isinstance(layer, Conv):
                seen.add((layer.w_enc, "groups" if layer.g > 1 else "dense"))
                if layer.sw != layer.stride or layer.pw != layer.pad:
                    seen.add("non-square")
            if hasattr(layer, "out"):
                seen.add(layer.out)
            if isinstance(layer, Add) and s.in_enc != s.in1_enc:
                seen.add("add-mixed-enc")
            if not isinstance(layer, Conv):
                seen.add((type(layer).__name__, s.in_enc))
    want = {"minor0", "minor1", "1d", "2d", "Add", "AvgPool", "Concat", "MaxPool", "Conv", "skip",
            "non-square", "SIGN", "MULTI", "AFFINE", "REQUANT", "add-mixed-enc",
            ("Concat", "B1"), ("Concat", "U8"), ("Concat", "I32"), ("MaxPool", "I32"), ("AvgPool", "I32"),
            ("AvgPool", "U8"), ("AvgPool", "B1"), ("Add", "B1"), ("Add", "U8")}
    want |= {(e, k) for e in ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16", "F32") for k in ("groups", "dense")}
    assert want <= seen, want - seen


def test_edgeq_info_shows_sources_groups_strides(tmp_path):
    import json

    import blobgen
    from cliutil import edgeq

    p = tmp_path / "dag.eqb"
    p.write_bytes(blobgen.dag_base_blob())
    info = json.loads(edgeq("info", p, "--json").stdout)
    assert info["version"] == "1.1" and info["dag"] is True
    rows = info["layers"]
    assert [r["op"] for r in rows] == ["CONV", "CONV", "ADD", "CONV", "CONCAT", "AVGPOOL", "MAXPOOL",
                                       "FLATTEN", "CONV"]
    assert rows[2]["src"] == [1, 2] and rows[2]["in1_enc"] == "U8" and rows[2]["out_stage"] == "REQUANT"
    assert rows[1]["groups"] == 8 and rows[5]["stride"] == 2 and rows[5]["stride_w"] == 3
    assert info["arena_size"] == pack.arena_size(pack.read_blob(p.read_bytes()))
    table = edgeq("info", p).stdout
    for text in ("ADD", "CONCAT", "AVGPOOL", "REQUANT", "DAG", "g8", "2x3/2x3"):
        assert text in table, text
