/* AVX2 skip-zero ternary x int8 GEMM. Shared macros: eq_avx2.h. */
#include "eq_avx2.h"

#ifdef EQ_HOST_HAVE_AVX2

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

#endif /* EQ_HOST_HAVE_AVX2 */
