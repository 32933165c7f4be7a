/* Overflow-checked size arithmetic for everything sized from untrusted input. */
#ifndef DPT_CORE_CHECKED_H
#define DPT_CORE_CHECKED_H

#include <stdbool.h>
#include <stddef.h>

/* *out = a * b; returns false on overflow. */
static inline bool dpt_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* *out = a + b; returns false on overflow. */
static inline bool dpt_add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

#endif
