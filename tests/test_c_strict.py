"""The portable kernels compile cleanly under strict flags, run clean under ASan/UBSan, and build
for Cortex-M4 (compile only).

- host gcc: -std=c99 -Wall -Wextra -Werror -pedantic -fsanitize=address,undefined, every
  firmware/kernels/*.c plus a small driver that runs each kernel (and every host SIMD variant,
  compared against the portable one) on odd shapes, so out-of-bounds reads/writes and UB abort.
- arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os -Wall -Wextra -Werror -c on every kernel file.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = sorted(glob.glob(os.path.join(ROOT, "firmware", "kernels", "*.c")))
INC = ["-I", os.path.join(ROOT, "firmware", "include"), "-I", os.path.join(ROOT, "host"),
       "-I", os.path.join(ROOT, "firmware", "runtime")]
RUNTIME = sorted(glob.glob(os.path.join(ROOT, "firmware", "runtime", "*.c")))  # the host executor uses it
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "eq_kernels.h"
#include "eq_host.h"

static uint32_t seed = 12345u;
static uint32_t rnd(void) { seed = seed * 1664525u + 1013904223u; return seed >> 8; }
static int fails = 0;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d %s\n", __FILE__, __LINE__, #c); \
                                  ++fails; } } while (0)

/* every buffer is malloc'ed at its exact size so ASan sees any overrun */
static void *xmalloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) exit(2); return p; }

static void conv_all(uint16_t in_c)
{
    /* KBIT four times: lut_rows 8, 2, 4, 256 -> codes in 4-, 1-, 2-, 8-bit slots */
    static const uint8_t encs[8] = {EQ_ENC_B1, EQ_ENC_TERN, EQ_ENC_TERN_SPARSE, EQ_ENC_KBIT,
                                    EQ_ENC_I8, EQ_ENC_KBIT, EQ_ENC_KBIT, EQ_ENC_KBIT};
    static const uint16_t lut_rows[8] = {8, 8, 8, 8, 8, 2, 4, 256};
    static const uint32_t slot[8] = {4, 4, 4, 4, 4, 1, 2, 8};
    uint32_t ie, we, i;
    for (ie = 0; ie < 2; ++ie) {
        for (we = 0; we < 8; ++we) {
            eq_conv_shape_t s;
            eq_weights_t w;
            uint32_t cw, kk, n_w, oy;
            void *in, *wd;
            int32_t *acc, *lut;
            uint8_t in_enc = ie ? EQ_ENC_U8 : EQ_ENC_B1;
            memset(&s, 0, sizeof s); /* stride_w / pad_w 0: square */
            s.in_h = 7; s.in_w = 6; s.in_c = in_c; s.kh = 3; s.kw = 2; s.stride = 2; s.pad = 1;
            s.out_c = 5;
            s.out_h = (uint16_t)((s.in_h + 2 * s.pad - s.kh) / s.stride + 1);
            s.out_w = (uint16_t)((s.in_w + 2 * s.pad - s.kw) / s.stride + 1);
            cw = EQ_WORDS(s.in_c);
            kk = (uint32_t)s.kh * s.kw * s.in_c;
            if (in_enc == EQ_ENC_B1) {
                uint32_t *p = xmalloc(4u * s.in_h * s.in_w * cw);
                for (i = 0; i < (uint32_t)s.in_h * s.in_w * cw; ++i)
                    p[i] = rnd() & ((i % cw == cw - 1 && s.in_c % 32)
                                    ? ((1u << (s.in_c % 32)) - 1u) : ~0u);
                in = p;
            } else {
                uint8_t *p = xmalloc((size_t)s.in_h * s.in_w * s.in_c);
                for (i = 0; i < (uint32_t)s.in_h * s.in_w * s.in_c; ++i) p[i] = (uint8_t)rnd();
                in = p;
            }
            lut = xmalloc(4u * lut_rows[we] * 256u);
            for (i = 0; i < lut_rows[we] * 256u; ++i) lut[i] = (int32_t)(rnd() % 200u) - 100;
            memset(&w, 0, sizeof w);
            w.enc = encs[we];
            if (w.enc == EQ_ENC_TERN_SPARSE) {
                int8_t *t = xmalloc((size_t)s.out_c * kk);
                uint32_t nb;
                for (i = 0; i < s.out_c * kk; ++i) t[i] = (int8_t)((int32_t)(rnd() % 5u) - 2) / 2;
                CHECK(eq_sparse_encode_i8(t, s.out_c, kk, NULL, 0, &nb) == EQ_OK);
                wd = xmalloc(nb);
                CHECK(eq_sparse_encode_i8(t, s.out_c, kk, wd, nb, &nb) == EQ_OK);
                free(t);
            } else {
                /* KBIT: packed rows padded to words, every slot < lut_rows (0x77: 3-bit codes) */
                n_w = w.enc == EQ_ENC_B1 ? 4u * s.out_c * s.kh * s.kw * cw
                    : w.enc == EQ_ENC_TERN ? 8u * s.out_c * s.kh * s.kw * cw
                    : w.enc == EQ_ENC_KBIT ? 4u * s.out_c * EQ_WORDS(slot[we] * kk)
                    : (uint32_t)s.out_c * kk;
                wd = xmalloc(n_w);
                for (i = 0; i < n_w; ++i)
                    ((uint8_t *)wd)[i] = (uint8_t)(rnd() & (slot[we] == 4u ? 0x77u : 0xffu));
                if (w.enc == EQ_ENC_B1 || w.enc == EQ_ENC_TERN) memset(wd, 0, n_w);
            }
            w.data = wd;
            w.lut = lut;
            w.lut_rows = lut_rows[we];
            w.lut_cols = 256;
            acc = xmalloc(4u * s.out_w * s.out_c);
            for (oy = 0; oy < s.out_h; ++oy)
                CHECK(eq_conv2d_row(&s, in_enc, in, &w, (uint16_t)oy, acc) == EQ_OK);
            free(in); free(wd); free(acc); free(lut);
        }
    }
}

static void stages(void)
{
    int32_t acc[3 * 37], thr[37 * 3], mul[37], add[37], o32[3 * 37];
    uint8_t flip[37], o8[3 * 37], pix[3 * 5 * 7], wire[14], q[3 * 5 * 7];
    uint32_t ob[3 * 2], act[5 * 7 * 1], pooled[2 * 3 * 1];
    uint32_t i;
    for (i = 0; i < 3 * 37; ++i) { acc[i] = (int32_t)rnd(); thr[i] = (int32_t)rnd(); }
    for (i = 0; i < 37; ++i) { mul[i] = (int32_t)rnd(); add[i] = -(int32_t)rnd(); flip[i] = i & 1; }
    for (i = 0; i < sizeof pix; ++i) pix[i] = (uint8_t)rnd();
    eq_threshold_sign_b1(acc, 3, 37, thr, flip, ob);
    eq_threshold_multi_u8(acc, 3, 37, thr, 3, flip, o8);
    eq_affine_i32(acc, 3, 37, mul, add, 31, o32);
    eq_affine_i32(acc, 3, 37, mul, add, 0, o32);
    eq_pack_threshold_chw_b1(pix, 3, 5, 7, 100, act);
    eq_pack_wire_chw_b1(pix, 105, 100, wire);
    eq_unpack_wire_chw_b1(wire, 3, 5, 7, act);
    eq_quant_chw_u8(pix, 3, 5, 7, 3, q);
    eq_maxpool_b1(act, 5, 7, 3, 2, 2, pooled);
    eq_maxpool_u8(q, 5, 7, 3, 2, 2, o8);
    eq_maxpool_i32(o32, 3, 37, 1, 3, 1, acc);
    CHECK(eq_argmax_i32(o32, 0) == 0);
    (void)eq_argmax_i32(o32, 3 * 37);
}

static void gemms(uint32_t m, uint32_t n, uint32_t k)
{
    const uint32_t kw = EQ_WORDS(k);
    uint32_t *a = xmalloc(4u * m * kw), *b = xmalloc(4u * n * kw), *t = xmalloc(8u * n * kw);
    int8_t *ai = xmalloc((size_t)m * k), *wi = xmalloc((size_t)n * k), *wt = xmalloc((size_t)n * k);
    uint8_t *ac = xmalloc((size_t)m * k), *wc = xmalloc((size_t)n * k), *sp;
    int32_t lut[4 * 16], *ref = xmalloc(4u * m * n), *got = xmalloc(4u * m * n);
    float *fa = xmalloc(4u * m * k), *fb = xmalloc(4u * k * n), *fr = xmalloc(4u * m * n),
          *fg = xmalloc(4u * m * n);
    uint32_t i, nb, ss = eq_gemm_tern_sparse_i8_scratch_size(m, k), v;
    void *scratch = xmalloc(ss);
    for (i = 0; i < m * k; ++i) { ai[i] = (int8_t)rnd(); ac[i] = (uint8_t)(rnd() & 15u);
                                  fa[i] = (float)(int32_t)(rnd() % 7u) - 3.0f; }
    for (i = 0; i < n * k; ++i) { wi[i] = (int8_t)rnd(); wc[i] = (uint8_t)(rnd() & 3u);
                                  wt[i] = (int8_t)((int32_t)(rnd() % 3u) - 1); }
    for (i = 0; i < k * n; ++i) fb[i] = (float)(int32_t)(rnd() % 5u) - 2.0f;
    for (i = 0; i < 64; ++i) lut[i] = (int32_t)(rnd() % 100u) - 50;
    eq_pack_signs_i8_b1(ai, m, k, a);
    eq_pack_signs_i8_b1(wi, n, k, b);
    CHECK(eq_pack_tern_i8(wt, n, k, t) == EQ_OK);
    CHECK(eq_sparse_encode_i8(wt, n, k, NULL, 0, &nb) == EQ_OK);
    sp = xmalloc(nb);
    CHECK(eq_sparse_encode_i8(wt, n, k, sp, nb, &nb) == EQ_OK);
    for (v = 0; v < eq_host_variant_count(); ++v) {
        if (eq_host_set_variant((int32_t)v) != EQ_OK) continue;
#define SAME(call_ref, call_got, buf_ref, buf_got, bytes) \
        do { CHECK((call_ref) == EQ_OK); CHECK((call_got) == EQ_OK); \
             CHECK(memcmp(buf_ref, buf_got, bytes) == 0); } while (0)
        SAME(eq_gemm_xnor_b1b1(a, b, m, n, k, ref), eq_host_gemm_xnor_b1b1(a, b, m, n, k, got),
             ref, got, 4u * m * n);
        SAME(eq_gemm_tern_b1(a, t, m, n, k, ref), eq_host_gemm_tern_b1(a, t, m, n, k, got),
             ref, got, 4u * m * n);
        SAME(eq_gemm_tern_sparse_i8(ai, sp, nb, m, n, k, scratch, ss, ref),
             eq_host_gemm_tern_sparse_i8(ai, sp, nb, m, n, k, scratch, ss, got), ref, got,
             4u * m * n);
        SAME(eq_gemm_i8(ai, wi, m, n, k, ref), eq_host_gemm_i8(ai, wi, m, n, k, got), ref, got,
             4u * m * n);
        SAME(eq_gemm_lut_u8(ac, wc, lut, 4, 16, m, n, k, ref),
             eq_host_gemm_lut_u8(ac, wc, lut, 4, 16, m, n, k, got), ref, got, 4u * m * n);
        /* small integers in floats: exact in any summation order */
        SAME(eq_gemm_f32(fa, fb, m, n, k, fr), eq_host_gemm_f32(fa, fb, m, n, k, fg), fr, fg,
             4u * m * n);
    }
    eq_host_set_variant(EQ_HOST_AUTO);
    free(a); free(b); free(t); free(ai); free(wi); free(wt); free(ac); free(wc); free(sp);
    free(ref); free(got); free(fa); free(fb); free(fr); free(fg); free(scratch);
}

static void convs(uint32_t c, uint32_t h, uint32_t w, uint32_t k)
{
    float *x = xmalloc(4u * c * h * w), *wt = xmalloc(4u * k * c * 9u);
    float *o1 = xmalloc(4u * k * h * w), *o2 = xmalloc(4u * k * h * w);
    uint32_t s1 = eq_conv3x3_wino_f23_f32_scratch_size(c, h, w, k);
    uint32_t s2 = eq_conv3x3_im2col_f32_scratch_size(c, h, w);
    void *b1 = xmalloc(s1), *b2 = xmalloc(s2);
    uint32_t i, v;
    for (i = 0; i < c * h * w; ++i) x[i] = (float)(rnd() % 9u) - 4.0f;
    for (i = 0; i < k * c * 9u; ++i) wt[i] = (float)(rnd() % 5u) - 2.0f;
    for (v = 0; v < eq_host_variant_count(); ++v) {
        if (eq_host_set_variant((int32_t)v) != EQ_OK) continue;
        CHECK(eq_host_conv3x3_wino_f23_f32(x, wt, c, h, w, k, b1, s1, o1) == EQ_OK);
        CHECK(eq_host_conv3x3_im2col_f32(x, wt, c, h, w, k, b2, s2, o2) == EQ_OK);
        for (i = 0; i < k * h * w; ++i) CHECK(o1[i] - o2[i] < 1e-2f && o2[i] - o1[i] < 1e-2f);
    }
    CHECK(eq_conv3x3_wino_f23_f32(x, wt, c, h, w, k, b1, s1, o1) == EQ_OK);
    CHECK(eq_conv3x3_im2col_f32(x, wt, c, h, w, k, b2, s2, o2) == EQ_OK);
    CHECK(eq_conv3x3_wino_f23_f32(x, wt, c, h, w, k, b1, s1 - 1u, o1) == EQ_ERR_ARG);
    eq_host_set_variant(EQ_HOST_AUTO);
    free(x); free(wt); free(o1); free(o2); free(b1); free(b2);
}

int main(void)
{
    conv_all(37); conv_all(3); conv_all(1);
    stages();
    gemms(1, 1, 1); gemms(3, 5, 37); gemms(7, 9, 300); gemms(17, 6, 2049); gemms(130, 5, 70);
    gemms(1, 9, 4096); gemms(5, 70, 8200); gemms(1, 40, 3000); gemms(33, 131, 100);
    convs(1, 1, 1, 1); convs(3, 5, 7, 2); convs(5, 9, 8, 7); convs(2, 7, 37, 3);
    convs(1, 3, 1030, 2); convs(9, 40, 6, 2);
    if (fails) { fprintf(stderr, "%d failures\n", fails); return 1; }
    puts("ok");
    return 0;
}
"""


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _gcc() -> str:
    """The host gcc, or skip the test."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc not found")
    return gcc


def test_kernels_strict_sanitized(tmp_path):
    gcc = _gcc()
    drv = tmp_path / "driver.c"
    drv.write_text(DRIVER)
    exe = tmp_path / "driver"
    host = sorted(glob.glob(os.path.join(ROOT, "host", "eq_*.c")))  # dispatch + SIMD variants
    # the kernels and the driver under every strict flag; host SIMD glue under the same flags
    # except -pedantic (GNU attributes and intrinsics)
    objs = []
    for src in KERNELS + RUNTIME + [str(drv)]:
        obj = tmp_path / (os.path.basename(src) + ".o")
        r = _run([gcc, *STRICT, "-O1", "-g", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=all", *INC, "-c", src, "-o", str(obj)])
        assert r.returncode == 0, f"{src} does not compile cleanly:\n{r.stderr}"
        objs.append(str(obj))
    for src in host:
        obj = tmp_path / (os.path.basename(src) + ".o")
        r = _run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-pthread",
                  "-fsanitize=address,undefined", "-fno-sanitize-recover=all", *INC, "-c", src,
                  "-o", str(obj)])
        assert r.returncode == 0, f"{src} does not compile cleanly:\n{r.stderr}"
        objs.append(str(obj))
    r = _run([gcc, "-fsanitize=address,undefined", "-pthread", *objs, "-o", str(exe)])
    assert r.returncode == 0, r.stderr
    r = _run([str(exe)], timeout=120, env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1"})
    assert r.returncode == 0 and "ok" in r.stdout, f"sanitized driver failed:\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("src", KERNELS, ids=os.path.basename)
def test_kernels_cortex_m4(src, tmp_path):
    arm = shutil.which("arm-none-eabi-gcc")
    if not arm:
        pytest.skip("arm-none-eabi-gcc not installed: cannot check the Cortex-M4 build")
    r = _run([arm, "-mcpu=cortex-m4", "-mthumb", "-Os", *STRICT, *INC[:2], "-c", src, "-o",
              str(tmp_path / "k.o")])
    assert r.returncode == 0, f"{os.path.basename(src)} fails for Cortex-M4:\n{r.stderr}"


# --------------------------------------------------------------------------------------------
# the blob loader and executor under ASan/UBSan: issue 13's CRC-valid regression blobs

HARNESS_INC = [*INC[:2], "-I", os.path.join(ROOT, "firmware", "runtime"), "-I",
               os.path.join(ROOT, "tests", "c")]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


@pytest.fixture(scope="module")
def load_run(tmp_path_factory):
    """tests/c/load_run.c + the runtime + every kernel, strict flags, ASan + UBSan."""
    gcc = _gcc()
    exe = tmp_path_factory.mktemp("load_run") / "load_run"
    r = _run([gcc, *STRICT, "-O1", "-g", *SAN, *HARNESS_INC,
              os.path.join(ROOT, "tests", "c", "load_run.c"), *RUNTIME, *KERNELS, "-o", str(exe)])
    assert r.returncode == 0, f"load_run does not compile cleanly:\n{r.stderr}"
    return exe


def _load_run(exe, blobs: dict, tmp_path, *args) -> dict:
    paths = []
    for name, data in blobs.items():
        p = tmp_path / f"{name}.eqb"
        p.write_bytes(data)
        paths.append(str(p))
    r = _run([str(exe), *args, *paths], timeout=300)
    assert r.returncode == 0, f"sanitized loader/executor failed:\n{r.stdout}{r.stderr[-4000:]}"
    return {os.path.basename(line.split()[1])[:-4]: int(line.split()[0]) for line in r.stdout.splitlines()}


def test_regression_blobs_under_sanitizers(load_run, tmp_path):
    """Each loader bug of issue 13 as a CRC-valid blob: a clean status, no ASan/UBSan report
    (before the fix: heap over-reads for f32_nk_2pow32 and sparse_nibbles_wrap, inputs of 0
    pixels / 0 wire bytes accepted for the input_* blobs)."""
    import blobgen

    cases = blobgen.regression_blobs()
    got = _load_run(load_run, {name: blob for name, blob, _ in cases}, tmp_path)
    assert got == {name: status for name, _, status in cases}


def test_u8_binary_conv_2pos_minus_total_under_ubsan(load_run, tmp_path):
    """RAW 128x255x255 input, one 255x255 binary conv, every pixel 255: 2*pos overflowed int32
    in eq_conv2d_row.c (UBSan: signed integer overflow) on a blob our own packer writes."""
    import blobgen
    from edgeq.format import pack

    blob = pack.write_blob(blobgen.big_u8_binary_graph())
    assert _load_run(load_run, {"big_u8_b1": blob}, tmp_path, "--fill", "255") == {"big_u8_b1": 0}


K_ABOVE_2_30 = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "eq_kernels.h"
/* B1 x B1, K = 255 * 255 * 16544 = 1,075,773,600 > 2**30 (the loader's bound is K < 2**31):
 * every weight bit 1, every activation bit 0, so popcount = K and the exact result is -K. */
int main(void)
{
    eq_conv_shape_t s;
    eq_weights_t w;
    const size_t words = (size_t)255 * 255 * 517; /* 16544 channels = 517 words a pixel */
    uint32_t *in = calloc(words, 4), *wt = malloc(words * 4);
    int32_t acc = 0;
    if (!in || !wt) return 2;
    memset(wt, 0xff, words * 4);
    memset(&s, 0, sizeof s);
    s.in_h = 255; s.in_w = 255; s.in_c = 16544; s.out_h = 1; s.out_w = 1; s.out_c = 1;
    s.kh = 255; s.kw = 255; s.stride = 1; s.pad = 0;
    memset(&w, 0, sizeof w);
    w.enc = EQ_ENC_B1;
    w.data = wt;
    if (eq_conv2d_row(&s, EQ_ENC_B1, in, &w, 0, &acc) != EQ_OK) return 3;
    printf("%ld\n", (long)acc);
    free(in); free(wt);
    return 0;
}
"""


def test_b1_conv_k_above_2_30_under_ubsan(tmp_path):
    """`n_in*C - 2*pc` in the B1 x B1 row kernel: 2*pc overflowed int32 once K > 2**30. UBSan
    only (no ASan shadow for the two 134 MB buffers)."""
    gcc = _gcc()
    src = tmp_path / "k.c"
    src.write_text(K_ABOVE_2_30)
    exe = tmp_path / "k"
    r = _run([gcc, *STRICT, "-O1", "-fsanitize=undefined", "-fno-sanitize-recover=all", *INC[:2],
              str(src), *(os.path.join(ROOT, "firmware", "kernels", f)
                          for f in ("eq_conv2d_row.c", "eq_conv1x1_b1b1.c")), "-o", str(exe)])
    assert r.returncode == 0, r.stderr
    r = _run([str(exe)], timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == -255 * 255 * 16544
