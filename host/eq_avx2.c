/* x86-64 AVX2 variants of the hot GEMM kernels (host only; chosen at run time by eq_dispatch.c).
 *
 * Compiled with __attribute__((target("avx2,popcnt[,fma]"))) per function, never -march=native,
 * so the module still loads on CPUs without AVX2 (the dispatcher then keeps "portable").
 * Semantics, layouts and status codes are exactly those of the portable kernels in
 * firmware/kernels/; tests/test_kernels.py runs every variant against edgeq/ref.py.
 */
#include "eq_host.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <immintrin.h>
#include <string.h>

#define EQ_AVX2 __attribute__((target("avx2,popcnt")))
#define EQ_AVX2_FMA __attribute__((target("avx2,fma")))
#define EQ_INLINE __attribute__((always_inline)) inline

/* ---- popcount of 256-bit vectors: nibble lookup with vpshufb, byte counts (each <= 8) ------ */
static EQ_AVX2 EQ_INLINE __m256i eq_pc8(__m256i x, __m256i lut, __m256i low)
{
    __m256i lo = _mm256_and_si256(x, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

static EQ_AVX2 EQ_INLINE uint64_t eq_hsum64(__m256i v)
{
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1);
}

#define EQ_PC_LUT                                                                               \
    _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, \
                     2, 2, 3, 2, 3, 3, 4)

/* Byte counters may take 31 steps of <= 8 before they must be widened (31 * 8 = 248). */
#define EQ_CHUNK 31u

/* popcount(x[i] ^ y[i]) (mode 0) or popcount(z[i] & (x[i] ^ y[i])) (mode 1) over nw words, for an
 * RA x RB block of rows. pa[r], pb[s], pz[s] are row pointers; out[r][s] receives the counts. */
#define EQ_UNROLL _Pragma("GCC unroll 8")
#define EQ_DEFINE_BLOCK(NAME, RA, RB, MODE)                                                      \
    static EQ_AVX2 void NAME(const uint32_t *const *pa, const uint32_t *const *pb,               \
                             const uint32_t *const *pz, uint32_t nw, uint64_t out[RA][RB])        \
    {                                                                                            \
        const __m256i lut = EQ_PC_LUT, low = _mm256_set1_epi8(0x0f);                             \
        const uint32_t nv = nw / 8u;                                                             \
        uint64_t wide[RA][RB];                                                                   \
        uint32_t v = 0, r, s, q;                                                                 \
        EQ_UNROLL for (r = 0; r < RA; ++r)                                                               \
            EQ_UNROLL for (s = 0; s < RB; ++s) wide[r][s] = 0;                      \
        while (v < nv) {                                                                         \
            const uint32_t end = (nv - v) > EQ_CHUNK ? v + EQ_CHUNK : nv;                        \
            __m256i cnt[RA][RB];                                                                 \
            EQ_UNROLL for (r = 0; r < RA; ++r)                                                           \
                EQ_UNROLL for (s = 0; s < RB; ++s) cnt[r][s] = _mm256_setzero_si256();                     \
            for (; v < end; ++v) {                                                               \
                __m256i va[RA];                                                                  \
                EQ_UNROLL for (r = 0; r < RA; ++r)                                               \
                    va[r] = _mm256_loadu_si256((const __m256i *)(const void *)(pa[r] + 8u * v)); \
                EQ_UNROLL for (s = 0; s < RB; ++s) {                                             \
                    const __m256i vb =                                                           \
                        _mm256_loadu_si256((const __m256i *)(const void *)(pb[s] + 8u * v));     \
                    const __m256i vz = MODE ? _mm256_loadu_si256(                                \
                        (const __m256i *)(const void *)(pz[s] + 8u * v)) : vb;                   \
                    EQ_UNROLL for (r = 0; r < RA; ++r) {                                         \
                        __m256i x = _mm256_xor_si256(va[r], vb);                                 \
                        if (MODE) x = _mm256_and_si256(x, vz);                                   \
                        cnt[r][s] = _mm256_add_epi8(cnt[r][s], eq_pc8(x, lut, low));             \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
            EQ_UNROLL for (r = 0; r < RA; ++r)                                                           \
                EQ_UNROLL for (s = 0; s < RB; ++s)                                                         \
                    wide[r][s] += eq_hsum64(_mm256_sad_epu8(cnt[r][s], _mm256_setzero_si256())); \
        }                                                                                        \
        EQ_UNROLL for (r = 0; r < RA; ++r) {                                                               \
            EQ_UNROLL for (s = 0; s < RB; ++s) {                                                           \
                uint64_t t = wide[r][s];                                                         \
                for (q = 8u * nv; q < nw; ++q) {                                                 \
                    uint32_t x = pa[r][q] ^ pb[s][q];                                            \
                    if (MODE) x &= pz[s][q];                                                     \
                    t += (uint64_t)_mm_popcnt_u32(x);                                            \
                }                                                                                \
                out[r][s] = t;                                                                   \
            }                                                                                    \
        }                                                                                        \
    }

EQ_DEFINE_BLOCK(eq_xor_2x4, 2, 4, 0)
EQ_DEFINE_BLOCK(eq_xor_1x1, 1, 1, 0)
EQ_DEFINE_BLOCK(eq_andxor_2x4, 2, 4, 1)
EQ_DEFINE_BLOCK(eq_andxor_1x1, 1, 1, 1)

eq_status_t EQ_AVX2 eq_gemm_xnor_b1b1_avx2(const uint32_t *a, const uint32_t *b, uint32_t m,
                                           uint32_t n, uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    uint32_t i, j, r, s;
    if ((m && n && kw && (!a || !b)) || (m && n && !out)) return EQ_ERR_ARG;
    for (j = 0; j < n; j += 4u) {
        const uint32_t nb = (n - j) < 4u ? n - j : 4u;
        for (i = 0; i < m; i += 2u) {
            const uint32_t mb = (m - i) < 2u ? m - i : 2u;
            if (mb == 2u && nb == 4u) {
                const uint32_t *pa[2] = {a + i * kw, a + (i + 1u) * kw};
                const uint32_t *pb[4] = {b + j * kw, b + (j + 1u) * kw, b + (j + 2u) * kw,
                                         b + (j + 3u) * kw};
                uint64_t c[2][4];
                eq_xor_2x4(pa, pb, pb, kw, c);
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s)
                        out[(i + r) * n + j + s] = (int32_t)k - 2 * (int32_t)c[r][s];
            } else {
                for (r = 0; r < mb; ++r) {
                    for (s = 0; s < nb; ++s) {
                        const uint32_t *pa[1] = {a + (i + r) * kw};
                        const uint32_t *pb[1] = {b + (j + s) * kw};
                        uint64_t c[1][1];
                        eq_xor_1x1(pa, pb, pb, kw, c);
                        out[(i + r) * n + j + s] = (int32_t)k - 2 * (int32_t)c[0][0];
                    }
                }
            }
        }
    }
    return EQ_OK;
}

eq_status_t EQ_AVX2 eq_gemm_tern_b1_avx2(const uint32_t *a, const uint32_t *w, uint32_t m,
                                         uint32_t n, uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    uint32_t i, j, r, s, q;
    if ((m && n && kw && (!a || !w)) || (m && n && !out)) return EQ_ERR_ARG;
    for (j = 0; j < n; j += 4u) {
        const uint32_t nb = (n - j) < 4u ? n - j : 4u;
        const uint32_t *ps[4], *pz[4];
        int32_t nzc[4];
        for (s = 0; s < nb; ++s) {
            ps[s] = w + (j + s) * 2u * kw;
            pz[s] = ps[s] + kw;
            nzc[s] = 0;
            for (q = 0; q < kw; ++q) nzc[s] += (int32_t)_mm_popcnt_u32(pz[s][q]);
        }
        for (i = 0; i < m; i += 2u) {
            const uint32_t mb = (m - i) < 2u ? m - i : 2u;
            if (mb == 2u && nb == 4u) {
                const uint32_t *pa[2] = {a + i * kw, a + (i + 1u) * kw};
                uint64_t c[2][4];
                eq_andxor_2x4(pa, ps, pz, kw, c);
                for (r = 0; r < 2u; ++r)
                    for (s = 0; s < 4u; ++s)
                        out[(i + r) * n + j + s] = nzc[s] - 2 * (int32_t)c[r][s];
            } else {
                for (r = 0; r < mb; ++r) {
                    for (s = 0; s < nb; ++s) {
                        const uint32_t *pa[1] = {a + (i + r) * kw};
                        uint64_t c[1][1];
                        eq_andxor_1x1(pa, ps + s, pz + s, kw, c);
                        out[(i + r) * n + j + s] = nzc[s] - 2 * (int32_t)c[0][0];
                    }
                }
            }
        }
    }
    return EQ_OK;
}

/* ---- skip-zero ternary x int8 ------------------------------------------------------------
 * Same decode and checks as the portable kernel; for M > 1 the decoded row is split into a
 * positive and a negative index list, and columns of aT (K, M) are summed in int16 lanes, 128 rows
 * of M at a time (8 registers), widened to int32 every 255 entries (255 * 128 < 2^15). */
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

eq_status_t EQ_AVX2 eq_gemm_tern_sparse_i8_avx2(const int8_t *a, const uint8_t *w,
                                                uint32_t w_bytes, uint32_t m, uint32_t n,
                                                uint32_t k, void *scratch,
                                                uint32_t scratch_size, int32_t *out)
{
    const uint32_t *row_off;
    const uint8_t *stream;
    uint32_t i, j, e;
    if (m <= 1u) /* serial decode dominates; the portable loop is as good as it gets */
        return eq_gemm_tern_sparse_i8(a, w, w_bytes, m, n, k, scratch, scratch_size, out);
    if (!w || !n) return eq_gemm_tern_sparse_i8(a, w, w_bytes, m, n, k, scratch, scratch_size, out);
    if (!a || !out) return EQ_ERR_ARG;
    row_off = (const uint32_t *)(const void *)w;
    if (w_bytes < 4u * (n + 1u) || row_off[0] != 0u) return EQ_ERR_ARG;
    for (j = 0; j < n; ++j)
        if (row_off[j + 1] < row_off[j]) return EQ_ERR_ARG;
    if ((row_off[n] + 1u) / 2u > w_bytes - 4u * (n + 1u)) return EQ_ERR_ARG;
    if (!scratch || scratch_size < eq_gemm_tern_sparse_i8_scratch_size(m, k)) return EQ_ERR_ARG;
    stream = w + 4u * (n + 1u);
    {
        /* same scratch size as the portable kernel: [aT (K, M) | K entries | M int32] ;
         * the K entries hold the positive list from the front and the negative list from the
         * back (pos + neg <= K). */
        int8_t *at = (int8_t *)scratch;
        uint32_t *lists = (uint32_t *)(void *)((uint8_t *)scratch + EQ_ALIGN4(k * m));
        int32_t *acc = (int32_t *)(void *)(lists + k);
        uint32_t i0, e0;
        for (i0 = 0; i0 < m; i0 += 16u) /* 16 x 16 tiles: both sides stay in cache */
            for (e0 = 0; e0 < k; e0 += 16u)
                for (i = i0; i < m && i < i0 + 16u; ++i)
                    for (e = e0; e < k && e < e0 + 16u; ++e) at[e * m + i] = a[i * k + e];
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
    if (!lut || !lut_rows || !lut_cols || lut_rows > 256u || lut_cols > 256u) return EQ_ERR_ARG;
    if (m && n && (!out || (k && (!a || !w)))) return EQ_ERR_ARG;
    if (!m || !n) return EQ_OK;
    for (q = 0; q < m * k; ++q)
        if (a[q] >= lut_cols) return EQ_ERR_ARG;
    for (q = 0; q < n * k; ++q)
        if (w[q] >= lut_rows) return EQ_ERR_ARG;
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

#endif /* EQ_HOST_HAVE_AVX2 */
