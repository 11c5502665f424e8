/* x86-64 AVX2 variants of the hot GEMM kernels (host only; chosen at run time by eq_dispatch.c).
 *
 * Compiled with __attribute__((target("avx2,popcnt[,fma]"))) per function, never -march=native,
 * so the module still loads on CPUs without AVX2 (the dispatcher then keeps "portable").
 * Semantics, layouts and status codes are exactly those of the portable kernels in
 * firmware/kernels/; tests/test_kernels.py runs every variant against edgeq/reference/ref.py.
 * The two bit-GEMM inner steps are GCC extended inline asm (AT&T, operands only in registers
 * and "m" memory operands, no clobbers needed): with all 16 ymm registers live, GCC's allocator
 * otherwise spills counters and re-loads operands. Scratch for re-laid-out operands lives on the
 * stack (at most ~80 KB, eq_xnor_tab), so callers need no extra buffers.
 */
#include "eq_host.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <immintrin.h>
#include <string.h>

#define EQ_AVX2 __attribute__((target("avx2,popcnt")))
#define EQ_AVX2_FMA __attribute__((target("avx2,fma")))
#define EQ_INLINE __attribute__((always_inline)) inline
#define EQ_NOINLINE __attribute__((noinline))

/* popcount of each nibble value, in both 128-bit lanes (vpshufb table) */
#define EQ_PC_LUT                                                                               \
    _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, \
                     2, 2, 3, 2, 3, 3, 4)

/* ---- ternary-bitplane GEMM (binary activations), short M -------------------------------------
 * (whole blocks of rows use eq_tern_tab further down, fewer than 4 rows eq_bits_direct.)
 * Both operands are first copied ("nibble-split") into stack panels: per row and per 256-bit
 * step v, the vector of low nibbles (x & 0x0f in every byte) and the vector of high nibbles
 * ((x >> 4) & 0x0f). Since (a ^ s) & z & 0x0f = (a_lo ^ s_lo) & z_lo, a pair then costs xor, and,
 * vpshufb and add per nibble half: 8 vector ops per 256 bits instead of 10 when every pair
 * re-splits its nibbles. Rows are padded to whole 256-bit steps with zero bits, which add 0
 * (pad bits are 0 in both operands), so there is no scalar tail; missing rows of a 2 x 4 block
 * are zero rows whose results are not stored. Byte counters take <= 8 per step, so they are
 * widened (vpsadbw) every 31 steps. (XNOR uses the table-per-nibble kernel further down.) */
#define EQ_CHUNK 31u          /* 256-bit steps per K chunk (7936 bits) */
#ifndef EQ_BPANEL
#define EQ_BPANEL 32768u      /* bytes of the split b panel */
#endif

static EQ_AVX2 EQ_INLINE __m128i eq_red4(__m256i c0, __m256i c1, __m256i c2, __m256i c3)
{
    const __m256i z = _mm256_setzero_si256();
    const __m256i p01 = _mm256_or_si256(_mm256_sad_epu8(c0, z),
                                        _mm256_slli_epi64(_mm256_sad_epu8(c1, z), 32));
    const __m256i p23 = _mm256_or_si256(_mm256_sad_epu8(c2, z),
                                        _mm256_slli_epi64(_mm256_sad_epu8(c3, z), 32));
    const __m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(p01, p23),
                                       _mm256_unpackhi_epi64(p01, p23));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* split words [0, nw) of src (nw <= 8 * nv) into nv (lo, hi) vector pairs at dst, dst_step
 * vectors apart; zeros past nw. src == NULL: all zero (a padding row). */
static EQ_AVX2 void eq_split(const uint32_t *src, uint32_t nw, uint32_t nv, __m256i *dst,
                             uint32_t dst_step)
{
    const __m256i low = _mm256_set1_epi8(0x0f);
    uint32_t v;
    for (v = 0; v < nv; ++v) {
        __m256i x;
        if (src && 8u * v + 8u <= nw) {
            x = _mm256_loadu_si256((const __m256i *)(const void *)(src + 8u * v));
        } else {
            uint32_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0}, q;
            for (q = 0; src && 8u * v + q < nw && q < 8u; ++q) t[q] = src[8u * v + q];
            x = _mm256_loadu_si256((const __m256i *)(const void *)t);
        }
        dst[dst_step * v] = _mm256_and_si256(x, low);
        dst[dst_step * v + 1u] = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
    }
}

/* 2 x 4 block over nv <= 31 steps. a: 2 split rows interleaved per step (a0 lo, a0 hi, a1 lo,
 * a1 hi); b: 4 split rows, bs vectors apart, holding (sign lo, sign hi, nz lo, nz hi) per step. Returns the 4 popcounts of each a row in r[0], r[1].
 * The per-row step is inline asm: 8 byte counters, 4 a vectors, the LUT, the 2 b vectors of
 * the row and a temporary take all 16 ymm registers, which GCC's allocator does not manage
 * (it spills counters and re-loads a); this way each b vector is loaded once per step. */
#define EQ_ASM_NIB(AL, AH, C, AND_L, AND_H)                                                       \
    "vpxor %[bl], %[" AL "], %[t]\n\t" AND_L "vpshufb %[t], %[lut], %[t]\n\t"                     \
    "vpaddb %[t], %[" C "], %[" C "]\n\t"                                                         \
    "vpxor %[bh], %[" AH "], %[t]\n\t" AND_H "vpshufb %[t], %[lut], %[t]\n\t"                     \
    "vpaddb %[t], %[" C "], %[" C "]\n\t"
#define EQ_AND_L "vpand %[zl], %[t], %[t]\n\t"
#define EQ_AND_H "vpand %[zh], %[t], %[t]\n\t"
#define EQ_ROW_TERN(C0, C1, P)                                                                    \
    __asm__("vmovdqa %[ml], %[bl]\n\tvmovdqa %[mh], %[bh]\n\t"                                    \
            EQ_ASM_NIB("al0", "ah0", "c0", EQ_AND_L, EQ_AND_H)                                    \
            EQ_ASM_NIB("al1", "ah1", "c1", EQ_AND_L, EQ_AND_H)                                    \
            : [c0] "+x"(C0), [c1] "+x"(C1), [t] "=&x"(t_), [bl] "=&x"(bl_), [bh] "=&x"(bh_)       \
            : [al0] "x"(al0), [ah0] "x"(ah0), [al1] "x"(al1), [ah1] "x"(ah1), [lut] "x"(lut),     \
              [ml] "m"((P)[0]), [mh] "m"((P)[1]), [zl] "m"((P)[2]), [zh] "m"((P)[3]))

#define EQ_DEFINE_UKR(NAME, SV, ROW)                                                              \
    static EQ_AVX2 EQ_INLINE void NAME(const __m256i *a, const __m256i *b, uint32_t bs,           \
                                       uint32_t nv, __m128i r[2])                                 \
    {                                                                                             \
        const __m256i lut = EQ_PC_LUT;                                                            \
        __m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00;                    \
        __m256i c10 = c00, c11 = c00, c12 = c00, c13 = c00;                                       \
        uint32_t v;                                                                               \
        for (v = 0; v < nv; ++v, a += 4, b += SV) {                                               \
            const __m256i al0 = a[0], ah0 = a[1], al1 = a[2], ah1 = a[3];                         \
            __m256i t_, bl_, bh_;                                                                 \
            ROW(c00, c10, b);                                                                     \
            ROW(c01, c11, b + bs);                                                                \
            ROW(c02, c12, b + 2u * bs);                                                           \
            ROW(c03, c13, b + 3u * bs);                                                           \
        }                                                                                         \
        r[0] = eq_red4(c00, c01, c02, c03);                                                       \
        r[1] = eq_red4(c10, c11, c12, c13);                                                       \
    }

EQ_DEFINE_UKR(eq_ukr_tern, 4u, EQ_ROW_TERN)

/* Ternary driver: w (N, 2 KW) planes, out = nz(n) - 2 * popcount(nz & (a ^ sign)).
 * K is processed in chunks of 31 steps (out holds partial counts between chunks); per chunk,
 * panels of w rows are split once and every pair of a rows is split once per panel. */
static EQ_AVX2 void eq_tern_split(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                  uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), nvt = (kw + 7u) / 8u, sv = 4u, bstride = 2u * kw;
    __m256i bpan[EQ_BPANEL / 32u];
    __m256i apan[4u * EQ_CHUNK];
    int32_t base[64u + 4u];
    uint32_t v0, j0, i, jj, r, s, q;
    for (v0 = 0; v0 < nvt; v0 += EQ_CHUNK) {
        const uint32_t nv = (nvt - v0) < EQ_CHUNK ? nvt - v0 : EQ_CHUNK;
        const uint32_t w0 = 8u * v0, nw = (kw - w0) < 8u * nv ? kw - w0 : 8u * nv;
        const uint32_t rowv = sv * nv; /* vectors per split b row */
        const int first = v0 == 0, last = v0 + nv >= nvt;
        uint32_t np = (uint32_t)(sizeof bpan / sizeof bpan[0]) / rowv / 4u * 4u;
        if (np > 64u) np = 64u;
        for (j0 = 0; j0 < n; j0 += np) {
            const uint32_t nb = (n - j0) < np ? n - j0 : np, nb4 = (nb + 3u) & ~3u;
            for (s = 0; s < nb4; ++s) {
                const uint32_t *row = s < nb ? b + (j0 + s) * bstride : NULL;
                eq_split(row ? row + w0 : NULL, nw, nv, bpan + s * rowv, sv);
                eq_split(row ? row + kw + w0 : NULL, nw, nv, bpan + s * rowv + 2u, sv);
                base[s] = 0;
                for (q = 0; row && q < kw; ++q) base[s] += (int32_t)_mm_popcnt_u32(row[kw + q]);
            }
            for (i = 0; i < m; i += 2u) {
                eq_split(a + i * kw + w0, nw, nv, apan, 4u);
                eq_split(i + 1u < m ? a + (i + 1u) * kw + w0 : NULL, nw, nv, apan + 2u, 4u);
                for (jj = 0; jj < nb; jj += 4u) {
                    __m128i res[2];
                    const uint32_t ns = (nb - jj) < 4u ? nb - jj : 4u;
                    const __m128i b4 = _mm_loadu_si128((const __m128i *)(const void *)(base + jj));
                    eq_ukr_tern(apan, bpan + jj * rowv, rowv, nv, res);
                    for (r = 0; r < 2u && i + r < m; ++r) {
                        int32_t *o = out + (i + r) * n + j0 + jj;
                        __m128i c = res[r];
                        int32_t t[4];
                        if (ns == 4u) {
                            if (!first) c = _mm_add_epi32(c, _mm_loadu_si128((__m128i *)(void *)o));
                            if (last) c = _mm_sub_epi32(b4, _mm_slli_epi32(c, 1));
                            _mm_storeu_si128((__m128i *)(void *)o, c);
                        } else {
                            _mm_storeu_si128((__m128i *)(void *)t, c);
                            for (s = 0; s < ns; ++s) {
                                int32_t x = t[s] + (first ? 0 : o[s]);
                                o[s] = last ? base[jj + s] - 2 * x : x;
                            }
                        }
                    }
                }
            }
        }
    }
}

/* ---- XNOR GEMM, one lookup table per activation nibble --------------------------------------
 * popcount(x ^ y) over a nibble pair is tab_x[y] with tab_x = popcount(x ^ .), a 16-byte table
 * for each of the 16 values x. Weights are transposed per group of 32 rows into "nibble
 * columns" (byte j of bt[g][q] = nibble q of row 32 g + j), activations become per-nibble table
 * offsets (16 x). One vpshufb of tab_x (loaded, no ALU op) by a nibble column then gives 32
 * pair counts for 4 bits: 2 vector ALU ops (vpshufb + vpaddb) per 32 x 4 pair-bits, i.e. 4 per
 * 256-bit pair against 6 for xor + split-nibble lookups. Blocks of 2 a rows x 4 groups (128 b
 * rows): 8 byte counters + 4 nibble columns + the table + a temporary in registers; counters
 * (<= 4 per step) are widened to 16 bits every 63 steps, K is chunked at 2560 bits. */
static EQ_AVX2 void eq_tr16(const int8_t *src, uint32_t ls, int8_t *dst, uint32_t ld);
#define EQ_XQC 640u /* nibble positions per K chunk (2560 bits; 80 KB of nibble columns) */
#define EQ_XG 4u     /* groups of 32 b rows per block */

/* one group: nibble column -> iv, 32 lookups in each of the two row tables, accumulate */
#define EQ_XQ_GROUP(B, C0, C1)                                                                    \
    "vmovdqa %[" B "], %[iv]\n\t"                                                                 \
    "vpshufb %[iv], %[t0], %[x]\n\t"                                                              \
    "vpaddb %[x], %[" C0 "], %[" C0 "]\n\t"                                                       \
    "vpshufb %[iv], %[t1], %[iv]\n\t"                                                             \
    "vpaddb %[iv], %[" C1 "], %[" C1 "]\n\t"

/* widen one 32-row byte counter vector into its two 16-bit halves */
static EQ_AVX2 EQ_INLINE void eq_xq_widen(__m256i w16[2], __m256i c)
{
    const __m256i z = _mm256_setzero_si256();
    w16[0] = _mm256_add_epi16(w16[0], _mm256_unpacklo_epi8(c, z));
    w16[1] = _mm256_add_epi16(w16[1], _mm256_unpackhi_epi8(c, z));
}

/* the 32 counts of a widened group to dst[j * ld], j = row within the group
 * (unpacklo holds rows 0-7 and 16-23, unpackhi rows 8-15 and 24-31) */
static EQ_AVX2 EQ_INLINE void eq_xq_store(const __m256i w16[2], uint16_t *dst, uint32_t ld)
{
    uint16_t lo[16], hi[16];
    uint32_t j;
    _mm256_storeu_si256((__m256i *)(void *)lo, w16[0]);
    _mm256_storeu_si256((__m256i *)(void *)hi, w16[1]);
    for (j = 0; j < 8u; ++j) {
        dst[j * ld] = lo[j];
        dst[(16u + j) * ld] = lo[8u + j];
        dst[(8u + j) * ld] = hi[j];
        dst[(24u + j) * ld] = hi[8u + j];
    }
}

/* The micro-kernel body, shared by XNOR (16 tables, uint8 offsets from a rows) and ternary
 * (256 tables, uint16 offsets from weight rows): exactly one of the o8 / o16 pairs is non-NULL,
 * and each wrapper below passes constants, so the choice is compiled away. */
static EQ_AVX2 EQ_INLINE void eq_xq_body(const __m256i *bt, uint32_t nq, const uint8_t *o80,
                                         const uint8_t *o81, const uint16_t *o160,
                                         const uint16_t *o161, const uint8_t *tabs,
                                         uint16_t *cnt0, uint16_t *cnt1, uint32_t ld)
{
    uint16_t *const cnt[2] = {cnt0, cnt1};
    const __m256i z = _mm256_setzero_si256();
    __m256i w16[2][EQ_XG][2];
    uint32_t q = 0, r, g;
    for (r = 0; r < 2u; ++r)
        for (g = 0; g < EQ_XG; ++g) w16[r][g][0] = w16[r][g][1] = z;
    while (q < nq) {
        const uint32_t end = (nq - q) > 63u ? q + 63u : nq;
        __m256i c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
#define EQ_XQ_STEP(Q)                                                                             \
    do {                                                                                          \
        __m256i t0, t1, iv, x;                                                                    \
        __asm__("vbroadcasti128 %[m0], %[t0]\n\t"                                                 \
                "vbroadcasti128 %[m1], %[t1]\n\t"                                                 \
                EQ_XQ_GROUP("b0", "c00", "c10") EQ_XQ_GROUP("b1", "c01", "c11")                   \
                EQ_XQ_GROUP("b2", "c02", "c12") EQ_XQ_GROUP("b3", "c03", "c13")                   \
                : [c00] "+x"(c00), [c01] "+x"(c01), [c02] "+x"(c02), [c03] "+x"(c03),             \
                  [c10] "+x"(c10), [c11] "+x"(c11), [c12] "+x"(c12), [c13] "+x"(c13),             \
                  [t0] "=&x"(t0), [t1] "=&x"(t1), [iv] "=&x"(iv), [x] "=&x"(x)                    \
                : [m0] "m"(*(const __m128i *)(const void *)(tabs + (o80 ? o80[Q] : o160[Q]))),    \
                  [m1] "m"(*(const __m128i *)(const void *)(tabs + (o80 ? o81[Q] : o161[Q]))),    \
                  [b0] "m"(bt[Q]), [b1] "m"(bt[nq + (Q)]), [b2] "m"(bt[2u * nq + (Q)]),           \
                  [b3] "m"(bt[3u * nq + (Q)]));                                                   \
    } while (0)
        for (; q < end; ++q) EQ_XQ_STEP(q);
        {
            const __m256i c[2][EQ_XG] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}};
            for (r = 0; r < 2u; ++r)
                for (g = 0; g < EQ_XG; ++g) eq_xq_widen(w16[r][g], c[r][g]);
        }
    }
    for (r = 0; r < 2u; ++r)
        for (g = 0; g < EQ_XG; ++g) eq_xq_store(w16[r][g], cnt[r] + 32u * g * ld, ld);
}

static EQ_AVX2 EQ_NOINLINE void eq_xq_ukr(const __m256i *bt, uint32_t nq, const uint8_t *ao0,
                                          const uint8_t *ao1, const uint8_t *tabs,
                                          uint16_t cnt[2][EQ_XG * 32u])
{
    eq_xq_body(bt, nq, ao0, ao1, NULL, NULL, tabs, cnt[0], cnt[1], 1u);
}

/* 4 table rows x 2 groups (64 column rows): the same two ALU ops per 32 x 4 lookups as the
 * 2 x 4 kernel, for blocks of at most 64 column rows (4 tables + 2 x 4 counters + column +
 * temporary = 14 ymm registers). Counts of table row r, column row s go to cnt[s ld + r]. */
#define EQ_XQ_GROUP4(B, C0, C1, C2, C3)                                                           \
    "vmovdqa %[" B "], %[iv]\n\t"                                                                 \
    "vpshufb %[iv], %[t0], %[x]\n\t"                                                              \
    "vpaddb %[x], %[" C0 "], %[" C0 "]\n\t"                                                       \
    "vpshufb %[iv], %[t1], %[x]\n\t"                                                              \
    "vpaddb %[x], %[" C1 "], %[" C1 "]\n\t"                                                       \
    "vpshufb %[iv], %[t2], %[x]\n\t"                                                              \
    "vpaddb %[x], %[" C2 "], %[" C2 "]\n\t"                                                       \
    "vpshufb %[iv], %[t3], %[iv]\n\t"                                                             \
    "vpaddb %[iv], %[" C3 "], %[" C3 "]\n\t"

static EQ_AVX2 EQ_NOINLINE void eq_xq_ukr16_4x2(const __m256i *bt, uint32_t nq,
                                                const uint16_t *const ao[4], const uint8_t *tabs,
                                                uint16_t *cnt, uint32_t ld)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i w16[4][2][2];
    uint32_t q = 0, r, g;
    for (r = 0; r < 4u; ++r)
        for (g = 0; g < 2u; ++g) w16[r][g][0] = w16[r][g][1] = z;
    while (q < nq) {
        const uint32_t end = (nq - q) > 63u ? q + 63u : nq;
        __m256i c00 = z, c10 = z, c20 = z, c30 = z, c01 = z, c11 = z, c21 = z, c31 = z;
        for (; q < end; ++q) {
            __m256i t0, t1, t2, t3, iv, x;
            __asm__("vbroadcasti128 %[m0], %[t0]\n\t"
                    "vbroadcasti128 %[m1], %[t1]\n\t"
                    "vbroadcasti128 %[m2], %[t2]\n\t"
                    "vbroadcasti128 %[m3], %[t3]\n\t"
                    EQ_XQ_GROUP4("b0", "c00", "c10", "c20", "c30")
                    EQ_XQ_GROUP4("b1", "c01", "c11", "c21", "c31")
                    : [c00] "+x"(c00), [c10] "+x"(c10), [c20] "+x"(c20), [c30] "+x"(c30),
                      [c01] "+x"(c01), [c11] "+x"(c11), [c21] "+x"(c21), [c31] "+x"(c31),
                      [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2), [t3] "=&x"(t3),
                      [iv] "=&x"(iv), [x] "=&x"(x)
                    : [m0] "m"(*(const __m128i *)(const void *)(tabs + ao[0][q])),
                      [m1] "m"(*(const __m128i *)(const void *)(tabs + ao[1][q])),
                      [m2] "m"(*(const __m128i *)(const void *)(tabs + ao[2][q])),
                      [m3] "m"(*(const __m128i *)(const void *)(tabs + ao[3][q])),
                      [b0] "m"(bt[q]), [b1] "m"(bt[nq + q]));
        }
        {
            const __m256i c[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
            for (r = 0; r < 4u; ++r)
                for (g = 0; g < 2u; ++g) eq_xq_widen(w16[r][g], c[r][g]);
        }
    }
    for (r = 0; r < 4u; ++r)
        for (g = 0; g < 2u; ++g) eq_xq_store(w16[r][g], cnt + 32u * g * ld + r, ld);
}

/* counts of rows (ao0, ao1) go to cnt[s ld] and cnt[s ld + 1], s = column row 0 .. 127 */
static EQ_AVX2 EQ_NOINLINE void eq_xq_ukr16(const __m256i *bt, uint32_t nq, const uint16_t *ao0,
                                            const uint16_t *ao1, const uint8_t *tabs,
                                            uint16_t *cnt, uint32_t ld)
{
    eq_xq_body(bt, nq, NULL, NULL, ao0, ao1, tabs, cnt, cnt + 1, ld);
}

/* a row's bytes [byte0, byte0 + nb) -> table offsets (16 * nibble), nibble q = 2 * byte + hi */
static EQ_AVX2 void eq_xq_aoff(const uint8_t *row, uint32_t nbytes_row, uint32_t byte0,
                               uint32_t nb, uint8_t *ao)
{
    const __m128i low = _mm_set1_epi8(0x0f);
    uint32_t i;
    for (i = 0; i < nb; i += 16u) {
        __m128i x;
        if (row && byte0 + i + 16u <= nbytes_row) {
            x = _mm_loadu_si128((const __m128i *)(const void *)(row + byte0 + i));
        } else {
            uint8_t t[16] = {0};
            uint32_t u;
            for (u = 0; row && u < 16u && byte0 + i + u < nbytes_row; ++u) t[u] = row[byte0 + i + u];
            x = _mm_loadu_si128((const __m128i *)(const void *)t);
        }
        {
            const __m128i lo = _mm_and_si128(x, low);
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low);
            _mm_storeu_si128((__m128i *)(void *)(ao + 2u * i), _mm_slli_epi16(_mm_unpacklo_epi8(lo, hi), 4));
            _mm_storeu_si128((__m128i *)(void *)(ao + 2u * i + 16u),
                             _mm_slli_epi16(_mm_unpackhi_epi8(lo, hi), 4));
        }
    }
}

/* M < 4: nothing to amortise a re-layout of b over (each b row is used by M rows only, and b is
 * usually streamed from memory), so each b row is read once and paired with every a row by
 * xor (+ and with the nonzero plane for ternary) + on-the-fly nibble lookups; byte counters
 * widened with vpsadbw every 31 steps. tern: b rows are (sign, nz) planes and
 * out = nz(n) - 2 popcount(nz & (a ^ sign)); else out = k - 2 popcount(a ^ b). Callers pass
 * tern as a constant, so each inlined copy has no test in its loop. */
static EQ_AVX2 EQ_INLINE void eq_bits_direct(const uint32_t *a, const uint32_t *b, uint32_t m,
                                             uint32_t n, uint32_t k, int tern, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), nv = kw / 8u, rs = tern ? 2u * kw : kw;
    const __m256i lut = EQ_PC_LUT, low = _mm256_set1_epi8(0x0f), z = _mm256_setzero_si256();
    uint32_t i, j, v, q;
    for (j = 0; j < n; ++j) {
        const uint32_t *br = b + (size_t)j * rs, *nz = tern ? br + kw : NULL;
        int32_t base = (int32_t)k;
        if (tern)
            for (q = 0, base = 0; q < kw; ++q) base += (int32_t)_mm_popcnt_u32(nz[q]);
        for (i = 0; i < m; ++i) {
            const uint32_t *ar = a + (size_t)i * kw;
            __m256i wide = z;
            uint64_t t;
            for (v = 0; v < nv;) {
                const uint32_t end = (nv - v) > EQ_CHUNK ? v + EQ_CHUNK : nv;
                __m256i c = z;
                for (; v < end; ++v) {
                    __m256i x = _mm256_xor_si256(
                        _mm256_loadu_si256((const __m256i *)(const void *)(ar + 8u * v)),
                        _mm256_loadu_si256((const __m256i *)(const void *)(br + 8u * v)));
                    if (tern)
                        x = _mm256_and_si256(
                            x, _mm256_loadu_si256((const __m256i *)(const void *)(nz + 8u * v)));
                    c = _mm256_add_epi8(c, _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low)));
                    c = _mm256_add_epi8(c, _mm256_shuffle_epi8(
                                               lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
                }
                wide = _mm256_add_epi64(wide, _mm256_sad_epu8(c, z));
            }
            {
                const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(wide),
                                                _mm256_extracti128_si256(wide, 1));
                t = (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1);
            }
            for (q = 8u * nv; q < kw; ++q)
                t += (uint64_t)_mm_popcnt_u32((tern ? nz[q] : ~0u) & (ar[q] ^ br[q]));
            out[(size_t)i * n + j] = base - 2 * (int32_t)t;
        }
    }
}

/* nibble columns of rows r0 + (0 .. 32 ng - 1) of src (nrows rows of kw words), over bytes
 * [byte0, byte0 + nq / 2) of each row: byte j of bt[g nq + q] = nibble q of row r0 + 32 g + j.
 * Rows past nrows and bytes past the row end read as zero. */
static EQ_AVX2 void eq_xq_cols(const uint32_t *src, uint32_t nrows, uint32_t kw, uint32_t r0,
                               uint32_t byte0, uint32_t nq, uint32_t ng, __m256i *bt)
{
    const uint32_t rb = 4u * kw;
    const __m256i low = _mm256_set1_epi8(0x0f);
    uint32_t g, bp;
    for (g = 0; g < ng; ++g) {
        for (bp = 0; bp < nq / 2u; bp += 32u) {
            int8_t blk[32][32], tr[32][32];
            uint32_t j, u;
            const uint32_t nbp = (nq / 2u - bp) < 32u ? nq / 2u - bp : 32u;
            for (j = 0; j < 32u; ++j) {
                const uint32_t row = r0 + 32u * g + j;
                const uint8_t *rp =
                    row < nrows ? (const uint8_t *)(const void *)(src + (size_t)row * kw) : NULL;
                if (rp && nbp == 32u && byte0 + bp + 32u <= rb) {
                    _mm256_storeu_si256((__m256i *)(void *)blk[j],
                                        _mm256_loadu_si256((const __m256i *)(const void *)
                                                           (rp + byte0 + bp)));
                    continue;
                }
                for (u = 0; u < 32u; ++u) {
                    const uint32_t byte = byte0 + bp + u;
                    blk[j][u] = (int8_t)((rp && u < nbp && byte < rb) ? rp[byte] : 0);
                }
            }
            eq_tr16(&blk[0][0], 32u, &tr[0][0], 32u);
            eq_tr16(&blk[0][16], 32u, &tr[16][0], 32u);
            eq_tr16(&blk[16][0], 32u, &tr[0][16], 32u);
            eq_tr16(&blk[16][16], 32u, &tr[16][16], 32u);
            for (u = 0; u < nbp; ++u) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)tr[u]);
                bt[g * nq + 2u * (bp + u)] = _mm256_and_si256(v, low);
                bt[g * nq + 2u * (bp + u) + 1u] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            }
        }
    }
}

static EQ_AVX2 void eq_xnor_tab(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), rb = 4u * kw; /* bytes per row */
    const uint32_t nqt = 2u * ((rb + 15u) & ~15u); /* nibble positions, whole 16-byte steps */
    uint8_t tabs[16][16] __attribute__((aligned(16)));
    __m256i bt[EQ_XG * EQ_XQC];
    uint8_t ao[2][EQ_XQC];
    uint16_t cnt[2][EQ_XG * 32u];
    uint32_t q0, n0, i, r, s, x, y;
    for (x = 0; x < 16u; ++x)
        for (y = 0; y < 16u; ++y) tabs[x][y] = (uint8_t)_mm_popcnt_u32(x ^ y);
    for (q0 = 0; q0 < nqt; q0 += EQ_XQC) {
        const uint32_t nq = (nqt - q0) < EQ_XQC ? nqt - q0 : EQ_XQC, byte0 = q0 / 2u;
        const int first = q0 == 0, last = q0 + nq >= nqt;
        for (n0 = 0; n0 < n; n0 += 32u * EQ_XG) {
            const uint32_t nbk = (n - n0) < 32u * EQ_XG ? n - n0 : 32u * EQ_XG;
            eq_xq_cols(b, n, kw, n0, byte0, nq, EQ_XG, bt);
            for (i = 0; i < m; i += 2u) {
                eq_xq_aoff((const uint8_t *)(const void *)(a + i * kw), rb, byte0, nq / 2u, ao[0]);
                eq_xq_aoff(i + 1u < m ? (const uint8_t *)(const void *)(a + (i + 1u) * kw) : NULL,
                           rb, byte0, nq / 2u, ao[1]);
                eq_xq_ukr(bt, nq, ao[0], ao[1], &tabs[0][0], cnt);
                for (r = 0; r < 2u && i + r < m; ++r) {
                    int32_t *o = out + (i + r) * n + n0;
                    for (s = 0; s < nbk; ++s) {
                        const int32_t c = (int32_t)cnt[r][s] + (first ? 0 : o[s]);
                        o[s] = last ? (int32_t)k - 2 * c : c;
                    }
                }
            }
        }
    }
}

/* ---- ternary-bitplane GEMM by weight tables (blocks of 128 or 64 activation rows) -------------
 * The XNOR scheme above with the roles swapped. A ternary weight nibble (4 sign bits s, 4
 * nonzero bits z) has 8 bits, too many for a vpshufb index, but it can pick a table: tab_sz[x] =
 * popcount(z & ~(x ^ s)), the number of nonzero weights that agree with activation nibble x.
 * 256 such tables (4 KB, L1-resident) cover every (s, z). Activation rows are transposed into
 * nibble columns (32 rows per vector), weight rows become per-nibble table offsets (uint16), and
 * the same micro-kernel runs 2 weight rows x 128 activation rows: one vpshufb + vpaddb per 32 x 4
 * ternary MACs, as for XNOR (4 bits of activation index per lookup instead of the 2 weights a
 * nibble of ternary weight codes can hold). Agree counts (<= 4 per step) are combined into
 * out = sum over K chunks of (2 agree - nonzeros of the row in the chunk). */
/* a last block of rows goes to the table kernel when it has >= 88 rows (128-row block) or 44..64
 * rows (64-row block, 4 x 2 kernel); otherwise to eq_tern_split */
#define EQ_TERN_TAB_REM 88u
#define EQ_TJ 16u /* weight rows per output tile (the tile keeps out's stores row-contiguous) */

/* weight row (sign, nz planes) bytes [byte0, byte0 + nb) -> table offsets 16 (s | z << 4) per
 * nibble, nibble q = 2 * byte + hi; sg == NULL: offset 0 (the all-zero table). nb % 16 == 0.
 * Returns the number of nonzero weights in those bytes. */
static EQ_AVX2 int32_t eq_xq_woff(const uint8_t *sg, const uint8_t *nz, uint32_t rb, uint32_t byte0,
                               uint32_t nb, uint16_t *ao)
{
    const __m128i low = _mm_set1_epi8(0x0f), high = _mm_set1_epi8((char)0xf0);
    int32_t nzc = 0;
    uint32_t i;
    for (i = 0; i < nb; i += 16u) {
        __m128i s, z;
        if (sg && byte0 + i + 16u <= rb) {
            s = _mm_loadu_si128((const __m128i *)(const void *)(sg + byte0 + i));
            z = _mm_loadu_si128((const __m128i *)(const void *)(nz + byte0 + i));
        } else {
            uint8_t ts[16] = {0}, tz[16] = {0};
            uint32_t u;
            for (u = 0; sg && u < 16u && byte0 + i + u < rb; ++u) {
                ts[u] = sg[byte0 + i + u];
                tz[u] = nz[byte0 + i + u];
            }
            s = _mm_loadu_si128((const __m128i *)(const void *)ts);
            z = _mm_loadu_si128((const __m128i *)(const void *)tz);
        }
        nzc += (int32_t)(_mm_popcnt_u64((uint64_t)_mm_cvtsi128_si64(z))
                         + _mm_popcnt_u64((uint64_t)_mm_extract_epi64(z, 1)));
        {
            const __m128i lo = _mm_or_si128(_mm_and_si128(s, low),
                                            _mm_and_si128(_mm_slli_epi16(z, 4), high));
            const __m128i hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(s, 4), low),
                                            _mm_and_si128(z, high));
            _mm256_storeu_si256((__m256i *)(void *)(ao + 2u * i),
                                _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(lo, hi)), 4));
            _mm256_storeu_si256((__m256i *)(void *)(ao + 2u * i + 16u),
                                _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(lo, hi)), 4));
        }
    }
    return nzc;
}

static EQ_AVX2 void eq_tern_tab(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                                uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), rb = 4u * kw; /* bytes per plane row */
    const uint32_t nqt = 2u * ((rb + 15u) & ~15u); /* nibble positions, whole 16-byte steps */
    uint8_t tabs[256][16] __attribute__((aligned(16)));
    __m256i bt[EQ_XG * EQ_XQC];
    uint16_t ao[4][EQ_XQC];
    uint16_t tile[32u * EQ_XG][EQ_TJ]; /* EQ_TJ % 4 == 0: a group of 2 or 4 rows always fits */
    int32_t nzc[EQ_TJ]; /* nonzero weights of each tile row within the chunk */
    uint32_t q0, m0, j0, j, r, s, x;
    for (s = 0; s < 256u; ++s)
        for (x = 0; x < 16u; ++x) tabs[s][x] = (uint8_t)_mm_popcnt_u32((s >> 4) & ~(x ^ s) & 15u);
    for (q0 = 0; q0 < nqt; q0 += EQ_XQC) {
        const uint32_t nq = (nqt - q0) < EQ_XQC ? nqt - q0 : EQ_XQC, byte0 = q0 / 2u;
        const int first = q0 == 0;
        for (m0 = 0; m0 < m; m0 += 32u * EQ_XG) {
            const uint32_t nbk = (m - m0) < 32u * EQ_XG ? m - m0 : 32u * EQ_XG;
            const uint32_t rows4 = nbk <= 64u ? 4u : 2u; /* 4 x 2 kernel for a short block */
            eq_xq_cols(a, m, kw, m0, byte0, nq, rows4 == 4u ? 2u : EQ_XG, bt);
            for (j0 = 0; j0 < n; j0 += EQ_TJ) {
                const uint32_t nj = (n - j0) < EQ_TJ ? n - j0 : EQ_TJ;
                for (j = 0; j < nj; j += rows4) {
                    for (r = 0; r < rows4; ++r) {
                        const uint8_t *sg = j + r < nj
                            ? (const uint8_t *)(const void *)(w + (size_t)(j0 + j + r) * 2u * kw)
                            : NULL;
                        nzc[j + r] = eq_xq_woff(sg, sg ? sg + rb : NULL, rb, byte0, nq / 2u, ao[r]);
                    }
                    if (rows4 == 4u) {
                        const uint16_t *const a4[4] = {ao[0], ao[1], ao[2], ao[3]};
                        eq_xq_ukr16_4x2(bt, nq, a4, &tabs[0][0], &tile[0][j], EQ_TJ);
                    } else {
                        eq_xq_ukr16(bt, nq, ao[0], ao[1], &tabs[0][0], &tile[0][j], EQ_TJ);
                    }
                }
                for (s = 0; s < nbk; ++s) { /* this chunk's share: agree - disagree */
                    int32_t *o = out + (size_t)(m0 + s) * n + j0;
                    for (j = 0; j < nj; ++j)
                        o[j] = (first ? 0 : o[j]) + 2 * (int32_t)tile[s][j] - nzc[j];
                }
            }
        }
    }
}

eq_status_t EQ_AVX2 eq_gemm_xnor_b1b1_avx2(const uint32_t *a, const uint32_t *b, uint32_t m,
                                           uint32_t n, uint32_t k, int32_t *out)
{
    int done;
    const eq_status_t st = eq_bitgemm_prologue(a, b, m, n, k, out, &done);
    if (done) return st;
    if (m < 4u)
        eq_bits_direct(a, b, m, n, k, 0, out);
    else
        eq_xnor_tab(a, b, m, n, k, out);
    return EQ_OK;
}

eq_status_t EQ_AVX2 eq_gemm_tern_b1_avx2(const uint32_t *a, const uint32_t *w, uint32_t m,
                                         uint32_t n, uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    int done;
    const eq_status_t st = eq_bitgemm_prologue(a, w, m, n, k, out, &done);
    if (done) return st;
    {
        /* a table block costs the same whatever its fill (128 rows: about as much as 86 rows
         * through the split kernel on a Zen 3 core, 64 rows: about 46), so a short last block
         * goes to the split kernel */
        uint32_t tab = m / (32u * EQ_XG) * (32u * EQ_XG);
        const uint32_t rest = m - tab;
        if (rest >= EQ_TERN_TAB_REM || (rest >= EQ_TERN_TAB_REM / 2u && rest <= 64u)) tab = m;
        if (tab) eq_tern_tab(a, w, tab, n, k, out);
        if (tab < m) {
            const uint32_t *ar = a + (size_t)tab * kw;
            int32_t *o = out + (size_t)tab * n;
            if (m - tab < 4u)
                eq_bits_direct(ar, w, m - tab, n, k, 1, o);
            else
                eq_tern_split(ar, w, m - tab, n, k, o);
        }
    }
    return EQ_OK;
}

/* ---- skip-zero ternary x int8 ------------------------------------------------------------
 * Same checks and status codes as the portable kernel. M > 1: a is transposed to aT (K, M) with
 * 16 x 16 byte-transposes (the scalar transpose used to take half the time), each decoded row is
 * split into a positive and a negative index list, and columns of aT are summed in int16 lanes,
 * 128 rows of M at a time (8 registers), widened to int32 every 255 entries (255 * 128 < 2^15).
 * M = 1: byte-table decode into an index list, see eq_sp_m1. */
#define EQ_ALIGN4(x) (((x) + 3u) & ~3u)

static EQ_AVX2 void eq_sp_apply(const int8_t *at, uint32_t m, uint32_t m0, uint32_t nvec,
                                const uint32_t *idx, uint32_t cnt, int sub, int32_t *acc32)
{
    uint32_t e = 0, v;
    while (e < cnt) {
        const uint32_t end = (cnt - e) > 255u ? e + 255u : cnt;
        __m256i acc[8];
        for (v = 0; v < 8u; ++v) acc[v] = _mm256_setzero_si256();
        if (nvec == 8u) {
            for (; e < end; ++e) {
                const int8_t *col = at + idx[e] * m + m0;
                for (v = 0; v < 8u; ++v) {
                    __m256i x = _mm256_cvtepi8_epi16(
                        _mm_loadu_si128((const __m128i *)(const void *)(col + 16u * v)));
                    acc[v] = sub ? _mm256_sub_epi16(acc[v], x) : _mm256_add_epi16(acc[v], x);
                }
            }
        } else {
            for (; e < end; ++e) {
                const int8_t *col = at + idx[e] * m + m0;
                for (v = 0; v < nvec; ++v) {
                    __m256i x = _mm256_cvtepi8_epi16(
                        _mm_loadu_si128((const __m128i *)(const void *)(col + 16u * v)));
                    acc[v] = sub ? _mm256_sub_epi16(acc[v], x) : _mm256_add_epi16(acc[v], x);
                }
            }
        }
        for (v = 0; v < nvec; ++v) {
            __m256i *dst = (__m256i *)(void *)(acc32 + 16u * v);
            __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc[v]));
            __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc[v], 1));
            _mm256_storeu_si256(dst, _mm256_add_epi32(_mm256_loadu_si256(dst), lo));
            _mm256_storeu_si256(dst + 1, _mm256_add_epi32(_mm256_loadu_si256(dst + 1), hi));
        }
    }
}

/* 16 x 16 byte transpose: dst[j * ld + i] = src[i * ls + j] (4 unpack stages of 16 ops). */
static EQ_AVX2 void eq_tr16(const int8_t *src, uint32_t ls, int8_t *dst, uint32_t ld)
{
    __m128i r[16], x[16];
    uint32_t i, g, h;
    for (i = 0; i < 16u; ++i) r[i] = _mm_loadu_si128((const __m128i *)(const void *)(src + i * ls));
    for (g = 0; g < 8u; ++g) { /* x[2g + h]: rows 2g, 2g+1, cols 8h .. 8h+7 */
        x[2u * g] = _mm_unpacklo_epi8(r[2u * g], r[2u * g + 1u]);
        x[2u * g + 1u] = _mm_unpackhi_epi8(r[2u * g], r[2u * g + 1u]);
    }
    for (g = 0; g < 4u; ++g) /* r[4g + u]: rows 4g .. 4g+3, cols 4u .. 4u+3 */
        for (h = 0; h < 2u; ++h) {
            r[4u * g + 2u * h] = _mm_unpacklo_epi16(x[4u * g + h], x[4u * g + 2u + h]);
            r[4u * g + 2u * h + 1u] = _mm_unpackhi_epi16(x[4u * g + h], x[4u * g + 2u + h]);
        }
    for (g = 0; g < 2u; ++g) /* x[8g + c]: rows 8g .. 8g+7, cols 2c, 2c+1 */
        for (h = 0; h < 4u; ++h) {
            x[8u * g + 2u * h] = _mm_unpacklo_epi32(r[8u * g + h], r[8u * g + 4u + h]);
            x[8u * g + 2u * h + 1u] = _mm_unpackhi_epi32(r[8u * g + h], r[8u * g + 4u + h]);
        }
    for (h = 0; h < 8u; ++h) {
        _mm_storeu_si128((__m128i *)(void *)(dst + 2u * h * ld), _mm_unpacklo_epi64(x[h], x[8u + h]));
        _mm_storeu_si128((__m128i *)(void *)(dst + (2u * h + 1u) * ld),
                         _mm_unpackhi_epi64(x[h], x[8u + h]));
    }
}

/* M = 1: a byte (two nibbles) per step through a 256-entry table, branch-free, into a short
 * index list on the stack (entry = position | sign << 31) that is summed, without gathers, when
 * it is full and at the end of the row. The table gives, per byte, the entries' offsets from p
 * (with the sign bit), whether each nibble is a weight, the advance of p and a bad-nibble flag.
 * The fast loop runs while p + 16 <= k, so every index it writes is < k even for a bad stream;
 * the last nibbles of a row take the checked per-nibble path of the portable kernel. */
#define EQ_SPL 1024u
typedef struct {
    uint32_t e0, e1;
    uint8_t w0, w1, adv, bad;
} eq_sptab_t;

static EQ_AVX2 EQ_INLINE int32_t eq_sp_flush(const int8_t *a, const uint32_t *list, uint32_t c)
{
    int32_t s = 0;
    uint32_t e;
    for (e = 0; e < c; ++e) {
        const int32_t x = a[list[e] & 0x7fffffffu], sg = -(int32_t)(list[e] >> 31);
        s += (x ^ sg) - sg;
    }
    return s;
}

static EQ_AVX2 eq_status_t eq_sp_m1(const int8_t *a, const uint8_t *stream,
                                    const uint32_t *row_off, uint32_t n, uint32_t k, int32_t *out)
{
    eq_sptab_t tab[256];
    uint32_t list[EQ_SPL + 2u];
    uint32_t j, b;
    for (b = 0; b < 256u; ++b) {
        const uint32_t v0 = b & 15u, v1 = b >> 4, w0 = v0 != 7u, w1 = v1 != 7u;
        const uint32_t off0 = v0 & 7u, off1 = off0 + w0 + (v1 & 7u);
        tab[b].e0 = off0 | (v0 >> 3) << 31;
        tab[b].e1 = off1 | (v1 >> 3) << 31;
        tab[b].w0 = (uint8_t)w0;
        tab[b].w1 = (uint8_t)w1;
        tab[b].adv = (uint8_t)(off1 + w1);
        tab[b].bad = (uint8_t)(v0 == 15u || v1 == 15u);
    }
    for (j = 0; j < n; ++j) {
        uint32_t q = row_off[j], q1 = row_off[j + 1], p = 0, c = 0, bad = 0;
        int32_t sum = 0;
        if ((q & 1u) && q < q1) { /* a row starting mid-byte: its first nibble, checked */
            const uint32_t v = (uint32_t)stream[q >> 1] >> 4, is_w = (uint32_t)(v != 7u);
            p += v & 7u;
            if (v == 15u || p > k || (is_w && p >= k)) return EQ_ERR_ARG;
            if (is_w) sum += (v & 8u) ? -(int32_t)a[p] : (int32_t)a[p];
            p += is_w;
            ++q;
        }
        while (q + 2u <= q1 && p + 16u <= k) {
            const eq_sptab_t *t = &tab[stream[q >> 1]];
            if (c >= EQ_SPL) {
                sum += eq_sp_flush(a, list, c);
                c = 0;
            }
            list[c] = p + t->e0;
            c += t->w0;
            list[c] = p + t->e1;
            c += t->w1;
            p += t->adv;
            bad |= t->bad;
            q += 2u;
        }
        sum += eq_sp_flush(a, list, c);
        if (bad) return EQ_ERR_ARG;
        for (; q < q1; ++q) { /* checked nibbles: the end of the row (p near K) */
            const uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
            const uint32_t is_w = (uint32_t)(v != 7u);
            p += v & 7u;
            if (v == 15u || p > k || (is_w && p >= k)) return EQ_ERR_ARG;
            if (is_w) sum += (v & 8u) ? -(int32_t)a[p] : (int32_t)a[p];
            p += is_w;
        }
        out[j] = sum;
    }
    return EQ_OK;
}

eq_status_t EQ_AVX2 eq_gemm_tern_sparse_i8_avx2(const int8_t *a, const uint8_t *w,
                                                uint32_t w_bytes, uint32_t m, uint32_t n,
                                                uint32_t k, void *scratch,
                                                uint32_t scratch_size, int32_t *out)
{
    const uint32_t *row_off;
    const uint8_t *stream;
    uint32_t i, j, e;
    if (m != 1u && (!w || !n))
        return eq_gemm_tern_sparse_i8(a, w, w_bytes, m, n, k, scratch, scratch_size, out);
    if (m == 0u || !w || !n)
        return eq_gemm_tern_sparse_i8(a, w, w_bytes, m, n, k, scratch, scratch_size, out);
    if (!a || !out) return EQ_ERR_ARG;
    row_off = (const uint32_t *)(const void *)w;
    if (w_bytes < 4u * (n + 1u) || row_off[0] != 0u) return EQ_ERR_ARG;
    for (j = 0; j < n; ++j)
        if (row_off[j + 1] < row_off[j]) return EQ_ERR_ARG;
    if ((row_off[n] + 1u) / 2u > w_bytes - 4u * (n + 1u)) return EQ_ERR_ARG;
    if (m > 1u && (!scratch || scratch_size < eq_gemm_tern_sparse_i8_scratch_size(m, k)))
        return EQ_ERR_ARG;
    stream = w + 4u * (n + 1u);
    if (m == 1u) return eq_sp_m1(a, stream, row_off, n, k, out);
    {
        /* same scratch size as the portable kernel: [aT (K, M) | K entries | M int32] ;
         * the K entries hold the positive list from the front and the negative list from the
         * back (pos + neg <= K). */
        int8_t *at = (int8_t *)scratch;
        uint32_t *lists = (uint32_t *)(void *)((uint8_t *)scratch + EQ_ALIGN4(k * m));
        int32_t *acc = (int32_t *)(void *)(lists + k);
        uint32_t i0, e0;
        for (i0 = 0; i0 < m; i0 += 16u) { /* 16 x 16 tiles: both sides stay in cache */
            for (e0 = 0; e0 < k; e0 += 16u) {
                if (i0 + 16u <= m && e0 + 16u <= k) {
                    eq_tr16(a + i0 * k + e0, k, at + e0 * m + i0, m);
                    continue;
                }
                for (i = i0; i < m && i < i0 + 16u; ++i)
                    for (e = e0; e < k && e < e0 + 16u; ++e) at[e * m + i] = a[i * k + e];
            }
        }
        for (j = 0; j < n; ++j) {
            uint32_t npos, nneg, m0;
            uint32_t *neg;
            /* positives fill lists from the front, negatives from the back */
            {
                uint32_t q, p = 0, cp = 0, cn = 0, bad = 0;
                for (q = row_off[j]; q < row_off[j + 1]; ++q) { /* branch-free decode */
                    const uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
                    const uint32_t is_w = (uint32_t)(v != 7u), neg_w = is_w & (v >> 3);
                    p += v & 7u;
                    bad |= (uint32_t)(v == 15u) | (is_w & (uint32_t)(p >= k)) | (uint32_t)(p > k);
                    if (bad) break; /* before writing: a bad stream never writes out of range */
                    lists[cp] = p;  /* both slots are free: cp + cn <= p - 1 < k here */
                    lists[k - 1u - cn] = p;
                    cp += is_w - neg_w;
                    cn += neg_w;
                    p += is_w;
                }
                if (bad || p > k) return EQ_ERR_ARG;
                npos = cp;
                nneg = cn;
                neg = lists + k - nneg; /* reversed order: addition order is irrelevant */
            }
            for (i = 0; i < m; ++i) acc[i] = 0;
            for (m0 = 0; m0 + 16u <= m; m0 += 128u) {
                uint32_t nvec = (m - m0) / 16u;
                if (nvec > 8u) nvec = 8u;
                eq_sp_apply(at, m, m0, nvec, lists, npos, 0, acc + m0);
                eq_sp_apply(at, m, m0, nvec, neg, nneg, 1, acc + m0);
            }
            for (i = m - m % 16u; i < m; ++i) {
                int32_t s = 0;
                for (e = 0; e < npos; ++e) s += at[lists[e] * m + i];
                for (e = 0; e < nneg; ++e) s -= at[neg[e] * m + i];
                acc[i] = s;
            }
            for (i = 0; i < m; ++i) out[i * n + j] = acc[i];
        }
    }
    return EQ_OK;
}

/* ---- dense int8 baseline: 2 x 4 register block, int8 -> int16, vpmaddwd into int32 -------- */
static EQ_AVX2 EQ_INLINE __m256i eq_ld16(const int8_t *p)
{
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static EQ_AVX2 EQ_INLINE int32_t eq_hsum32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

eq_status_t EQ_AVX2 eq_gemm_i8_avx2(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n,
                                    uint32_t k, int32_t *out)
{
    const uint32_t k16 = k - k % 16u;
    uint32_t i, j, r, s, q;
    if (m && n && (!out || (k && (!a || !w)))) return EQ_ERR_ARG;
    for (j = 0; j < n; j += 4u) {
        const uint32_t nb = (n - j) < 4u ? n - j : 4u;
        for (i = 0; i < m; i += 2u) {
            const uint32_t mb = (m - i) < 2u ? m - i : 2u;
            if (mb == 2u && nb == 4u) {
                const int8_t *a0 = a + i * k, *a1 = a0 + k;
                const int8_t *w0 = w + j * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
                __m256i c[2][4];
                int32_t t[2][4];
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s) c[r][s] = _mm256_setzero_si256();
                for (q = 0; q < k16; q += 16u) {
                    const __m256i x0 = eq_ld16(a0 + q), x1 = eq_ld16(a1 + q);
                    const __m256i y0 = eq_ld16(w0 + q), y1 = eq_ld16(w1 + q);
                    const __m256i y2 = eq_ld16(w2 + q), y3 = eq_ld16(w3 + q);
                    c[0][0] = _mm256_add_epi32(c[0][0], _mm256_madd_epi16(x0, y0));
                    c[0][1] = _mm256_add_epi32(c[0][1], _mm256_madd_epi16(x0, y1));
                    c[0][2] = _mm256_add_epi32(c[0][2], _mm256_madd_epi16(x0, y2));
                    c[0][3] = _mm256_add_epi32(c[0][3], _mm256_madd_epi16(x0, y3));
                    c[1][0] = _mm256_add_epi32(c[1][0], _mm256_madd_epi16(x1, y0));
                    c[1][1] = _mm256_add_epi32(c[1][1], _mm256_madd_epi16(x1, y1));
                    c[1][2] = _mm256_add_epi32(c[1][2], _mm256_madd_epi16(x1, y2));
                    c[1][3] = _mm256_add_epi32(c[1][3], _mm256_madd_epi16(x1, y3));
                }
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s) t[r][s] = eq_hsum32(c[r][s]);
                for (q = k16; q < k; ++q)
                    for (r = 0; r < 2u; ++r)
                        for (s = 0; s < 4u; ++s)
                            t[r][s] += (int32_t)a[(i + r) * k + q] * (int32_t)w[(j + s) * k + q];
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s) out[(i + r) * n + j + s] = t[r][s];
            } else {
                for (r = 0; r < mb; ++r) {
                    for (s = 0; s < nb; ++s) {
                        const int8_t *ar = a + (i + r) * k, *wr = w + (j + s) * k;
                        __m256i c = _mm256_setzero_si256();
                        int32_t t;
                        for (q = 0; q < k16; q += 16u)
                            c = _mm256_add_epi32(c, _mm256_madd_epi16(eq_ld16(ar + q),
                                                                      eq_ld16(wr + q)));
                        t = eq_hsum32(c);
                        for (q = k16; q < k; ++q) t += (int32_t)ar[q] * (int32_t)wr[q];
                        out[(i + r) * n + j + s] = t;
                    }
                }
            }
        }
    }
    return EQ_OK;
}

/* ---- LUT GEMM: table lookups do not vectorise well on AVX2 (gathers are slower than scalar
 * loads on this class of CPU); this variant blocks 4 activation rows per weight row so each
 * weight code selects one LUT row reused 4 times. ------------------------------------------ */
eq_status_t EQ_AVX2 eq_gemm_lut_u8_avx2(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                                        uint32_t lut_rows, uint32_t lut_cols, uint32_t m,
                                        uint32_t n, uint32_t k, int32_t *out)
{
    uint32_t i, j, q;
    const eq_status_t st = eq_gemm_lut_u8_check(a, w, lut, lut_rows, lut_cols, m, n, k, out);
    if (st != EQ_OK) return st;
    for (j = 0; j < n; ++j) {
        const uint8_t *wr = w + j * k;
        for (i = 0; i + 4u <= m; i += 4u) {
            const uint8_t *a0 = a + i * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (q = 0; q < k; ++q) {
                const int32_t *lr = lut + (uint32_t)wr[q] * lut_cols;
                s0 += lr[a0[q]];
                s1 += lr[a1[q]];
                s2 += lr[a2[q]];
                s3 += lr[a3[q]];
            }
            out[i * n + j] = s0;
            out[(i + 1u) * n + j] = s1;
            out[(i + 2u) * n + j] = s2;
            out[(i + 3u) * n + j] = s3;
        }
        for (; i < m; ++i) {
            const uint8_t *ar = a + i * k;
            int32_t s0 = 0;
            for (q = 0; q < k; ++q) s0 += lut[(uint32_t)wr[q] * lut_cols + ar[q]];
            out[i * n + j] = s0;
        }
    }
    return EQ_OK;
}

/* ---- f32 GEMM: packed 16-column panels of b (KC x 16 on the stack), 6 x 16 FMA micro-kernel
 * (12 accumulators); row and column edges use the same kernel with fewer rows / masked lanes. */
#define EQ_KC 256u
#define EQ_NR 16u
#define EQ_MR 6u

static EQ_AVX2_FMA EQ_INLINE void eq_f32_ukr(const float *a, uint32_t lda, const float *bp,
                                             uint32_t kc, float *c, uint32_t ldc, uint32_t mr,
                                             __m256i m0, __m256i m1, int first)
{
    __m256 acc[EQ_MR][2];
    uint32_t r, q;
    for (r = 0; r < EQ_MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (q = 0; q < kc; ++q) {
        const __m256 b0 = _mm256_loadu_ps(bp + q * EQ_NR), b1 = _mm256_loadu_ps(bp + q * EQ_NR + 8);
        for (r = 0; r < EQ_MR; ++r) {
            if (r < mr) {
                const __m256 x = _mm256_broadcast_ss(a + r * lda + q);
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
        }
    }
    for (r = 0; r < EQ_MR; ++r) {
        if (r < mr) {
            float *cr = c + r * ldc;
            if (!first) {
                acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_maskload_ps(cr, m0));
                acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_maskload_ps(cr + 8, m1));
            }
            _mm256_maskstore_ps(cr, m0, acc[r][0]);
            _mm256_maskstore_ps(cr + 8, m1, acc[r][1]);
        }
    }
}

static EQ_AVX2_FMA void eq_f32_ukr6(const float *a, uint32_t lda, const float *bp, uint32_t kc,
                                    float *c, uint32_t ldc, __m256i m0, __m256i m1, int first)
{
    eq_f32_ukr(a, lda, bp, kc, c, ldc, EQ_MR, m0, m1, first);
}

static EQ_AVX2_FMA void eq_f32_ukr_n(const float *a, uint32_t lda, const float *bp, uint32_t kc,
                                     float *c, uint32_t ldc, uint32_t mr, __m256i m0, __m256i m1,
                                     int first)
{
    eq_f32_ukr(a, lda, bp, kc, c, ldc, mr, m0, m1, first);
}

eq_status_t EQ_AVX2_FMA eq_gemm_f32_avx2(const float *a, const float *b, uint32_t m, uint32_t n,
                                         uint32_t k, float *out)
{
    float bp[EQ_KC * EQ_NR] __attribute__((aligned(32)));
    uint32_t k0, j0, i0, q, t;
    if (m && n && (!out || (k && (!a || !b)))) return EQ_ERR_ARG;
    if (!m || !n) return EQ_OK;
    if (!k) {
        memset(out, 0, (size_t)m * n * sizeof(float));
        return EQ_OK;
    }
    for (j0 = 0; j0 < n; j0 += EQ_NR) {
        const uint32_t nr = (n - j0) < EQ_NR ? n - j0 : EQ_NR;
        int32_t lanes[16];
        __m256i m0, m1;
        for (t = 0; t < 16u; ++t) lanes[t] = t < nr ? -1 : 0;
        m0 = _mm256_loadu_si256((const __m256i *)(const void *)lanes);
        m1 = _mm256_loadu_si256((const __m256i *)(const void *)(lanes + 8));
        for (k0 = 0; k0 < k; k0 += EQ_KC) {
            const uint32_t kc = (k - k0) < EQ_KC ? k - k0 : EQ_KC;
            for (q = 0; q < kc; ++q) { /* pack b[k0:k0+kc, j0:j0+16] contiguously, 0-padded */
                const float *br = b + (k0 + q) * n + j0;
                if (nr == EQ_NR) {
                    _mm256_store_ps(bp + q * EQ_NR, _mm256_loadu_ps(br));
                    _mm256_store_ps(bp + q * EQ_NR + 8, _mm256_loadu_ps(br + 8));
                } else {
                    for (t = 0; t < EQ_NR; ++t) bp[q * EQ_NR + t] = t < nr ? br[t] : 0.0f;
                }
            }
            for (i0 = 0; i0 < m; i0 += EQ_MR) {
                const uint32_t mr = (m - i0) < EQ_MR ? m - i0 : EQ_MR;
                if (mr == EQ_MR)
                    eq_f32_ukr6(a + i0 * k + k0, k, bp, kc, out + i0 * n + j0, n, m0, m1,
                                k0 == 0);
                else
                    eq_f32_ukr_n(a + i0 * k + k0, k, bp, kc, out + i0 * n + j0, n, mr, m0, m1,
                                 k0 == 0);
            }
        }
    }
    return EQ_OK;
}


/* ---- Winograd F(2x2, 3x3) with vectorised transforms ---------------------------------------
 * Same algorithm, scratch layout and GEMM (eq_gemm_f32_avx2, the one im2col uses) as the portable
 * eq_conv3x3_wino_f23_f32_ex; the input and output transforms handle 8 horizontally adjacent
 * tiles per step: a tile row of input is read as 16-float vectors and de-interleaved into the
 * even / odd columns, every transformed value is stored as 8 contiguous floats of V (tiles of a
 * row are consecutive), and the output transform reads 8 contiguous floats of each M slice and
 * re-interleaves the 2 output columns of the 8 tiles into 16 contiguous floats. */
static EQ_AVX2_FMA EQ_INLINE void eq_deint(const float *p, __m256 *ev, __m256 *od)
{
    const __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    *ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)),
                                                 0xD8));
    *od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)),
                                                 0xD8));
}

static EQ_AVX2_FMA __m256i eq_lanes(uint32_t cnt)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)cnt), idx);
}

#define EQ_WINO_LINE 1024u /* widest input row read through the zero-padded line buffers */

/* tile rows [ty0, ty0 + nty) -> v (16, C, nty * TW) */
static EQ_AVX2_FMA void eq_wino_in_avx2(const float *x, uint32_t c, uint32_t h, uint32_t w,
                                        uint32_t ty0, uint32_t nty, float *v)
{
    const uint32_t tw = (w + 1u) / 2u, nt = nty * tw, ct = c * nt;
    const uint32_t lw = 2u * ((tw + 7u) & ~7u) + 24u; /* line floats: col u - 1 at line[u] */
    const int lines = w <= EQ_WINO_LINE;
    static const float zero[24];
    float line[4][2u * EQ_WINO_LINE + 32u];
    uint32_t ch, ty, t0, r, s, u;
    if (lines)
        for (r = 0; r < 4u; ++r) memset(line[r], 0, lw * sizeof(float));
    for (ch = 0; ch < c; ++ch) {
        const float *xc = x + ch * h * w;
        for (ty = ty0; ty < ty0 + nty; ++ty) {
            const float *rows[4];
            for (r = 0; r < 4u; ++r) { /* zero-padded copies of the 4 input rows of this tile row */
                const int32_t yy = 2 * (int32_t)ty - 1 + (int32_t)r;
                rows[r] = NULL;
                if (yy >= 0 && yy < (int32_t)h) rows[r] = xc + (uint32_t)yy * w;
                if (lines && rows[r]) memcpy(line[r] + 1, rows[r], w * sizeof(float));
            }
            for (t0 = 0; t0 < tw; t0 += 8u) {
                const uint32_t cnt = (tw - t0) < 8u ? tw - t0 : 8u;
                float seg[4][24];
                __m256 d[4][4], t[4][4];
                float *vb = v + ch * nt + (ty - ty0) * tw + t0;
                for (r = 0; r < 4u; ++r) {
                    const float *base;
                    if (!rows[r]) {
                        base = zero;
                    } else if (lines) {
                        base = line[r] + 2u * t0;
                    } else {
                        for (u = 0; u < 18u; ++u) {
                            const int32_t xx = 2 * (int32_t)t0 - 1 + (int32_t)u;
                            seg[r][u] = (xx >= 0 && xx < (int32_t)w) ? rows[r][xx] : 0.0f;
                        }
                        base = seg[r];
                    }
                    eq_deint(base, &d[r][0], &d[r][1]);     /* columns 2t-1, 2t */
                    eq_deint(base + 2, &d[r][2], &d[r][3]); /* columns 2t+1, 2t+2 */
                }
                for (s = 0; s < 4u; ++s) { /* B^T d */
                    t[0][s] = _mm256_sub_ps(d[0][s], d[2][s]);
                    t[1][s] = _mm256_add_ps(d[1][s], d[2][s]);
                    t[2][s] = _mm256_sub_ps(d[2][s], d[1][s]);
                    t[3][s] = _mm256_sub_ps(d[1][s], d[3][s]);
                }
                for (r = 0; r < 4u; ++r) { /* (B^T d) B, 8 tiles per store */
                    __m256 o[4];
                    o[0] = _mm256_sub_ps(t[r][0], t[r][2]);
                    o[1] = _mm256_add_ps(t[r][1], t[r][2]);
                    o[2] = _mm256_sub_ps(t[r][2], t[r][1]);
                    o[3] = _mm256_sub_ps(t[r][1], t[r][3]);
                    for (s = 0; s < 4u; ++s) {
                        float *dst = vb + (r * 4u + s) * ct;
                        if (cnt == 8u)
                            _mm256_storeu_ps(dst, o[s]);
                        else
                            _mm256_maskstore_ps(dst, eq_lanes(cnt), o[s]);
                    }
                }
            }
        }
    }
}

/* mm (16, K, nty * TW) of tile rows [ty0, ty0 + nty) -> their output rows */
static EQ_AVX2_FMA void eq_wino_out_avx2(const float *mm, uint32_t k, uint32_t h, uint32_t w,
                                         uint32_t ty0, uint32_t nty, float *out)
{
    const uint32_t tw = (w + 1u) / 2u, nt = nty * tw, kt = k * nt;
    uint32_t o, ty, t0, r, s, u;
    for (o = 0; o < k; ++o) {
        float *oc = out + o * h * w;
        for (ty = ty0; ty < ty0 + nty; ++ty) {
            for (t0 = 0; t0 < tw; t0 += 8u) {
                const uint32_t cnt = (tw - t0) < 8u ? tw - t0 : 8u;
                const __m256i lanes = eq_lanes(cnt);
                const float *p = mm + o * nt + (ty - ty0) * tw + t0;
                __m256 m[4][4], t[2][4];
                for (r = 0; r < 4u; ++r)
                    for (s = 0; s < 4u; ++s)
                        m[r][s] = cnt == 8u ? _mm256_loadu_ps(p + (r * 4u + s) * kt)
                                            : _mm256_maskload_ps(p + (r * 4u + s) * kt, lanes);
                for (s = 0; s < 4u; ++s) { /* A^T m */
                    t[0][s] = _mm256_add_ps(_mm256_add_ps(m[0][s], m[1][s]), m[2][s]);
                    t[1][s] = _mm256_sub_ps(_mm256_sub_ps(m[1][s], m[2][s]), m[3][s]);
                }
                for (r = 0; r < 2u; ++r) { /* (A^T m) A, then interleave columns 2t, 2t+1 */
                    const uint32_t y = 2u * ty + r, col = 2u * t0;
                    const __m256 y0 = _mm256_add_ps(_mm256_add_ps(t[r][0], t[r][1]), t[r][2]);
                    const __m256 y1 = _mm256_sub_ps(_mm256_sub_ps(t[r][1], t[r][2]), t[r][3]);
                    const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
                    const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20);
                    const __m256 b = _mm256_permute2f128_ps(lo, hi, 0x31);
                    float *orow = oc + y * w + col;
                    if (y >= h) break;
                    if (col + 16u <= w) {
                        _mm256_storeu_ps(orow, a);
                        _mm256_storeu_ps(orow + 8, b);
                    } else {
                        float tmp[16];
                        _mm256_storeu_ps(tmp, a);
                        _mm256_storeu_ps(tmp + 8, b);
                        for (u = 0; u < 16u && col + u < w; ++u) orow[u] = tmp[u];
                    }
                }
            }
        }
    }
}

/* U (16, K, C) = G g G^T for 8 channels at a time (gathered taps, stride 9), then one
 * contiguous 8-float store per transformed value; channel tail scalar. */
static EQ_AVX2_FMA void eq_wino_weights_avx2(const float *wt, uint32_t c, uint32_t k, float *u)
{
    const uint32_t kc = k * c;
    const __m256i idx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    const __m256 half = _mm256_set1_ps(0.5f);
    uint32_t o, ch, r, s;
    for (o = 0; o < k; ++o) {
        for (ch = 0; ch + 8u <= c; ch += 8u) {
            const float *g = wt + (o * c + ch) * 9u;
            __m256 gv[9], tg[4][3];
            for (s = 0; s < 9u; ++s) gv[s] = _mm256_i32gather_ps(g + s, idx, 4);
            for (s = 0; s < 3u; ++s) {
                tg[0][s] = gv[s];
                tg[1][s] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(gv[s], gv[3 + s]), gv[6 + s]));
                tg[2][s] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(gv[s], gv[3 + s]), gv[6 + s]));
                tg[3][s] = gv[6 + s];
            }
            for (r = 0; r < 4u; ++r) {
                float *dst = u + (r * 4u) * kc + o * c + ch;
                const __m256 v1 = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(tg[r][0], tg[r][1]), tg[r][2]));
                const __m256 v2 = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(tg[r][0], tg[r][1]), tg[r][2]));
                _mm256_storeu_ps(dst, tg[r][0]);
                _mm256_storeu_ps(dst + kc, v1);
                _mm256_storeu_ps(dst + 2u * kc, v2);
                _mm256_storeu_ps(dst + 3u * kc, tg[r][2]);
            }
        }
        for (; ch < c; ++ch) eq_wino_weight_tile(wt + (o * c + ch) * 9u, u + o * c + ch, kc);
    }
}

eq_status_t eq_conv3x3_wino_f23_f32_avx2(const float *x, const float *wt, uint32_t c, uint32_t h,
                                         uint32_t w, uint32_t k, void *scratch,
                                         uint32_t scratch_size, float *out)
{
    /* blocks of whole tile rows, about 64 tiles each, so V and M of a block stay in L2; the
     * scratch layout is the portable one, of which a block uses the first nty * TW tiles */
    const uint32_t th = (h + 1u) / 2u, tw = (w + 1u) / 2u, nt = th * tw;
    const uint32_t rb = tw >= 64u ? 1u : 64u / tw;
    float *u, *v, *mm;
    uint32_t xi, ty0;
    if (!x || !wt || !out || !c || !h || !w || !k) return EQ_ERR_ARG;
    if (!scratch || scratch_size < eq_conv3x3_wino_f23_f32_scratch_size(c, h, w, k))
        return EQ_ERR_ARG;
    u = (float *)scratch;
    v = u + 16u * k * c;
    mm = v + 16u * c * nt;
    eq_wino_weights_avx2(wt, c, k, u);
    for (ty0 = 0; ty0 < th; ty0 += rb) {
        const uint32_t nty = (th - ty0) < rb ? th - ty0 : rb, tb = nty * tw;
        eq_wino_in_avx2(x, c, h, w, ty0, nty, v);
        for (xi = 0; xi < 16u; ++xi) {
            eq_status_t st = eq_gemm_f32_avx2(u + xi * k * c, v + xi * c * tb, k, tb, c,
                                              mm + xi * k * tb);
            if (st != EQ_OK) return st;
        }
        eq_wino_out_avx2(mm, k, h, w, ty0, nty, out);
    }
    return EQ_OK;
}
#endif /* EQ_HOST_HAVE_AVX2 */

/* ---- u8 x int GEMM of the host executor: a (M, lda) uint8 rows of kp bytes (kp even),
 * w2 (kp / 2, np, 2) int16 (np = N rounded up to 8, pad columns 0): out[m, n] = sum a * w,
 * exact (vpmaddwd pairs of u8 x s16 products never overflow; 32-bit sums wrap) -------------- */
#ifdef EQ_HOST_HAVE_AVX2
static EQ_AVX2 EQ_INLINE void eq_u8k2(const uint8_t *a, uint32_t lda, const int16_t *w2,
                                      uint32_t np, uint32_t kp, uint32_t mr, uint32_t n0,
                                      uint32_t nv, uint32_t n, int32_t *out)
{
    __m256i acc[4][2];
    uint32_t r, v, g, j;
    for (r = 0; r < 4u; ++r)
        for (v = 0; v < 2u; ++v) acc[r][v] = _mm256_setzero_si256();
    for (g = 0; g < kp / 2u; ++g) {
        const int16_t *wg = w2 + ((size_t)g * np + n0) * 2u;
        __m256i wv[2];
        for (v = 0; v < nv; ++v) wv[v] = _mm256_loadu_si256((const __m256i *)(wg + 16u * v));
        for (r = 0; r < mr; ++r) {
            const uint8_t *p = a + (size_t)r * lda + 2u * g;
            const __m256i xb = _mm256_set1_epi32((int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 16)));
            for (v = 0; v < nv; ++v)
                acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(xb, wv[v]));
        }
    }
    for (r = 0; r < mr; ++r)
        for (v = 0; v < nv; ++v) {
            int32_t tmp[8];
            const uint32_t c0 = n0 + 8u * v;
            if (n - c0 >= 8u) {
                _mm256_storeu_si256((__m256i *)(out + (size_t)r * n + c0), acc[r][v]);
                continue;
            }
            _mm256_storeu_si256((__m256i *)tmp, acc[r][v]);
            for (j = 0; j < n - c0; ++j) out[(size_t)r * n + c0 + j] = tmp[j];
        }
}

void EQ_AVX2 eq_hx_gemm_u8s16_avx2(const uint8_t *a, uint32_t lda, const int16_t *w2, uint32_t np,
                                   uint32_t m, uint32_t n, uint32_t kp, int32_t *out)
{
    uint32_t i, n0;
    for (n0 = 0; n0 < n; n0 += 16u) {
        const uint32_t nv = n - n0 > 8u ? 2u : 1u;
        for (i = 0; i < m; i += 4u) {
            const uint8_t *ar = a + (size_t)i * lda;
            int32_t *o = out + (size_t)i * n;
            const uint32_t mr = m - i >= 4u ? 4u : m - i;
            if (mr == 4u && nv == 2u) eq_u8k2(ar, lda, w2, np, kp, 4u, n0, 2u, n, o);
            else if (mr == 4u) eq_u8k2(ar, lda, w2, np, kp, 4u, n0, 1u, n, o);
            else if (nv == 2u) eq_u8k2(ar, lda, w2, np, kp, mr, n0, 2u, n, o);
            else eq_u8k2(ar, lda, w2, np, kp, mr, n0, 1u, n, o);
        }
    }
}

/* x (rows, k) int8 in {-1, +1} -> sign words; EQ_ERR_ARG if a value is neither */
eq_status_t EQ_AVX2 eq_pack_pm1_i8_b1_avx2(const int8_t *x, uint32_t rows, uint32_t k,
                                           uint32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    const __m256i one = _mm256_set1_epi8(1);
    uint32_t r, j, bad = 0;
    for (r = 0; r < rows; ++r) {
        const int8_t *p = x + (size_t)r * k;
        uint32_t *o = out + (size_t)r * kw;
        for (j = 0; j + 32u <= k; j += 32u) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + j));
            o[j / 32u] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, one));
            bad |= ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_abs_epi8(v), one));
        }
        if (j < k) {
            uint32_t word = 0, q;
            for (q = j; q < k; ++q) {
                bad |= (uint32_t)(p[q] != 1 && p[q] != -1);
                word |= (uint32_t)(p[q] == 1) << (q - j);
            }
            o[j / 32u] = word;
        }
    }
    return bad ? EQ_ERR_ARG : EQ_OK;
}
#endif
