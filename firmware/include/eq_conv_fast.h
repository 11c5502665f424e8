/* Whole-layer fast paths for CONV layers, tried by the runtime before its row loop.
 *
 * eq_conv_fast() returns EQ_OK when one of the fast paths computed the layer's whole output
 * activation (bit-exact with the row loop plus the output stage), EQ_ERR_UNSUPPORTED when none
 * applies (the runtime then runs eq_conv2d_row + the stage), or another status on error.
 * eq_conv_fast_scratch() is the scratch (bytes) the fast path for this layer needs; the loader
 * adds it to the arena, so eq_conv_fast may rely on job->scratch_bytes >= that value.
 * Each fast path lives in its own file (eq_conv_first.c: few-channel first layers fused with
 * their output stage; eq_conv_b1_pair.c: B1 x B1 3x3 on <= 16 channels fused with SIGN/AFFINE;
 * eq_conv_wino_i8.c: integer Winograd F(2x2,3x3)); this dispatcher only chooses between them. */
#ifndef EQ_CONV_FAST_H
#define EQ_CONV_FAST_H

#include "eq_kernels.h"

typedef struct {
    const eq_conv_shape_t *s;
    uint8_t in_enc;          /* EQ_ENC_B1 or EQ_ENC_U8 */
    const void *in;          /* activation in the runtime layout */
    const eq_weights_t *w;
    uint8_t out_stage;       /* EQ_OUT_* */
    uint8_t out_bits;        /* MULTI / REQUANT */
    uint8_t shift;           /* AFFINE / REQUANT */
    uint8_t lflags;          /* the layer record's flags byte (0 today) */
    const void *thr;         /* thresholds (SIGN/MULTI) or mul (AFFINE/REQUANT) */
    const void *aux;         /* flip bytes (SIGN/MULTI) or add (AFFINE/REQUANT) */
    const void *extra;       /* an extra per-layer tensor for a fast path (NULL today) */
    void *out;               /* the layer's output activation */
    void *scratch;           /* 8-byte aligned */
    uint32_t scratch_bytes;
} eq_conv_job_t;

eq_status_t eq_conv_fast(const eq_conv_job_t *job);
uint32_t eq_conv_fast_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                              uint8_t out_stage, uint8_t lflags);

/* eq_conv_first.c: layers on 1..4 input channels with kh*kw*in_c <= 127 taps, B1, TERN or
 * TERN_SPARSE weights; B1 input with SIGN output (bit-sliced across the output channels,
 * thresholds folded per border class) or U8 input with SIGN / MULTI output (byte masks and
 * sums of absolute differences, USADA8 on DSP cores). Same contract as eq_conv_fast; the scratch
 * is 0 where the path does not apply. The loader reserves it only where it fits in the layer's
 * accumulator row (eq_conv_fast_scratch), so the path never grows the arena; at run time
 * eq_conv_fast tries the path on every layer of 1..4 input channels and it runs wherever its
 * scratch fits in the job's (EQ_ERR_UNSUPPORTED otherwise). */
eq_status_t eq_conv_first(const eq_conv_job_t *job);
uint32_t eq_conv_first_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                               uint8_t out_stage, uint8_t lflags);

/* eq_conv_b1_pair.c: B1 x B1 3x3 layers on 1..16 input channels, pad <= 1, any stride, SIGN or
 * AFFINE output (two output pixels a word, the stage folded in per border class). The scratch
 * (pair rows) is 0 where the path does not apply, and never more than the layer's own
 * accumulator row (out_w * out_c * 4), so the arena does not grow. */
eq_status_t eq_conv_b1_pair(const eq_conv_job_t *job);
uint32_t eq_conv_b1_pair_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                                 uint8_t out_stage, uint8_t lflags);

/* Integer Winograd F(2x2, 3x3) (eq_conv_wino_i8.c): U8 activations x I8 weights, 3x3 stride 1
 * pad 1, SIGN / MULTI / AFFINE stage. _scratch is 0 where the path does not apply (shape, types,
 * or the shape rule says the direct loop takes fewer instructions), else the bytes it needs. */
uint32_t eq_conv_wino_i8_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                                 uint8_t out_stage);
eq_status_t eq_conv_wino_i8(const eq_conv_job_t *job);

/* I8 weights on B1 activations as 8 bit planes through the B1 x B1 row kernel (eq_conv_i8_b1.c):
 * any kernel, stride and pad, SIGN / MULTI / AFFINE stage, at least 8 input channels and 16
 * output pixels. */
uint32_t eq_conv_i8_b1_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                               uint8_t out_stage);
eq_status_t eq_conv_i8_b1(const eq_conv_job_t *job);

/* F32 Winograd F(2x2, 3x3) (eq_conv_wino_f32.c): an F32 CONV layer flagged EQ_LFLAG_WINO_F23
 * (3x3, stride 1, pad 1, one group; B1 or U8 input; SIGN / MULTI / AFFINE stage), computed with
 * the blob's float32 Winograd semantics and fused with its F32 stage. Not an optional fast path:
 * the flag changes the rounding, so the runtime calls it for exactly the flagged layers.
 * _scratch: eq_rule_wino_f23_scratch bytes (0 if that reaches 2**31). */
uint32_t eq_conv_wino_f32_scratch(const eq_conv_shape_t *s);
eq_status_t eq_conv_wino_f32(const eq_conv_job_t *job);

/* both (eq_conv_wino_i8.c): what the dispatcher calls for I8 weights */
uint32_t eq_conv_fast_i8_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                                 uint8_t out_stage);
eq_status_t eq_conv_fast_i8(const eq_conv_job_t *job);

/* EQ_ERR_ARG unless the job's pointers are there, EQ_ERR_ARENA unless its scratch is 8-byte
 * aligned and holds need bytes, else EQ_OK */
eq_status_t eq_conv_fast_check(const eq_conv_job_t *job, uint32_t need);

/* the runtime's output stage (job->out_stage) on acc (n_pix, out_c), written from output pixel
 * `pix` on */
void eq_conv_fast_stage(const eq_conv_job_t *job, const int32_t *acc, uint32_t pix, uint32_t n_pix);

/* Depthwise layers (eq_conv_dw.c): groups = in_c = out_c, kernels up to 3x3, any stride and
 * padding, B1 / TERN weights, bit-sliced across the channels: B1 input with a SIGN stage, or U8
 * codes 0..3 with a SIGN or MULTI (1 or 3 thresholds) stage (other codes, or a ring of plane rows
 * that does not fit: EQ_ERR_UNSUPPORTED, the row loop runs). Same contract as eq_conv_fast;
 * job->scratch is used only within the layer's own accumulator row (out_w * out_c * 4 bytes), so
 * the arena does not change. */
int eq_conv_dw_applies(const eq_conv_shape_t *s, uint32_t groups, uint8_t in_enc, uint8_t w_enc,
                       uint8_t out_stage);
eq_status_t eq_conv_dw(const eq_conv_job_t *job, uint32_t groups);
/* codes a[0 .. nb) (nb <= 32) -> bit 0 / bit 1 of each as lanes of *p0 / *p1; returns the OR of
 * the codes (the caller checks they are 0..3) */
uint32_t eq_conv_dw_planes_u2(const uint8_t *a, uint32_t nb, uint32_t *p0, uint32_t *p1);

#endif /* EQ_CONV_FAST_H */
