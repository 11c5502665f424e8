/* eq_maxpool_b1: max-pool of a B1 activation (h, w, EQ_WORDS(c)) = OR of the window's words.
 * out ((h - k) / stride + 1, (w - k) / stride + 1, EQ_WORDS(c)); pad 0. */
#include "eq_kernels.h"

void eq_maxpool_b1(const uint32_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                   uint8_t stride, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c);
    uint32_t oh, ow, oy, ox, dy, dx, i;
    if (!k || !stride || h < k || w < k) return;
    oh = (uint32_t)(h - k) / stride + 1u;
    ow = (uint32_t)(w - k) / stride + 1u;
    for (oy = 0; oy < oh; ++oy) {
        for (ox = 0; ox < ow; ++ox) {
            uint32_t *o = out + (oy * ow + ox) * cw;
            for (i = 0; i < cw; ++i) o[i] = 0;
            for (dy = 0; dy < k; ++dy) {
                for (dx = 0; dx < k; ++dx) {
                    const uint32_t *a = in + ((oy * stride + dy) * w + ox * stride + dx) * cw;
                    for (i = 0; i < cw; ++i) o[i] |= a[i];
                }
            }
        }
    }
}
