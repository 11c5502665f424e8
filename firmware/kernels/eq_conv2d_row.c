/* eq_conv2d_row: accumulators of one output row of a CONV layer (docs/blob-format.md, CONV).
 *
 * acc (out_w, out_c) int32. Activations are HWC: B1 (in_h, in_w, CW) uint32 or U8 (in_h, in_w,
 * in_c) uint8. Weight rows are in (ky, kx, c) order. Taps outside the input contribute 0.
 * One static function per (in_enc, w_enc) pair keeps every inner loop free of encoding switches.
 */
#include <string.h>

#include "eq_kernels.h"
#include "eq_bitdot.h"
#include "eq_conv_fast.h" /* eq_conv_dw_planes_u2 */

typedef struct {
    int32_t iy0, ix0;      /* input coordinates of tap (0, 0) */
    uint32_t ky0, ky1;     /* in-bounds kernel rows [ky0, ky1) */
    uint32_t kx0, kx1;     /* in-bounds kernel columns [kx0, kx1) */
} eq_taps_t;

static void eq_range(int32_t i0, uint32_t k, uint32_t n, uint32_t *lo, uint32_t *hi)
{
    int32_t a = i0 < 0 ? -i0 : 0;
    int32_t b = (int32_t)n - i0;
    if (b > (int32_t)k) b = (int32_t)k;
    if (b < a) b = a;
    *lo = (uint32_t)a;
    *hi = (uint32_t)b;
}

static void eq_taps(const eq_conv_shape_t *s, uint32_t oy, uint32_t ox, eq_taps_t *t)
{
    t->iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
    t->ix0 = (int32_t)(ox * eq_shape_stride_w(s)) - (int32_t)eq_shape_pad_w(s);
    eq_range(t->iy0, s->kh, s->in_h, &t->ky0, &t->ky1);
    eq_range(t->ix0, s->kw, s->in_w, &t->kx0, &t->kx1);
}

/* value of activation channel c at pixel pointer px (+-1 for B1, the code for U8) */
static int32_t eq_act_b1(const uint32_t *px, uint32_t c)
{
    return ((px[c >> 5] >> (c & 31u)) & 1u) ? 1 : -1;
}

/* ---- B1 activations ---------------------------------------------------------------------- */
/* B1 x B1, general. Interior output pixels (every tap inside the input): the kh*kw taps'
 * activation words are gathered once into a contiguous patch of K = taps * CW words (1x1
 * kernels use the input in place), so every output channel is one popcount of patch ^ weight
 * row over K contiguous words (eq_bitdot.h; the Thumb-2 DSP loop where there is one, two
 * channels per pass sharing the activation loads in C). Border pixels: one popcount per
 * kernel row over its in-bounds taps (contiguous in both the input and the weight row).
 * acc = n_in * C - 2 * pc in uint32 arithmetic (n_in * C <= 65025 * 65535 < 2^32). */
#define EQ_B1_PATCH 256u /* words of the patch buffer (1 KB of stack) */
#ifdef EQ_HAVE_B1_ROWS
#define EQ_B1_DSP(k) ((k) >= 3u) /* the assembly loop takes the pixel (borders too) */
#else
#define EQ_B1_DSP(k) 0
#endif
#define EQ_B1_NCH 64u    /* output channels per assembly call */

static void eq_b1_border(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt,
                         const eq_taps_t *t, uint32_t n0, uint32_t n1, int32_t *o)
{
    const uint32_t cw = EQ_WORDS(s->in_c), k = (uint32_t)s->kh * s->kw * cw;
    const uint32_t nbits = (t->ky1 - t->ky0) * (t->kx1 - t->kx0) * s->in_c;
    const uint32_t len = (t->kx1 - t->kx0) * cw;
    uint32_t n, ky;
    for (n = n0; n < n1; ++n) {
        const uint32_t *wr = wt + n * k;
        uint32_t pc = 0;
        for (ky = t->ky0; ky < t->ky1; ++ky) {
            const uint32_t *a = in + ((uint32_t)(t->iy0 + (int32_t)ky) * s->in_w
                                      + (uint32_t)(t->ix0 + (int32_t)t->kx0)) * cw;
            pc += eq_xor_pc(a, wr + (ky * s->kw + t->kx0) * cw, len);
        }
        o[n] = (int32_t)(nbits - 2u * pc);
    }
}

/* patch of output pixel t: its taps' words, zero for the taps outside the input */
static void eq_gather_b1(const eq_conv_shape_t *s, const uint32_t *in, const eq_taps_t *t,
                         uint32_t *patch)
{
    const uint32_t cw = EQ_WORDS(s->in_c);
    uint32_t ky, kx, i;
    for (ky = 0; ky < s->kh; ++ky) {
        const int in_y = ky >= t->ky0 && ky < t->ky1;
        for (kx = 0; kx < s->kw; ++kx) {
            uint32_t *d = patch + (ky * s->kw + kx) * cw;
            if (in_y && kx >= t->kx0 && kx < t->kx1) {
                const uint32_t *a = in + ((uint32_t)(t->iy0 + (int32_t)ky) * s->in_w
                                          + (uint32_t)(t->ix0 + (int32_t)kx)) * cw;
                for (i = 0; i < cw; ++i) d[i] = a[i];
            } else {
                for (i = 0; i < cw; ++i) d[i] = 0;
            }
        }
    }
}

/* the activation words of output pixel t in (ky, kx, c) order: the input itself for a 1x1
 * kernel, else gathered into patch (zero words outside the input) */
static const uint32_t *eq_patch_b1(const eq_conv_shape_t *s, const uint32_t *in,
                                   const eq_taps_t *t, int full, uint32_t *patch)
{
    const uint32_t cw = EQ_WORDS(s->in_c), seg = s->kw * cw;
    uint32_t ky, i;
    if (s->kh == 1u && s->kw == 1u && full)
        return in + ((uint32_t)t->iy0 * s->in_w + (uint32_t)t->ix0) * cw;
    if (!full) {
        eq_gather_b1(s, in, t, patch);
        return patch;
    }
    for (ky = 0; ky < s->kh; ++ky) {
        const uint32_t *a = in + ((uint32_t)(t->iy0 + (int32_t)ky) * s->in_w + (uint32_t)t->ix0) * cw;
        for (i = 0; i < seg; ++i) patch[ky * seg + i] = a[i];
    }
    return patch;
}

#ifdef EQ_HAVE_B1_ROWS
/* a zero patch word XORed with a weight word counts the weight's ones: corr[j] = popcount of
 * weight row j's words at the taps of t outside the input (taken off at border pixels). The
 * out-of-bounds word offsets are listed once (off, EQ_B1_PATCH entries of the caller's stack),
 * then each row's words are counted three at a time. */
/* word offsets (within a weight row) of the taps of t outside the input -> off; their count */
static uint32_t eq_oob_offsets(const eq_conv_shape_t *s, const eq_taps_t *t, uint16_t *off)
{
    const uint32_t cw = EQ_WORDS(s->in_c);
    uint32_t ky, kx, i, n = 0;
    for (ky = 0; ky < s->kh; ++ky)
        for (kx = 0; kx < s->kw; ++kx)
            if (!(ky >= t->ky0 && ky < t->ky1 && kx >= t->kx0 && kx < t->kx1))
                for (i = 0; i < cw; ++i) off[n++] = (uint16_t)((ky * s->kw + kx) * cw + i);
    return n;
}

static void eq_b1_corr(const eq_conv_shape_t *s, const uint32_t *w, uint32_t k,
                       const eq_taps_t *t, uint32_t nch, uint32_t *corr, uint16_t *off)
{
    const uint32_t n = eq_oob_offsets(s, t, off);
    uint32_t j, i;
    for (j = 0; j < nch; ++j, w += k) {
        uint32_t pc = 0;
        for (i = 0; i + 3u <= n; i += 3u)
            pc += eq_nibsum(eq_nib(w[off[i]]) + eq_nib(w[off[i + 1u]]) + eq_nib(w[off[i + 2u]]));
        for (; i < n; ++i) pc += eq_pc1(w[off[i]]);
        corr[j] = pc;
    }
}

/* Border pixels whose in-bounds weight words for all out_c channels fit in EQ_B1_CBUF words skip
 * the out-of-bounds taps: the in-bounds words of every weight row are copied, concatenated, into
 * cbuf once per set of out-of-bounds taps (rows of nv words), the patch's in-bounds words moved
 * to its front, and the same loop runs over nv < k words with base = n_in * C. Elsewhere (more
 * words, nv < 3) the zero-padded patch runs over all k words and the weights' ones at the
 * out-of-bounds taps are taken off (eq_b1_corr). */
#define EQ_B1_CBUF 512u /* words of the concatenated in-bounds weights (2 KB of stack) */

/* in-bounds words of the taps of t: nv = their count, in runs of len words, one run per
 * in-bounds kernel row (ky, from word (ky * kw + kx0) * cw of a row) */
static uint32_t eq_b1_valid_words(const eq_conv_shape_t *s, const eq_taps_t *t, uint32_t *len)
{
    *len = (t->kx1 - t->kx0) * EQ_WORDS(s->in_c);
    return (t->ky1 - t->ky0) * *len;
}

/* the in-bounds words of n rows of k words -> dst, rows of nv words: runs of len words, one
 * per in-bounds kernel row (rs = kw * CW words apart, the first at word first). */
typedef struct {
    uint32_t first, nr, len, rs;
} eq_runs_t;

static void eq_b1_compact(const uint32_t *src, uint32_t k, uint32_t n, const eq_runs_t *r,
                          uint32_t *dst)
{
    uint32_t j, q, i;
    src += r->first;
    if (r->len == r->rs) { /* the runs are contiguous: one run */
        const uint32_t m = r->nr * r->len;
        for (j = 0; j < n; ++j, src += k)
            for (i = 0; i < m; ++i) *dst++ = src[i];
    } else if (r->len == 2u && r->nr == 3u) { /* 3x3 kernels, C <= 32, left or right edge */
        const uint32_t rs = r->rs;
        for (j = 0; j < n; ++j, src += k, dst += 6) {
            const uint32_t x0 = src[0], x1 = src[1], x2 = src[rs], x3 = src[rs + 1u];
            const uint32_t x4 = src[2u * rs], x5 = src[2u * rs + 1u];
            dst[0] = x0;
            dst[1] = x1;
            dst[2] = x2;
            dst[3] = x3;
            dst[4] = x4;
            dst[5] = x5;
        }
    } else if (r->len == 2u) { /* 3x3 kernels on C <= 32: two words a kernel row */
        for (j = 0; j < n; ++j, src += k) {
            const uint32_t *a = src;
            for (q = 0; q < r->nr; ++q, a += r->rs, dst += 2) {
                const uint32_t x = a[0], y = a[1];
                dst[0] = x;
                dst[1] = y;
            }
        }
    } else {
        for (j = 0; j < n; ++j, src += k) {
            const uint32_t *a = src;
            for (q = 0; q < r->nr; ++q, a += r->rs)
                for (i = 0; i < r->len; ++i) *dst++ = a[i];
        }
    }
}

/* the assembly loop (eq_bitdot_dsp.c) over every output channel of one pixel's patch:
 * out = base - 2 * pc with base = n_in * C (fullb inside the image, and at border pixels over
 * the concatenated in-bounds words) or n_in * C + 2 * corr (computed when the out-of-bounds taps
 * change; kept in bb). The patch is gathered here (eq_patch_b1, or the in-bounds words only). */
static void eq_b1_pixel_dsp(const eq_conv_shape_t *s, const uint32_t *in, uint32_t *patch,
                            const uint32_t *wt, uint32_t k, const eq_taps_t *t, int full,
                            const uint32_t *fullb, uint32_t *key, uint32_t *bb, uint16_t *off,
                            uint32_t *cbuf, int32_t *o)
{
    const uint32_t nbits = (t->ky1 - t->ky0) * (t->kx1 - t->kx0) * s->in_c;
    uint32_t len, nv = eq_b1_valid_words(s, t, &len), kk = k;
    const int skip = !full && nv >= 3u && (uint32_t)s->out_c * nv <= EQ_B1_CBUF;
    const uint32_t key1 = (t->ky0 << 24) | (t->ky1 << 16) | (t->kx0 << 8) | t->kx1;
    const uint32_t *pa = patch;
    eq_b1_job_t job;
    uint32_t n0, j;
    if (skip) {
        const uint32_t cw = EQ_WORDS(s->in_c);
        uint32_t *d = patch, q, i;
        eq_runs_t r;
        r.rs = s->kw * cw;
        r.first = t->ky0 * r.rs + t->kx0 * cw;
        r.nr = t->ky1 - t->ky0;
        r.len = len;
        if (key1 != *key) {
            eq_b1_compact(wt, k, s->out_c, &r, cbuf);
            for (j = 0; j < EQ_B1_NCH; ++j) bb[j] = nbits;
            *key = key1;
        }
        for (q = t->ky0; q < t->ky1; ++q) { /* the in-bounds words of the input, in order */
            const uint32_t *a = in + ((uint32_t)(t->iy0 + (int32_t)q) * s->in_w
                                      + (uint32_t)(t->ix0 + (int32_t)t->kx0)) * cw;
            for (i = 0; i < len; ++i) *d++ = a[i];
        }
        wt = cbuf;
        kk = nv;
    } else {
        pa = eq_patch_b1(s, in, t, full, patch);
    }
    job.extra = 4u * (kk % 3u);
    job.by3 = kk % 3u ? 0u : kk == 6u ? 2u : (kk / 3u) % 3u == 0u;
    for (n0 = 0; n0 < s->out_c; n0 += EQ_B1_NCH) {
        const uint32_t *w = wt + n0 * kk;
        job.nch = s->out_c - n0 < EQ_B1_NCH ? s->out_c - n0 : EQ_B1_NCH;
        job.out = o + n0;
        job.base = full ? fullb : bb;
        if (!full && !skip && (key1 != *key || s->out_c > EQ_B1_NCH)) {
            eq_b1_corr(s, w, k, t, job.nch, bb, off); /* corr: kept while the taps stay */
            for (j = 0; j < job.nch; ++j) bb[j] = nbits + 2u * bb[j];
            *key = key1;
        }
        eq_b1_rows_dsp(pa, w, kk / 3u, &job);
    }
}
#endif

static void eq_row_b1_b1(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt,
                         uint32_t oy, int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), taps = (uint32_t)s->kh * s->kw, k = taps * cw;
    uint32_t patch[EQ_B1_PATCH];
#ifdef EQ_HAVE_B1_ROWS
    uint32_t fullb[EQ_B1_NCH], bb[EQ_B1_NCH], key = 0xFFFFFFFFu, cbuf[EQ_B1_CBUF];
    uint16_t off[EQ_B1_PATCH];
#endif
    uint32_t ox, j;
#ifdef EQ_HAVE_B1_ROWS
    for (j = 0; j < EQ_B1_NCH; ++j) fullb[j] = taps * s->in_c;
#endif
    for (ox = 0; ox < s->out_w; ++ox) {
        int32_t *o = acc + ox * s->out_c;
        const uint32_t *pa;
        const uint32_t nbits = taps * s->in_c;
        eq_taps_t t;
        uint32_t p0, p1;
        int full;
        eq_taps(s, oy, ox, &t);
        full = (t.ky1 - t.ky0) * (t.kx1 - t.kx0) == taps;
        if (k > EQ_B1_PATCH || (!full && !EQ_B1_DSP(k))) {
            eq_b1_border(s, in, wt, &t, 0, s->out_c, o);
            continue;
        }
#ifdef EQ_HAVE_B1_ROWS
        if (EQ_B1_DSP(k)) {
            eq_b1_pixel_dsp(s, in, patch, wt, k, &t, full, fullb, &key, bb, off, cbuf, o);
            continue;
        }
#endif
        pa = eq_patch_b1(s, in, &t, full, patch);
        for (j = 0; j + 2u <= s->out_c; j += 2u) {
            eq_xor_pc2(pa, wt + j * k, wt + (j + 1u) * k, k, &p0, &p1);
            o[j] = (int32_t)(nbits - 2u * p0);
            o[j + 1u] = (int32_t)(nbits - 2u * p1);
        }
        if (j < s->out_c) o[j] = (int32_t)(nbits - 2u * eq_xor_pc(pa, wt + j * k, k));
    }
}

/* B1 x B1 with few channels (C < 32, taps * C <= 256): each tap holds C bits in a word of its
 * own, so the general loop spends a load, XOR and popcount per tap for C useful bits. Here the
 * taps' C-bit fields of one output pixel are concatenated (bit t * C + c) into nwd <= 8 words,
 * with a valid-bit mask for the in-bounds taps (all ones inside the image), and the weights of
 * up to 256 / nwd output channels are concatenated the same way once per call (1 KB of stack);
 * an output is then one XOR + AND + popcount per word: n_in * C - 2 * popcount((a ^ w) & valid).
 * Out-of-bounds taps contribute 0, exactly as in the general loop. */
#define EQ_DENSE_WORDS 8u
#define EQ_DENSE_BUF 256u

/* the dense paths apply when every tap's C < 32 bits fit, concatenated, in EQ_DENSE_WORDS words */
static int eq_few_channels(const eq_conv_shape_t *s)
{
    return s->in_c < 32u && (uint32_t)s->kh * s->kw * s->in_c <= 32u * EQ_DENSE_WORDS;
}

static void eq_put_bits(uint32_t *dst, uint32_t pos, uint32_t val, uint32_t c)
{
    const uint32_t sh = pos & 31u;
    dst[pos >> 5] |= val << sh;
    if (sh + c > 32u) dst[(pos >> 5) + 1u] |= val >> (32u - sh);
}

/* B1 x B1 with C <= 16 input channels (each tap's C bits in the low half of its word): two
 * output pixels per word. Per kernel row in the input, Q[x] = P[x] | P[x + sw] << 16 with P the
 * zero-padded row of C-bit fields (padded column x' = input column x' - pad_w), so the word of
 * tap (ky, kx) for the output pair (ox, ox + 1) is Q_ky[ox * sw + kx], and the weights are
 * duplicated into both halves once per call chunk. A pair costs, per output channel and tap,
 * two loads, an XOR and a 4-bit SWAR count (three taps summed per nibble, then bytes); the
 * byte counts of the two halves are the two pixels' popcounts. Kernel rows outside the input
 * are skipped; columns outside read P = 0 and count popcount(w) there, which border pixels
 * subtract (corr). acc = n_in * C - 2 * (pc - corr), as the general loop. */
#define EQ_PAIR_QBUF 192u /* words of the kh pair rows (768 B of stack) */
#define EQ_PAIR_WBUF 192u /* duplicated weight words of a chunk of channels (768 B of stack) */
#define EQ_PAIR_MAXT 31u  /* taps kh * kw: at most 8 a tap in a byte count */

static uint32_t eq_pair_nq(const eq_conv_shape_t *s)
{
    const uint32_t ow2 = (s->out_w + 1u) & ~1u;
    return (ow2 - 2u) * eq_shape_stride_w(s) + s->kw;
}

/* (1x1 kernels stay on the dense path: one word a pixel there already) */
static int eq_pair_fits(const eq_conv_shape_t *s)
{
    const uint32_t taps = (uint32_t)s->kh * s->kw;
    return s->in_c <= 16u && taps >= 3u && taps <= EQ_PAIR_MAXT && taps <= EQ_PAIR_WBUF &&
           (uint32_t)s->kh * eq_pair_nq(s) <= EQ_PAIR_QBUF;
}

/* 4-bit counts of x's nibbles (<= 4 each) */
static inline uint32_t eq_pair_nib(uint32_t x)
{
    x -= (x >> 1) & 0x55555555u;
    return (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
}

/* byte counts of (q[t] ^ w[t]) over t < n (n <= 31), nibbles summed three taps at a time */
static inline uint32_t eq_pair_count(const uint32_t *q, const uint32_t *w, uint32_t n)
{
    uint32_t b = 0, t = 0, v;
    for (; t + 3u <= n; t += 3u) {
        v = eq_pair_nib(q[t] ^ w[t]) + eq_pair_nib(q[t + 1u] ^ w[t + 1u]) + eq_pair_nib(q[t + 2u] ^ w[t + 2u]);
        b += (v & 0x0F0F0F0Fu) + ((v >> 4) & 0x0F0F0F0Fu);
    }
    if (t < n) {
        v = eq_pair_nib(q[t] ^ w[t]);
        if (t + 1u < n) v += eq_pair_nib(q[t + 1u] ^ w[t + 1u]);
        b += (v & 0x0F0F0F0Fu) + ((v >> 4) & 0x0F0F0F0Fu);
    }
    return b;
}

/* 3x3 kernels: one kernel row of three taps */
#if defined(__thumb2__) && defined(__GNUC__)
/* Thumb-2: the masks in registers (AND with a shifted operand), 30 instructions */
static inline uint32_t eq_pair_count3(const uint32_t *q, const uint32_t *w, uint32_t m5, uint32_t m3,
                                      uint32_t mf)
{
    uint32_t a0, a1, a2, t;
    __asm__("ldr %[a0], [%[q]]\n\t"
            "ldr %[a1], [%[q], #4]\n\t"
            "ldr %[a2], [%[q], #8]\n\t"
            "ldr %[t], [%[w]]\n\t"
            "eor %[a0], %[a0], %[t]\n\t"
            "ldr %[t], [%[w], #4]\n\t"
            "eor %[a1], %[a1], %[t]\n\t"
            "ldr %[t], [%[w], #8]\n\t"
            "eor %[a2], %[a2], %[t]\n\t"
            "and %[t], %[m5], %[a0], lsr #1\n\t"
            "sub %[a0], %[a0], %[t]\n\t"
            "and %[t], %[m3], %[a0], lsr #2\n\t"
            "and %[a0], %[a0], %[m3]\n\t"
            "add %[a0], %[a0], %[t]\n\t"
            "and %[t], %[m5], %[a1], lsr #1\n\t"
            "sub %[a1], %[a1], %[t]\n\t"
            "and %[t], %[m3], %[a1], lsr #2\n\t"
            "and %[a1], %[a1], %[m3]\n\t"
            "add %[a0], %[a0], %[a1]\n\t"
            "add %[a0], %[a0], %[t]\n\t"
            "and %[t], %[m5], %[a2], lsr #1\n\t"
            "sub %[a2], %[a2], %[t]\n\t"
            "and %[t], %[m3], %[a2], lsr #2\n\t"
            "and %[a2], %[a2], %[m3]\n\t"
            "add %[a0], %[a0], %[a2]\n\t"
            "add %[a0], %[a0], %[t]\n\t"
            "and %[t], %[mf], %[a0], lsr #4\n\t"
            "and %[a0], %[a0], %[mf]\n\t"
            "add %[a0], %[a0], %[t]"
            : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [t] "=&r"(t)
            : [q] "r"(q), [w] "r"(w), [m5] "r"(m5), [m3] "r"(m3), [mf] "r"(mf)
            : "memory");
    return a0;
}
#else
static inline uint32_t eq_pair_count3(const uint32_t *q, const uint32_t *w, uint32_t m5, uint32_t m3,
                                      uint32_t mf)
{
    const uint32_t v = eq_pair_nib(q[0] ^ w[0]) + eq_pair_nib(q[1] ^ w[1]) + eq_pair_nib(q[2] ^ w[2]);
    (void)m5;
    (void)m3;
    return (v & mf) + ((v >> 4) & mf);
}
#endif

/* popcount over the kernel columns outside [kx0, kx1) of the rows [ky0, ky1), weight row w
 * (duplicated halves: the low half counts) */
static uint32_t eq_pair_corr(const uint32_t *w, uint32_t kw, uint32_t ky0, uint32_t ky1,
                             uint32_t kx0, uint32_t kx1)
{
    uint32_t c = 0, ky, kx;
    for (ky = ky0; ky < ky1; ++ky) {
        const uint32_t *r = w + ky * kw;
        for (kx = 0; kx < kx0 && kx < kw; ++kx) c += eq_popcount32(r[kx] & 0xFFFFu); /* kx0 may pass kw */
        for (kx = kx1; kx < kw; ++kx) c += eq_popcount32(r[kx] & 0xFFFFu);
    }
    return c;
}

#if defined(__thumb2__) && defined(__GNUC__)
/* eq_pair9_asm(q, nq, w, nch, pc): 3x3 kernels, all three kernel rows in the input. For j < nch:
 * b = byte counts of (q[r * nq + kx] ^ w[9 j + 3 r + kx]) over r, kx < 3, and
 * pc[j] = (b & 0x00FF00FF) + ((b >> 8) & 0x00FF00FF): the two halves' popcounts (low = the pair's
 * first pixel). Per kernel row: two LDMs, three EORs, a carry-save adder (s + 2c = x0 + x1 + x2),
 * 4-bit counts of s and c, n = s + 2c (<= 12 a nibble), bytes of n added up (<= 72 a byte):
 * 25 instructions; 84 a channel (two output pixels). */
#define EQ_PAIR_ROW(FIRST)                                                                       \
    "    ldm r10, {r4, r5, r6}\n"                                                             \
    "    ldm r2!, {r7, r8, r9}\n"                                                             \
    "    eor r4, r4, r7\n"                                                                    \
    "    eor r5, r5, r8\n"                                                                    \
    "    eor r6, r6, r9\n"                                                                    \
    "    eor r7, r4, r5\n"                                                                    \
    "    and r4, r4, r5\n"                                                                    \
    "    and r5, r7, r6\n"                                                                    \
    "    eor r7, r7, r6\n"                                                                    \
    "    orr r4, r4, r5\n"                                                                    \
    "    and r8, r7, #0xAAAAAAAA\n"                                                           \
    "    sub r7, r7, r8, lsr #1\n"                                                            \
    "    and r8, r7, #0xCCCCCCCC\n"                                                           \
    "    and r7, r7, #0x33333333\n"                                                           \
    "    add r7, r7, r8, lsr #2\n"                                                            \
    "    and r8, r4, #0xAAAAAAAA\n"                                                           \
    "    sub r4, r4, r8, lsr #1\n"                                                            \
    "    and r8, r4, #0xCCCCCCCC\n"                                                           \
    "    and r4, r4, #0x33333333\n"                                                           \
    "    add r4, r4, r8, lsr #2\n"                                                            \
    "    add r7, r7, r4, lsl #1\n"                                                            \
    "    and r8, r7, #0x0F0F0F0F\n"                                                           \
    "    and r7, r7, #0xF0F0F0F0\n"                                                           \
    FIRST

__asm__(
    "    .syntax unified\n"
    "    .thumb\n"
    "    .text\n"
    "    .align 2\n"
    "    .global eq_pair9_asm\n"
    "    .thumb_func\n"
    "    .type eq_pair9_asm, %function\n"
    "eq_pair9_asm:\n"
    "    push {r4-r11, lr}\n"
    "    ldr r12, [sp, #36]\n"          /* pc */
    "    lsl r1, r1, #2\n"              /* row stride in bytes */
    "1:\n"
    "    mov r10, r0\n"
    EQ_PAIR_ROW("    add r11, r8, r7, lsr #4\n")
    "    add r10, r10, r1\n"
    EQ_PAIR_ROW("    add r8, r8, r7, lsr #4\n    add r11, r11, r8\n")
    "    add r10, r10, r1\n"
    EQ_PAIR_ROW("    add r8, r8, r7, lsr #4\n    add r11, r11, r8\n")
    "    and r4, r11, #0x00FF00FF\n"
    "    and r11, r11, #0xFF00FF00\n"
    "    add r4, r4, r11, lsr #8\n"
    "    str r4, [r12], #4\n"
    "    subs r3, r3, #1\n"
    "    bne 1b\n"
    "    pop {r4-r11, pc}\n"
    "    .size eq_pair9_asm, .-eq_pair9_asm\n");
#undef EQ_PAIR_ROW
void eq_pair9_asm(const uint32_t *q, uint32_t nq, const uint32_t *w, uint32_t nch, uint32_t *pc);
#define EQ_HAVE_PAIR9 1
#endif

static void eq_row_b1_b1_pair(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt,
                              uint32_t oy, int32_t *acc)
{
    const uint32_t c = s->in_c, kh = s->kh, kw = s->kw, taps = kh * kw;
    const uint32_t sw = eq_shape_stride_w(s), pw = eq_shape_pad_w(s), nq = eq_pair_nq(s);
    const uint32_t cm = (1u << c) - 1u, chunk = EQ_PAIR_WBUF / taps, nout = s->out_c;
    uint32_t qb[EQ_PAIR_QBUF], wd[EQ_PAIR_WBUF];
    uint32_t m5 = 0x55555555u, m3 = 0x33333333u, mf = 0x0F0F0F0Fu;
    uint32_t pcb[EQ_PAIR_WBUF / 3u]; /* a chunk's pair counts (taps >= 3) */
    eq_taps_t t0;
    uint32_t ky, x, n0, ox, j, nrow, ky0, ky1;
    eq_taps(s, oy, 0, &t0);
    ky0 = t0.ky0;
    ky1 = t0.ky1;
    nrow = ky1 - ky0;
    for (ky = ky0; ky < ky1; ++ky) { /* pair rows of the in-bounds kernel rows */
        const uint32_t *row = in + (uint32_t)(t0.iy0 + (int32_t)ky) * s->in_w;
        uint32_t *q = qb + (ky - ky0) * nq;
        for (x = 0; x < nq; ++x) {
            const uint32_t a = x - pw, b = x + sw - pw; /* input columns (wrap = outside) */
            const uint32_t lo = a < s->in_w ? row[a] & cm : 0u, hi = b < s->in_w ? row[b] & cm : 0u;
            q[x] = lo | hi << 16;
        }
    }
    for (n0 = 0; n0 < nout; n0 += chunk) {
        const uint32_t nch = nout - n0 < chunk ? nout - n0 : chunk;
        for (j = 0; j < nch * taps; ++j) wd[j] = (wt[n0 * taps + j] & cm) * 0x10001u;
        for (ox = 0; ox < s->out_w; ox += 2u) {
            const int two = ox + 1u < s->out_w;
            const uint32_t *q0 = qb + ox * sw;
            int32_t *o = acc + ox * nout + n0;
            eq_taps_t ta, tb;
            uint32_t na, nb;
            int ba, bb;
            eq_taps(s, oy, ox, &ta);
            eq_taps(s, oy, two ? ox + 1u : ox, &tb);
            na = nrow * (ta.kx1 - ta.kx0) * c;
            nb = nrow * (tb.kx1 - tb.kx0) * c;
            ba = ta.kx1 - ta.kx0 != kw;
            bb = tb.kx1 - tb.kx0 != kw;
#ifdef EQ_HAVE_PAIR9
            if (kh == 3u && kw == 3u && nrow == 3u) {
                eq_pair9_asm(q0, nq, wd, nch, pcb);
            } else
#endif
            {
                for (j = 0; j < nch; ++j) {
                    const uint32_t *w = wd + j * taps;
                    uint32_t b = 0, r;
                    if (kw == 3u) {
                        for (r = 0; r < nrow; ++r) b += eq_pair_count3(q0 + r * nq, w + (ky0 + r) * 3u, m5, m3, mf);
                    } else {
                        for (r = 0; r < nrow; ++r) b += eq_pair_count(q0 + r * nq, w + (ky0 + r) * kw, kw);
                    }
                    pcb[j] = (b & 0x00FF00FFu) + ((b >> 8) & 0x00FF00FFu); /* halves: the two pixels */
                }
            }
            if (two) {
                for (j = 0; j < nch; ++j) {
                    o[j] = (int32_t)(na - 2u * (pcb[j] & 0xFFFFu));
                    o[nout + j] = (int32_t)(nb - 2u * (pcb[j] >> 16));
                }
            } else {
                for (j = 0; j < nch; ++j) o[j] = (int32_t)(na - 2u * (pcb[j] & 0xFFFFu));
            }
            /* border pixels: the columns outside counted popcount(w) there */
            for (j = 0; ba && j < nch; ++j)
                o[j] += (int32_t)(2u * eq_pair_corr(wd + j * taps, kw, ky0, ky1, ta.kx0, ta.kx1));
            for (j = 0; two && bb && j < nch; ++j)
                o[nout + j] += (int32_t)(2u * eq_pair_corr(wd + j * taps, kw, ky0, ky1, tb.kx0, tb.kx1));
        }
    }
}

static void eq_row_b1_b1_dense(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt,
                               uint32_t oy, int32_t *acc)
{
    const uint32_t c = s->in_c, taps = (uint32_t)s->kh * s->kw, nwd = EQ_WORDS(taps * c);
    const uint32_t cm = (1u << c) - 1u, chunk = EQ_DENSE_BUF / nwd; /* c < 32 */
    uint32_t wd[EQ_DENSE_BUF], vfull[EQ_DENSE_WORDS];
    uint32_t n0, ox, j, q, ky, kx;
    for (q = 0; q < nwd; ++q) vfull[q] = 0;
    for (q = 0; q < taps; ++q) eq_put_bits(vfull, q * c, cm, c);
    for (n0 = 0; n0 < s->out_c; n0 += chunk) {
        const uint32_t nch = (s->out_c - n0) < chunk ? s->out_c - n0 : chunk;
        for (j = 0; j < nch * nwd; ++j) wd[j] = 0;
        for (j = 0; j < nch; ++j) { /* weight rows (taps, 1 word each) -> concatenated bits */
            const uint32_t *wr = wt + (n0 + j) * taps;
            for (q = 0; q < taps; ++q) eq_put_bits(wd + j * nwd, q * c, wr[q] & cm, c);
        }
        for (ox = 0; ox < s->out_w; ++ox) {
            uint32_t ad[EQ_DENSE_WORDS], vb[EQ_DENSE_WORDS];
            const uint32_t *vm = vfull;
            int32_t *o = acc + ox * s->out_c + n0;
            eq_taps_t t;
            int32_t nbits;
            eq_taps(s, oy, ox, &t);
            nbits = (int32_t)((t.ky1 - t.ky0) * (t.kx1 - t.kx0) * c);
            for (q = 0; q < nwd; ++q) ad[q] = 0;
            if ((uint32_t)nbits != taps * c) { /* border: mask of the in-bounds taps */
                for (q = 0; q < nwd; ++q) vb[q] = 0;
                for (ky = t.ky0; ky < t.ky1; ++ky)
                    for (kx = t.kx0; kx < t.kx1; ++kx) eq_put_bits(vb, (ky * s->kw + kx) * c, cm, c);
                vm = vb;
            }
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                const uint32_t *arow = in + (uint32_t)(t.iy0 + (int32_t)ky) * s->in_w;
                for (kx = t.kx0; kx < t.kx1; ++kx)
                    eq_put_bits(ad, (ky * s->kw + kx) * c,
                                arow[(uint32_t)(t.ix0 + (int32_t)kx)] & cm, c);
            }
            if (nwd == 1u) {
                const uint32_t a0 = ad[0], v0 = vm[0];
                for (j = 0; j < nch; ++j)
                    o[j] = nbits - 2 * (int32_t)eq_popcount32((a0 ^ wd[j]) & v0);
            } else {
                for (j = 0; j < nch; ++j) {
                    const uint32_t *w = wd + j * nwd;
                    uint32_t pc = 0;
                    for (q = 0; q < nwd; ++q) pc += eq_popcount32((ad[q] ^ w[q]) & vm[q]);
                    o[j] = nbits - 2 * (int32_t)pc;
                }
            }
        }
    }
}

#ifdef EQ_HAVE_B1_ROWS
/* B1 x TERN on DSP cores: as eq_row_b1_b1 (patch per output pixel, zero words outside the
 * input), through eq_tern_rows_dsp: acc = base - 2 * popcount(z & (patch ^ s)) with base =
 * popcount(z) over the in-bounds taps. Per chunk of output channels fullb = popcount of each
 * whole nonzero row; at border pixels a zero patch word counts z & s, so the base there is
 * fullb - popcount(z_oob) + 2 * popcount((z & s)_oob), recomputed when the taps out change. */
/* one chunk of nch <= EQ_B1_NCH output channels (rows w, 2k words each) into acc channels n0.. */
static void eq_tern_chunk_dsp(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *w,
                              uint32_t n0, uint32_t nch, uint32_t oy, int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), taps = (uint32_t)s->kh * s->kw, k = taps * cw;
    const uint32_t g = k / 3u, r = k - 3u * g;
    uint32_t patch[EQ_B1_PATCH], fullb[EQ_B1_NCH], bb[EQ_B1_NCH], key = 0xFFFFFFFFu;
    uint16_t off[EQ_B1_PATCH];
    eq_b1_job_t job;
    uint32_t ox, j, q;
    job.extra = 4u * r;
    job.by3 = g % 3u == 0u && r == 0u;
    job.kbytes = 4u * k;
    job.nch = nch;
    for (j = 0; j < nch; ++j) fullb[j] = eq_pc_words(w + j * 2u * k + k, k);
    for (ox = 0; ox < s->out_w; ++ox) {
        const uint32_t *pa = patch;
        eq_taps_t t;
        int full;
        eq_taps(s, oy, ox, &t);
        full = (t.ky1 - t.ky0) * (t.kx1 - t.kx0) == taps;
        pa = eq_patch_b1(s, in, &t, full, patch);
        job.base = fullb;
        if (!full) {
            const uint32_t kk = (t.ky0 << 24) | (t.ky1 << 16) | (t.kx0 << 8) | t.kx1;
            if (kk != key) {
                const uint32_t n = eq_oob_offsets(s, &t, off);
                for (j = 0; j < nch; ++j) {
                    const uint32_t *sg = w + j * 2u * k, *nz = sg + k;
                    uint32_t b = fullb[j];
                    for (q = 0; q < n; ++q)
                        b = b - eq_pc1(nz[off[q]]) + 2u * eq_pc1(nz[off[q]] & sg[off[q]]);
                    bb[j] = b;
                }
                key = kk;
            }
            job.base = bb;
        }
        job.out = acc + ox * s->out_c + n0;
        eq_tern_rows_dsp(pa, w, g, &job);
    }
}

static void eq_row_b1_tern_dsp(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt,
                               uint32_t oy, int32_t *acc)
{
    const uint32_t k = (uint32_t)s->kh * s->kw * EQ_WORDS(s->in_c);
    uint32_t n0;
    for (n0 = 0; n0 < s->out_c; n0 += EQ_B1_NCH)
        eq_tern_chunk_dsp(s, in, wt + n0 * 2u * k, n0,
                          s->out_c - n0 < EQ_B1_NCH ? s->out_c - n0 : EQ_B1_NCH, oy, acc);
}
#endif

static void eq_row_b1_tern(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt,
                           uint32_t oy, int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), taps = (uint32_t)s->kh * s->kw;
    uint32_t ox, n, ky, kx, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (n = 0; n < s->out_c; ++n) {
            const uint32_t *sg = wt + (uint32_t)n * 2u * taps * cw;
            const uint32_t *nz = sg + taps * cw;
            int32_t sum = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                const uint32_t *arow = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w) * cw;
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint32_t *a = arow + (uint32_t)(t.ix0 + (int32_t)kx) * cw;
                    const uint32_t off = (ky * s->kw + kx) * cw;
                    for (i = 0; i < cw; ++i) {
                        uint32_t z = nz[off + i];
                        sum += (int32_t)eq_popcount32(z)
                               - 2 * (int32_t)eq_popcount32(z & (a[i] ^ sg[off + i]));
                    }
                }
            }
            acc[ox * s->out_c + n] = sum;
        }
    }
}

/* ---- I8 / I16 weights ----------------------------------------------------------------------
 * One loop per activation encoding for both integer widths: the wrappers pass `wide` as a
 * constant, so each inlined copy reads its own type with no per-element test. */
#if defined(__GNUC__)
#define EQ_INLINE_ALWAYS static inline __attribute__((always_inline))
#define EQ_NOINLINE static __attribute__((noinline))
#else
#define EQ_INLINE_ALWAYS static inline
#define EQ_NOINLINE static
#endif
#define EQ_WINT(w, j, wide)                                                                       \
    ((wide) ? (int32_t)((const int16_t *)(const void *)(w))[j]                                    \
            : (int32_t)((const int8_t *)(const void *)(w))[j])

EQ_INLINE_ALWAYS void eq_row_b1_int(const eq_conv_shape_t *s, const uint32_t *in, const void *wt,
                                    int wide, uint32_t oy, int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), c = s->in_c, taps = (uint32_t)s->kh * s->kw;
    const uint32_t esz = wide ? 2u : 1u;
    uint32_t ox, n, ky, kx, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (n = 0; n < s->out_c; ++n) {
            const uint8_t *wr = (const uint8_t *)wt + (uint32_t)n * taps * c * esz;
            int32_t sum = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint32_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                              + (uint32_t)(t.ix0 + (int32_t)kx)) * cw;
                    const uint8_t *w = wr + (ky * s->kw + kx) * c * esz;
                    for (i = 0; i < c; ++i) sum += eq_act_b1(a, i) * EQ_WINT(w, i, wide);
                }
            }
            acc[ox * s->out_c + n] = sum;
        }
    }
}

static void eq_row_b1_i8(const eq_conv_shape_t *s, const uint32_t *in, const void *wt,
                         uint32_t oy, int32_t *acc)
{
    eq_row_b1_int(s, in, wt, 0, oy, acc);
}

static void eq_row_b1_i16(const eq_conv_shape_t *s, const uint32_t *in, const void *wt,
                          uint32_t oy, int32_t *acc)
{
    eq_row_b1_int(s, in, wt, 1, oy, acc);
}

/* ---- KBIT weights -------------------------------------------------------------------------
 * Each weight row (K = kh*kw*in_c codes in (ky, kx, c) order) is packed LSB-first at sb bits a
 * code, sb = the smallest of 1, 2, 4, 8 with 2**sb >= lut_rows (the blob's lut has 2**bits rows):
 * code j sits at bits (j*sb) % 8 of byte j*sb / 8; rows are padded to whole 32-bit words.
 * The in-bounds taps of one kernel row are contiguous in the weight row, so their codes are
 * decoded EQ_KBIT_CHUNK at a time into a stack buffer (8-bit slots are read in place). */
#define EQ_KBIT_CHUNK 64u

static uint32_t eq_kbit_slot(uint32_t lut_rows)
{
    return lut_rows <= 2u ? 1u : lut_rows <= 4u ? 2u : lut_rows <= 16u ? 4u : 8u;
}

static uint32_t eq_kbit_row_bytes(uint32_t k, uint32_t sb)
{
    const uint32_t per_word = 32u / sb;
    return 4u * (k / per_word + (k % per_word != 0u));
}

/* codes j .. j+cnt-1 (1 <= cnt <= EQ_KBIT_CHUNK) of the packed row: in place for sb == 8, else
 * decoded into buf; reads only the bytes holding those codes */
static const uint8_t *eq_kbit_codes(const uint8_t *row, uint32_t j, uint32_t cnt, uint32_t sb,
                                    uint8_t *buf)
{
    const uint32_t lg = sb == 1u ? 3u : sb == 2u ? 2u : 1u; /* log2(codes per byte) */
    const uint32_t per = 1u << lg, cm = (1u << sb) - 1u;
    const uint8_t *p;
    uint32_t q, v, i;
    if (sb == 8u) return row + j;
    p = row + (j >> lg);
    q = j & (per - 1u);
    v = (uint32_t)*p++ >> (q * sb);
    for (i = 0; i < cnt; ++i) {
        if (q == per) {
            q = 0;
            v = *p++;
        }
        buf[i] = (uint8_t)(v & cm);
        v >>= sb;
        ++q;
    }
    return buf;
}

EQ_NOINLINE void eq_row_b1_kbit(const eq_conv_shape_t *s, const uint32_t *in, const uint8_t *wt,
                           const int32_t *lut, uint32_t lut_rows, uint32_t lut_cols, uint32_t oy,
                           int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), c = s->in_c, sb = eq_kbit_slot(lut_rows);
    const uint32_t rb = eq_kbit_row_bytes((uint32_t)s->kh * s->kw * c, sb);
    uint8_t buf[EQ_KBIT_CHUNK];
    uint32_t ox, n, ky, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (n = 0; n < s->out_c; ++n) {
            const uint8_t *wr = wt + n * rb;
            int32_t sum = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                /* taps kx0..kx1-1 of this kernel row: codes j0.. j0+len-1, pixels in a row */
                const uint32_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                          + (uint32_t)(t.ix0 + (int32_t)t.kx0)) * cw;
                const uint32_t j0 = (ky * s->kw + t.kx0) * c, len = (t.kx1 - t.kx0) * c;
                uint32_t done, cnt, ch = 0;
                for (done = 0; done < len; done += cnt) {
                    const uint8_t *w;
                    cnt = len - done < EQ_KBIT_CHUNK ? len - done : EQ_KBIT_CHUNK;
                    w = eq_kbit_codes(wr, j0 + done, cnt, sb, buf);
                    for (i = 0; i < cnt; ++i) {
                        sum += lut[(uint32_t)w[i] * lut_cols + ((a[ch >> 5] >> (ch & 31u)) & 1u)];
                        if (++ch == c) {
                            ch = 0;
                            a += cw;
                        }
                    }
                }
            }
            acc[ox * s->out_c + n] = sum;
        }
    }
}

/* ---- U8 activations ---------------------------------------------------------------------- */
/* U8 x B1: acc = sum over in-bounds taps of (w ? a : -a) = 2 * sum_{w bit 1} a - sum a. The
 * in-bounds activations' total is taken once per output pixel; per output channel only the set
 * weight bits are visited (pad bits are 0, validated by the loader, so indices stay below C). */

#if defined(__GNUC__)
#define EQ_CTZ(x) ((uint32_t)__builtin_ctz(x))
#else
static uint32_t EQ_CTZ(uint32_t x)
{
    uint32_t n = 0;
    while (!(x & 1u)) {
        x >>= 1;
        ++n;
    }
    return n;
}
#endif

/* U8 x B1 with few channels (C < 32, taps * C <= 256): as in the B1 x B1 dense path, the weight
 * rows' C-bit tap fields are concatenated once per call; per output pixel the in-bounds
 * activations are gathered into v (out-of-bounds taps stay 0, so they contribute 0) and each
 * output is 2 * (sum of v over the set weight bits) - sum(v). */
static void eq_row_u8_b1_dense(const eq_conv_shape_t *s, const uint8_t *in, const uint32_t *wt,
                               uint32_t oy, int32_t *acc)
{
    const uint32_t c = s->in_c, taps = (uint32_t)s->kh * s->kw, k = taps * c, nwd = EQ_WORDS(k);
    const uint32_t cm = (1u << c) - 1u, chunk = EQ_DENSE_BUF / nwd; /* c < 32 */
    uint32_t wd[EQ_DENSE_BUF];
    uint8_t v[32u * EQ_DENSE_WORDS];
    uint32_t n0, ox, j, q, i, ky, kx;
    for (n0 = 0; n0 < s->out_c; n0 += chunk) {
        const uint32_t nch = (s->out_c - n0) < chunk ? s->out_c - n0 : chunk;
        for (j = 0; j < nch * nwd; ++j) wd[j] = 0;
        for (j = 0; j < nch; ++j) { /* weight rows (taps, 1 word each) -> concatenated bits */
            const uint32_t *wr = wt + (n0 + j) * taps;
            for (q = 0; q < taps; ++q) eq_put_bits(wd + j * nwd, q * c, wr[q] & cm, c);
        }
        for (ox = 0; ox < s->out_w; ++ox) {
            int32_t *o = acc + ox * s->out_c + n0;
            int32_t total = 0;
            eq_taps_t t;
            eq_taps(s, oy, ox, &t);
            for (q = 0; q < k; ++q) v[q] = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                             + (uint32_t)(t.ix0 + (int32_t)kx)) * c;
                    uint8_t *vt = v + (ky * s->kw + kx) * c;
                    for (i = 0; i < c; ++i) {
                        vt[i] = a[i];
                        total += a[i];
                    }
                }
            }
            for (j = 0; j < nch; ++j) {
                const uint32_t *w = wd + j * nwd;
                int32_t pos = 0;
                for (q = 0; q < nwd; ++q) {
                    uint32_t bits = w[q];
                    const uint8_t *vq = v + 32u * q;
                    while (bits) {
                        pos += vq[EQ_CTZ(bits)];
                        bits &= bits - 1u;
                    }
                }
                o[j] = 2 * pos - total;
            }
        }
    }
}

/* U8 x B1 by masked byte sums: acc = 2 * P - T, T = the sum of the in-bounds activations and
 * P = their sum over the set weight bits. Per output pixel the taps' activation bytes are
 * gathered into a patch of K = taps * C bytes (zero outside the input, so those taps add
 * nothing to P or T), padded to KW whole words; per chunk of output channels the weight bits
 * are expanded once into byte masks (0xFF where the bit is 1) in the same (ky, kx, c) order, and
 * P = sum over the words of bytesum(patch & mask): USADA8 on DSP cores, two 16-bit lane sums
 * elsewhere (lanes <= 255 * EQ_U8_PATCH / 4 < 2^16). */
#define EQ_U8_PATCH 512u /* bytes of the patch (the portable path runs on 4 KB-stack M3 boards) */
#define EQ_U8_MASKS 256u /* words of expanded weight masks (1 KB) */

static const uint32_t eq_nib_bytes[16] = {
    0x00000000u, 0x000000FFu, 0x0000FF00u, 0x0000FFFFu, 0x00FF0000u, 0x00FF00FFu, 0x00FFFF00u,
    0x00FFFFFFu, 0xFF000000u, 0xFF0000FFu, 0xFF00FF00u, 0xFF00FFFFu, 0xFFFF0000u, 0xFFFF00FFu,
    0xFFFFFF00u, 0xFFFFFFFFu};

/* byte masks of weight rows n0 .. n0+nch-1 -> m (nch, kw words), pad bytes 0 */
static void eq_u8_masks(const eq_conv_shape_t *s, const uint32_t *wt, uint32_t n0, uint32_t nch,
                        uint32_t kw, uint32_t *m)
{
    const uint32_t c = s->in_c, cw = EQ_WORDS(c), taps = (uint32_t)s->kh * s->kw;
    uint32_t j, t, i;
    for (j = 0; j < nch; ++j) {
        const uint32_t *wr = wt + (n0 + j) * taps * cw;
        uint32_t *mj = m + j * kw;
        uint8_t *mb = (uint8_t *)mj;
        mj[kw - 1u] = 0;
        for (t = 0; t < taps; ++t) {
            const uint32_t *wb = wr + t * cw;
            if ((c & 3u) == 0u) { /* four bits -> one mask word */
                uint32_t *d = mj + t * (c >> 2);
                for (i = 0; i < c; i += 4u) d[i >> 2] = eq_nib_bytes[(wb[i >> 5] >> (i & 31u)) & 15u];
            } else if (c < 32u && taps * c <= 32u) { /* few channels: the taps' bits in a word */
                uint32_t bits = 0;
                for (t = 0; t < taps; ++t) bits |= (wr[t] & ((1u << c) - 1u)) << (t * c);
                for (i = 0; i < kw; ++i) mj[i] = eq_nib_bytes[(bits >> (4u * i)) & 15u];
                break;
            } else {
                for (i = 0; i < c; ++i)
                    mb[t * c + i] = (uint8_t)(0u - ((wb[i >> 5] >> (i & 31u)) & 1u));
            }
        }
    }
}

/* sum of the bytes of (p & m) over n words */
EQ_INLINE_ALWAYS uint32_t eq_u8_masked_sum(const uint32_t *p, const uint32_t *m, uint32_t n)
{
    uint32_t i;
#ifdef EQ_HAVE_DSP
    uint32_t acc = 0;
    for (i = 0; i < n; ++i) acc = __usada8(p[i] & m[i], 0u, acc);
    return acc;
#else
    uint32_t lo = 0, hi = 0;
    for (i = 0; i < n; ++i) {
        const uint32_t x = p[i] & m[i];
        lo += x & 0x00FF00FFu;
        hi += (x >> 8) & 0x00FF00FFu;
    }
    return (lo & 0xFFFFu) + (lo >> 16) + (hi & 0xFFFFu) + (hi >> 16);
#endif
}

/* nch outputs of one pixel from kw words of patch */
static void eq_u8_b1_outs(const uint32_t *p, const uint32_t *m, uint32_t kw, uint32_t nch,
                          int32_t total, int32_t *o)
{
    uint32_t j;
    for (j = 0; j < nch; ++j, m += kw) o[j] = 2 * (int32_t)eq_u8_masked_sum(p, m, kw) - total;
}

/* the same for the first layers' three-word patches (3x3, C = 1), patch words in registers */
static void eq_u8_b1_outs3(const uint32_t *p, const uint32_t *m, uint32_t nch, int32_t total,
                           int32_t *o)
{
    const uint32_t p0 = p[0], p1 = p[1], p2 = p[2];
    uint32_t j;
    for (j = 0; j < nch; ++j, m += 3) {
#ifdef EQ_HAVE_DSP
        const uint32_t q = __usada8(p2 & m[2], 0u, __usada8(p1 & m[1], 0u, __usada8(p0 & m[0], 0u, 0u)));
#else
        const uint32_t a = p0 & m[0], b = p1 & m[1], c = p2 & m[2];
        const uint32_t lo = (a & 0x00FF00FFu) + (b & 0x00FF00FFu) + (c & 0x00FF00FFu)
                            + ((a >> 8) & 0x00FF00FFu) + ((b >> 8) & 0x00FF00FFu)
                            + ((c >> 8) & 0x00FF00FFu); /* lanes <= 6 * 255 */
        const uint32_t q = (lo & 0xFFFFu) + (lo >> 16);
#endif
        o[j] = 2 * (int32_t)q - total;
    }
}

static int eq_u8_b1_fits(const eq_conv_shape_t *s)
{
    const uint32_t k = (uint32_t)s->kh * s->kw * s->in_c;
    return k <= EQ_U8_PATCH && EQ_WORDS(8u * k) <= EQ_U8_MASKS;
}

static void eq_row_u8_b1_mask(const eq_conv_shape_t *s, const uint8_t *in, const uint32_t *wt,
                              uint32_t oy, int32_t *acc)
{
    const uint32_t c = s->in_c, k = (uint32_t)s->kh * s->kw * c, kw = EQ_WORDS(8u * k);
    const uint32_t chunk = EQ_U8_MASKS / kw;
    uint32_t patch[EQ_U8_PATCH / 4u], masks[EQ_U8_MASKS];
    uint8_t *pb = (uint8_t *)patch;
    uint32_t n0, ox, ky, i;
    for (n0 = 0; n0 < s->out_c; n0 += chunk) {
        const uint32_t nch = s->out_c - n0 < chunk ? s->out_c - n0 : chunk;
        eq_u8_masks(s, wt, n0, nch, kw, masks);
        for (ox = 0; ox < s->out_w; ++ox) {
            int32_t *o = acc + ox * s->out_c + n0;
            int32_t total = 0;
            eq_taps_t t;
            eq_taps(s, oy, ox, &t);
            for (i = 0; i < kw; ++i) patch[i] = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                uint8_t *d = pb + ky * s->kw * c + t.kx0 * c;
                const uint32_t len = (t.kx1 - t.kx0) * c;
                const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                         + (uint32_t)(t.ix0 + (int32_t)t.kx0)) * c;
                for (i = 0; i < len; ++i) {
                    d[i] = a[i];
                    total += a[i];
                }
            }
            if (kw == 3u)
                eq_u8_b1_outs3(patch, masks, nch, total, o);
            else
                eq_u8_b1_outs(patch, masks, kw, nch, total, o);
        }
    }
}

#ifdef EQ_HAVE_B1_ROWS
/* U8 activations on B1 or TERN weights, on DSP cores, when the activations of the rows in use
 * have at most 4 bits (DoReFa, HWGQ, TWN 2-bit codes): the codes are split into bit planes
 * (packed like B1 activations, plane b = bit b of each code) and each plane goes through the
 * binary loops; out-of-bounds taps are zero words in every plane.
 * B1:   P = sum over b of 2^b * popcount(plane_b & w) (eq_b1and_rows_dsp), T = sum of
 *       2^b * popcount(plane_b), acc = 2P - T, exactly the U8 x B1 sum.
 * TERN: per plane, the sum of +-p over the nonzeros is 2 * pc(p & z & s) - pc(p & z)
 *       = pc(z & s) - pc(z & (p ^ s)) (eq_tern_rows_dsp counts the last over all taps, a zero
 *       word p counting z & s, which the first term then covers over all taps too), so
 *       acc = (2^nb - 1) * pc(z & s) - sum over b of 2^b * pc(z & (plane_b ^ s)).
 * Returns 0 (nothing done) when the shape or codes do not fit. */
#define EQ_PLANE_WORDS 256u /* packed planes of the input rows in use (1 KB) */
#define EQ_PLANE_MAX 4u

static int eq_row_u8_planes(const eq_conv_shape_t *s, const uint8_t *in, const uint32_t *wt,
                            int tern, uint32_t oy, int32_t *acc)
{
    static const uint32_t zeros[EQ_B1_NCH];
    const uint32_t c = s->in_c, cw = EQ_WORDS(c), taps = (uint32_t)s->kh * s->kw;
    const uint32_t k = taps * cw, rw = (uint32_t)s->in_w * cw, g = k / 3u, r = k - 3u * g;
    const uint32_t wrow = tern ? 2u * k : k; /* words of one output channel's weights */
    const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
    uint32_t planes[EQ_PLANE_WORDS], patch[EQ_B1_PATCH], zs[EQ_B1_NCH];
    int32_t part[EQ_PLANE_MAX][EQ_B1_NCH];
    uint32_t ry0, ry1, rows, nb, orv = 0, i, b, y, ox, j, n0, ky, q;
    const uint8_t *a0;
    eq_b1_job_t job;
    eq_range(iy0, s->kh, s->in_h, &ry0, &ry1);
    rows = ry1 - ry0;
    a0 = in + (uint32_t)(iy0 + (int32_t)ry0) * s->in_w * c;
    for (i = 0; i < rows * s->in_w * c; ++i) orv |= a0[i];
    for (nb = 0; orv >> nb; ++nb) {
    }
    if (nb > EQ_PLANE_MAX || k < 3u || nb * k > EQ_B1_PATCH
        || (uint64_t)nb * rows * rw > EQ_PLANE_WORDS)
        return 0;
    if (nb == 0u) { /* every activation 0 */
        for (i = 0; i < (uint32_t)s->out_w * s->out_c; ++i) acc[i] = 0;
        return 1;
    }
    /* planes[b][row][x][cw] */
    for (i = 0; i < nb * rows * rw; ++i) planes[i] = 0;
    for (y = 0; y < rows; ++y)
        for (i = 0; i < (uint32_t)s->in_w; ++i) {
            const uint8_t *px = a0 + (y * s->in_w + i) * c;
            for (b = 0; b < nb; ++b) {
                uint32_t *d = planes + (b * rows + y) * rw + i * cw;
                if ((c & 3u) == 0u) { /* four codes a word: bit b of each byte to a nibble */
                    for (q = 0; q < c; q += 4u) {
                        uint32_t x;
                        memcpy(&x, px + q, 4);
                        d[q >> 5] |= ((((x >> b) & 0x01010101u) * 0x10204080u) >> 28) << (q & 31u);
                    }
                } else {
                    for (q = 0; q < c; ++q) d[q >> 5] |= (uint32_t)((px[q] >> b) & 1u) << (q & 31u);
                }
            }
        }
    job.extra = 4u * r;
    job.by3 = g % 3u == 0u && r == 0u;
    job.kbytes = 4u * k;
    job.base = zeros;
    for (n0 = 0; n0 < s->out_c; n0 += EQ_B1_NCH) {
        const uint32_t *w = wt + n0 * wrow;
        job.nch = s->out_c - n0 < EQ_B1_NCH ? s->out_c - n0 : EQ_B1_NCH;
        if (tern)
            for (j = 0; j < job.nch; ++j) {
                const uint32_t *sg = w + j * wrow;
                uint32_t pc = 0;
                for (i = 0; i < k; ++i) pc += eq_pc1(sg[i] & sg[k + i]);
                zs[j] = pc;
            }
        for (ox = 0; ox < s->out_w; ++ox) {
            int32_t *o = acc + ox * s->out_c + n0;
            int32_t total = 0;
            eq_taps_t t;
            eq_taps(s, oy, ox, &t);
            for (b = 0; b < nb; ++b) { /* patch of plane b: taps (ky, kx), zero outside */
                uint32_t *pb = patch + b * k, kx;
                for (i = 0; i < k; ++i) pb[i] = 0;
                for (ky = t.ky0; ky < t.ky1; ++ky) {
                    const uint32_t *src = planes + (b * rows + ky - ry0) * rw
                                          + (uint32_t)(t.ix0 + (int32_t)t.kx0) * cw;
                    for (kx = t.kx0 * cw, i = 0; kx < t.kx1 * cw; ++kx, ++i)
                        pb[ky * s->kw * cw + kx] = src[i];
                }
                if (!tern) total += (int32_t)(eq_pc_words(pb, k) << b);
                job.out = part[b];
                if (tern)
                    eq_tern_rows_dsp(pb, w, g, &job);
                else
                    eq_b1and_rows_dsp(pb, w, g, &job);
            }
            for (j = 0; j < job.nch; ++j) { /* part = -2 * popcount */
                int32_t v = part[0][j];
                for (b = 1; b < nb; ++b) v += part[b][j] * (int32_t)(1u << b);
                o[j] = tern ? (int32_t)(((1u << nb) - 1u) * zs[j]) + v / 2 : -v - total;
            }
        }
    }
    return 1;
}
#endif

static void eq_row_u8_b1(const eq_conv_shape_t *s, const uint8_t *in, const uint32_t *wt,
                         uint32_t oy, int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), c = s->in_c, taps = (uint32_t)s->kh * s->kw;
    uint32_t ox, n, ky, kx, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        int32_t total = 0;
        eq_taps(s, oy, ox, &t);
        for (ky = t.ky0; ky < t.ky1; ++ky) {
            for (kx = t.kx0; kx < t.kx1; ++kx) {
                const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                         + (uint32_t)(t.ix0 + (int32_t)kx)) * c;
                for (i = 0; i < c; ++i) total += a[i];
            }
        }
        for (n = 0; n < s->out_c; ++n) {
            const uint32_t *wr = wt + (uint32_t)n * taps * cw;
            int32_t pos = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                             + (uint32_t)(t.ix0 + (int32_t)kx)) * c;
                    const uint32_t *w = wr + (ky * s->kw + kx) * cw;
                    for (i = 0; i < cw; ++i) {
                        uint32_t bits = w[i];
                        const uint8_t *ai = a + 32u * i;
                        while (bits) {
                            pos += ai[EQ_CTZ(bits)];
                            bits &= bits - 1u;
                        }
                    }
                }
            }
            acc[ox * s->out_c + n] = pos - (total - pos); /* 2*pos - total, no overflow: pos <= total */
        }
    }
}

/* TERN weights on U8 codes 0..3 (TWN's 2-bit activations): 1x1 kernels (any C, EQ_T2_K channel
 * words at a time) and other kernels with K = kh * kw * CW <= EQ_T2_K words. Per output pixel
 * the taps' codes become two bit planes p0, p1 laid out like the weight rows (zero outside the
 * input and past C), then per output channel
 *     acc = 3 pc(z & s) - pc(z & (p0 ^ s)) - 2 pc(z & (p1 ^ s))
 * (s sign, z nonzero plane; the identity of eq_row_u8_planes with two planes): the two popcounts
 * of a word in one SWAR pass (nibble counts a + 2 b <= 12, byte sums <= 24), bytes added by
 * USADA8 on DSP cores. pc(z & s) over the whole row is counted once per call and channel.
 * Returns 0 (acc not final) when a code in a patch is above 3 or K is too large. */
#define EQ_T2_K 32u /* patch words of each plane (256 bytes of stack for both) */

/* per-nibble popcounts of x */
EQ_INLINE_ALWAYS uint32_t eq_t2_nib(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    return (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
}

/* pc(x0) + 2 pc(x1) as four byte sums (each <= 24) */
EQ_INLINE_ALWAYS uint32_t eq_t2_bytes(uint32_t x0, uint32_t x1)
{
    const uint32_t v = eq_t2_nib(x0) + (eq_t2_nib(x1) << 1);
    return (v & 0x0F0F0F0Fu) + ((v >> 4) & 0x0F0F0F0Fu);
}

/* 1x1 kernels on at most 16 channels: the output channels' weights packed g = 4 (C <= 8) or 2
 * (C <= 16) to a word, slot j of g holding channel n + j, and the pixel's planes repeated in every
 * slot, so one SWAR pass counts g output channels (their byte sums: slot 8 one byte each, slot 16
 * two). Output channels EQ_T2_NCH at a time (packed weights on the stack). */
#define EQ_T2_NCH 64u

static int eq_row_u8_tern2_few(const eq_conv_shape_t *s, const uint8_t *in, const uint32_t *wt, uint32_t oy,
                               int32_t *acc)
{
    const uint32_t c = s->in_c, slot = c <= 8u ? 8u : 16u, g = 32u / slot, n_out = s->out_c;
    const uint32_t sw = eq_shape_stride_w(s), pw = eq_shape_pad_w(s);
    const int32_t iy = (int32_t)(oy * s->stride) - (int32_t)s->pad;
    uint32_t ws[EQ_T2_NCH / 2u], wz[EQ_T2_NCH / 2u];
    int32_t zs[EQ_T2_NCH];
    uint32_t n0, ox, q, j;
    for (n0 = 0; n0 < n_out; n0 += EQ_T2_NCH) {
        const uint32_t nc = n_out - n0 < EQ_T2_NCH ? n_out - n0 : EQ_T2_NCH, ngr = (nc + g - 1u) / g;
        for (q = 0; q < ngr; ++q) { /* rows of one word: sign, then nonzero */
            ws[q] = wz[q] = 0;
            for (j = 0; j < g && q * g + j < nc; ++j) {
                const uint32_t *r = wt + 2u * (size_t)(n0 + q * g + j);
                ws[q] |= r[0] << (j * slot);
                wz[q] |= r[1] << (j * slot);
                zs[q * g + j] = (int32_t)(3u * eq_pc1(r[0] & r[1]));
            }
        }
        for (ox = 0; ox < s->out_w; ++ox) {
            const int32_t ix = (int32_t)(ox * sw) - (int32_t)pw;
            int32_t *o = acc + ox * n_out + n0;
            uint32_t p0, p1;
            if (iy < 0 || iy >= (int32_t)s->in_h || ix < 0 || ix >= (int32_t)s->in_w) {
                for (j = 0; j < nc; ++j) o[j] = 0; /* the tap is outside: nothing to add */
                continue;
            }
            if (eq_conv_dw_planes_u2(in + ((size_t)(uint32_t)iy * s->in_w + (uint32_t)ix) * c, c, &p0, &p1)
                & 0xFCFCFCFCu)
                return 0;
            p0 |= p0 << slot;
            p1 |= p1 << slot;
            if (slot == 8u) {
                p0 |= p0 << 16;
                p1 |= p1 << 16;
            }
            for (q = 0; q < ngr; ++q) {
                const uint32_t v = eq_t2_bytes(wz[q] & (p0 ^ ws[q]), wz[q] & (p1 ^ ws[q]));
                int32_t *oq = o + q * g;
                const int32_t *zq = zs + q * g;
                if (slot == 8u && q * g + 4u <= nc) {
                    oq[0] = zq[0] - (int32_t)(v & 0xFFu);
                    oq[1] = zq[1] - (int32_t)((v >> 8) & 0xFFu);
                    oq[2] = zq[2] - (int32_t)((v >> 16) & 0xFFu);
                    oq[3] = zq[3] - (int32_t)(v >> 24);
                } else if (slot == 16u && q * g + 2u <= nc) {
                    oq[0] = zq[0] - (int32_t)((v & 0xFFu) + ((v >> 8) & 0xFFu));
                    oq[1] = zq[1] - (int32_t)(((v >> 16) & 0xFFu) + (v >> 24));
                } else {
                    for (j = 0; q * g + j < nc; ++j) {
                        const uint32_t sj = (v >> (j * slot)) & (slot == 8u ? 0xFFu : 0xFFFFu);
                        oq[j] = zq[j] - (int32_t)((sj & 0xFFu) + (sj >> 8));
                    }
                }
            }
        }
    }
    return 1;
}

static int eq_row_u8_tern2(const eq_conv_shape_t *s, const uint8_t *in, const uint32_t *wt, uint32_t oy,
                           int32_t *acc)
{
    const uint32_t c = s->in_c, cw = EQ_WORDS(c), taps = (uint32_t)s->kh * s->kw, k = taps * cw;
    const uint32_t n_out = s->out_c;
    uint32_t p0[EQ_T2_K], p1[EQ_T2_K];
    uint32_t ox, n, i, j, ky, kx, i0;
    int32_t *zrow = acc + (size_t)(s->out_w - 1u) * n_out; /* 3 pc(z & s) per channel until the
                                                               last pixel overwrites it */
    /* 1x1 kernels take the channel words EQ_T2_K at a time, other kernels one patch */
    if ((taps > 1u && k > EQ_T2_K) || s->out_w == 0u) return 0;
    if (taps == 1u && c <= 16u) return eq_row_u8_tern2_few(s, in, wt, oy, acc);
    for (n = 0; n < n_out; ++n) {
        const uint32_t *sg = wt + (size_t)n * 2u * k, *nz = sg + k;
        uint32_t zs = 0;
        for (i = 0; i < k; ++i) zs += eq_pc1(nz[i] & sg[i]);
        zrow[n] = (int32_t)(3u * zs);
    }
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        int32_t *o = acc + ox * n_out;
        eq_taps(s, oy, ox, &t);
        for (i0 = 0; i0 < k; i0 += EQ_T2_K) { /* patch words [i0, i0 + kc) */
            const uint32_t kc = k - i0 < EQ_T2_K ? k - i0 : EQ_T2_K;
            uint32_t orv = 0;
            for (i = 0; i < kc; ++i) p0[i] = p1[i] = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky)
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                             + (uint32_t)(t.ix0 + (int32_t)kx)) * c;
                    const uint32_t tw = (ky * s->kw + kx) * cw; /* patch word of the tap's channel 0 */
                    for (j = 0; j < cw; ++j) /* channel word j of the tap, if in this chunk */
                        if (tw + j >= i0 && tw + j < i0 + kc)
                            orv |= eq_conv_dw_planes_u2(a + 32u * j, c - 32u * j < 32u ? c - 32u * j : 32u,
                                                        p0 + (tw + j - i0), p1 + (tw + j - i0));
                }
            if (orv & 0xFCFCFCFCu) return 0;
            for (n = 0; n < n_out; ++n) {
                const uint32_t *sg = wt + (size_t)n * 2u * k + i0, *nz = sg + k;
                uint32_t sum = 0;
#if defined(EQ_HAVE_DSP)
                for (i = 0; i < kc; ++i)
                    sum = __usada8(eq_t2_bytes(nz[i] & (p0[i] ^ sg[i]), nz[i] & (p1[i] ^ sg[i])), 0u, sum);
#else
                for (i = 0; i < kc;) { /* byte sums: up to 10 words (<= 240) before folding */
                    const uint32_t end = kc - i < 10u ? kc : i + 10u;
                    uint32_t bs = 0;
                    for (; i < end; ++i) bs += eq_t2_bytes(nz[i] & (p0[i] ^ sg[i]), nz[i] & (p1[i] ^ sg[i]));
                    bs = (bs & 0x00FF00FFu) + ((bs >> 8) & 0x00FF00FFu);
                    sum += (bs & 0xFFFFu) + (bs >> 16);
                }
#endif
                o[n] = (i0 == 0u ? zrow[n] : o[n]) - (int32_t)sum;
            }
        }
    }
    return 1;
}

static void eq_row_u8_tern(const eq_conv_shape_t *s, const uint8_t *in, const uint32_t *wt,
                           uint32_t oy, int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), c = s->in_c, taps = (uint32_t)s->kh * s->kw;
    uint32_t ox, n, ky, kx, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (n = 0; n < s->out_c; ++n) {
            const uint32_t *sg = wt + (uint32_t)n * 2u * taps * cw;
            const uint32_t *nz = sg + taps * cw;
            int32_t sum = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                             + (uint32_t)(t.ix0 + (int32_t)kx)) * c;
                    const uint32_t off = (ky * s->kw + kx) * cw;
                    for (i = 0; i < c; ++i) {
                        uint32_t sh = i & 31u, wi = off + (i >> 5);
                        if ((nz[wi] >> sh) & 1u)
                            sum += ((sg[wi] >> sh) & 1u) ? (int32_t)a[i] : -(int32_t)a[i];
                    }
                }
            }
            acc[ox * s->out_c + n] = sum;
        }
    }
}

EQ_INLINE_ALWAYS void eq_row_u8_int(const eq_conv_shape_t *s, const uint8_t *in, const void *wt,
                                    int wide, uint32_t oy, int32_t *acc)
{
    const uint32_t c = s->in_c, taps = (uint32_t)s->kh * s->kw, esz = wide ? 2u : 1u;
    uint32_t ox, n, ky, kx, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (n = 0; n < s->out_c; ++n) {
            const uint8_t *wr = (const uint8_t *)wt + (uint32_t)n * taps * c * esz;
            int32_t sum = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                             + (uint32_t)(t.ix0 + (int32_t)kx)) * c;
                    const uint8_t *w = wr + (ky * s->kw + kx) * c * esz;
                    for (i = 0; i < c; ++i) sum += (int32_t)a[i] * EQ_WINT(w, i, wide);
                }
            }
            acc[ox * s->out_c + n] = sum;
        }
    }
}

#if defined(EQ_HAVE_DSP) && defined(__ARM_FEATURE_SIMD32)
/* U8 x I8 on DSP cores: 2 MACs per SMLAD. Per output pixel the taps' activation bytes are
 * gathered into a K-byte patch (zero outside the input) and widened once into halfword pairs
 * (UXTB16: bytes 0, 2 and 1, 3 of each word); each weight word is widened with SXTB16 the
 * same way, two output channels a pass sharing the activation loads. The K % 4 bytes past the
 * whole words are multiplied one by one (weight rows are K bytes, not padded to words). */
#define EQ_I8_PATCH 1024u /* bytes of activations per output pixel (3 KB of stack with aeo) */
#define EQ_ROR8(x) (((x) >> 8) | ((x) << 24)) /* bytes 1, 3 to 0, 2 */

/* SXTB16 of bytes 1 and 3 (the rotation folded into the instruction) */
static inline uint32_t eq_sxtb16_hi(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* two output channels (weight rows w0, w1) over kw4 words of widened activations aeo */
#define EQ_I8_STEP(q)                                                                            \
    do {                                                                                         \
        const uint32_t x0 = eq_load32(w0 + 4u * (q)), x1 = eq_load32(w1 + 4u * (q));             \
        const uint32_t e = aeo[2u * (q)], d = aeo[2u * (q) + 1u];                                \
        s0 = __smlad(e, __sxtb16(x0), s0);                                                       \
        s0 = __smlad(d, eq_sxtb16_hi(x0), s0);                                                   \
        s1 = __smlad(e, __sxtb16(x1), s1);                                                       \
        s1 = __smlad(d, eq_sxtb16_hi(x1), s1);                                                   \
    } while (0)

static uint32_t eq_load32(const int8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4); /* unaligned when K % 4 != 0: allowed for LDR on these cores */
    return x;
}

static void eq_row_u8_i8_dsp(const eq_conv_shape_t *s, const uint8_t *in, const int8_t *wt,
                             uint32_t oy, int32_t *acc)
{
    const uint32_t c = s->in_c, k = (uint32_t)s->kh * s->kw * c, kw4 = k / 4u;
    uint32_t patch[EQ_I8_PATCH / 4u], aeo[EQ_I8_PATCH / 2u]; /* aeo: even, odd pairs a word */
    uint8_t *pb = (uint8_t *)patch;
    uint32_t ox, ky, i, n, q;
    for (ox = 0; ox < s->out_w; ++ox) {
        int32_t *o = acc + ox * s->out_c;
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (i = 0; i < EQ_WORDS(8u * k); ++i) patch[i] = 0;
        for (ky = t.ky0; ky < t.ky1; ++ky) {
            const uint32_t off = ky * s->kw * c + t.kx0 * c, len = (t.kx1 - t.kx0) * c;
            const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                     + (uint32_t)(t.ix0 + (int32_t)t.kx0)) * c;
            if ((c & 3u) == 0u) /* whole words (HWC pixels of C % 4 == 0 bytes) */
                for (i = 0; i < len; i += 4u) memcpy(pb + off + i, a + i, 4);
            else
                for (i = 0; i < len; ++i) pb[off + i] = a[i];
        }
        for (q = 0; q < kw4; ++q) {
            aeo[2u * q] = __uxtb16(patch[q]);
            aeo[2u * q + 1u] = __uxtb16(EQ_ROR8(patch[q]));
        }
        for (n = 0; n < s->out_c; n += 2u) {
            const int two = n + 1u < s->out_c;
            const int8_t *w0 = wt + n * k, *w1 = two ? w0 + k : w0;
            int32_t s0 = 0, s1 = 0;
            for (q = 0; q + 2u <= kw4; q += 2u) {
                EQ_I8_STEP(q);
                EQ_I8_STEP(q + 1u);
            }
            if (q < kw4) EQ_I8_STEP(q);
            for (i = 4u * kw4; i < k; ++i) {
                s0 += (int32_t)pb[i] * w0[i];
                s1 += (int32_t)pb[i] * w1[i];
            }
            o[n] = s0;
            if (two) o[n + 1u] = s1;
        }
    }
}
#endif

static void eq_row_u8_i8(const eq_conv_shape_t *s, const uint8_t *in, const void *wt,
                         uint32_t oy, int32_t *acc)
{
    eq_row_u8_int(s, in, wt, 0, oy, acc);
}

static void eq_row_u8_i16(const eq_conv_shape_t *s, const uint8_t *in, const void *wt,
                          uint32_t oy, int32_t *acc)
{
    eq_row_u8_int(s, in, wt, 1, oy, acc);
}

/* a function of its own: its register allocation does not depend on the other paths */
EQ_NOINLINE void eq_row_u8_kbit(const eq_conv_shape_t *s, const uint8_t *in, const uint8_t *wt,
                           const int32_t *lut, uint32_t lut_rows, uint32_t lut_cols, uint32_t oy,
                           int32_t *acc)
{
    const uint32_t c = s->in_c, sb = eq_kbit_slot(lut_rows);
    const uint32_t rb = eq_kbit_row_bytes((uint32_t)s->kh * s->kw * c, sb);
    uint8_t buf[EQ_KBIT_CHUNK];
    uint32_t ox, n, ky, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (n = 0; n < s->out_c; ++n) {
            const uint8_t *wr = wt + n * rb;
            int32_t sum = 0;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                /* taps kx0..kx1-1 of this kernel row: contiguous codes and contiguous HWC pixels */
                const uint8_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                         + (uint32_t)(t.ix0 + (int32_t)t.kx0)) * c;
                const uint32_t j0 = (ky * s->kw + t.kx0) * c, len = (t.kx1 - t.kx0) * c;
                uint32_t done, cnt;
                for (done = 0; done < len; done += cnt) {
                    const uint8_t *w;
                    cnt = len - done < EQ_KBIT_CHUNK ? len - done : EQ_KBIT_CHUNK;
                    w = eq_kbit_codes(wr, j0 + done, cnt, sb, buf);
                    for (i = 0; i < cnt; ++i) sum += lut[(uint32_t)w[i] * lut_cols + a[done + i]];
                }
            }
            acc[ox * s->out_c + n] = sum;
        }
    }
}

/* ---- TERN_SPARSE stream decoding (docs/blob-format.md): position p in the row, its tap and
 * channel. A nibble v is a gap of v & 7 (7: a gap of 7 and no weight; 15 is invalid), then a
 * weight of sign v & 8 at the position reached. */
typedef struct {
    uint32_t p, tap, ch;
} eq_sp_pos_t;

/* apply nibble v: -1 invalid (bad nibble or past the row), 0 gap only, 1 a weight at ps */
EQ_INLINE_ALWAYS int eq_sparse_step(uint32_t v, uint32_t c, uint32_t kdim, eq_sp_pos_t *ps)
{
    uint32_t d;
    if (v == 15u) return -1;
    d = v == 7u ? 7u : v & 7u;
    ps->p += d;
    ps->ch += d;
    while (ps->ch >= c) {
        ps->ch -= c;
        ++ps->tap;
    }
    if (v == 7u) return ps->p > kdim ? -1 : 0;
    return ps->p >= kdim ? -1 : 1;
}

/* past the weight at ps */
EQ_INLINE_ALWAYS void eq_sparse_advance(eq_sp_pos_t *ps, uint32_t c)
{
    ++ps->p;
    if (++ps->ch == c) {
        ps->ch = 0;
        ++ps->tap;
    }
}

/* ---- skip-zero ternary (either activation encoding) ---------------------------------------
 * Each weight row is decoded once per output row; every nonzero (ky, kx, c, sign) is applied to
 * all output columns whose tap is inside the input. */
/* groups >= 1: rows of K = kh * kw * C/g; row n reads channels from (n / (N/g)) * C/g on */
static eq_status_t eq_row_sparse(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                                 const uint8_t *data, uint32_t oy, int32_t *acc, uint32_t groups)
{
    const uint32_t n_out = s->out_c, cf = s->in_c, cw = EQ_WORDS(cf), c = cf / groups;
    const uint32_t npg = n_out / groups, sw = eq_shape_stride_w(s), pw = eq_shape_pad_w(s);
    const uint32_t kdim = (uint32_t)s->kh * s->kw * c;
    const uint32_t *row_off = (const uint32_t *)(const void *)data;
    const uint8_t *stream = data + 4u * (n_out + 1u);
    const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
    uint32_t n, ox;

    for (ox = 0; ox < s->out_w; ++ox)
        for (n = 0; n < n_out; ++n) acc[ox * n_out + n] = 0;

    for (n = 0; n < n_out; ++n) {
        eq_sp_pos_t ps = {0, 0, 0};
        const uint32_t cb = (n / npg) * c;
        uint32_t q, tap, ch;
        for (q = row_off[n]; q < row_off[n + 1]; ++q) {
            const uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
            const int step = eq_sparse_step(v, c, kdim, &ps);
            uint32_t ky, kx;
            int32_t iy, sign;
            if (step < 0) return EQ_ERR_ARG;
            if (step == 0) continue;
            tap = ps.tap;
            ch = ps.ch;
            sign = (v & 8u) ? -1 : 1;
            ky = tap / s->kw;
            kx = tap - ky * s->kw;
            iy = iy0 + (int32_t)ky;
            if (iy >= 0 && iy < (int32_t)s->in_h) {
                for (ox = 0; ox < s->out_w; ++ox) {
                    int32_t ix = (int32_t)(ox * sw) - (int32_t)pw + (int32_t)kx;
                    uint32_t pix;
                    int32_t a;
                    if (ix < 0 || ix >= (int32_t)s->in_w) continue;
                    pix = (uint32_t)iy * s->in_w + (uint32_t)ix;
                    if (in_enc == EQ_ENC_B1)
                        a = eq_act_b1((const uint32_t *)in + pix * cw, cb + ch);
                    else
                        a = (int32_t)((const uint8_t *)in)[pix * cf + cb + ch];
                    acc[ox * n_out + n] += sign * a;
                }
            }
            eq_sparse_advance(&ps, c); /* the weight occupies position p; move past it */
        }
    }
    return EQ_OK;
}

#ifdef EQ_HAVE_B1_ROWS
/* TERN_SPARSE on B1 activations, DSP cores: skip-zero per nonzero cannot compete with the
 * popcount loop (2+ MACs an instruction), so the rows are decoded, EQ_SP_WORDS at a time, into
 * dense TERN planes and run through eq_tern_chunk_dsp. The stream is checked exactly as in
 * eq_row_sparse. EQ_ERR_UNSUPPORTED (nothing written): not this path, use eq_row_sparse. */
#define EQ_SP_WORDS 256u /* decoded dense rows (1 KB) */

static eq_status_t eq_row_sparse_b1_dsp(const eq_conv_shape_t *s, const uint32_t *in,
                                        const uint8_t *data, uint32_t oy, int32_t *acc)
{
    const uint32_t n_out = s->out_c, c = s->in_c, cw = EQ_WORDS(c);
    const uint32_t k = (uint32_t)s->kh * s->kw * cw, kdim = (uint32_t)s->kh * s->kw * c;
    const uint32_t *row_off = (const uint32_t *)(const void *)data;
    const uint8_t *stream = data + 4u * (n_out + 1u);
    uint32_t dense[EQ_SP_WORDS];
    uint32_t chunk, n0, j, i;
    if (k < 3u || k > EQ_B1_PATCH || 2u * k > EQ_SP_WORDS) return EQ_ERR_UNSUPPORTED;
    chunk = EQ_SP_WORDS / (2u * k);
    if (chunk > EQ_B1_NCH) chunk = EQ_B1_NCH;
    for (n0 = 0; n0 < n_out; n0 += chunk) {
        const uint32_t nch = n_out - n0 < chunk ? n_out - n0 : chunk;
        for (i = 0; i < nch * 2u * k; ++i) dense[i] = 0;
        for (j = 0; j < nch; ++j) {
            uint32_t *sg = dense + j * 2u * k, *nz = sg + k;
            eq_sp_pos_t ps = {0, 0, 0};
            uint32_t q;
            for (q = row_off[n0 + j]; q < row_off[n0 + j + 1u]; ++q) {
                const uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
                const int step = eq_sparse_step(v, c, kdim, &ps);
                uint32_t wi;
                if (step < 0) return EQ_ERR_ARG;
                if (step == 0) continue;
                wi = ps.tap * cw + (ps.ch >> 5);
                nz[wi] |= 1u << (ps.ch & 31u);
                if (!(v & 8u)) sg[wi] |= 1u << (ps.ch & 31u); /* +1 = sign bit 1 */
                eq_sparse_advance(&ps, c);
            }
        }
        eq_tern_chunk_dsp(s, in, dense, n0, nch, oy, acc);
    }
    return EQ_OK;
}
#endif

/* argument checks shared by eq_conv2d_row and eq_conv2d_row_f32 */
static eq_status_t eq_row_args(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                               const void *w, const void *acc, uint16_t oy)
{
    if (!s || !in || !w || !acc) return EQ_ERR_ARG;
    if (!s->kh || !s->kw || !s->stride || !s->in_c || oy >= s->out_h) return EQ_ERR_ARG;
    if (in_enc != EQ_ENC_B1 && in_enc != EQ_ENC_U8) return EQ_ERR_UNSUPPORTED;
    return EQ_OK;
}

eq_status_t eq_conv2d_row(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                          const eq_weights_t *w, uint16_t oy, int32_t *acc)
{
    const eq_status_t st = eq_row_args(s, in_enc, in, w ? w->data : (const void *)0, acc, oy);
    if (st != EQ_OK) return st;
    if (w->enc == EQ_ENC_KBIT && (!w->lut || !w->lut_rows || !w->lut_cols)) return EQ_ERR_ARG;

    /* one dispatch over the weight encoding; each case picks the B1- or U8-input row */
    const int b1 = in_enc == EQ_ENC_B1;
    const uint32_t *ab = (const uint32_t *)in; /* B1 input (bit words) */
    const uint8_t *au = (const uint8_t *)in;   /* U8 input */
    const uint32_t *wb = (const uint32_t *)w->data; /* B1 / TERN weights (bit planes) */
    switch (w->enc) {
    case EQ_ENC_B1:
        if (b1) {
            if (s->kh == 1u && s->kw == 1u && s->in_c <= 32u && !s->pad && !eq_shape_pad_w(s))
                eq_conv1x1_b1b1(s, ab, wb, 0, s->out_c, (const int32_t *)0, oy, oy + 1u, acc, s->out_c);
            else if (eq_pair_fits(s))
                eq_row_b1_b1_pair(s, ab, wb, oy, acc);
            else if (eq_few_channels(s))
                eq_row_b1_b1_dense(s, ab, wb, oy, acc);
            else
                eq_row_b1_b1(s, ab, wb, oy, acc);
            return EQ_OK;
        }
#ifdef EQ_HAVE_B1_ROWS
        if (eq_row_u8_planes(s, au, wb, 0, oy, acc)) return EQ_OK;
#endif
        if (eq_u8_b1_fits(s))
            eq_row_u8_b1_mask(s, au, wb, oy, acc);
        else if (eq_few_channels(s))
            eq_row_u8_b1_dense(s, au, wb, oy, acc);
        else
            eq_row_u8_b1(s, au, wb, oy, acc);
        return EQ_OK;
    case EQ_ENC_TERN:
#ifdef EQ_HAVE_B1_ROWS
        /* 8 to 128 words a pixel (2-bit planes fit its patch): the 3-word assembly loop of the
         * plane path takes fewer instructions (3x3x256 -> 256, 1x1: 781 k against 811 k, M4) */
        if (!b1 && (uint32_t)s->kh * s->kw * EQ_WORDS(s->in_c) >= 8u
            && (uint32_t)s->kh * s->kw * EQ_WORDS(s->in_c) <= EQ_B1_PATCH / 2u
            && eq_row_u8_planes(s, au, wb, 1, oy, acc))
            return EQ_OK;
#endif
        if (!b1 && eq_row_u8_tern2(s, au, wb, oy, acc)) return EQ_OK;
#ifdef EQ_HAVE_B1_ROWS
        if (b1 && EQ_B1_DSP((uint32_t)s->kh * s->kw * EQ_WORDS(s->in_c))
            && (uint32_t)s->kh * s->kw * EQ_WORDS(s->in_c) <= EQ_B1_PATCH) {
            eq_row_b1_tern_dsp(s, ab, wb, oy, acc);
            return EQ_OK;
        }
        if (!b1 && eq_row_u8_planes(s, au, wb, 1, oy, acc)) return EQ_OK;
#endif
        if (b1)
            eq_row_b1_tern(s, ab, wb, oy, acc);
        else
            eq_row_u8_tern(s, au, wb, oy, acc);
        return EQ_OK;
    case EQ_ENC_I8:
    case EQ_ENC_I16: {
        const int i8 = w->enc == EQ_ENC_I8;
#if defined(EQ_HAVE_DSP) && defined(__ARM_FEATURE_SIMD32)
        if (i8 && !b1 && (uint32_t)s->kh * s->kw * s->in_c <= EQ_I8_PATCH) {
            eq_row_u8_i8_dsp(s, au, (const int8_t *)w->data, oy, acc);
            return EQ_OK;
        }
#endif
        if (b1)
            (i8 ? eq_row_b1_i8 : eq_row_b1_i16)(s, ab, w->data, oy, acc);
        else
            (i8 ? eq_row_u8_i8 : eq_row_u8_i16)(s, au, w->data, oy, acc);
        return EQ_OK;
    }
    case EQ_ENC_KBIT:
        if (b1)
            eq_row_b1_kbit(s, ab, (const uint8_t *)w->data, w->lut, w->lut_rows, w->lut_cols, oy, acc);
        else
            eq_row_u8_kbit(s, au, (const uint8_t *)w->data, w->lut, w->lut_rows, w->lut_cols, oy, acc);
        return EQ_OK;
    case EQ_ENC_TERN_SPARSE:
#ifdef EQ_HAVE_B1_ROWS
        if (b1) {
            const eq_status_t st2 = eq_row_sparse_b1_dsp(s, ab, (const uint8_t *)w->data, oy, acc);
            if (st2 != EQ_ERR_UNSUPPORTED) return st2;
        }
#endif
        return eq_row_sparse(s, in_enc, in, (const uint8_t *)w->data, oy, acc, 1u);
    default: return EQ_ERR_UNSUPPORTED;
    }
}

/* ---- F32 weights: float accumulators in a fixed order (see eq_kernels.h) ------------------- */
eq_status_t eq_conv2d_row_f32(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                              const float *wt, uint16_t oy, float *acc)
{
    uint32_t c, cw, ox, n, ky, kx, i, taps;
    const eq_status_t st = eq_row_args(s, in_enc, in, wt, acc, oy);
    if (st != EQ_OK) return st;
    c = s->in_c;
    cw = EQ_WORDS(c);
    taps = (uint32_t)s->kh * s->kw;
    for (ox = 0; ox < s->out_w; ++ox) {
        eq_taps_t t;
        eq_taps(s, oy, ox, &t);
        for (n = 0; n < s->out_c; ++n) {
            const float *wr = wt + (uint32_t)n * taps * c;
            float sum = 0.0f;
            for (ky = t.ky0; ky < t.ky1; ++ky) {
                for (kx = t.kx0; kx < t.kx1; ++kx) {
                    const uint32_t pix = (uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                         + (uint32_t)(t.ix0 + (int32_t)kx);
                    const float *w = wr + (ky * s->kw + kx) * c;
                    if (in_enc == EQ_ENC_B1) {
                        const uint32_t *a = (const uint32_t *)in + pix * cw;
                        for (i = 0; i < c; ++i) {
                            const float p = ((a[i >> 5] >> (i & 31u)) & 1u) ? w[i] : -w[i];
                            sum = sum + p;
                        }
                    } else {
                        const uint8_t *a = (const uint8_t *)in + pix * c;
                        for (i = 0; i < c; ++i) {
                            const float p = (float)a[i] * w[i];
                            sum = sum + p;
                        }
                    }
                }
            }
            acc[ox * s->out_c + n] = sum;
        }
    }
    return EQ_OK;
}

/* ---- grouped convolution (eq_kernels.h) ------------------------------------------------------
 * A direct loop, tap by tap: for output channel n (group gi) and each kernel tap, the tap's C/g
 * weights are decoded once (EQ_G_CH at a time) into w values (KBIT: codes), then added into
 * every output column whose tap lies inside the input. Each accumulator receives its terms in
 * (ky, kx, c) order, the F32 summation order. Depthwise (C/g = 1) takes a tighter loop. Stack:
 * EQ_G_CH int32 (no gather buffer, so the 4 KB-stack M3 boards run it too). */
#define EQ_G_CH 64u

/* weights j0 .. j0+cnt-1 of tap t of output channel n (row of K = taps * cg): values (integer
 * encodings), codes (KBIT) */
static void eq_g_weights(const eq_weights_t *w, uint32_t n, uint32_t taps, uint32_t cg, uint32_t t,
                         uint32_t j0, uint32_t cnt, int32_t *wv)
{
    const uint32_t k = taps * cg, cw = EQ_WORDS(cg);
    uint32_t i;
    if (w->enc == EQ_ENC_B1 || w->enc == EQ_ENC_TERN) {
        const int tern = w->enc == EQ_ENC_TERN;
        const uint32_t *sg = (const uint32_t *)w->data + (size_t)n * taps * cw * (tern ? 2u : 1u) + t * cw;
        const uint32_t *nz = sg + taps * cw;
        for (i = 0; i < cnt; ++i) {
            const uint32_t j = j0 + i, b = 1u << (j & 31u);
            wv[i] = (tern && !(nz[j >> 5] & b)) ? 0 : (sg[j >> 5] & b) ? 1 : -1;
        }
    } else if (w->enc == EQ_ENC_I8) {
        const int8_t *r = (const int8_t *)w->data + (size_t)n * k + t * cg + j0;
        for (i = 0; i < cnt; ++i) wv[i] = r[i];
    } else if (w->enc == EQ_ENC_I16) {
        const int16_t *r = (const int16_t *)w->data + (size_t)n * k + t * cg + j0;
        for (i = 0; i < cnt; ++i) wv[i] = r[i];
    } else { /* KBIT codes */
        const uint32_t sb = eq_kbit_slot(w->lut_rows);
        uint8_t buf[EQ_KBIT_CHUNK];
        const uint8_t *c = eq_kbit_codes((const uint8_t *)w->data + (size_t)n * eq_kbit_row_bytes(k, sb),
                                         t * cg + j0, cnt, sb, buf);
        for (i = 0; i < cnt; ++i) wv[i] = c[i];
    }
}

/* activation code at channel ch of pixel p: B1 bit (0/1) or U8 code */
EQ_INLINE_ALWAYS uint32_t eq_g_code(uint8_t in_enc, const void *in, uint32_t cf, size_t p, uint32_t ch)
{
    if (in_enc == EQ_ENC_B1)
        return (((const uint32_t *)in)[p * EQ_WORDS(cf) + (ch >> 5)] >> (ch & 31u)) & 1u;
    return ((const uint8_t *)in)[p * cf + ch];
}

/* output columns [lo, hi) whose tap at input column ox * sw + x0 is inside the input; 0: none */
static int eq_g_cols(const eq_conv_shape_t *s, int32_t x0, uint32_t sw, uint32_t *lo, uint32_t *hi)
{
    *lo = x0 >= 0 ? 0u : ((uint32_t)(-x0) + sw - 1u) / sw;
    *hi = (int32_t)s->in_w - x0 <= 0 ? 0u : ((uint32_t)((int32_t)s->in_w - x0) + sw - 1u) / sw;
    if (*hi > s->out_w) *hi = s->out_w;
    return *lo < *hi;
}

/* integer encodings: acc (out_w, N) int32 */
static void eq_row_grouped_int(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc, const void *in,
                               const eq_weights_t *w, uint32_t oy, int32_t *acc)
{
    const uint32_t cf = s->in_c, cg = cf / groups, npg = s->out_c / groups, taps = (uint32_t)s->kh * s->kw;
    const uint32_t sw = eq_shape_stride_w(s), pw = eq_shape_pad_w(s), n_out = s->out_c;
    const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
    const int kbit = w->enc == EQ_ENC_KBIT, b1 = in_enc == EQ_ENC_B1;
    int32_t wv[EQ_G_CH];
    uint32_t n, ky, kx, ox, j0, j;
    for (ox = 0; ox < (uint32_t)s->out_w * n_out; ++ox) acc[ox] = 0;
    for (n = 0; n < n_out; ++n) {
        const uint32_t cb = (n / npg) * cg;
        for (ky = 0; ky < s->kh; ++ky) {
            const int32_t iy = iy0 + (int32_t)ky;
            if (iy < 0 || iy >= (int32_t)s->in_h) continue;
            for (kx = 0; kx < s->kw; ++kx) {
                const uint32_t t = ky * s->kw + kx;
                const int32_t x0 = (int32_t)kx - (int32_t)pw;
                uint32_t lo, hi;
                if (!eq_g_cols(s, x0, sw, &lo, &hi)) continue;
                for (j0 = 0; j0 < cg; j0 += EQ_G_CH) {
                    const uint32_t cnt = cg - j0 < EQ_G_CH ? cg - j0 : EQ_G_CH;
                    eq_g_weights(w, n, taps, cg, t, j0, cnt, wv);
                    for (ox = lo; ox < hi; ++ox) {
                        const size_t p = (size_t)(uint32_t)iy * s->in_w + (uint32_t)(x0 + (int32_t)(ox * sw));
                        int32_t sum = 0;
                        if (kbit) {
                            for (j = 0; j < cnt; ++j)
                                sum += w->lut[(uint32_t)wv[j] * w->lut_cols + eq_g_code(in_enc, in, cf, p, cb + j0 + j)];
                        } else if (b1) { /* +-1: +w for a 1 bit, -w for a 0 bit */
                            for (j = 0; j < cnt; ++j)
                                sum += eq_g_code(in_enc, in, cf, p, cb + j0 + j) ? wv[j] : -wv[j];
                        } else {
                            const uint8_t *a = (const uint8_t *)in + p * cf + cb + j0;
                            for (j = 0; j < cnt; ++j) sum += wv[j] * (int32_t)a[j];
                        }
                        acc[ox * n_out + n] += sum;
                    }
                }
            }
        }
    }
}

/* Depthwise (C/g = 1, N/g = npg output channels per input channel), integer encodings: tap by
 * tap, the weights of EQ_G_CH output channels are decoded once, then every output column adds
 * them times its pixel's channels, channels innermost (contiguous accumulators and U8 codes; B1
 * bits taken from one word at a time when npg = 1). */
static void eq_row_dw_int(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc, const void *in,
                          const eq_weights_t *w, uint32_t oy, int32_t *acc)
{
    const uint32_t cf = s->in_c, npg = s->out_c / groups, taps = (uint32_t)s->kh * s->kw;
    const uint32_t sw = eq_shape_stride_w(s), n_out = s->out_c, cwf = EQ_WORDS(cf);
    const int kbit = w->enc == EQ_ENC_KBIT;
    int32_t wv[EQ_G_CH];
    uint32_t n0, t, ox, j;
    for (ox = 0; ox < (uint32_t)s->out_w * n_out; ++ox) acc[ox] = 0;
    for (n0 = 0; n0 < n_out; n0 += EQ_G_CH) { /* EQ_G_CH is a multiple of 32 */
        const uint32_t nc = n_out - n0 < EQ_G_CH ? n_out - n0 : EQ_G_CH;
        for (t = 0; t < taps; ++t) {
            const int32_t iy = (int32_t)(oy * s->stride) - (int32_t)s->pad + (int32_t)(t / s->kw);
            const int32_t x0 = (int32_t)(t % s->kw) - (int32_t)eq_shape_pad_w(s);
            uint32_t lo, hi;
            if (iy < 0 || iy >= (int32_t)s->in_h || !eq_g_cols(s, x0, sw, &lo, &hi)) continue;
            for (j = 0; j < nc; ++j) eq_g_weights(w, n0 + j, taps, 1u, t, 0u, 1u, wv + j);
            for (ox = lo; ox < hi; ++ox) {
                const size_t p = (size_t)(uint32_t)iy * s->in_w + (uint32_t)(x0 + (int32_t)(ox * sw));
                int32_t *o = acc + ox * n_out + n0;
                if (in_enc == EQ_ENC_B1 && npg == 1u && !kbit) {
                    const uint32_t *px = (const uint32_t *)in + p * cwf + (n0 >> 5);
                    for (j = 0; j < nc; ++j) {
                        const int32_t m = -(int32_t)((px[j >> 5] >> (j & 31u)) & 1u) ^ -1; /* 0: +1, -1: -1 */
                        o[j] += (wv[j] ^ m) - m;
                    }
                } else if (in_enc == EQ_ENC_U8 && npg == 1u && !kbit) {
                    const uint8_t *px = (const uint8_t *)in + p * cf + n0;
                    for (j = 0; j < nc; ++j) o[j] += wv[j] * (int32_t)px[j];
                } else {
                    for (j = 0; j < nc; ++j) {
                        const uint32_t a = eq_g_code(in_enc, in, cf, p, (n0 + j) / npg);
                        o[j] += kbit ? w->lut[(uint32_t)wv[j] * w->lut_cols + a]
                                     : in_enc == EQ_ENC_B1 ? (a ? wv[j] : -wv[j]) : wv[j] * (int32_t)a;
                    }
                }
            }
        }
    }
}

/* Depthwise B1 x B1 / TERN with one output channel per input channel and at most EQ_DW_TAPS
 * taps: 32 channels at once. For an output pixel and a word of channels, each in-bounds tap's
 * agreement bits ~(a ^ sign) & nonzero are added into bit-sliced counters (bit k of every lane
 * in cnt[k]), and so are the nonzero bits (B1: the count of in-bounds taps); a lane's
 * accumulator is 2 * agreements - nonzeros. About 8 instructions per 32 MACs plus one read-out
 * per output, instead of a bit extraction per MAC. Returns 0 (nothing written) when the layer
 * does not qualify. */
#define EQ_DW_TAPS 64u
#define EQ_DW_LEV 7u /* counter bits: counts up to EQ_DW_TAPS */

EQ_INLINE_ALWAYS void eq_csa_add(uint32_t *cnt, uint32_t nlev, uint32_t x)
{
    uint32_t k;
    for (k = 0; k < nlev && x; ++k) {
        const uint32_t carry = cnt[k] & x;
        cnt[k] ^= x;
        x = carry;
    }
}

static int eq_row_dw_b1(const eq_conv_shape_t *s, const uint32_t *in, const eq_weights_t *w, uint32_t oy,
                        int32_t *acc)
{
    const uint32_t c = s->in_c, cw = EQ_WORDS(c), taps = (uint32_t)s->kh * s->kw, sw = eq_shape_stride_w(s);
    const int tern = w->enc == EQ_ENC_TERN;
    const uint32_t *wd = (const uint32_t *)w->data, rowsz = tern ? 2u * taps : taps; /* 1 word a tap */
    const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
    const int32_t ix00 = -(int32_t)eq_shape_pad_w(s);
    uint32_t sg[EQ_DW_TAPS], nz[EQ_DW_TAPS], cp[EQ_DW_LEV], cz[EQ_DW_LEV];
    uint32_t wi, t, b, ox, k, nlev = 0;
    if (taps > EQ_DW_TAPS || s->out_c != c || (w->enc != EQ_ENC_B1 && !tern)) return 0;
    while ((taps >> nlev) != 0u) ++nlev; /* counter bits for counts up to taps */
    for (wi = 0; wi < cw; ++wi) {
        const uint32_t nb = c - 32u * wi < 32u ? c - 32u * wi : 32u;
        const uint32_t lanes = nb == 32u ? 0xFFFFFFFFu : (1u << nb) - 1u;
        for (t = 0; t < taps; ++t) sg[t] = nz[t] = 0;
        for (b = 0; b < nb; ++b) { /* the 32 channels' weight bits, tap by tap */
            const uint32_t *row = wd + (size_t)(32u * wi + b) * rowsz;
            for (t = 0; t < taps; ++t) {
                sg[t] |= (row[t] & 1u) << b;
                nz[t] |= (tern ? row[taps + t] & 1u : 1u) << b;
            }
        }
        for (ox = 0; ox < s->out_w; ++ox) {
            const int32_t ix0 = (int32_t)(ox * sw) + ix00;
            uint32_t nvalid = 0, ky, kx;
            for (k = 0; k < nlev; ++k) cp[k] = cz[k] = 0;
            for (ky = 0; ky < s->kh; ++ky) {
                const int32_t iy = iy0 + (int32_t)ky;
                if (iy < 0 || iy >= (int32_t)s->in_h) continue;
                for (kx = 0; kx < s->kw; ++kx) {
                    const int32_t ix = ix0 + (int32_t)kx;
                    const uint32_t tt = ky * s->kw + kx;
                    uint32_t a;
                    if (ix < 0 || ix >= (int32_t)s->in_w) continue;
                    a = in[((size_t)(uint32_t)iy * s->in_w + (uint32_t)ix) * cw + wi];
                    eq_csa_add(cp, nlev, ~(a ^ sg[tt]) & nz[tt] & lanes);
                    if (tern)
                        eq_csa_add(cz, nlev, nz[tt]);
                    else
                        ++nvalid;
                }
            }
            for (b = 0; b < nb; ++b) {
                uint32_t pcount = 0, zcount = nvalid;
                for (k = 0; k < nlev; ++k) pcount |= ((cp[k] >> b) & 1u) << k;
                if (tern)
                    for (k = 0; k < nlev; ++k) zcount |= ((cz[k] >> b) & 1u) << k;
                acc[ox * c + 32u * wi + b] = (int32_t)(2u * pcount) - (int32_t)zcount;
            }
        }
    }
    return 1;
}

/* F32 weights: acc (out_w, N) float32, acc = acc + (a * w) term by term in (ky, kx, c) order */
static void eq_row_grouped_f32(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc, const void *in,
                               const float *wt, uint32_t oy, float *acc)
{
    const uint32_t cf = s->in_c, cg = cf / groups, npg = s->out_c / groups;
    const uint32_t sw = eq_shape_stride_w(s), n_out = s->out_c;
    uint32_t n, t, ox, j;
    for (ox = 0; ox < (uint32_t)s->out_w * n_out; ++ox) acc[ox] = 0.0f;
    for (n = 0; n < n_out; ++n) {
        for (t = 0; t < (uint32_t)s->kh * s->kw; ++t) { /* taps in (ky, kx) order */
            const int32_t iy = (int32_t)(oy * s->stride) - (int32_t)s->pad + (int32_t)(t / s->kw);
            const int32_t x0 = (int32_t)(t % s->kw) - (int32_t)eq_shape_pad_w(s);
            const float *wr = wt + ((size_t)n * s->kh * s->kw + t) * cg;
            uint32_t lo, hi;
            if (iy < 0 || iy >= (int32_t)s->in_h || !eq_g_cols(s, x0, sw, &lo, &hi)) continue;
            for (ox = lo; ox < hi; ++ox) {
                const size_t p = (size_t)(uint32_t)iy * s->in_w + (uint32_t)(x0 + (int32_t)(ox * sw));
                const uint32_t cb = (n / npg) * cg;
                float sum = acc[ox * n_out + n];
                for (j = 0; j < cg; ++j) {
                    const float prod = in_enc == EQ_ENC_B1
                                           ? (eq_g_code(in_enc, in, cf, p, cb + j) ? wr[j] : -wr[j])
                                           : (float)eq_g_code(in_enc, in, cf, p, cb + j) * wr[j];
                    sum = sum + prod;
                }
                acc[ox * n_out + n] = sum;
            }
        }
    }
}

eq_status_t eq_conv2d_row_grouped(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc,
                                  const void *in, const eq_weights_t *w, uint16_t oy, void *acc)
{
    const int f32 = w && w->enc == EQ_ENC_F32;
    if (groups <= 1u)
        return f32 ? eq_conv2d_row_f32(s, in_enc, in, (const float *)w->data, oy, (float *)acc)
                   : eq_conv2d_row(s, in_enc, in, w, oy, (int32_t *)acc);
    {
        const eq_status_t st = eq_row_args(s, in_enc, in, w ? w->data : (const void *)0, acc, oy);
        if (st != EQ_OK) return st;
    }
    if (s->in_c % groups || s->out_c % groups || !eq_shape_stride_w(s)) return EQ_ERR_ARG;
    switch (w->enc) {
    case EQ_ENC_KBIT:
        if (!w->lut || !w->lut_rows || !w->lut_cols) return EQ_ERR_ARG;
        /* fall through */
    case EQ_ENC_B1:
    case EQ_ENC_TERN:
    case EQ_ENC_I8:
    case EQ_ENC_I16:
        if (s->in_c == groups && in_enc == EQ_ENC_B1
            && eq_row_dw_b1(s, (const uint32_t *)in, w, oy, (int32_t *)acc))
            return EQ_OK;
        if (s->in_c == groups)
            eq_row_dw_int(s, groups, in_enc, in, w, oy, (int32_t *)acc);
        else
            eq_row_grouped_int(s, groups, in_enc, in, w, oy, (int32_t *)acc);
        return EQ_OK;
    case EQ_ENC_TERN_SPARSE:
        return eq_row_sparse(s, in_enc, in, (const uint8_t *)w->data, oy, (int32_t *)acc, groups);
    case EQ_ENC_F32:
        eq_row_grouped_f32(s, groups, in_enc, in, (const float *)w->data, oy, (float *)acc);
        return EQ_OK;
    default: return EQ_ERR_UNSUPPORTED;
    }
}
