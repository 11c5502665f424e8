/* Host executor (host/eq_host_exec.c): a loaded model over a batch of images on the dispatched
 * SIMD kernels, bit-exact with eq_model_run. Host only (malloc, pthreads). A model using any blob
 * 1.1 feature (m->v11: DAG inputs, groups, per-axis stride/pad, AVGPOOL/ADD/CONCAT, REQUANT) is
 * not batched: each image runs through eq_model_run itself (threads still split the images). */
#ifndef EQ_HOST_EXEC_H
#define EQ_HOST_EXEC_H

#include "eq_host.h"
#include "eq_runtime.h"

#define EQ_HOST_MAX_THREADS 256u

typedef struct eq_host_plan eq_host_plan_t;

/* Re-lay out the weights of a model that eq_model_load accepted (m must outlive the plan).
 * EQ_ERR_ARENA if memory runs out. */
eq_status_t eq_host_plan_new(const eq_model_t *m, eq_host_plan_t **out);
void eq_host_plan_free(eq_host_plan_t *p);
/* 0: layer i runs eq_conv2d_row (or is not a CONV), 1: bit GEMM, 2: u8 x s8 GEMM */
uint32_t eq_host_plan_layer_kind(const eq_host_plan_t *p, uint32_t i);
/* 1 if layer i runs integer Winograd (eq_host_set_wino_i8) with the selected variant and mode */
uint32_t eq_host_plan_layer_wino(const eq_host_plan_t *p, uint32_t i);

/* pixels (n_images, input_pixels) uint8 CHW -> scores (n_images, n_classes) int32 and, if cls is
 * not NULL, cls (n_images) argmax; n_threads (1 .. EQ_HOST_MAX_THREADS, clamped) split the
 * images. Same results as eq_model_run on each image, whatever the variant and thread count. */
eq_status_t eq_host_run_batch(const eq_host_plan_t *p, const uint8_t *pixels, uint32_t n_images,
                              uint32_t n_threads, int32_t *scores, uint32_t *cls);
/* As eq_host_run_batch; input_kind EQ_INPUT_PIXELS (input_pixels bytes an image) or
 * EQ_INPUT_WIRE (input_wire bytes an image, as a board receives it). */
eq_status_t eq_host_run_batch_ex(const eq_host_plan_t *p, const uint8_t *input,
                                 uint32_t input_kind, uint32_t n_images, uint32_t n_threads,
                                 int32_t *scores, uint32_t *cls);

#endif /* EQ_HOST_EXEC_H */
