/* edgeq kernels: portable C99 integer kernels (plus one float Winograd kernel).
 *
 * Naming: eq_<op>[_<variant>]_<operand types>. No malloc/printf/exit; scratch comes from the
 * caller. Layouts and bit conventions: docs/blob-format.md (+1 = bit 1, LSB-first uint32 words,
 * rows padded to whole words with zero bits). Each kernel has a numpy reference of the same name
 * in edgeq/reference/ref.py.
 */
#ifndef EQ_KERNELS_H
#define EQ_KERNELS_H

#include <stdint.h>
#include "eq_spec.h"

typedef int32_t eq_status_t;

#define EQ_WORDS(bits) (((uint32_t)(bits) + 31u) / 32u)

/* ---- convolution, one output row at a time (used by the blob runtime) ---------------------- */
/* stride and pad are the vertical stride and padding; stride_w and pad_w are stored as in the
 * blob's layer record: stride_w 0 = the same as stride, else the horizontal stride; pad_w 0 = the
 * same as pad, else the horizontal padding + 1. A zero-filled struct is a square layer. Use
 * eq_shape_stride_w / eq_shape_pad_w to read the horizontal values. */
typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t kh, kw, stride, pad;
    uint8_t stride_w, pad_w;
} eq_conv_shape_t;

static inline uint32_t eq_shape_stride_w(const eq_conv_shape_t *s)
{
    return s->stride_w ? s->stride_w : s->stride;
}
static inline uint32_t eq_shape_pad_w(const eq_conv_shape_t *s)
{
    return s->pad_w ? s->pad_w - 1u : s->pad;
}

typedef struct {
    uint8_t enc;             /* EQ_ENC_B1, EQ_ENC_TERN, EQ_ENC_TERN_SPARSE, EQ_ENC_KBIT, EQ_ENC_I8,
                                EQ_ENC_I16 */
    const void *data;        /* weight tensor data, 4-byte aligned, layout per docs/blob-format.md */
    const int32_t *lut;      /* KBIT only: (lut_rows, lut_cols) products lut[wcode][acode]; the
                                codes are packed at the smallest of 1, 2, 4, 8 bits a code with
                                2**bits >= lut_rows (blob: lut_rows = 2**wbits) */
    uint16_t lut_rows, lut_cols;
} eq_weights_t;

/* acc (out_w, out_c) int32 = accumulators of output row oy.
 * in_enc EQ_ENC_B1: in is (in_h, in_w, EQ_WORDS(in_c)) uint32; EQ_ENC_U8: (in_h, in_w, in_c) uint8.
 * Taps outside the input contribute 0. The caller (runtime) has validated shapes and weights. */
eq_status_t eq_conv2d_row(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                          const eq_weights_t *w, uint16_t oy, int32_t *acc);
/* Grouped convolution (groups g >= 1, in_c % g == 0, out_c % g == 0): weights (N, kh, kw, C/g)
 * in the layout of w->enc with C replaced by C/g; output channel n reads input channels
 * [gi * C/g, (gi + 1) * C/g), gi = n / (N/g). g = 1 is eq_conv2d_row (F32: eq_conv2d_row_f32);
 * other g: a direct tap-by-tap loop over every encoding (acc is float32 for F32 weights, summed
 * in the (ky, kx, c) order of eq_conv2d_row_f32). */
eq_status_t eq_conv2d_row_grouped(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc,
                                  const void *in, const eq_weights_t *w, uint16_t oy, void *acc);
/* 1x1 B1 x B1 conv, in_c <= 32 (one word a pixel), no padding, one group: rows [oy0, oy1),
 * channels [n0, n0 + nch): out[((oy - oy0) * out_w + ox) * ostride + j] = lut ? lut[j * (in_c + 1)
 * + pc] : in_c - 2 * pc, pc = popcount of the in_c bits of x ^ w[n0 + j] (eq_conv1x1_b1b1.c) */
void eq_conv1x1_b1b1(const eq_conv_shape_t *s, const uint32_t *in, const uint32_t *wt, uint32_t n0,
                     uint32_t nch, const int32_t *lut, uint32_t oy0, uint32_t oy1, int32_t *out,
                     uint32_t ostride);
/* F32 weights (N, kh, kw, in_c) float32: acc (out_w, out_c) float32, summed from +0.0f over the
 * in-bounds taps in (ky, kx, c) order as acc = acc + (a * w), each operation rounded to float32
 * (a = +-1 for B1, the code for U8). Build with -ffp-contract=off where FMA exists. */
eq_status_t eq_conv2d_row_f32(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                              const float *w, uint16_t oy, float *acc);

/* ---- output stages: acc (n_pix, c) int32 -> activation ---------------------------------- */
/* out (n_pix, EQ_WORDS(c)) uint32: bit = flip[n] ? acc <= thr[n] : acc >= thr[n]; pad bits 0 */
void eq_threshold_sign_b1(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                          const uint8_t *flip, uint32_t *out);
/* out (n_pix, c) uint8: code = #{i < n_thr : flip[n] ? acc <= thr[n*n_thr+i] : acc >= thr[n*n_thr+i]} */
void eq_threshold_multi_u8(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                           uint16_t n_thr, const uint8_t *flip, uint8_t *out);
/* out (n_pix, c) int32 = sat32(((int64)acc * mul[n] + add[n]) >> shift) */
void eq_affine_i32(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                   const int32_t *add, uint8_t shift, int32_t *out);

/* the same for accumulators with |acc| <= amax (the caller's bound): 32-bit arithmetic where
 * mul, add, shift and amax allow it (eq_affine_i32.c), exactly the same values */
void eq_affine_i32_bounded(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                           const int32_t *add, uint8_t shift, uint32_t amax, int32_t *out);

/* out (n_pix, c) uint8 = clamp(((int64)acc * mul[n] + add[n]) >> shift, 0, 2**out_bits - 1),
 * arithmetic (flooring) shift, out_bits 1..8 (REQUANT stage) */
void eq_requant_u8(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                   const int32_t *add, uint8_t shift, uint8_t out_bits, uint8_t *out);

/* F32-weight layers: acc (n_pix, c) float32; thresholds float32; AFFINE
 * out = sat32(floor(acc * mul[n] + add[n])), each operation rounded to float32 (no FMA) */
int32_t eq_floor_sat32_f32(float t);
void eq_threshold_sign_f32_b1(const float *acc, uint32_t n_pix, uint16_t c, const float *thr,
                              const uint8_t *flip, uint32_t *out);
void eq_threshold_multi_f32_u8(const float *acc, uint32_t n_pix, uint16_t c, const float *thr,
                               uint16_t n_thr, const uint8_t *flip, uint8_t *out);
void eq_affine_f32_i32(const float *acc, uint32_t n_pix, uint16_t c, const float *mul,
                       const float *add, int32_t *out);

/* ---- pooling (pad 0, out = (in - k) / stride + 1) ---------------------------------------- */
void eq_maxpool_b1(const uint32_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                   uint8_t stride, uint32_t *out);           /* OR of bits */
void eq_maxpool_u8(const uint8_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                   uint8_t stride, uint8_t *out);
void eq_maxpool_i32(const int32_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                    uint8_t stride, int32_t *out);

/* ---- input preparation: CHW uint8 pixels -> first activation (HWC) ----------------------- */
/* bit = pix >= thr; out (h, w, EQ_WORDS(c)) uint32 */
void eq_pack_threshold_chw_b1(const uint8_t *pix, uint16_t c, uint16_t h, uint16_t w,
                              uint8_t thr, uint32_t *out);
/* wire bits (CHW order, LSB-first bytes) -> out (h, w, EQ_WORDS(c)) uint32 */
void eq_unpack_wire_chw_b1(const uint8_t *bits, uint16_t c, uint16_t h, uint16_t w, uint32_t *out);
/* bits == 8: copy (transposed to HWC); else code = (pix * (2^bits - 1) + 127) / 255 */
void eq_quant_chw_u8(const uint8_t *pix, uint16_t c, uint16_t h, uint16_t w, uint8_t bits,
                     uint8_t *out);
/* host side of the wire: pack thresholded CHW pixels to LSB-first bytes */
void eq_pack_wire_chw_b1(const uint8_t *pix, uint32_t n, uint8_t thr, uint8_t *bits);

/* first index of the maximum; 0 when n == 0 */
uint32_t eq_argmax_i32(const int32_t *x, uint32_t n);


/* ---- helpers ------------------------------------------------------------------------------ */
/* Portable SWAR popcount (no libgcc call on hosts without POPCNT, a few cycles on Cortex-M). */
static inline uint32_t eq_popcount32(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0F0F0F0Fu;
    return (x * 0x01010101u) >> 24;
}

/* ---- standalone GEMM kernels (out is row-major (M, N); all return EQ_OK or EQ_ERR_ARG) ----- */
/* a (M, KW) uint32, b (N, KW) uint32 packed signs (KW = EQ_WORDS(k), pad bits 0 in both):
 * out[m, n] = sum_i a_i * b_i over k +-1 values = k - 2 * popcount(a ^ b). */
eq_status_t eq_gemm_xnor_b1b1(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                              uint32_t k, int32_t *out);

/* a (M, KW) packed signs; w (N, 2*KW) TERN rows: sign plane (KW words) then nonzero plane.
 * out[m, n] = sum_i a_i * w_i = popcount(nz) - 2 * popcount(nz & (a ^ sign)). */
eq_status_t eq_gemm_tern_b1(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                            uint32_t k, int32_t *out);

/* a (M, K) int8 (any value); w = TERN_SPARSE bytes as edgeq.format.bits.sparse_to_bytes writes them:
 * row_off uint32 [N+1] (nibbles) then the nibble stream (low nibble first), w_bytes in all.
 * out[m, n] = sum over the nonzeros of row n of +-a[m, p]. The stream is checked while decoding
 * (offsets monotone and inside w_bytes, no nibble 15, p < K): EQ_ERR_ARG if not.
 * scratch: eq_gemm_tern_sparse_i8_scratch_size(m, k) bytes, 4-byte aligned (0 bytes for M = 1):
 * holds a transposed (K, M) copy of a, the decoded row and an (M,) accumulator, so each nonzero
 * of a weight row is decoded once and applied to all M rows with a contiguous inner loop. */
uint32_t eq_gemm_tern_sparse_i8_scratch_size(uint32_t m, uint32_t k);
eq_status_t eq_gemm_tern_sparse_i8(const int8_t *a, const uint8_t *w, uint32_t w_bytes,
                                   uint32_t m, uint32_t n, uint32_t k, void *scratch,
                                   uint32_t scratch_size, int32_t *out);

/* Dense baseline: a (M, K) int8, w (N, K) int8 -> out[m, n] = sum_k a[m,k] * w[n,k] (exact). */
eq_status_t eq_gemm_i8(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n, uint32_t k,
                       int32_t *out);

/* Multiplier-free k-bit GEMM: a (M, K) uint8 codes < lut_cols, w (N, K) uint8 codes < lut_rows,
 * lut (lut_rows, lut_cols) int32: out[m, n] = sum_k lut[w[n,k]][a[m,k]]. Codes are checked
 * (EQ_ERR_ARG if one is out of range) before anything is written. */
eq_status_t eq_gemm_lut_u8(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                           uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                           uint32_t k, int32_t *out);
/* EQ_ERR_ARG unless every buffer is there, the LUT is 1..256 x 1..256 and every code indexes
 * it (shared by the eq_gemm_lut_u8 variants) */
eq_status_t eq_gemm_lut_u8_check(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                                 uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                                 uint32_t k, const int32_t *out);

/* Float GEMM: a (M, K) f32, b (K, N) f32 -> out (M, N) f32 = a @ b (row-major, contiguous). */
typedef eq_status_t (*eq_gemm_f32_fn)(const float *a, const float *b, uint32_t m, uint32_t n,
                                      uint32_t k, float *out);
eq_status_t eq_gemm_f32(const float *a, const float *b, uint32_t m, uint32_t n, uint32_t k,
                        float *out);

/* ---- 3x3 float convolution, stride 1, zero pad 1: x (C, H, W) f32, w (K, C, 3, 3) f32,
 * out (K, H, W) f32 = cross-correlation (as torch.nn.functional.conv2d). ------------------- */
/* Winograd F(2x2, 3x3); odd H/W handled (last tile partly outside). The elementwise stage is
 * 16 GEMMs (K x C) . (C x T), T = ceil(H/2) * ceil(W/2) tiles, done by `gemm`.
 * scratch: eq_conv3x3_wino_f23_f32_scratch_size(c, h, w, k) bytes, 4-byte aligned. */
uint32_t eq_conv3x3_wino_f23_f32_scratch_size(uint32_t c, uint32_t h, uint32_t w, uint32_t k);
/* the weight transform of one filter tap set g[9]: u[(r*4+s)*stride] = (G g G^T)[r][s]
 * (shared with the host SIMD variant) */
void eq_wino_weight_tile(const float *g, float *u, uint32_t stride);
eq_status_t eq_conv3x3_wino_f23_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                    uint32_t w, uint32_t k, void *scratch,
                                    uint32_t scratch_size, float *out);
eq_status_t eq_conv3x3_wino_f23_f32_ex(const float *x, const float *wt, uint32_t c, uint32_t h,
                                       uint32_t w, uint32_t k, void *scratch,
                                       uint32_t scratch_size, float *out, eq_gemm_f32_fn gemm);
/* Baseline: im2col (9C, H*W) then one GEMM (K x 9C) . (9C x H*W) through the same gemm. */
uint32_t eq_conv3x3_im2col_f32_scratch_size(uint32_t c, uint32_t h, uint32_t w);
eq_status_t eq_conv3x3_im2col_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                  uint32_t w, uint32_t k, void *scratch, uint32_t scratch_size,
                                  float *out);
eq_status_t eq_conv3x3_im2col_f32_ex(const float *x, const float *wt, uint32_t c, uint32_t h,
                                     uint32_t w, uint32_t k, void *scratch,
                                     uint32_t scratch_size, float *out, eq_gemm_f32_fn gemm);

/* ---- packing helpers (row-wise, each row padded to whole words with zero bits) ------------- */
/* x (rows, k) int8 -> out (rows, EQ_WORDS(k)) uint32, bit = x >= 0 (+1). */
void eq_pack_signs_i8_b1(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out);
/* w (rows, k) int8 in {-1,0,1} -> out (rows, 2*EQ_WORDS(k)) TERN planes (sign, then nonzero).
 * Returns EQ_ERR_ARG if a value is outside {-1, 0, 1}. */
eq_status_t eq_pack_tern_i8(const int8_t *w, uint32_t rows, uint32_t k, uint32_t *out);
/* Skip-zero encoding of w (rows, k) in {-1,0,1} into TERN_SPARSE bytes (same bytes as
 * edgeq.format.bits.sparse_to_bytes(*sparse_encode(w))). Pass out = NULL to only get *out_bytes.
 * EQ_ERR_ARG on a value outside {-1,0,1} or when cap is smaller than the encoding. */
eq_status_t eq_sparse_encode_i8(const int8_t *w, uint32_t rows, uint32_t k, uint8_t *out,
                                uint32_t cap, uint32_t *out_bytes);

#endif /* EQ_KERNELS_H */
