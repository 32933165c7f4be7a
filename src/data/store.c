/* Owns the sample storage's lifetime: creation, references, and the size check the loaders
 * make before allocating. */
#include "data/store.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/checked.h"

dpt_store_t *dpt_store_new(const char *name)
{
    dpt_store_t *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    atomic_init(&st->refs, 1);
    snprintf(st->name, sizeof st->name, "%s", name);
    return st;
}

void dpt_store_retain(dpt_store_t *st)
{
    atomic_fetch_add(&st->refs, 1);
}

void dpt_store_release(dpt_store_t *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1) return;
    free(st->u8);
    free(st->f32);
    free(st->labels);
    free(st);
}

int dpt_store_bytes_needed(size_t count, size_t row_bytes, size_t *out)
{
    size_t data, extra;
    /* an int32 label and a uint32 index entry per row */
    return dpt_mul_size(count, row_bytes, &data) && dpt_mul_size(count, 8, &extra) &&
           dpt_add_size(data, extra, out);
}
