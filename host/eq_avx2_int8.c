/* AVX2 GEMMs on byte operands: dense int8, k-bit LUT (uint8 codes), and the host executor's
 * uint8 x int16. Shared macros: eq_avx2.h. */
#include "eq_avx2.h"

#ifdef EQ_HOST_HAVE_AVX2

/* ---- dense int8 baseline: 2 x 4 register block, int8 -> int16, vpmaddwd into int32 -------- */
static EQ_AVX2 EQ_INLINE __m256i eq_ld16(const int8_t *p)
{
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static EQ_AVX2 EQ_INLINE int32_t eq_hsum32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

eq_status_t EQ_AVX2 eq_gemm_i8_avx2(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n,
                                    uint32_t k, int32_t *out)
{
    const uint32_t k16 = k - k % 16u;
    uint32_t i, j, r, s, q;
    if (m && n && (!out || (k && (!a || !w)))) return EQ_ERR_ARG;
    for (j = 0; j < n; j += 4u) {
        const uint32_t nb = (n - j) < 4u ? n - j : 4u;
        for (i = 0; i < m; i += 2u) {
            const uint32_t mb = (m - i) < 2u ? m - i : 2u;
            if (mb == 2u && nb == 4u) {
                const int8_t *a0 = a + i * k, *a1 = a0 + k;
                const int8_t *w0 = w + j * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
                __m256i c[2][4];
                int32_t t[2][4];
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s) c[r][s] = _mm256_setzero_si256();
                for (q = 0; q < k16; q += 16u) {
                    const __m256i x0 = eq_ld16(a0 + q), x1 = eq_ld16(a1 + q);
                    const __m256i y0 = eq_ld16(w0 + q), y1 = eq_ld16(w1 + q);
                    const __m256i y2 = eq_ld16(w2 + q), y3 = eq_ld16(w3 + q);
                    c[0][0] = _mm256_add_epi32(c[0][0], _mm256_madd_epi16(x0, y0));
                    c[0][1] = _mm256_add_epi32(c[0][1], _mm256_madd_epi16(x0, y1));
                    c[0][2] = _mm256_add_epi32(c[0][2], _mm256_madd_epi16(x0, y2));
                    c[0][3] = _mm256_add_epi32(c[0][3], _mm256_madd_epi16(x0, y3));
                    c[1][0] = _mm256_add_epi32(c[1][0], _mm256_madd_epi16(x1, y0));
                    c[1][1] = _mm256_add_epi32(c[1][1], _mm256_madd_epi16(x1, y1));
                    c[1][2] = _mm256_add_epi32(c[1][2], _mm256_madd_epi16(x1, y2));
                    c[1][3] = _mm256_add_epi32(c[1][3], _mm256_madd_epi16(x1, y3));
                }
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s) t[r][s] = eq_hsum32(c[r][s]);
                for (q = k16; q < k; ++q)
                    for (r = 0; r < 2u; ++r)
                        for (s = 0; s < 4u; ++s)
                            t[r][s] += (int32_t)a[(i + r) * k + q] * (int32_t)w[(j + s) * k + q];
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s) out[(i + r) * n + j + s] = t[r][s];
            } else {
                for (r = 0; r < mb; ++r) {
                    for (s = 0; s < nb; ++s) {
                        const int8_t *ar = a + (i + r) * k, *wr = w + (j + s) * k;
                        __m256i c = _mm256_setzero_si256();
                        int32_t t;
                        for (q = 0; q < k16; q += 16u)
                            c = _mm256_add_epi32(c, _mm256_madd_epi16(eq_ld16(ar + q),
                                                                      eq_ld16(wr + q)));
                        t = eq_hsum32(c);
                        for (q = k16; q < k; ++q) t += (int32_t)ar[q] * (int32_t)wr[q];
                        out[(i + r) * n + j + s] = t;
                    }
                }
            }
        }
    }
    return EQ_OK;
}

/* ---- LUT GEMM: table lookups do not vectorise well on AVX2 (gathers are slower than scalar
 * loads on this class of CPU); this variant blocks 4 activation rows per weight row so each
 * weight code selects one LUT row reused 4 times. ------------------------------------------ */
eq_status_t EQ_AVX2 eq_gemm_lut_u8_avx2(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                                        uint32_t lut_rows, uint32_t lut_cols, uint32_t m,
                                        uint32_t n, uint32_t k, int32_t *out)
{
    uint32_t i, j, q;
    const eq_status_t st = eq_gemm_lut_u8_check(a, w, lut, lut_rows, lut_cols, m, n, k, out);
    if (st != EQ_OK) return st;
    for (j = 0; j < n; ++j) {
        const uint8_t *wr = w + j * k;
        for (i = 0; i + 4u <= m; i += 4u) {
            const uint8_t *a0 = a + i * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (q = 0; q < k; ++q) {
                const int32_t *lr = lut + (uint32_t)wr[q] * lut_cols;
                s0 += lr[a0[q]];
                s1 += lr[a1[q]];
                s2 += lr[a2[q]];
                s3 += lr[a3[q]];
            }
            out[i * n + j] = s0;
            out[(i + 1u) * n + j] = s1;
            out[(i + 2u) * n + j] = s2;
            out[(i + 3u) * n + j] = s3;
        }
        for (; i < m; ++i) {
            const uint8_t *ar = a + i * k;
            int32_t s0 = 0;
            for (q = 0; q < k; ++q) s0 += lut[(uint32_t)wr[q] * lut_cols + ar[q]];
            out[i * n + j] = s0;
        }
    }
    return EQ_OK;
}

/* ---- u8 x int GEMM of the host executor: a (M, lda) uint8 rows of kp bytes (kp even),
 * w2 (kp / 2, np, 2) int16 (np = N rounded up to 8, pad columns 0): out[m, n] = sum a * w,
 * exact (vpmaddwd pairs of u8 x s16 products never overflow; 32-bit sums wrap) -------------- */
static EQ_AVX2 EQ_INLINE void eq_u8k2(const uint8_t *a, uint32_t lda, const int16_t *w2,
                                      uint32_t np, uint32_t kp, uint32_t mr, uint32_t n0,
                                      uint32_t nv, uint32_t n, int32_t *out)
{
    __m256i acc[4][2];
    uint32_t r, v, g, j;
    for (r = 0; r < 4u; ++r)
        for (v = 0; v < 2u; ++v) acc[r][v] = _mm256_setzero_si256();
    for (g = 0; g < kp / 2u; ++g) {
        const int16_t *wg = w2 + ((size_t)g * np + n0) * 2u;
        __m256i wv[2];
        for (v = 0; v < nv; ++v) wv[v] = _mm256_loadu_si256((const __m256i *)(wg + 16u * v));
        for (r = 0; r < mr; ++r) {
            const uint8_t *p = a + (size_t)r * lda + 2u * g;
            const __m256i xb = _mm256_set1_epi32((int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 16)));
            for (v = 0; v < nv; ++v)
                acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(xb, wv[v]));
        }
    }
    for (r = 0; r < mr; ++r)
        for (v = 0; v < nv; ++v) {
            int32_t tmp[8];
            const uint32_t c0 = n0 + 8u * v;
            if (n - c0 >= 8u) {
                _mm256_storeu_si256((__m256i *)(out + (size_t)r * n + c0), acc[r][v]);
                continue;
            }
            _mm256_storeu_si256((__m256i *)tmp, acc[r][v]);
            for (j = 0; j < n - c0; ++j) out[(size_t)r * n + c0 + j] = tmp[j];
        }
}

void EQ_AVX2 eq_hx_gemm_u8s16_avx2(const uint8_t *a, uint32_t lda, const int16_t *w2, uint32_t np,
                                   uint32_t m, uint32_t n, uint32_t kp, int32_t *out)
{
    uint32_t i, n0;
    for (n0 = 0; n0 < n; n0 += 16u) {
        const uint32_t nv = n - n0 > 8u ? 2u : 1u;
        for (i = 0; i < m; i += 4u) {
            const uint8_t *ar = a + (size_t)i * lda;
            int32_t *o = out + (size_t)i * n;
            const uint32_t mr = m - i >= 4u ? 4u : m - i;
            if (mr == 4u && nv == 2u) eq_u8k2(ar, lda, w2, np, kp, 4u, n0, 2u, n, o);
            else if (mr == 4u) eq_u8k2(ar, lda, w2, np, kp, 4u, n0, 1u, n, o);
            else if (nv == 2u) eq_u8k2(ar, lda, w2, np, kp, mr, n0, 2u, n, o);
            else eq_u8k2(ar, lda, w2, np, kp, mr, n0, 1u, n, o);
        }
    }
}

#endif /* EQ_HOST_HAVE_AVX2 */
