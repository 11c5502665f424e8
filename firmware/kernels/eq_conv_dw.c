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
#include <string.h>

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

/* bit 5 of k + 2 * (s1 + s2 + s3 + 2 (c1 + c2 + c3)) per lane, k[1..5] read (k <= 40): the
 * three first full adders of the 9-input tree done by the caller */
EQ_DW_FI uint32_t eq_dw_over3(uint32_t s1, uint32_t s2, uint32_t s3, uint32_t c1, uint32_t c2, uint32_t c3,
                              const uint32_t *k)
{
    uint32_t c4, s5, c5, d0, d1, d2, d3, c;
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

/* bit 5 of k + 2 * popcount(x[0..8]) per lane */
EQ_DW_FI uint32_t eq_dw_over(const uint32_t *x, const uint32_t *k)
{
    uint32_t s1, s2, s3, c1, c2, c3;
    EQ_DW_FA(x[0], x[1], x[2], s1, c1);
    EQ_DW_FA(x[3], x[4], x[5], s2, c2);
    EQ_DW_FA(x[6], x[7], x[8], s3, c3);
    return eq_dw_over3(s1, s2, s3, c1, c2, c3, k);
}

/* k += v on every lane (6 bit planes) */
EQ_DW_FI void eq_dw_inc(uint32_t *k, uint32_t v)
{
    uint32_t j;
    for (j = 0; j < 6u; ++j) {
        const uint32_t cy = k[j] & v;
        k[j] ^= v;
        v = cy;
    }
}

/* lanes 0 .. nb-1 = bit 0 of w[0], w[stride], ..., w[(nb - 1) * stride] */
EQ_DW_FI uint32_t eq_dw_gather(const uint32_t *w, uint32_t stride, uint32_t nb)
{
    const uint32_t *q = w + (size_t)nb * stride;
    uint32_t acc = 0, b = nb;
    for (; b >= 4u; b -= 4u) { /* the highest lanes first, shifted up as lower ones come in */
        q -= 4u * stride;
        acc = (acc << 4) | ((q[3u * stride] & 1u) << 3) | ((q[2u * stride] & 1u) << 2)
              | ((q[stride] & 1u) << 1) | (q[0] & 1u);
    }
    for (; b; --b) {
        q -= stride;
        acc = (acc << 1) | (q[0] & 1u);
    }
    return acc;
}

/* weights and folded thresholds of channel word wi; tap (ky, kx) sits at t = 3 ky + kx (taps
 * outside the kh x kw kernel: sg = nz = 0; B1: nz all ones inside it) */
static void eq_dw_prep(const eq_conv_job_t *job, uint32_t wi, int tern, eq_dw_word_t *p)
{
    const uint32_t c = job->s->in_c, n0 = 32u * wi, nb = c - n0 < 32u ? c - n0 : 32u;
    const uint32_t kh = job->s->kh, kw = job->s->kw, taps = kh * kw;
    const uint32_t rowsz = tern ? 2u * taps : taps, fmax = 2u * taps;
    const uint32_t *wd = (const uint32_t *)job->w->data + (size_t)n0 * rowsz; /* one word a tap (C/g = 1) */
    const int32_t *thr = (const int32_t *)job->thr + n0;
    const uint8_t *flip = (const uint8_t *)job->aux + n0;
    uint32_t b, t, ky, kx, zc[6] = {0, 0, 0, 0, 0, 0}, k0 = 0, k1 = 0, k2 = 0, k3 = 0, k4 = 0, g = 0;
    for (t = 0; t < EQ_DW_MAXT; ++t) p->sg[t] = p->nz[t] = 0;
    for (ky = 0; ky < kh; ++ky) {
        for (kx = 0; kx < kw; ++kx) {
            const uint32_t *w = wd + ky * kw + kx;
            p->sg[3u * ky + kx] = eq_dw_gather(w, rowsz, nb);
            p->nz[3u * ky + kx] = tern ? eq_dw_gather(w + taps, rowsz, nb) : 0xFFFFFFFFu;
            if (tern) eq_dw_inc(zc, p->nz[3u * ky + kx]); /* per-lane count of nonzero taps */
        }
    }
    for (b = 0; b < nb; ++b) {
        const uint32_t z = tern ? ((zc[0] >> b) & 1u) | (((zc[1] >> b) & 1u) << 1) | (((zc[2] >> b) & 1u) << 2)
                                      | (((zc[3] >> b) & 1u) << 3)
                                : taps;
        int32_t th = thr[b], l;
        int inv = flip[b] != 0;
        uint32_t k;
        if (th > 64) th = 64; /* z <= 9: the decisions below keep their outcome */
        if (th < -64) th = -64;
        l = (int32_t)z - th - (inv ? 1 : 0);
        if (l < 0) {
            l = (int32_t)fmax;
            inv = !inv;
        } else if (l > (int32_t)fmax) {
            l = (int32_t)fmax;
        }
        k = 31u - (uint32_t)l;
        k0 |= (k & 1u) << b;
        k1 |= ((k >> 1) & 1u) << b;
        k2 |= ((k >> 2) & 1u) << b;
        k3 |= ((k >> 3) & 1u) << b;
        k4 |= ((k >> 4) & 1u) << b;
        g |= (uint32_t)!inv << b;
    }
    p->k0[0] = k0;
    p->k0[1] = k1;
    p->k0[2] = k2;
    p->k0[3] = k3;
    p->k0[4] = k4;
    p->k0[5] = 0;
    p->g = g;
    p->lanes = nb == 32u ? 0xFFFFFFFFu : (1u << nb) - 1u;
}

EQ_DW_FI uint32_t eq_dw_x(uint32_t a, const eq_dw_word_t *p, uint32_t t, int tern)
{
    return tern ? (a ^ p->sg[t]) & p->nz[t] : a ^ p->sg[t];
}

/* the whole layer for channel word wi (in and out point at the word: pixel stride cw words) */
EQ_DW_FI void eq_dw_b1_word(const eq_conv_shape_t *s, const uint32_t *in, uint32_t *out, uint32_t cw,
                            const eq_dw_word_t *p, int tern)
{
    const uint32_t sw = eq_shape_stride_w(s), pw = eq_shape_pad_w(s), kh = s->kh, kw = s->kw;
    const uint32_t g = p->g, lanes = p->lanes, rs = (uint32_t)s->in_w * cw;
    const int full3 = kh == 3u && kw == 3u;
    uint32_t x[EQ_DW_MAXT], krow[6], k[6];
    int32_t off[EQ_DW_MAXT];
    uint32_t oy, ox, t, lo, hi, j;
    uint32_t kk[EQ_DW_MAXT + 1u][6]; /* B1: kk[m] = k0 + m (m taps outside the input) */
    for (t = 0; t < EQ_DW_MAXT; ++t) off[t] = (int32_t)((t / 3u) * rs + (t % 3u) * cw);
    if (!tern) {
        for (j = 0; j < 6u; ++j) kk[0][j] = p->k0[j];
        for (t = 1; t <= EQ_DW_MAXT; ++t) {
            for (j = 0; j < 6u; ++j) kk[t][j] = kk[t - 1u][j];
            eq_dw_inc(kk[t], 0xFFFFFFFFu);
        }
    }
    /* output columns whose taps are all inside the input horizontally */
    lo = (pw + sw - 1u) / sw;
    hi = (uint32_t)s->in_w + pw >= kw ? ((uint32_t)s->in_w + pw - kw) / sw + 1u : 0u;
    if (hi > s->out_w) hi = s->out_w;
    if (lo > hi) lo = hi;
    for (oy = 0; oy < s->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
        const uint32_t ky0 = iy0 < 0 ? (uint32_t)-iy0 : 0u;
        uint32_t ky1 = (int32_t)s->in_h - iy0 <= 0 ? 0u : (uint32_t)((int32_t)s->in_h - iy0);
        uint32_t vrow = 0, nvr = 0, ky, kx;
        uint32_t *o = out + (size_t)oy * s->out_w * cw;
        if (ky1 > kh) ky1 = kh;
        for (j = 0; j < 6u; ++j) krow[j] = p->k0[j];
        for (ky = 0; ky < kh; ++ky) {
            if (ky >= ky0 && ky < ky1) {
                vrow |= 7u << (3u * ky);
                ++nvr;
            } else if (tern) {
                for (kx = 0; kx < kw; ++kx) eq_dw_inc(krow, p->nz[3u * ky + kx]);
            }
        }
        for (ox = 0; ox < s->out_w; ++ox) {
            const int32_t ix0 = (int32_t)(ox * sw) - (int32_t)pw;
            const int32_t base = iy0 * (int32_t)rs + ix0 * (int32_t)cw; /* word of tap (0, 0) */
            uint32_t v;
            if (full3 && vrow == 0x1FFu && ox >= lo && ox < hi) { /* every tap inside */
                const uint32_t *q = in + base;
                const uint32_t *q1 = q + rs, *q2 = q1 + rs;
                uint32_t s1, s2, s3, c1, c2, c3, x0, x1, x2;
                x0 = eq_dw_x(q[0], p, 0u, tern);
                x1 = eq_dw_x(q[cw], p, 1u, tern);
                x2 = eq_dw_x(q[2u * cw], p, 2u, tern);
                EQ_DW_FA(x0, x1, x2, s1, c1);
                x0 = eq_dw_x(q1[0], p, 3u, tern);
                x1 = eq_dw_x(q1[cw], p, 4u, tern);
                x2 = eq_dw_x(q1[2u * cw], p, 5u, tern);
                EQ_DW_FA(x0, x1, x2, s2, c2);
                x0 = eq_dw_x(q2[0], p, 6u, tern);
                x1 = eq_dw_x(q2[cw], p, 7u, tern);
                x2 = eq_dw_x(q2[2u * cw], p, 8u, tern);
                EQ_DW_FA(x0, x1, x2, s3, c3);
                v = eq_dw_over3(s1, s2, s3, c1, c2, c3, p->k0);
            } else { /* border: taps outside the input give x = 0 and add their nz into k */
                uint32_t vm = vrow, nvc = 0;
                const uint32_t *kp;
                for (kx = 0; kx < 3u; ++kx) {
                    const int32_t ix = ix0 + (int32_t)kx;
                    if (kx >= kw || ix < 0 || ix >= (int32_t)s->in_w)
                        vm &= ~(0x49u << kx); /* column kx */
                    else
                        ++nvc;
                }
                if (!tern) { /* B1: k0 + the number of taps outside */
                    kp = kk[kh * kw - nvr * nvc];
                } else {
                    for (j = 0; j < 6u; ++j) k[j] = krow[j];
                    for (t = 0; t < EQ_DW_MAXT; ++t) /* rows outside: in krow already */
                        if ((vrow & ~vm) & (1u << t)) eq_dw_inc(k, p->nz[t]);
                    kp = k;
                }
#define EQ_DW_XT(t) x[t] = (vm & (1u << (t))) ? eq_dw_x(in[base + off[t]], p, (t), tern) : 0u
                EQ_DW_XT(0); EQ_DW_XT(1); EQ_DW_XT(2); EQ_DW_XT(3); EQ_DW_XT(4);
                EQ_DW_XT(5); EQ_DW_XT(6); EQ_DW_XT(7); EQ_DW_XT(8);
#undef EQ_DW_XT
                v = eq_dw_over(x, kp);
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

/* ---- U8 codes 0..3 (2-bit activations), B1 / TERN weights, MULTI (1 or 3 thresholds) or SIGN --
 * The codes of a word of 32 channels become two bit planes (a = b0 + 2 b1). Padding is code 0,
 * so no border classes: with ng_t the lanes whose tap t weight is -1 and nz_t the nonzero ones,
 * y_bt = (b_bt ^ ng_t) & nz_t is bit b of w * a for w = +1 and of 3 - a for w = -1, so
 *     acc = F - Q,   F = sum_t y_0t + 2 y_1t (<= 27),   Q = 3 * #(taps with w = -1).
 * Two 9-input adder trees give F in five bit planes; each threshold is a compare F >= T
 * (T = thr + Q, + 1 and inverted for flipped channels, clamped to [1, 28] with "always" as an
 * inverted "never"), the carry out of F + (32 - T) with 32 - T laid out once per channel word.
 * MULTI codes (the count of compares that hold) are spread back to bytes four lanes at a time.
 * The planes of the kernel rows in use sit in a ring of 3 zero-padded rows in the layer's own
 * accumulator row (job->scratch), each input row transposed once per channel word. */
typedef struct {
    uint32_t ng[EQ_DW_MAXT], nz[EQ_DW_MAXT]; /* tap t = 3 ky + kx: lanes with w = -1 / w != 0 */
    uint32_t kt[3][5];                       /* per threshold: 32 - T, bit planes */
    uint32_t inv[3];                         /* lanes whose compare is inverted */
    uint32_t lanes;
} eq_dw2_word_t;

/* four bit planes of the count of set bits of x0 .. x8 */
EQ_DW_FI void eq_dw_cnt9(uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3, uint32_t x4, uint32_t x5,
                         uint32_t x6, uint32_t x7, uint32_t x8, uint32_t *d)
{
    uint32_t s1, s2, s3, c1, c2, c3, c4, s5, c5, c;
    EQ_DW_FA(x0, x1, x2, s1, c1);
    EQ_DW_FA(x3, x4, x5, s2, c2);
    EQ_DW_FA(x6, x7, x8, s3, c3);
    EQ_DW_FA(s1, s2, s3, d[0], c4);
    EQ_DW_FA(c1, c2, c3, s5, c5);
    d[1] = s5 ^ c4;
    c = s5 & c4;
    d[2] = c5 ^ c;
    d[3] = c5 & c;
}

/* codes a[0 .. nb) (nb <= 32) -> bit 0 / bit 1 of each as lanes of *p0 / *p1; returns the OR of
 * the codes (a check that they are 0..3) */
uint32_t eq_conv_dw_planes_u2(const uint8_t *a, uint32_t nb, uint32_t *p0, uint32_t *p1)
{
    uint32_t q = 0, o = 0, w0 = 0, w1 = 0;
    for (; q + 4u <= nb; q += 4u) { /* four codes a step: bit b of each byte to a nibble */
        uint32_t x;
        memcpy(&x, a + q, 4);
        o |= x;
        w0 |= (((x & 0x01010101u) * 0x10204080u) >> 28) << q;
        w1 |= ((((x >> 1) & 0x01010101u) * 0x10204080u) >> 28) << q;
    }
    for (; q < nb; ++q) {
        o |= a[q];
        w0 |= (uint32_t)(a[q] & 1u) << q;
        w1 |= (uint32_t)((a[q] >> 1) & 1u) << q;
    }
    *p0 = w0;
    *p1 = w1;
    return o;
}

static void eq_dw2_prep(const eq_conv_job_t *job, uint32_t wi, uint32_t n_thr, eq_dw2_word_t *p)
{
    const uint32_t c = job->s->in_c, n0 = 32u * wi, nb = c - n0 < 32u ? c - n0 : 32u;
    const uint32_t kh = job->s->kh, kw = job->s->kw, taps = kh * kw;
    const int tern = job->w->enc == EQ_ENC_TERN;
    const uint32_t rowsz = tern ? 2u * taps : taps;
    const uint32_t *wd = (const uint32_t *)job->w->data + (size_t)n0 * rowsz;
    const int32_t *thr = (const int32_t *)job->thr + (size_t)n0 * n_thr;
    const uint8_t *flip = (const uint8_t *)job->aux + n0;
    uint32_t b, t, i, j, ky, kx, zc[6] = {0, 0, 0, 0, 0, 0};
    for (t = 0; t < EQ_DW_MAXT; ++t) p->ng[t] = p->nz[t] = 0;
    for (ky = 0; ky < kh; ++ky) {
        for (kx = 0; kx < kw; ++kx) {
            const uint32_t *w = wd + ky * kw + kx;
            const uint32_t nz = tern ? eq_dw_gather(w + taps, rowsz, nb) : 0xFFFFFFFFu;
            p->nz[3u * ky + kx] = nz;
            p->ng[3u * ky + kx] = ~eq_dw_gather(w, rowsz, nb) & nz;
            eq_dw_inc(zc, p->ng[3u * ky + kx]); /* per-lane count of -1 taps */
        }
    }
    for (i = 0; i < 3u; ++i) {
        p->inv[i] = 0;
        for (j = 0; j < 5u; ++j) p->kt[i][j] = 0;
    }
    for (b = 0; b < nb; ++b) {
        const int32_t q = 3 * (int32_t)(((zc[0] >> b) & 1u) | (((zc[1] >> b) & 1u) << 1)
                                        | (((zc[2] >> b) & 1u) << 2) | (((zc[3] >> b) & 1u) << 3));
        for (i = 0; i < n_thr; ++i) {
            int32_t th = thr[b * n_thr + i], tt;
            uint32_t inv = flip[b] != 0, k;
            if (th > 64) th = 64; /* F <= 27 and Q <= 27: the outcome is kept */
            if (th < -64) th = -64;
            tt = th + q + (int32_t)inv;
            if (tt <= 0) { /* always: an inverted "never" */
                tt = 28;
                inv ^= 1u;
            } else if (tt > 28) {
                tt = 28;
            }
            k = 32u - (uint32_t)tt;
            for (j = 0; j < 5u; ++j) p->kt[i][j] |= ((k >> j) & 1u) << b;
            p->inv[i] |= inv << b;
        }
    }
    p->lanes = nb == 32u ? 0xFFFFFFFFu : (1u << nb) - 1u;
}

/* lanes where F >= T (carry out of F + kt), XOR the inversion */
EQ_DW_FI uint32_t eq_dw2_ge(const uint32_t *f, const uint32_t *kt, uint32_t inv)
{
    uint32_t c = f[0] & kt[0];
    c = (f[1] & kt[1]) | (c & (f[1] | kt[1]));
    c = (f[2] & kt[2]) | (c & (f[2] | kt[2]));
    c = (f[3] & kt[3]) | (c & (f[3] | kt[3]));
    c = (f[4] & kt[4]) | (c & (f[4] | kt[4]));
    return c ^ inv;
}

/* bit planes (b0, b1) of input row iy (zero outside the input) into ring row r: entry j is input
 * column j - pw; returns the OR of the codes */
static uint32_t eq_dw2_row(const eq_conv_job_t *job, uint32_t wi, int32_t iy, uint32_t pw, uint32_t wr,
                           uint32_t *r)
{
    const eq_conv_shape_t *s = job->s;
    const uint32_t c = s->in_c, n0 = 32u * wi, nb = c - n0 < 32u ? c - n0 : 32u;
    uint32_t j, o = 0;
    for (j = 0; j < 2u * wr; ++j) r[j] = 0;
    if (iy < 0 || iy >= (int32_t)s->in_h) return 0;
    for (j = 0; j < s->in_w; ++j) {
        const uint8_t *a = (const uint8_t *)job->in + ((size_t)(uint32_t)iy * s->in_w + j) * c + n0;
        o |= eq_conv_dw_planes_u2(a, nb, r + 2u * (j + pw), r + 2u * (j + pw) + 1u);
    }
    return o;
}

EQ_DW_FI uint32_t eq_dw2_spread(uint32_t nib)
{
    return (nib * 0x00204081u) & 0x01010101u;
}

/* one channel word of the whole layer; 0: a code above 3 (nothing final written) */
EQ_DW_NOINLINE int eq_dw2_word(const eq_conv_job_t *job, uint32_t wi, uint32_t n_thr, uint32_t wr,
                               uint32_t *ring, const eq_dw2_word_t *p, int tern)
{
    const eq_conv_shape_t *s = job->s;
    const uint32_t sw = eq_shape_stride_w(s), pw = eq_shape_pad_w(s), c = s->in_c, cw = EQ_WORDS(c);
    const uint32_t n0 = 32u * wi, nb = c - n0 < 32u ? c - n0 : 32u;
    int32_t have[3] = {INT32_MIN, INT32_MIN, INT32_MIN}; /* input row held by each ring row */
    uint32_t oy, ox, ky, orv = 0;
    for (oy = 0; oy < s->out_h; ++oy) {
        const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
        const uint32_t *rp[3];
        for (ky = 0; ky < 3u; ++ky) {
            const int32_t iy = iy0 + (int32_t)(ky < s->kh ? ky : 0u); /* rows past kh: nz = 0 */
            const uint32_t slot = (uint32_t)((iy % 3 + 3) % 3);
            if (have[slot] != iy) {
                orv |= eq_dw2_row(job, wi, iy, pw, wr, ring + slot * 2u * wr);
                have[slot] = iy;
            }
            rp[ky] = ring + slot * 2u * wr;
        }
        if (orv & 0xFCFCFCFCu) return 0;
        for (ox = 0; ox < s->out_w; ++ox) {
            const uint32_t e = 2u * ox * sw; /* ring entry of tap (., 0) */
            uint32_t d[4], q[4], f[5], c1, b1, b2, b3, lo, hi;
#define EQ_DW2_Y(r, kx, t, pl) (tern ? (rp[r][e + 2u * (kx) + (pl)] ^ p->ng[t]) & p->nz[t] \
                                     : rp[r][e + 2u * (kx) + (pl)] ^ p->ng[t])
            eq_dw_cnt9(EQ_DW2_Y(0, 0, 0, 0), EQ_DW2_Y(0, 1, 1, 0), EQ_DW2_Y(0, 2, 2, 0), EQ_DW2_Y(1, 0, 3, 0),
                       EQ_DW2_Y(1, 1, 4, 0), EQ_DW2_Y(1, 2, 5, 0), EQ_DW2_Y(2, 0, 6, 0), EQ_DW2_Y(2, 1, 7, 0),
                       EQ_DW2_Y(2, 2, 8, 0), d);
            eq_dw_cnt9(EQ_DW2_Y(0, 0, 0, 1), EQ_DW2_Y(0, 1, 1, 1), EQ_DW2_Y(0, 2, 2, 1), EQ_DW2_Y(1, 0, 3, 1),
                       EQ_DW2_Y(1, 1, 4, 1), EQ_DW2_Y(1, 2, 5, 1), EQ_DW2_Y(2, 0, 6, 1), EQ_DW2_Y(2, 1, 7, 1),
                       EQ_DW2_Y(2, 2, 8, 1), q);
#undef EQ_DW2_Y
            f[0] = d[0]; /* F = d + 2 q */
            f[1] = d[1] ^ q[0];
            c1 = d[1] & q[0];
            f[2] = d[2] ^ q[1] ^ c1;
            c1 = (d[2] & q[1]) | (c1 & (d[2] ^ q[1]));
            f[3] = d[3] ^ q[2] ^ c1;
            c1 = (d[3] & q[2]) | (c1 & (d[3] ^ q[2]));
            f[4] = q[3] ^ c1; /* F <= 27: no carry out */
            b1 = eq_dw2_ge(f, p->kt[0], p->inv[0]);
            if (job->out_stage == EQ_OUT_SIGN) {
                ((uint32_t *)job->out)[((size_t)oy * s->out_w + ox) * cw + wi] = b1 & p->lanes;
                continue;
            }
            if (n_thr == 3u) {
                b2 = eq_dw2_ge(f, p->kt[1], p->inv[1]);
                b3 = eq_dw2_ge(f, p->kt[2], p->inv[2]);
                lo = b1 ^ b2 ^ b3;
                hi = (b1 & b2) | (b3 & (b1 ^ b2));
            } else {
                lo = b1;
                hi = 0;
            }
            {
                uint8_t *o = (uint8_t *)job->out + ((size_t)oy * s->out_w + ox) * c + n0;
                uint32_t j;
                for (j = 0; j + 4u <= nb; j += 4u) {
                    const uint32_t v = eq_dw2_spread((lo >> j) & 15u) | (eq_dw2_spread((hi >> j) & 15u) << 1);
                    memcpy(o + j, &v, 4);
                }
                for (; j < nb; ++j) o[j] = (uint8_t)(((lo >> j) & 1u) | (((hi >> j) & 1u) << 1));
            }
        }
    }
    return 1;
}

/* ring row entries (2 words each): input columns -pw .. the last tap's */
static uint32_t eq_dw2_ring_row(const eq_conv_shape_t *s)
{
    const uint32_t pw = eq_shape_pad_w(s);
    const uint32_t re = (uint32_t)(s->out_w - 1u) * eq_shape_stride_w(s) + 3u; /* past the last tap */
    return re > (uint32_t)s->in_w + pw ? re : (uint32_t)s->in_w + pw;
}

int eq_conv_dw_applies(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc, uint8_t w_enc,
                       uint8_t out_stage)
{
    if (s == NULL || groups != s->in_c || s->out_c != s->in_c || !s->stride || !eq_shape_stride_w(s)
        || !s->kh || !s->kw || s->kh > 3u || s->kw > 3u || (w_enc != EQ_ENC_B1 && w_enc != EQ_ENC_TERN))
        return 0;
    if (in_enc == EQ_ENC_B1) return out_stage == EQ_OUT_SIGN;
    return in_enc == EQ_ENC_U8 && (out_stage == EQ_OUT_SIGN || out_stage == EQ_OUT_MULTI);
}

static eq_status_t eq_conv_dw_u8(const eq_conv_job_t *job)
{
    const eq_conv_shape_t *s = job->s;
    const uint32_t n_thr = job->out_stage == EQ_OUT_SIGN ? 1u : (1u << job->out_bits) - 1u;
    const uint32_t wr = eq_dw2_ring_row(s), need = 24u * wr, cw = EQ_WORDS(s->in_c);
    eq_dw2_word_t p;
    eq_status_t st;
    uint32_t wi;
    /* the ring must fit the layer's own accumulator row (the arena does not grow) */
    if ((job->out_stage == EQ_OUT_MULTI && n_thr != 1u && n_thr != 3u)
        || (uint64_t)need > (uint64_t)s->out_w * s->out_c * 4u)
        return EQ_ERR_UNSUPPORTED;
    st = eq_conv_fast_check(job, need);
    if (st != EQ_OK) return st;
    for (wi = 0; wi < cw; ++wi) {
        int ok;
        eq_dw2_prep(job, wi, n_thr, &p);
        /* the nz masks also drop taps past a kernel smaller than 3x3 (B1: nz all ones inside) */
        ok = job->w->enc == EQ_ENC_TERN || s->kh != 3u || s->kw != 3u
                 ? eq_dw2_word(job, wi, n_thr, wr, (uint32_t *)job->scratch, &p, 1)
                 : eq_dw2_word(job, wi, n_thr, wr, (uint32_t *)job->scratch, &p, 0);
        if (!ok) return EQ_ERR_UNSUPPORTED; /* a code above 3: the row loop redoes the layer */
    }
    return EQ_OK;
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
    if (job->in_enc == EQ_ENC_U8) return eq_conv_dw_u8(job);
    st = eq_conv_fast_check(job, 0u);
    if (st != EQ_OK) return st;
    s = job->s;
    cw = EQ_WORDS(s->in_c);
    for (wi = 0; wi < cw; ++wi) {
        const int tern = job->w->enc == EQ_ENC_TERN;
        eq_dw_prep(job, wi, tern, &p);
        if (tern)
            eq_dw_b1_tern(s, (const uint32_t *)job->in + wi, (uint32_t *)job->out + wi, cw, &p);
        else
            eq_dw_b1_b1(s, (const uint32_t *)job->in + wi, (uint32_t *)job->out + wi, cw, &p);
    }
    return EQ_OK;
}
