/* eq_sparse_encode_i8: skip-zero (TERN_SPARSE) encoding of w (rows, k) in {-1, 0, 1}.
 * Bytes: row_off uint32 [rows+1] (nibble offsets) then the nibble stream, low nibble first, a
 * trailing odd nibble padded with 0 -- identical to edgeq.bits.sparse_to_bytes(*sparse_encode(w)).
 * Per nonzero at gap g zeros after the previous one: g / 7 nibbles 7, then (g % 7) | 8 * (w < 0). */
#include "eq_kernels.h"

static void eq_put_nibble(uint8_t *stream, uint32_t q, uint32_t v)
{
    if (q & 1u)
        stream[q >> 1] = (uint8_t)(stream[q >> 1] | (v << 4));
    else
        stream[q >> 1] = (uint8_t)v;
}

eq_status_t eq_sparse_encode_i8(const int8_t *w, uint32_t rows, uint32_t k, uint8_t *out,
                                uint32_t cap, uint32_t *out_bytes)
{
    const uint32_t head = 4u * (rows + 1u);
    uint32_t r, i, q = 0, total;
    if (!out_bytes || (rows && k && !w)) return EQ_ERR_ARG;
    for (i = 0; i < rows * k; ++i)
        if (w[i] < -1 || w[i] > 1) return EQ_ERR_ARG;
    for (r = 0; r < rows; ++r) { /* pass 1: count nibbles */
        uint32_t p = 0;
        for (i = 0; i < k; ++i) {
            if (!w[r * k + i]) continue;
            q += (i - p) / 7u + 1u;
            p = i + 1u;
        }
    }
    total = head + (q + 1u) / 2u;
    *out_bytes = total;
    if (!out) return EQ_OK;
    if (cap < total) return EQ_ERR_ARG;
    {
        uint8_t *stream = out + head;
        q = 0;
        for (r = 0; r < rows; ++r) {
            uint32_t p = 0, off = q;
            out[4u * r] = (uint8_t)off;
            out[4u * r + 1u] = (uint8_t)(off >> 8);
            out[4u * r + 2u] = (uint8_t)(off >> 16);
            out[4u * r + 3u] = (uint8_t)(off >> 24);
            for (i = 0; i < k; ++i) {
                const int8_t v = w[r * k + i];
                uint32_t gap;
                if (!v) continue;
                gap = i - p;
                while (gap >= 7u) {
                    eq_put_nibble(stream, q++, 7u);
                    gap -= 7u;
                }
                eq_put_nibble(stream, q++, gap | (v < 0 ? 8u : 0u));
                p = i + 1u;
            }
        }
        out[4u * rows] = (uint8_t)q;
        out[4u * rows + 1u] = (uint8_t)(q >> 8);
        out[4u * rows + 2u] = (uint8_t)(q >> 16);
        out[4u * rows + 3u] = (uint8_t)(q >> 24);
    }
    return EQ_OK;
}
