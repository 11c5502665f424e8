/* eq_gemm_i8: dense int8 GEMM baseline. a (M, K) int8, w (N, K) int8 -> out (M, N) int32,
 * out[m, n] = sum_k a[m, k] * w[n, k] (exact for K < 2^17). */
#include "eq_kernels.h"

eq_status_t eq_gemm_i8(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n, uint32_t k,
                       int32_t *out)
{
    uint32_t i, j, q;
    if (m && n && (!out || (k && (!a || !w)))) return EQ_ERR_ARG;
    for (i = 0; i < m; ++i) {
        const int8_t *ar = a + i * k;
        for (j = 0; j < n; ++j) {
            const int8_t *wr = w + j * k;
            int32_t sum = 0;
            for (q = 0; q < k; ++q) sum += (int32_t)ar[q] * (int32_t)wr[q];
            out[i * n + j] = sum;
        }
    }
    return EQ_OK;
}
