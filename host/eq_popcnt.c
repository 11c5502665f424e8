/* x86-64 scalar-POPCNT variants of the bit GEMMs (host only; chosen at run time by eq_dispatch.c
 * on CPUs with POPCNT but without AVX2). Compiled with __attribute__((target("popcnt"))), never
 * -march=native. Semantics, layouts and status codes are those of firmware/kernels/; rows are
 * read as 64-bit words (memcpy, so any 4-byte alignment is fine) and one a row meets 4 b rows
 * at a time, so each a word is loaded once per 4 popcounts. */
#include "eq_host.h"

#ifdef EQ_HOST_HAVE_AVX2
#include <string.h>

#define EQ_PC __attribute__((target("popcnt")))
#define EQ_PC_INLINE __attribute__((target("popcnt"), always_inline)) inline

static EQ_PC_INLINE uint64_t eq_ld64(const uint32_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* b rows of rs words (tern: sign plane, then nonzero plane at + kw);
 * out = k - 2 popcount(a ^ b), or for tern nz(n) - 2 popcount(nz & (a ^ sign)).
 * Callers pass tern as a constant, so each inlined copy has no test in its loop. */
static EQ_PC_INLINE void eq_bitgemm_pc(const uint32_t *a, const uint32_t *b, uint32_t m,
                                       uint32_t n, uint32_t k, int tern, int32_t *out)
{
    const uint32_t kw = EQ_WORDS(k), rs = tern ? 2u * kw : kw;
    const uint64_t ones = ~(uint64_t)0;
    uint32_t i, j, r, q;
    for (j = 0; j < n; j += 4u) {
        const uint32_t nb = (n - j) < 4u ? n - j : 4u;
        const uint32_t *y[4], *z[4];
        int32_t base[4];
        for (r = 0; r < 4u; ++r) { /* a short block repeats row j; its results are dropped */
            y[r] = b + (size_t)(j + (r < nb ? r : 0u)) * rs;
            z[r] = y[r] + kw;
            base[r] = (int32_t)k;
            if (tern)
                for (q = 0, base[r] = 0; q < kw; ++q) base[r] += __builtin_popcount(z[r][q]);
        }
        for (i = 0; i < m; ++i) {
            const uint32_t *x = a + (size_t)i * kw;
            uint64_t c[4] = {0, 0, 0, 0};
            for (q = 0; q + 2u <= kw; q += 2u) {
                const uint64_t av = eq_ld64(x + q);
                for (r = 0; r < 4u; ++r)
                    c[r] += (uint64_t)__builtin_popcountll((tern ? eq_ld64(z[r] + q) : ones)
                                                           & (av ^ eq_ld64(y[r] + q)));
            }
            if (q < kw)
                for (r = 0; r < 4u; ++r)
                    c[r] += (uint64_t)__builtin_popcount((tern ? z[r][q] : ~0u) & (x[q] ^ y[r][q]));
            for (r = 0; r < nb; ++r) out[(size_t)i * n + j + r] = base[r] - 2 * (int32_t)c[r];
        }
    }
}

eq_status_t EQ_PC eq_gemm_xnor_b1b1_popcnt(const uint32_t *a, const uint32_t *b, uint32_t m,
                                           uint32_t n, uint32_t k, int32_t *out)
{
    int done;
    const eq_status_t st = eq_bitgemm_prologue(a, b, m, n, k, out, &done);
    if (!done) eq_bitgemm_pc(a, b, m, n, k, 0, out);
    return st;
}

eq_status_t EQ_PC eq_gemm_tern_b1_popcnt(const uint32_t *a, const uint32_t *w, uint32_t m,
                                         uint32_t n, uint32_t k, int32_t *out)
{
    int done;
    const eq_status_t st = eq_bitgemm_prologue(a, w, m, n, k, out, &done);
    if (!done) eq_bitgemm_pc(a, w, m, n, k, 1, out);
    return st;
}
#endif
