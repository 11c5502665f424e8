/* AVX2 XNOR and ternary-bitplane GEMMs for whole blocks of rows, by nibble lookup tables (called
 * by the entry points in eq_avx2_bits.c). Shared macros and the overview: eq_avx2.h. */
#include "eq_avx2.h"

#ifdef EQ_HOST_HAVE_AVX2

/* ---- XNOR GEMM, one lookup table per activation nibble --------------------------------------
 * popcount(x ^ y) over a nibble pair is tab_x[y] with tab_x = popcount(x ^ .), a 16-byte table
 * for each of the 16 values x. Weights are transposed per group of 32 rows into "nibble
 * columns" (byte j of bt[g][q] = nibble q of row 32 g + j), activations become per-nibble table
 * offsets (16 x). One vpshufb of tab_x (loaded, no ALU op) by a nibble column then gives 32
 * pair counts for 4 bits: 2 vector ALU ops (vpshufb + vpaddb) per 32 x 4 pair-bits, i.e. 4 per
 * 256-bit pair against 6 for xor + split-nibble lookups. Blocks of 2 a rows x 4 groups (128 b
 * rows): 8 byte counters + 4 nibble columns + the table + a temporary in registers; counters
 * (<= 4 per step) are widened to 16 bits every 63 steps, K is chunked at 2560 bits. */
#define EQ_XQC 640u /* nibble positions per K chunk (2560 bits; 80 KB of nibble columns) */

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

EQ_AVX2 void eq_xnor_tab(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
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

EQ_AVX2 void eq_tern_tab(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
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

#endif /* EQ_HOST_HAVE_AVX2 */
