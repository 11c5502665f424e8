/* cffi declarations of the kernels (firmware/include/eq_kernels.h) and the host dispatcher
 * (host/eq_host.h). Plain C, no preprocessor. eq_status_t is declared here once (the runtime's
 * cdef_runtime.h, concatenated after this file, uses it). Keep in sync with the headers. */
typedef int32_t eq_status_t;
typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t kh, kw, stride, pad;
} eq_conv_shape_t;

typedef struct {
    uint8_t enc;
    const void *data;
    const int32_t *lut;
    uint16_t lut_rows, lut_cols;
} eq_weights_t;

eq_status_t eq_conv2d_row(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                      const eq_weights_t *w, uint16_t oy, int32_t *acc);
eq_status_t eq_conv2d_row_f32(const eq_conv_shape_t *s, uint8_t in_enc, const void *in,
                              const float *w, uint16_t oy, float *acc);
void eq_affine_f32_i32(const float *acc, uint32_t n_pix, uint16_t c, const float *mul,
                       const float *add, int32_t *out);
void eq_threshold_sign_b1(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                          const uint8_t *flip, uint32_t *out);
void eq_threshold_multi_u8(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *thr,
                           uint16_t n_thr, const uint8_t *flip, uint8_t *out);
void eq_affine_i32(const int32_t *acc, uint32_t n_pix, uint16_t c, const int32_t *mul,
                   const int32_t *add, uint8_t shift, int32_t *out);
void eq_maxpool_b1(const uint32_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                   uint8_t stride, uint32_t *out);
void eq_maxpool_u8(const uint8_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                   uint8_t stride, uint8_t *out);
void eq_maxpool_i32(const int32_t *in, uint16_t h, uint16_t w, uint16_t c, uint8_t k,
                    uint8_t stride, int32_t *out);
void eq_pack_threshold_chw_b1(const uint8_t *pix, uint16_t c, uint16_t h, uint16_t w,
                              uint8_t thr, uint32_t *out);
void eq_unpack_wire_chw_b1(const uint8_t *bits, uint16_t c, uint16_t h, uint16_t w, uint32_t *out);
void eq_quant_chw_u8(const uint8_t *pix, uint16_t c, uint16_t h, uint16_t w, uint8_t bits,
                     uint8_t *out);
void eq_pack_wire_chw_b1(const uint8_t *pix, uint32_t n, uint8_t thr, uint8_t *bits);
uint32_t eq_argmax_i32(const int32_t *x, uint32_t n);

eq_status_t eq_gemm_xnor_b1b1(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                          uint32_t k, int32_t *out);
eq_status_t eq_gemm_tern_b1(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                        uint32_t k, int32_t *out);
uint32_t eq_gemm_tern_sparse_i8_scratch_size(uint32_t m, uint32_t k);
eq_status_t eq_gemm_tern_sparse_i8(const int8_t *a, const uint8_t *w, uint32_t w_bytes,
                               uint32_t m, uint32_t n, uint32_t k, void *scratch,
                               uint32_t scratch_size, int32_t *out);
eq_status_t eq_gemm_i8(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n, uint32_t k,
                   int32_t *out);
eq_status_t eq_gemm_lut_u8(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                       uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                       uint32_t k, int32_t *out);
eq_status_t eq_gemm_f32(const float *a, const float *b, uint32_t m, uint32_t n, uint32_t k,
                    float *out);
uint32_t eq_conv3x3_wino_f23_f32_scratch_size(uint32_t c, uint32_t h, uint32_t w, uint32_t k);
eq_status_t eq_conv3x3_wino_f23_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                uint32_t w, uint32_t k, void *scratch, uint32_t scratch_size,
                                float *out);
uint32_t eq_conv3x3_im2col_f32_scratch_size(uint32_t c, uint32_t h, uint32_t w);
eq_status_t eq_conv3x3_im2col_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                              uint32_t w, uint32_t k, void *scratch, uint32_t scratch_size,
                              float *out);
void eq_pack_signs_i8_b1(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out);
eq_status_t eq_pack_tern_i8(const int8_t *w, uint32_t rows, uint32_t k, uint32_t *out);
eq_status_t eq_sparse_encode_i8(const int8_t *w, uint32_t rows, uint32_t k, uint8_t *out,
                            uint32_t cap, uint32_t *out_bytes);

uint32_t eq_host_variant_count(void);
const char *eq_host_variant_name(uint32_t i);
int32_t eq_host_variant_supported(uint32_t i);
eq_status_t eq_host_set_variant(int32_t i);
int32_t eq_host_get_variant(void);
eq_status_t eq_host_gemm_xnor_b1b1(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                               uint32_t k, int32_t *out);
eq_status_t eq_host_gemm_tern_b1(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                             uint32_t k, int32_t *out);
eq_status_t eq_host_gemm_tern_sparse_i8(const int8_t *a, const uint8_t *w, uint32_t w_bytes,
                                    uint32_t m, uint32_t n, uint32_t k, void *scratch,
                                    uint32_t scratch_size, int32_t *out);
eq_status_t eq_host_gemm_i8(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n, uint32_t k,
                        int32_t *out);
eq_status_t eq_host_gemm_lut_u8(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                            uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                            uint32_t k, int32_t *out);
eq_status_t eq_host_gemm_f32(const float *a, const float *b, uint32_t m, uint32_t n, uint32_t k,
                         float *out);
eq_status_t eq_host_conv3x3_wino_f23_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                     uint32_t w, uint32_t k, void *scratch,
                                     uint32_t scratch_size, float *out);
eq_status_t eq_host_conv3x3_im2col_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                   uint32_t w, uint32_t k, void *scratch,
                                   uint32_t scratch_size, float *out);
