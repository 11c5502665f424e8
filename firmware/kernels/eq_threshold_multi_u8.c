/* eq_threshold_multi_u8: MULTI output stage, acc (n_pix, c) int32 -> (n_pix, c) uint8 codes.
 * code = #{i < n_thr : flip[n] ? acc <= thr[n, i] : acc >= thr[n, i]}, thr (c, n_thr) int32. */
#include "eq_kernels.h"

void eq_threshold_multi_u8(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                           uint16_t n_thr, const uint8_t *flip, uint8_t *out)
{
    uint32_t p, n, i;
    for (p = 0; p < n_pix; ++p) {
        for (n = 0; n < c; ++n) {
            const int32_t a = acc[p * c + n];
            const int32_t *t = thr + n * (uint32_t)n_thr;
            uint32_t code = 0;
            if (flip[n]) {
                for (i = 0; i < n_thr; ++i) code += (uint32_t)(a <= t[i]);
            } else {
                for (i = 0; i < n_thr; ++i) code += (uint32_t)(a >= t[i]);
            }
            out[p * c + n] = (uint8_t)code;
        }
    }
}
