/* eq_gemm_lut_u8: multiplier-free k-bit GEMM through a product table.
 * a (M, K) uint8 codes < lut_cols, w (N, K) uint8 codes < lut_rows, lut (lut_rows, lut_cols) int32.
 * out (M, N) int32: out[m, n] = sum_k lut[w[n, k]][a[m, k]]. */
#include "eq_kernels.h"

eq_status_t eq_gemm_lut_u8_check(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                                 uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                                 uint32_t k, const int32_t *out)
{
    uint32_t q;
    if (!lut || !lut_rows || !lut_cols || lut_rows > 256u || lut_cols > 256u) return EQ_ERR_ARG;
    if (m && n && (!out || (k && (!a || !w)))) return EQ_ERR_ARG;
    if (!m || !n) return EQ_OK;
    for (q = 0; q < m * k; ++q)
        if (a[q] >= lut_cols) return EQ_ERR_ARG;
    for (q = 0; q < n * k; ++q)
        if (w[q] >= lut_rows) return EQ_ERR_ARG;
    return EQ_OK;
}

eq_status_t eq_gemm_lut_u8(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                           uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                           uint32_t k, int32_t *out)
{
    uint32_t i, j, q;
    const eq_status_t st = eq_gemm_lut_u8_check(a, w, lut, lut_rows, lut_cols, m, n, k, out);
    if (st != EQ_OK) return st;
    for (j = 0; j < n; ++j) {
        const uint8_t *wr = w + j * k;
        for (i = 0; i < m; ++i) {
            const uint8_t *ar = a + i * k;
            int32_t sum = 0;
            for (q = 0; q < k; ++q) sum += lut[(uint32_t)wr[q] * lut_cols + ar[q]];
            out[i * n + j] = sum;
        }
    }
    return EQ_OK;
}
