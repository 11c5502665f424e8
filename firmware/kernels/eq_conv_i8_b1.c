/* eq_conv_i8_b1: CONV layers with I8 weights on B1 (+-1) activations, a whole layer at a time
 * (a fast path of eq_conv_fast.h), decomposed into the B1 x B1 row kernel.
 *
 * Exact form. With u = w + 128 in 0..255 and its bits b_i, s_i = 2 b_i - 1 (+-1) gives
 *   sum_i 2^i s_i = 2u - 255 = 2w + 1,   so   w = (sum_i 2^i s_i - 1) / 2
 * and for the layer's accumulator over the in-bounds taps (a = +-1)
 *   acc = sum w a = (sum_i 2^i D_i - A) / 2,   D_i = sum s_i a,   A = sum a,
 * where each D_i is a B1 x B1 convolution (weight plane i) and A the B1 x B1 convolution with an
 * all +1 filter (the same taps, so padding and strides are the row kernel's own). The sum is 2 acc
 * exactly (|2 acc| <= 2 * 128 * K fits int32 for every layer the loader accepts), shifted back by 1.
 * Per inference the 8 planes are built into scratch as one B1 weight tensor of 8N filters
 * (filter 8n + i = plane i of filter n), each output row is one eq_conv2d_row call for the planes
 * and one for A, the planes are combined in place and the runtime's output stage runs as usual.
 */
#include <stddef.h>
#include <string.h>

#include "eq_conv_fast.h"

typedef struct {
    uint32_t taps, cw;          /* kh * kw, words of a tap's channel vector */
    uint32_t planes, ones, acc, a, total; /* byte offsets in the scratch */
} eq_i8b1_plan_t;

static int eq_i8b1_plan(const eq_conv_shape_t *s, eq_i8b1_plan_t *p)
{
    uint64_t planes, ones, acc, a;
    p->taps = (uint32_t)s->kh * s->kw;
    p->cw = EQ_WORDS(s->in_c);
    planes = 8ull * s->out_c * p->taps * p->cw * 4u;
    ones = (uint64_t)p->taps * p->cw * 4u;
    acc = 8ull * s->out_w * s->out_c * 4u;
    a = ((uint64_t)s->out_w * 4u + 7u) & ~7ull;
    if (planes + ones + acc + a > (1u << 30)) {
        return 0;
    }
    p->planes = 0u;
    p->ones = (uint32_t)planes;
    p->acc = p->ones + (uint32_t)((ones + 7u) & ~7ull);
    p->a = p->acc + (uint32_t)acc;
    p->total = p->a + (uint32_t)a;
    return 1;
}

/* Shape rule (measured under -icount, docs/boards.md "Kernel performance"): the planes are built
 * once per inference, so every weight should be used at several output pixels, and the B1 loop
 * needs some input channels to pay. */
uint32_t eq_conv_i8_b1_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                               uint8_t out_stage)
{
    eq_i8b1_plan_t p;
    if (s == NULL || in_enc != EQ_ENC_B1 || w_enc != EQ_ENC_I8 || s->in_c == 0u || s->out_c == 0u
        || s->out_c > 65535u / 8u || s->kh == 0u || s->kw == 0u) {
        return 0u;
    }
    if (out_stage != EQ_OUT_SIGN && out_stage != EQ_OUT_MULTI && out_stage != EQ_OUT_AFFINE) {
        return 0u;
    }
    if ((uint64_t)s->kh * s->kw * s->in_c * 256u >= 0x80000000ull) { /* |2 acc| < 2^31 */
        return 0u;
    }
    if (s->in_c < 8u || (uint32_t)s->out_h * s->out_w < 16u || !eq_i8b1_plan(s, &p)) {
        return 0u;
    }
    return p.total;
}

/* bits 0, 8, 16, 24 of x -> bits 0..3 (the multiply's 16 partial products land on distinct bits,
 * so nothing carries into bits 21..24) */
static inline uint32_t eq_i8b1_gather4(uint32_t x)
{
    return (((x & 0x01010101u) * 0x00204081u) >> 21) & 0xFu;
}

/* planes (8N, taps, cw) words: bit c of filter 8n + i at tap t = bit i of w[n, t, c] + 128 */
static void eq_i8b1_planes(const eq_conv_shape_t *s, const int8_t *w, const eq_i8b1_plan_t *p,
                           uint32_t *planes, uint32_t *ones)
{
    const uint32_t c_n = s->in_c, fw = p->taps * p->cw; /* words a filter */
    uint32_t n, t, q, c, i;
    for (t = 0; t < p->taps; ++t) {
        for (q = 0; q < p->cw; ++q) {
            const uint32_t nb = c_n - 32u * q < 32u ? c_n - 32u * q : 32u;
            ones[t * p->cw + q] = nb == 32u ? 0xFFFFFFFFu : (1u << nb) - 1u;
        }
    }
    for (n = 0; n < s->out_c; ++n) {
        uint32_t *f = planes + 8u * n * fw;
        for (t = 0; t < p->taps; ++t) {
            const int8_t *wt = w + ((uint32_t)n * p->taps + t) * c_n;
            for (q = 0; q < p->cw; ++q) {
                const uint32_t nb = c_n - 32u * q < 32u ? c_n - 32u * q : 32u;
                uint32_t pl[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                for (c = 0; c + 4u <= nb; c += 4u) { /* 4 channels a step: u = w ^ 0x80 a byte */
                    uint32_t x;
                    memcpy(&x, wt + 32u * q + c, 4);
                    x ^= 0x80808080u;
                    for (i = 0; i < 8u; ++i) pl[i] |= eq_i8b1_gather4(x >> i) << c;
                }
                for (; c < nb; ++c) {
                    const uint32_t u = (uint32_t)((int32_t)wt[32u * q + c] + 128);
                    for (i = 0; i < 8u; ++i) pl[i] |= ((u >> i) & 1u) << c;
                }
                for (i = 0; i < 8u; ++i) f[i * fw + t * p->cw + q] = pl[i];
            }
        }
    }
}

eq_status_t eq_conv_i8_b1(const eq_conv_job_t *job)
{
    const eq_conv_shape_t *s;
    eq_conv_shape_t s8, s1;
    eq_weights_t w8, w1;
    eq_i8b1_plan_t p;
    uint8_t *base;
    int32_t *acc, *a;
    uint32_t oy, ox, n, i;
    eq_status_t st;
    st = eq_conv_fast_check(job, 1u);
    if (st != EQ_OK) {
        return st;
    }
    s = job->s;
    if (eq_conv_i8_b1_scratch(s, job->in_enc, job->w->enc, job->out_stage) == 0u
        || !eq_i8b1_plan(s, &p)) {
        return EQ_ERR_UNSUPPORTED;
    }
    st = eq_conv_fast_check(job, p.total);
    if (st != EQ_OK) {
        return st;
    }
    base = (uint8_t *)job->scratch;
    acc = (int32_t *)(void *)(base + p.acc);
    a = (int32_t *)(void *)(base + p.a);
    eq_i8b1_planes(s, (const int8_t *)job->w->data, &p, (uint32_t *)(void *)(base + p.planes),
                   (uint32_t *)(void *)(base + p.ones));
    s8 = *s;
    s8.out_c = (uint16_t)(8u * s->out_c);
    s1 = *s;
    s1.out_c = 1u;
    w8.enc = EQ_ENC_B1;
    w8.data = base + p.planes;
    w8.lut = NULL;
    w8.lut_rows = w8.lut_cols = 0u;
    w1 = w8;
    w1.data = base + p.ones;
    for (oy = 0; oy < s->out_h; ++oy) {
        st = eq_conv2d_row(&s8, EQ_ENC_B1, job->in, &w8, (uint16_t)oy, acc);
        if (st == EQ_OK) {
            st = eq_conv2d_row(&s1, EQ_ENC_B1, job->in, &w1, (uint16_t)oy, a);
        }
        if (st != EQ_OK) {
            return st;
        }
        /* in place: (ox, n) is written at ox * N + n <= the 8 words it reads from */
        for (ox = 0; ox < s->out_w; ++ox) {
            for (n = 0; n < s->out_c; ++n) {
                const int32_t *d = acc + (ox * s->out_c + n) * 8u;
                uint32_t sum = 0u;
                for (i = 8u; i-- > 0u;) sum = 2u * sum + (uint32_t)d[i];
                acc[ox * s->out_c + n] = (int32_t)(sum - (uint32_t)a[ox]) >> 1;
            }
        }
        eq_conv_fast_stage(job, acc, oy * s->out_w, s->out_w);
    }
    return EQ_OK;
}
