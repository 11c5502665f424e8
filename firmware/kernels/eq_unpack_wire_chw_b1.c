/* eq_unpack_wire_chw_b1: wire bits (CHW order, LSB-first bytes, ceil(c*h*w/8) bytes) ->
 * out (h, w, EQ_WORDS(c)) uint32 B1 activation; pad bits 0. */
#include "eq_kernels.h"

void eq_unpack_wire_chw_b1(const uint8_t *bits, uint16_t c, uint16_t h, uint16_t w, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c), hw = (uint32_t)h * w;
    uint32_t p, ch;
    for (p = 0; p < hw * cw; ++p) out[p] = 0;
    for (ch = 0; ch < c; ++ch) {
        const uint32_t word = ch >> 5, bit = 1u << (ch & 31u);
        for (p = 0; p < hw; ++p) {
            const uint32_t i = ch * hw + p;
            if ((bits[i >> 3] >> (i & 7u)) & 1u) out[p * cw + word] |= bit;
        }
    }
}
