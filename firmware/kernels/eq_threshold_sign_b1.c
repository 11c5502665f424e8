/* eq_threshold_sign_b1: SIGN output stage, acc (n_pix, c) int32 -> (n_pix, EQ_WORDS(c)) uint32.
 * bit = flip[n] ? acc <= thr[n] : acc >= thr[n]; unused bits of the last word are 0. */
#include "eq_kernels.h"

/* Per chunk of up to 64 channels the compare is prepared once: with f = 0x80000000 (flip 0) or
 * 0x7FFFFFFF (flip 1), bit = (acc ^ f) >= (thr ^ f) as unsigned numbers (the sign flip turns the
 * signed order into the unsigned one; inverting every bit reverses it, turning acc >= thr into
 * acc <= thr), so each output is an XOR, a compare and a shift-in of the carry. */
#define EQ_THR_CHUNK 64u

void eq_threshold_sign_b1(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                          const uint8_t *flip, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c);
    uint32_t tf[2u * EQ_THR_CHUNK];
    uint32_t n0, p, i;
    for (n0 = 0; n0 < c; n0 += EQ_THR_CHUNK) {
        const uint32_t nch = c - n0 < EQ_THR_CHUNK ? c - n0 : EQ_THR_CHUNK;
        for (i = 0; i < nch; ++i) {
            const uint32_t f = flip[n0 + i] ? 0x7FFFFFFFu : 0x80000000u;
            tf[2u * i] = (uint32_t)thr[n0 + i] ^ f;
            tf[2u * i + 1u] = f;
        }
        for (p = 0; p < n_pix; ++p) {
            const uint32_t *a = (const uint32_t *)(const void *)(acc + p * c + n0);
            uint32_t *o = out + p * cw + (n0 >> 5);
            uint32_t w0;
            for (w0 = 0; w0 < nch; w0 += 32u) { /* one output word, high channel first */
                uint32_t bits = 0;
                i = nch - w0 < 32u ? nch - w0 : 32u;
                for (; i >= 2u; i -= 2u) { /* two outputs a pass */
                    const uint32_t *q = tf + 2u * (w0 + i - 2u);
                    const uint32_t x1 = a[w0 + i - 1u] ^ q[3], x0 = a[w0 + i - 2u] ^ q[1];
#if defined(__thumb2__)
                    __asm__("cmp %1, %2\n\tadc %0, %0, %0\n\tcmp %3, %4\n\tadc %0, %0, %0"
                            : "+r"(bits) : "r"(x1), "r"(q[2]), "r"(x0), "r"(q[0]) : "cc");
#else
                    bits = (bits << 1) | (uint32_t)(x1 >= q[2]);
                    bits = (bits << 1) | (uint32_t)(x0 >= q[0]);
#endif
                }
                while (i--) {
                    const uint32_t *q = tf + 2u * (w0 + i);
                    const uint32_t x = a[w0 + i] ^ q[1];
#if defined(__thumb2__)
                    /* the carry of the compare is the bit: shift it in with ADC */
                    __asm__("cmp %1, %2\n\tadc %0, %0, %0" : "+r"(bits) : "r"(x), "r"(q[0]) : "cc");
#else
                    bits = (bits << 1) | (uint32_t)(x >= q[0]);
#endif
                }
                o[w0 >> 5] = bits;
            }
        }
    }
}
