/* Owns the fixed-order tree reduction of micro-shard gradients. */
#include "parallel/reducer.h"

void dpt_reduce_tree(float *const *bufs, size_t n_bufs, size_t lo, size_t hi)
{
    for (size_t stride = 1; stride < n_bufs; stride *= 2)
        for (size_t m = 0; m + stride < n_bufs; m += 2 * stride) {
            float *restrict dst = bufs[m];
            const float *restrict src = bufs[m + stride];
            for (size_t i = lo; i < hi; i++)
                dst[i] += src[i];
        }
}
