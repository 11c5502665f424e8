/* Integer Winograd F(2x2, 3x3) on the host (host only; the firmware's own is
 * firmware/kernels/eq_conv_wino_i8.c): U8 activations x I8 weights, 3x3, stride 1, pad 1, on the
 * host executor's layout (images stacked, each (h, w, c) uint8, channels innermost).
 *
 * Exact integer form (the firmware's): with the weight transform scaled by 2 in each dimension,
 *   Gs = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]],  B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]],
 *   A^T = [[1,1,1,0],[0,1,-1,-1]],
 * U = Gs g Gs^T and V = B^T d B are integers, |U| <= 9 * 128 = 1152 and V in -510..1020 (int16;
 * neither fits 8 bits, so the elementwise products are int16 x int16: vpmaddwd on AVX2,
 * vpdpwssd on AVX-512 VNNI), and A^T (sum_c U (.) V) A = 4 acc exactly. For c <= EQ_HWINO_MAX_C
 * every elementwise sum |M| <= c * 1152 * 1020 and 4 |acc| <= 4 * 9 * 128 * 255 * c fit int32;
 * the output transform's partial sums wrap modulo 2^32 and the final value, which fits, is
 * exact; it is shifted back by 2. So the result is the direct accumulator bit for bit.
 *
 * Work per band of whole tile rows (a tile row: 2 output rows of one image; bands may cross
 * images): input transform into v (16, T, cs) int16 (T tiles of the band, cs = c rounded up to
 * 32, pad channels 0), 16 GEMMs m[pos] (T, np) = v[pos] (T, cp) x u[pos] (cp, np) on int16
 * pairs, output transform into acc (the band's output pixels, n) int32, pixel-major.
 * Each variant (portable C, AVX2, AVX-512) supplies its own band function; the transforms'
 * layout and arithmetic are the same in all of them.
 */
#ifndef EQ_WINO_I8_H
#define EQ_WINO_I8_H

#include <stddef.h>
#include <stdint.h>

#include "eq_host.h"

typedef struct {
    const uint8_t *x;     /* images (nimg, h, w, c) uint8 */
    uint32_t h, w, c, n;
    uint32_t cs;          /* v row stride: c rounded up to 32 */
    uint32_t cp2;         /* input-channel pairs: (c + 1) / 2 */
    uint32_t np;          /* n rounded up to 16 */
    uint32_t tph, tpw;    /* tile rows an image, tiles a tile row */
    const int16_t *u;     /* (16, cp2, np, 2) transformed weights (eq_hwino_weights) */
    int16_t *v;           /* (16, T, cs) for the largest band */
    int32_t *m;           /* (16, T, np) */
    const uint8_t *zero;  /* cs zero bytes (taps outside the image) */
    int16_t *d;           /* the portable band's tile buffer; the spare output (3 np int32) */
    uint32_t tmax;        /* T of the largest band (the v / m strides) */
} eq_hwino_t;

/* tile rows [tr0, tr0 + ntr) of the stacked images (tile row tr: image tr / tph, ty = tr % tph)
 * -> acc (output pixels of those rows, n) int32, ntr * tpw <= j->tmax */
typedef void (*eq_hwino_band_fn)(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc);

void eq_hwino_band_portable(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc);
#if defined(EQ_HOST_HAVE_AVX2)
void eq_hwino_band_avx2(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc);
void eq_hwino_band_avx512(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc);
#endif

/* shared helpers (host/eq_wino_i8.c) */
/* first output pixel (stacked images) of tile row tr, and its output rows (1 or 2) */
size_t eq_hwino_row_pixel(const eq_hwino_t *j, uint32_t tr, uint32_t *rows);
/* fills j's geometry (not its buffers); 0 if the shape does not fit (c, sizes) */
int eq_hwino_geometry(eq_hwino_t *j, uint32_t h, uint32_t w, uint32_t c, uint32_t n);
/* bytes of u; of the band buffers (v, m, zero) for bands of ntr tile rows; 0 on overflow */
size_t eq_hwino_u_bytes(const eq_hwino_t *j);
size_t eq_hwino_band_bytes(const eq_hwino_t *j, uint32_t ntr);
/* tile rows a band (>= 1): about EQ_HWINO_BAND_BYTES of v and m together */
uint32_t eq_hwino_band_rows(const eq_hwino_t *j);
/* wt (n, 3, 3, c) int8 -> u (16, cp2, np, 2) int16, pad entries 0 */
void eq_hwino_weights(const eq_hwino_t *j, const int8_t *wt, int16_t *u);
/* lays v, m and zero out in buf (eq_hwino_band_bytes(j, ntr) bytes, 64-byte aligned) */
void eq_hwino_buffers(eq_hwino_t *j, uint32_t ntr, void *buf);
/* A band is three passes, each variant supplying the per-tile / per-position work:
 * in(j, p, o, vs): one tile's 16 input pixels p (pixel row * 4 + col; j->zero outside the image)
 *   -> o[pos * vs + ch] for ch < cs (pad channels 0);
 * gemm(j, t): m[pos] (t, np) = v[pos] (t, cp) x u[pos] for the 16 positions;
 * out(m, ms, n, y0..y3): one tile's m[pos * ms + c] -> the 2 x 2 output pixels' n accumulators
 *   (pixels outside the image point at spare memory). */
typedef void (*eq_hwino_in_fn)(const eq_hwino_t *j, const uint8_t *const *p, int16_t *o, size_t vs);
typedef void (*eq_hwino_gemm_fn)(const eq_hwino_t *j, uint32_t t);
typedef void (*eq_hwino_out_fn)(const int32_t *m, size_t ms, uint32_t n, int32_t *y0, int32_t *y1,
                                int32_t *y2, int32_t *y3);
void eq_hwino_band_run(const eq_hwino_t *j, uint32_t tr0, uint32_t ntr, int32_t *acc,
                       eq_hwino_in_fn in, eq_hwino_gemm_fn gemm, eq_hwino_out_fn out);
/* the band function of executor GEMM kind (eq_host_u8_kind: 0 portable, 1 AVX2, 2 AVX-512) */
eq_hwino_band_fn eq_hwino_band_for(int32_t u8_kind);

/* the input transform V = B^T d B on vectors of int16 lanes, shared by the SIMD bands: LOAD(i)
 * gives input pixel i = row * 4 + col of the tile, STORE(pos, x) takes V[pos]; VEC, ADD and SUB
 * name the vector type and its lane-wise int16 add / subtract */
#define EQ_W_INPUT(LOAD, STORE)                                                                   \
    do {                                                                                          \
        VEC d0, d1, d2, d3;                                                                       \
        VEC b[4][4];                                                                              \
        uint32_t k_;                                                                              \
        for (k_ = 0; k_ < 4u; ++k_) {                                                             \
            d0 = LOAD(4u * k_);                                                                   \
            d1 = LOAD(4u * k_ + 1u);                                                              \
            d2 = LOAD(4u * k_ + 2u);                                                              \
            d3 = LOAD(4u * k_ + 3u);                                                              \
            b[k_][0] = SUB(d0, d2);                                                               \
            b[k_][1] = ADD(d1, d2);                                                               \
            b[k_][2] = SUB(d2, d1);                                                               \
            b[k_][3] = SUB(d1, d3);                                                               \
        }                                                                                         \
        for (k_ = 0; k_ < 4u; ++k_) {                                                             \
            STORE(0u + k_, SUB(b[0][k_], b[2][k_]));                                              \
            STORE(4u + k_, ADD(b[1][k_], b[2][k_]));                                              \
            STORE(8u + k_, SUB(b[2][k_], b[1][k_]));                                              \
            STORE(12u + k_, SUB(b[1][k_], b[3][k_]));                                             \
        }                                                                                         \
    } while (0)

#endif /* EQ_WINO_I8_H */
