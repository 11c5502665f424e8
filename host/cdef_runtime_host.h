/* cffi declarations of the host executor (host/eq_host_exec.h) and the validated sign packer */
typedef struct eq_host_plan eq_host_plan_t;
eq_status_t eq_host_plan_new(const eq_model_t *m, eq_host_plan_t **out);
void eq_host_plan_free(eq_host_plan_t *p);
uint32_t eq_host_plan_layer_kind(const eq_host_plan_t *p, uint32_t i);
eq_status_t eq_host_run_batch(const eq_host_plan_t *p, const uint8_t *pixels, uint32_t n_images,
                              uint32_t n_threads, int32_t *scores, uint32_t *cls);
eq_status_t eq_host_run_batch_ex(const eq_host_plan_t *p, const uint8_t *input,
                                 uint32_t input_kind, uint32_t n_images, uint32_t n_threads,
                                 int32_t *scores, uint32_t *cls);
eq_status_t eq_host_pack_pm1_i8_b1(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out);
