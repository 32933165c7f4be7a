/* Shared by the GEMM benchmarks in perf/: aligned buffers of small, varied values. */
#ifndef DPT_PERF_FILL_H
#define DPT_PERF_FILL_H

#include <stddef.h>

#include "core/alloc.h"

/* n floats, 64-byte aligned (dpt_free_aligned), holding (i % 7) / 10; NULL when out of memory. */
static inline float *dpt_perf_filled(size_t n)
{
    float *p = dpt_alloc_aligned(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)(i % 7) * 0.1f;
    return p;
}

#endif
