/* Dispatcher of the whole-layer CONV fast paths (eq_conv_fast.h). */
#include "eq_conv_fast.h"

eq_status_t eq_conv_fast(const eq_conv_job_t *job)
{
    eq_status_t st;
    if (job && job->s && job->s->in_c <= 4u) { /* few-channel first layers (eq_conv_first.c) */
        st = eq_conv_first(job);
        if (st != EQ_ERR_UNSUPPORTED) return st;
    }
    return EQ_ERR_UNSUPPORTED;
}

uint32_t eq_conv_fast_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                              uint8_t out_stage, uint8_t lflags)
{
    uint32_t need = 0u, n;
    if (s && s->in_c <= 4u) { /* few-channel first layers (eq_conv_first.c) */
        n = eq_conv_first_scratch(s, in_enc, w_enc, out_stage, lflags);
        if (n > need) need = n;
    }
    return need;
}
