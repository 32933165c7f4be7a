/* Owns the CIFAR-10 binary format: batches of 3073-byte records (label byte, then 3x32x32
 * channel-major pixels), several files concatenated into one uint8 store. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/checked.h"
#include "data/data_internal.h"
#include "data/reader.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
/* Records read per call: ~0.8 MB, large enough that reads are cheap, small enough to keep. */
#define CIFAR_CHUNK_RECORDS 256
/* The official set has 6 files; more than this is a caller bug. */
#define CIFAR_MAX_FILES 16

/* Checks one opened batch file's size and kind before anything is allocated. */
static dpt_status_t cifar_check_file(const dpt_reader_t *r)
{
    if (r->is_gzip)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 0: gzip-compressed CIFAR-10 batch (expected raw 3073-byte "
                         "records vs got gzip magic 1f 8b)",
                         r->path);
    if (r->file_size == 0)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: empty file (expected a multiple of 3073 bytes vs got 0)", r->path);
    if (r->file_size % CIFAR_RECORD)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: file size %zu is not a multiple of the 3073-byte record (%zu "
                         "records + %zu extra bytes)",
                         r->path, r->file_size, r->file_size / CIFAR_RECORD,
                         r->file_size % CIFAR_RECORD);
    return DPT_OK;
}

/* Reads the records of one file into pixels/labels starting at sample `first`. */
static dpt_status_t cifar_read_file(dpt_reader_t *r, unsigned char *chunk, dpt_store_t *st,
                                    size_t first)
{
    size_t n = r->file_size / CIFAR_RECORD;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CIFAR_CHUNK_RECORDS ? n - done : CIFAR_CHUNK_RECORDS;
        dpt_status_t s = dpt_reader_read(r, chunk, k * CIFAR_RECORD, "CIFAR-10 records");
        if (s) return s;
        for (size_t j = 0; j < k; j++) {
            const unsigned char *rec = chunk + j * CIFAR_RECORD;
            size_t i = done + j;
            if (rec[0] >= DPT_TEN_CLASSES)
                return dpt_error(DPT_ERR_FORMAT,
                                 "%s: byte %zu: label of record %zu out of range (expected < "
                                 "10 vs got %u)",
                                 r->path, i * CIFAR_RECORD, i, rec[0]);
            st->labels[first + i] = rec[0];
            memcpy(st->u8 + (first + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
        done += k;
    }
    return dpt_reader_expect_end(r, "the last whole record");
}

static dpt_status_t cifar_load_opened(dpt_reader_t *rs, size_t n, const dpt_data_options_t *opt,
                                      dpt_store_t *st)
{
    size_t count = 0, need;
    for (size_t f = 0; f < n; f++) {
        dpt_status_t s = cifar_check_file(&rs[f]);
        if (s) return s;
        count += rs[f].file_size / CIFAR_RECORD; /* each term < file size: no overflow */
    }
    if (count > UINT32_MAX || !dpt_store_bytes_needed(count, CIFAR_PIXELS, &need))
        return dpt_error(DPT_ERR_LIMIT, "%s: too many CIFAR-10 records (%zu)", rs[0].path, count);
    if (need > opt->max_bytes)
        return dpt_error(DPT_ERR_LIMIT,
                         "%s: %zu CIFAR-10 records are over the memory limit (max_bytes %zu vs "
                         "needed %zu)",
                         rs[0].path, count, opt->max_bytes, need);
    st->count = count, st->c = 3, st->h = CIFAR_SIDE, st->w = CIFAR_SIDE;
    st->features = CIFAR_PIXELS, st->classes = DPT_TEN_CLASSES;
    st->u8 = dpt_alloc_bulk(count * CIFAR_PIXELS);
    st->labels = malloc(count * sizeof *st->labels);
    unsigned char *chunk = malloc((size_t)CIFAR_CHUNK_RECORDS * CIFAR_RECORD);
    dpt_status_t s = DPT_OK;
    if (!st->u8 || !st->labels || !chunk)
        s = dpt_error(DPT_ERR_NOMEM, "%s: out of memory for %zu records", rs[0].path, count);
    for (size_t f = 0, first = 0; !s && f < n; f++) {
        s = cifar_read_file(&rs[f], chunk, st, first);
        first += rs[f].file_size / CIFAR_RECORD;
    }
    free(chunk);
    return s;
}

dpt_status_t dpt_cifar10_load(const char *const *paths, size_t n, const char *name,
                              const dpt_data_options_t *opt, dpt_store_t **out)
{
    if (n == 0 || n > CIFAR_MAX_FILES)
        return dpt_error(DPT_ERR_INVALID_ARG, "cifar10: %zu batch files (expected 1 to %d)", n,
                         CIFAR_MAX_FILES);
    dpt_reader_t rs[CIFAR_MAX_FILES];
    size_t opened = 0;
    dpt_status_t s = DPT_OK;
    while (!s && opened < n) {
        s = dpt_reader_open(&rs[opened], paths[opened]);
        if (!s) opened++;
    }
    dpt_store_t *st = NULL;
    if (!s) {
        st = dpt_store_new(name);
        s = st ? cifar_load_opened(rs, n, opt, st)
               : dpt_error(DPT_ERR_NOMEM, "%s: out of memory", paths[0]);
    }
    for (size_t f = 0; f < opened; f++)
        dpt_reader_close(&rs[f]);
    if (s) {
        dpt_store_release(st);
        return s;
    }
    *out = st;
    return DPT_OK;
}
