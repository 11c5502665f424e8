/* eq_conv_dw: depthwise CONV layers (groups = in_c = out_c) computed whole and fused with their
 * output stage, bit-sliced across the channels (eq_conv_fast.h). Bit-exact with
 * eq_conv2d_row_grouped plus the runtime's output stage; any stride and padding (per axis).
 *
 * B1 input, B1 or TERN weights, SIGN output, kh * kw <= 9 taps. For an output pixel and a word
 * of 32 channels (lane i = channel 32 wi + i: the activation's own word), tap t's mismatch word
 * x_t = (a_t ^ s_t) & nz_t has lane i set where tap t counts -1 for channel i (B1: nz all ones).
 * A 9-input carry-save adder tree (full adders on whole words) gives every lane's mismatch count
 * D in four bit planes. With Z the channel's nonzero taps and I those of them outside the input
 * (a border pixel: those taps add 0), acc = (Z - I) - 2 D, so with F = 2 D + I
 *     acc >= thr  <=>  F <= L = Z - thr,          acc <= thr  <=>  not (F <= Z - thr - 1).
 * L is clamped to [0, 2 K] (K taps; below 0 is "never", made "always" with the output bit
 * inverted), the counter start k0 = 31 - L (five bit planes) is laid out once per call and
 * channel word, and the output bit is bit 5 of k0 + I + 2 D (set exactly when F > L), XOR the
 * lane's inversion. Interior pixels (I = 0) need only the carry out of k0[1..4] + D; border
 * pixels add their out-of-bounds taps' nz words into a copy of k0 first (k0 + I <= 40).
 * Per interior pixel and 32 channels: 9 loads and XORs (TERN: ANDs), 32 adder operations and a
 * 4-step carry chain, for 9 * 32 MACs. No scratch; about 200 bytes of stack.
 */
#include <stddef.h>

#include "eq_conv_fast.h"

#if defined(__GNUC__)
#define EQ_DW_FI static inline __attribute__((always_inline))
#define EQ_DW_NOINLINE static __attribute__((noinline))
#else
#define EQ_DW_FI static inline
#define EQ_DW_NOINLINE static
#endif

#define EQ_DW_MAXT 9u /* taps: the adder tree's inputs */

typedef struct {
    uint32_t sg[EQ_DW_MAXT], nz[EQ_DW_MAXT]; /* tap t's sign / nonzero bits of the 32 lanes */
    uint32_t k0[6];                          /* counter start 31 - L, bit planes (plane 5: 0) */
    uint32_t g;                              /* lanes whose output bit is not inverted */
    uint32_t lanes;                          /* the word's channels */
} eq_dw_word_t;

/* one full adder on 32 lanes: s = a ^ b ^ c, cy = majority(a, b, c) */
#define EQ_DW_FA(a, b, c, s, cy)                                                                   \
    do {                                                                                           \
        const uint32_t t_ = (a) ^ (b);                                                             \
        (s) = t_ ^ (c);                                                                            \
        (cy) = ((a) & (b)) | (t_ & (c));                                                           \
    } while (0)

/* bit 5 of k + 2 * popcount(x[0..8]) per lane, k (k[1..5] read; k <= 40) */
EQ_DW_FI uint32_t eq_dw_over(const uint32_t *x, const uint32_t *k)
{
    uint32_t s1, s2, s3, c1, c2, c3, c4, s5, c5, d0, d1, d2, d3, c;
    EQ_DW_FA(x[0], x[1], x[2], s1, c1);
    EQ_DW_FA(x[3], x[4], x[5], s2, c2);
    EQ_DW_FA(x[6], x[7], x[8], s3, c3);
    EQ_DW_FA(s1, s2, s3, d0, c4);  /* d0: weight 1, c1..c4: weight 2 */
    EQ_DW_FA(c1, c2, c3, s5, c5);  /* s5: weight 2, c5: weight 4 */
    d1 = s5 ^ c4;
    c = s5 & c4;                   /* weight 4 */
    d2 = c5 ^ c;
    d3 = c5 & c;
    c = d0 & k[1];                 /* carries of k[1..4] + d[0..3] */
    c = (d1 & k[2]) | (c & (d1 | k[2]));
    c = (d2 & k[3]) | (c & (d2 | k[3]));
    c = (d3 & k[4]) | (c & (d3 | k[4]));
    return c | k[5];               /* k[5] and the carry are never both set (total < 64) */
}

/* weights and folded thresholds of channel word wi */
static void eq_dw_prep(const eq_conv_job_t *job, uint32_t wi, uint32_t taps, int tern, eq_dw_word_t *p)
{
    const uint32_t c = job->s->in_c, n0 = 32u * wi, nb = c - n0 < 32u ? c - n0 : 32u;
    const uint32_t rowsz = tern ? 2u * taps : taps, fmax = 2u * taps;
    const uint32_t *wd = (const uint32_t *)job->w->data;
    const int32_t *thr = (const int32_t *)job->thr;
    const uint8_t *flip = (const uint8_t *)job->aux;
    uint32_t b, t, j;
    for (t = 0; t < EQ_DW_MAXT; ++t) p->sg[t] = p->nz[t] = 0;
    for (j = 0; j < 6u; ++j) p->k0[j] = 0;
    p->g = 0;
    p->lanes = nb == 32u ? 0xFFFFFFFFu : (1u << nb) - 1u;
    for (b = 0; b < nb; ++b) {
        const uint32_t *row = wd + (size_t)(n0 + b) * rowsz; /* one word a tap (C/g = 1) */
        uint32_t z = 0, k;
        int64_t l;
        int inv = flip[n0 + b] != 0;
        for (t = 0; t < taps; ++t) {
            const uint32_t nzb = tern ? row[taps + t] & 1u : 1u;
            p->sg[t] |= (row[t] & 1u) << b;
            p->nz[t] |= nzb << b;
            z += nzb;
        }
        l = (int64_t)z - thr[n0 + b] - (inv ? 1 : 0);
        if (l < 0) {
            l = fmax;
            inv = !inv;
        } else if (l > (int64_t)fmax) {
            l = fmax;
        }
        k = 31u - (uint32_t)l;
        for (j = 0; j < 5u; ++j) p->k0[j] |= ((k >> j) & 1u) << b;
        p->g |= (uint32_t)!inv << b;
    }
}

/* the taps' input words of one pixel of channel word wi, border-aware: out-of-bounds taps give
 * x = 0 and add their nz word into k (a copy of k0) */
EQ_DW_FI void eq_dw_border(const eq_conv_shape_t *s, const uint32_t *in, uint32_t cw, const eq_dw_word_t *p,
                           int32_t iy0, int32_t ix0, int tern, uint32_t *x, uint32_t *k)
{
    uint32_t ky, kx, j, t = 0;
    for (j = 0; j < 6u; ++j) k[j] = p->k0[j];
    for (ky = 0; ky < s->kh; ++ky) {
        const int32_t iy = iy0 + (int32_t)ky;
        for (kx = 0; kx < s->kw; ++kx, ++t) {
            const int32_t ix = ix0 + (int32_t)kx;
            if (iy >= 0 && iy < (int32_t)s->in_h && ix >= 0 && ix < (int32_t)s->in_w) {
                const uint32_t a = in[((size_t)(uint32_t)iy * s->in_w + (uint32_t)ix) * cw];
                x[t] = tern ? (a ^ p->sg[t]) & p->nz[t] : a ^ p->sg[t];
            } else {
                uint32_t v = p->nz[t];
                x[t] = 0;
                for (j = 0; j < 6u; ++j) { /* k += nz (lanes) */
                    const uint32_t cy = k[j] & v;
                    k[j] ^= v;
                    v = cy;
                }
            }
        }
    }
    for (; t < EQ_DW_MAXT; ++t) x[t] = 0;
}

/* the whole layer for channel word wi (in and out point at the word: pixel stride cw) */
EQ_DW_FI void eq_dw_b1_word(const eq_conv_shape_t *s, const uint32_t *in, uint32_t *out, uint32_t cw,
                            const eq_dw_word_t *p, int tern)
{
    const uint32_t taps = (uint32_t)s->kh * s->kw, sw = eq_shape_stride_w(s), pw = eq_shape_pad_w(s);
    const uint32_t g = p->g, lanes = p->lanes;
    uint32_t off[EQ_DW_MAXT], x[EQ_DW_MAXT], k[6];
    uint32_t oy, ox, t, lo, hi;
    for (t = 0; t < taps; ++t) off[t] = ((t / s->kw) * s->in_w + t % s->kw) * cw;
    for (; t < EQ_DW_MAXT; ++t) x[t] = 0;
    /* output columns whose taps are all inside the input horizontally */
    lo = (pw + sw - 1u) / sw;
    hi = (uint32_t)s->in_w + pw >= s->kw ? ((uint32_t)s->in_w + pw - s->kw) / sw + 1u : 0u;
    if (hi > s->out_w) hi = s->out_w;
    if (lo > hi) lo = hi;
    for (oy = 0; oy < s->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
        const int rows_in = iy0 >= 0 && iy0 + (int32_t)s->kh <= (int32_t)s->in_h;
        uint32_t *o = out + (size_t)oy * s->out_w * cw;
        for (ox = 0; ox < s->out_w; ++ox) {
            const int32_t ix0 = (int32_t)(ox * sw) - (int32_t)pw;
            uint32_t v;
            if (rows_in && ox >= lo && ox < hi) {
                const uint32_t *q = in + ((size_t)(uint32_t)iy0 * s->in_w + (uint32_t)ix0) * cw;
                for (t = 0; t < taps; ++t)
                    x[t] = tern ? (q[off[t]] ^ p->sg[t]) & p->nz[t] : q[off[t]] ^ p->sg[t];
                v = eq_dw_over(x, p->k0);
            } else {
                eq_dw_border(s, in, cw, p, iy0, ix0, tern, x, k);
                v = eq_dw_over(x, k);
            }
            o[ox * cw] = (v ^ g) & lanes;
        }
    }
}

EQ_DW_NOINLINE void eq_dw_b1_b1(const eq_conv_shape_t *s, const uint32_t *in, uint32_t *out, uint32_t cw,
                                const eq_dw_word_t *p)
{
    eq_dw_b1_word(s, in, out, cw, p, 0);
}

EQ_DW_NOINLINE void eq_dw_b1_tern(const eq_conv_shape_t *s, const uint32_t *in, uint32_t *out, uint32_t cw,
                                  const eq_dw_word_t *p)
{
    eq_dw_b1_word(s, in, out, cw, p, 1);
}

int eq_conv_dw_applies(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc, uint8_t w_enc,
                       uint8_t out_stage)
{
    const uint32_t taps = s ? (uint32_t)s->kh * s->kw : 0u;
    if (s == NULL || groups != s->in_c || s->out_c != s->in_c || !s->stride || !eq_shape_stride_w(s))
        return 0;
    return in_enc == EQ_ENC_B1 && (w_enc == EQ_ENC_B1 || w_enc == EQ_ENC_TERN) && out_stage == EQ_OUT_SIGN
           && taps >= 1u && taps <= EQ_DW_MAXT;
}

eq_status_t eq_conv_dw(const eq_conv_job_t *job, uint32_t groups)
{
    const eq_conv_shape_t *s;
    eq_dw_word_t p;
    uint32_t wi, cw;
    eq_status_t st;
    if (job == NULL || job->w == NULL
        || !eq_conv_dw_applies(job->s, groups, job->in_enc, job->w->enc, job->out_stage))
        return EQ_ERR_UNSUPPORTED;
    st = eq_conv_fast_check(job, 0u);
    if (st != EQ_OK) return st;
    s = job->s;
    cw = EQ_WORDS(s->in_c);
    for (wi = 0; wi < cw; ++wi) {
        const int tern = job->w->enc == EQ_ENC_TERN;
        eq_dw_prep(job, wi, (uint32_t)s->kh * s->kw, tern, &p);
        if (tern)
            eq_dw_b1_tern(s, (const uint32_t *)job->in + wi, (uint32_t *)job->out + wi, cw, &p);
        else
            eq_dw_b1_b1(s, (const uint32_t *)job->in + wi, (uint32_t *)job->out + wi, cw, &p);
    }
    return EQ_OK;
}
