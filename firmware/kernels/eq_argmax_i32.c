/* eq_argmax_i32: first index of the maximum of x (n,) int32; 0 when n == 0. */
#include "eq_kernels.h"

uint32_t eq_argmax_i32(const int32_t *x, uint32_t n)
{
    uint32_t i, best = 0;
    for (i = 1; i < n; ++i)
        if (x[i] > x[best]) best = i;
    return best;
}
