/* eq_affine_i32: AFFINE output stage, acc (n_pix, c) int32 -> (n_pix, c) int32,
 * y = sat32(((int64)acc * mul[n] + add[n]) >> shift) with an arithmetic (flooring) shift.
 * Portable C writes the shift without relying on implementation-defined right shifts of
 * negative numbers; GCC and clang define >> of a negative signed value as arithmetic, so there
 * the shift is a plain >> (a few instructions on 32-bit cores instead of a branchy sequence). */
#include <stddef.h>

#include "eq_kernels.h"

#include <string.h>

#if defined(__GNUC__)
#define EQ_ASR64(v, sh) ((v) >> (sh))
#else
#define EQ_ASR64(v, sh) ((v) >= 0 ? (int64_t)((uint64_t)(v) >> (sh)) : ~(int64_t)((uint64_t)(~(v)) >> (sh)))
#endif

/* shift 0, every mul 1 and add 0: the identity (an accumulator the exporter stores as is) */
static int eq_aff_identity(uint16_t c, const int32_t *mul, const int32_t *add, uint8_t shift)
{
    uint32_t n;
    if (shift != 0u) {
        return 0;
    }
    for (n = 0; n < c && mul[n] == 1 && add[n] == 0; ++n) {
    }
    return n == c;
}

/* the identity stage: a copy (acc and out may be the same buffer) */
static void eq_aff_copy(const int32_t *acc, uint32_t n_pix, uint16_t c, int32_t *out)
{
    if (out != acc) {
        memmove(out, acc, (size_t)n_pix * c * sizeof(int32_t));
    }
}

void eq_affine_i32(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                   const int32_t *add, uint8_t shift, int32_t *out)
{
    uint32_t p, n;
    const uint32_t sh = shift > 62u ? 62u : shift;
    if (eq_aff_identity(c, mul, add, shift)) {
        eq_aff_copy(acc, n_pix, c, out);
        return;
    }
#if defined(__GNUC__)
    if (sh >= 1u && sh <= 31u) { /* 32-bit halves: low word of v >> sh, its high word hi >> sh */
        const uint32_t ls = 32u - sh;
        for (p = 0; p < n_pix; ++p, acc += c, out += c) {
            for (n = 0; n < c; ++n) {
                const int64_t v = (int64_t)acc[n] * (int64_t)mul[n] + (int64_t)add[n];
                const int32_t hi = (int32_t)(v >> 32);
                const int32_t r = (int32_t)(((uint32_t)v >> sh) | ((uint32_t)hi << ls));
                out[n] = (hi >> sh) == (r >> 31) ? r : hi < 0 ? INT32_MIN : INT32_MAX;
            }
        }
        return;
    }
#endif
    for (p = 0; p < n_pix; ++p, acc += c, out += c) {
        for (n = 0; n < c; ++n) {
            int64_t v = (int64_t)acc[n] * (int64_t)mul[n] + (int64_t)add[n];
            v = EQ_ASR64(v, sh);
            out[n] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
        }
    }
}

/* eq_affine_i32 for accumulators known to satisfy |acc| <= amax (a CONV's K * max|product|):
 * with mul = mh 2**s + ml and add = ah 2**s + al (0 <= ml, al < 2**s, s = shift),
 * (acc mul + add) >> s = acc mh + ah + ((acc ml + al) >> s) exactly, 2**s (acc mh + ah) being a
 * multiple of 2**s. Where (amax + 1) 2**s <= 2**31 the remainder term fits int32, and where
 * amax |mh| + |ah| + amax + 1 < 2**31 the sum fits too (no saturation): a channel is then two
 * 32-bit multiply-adds and a shift (the folded batch norms of binary convs: mul ~2**30, shift
 * ~10, K <= 576). Decided per chunk of 32 channels; other chunks take the 64-bit form. */
#define EQ_AFF_CHUNK 32u
#define EQ_AFF_MIN_PIX 12u /* pixels a call: the table (~40 instructions a channel) pays from ~8 */

/* 1 and the chunk's table (ml, al, mh, ah per channel) where the 32-bit form is exact */
static int eq_aff_prep(const int32_t *mul, const int32_t *add, uint32_t nch, uint32_t sh, uint32_t amax,
                       int32_t *t)
{
    uint32_t n;
    if (sh > 31u || amax >= 0x40000000u || (((uint64_t)amax + 1u) << sh) > 0x80000000ull) return 0;
    for (n = 0; n < nch; n++) {
        const int64_t m = mul[n], a = add[n];
        /* floor(v / 2**s) as ((v + 2**40) >> s) - 2**(40 - s): unsigned shifts only, |v| < 2**31 */
        const int64_t mh = (int64_t)(((uint64_t)m + (1ull << 40)) >> sh) - (int64_t)(1ull << (40u - sh));
        const int64_t ah = (int64_t)(((uint64_t)a + (1ull << 40)) >> sh) - (int64_t)(1ull << (40u - sh));
        if ((uint64_t)amax * (uint64_t)(mh < 0 ? -mh : mh) + (uint64_t)(ah < 0 ? -ah : ah) + amax + 1u
            >= 0x80000000ull) return 0;
        t[4u * n] = (int32_t)(m - mh * ((int64_t)1 << sh)); /* floor division: 0 <= ml < 2**s */
        t[4u * n + 1u] = (int32_t)(a - ah * ((int64_t)1 << sh));
        t[4u * n + 2u] = (int32_t)mh;
        t[4u * n + 3u] = (int32_t)ah;
    }
    return 1;
}

/* one pixel's nch >= 1 channels in the 32-bit form */
static void eq_aff_px(const int32_t *a, const int32_t *t, uint32_t nch, uint32_t sh, int32_t *o)
{
#if defined(__thumb2__) && defined(__GNUC__)
    /* Thumb-2: LDM of the four table words into r8..r11, two MLAs, the shift, nine instructions
     * a value */
    register int32_t ml __asm__("r8"), al __asm__("r9"), mh __asm__("r10"), ah __asm__("r11");
    int32_t x;
    __asm__ volatile("1:\n\t"
                     "ldr %[x], [%[a]], #4\n\t"
                     "ldmia %[t]!, {%[ml], %[al], %[mh], %[ah]}\n\t"
                     "mla %[al], %[x], %[ml], %[al]\n\t"
                     "mla %[ah], %[x], %[mh], %[ah]\n\t"
                     "asr %[al], %[al], %[sh]\n\t"
                     "add %[ah], %[ah], %[al]\n\t"
                     "str %[ah], [%[o]], #4\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [x] "=&r"(x), [a] "+r"(a), [t] "+r"(t), [o] "+r"(o), [n] "+r"(nch), [ml] "=&r"(ml),
                       [al] "=&r"(al), [mh] "=&r"(mh), [ah] "=&r"(ah)
                     : [sh] "r"(sh)
                     : "cc", "memory");
#else
    uint32_t n;
    for (n = 0; n < nch; n++, t += 4) {
        const uint32_t x = (uint32_t)a[n];
        const int32_t r = (int32_t)(x * (uint32_t)t[0] + (uint32_t)t[1]); /* |r| < 2**31 */
        /* floor(r / 2**s) without relying on >> of negative numbers */
        const int32_t q = r >= 0 ? (int32_t)((uint32_t)r >> sh) : (int32_t)~(~(uint32_t)r >> sh);
        o[n] = (int32_t)(x * (uint32_t)t[2] + (uint32_t)t[3] + (uint32_t)q);
    }
#endif
}

void eq_affine_i32_bounded(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                           const int32_t *add, uint8_t shift, uint32_t amax, int32_t *out)
{
    int32_t t[4u * EQ_AFF_CHUNK]; /* per channel: ml, al, mh, ah */
    uint32_t n0, p, n;
    if (eq_aff_identity(c, mul, add, shift)) { /* checked once here, not again in eq_affine_i32 */
        eq_aff_copy(acc, n_pix, c, out);
        return;
    }
    if (n_pix < EQ_AFF_MIN_PIX) { /* the table would cost more than it saves */
        eq_affine_i32(acc, n_pix, c, mul, add, shift, out);
        return;
    }
    for (n0 = 0; n0 < c; n0 += EQ_AFF_CHUNK) {
        const uint32_t nch = c - n0 < EQ_AFF_CHUNK ? c - n0 : EQ_AFF_CHUNK;
        if (eq_aff_prep(mul + n0, add + n0, nch, shift, amax, t)) {
            for (p = 0; p < n_pix; p++) eq_aff_px(acc + (size_t)p * c + n0, t, nch, shift, out + (size_t)p * c + n0);
            continue;
        }
        for (p = 0; p < n_pix; p++) { /* the 64-bit form, one channel at a time */
            for (n = n0; n < n0 + nch; n++) eq_affine_i32(acc + (size_t)p * c + n, 1u, 1u, mul + n, add + n, shift,
                                                          out + (size_t)p * c + n);
        }
    }
}
