/* Dispatcher of the whole-layer CONV fast paths (eq_conv_fast.h). */
#include <stddef.h>

#include "eq_conv_fast.h"

eq_status_t eq_conv_fast(const eq_conv_job_t *job)
{
    if (job != NULL && job->s != NULL && job->w != NULL && job->w->enc == EQ_ENC_I8) {
        const eq_status_t st = eq_conv_fast_i8(job); /* UNSUPPORTED where none applies */
        if (st != EQ_ERR_UNSUPPORTED) return st;
    }
    return EQ_ERR_UNSUPPORTED;
}

uint32_t eq_conv_fast_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                              uint8_t out_stage, uint8_t lflags)
{
    uint32_t need = 0u;
    (void)lflags;
    if (w_enc == EQ_ENC_I8) {
        const uint32_t i8 = eq_conv_fast_i8_scratch(s, in_enc, w_enc, out_stage);
        if (i8 > need) need = i8;
    }
    return need;
}
