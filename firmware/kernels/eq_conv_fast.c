/* Dispatcher of the whole-layer CONV fast paths (eq_conv_fast.h). */
#include "eq_conv_fast.h"

eq_status_t eq_conv_fast(const eq_conv_job_t *job)
{
    (void)job;
    return EQ_ERR_UNSUPPORTED;
}

uint32_t eq_conv_fast_scratch(const eq_conv_shape_t *s, uint8_t in_enc, uint8_t w_enc,
                              uint8_t out_stage, uint8_t lflags)
{
    (void)s;
    (void)in_enc;
    (void)w_enc;
    (void)out_stage;
    (void)lflags;
    return 0u;
}
