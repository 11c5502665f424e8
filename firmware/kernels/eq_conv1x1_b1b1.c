/* eq_conv1x1_b1b1: 1x1 B1 x B1 convolution with in_c <= 32 (one activation word a pixel), any
 * strides, no padding, one group: the strided shortcut convs of residual nets and pointwise
 * convs over few channels.
 *
 * Output rows [oy0, oy1), channels [n0, n0 + nch): out[((oy - oy0) * out_w + ox) * ostride + j] =
 *   lut ? lut[j * (in_c + 1) + pc] : in_c - 2 * pc,   pc = popcount((x ^ w[n0 + j]) & cm)
 * with x the input word at (oy * stride, ox * stride_w) and cm the in_c valid bits (pad bits of
 * activations and weights are ignored). The LUT form fuses an output stage whose value depends
 * on the accumulator alone (eq_exec.c: AFFINE over the in_c + 1 possible accumulators).
 *
 * in_c <= 16: two output channels share a word (weights w[n] | w[n + 1] << 16, the pixel's x in
 * both halves), so one XOR and one 4-step SWAR count give both popcounts (bytes 0 and 2, <= 16
 * each). in_c 17..32: one XOR and a SWAR popcount (eq_bitdot.h) per output. Weights are
 * repacked per chunk of EQ_1X1_WBUF words (256 B of stack). */
#include <stddef.h>

#include "eq_kernels.h"
#include "eq_bitdot.h"

#define EQ_1X1_WBUF 64u

/* The SWAR masks live in registers (m[0..2] = 0x55555555, 0x33333333, 0x0F0F0F0F): on Thumb-2
 * an AND with a register takes a shifted operand, so each step is one instruction fewer than
 * with the immediate masks a compiler picks for constants (the empty asm hides their values). */
#if defined(__GNUC__) && defined(__thumb2__)
#define EQ_1X1_HIDE(x) __asm__("" : "+r"(x))
#else
#define EQ_1X1_HIDE(x) ((void)0)
#endif

/* byte counts (each <= 8) of v */
EQ_BD_INLINE uint32_t eq_1x1_bytes(uint32_t v, uint32_t m55, uint32_t m33, uint32_t m0f)
{
    v = v - ((v >> 1) & m55);
    v = (v & m33) + ((v >> 2) & m33);
    return (v + (v >> 4)) & m0f;
}

/* both 16-bit halves' popcounts: byte 0 (low half) and byte 2 (high half) */
EQ_BD_INLINE uint32_t eq_1x1_pc16x2(uint32_t v, uint32_t m55, uint32_t m33, uint32_t m0f)
{
    v = eq_1x1_bytes(v, m55, m33, m0f);
    return v + (v >> 8);
}

void eq_conv1x1_b1b1(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt, uint32_t n0,
                     uint32_t nch, const int32_t *lut, uint32_t oy0, uint32_t oy1, int32_t *out,
                     uint32_t ostride)
{
    const uint32_t c = s->in_c, k1 = c + 1u, sw = eq_shape_stride_w(s), ow = s->out_w;
    const uint32_t cm = c >= 32u ? 0xFFFFFFFFu : (1u << c) - 1u;
    const int pair = c <= 16u;
    const uint32_t per = pair ? 2u * EQ_1X1_WBUF : EQ_1X1_WBUF; /* channels a weight chunk */
    uint32_t wb[EQ_1X1_WBUF];
    uint32_t j0, j, oy, ox, m55 = 0x55555555u, m33 = 0x33333333u, m0f = 0x0F0F0F0Fu;
    EQ_1X1_HIDE(m55);
    EQ_1X1_HIDE(m33);
    EQ_1X1_HIDE(m0f);
    for (j0 = 0; j0 < nch; j0 += per) {
        const uint32_t cnt = nch - j0 < per ? nch - j0 : per;
        const int32_t *lj = lut ? lut + j0 * k1 : (const int32_t *)0;
        if (pair) {
            for (j = 0; j < cnt; j += 2u) {
                const uint32_t hi = j + 1u < cnt ? wt[n0 + j0 + j + 1u] & cm : 0u;
                wb[j >> 1] = (wt[n0 + j0 + j] & cm) | hi << 16;
            }
        } else {
            for (j = 0; j < cnt; j++) wb[j] = wt[n0 + j0 + j] & cm;
        }
        for (oy = oy0; oy < oy1; oy++) {
            const uint32_t *row = in + (size_t)oy * s->stride * s->in_w;
            int32_t *orow = out + (size_t)(oy - oy0) * ow * ostride + j0;
            for (ox = 0; ox < ow; ox++) {
                const uint32_t x = row[(size_t)ox * sw] & cm;
                int32_t *o = orow + (size_t)ox * ostride;
                if (pair) {
                    const uint32_t xx = x | x << 16, np = cnt >> 1;
                    if (lj) {
                        const int32_t *l = lj;
                        for (j = 0; j < np; j++, l += 2u * k1, o += 2) {
                            const uint32_t v = eq_1x1_pc16x2(xx ^ wb[j], m55, m33, m0f);
                            o[0] = l[v & 0xFFu];
                            o[1] = l[k1 + ((v >> 16) & 0xFFu)];
                        }
                        if (cnt & 1u) o[0] = l[eq_1x1_pc16x2(xx ^ wb[np], m55, m33, m0f) & 0xFFu];
                    } else {
                        for (j = 0; j < np; j++, o += 2) {
                            const uint32_t v = eq_1x1_pc16x2(xx ^ wb[j], m55, m33, m0f);
                            o[0] = (int32_t)(c - 2u * (v & 0xFFu));
                            o[1] = (int32_t)(c - 2u * ((v >> 16) & 0xFFu));
                        }
                        if (cnt & 1u) o[0] = (int32_t)(c - 2u * (eq_1x1_pc16x2(xx ^ wb[np], m55, m33, m0f) & 0xFFu));
                    }
                } else if (lj) {
                    const int32_t *l = lj;
                    for (j = 0; j < cnt; j++, l += k1) o[j] = l[eq_bytesum(eq_1x1_bytes(x ^ wb[j], m55, m33, m0f))];
                } else {
                    for (j = 0; j < cnt; j++) o[j] = (int32_t)(c - 2u * eq_bytesum(eq_1x1_bytes(x ^ wb[j], m55, m33, m0f)));
                }
            }
        }
    }
}
