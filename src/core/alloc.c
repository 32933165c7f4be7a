/* Owns aligned allocation. */
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

void *dpt_alloc_aligned(size_t bytes)
{
    size_t rounded = (bytes + DPT_ALIGN - 1) & ~(size_t)(DPT_ALIGN - 1);
    if (rounded < bytes) return NULL;
    if (rounded == 0) rounded = DPT_ALIGN;
    void *p = aligned_alloc(DPT_ALIGN, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void dpt_free_aligned(void *p)
{
    free(p);
}
