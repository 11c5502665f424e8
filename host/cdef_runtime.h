/* cffi declarations of the blob runtime (firmware/runtime/eq_runtime.h) */
/* eq_status_t comes from cdef_kernels.h (cdef files are concatenated in name order) */
typedef struct {
    const uint8_t *blob;
    uint32_t size;
    uint32_t n_layers, n_tensors;
    uint16_t in_c, in_h, in_w;
    uint8_t pre_mode, pre_param;
    uint16_t n_classes;
    uint32_t input_pixels;
    uint32_t input_wire;
    uint32_t max_act;
    uint32_t acc_row;
    uint32_t arena_need;
    ...;
} eq_model_t;
typedef uint32_t (*eq_clock_fn)(void *ctx);
typedef struct {
    eq_clock_fn now;
    void *ctx;
    uint32_t *ticks;
    uint32_t n_ticks;
    uint32_t total;
} eq_profile_t;
#define EQ_INPUT_PIXELS 0
#define EQ_INPUT_WIRE 1
eq_status_t eq_model_load(eq_model_t *m, const uint8_t *blob, uint32_t size);
eq_status_t eq_model_run(const eq_model_t *m, const uint8_t *input, uint32_t input_size,
                         uint32_t input_kind, uint8_t *arena, uint32_t arena_size,
                         int32_t *scores, uint32_t n_scores, uint32_t *cls,
                         eq_profile_t *prof, uint32_t n_run, uint8_t *act_out, uint32_t act_size);
uint32_t eq_model_act_bytes(const eq_model_t *m, uint32_t layer);
const char *eq_status_str(eq_status_t s);
uint32_t eq_crc32(uint32_t crc, const uint8_t *p, uint32_t n);
