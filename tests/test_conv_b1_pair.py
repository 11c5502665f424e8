"""B1 x B1 3x3 CONV layers on <= 16 input channels fused with their SIGN / AFFINE stage
(firmware/kernels/eq_conv_b1_pair.c, called by the runtime through eq_conv_fast).

Checked here on the host (its portable C loop; the Thumb-2 loop runs on the emulated boards in
tests/test_mcu_kernels.py):
- directly through cffi: the path's output equals the row loop (eq_conv2d_row) plus the stage
  kernel (eq_threshold_sign_b1 / eq_affine_i32), i.e. the runtime with the path disabled, and the
  numpy reference, over random awkward shapes: C = 1..16, 1..45 output channels (partial and
  several 16-channel passes, words of 32 channels), tiny and odd images, stride 1..3, pad 0/1,
  thresholds at INT32_MIN / INT32_MAX and around the accumulator range, flips, AFFINE constants
  that fit 32 bits and ones that need the 64-bit stage (large mul / add, shifts 0..63);
- the layers it refuses (EQ_ERR_UNSUPPORTED, scratch 0) and a too small scratch;
- its scratch never exceeds the layer's accumulator row (the arena does not grow).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.format.bits import pack_signs
from edgeq.native.runtime import native
from edgeq.reference.ref import conv2d_ref

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _lib():
    return native()


def _case(rng, c, n, h, w, stride, pad, stage, big=False):
    a = rng.choice(np.array([-1, 1]), size=(h, w, c))
    wt = rng.choice(np.array([-1, 1], np.int8), size=(n, 3, 3, c))
    k = 9 * c
    if stage == "SIGN":
        thr = rng.integers(-k - 2, k + 3, n).astype(np.int64)
        ext = rng.random(n) < 0.15
        thr[ext] = rng.choice([I32_MIN, I32_MAX, I32_MIN + 1, I32_MAX - 1], int(ext.sum()))
        aux = (rng.random(n) < 0.4).astype(np.uint8)
        shift = 0
    else:
        # big: the exporter's scale (resnet8: |mul|, |add| up to 2**31, shift 5..11), past it
        # (saturation, shifts above 23: refused); else small constants
        lim = 2**31 - 1 if big else 2**14
        thr = rng.integers(-lim, lim + 1, n).astype(np.int64)  # mul
        aux = rng.integers(-lim, lim + 1, n).astype(np.int32)  # add
        if big:
            thr[rng.random(n) < 0.2] = I32_MIN
            aux[rng.random(n) < 0.2] = I32_MAX
        shift = int(rng.choice([8, 9, 11, 23, 0, 1, 24, 31, 32, 63] if big else [0, 1, 3, 8]))
    return dict(c=c, n=n, h=h, w=w, stride=stride, pad=pad, stage=stage, a=a, wt=wt,
                thr=thr.astype(np.int32), aux=aux, shift=shift)


def _job(cs):
    ffi, lib = _lib().ffi, _lib().lib
    c, h, w, n, st, pad = (cs[k] for k in ("c", "h", "w", "n", "stride", "pad"))
    oh, ow = (h + 2 * pad - 3) // st + 1, (w + 2 * pad - 3) // st + 1
    s = ffi.new("eq_conv_shape_t *", dict(in_h=h, in_w=w, in_c=c, out_h=oh, out_w=ow, out_c=n,
                                           kh=3, kw=3, stride=st, pad=pad))
    act = np.ascontiguousarray(pack_signs(cs["a"]).astype(np.uint32))
    wdat = np.ascontiguousarray(pack_signs(cs["wt"]).astype(np.uint32))
    wd = ffi.new("eq_weights_t *", dict(enc=lib.EQ_ENC_B1, data=ffi.from_buffer(wdat)))
    thr, aux = np.ascontiguousarray(cs["thr"]), np.ascontiguousarray(cs["aux"])
    sign = cs["stage"] == "SIGN"
    stage = lib.EQ_OUT_SIGN if sign else lib.EQ_OUT_AFFINE
    out_bytes = oh * ow * (4 * ((n + 31) // 32) if sign else 4 * n)
    return dict(s=s, act=act, wd=wd, thr=thr, aux=aux, stage=stage, sign=sign, shift=cs["shift"],
                out_bytes=out_bytes, oh=oh, ow=ow, keep=[s, act, wdat, wd, thr, aux])


def _fast(j, scratch_bytes=None, lflags=0):
    ffi, lib = _lib().ffi, _lib().lib
    need = lib.eq_conv_b1_pair_scratch(j["s"], lib.EQ_ENC_B1, lib.EQ_ENC_B1, j["stage"], lflags)
    nb = need if scratch_bytes is None else scratch_bytes
    scratch = ffi.new("uint64_t[]", nb // 8 + 1)
    out = ffi.new("uint8_t[]", j["out_bytes"] + 4)
    for i in range(4):
        out[j["out_bytes"] + i] = 0xA5  # guard bytes
    job = ffi.new("eq_conv_job_t *")
    job.s = j["s"]
    job.in_enc = lib.EQ_ENC_B1
    setattr(job, "in", ffi.from_buffer(j["act"]))
    job.w = j["wd"]
    job.out_stage = j["stage"]
    job.shift = j["shift"]
    job.lflags = lflags
    job.thr = ffi.cast("int32_t *", ffi.from_buffer(j["thr"]))
    job.aux = ffi.cast("void *", ffi.from_buffer(j["aux"]))
    job.extra = ffi.NULL
    job.out = out
    job.scratch = scratch
    job.scratch_bytes = nb
    st = lib.eq_conv_b1_pair(job)
    assert all(out[j["out_bytes"] + i] == 0xA5 for i in range(4)), "wrote past its output"
    return st, need, bytes(ffi.buffer(out, j["out_bytes"]))


def _row_loop(j):
    """The runtime's path without the fast path: eq_conv2d_row + the stage, row by row."""
    ffi, lib = _lib().ffi, _lib().lib
    s, n, ow = j["s"], j["s"].out_c, j["ow"]
    acc = ffi.new("int32_t[]", ow * n)
    out = ffi.new("uint8_t[]", j["out_bytes"])
    row = j["out_bytes"] // j["oh"]
    thr = ffi.cast("int32_t *", ffi.from_buffer(j["thr"]))
    for oy in range(j["oh"]):
        assert lib.eq_conv2d_row(s, lib.EQ_ENC_B1, ffi.from_buffer(j["act"]), j["wd"], oy, acc) == 0
        o = out + oy * row
        if j["sign"]:
            lib.eq_threshold_sign_b1(acc, ow, n, thr, ffi.cast("uint8_t *", ffi.from_buffer(j["aux"])),
                                     ffi.cast("uint32_t *", o))
        else:
            lib.eq_affine_i32(acc, ow, n, thr, ffi.cast("int32_t *", ffi.from_buffer(j["aux"])), j["shift"],
                              ffi.cast("int32_t *", o))
    return bytes(ffi.buffer(out, j["out_bytes"]))


def _numpy(cs):
    acc = conv2d_ref(cs["a"], "B1", cs["wt"], "B1", cs["stride"], cs["pad"]).astype(np.int64)
    thr = cs["thr"].astype(np.int64)
    if cs["stage"] == "SIGN":
        bits = np.where(cs["aux"].astype(bool), acc <= thr, acc >= thr)
        words = np.zeros(bits.shape[:2] + ((cs["n"] + 31) // 32,), np.uint32)
        for i in range(cs["n"]):
            words[..., i // 32] |= bits[..., i].astype(np.uint32) << np.uint32(i % 32)
        return words.tobytes()
    v = (acc * thr + cs["aux"].astype(np.int64)) >> min(cs["shift"], 62)
    return np.clip(v, I32_MIN, I32_MAX).astype(np.int32).tobytes()


def _affine_32bit(cs):
    """The path's AFFINE rule: shift <= 23 and no channel saturates (|acc| <= 9C), else refused."""
    if cs["stage"] != "AFFINE":
        return True
    a = 9 * cs["c"]
    mul, add = cs["thr"].astype(np.int64), cs["aux"].astype(np.int64)
    y = np.concatenate([(a * mul + add) >> cs["shift"], (-a * mul + add) >> cs["shift"]])
    return cs["shift"] <= 23 and bool(((y >= I32_MIN) & (y <= I32_MAX)).all())


def _check(cs, info=None):
    """Returns False where the path refused the layer (AFFINE constants past 32 bits)."""
    j = _job(cs)
    st, need, got = _fast(j)
    info = info or {k: cs[k] for k in ("c", "n", "h", "w", "stride", "pad", "stage", "shift")}
    if not _affine_32bit(cs):
        assert st == _lib().lib.EQ_ERR_UNSUPPORTED and need > 0, ("not refused", st, info)
        return False
    assert st == 0 and need > 0, ("refused", st, need, info)
    assert need <= j["ow"] * cs["n"] * 4, ("scratch above the accumulator row", info)
    assert got == _row_loop(j), ("fast path != row loop + stage", info)
    assert got == _numpy(cs), ("fast path != numpy", info)
    return True


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_equals_row_loop_and_numpy(seed):
    rng = np.random.default_rng(seed)
    done = refused = 0
    while done < 40:
        c = int(rng.choice([1, 2, 3, 5, 8, 12, 15, 16]))
        n = int(rng.choice([1, 3, 15, 16, 17, 31, 32, 33, 45]))
        stride, pad = int(rng.integers(1, 4)), int(rng.integers(0, 2))
        h, w = int(rng.integers(3 - 2 * pad, 12)), int(rng.integers(3 - 2 * pad, 14))
        stage = ("SIGN", "AFFINE")[done % 2]
        cs = _case(rng, c, n, h, w, stride, pad, stage, big=done % 4 == 3)
        j = _job(cs)
        if _fast(j)[1] == 0:  # the pair rows do not fit the accumulator row: the row loop's
            continue
        if _check(cs):
            done += 1
        else:
            refused += 1
    assert refused < 40

@pytest.mark.parametrize("stage", ["SIGN", "AFFINE", "AFFINE-big"])
def test_resnet8_shapes(stage):
    """resnet8's B1 layers on 16 channels (32x32, stride 1 and 2) and the widths around them;
    AFFINE-big: the exporter's constants (|mul|, |add| near 2**31, shift 9): 32-bit, not refused."""
    rng = np.random.default_rng(8)
    for c, n, hw, stride in ((16, 16, 32, 1), (16, 32, 32, 2), (12, 10, 9, 1), (15, 20, 7, 2), (8, 64, 8, 1)):
        cs = _case(rng, c, n, hw, hw + 1, stride, 1, stage[:6], big=stage == "AFFINE-big")
        if stage == "AFFINE-big":
            cs["shift"] = 9
        assert _check(cs)


def test_tiny_images():
    rng = np.random.default_rng(5)
    for hw in ((1, 1), (2, 2), (3, 3), (1, 5), (5, 1), (2, 3)):
        for stride in (1, 2):
            for stage in ("SIGN", "AFFINE"):
                _check(_case(rng, 16, 40, *hw, stride, 1, stage))


def test_refuses_what_it_does_not_take():
    ffi, lib = _lib().ffi, _lib().lib
    rng = np.random.default_rng(3)
    cs = _case(rng, 16, 16, 8, 8, 1, 1, "SIGN")
    j = _job(cs)
    st, need, _ = _fast(j)
    assert st == 0 and need > 0
    assert lib.eq_conv_fast_scratch(j["s"], lib.EQ_ENC_B1, lib.EQ_ENC_B1, lib.EQ_OUT_SIGN, 0) == need
    st, _, _ = _fast(j, scratch_bytes=need - 1)  # short scratch: the runtime's row loop runs
    assert st == lib.EQ_ERR_UNSUPPORTED
    st, _, _ = _fast(j, lflags=1)
    assert st == lib.EQ_ERR_UNSUPPORTED
    s = j["s"]
    B1 = lib.EQ_ENC_B1
    assert lib.eq_conv_b1_pair_scratch(s, B1, B1, lib.EQ_OUT_MULTI, 0) == 0
    assert lib.eq_conv_b1_pair_scratch(s, lib.EQ_ENC_U8, B1, lib.EQ_OUT_SIGN, 0) == 0
    assert lib.eq_conv_b1_pair_scratch(s, B1, lib.EQ_ENC_TERN, lib.EQ_OUT_SIGN, 0) == 0
    for kw in (dict(in_c=17), dict(kh=5, kw=5, out_h=4, out_w=4), dict(pad=2, out_h=10, out_w=10),
               dict(stride_w=2), dict(pad_w=1)):
        d = dict(in_h=8, in_w=8, in_c=16, out_h=8, out_w=8, out_c=16, kh=3, kw=3, stride=1, pad=1)
        d.update(kw)
        assert lib.eq_conv_b1_pair_scratch(ffi.new("eq_conv_shape_t *", d), B1, B1, lib.EQ_OUT_SIGN, 0) == 0, kw
    # SIGN layers on <= 4 channels keep the first-layer path (eq_conv_first.c) or, where that one
    # does not fit the accumulator row, the row loop; AFFINE ones on 1 channel come here
    for c, n, stage, first in ((1, 32, lib.EQ_OUT_SIGN, True), (3, 4, lib.EQ_OUT_SIGN, False),
                               (1, 16, lib.EQ_OUT_AFFINE, False)):
        d = dict(in_h=8, in_w=8, in_c=c, out_h=8, out_w=8, out_c=n, kh=3, kw=3, stride=1, pad=1)
        sh = ffi.new("eq_conv_shape_t *", d)
        got = lib.eq_conv_fast_scratch(sh, B1, B1, stage, 0)
        want = lib.eq_conv_first_scratch(sh, B1, B1, stage, 0) if first else 0
        if stage == lib.EQ_OUT_AFFINE:
            want = lib.eq_conv_b1_pair_scratch(sh, B1, B1, stage, 0)
        assert got == want and (got > 0) == (first or stage == lib.EQ_OUT_AFFINE), (c, n, stage)
