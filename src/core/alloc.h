/* 64-byte aligned allocation for parameter, gradient and activation buffers. */
#ifndef DPT_CORE_ALLOC_H
#define DPT_CORE_ALLOC_H

#include <stddef.h>

#define DPT_ALIGN 64

/* Zero-filled, 64-byte aligned block of `bytes` (rounded up); NULL on failure.
 * Free with dpt_free_aligned (free(NULL) semantics). */
void *dpt_alloc_aligned(size_t bytes);
void dpt_free_aligned(void *p);

/* Rounds n floats up so the next block stays 64-byte aligned. */
static inline size_t dpt_round_floats(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

#endif
