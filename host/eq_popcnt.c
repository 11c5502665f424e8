/* x86-64 scalar-POPCNT variants of the bit GEMMs (host only; chosen at run time by eq_dispatch.c
 * on CPUs with POPCNT but without AVX2). Compiled with __attribute__((target("popcnt"))), never
 * -march=native. Semantics, layouts and status codes are those of firmware/kernels/; rows are
 * read as 64-bit words (memcpy, so any 4-byte alignment is fine) and one a row meets 4 b rows
 * at a time, so each a word is loaded once per 4 popcounts. */
#include "eq_host.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <string.h>

#define EQ_PC __attribute__((target("popcnt")))

static EQ_PC inline uint64_t eq_ld64(const uint32_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* popcount(x ^ y) summed over kw words of rows x and y4[0..3] (tern: nz & (x ^ sign)) */
static EQ_PC void eq_pc4(const uint32_t *x, const uint32_t *const y[4], const uint32_t *const z[4],
                         uint32_t kw, uint64_t c[4])
{
    uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    uint32_t q = 0;
    for (; q + 2u <= kw; q += 2u) {
        const uint64_t a = eq_ld64(x + q);
        if (z) {
            c0 += (uint64_t)__builtin_popcountll(eq_ld64(z[0] + q) & (a ^ eq_ld64(y[0] + q)));
            c1 += (uint64_t)__builtin_popcountll(eq_ld64(z[1] + q) & (a ^ eq_ld64(y[1] + q)));
            c2 += (uint64_t)__builtin_popcountll(eq_ld64(z[2] + q) & (a ^ eq_ld64(y[2] + q)));
            c3 += (uint64_t)__builtin_popcountll(eq_ld64(z[3] + q) & (a ^ eq_ld64(y[3] + q)));
        } else {
            c0 += (uint64_t)__builtin_popcountll(a ^ eq_ld64(y[0] + q));
            c1 += (uint64_t)__builtin_popcountll(a ^ eq_ld64(y[1] + q));
            c2 += (uint64_t)__builtin_popcountll(a ^ eq_ld64(y[2] + q));
            c3 += (uint64_t)__builtin_popcountll(a ^ eq_ld64(y[3] + q));
        }
    }
    if (q < kw) {
        const uint32_t a = x[q];
        c0 += (uint64_t)__builtin_popcount((z ? z[0][q] : ~0u) & (a ^ y[0][q]));
        c1 += (uint64_t)__builtin_popcount((z ? z[1][q] : ~0u) & (a ^ y[1][q]));
        c2 += (uint64_t)__builtin_popcount((z ? z[2][q] : ~0u) & (a ^ y[2][q]));
        c3 += (uint64_t)__builtin_popcount((z ? z[3][q] : ~0u) & (a ^ y[3][q]));
    }
    c[0] = c0;
    c[1] = c1;
    c[2] = c2;
    c[3] = c3;
}

/* shared driver: tern == 0: XNOR (b rows of kw words), else ternary (w rows: sign then nz) */
static EQ_PC void eq_bitgemm_pc(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                uint32_t k, int tern, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), rs = tern ? 2u * kw : kw;
    uint32_t i, j, r;
    for (j = 0; j < n; j += 4u) {
        const uint32_t nb = (n - j) < 4u ? n - j : 4u;
        const uint32_t *y[4], *z[4];
        int32_t base[4];
        for (r = 0; r < 4u; ++r) {
            const uint32_t row = j + (r < nb ? r : 0u); /* short blocks repeat row j */
            uint32_t q;
            y[r] = b + (size_t)row * rs;
            z[r] = tern ? y[r] + kw : NULL;
            base[r] = (int32_t)k;
            if (tern)
                for (q = 0, base[r] = 0; q < kw; ++q) base[r] += __builtin_popcount(z[r][q]);
        }
        for (i = 0; i < m; ++i) {
            uint64_t c[4];
            eq_pc4(a + (size_t)i * kw, y, tern ? z : NULL, kw, c);
            for (r = 0; r < nb; ++r) out[(size_t)i * n + j + r] = base[r] - 2 * (int32_t)c[r];
        }
    }
}

static eq_status_t eq_bitgemm_args(const uint32_t *a, const uint32_t *b, uint32_t m, uint32_t n,
                                   uint32_t k, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k);
    if ((m && n && kw && (!a || !b)) || (m && n && !out)) return EQ_ERR_ARG;
    if (m && n && !kw) memset(out, 0, (size_t)m * n * sizeof(int32_t));
    return EQ_OK;
}

eq_status_t EQ_PC eq_gemm_xnor_b1b1_popcnt(const uint32_t *a, const uint32_t *b, uint32_t m,
                                           uint32_t n, uint32_t k, int32_t *out)
{
    const eq_status_t st = eq_bitgemm_args(a, b, m, n, k, out);
    if (st == EQ_OK && m && n && EQ_WORDS(k)) eq_bitgemm_pc(a, b, m, n, k, 0, out);
    return st;
}

eq_status_t EQ_PC eq_gemm_tern_b1_popcnt(const uint32_t *a, const uint32_t *w, uint32_t m,
                                         uint32_t n, uint32_t k, int32_t *out)
{
    const eq_status_t st = eq_bitgemm_args(a, w, m, n, k, out);
    if (st == EQ_OK && m && n && EQ_WORDS(k)) eq_bitgemm_pc(a, w, m, n, k, 1, out);
    return st;
}
#endif
