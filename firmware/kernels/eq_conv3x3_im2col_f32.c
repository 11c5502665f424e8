/* eq_conv3x3_im2col_f32: 3x3 convolution (stride 1, zero pad 1), baseline for Winograd.
 * x (C, H, W) f32, wt (K, C, 3, 3) f32 -> out (K, H, W) f32.
 * scratch cols (9C, H*W) f32, row c*9 + ky*3 + kx = x shifted by (ky-1, kx-1) with zeros; then
 * out = wt.reshape(K, 9C) @ cols through `gemm`. */
#include "eq_kernels.h"

uint32_t eq_conv3x3_im2col_f32_scratch_size(uint32_t c, uint32_t h, uint32_t w)
{
    return 4u * 9u * c * h * w;
}

eq_status_t eq_conv3x3_im2col_f32_ex(const float *x, const float *wt, uint32_t c, uint32_t h,
                                     uint32_t w, uint32_t k, void *scratch,
                                     uint32_t scratch_size, float *out, eq_gemm_f32_fn gemm)
{
    const uint32_t hw = h * w;
    float *cols;
    uint32_t ch, ky, kx, y, xx;
    if (!x || !wt || !out || !gemm || !c || !h || !w || !k) return EQ_ERR_ARG;
    if (!scratch || scratch_size < eq_conv3x3_im2col_f32_scratch_size(c, h, w)) return EQ_ERR_ARG;
    cols = (float *)scratch;
    for (ch = 0; ch < c; ++ch) {
        for (ky = 0; ky < 3u; ++ky) {
            for (kx = 0; kx < 3u; ++kx) {
                float *row = cols + (ch * 9u + ky * 3u + kx) * hw;
                for (y = 0; y < h; ++y) {
                    const int32_t iy = (int32_t)(y + ky) - 1;
                    float *r = row + y * w;
                    if (iy < 0 || iy >= (int32_t)h) {
                        for (xx = 0; xx < w; ++xx) r[xx] = 0.0f;
                        continue;
                    }
                    for (xx = 0; xx < w; ++xx) {
                        const int32_t ix = (int32_t)(xx + kx) - 1;
                        r[xx] = (ix < 0 || ix >= (int32_t)w)
                                    ? 0.0f
                                    : x[(ch * h + (uint32_t)iy) * w + (uint32_t)ix];
                    }
                }
            }
        }
    }
    return gemm(wt, cols, k, hw, 9u * c, out);
}

eq_status_t eq_conv3x3_im2col_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                  uint32_t w, uint32_t k, void *scratch, uint32_t scratch_size,
                                  float *out)
{
    return eq_conv3x3_im2col_f32_ex(x, wt, c, h, w, k, scratch, scratch_size, out, eq_gemm_f32);
}
