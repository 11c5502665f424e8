/* eq_host_conv_wino_f32: see eq_host_wino_f32.h. The host runs the firmware's portable kernel
 * (built with -ffp-contract=off like every host file), so its results are the firmware's. */
#include <string.h>

#include "eq_conv_fast.h"
#include "eq_host_wino_f32.h"

eq_status_t eq_host_conv_wino_f32(const eq_layer_view_t *v, const eq_conv_shape_t *s, const void *in,
                                  void *out, void *scratch, uint32_t scratch_bytes)
{
    eq_weights_t wd;
    eq_conv_job_t job;
    if (!v || !s) return EQ_ERR_ARG;
    memset(&wd, 0, sizeof wd);
    wd.enc = (uint8_t)v->w_enc;
    wd.data = v->weight;
    memset(&job, 0, sizeof job);
    job.s = s;
    job.in_enc = (uint8_t)v->in_enc;
    job.in = in;
    job.w = &wd;
    job.out_stage = (uint8_t)v->out_stage;
    job.out_bits = (uint8_t)v->out_bits;
    job.thr = v->thr;
    job.aux = v->aux;
    job.out = out;
    job.scratch = scratch;
    job.scratch_bytes = scratch_bytes;
    return eq_conv_wino_f32(&job);
}
