/* Whole-layer fast paths for CONV layers, tried by the runtime before its row loop.
 *
 * eq_conv_fast() returns EQ_OK when one of the fast paths computed the layer's whole output
 * activation (bit-exact with the row loop plus the output stage), EQ_ERR_UNSUPPORTED when none
 * applies (the runtime then runs eq_conv2d_row + the stage), or another status on error.
 * eq_conv_fast_scratch() is the scratch (bytes) the fast path for this layer needs; the loader
 * adds it to the arena, so eq_conv_fast may rely on job->scratch_bytes >= that value.
 * Each fast path lives in its own file (eq_conv_first.c: few-channel first layers fused with
 * their SIGN stage; eq_conv_wino_i8.c: integer Winograd F(2x2,3x3)); this dispatcher only
 * chooses between them. */
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

/* Integer Winograd F(2x2, 3x3) (eq_conv_wino_i8.c): U8 activations x I8 weights, 3x3 stride 1
 * pad 1, SIGN / MULTI / AFFINE stage. _scratch is 0 where the path does not apply (shape, types,
 * or the shape rule says the direct loop takes fewer instructions), else the bytes it needs. */
uint32_t eq_conv_wino_i8_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                                 uint8_t out_stage);
eq_status_t eq_conv_wino_i8(const eq_conv_job_t *job);

#endif /* EQ_CONV_FAST_H */
