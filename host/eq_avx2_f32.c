/* AVX2 + FMA float32 GEMM (also the 16 GEMMs of eq_avx2_wino.c). Shared macros: eq_avx2.h. */
#include "eq_avx2.h"

#ifdef EQ_HOST_HAVE_AVX2

/* ---- f32 GEMM: packed 16-column panels of b (KC x 16 on the stack), 6 x 16 FMA micro-kernel
 * (12 accumulators); row and column edges use the same kernel with fewer rows / masked lanes. */
#define EQ_KC 256u
#define EQ_NR 16u
#define EQ_MR 6u

static EQ_AVX2_FMA EQ_INLINE void eq_f32_ukr(const float *a, uint32_t lda, const float *bp,
                                             uint32_t kc, float *c, uint32_t ldc, uint32_t mr,
                                             __m256i m0, __m256i m1, int first)
{
    __m256 acc[EQ_MR][2];
    uint32_t r, q;
    for (r = 0; r < EQ_MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (q = 0; q < kc; ++q) {
        const __m256 b0 = _mm256_loadu_ps(bp + q * EQ_NR), b1 = _mm256_loadu_ps(bp + q * EQ_NR + 8);
        for (r = 0; r < EQ_MR; ++r) {
            if (r < mr) {
                const __m256 x = _mm256_broadcast_ss(a + r * lda + q);
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
        }
    }
    for (r = 0; r < EQ_MR; ++r) {
        if (r < mr) {
            float *cr = c + r * ldc;
            if (!first) {
                acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_maskload_ps(cr, m0));
                acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_maskload_ps(cr + 8, m1));
            }
            _mm256_maskstore_ps(cr, m0, acc[r][0]);
            _mm256_maskstore_ps(cr + 8, m1, acc[r][1]);
        }
    }
}

static EQ_AVX2_FMA void eq_f32_ukr6(const float *a, uint32_t lda, const float *bp, uint32_t kc,
                                    float *c, uint32_t ldc, __m256i m0, __m256i m1, int first)
{
    eq_f32_ukr(a, lda, bp, kc, c, ldc, EQ_MR, m0, m1, first);
}

static EQ_AVX2_FMA void eq_f32_ukr_n(const float *a, uint32_t lda, const float *bp, uint32_t kc,
                                     float *c, uint32_t ldc, uint32_t mr, __m256i m0, __m256i m1,
                                     int first)
{
    eq_f32_ukr(a, lda, bp, kc, c, ldc, mr, m0, m1, first);
}

eq_status_t EQ_AVX2_FMA eq_gemm_f32_avx2(const float *a, const float *b, uint32_t m, uint32_t n,
                                         uint32_t k, float *out)
{
    float bp[EQ_KC * EQ_NR] __attribute__((aligned(32)));
    uint32_t k0, j0, i0, q, t;
    if (m && n && (!out || (k && (!a || !b)))) return EQ_ERR_ARG;
    if (!m || !n) return EQ_OK;
    if (!k) {
        memset(out, 0, (size_t)m * n * sizeof(float));
        return EQ_OK;
    }
    for (j0 = 0; j0 < n; j0 += EQ_NR) {
        const uint32_t nr = (n - j0) < EQ_NR ? n - j0 : EQ_NR;
        int32_t lanes[16];
        __m256i m0, m1;
        for (t = 0; t < 16u; ++t) lanes[t] = t < nr ? -1 : 0;
        m0 = _mm256_loadu_si256((const __m256i *)(const void *)lanes);
        m1 = _mm256_loadu_si256((const __m256i *)(const void *)(lanes + 8));
        for (k0 = 0; k0 < k; k0 += EQ_KC) {
            const uint32_t kc = (k - k0) < EQ_KC ? k - k0 : EQ_KC;
            for (q = 0; q < kc; ++q) { /* pack b[k0:k0+kc, j0:j0+16] contiguously, 0-padded */
                const float *br = b + (k0 + q) * n + j0;
                if (nr == EQ_NR) {
                    _mm256_store_ps(bp + q * EQ_NR, _mm256_loadu_ps(br));
                    _mm256_store_ps(bp + q * EQ_NR + 8, _mm256_loadu_ps(br + 8));
                } else {
                    for (t = 0; t < EQ_NR; ++t) bp[q * EQ_NR + t] = t < nr ? br[t] : 0.0f;
                }
            }
            for (i0 = 0; i0 < m; i0 += EQ_MR) {
                const uint32_t mr = (m - i0) < EQ_MR ? m - i0 : EQ_MR;
                if (mr == EQ_MR)
                    eq_f32_ukr6(a + i0 * k + k0, k, bp, kc, out + i0 * n + j0, n, m0, m1,
                                k0 == 0);
                else
                    eq_f32_ukr_n(a + i0 * k + k0, k, bp, kc, out + i0 * n + j0, n, mr, m0, m1,
                                 k0 == 0);
            }
        }
    }
    return EQ_OK;
}

#endif /* EQ_HOST_HAVE_AVX2 */
