/* 64-byte aligned allocation for parameter, gradient and activation buffers, and bulk
 * allocation for datasets. */
#ifndef DPT_CORE_ALLOC_H
#define DPT_CORE_ALLOC_H

#include <stddef.h>

#define DPT_ALIGN 64

/* Zero-filled, 64-byte aligned block of `bytes` (rounded up); NULL on failure.
 * Free with dpt_free_aligned (free(NULL) semantics). */
void *dpt_alloc_aligned(size_t bytes);
void dpt_free_aligned(void *p);

/* Uninitialised block for a large array read in random order (a dataset's samples), freed
 * with free(). From 2 MiB up it is 2 MiB aligned and advised to the kernel as transparent
 * huge pages, so that reading shuffled rows does not take a TLB miss per row; smaller
 * blocks, and kernels that decline the advice, get plain malloc pages. NULL on failure. */
void *dpt_alloc_bulk(size_t bytes);

/* Rounds n floats up so the next block stays 64-byte aligned. */
static inline size_t dpt_round_floats(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

#endif
