/* AVX2 + FMA Winograd F(2x2, 3x3) float32 convolution. Shared macros: eq_avx2.h. */
#include "eq_avx2.h"

#ifdef EQ_HOST_HAVE_AVX2

/* ---- Winograd F(2x2, 3x3) with vectorised transforms ---------------------------------------
 * Same algorithm, scratch layout and GEMM (eq_gemm_f32_avx2, the one im2col uses) as the portable
 * eq_conv3x3_wino_f23_f32_ex; the input and output transforms handle 8 horizontally adjacent
 * tiles per step: a tile row of input is read as 16-float vectors and de-interleaved into the
 * even / odd columns, every transformed value is stored as 8 contiguous floats of V (tiles of a
 * row are consecutive), and the output transform reads 8 contiguous floats of each M slice and
 * re-interleaves the 2 output columns of the 8 tiles into 16 contiguous floats. */
static EQ_AVX2_FMA EQ_INLINE void eq_deint(const float *p, __m256 *ev, __m256 *od)
{
    const __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    *ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)),
                                                 0xD8));
    *od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)),
                                                 0xD8));
}

static EQ_AVX2_FMA __m256i eq_lanes(uint32_t cnt)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)cnt), idx);
}

#define EQ_WINO_LINE 1024u /* widest input row read through the zero-padded line buffers */

/* tile rows [ty0, ty0 + nty) -> v (16, C, nty * TW) */
static EQ_AVX2_FMA void eq_wino_in_avx2(const float *x, uint32_t c, uint32_t h, uint32_t w,
                                        uint32_t ty0, uint32_t nty, float *v)
{
    const uint32_t tw = (w + 1u) / 2u, nt = nty * tw, ct = c * nt;
    const uint32_t lw = 2u * ((tw + 7u) & ~7u) + 24u; /* line floats: col u - 1 at line[u] */
    const int lines = w <= EQ_WINO_LINE;
    static const float zero[24];
    float line[4][2u * EQ_WINO_LINE + 32u];
    uint32_t ch, ty, t0, r, s, u;
    if (lines)
        for (r = 0; r < 4u; ++r) memset(line[r], 0, lw * sizeof(float));
    for (ch = 0; ch < c; ++ch) {
        const float *xc = x + ch * h * w;
        for (ty = ty0; ty < ty0 + nty; ++ty) {
            const float *rows[4];
            for (r = 0; r < 4u; ++r) { /* zero-padded copies of the 4 input rows of this tile row */
                const int32_t yy = 2 * (int32_t)ty - 1 + (int32_t)r;
                rows[r] = NULL;
                if (yy >= 0 && yy < (int32_t)h) rows[r] = xc + (uint32_t)yy * w;
                if (lines && rows[r]) memcpy(line[r] + 1, rows[r], w * sizeof(float));
            }
            for (t0 = 0; t0 < tw; t0 += 8u) {
                const uint32_t cnt = (tw - t0) < 8u ? tw - t0 : 8u;
                float seg[4][24];
                __m256 d[4][4], t[4][4];
                float *vb = v + ch * nt + (ty - ty0) * tw + t0;
                for (r = 0; r < 4u; ++r) {
                    const float *base;
                    if (!rows[r]) {
                        base = zero;
                    } else if (lines) {
                        base = line[r] + 2u * t0;
                    } else {
                        for (u = 0; u < 18u; ++u) {
                            const int32_t xx = 2 * (int32_t)t0 - 1 + (int32_t)u;
                            seg[r][u] = (xx >= 0 && xx < (int32_t)w) ? rows[r][xx] : 0.0f;
                        }
                        base = seg[r];
                    }
                    eq_deint(base, &d[r][0], &d[r][1]);     /* columns 2t-1, 2t */
                    eq_deint(base + 2, &d[r][2], &d[r][3]); /* columns 2t+1, 2t+2 */
                }
                for (s = 0; s < 4u; ++s) { /* B^T d */
                    t[0][s] = _mm256_sub_ps(d[0][s], d[2][s]);
                    t[1][s] = _mm256_add_ps(d[1][s], d[2][s]);
                    t[2][s] = _mm256_sub_ps(d[2][s], d[1][s]);
                    t[3][s] = _mm256_sub_ps(d[1][s], d[3][s]);
                }
                for (r = 0; r < 4u; ++r) { /* (B^T d) B, 8 tiles per store */
                    __m256 o[4];
                    o[0] = _mm256_sub_ps(t[r][0], t[r][2]);
                    o[1] = _mm256_add_ps(t[r][1], t[r][2]);
                    o[2] = _mm256_sub_ps(t[r][2], t[r][1]);
                    o[3] = _mm256_sub_ps(t[r][1], t[r][3]);
                    for (s = 0; s < 4u; ++s) {
                        float *dst = vb + (r * 4u + s) * ct;
                        if (cnt == 8u)
                            _mm256_storeu_ps(dst, o[s]);
                        else
                            _mm256_maskstore_ps(dst, eq_lanes(cnt), o[s]);
                    }
                }
            }
        }
    }
}

/* mm (16, K, nty * TW) of tile rows [ty0, ty0 + nty) -> their output rows */
static EQ_AVX2_FMA void eq_wino_out_avx2(const float *mm, uint32_t k, uint32_t h, uint32_t w,
                                         uint32_t ty0, uint32_t nty, float *out)
{
    const uint32_t tw = (w + 1u) / 2u, nt = nty * tw, kt = k * nt;
    uint32_t o, ty, t0, r, s, u;
    for (o = 0; o < k; ++o) {
        float *oc = out + o * h * w;
        for (ty = ty0; ty < ty0 + nty; ++ty) {
            for (t0 = 0; t0 < tw; t0 += 8u) {
                const uint32_t cnt = (tw - t0) < 8u ? tw - t0 : 8u;
                const __m256i lanes = eq_lanes(cnt);
                const float *p = mm + o * nt + (ty - ty0) * tw + t0;
                __m256 m[4][4], t[2][4];
                for (r = 0; r < 4u; ++r)
                    for (s = 0; s < 4u; ++s)
                        m[r][s] = cnt == 8u ? _mm256_loadu_ps(p + (r * 4u + s) * kt)
                                            : _mm256_maskload_ps(p + (r * 4u + s) * kt, lanes);
                for (s = 0; s < 4u; ++s) { /* A^T m */
                    t[0][s] = _mm256_add_ps(_mm256_add_ps(m[0][s], m[1][s]), m[2][s]);
                    t[1][s] = _mm256_sub_ps(_mm256_sub_ps(m[1][s], m[2][s]), m[3][s]);
                }
                for (r = 0; r < 2u; ++r) { /* (A^T m) A, then interleave columns 2t, 2t+1 */
                    const uint32_t y = 2u * ty + r, col = 2u * t0;
                    const __m256 y0 = _mm256_add_ps(_mm256_add_ps(t[r][0], t[r][1]), t[r][2]);
                    const __m256 y1 = _mm256_sub_ps(_mm256_sub_ps(t[r][1], t[r][2]), t[r][3]);
                    const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
                    const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20);
                    const __m256 b = _mm256_permute2f128_ps(lo, hi, 0x31);
                    float *orow = oc + y * w + col;
                    if (y >= h) break;
                    if (col + 16u <= w) {
                        _mm256_storeu_ps(orow, a);
                        _mm256_storeu_ps(orow + 8, b);
                    } else {
                        float tmp[16];
                        _mm256_storeu_ps(tmp, a);
                        _mm256_storeu_ps(tmp + 8, b);
                        for (u = 0; u < 16u && col + u < w; ++u) orow[u] = tmp[u];
                    }
                }
            }
        }
    }
}

/* U (16, K, C) = G g G^T for 8 channels at a time (gathered taps, stride 9), then one
 * contiguous 8-float store per transformed value; channel tail scalar. */
static EQ_AVX2_FMA void eq_wino_weights_avx2(const float *wt, uint32_t c, uint32_t k, float *u)
{
    const uint32_t kc = k * c;
    const __m256i idx = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    const __m256 half = _mm256_set1_ps(0.5f);
    uint32_t o, ch, r, s;
    for (o = 0; o < k; ++o) {
        for (ch = 0; ch + 8u <= c; ch += 8u) {
            const float *g = wt + (o * c + ch) * 9u;
            __m256 gv[9], tg[4][3];
            for (s = 0; s < 9u; ++s) gv[s] = _mm256_i32gather_ps(g + s, idx, 4);
            for (s = 0; s < 3u; ++s) {
                tg[0][s] = gv[s];
                tg[1][s] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(gv[s], gv[3 + s]), gv[6 + s]));
                tg[2][s] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(gv[s], gv[3 + s]), gv[6 + s]));
                tg[3][s] = gv[6 + s];
            }
            for (r = 0; r < 4u; ++r) {
                float *dst = u + (r * 4u) * kc + o * c + ch;
                const __m256 v1 = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(tg[r][0], tg[r][1]), tg[r][2]));
                const __m256 v2 = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(tg[r][0], tg[r][1]), tg[r][2]));
                _mm256_storeu_ps(dst, tg[r][0]);
                _mm256_storeu_ps(dst + kc, v1);
                _mm256_storeu_ps(dst + 2u * kc, v2);
                _mm256_storeu_ps(dst + 3u * kc, tg[r][2]);
            }
        }
        for (; ch < c; ++ch) eq_wino_weight_tile(wt + (o * c + ch) * 9u, u + o * c + ch, kc);
    }
}

eq_status_t eq_conv3x3_wino_f23_f32_avx2(const float *x, const float *wt, uint32_t c, uint32_t h,
                                         uint32_t w, uint32_t k, void *scratch,
                                         uint32_t scratch_size, float *out)
{
    /* blocks of whole tile rows, about 64 tiles each, so V and M of a block stay in L2; the
     * scratch layout is the portable one, of which a block uses the first nty * TW tiles */
    const uint32_t th = (h + 1u) / 2u, tw = (w + 1u) / 2u, nt = th * tw;
    const uint32_t rb = tw >= 64u ? 1u : 64u / tw;
    float *u, *v, *mm;
    uint32_t xi, ty0;
    if (!x || !wt || !out || !c || !h || !w || !k) return EQ_ERR_ARG;
    if (!scratch || scratch_size < eq_conv3x3_wino_f23_f32_scratch_size(c, h, w, k))
        return EQ_ERR_ARG;
    u = (float *)scratch;
    v = u + 16u * k * c;
    mm = v + 16u * c * nt;
    eq_wino_weights_avx2(wt, c, k, u);
    for (ty0 = 0; ty0 < th; ty0 += rb) {
        const uint32_t nty = (th - ty0) < rb ? th - ty0 : rb, tb = nty * tw;
        eq_wino_in_avx2(x, c, h, w, ty0, nty, v);
        for (xi = 0; xi < 16u; ++xi) {
            eq_status_t st = eq_gemm_f32_avx2(u + xi * k * c, v + xi * c * tb, k, tb, c,
                                              mm + xi * k * tb);
            if (st != EQ_OK) return st;
        }
        eq_wino_out_avx2(mm, k, h, w, ty0, nty, out);
    }
    return EQ_OK;
}
#endif /* EQ_HOST_HAVE_AVX2 */
