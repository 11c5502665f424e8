/* eq_bitdot.h: the popcount cores shared by the binary/ternary kernels (internal header).
 *
 * One portable C99 path, always compiled (and the only one the host runs), plus Cortex-M
 * variants chosen at compile time by ACLE feature macros: with __ARM_FEATURE_DSP the byte sums
 * of the SWAR popcount go through USADA8 (one instruction for four bytes). Both give the same
 * integers: they are plain popcounts.
 *
 * The popcount of a stream of XOR words is taken three words at a time: each word is reduced
 * to 4-bit counts (<= 4) by the first two SWAR steps, the three words' nibbles are added
 * (<= 12, no carry out of a nibble), folded to bytes (<= 24) and summed once per group.
 */
#ifndef EQ_BITDOT_H
#define EQ_BITDOT_H

#include "eq_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define EQ_HAVE_DSP 1
#endif

#if defined(__GNUC__)
#define EQ_BD_INLINE static inline __attribute__((always_inline))
#else
#define EQ_BD_INLINE static inline
#endif

/* x -> 4-bit field counts (each <= 4) */
EQ_BD_INLINE uint32_t eq_nib(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    return (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
}

/* sum of the four bytes of a byte vector whose bytes are <= 63 */
EQ_BD_INLINE uint32_t eq_bytesum(uint32_t b)
{
#ifdef EQ_HAVE_DSP
    return __usada8(b, 0u, 0u);
#else
    return (b * 0x01010101u) >> 24;
#endif
}

/* nibble counts (each <= 12) -> their total */
EQ_BD_INLINE uint32_t eq_nibsum(uint32_t s)
{
    return eq_bytesum((s & 0x0F0F0F0Fu) + ((s >> 4) & 0x0F0F0F0Fu));
}

/* popcount of (a[i] ^ w[i]) over n words */
EQ_BD_INLINE uint32_t eq_xor_pc(const uint32_t *a, const uint32_t *w, uint32_t n)
{
    uint32_t pc = 0, i = 0;
    for (; i + 3u <= n; i += 3u)
        pc += eq_nibsum(eq_nib(a[i] ^ w[i]) + eq_nib(a[i + 1] ^ w[i + 1]) + eq_nib(a[i + 2] ^ w[i + 2]));
    if (i + 2u == n) pc += eq_nibsum(eq_nib(a[i] ^ w[i]) + eq_nib(a[i + 1] ^ w[i + 1]));
    else if (i + 1u == n) pc += eq_nibsum(eq_nib(a[i] ^ w[i]));
    return pc;
}

/* popcount of (a[i] ^ w0[i]) and of (a[i] ^ w1[i]) over n words: two output channels share
 * every activation load */
EQ_BD_INLINE void eq_xor_pc2(const uint32_t *a, const uint32_t *w0, const uint32_t *w1,
                             uint32_t n, uint32_t *p0, uint32_t *p1)
{
    uint32_t c0 = 0, c1 = 0, i = 0;
    for (; i + 3u <= n; i += 3u) {
        const uint32_t a0 = a[i], a1 = a[i + 1], a2 = a[i + 2];
        c0 += eq_nibsum(eq_nib(a0 ^ w0[i]) + eq_nib(a1 ^ w0[i + 1]) + eq_nib(a2 ^ w0[i + 2]));
        c1 += eq_nibsum(eq_nib(a0 ^ w1[i]) + eq_nib(a1 ^ w1[i + 1]) + eq_nib(a2 ^ w1[i + 2]));
    }
    for (; i < n; ++i) {
        c0 += eq_nibsum(eq_nib(a[i] ^ w0[i]));
        c1 += eq_nibsum(eq_nib(a[i] ^ w1[i]));
    }
    *p0 = c0;
    *p1 = c1;
}

#if defined(EQ_HAVE_DSP) && defined(__thumb2__)
#define EQ_HAVE_B1_ROWS 1
/* eq_bitdot_dsp.c: for j < nch, out[j] = base[j] - 2 * (popcount of patch ^ row j over
 * k = 3 * groups + extra / 4 words); rows k words apart; groups, nch >= 1, extra 0, 4 or 8 */
typedef struct {
    uint32_t nch, extra;
    const uint32_t *base;
    int32_t *out;
    uint32_t by3;    /* 1: groups % 3 == 0 and extra == 0; 2 (B1 rows): groups == 2, extra == 0 */
    uint32_t kbytes; /* TERN: 4 * k, the distance from a row's sign plane to its nonzero plane */
} eq_b1_job_t;
void eq_b1_rows_dsp(const uint32_t *patch, const uint32_t *w, uint32_t groups,
                    const eq_b1_job_t *job);
/* the same with AND: out[j] = base[j] - 2 * popcount of patch & row j */
void eq_b1and_rows_dsp(const uint32_t *patch, const uint32_t *w, uint32_t groups,
                       const eq_b1_job_t *job);
/* TERN rows (sign plane, then nonzero plane, k words each): out[j] = base[j] - 2 * popcount
 * of z_j & (patch ^ s_j) over k words */
void eq_tern_rows_dsp(const uint32_t *patch, const uint32_t *w, uint32_t groups,
                      const eq_b1_job_t *job);
#endif

/* popcount of one word */
EQ_BD_INLINE uint32_t eq_pc1(uint32_t x)
{
    return eq_nibsum(eq_nib(x));
}

/* popcount of n words */
EQ_BD_INLINE uint32_t eq_pc_words(const uint32_t *w, uint32_t n)
{
    uint32_t pc = 0, i = 0;
    for (; i + 3u <= n; i += 3u) pc += eq_nibsum(eq_nib(w[i]) + eq_nib(w[i + 1]) + eq_nib(w[i + 2]));
    for (; i < n; ++i) pc += eq_pc1(w[i]);
    return pc;
}

#endif /* EQ_BITDOT_H */
