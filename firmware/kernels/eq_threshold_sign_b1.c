/* eq_threshold_sign_b1: SIGN output stage, acc (n_pix, c) int32 -> (n_pix, EQ_WORDS(c)) uint32.
 * bit = flip[n] ? acc <= thr[n] : acc >= thr[n]; unused bits of the last word are 0. */
#include "eq_kernels.h"

void eq_threshold_sign_b1(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                          const uint8_t *flip, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c);
    uint32_t p, n;
    for (p = 0; p < n_pix; ++p) {
        const int32_t *a = acc + p * c;
        uint32_t *o = out + p * cw;
        for (n = 0; n < cw; ++n) o[n] = 0;
        for (n = 0; n < c; ++n) {
            uint32_t bit = flip[n] ? (a[n] <= thr[n]) : (a[n] >= thr[n]);
            o[n >> 5] |= bit << (n & 31u);
        }
    }
}
