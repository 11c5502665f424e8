/* Integer Winograd F(2x2, 3x3), AVX-512 band (see eq_wino_i8.h): the input transform on 32
 * channels a step (masked loads for the tail), the 16 GEMMs with vpdpwssd (AVX-512 VNNI, int16
 * pairs, no saturation) in blocks of up to 6 tiles x 64 output channels, the output transform on
 * 16 output channels a step (masked stores for the tail). */
#include "eq_wino_i8.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <immintrin.h>
#include <string.h>

#define EQ_W5 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define EQ_W5_INLINE __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) inline

#define VEC __m512i
#define ADD _mm512_add_epi16
#define SUB _mm512_sub_epi16

static EQ_W5 void eq_w5_in(const eq_hwino_t *j, const uint8_t *const *p, int16_t *o, size_t vs)
{
    const uint32_t c = j->c, cs = j->cs;
    uint32_t ch;
#define ST(pos, x) _mm512_storeu_si512((void *)(o + (pos) * vs + ch), (x))
    for (ch = 0; ch + 32u <= c; ch += 32u) {
#define LD(i) _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(p[i] + ch)))
        EQ_W_INPUT(LD, ST);
#undef LD
    }
    if (ch < cs) { /* the tail: masked loads, lanes past c are 0 */
        const __mmask32 mk = (__mmask32)((1ull << (c - ch)) - 1u);
#define LD(i) _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mk, p[i] + ch))
        EQ_W_INPUT(LD, ST);
#undef LD
    }
#undef ST
}
#undef VEC
#undef ADD
#undef SUB

/* m rows (mr tiles, np) columns n0 .. n0 + 16 nv = v rows (a: lda int16) x u (cp2, np, 2) */
static EQ_W5_INLINE void eq_w5k(const int16_t *a, uint32_t lda, const int16_t *u, uint32_t np,
                                uint32_t cp2, uint32_t mr, uint32_t n0, uint32_t nv, int32_t *out)
{
    __m512i acc[6][4];
    uint32_t r, v, q;
    for (r = 0; r < 6u; ++r)
        for (v = 0; v < 4u; ++v) acc[r][v] = _mm512_setzero_si512();
    for (q = 0; q < cp2; ++q) {
        const int16_t *uq = u + ((size_t)q * np + n0) * 2u;
        __m512i wv[4];
        for (v = 0; v < nv; ++v) wv[v] = _mm512_loadu_si512((const void *)(uq + 32u * v));
        for (r = 0; r < mr; ++r) {
            int32_t x;
            __m512i xb;
            memcpy(&x, a + (size_t)r * lda + 2u * q, 4);
            xb = _mm512_set1_epi32(x);
            for (v = 0; v < nv; ++v) acc[r][v] = _mm512_dpwssd_epi32(acc[r][v], xb, wv[v]);
        }
    }
    for (r = 0; r < mr; ++r)
        for (v = 0; v < nv; ++v)
            _mm512_storeu_si512((void *)(out + (size_t)r * np + n0 + 16u * v), acc[r][v]);
}

#define EQ_W5K_MR(NV)                                                                            \
    do {                                                                                         \
        switch (t - i >= 6u ? 6u : t - i) {                                                      \
        case 6: eq_w5k(a, cs, u, np, cp2, 6u, n0, NV, o); break;                                 \
        case 5: eq_w5k(a, cs, u, np, cp2, 5u, n0, NV, o); break;                                 \
        case 4: eq_w5k(a, cs, u, np, cp2, 4u, n0, NV, o); break;                                 \
        case 3: eq_w5k(a, cs, u, np, cp2, 3u, n0, NV, o); break;                                 \
        case 2: eq_w5k(a, cs, u, np, cp2, 2u, n0, NV, o); break;                                 \
        default: eq_w5k(a, cs, u, np, cp2, 1u, n0, NV, o); break;                                \
        }                                                                                        \
    } while (0)

static EQ_W5 void eq_w5_gemm(const eq_hwino_t *j, uint32_t t)
{
    const uint32_t cs = j->cs, np = j->np, cp2 = j->cp2;
    uint32_t pos, i, n0;
    for (pos = 0; pos < 16u; ++pos) {
        const int16_t *v = j->v + (size_t)pos * j->tmax * cs;
        const int16_t *u = j->u + (size_t)pos * cp2 * np * 2u;
        int32_t *m = j->m + (size_t)pos * j->tmax * np;
        for (n0 = 0; n0 < np; n0 += 64u) { /* np is a multiple of 16 */
            const uint32_t nv = (np - n0) / 16u >= 4u ? 4u : (np - n0) / 16u;
            for (i = 0; i < t; i += 6u) {
                const int16_t *a = v + (size_t)i * cs;
                int32_t *o = m + (size_t)i * np;
                switch (nv) {
                case 4: EQ_W5K_MR(4u); break;
                case 3: EQ_W5K_MR(3u); break;
                case 2: EQ_W5K_MR(2u); break;
                default: EQ_W5K_MR(1u); break;
                }
            }
        }
    }
}

static EQ_W5 void eq_w5_out(const int32_t *m, size_t ms, uint32_t n, int32_t *y0, int32_t *y1,
                            int32_t *y2, int32_t *y3)
{
    uint32_t c, k;
    for (c = 0; c < n; c += 16u) {
        const __mmask16 mk = n - c >= 16u ? (__mmask16)0xffff : (__mmask16)((1u << (n - c)) - 1u);
        __m512i s0[4], s1[4];
        for (k = 0; k < 4u; ++k) {
#define LM(pos) _mm512_loadu_si512((const void *)(m + (pos) * ms + c))
            const __m512i m4 = LM(4u + k), m8 = LM(8u + k);
            s0[k] = _mm512_add_epi32(_mm512_add_epi32(LM(k), m4), m8);
            s1[k] = _mm512_sub_epi32(_mm512_sub_epi32(m4, m8), LM(12u + k));
#undef LM
        }
        _mm512_mask_storeu_epi32(y0 + c, mk, _mm512_srai_epi32(
            _mm512_add_epi32(_mm512_add_epi32(s0[0], s0[1]), s0[2]), 2));
        _mm512_mask_storeu_epi32(y1 + c, mk, _mm512_srai_epi32(
            _mm512_sub_epi32(_mm512_sub_epi32(s0[1], s0[2]), s0[3]), 2));
        _mm512_mask_storeu_epi32(y2 + c, mk, _mm512_srai_epi32(
            _mm512_add_epi32(_mm512_add_epi32(s1[0], s1[1]), s1[2]), 2));
        _mm512_mask_storeu_epi32(y3 + c, mk, _mm512_srai_epi32(
            _mm512_sub_epi32(_mm512_sub_epi32(s1[1], s1[2]), s1[3]), 2));
    }
}

void EQ_W5 eq_hwino_band_avx512(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc)
{
    eq_hwino_band_run(j, tr0, ntr, acc, eq_w5_in, eq_w5_gemm, eq_w5_out);
}

#endif /* EQ_HOST_HAVE_AVX2 */
