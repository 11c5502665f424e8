/* eq_gemm_f32: portable float GEMM. a (M, K), b (K, N) -> out (M, N) = a @ b (row-major).
 * i-k-j order: the inner loop runs over a contiguous row of b and of out. */
#include "eq_kernels.h"

eq_status_t eq_gemm_f32(const float *a, const float *b, uint32_t m, uint32_t n, uint32_t k,
                        float *out)
{
    uint32_t i, j, q;
    if (m && n && (!out || (k && (!a || !b)))) return EQ_ERR_ARG;
    for (i = 0; i < m; ++i) {
        float *o = out + i * n;
        for (j = 0; j < n; ++j) o[j] = 0.0f;
        for (q = 0; q < k; ++q) {
            const float s = a[i * k + q];
            const float *br = b + q * n;
            for (j = 0; j < n; ++j) o[j] += s * br[j];
        }
    }
    return EQ_OK;
}
