/* edgeq host glue: run-time CPU dispatch of kernel variants (host builds only, never firmware).
 *
 * Every hot kernel has the portable C function (firmware/kernels, the one the firmware runs) and,
 * on x86-64 hosts, SIMD variants compiled with __attribute__((target(...))) in host/eq_*.c (never
 * -march=native). eq_host_<kernel> calls the selected variant; by default the best one the CPU
 * supports (__builtin_cpu_supports). Tests force each variant in turn with eq_host_set_variant.
 */
#ifndef EQ_HOST_H
#define EQ_HOST_H

#include <stdint.h>
#include "eq_kernels.h"

/* ---- variant registry --------------------------------------------------------------------- */
#define EQ_HOST_AUTO (-1)
uint32_t eq_host_variant_count(void);            /* variants compiled into this build */
const char *eq_host_variant_name(uint32_t i);    /* "portable", "avx2", ...; "" if out of range */
int32_t eq_host_variant_supported(uint32_t i);   /* 1 if this CPU can run variant i */
/* Select variant i for every eq_host_* call (EQ_HOST_AUTO: the best supported one).
 * EQ_ERR_ARG if i is out of range, EQ_ERR_UNSUPPORTED if the CPU cannot run it. */
eq_status_t eq_host_set_variant(int32_t i);
int32_t eq_host_get_variant(void);               /* index of the variant in use */

/* ---- dispatched entry points (arguments and semantics exactly as the eq_* kernels) -------- */
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
/* Winograd and im2col both go through the selected variant's eq_host_gemm_f32. */
eq_status_t eq_host_conv3x3_wino_f23_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                         uint32_t w, uint32_t k, void *scratch,
                                         uint32_t scratch_size, float *out);
eq_status_t eq_host_conv3x3_im2col_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                       uint32_t w, uint32_t k, void *scratch,
                                       uint32_t scratch_size, float *out);

/* ---- integer Winograd F(2x2, 3x3) for U8 x I8 3x3 stride-1 pad-1 layers (host/eq_wino_i8.c,
 * eq_avx2_wino_i8.c, eq_avx512_wino_i8.c; math and ranges in host/eq_wino_i8.h) ---------------
 * x (nimg, h, w, c) uint8, channels innermost; wt (n, 3, 3, c) int8 -> out (nimg, h, w, n) int32,
 * the exact sums over the in-bounds taps (eq_conv2d_row's accumulators), on the selected
 * variant. c <= EQ_HWINO_MAX_C (4 * |acc| must fit int32). _scratch: the bytes it needs, 0 if the
 * shape is out of range. EQ_ERR_ARG for a missing buffer, EQ_ERR_TOO_LARGE for a shape out of
 * range, EQ_ERR_ARENA for too little scratch. */
#define EQ_HWINO_MAX_C 1827u
uint32_t eq_host_conv3x3_wino_i8_scratch(uint32_t nimg, uint32_t h, uint32_t w, uint32_t c,
                                         uint32_t n);
eq_status_t eq_host_conv3x3_wino_i8(const uint8_t *x, const int8_t *wt, uint32_t nimg, uint32_t h,
                                    uint32_t w, uint32_t c, uint32_t n, void *scratch,
                                    uint32_t scratch_size, int32_t *out);
/* Whether the host executor runs a U8 x I8 3x3 stride-1 pad-1 layer through Winograd (instead of
 * im2col + the u8 x s8 GEMM): mode EQ_HOST_AUTO (default) where eq_host_wino_i8_worth says it is
 * faster on the selected variant, 0 never, 1 wherever it applies (tests, benchmarks).
 * EQ_ERR_ARG for another mode. */
eq_status_t eq_host_set_wino_i8(int32_t mode);
int32_t eq_host_get_wino_i8(void);
/* the measured shape rule of AUTO for executor GEMM kind u8_kind (eq_host_u8_kind): 1 where
 * Winograd took less time than the direct path on this layer shape (host/eq_wino_i8.c) */
int32_t eq_host_wino_i8_worth(int32_t u8_kind, uint32_t c, uint32_t n, uint32_t h, uint32_t w);

/* x (rows, k) int8 that must hold only -1 and +1 -> (rows, EQ_WORDS(k)) packed sign words (bit 1
 * = +1, pad bits 0), validated while packing: EQ_ERR_ARG if any value is neither (out is then
 * unspecified). One pass over x in the selected variant. */
eq_status_t eq_host_pack_pm1_i8_b1(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out);
eq_status_t eq_pack_pm1_i8_b1_portable(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out);

/* Which u8 x int GEMM the host executor (eq_host_exec.c) uses with the selected variant:
 * 0 portable C on (N, kp) int8 rows, 1 AVX2 on (kp/2, N8, 2) int16, 2 AVX-512 VNNI on
 * (kp/4, N16, 4) int8. */
int32_t eq_host_u8_kind(void);

/* Argument rule shared by every bit-GEMM variant (the portable kernels' semantics): EQ_ERR_ARG
 * for a missing buffer; *done = 1 when nothing is left to compute (an empty output, or k == 0,
 * where out is all zeros). */
static inline eq_status_t eq_bitgemm_prologue(const uint32_t *a, const uint32_t *b, uint32_t m,
                                              uint32_t n, uint32_t k, int32_t *out, int *done)
{
    uint64_t i;
    *done = 1;
    if ((m && n && k && (!a || !b)) || (m && n && !out)) return EQ_ERR_ARG;
    if (m && n && !k)
        for (i = 0; i < (uint64_t)m * n; ++i) out[i] = 0;
    *done = !m || !n || !k;
    return EQ_OK;
}

/* ---- x86-64 variants: scalar POPCNT (host/eq_popcnt.c), AVX2 (+POPCNT, +FMA for f32,
 * host/eq_avx2_*.c) and AVX-512 (host/eq_avx512.c) ------------------------------------------------------------------------- */
#if defined(__x86_64__) && defined(__GNUC__)
#define EQ_HOST_HAVE_AVX2 1
eq_status_t eq_gemm_xnor_b1b1_popcnt(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                     uint32_t k, int32_t *out);
eq_status_t eq_gemm_tern_b1_popcnt(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                                   uint32_t k, int32_t *out);
eq_status_t eq_gemm_xnor_b1b1_avx2(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                   uint32_t k, int32_t *out);
eq_status_t eq_gemm_tern_b1_avx2(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                                 uint32_t k, int32_t *out);
eq_status_t eq_gemm_tern_sparse_i8_avx2(const int8_t *a, const uint8_t *w, uint32_t w_bytes,
                                        uint32_t m, uint32_t n, uint32_t k, void *scratch,
                                        uint32_t scratch_size, int32_t *out);
eq_status_t eq_gemm_i8_avx2(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n, uint32_t k,
                            int32_t *out);
eq_status_t eq_gemm_lut_u8_avx2(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                                uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                                uint32_t k, int32_t *out);
eq_status_t eq_gemm_f32_avx2(const float *a, const float *b, uint32_t m, uint32_t n, uint32_t k,
                             float *out);
/* Winograd with AVX2 transforms (8 tiles per step) and eq_gemm_f32_avx2 for the 16 GEMMs */
eq_status_t eq_conv3x3_wino_f23_f32_avx2(const float *x, const float *wt, uint32_t c, uint32_t h,
                                         uint32_t w, uint32_t k, void *scratch,
                                         uint32_t scratch_size, float *out);
eq_status_t eq_pack_pm1_i8_b1_avx2(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out);
void eq_hx_gemm_u8s16_avx2(const uint8_t *a, uint32_t lda, const int16_t *w2, uint32_t np,
                           uint32_t m, uint32_t n, uint32_t kp, int32_t *out);
/* AVX-512 (F, BW, VL, VPOPCNTDQ, VNNI), host/eq_avx512.c */
eq_status_t eq_gemm_xnor_b1b1_avx512(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                     uint32_t k, int32_t *out);
eq_status_t eq_gemm_tern_b1_avx512(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                                   uint32_t k, int32_t *out);
eq_status_t eq_pack_pm1_i8_b1_avx512(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out);
void eq_hx_sign_avx512(const int32_t *acc, uint32_t n_pix, uint32_t c, const int32_t *u,
                       const uint32_t *fw, uint32_t *out);
void eq_hx_multi_avx512(const int32_t *acc, uint32_t n_pix, uint32_t c, const int32_t *u,
                        uint32_t n_thr, const uint32_t *fw, uint8_t *out);
void eq_hx_gemm_u8s8_avx512(const uint8_t *a, uint32_t lda, const int8_t *w4, uint32_t np,
                            uint32_t m, uint32_t n, uint32_t kp, int32_t *out);
#endif

#endif /* EQ_HOST_H */
