/* eq_affine_i32: AFFINE output stage, acc (n_pix, c) int32 -> (n_pix, c) int32,
 * y = sat32(((int64)acc * mul[n] + add[n]) >> shift) with an arithmetic (flooring) shift.
 * Portable C writes the shift without relying on implementation-defined right shifts of
 * negative numbers; GCC and clang define >> of a negative signed value as arithmetic, so there
 * the shift is a plain >> (a few instructions on 32-bit cores instead of a branchy sequence). */
#include "eq_kernels.h"

#include <string.h>

#if defined(__GNUC__)
#define EQ_ASR64(v, sh) ((v) >> (sh))
#else
#define EQ_ASR64(v, sh) ((v) >= 0 ? (int64_t)((uint64_t)(v) >> (sh)) : ~(int64_t)((uint64_t)(~(v)) >> (sh)))
#endif

void eq_affine_i32(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                   const int32_t *add, uint8_t shift, int32_t *out)
{
    uint32_t p, n;
    const uint32_t sh = shift > 62u ? 62u : shift;
    if (sh == 0u) { /* the identity (mul 1, add 0: an accumulator stored as is) is a copy */
        for (n = 0; n < c && mul[n] == 1 && add[n] == 0; ++n) {
        }
        if (n == c) {
            if (out != acc) {
                memmove(out, acc, (size_t)n_pix * c * sizeof(int32_t));
            }
            return;
        }
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
