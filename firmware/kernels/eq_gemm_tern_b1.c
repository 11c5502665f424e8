/* eq_gemm_tern_b1: binary activations x ternary weights in TERN planes.
 * a (M, KW) packed signs; w (N, 2*KW): sign plane then nonzero plane per row (pad bits 0).
 * out (M, N) int32 = sum_i a_i * w_i = popcount(nz) - 2 * popcount(nz & (a ^ sign)). */
#include "eq_kernels.h"

eq_status_t eq_gemm_tern_b1(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                            uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    uint32_t i, j, q;
    if ((m && n && kw && (!a || !w)) || (m && n && !out)) return EQ_ERR_ARG;
    for (i = 0; i < m; ++i) {
        const uint32_t *ar = a + i * kw;
        for (j = 0; j < n; ++j) {
            const uint32_t *sg = w + j * 2u * kw, *nz = sg + kw;
            int32_t sum = 0;
            for (q = 0; q < kw; ++q)
                sum += (int32_t)eq_popcount32(nz[q])
                       - 2 * (int32_t)eq_popcount32(nz[q] & (ar[q] ^ sg[q]));
            out[i * n + j] = sum;
        }
    }
    return EQ_OK;
}
