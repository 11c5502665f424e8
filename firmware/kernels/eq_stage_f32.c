/* Output stages of F32-weight CONV layers: acc (n_pix, c) float32 -> activation.
 * Same rules as the integer stages with float32 thresholds; AFFINE computes
 * y = sat32(floor((acc * mul[n]) + add[n])) with each operation rounded to float32 (no fused
 * multiply-add), so every runtime gets the same integers (docs/blob-format.md, F32). */
#include "eq_kernels.h"

int32_t eq_floor_sat32_f32(float t)
{
    int32_t i;
    if (!(t >= -2147483648.0f)) return INT32_MIN; /* also NaN (loaders rule it out) */
    if (t >= 2147483648.0f) return INT32_MAX;
    i = (int32_t)t;              /* toward zero; exact, |t| < 2**31 */
    return ((float)i > t) ? i - 1 : i;
}

void eq_threshold_sign_f32_b1(const float *acc, uint32_t n_pix, uint16_t c, const float *thr,
                              const uint8_t *flip, uint32_t *out)
{
    const uint32_t cw = EQ_WORDS(c);
    uint32_t p, n;
    for (p = 0; p < n_pix; ++p) {
        const float *a = acc + p * c;
        uint32_t *o = out + p * cw;
        for (n = 0; n < cw; ++n) o[n] = 0;
        for (n = 0; n < c; ++n) {
            uint32_t bit = flip[n] ? (a[n] <= thr[n]) : (a[n] >= thr[n]);
            o[n >> 5] |= bit << (n & 31u);
        }
    }
}

void eq_threshold_multi_f32_u8(const float *acc, uint32_t n_pix, uint16_t c, const float *thr,
                               uint16_t n_thr, const uint8_t *flip, uint8_t *out)
{
    uint32_t p, n, i;
    for (p = 0; p < n_pix; ++p) {
        for (n = 0; n < c; ++n) {
            const float a = acc[p * c + n];
            const float *t = thr + (uint32_t)n * n_thr;
            uint32_t code = 0;
            for (i = 0; i < n_thr; ++i) code += flip[n] ? (a <= t[i]) : (a >= t[i]);
            out[p * c + n] = (uint8_t)code;
        }
    }
}

void eq_affine_f32_i32(const float *acc, uint32_t n_pix, uint16_t c, const float *mul,
                       const float *add, int32_t *out)
{
    uint32_t p, n;
    for (p = 0; p < n_pix; ++p) {
        for (n = 0; n < c; ++n) {
            float t = acc[p * c + n] * mul[n];
            t = t + add[n];
            out[p * c + n] = eq_floor_sat32_f32(t);
        }
    }
}
