/* eq_gemm_tern_sparse_i8: int8 activations x skip-zero ternary weights (TERN_SPARSE bytes).
 *
 * a (M, K) int8; w = row_off uint32 [N+1] then the nibble stream (docs/blob-format.md);
 * out (M, N) int32 = a @ w.T touching only the nonzero weights.
 * M == 1: each nonzero is applied while it is decoded (no scratch).
 * M > 1: scratch = [aT (K, M) int8 | row (K,) uint32 decoded entries | acc (M,) int32]; every weight
 * row is decoded once into `row` (entry = p << 1 | negative), then each entry adds or subtracts
 * the contiguous column aT[p, :] to acc, a loop over M that compilers vectorise. */
#include "eq_kernels.h"

#define EQ_ALIGN4(x) (((x) + 3u) & ~3u)

uint32_t eq_gemm_tern_sparse_i8_scratch_size(uint32_t m, uint32_t k)
{
    if (m <= 1u) return 0u;
    return EQ_ALIGN4(k * m) + 4u * k + 4u * m;
}

/* Decode row r into entries (p << 1 | neg); returns the count, or -1 if the row is invalid.
 * Branch-free per nibble (escape vs weight and the sign are data, not control flow): nibble
 * v always advances p by v & 7 (an escape is 7 = 7 & 7); a weight then also takes one slot. */
static int32_t eq_decode_row(const uint8_t *stream, uint32_t q0, uint32_t q1, uint32_t k,
                             uint32_t *row)
{
    uint32_t q, p = 0, cnt = 0, bad = 0;
    for (q = q0; q < q1; ++q) {
        const uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
        const uint32_t is_w = (uint32_t)(v != 7u);
        p += v & 7u;
        bad |= (uint32_t)(v == 15u) | (is_w & (uint32_t)(p >= k)) | (uint32_t)(p > k);
        if (bad) break; /* never write past row[k - 1] for a bad stream */
        row[cnt] = (p << 1) | (v >> 3);
        cnt += is_w;
        p += is_w;
    }
    return (bad || p > k) ? -1 : (int32_t)cnt;
}

static eq_status_t eq_check_offsets(const uint32_t *row_off, uint32_t n, uint32_t w_bytes)
{
    const uint32_t head = 4u * (n + 1u);
    uint32_t j;
    if (w_bytes < head || row_off[0] != 0u) return EQ_ERR_ARG;
    for (j = 0; j < n; ++j)
        if (row_off[j + 1] < row_off[j]) return EQ_ERR_ARG;
    if ((row_off[n] + 1u) / 2u > w_bytes - head) return EQ_ERR_ARG;
    return EQ_OK;
}

eq_status_t eq_gemm_tern_sparse_i8(const int8_t *a, const uint8_t *w, uint32_t w_bytes,
                                   uint32_t m, uint32_t n, uint32_t k, void *scratch,
                                   uint32_t scratch_size, int32_t *out)
{
    const uint32_t *row_off;
    const uint8_t *stream;
    uint32_t i, j, e;
    if (!w || (m && n && (!a || !out))) return EQ_ERR_ARG;
    row_off = (const uint32_t *)(const void *)w;
    if (eq_check_offsets(row_off, n, w_bytes) != EQ_OK) return EQ_ERR_ARG;
    stream = w + 4u * (n + 1u);
    if (!m || !n) return EQ_OK;

    if (m == 1u) {
        for (j = 0; j < n; ++j) { /* branch-free decode, applied while decoding */
            uint32_t q, p = 0, bad = 0;
            int32_t sum = 0;
            for (q = row_off[j]; q < row_off[j + 1]; ++q) {
                const uint32_t v = (stream[q >> 1] >> ((q & 1u) * 4u)) & 15u;
                const uint32_t is_w = (uint32_t)(v != 7u);
                int32_t x;
                p += v & 7u;
                bad |= (uint32_t)(v == 15u) | (is_w & (uint32_t)(p >= k));
                x = (int32_t)a[p < k ? p : 0u]; /* in bounds even for a bad stream */
                x = (v & 8u) ? -x : x;
                sum += is_w ? x : 0;
                p += is_w;
            }
            if (bad || p > k) return EQ_ERR_ARG;
            out[j] = sum;
        }
        return EQ_OK;
    }

    if (!scratch || scratch_size < eq_gemm_tern_sparse_i8_scratch_size(m, k)) return EQ_ERR_ARG;
    {
        int8_t *at = (int8_t *)scratch;                                   /* (K, M) */
        uint32_t *row = (uint32_t *)(void *)((uint8_t *)scratch + EQ_ALIGN4(k * m)); /* (K,) */
        int32_t *acc = (int32_t *)(void *)(row + k);                     /* (M,) */
        uint32_t i0, e0;
        for (i0 = 0; i0 < m; i0 += 16u) /* 16 x 16 tiles: both sides stay in cache */
            for (e0 = 0; e0 < k; e0 += 16u)
                for (i = i0; i < m && i < i0 + 16u; ++i)
                    for (e = e0; e < k && e < e0 + 16u; ++e) at[e * m + i] = a[i * k + e];
        for (j = 0; j < n; ++j) {
            const int32_t cnt = eq_decode_row(stream, row_off[j], row_off[j + 1], k, row);
            if (cnt < 0) return EQ_ERR_ARG;
            for (i = 0; i < m; ++i) acc[i] = 0;
            for (e = 0; e < (uint32_t)cnt; ++e) {
                const int8_t *col = at + (row[e] >> 1) * m;
                if (row[e] & 1u) {
                    for (i = 0; i < m; ++i) acc[i] -= col[i];
                } else {
                    for (i = 0; i < m; ++i) acc[i] += col[i];
                }
            }
            for (i = 0; i < m; ++i) out[i * n + j] = acc[i];
        }
    }
    return EQ_OK;
}
