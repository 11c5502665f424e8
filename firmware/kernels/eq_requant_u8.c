/* eq_requant_u8: REQUANT output stage, acc (n_pix, c) int32 -> (n_pix, c) uint8 codes,
 * code = clamp(((int64)acc * mul[n] + add[n]) >> shift, 0, 2**out_bits - 1), the shift
 * arithmetic (flooring) without implementation-defined right shifts of negative numbers. */
#include "eq_kernels.h"

void eq_requant_u8(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                   const int32_t *add, uint8_t shift, uint8_t out_bits, uint8_t *out)
{
    uint32_t p, n;
    const uint32_t sh = shift > 62u ? 62u : shift; /* |v| < 2**62: >> 62 and >> 63 agree */
    const int64_t top = (int64_t)((1u << (out_bits > 8u ? 8u : out_bits)) - 1u);
    for (p = 0; p < n_pix; ++p) {
        for (n = 0; n < c; ++n) {
            int64_t v = (int64_t)acc[p * c + n] * (int64_t)mul[n] + (int64_t)add[n];
            v = v >= 0 ? (int64_t)((uint64_t)v >> sh) : ~(int64_t)((uint64_t)(~v) >> sh);
            out[p * c + n] = (uint8_t)(v < 0 ? 0 : v > top ? top : v);
        }
    }
}
