/* Shared by the x86-64 AVX2 variants of the hot kernels (host only; chosen at run time by
 * eq_dispatch.c), one file per operation:
 *   eq_avx2_bits.c    XNOR and ternary-bitplane GEMM entry points (binary activations): fewer than
 *                     4 rows direct, short M by nibble-split panels; +-1 int8 -> sign words
 *   eq_avx2_bittab.c  the same two GEMMs for whole blocks of rows, by nibble lookup tables
 *   eq_avx2_sparse.c  skip-zero ternary x int8 GEMM
 *   eq_avx2_int8.c    dense int8 GEMM, k-bit LUT GEMM, the host executor's u8 x int16 GEMM
 *   eq_avx2_f32.c     float32 GEMM
 *   eq_avx2_wino.c    Winograd F(2x2, 3x3) float32 convolution
 *
 * Compiled with __attribute__((target("avx2,popcnt[,fma]"))) per function, never -march=native,
 * so the module still loads on CPUs without AVX2 (the dispatcher then keeps "portable").
 * Semantics, layouts and status codes are exactly those of the portable kernels in
 * firmware/kernels/; tests/test_kernels.py runs every variant against edgeq/reference/ref.py.
 * The two bit-GEMM inner steps are GCC extended inline asm (AT&T, operands only in registers
 * and "m" memory operands, no clobbers needed): with all 16 ymm registers live, GCC's allocator
 * otherwise spills counters and re-loads operands. Scratch for re-laid-out operands lives on the
 * stack (at most ~80 KB, eq_xnor_tab), so callers need no extra buffers.
 */
#ifndef EQ_AVX2_H
#define EQ_AVX2_H

#include "eq_host.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <immintrin.h>
#include <string.h>

#define EQ_AVX2 __attribute__((target("avx2,popcnt")))
#define EQ_AVX2_FMA __attribute__((target("avx2,fma")))
#define EQ_INLINE __attribute__((always_inline)) inline
#define EQ_NOINLINE __attribute__((noinline))

/* popcount of each nibble value, in both 128-bit lanes (vpshufb table) */
#define EQ_PC_LUT                                                                               \
    _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, \
                     2, 2, 3, 2, 3, 3, 4)

/* internal to the eq_avx2_*.c files (not exported from the module) */
#define EQ_INTERNAL __attribute__((visibility("hidden")))

#define EQ_XG 4u     /* groups of 32 b rows per table block (eq_avx2_bittab.c) */

/* 16 x 16 byte transpose: dst[j * ld + i] = src[i * ls + j] (4 unpack stages of 16 ops). Static:
 * each file that uses it (eq_avx2_bittab.c, eq_avx2_sparse.c) has its own copy. */
static EQ_AVX2 __attribute__((unused)) void eq_tr16(const int8_t *src, uint32_t ls, int8_t *dst, uint32_t ld)
{
    __m128i r[16], x[16];
    uint32_t i, g, h;
    for (i = 0; i < 16u; ++i) r[i] = _mm_loadu_si128((const __m128i *)(const void *)(src + i * ls));
    for (g = 0; g < 8u; ++g) { /* x[2g + h]: rows 2g, 2g+1, cols 8h .. 8h+7 */
        x[2u * g] = _mm_unpacklo_epi8(r[2u * g], r[2u * g + 1u]);
        x[2u * g + 1u] = _mm_unpackhi_epi8(r[2u * g], r[2u * g + 1u]);
    }
    for (g = 0; g < 4u; ++g) /* r[4g + u]: rows 4g .. 4g+3, cols 4u .. 4u+3 */
        for (h = 0; h < 2u; ++h) {
            r[4u * g + 2u * h] = _mm_unpacklo_epi16(x[4u * g + h], x[4u * g + 2u + h]);
            r[4u * g + 2u * h + 1u] = _mm_unpackhi_epi16(x[4u * g + h], x[4u * g + 2u + h]);
        }
    for (g = 0; g < 2u; ++g) /* x[8g + c]: rows 8g .. 8g+7, cols 2c, 2c+1 */
        for (h = 0; h < 4u; ++h) {
            x[8u * g + 2u * h] = _mm_unpacklo_epi32(r[8u * g + h], r[8u * g + 4u + h]);
            x[8u * g + 2u * h + 1u] = _mm_unpackhi_epi32(r[8u * g + h], r[8u * g + 4u + h]);
        }
    for (h = 0; h < 8u; ++h) {
        _mm_storeu_si128((__m128i *)(void *)(dst + 2u * h * ld), _mm_unpacklo_epi64(x[h], x[8u + h]));
        _mm_storeu_si128((__m128i *)(void *)(dst + (2u * h + 1u) * ld),
                         _mm_unpackhi_epi64(x[h], x[8u + h]));
    }
}

/* eq_avx2_bittab.c: XNOR (out = k - 2 popcount(a ^ b)) and ternary-bitplane (out = nz - 2
 * popcount(nz & (a ^ sign))) GEMMs by nibble lookup tables; no argument checks (the entry
 * points in eq_avx2_bits.c make them), m >= 1, n >= 1, k >= 1. */
EQ_INTERNAL EQ_AVX2 void eq_xnor_tab(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                     uint32_t k, int32_t *out);
EQ_INTERNAL EQ_AVX2 void eq_tern_tab(const uint32_t *a, const uint32_t *w, uint32_t m, uint32_t n,
                                     uint32_t k, int32_t *out);
#endif /* EQ_HOST_HAVE_AVX2 */

#endif /* EQ_AVX2_H */
