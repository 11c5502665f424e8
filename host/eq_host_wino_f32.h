/* Host executor's call into the firmware's F32 Winograd layer kernel (eq_conv_wino_f32.c), kept
 * in its own file so eq_host_exec.c need not see eq_conv_fast.h. Private to host/. */
#ifndef EQ_HOST_WINO_F32_H
#define EQ_HOST_WINO_F32_H

#include "eq_runtime.h"

/* layer v (an F32 CONV flagged EQ_LFLAG_WINO_F23) with shape s on one image: in -> out, scratch
 * of scratch_bytes (>= eq_rule_wino_f23_scratch, 8-byte aligned) */
eq_status_t eq_host_conv_wino_f32(const eq_layer_view_t *v, const eq_conv_shape_t *s, const void *in,
                                  void *out, void *scratch, uint32_t scratch_bytes);

#endif /* EQ_HOST_WINO_F32_H */
