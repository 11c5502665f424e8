"""Blob 1.1 in the C runtime (issue 14): random DAGs (residual ADD, CONCAT, grouped/depthwise
conv, non-square stride/pad, AVGPOOL, REQUANT) run by eq_model_run and the host executor equal
the numpy reference bit for bit; the grouped conv and REQUANT kernels equal their references;
every blob 1.1 loader rule answers its status under ASan/UBSan."""

import numpy as np
import pytest

import blobgen
from edgeq import spec
from edgeq.format import bits as _bits
from edgeq.format import pack
from edgeq.format.graph import infer_shapes
from edgeq.native import kernels as K
from edgeq.native.runtime import Model
from edgeq.reference import ref, refnet
from edgeq.reference.testing import random_dag
from test_c_strict import _load_run, load_run  # noqa: F401 (fixture: ASan/UBSan loader + executor)
from test_kernels import _variants_report, variant  # noqa: F401, F811 (fixtures: every variant, report)

INT_ENCS = ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "I16")


# ---- kernels ------------------------------------------------------------------------------------
def _weights(rng, enc, shape, wbits=3):
    if enc == "B1":
        return rng.choice([-1, 1], shape)
    if enc in ("TERN", "TERN_SPARSE"):
        return rng.choice([-1, 0, 0, 1], shape)
    if enc == "I8":
        return rng.integers(-128, 128, shape)
    if enc == "I16":
        return rng.integers(-32768, 32768, shape)
    return rng.integers(0, 1 << wbits, shape)  # KBIT codes


def _act(rng, enc, shape):
    return rng.choice([-1, 1], shape) if enc == "B1" else rng.integers(0, 256, shape)


# (h, w, c, n, kh, kw, stride, pad, groups): depthwise, depthwise x2, grouped, one group,
# 1-D (H = 1), a kernel row wider than the input's padding, a tall stride, word-crossing groups
GEOMS = [
    (7, 9, 8, 8, 3, 3, 1, 1, 8),
    (6, 5, 4, 8, 3, 3, (2, 1), (1, 0), 4),
    (5, 8, 12, 6, 3, 2, (1, 2), (2, 1), 3),
    (6, 6, 5, 7, 3, 3, (2, 1), (0, 2), 1),
    (1, 20, 6, 6, 1, 5, (1, 2), (0, 2), 6),
    (4, 4, 3, 3, 1, 3, (1, 1), (0, 2), 3),
    (9, 7, 2, 4, 2, 3, (3, 2), (1, 1), 2),
    (4, 5, 80, 10, 2, 2, 1, (1, 0), 2),   # 40 channels a group: bit groups cross words
    (3, 3, 66, 66, 2, 2, 1, 1, 66),      # depthwise over 66 channels (3 words a pixel)
    (9, 10, 4, 4, 9, 8, 1, (4, 3), 4),   # depthwise with 72 taps (past the bit-sliced B1 path)
    (5, 7, 33, 33, 3, 3, (2, 1), (1, 2), 33),  # depthwise, 33 channels, per-axis stride/pad
]


@pytest.mark.parametrize("act_enc", ["B1", "U8"])
@pytest.mark.parametrize("w_enc", INT_ENCS)
def test_grouped_conv_kernel_matches_reference(act_enc, w_enc):
    """eq_conv2d_row_grouped (and eq_conv2d_row with per-axis stride/pad) == conv2d_ref."""
    rng = np.random.default_rng(hash((act_enc, w_enc)) % 2**32)
    for h, w, c, n, kh, kw, st, pd, g in GEOMS:
        a = _act(rng, act_enc, (h, w, c))
        wt = _weights(rng, w_enc, (n, kh, kw, c // g))
        lut = rng.integers(-9, 10, (8, 2 if act_enc == "B1" else 256)) if w_enc == "KBIT" else None
        got = K.conv2d(a, act_enc, wt, w_enc, st, pd, lut=lut, groups=g)
        want = ref.conv2d_ref(a, act_enc, wt, w_enc, st, pd, lut=lut, groups=g)
        assert np.array_equal(got, want), (act_enc, w_enc, h, w, c, n, kh, kw, st, pd, g)
        oy = int(rng.integers(0, got.shape[0]))
        assert np.array_equal(got[oy], ref.eq_conv2d_row_grouped(a, act_enc, wt, w_enc, st, pd, g, oy, lut))


@pytest.mark.parametrize("act_enc", ["B1", "U8"])
def test_grouped_conv_f32_bit_exact(act_enc):
    rng = np.random.default_rng(7)
    for h, w, c, n, kh, kw, st, pd, g in GEOMS:
        a = _act(rng, act_enc, (h, w, c))
        wt = (rng.standard_normal((n, kh, kw, c // g)) * 3).astype(np.float32)
        got = K.conv2d_f32(a, act_enc, wt, st, pd, groups=g)
        want = ref.conv2d_f32_ref(a, act_enc, wt, st, pd, g)
        assert got.tobytes() == want.tobytes(), (act_enc, h, w, c, n, kh, kw, st, pd, g)


def test_requant_kernel_matches_reference():
    rng = np.random.default_rng(0)
    ext = np.array([-2**31, 2**31 - 1, 0, -1, 1], np.int64)
    for _ in range(60):
        p, c = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        acc = rng.integers(-2**31, 2**31, (p, c))
        acc.flat[:min(acc.size, 5)] = ext[:min(acc.size, 5)]
        mul = rng.integers(-2**31, 2**31, c)
        add = rng.integers(-2**31, 2**31, c)
        shift, out_bits = int(rng.integers(0, 64)), int(rng.integers(1, 9))
        got = K.requant(acc, mul, add, shift, out_bits)
        assert np.array_equal(got, ref.eq_requant_u8(acc, mul, add, shift, out_bits)), (shift, out_bits)
    # floors (not truncates) negative values, clamps at 2**out_bits - 1
    got = K.requant(np.array([[-5, 7, 1000]]), np.array([1, 1, 1]), np.array([0, 0, 0]), 1, 3)
    assert got.tolist() == [[0, 3, 7]]
    assert K.requant(np.array([[-3]]), np.array([-1]), np.array([0]), 1, 8).tolist() == [[1]]


# ---- whole models ---------------------------------------------------------------------------------
def _value_bytes(val, enc) -> bytes:
    """a reference value (H, W, C) in the runtime layout"""
    if enc == "B1":
        return _bits.pack_signs(np.where(np.asarray(val) > 0, 1, -1)).tobytes()
    return np.ascontiguousarray(val, np.uint8 if enc == "U8" else "<i4").tobytes()


DAG_SEEDS = list(range(48))


def _check_model(g, x, what, layers=True):
    blob = pack.write_blob(g)
    m = Model(blob)
    rs, rc = refnet.run(g, x)
    assert pack.read_header(blob)["arena_size"] == m._m.arena_need, what  # the same plan in C and Python
    c1, s1 = m.predict_one(x)
    assert np.array_equal(s1, rs) and np.array_equal(c1, rc), f"{what}: eq_model_run != refnet"
    c2, s2 = m.predict(x, threads=2)
    assert np.array_equal(s2, rs) and np.array_equal(c2, rc), f"{what}: host executor != refnet"
    if layers:  # act_out: value i + 1 = stored layer i's output, in the runtime layout
        gs = pack.read_blob(blob)  # the stored (canonical) graph: the layers C runs
        outs = refnet.layer_outputs(gs, x[0])
        shapes = infer_shapes(gs)
        assert len(gs.layers) == m.n_layers
        for i in range(len(gs.layers)):
            assert m.layer_output(x[0], i).tobytes() == _value_bytes(outs[i], shapes[i].out_enc), \
                f"{what}: layer {i} ({type(gs.layers[i]).__name__}) output"
    return m


@pytest.mark.parametrize("seed", DAG_SEEDS)
def test_random_dag_c_equals_reference(seed):
    g = random_dag(seed)
    x = np.random.default_rng(seed).integers(0, 256, (5,) + g.input_shape).astype(np.uint8)
    _check_model(g, x, f"seed {seed}")


def test_random_dags_every_host_variant(variant):  # noqa: F811
    """The host executor's per-image route for 1.1 models under each compiled kernel variant."""
    for seed in range(100, 112):
        g = random_dag(seed)
        x = np.random.default_rng(seed).integers(0, 256, (3,) + g.input_shape).astype(np.uint8)
        _check_model(g, x, f"{variant} seed {seed}", layers=False)


@pytest.mark.parametrize("kind", ["seq11", "dag"])
def test_random_dag_kinds_and_1d(kind):
    for seed in range(200, 210):
        g = random_dag(seed, kind=kind, one_d=seed % 2 == 0)
        x = np.random.default_rng(seed).integers(0, 256, (3,) + g.input_shape).astype(np.uint8)
        _check_model(g, x, f"{kind} seed {seed}", layers=False)


def test_sequential_blobs_keep_ping_pong_arena():
    """A 1.0-style chain (every src 0) keeps arena_need = 2 * max_act + acc_row, minor 0."""
    from edgeq.reference.testing import random_graph

    for seed in range(5):
        blob = pack.write_blob(random_graph(seed, "small"))
        m = Model(blob)
        assert pack.read_header(blob)["version_minor"] == 0
        assert m._m.arena_need == 2 * m._m.max_act + m._m.acc_row and not m._m.dag and not m._m.v11


# ---- loader rules ---------------------------------------------------------------------------------
def _own_regression_blobs() -> list:
    """(name, blob, status): the C loader's blob 1.1 checks beyond blobgen.dag_regression_blobs."""
    base = blobgen.dag_base_blob()
    g = blobgen.dag_base_graph()
    shapes = infer_shapes(g)
    kinds = [type(L).__name__ for L in g.layers]
    conv = kinds.index("Conv")
    flat = next((i for i, k in enumerate(kinds) if k in ("Flatten", "MaxPool")), None)
    add = kinds.index("Add")
    s = blobgen._status
    out = [
        ("own_add_src0_forward", blobgen.set_field(base, "layer", add, "src0", add + 2), s("ERR_SHAPE")),
        ("own_conv_stride_w_0_stride_0", blobgen.set_field(base, "layer", conv, "stride", 0), s("ERR_SHAPE")),
        ("own_conv_groups_0xffff", blobgen.set_field(base, "layer", conv, "groups", 0xFFFF), s("ERR_SHAPE")),
        ("own_minor_1_ok", base, s("OK")),
    ]
    if flat is not None:
        out.append(("own_stride_w_on_" + kinds[flat].lower() if kinds[flat] == "Flatten" else "own_pool_pad_w",
                    blobgen.set_field(base, "layer", flat, "stride_w" if kinds[flat] == "Flatten" else "pad_w", 2),
                    s("ERR_SHAPE")))
    req = [i for i, L in enumerate(g.layers) if getattr(L, "out", "") == "REQUANT"]
    if req:
        out.append(("own_requant_shift_64", blobgen.set_field(base, "layer", req[0], "shift", 64), s("ERR_SHAPE")))
    assert shapes  # the base graph has shapes
    return out


def test_loader_rules_under_sanitizers(load_run, tmp_path):  # noqa: F811
    """Every blob 1.1 loader rule (blobgen.dag_regression_blobs + own) answers its status with no
    ASan/UBSan report; the same statuses through the cffi loader."""
    cases = blobgen.dag_regression_blobs() + _own_regression_blobs()
    got = _load_run(load_run, {name: blob for name, blob, _ in cases}, tmp_path)
    assert got == {name: status for name, _, status in cases}


def _c_load(blob: bytes) -> tuple:
    """(status, model) of the C loader alone (eq_model_load), the blob in an 8-aligned buffer"""
    from edgeq.native.runtime import native

    n = native()
    buf = n.ffi.new("uint64_t[]", (len(blob) + 7) // 8)
    n.ffi.memmove(buf, blob, len(blob))
    m = n.ffi.new("eq_model_t *")
    return n.lib.eq_model_load(m, n.ffi.cast("uint8_t *", buf), len(blob)), m


def test_dag_layer_limit():
    """MAX_DAG_LAYERS layers of a DAG load (offsets for every value); one more is TOO_LARGE;
    a sequential chain has no such limit."""
    st, m = _c_load(blobgen.dag_too_many_layers(spec.MAX_DAG_LAYERS))
    assert st == 0 and m.dag and m.n_layers == spec.MAX_DAG_LAYERS
    # every layer reads the input (16 bytes: 4 pixels of one word, live to the last layer); each output is unread: it
    # dies at once, so all of them take the place right after the input
    assert all(m.val_off[v] == 16 for v in range(1, spec.MAX_DAG_LAYERS + 1)) and m.arena_need == 32 + m.acc_row
    assert _c_load(blobgen.dag_too_many_layers())[0] == spec.value(spec.STATUS, "ERR_TOO_LARGE")
    L = blobgen.layer("MAXPOOL", "B1", "B1", (2, 2, 1), (2, 2, 1), k=(1, 1), stride=1)
    st, m = _c_load(blobgen.build([dict(L) for _ in range(300)], [], (1, 2, 2), "THRESH", 4))
    assert st == 0 and not m.dag and m.arena_need == 2 * m.max_act + m.acc_row


def test_random_dags_under_sanitizers(load_run, tmp_path):  # noqa: F811
    """Random DAG blobs load and run (every op, every encoding) under ASan/UBSan."""
    blobs = {f"dag{seed}": pack.write_blob(random_dag(seed)) for seed in range(24)}
    assert _load_run(load_run, blobs, tmp_path) == {k: 0 for k in blobs}


def _wide_grouped_blob(groups: int) -> bytes:
    """RAW 40000-channel 1x2 input, one 1x2 I8 conv (2 outputs, `groups` groups) -> AFFINE:
    K = 2 * 40000 / groups codes of up to 255 times weights of up to 128 per output."""
    c, n = 40000, 2
    ts = [blobgen.tensor(np.ones(n * 2 * (c // groups), np.int8).tobytes(), "I8", (n, 1, 2, c // groups)),
          blobgen.tensor(np.ones(n, "<i4").tobytes(), "I32", (n,)),
          blobgen.tensor(np.zeros(n, "<i4").tobytes(), "I32", (n,))]
    L = blobgen.layer("CONV", "U8", "I32", (1, 2, c), (1, 1, n), "AFFINE", k=(1, 2), w_enc="I8", t_weight=0,
                      t_thr=1, t_aux=2, groups=groups)
    return blobgen.build([L], ts, (c, 1, 2), "RAW", n, pre_param=0, version_minor=1)


def test_accumulator_bound_uses_channels_per_group():
    """K = kh * kw * C/g: 40000 channels in 2 groups under a 1x2 kernel (K = 40000, 40000 * 255 *
    128 < 2**31) load; the same layer in one group (K = 80000) could overflow int32: TOO_LARGE."""
    assert _c_load(_wide_grouped_blob(2))[0] == 0
    assert _c_load(_wide_grouped_blob(1))[0] == spec.value(spec.STATUS, "ERR_TOO_LARGE")
