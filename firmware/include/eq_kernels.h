/* edgeq kernels: portable C99 integer kernels (plus one float Winograd kernel).
 *
 * Naming: eq_<op>[_<variant>]_<operand types>. No malloc/printf/exit; scratch comes from the
 * caller. Layouts and bit conventions: docs/blob-format.md (+1 = bit 1, LSB-first uint32 words,
 * rows padded to whole words with zero bits). Each kernel has a numpy reference of the same name
 * in edgeq/ref.py.
 */
#ifndef EQ_KERNELS_H
#define EQ_KERNELS_H

#include <stdint.h>
#include "eq_spec.h"

typedef int32_t eq_status_t;

#define EQ_WORDS(bits) (((uint32_t)(bits) + 31u) / 32u)

/* ---- convolution, one output row at a time (used by the blob runtime) ---------------------- */
typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t kh, kw, stride, pad;
} eq_conv_shape_t;

typedef struct {
    uint8_t enc;             /* EQ_ENC_B1, EQ_ENC_TERN, EQ_ENC_TERN_SPARSE, EQ_ENC_KBIT, EQ_ENC_I8 */
    const void *data;        /* weight tensor data, 4-byte aligned, layout per docs/blob-format.md */
    const int32_t *lut;      /* KBIT only: (lut_rows, lut_cols) products lut[wcode][acode] */
    uint16_t lut_rows, lut_cols;
} eq_weights_t;

/* acc (out_w, out_c) int32 = accumulators of output row oy.
 * in_enc EQ_ENC_B1: in is (in_h, in_w, EQ_WORDS(in_c)) uint32; EQ_ENC_U8: (in_h, in_w, in_c) uint8.
 * Taps outside the input contribute 0. The caller (runtime) has validated shapes and weights. */
eq_status_t eq_conv2d_row(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                          const eq_weights_t *w, uint16_t oy, int32_t *acc);

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

#endif /* EQ_KERNELS_H */
