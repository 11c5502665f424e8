/* Private to the blob runtime (eq_load.c: field readers, checks, loader, planner;
 * eq_exec.c: executor). Not part of the public API (eq_runtime.h). */
#ifndef EQ_RT_PRIVATE_H
#define EQ_RT_PRIVATE_H

#include "eq_runtime.h"
#include "eq_kernels.h"

#include <stddef.h>
#include <string.h>

/* ---- little-endian field access (never cast structs over the blob) ----------------------- */
static inline uint32_t rd8(const uint8_t *p) { return p[0]; }
static inline uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline int32_t rds16(const uint8_t *p) { return (int32_t)(int16_t)(uint16_t)rd16(p); }

#define CHECK(cond, status) \
    do {                    \
        if (!(cond)) {      \
            return (status); \
        }                   \
    } while (0)

/* ---- tensors -------------------------------------------------------------------------------- */
typedef struct {
    const uint8_t *data;
    uint32_t nbytes, enc, bits, rank, d[4], aux;
} tensor_t;

/* ---- layer records -------------------------------------------------------------------------- */
typedef struct {
    uint32_t op, in_enc, out_enc, out_stage;
    uint32_t in_h, in_w, in_c, out_h, out_w, out_c;
    uint32_t kh, kw, stride, pad, w_enc, out_bits, shift;
    uint32_t flags;          /* blob 1.2: EQ_LFLAG_* bits */
    int32_t t_weight, t_lut, t_thr, t_aux;
    uint32_t macs;
    /* blob 1.1 (stored fields; the effective values below are resolved by eq_rt_layer) */
    uint32_t src0_raw, src1_raw, groups_raw, stride_w_raw, pad_w_raw;
    uint32_t src0, src1;     /* value ids (src0_raw 0: the previous value i; src1: only if raw != 0) */
    uint32_t groups;         /* >= 1 */
    uint32_t stride_w, pad_w; /* horizontal stride and padding (stride, pad: vertical) */
} layer_t;

/* tensor idx of a loaded model (bounds re-checked: EQ_ERR_BOUNDS) */
eq_status_t eq_rt_tensor(const eq_model_t *m, int32_t idx, tensor_t *t);
/* layer record i of a loaded model (i < n_layers); also used while loading (the table's bounds
 * are checked first) */
void eq_rt_layer(const eq_model_t *m, uint32_t i, layer_t *L);

/* the kernels' shape of a CONV layer (stride_w / pad_w as stored: 0 = same as stride / pad) */
void eq_rt_conv_shape(const layer_t *L, eq_conv_shape_t *s);

/* value v's place in the arena (sequential blobs: ping-pong; DAG blobs: the planned offset) */
static inline uint8_t *eq_rt_value(const eq_model_t *m, uint8_t *arena, uint32_t v)
{
    return arena + (m->dag ? m->val_off[v] : (v & 1u) * m->max_act);
}

#endif /* EQ_RT_PRIVATE_H */
