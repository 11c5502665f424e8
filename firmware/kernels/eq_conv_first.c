/* eq_conv_first: few-channel CONV layers (first layers: 1..4 input channels) computed whole and
 * fused with their output stage (eq_conv_fast.h). Bit-exact with eq_conv2d_row plus the stage.
 *
 * Weights B1, TERN or TERN_SPARSE (rows decoded once per call with the row loop's checks); the
 * weights are repacked on every call, once per layer and inference (there is no per-model
 * cache: the scratch is the arena's shared accumulator row).
 *
 * B1 input, SIGN output: bit-sliced across the output channels. Per output
 * pixel and group of 32 output channels, tap t's mismatch word X_t has bit i set when tap t of
 * channel i counts -1 (B1: a_t != w_t; TERN: w_t != 0 and a_t != w_t). The counts d_i of 32
 * channels are added in bit planes (carry-save full adders, plain AND/XOR/ORR words), so a
 * pixel costs a few word operations per tap for all 32 channels at once. Taps outside the input
 * read a zero-padded copy of the input rows (a kh-row ring): they count like an input bit 0,
 * which adds E_i = #(out-of-bounds taps with w = +1) to d_i, a constant per border class (the
 * set of in-bounds kernel rows x columns). With V_i the in-bounds taps (TERN: nonzero ones),
 * acc_i = V_i - 2 (d_i - E_i), so
 *     acc >= thr  <=>  d <= T = floor((V - thr) / 2) + E,    acc <= thr  <=>  d >= L = ceil(...) + E.
 * The counter starts at 2^P - 1 - T (resp. 2^P - L), clamped so it stays in [0, 2^P]
 * (2^P > K, the number of taps), and the output bit is plane P of the final count, XOR 1 for
 * the >= case: one folded threshold per (border class, channel), no compare per output.
 * 3x3 kernels on one channel: each kernel row's 2-plane count comes from an 8-entry table
 * indexed by its 3-bit input pattern (the ring holds the patterns), the three are added.
 *
 * U8 input, SIGN or MULTI output: a pixel's kh*kw*C taps are gathered as bytes into nw words
 * (3x3 on three channels: each kernel row's bytes 0..7 as two word loads, the rows' bytes 8 in a
 * seventh word; 3x3 on one channel: a word per kernel row; else in tap order), zero lanes past
 * the taps. The weights become per channel byte masks (0xFF where w = +1; TERN: two masks per
 * word, (0xFF, 0xFF) / (0, 0) / (0, 0xFF) for +1 / -1 / 0), made once per call, and the sum of
 * absolute differences |m - x| (x or 255 - x) over the patch is a constant minus f times the
 * dot product: one USADA8 per word and mask on DSP cores (the byte sums of x ^ m in 16-bit
 * lanes elsewhere). For SIGN the clamped threshold and the flip are folded into the row's
 * first word so the output bit is the sign of the sum (eq_fr_u8_rows); 3x3 B1 layers on one or
 * three channels run an LDM + USADA8 loop in assembly on Thumb-2 DSP cores.
 */
#include <string.h>

#include "eq_conv_fast.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define EQ_FIRST_DSP 1
#endif

#if defined(__GNUC__)
#define EQ_FI static inline __attribute__((always_inline))
#else
#define EQ_FI static inline
#endif

#if defined(__GNUC__)
/* the hot row loops keep their own register allocation */
#define EQ_FR_NOINLINE static __attribute__((noinline))
#else
#define EQ_FR_NOINLINE static
#endif

#define EQ_FIRST_MAX_C 4u   /* input channels this path takes */
#define EQ_FIRST_MAX_K 127u /* taps kh*kw*C (bit planes P <= 7) */
#define EQ_FIRST_MAX_KH 16u /* kernel rows (row pointers on the stack) */

/* ---- geometry shared by the scratch size and the kernels ---------------------------------- */
/* in-bounds kernel range [lo, hi) of output position o */
static void eq_fr_range(uint32_t o, uint32_t k, uint32_t stride, uint32_t pad, uint32_t n,
                        uint32_t *lo, uint32_t *hi)
{
    int32_t i0 = (int32_t)(o * stride) - (int32_t)pad;
    int32_t a = i0 < 0 ? -i0 : 0, b = (int32_t)n - i0;
    if (b > (int32_t)k) b = (int32_t)k;
    if (b < a) b = a;
    *lo = (uint32_t)a;
    *hi = (uint32_t)b;
}

/* border classes along one axis: cls[o] (may be NULL) and the class ranges lo/hi (may be NULL);
 * the ranges are monotone in o, so a class is a run of equal ranges. Returns the class count. */
static uint32_t eq_fr_classes(uint32_t n_out, uint32_t k, uint32_t stride, uint32_t pad,
                              uint32_t n_in, uint8_t *cls, uint8_t *lo, uint8_t *hi)
{
    uint32_t o, cnt = 0, plo = ~0u, phi = ~0u;
    for (o = 0; o < n_out; ++o) {
        uint32_t a, b;
        eq_fr_range(o, k, stride, pad, n_in, &a, &b);
        if (a != plo || b != phi) {
            if (lo) lo[cnt] = (uint8_t)a;
            if (hi) hi[cnt] = (uint8_t)b;
            ++cnt;
            plo = a;
            phi = b;
        }
        if (cls) cls[o] = (uint8_t)(cnt - 1u);
    }
    return cnt;
}

static uint32_t eq_fr_planes(uint32_t k)
{
    uint32_t p = 4; /* at least 4: the 3x3 one-channel loop's planes */
    while ((1u << p) <= k) ++p;
    return p; /* 2^p > k */
}

static uint32_t eq_r4(uint32_t n) { return (n + 3u) & ~3u; }

/* plain loops (newlib-nano's memset / memcpy go a byte at a time) */
static void eq_fr_zero32(uint32_t *d, uint32_t n)
{
    while (n--) *d++ = 0u;
}

typedef struct {
    uint32_t k, p, groups, wn, nyc, nxc, row_words;
    uint32_t off_ring, off_w, off_tab, off_xcls, off_ycls, off_rng, off_pre, off_pat, off_sz, total;
    uint32_t fold; /* U8 MULTI: rows hold two folded thresholds more (eq_fr_u8_rows) */
} eq_fr_layout_t;

/* B1 path: 0 when it does not apply */
static int eq_fr_b1_layout(const eq_conv_shape_t *s, uint8_t w_enc, eq_fr_layout_t *L)
{
    uint64_t t;
    if (s->in_c < 1u || s->in_c > EQ_FIRST_MAX_C || s->out_c < 1u || s->out_w < 1u || s->out_h < 1u)
        return 0;
    if (w_enc != EQ_ENC_B1 && w_enc != EQ_ENC_TERN && w_enc != EQ_ENC_TERN_SPARSE) return 0;
    L->k = (uint32_t)s->kh * s->kw * s->in_c;
    if (L->k < 1u || L->k > EQ_FIRST_MAX_K || s->kh > EQ_FIRST_MAX_KH) return 0;
    L->p = eq_fr_planes(L->k);
    L->groups = EQ_WORDS(s->out_c);
    L->wn = (uint32_t)(s->out_w - 1u) * s->stride + s->kw; /* padded row width used */
    L->nyc = eq_fr_classes(s->out_h, s->kh, s->stride, s->pad, s->in_h, NULL, NULL, NULL);
    L->nxc = eq_fr_classes(s->out_w, s->kw, s->stride, s->pad, s->in_w, NULL, NULL, NULL);
    L->row_words = L->wn;
    t = 0;
    L->off_ring = (uint32_t)t;
    t += (uint64_t)s->kh * L->row_words * 4u;
    L->off_w = (uint32_t)t;
    t += (uint64_t)L->groups * L->k * 2u * 4u;
    L->off_tab = (uint32_t)t;
    t += (uint64_t)L->groups * L->nyc * L->nxc * (L->p + 1u) * 4u;
    L->off_xcls = (uint32_t)t;
    t += eq_r4(s->out_w);
    L->off_ycls = (uint32_t)t;
    t += eq_r4(s->out_h);
    L->off_rng = (uint32_t)t;
    t += eq_r4(2u * (L->nyc + L->nxc));
    L->off_pre = (uint32_t)t;
    if (L->k > 32u) t += 64u * eq_r4(((uint32_t)s->kh + 1u) * (s->kw + 1u)); /* prefix sums */
    L->off_pat = (uint32_t)t;
    t += (uint64_t)L->groups * 48u * 4u;
    L->off_sz = (uint32_t)t; /* a decoded weight row: sign and nonzero words per kernel cell */
    t += 8u * (uint32_t)s->kh * s->kw;
    if (t > 0x7FFFFFFFu) return 0;
    L->total = (uint32_t)t;
    return 1;
}

/* U8 path: the patch of a pixel as nw words of bytes (eq_fr_u8_kind's order), per output channel
 * one row of rw = 1 + f * nw words (f = 1 for B1, 2 for TERN / TERN_SPARSE); the rows of each
 * group of 32 channels follow a one-word header */
enum { EQ_FR_GENERIC = 0, EQ_FR_C1 = 1, EQ_FR_C3 = 3 };

static uint32_t eq_fr_u8_kind(const eq_conv_shape_t *s)
{
    if (s->kh == 3u && s->kw == 3u && (s->in_c == 1u || s->in_c == 3u)) return s->in_c;
    return EQ_FR_GENERIC;
}

static int eq_fr_u8_layout(const eq_conv_shape_t *s, uint8_t w_enc, uint8_t stage, eq_fr_layout_t *L)
{
    uint64_t t;
    uint32_t kind;
    if (s->in_c < 1u || s->in_c > EQ_FIRST_MAX_C || s->out_c < 1u || s->out_w < 1u || s->out_h < 1u)
        return 0;
    if (w_enc != EQ_ENC_B1 && w_enc != EQ_ENC_TERN && w_enc != EQ_ENC_TERN_SPARSE) return 0;
    if (stage != EQ_OUT_SIGN && stage != EQ_OUT_MULTI) return 0;
    L->k = (uint32_t)s->kh * s->kw * s->in_c;
    if (L->k < 1u || L->k > EQ_FIRST_MAX_K || s->kh > EQ_FIRST_MAX_KH) return 0;
    kind = eq_fr_u8_kind(s);
    L->p = kind == EQ_FR_C3 ? 7u : kind == EQ_FR_C1 ? 3u : (L->k + 3u) / 4u; /* nw <= 32 */
    L->nxc = w_enc == EQ_ENC_B1 ? 1u : 2u;                                  /* f */
    L->nyc = 1u + L->nxc * L->p;                                            /* rw */
    L->groups = EQ_WORDS(s->out_c);
    L->wn = ((uint32_t)(s->out_w - 1u) * s->stride + s->kw) * s->in_c; /* bytes of a padded row */
    /* one spare word: the one-channel 3x3 gather loads a word at a row's last three bytes */
    L->row_words = EQ_WORDS(L->wn * 8u) + (kind == EQ_FR_C1 ? 1u : 0u);
    /* the ring, and before it is filled (while the rows are made) a decoded weight row */
    t = (uint64_t)s->kh * L->row_words * 4u;
    if (t < 8u * (uint32_t)s->kh * s->kw) t = 8u * (uint32_t)s->kh * s->kw;
    L->off_ring = L->off_sz = 0;
    L->off_w = (uint32_t)t;
    t += ((uint64_t)L->groups + (uint64_t)s->out_c * L->nyc) * 4u;
    /* MULTI: the folded thresholds where the rows still fit in the layer's accumulator row */
    L->fold = stage == EQ_OUT_MULTI && t + 8u * s->out_c <= (uint64_t)s->out_w * s->out_c * 4u;
    if (L->fold) {
        L->nyc += 2u;
        t += 8u * s->out_c;
    }
    L->off_tab = L->off_xcls = L->off_ycls = L->off_rng = L->off_pre = L->off_pat = (uint32_t)t;
    if (t > 0x7FFFFFFFu) return 0;
    L->total = (uint32_t)t;
    return 1;
}

uint32_t eq_conv_first_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                               uint8_t out_stage, uint8_t lflags)
{
    eq_fr_layout_t L;
    if (lflags != 0u) return 0u;
    if (in_enc == EQ_ENC_B1 && out_stage == EQ_OUT_SIGN && eq_fr_b1_layout(s, w_enc, &L))
        return L.total;
    if (in_enc == EQ_ENC_U8 && eq_fr_u8_layout(s, w_enc, out_stage, &L)) return L.total;
    return 0u;
}


/* ---- B1 input: bit-sliced counting across the output channels ----------------------------- */
/* full adder on words: s = a ^ b ^ c, carry = majority */
#define EQ_FA(s, cy, a, b, c)                       \
    do {                                             \
        const uint32_t u_ = (a) ^ (b);               \
        (cy) = ((a) & (b)) | (u_ & (c));             \
        (s) = u_ ^ (c);                              \
    } while (0)

/* ripple word x into planes c[0..np] (np = P: plane P is the output plane) */
EQ_FI void eq_fr_add(uint32_t *c, uint32_t x, uint32_t np)
{
    uint32_t j;
    for (j = 0; j < np; ++j) {
        const uint32_t t = c[j] & x;
        c[j] ^= x;
        x = t;
    }
    c[np] ^= x;
}

/* mismatch word of tap value v (bit c of the pixel word) against tap weight words */
EQ_FI uint32_t eq_fr_x(uint32_t v, uint32_t c, const uint32_t *ws, uint32_t t, int tern)
{
    const uint32_t a = 0u - ((v >> c) & 1u);
    return tern ? ws[2u * t + 1u] & (ws[2u * t] ^ a) : ws[2u * t] ^ a;
}

/* one output row oy, group g: generic shapes (runtime kh, kw, C), np planes */
EQ_FI void eq_fr_row_generic(const eq_conv_shape_t *s, const uint32_t *const *rp,
                             const uint32_t *ws, const uint32_t *tab, const uint8_t *xcls,
                             uint32_t np, int tern, uint32_t mask, uint32_t *out, uint32_t ocw)
{
    uint32_t ox;
    const uint32_t kh = s->kh, kw = s->kw, c = s->in_c, st = s->stride;
    for (ox = 0; ox < s->out_w; ++ox) {
        uint32_t cnt[8], ky, kx, ch, t = 0, j;
        const uint32_t *k0 = tab + (uint32_t)xcls[ox] * (np + 1u);
        for (j = 0; j <= np; ++j) cnt[j] = k0[j];
        for (ky = 0; ky < kh; ++ky) {
            const uint32_t *px = rp[ky] + ox * st;
            for (kx = 0; kx < kw; ++kx) {
                const uint32_t v = px[kx];
                for (ch = 0; ch < c; ++ch, ++t) eq_fr_add(cnt, eq_fr_x(v, ch, ws, t, tern), np);
            }
        }
        out[(size_t)ox * ocw] = cnt[np] & mask;
    }
}

/* 3x3 kernels on one input channel: per kernel row the three taps' input bits form a pattern
 * p (bit 2 - kx = tap kx), and the row's mismatch count for pattern p is a 2-plane entry of
 * an 8-entry table per kernel row (tl = low plane, th = high plane). The ring holds the
 * patterns of each output column (q[ky][ox]). The three row counts are added (carry-save,
 * 4 planes), then only the carry into plane 4 of (threshold planes + count) is formed. */
EQ_FR_NOINLINE void eq_fr_row_3x3p(uint32_t out_w, const uint32_t *const *q, const uint32_t *tl,
                           const uint32_t *th, const uint32_t *tab, const uint8_t *xcls,
                           uint32_t mask, uint32_t *out, uint32_t ocw)
{
    const uint32_t *q0 = q[0], *q1 = q[1], *q2 = q[2];
    uint32_t ox;
    for (ox = 0; ox < out_w; ++ox) {
        const uint32_t p0 = q0[ox], p1 = q1[ox] + 8u, p2 = q2[ox] + 16u;
        const uint32_t *k0 = tab + (uint32_t)xcls[ox] * 5u;
        uint32_t s0, s1, s2, s3, ka, kb, cy;
        const uint32_t l0 = tl[p0], l1 = tl[p1], l2 = tl[p2];
        const uint32_t h0 = th[p0], h1 = th[p1], h2 = th[p2];
        EQ_FA(s0, ka, l0, l1, l2);
        EQ_FA(s1, kb, h0, h1, h2);
        s2 = s1 & ka; /* half adders: the weight-2 carry */
        s1 ^= ka;
        s3 = kb & s2;
        s2 ^= kb;
        cy = k0[0] & s0;
        cy = (k0[1] & s1) | (cy & (k0[1] | s1));
        cy = (k0[2] & s2) | (cy & (k0[2] | s2));
        cy = (k0[3] & s3) | (cy & (k0[3] | s3));
        out[(size_t)ox * ocw] = (k0[4] ^ cy) & mask;
    }
}

/* patterns of padded row r (input row r - pad) for every output column (3 taps, one channel) */
static void eq_fr_fill_pat(const eq_conv_shape_t *s, const uint32_t *in, uint32_t r, uint32_t *dst)
{
    const int32_t y = (int32_t)r - (int32_t)s->pad;
    const uint32_t st = s->stride, wn = (uint32_t)(s->out_w - 1u) * st + 3u;
    uint32_t xp, win = 0, ox = 0, next = 2;
    if (y < 0 || y >= (int32_t)s->in_h) {
        for (ox = 0; ox < s->out_w; ++ox) dst[ox] = 0u;
        return;
    }
    in += (size_t)y * s->in_w;
    for (xp = 0; xp < wn; ++xp) {
        const uint32_t x = xp - s->pad; /* wraps below 0: out of range */
        win = ((win << 1) | (x < s->in_w ? in[x] & 1u : 0u)) & 7u;
        if (xp == next) {
            dst[ox++] = win;
            next += st;
        }
    }
}

/* the 8-pattern row tables of kernel row ky: tl/th[ky*8 + p] */
static void eq_fr_pat_tables(const uint32_t *wg, int tern, uint32_t *tl, uint32_t *th)
{
    uint32_t ky, p, kx;
    for (ky = 0; ky < 3u; ++ky) {
        for (p = 0; p < 8u; ++p) {
            uint32_t c0 = 0, c1 = 0;
            for (kx = 0; kx < 3u; ++kx) {
                const uint32_t t = ky * 3u + kx, a = 0u - ((p >> (2u - kx)) & 1u);
                const uint32_t x = tern ? wg[2u * t + 1u] & (wg[2u * t] ^ a) : wg[2u * t] ^ a;
                c1 |= c0 & x; /* counts <= 3: no carry out of plane 1 */
                c0 ^= x;
            }
            tl[ky * 8u + p] = c0;
            th[ky * 8u + p] = c1;
        }
    }
}

/* padded row r (input row r - pad) of B1 words into dst (wn words) */
static void eq_fr_fill_b1(const eq_conv_shape_t *s, const uint32_t *in, uint32_t r, uint32_t wn,
                          uint32_t *dst)
{
    const int32_t y = (int32_t)r - (int32_t)s->pad;
    const uint32_t p = s->pad < wn ? s->pad : wn;
    uint32_t x = 0, n = 0;
    if (y >= 0 && y < (int32_t)s->in_h) n = s->in_w < wn - p ? s->in_w : wn - p;
    for (; x < p; ++x) dst[x] = 0u;
    in += (size_t)(y < 0 ? 0 : y) * s->in_w;
    for (; x < p + n; ++x) dst[x] = in[x - p];
    for (; x < wn; ++x) dst[x] = 0u;
}

/* sign and nonzero words of weight row n, one word per kernel cell (bit c = input channel c):
 * B1 (nonzero all ones) and TERN read in place; TERN_SPARSE decoded into sb/zb with the row
 * loop's checks (docs/blob-format.md): EQ_ERR_ARG on a bad stream, as eq_conv2d_row */
static eq_status_t eq_fr_row(const eq_conv_shape_t *s, const void *data, uint8_t enc, uint32_t n,
                             uint32_t *sb, uint32_t *zb, const uint32_t **sv, const uint32_t **zv)
{
    const uint32_t taps = (uint32_t)s->kh * s->kw, c = s->in_c, k = taps * c;
    uint32_t i;
    if (enc == EQ_ENC_TERN_SPARSE) {
        const uint32_t *off = (const uint32_t *)data;
        const uint8_t *stream = (const uint8_t *)data + 4u * ((uint32_t)s->out_c + 1u);
        uint32_t q, p = 0;
        for (i = 0; i < taps; ++i) sb[i] = zb[i] = 0u;
        for (q = off[n]; q < off[n + 1u]; ++q) {
            const uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
            if (v == 7u) { /* skip 7, no weight */
                p += 7u;
                continue;
            }
            if (v == 15u) return EQ_ERR_ARG;
            p += v & 7u;
            if (p >= k) return EQ_ERR_ARG;
            zb[p / c] |= 1u << (p % c);
            if (!(v & 8u)) sb[p / c] |= 1u << (p % c);
            ++p;
        }
        *sv = sb;
        *zv = zb;
    } else if (enc == EQ_ENC_TERN) {
        *sv = (const uint32_t *)data + (size_t)n * 2u * taps;
        *zv = *sv + taps;
    } else {
        for (i = 0; i < taps; ++i) zb[i] = 0xFFFFFFFFu;
        *sv = (const uint32_t *)data + (size_t)n * taps;
        *zv = zb;
    }
    return EQ_OK;
}

/* ws[g][t] = (sign word, nonzero word) of tap t = (ky*kw + kx)*C + c over the 32 channels of
 * group g (TERN: sign bits only where nonzero; B1: nonzero all ones) */
static eq_status_t eq_fr_tapwords(const eq_conv_shape_t *s, const void *w, uint8_t enc, uint32_t *ws,
                                  uint32_t *sb, uint32_t *zb)
{
    const uint32_t taps = (uint32_t)s->kh * s->kw, c = s->in_c, k = taps * c;
    uint32_t n, tt, ch;
    if (c == 1u && enc != EQ_ENC_TERN_SPARSE) { /* one channel, rows in place: word t of row n */
        const uint32_t *d = (const uint32_t *)w, rw = enc == EQ_ENC_TERN ? 2u * taps : taps;
        const uint32_t zo = enc == EQ_ENC_TERN ? taps : 0u;
        for (n = 0; n < s->out_c; n += 32u) {
            const uint32_t nch = s->out_c - n < 32u ? s->out_c - n : 32u;
            for (tt = 0; tt < taps; ++tt, ws += 2) {
                const uint32_t *col = d + (size_t)n * rw + tt;
                uint32_t sw = 0, zw = 0, i;
                for (i = nch; i-- > 0u;) {
                    const uint32_t z = enc == EQ_ENC_TERN ? col[(size_t)i * rw + zo] : 1u;
                    sw = (sw << 1) | (col[(size_t)i * rw] & z & 1u);
                    zw = (zw << 1) | (z & 1u);
                }
                ws[0] = sw;
                ws[1] = zw;
            }
        }
        return EQ_OK;
    }
    eq_fr_zero32(ws, EQ_WORDS(s->out_c) * k * 2u);
    for (n = 0; n < s->out_c; ++n) {
        const uint32_t i = n & 31u, *sv, *zv;
        uint32_t *wg = ws + (size_t)(n >> 5) * k * 2u;
        const eq_status_t st = eq_fr_row(s, w, enc, n, sb, zb, &sv, &zv);
        if (st != EQ_OK) return st;
        for (tt = 0; tt < taps; ++tt) {
            const uint32_t z = zv[tt], sg = sv[tt] & z;
            for (ch = 0; ch < c; ++ch, wg += 2) {
                wg[0] |= (sg >> ch & 1u) << i;
                wg[1] |= (z >> ch & 1u) << i;
            }
        }
    }
    return EQ_OK;
}

/* planes e[0..np] of one border class (valid kernel cells: the prefix-sum corners ix) for
 * channels [0, nch): with V the in-bounds nonzero taps and S the in-bounds +1 taps, q' =
 * floor((V - thr + f) / 2) + E + 1 - f = floor((V + cb) / 2) + cc - S, init = 2^P - clamp(q',
 * 0, K + 1), the top plane inverted for f = 0 (cx) */
EQ_FI void eq_fr_class(const uint8_t *pre, uint32_t cells1, const uint32_t *ix, const int32_t *cb,
                       const int32_t *cc, const uint32_t *cx, uint32_t nch, uint32_t k,
                       uint32_t np, uint32_t *e)
{
    uint32_t i, j;
    const uint32_t a = ix[0], b = ix[1], c = ix[2], d = ix[3];
    for (j = 0; j <= np; ++j) e[j] = 0u;
    for (i = nch; i-- > 0u;) {
        const uint8_t *pz = pre + (size_t)i * 2u * cells1, *ps = pz + cells1;
        const int32_t v = (int32_t)pz[a] - pz[b] - pz[c] + pz[d];
        const int32_t sr = (int32_t)ps[a] - ps[b] - ps[c] + ps[d];
        /* floor of a half of v + cb (>= -2K - 3 > -512) */
        int32_t q = (int32_t)((uint32_t)(v + cb[i] + 512) >> 1) - 256 + cc[i] - sr;
        uint32_t init;
        q = q < 0 ? 0 : q > (int32_t)k + 1 ? (int32_t)k + 1 : q;
        init = ((1u << np) - (uint32_t)q) ^ cx[i];
        for (j = 0; j <= np; ++j) e[j] = (e[j] << 1) | ((init >> j) & 1u);
    }
}

/* as eq_fr_class for K <= 32: V and S are popcounts of the channel's tap masks zm / sm over
 * the class's in-bounds taps rm */
EQ_FI void eq_fr_class_m(const uint32_t *zm, const uint32_t *sm, uint32_t rm, const int32_t *cb,
                         const int32_t *cc, const uint32_t *cx, uint32_t nch, uint32_t k,
                         uint32_t np, uint32_t *e)
{
    uint32_t i, j;
    for (j = 0; j <= np; ++j) e[j] = 0u;
    for (i = nch; i-- > 0u;) {
        const int32_t v = (int32_t)eq_popcount32(zm[i] & rm), sr = (int32_t)eq_popcount32(sm[i] & rm);
        int32_t q = (int32_t)((uint32_t)(v + cb[i] + 512) >> 1) - 256 + cc[i] - sr;
        uint32_t init;
        q = q < 0 ? 0 : q > (int32_t)k + 1 ? (int32_t)k + 1 : q;
        init = ((1u << np) - (uint32_t)q) ^ cx[i];
        for (j = 0; j <= np; ++j) e[j] = (e[j] << 1) | ((init >> j) & 1u);
    }
}

/* popcount of a K <= 15 tap mask: two lookups in a 256-entry table */
static const uint8_t eq_fr_pc8[256] = {
#define EQ_FR_B2(n) n, n + 1, n + 1, n + 2
#define EQ_FR_B4(n) EQ_FR_B2(n), EQ_FR_B2(n + 1), EQ_FR_B2(n + 1), EQ_FR_B2(n + 2)
#define EQ_FR_B6(n) EQ_FR_B4(n), EQ_FR_B4(n + 1), EQ_FR_B4(n + 1), EQ_FR_B4(n + 2)
    EQ_FR_B6(0), EQ_FR_B6(1), EQ_FR_B6(1), EQ_FR_B6(2)
#undef EQ_FR_B6
#undef EQ_FR_B4
#undef EQ_FR_B2
};
#define EQ_FR_PC15(x) ((uint32_t)eq_fr_pc8[(x) & 255u] + eq_fr_pc8[((x) >> 8) & 127u])

/* np = 4 (K <= 15): the five planes in registers */
EQ_FR_NOINLINE void eq_fr_class_m4(const uint32_t *zm, const uint32_t *sm, uint32_t rm,
                                   const int32_t *cb, const int32_t *cc, const uint32_t *cx,
                                   uint32_t nch, uint32_t k, uint32_t *e)
{
    uint32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, i;
    for (i = nch; i-- > 0u;) {
        const uint32_t zr = zm[i] & rm, sr = sm[i] & rm;
        int32_t q = (int32_t)((EQ_FR_PC15(zr) + (uint32_t)cb[i] + 512u) >> 1) - 256 + cc[i] -
                    (int32_t)EQ_FR_PC15(sr);
        uint32_t init;
        q = q < 0 ? 0 : q > (int32_t)k + 1 ? (int32_t)k + 1 : q;
        init = (16u - (uint32_t)q) ^ cx[i];
        p0 = (p0 << 1) | (init & 1u);
        p1 = (p1 << 1) | ((init >> 1) & 1u);
        p2 = (p2 << 1) | ((init >> 2) & 1u);
        p3 = (p3 << 1) | ((init >> 3) & 1u);
        p4 = (p4 << 1) | ((init >> 4) & 1u);
    }
    e[0] = p0;
    e[1] = p1;
    e[2] = p2;
    e[3] = p3;
    e[4] = p4;
}

static eq_status_t eq_first_b1(const eq_conv_job_t *job, const eq_fr_layout_t *L)
{
    const eq_conv_shape_t *s = job->s;
    const uint8_t enc = job->w->enc;
    const int tern = enc != EQ_ENC_B1;
    const void *w = job->w->data;
    eq_status_t st;
    const int32_t *thr = (const int32_t *)job->thr;
    const uint8_t *flip = (const uint8_t *)job->aux;
    uint8_t *base = (uint8_t *)job->scratch;
    uint32_t *ring = (uint32_t *)(void *)(base + L->off_ring);
    uint32_t *ws = (uint32_t *)(void *)(base + L->off_w);
    uint32_t *tab = (uint32_t *)(void *)(base + L->off_tab);
    uint8_t *xcls = base + L->off_xcls, *ycls = base + L->off_ycls;
    uint8_t *rlo = base + L->off_rng, *rhi = rlo + L->nyc + L->nxc, *pre = base + L->off_pre;
    uint32_t *pt = (uint32_t *)(void *)(base + L->off_pat);
    int32_t cb[32], cc[32], stot[32];
    uint32_t cx[32], zm[32], sm[32];
    int pat;
    const uint32_t kw1 = s->kw + 1u, cells1 = eq_r4((s->kh + 1u) * kw1);
    const uint32_t k = L->k, np = L->p, ocw = L->groups, kh = s->kh, c = s->in_c;
    uint32_t g, t, i, yc, xc, oy, next = 0;
    const uint32_t *rp[EQ_FIRST_MAX_KH];
    (void)eq_fr_classes(s->out_h, s->kh, s->stride, s->pad, s->in_h, ycls, rlo, rhi);
    (void)eq_fr_classes(s->out_w, s->kw, s->stride, s->pad, s->in_w, xcls, rlo + L->nyc,
                        rhi + L->nyc);
    /* tap weight words per group: (sign, nonzero) per tap */
    st = eq_fr_tapwords(s, w, enc, ws, (uint32_t *)(void *)(base + L->off_sz),
                        (uint32_t *)(void *)(base + L->off_sz) + (uint32_t)s->kh * s->kw);
    if (st != EQ_OK) return st;
    for (g = 0; g < L->groups; ++g) {
        const uint32_t nch = s->out_c - 32u * g < 32u ? s->out_c - 32u * g : 32u;
        const uint32_t *wg = ws + (size_t)g * k * 2u;
        if (k <= 32u) { /* per channel its taps' nonzero / +1 bits as one word each */
            for (i = 0; i < nch; ++i) zm[i] = sm[i] = 0u;
            for (t = k; t-- > 0u;) {
                const uint32_t zw = wg[2u * t + 1u], sw = wg[2u * t];
                for (i = 0; i < nch; ++i) {
                    zm[i] = (zm[i] << 1) | ((zw >> i) & 1u);
                    sm[i] = (sm[i] << 1) | ((sw >> i) & 1u);
                }
            }
            for (i = 0; i < nch; ++i) stot[i] = (int32_t)eq_popcount32(sm[i]);
        } else { /* prefix sums over the kernel cells (ky, kx) of each channel's nonzero taps
                  * and +1 taps, so the in-bounds part of a border class is four lookups */
            for (i = 0; i < nch; ++i) {
                uint8_t *pz = pre + (size_t)i * 2u * cells1, *ps = pz + cells1;
                uint32_t ky, kx, ch;
                memset(pz, 0, kw1);
                memset(ps, 0, kw1);
                for (ky = 0, t = 0; ky < s->kh; ++ky) {
                    uint32_t rz = 0, rs = 0;
                    pz[(ky + 1u) * kw1] = 0;
                    ps[(ky + 1u) * kw1] = 0;
                    for (kx = 0; kx < s->kw; ++kx) {
                        for (ch = 0; ch < c; ++ch, ++t) {
                            rz += (wg[2u * t + 1u] >> i) & 1u;
                            rs += (wg[2u * t] >> i) & 1u;
                        }
                        pz[(ky + 1u) * kw1 + kx + 1u] = (uint8_t)(pz[ky * kw1 + kx + 1u] + rz);
                        ps[(ky + 1u) * kw1 + kx + 1u] = (uint8_t)(ps[ky * kw1 + kx + 1u] + rs);
                    }
                }
                stot[i] = ps[(s->kh + 1u) * kw1 - 1u];
            }
        }
        /* per channel: the clamped threshold and flip folded into two constants */
        for (i = 0; i < nch; ++i) {
            const uint32_t n = 32u * g + i, f = flip[n] ? 1u : 0u;
            /* |acc| <= K: a threshold beyond +-(K+1) acts as +-(K+1); the sums stay small */
            const int32_t kk = (int32_t)k + 1;
            const int32_t th = thr[n] > kk ? kk : thr[n] < -kk ? -kk : thr[n];
            cb[i] = f - th;
            cc[i] = stot[i] + 1 - (int32_t)f;
            cx[i] = f ? 0u : 1u << np;
        }
        for (yc = 0; yc < L->nyc; ++yc) {
            for (xc = 0; xc < L->nxc; ++xc) {
                uint32_t *e = tab + (((size_t)g * L->nyc + yc) * L->nxc + xc) * (np + 1u);
                const uint32_t y0 = rlo[yc], y1 = rhi[yc], x0 = rlo[L->nyc + xc], x1 = rhi[L->nyc + xc];
                if (k <= 32u) {
                    uint32_t rm = 0, ky, kx; /* the in-bounds taps */
                    for (ky = y0; ky < y1; ++ky)
                        for (kx = x0; kx < x1; ++kx)
                            rm |= ((1u << c) - 1u) << ((ky * s->kw + kx) * c);
                    if (np == 4u) eq_fr_class_m4(zm, sm, rm, cb, cc, cx, nch, k, e);
                    else eq_fr_class_m(zm, sm, rm, cb, cc, cx, nch, k, np, e);
                } else {
                    const uint32_t ix[4] = {y1 * kw1 + x1, y0 * kw1 + x1, y1 * kw1 + x0, y0 * kw1 + x0};
                    eq_fr_class(pre, cells1, ix, cb, cc, cx, nch, k, np, e);
                }
            }
        }
    }
    /* rows: ring of kh padded rows (3x3 one-channel: their tap patterns), slot = row % kh */
    pat = s->kh == 3u && s->kw == 3u && c == 1u;
    if (pat)
        for (g = 0; g < L->groups; ++g)
            eq_fr_pat_tables(ws + (size_t)g * k * 2u, tern, pt + g * 48u, pt + g * 48u + 24u);
    for (oy = 0; oy < s->out_h; ++oy) {
        const uint32_t r0 = oy * s->stride;
        uint32_t ky;
        if (next < r0) next = r0;
        for (; next < r0 + kh; ++next) {
            uint32_t *dst = ring + (next % kh) * L->row_words;
            if (pat) eq_fr_fill_pat(s, (const uint32_t *)job->in, next, dst);
            else eq_fr_fill_b1(s, (const uint32_t *)job->in, next, L->wn, dst);
        }
        for (ky = 0; ky < kh; ++ky) rp[ky] = ring + ((r0 + ky) % kh) * L->row_words;
        for (g = 0; g < L->groups; ++g) {
            const uint32_t nch = s->out_c - 32u * g < 32u ? s->out_c - 32u * g : 32u;
            const uint32_t mask = nch == 32u ? 0xFFFFFFFFu : (1u << nch) - 1u;
            const uint32_t *wg = ws + (size_t)g * k * 2u;
            const uint32_t *tg = tab + ((size_t)g * L->nyc + ycls[oy]) * L->nxc * (np + 1u);
            uint32_t *o = (uint32_t *)job->out + (size_t)oy * s->out_w * ocw + g;
            if (pat) { /* np == 4 */
                eq_fr_row_3x3p(s->out_w, rp, pt + g * 48u, pt + g * 48u + 24u, tg, xcls, mask, o, ocw);
            } else if (np <= 4u) {
                if (tern) eq_fr_row_generic(s, rp, wg, tg, xcls, 4u, 1, mask, o, ocw);
                else eq_fr_row_generic(s, rp, wg, tg, xcls, 4u, 0, mask, o, ocw);
            } else {
                if (tern) eq_fr_row_generic(s, rp, wg, tg, xcls, np, 1, mask, o, ocw);
                else eq_fr_row_generic(s, rp, wg, tg, xcls, np, 0, mask, o, ocw);
            }
        }
    }
    return EQ_OK;
}

/* ---- U8 input: byte masks and sums of absolute differences -------------------------------- */
/* padded row r (input row r - pad) of U8 pixels into dst (wn bytes, then zeros to the row's end:
 * row_words words); the inner words stored whole */
static void eq_fr_fill_u8(const eq_conv_shape_t *s, const uint8_t *in, uint32_t r, uint32_t wn,
                          uint32_t row_words, uint8_t *dst)
{
    const int32_t y = (int32_t)r - (int32_t)s->pad;
    const uint32_t c = s->in_c, lead = (uint32_t)s->pad * c < wn ? (uint32_t)s->pad * c : wn;
    uint32_t x, n = 0, *d32 = (uint32_t *)(void *)dst;
    if (y >= 0 && y < (int32_t)s->in_h)
        n = (uint32_t)s->in_w * c < wn - lead ? (uint32_t)s->in_w * c : wn - lead;
    eq_fr_zero32(d32, row_words);
    in += (size_t)(y < 0 ? 0 : y) * s->in_w * c;
    x = lead;
    for (; x < lead + n && (x & 3u); ++x) dst[x] = in[x - lead];
    for (; x + 4u <= lead + n; x += 4u) { /* aligned stores, the loads at any alignment */
        uint32_t v;
        memcpy(&v, in + (x - lead), 4); /* the bytes in memory order */
        d32[x >> 2] = v;
    }
    for (; x < lead + n; ++x) dst[x] = in[x - lead];
}

/* byte slot (lane t & 3 of word t >> 2 of the gathered patch) of tap t = (ky * kw + kx) * C + c */
static uint32_t eq_fr_slot(uint32_t kind, uint32_t t)
{
    if (kind == EQ_FR_C3) { /* rows' bytes 0..7 as words 2r, 2r + 1; their bytes 8 in word 6 */
        const uint32_t r = t / 9u, j = t - 9u * r;
        return j == 8u ? 24u + r : 8u * r + j;
    }
    if (kind == EQ_FR_C1) return 4u * (t / 3u) + t % 3u; /* row r in word r, lanes 0..2 */
    return t;
}

EQ_FI uint32_t eq_fr_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* the patch of output column ox (kernel rows rp) as nw words in eq_fr_slot's order, zero lanes
 * past the taps */
static void eq_fr_gather(const eq_conv_shape_t *s, uint32_t kind, const uint8_t *const *rp,
                         uint32_t ox, uint32_t nw, uint32_t *pk)
{
    const size_t x0 = (size_t)ox * s->stride * s->in_c;
    uint32_t ky, j, t = 0;
    if (kind == EQ_FR_C3) {
        const uint8_t *p0 = rp[0] + x0, *p1 = rp[1] + x0, *p2 = rp[2] + x0;
        pk[0] = eq_fr_ld32(p0);
        pk[1] = eq_fr_ld32(p0 + 4);
        pk[2] = eq_fr_ld32(p1);
        pk[3] = eq_fr_ld32(p1 + 4);
        pk[4] = eq_fr_ld32(p2);
        pk[5] = eq_fr_ld32(p2 + 4);
        pk[6] = p0[8] | (uint32_t)p1[8] << 8 | (uint32_t)p2[8] << 16;
        return;
    }
    if (kind == EQ_FR_C1) {
        for (ky = 0; ky < 3u; ++ky) pk[ky] = eq_fr_ld32(rp[ky] + x0) & 0x00FFFFFFu;
        return;
    }
    eq_fr_zero32(pk, nw);
    for (ky = 0; ky < s->kh; ++ky) {
        const uint8_t *px = rp[ky] + x0;
        for (j = 0; j < (uint32_t)s->kw * s->in_c; ++j, ++t) pk[t >> 2] |= (uint32_t)px[j] << (8u * (t & 3u));
    }
}

/* constant trip counts (the special shapes) unroll completely */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define EQ_FR_UNROLL _Pragma("GCC unroll 14")
#else
#define EQ_FR_UNROLL
#endif

/* acc + sum over the patch's bytes x of |m - x| for the masks m (bytes 0 or 0xFF: x or 255 - x),
 * f masks per word (USADA8 on DSP cores; portable: the byte sums of x ^ m in 16-bit lanes, at
 * most 2 * 255 * 64 < 65536) */
EQ_FI int32_t eq_fr_sad(const uint32_t *pk, const uint32_t *m, uint32_t nw, uint32_t f, int32_t acc)
{
    uint32_t j;
#ifdef EQ_FIRST_DSP
    uint32_t a = (uint32_t)acc;
    if (f == 1u) {
        EQ_FR_UNROLL
        for (j = 0; j < nw; ++j) a = __usada8(pk[j], m[j], a);
    } else {
        EQ_FR_UNROLL
        for (j = 0; j < nw; ++j) {
            a = __usada8(pk[j], m[2u * j], a);
            a = __usada8(pk[j], m[2u * j + 1u], a);
        }
    }
    return (int32_t)a;
#else
    uint32_t l = 0;
    EQ_FR_UNROLL
    for (j = 0; j < nw * f; ++j) {
        const uint32_t x = pk[f == 1u ? j : j >> 1] ^ m[j];
        l += (x & 0x00FF00FFu) + ((x >> 8) & 0x00FF00FFu);
    }
    return acc + (int32_t)((l & 0xFFFFu) + (l >> 16));
#endif
}

#if defined(EQ_FIRST_DSP) && defined(__thumb2__) && defined(__GNUC__)
#define EQ_FR_ASM 1
#define EQ_FR_ARG __attribute__((unused)) /* read by the assembly (r0..r3) */
/* SIGN bits of one group for a 3x3 patch on three channels, B1 weights (rows of 8 words: the
 * folded threshold, then 7 masks): the patch's 7 words gathered into r4..r10, per channel two
 * LDMs, seven USADA8, the sign shifted in through the carry. The group's header word (q[0]) is
 * the sentinel 1 << (32 - nch): the loop (two channels a pass, entered in the middle for an odd
 * count) ends when it is shifted out. p0..p2: the patch's three kernel rows (9 bytes each). */
__attribute__((naked, noinline)) static uint32_t
eq_fr_sign27(EQ_FR_ARG const uint8_t *p0, EQ_FR_ARG const uint8_t *p1, EQ_FR_ARG const uint8_t *p2,
             EQ_FR_ARG const uint32_t *q)
{
#define EQ_FR_STEP27(ADC)                                                                    \
    "ldm r3!, {r0, r2, r11, r12}\n\t"                                                        \
    "usada8 r0, r2, r4, r0\n\t"                                                              \
    "usada8 r0, r11, r5, r0\n\t"                                                             \
    "usada8 r0, r12, r6, r0\n\t"                                                             \
    "ldm r3!, {r2, r11, r12, lr}\n\t"                                                        \
    "usada8 r0, r2, r7, r0\n\t"                                                              \
    "usada8 r0, r11, r8, r0\n\t"                                                             \
    "usada8 r0, r12, r9, r0\n\t"                                                             \
    "usada8 r0, lr, r10, r0\n\t"                                                             \
    "lsls r0, r0, #1\n\t" ADC " r1, r1, r1\n\t"
    __asm__ volatile("push {r4-r11, lr}\n\t"
                     "ldr r4, [r0]\n\t"
                     "ldr r5, [r0, #4]\n\t"
                     "ldrb r10, [r0, #8]\n\t"
                     "ldr r6, [r1]\n\t"
                     "ldr r7, [r1, #4]\n\t"
                     "ldrb r11, [r1, #8]\n\t"
                     "ldr r8, [r2]\n\t"
                     "ldr r9, [r2, #4]\n\t"
                     "ldrb r12, [r2, #8]\n\t"
                     "orr r10, r10, r11, lsl #8\n\t"
                     "orr r10, r10, r12, lsl #16\n\t"
                     "ldr r1, [r3], #4\n\t"
                     "tst r1, #0x55555555\n\t"
                     "beq 2f\n"
                     "1:\n\t" EQ_FR_STEP27("adc") "2:\n\t" EQ_FR_STEP27("adcs")
                     "bcc 1b\n\t"
                     "mov r0, r1\n\t"
                     "pop {r4-r11, pc}\n\t");
#undef EQ_FR_STEP27
}

/* as eq_fr_sign27 for a 3x3 patch on one channel (rows of 4 words), p0..p2 three bytes each
 * (the word loads read one byte more: the ring's spare word) */
__attribute__((naked, noinline)) static uint32_t
eq_fr_sign9(EQ_FR_ARG const uint8_t *p0, EQ_FR_ARG const uint8_t *p1, EQ_FR_ARG const uint8_t *p2,
            EQ_FR_ARG const uint32_t *q)
{
#define EQ_FR_STEP9(ADC)                                                                     \
    "ldm r3!, {r0, r2, r7, r8}\n\t"                                                          \
    "usada8 r0, r2, r4, r0\n\t"                                                              \
    "usada8 r0, r7, r5, r0\n\t"                                                              \
    "usada8 r0, r8, r6, r0\n\t"                                                              \
    "lsls r0, r0, #1\n\t" ADC " r1, r1, r1\n\t"
    __asm__ volatile("push {r4-r8, lr}\n\t"
                     "ldr r4, [r0]\n\t"
                     "ldr r5, [r1]\n\t"
                     "ldr r6, [r2]\n\t"
                     "bic r4, r4, #0xFF000000\n\t"
                     "bic r5, r5, #0xFF000000\n\t"
                     "bic r6, r6, #0xFF000000\n\t"
                     "ldr r1, [r3], #4\n\t"
                     "tst r1, #0x55555555\n\t"
                     "beq 2f\n"
                     "1:\n\t" EQ_FR_STEP9("adc") "2:\n\t" EQ_FR_STEP9("adcs")
                     "bcc 1b\n\t"
                     "mov r0, r1\n\t"
                     "pop {r4-r8, pc}\n\t");
#undef EQ_FR_STEP9
}

/* MULTI codes (up to 3 folded thresholds, eq_fr_u8_multi) of one group for TERN weights, the
 * patch's words at pk (7 for 3x3x3, 3 for 3x3x1) in r4..r10 / r4..r6: per channel its row (D_0,
 * two masks per word, E_1, E_2) through LDMs and USADA8s, the code from three signs, one byte
 * stored at o (ascending) until o reaches end. */
#define EQ_FR_CODE                                                                           \
    "subs r11, r0, r11\n\t"                                                                   \
    "subs r12, r0, r12\n\t"                                                                   \
    "lsrs r11, r11, #31\n\t"                                                                  \
    "add r11, r11, r0, lsr #31\n\t"                                                           \
    "add r11, r11, r12, lsr #31\n\t"                                                          \
    "strb r11, [r2], #1\n\t"                                                                  \
    "cmp r2, r3\n\t"                                                                          \
    "bne 1b\n\t"
/* the row's D_0 and the masks of the patch's first three words (r4..r6) */
#define EQ_FR_T3                                                                             \
    "ldm r1!, {r0, r11, r12, lr}\n\t"                                                         \
    "usada8 r0, r11, r4, r0\n\t"                                                              \
    "usada8 r0, r12, r4, r0\n\t"                                                              \
    "usada8 r0, lr, r5, r0\n\t"                                                               \
    "ldm r1!, {r11, r12, lr}\n\t"                                                             \
    "usada8 r0, r11, r5, r0\n\t"                                                              \
    "usada8 r0, r12, r6, r0\n\t"                                                              \
    "usada8 r0, lr, r6, r0\n\t"
__attribute__((naked, noinline)) static void
eq_fr_multi27t(EQ_FR_ARG const uint32_t *pk, EQ_FR_ARG const uint32_t *q, EQ_FR_ARG uint8_t *o,
               EQ_FR_ARG const uint8_t *end)
{
    __asm__ volatile("push {r4-r11, lr}\n\t"
                     "ldm r0, {r4-r10}\n"
                     "1:\n\t"
                     EQ_FR_T3
                     "ldm r1!, {r11, r12, lr}\n\t"
                     "usada8 r0, r11, r7, r0\n\t"
                     "usada8 r0, r12, r7, r0\n\t"
                     "usada8 r0, lr, r8, r0\n\t"
                     "ldm r1!, {r11, r12, lr}\n\t"
                     "usada8 r0, r11, r8, r0\n\t"
                     "usada8 r0, r12, r9, r0\n\t"
                     "usada8 r0, lr, r9, r0\n\t"
                     "ldm r1!, {r11, r12, lr}\n\t"
                     "usada8 r0, r11, r10, r0\n\t"
                     "usada8 r0, r12, r10, r0\n\t"
                     "ldr r12, [r1], #4\n\t"
                     "mov r11, lr\n\t" EQ_FR_CODE
                     "pop {r4-r11, pc}\n\t");
}

__attribute__((naked, noinline)) static void
eq_fr_multi9t(EQ_FR_ARG const uint32_t *pk, EQ_FR_ARG const uint32_t *q, EQ_FR_ARG uint8_t *o,
              EQ_FR_ARG const uint8_t *end)
{
    __asm__ volatile("push {r4-r6, r11, lr}\n\t"
                     "ldm r0, {r4-r6}\n"
                     "1:\n\t"
                     EQ_FR_T3
                     "ldm r1!, {r11, r12}\n\t" EQ_FR_CODE
                     "pop {r4-r6, r11, pc}\n\t");
}
#undef EQ_FR_CODE
#undef EQ_FR_T3
#endif

/* the rows of the weights: per group of 32 channels a header word (the sentinel 1 << (32 - nch))
 * and the rows of its channels (SIGN: from the highest down, MULTI: from the lowest up); a row is the init word and f masks per
 * patch word. With w' = the tap's weight (negated for a flipped SIGN channel), B1 masks have
 * 0xFF where w' = +1, so sad = 255 N+ - v; TERN masks (0xFF, 0xFF) / (0, 0) / (0, 0xFF) for
 * w' = +1 / -1 / 0, so sad = 510 N+ + 255 N0 - 2 v: sad = C - f v. SIGN (acc = v >= thr, or
 * v <= thr flipped: v' >= -thr): init = f thr' - C - 1, so acc = init + sad < 0 exactly when the
 * output bit is 1; thr clamped to the accumulator's range +-(255 K + 1) first. MULTI: init = -C,
 * acc = -f v. */
static eq_status_t eq_fr_u8_rows(const eq_conv_job_t *job, const eq_fr_layout_t *L, uint32_t kind,
                                 uint32_t *wq, uint32_t *sb, uint32_t *zb)
{
    const eq_conv_shape_t *s = job->s;
    const int32_t *thr = (const int32_t *)job->thr;
    const uint8_t *flip = (const uint8_t *)job->aux;
    const uint32_t taps = (uint32_t)s->kh * s->kw, f = L->nxc, rw = L->nyc;
    const int sign = job->out_stage == EQ_OUT_SIGN;
    const uint32_t nt = sign ? 1u : (1u << job->out_bits) - 1u;
    const int fold = sign || (L->fold && nt <= 3u); /* MULTI, up to 3 thresholds: as SIGN */
    const int32_t bound = 255 * (int32_t)L->k + 1;
    uint32_t g;
    for (g = 0; g < L->groups; ++g) {
        const uint32_t nch = s->out_c - 32u * g < 32u ? s->out_c - 32u * g : 32u;
        uint32_t *q = wq + (size_t)g * (1u + 32u * rw), i;
        *q++ = nch == 32u ? 1u : 1u << (32u - nch);
        for (i = 0; i < nch; ++i, q += rw) {
            const uint32_t n = 32u * g + (sign ? nch - 1u - i : i); /* SIGN: highest first */
            const int neg = fold && flip[n];
            const uint32_t *srow, *zrow;
            uint32_t tt, ch, t = 0, npos = 0, nzero = 0;
            int32_t cc;
            const eq_status_t st = eq_fr_row(s, job->w->data, job->w->enc, n, sb, zb, &srow, &zrow);
            if (st != EQ_OK) return st;
            eq_fr_zero32(q, rw);
            for (tt = 0; tt < taps; ++tt) {
                for (ch = 0; ch < s->in_c; ++ch, ++t) {
                    const uint32_t sl = eq_fr_slot(kind, t), lane = 0xFFu << (8u * (sl & 3u));
                    uint32_t *m = q + 1u + f * (sl >> 2);
                    if (!((zrow[tt] >> ch) & 1u)) { /* w = 0 (TERN only): (0, 0xFF) */
                        m[1] |= lane;
                        ++nzero;
                    } else if (((srow[tt] >> ch) & 1u) == (neg ? 0u : 1u)) { /* w' = +1 */
                        m[0] |= lane;
                        if (f == 2u) m[1] |= lane;
                        ++npos;
                    }
                }
            }
            cc = f == 1u ? 255 * (int32_t)npos : 510 * (int32_t)npos + 255 * (int32_t)nzero;
            if (fold) { /* D_j = f t'_j - C - 1: the code counts the j with sad + D_j < 0 */
                const int32_t *tn = thr + (size_t)n * nt;
                int32_t d[3];
                uint32_t j;
                for (j = 0; j < (sign ? 1u : 3u); ++j) {
                    const int32_t th = j >= nt ? 0 : tn[j] > bound ? bound : tn[j] < -bound ? -bound : tn[j];
                    d[j] = (int32_t)f * (neg ? -th : th) - cc - 1;
                }
                q[0] = (uint32_t)d[0];
                if (!sign) /* the other two as differences to D_0; absent ones never count */
                    for (j = 1; j < 3u; ++j) q[rw - 3u + j] = j < nt ? (uint32_t)(d[0] - d[j]) : 0xC0000000u;
            } else {
                q[0] = (uint32_t)-cc;
            }
        }
    }
    return EQ_OK;
}

/* MULTI codes of the pixel's channels (rows from the lowest channel up per group); inlined
 * with constant nw and f where the shape is one of the special ones, so the sums unroll */
EQ_FI void eq_fr_u8_multi(const eq_conv_job_t *job, const eq_fr_layout_t *L, const uint32_t *pk,
                          const uint32_t *wq, uint8_t *o, uint32_t nw, uint32_t f)
{
    const eq_conv_shape_t *s = job->s;
    const uint32_t nt = (1u << job->out_bits) - 1u, fold = L->fold && nt <= 3u;
    const uint32_t rw = 1u + f * nw + (L->fold ? 2u : 0u); /* L->nyc, constant when inlined */
    const int32_t *thr = (const int32_t *)job->thr;
    const uint8_t *flip = (const uint8_t *)job->aux;
    uint32_t g;
    for (g = 0; g < L->groups; ++g) {
        const uint32_t nch = s->out_c - 32u * g < 32u ? s->out_c - 32u * g : 32u;
        const uint32_t *q = wq + (size_t)g * (1u + 32u * rw) + 1u;
        uint32_t i;
        if (fold) { /* acc = sad + D_0, the code = #{j: acc - (D_0 - D_j) < 0} */
            for (i = 0; i < nch; ++i, q += 3u + f * nw) {
                const int32_t acc = eq_fr_sad(pk, q + 1, nw, f, (int32_t)q[0]);
                const uint32_t c1 = (uint32_t)(acc - (int32_t)q[1u + f * nw]) >> 31;
                const uint32_t c2 = (uint32_t)(acc - (int32_t)q[2u + f * nw]) >> 31;
                o[32u * g + i] = (uint8_t)(((uint32_t)acc >> 31) + c1 + c2);
            }
            continue;
        }
        for (i = 0; i < nch; ++i, q += rw) {
            const uint32_t n = 32u * g + i;
            const int32_t acc = eq_fr_sad(pk, q + 1, nw, f, (int32_t)q[0]); /* -f v */
            const int32_t v = f == 1u ? -acc : -(acc / 2);
            const int32_t *tn = thr + (size_t)n * nt;
            uint32_t code = 0, j;
            if (flip[n]) {
                for (j = 0; j < nt; ++j) code += (uint32_t)(v <= tn[j]);
            } else {
                for (j = 0; j < nt; ++j) code += (uint32_t)(v >= tn[j]);
            }
            o[n] = (uint8_t)code;
        }
    }
}

/* SIGN bits of the pixel's groups, as eq_fr_u8_multi */
EQ_FI void eq_fr_u8_sign(const eq_fr_layout_t *L, uint32_t out_c, const uint32_t *pk,
                         const uint32_t *wq, uint32_t *o, uint32_t nw, uint32_t f)
{
    const uint32_t rw = 1u + f * nw;
    uint32_t g;
    for (g = 0; g < L->groups; ++g) {
        const uint32_t nch = out_c - 32u * g < 32u ? out_c - 32u * g : 32u;
        const uint32_t *q = wq + (size_t)g * (1u + 32u * rw) + 1u;
        uint32_t bits = 0, i;
        for (i = 0; i < nch; ++i, q += rw)
            bits = (bits << 1) | ((uint32_t)eq_fr_sad(pk, q + 1, nw, f, (int32_t)q[0]) >> 31);
        o[g] = bits;
    }
}

/* one output row of the U8 path without the assembly loops: per pixel the gather, then the
 * stage (constant nw and f for the special shapes) */
EQ_FR_NOINLINE void eq_fr_u8_row(const eq_conv_job_t *job, const eq_fr_layout_t *L, uint32_t kind,
                                 const uint8_t *const *rp, const uint32_t *wq, uint32_t oy)
{
    const eq_conv_shape_t *s = job->s;
    const uint32_t nw = L->p, f = L->nxc;
    uint32_t ox, pk[32]; /* nw <= 32 */
    if (job->out_stage != EQ_OUT_SIGN) {
        uint8_t *o = (uint8_t *)job->out + (size_t)oy * s->out_w * s->out_c;
#ifdef EQ_FR_ASM
        if (f == 2u && kind != EQ_FR_GENERIC && L->fold && job->out_bits <= 2u) {
            const uint32_t rw = L->nyc;
            uint32_t g;
            for (ox = 0; ox < s->out_w; ++ox, o += s->out_c) {
                eq_fr_gather(s, kind, rp, ox, nw, pk);
                for (g = 0; g < L->groups; ++g) {
                    const uint32_t nch = s->out_c - 32u * g < 32u ? s->out_c - 32u * g : 32u;
                    const uint32_t *q = wq + (size_t)g * (1u + 32u * rw) + 1u;
                    if (kind == EQ_FR_C3) eq_fr_multi27t(pk, q, o + 32u * g, o + 32u * g + nch);
                    else eq_fr_multi9t(pk, q, o + 32u * g, o + 32u * g + nch);
                }
            }
            return;
        }
#endif
        for (ox = 0; ox < s->out_w; ++ox, o += s->out_c) {
            eq_fr_gather(s, kind, rp, ox, nw, pk);
            if (kind == EQ_FR_C1 && f == 2u) eq_fr_u8_multi(job, L, pk, wq, o, 3u, 2u);
            else if (kind == EQ_FR_C1) eq_fr_u8_multi(job, L, pk, wq, o, 3u, 1u);
            else if (kind == EQ_FR_C3 && f == 2u) eq_fr_u8_multi(job, L, pk, wq, o, 7u, 2u);
            else if (kind == EQ_FR_C3) eq_fr_u8_multi(job, L, pk, wq, o, 7u, 1u);
            else eq_fr_u8_multi(job, L, pk, wq, o, nw, f);
        }
    } else {
        const uint32_t ocw = L->groups;
        uint32_t *o = (uint32_t *)job->out + (size_t)oy * s->out_w * ocw;
        for (ox = 0; ox < s->out_w; ++ox, o += ocw) {
            eq_fr_gather(s, kind, rp, ox, nw, pk);
            if (kind == EQ_FR_C1 && f == 2u) eq_fr_u8_sign(L, s->out_c, pk, wq, o, 3u, 2u);
            else if (kind == EQ_FR_C1) eq_fr_u8_sign(L, s->out_c, pk, wq, o, 3u, 1u);
            else if (kind == EQ_FR_C3 && f == 2u) eq_fr_u8_sign(L, s->out_c, pk, wq, o, 7u, 2u);
            else if (kind == EQ_FR_C3) eq_fr_u8_sign(L, s->out_c, pk, wq, o, 7u, 1u);
            else eq_fr_u8_sign(L, s->out_c, pk, wq, o, nw, f);
        }
    }
}

static eq_status_t eq_first_u8(const eq_conv_job_t *job, const eq_fr_layout_t *L)
{
    const eq_conv_shape_t *s = job->s;
    uint8_t *base = (uint8_t *)job->scratch;
    uint8_t *ring = base + L->off_ring;
    uint32_t *sb = (uint32_t *)(void *)(base + L->off_sz), *zb = sb + (uint32_t)s->kh * s->kw;
    uint32_t *wq = (uint32_t *)(void *)(base + L->off_w);
    const uint32_t kh = s->kh, kind = eq_fr_u8_kind(s), rb = L->row_words * 4u;
#ifdef EQ_FR_ASM
    const uint32_t f = L->nxc, ocw = L->groups;
    const int sign = job->out_stage == EQ_OUT_SIGN;
    uint32_t ox, g;
#endif
    uint32_t oy, next = 0;
    const uint8_t *rp[EQ_FIRST_MAX_KH];
    const eq_status_t st = eq_fr_u8_rows(job, L, kind, wq, sb, zb);
    if (st != EQ_OK) return st;
    for (oy = 0; oy < s->out_h; ++oy) {
        const uint32_t r0 = oy * s->stride;
        uint32_t ky;
        if (next < r0) next = r0;
        for (; next < r0 + kh; ++next)
            eq_fr_fill_u8(s, (const uint8_t *)job->in, next, L->wn, L->row_words,
                          ring + (size_t)(next % kh) * rb);
        for (ky = 0; ky < kh; ++ky) rp[ky] = ring + (size_t)((r0 + ky) % kh) * rb;
#ifdef EQ_FR_ASM
        if (sign && f == 1u && kind != EQ_FR_GENERIC) {
            const uint32_t sx = s->stride * s->in_c, rw = L->nyc;
            const uint8_t *p0 = rp[0], *p1 = rp[1], *p2 = rp[2];
            uint32_t *o = (uint32_t *)job->out + (size_t)oy * s->out_w * ocw;
            for (ox = 0; ox < s->out_w; ++ox, p0 += sx, p1 += sx, p2 += sx)
                for (g = 0; g < ocw; ++g, ++o) {
                    const uint32_t *q = wq + (size_t)g * (1u + 32u * rw);
                    *o = kind == EQ_FR_C3 ? eq_fr_sign27(p0, p1, p2, q) : eq_fr_sign9(p0, p1, p2, q);
                }
            continue;
        }
#endif
        eq_fr_u8_row(job, L, kind, rp, wq, oy);
    }
    return EQ_OK;
}

eq_status_t eq_conv_first(const eq_conv_job_t *job)
{
    eq_fr_layout_t L;
    const eq_conv_shape_t *s;
    if (!job || !job->s || !job->w || !job->in || !job->out || !job->thr || job->lflags != 0u)
        return EQ_ERR_UNSUPPORTED;
    s = job->s;
    if (job->in_enc == EQ_ENC_B1 && job->out_stage == EQ_OUT_SIGN && job->aux &&
        eq_fr_b1_layout(s, job->w->enc, &L)) {
        if (!job->scratch || job->scratch_bytes < L.total) return EQ_ERR_UNSUPPORTED;
        return eq_first_b1(job, &L);
    }
    if (job->in_enc == EQ_ENC_U8 && eq_fr_u8_layout(s, job->w->enc, job->out_stage, &L)) {
        if (!job->scratch || job->scratch_bytes < L.total) return EQ_ERR_UNSUPPORTED;
        if (job->out_stage == EQ_OUT_MULTI && (job->out_bits < 1u || job->out_bits > 8u))
            return EQ_ERR_UNSUPPORTED;
        if (!job->aux) return EQ_ERR_UNSUPPORTED;
        return eq_first_u8(job, &L);
    }
    return EQ_ERR_UNSUPPORTED;
}
