/* Owns the synthetic dataset ("synthetic:N[,C,H,W,CLASSES]"): seeded random uint8 images and
 * labels of any size, for benchmarks and tests that need no files. Not learnable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/checked.h"
#include "core/rng.h"
#include "data/data_internal.h"

#define SYNTHETIC_MAX_DIM 4096

static dpt_status_t parse_dims(const char *arg, size_t dims[5])
{
    const size_t defaults[5] = {0, 1, 28, 28, 10};
    memcpy(dims, defaults, sizeof defaults);
    const char *p = arg;
    for (int i = 0; i < 5 && *p; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p || (*end && *end != ',') || *p == '-' || v == 0 ||
            (i > 0 && v > SYNTHETIC_MAX_DIM) || (i == 4 && v < 2))
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "synthetic:%s: expected N[,C,H,W,CLASSES] with positive integers "
                             "(dimensions <= %d, CLASSES >= 2)",
                             arg, SYNTHETIC_MAX_DIM);
        dims[i] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    if (*p) return dpt_error(DPT_ERR_INVALID_ARG, "synthetic:%s: too many fields", arg);
    return DPT_OK;
}

dpt_status_t dpt_synthetic_dims(const char *arg, size_t dims[5])
{
    return parse_dims(arg, dims);
}

static dpt_status_t make_store(const char *arg, const size_t d[5], size_t count, uint64_t stream,
                               const dpt_data_options_t *opt, dpt_store_t **out)
{
    size_t features, bytes;
    if (!dpt_mul_size(d[1], d[2], &features) || !dpt_mul_size(features, d[3], &features) ||
        !dpt_store_bytes_needed(count, features, &bytes) || bytes > opt->max_bytes)
        return dpt_error(DPT_ERR_LIMIT,
                         "synthetic:%s: %zu samples exceed the memory cap of %zu bytes", arg, count,
                         opt->max_bytes);
    char name[128];
    snprintf(name, sizeof name, "synthetic");
    dpt_store_t *st = dpt_store_new(name);
    if (!st) return dpt_error(DPT_ERR_NOMEM, "synthetic:%s: out of memory", arg);
    st->count = count, st->features = features, st->c = d[1], st->h = d[2], st->w = d[3];
    st->classes = d[4];
    st->u8 = dpt_alloc_bulk(count * features);
    st->labels = malloc(count * sizeof *st->labels);
    if (!st->u8 || !st->labels) {
        dpt_store_release(st);
        return dpt_error(DPT_ERR_NOMEM, "synthetic:%s: out of memory", arg);
    }
    dpt_rng_t r;
    dpt_rng_seed(&r, 0x5e1f, stream);
    for (size_t i = 0; i < count * features; i += 8) {
        uint64_t x = dpt_rng_next(&r);
        size_t n = count * features - i < 8 ? count * features - i : 8;
        memcpy(st->u8 + i, &x, n);
    }
    for (size_t i = 0; i < count; i++)
        st->labels[i] = (int32_t)dpt_rng_below(&r, d[4]);
    *out = st;
    return DPT_OK;
}

dpt_status_t dpt_synthetic_load(const char *arg, const dpt_data_options_t *opt, dpt_store_t **tr,
                                dpt_store_t **te)
{
    size_t d[5];
    dpt_status_t s = parse_dims(arg, d);
    if (s != DPT_OK) return s;
    size_t test_count = d[0] / 6 ? d[0] / 6 : 1;
    s = make_store(arg, d, d[0], 1, opt, tr);
    if (s == DPT_OK && (s = make_store(arg, d, test_count, 2, opt, te)) != DPT_OK) {
        dpt_store_release(*tr);
        *tr = NULL;
    }
    return s;
}
