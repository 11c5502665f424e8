/* eq_conv_wino_i8: integer Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 CONV layers with I8
 * weights on U8 activations, a whole layer at a time (a fast path of eq_conv_fast.h).
 *
 * Exact integer form. With the weight transform scaled by 2 in each dimension,
 *   Gs = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]],  B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]],
 *   A^T = [[1,1,1,0],[0,1,-1,-1]],
 * every transformed weight U = Gs g Gs^T and input V = B^T d B is an integer and the 2x2 output
 * tile A^T (sum_c U (.) V) A equals 4x the direct accumulator exactly; it is shifted back by 2.
 * Ranges: |U| <= 9 * 128 = 1152, |V| <= 2 * 255 = 510 (both int16, paired for SMLAD), each
 * elementwise product sum |M| <= C * 1152 * 510 and the result |4 acc| <= 4 * 9 * 128 * 255 * C;
 * both fit int32 for C <= EQ_WINO_MAX_C (checked by eq_conv_wino_i8_scratch, which turns the path
 * off above it). The transforms' intermediate sums are taken modulo 2^32 (uint32), so they are
 * exact whenever the final value fits, which it does. The result is the direct accumulator bit
 * for bit, and the output stage is the runtime's own (eq_threshold_sign_b1, ...).
 *
 * Work: the weights are transformed at run time into scratch (16 int16 per 3x3 filter, layout
 * [pos][n/2][c/2][n%2] words of two channels), then per row of 2x2 tiles the input tiles are
 * transformed ([pos][t/2][c/2][t%2] words), each (2 channels x 2 tiles) block takes 16 dot
 * products of length C (SMLAD on int16 pairs on DSP cores, portable C elsewhere), and the output
 * transform writes two accumulator rows that the output stage turns into two output rows.
 */
#include <stddef.h>

#include "eq_conv_fast.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define EQ_WINO_DSP 1
#endif

#define EQ_WINO_MAX_C 1827u      /* 4 * 9 * 128 * 255 * C < 2^31 */
#define EQ_WINO_MAX_SCRATCH (1u << 30)

static uint32_t eq_wino_r8(uint32_t n)
{
    return (n + 7u) & ~7u;
}

/* the layout of the scratch region: byte offsets of its parts, 8-byte aligned */
typedef struct {
    uint32_t np, tp, cp2;       /* channel pairs, tile pairs a row, input-channel pairs */
    uint32_t wp;                /* pixels of a padded input row: 4 * tp + 2 */
    uint32_t u, v, rows, acc, total;
} eq_wino_plan_t;

static int eq_wino_plan(const eq_conv_shape_t *s, eq_wino_plan_t *p)
{
    uint64_t u, v, patch, acc, tot;
    p->np = ((uint32_t)s->out_c + 1u) / 2u;
    p->tp = (((uint32_t)s->out_w + 1u) / 2u + 1u) / 2u;
    p->cp2 = ((uint32_t)s->in_c + 1u) / 2u;
    u = 16ull * p->np * p->cp2 * 2u * 4u;       /* words of 2 int16 */
    v = 16ull * p->tp * p->cp2 * 2u * 4u;
    p->wp = 4u * p->tp + 2u;
    patch = 4ull * p->wp * p->cp2 * 4u;         /* 4 input rows of channel-pair words */
    acc = 2ull * s->out_w * s->out_c * 4u;      /* two rows of int32 accumulators */
    tot = u + eq_wino_r8((uint32_t)v) + eq_wino_r8((uint32_t)patch) + acc;
    if (tot > EQ_WINO_MAX_SCRATCH) {
        return 0;
    }
    p->u = 0u;
    p->v = (uint32_t)u;
    p->rows = p->v + eq_wino_r8((uint32_t)v);
    p->acc = p->rows + eq_wino_r8((uint32_t)patch);
    p->total = p->acc + (uint32_t)acc;
    return 1;
}

/* Shape rules (measured under -icount, docs/boards.md "Kernel performance"): the transforms cost
 * per input channel and tile, per output channel and tile and per filter, so Winograd needs some
 * of each to take fewer instructions than the direct row loop. The scratch is reserved under the
 * broad rule on every core (so the arena a blob needs is the same everywhere, and the packer's
 * edgeq.format.pack.conv_fast_scratch mirrors it); DSP cores, whose direct loop runs 2 MACs per
 * SMLAD, run Winograd only under the narrower one. */
static int eq_wino_fits(const eq_conv_shape_t *s)
{
    return s->in_c >= 4u && s->out_c >= 4u && s->out_h >= 4u && s->out_w >= 4u;
}

static int eq_wino_worth(const eq_conv_shape_t *s)
{
#ifdef EQ_WINO_DSP
    return s->in_c >= 8u && s->out_c >= 8u && s->out_h >= 6u && s->out_w >= 6u;
#else
    return eq_wino_fits(s);
#endif
}

uint32_t eq_conv_wino_i8_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                                 uint8_t out_stage)
{
    eq_wino_plan_t p;
    if (s == NULL || in_enc != EQ_ENC_U8 || w_enc != EQ_ENC_I8 || s->kh != 3u || s->kw != 3u
        || s->stride != 1u || s->pad != 1u || s->out_h != s->in_h || s->out_w != s->in_w
        || s->in_c == 0u || s->in_c > EQ_WINO_MAX_C || s->out_c == 0u) {
        return 0u;
    }
    if (out_stage != EQ_OUT_SIGN && out_stage != EQ_OUT_MULTI && out_stage != EQ_OUT_AFFINE) {
        return 0u;
    }
    if (!eq_wino_fits(s) || !eq_wino_plan(s, &p)) {
        return 0u;
    }
    return p.total;
}

/* ---- weight transform: U = Gs g Gs^T for every (n, c), channel pairs in int16 lanes -------- */
/* two int16 lanes a word (channels 2q, 2q + 1): lane-wise add / subtract modulo 2^16 */
#ifdef EQ_WINO_DSP
#define EQ_ADD16(a, b) ((uint32_t)__sadd16((int32_t)(a), (int32_t)(b)))
#define EQ_SUB16(a, b) ((uint32_t)__ssub16((int32_t)(a), (int32_t)(b)))
#else
#define EQ_ADD16(a, b) ((((a) & 0x7FFF7FFFu) + ((b) & 0x7FFF7FFFu)) ^ (((a) ^ (b)) & 0x80008000u))
#define EQ_SUB16(a, b) ((((a) | 0x80008000u) - ((b) & 0x7FFF7FFFu)) ^ (((a) ^ ~(b)) & 0x80008000u))
#endif

/* weights of channels c, c + 1 (c + 1 < C when two) at one tap as a lane pair */
static inline uint32_t eq_wino_wpair(const int8_t *w, int two)
{
    return (uint32_t)(uint16_t)(int16_t)w[0] | (two ? (uint32_t)(uint16_t)(int16_t)w[1] << 16 : 0u);
}

static void eq_wino_weights(const eq_conv_shape_t *s, const int8_t *w, const eq_wino_plan_t *p,
                            uint32_t *u)
{
    const uint32_t c_n = s->in_c, k = 9u * c_n, us = p->np * p->cp2 * 2u; /* words a pos */
    uint32_t n, q, i;
    for (i = 0; i < 16u * us; ++i) {
        u[i] = 0; /* the pad output channel */
    }
    for (n = 0; n < s->out_c; ++n) {
        const int8_t *wn = w + (uint32_t)n * k;
        uint32_t *o = u + (n >> 1) * p->cp2 * 2u + (n & 1u);
        for (q = 0; q < p->cp2; ++q, o += 2) {
            const int two = 2u * q + 1u < c_n;
            uint32_t r[3][4];
            for (i = 0; i < 3u; ++i) { /* rows: Gs g along kx */
                const int8_t *g = wn + 3u * i * c_n + 2u * q;
                const uint32_t g0 = eq_wino_wpair(g, two), g1 = eq_wino_wpair(g + c_n, two);
                const uint32_t g2 = eq_wino_wpair(g + 2u * c_n, two), t = EQ_ADD16(g0, g2);
                r[i][0] = EQ_ADD16(g0, g0);
                r[i][1] = EQ_ADD16(t, g1);
                r[i][2] = EQ_SUB16(t, g1);
                r[i][3] = EQ_ADD16(g2, g2);
            }
            for (i = 0; i < 4u; ++i) { /* columns: Gs along ky; pos = row * 4 + col */
                const uint32_t t = EQ_ADD16(r[0][i], r[2][i]);
                o[(0u + i) * us] = EQ_ADD16(r[0][i], r[0][i]);
                o[(4u + i) * us] = EQ_ADD16(t, r[1][i]);
                o[(8u + i) * us] = EQ_SUB16(t, r[1][i]);
                o[(12u + i) * us] = EQ_ADD16(r[2][i], r[2][i]);
            }
        }
    }
}

/* ---- input transform of one row of tiles: V = B^T d B ----------------------------------------- */
/* the tile row's 4 input rows (2 ty - 1 .. 2 ty + 2), columns -1 .. 4 tp, as channel-pair words
 * (zero outside the input and in the pad channel) */
static void eq_wino_rows(const eq_conv_shape_t *s, const uint8_t *in, uint32_t ty,
                         const eq_wino_plan_t *p, uint32_t *rows)
{
    const uint32_t c_n = s->in_c, cp2 = p->cp2;
    uint32_t r, x, q;
    for (r = 0; r < 4u; ++r) {
        const int32_t iy = 2 * (int32_t)ty - 1 + (int32_t)r;
        uint32_t *o = rows + r * p->wp * cp2;
        for (x = 0; x < p->wp; ++x, o += cp2) {
            const int32_t ix = (int32_t)x - 1;
            if (iy < 0 || iy >= (int32_t)s->in_h || ix < 0 || ix >= (int32_t)s->in_w) {
                for (q = 0; q < cp2; ++q) o[q] = 0;
            } else {
                const uint8_t *a = in + ((uint32_t)iy * s->in_w + (uint32_t)ix) * c_n;
                for (q = 0; q < c_n / 2u; ++q) o[q] = (uint32_t)a[2u * q] | ((uint32_t)a[2u * q + 1u] << 16);
                if (c_n & 1u) o[q] = a[2u * q];
            }
        }
    }
}

/* d . B along a row: the row's 4 pixels x0..x3 -> 4 values */
#define EQ_WINO_ROWB(x0, x1, x2, x3, y)                                                          \
    do {                                                                                         \
        (y)[0] = EQ_SUB16((x0), (x2));                                                           \
        (y)[1] = EQ_ADD16((x1), (x2));                                                           \
        (y)[2] = EQ_SUB16((x2), (x1));                                                           \
        (y)[3] = EQ_SUB16((x1), (x3));                                                           \
    } while (0)

static void eq_wino_inputs(const eq_wino_plan_t *p, const uint32_t *rows, uint32_t *v)
{
    const uint32_t cp2 = p->cp2, rs = p->wp * cp2, vs = p->tp * cp2 * 2u; /* words */
    uint32_t tx, q, k;
    for (tx = 0; tx < 2u * p->tp; ++tx) {
        const uint32_t *d = rows + 2u * tx * cp2;
        uint32_t *o = v + (tx >> 1) * cp2 * 2u + (tx & 1u);
        for (q = 0; q < cp2; ++q, ++d, o += 2) {
            uint32_t b0[4], b1[4], b2[4], b3[4];
            EQ_WINO_ROWB(d[0], d[cp2], d[2u * cp2], d[3u * cp2], b0);
            EQ_WINO_ROWB(d[rs], d[rs + cp2], d[rs + 2u * cp2], d[rs + 3u * cp2], b1);
            EQ_WINO_ROWB(d[2u * rs], d[2u * rs + cp2], d[2u * rs + 2u * cp2], d[2u * rs + 3u * cp2], b2);
            EQ_WINO_ROWB(d[3u * rs], d[3u * rs + cp2], d[3u * rs + 2u * cp2], d[3u * rs + 3u * cp2], b3);
            for (k = 0; k < 4u; ++k) { /* B^T along the columns; pos = row * 4 + col */
                o[(0u + k) * vs] = EQ_SUB16(b0[k], b2[k]);
                o[(4u + k) * vs] = EQ_ADD16(b1[k], b2[k]);
                o[(8u + k) * vs] = EQ_SUB16(b2[k], b1[k]);
                o[(12u + k) * vs] = EQ_SUB16(b1[k], b3[k]);
            }
        }
    }
}

/* ---- elementwise stage: m[j][pos] for the 2 x 2 (channel, tile) pairs j = 2 * ni + ti ------- */
#ifdef EQ_WINO_DSP
#define EQ_WINO_MAC(acc, a, b) (acc) = (uint32_t)__smlad((a), (b), (int32_t)(acc))
#else
static inline uint32_t eq_wino_dot2(uint32_t a, uint32_t b)
{
    return (uint32_t)((int32_t)(int16_t)(a & 0xFFFFu) * (int16_t)(b & 0xFFFFu))
           + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16));
}
#define EQ_WINO_MAC(acc, a, b) (acc) += eq_wino_dot2((a), (b))
#endif

/* u, v: 8-byte aligned; a 64-bit load is one LDRD on Cortex-M (the two channels' or tiles'
 * words of one input-channel pair), two pairs a pass */
/* one input-channel pair: uu = (channel 2 np, 2 np + 1) words, vv = (tile 2 tp, 2 tp + 1) */
#define EQ_WINO_PAIR(uu_, vv_)                                                                   \
    do {                                                                                         \
        const uint64_t uu = (uu_), vv = (vv_);                                                   \
        EQ_WINO_MAC(a00, (uint32_t)uu, (uint32_t)vv);                                            \
        EQ_WINO_MAC(a01, (uint32_t)uu, (uint32_t)(vv >> 32));                                    \
        EQ_WINO_MAC(a10, (uint32_t)(uu >> 32), (uint32_t)vv);                                    \
        EQ_WINO_MAC(a11, (uint32_t)(uu >> 32), (uint32_t)(vv >> 32));                            \
    } while (0)

static void eq_wino_block(const uint32_t *u, const uint32_t *v, uint32_t cp2, uint32_t ustride,
                          uint32_t vstride, uint32_t m[4][16])
{
    uint32_t pos, q;
    for (pos = 0; pos < 16u; ++pos) {
        const uint64_t *pu = (const uint64_t *)(const void *)(u + pos * ustride);
        const uint64_t *pv = (const uint64_t *)(const void *)(v + pos * vstride);
        uint32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
#if defined(EQ_WINO_DSP) && defined(__thumb2__) && defined(__GNUC__)
        q = cp2 >> 1; /* LDRD with post-increment: 14 instructions for 16 MACs */
        if (q != 0u) {
            uint32_t x0, x1, y0, y1;
            __asm__ volatile(
                "1:\n\t"
                "ldrd %[x0], %[x1], [%[pu]], #8\n\t"
                "ldrd %[y0], %[y1], [%[pv]], #8\n\t"
                "smlad %[a00], %[x0], %[y0], %[a00]\n\t"
                "smlad %[a01], %[x0], %[y1], %[a01]\n\t"
                "smlad %[a10], %[x1], %[y0], %[a10]\n\t"
                "smlad %[a11], %[x1], %[y1], %[a11]\n\t"
                "ldrd %[x0], %[x1], [%[pu]], #8\n\t"
                "ldrd %[y0], %[y1], [%[pv]], #8\n\t"
                "smlad %[a00], %[x0], %[y0], %[a00]\n\t"
                "smlad %[a01], %[x0], %[y1], %[a01]\n\t"
                "smlad %[a10], %[x1], %[y0], %[a10]\n\t"
                "smlad %[a11], %[x1], %[y1], %[a11]\n\t"
                "subs %[q], %[q], #1\n\t"
                "bne 1b"
                : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
                  [pu] "+r"(pu), [pv] "+r"(pv), [q] "+r"(q), [x0] "=&r"(x0), [x1] "=&r"(x1),
                  [y0] "=&r"(y0), [y1] "=&r"(y1)
                :
                : "cc", "memory");
        }
#else
        for (q = cp2 >> 1; q != 0u; --q) {
            EQ_WINO_PAIR(pu[0], pv[0]);
            EQ_WINO_PAIR(pu[1], pv[1]);
            pu += 2;
            pv += 2;
        }
#endif
        if (cp2 & 1u) {
            EQ_WINO_PAIR(pu[0], pv[0]);
        }
        m[0][pos] = a00;
        m[1][pos] = a01;
        m[2][pos] = a10;
        m[3][pos] = a11;
    }
}

/* ---- output transform: Y = A^T M A = 4 acc; y[r][c] for the tile's 2 x 2 pixels ----------- */
static void eq_wino_output(const uint32_t *m, int32_t y[2][2])
{
    uint32_t s0[4], s1[4], k;
    for (k = 0; k < 4u; ++k) {
        s0[k] = m[k] + m[4u + k] + m[8u + k];
        s1[k] = m[4u + k] - m[8u + k] - m[12u + k];
    }
    y[0][0] = (int32_t)(s0[0] + s0[1] + s0[2]) >> 2;
    y[0][1] = (int32_t)(s0[1] - s0[2] - s0[3]) >> 2;
    y[1][0] = (int32_t)(s1[0] + s1[1] + s1[2]) >> 2;
    y[1][1] = (int32_t)(s1[1] - s1[2] - s1[3]) >> 2;
}

eq_status_t eq_conv_wino_i8(const eq_conv_job_t *job)
{
    const eq_conv_shape_t *s;
    eq_wino_plan_t p;
    uint8_t *base;
    uint32_t *u, *v;
    int32_t *acc;
    uint32_t ty, np, tp, j, ustride, vstride, rs;
    eq_status_t st;
    st = eq_conv_fast_check(job, 1u);
    if (st != EQ_OK) {
        return st;
    }
    s = job->s;
    if (eq_conv_wino_i8_scratch(s, job->in_enc, job->w->enc, job->out_stage) == 0u
        || !eq_wino_worth(s) || !eq_wino_plan(s, &p)) {
        return EQ_ERR_UNSUPPORTED;
    }
    st = eq_conv_fast_check(job, p.total);
    if (st != EQ_OK) {
        return st;
    }
    base = (uint8_t *)job->scratch;
    u = (uint32_t *)(void *)(base + p.u);
    v = (uint32_t *)(void *)(base + p.v);
    acc = (int32_t *)(void *)(base + p.acc);
    ustride = p.np * p.cp2 * 2u; /* words a pos */
    vstride = p.tp * p.cp2 * 2u;
    rs = (uint32_t)s->out_w * s->out_c; /* one accumulator row */
    eq_wino_weights(s, (const int8_t *)job->w->data, &p, u);
    for (ty = 0; 2u * ty < s->out_h; ++ty) {
        const uint32_t rows = s->out_h - 2u * ty >= 2u ? 2u : 1u;
        eq_wino_rows(s, (const uint8_t *)job->in, ty, &p, (uint32_t *)(void *)(base + p.rows));
        eq_wino_inputs(&p, (const uint32_t *)(void *)(base + p.rows), v);
        for (np = 0; np < p.np; ++np) {
            for (tp = 0; tp < p.tp; ++tp) {
                uint32_t m[4][16];
                eq_wino_block(u + np * p.cp2 * 2u, v + tp * p.cp2 * 2u, p.cp2, ustride, vstride, m);
                for (j = 0; j < 4u; ++j) {
                    const uint32_t n = 2u * np + (j >> 1), tx = 2u * tp + (j & 1u);
                    int32_t y[2][2], *o = acc + 2u * tx * s->out_c + n;
                    if (n >= s->out_c || 2u * tx >= s->out_w) {
                        continue;
                    }
                    eq_wino_output(m[j], y);
                    o[0] = y[0][0];
                    if (2u * tx + 1u < s->out_w) o[s->out_c] = y[0][1];
                    if (rows == 2u) {
                        o[rs] = y[1][0];
                        if (2u * tx + 1u < s->out_w) o[rs + s->out_c] = y[1][1];
                    }
                }
            }
        }
        eq_conv_fast_stage(job, acc, 2u * ty * s->out_w, rows * s->out_w);
    }
    return EQ_OK;
}

/* ---- the I8-weight fast paths (this file and eq_conv_i8_b1.c), for the dispatcher ----------- */
uint32_t eq_conv_fast_i8_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                                 uint8_t out_stage)
{
    const uint32_t wino = eq_conv_wino_i8_scratch(s, in_enc, w_enc, out_stage);
    const uint32_t i8b1 = eq_conv_i8_b1_scratch(s, in_enc, w_enc, out_stage);
    return wino > i8b1 ? wino : i8b1;
}

eq_status_t eq_conv_fast_i8(const eq_conv_job_t *job)
{
    if (eq_conv_wino_i8_scratch(job->s, job->in_enc, job->w->enc, job->out_stage) != 0u) {
        return eq_conv_wino_i8(job); /* UNSUPPORTED where the shape rule says no */
    }
    if (eq_conv_i8_b1_scratch(job->s, job->in_enc, job->w->enc, job->out_stage) != 0u) {
        return eq_conv_i8_b1(job);
    }
    return EQ_ERR_UNSUPPORTED;
}

eq_status_t eq_conv_fast_check(const eq_conv_job_t *job, uint32_t need)
{
    if (job == NULL || job->s == NULL || job->w == NULL || job->in == NULL || job->out == NULL
        || job->w->data == NULL || job->thr == NULL || job->aux == NULL || job->scratch == NULL) {
        return EQ_ERR_ARG;
    }
    if (job->scratch_bytes < need || ((uintptr_t)job->scratch & 7u) != 0u) {
        return EQ_ERR_ARENA;
    }
    return EQ_OK;
}

void eq_conv_fast_stage(const eq_conv_job_t *job, const int32_t *acc, uint32_t pix,
                        uint32_t n_pix)
{
    const uint16_t c = job->s->out_c;
    if (job->out_stage == EQ_OUT_SIGN) {
        eq_threshold_sign_b1(acc, n_pix, c, (const int32_t *)job->thr,
                             (const uint8_t *)job->aux, (uint32_t *)job->out + pix * EQ_WORDS(c));
    } else if (job->out_stage == EQ_OUT_MULTI) {
        eq_threshold_multi_u8(acc, n_pix, c, (const int32_t *)job->thr,
                              (uint16_t)((1u << job->out_bits) - 1u), (const uint8_t *)job->aux,
                              (uint8_t *)job->out + pix * c);
    } else if (job->out_stage == EQ_OUT_REQUANT) { /* no fast path takes REQUANT yet: kept exact */
        eq_requant_u8(acc, n_pix, c, (const int32_t *)job->thr, (const int32_t *)job->aux, job->shift,
                      job->out_bits, (uint8_t *)job->out + pix * c);
    } else {
        eq_affine_i32(acc, n_pix, c, (const int32_t *)job->thr, (const int32_t *)job->aux,
                      job->shift, (int32_t *)job->out + pix * c);
    }
}
