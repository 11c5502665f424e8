/* eq_pack_wire_chw_b1: host side of the THRESH wire input. pix (n,) uint8 in CHW order ->
 * bits ceil(n/8) bytes, bit i = pix[i] >= thr, LSB first; unused high bits of the last byte 0. */
#include "eq_kernels.h"

void eq_pack_wire_chw_b1(const uint8_t *pix, uint32_t n, uint8_t thr, uint8_t *bits)
{
    uint32_t i;
    for (i = 0; i < (n + 7u) / 8u; ++i) bits[i] = 0;
    for (i = 0; i < n; ++i)
        if (pix[i] >= thr) bits[i >> 3] = (uint8_t)(bits[i >> 3] | (1u << (i & 7u)));
}
