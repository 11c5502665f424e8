/* eq_conv_wino_f32: an F32-weight CONV layer flagged LFLAG_WINO_F23 (3x3, stride 1, pad 1, one
 * group), computed by Winograd F(2x2, 3x3) with the blob's float32 semantics
 * (docs/blob-format.md, "F32 Winograd"; numpy reference: edgeq.reference.ref.eq_conv_wino_f32)
 * and fused with the layer's F32 output stage.
 *
 * Output tile (ty, tx) = output rows 2ty, 2ty+1 and columns 2tx, 2tx+1 (those inside); its input
 * d (4, 4) is a[2ty - 1 + r][2tx - 1 + s] (+-1 for B1, the code for U8; 0 outside the input).
 *   V = B^T d B            exact, on the integer values (|V| <= 1020), then converted to float
 *   U = G g G^T            float32, rows then columns: u0 = g0, u1 = 0.5 * ((g0 + g1) + g2),
 *                          u2 = 0.5 * ((g0 - g1) + g2), u3 = g2
 *   M = +0; M = M + U[c] * V[c] for c = 0 .. C-1, elementwise, each product and sum rounded
 *   Y = A^T M A            float32, rows then columns: y0 = (m0 + m1) + m2, y1 = (m1 - m2) - m3
 * Every expression below is written in exactly this order; the file must be built with
 * -ffp-contract=off (no FMA) and without -ffast-math (no reassociation), as the Makefile and
 * host/build_cffi.py do. Vectorising across tiles or channels keeps each element's order.
 *
 * Scratch (floats, eq_rule_wino_f23_scratch): Y (2, out_w, N): the accumulators of one row of
 * tiles; V (TW, C, 16): that row's input transforms; U (2, C, 16): two output channels' weight
 * transforms (recomputed per row of tiles: the scratch stays O(out_w * (N + C))). Two output
 * channels meet two tiles at a time (wino_sums_2x2), so each loaded value serves two products. */
#include <stddef.h>

#include "eq_conv_fast.h"

uint32_t eq_conv_wino_f32_scratch(const eq_conv_shape_t *s)
{
    uint64_t n;
    if (!s) return 0u;
    n = eq_rule_wino_f23_scratch(s->in_c, s->out_w, s->out_c);
    return n < 0x80000000ull ? (uint32_t)n : 0u;
}

/* U = G g G^T of one (n, c): g = weights (3, 3) at stride c_stride (HWC-ordered row of output
 * channel n), u (16) */
static void wino_weight(const float *g, uint32_t c_stride, float *u)
{
    float t[4][3];
    const float half = 0.5f;
    uint32_t r, kx;
    for (kx = 0; kx < 3u; ++kx) { /* rows: over ky for each kx */
        const float g0 = g[(0u * 3u + kx) * c_stride], g1 = g[(1u * 3u + kx) * c_stride];
        const float g2 = g[(2u * 3u + kx) * c_stride];
        t[0][kx] = g0;
        t[1][kx] = half * ((g0 + g1) + g2);
        t[2][kx] = half * ((g0 - g1) + g2);
        t[3][kx] = g2;
    }
    for (r = 0; r < 4u; ++r) { /* columns: over kx on each row */
        const float a0 = t[r][0], a1 = t[r][1], a2 = t[r][2];
        u[r * 4u + 0u] = a0;
        u[r * 4u + 1u] = half * ((a0 + a1) + a2);
        u[r * 4u + 2u] = half * ((a0 - a1) + a2);
        u[r * 4u + 3u] = a2;
    }
}

/* the integer value of input (y, x, c): +-1 (B1) or the code (U8); 0 outside */
static inline int32_t in_val(const eq_conv_shape_t *s, uint8_t in_enc, const void *in, int32_t y,
                             int32_t x, uint32_t c)
{
    uint32_t p;
    if (y < 0 || x < 0 || y >= (int32_t)s->in_h || x >= (int32_t)s->in_w) return 0;
    p = (uint32_t)y * s->in_w + (uint32_t)x;
    if (in_enc == EQ_ENC_B1) {
        const uint32_t *px = (const uint32_t *)in + (size_t)p * EQ_WORDS(s->in_c);
        return ((px[c >> 5] >> (c & 31u)) & 1u) ? 1 : -1;
    }
    return ((const uint8_t *)in)[(size_t)p * s->in_c + c];
}

/* V (tw, C, 16) of tile row ty */
static void wino_input_row(const eq_conv_shape_t *s, uint8_t in_enc, const void *in, uint32_t ty,
                           uint32_t tw, float *v)
{
    const uint32_t c_n = s->in_c;
    const int32_t y0 = 2 * (int32_t)ty - 1;
    uint32_t tx, c, r, q;
    for (tx = 0; tx < tw; ++tx) {
        const int32_t x0 = 2 * (int32_t)tx - 1;
        const int inside = y0 >= 0 && y0 + 4 <= (int32_t)s->in_h && x0 >= 0 && x0 + 4 <= (int32_t)s->in_w;
        for (c = 0; c < c_n; ++c) {
            int32_t d[4][4], t[4][4];
            float *vo = v + ((size_t)tx * c_n + c) * 16u;
            if (inside && in_enc == EQ_ENC_U8) {
                const uint8_t *a = (const uint8_t *)in + ((size_t)(uint32_t)y0 * s->in_w + (uint32_t)x0) * c_n + c;
                for (r = 0; r < 4u; ++r)
                    for (q = 0; q < 4u; ++q) d[r][q] = a[((size_t)r * s->in_w + q) * c_n];
            } else {
                for (r = 0; r < 4u; ++r)
                    for (q = 0; q < 4u; ++q) d[r][q] = in_val(s, in_enc, in, y0 + (int32_t)r, x0 + (int32_t)q, c);
            }
            for (q = 0; q < 4u; ++q) { /* B^T d: rows */
                t[0][q] = d[0][q] - d[2][q];
                t[1][q] = d[1][q] + d[2][q];
                t[2][q] = d[2][q] - d[1][q];
                t[3][q] = d[1][q] - d[3][q];
            }
            for (r = 0; r < 4u; ++r) { /* (B^T d) B: columns; exact integers, then float */
                vo[r * 4u + 0u] = (float)(t[r][0] - t[r][2]);
                vo[r * 4u + 1u] = (float)(t[r][1] + t[r][2]);
                vo[r * 4u + 2u] = (float)(t[r][2] - t[r][1]);
                vo[r * 4u + 3u] = (float)(t[r][1] - t[r][3]);
            }
        }
    }
}

/* M = sum over c of U[c] * V[c] (16 elements, channel order) for one output channel and one
 * tile, then Y = A^T M A into the two output rows y (2, out_w, N) at column 2tx (and 2tx + 1 if
 * inside) for channel n. The 16 sums are named locals so the compiler keeps them in FPU
 * registers (s0..s31) through the output transform. */
static void wino_tile(const float *u, const float *v, uint32_t c_n, float *y, uint32_t out_w,
                      uint32_t n_out, uint32_t tx, uint32_t n)
{
    float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, m3 = 0.0f, m4 = 0.0f, m5 = 0.0f, m6 = 0.0f, m7 = 0.0f;
    float m8 = 0.0f, m9 = 0.0f, m10 = 0.0f, m11 = 0.0f, m12 = 0.0f, m13 = 0.0f, m14 = 0.0f, m15 = 0.0f;
    float t0[4], t1[4];
    const float *ue = u + (size_t)c_n * 16u;
    for (; u < ue; u += 16, v += 16) {
        m0 = m0 + u[0] * v[0];
        m1 = m1 + u[1] * v[1];
        m2 = m2 + u[2] * v[2];
        m3 = m3 + u[3] * v[3];
        m4 = m4 + u[4] * v[4];
        m5 = m5 + u[5] * v[5];
        m6 = m6 + u[6] * v[6];
        m7 = m7 + u[7] * v[7];
        m8 = m8 + u[8] * v[8];
        m9 = m9 + u[9] * v[9];
        m10 = m10 + u[10] * v[10];
        m11 = m11 + u[11] * v[11];
        m12 = m12 + u[12] * v[12];
        m13 = m13 + u[13] * v[13];
        m14 = m14 + u[14] * v[14];
        m15 = m15 + u[15] * v[15];
    }
    /* A^T m: rows (m[4r + e] is row r, column e) */
    t0[0] = (m0 + m4) + m8;
    t0[1] = (m1 + m5) + m9;
    t0[2] = (m2 + m6) + m10;
    t0[3] = (m3 + m7) + m11;
    t1[0] = (m4 - m8) - m12;
    t1[1] = (m5 - m9) - m13;
    t1[2] = (m6 - m10) - m14;
    t1[3] = (m7 - m11) - m15;
    {
        const uint32_t x = 2u * tx;
        float *r0 = y + (size_t)x * n_out + n, *r1 = r0 + (size_t)out_w * n_out;
        r0[0] = (t0[0] + t0[1]) + t0[2];
        r1[0] = (t1[0] + t1[1]) + t1[2];
        if (x + 1u < out_w) {
            r0[n_out] = (t0[1] - t0[2]) - t0[3];
            r1[n_out] = (t1[1] - t1[2]) - t1[3];
        }
    }
}

/* the same sums for two output channels (u0, u1) x two tiles (v0, v1), four positions at a time:
 * each loaded U value meets two V values and each V value two U values (16 loads per 16
 * products instead of 32). m[k][16]: k = 0 (u0, v0), 1 (u0, v1), 2 (u1, v0), 3 (u1, v1). Every
 * sum is still its own channel-ordered chain. */
static void wino_sums_2x2(const float *u0, const float *u1, const float *v0, const float *v1, uint32_t c_n,
                          float (*m)[16])
{
    uint32_t q, c;
    for (q = 0; q < 16u; q += 4u) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
        float d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f, e0 = 0.0f, e1 = 0.0f, e2 = 0.0f, e3 = 0.0f;
        const float *pu0 = u0 + q, *pu1 = u1 + q, *pv0 = v0 + q, *pv1 = v1 + q;
        for (c = 0; c < c_n; ++c, pu0 += 16, pu1 += 16, pv0 += 16, pv1 += 16) {
            const float x0 = pu0[0], x1 = pu0[1], x2 = pu0[2], x3 = pu0[3];
            const float y0 = pu1[0], y1 = pu1[1], y2 = pu1[2], y3 = pu1[3];
            float w0 = pv0[0], w1 = pv0[1], w2 = pv0[2], w3 = pv0[3];
            a0 = a0 + x0 * w0;
            a1 = a1 + x1 * w1;
            a2 = a2 + x2 * w2;
            a3 = a3 + x3 * w3;
            d0 = d0 + y0 * w0;
            d1 = d1 + y1 * w1;
            d2 = d2 + y2 * w2;
            d3 = d3 + y3 * w3;
            w0 = pv1[0], w1 = pv1[1], w2 = pv1[2], w3 = pv1[3];
            b0 = b0 + x0 * w0;
            b1 = b1 + x1 * w1;
            b2 = b2 + x2 * w2;
            b3 = b3 + x3 * w3;
            e0 = e0 + y0 * w0;
            e1 = e1 + y1 * w1;
            e2 = e2 + y2 * w2;
            e3 = e3 + y3 * w3;
        }
        m[0][q] = a0, m[0][q + 1u] = a1, m[0][q + 2u] = a2, m[0][q + 3u] = a3;
        m[1][q] = b0, m[1][q + 1u] = b1, m[1][q + 2u] = b2, m[1][q + 3u] = b3;
        m[2][q] = d0, m[2][q + 1u] = d1, m[2][q + 2u] = d2, m[2][q + 3u] = d3;
        m[3][q] = e0, m[3][q + 1u] = e1, m[3][q + 2u] = e2, m[3][q + 3u] = e3;
    }
}

/* Y = A^T M A of one tile (as in wino_tile) for the sums of wino_sums_2x2; m[4r + s] = M[r][s] */
static void wino_out(const float *m, float *y, uint32_t out_w, uint32_t n_out, uint32_t tx, uint32_t n)
{
    float t0[4], t1[4];
    uint32_t e;
    const uint32_t x = 2u * tx;
    float *r0 = y + (size_t)x * n_out + n, *r1 = r0 + (size_t)out_w * n_out;
    for (e = 0; e < 4u; ++e) { /* A^T m: rows */
        t0[e] = (m[e] + m[4u + e]) + m[8u + e];
        t1[e] = (m[4u + e] - m[8u + e]) - m[12u + e];
    }
    r0[0] = (t0[0] + t0[1]) + t0[2]; /* (A^T m) A: columns */
    r1[0] = (t1[0] + t1[1]) + t1[2];
    if (x + 1u < out_w) {
        r0[n_out] = (t0[1] - t0[2]) - t0[3];
        r1[n_out] = (t1[1] - t1[2]) - t1[3];
    }
}

/* the F32 output stage of output row oy from acc (out_w, N) */
static void wino_stage_row(const eq_conv_job_t *job, const float *acc, uint32_t oy)
{
    const eq_conv_shape_t *s = job->s;
    const uint32_t n_pix = s->out_w;
    const float *thr = (const float *)job->thr;
    if (job->out_stage == EQ_OUT_SIGN) {
        eq_threshold_sign_f32_b1(acc, n_pix, s->out_c, thr, (const uint8_t *)job->aux,
                                 (uint32_t *)job->out + (size_t)oy * n_pix * EQ_WORDS(s->out_c));
    } else if (job->out_stage == EQ_OUT_MULTI) {
        eq_threshold_multi_f32_u8(acc, n_pix, s->out_c, thr, (uint16_t)((1u << job->out_bits) - 1u),
                                  (const uint8_t *)job->aux, (uint8_t *)job->out + (size_t)oy * n_pix * s->out_c);
    } else {
        eq_affine_f32_i32(acc, n_pix, s->out_c, thr, (const float *)job->aux,
                          (int32_t *)job->out + (size_t)oy * n_pix * s->out_c);
    }
}

eq_status_t eq_conv_wino_f32(const eq_conv_job_t *job)
{
    const eq_conv_shape_t *s;
    const float *wt;
    float *y, *v, *u;
    uint32_t th, tw, ty, tx, n, c, need;
    eq_status_t st;
    if (!job || !job->s || !job->w || !job->in || !job->out || !job->thr || !job->aux) return EQ_ERR_ARG;
    s = job->s;
    if (job->w->enc != EQ_ENC_F32 || !job->w->data) return EQ_ERR_ARG;
    if (s->kh != 3u || s->kw != 3u || s->stride != 1u || eq_shape_stride_w(s) != 1u || s->pad != 1u ||
        eq_shape_pad_w(s) != 1u || s->out_h != s->in_h || s->out_w != s->in_w || !s->in_c || !s->out_c ||
        !s->in_h || !s->in_w)
        return EQ_ERR_UNSUPPORTED;
    if (job->in_enc != EQ_ENC_B1 && job->in_enc != EQ_ENC_U8) return EQ_ERR_UNSUPPORTED;
    if (job->out_stage != EQ_OUT_SIGN && job->out_stage != EQ_OUT_MULTI && job->out_stage != EQ_OUT_AFFINE)
        return EQ_ERR_UNSUPPORTED;
    need = eq_conv_wino_f32_scratch(s);
    if (!need) return EQ_ERR_TOO_LARGE;
    st = eq_conv_fast_check(job, need);
    if (st != EQ_OK) return st;
    wt = (const float *)job->w->data;
    th = ((uint32_t)s->out_h + 1u) / 2u;
    tw = ((uint32_t)s->out_w + 1u) / 2u;
    y = (float *)job->scratch;
    v = y + 2u * (size_t)s->out_w * s->out_c;
    u = v + 16u * (size_t)tw * s->in_c;
    for (ty = 0; ty < th; ++ty) {
        wino_input_row(s, job->in_enc, job->in, ty, tw, v);
        for (n = 0; n < s->out_c; n += 2u) {
            const uint32_t pair = n + 1u < s->out_c; /* channels n and n + 1 */
            const float *wn = wt + (size_t)n * 9u * s->in_c;
            float *u1 = u + 16u * (size_t)s->in_c;
            for (c = 0; c < s->in_c; ++c) wino_weight(wn + c, s->in_c, u + 16u * c);
            if (pair)
                for (c = 0; c < s->in_c; ++c) wino_weight(wn + 9u * s->in_c + c, s->in_c, u1 + 16u * c);
            for (tx = 0; tx < tw; ++tx) {
                const float *v0 = v + (size_t)tx * s->in_c * 16u;
                if (pair && tx + 1u < tw && s->in_c >= 8u) { /* two channels x two tiles (from 8
                    input channels on: below, its setup costs more than the loads it saves) */
                    float m4[4][16];
                    wino_sums_2x2(u, u1, v0, v0 + (size_t)s->in_c * 16u, s->in_c, m4);
                    wino_out(m4[0], y, s->out_w, s->out_c, tx, n);
                    wino_out(m4[1], y, s->out_w, s->out_c, tx + 1u, n);
                    wino_out(m4[2], y, s->out_w, s->out_c, tx, n + 1u);
                    wino_out(m4[3], y, s->out_w, s->out_c, tx + 1u, n + 1u);
                    ++tx;
                } else {
                    wino_tile(u, v0, s->in_c, y, s->out_w, s->out_c, tx, n);
                    if (pair) wino_tile(u1, v0, s->in_c, y, s->out_w, s->out_c, tx, n + 1u);
                }
            }
        }
        wino_stage_row(job, y, 2u * ty);
        if (2u * ty + 1u < s->out_h) wino_stage_row(job, y + (size_t)s->out_w * s->out_c, 2u * ty + 1u);
    }
    return EQ_OK;
}
