/* eq_gemm_xnor_b1b1: binary GEMM by XNOR-popcount.
 * a (M, KW) uint32, b (N, KW) uint32 packed signs, KW = EQ_WORDS(k), pad bits 0 in both rows.
 * out (M, N) int32 = k - 2 * popcount(a ^ b) (the +-1 dot product). */
#include "eq_kernels.h"

eq_status_t eq_gemm_xnor_b1b1(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                              uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    uint32_t i, j, q;
    if ((m && n && kw && (!a || !b)) || (m && n && !out)) return EQ_ERR_ARG;
    for (i = 0; i < m; ++i) {
        const uint32_t *ar = a + i * kw;
        for (j = 0; j < n; ++j) {
            const uint32_t *br = b + j * kw;
            uint32_t pc = 0;
            for (q = 0; q < kw; ++q) pc += eq_popcount32(ar[q] ^ br[q]);
            out[i * n + j] = (int32_t)k - 2 * (int32_t)pc;
        }
    }
    return EQ_OK;
}
