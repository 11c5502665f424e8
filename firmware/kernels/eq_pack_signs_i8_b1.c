/* eq_pack_signs_i8_b1: x (rows, k) int8 -> out (rows, EQ_WORDS(k)) uint32, bit = x >= 0 (+1),
 * element i = bit i % 32 of word i / 32, pad bits 0. */
#include "eq_kernels.h"

void eq_pack_signs_i8_b1(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    uint32_t r, q, b;
    for (r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * k;
        uint32_t *o = out + r * kw;
        for (q = 0; q < kw; ++q) {
            const uint32_t n = (k - q * 32u) < 32u ? k - q * 32u : 32u;
            uint32_t word = 0;
            for (b = 0; b < n; ++b) word |= (uint32_t)(xr[q * 32u + b] >= 0) << b;
            o[q] = word;
        }
    }
}
