/* Integer Winograd F(2x2, 3x3) on the host: shared geometry, the weight transform, the portable
 * band function and the public entry eq_host_conv3x3_wino_i8 (see eq_wino_i8.h for the math).
 * The portable band is plain C whose channel / output-channel loops the compiler vectorises
 * (SSE2 on any x86-64); host/eq_avx2_wino_i8.c and host/eq_avx512_wino_i8.c are the SIMD ones. */
#include "eq_wino_i8.h"

#include <string.h>

#define EQ_HWINO_BAND_BYTES (384u * 1024u) /* v + m of a band: stays in a Zen 4 / Skylake L2 */
#define EQ_HWINO_MAX_BYTES ((size_t)1 << 30)

int eq_hwino_geometry(eq_hwino_t *j, uint32_t h, uint32_t w, uint32_t c, uint32_t n)
{
    memset(j, 0, sizeof *j);
    if (!h || !w || !c || !n || c > EQ_HWINO_MAX_C || n > 65535u || h > 65535u || w > 65535u)
        return 0;
    j->h = h;
    j->w = w;
    j->c = c;
    j->n = n;
    j->cs = (c + 31u) & ~31u;
    j->cp2 = (c + 1u) / 2u;
    j->np = (n + 15u) & ~15u;
    j->tph = (h + 1u) / 2u;
    j->tpw = (w + 1u) / 2u;
    return 1;
}

size_t eq_hwino_u_bytes(const eq_hwino_t *j)
{
    return (size_t)16u * j->cp2 * j->np * 2u * 2u;
}

static size_t eq_r64(size_t x)
{
    return (x + 63u) & ~(size_t)63u;
}

/* the portable band's tile buffer d (16, cs) int16, which is also the 3 np int32 of spare
 * output (pixels outside the image) */
static size_t eq_hwino_d_bytes(const eq_hwino_t *j)
{
    const size_t d = (size_t)16u * j->cs * 2u, spare = (size_t)j->np * 12u;
    return d > spare ? d : spare;
}

size_t eq_hwino_band_bytes(const eq_hwino_t *j, uint32_t ntr)
{
    const uint64_t t = (uint64_t)ntr * j->tpw;
    const uint64_t v = 16u * t * j->cs * 2u, m = 16u * t * j->np * 4u;
    const uint64_t d = eq_r64(eq_hwino_d_bytes(j));
    const uint64_t tot = eq_r64((size_t)v) + eq_r64((size_t)m) + d + j->cs + 64u;
    return tot > EQ_HWINO_MAX_BYTES ? 0u : (size_t)tot;
}

uint32_t eq_hwino_band_rows(const eq_hwino_t *j)
{
    const uint64_t per_row = 16ull * j->tpw * ((uint64_t)j->cs * 2u + (uint64_t)j->np * 4u);
    uint64_t r = EQ_HWINO_BAND_BYTES / (per_row ? per_row : 1u);
    if (r < 1u) r = 1u;
    if (r > j->tph * 64ull) r = j->tph * 64ull; /* at most 64 images a band */
    return (uint32_t)r;
}

void eq_hwino_buffers(eq_hwino_t *j, uint32_t ntr, void *buf)
{
    uint8_t *b = (uint8_t *)(((uintptr_t)buf + 63u) & ~(uintptr_t)63u);
    const size_t t = (size_t)ntr * j->tpw;
    j->tmax = (uint32_t)t;
    j->v = (int16_t *)(void *)b;
    b += eq_r64(16u * t * j->cs * 2u);
    j->m = (int32_t *)(void *)b;
    b += eq_r64(16u * t * j->np * 4u);
    j->d = (int16_t *)(void *)b;
    b += eq_r64(eq_hwino_d_bytes(j));
    memset(b, 0, j->cs);
    j->zero = b;
}

void eq_hwino_weights(const eq_hwino_t *j, const int8_t *wt, int16_t *u)
{
    const uint32_t c = j->c, np = j->np, cp2 = j->cp2;
    const size_t us = (size_t)cp2 * np * 2u; /* int16 a pos */
    uint32_t n, ch, i;
    memset(u, 0, 16u * us * 2u);
    for (n = 0; n < j->n; ++n)
        for (ch = 0; ch < c; ++ch) {
            const int8_t *g = wt + (size_t)n * 9u * c + ch;
            int32_t r[3][4];
            int16_t *o = u + ((size_t)(ch >> 1) * np + n) * 2u + (ch & 1u);
            for (i = 0; i < 3u; ++i) { /* rows: Gs g along kx */
                const int32_t g0 = g[(3u * i) * c], g1 = g[(3u * i + 1u) * c];
                const int32_t g2 = g[(3u * i + 2u) * c];
                r[i][0] = 2 * g0;
                r[i][1] = g0 + g1 + g2;
                r[i][2] = g0 - g1 + g2;
                r[i][3] = 2 * g2;
            }
            for (i = 0; i < 4u; ++i) { /* columns: Gs along ky; pos = row * 4 + col */
                o[(0u + i) * us] = (int16_t)(2 * r[0][i]);
                o[(4u + i) * us] = (int16_t)(r[0][i] + r[1][i] + r[2][i]);
                o[(8u + i) * us] = (int16_t)(r[0][i] - r[1][i] + r[2][i]);
                o[(12u + i) * us] = (int16_t)(2 * r[2][i]);
            }
        }
}

/* the 16 input pointers of tile (tr, tx): row r, column q -> pixel (2 ty - 1 + r, 2 tx - 1 + q)
 * of image tr / tph, or j->zero outside it */
static void eq_hwino_tile_ptrs(const eq_hwino_t *j, uint32_t tr, uint32_t tx, const uint8_t *p[16])
{
    const uint32_t b = tr / j->tph, ty = tr % j->tph;
    const uint8_t *img = j->x + (size_t)b * j->h * j->w * j->c;
    uint32_t r, q;
    for (r = 0; r < 4u; ++r) {
        const int32_t iy = 2 * (int32_t)ty - 1 + (int32_t)r;
        for (q = 0; q < 4u; ++q) {
            const int32_t ix = 2 * (int32_t)tx - 1 + (int32_t)q;
            p[r * 4u + q] = iy < 0 || iy >= (int32_t)j->h || ix < 0 || ix >= (int32_t)j->w
                                ? j->zero
                                : img + ((size_t)(uint32_t)iy * j->w + (uint32_t)ix) * j->c;
        }
    }
}

size_t eq_hwino_row_pixel(const eq_hwino_t *j, uint32_t tr, uint32_t *rows)
{
    const uint32_t b = tr / j->tph, ty = tr % j->tph;
    *rows = j->h - 2u * ty >= 2u ? 2u : 1u;
    return ((size_t)b * j->h + 2u * ty) * j->w;
}

/* ---- portable band: loops written so the compiler vectorises them (restrict, unit strides) -- */
/* d (16, cs) int16 rows of one tile's pixels (pixel row * 4 + col) -> o[pos * vs + ch]: row k
 * of B^T d is ra + s * rb (k = 0: d0 - d2, 1: d1 + d2, 2: d2 - d1, 3: d1 - d3), then d B */
static void eq_pw_transform_row(const int16_t *restrict ra, const int16_t *restrict rb, int32_t s,
                                size_t cs, int16_t *restrict o, size_t vs)
{
    size_t ch;
    for (ch = 0; ch < cs; ++ch) {
        const int32_t t0 = ra[ch] + s * rb[ch], t1 = ra[cs + ch] + s * rb[cs + ch];
        const int32_t t2 = ra[2u * cs + ch] + s * rb[2u * cs + ch];
        const int32_t t3 = ra[3u * cs + ch] + s * rb[3u * cs + ch];
        o[ch] = (int16_t)(t0 - t2);
        o[vs + ch] = (int16_t)(t1 + t2);
        o[2u * vs + ch] = (int16_t)(t2 - t1);
        o[3u * vs + ch] = (int16_t)(t1 - t3);
    }
}

static void eq_pw_transform(const int16_t *d, size_t cs, int16_t *o, size_t vs)
{
    eq_pw_transform_row(d, d + 8u * cs, -1, cs, o, vs);
    eq_pw_transform_row(d + 4u * cs, d + 8u * cs, 1, cs, o + 4u * vs, vs);
    eq_pw_transform_row(d + 8u * cs, d + 4u * cs, -1, cs, o + 8u * vs, vs);
    eq_pw_transform_row(d + 4u * cs, d + 12u * cs, -1, cs, o + 12u * vs, vs);
}

static void eq_pw_in(const eq_hwino_t *j, const uint8_t *const *p, int16_t *o, size_t vs)
{
    const uint32_t c = j->c, cs = j->cs;
    int16_t *d = j->d;
    uint32_t ch, k;
    for (k = 0; k < 16u; ++k) { /* d[row * 4 + col][ch], pad channels 0 */
        const uint8_t *restrict a = p[k];
        int16_t *restrict dk = d + (size_t)k * cs;
        for (ch = 0; ch < c; ++ch) dk[ch] = a[ch];
        for (; ch < cs; ++ch) dk[ch] = 0;
    }
    eq_pw_transform(d, cs, o, vs);
}

/* o[0..np) += a0 * u[2 n] + a1 * u[2 n + 1] for 4 rows (a[r], a[r + 1]) at once */
static void eq_pw_rows4(uint32_t *restrict o0, uint32_t *restrict o1, uint32_t *restrict o2,
                        uint32_t *restrict o3, const int16_t *restrict u, const int32_t *a,
                        uint32_t np)
{
    const int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3], a20 = a[4], a21 = a[5];
    const int32_t a30 = a[6], a31 = a[7];
    size_t n;
    for (n = 0; n < np; ++n) {
        const int32_t u0 = u[2u * n], u1 = u[2u * n + 1u];
        o0[n] += (uint32_t)(a00 * u0 + a01 * u1);
        o1[n] += (uint32_t)(a10 * u0 + a11 * u1);
        o2[n] += (uint32_t)(a20 * u0 + a21 * u1);
        o3[n] += (uint32_t)(a30 * u0 + a31 * u1);
    }
}

static void eq_pw_gemm(const eq_hwino_t *j, uint32_t t)
{
    const uint32_t cs = j->cs, np = j->np, cp2 = j->cp2;
    uint32_t pos, i, q, r;
    size_t n;
    for (pos = 0; pos < 16u; ++pos) {
        const int16_t *v = j->v + (size_t)pos * j->tmax * cs;
        const int16_t *u = j->u + (size_t)pos * cp2 * np * 2u;
        uint32_t *m = (uint32_t *)(void *)(j->m + (size_t)pos * j->tmax * np);
        for (i = 0; i < t; i += 4u) {
            const uint32_t mr = t - i < 4u ? t - i : 4u;
            uint32_t *o[4];
            for (r = 0; r < 4u; ++r) o[r] = m + (size_t)(i + (r < mr ? r : 0u)) * np;
            for (n = 0; n < mr * np; ++n) o[0][n] = 0;
            for (q = 0; q < cp2; ++q) {
                int32_t a[8];
                for (r = 0; r < 4u; ++r) { /* rows past t: a zero row into row i (adds 0) */
                    const int16_t *vr = v + (size_t)(i + r) * cs + 2u * q;
                    a[2u * r] = r < mr ? vr[0] : 0;
                    a[2u * r + 1u] = r < mr ? vr[1] : 0;
                }
                if (mr == 4u) {
                    eq_pw_rows4(o[0], o[1], o[2], o[3], u + (size_t)q * np * 2u, a, np);
                } else {
                    for (r = 0; r < mr; ++r) {
                        const int16_t *uq = u + (size_t)q * np * 2u;
                        for (n = 0; n < np; ++n)
                            o[r][n] += (uint32_t)(a[2u * r] * uq[2u * n] + a[2u * r + 1u] * uq[2u * n + 1u]);
                    }
                }
            }
        }
    }
}

/* the output transform of one tile for channels 0..n: m[pos * ms + c] -> y0..y3 (pixels
 * (0, 0), (0, 1), (1, 0), (1, 1) of the tile), exact after the shift (eq_wino_i8.h) */
static void eq_pw_tile_out(const uint32_t *restrict m, size_t ms, uint32_t n, int32_t *restrict y0,
                           int32_t *restrict y1, int32_t *restrict y2, int32_t *restrict y3)
{
    size_t c;
    for (c = 0; c < n; ++c) {
        uint32_t s0[4], s1[4], k;
        for (k = 0; k < 4u; ++k) {
            s0[k] = m[k * ms + c] + m[(4u + k) * ms + c] + m[(8u + k) * ms + c];
            s1[k] = m[(4u + k) * ms + c] - m[(8u + k) * ms + c] - m[(12u + k) * ms + c];
        }
        y0[c] = (int32_t)(s0[0] + s0[1] + s0[2]) >> 2;
        y1[c] = (int32_t)(s0[1] - s0[2] - s0[3]) >> 2;
        y2[c] = (int32_t)(s1[0] + s1[1] + s1[2]) >> 2;
        y3[c] = (int32_t)(s1[1] - s1[2] - s1[3]) >> 2;
    }
}

static void eq_pw_out(const int32_t *m, size_t ms, uint32_t n, int32_t *y0, int32_t *y1,
                      int32_t *y2, int32_t *y3)
{
    eq_pw_tile_out((const uint32_t *)(const void *)m, ms, n, y0, y1, y2, y3);
}

void eq_hwino_band_run(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc,
                       eq_hwino_in_fn in, eq_hwino_gemm_fn gemm, eq_hwino_out_fn out)
{
    const uint32_t n = j->n, np = j->np, w = j->w, tpw = j->tpw, cs = j->cs;
    const size_t vs = (size_t)j->tmax * cs, ms = (size_t)j->tmax * np;
    int32_t *spare = (int32_t *)(void *)j->d; /* 3 np int32: outputs past the image's edge */
    uint32_t rows, r, tx;
    const size_t base = eq_hwino_row_pixel(j, tr0, &rows);
    for (r = 0; r < ntr; ++r)
        for (tx = 0; tx < tpw; ++tx) {
            const uint8_t *p[16];
            eq_hwino_tile_ptrs(j, tr0 + r, tx, p);
            in(j, p, j->v + ((size_t)r * tpw + tx) * cs, vs);
        }
    gemm(j, ntr * tpw);
    for (r = 0; r < ntr; ++r) {
        const size_t px = eq_hwino_row_pixel(j, tr0 + r, &rows) - base;
        for (tx = 0; tx < tpw; ++tx) {
            int32_t *o = acc + (px + 2u * tx) * n;
            const int two = 2u * tx + 1u < w;
            out(j->m + ((size_t)r * tpw + tx) * np, ms, n, o, two ? o + n : spare,
                rows == 2u ? o + (size_t)w * n : spare + np,
                two && rows == 2u ? o + (size_t)(w + 1u) * n : spare + 2u * np);
        }
    }
}

void eq_hwino_band_portable(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc)
{
    eq_hwino_band_run(j, tr0, ntr, acc, eq_pw_in, eq_pw_gemm, eq_pw_out);
}

eq_hwino_band_fn eq_hwino_band_for(int32_t u8_kind)
{
#ifdef EQ_HOST_HAVE_AVX2
    if (u8_kind == 2) return eq_hwino_band_avx512;
    if (u8_kind == 1) return eq_hwino_band_avx2;
#endif
    (void)u8_kind;
    return eq_hwino_band_portable;
}

/* ---- public entry (tests, benchmarks) ------------------------------------------------------ */
static eq_status_t eq_hwino_setup(uint32_t nimg, uint32_t h, uint32_t w, uint32_t c, uint32_t n,
                                  eq_hwino_t *j, uint32_t *ntr, size_t *need)
{
    size_t ub, bb;
    if (!eq_hwino_geometry(j, h, w, c, n) || (uint64_t)nimg * h * w * (c > n ? c : n) > 0x7fffffffu)
        return EQ_ERR_TOO_LARGE;
    *ntr = eq_hwino_band_rows(j);
    if ((uint64_t)*ntr > (uint64_t)nimg * j->tph) *ntr = nimg * j->tph;
    if (!*ntr) *ntr = 1u;
    ub = eq_hwino_u_bytes(j);
    bb = eq_hwino_band_bytes(j, *ntr);
    if (!bb || ub + bb + 64u > EQ_HWINO_MAX_BYTES) return EQ_ERR_TOO_LARGE;
    *need = eq_r64(ub) + bb + 64u;
    return EQ_OK;
}

uint32_t eq_host_conv3x3_wino_i8_scratch(uint32_t nimg, uint32_t h, uint32_t w, uint32_t c,
                                         uint32_t n)
{
    eq_hwino_t j;
    uint32_t ntr;
    size_t need;
    if (!nimg || eq_hwino_setup(nimg, h, w, c, n, &j, &ntr, &need) != EQ_OK) return 0u;
    return (uint32_t)need;
}

eq_status_t eq_host_conv3x3_wino_i8(const uint8_t *x, const int8_t *wt, uint32_t nimg, uint32_t h,
                                    uint32_t w, uint32_t c, uint32_t n, void *scratch,
                                    uint32_t scratch_size, int32_t *out)
{
    eq_hwino_t j;
    eq_hwino_band_fn band;
    uint32_t ntr, tr, total;
    size_t need;
    uint8_t *s;
    eq_status_t st;
    if (!nimg) return EQ_OK;
    if (!x || !wt || !scratch || !out) return EQ_ERR_ARG;
    st = eq_hwino_setup(nimg, h, w, c, n, &j, &ntr, &need);
    if (st != EQ_OK) return st;
    if (scratch_size < need) return EQ_ERR_ARENA;
    s = (uint8_t *)(((uintptr_t)scratch + 63u) & ~(uintptr_t)63u);
    j.x = x;
    eq_hwino_weights(&j, wt, (int16_t *)(void *)s);
    j.u = (const int16_t *)(const void *)s;
    eq_hwino_buffers(&j, ntr, s + eq_r64(eq_hwino_u_bytes(&j)));
    band = eq_hwino_band_for(eq_host_u8_kind());
    total = nimg * j.tph;
    for (tr = 0; tr < total; tr += ntr) {
        const uint32_t k = total - tr < ntr ? total - tr : ntr;
        uint32_t rows;
        band(&j, tr, k, out + eq_hwino_row_pixel(&j, tr, &rows) * n);
    }
    return EQ_OK;
}

/* ---- the executor's shape rule (AUTO mode) -------------------------------------------------
 * Measured on an AMD EPYC (Zen 4, AVX-512 VNNI; 2 cores shared with other jobs, so times are the
 * thread's CPU time, medians of 9 interleaved rounds), one-layer models (the conv with a SIGN
 * stage) through Model.predict on one thread, 2..64 images a batch; direct time / Winograd time:
 *  - AVX-512 (kind 2): the direct path's vpdpbusd does 64 u8 x s8 MACs an instruction, the
 *    Winograd GEMMs' vpdpwssd 32 int16 MACs (the transformed values need 11 bits, |U| <= 1152,
 *    V in -510..1020), so 2.25x fewer products is at most 1.125x fewer GEMM instructions, and the
 *    transforms take that back: 0.89-1.10x over 8x8..32x32 layers with 4..256 channels, no
 *    region consistently above 1.05x (16x16x64 -> 64: 1.00x, 8x8x32 -> 32: 1.00x, 56x56x64 ->
 *    64: 1.05x; 3x3 images 0.80x). Never taken.
 *  - AVX2 (kind 1): both paths run vpmaddwd (16 MACs), so Winograd's 2.25x fewer products show:
 *    1.07-1.2x from 16 input channels on (c = 16, n = 8..64, 8x8 and 16x16), 1.6-2.4x on 32..64
 *    channels (16x16x64 -> 64: 2.2x, 56x56x64 -> 64: 2.4x); 8 input channels from 32 outputs on
 *    (n = 8: 0.93-0.95x, 16: 0.98-1.0x, 32: 1.04-1.05x, 64: 1.09-1.10x); 4 channels 0.85-1.0x.
 *  - portable (kind 0): the GEMMs run on 16-column panels, so 8 outputs lose (0.66-0.88x) and
 *    16 or more win (n = 16: 1.10-1.22x, 24: 0.98-1.23x, 32: 1.20-1.28x, 48: 1.29-1.36x, with
 *    3..32 input channels); tiles computing many outputs past the edge lose (3x3 images: 16
 *    outputs for 9, 0.82x; 5x5: 36 for 25, 0.96x; 7x7: 64 for 49, 1.06x; 2x2 and 4x4 1.3x).
 */
int32_t eq_host_wino_i8_worth(int32_t u8_kind, uint32_t c, uint32_t n, uint32_t h, uint32_t w)
{
    const uint64_t computed = 4ull * ((h + 1u) / 2u) * ((w + 1u) / 2u); /* outputs the tiles make */
    if (!c || !n || !h || !w || c > EQ_HWINO_MAX_C) return 0;
    if (u8_kind == 2) return 0;
    if (u8_kind == 1) return c >= 16u || (c >= 8u && n >= 32u);
    return n >= 16u && 3u * computed <= 4ull * h * w;
}
