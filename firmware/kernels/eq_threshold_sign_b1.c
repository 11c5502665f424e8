/* eq_threshold_sign_b1: SIGN output stage, acc (n_pix, c) int32 -> (n_pix, EQ_WORDS(c)) uint32.
 * bit = flip[n] ? acc <= thr[n] : acc >= thr[n]; unused bits of the last word are 0. */
#include "eq_kernels.h"

void eq_threshold_sign_b1(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                          const uint8_t *flip, uint32_t *out)
{
    uint32_t p, n0, i;
    for (p = 0; p < n_pix; ++p) {
        const int32_t *a = acc + p * c;
        for (n0 = 0; n0 < c; n0 += 32u) { /* one output word at a time, built in a register */
            const uint32_t m = c - n0 < 32u ? c - n0 : 32u;
            uint32_t bits = 0;
            for (i = 0; i < m; ++i) {
                const int32_t x = a[n0 + i], t = thr[n0 + i];
                const uint32_t bit = flip[n0 + i] ? (uint32_t)(x <= t) : (uint32_t)(x >= t);
                bits |= bit << i;
            }
            *out++ = bits;
        }
    }
}
