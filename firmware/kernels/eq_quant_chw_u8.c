/* eq_quant_chw_u8: RAW / QUANT preprocessing. pix (c, h, w) uint8 -> out (h, w, c) uint8,
 * code = (pix * (2^bits - 1) + 127) / 255 (bits 1..8; bits >= 8 copies the pixel). */
#include "eq_kernels.h"

void eq_quant_chw_u8(const uint8_t *pix, uint16_t c, uint16_t h, uint16_t w, uint8_t bits,
                     uint8_t *out)
{
    const uint32_t hw = (uint32_t)h * w;
    const uint32_t levels = bits >= 8u ? 255u : (1u << bits) - 1u;
    uint32_t p, ch;
    for (ch = 0; ch < c; ++ch) {
        const uint8_t *plane = pix + ch * hw;
        if (levels == 255u) {
            for (p = 0; p < hw; ++p) out[p * c + ch] = plane[p];
        } else {
            for (p = 0; p < hw; ++p)
                out[p * c + ch] = (uint8_t)(((uint32_t)plane[p] * levels + 127u) / 255u);
        }
    }
}
