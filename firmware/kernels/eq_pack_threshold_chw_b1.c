/* eq_pack_threshold_chw_b1: THRESH preprocessing. pix (c, h, w) uint8 ->
 * out (h, w, EQ_WORDS(c)) uint32 with bit = pix >= thr; pad bits 0. */
#include "eq_kernels.h"

void eq_pack_threshold_chw_b1(const uint8_t *pix, uint16_t c, uint16_t h, uint16_t w,
                              uint8_t thr, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c), hw = (uint32_t)h * w;
    uint32_t p, ch;
    for (p = 0; p < hw * cw; ++p) out[p] = 0;
    for (ch = 0; ch < c; ++ch) {
        const uint8_t *plane = pix + ch * hw;
        const uint32_t word = ch >> 5, bit = 1u << (ch & 31u);
        for (p = 0; p < hw; ++p)
            if (plane[p] >= thr) out[p * cw + word] |= bit;
    }
}
