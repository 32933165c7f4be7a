/* Owns the reference-counted sample storage that every dataset view points into. The loaders
 * fill one; dataset.c cuts views from it. */
#ifndef DPT_DATA_STORE_H
#define DPT_DATA_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Immutable once loaded; shared by every view cut from it. Exactly one of u8 / f32 holds the
 * samples, row-major [count x features]. */
typedef struct dpt_store {
    atomic_size_t refs;
    size_t count;    /* rows */
    size_t features; /* values per row = c * h * w */
    size_t c, h, w;
    size_t classes;
    uint8_t *u8; /* images: raw pixels */
    float *f32;  /* tables: raw values */
    int32_t *labels;
    char name[128]; /* "fashion-mnist", "mnist:DIR", "csv:FILE", ... */
} dpt_store_t;

/* A zeroed store with one reference; NULL when out of memory. */
dpt_store_t *dpt_store_new(const char *name);
void dpt_store_retain(dpt_store_t *st);
/* Drops one reference; frees the storage with the last one. NULL is a no-op. */
void dpt_store_release(dpt_store_t *st);
/* Bytes needed for the samples, labels and one full index array of `count` rows of
 * `row_bytes` each; false on overflow. Loaders compare it with opt->max_bytes before
 * allocating. */
int dpt_store_bytes_needed(size_t count, size_t row_bytes, size_t *out);

#endif
