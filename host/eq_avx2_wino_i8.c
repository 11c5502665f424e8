/* Integer Winograd F(2x2, 3x3), AVX2 band (see eq_wino_i8.h): the input transform on 16
 * channels a step (u8 widened to int16, exact), the 16 GEMMs with vpmaddwd on int16 pairs
 * (4 tiles x 16 output channels a block), the output transform on 8 output channels a step. */
#include "eq_wino_i8.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <immintrin.h>
#include <string.h>

#define EQ_W2 __attribute__((target("avx2")))
#define EQ_W2_INLINE __attribute__((target("avx2"), always_inline)) inline

#define VEC __m256i
#define ADD _mm256_add_epi16
#define SUB _mm256_sub_epi16
static EQ_W2 void eq_w2_in(const eq_hwino_t *j, const uint8_t *const *p, int16_t *o, size_t vs)
{
    const uint32_t c = j->c, cs = j->cs;
    uint32_t ch, k;
#define ST(pos, x) _mm256_storeu_si256((__m256i *)(void *)(o + (pos) * vs + ch), (x))
    for (ch = 0; ch + 16u <= c; ch += 16u) {
#define LD(i) _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(p[i] + ch)))
        EQ_W_INPUT(LD, ST);
#undef LD
    }
    if (ch < cs) { /* the tail channels through a zero-padded copy (no over-read) */
        uint8_t tmp[16][16];
        memset(tmp, 0, sizeof tmp);
        for (k = 0; k < 16u; ++k) memcpy(tmp[k], p[k] + ch, c - ch);
        for (; ch < cs; ch += 16u) {
#define LD(i) _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)tmp[i]))
            EQ_W_INPUT(LD, ST);
#undef LD
            memset(tmp, 0, sizeof tmp);
        }
    }
#undef ST
}
#undef VEC
#undef ADD
#undef SUB

/* m rows (mr tiles, np) columns n0 .. n0 + 16 = v rows (a: lda int16) x u (cp2, np, 2) */
static EQ_W2_INLINE void eq_w2k(const int16_t *a, uint32_t lda, const int16_t *u, uint32_t np,
                                uint32_t cp2, uint32_t mr, uint32_t n0, int32_t *out)
{
    __m256i acc[4][2];
    uint32_t r, v, q;
    for (r = 0; r < 4u; ++r)
        for (v = 0; v < 2u; ++v) acc[r][v] = _mm256_setzero_si256();
    for (q = 0; q < cp2; ++q) {
        const int16_t *uq = u + ((size_t)q * np + n0) * 2u;
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)uq);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(uq + 16));
        for (r = 0; r < mr; ++r) {
            int32_t x;
            __m256i xb;
            memcpy(&x, a + (size_t)r * lda + 2u * q, 4);
            xb = _mm256_set1_epi32(x);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(xb, w0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(xb, w1));
        }
    }
    for (r = 0; r < mr; ++r)
        for (v = 0; v < 2u; ++v)
            _mm256_storeu_si256((__m256i *)(void *)(out + (size_t)r * np + n0 + 8u * v), acc[r][v]);
}

static EQ_W2 void eq_w2_gemm(const eq_hwino_t *j, uint32_t t)
{
    const uint32_t cs = j->cs, np = j->np, cp2 = j->cp2;
    uint32_t pos, i, n0;
    for (pos = 0; pos < 16u; ++pos) {
        const int16_t *v = j->v + (size_t)pos * j->tmax * cs;
        const int16_t *u = j->u + (size_t)pos * cp2 * np * 2u;
        int32_t *m = j->m + (size_t)pos * j->tmax * np;
        for (n0 = 0; n0 < np; n0 += 16u) /* np is a multiple of 16 */
            for (i = 0; i < t; i += 4u) {
                const int16_t *a = v + (size_t)i * cs;
                int32_t *o = m + (size_t)i * np;
                switch (t - i >= 4u ? 4u : t - i) {
                case 4: eq_w2k(a, cs, u, np, cp2, 4u, n0, o); break;
                case 3: eq_w2k(a, cs, u, np, cp2, 3u, n0, o); break;
                case 2: eq_w2k(a, cs, u, np, cp2, 2u, n0, o); break;
                default: eq_w2k(a, cs, u, np, cp2, 1u, n0, o); break;
                }
            }
    }
}

static EQ_W2 void eq_w2_out(const int32_t *m, size_t ms, uint32_t n, int32_t *y0, int32_t *y1,
                            int32_t *y2, int32_t *y3)
{
    int32_t *y[4];
    uint32_t c, k, q;
    y[0] = y0;
    y[1] = y1;
    y[2] = y2;
    y[3] = y3;
    for (c = 0; c < n; c += 8u) {
        __m256i s0[4], s1[4], r[4];
        for (k = 0; k < 4u; ++k) {
#define LM(pos) _mm256_loadu_si256((const __m256i *)(const void *)(m + (pos) * ms + c))
            const __m256i m4 = LM(4u + k), m8 = LM(8u + k);
            s0[k] = _mm256_add_epi32(_mm256_add_epi32(LM(k), m4), m8);
            s1[k] = _mm256_sub_epi32(_mm256_sub_epi32(m4, m8), LM(12u + k));
#undef LM
        }
        r[0] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(s0[0], s0[1]), s0[2]), 2);
        r[1] = _mm256_srai_epi32(_mm256_sub_epi32(_mm256_sub_epi32(s0[1], s0[2]), s0[3]), 2);
        r[2] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(s1[0], s1[1]), s1[2]), 2);
        r[3] = _mm256_srai_epi32(_mm256_sub_epi32(_mm256_sub_epi32(s1[1], s1[2]), s1[3]), 2);
        for (k = 0; k < 4u; ++k) {
            int32_t tmp[8];
            if (n - c >= 8u) {
                _mm256_storeu_si256((__m256i *)(void *)(y[k] + c), r[k]);
                continue;
            }
            _mm256_storeu_si256((__m256i *)(void *)tmp, r[k]);
            for (q = 0; q < n - c; ++q) y[k][c + q] = tmp[q];
        }
    }
}

void EQ_W2 eq_hwino_band_avx2(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc)
{
    eq_hwino_band_run(j, tr0, ntr, acc, eq_w2_in, eq_w2_gemm, eq_w2_out);
}

#endif /* EQ_HOST_HAVE_AVX2 */
