/* eq_maxpool_u8: max-pool of a (h, w, c) uint8_t activation, window k x k, pad 0.
 * out ((h - k) / stride + 1, (w - k) / stride + 1, c). */
#include "eq_kernels.h"

void eq_maxpool_u8(const uint8_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                   uint8_t stride, uint8_t *out)
{
    uint32_t oh, ow, oy, ox, dy, dx, i;
    if (!k || !stride || h < k || w < k) return;
    oh = (uint32_t)(h - k) / stride + 1u;
    ow = (uint32_t)(w - k) / stride + 1u;
    for (oy = 0; oy < oh; ++oy) {
        for (ox = 0; ox < ow; ++ox) {
            uint8_t *o = out + (oy * ow + ox) * c;
            const uint8_t *a0 = in + ((oy * stride) * w + ox * stride) * c;
            for (i = 0; i < c; ++i) o[i] = a0[i];
            for (dy = 0; dy < k; ++dy) {
                for (dx = 0; dx < k; ++dx) {
                    const uint8_t *a = in + ((oy * stride + dy) * w + ox * stride + dx) * c;
                    for (i = 0; i < c; ++i)
                        if (a[i] > o[i]) o[i] = a[i];
                }
            }
        }
    }
}
