/* eq_conv3x3_wino_f23_f32: 3x3 convolution (stride 1, zero pad 1) by Winograd F(2x2, 3x3).
 *
 * x (C, H, W) f32, wt (K, C, 3, 3) f32 -> out (K, H, W) f32 (cross-correlation, as torch conv2d).
 * Tiles: T = TH * TW, TH = ceil(H/2), TW = ceil(W/2); tile t = (ty, tx) reads the 4x4 input patch
 * at rows 2ty-1 .. 2ty+2, cols 2tx-1 .. 2tx+2 (zeros outside) and writes the 2x2 outputs that
 * fall inside (odd H/W: the last tile writes one row/column).
 * scratch (floats): U (16, K, C) = G g G^T | V (16, C, T) = B^T d B | M (16, K, T) = U[xi] @ V[xi];
 * the 16 products are GEMMs through `gemm` (the same function the im2col baseline uses). */
#include "eq_kernels.h"

uint32_t eq_conv3x3_wino_f23_f32_scratch_size(uint32_t c, uint32_t h, uint32_t w, uint32_t k)
{
    const uint32_t t = ((h + 1u) / 2u) * ((w + 1u) / 2u);
    return 4u * 16u * (k * c + c * t + k * t);
}

void eq_wino_weight_tile(const float *g, float *u, uint32_t stride)
{
    float tg[4][3], v[4][4];
    uint32_t r, s;
    for (s = 0; s < 3; ++s) { /* G g: rows */
        tg[0][s] = g[s];
        tg[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);
        tg[2][s] = 0.5f * (g[s] - g[3 + s] + g[6 + s]);
        tg[3][s] = g[6 + s];
    }
    for (r = 0; r < 4; ++r) { /* (G g) G^T: columns */
        v[r][0] = tg[r][0];
        v[r][1] = 0.5f * (tg[r][0] + tg[r][1] + tg[r][2]);
        v[r][2] = 0.5f * (tg[r][0] - tg[r][1] + tg[r][2]);
        v[r][3] = tg[r][2];
    }
    for (r = 0; r < 4; ++r)
        for (s = 0; s < 4; ++s) u[(r * 4 + s) * stride] = v[r][s];
}

static void eq_wino_weights(const float *wt, uint32_t c, uint32_t k, float *u)
{
    uint32_t o, ch;
    for (o = 0; o < k; ++o)
        for (ch = 0; ch < c; ++ch) eq_wino_weight_tile(wt + (o * c + ch) * 9u, u + o * c + ch, k * c);
}

static void eq_wino_input(const float *x, uint32_t c, uint32_t h, uint32_t w, float *v)
{
    const uint32_t th = (h + 1u) / 2u, tw = (w + 1u) / 2u, nt = th * tw, ct = c * nt;
    uint32_t ch, ty, tx, r, s;
    for (ch = 0; ch < c; ++ch) {
        const float *xc = x + ch * h * w;
        for (ty = 0; ty < th; ++ty) {
            for (tx = 0; tx < tw; ++tx) {
                float d[4][4], t[4][4];
                const uint32_t tile = ty * tw + tx;
                const int32_t y0 = 2 * (int32_t)ty - 1, x0 = 2 * (int32_t)tx - 1;
                if (y0 >= 0 && y0 + 4 <= (int32_t)h && x0 >= 0 && x0 + 4 <= (int32_t)w) {
                    for (r = 0; r < 4; ++r)
                        for (s = 0; s < 4; ++s)
                            d[r][s] = xc[(uint32_t)(y0 + (int32_t)r) * w + (uint32_t)x0 + s];
                } else {
                    for (r = 0; r < 4; ++r) {
                        for (s = 0; s < 4; ++s) {
                            const int32_t yy = y0 + (int32_t)r, xx = x0 + (int32_t)s;
                            d[r][s] = (yy >= 0 && yy < (int32_t)h && xx >= 0 && xx < (int32_t)w)
                                          ? xc[(uint32_t)yy * w + (uint32_t)xx]
                                          : 0.0f;
                        }
                    }
                }
                for (s = 0; s < 4; ++s) { /* B^T d */
                    t[0][s] = d[0][s] - d[2][s];
                    t[1][s] = d[1][s] + d[2][s];
                    t[2][s] = d[2][s] - d[1][s];
                    t[3][s] = d[1][s] - d[3][s];
                }
                for (r = 0; r < 4; ++r) { /* (B^T d) B */
                    float *vr = v + (r * 4u) * ct + ch * nt + tile;
                    vr[0] = t[r][0] - t[r][2];
                    vr[ct] = t[r][1] + t[r][2];
                    vr[2u * ct] = t[r][2] - t[r][1];
                    vr[3u * ct] = t[r][1] - t[r][3];
                }
            }
        }
    }
}

static void eq_wino_output(const float *mm, uint32_t k, uint32_t h, uint32_t w, float *out)
{
    const uint32_t th = (h + 1u) / 2u, tw = (w + 1u) / 2u, nt = th * tw, kt = k * nt;
    uint32_t o, ty, tx, r;
    for (o = 0; o < k; ++o) {
        float *oc = out + o * h * w;
        for (ty = 0; ty < th; ++ty) {
            for (tx = 0; tx < tw; ++tx) {
                const float *p = mm + o * nt + ty * tw + tx;
                float m[4][4], t[2][4];
                uint32_t s;
                for (r = 0; r < 4; ++r)
                    for (s = 0; s < 4; ++s) m[r][s] = p[(r * 4 + s) * kt];
                for (s = 0; s < 4; ++s) { /* A^T m */
                    t[0][s] = m[0][s] + m[1][s] + m[2][s];
                    t[1][s] = m[1][s] - m[2][s] - m[3][s];
                }
                for (r = 0; r < 2; ++r) { /* (A^T m) A */
                    const uint32_t y = 2u * ty + r;
                    const float y0 = t[r][0] + t[r][1] + t[r][2];
                    const float y1 = t[r][1] - t[r][2] - t[r][3];
                    if (y >= h) break;
                    oc[y * w + 2u * tx] = y0;
                    if (2u * tx + 1u < w) oc[y * w + 2u * tx + 1u] = y1;
                }
            }
        }
    }
}

eq_status_t eq_conv3x3_wino_f23_f32_ex(const float *x, const float *wt, uint32_t c, uint32_t h,
                                       uint32_t w, uint32_t k, void *scratch,
                                       uint32_t scratch_size, float *out, eq_gemm_f32_fn gemm)
{
    const uint32_t nt = ((h + 1u) / 2u) * ((w + 1u) / 2u);
    float *u, *v, *mm;
    uint32_t xi;
    if (!x || !wt || !out || !gemm || !c || !h || !w || !k) return EQ_ERR_ARG;
    if (!scratch || scratch_size < eq_conv3x3_wino_f23_f32_scratch_size(c, h, w, k))
        return EQ_ERR_ARG;
    u = (float *)scratch;
    v = u + 16u * k * c;
    mm = v + 16u * c * nt;
    eq_wino_weights(wt, c, k, u);
    eq_wino_input(x, c, h, w, v);
    for (xi = 0; xi < 16u; ++xi) {
        eq_status_t st = gemm(u + xi * k * c, v + xi * c * nt, k, nt, c, mm + xi * k * nt);
        if (st != EQ_OK) return st;
    }
    eq_wino_output(mm, k, h, w, out);
    return EQ_OK;
}

eq_status_t eq_conv3x3_wino_f23_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                    uint32_t w, uint32_t k, void *scratch,
                                    uint32_t scratch_size, float *out)
{
    return eq_conv3x3_wino_f23_f32_ex(x, wt, c, h, w, k, scratch, scratch_size, out, eq_gemm_f32);
}
