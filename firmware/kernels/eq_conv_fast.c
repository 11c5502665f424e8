/* Dispatcher of the whole-layer CONV fast paths (eq_conv_fast.h). */
#include <stddef.h>

#include "eq_conv_fast.h"

/* few-channel first layers (eq_conv_first.c): the loader reserves their scratch only where it
 * fits in the layer's own accumulator row (out_w * out_c int32), so the path never grows the
 * arena; at run time eq_conv_first takes any layer whose scratch fits in the job's (the arena's
 * accumulator row: the largest over the model's layers) and says UNSUPPORTED otherwise */
static uint32_t eq_first_need(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                              uint8_t out_stage, uint8_t lflags)
{
    const uint32_t n = s->in_c <= 4u ? eq_conv_first_scratch(s, in_enc, w_enc, out_stage, lflags) : 0u;
    return (uint64_t)n <= (uint64_t)s->out_w * s->out_c * 4u ? n : 0u;
}

/* B1 x B1 3x3 on <= 16 channels (eq_conv_b1_pair.c), except the SIGN layers on <= 4 channels
 * (the first-layer path's, or the row loop's where that one does not fit); its scratch is never
 * more than the layer's accumulator row */
static uint32_t eq_b1_pair_need(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t out_stage,
                                uint8_t lflags)
{
    if (s->in_c <= 4u && out_stage == EQ_OUT_SIGN) return 0u;
    return eq_conv_b1_pair_scratch(s, in_enc, EQ_ENC_B1, out_stage, lflags);
}

eq_status_t eq_conv_fast(const eq_conv_job_t *job)
{
    eq_status_t st;
    if (job && job->s && job->w && job->s->in_c <= 4u) {
        st = eq_conv_first(job); /* checks its scratch (one layout computation a call) */
        if (st != EQ_ERR_UNSUPPORTED) return st;
    }
    if (job && job->s && job->w && job->w->enc == EQ_ENC_B1 && eq_b1_pair_need(job->s, job->in_enc,
                                                                               job->out_stage, job->lflags)) {
        st = eq_conv_b1_pair(job); /* B1 x B1 3x3 on <= 16 channels (eq_conv_b1_pair.c) */
        if (st != EQ_ERR_UNSUPPORTED) return st;
    }
    if (job != NULL && job->s != NULL && job->w != NULL && job->w->enc == EQ_ENC_I8) {
        st = eq_conv_fast_i8(job); /* UNSUPPORTED where none applies */
        if (st != EQ_ERR_UNSUPPORTED) return st;
    }
    return EQ_ERR_UNSUPPORTED;
}

uint32_t eq_conv_fast_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                              uint8_t out_stage, uint8_t lflags)
{
    uint32_t need = 0u, n;
    if (s) { /* few-channel first layers (eq_conv_first.c) */
        n = eq_first_need(s, in_enc, w_enc, out_stage, lflags);
        if (n > need) need = n;
    }
    if (s && w_enc == EQ_ENC_B1) { /* B1 x B1 3x3 on <= 16 channels (eq_conv_b1_pair.c) */
        n = eq_b1_pair_need(s, in_enc, out_stage, lflags);
        if (n > need) need = n;
    }
    if (s && w_enc == EQ_ENC_I8) { /* integer Winograd, I8 x B1 bit planes (eq_conv_wino_i8.c) */
        n = eq_conv_fast_i8_scratch(s, in_enc, w_enc, out_stage);
        if (n > need) need = n;
    }
    return need;
}
