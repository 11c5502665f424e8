/* Host-side run-time dispatch of kernel variants (see eq_host.h). Host only: the one piece of
 * global state (the selected variant) lives here, never in firmware/. */
#include "eq_host.h"

#include <stddef.h>
#include <string.h>

typedef eq_status_t (*eq_xnor_fn)(const uint32_t *, const uint32_t *, uint32_t, uint32_t,
                                  uint32_t, int32_t *);
typedef eq_status_t (*eq_sparse_fn)(const int8_t *, const uint8_t *, uint32_t, uint32_t,
                                    uint32_t, uint32_t, void *, uint32_t, int32_t *);
typedef eq_status_t (*eq_i8_fn)(const int8_t *, const int8_t *, uint32_t, uint32_t, uint32_t,
                                int32_t *);
typedef eq_status_t (*eq_lut_fn)(const uint8_t *, const uint8_t *, const int32_t *, uint32_t,
                                 uint32_t, uint32_t, uint32_t, uint32_t, int32_t *);

typedef eq_status_t (*eq_pm1_fn)(const int8_t *, uint32_t, uint32_t, uint32_t *);
typedef eq_status_t (*eq_wino_fn)(const float *, const float *, uint32_t, uint32_t, uint32_t,
                                  uint32_t, void *, uint32_t, float *);

typedef struct {
    const char *name;
    int (*supported)(void);
    eq_xnor_fn xnor, tern;
    eq_sparse_fn sparse;
    eq_i8_fn i8;
    eq_lut_fn lut;
    eq_gemm_f32_fn f32;
    eq_wino_fn wino; /* Winograd whose 16 GEMMs run through this variant's f32 */
    eq_pm1_fn pm1;
    int32_t u8_kind; /* see eq_host_u8_kind */
} eq_variant_t;

static int eq_always(void) { return 1; }

#ifdef EQ_HOST_HAVE_AVX2
static int eq_has_popcnt(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt");
}

static int eq_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")
           && __builtin_cpu_supports("fma");
}

/* AVX-512 F + BW + VL + VPOPCNTDQ + VNNI (Zen 4, Ice Lake and later) on top of the AVX2 set */
static int eq_has_avx512(void)
{
    __builtin_cpu_init();
    return eq_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq")
           && __builtin_cpu_supports("avx512vnni");
}
#endif

/* ordered from most portable to fastest; AUTO picks the last supported one */
static const eq_variant_t eq_variants[] = {
    {"portable", eq_always, eq_gemm_xnor_b1b1, eq_gemm_tern_b1, eq_gemm_tern_sparse_i8,
     eq_gemm_i8, eq_gemm_lut_u8, eq_gemm_f32, eq_conv3x3_wino_f23_f32,
     eq_pack_pm1_i8_b1_portable, 0},
#ifdef EQ_HOST_HAVE_AVX2
    /* POPCNT without AVX2 (pre-2013 x86): only the bit GEMMs differ from portable */
    {"popcnt", eq_has_popcnt, eq_gemm_xnor_b1b1_popcnt, eq_gemm_tern_b1_popcnt,
     eq_gemm_tern_sparse_i8, eq_gemm_i8, eq_gemm_lut_u8, eq_gemm_f32, eq_conv3x3_wino_f23_f32,
     eq_pack_pm1_i8_b1_portable, 0},
    {"avx2", eq_has_avx2, eq_gemm_xnor_b1b1_avx2, eq_gemm_tern_b1_avx2,
     eq_gemm_tern_sparse_i8_avx2, eq_gemm_i8_avx2, eq_gemm_lut_u8_avx2, eq_gemm_f32_avx2,
     eq_conv3x3_wino_f23_f32_avx2, eq_pack_pm1_i8_b1_avx2, 1},
    /* the bit GEMMs, packing and the executor's u8 GEMM on AVX-512; the rest as avx2 */
    {"avx512", eq_has_avx512, eq_gemm_xnor_b1b1_avx512, eq_gemm_tern_b1_avx512,
     eq_gemm_tern_sparse_i8_avx2, eq_gemm_i8_avx2, eq_gemm_lut_u8_avx2, eq_gemm_f32_avx2,
     eq_conv3x3_wino_f23_f32_avx2, eq_pack_pm1_i8_b1_avx512, 2},
#endif
};
#define EQ_N_VARIANTS ((uint32_t)(sizeof eq_variants / sizeof eq_variants[0]))

static int32_t eq_selected = -1; /* -1: not resolved yet */

static int32_t eq_best(void)
{
    int32_t i;
    for (i = (int32_t)EQ_N_VARIANTS - 1; i > 0; --i)
        if (eq_variants[i].supported()) return i;
    return 0;
}

static const eq_variant_t *eq_cur(void)
{
    if (eq_selected < 0) eq_selected = eq_best();
    return &eq_variants[eq_selected];
}

uint32_t eq_host_variant_count(void) { return EQ_N_VARIANTS; }

const char *eq_host_variant_name(uint32_t i)
{
    return i < EQ_N_VARIANTS ? eq_variants[i].name : "";
}

int32_t eq_host_variant_supported(uint32_t i)
{
    return i < EQ_N_VARIANTS ? eq_variants[i].supported() : 0;
}

eq_status_t eq_host_set_variant(int32_t i)
{
    if (i == EQ_HOST_AUTO) {
        eq_selected = eq_best();
        return EQ_OK;
    }
    if (i < 0 || (uint32_t)i >= EQ_N_VARIANTS) return EQ_ERR_ARG;
    if (!eq_variants[i].supported()) return EQ_ERR_UNSUPPORTED;
    eq_selected = i;
    return EQ_OK;
}

int32_t eq_host_get_variant(void)
{
    (void)eq_cur();
    return eq_selected;
}

eq_status_t eq_host_gemm_xnor_b1b1(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                   uint32_t k, int32_t *out)
{
    return eq_cur()->xnor(a, b, m, n, k, out);
}

eq_status_t eq_host_gemm_tern_b1(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                                 uint32_t k, int32_t *out)
{
    return eq_cur()->tern(a, w, m, n, k, out);
}

eq_status_t eq_host_gemm_tern_sparse_i8(const int8_t *a, const uint8_t *w, uint32_t w_bytes,
                                        uint32_t m, uint32_t n, uint32_t k, void *scratch,
                                        uint32_t scratch_size, int32_t *out)
{
    return eq_cur()->sparse(a, w, w_bytes, m, n, k, scratch, scratch_size, out);
}

eq_status_t eq_host_gemm_i8(const int8_t *a, const int8_t *w, uint32_t m, uint32_t n, uint32_t k,
                            int32_t *out)
{
    return eq_cur()->i8(a, w, m, n, k, out);
}

eq_status_t eq_host_gemm_lut_u8(const uint8_t *a, const uint8_t *w, const int32_t *lut,
                                uint32_t lut_rows, uint32_t lut_cols, uint32_t m, uint32_t n,
                                uint32_t k, int32_t *out)
{
    return eq_cur()->lut(a, w, lut, lut_rows, lut_cols, m, n, k, out);
}

eq_status_t eq_host_gemm_f32(const float *a, const float *b, uint32_t m, uint32_t n, uint32_t k,
                             float *out)
{
    return eq_cur()->f32(a, b, m, n, k, out);
}

eq_status_t eq_host_conv3x3_wino_f23_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                         uint32_t w, uint32_t k, void *scratch,
                                         uint32_t scratch_size, float *out)
{
    return eq_cur()->wino(x, wt, c, h, w, k, scratch, scratch_size, out);
}

eq_status_t eq_host_conv3x3_im2col_f32(const float *x, const float *wt, uint32_t c, uint32_t h,
                                       uint32_t w, uint32_t k, void *scratch,
                                       uint32_t scratch_size, float *out)
{
    return eq_conv3x3_im2col_f32_ex(x, wt, c, h, w, k, scratch, scratch_size, out,
                                    eq_cur()->f32);
}

eq_status_t eq_host_pack_pm1_i8_b1(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out)
{
    if ((rows && k && !x) || (rows && !out)) return EQ_ERR_ARG;
    return eq_cur()->pm1(x, rows, k, out);
}

/* 8 values a step (SWAR): bit = sign bit clear; a byte is +-1 (0x01 / 0xff) iff bit 0 is set
 * and bits 1..7 all equal the sign bit */
eq_status_t eq_pack_pm1_i8_b1_portable(const int8_t *x, uint32_t rows, uint32_t k, uint32_t *out)
{
    const uint64_t lo = 0x0101010101010101ull, hi = 0x8080808080808080ull;
    const uint32_t kw = EQ_WORDS(k);
    uint32_t r, j, bad = 0;
    for (r = 0; r < rows; ++r) {
        const int8_t *p = x + (size_t)r * k;
        uint32_t *o = out + (size_t)r * kw;
        for (j = 0; j < kw; ++j) o[j] = 0;
        for (j = 0; j + 8u <= k; j += 8u) {
            uint64_t v;
            memcpy(&v, p + j, 8);
            bad |= (uint32_t)((v & lo) != lo
                              || ((v >> 1) & 0x7f7f7f7f7f7f7f7full) != ((v >> 7) & lo) * 0x7fu);
            /* gather the 8 sign bits (bit 7 of byte i -> bit i), then +1 = sign clear */
            o[j >> 5] |= (uint32_t)(((((~v & hi) >> 7) * 0x0102040810204080ull) >> 56) & 0xffu)
                         << (j & 31u);
        }
        for (; j < k; ++j) {
            bad |= (uint32_t)(p[j] != 1 && p[j] != -1);
            o[j >> 5] |= (uint32_t)(p[j] == 1) << (j & 31u);
        }
    }
    return bad ? EQ_ERR_ARG : EQ_OK;
}

int32_t eq_host_u8_kind(void) { return eq_cur()->u8_kind; }

static int32_t eq_wino_i8_mode = EQ_HOST_AUTO; /* see eq_host_set_wino_i8 */

eq_status_t eq_host_set_wino_i8(int32_t mode)
{
    if (mode != EQ_HOST_AUTO && mode != 0 && mode != 1) return EQ_ERR_ARG;
    eq_wino_i8_mode = mode;
    return EQ_OK;
}

int32_t eq_host_get_wino_i8(void) { return eq_wino_i8_mode; }
