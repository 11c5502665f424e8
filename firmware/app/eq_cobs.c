#include "eq_cobs.h"

int32_t eq_cobs_decode(const uint8_t *in, uint32_t n, uint8_t *out)
{
    uint32_t r = 0, w = 0;
    while (r < n) {
        uint32_t code = in[r++];
        if (code == 0u || r + code - 1u > n)
            return -1;
        for (uint32_t i = 1; i < code; i++) {
            uint8_t b = in[r++];
            if (b == 0u)
                return -1;
            out[w++] = b;
        }
        /* a block shorter than 254 data bytes stands for a zero, except at the very end */
        if (code < 0xFFu && r < n)
            out[w++] = 0u;
    }
    return (int32_t)w;
}

void eq_cobs_encode(const uint8_t *in, uint32_t n, eq_emit_fn emit)
{
    uint32_t start = 0;
    for (;;) {
        uint32_t run = 0;
        while (start + run < n && in[start + run] != 0u && run < 254u)
            run++;
        uint8_t code = (uint8_t)(run + 1u);
        emit(&code, 1u);
        if (run)
            emit(in + start, run);
        start += run;
        if (run == 254u) {
            if (start == n)
                return; /* a full block at the end needs no trailing zero */
            continue;
        }
        if (start >= n)
            return;
        start++; /* skip the zero this block stands for */
        if (start == n) {
            /* the input ended with a zero: one more empty block encodes it */
            code = 1u;
            emit(&code, 1u);
            return;
        }
    }
}
