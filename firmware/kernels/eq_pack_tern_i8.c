/* eq_pack_tern_i8: w (rows, k) int8 in {-1, 0, 1} -> out (rows, 2 * EQ_WORDS(k)) uint32 TERN:
 * per row the sign plane (bit 1 = +1) then the nonzero plane; a zero has both bits 0. */
#include "eq_kernels.h"

eq_status_t eq_pack_tern_i8(const int8_t *w, uint32_t rows, uint32_t k, uint32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    uint32_t r, q, b;
    for (r = 0; r < rows * k; ++r)
        if (w[r] < -1 || w[r] > 1) return EQ_ERR_ARG;
    for (r = 0; r < rows; ++r) {
        const int8_t *wr = w + r * k;
        uint32_t *sg = out + r * 2u * kw, *nz = sg + kw;
        for (q = 0; q < kw; ++q) {
            const uint32_t n = (k - q * 32u) < 32u ? k - q * 32u : 32u;
            uint32_t s = 0, z = 0;
            for (b = 0; b < n; ++b) {
                const int8_t v = wr[q * 32u + b];
                s |= (uint32_t)(v > 0) << b;
                z |= (uint32_t)(v != 0) << b;
            }
            sg[q] = s;
            nz[q] = z;
        }
    }
    return EQ_OK;
}
