/* x86-64 AVX-512 variants (host only; chosen at run time by eq_dispatch.c on CPUs with AVX-512 F,
 * BW, VL, VPOPCNTDQ and VNNI, e.g. AMD Zen 4, Intel Ice Lake and later).
 *
 * Compiled with __attribute__((target(...))) per function, never -march=native, so the module
 * still loads on CPUs without AVX-512 (the dispatcher then keeps "avx2" or "portable").
 * Semantics, layouts and status codes are exactly those of the portable kernels in
 * firmware/kernels/; tests/test_kernels.py runs every variant against edgeq/reference/ref.py.
 *
 * Bit GEMMs vectorise over output columns: the b rows of a panel of 64 columns are transposed
 * word by word into a stack panel (word w of columns n0..n0+63 contiguous), so one broadcast a
 * word meets 16 columns per vpxord / vpternlogd + vpopcntd + vpaddd, with 4 rows x 4 vectors of
 * 32-bit counters in registers and no horizontal sums. K longer than the panel is done in chunks.
 * The u8 x s8 GEMM of the host executor uses vpdpbusd (VNNI, no saturation) on weights laid out
 * as (K/4, N16, 4) int8.
 */
#include "eq_host.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <immintrin.h>
#include <string.h>

#define EQ_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx512vnni,popcnt")))
#define EQ_512_INLINE __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx512vnni,popcnt"), always_inline)) inline

#define EQ_NB 64u   /* columns per panel (4 vectors of 16) */
#define EQ_KC 128u  /* words per K chunk (4096 bits); a tern panel holds two planes */

/* panel[w * 64 + j] = row (n0 + j) word (w0 + w) of src (rows of rs words, plane offset off);
 * columns past n are 0 */
static EQ_512 void eq_panel(const uint32_t *src, uint32_t rs, uint32_t off, uint32_t n0,
                            uint32_t nb, uint32_t w0, uint32_t nw, uint32_t *panel)
{
    uint32_t j, w;
    if (nb < EQ_NB) memset(panel, 0, (size_t)nw * EQ_NB * 4u);
    for (j = 0; j < nb; ++j) {
        const uint32_t *r = src + (size_t)(n0 + j) * rs + off + w0;
        for (w = 0; w < nw; ++w) panel[w * EQ_NB + j] = r[w];
    }
}

/* mr (1..4) rows x 64 columns over nw words: counts of (a ^ s) [& z] added to cnt */
static EQ_512_INLINE void eq_bk(const uint32_t *a, uint32_t kw, uint32_t w0, uint32_t nw,
                                const uint32_t *ps, const uint32_t *pz, int tern, uint32_t mr,
                                __m512i cnt[4][4])
{
    uint32_t w, r, v;
    for (w = 0; w < nw; ++w) {
        __m512i s[4], z[4];
        for (v = 0; v < 4u; ++v) {
            s[v] = _mm512_loadu_si512((const void *)(ps + w * EQ_NB + 16u * v));
            if (tern) z[v] = _mm512_loadu_si512((const void *)(pz + w * EQ_NB + 16u * v));
        }
        for (r = 0; r < mr; ++r) {
            const __m512i x = _mm512_set1_epi32((int)a[(size_t)r * kw + w0 + w]);
            for (v = 0; v < 4u; ++v) {
                const __m512i d = tern ? _mm512_ternarylogic_epi32(x, s[v], z[v], 0x28)
                                       : _mm512_xor_si512(x, s[v]);
                cnt[r][v] = _mm512_add_epi32(cnt[r][v], _mm512_popcnt_epi32(d));
            }
        }
    }
}

/* rows [i, i + mr) x panel columns: chunk counts, carried in out between chunks; on the last
 * chunk out = base - 2 * count (base = k, or popcount(nz) per column for tern) */
static EQ_512_INLINE void eq_bblock(const uint32_t *a, uint32_t kw, uint32_t w0, uint32_t nw,
                                    const uint32_t *ps, const uint32_t *pz, int tern, uint32_t mr,
                                    int first, int last, const int32_t *base, uint32_t n,
                                    uint32_t n0, uint32_t nb, int32_t *out)
{
    __m512i cnt[4][4];
    uint32_t r, v;
    for (r = 0; r < mr; ++r)
        for (v = 0; v < 4u; ++v) {
            const uint32_t c0 = 16u * v;
            const __mmask16 mk = c0 >= nb ? 0 : (nb - c0 >= 16u ? 0xffff : (__mmask16)((1u << (nb - c0)) - 1u));
            cnt[r][v] = first ? _mm512_setzero_si512()
                              : _mm512_maskz_loadu_epi32(mk, out + (size_t)r * n + n0 + c0);
        }
    eq_bk(a, kw, w0, nw, ps, pz, tern, mr, cnt);
    for (r = 0; r < mr; ++r)
        for (v = 0; v < 4u; ++v) {
            const uint32_t c0 = 16u * v;
            __mmask16 mk;
            __m512i y = cnt[r][v];
            if (c0 >= nb) break;
            mk = nb - c0 >= 16u ? 0xffff : (__mmask16)((1u << (nb - c0)) - 1u);
            if (last)
                y = _mm512_sub_epi32(_mm512_loadu_si512((const void *)(base + c0)),
                                     _mm512_slli_epi32(y, 1));
            _mm512_mask_storeu_epi32(out + (size_t)r * n + n0 + c0, mk, y);
        }
}

static EQ_512 void eq_bits512(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                              uint32_t k, int tern, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), rs = tern ? 2u * kw : kw;
    uint32_t ps[EQ_KC * EQ_NB], pz[EQ_KC * EQ_NB];
    int32_t base[EQ_NB];
    uint32_t n0, w0, i, j, q;
    for (n0 = 0; n0 < n; n0 += EQ_NB) {
        const uint32_t nb = n - n0 < EQ_NB ? n - n0 : EQ_NB;
        for (j = 0; j < EQ_NB; ++j) {
            base[j] = (int32_t)k;
            if (tern) {
                base[j] = 0;
                if (j < nb)
                    for (q = 0; q < kw; ++q)
                        base[j] += __builtin_popcount(b[(size_t)(n0 + j) * rs + kw + q]);
            }
        }
        for (w0 = 0; w0 < kw; w0 += EQ_KC) {
            const uint32_t nw = kw - w0 < EQ_KC ? kw - w0 : EQ_KC;
            const int first = w0 == 0, last = w0 + nw == kw;
            eq_panel(b, rs, 0, n0, nb, w0, nw, ps);
            if (tern) eq_panel(b, rs, kw, n0, nb, w0, nw, pz);
            for (i = 0; i + 4u <= m; i += 4u)
                eq_bblock(a + (size_t)i * kw, kw, w0, nw, ps, pz, tern, 4u, first, last, base, n,
                          n0, nb, out + (size_t)i * n);
            switch (m - i) {
            case 3:
                eq_bblock(a + (size_t)i * kw, kw, w0, nw, ps, pz, tern, 3u, first, last, base, n,
                          n0, nb, out + (size_t)i * n);
                break;
            case 2:
                eq_bblock(a + (size_t)i * kw, kw, w0, nw, ps, pz, tern, 2u, first, last, base, n,
                          n0, nb, out + (size_t)i * n);
                break;
            case 1:
                eq_bblock(a + (size_t)i * kw, kw, w0, nw, ps, pz, tern, 1u, first, last, base, n,
                          n0, nb, out + (size_t)i * n);
                break;
            default: break;
            }
        }
    }
}

/* M < 4: each b row meets a row directly (16 words a step, masked tail, one reduction) */
static EQ_512 void eq_bits512_direct(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                     uint32_t k, int tern, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), rs = tern ? 2u * kw : kw;
    uint32_t i, j, w;
    for (i = 0; i < m; ++i) {
        const uint32_t *x = a + (size_t)i * kw;
        for (j = 0; j < n; ++j) {
            const uint32_t *s = b + (size_t)j * rs, *z = s + kw;
            __m512i c = _mm512_setzero_si512(), nz = _mm512_setzero_si512();
            for (w = 0; w < kw; w += 16u) {
                const __mmask16 mk = kw - w >= 16u ? 0xffff : (__mmask16)((1u << (kw - w)) - 1u);
                const __m512i av = _mm512_maskz_loadu_epi32(mk, x + w);
                const __m512i sv = _mm512_maskz_loadu_epi32(mk, s + w);
                if (tern) {
                    const __m512i zv = _mm512_maskz_loadu_epi32(mk, z + w);
                    c = _mm512_add_epi32(c, _mm512_popcnt_epi32(
                                                _mm512_ternarylogic_epi32(av, sv, zv, 0x28)));
                    nz = _mm512_add_epi32(nz, _mm512_popcnt_epi32(zv));
                } else {
                    c = _mm512_add_epi32(c, _mm512_popcnt_epi32(_mm512_xor_si512(av, sv)));
                }
            }
            out[(size_t)i * n + j] = (tern ? _mm512_reduce_add_epi32(nz) : (int32_t)k)
                                     - 2 * _mm512_reduce_add_epi32(c);
        }
    }
}

/* both bit GEMMs: the shared argument checks, then the direct kernel for short batches */
static eq_status_t EQ_512 eq_bitgemm512(const uint32_t *a, const uint32_t *b, uint32_t m,
                                        uint32_t n, uint32_t k, int tern, int32_t *out)
{
    int done;
    const eq_status_t st = eq_bitgemm_prologue(a, b, m, n, k, out, &done);
    if (done) return st;
    if (m < 4u)
        eq_bits512_direct(a, b, m, n, k, tern, out);
    else
        eq_bits512(a, b, m, n, k, tern, out);
    return EQ_OK;
}

eq_status_t EQ_512 eq_gemm_xnor_b1b1_avx512(const uint32_t *a, const uint32_t *b, uint32_t m,
                                            uint32_t n, uint32_t k, int32_t *out)
{
    return eq_bitgemm512(a, b, m, n, k, 0, out);
}

eq_status_t EQ_512 eq_gemm_tern_b1_avx512(const uint32_t *a, const uint32_t *w, uint32_t m,
                                          uint32_t n, uint32_t k, int32_t *out)
{
    return eq_bitgemm512(a, w, m, n, k, 1, out);
}

/* ---- u8 x s8 GEMM (host executor): a (M, lda) uint8 rows of kp bytes (kp % 4 == 0),
 * w4 (kp / 4, np, 4) int8 (np = N rounded up to 16, pad columns 0): out[m, n] = sum a * w,
 * wrapping 32-bit sums (vpdpbusd) ----------------------------------------------------------- */
static EQ_512_INLINE void eq_u8k(const uint8_t *a, uint32_t lda, const int8_t *w4, uint32_t np,
                                 uint32_t kp, uint32_t mr, uint32_t n0, uint32_t nv, uint32_t n,
                                 int32_t *out)
{
    __m512i acc[4][4];
    uint32_t r, v, g;
    for (r = 0; r < 4u; ++r)
        for (v = 0; v < 4u; ++v) acc[r][v] = _mm512_setzero_si512();
    for (g = 0; g < kp / 4u; ++g) {
        const int8_t *wg = w4 + ((size_t)g * np + n0) * 4u;
        __m512i wv[4];
        for (v = 0; v < nv; ++v) wv[v] = _mm512_loadu_si512((const void *)(wg + 64u * v));
        for (r = 0; r < mr; ++r) {
            int32_t x;
            __m512i xb;
            memcpy(&x, a + (size_t)r * lda + 4u * g, 4);
            xb = _mm512_set1_epi32(x);
            for (v = 0; v < nv; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], xb, wv[v]);
        }
    }
    for (r = 0; r < mr; ++r)
        for (v = 0; v < nv; ++v) {
            const uint32_t c0 = n0 + 16u * v;
            const __mmask16 mk = n - c0 >= 16u ? 0xffff : (__mmask16)((1u << (n - c0)) - 1u);
            _mm512_mask_storeu_epi32(out + (size_t)r * n + c0, mk, acc[r][v]);
        }
}

/* the full 4 rows x 64 columns block with named accumulators (GCC keeps them in registers) */
static EQ_512 void eq_u8k44(const uint8_t *a, uint32_t lda, const int8_t *w4, uint32_t np,
                            uint32_t kp, uint32_t n0, uint32_t n, int32_t *out)
{
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00;
    __m512i c10 = c00, c11 = c00, c12 = c00, c13 = c00, c20 = c00, c21 = c00, c22 = c00;
    __m512i c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    uint32_t g;
    for (g = 0; g < kp / 4u; ++g) {
        const int8_t *wg = w4 + ((size_t)g * np + n0) * 4u;
        const __m512i w0 = _mm512_loadu_si512((const void *)wg);
        const __m512i w1 = _mm512_loadu_si512((const void *)(wg + 64));
        const __m512i w2 = _mm512_loadu_si512((const void *)(wg + 128));
        const __m512i w3 = _mm512_loadu_si512((const void *)(wg + 192));
        int32_t x0, x1, x2, x3;
        __m512i b;
        memcpy(&x0, a + 4u * g, 4);
        memcpy(&x1, a + lda + 4u * g, 4);
        memcpy(&x2, a + 2u * (size_t)lda + 4u * g, 4);
        memcpy(&x3, a + 3u * (size_t)lda + 4u * g, 4);
        b = _mm512_set1_epi32(x0);
        c00 = _mm512_dpbusd_epi32(c00, b, w0);
        c01 = _mm512_dpbusd_epi32(c01, b, w1);
        c02 = _mm512_dpbusd_epi32(c02, b, w2);
        c03 = _mm512_dpbusd_epi32(c03, b, w3);
        b = _mm512_set1_epi32(x1);
        c10 = _mm512_dpbusd_epi32(c10, b, w0);
        c11 = _mm512_dpbusd_epi32(c11, b, w1);
        c12 = _mm512_dpbusd_epi32(c12, b, w2);
        c13 = _mm512_dpbusd_epi32(c13, b, w3);
        b = _mm512_set1_epi32(x2);
        c20 = _mm512_dpbusd_epi32(c20, b, w0);
        c21 = _mm512_dpbusd_epi32(c21, b, w1);
        c22 = _mm512_dpbusd_epi32(c22, b, w2);
        c23 = _mm512_dpbusd_epi32(c23, b, w3);
        b = _mm512_set1_epi32(x3);
        c30 = _mm512_dpbusd_epi32(c30, b, w0);
        c31 = _mm512_dpbusd_epi32(c31, b, w1);
        c32 = _mm512_dpbusd_epi32(c32, b, w2);
        c33 = _mm512_dpbusd_epi32(c33, b, w3);
    }
    {
        int32_t *o = out + n0;
        (void)n;
        _mm512_storeu_si512((void *)o, c00);
        _mm512_storeu_si512((void *)(o + 16), c01);
        _mm512_storeu_si512((void *)(o + 32), c02);
        _mm512_storeu_si512((void *)(o + 48), c03);
        o += n;
        _mm512_storeu_si512((void *)o, c10);
        _mm512_storeu_si512((void *)(o + 16), c11);
        _mm512_storeu_si512((void *)(o + 32), c12);
        _mm512_storeu_si512((void *)(o + 48), c13);
        o += n;
        _mm512_storeu_si512((void *)o, c20);
        _mm512_storeu_si512((void *)(o + 16), c21);
        _mm512_storeu_si512((void *)(o + 32), c22);
        _mm512_storeu_si512((void *)(o + 48), c23);
        o += n;
        _mm512_storeu_si512((void *)o, c30);
        _mm512_storeu_si512((void *)(o + 16), c31);
        _mm512_storeu_si512((void *)(o + 32), c32);
        _mm512_storeu_si512((void *)(o + 48), c33);
    }
}

#define EQ_U8K_NV(MR)                                                                    \
    do {                                                                                 \
        switch (nv) {                                                                    \
        case 4: eq_u8k(ar, lda, w4, np, kp, MR, n0, 4u, n, o); break;                    \
        case 3: eq_u8k(ar, lda, w4, np, kp, MR, n0, 3u, n, o); break;                    \
        case 2: eq_u8k(ar, lda, w4, np, kp, MR, n0, 2u, n, o); break;                    \
        default: eq_u8k(ar, lda, w4, np, kp, MR, n0, 1u, n, o); break;                   \
        }                                                                                \
    } while (0)

void EQ_512 eq_hx_gemm_u8s8_avx512(const uint8_t *a, uint32_t lda, const int8_t *w4, uint32_t np,
                                   uint32_t m, uint32_t n, uint32_t kp, int32_t *out)
{
    uint32_t i, n0;
    for (n0 = 0; n0 < n; n0 += 64u) {
        const uint32_t nv = (n - n0 + 15u) / 16u > 4u ? 4u : (n - n0 + 15u) / 16u;
        for (i = 0; i < m; i += 4u) {
            const uint8_t *ar = a + (size_t)i * lda;
            int32_t *o = out + (size_t)i * n;
            if (m - i >= 4u && n - n0 >= 64u) {
                eq_u8k44(ar, lda, w4, np, kp, n0, n, o);
                continue;
            }
            switch (m - i >= 4u ? 4u : m - i) {
            case 4: EQ_U8K_NV(4u); break;
            case 3: EQ_U8K_NV(3u); break;
            case 2: EQ_U8K_NV(2u); break;
            default: EQ_U8K_NV(1u); break;
            }
        }
    }
}

/* ---- packing: x (rows, k) int8 in {-1, +1} -> (rows, EQ_WORDS(k)) sign words; EQ_ERR_ARG if a
 * value is neither (checked while packing: one pass over x) --------------------------------- */
eq_status_t EQ_512 eq_pack_pm1_i8_b1_avx512(const int8_t *x, uint32_t rows, uint32_t k,
                                            uint32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    const __m512i one = _mm512_set1_epi8(1);
    uint32_t r, j;
    __mmask64 bad = 0;
    for (r = 0; r < rows; ++r) {
        const int8_t *p = x + (size_t)r * k;
        uint32_t *o = out + (size_t)r * kw;
        for (j = 0; j < k; j += 64u) {
            const uint32_t cnt = k - j >= 64u ? 64u : k - j;
            const __mmask64 mk = cnt == 64u ? ~(__mmask64)0 : (((__mmask64)1 << cnt) - 1u);
            const __m512i v = _mm512_maskz_loadu_epi8(mk, p + j);
            const __mmask64 pos = _mm512_mask_cmpeq_epi8_mask(mk, v, one);
            uint64_t bits = (uint64_t)pos;
            bad |= mk & ~_mm512_cmpeq_epi8_mask(_mm512_abs_epi8(v), one);
            o[j / 32u] = (uint32_t)bits;
            if (cnt > 32u) o[j / 32u + 1u] = (uint32_t)(bits >> 32);
        }
    }
    return bad ? EQ_ERR_ARG : EQ_OK;
}
#endif

#ifdef EQ_HOST_HAVE_AVX2
/* ---- output stages of the host executor. Thresholds come as u (n_thr, c) with
 * u = flip ? t : t - 1, so the firmware's bit (flip ? acc <= t : acc >= t) is (acc > u) ^ flip:
 * one compare per threshold (acc > INT32_MIN always: the loader bounds |acc| < 2**31 - 1, so
 * t = INT32_MIN without flip keeps u = INT32_MIN). Flips as bit words fw. ----------------- */
void EQ_512 eq_hx_sign_avx512(const int32_t *acc, uint32_t n_pix, uint32_t c, const int32_t *u,
                              const uint32_t *fw, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c);
    uint32_t p, c0;
    for (p = 0; p < n_pix; ++p) {
        const int32_t *a = acc + (size_t)p * c;
        uint32_t *o = out + (size_t)p * cw;
        for (c0 = 0; c0 < c; c0 += 16u) {
            const __mmask16 mk = c - c0 >= 16u ? 0xffff : (__mmask16)((1u << (c - c0)) - 1u);
            const __mmask16 f = (__mmask16)(fw[c0 >> 5] >> (c0 & 31u));
            const __mmask16 gt = _mm512_cmpgt_epi32_mask(_mm512_maskz_loadu_epi32(mk, a + c0),
                                                         _mm512_maskz_loadu_epi32(mk, u + c0));
            const uint32_t g = (uint32_t)((gt ^ f) & mk);
            if (c0 & 16u)
                o[c0 >> 5] |= g << 16;
            else
                o[c0 >> 5] = g;
        }
    }
}

void EQ_512 eq_hx_multi_avx512(const int32_t *acc, uint32_t n_pix, uint32_t c, const int32_t *u,
                               uint32_t n_thr, const uint32_t *fw, uint8_t *out)
{
    const __m512i all = _mm512_set1_epi32((int32_t)n_thr), one = _mm512_set1_epi32(1);
    uint32_t p, c0, i;
    for (p = 0; p < n_pix; ++p) {
        const int32_t *a = acc + (size_t)p * c;
        uint8_t *o = out + (size_t)p * c;
        for (c0 = 0; c0 < c; c0 += 16u) {
            const __mmask16 mk = c - c0 >= 16u ? 0xffff : (__mmask16)((1u << (c - c0)) - 1u);
            const __m512i av = _mm512_maskz_loadu_epi32(mk, a + c0);
            const __mmask16 f = (__mmask16)(fw[c0 >> 5] >> (c0 & 31u));
            __m512i code = _mm512_setzero_si512();
            for (i = 0; i < n_thr; ++i) {
                const __mmask16 gt = _mm512_cmpgt_epi32_mask(
                    av, _mm512_maskz_loadu_epi32(mk, u + (size_t)i * c + c0));
                code = _mm512_mask_add_epi32(code, gt, code, one);
            }
            code = _mm512_mask_sub_epi32(code, f, all, code); /* flipped: n_thr - count */
            _mm_mask_storeu_epi8(o + c0, mk, _mm512_cvtepi32_epi8(code));
        }
    }
}
#endif
