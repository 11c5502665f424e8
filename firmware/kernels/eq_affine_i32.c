/* eq_affine_i32: AFFINE output stage, acc (n_pix, c) int32 -> (n_pix, c) int32,
 * y = sat32(((int64)acc * mul[n] + add[n]) >> shift) with an arithmetic (flooring) shift.
 * Portable C writes the shift without relying on implementation-defined right shifts of
 * negative numbers; GCC and clang define >> of a negative signed value as arithmetic, so there
 * the shift is a plain >> (a few instructions on 32-bit cores instead of a branchy sequence). */
#include "eq_kernels.h"

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
    for (p = 0; p < n_pix; ++p, acc += c, out += c) {
        for (n = 0; n < c; ++n) {
            int64_t v = (int64_t)acc[n] * (int64_t)mul[n] + (int64_t)add[n];
            v = EQ_ASR64(v, sh);
            out[n] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
        }
    }
}
