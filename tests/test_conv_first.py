"""Few-channel CONV layers fused with their output stage (firmware/kernels/eq_conv_first.c).

The path is called by the runtime (eq_conv_fast, before its row loop) for layers on 1..4 input
channels with kh*kw*C <= 127 taps and B1 / TERN / TERN_SPARSE weights: B1 input with SIGN output (bit-sliced
across the output channels) and U8 input with SIGN or MULTI output. Checked here:
- directly through cffi: eq_conv_first's output equals the row loop (eq_conv2d_row) plus the
  stage kernel (eq_threshold_sign_b1 / eq_threshold_multi_u8), i.e. the runtime with the path
  disabled, and the numpy reference, over random awkward shapes (C = 1..3, N around the 32-bit
  word, odd H/W, stride 1/2, pad 0..2, kernels 1..5, U8 codes of 8/4/2 bits, flips,
  thresholds at INT32_MIN / INT32_MAX and around the accumulator range);
- the shapes it must refuse (EQ_ERR_UNSUPPORTED, scratch 0), and a too small scratch;
- through the runtime (Model) against edgeq.reference.refnet;
- on the emulated boards (DSP M4, portable M3, sim): scores equal the host runtime's.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.format.bits import pack_signs, sparse_encode, sparse_to_bytes, tern_planes
from edgeq.format.graph import Conv, Graph, MaxPool
from edgeq.format.pack import write_blob
from edgeq.native.runtime import Model, native
from edgeq.reference import refnet
from edgeq.reference.ref import conv2d_ref

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _lib():
    return native()


def _random_case(rng, c, kh, kw, n, act, w_enc, stage, *, h=None, w=None, stride=None, pad=None,
                 out_bits=2):
    h = h or int(rng.integers(max(1, kh - 2), 12))
    w = w or int(rng.integers(max(1, kw - 2), 12))
    if stride is None:
        stride = int(rng.integers(1, 3))
    if pad is None:
        pad = int(rng.integers(0, max(kh, kw)))
    pad = min(pad, max(kh, kw) - 1)
    h, w = max(h, kh - 2 * pad), max(w, kw - 2 * pad)
    wt = rng.choice(np.array([-1, 1], np.int8), size=(n, kh, kw, c))
    if w_enc in ("TERN", "TERN_SPARSE"):
        wt = (wt * (rng.random(wt.shape) >= (0.4 if w_enc == "TERN" else 0.8))).astype(np.int8)
        wt[0] = 0  # an all-zero row
    if act == "B1":
        a = rng.choice(np.array([-1, 1]), size=(h, w, c))
    else:
        a = rng.integers(0, 1 << act, (h, w, c))  # act = bits of the U8 codes
    k = kh * kw * c
    bound = k * (1 if act == "B1" else (1 << act) - 1)
    flip = rng.random(n) < 0.4
    if stage == "SIGN":
        thr = rng.integers(-bound - 2, bound + 3, n).astype(np.int64)
        ext = rng.random(n) < 0.15
        thr[ext] = rng.choice([I32_MIN, I32_MAX, I32_MIN + 1, I32_MAX - 1], int(ext.sum()))
    else:  # 2**out_bits - 1 thresholds per channel (up to 3 folded into the rows, more compared)
        thr = np.sort(rng.integers(-bound - 1, bound + 2, (n, (1 << out_bits) - 1)), axis=1).astype(np.int64)
        thr[rng.random(n) < 0.1, 0] = I32_MIN
        thr[rng.random(n) < 0.1, -1] = I32_MAX
        if out_bits > 1:
            unsorted = rng.random(n) < 0.2  # the stage counts thresholds in any order
            thr[unsorted] = thr[unsorted][:, ::-1]
    return dict(c=c, h=h, w=w, n=n, kh=kh, kw=kw, stride=stride, pad=pad, act=act, a=a, wt=wt,
                w_enc=w_enc, stage=stage, thr=thr.astype(np.int32), flip=flip, out_bits=out_bits)


def _job(cs):
    """cffi job + buffers for eq_conv_first / the row loop, in the runtime's layouts."""
    ffi, lib = _lib().ffi, _lib().lib
    c, h, w, n, kh, kw, st, pad = (cs[k] for k in ("c", "h", "w", "n", "kh", "kw", "stride", "pad"))
    oh, ow = (h + 2 * pad - kh) // st + 1, (w + 2 * pad - kw) // st + 1
    s = ffi.new("eq_conv_shape_t *", dict(in_h=h, in_w=w, in_c=c, out_h=oh, out_w=ow, out_c=n,
                                           kh=kh, kw=kw, stride=st, pad=pad))
    keep = [s]
    if cs["act"] == "B1":
        in_enc = lib.EQ_ENC_B1
        act = np.ascontiguousarray(pack_signs(cs["a"]).astype(np.uint32))  # (h, w, 1)
    else:
        in_enc = lib.EQ_ENC_U8
        act = np.ascontiguousarray(cs["a"].astype(np.uint8))
    if cs["w_enc"] == "B1":
        wdat, w_enc = np.ascontiguousarray(pack_signs(cs["wt"]).astype(np.uint32)), lib.EQ_ENC_B1
    elif cs["w_enc"] == "TERN":
        wdat, w_enc = np.ascontiguousarray(tern_planes(cs["wt"]).astype(np.uint32)), lib.EQ_ENC_TERN
    else:
        raw = sparse_to_bytes(*sparse_encode(cs["wt"].reshape(n, -1)))
        wdat = np.zeros((len(raw) + 3) // 4, np.uint32)  # 4-byte aligned, as in a blob
        wdat.view(np.uint8)[:len(raw)] = np.frombuffer(raw, np.uint8)
        w_enc = lib.EQ_ENC_TERN_SPARSE
    wd = ffi.new("eq_weights_t *", dict(enc=w_enc, data=ffi.from_buffer(wdat)))
    thr = np.ascontiguousarray(cs["thr"])
    flip = np.ascontiguousarray(cs["flip"].astype(np.uint8))
    stage = lib.EQ_OUT_SIGN if cs["stage"] == "SIGN" else lib.EQ_OUT_MULTI
    out_bytes = oh * ow * (4 * ((n + 31) // 32) if stage == lib.EQ_OUT_SIGN else n)
    keep += [act, wdat, wd, thr, flip]
    return dict(s=s, in_enc=in_enc, act=act, wd=wd, w_enc=w_enc, thr=thr, flip=flip, stage=stage,
                out_bytes=out_bytes, oh=oh, ow=ow, keep=keep, out_bits=cs["out_bits"])


def _fast(j, scratch_bytes=None):
    ffi, lib = _lib().ffi, _lib().lib
    need = lib.eq_conv_first_scratch(j["s"], j["in_enc"], j["w_enc"], j["stage"], 0)
    # the loader reserves that scratch only where it fits the layer's accumulator row
    row = j["ow"] * j["s"].out_c * 4
    assert lib.eq_conv_fast_scratch(j["s"], j["in_enc"], j["w_enc"], j["stage"], 0) == (need if need <= row else 0)
    nb = need if scratch_bytes is None else scratch_bytes
    scratch = ffi.new("uint64_t[]", nb // 8 + 1)
    out = ffi.new("uint8_t[]", j["out_bytes"] + 1)
    out[j["out_bytes"]] = 0xA5  # guard byte
    job = ffi.new("eq_conv_job_t *")
    job.s = j["s"]
    job.in_enc = j["in_enc"]
    setattr(job, "in", ffi.from_buffer(j["act"]))
    job.w = j["wd"]
    job.out_stage = j["stage"]
    job.out_bits = j["out_bits"]
    job.thr = ffi.cast("int32_t *", ffi.from_buffer(j["thr"]))
    job.aux = ffi.cast("uint8_t *", ffi.from_buffer(j["flip"]))
    job.extra = ffi.NULL
    job.out = out
    job.scratch = scratch
    job.scratch_bytes = nb
    st = lib.eq_conv_first(job)
    assert out[j["out_bytes"]] == 0xA5, "eq_conv_first wrote past its output"
    return st, need, bytes(ffi.buffer(out, j["out_bytes"]))


def _row_loop(j):
    """The runtime's path without the fast path: eq_conv2d_row + the stage, row by row."""
    ffi, lib = _lib().ffi, _lib().lib
    s, n = j["s"], j["s"].out_c
    acc = ffi.new("int32_t[]", j["ow"] * n)
    out = ffi.new("uint8_t[]", j["out_bytes"])
    row = j["out_bytes"] // j["oh"]
    for oy in range(j["oh"]):
        assert lib.eq_conv2d_row(s, j["in_enc"], ffi.from_buffer(j["act"]), j["wd"], oy, acc) == 0
        o = out + oy * row
        if j["stage"] == lib.EQ_OUT_SIGN:
            lib.eq_threshold_sign_b1(acc, j["ow"], n, ffi.cast("int32_t *", ffi.from_buffer(j["thr"])),
                                     ffi.cast("uint8_t *", ffi.from_buffer(j["flip"])), ffi.cast("uint32_t *", o))
        else:
            lib.eq_threshold_multi_u8(acc, j["ow"], n, ffi.cast("int32_t *", ffi.from_buffer(j["thr"])),
                                      (1 << j["out_bits"]) - 1,
                                      ffi.cast("uint8_t *", ffi.from_buffer(j["flip"])), o)
    return bytes(ffi.buffer(out, j["out_bytes"]))


def _numpy(cs, j):
    acc = conv2d_ref(cs["a"], "B1" if cs["act"] == "B1" else "U8", cs["wt"], cs["w_enc"],
                     cs["stride"], cs["pad"]).astype(np.int64)
    thr, flip = cs["thr"].astype(np.int64), cs["flip"]
    if cs["stage"] == "SIGN":
        bits = np.where(flip, acc <= thr, acc >= thr)
        words = np.zeros(bits.shape[:2] + ((cs["n"] + 31) // 32,), np.uint32)
        for i in range(cs["n"]):
            words[..., i // 32] |= bits[..., i].astype(np.uint32) << np.uint32(i % 32)
        return words.tobytes()
    ge = acc[..., None] >= thr[None, None]
    le = acc[..., None] <= thr[None, None]
    return np.where(flip[None, None, :, None], le, ge).sum(-1).astype(np.uint8).tobytes()


def _cases(n_cases, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_cases):
        act = [8, 4, 2, "B1"][i % 4]
        w_enc = ("B1", "TERN", "B1", "TERN_SPARSE")[(i // 4) % 4]
        stage = "SIGN" if act == "B1" or (i // 8) % 3 else "MULTI"
        if i % 3 == 0:
            c, kh, kw = 1 if i % 6 == 0 else 3, 3, 3  # the specialised loops (1 and 3 channels)
        else:
            c, kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        n = int(rng.choice([1, 2, 7, 31, 32, 33, 64, 65]))
        size = {}
        if i % 7 == 3:  # tiny images (a single output pixel where the kernel covers it all)
            size = dict(h=int(rng.integers(1, 4)), w=int(rng.integers(1, 4)))
        out.append(_random_case(rng, c, kh, kw, n, act, w_enc, stage, out_bits=int(rng.choice([1, 2, 2, 3, 4])),
                                **size))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fast_path_equals_row_loop_and_numpy(seed):
    for cs in _cases(60, seed):
        j = _job(cs)
        st, need, got = _fast(j)
        assert st == 0 and need > 0, (cs["c"], cs["kh"], cs["kw"], cs["act"], cs["stage"])
        want = _row_loop(j)
        info = {k: cs[k] for k in ("c", "h", "w", "n", "kh", "kw", "stride", "pad", "act", "w_enc", "stage")}
        assert got == want, ("fast path != row loop + stage", info)
        assert got == _numpy(cs, j), ("fast path != numpy", info)


def test_28x28_first_layers_equal_row_loop():
    """The benchmarked shapes (3x3 pad 1, 28x28x1 -> 32) and stride 2 / 64 channels, also on three
    input channels (RGB, as resnet8's first layer)."""
    rng = np.random.default_rng(11)
    for act in ("B1", 8, 2):
        for w_enc in ("B1", "TERN", "TERN_SPARSE"):
            for st, n in ((1, 32), (2, 64), (1, 40)):
                stages = ("SIGN",) if act == "B1" else ("SIGN", "MULTI")
                for stage in stages:
                    for c in (1, 3):
                        cs = _random_case(rng, c, 3, 3, n, act, w_enc, stage, h=28, w=28, stride=st, pad=1)
                        j = _job(cs)
                        st_, _, got = _fast(j)
                        assert st_ == 0 and got == _row_loop(j) == _numpy(cs, j), (act, w_enc, st, n, stage, c)


def test_refuses_what_it_does_not_take():
    ffi, lib = _lib().ffi, _lib().lib
    rng = np.random.default_rng(3)
    unsupported = lib.EQ_ERR_UNSUPPORTED
    cs = _random_case(rng, 1, 3, 3, 8, "B1", "B1", "SIGN", h=6, w=6, stride=1, pad=1)
    j = _job(cs)
    # the runtime keeps its row loop where the path's scratch would grow the arena (8 channels
    # on a 6x6 output: a 192-byte accumulator row)
    assert lib.eq_conv_first_scratch(j["s"], j["in_enc"], j["w_enc"], j["stage"], 0) > 192
    assert lib.eq_conv_fast_scratch(j["s"], j["in_enc"], j["w_enc"], j["stage"], 0) == 0
    # a scratch one byte short of what it asked for: refused, the runtime's row loop runs
    st, need, _ = _fast(j, scratch_bytes=None)
    assert st == 0
    st, _, _ = _fast(j, scratch_bytes=need - 1)
    assert st == unsupported
    # B1 input with MULTI output, AFFINE, I8 weights, 5 channels, more than 127 taps
    s = j["s"]
    assert lib.eq_conv_first_scratch(s, lib.EQ_ENC_B1, lib.EQ_ENC_B1, lib.EQ_OUT_MULTI, 0) == 0
    assert lib.eq_conv_first_scratch(s, lib.EQ_ENC_U8, lib.EQ_ENC_B1, lib.EQ_OUT_AFFINE, 0) == 0
    assert lib.eq_conv_first_scratch(s, lib.EQ_ENC_U8, lib.EQ_ENC_I8, lib.EQ_OUT_SIGN, 0) == 0
    assert lib.eq_conv_first_scratch(s, lib.EQ_ENC_B1, lib.EQ_ENC_B1, lib.EQ_OUT_SIGN, 1) == 0
    for c, kh, kw in ((5, 1, 1), (4, 6, 6), (3, 7, 7), (1, 17, 1)):  # C > 4, K > 127, kh > 16
        big = ffi.new("eq_conv_shape_t *", dict(in_h=max(8, kh), in_w=8, in_c=c, out_h=max(8, kh) - kh + 1,
                                                 out_w=8 - kw + 1, out_c=8, kh=kh, kw=kw, stride=1, pad=0))
        for in_enc in (lib.EQ_ENC_B1, lib.EQ_ENC_U8):
            assert lib.eq_conv_first_scratch(big, in_enc, lib.EQ_ENC_B1, lib.EQ_OUT_SIGN, 0) == 0
    ok = ffi.new("eq_conv_shape_t *", dict(in_h=8, in_w=8, in_c=4, out_h=2, out_w=2, out_c=8,
                                            kh=7, kw=4, stride=1, pad=0))  # 112 taps
    assert lib.eq_conv_first_scratch(ok, lib.EQ_ENC_B1, lib.EQ_ENC_B1, lib.EQ_OUT_SIGN, 0) > 0
    assert lib.eq_conv_first(ffi.NULL) == unsupported


@pytest.mark.parametrize("act", ["B1", 8])
def test_bad_sparse_stream_is_the_row_loops_error(act):
    """A TERN_SPARSE nibble 15 or a weight past the row: EQ_ERR_ARG from both paths."""
    ffi, lib = _lib().ffi, _lib().lib
    rng = np.random.default_rng(4)
    for bad in ("nib15", "past"):
        cs = _random_case(rng, 1, 3, 3, 4, act, "TERN_SPARSE", "SIGN", h=5, w=5, stride=1, pad=1)
        cs["wt"][1, 1, 1, 0] = 1
        j = _job(cs)
        b = j["keep"][2].view(np.uint8)  # the stream starts after row_off[N + 1]
        off = np.frombuffer(b[:4 * 5].tobytes(), np.uint32)
        q = int(off[1])  # row 1's first nibble
        if bad == "nib15":
            b[20 + q // 2] |= np.uint8(15 << (4 * (q % 2)))
        else:  # a long run of skips: the next weight lands past K = 9
            b[20 + q // 2] = (b[20 + q // 2] & np.uint8(0xF0 if q % 2 == 0 else 0x0F)) | np.uint8(
                (7 << (4 * (q % 2))))
            b[20 + q // 2 + 1:20 + q // 2 + 2] = 0x77
        st, _, _ = _fast(j)
        assert st == lib.EQ_ERR_ARG, bad
        acc = ffi.new("int32_t[]", j["ow"] * 4)
        assert lib.eq_conv2d_row(j["s"], j["in_enc"], ffi.from_buffer(j["act"]), j["wd"], 1, acc) == lib.EQ_ERR_ARG


def _unpack_out(raw, h, w, n, stage):
    if stage == "SIGN":
        cw = (n + 31) // 32
        words = np.frombuffer(raw.tobytes(), np.uint32).reshape(h, w, cw)
        bits = np.stack([(words[..., i // 32] >> (i % 32)) & 1 for i in range(n)], -1)
        return np.where(bits == 1, 1, -1)
    return raw.reshape(h, w, n).astype(np.int64)


def _graph(rng, c, h, w, n, kh, stride, pad, pre, w_enc, stage, tail=False):
    wt = rng.choice(np.array([-1, 1], np.int8), size=(n, kh, kh, c))
    if w_enc in ("TERN", "TERN_SPARSE"):
        wt = (wt * (rng.random(wt.shape) >= 0.4)).astype(np.int8)
    k = kh * kh * c
    bound = k * (1 if pre[0] == "THRESH" else 255)
    flip = rng.random(n) < 0.4
    if stage == "SIGN":
        thr = rng.integers(-bound - 1, bound + 2, n).astype(np.int64)
        thr[rng.random(n) < 0.1] = I32_MAX
        thr[rng.random(n) < 0.1] = I32_MIN
        first = Conv(wt, w_enc, "SIGN", stride=stride, pad=pad, thr=thr.astype(np.int32), flip=flip)
    else:
        thr = np.sort(rng.integers(-bound, bound + 1, (n, 3)), axis=1).astype(np.int32)
        first = Conv(wt, w_enc, "MULTI", stride=stride, pad=pad, thr=thr, flip=flip, out_bits=2)
    layers = [first]
    if tail:
        oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kh) // stride + 1
        layers += [MaxPool(2, 2), Conv(rng.choice(np.array([-1, 1], np.int8), size=(10, oh // 2, ow // 2, n)),
                                       "B1", "AFFINE", mul=np.ones(10, np.int32), add=np.zeros(10, np.int32))]
    return Graph((c, h, w), *pre, layers)


MODEL_CASES = [  # (c, h, w, n, k, stride, pad, preprocessing, w_enc, stage); the runtime takes the path
    (1, 28, 28, 32, 3, 1, 1, ("RAW", 0), "B1", "SIGN"),
    (1, 28, 28, 32, 3, 1, 1, ("THRESH", 128), "B1", "SIGN"),
    (1, 28, 28, 32, 3, 1, 1, ("THRESH", 100), "TERN", "SIGN"),
    (1, 9, 15, 33, 3, 2, 1, ("QUANT", 4), "TERN", "MULTI"),
    (3, 12, 40, 64, 5, 1, 2, ("THRESH", 128), "B1", "SIGN"),
    (2, 9, 30, 65, 3, 2, 0, ("RAW", 0), "TERN", "SIGN"),
    (3, 5, 5, 7, 1, 1, 0, ("QUANT", 2), "B1", "MULTI"),
    (1, 28, 28, 32, 3, 1, 1, ("RAW", 0), "TERN_SPARSE", "MULTI"),  # as twn-cnn's first layer
    (2, 9, 12, 40, 3, 1, 1, ("THRESH", 128), "TERN_SPARSE", "SIGN"),
    (3, 32, 32, 16, 3, 1, 1, ("RAW", 0), "B1", "SIGN"),  # as resnet8-bnn's first layer
    (3, 32, 32, 16, 3, 1, 1, ("QUANT", 2), "TERN_SPARSE", "MULTI"),  # as resnet8-twn's first layer
    (3, 19, 33, 16, 3, 2, 1, ("RAW", 0), "B1", "SIGN"),  # as mobilenet's (stride 2, odd sizes)
    (4, 7, 25, 12, 3, 1, 1, ("RAW", 0), "B1", "SIGN"),
    (4, 6, 12, 33, 2, 1, 1, ("QUANT", 4), "TERN", "MULTI"),
]


@pytest.mark.parametrize("case", MODEL_CASES)
def test_runtime_first_layer_equals_refnet(case):
    c, h, w, n, k, st, pad, pre, w_enc, stage = case
    rng = np.random.default_rng(hash(case) % 2**32)
    g = _graph(rng, c, h, w, n, k, st, pad, pre, w_enc, stage)
    m = Model(write_blob(g))
    ffi, lib = _lib().ffi, _lib().lib
    oh, ow = (h + 2 * pad - k) // st + 1, (w + 2 * pad - k) // st + 1
    shape = ffi.new("eq_conv_shape_t *", dict(in_h=h, in_w=w, in_c=c, out_h=oh, out_w=ow, out_c=n,
                                               kh=k, kw=k, stride=st, pad=pad))
    enc = {"B1": lib.EQ_ENC_B1, "TERN": lib.EQ_ENC_TERN, "TERN_SPARSE": lib.EQ_ENC_TERN_SPARSE}[w_enc]
    assert lib.eq_conv_fast_scratch(shape, lib.EQ_ENC_B1 if pre[0] == "THRESH" else lib.EQ_ENC_U8, enc,
                                    lib.EQ_OUT_SIGN if stage == "SIGN" else lib.EQ_OUT_MULTI, 0) > 0, \
        "the runtime does not take the fused path for this layer"
    for _ in range(3):
        px = rng.integers(0, 256, (c, h, w), dtype=np.uint8)
        ref = refnet.layer_outputs(g, px)[0]
        got = _unpack_out(m.layer_output(px, 0), ref.shape[0], ref.shape[1], n, stage)
        assert np.array_equal(got, ref), case
    g = _graph(rng, c, h, w, n, k, st, pad, pre, w_enc, stage, tail=True)
    px = rng.integers(0, 256, (4, c, h, w), dtype=np.uint8)
    cls, scores = Model(write_blob(g)).predict(px)
    want_s, want_c = refnet.run(g, px)
    assert np.array_equal(scores, want_s) and np.array_equal(cls, want_c), case


@pytest.mark.parametrize("seed", range(3))
def test_arena_unchanged_and_path_by_the_jobs_scratch(seed):
    """The path never grows the arena (the header's arena_size, which has no term for it, is
    what the C loader asks for), and at run time it runs wherever its scratch fits in the
    arena's accumulator row: the same scores as the numpy reference either way."""
    from edgeq.format import pack

    rng = np.random.default_rng(40 + seed)
    for i in range(12):
        c, kh = int(rng.integers(1, 5)), int(rng.choice([1, 2, 3, 3, 5]))
        h, w = (int(v) for v in rng.integers(kh, 12, 2))
        n = int(rng.choice([3, 16, 33, 70]))
        w_enc, stage = str(rng.choice(["B1", "TERN", "TERN_SPARSE"])), str(rng.choice(["SIGN", "MULTI"]))
        pre = ("RAW", 0) if i % 3 else ("QUANT", 4)
        g = _graph(rng, c, h, w, n, kh, int(rng.integers(1, 3)), int(rng.integers(0, kh)), pre, w_enc, stage,
                   tail=bool(i % 2))
        blob = pack.write_blob(g)
        m = Model(blob)
        assert pack.read_header(blob)["arena_size"] == m.arena_size
        px = rng.integers(0, 256, (3, c, h, w), dtype=np.uint8)
        scores, cls = refnet.run(g, px)
        got_c, got_s = m.predict(px)
        assert np.array_equal(got_s, scores) and np.array_equal(got_c, cls)


# ---- emulated boards: the DSP M4 / M55 (the LDMDB/SMLAD loop), the portable M3, the sim board -
BOARD_CASES = [  # last layer = the first layer: its output is the score vector (<= 1000 values)
    (1, 5, 5, 33, 3, 1, 1, ("RAW", 0), "B1", "SIGN"),
    (1, 5, 5, 32, 3, 1, 1, ("THRESH", 128), "B1", "SIGN"),
    (1, 5, 5, 32, 3, 1, 1, ("THRESH", 90), "TERN", "SIGN"),
    (1, 6, 6, 40, 3, 2, 1, ("QUANT", 4), "TERN", "SIGN"),
    (2, 4, 5, 20, 3, 1, 1, ("RAW", 0), "B1", "MULTI"),
    (3, 5, 4, 9, 5, 1, 2, ("THRESH", 128), "TERN", "SIGN"),
    (1, 7, 7, 64, 3, 2, 0, ("RAW", 0), "TERN", "SIGN"),
    (1, 5, 5, 32, 3, 1, 1, ("RAW", 0), "TERN_SPARSE", "MULTI"),
    (1, 5, 5, 32, 3, 1, 1, ("THRESH", 128), "TERN_SPARSE", "SIGN"),
    (3, 6, 7, 33, 3, 1, 1, ("RAW", 0), "B1", "SIGN"),
    (3, 7, 6, 16, 3, 2, 1, ("QUANT", 4), "TERN", "SIGN"),
    (3, 5, 5, 20, 3, 1, 1, ("RAW", 0), "TERN_SPARSE", "MULTI"),
    (4, 5, 6, 12, 3, 1, 1, ("RAW", 0), "B1", "SIGN"),
    (3, 5, 7, 31, 3, 2, 0, ("RAW", 0), "B1", "SIGN"),
]
# with a tail, at sizes where the MULTI rows fold their thresholds (the TERN assembly loops)
BOARD_TAIL_CASES = [
    (3, 32, 32, 16, 3, 1, 1, ("QUANT", 2), "TERN_SPARSE", "MULTI"),  # as resnet8-twn's
    (1, 20, 20, 32, 3, 1, 1, ("RAW", 0), "TERN", "MULTI"),
    (3, 12, 24, 8, 3, 2, 1, ("RAW", 0), "B1", "SIGN"),
]


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["qemu-mps2-an386", "qemu-mps3-an547", "qemu-lm3s6965", "sim"])
def test_first_layers_on_board_equal_host(name, tmp_path, private_board_state):
    from edgeq.deploy import boards
    from edgeq.deploy.client import Board

    why = boards.toolchain_missing(name)
    if why or (name != "sim" and not shutil.which(boards.QEMU)):
        pytest.skip(f"{name}: {why or 'qemu-system-arm not found'}")
    rng = np.random.default_rng(5)
    cases = []
    for case in BOARD_CASES:
        c, h, w, n, k, st, pad, pre, w_enc, stage = case
        cases.append((case, _graph(rng, c, h, w, n, k, st, pad, pre, w_enc, stage)))
        cases.append((case + ("tail",), _graph(rng, c, 8, 8, n, k, 1, 1, pre, w_enc, stage, tail=True)))
    for case in BOARD_TAIL_CASES:
        c, h, w, n, k, st, pad, pre, w_enc, stage = case
        cases.append((case + ("tail",), _graph(rng, c, h, w, n, k, st, pad, pre, w_enc, stage, tail=True)))
    fw = boards.get(name).firmware  # the small M3 takes the cases that fit its buffers
    blobs = [(case, g, blob) for case, g in cases for blob in [write_blob(g)]
             if len(blob) <= int(fw["model_buf"]) and Model(blob).arena_size <= int(fw["arena"])
             and 4 * Model(blob).n_classes + 16 <= int(fw["max_payload"])
             and Model(blob).input_wire_bytes <= int(fw["max_payload"])]
    assert {c[7][0] for c, _, _ in blobs} == {"RAW", "THRESH", "QUANT"}, [c for c, _, _ in blobs]
    path = tmp_path / "m.eqb"
    path.write_bytes(min((b for _, _, b in blobs), key=len))
    run, _ = boards.flash(name, path, log=lambda s: None)
    try:
        with Board(run.url) as b:
            for case, g, blob in blobs:
                b.load(blob)
                model = Model(blob)
                for _ in range(2):
                    px = rng.integers(0, 256, g.input_shape, dtype=np.uint8)
                    wire = model.wire_input(px)
                    cls, got = b.infer(wire, timeout=60)
                    hcls, host = model.predict_wire(wire)
                    want_s, want_c = refnet.run(g, px[None])
                    assert np.array_equal(host, want_s[0]), (case, "host runtime != refnet")
                    assert np.array_equal(got, host) and cls == hcls, (name, case, "board != host")
    finally:
        boards.stop(name)
