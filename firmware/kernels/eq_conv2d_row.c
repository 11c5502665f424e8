/* eq_conv2d_row: accumulators of one output row of a CONV layer (docs/blob-format.md, CONV).
 *
 * acc (out_w, out_c) int32. Activations are HWC: B1 (in_h, in_w, CW) uint32 or U8 (in_h, in_w,
 * in_c) uint8. Weight rows are in (ky, kx, c) order. Taps outside the input contribute 0.
 * One static function per (in_enc, w_enc) pair keeps every inner loop free of encoding switches.
 */
#include "eq_kernels.h"
#include "eq_bitdot.h"

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
    t->ix0 = (int32_t)(ox * s->stride) - (int32_t)s->pad;
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
#define EQ_B1_PATCH 384u /* words of a patch (two patch buffers: 3 KB of stack) */
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

/* border pixels: with the assembly loop, two patches over all taps, p0 with the out-of-bounds
 * taps' words 0 and p1 with their C valid bits 1 (pad bits 0 in both, as in the weights): an
 * out-of-bounds tap then adds pc(w) + (C - pc(w)) = C whatever the weights, so
 * pc(p0 ^ w) + pc(p1 ^ w) = 2 * pc_in + (taps - n_in) * C and acc = taps * C - both counts */
#ifdef EQ_HAVE_PC_ROWS
#define EQ_B1_BORDER2(k) ((k) >= 3u)
#else
#define EQ_B1_BORDER2(k) 0
#endif

static void eq_gather_b1(const eq_conv_shape_t *s, const uint32_t *in, const eq_taps_t *t,
                         uint32_t *p0, uint32_t *p1)
{
    const uint32_t cw = EQ_WORDS(s->in_c), rem = s->in_c & 31u;
    const uint32_t last = rem ? (1u << rem) - 1u : 0xFFFFFFFFu;
    uint32_t ky, kx, i;
    for (ky = 0; ky < s->kh; ++ky) {
        const int in_y = ky >= t->ky0 && ky < t->ky1;
        for (kx = 0; kx < s->kw; ++kx) {
            const uint32_t off = (ky * s->kw + kx) * cw;
            if (in_y && kx >= t->kx0 && kx < t->kx1) {
                const uint32_t *a = in + ((uint32_t)(t->iy0 + (int32_t)ky) * s->in_w
                                          + (uint32_t)(t->ix0 + (int32_t)kx)) * cw;
                for (i = 0; i < cw; ++i) p0[off + i] = p1[off + i] = a[i];
            } else {
                for (i = 0; i < cw; ++i) {
                    p0[off + i] = 0;
                    p1[off + i] = i + 1u == cw ? last : 0xFFFFFFFFu;
                }
            }
        }
    }
}

static void eq_row_b1_b1(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt,
                         uint32_t oy, int32_t *acc)
{
    const uint32_t cw = EQ_WORDS(s->in_c), taps = (uint32_t)s->kh * s->kw, k = taps * cw;
    const uint32_t seg = s->kw * cw; /* words of one kernel row */
    uint32_t patch[2u * EQ_B1_PATCH];
    uint32_t ox, j, ky, i;
    for (ox = 0; ox < s->out_w; ++ox) {
        int32_t *o = acc + ox * s->out_c;
        const uint32_t *pa = patch;
        const uint32_t nbits = taps * s->in_c;
        eq_taps_t t;
        uint32_t p0, p1, full;
        eq_taps(s, oy, ox, &t);
        full = (t.ky1 - t.ky0) * (t.kx1 - t.kx0) == taps;
        if (k > EQ_B1_PATCH || (!full && !EQ_B1_BORDER2(k))) {
            eq_b1_border(s, in, wt, &t, 0, s->out_c, o);
            continue;
        }
        if (taps == 1u) {
            pa = in + ((uint32_t)t.iy0 * s->in_w + (uint32_t)t.ix0) * cw;
        } else if (full) {
            for (ky = 0; ky < s->kh; ++ky) {
                const uint32_t *a = in + ((uint32_t)(t.iy0 + (int32_t)ky) * s->in_w
                                          + (uint32_t)t.ix0) * cw;
                for (i = 0; i < seg; ++i) patch[ky * seg + i] = a[i];
            }
        } else {
            eq_gather_b1(s, in, &t, patch, patch + k);
        }
#ifdef EQ_HAVE_PC_ROWS
        if (k >= 3u) { /* assembly over the whole groups of 3 words, C for the 0-2 left */
            const uint32_t g = k / 3u, r = k - 3u * g;
            uint32_t pcs[EQ_B1_NCH], pcs1[EQ_B1_NCH], n0;
            for (n0 = 0; n0 < s->out_c; n0 += EQ_B1_NCH) {
                const uint32_t nch = s->out_c - n0 < EQ_B1_NCH ? s->out_c - n0 : EQ_B1_NCH;
                const uint32_t *w = wt + n0 * k;
                eq_b1_pc_rows_dsp(pa, w, g, nch, 4u * r, pcs);
                if (full) {
                    for (j = 0; j < nch; ++j) {
                        p0 = pcs[j];
                        if (r) p0 += eq_xor_pc(pa + 3u * g, w + j * k + 3u * g, r);
                        o[n0 + j] = (int32_t)(nbits - 2u * p0);
                    }
                } else { /* acc = taps * C - pc(P0 ^ w) - pc(P1 ^ w), see eq_gather_b1 */
                    eq_b1_pc_rows_dsp(patch + k, w, g, nch, 4u * r, pcs1);
                    for (j = 0; j < nch; ++j) {
                        p0 = pcs[j] + pcs1[j];
                        if (r)
                            p0 += eq_xor_pc(pa + 3u * g, w + j * k + 3u * g, r)
                                  + eq_xor_pc(patch + k + 3u * g, w + j * k + 3u * g, r);
                        o[n0 + j] = (int32_t)(nbits - p0);
                    }
                }
            }
            continue;
        }
#endif
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
#else
#define EQ_INLINE_ALWAYS static inline
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

static void eq_row_b1_kbit(const eq_conv_shape_t *s, const uint32_t *in, const uint8_t *wt,
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
            acc[ox * s->out_c + n] = 2 * pos - total;
        }
    }
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

static void eq_row_u8_kbit(const eq_conv_shape_t *s, const uint8_t *in, const uint8_t *wt,
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

/* ---- skip-zero ternary (either activation encoding) ---------------------------------------
 * Each weight row is decoded once per output row; every nonzero (ky, kx, c, sign) is applied to
 * all output columns whose tap is inside the input. */
static eq_status_t eq_row_sparse(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                                 const uint8_t *data, uint32_t oy, int32_t *acc)
{
    const uint32_t n_out = s->out_c, c = s->in_c, cw = EQ_WORDS(c);
    const uint32_t kdim = (uint32_t)s->kh * s->kw * c;
    const uint32_t *row_off = (const uint32_t *)(const void *)data;
    const uint8_t *stream = data + 4u * (n_out + 1u);
    const int32_t iy0 = (int32_t)(oy * s->stride) - (int32_t)s->pad;
    uint32_t n, ox;

    for (ox = 0; ox < s->out_w; ++ox)
        for (n = 0; n < n_out; ++n) acc[ox * n_out + n] = 0;

    for (n = 0; n < n_out; ++n) {
        uint32_t q, p = 0, tap = 0, ch = 0;
        for (q = row_off[n]; q < row_off[n + 1]; ++q) {
            uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u, d, ky, kx;
            int32_t iy, sign;
            if (v == 7u) {
                d = 7u;
            } else {
                if (v == 15u) return EQ_ERR_ARG;
                d = v & 7u;
            }
            p += d;
            ch += d;
            while (ch >= c) {
                ch -= c;
                ++tap;
            }
            if (v == 7u) {
                if (p > kdim) return EQ_ERR_ARG;
                continue;
            }
            if (p >= kdim) return EQ_ERR_ARG;
            sign = (v & 8u) ? -1 : 1;
            ky = tap / s->kw;
            kx = tap - ky * s->kw;
            iy = iy0 + (int32_t)ky;
            if (iy >= 0 && iy < (int32_t)s->in_h) {
                for (ox = 0; ox < s->out_w; ++ox) {
                    int32_t ix = (int32_t)(ox * s->stride) - (int32_t)s->pad + (int32_t)kx;
                    uint32_t pix;
                    int32_t a;
                    if (ix < 0 || ix >= (int32_t)s->in_w) continue;
                    pix = (uint32_t)iy * s->in_w + (uint32_t)ix;
                    if (in_enc == EQ_ENC_B1)
                        a = eq_act_b1((const uint32_t *)in + pix * cw, ch);
                    else
                        a = (int32_t)((const uint8_t *)in)[pix * c + ch];
                    acc[ox * n_out + n] += sign * a;
                }
            }
            /* the weight occupies position p; move past it */
            ++p;
            if (++ch == c) {
                ch = 0;
                ++tap;
            }
        }
    }
    return EQ_OK;
}

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

    if (in_enc == EQ_ENC_B1) {
        const uint32_t *a = (const uint32_t *)in;
        switch (w->enc) {
        case EQ_ENC_B1:
            if (eq_few_channels(s))
                eq_row_b1_b1_dense(s, a, (const uint32_t *)w->data, oy, acc);
            else
                eq_row_b1_b1(s, a, (const uint32_t *)w->data, oy, acc);
            return EQ_OK;
        case EQ_ENC_TERN: eq_row_b1_tern(s, a, (const uint32_t *)w->data, oy, acc); return EQ_OK;
        case EQ_ENC_I8: eq_row_b1_i8(s, a, w->data, oy, acc); return EQ_OK;
        case EQ_ENC_I16: eq_row_b1_i16(s, a, w->data, oy, acc); return EQ_OK;
        case EQ_ENC_KBIT:
            eq_row_b1_kbit(s, a, (const uint8_t *)w->data, w->lut, w->lut_rows, w->lut_cols,
                           oy, acc);
            return EQ_OK;
        case EQ_ENC_TERN_SPARSE:
            return eq_row_sparse(s, in_enc, in, (const uint8_t *)w->data, oy, acc);
        default: return EQ_ERR_UNSUPPORTED;
        }
    } else {
        const uint8_t *a = (const uint8_t *)in;
        switch (w->enc) {
        case EQ_ENC_B1:
            if (eq_few_channels(s))
                eq_row_u8_b1_dense(s, a, (const uint32_t *)w->data, oy, acc);
            else
                eq_row_u8_b1(s, a, (const uint32_t *)w->data, oy, acc);
            return EQ_OK;
        case EQ_ENC_TERN: eq_row_u8_tern(s, a, (const uint32_t *)w->data, oy, acc); return EQ_OK;
        case EQ_ENC_I8: eq_row_u8_i8(s, a, w->data, oy, acc); return EQ_OK;
        case EQ_ENC_I16: eq_row_u8_i16(s, a, w->data, oy, acc); return EQ_OK;
        case EQ_ENC_KBIT:
            eq_row_u8_kbit(s, a, (const uint8_t *)w->data, w->lut, w->lut_rows, w->lut_cols,
                           oy, acc);
            return EQ_OK;
        case EQ_ENC_TERN_SPARSE:
            return eq_row_sparse(s, in_enc, in, (const uint8_t *)w->data, oy, acc);
        default: return EQ_ERR_UNSUPPORTED;
        }
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
