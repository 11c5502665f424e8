/* Dispatcher of the whole-layer CONV fast paths (eq_conv_fast.h). */
#include <stddef.h>

#include "eq_conv_fast.h"

eq_status_t eq_conv_fast(const eq_conv_job_t *job)
{
    if (job != NULL && job->s != NULL && job->w != NULL
        && eq_conv_wino_i8_scratch(job->s, job->in_enc, job->w->enc, job->out_stage) != 0u) {
        const eq_status_t st = eq_conv_wino_i8(job); /* UNSUPPORTED where the shape rule says no */
        if (st != EQ_ERR_UNSUPPORTED) return st;
    }
    return EQ_ERR_UNSUPPORTED;
}

uint32_t eq_conv_fast_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                              uint8_t out_stage, uint8_t lflags)
{
    uint32_t need = 0u;
    (void)lflags;
    {
        const uint32_t wino = eq_conv_wino_i8_scratch(s, in_enc, w_enc, out_stage);
        if (wino > need) need = wino;
    }
    return need;
}
