/* AVX2 XNOR and ternary-bitplane GEMMs (binary activations): the entry points, which send whole
 * blocks of rows to the table kernels of eq_avx2_bittab.c, fewer than 4 rows to eq_bits_direct
 * and the rest of a ternary GEMM to eq_tern_split; and the +-1 int8 -> sign words packing.
 * Shared macros and the overview: eq_avx2.h. */
#include "eq_avx2.h"

#ifdef EQ_HOST_HAVE_AVX2

/* ---- ternary-bitplane GEMM (binary activations), short M -------------------------------------
 * (whole blocks of rows use eq_tern_tab, eq_avx2_bittab.c; fewer than 4 rows eq_bits_direct.)
 * Both operands are first copied ("nibble-split") into stack panels: per row and per 256-bit
 * step v, the vector of low nibbles (x & 0x0f in every byte) and the vector of high nibbles
 * ((x >> 4) & 0x0f). Since (a ^ s) & z & 0x0f = (a_lo ^ s_lo) & z_lo, a pair then costs xor, and,
 * vpshufb and add per nibble half: 8 vector ops per 256 bits instead of 10 when every pair
 * re-splits its nibbles. Rows are padded to whole 256-bit steps with zero bits, which add 0
 * (pad bits are 0 in both operands), so there is no scalar tail; missing rows of a 2 x 4 block
 * are zero rows whose results are not stored. Byte counters take <= 8 per step, so they are
 * widened (vpsadbw) every 31 steps. (XNOR uses the table-per-nibble kernel, eq_avx2_bittab.c.) */
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

/* a last block of rows goes to the table kernel when it has >= 88 rows (128-row block) or 44..64
 * rows (64-row block, 4 x 2 kernel); otherwise to eq_tern_split */
#define EQ_TERN_TAB_REM 88u
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
#endif /* EQ_HOST_HAVE_AVX2 */
