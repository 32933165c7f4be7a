/* Owns the IDX format (MNIST, Fashion-MNIST): header checks and loading one image/label pair
 * of files, raw or gzip, straight into uint8 storage. */
#include <stdlib.h>

#include "core/alloc.h"
#include "core/checked.h"
#include "data/data_internal.h"
#include "data/reader.h"

/* IDX element type 0x08: unsigned byte, the only type image datasets use. */
#define IDX_TYPE_U8 0x08
/* deflate expands at most 1032:1, so a gzip file of n bytes holds at most 1032 n bytes of
 * content: the bound that lets a compressed file's declared sizes be checked before any
 * allocation, like a raw file's. */
#define IDX_GZ_MAX_RATIO 1032u

/* Checks that the file behind r can hold `need` more bytes after the header of `header`
 * bytes: exactly for raw files, by the deflate bound for gzip. */
static dpt_status_t idx_check_room(const dpt_reader_t *r, size_t header, size_t need,
                                   const char *what)
{
    size_t room;
    if (!r->is_gzip) {
        if (r->file_size - header < need)
            return dpt_error(DPT_ERR_FORMAT,
                             "%s: byte %zu: file ends inside %s (expected %zu bytes vs got %zu)",
                             r->path, header, what, need, r->file_size - header);
    } else if (dpt_mul_size(r->file_size, IDX_GZ_MAX_RATIO, &room) && room - header < need) {
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte %zu: gzip file of %zu bytes cannot hold the declared %s "
                         "(expected %zu bytes vs at most %zu at deflate's 1032:1)",
                         r->path, header, r->file_size, what, need, room - header);
    }
    return DPT_OK;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads magic and dims of an IDX file that must have `ndims` dimensions; dims[0..ndims). */
static dpt_status_t idx_read_header(dpt_reader_t *r, unsigned ndims, const char *kind,
                                    uint32_t *dims)
{
    unsigned char m[4], d[12];
    dpt_status_t s = dpt_reader_read(r, m, sizeof m, "IDX header");
    if (s) return s;
    if (m[0] != 0 || m[1] != 0)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 0: bad IDX magic (expected 00 00 08 %02x vs got %02x %02x "
                         "%02x %02x)",
                         r->path, ndims, m[0], m[1], m[2], m[3]);
    if (m[2] != IDX_TYPE_U8)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 2: unsupported IDX element type (expected 0x08 unsigned byte "
                         "vs got 0x%02x)",
                         r->path, m[2]);
    if (m[3] != ndims)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 3: wrong number of dimensions for %s (expected %u vs got %u)",
                         r->path, kind, ndims, m[3]);
    s = dpt_reader_read(r, d, 4 * (size_t)ndims, "IDX header");
    if (s) return s;
    for (unsigned i = 0; i < ndims; i++) {
        dims[i] = be32(d + 4 * i);
        if (dims[i] == 0)
            return dpt_error(DPT_ERR_FORMAT,
                             "%s: byte %u: dimension %u of %s is zero (expected > 0 vs got 0)",
                             r->path, 4 + 4 * i, i, kind);
    }
    return DPT_OK;
}

/* Sizes the image data and checks it against the caps and against the real file size
 * (exactly for raw files, by the deflate bound for gzip), all before anything is allocated. */
static dpt_status_t idx_check_size(const dpt_reader_t *ri, const uint32_t *dims,
                                   const dpt_data_options_t *opt, size_t *row)
{
    size_t need, data;
    if (!dpt_mul_size(dims[1], dims[2], row) || !dpt_mul_size(*row, dims[0], &data) ||
        !dpt_store_bytes_needed(dims[0], *row, &need))
        return dpt_error(DPT_ERR_LIMIT,
                         "%s: byte 4: image data size overflows (%u x %u x %u bytes)", ri->path,
                         dims[0], dims[1], dims[2]);
    /* A file that cannot hold what it declares is malformed, whatever the limit. */
    dpt_status_t s = idx_check_room(ri, 16, data, "image data");
    if (s) return s;
    if (need > opt->max_bytes)
        return dpt_error(DPT_ERR_LIMIT,
                         "%s: byte 4: dataset of %u x %u x %u images is over the memory limit "
                         "(max_bytes %zu vs needed %zu)",
                         ri->path, dims[0], dims[1], dims[2], opt->max_bytes, need);
    return DPT_OK;
}

/* Widens the label bytes read into the front of labels[] to int32, in place (back to front
 * so no byte is overwritten before it is read), checking each against classes. */
static dpt_status_t idx_widen_labels(const char *path, int32_t *labels, size_t n, size_t classes,
                                     size_t *max_out)
{
    const uint8_t *b = (const uint8_t *)labels;
    size_t max = 0;
    for (size_t i = 0; i < n; i++) {
        if (classes && b[i] >= classes)
            return dpt_error(DPT_ERR_FORMAT,
                             "%s: byte %zu: label of item %zu out of range (expected < %zu vs "
                             "got %u)",
                             path, 8 + i, i, classes, b[i]);
        if (b[i] > max) max = b[i];
    }
    for (size_t i = n; i-- > 0;)
        labels[i] = b[i];
    *max_out = max;
    return DPT_OK;
}

static dpt_status_t idx_read_all(dpt_reader_t *ri, dpt_reader_t *rl, size_t classes,
                                 const dpt_data_options_t *opt, dpt_store_t *st)
{
    uint32_t idims[3], ldims[1];
    dpt_status_t s = idx_read_header(ri, 3, "images", idims);
    if (!s) s = idx_read_header(rl, 1, "labels", ldims);
    if (s) return s;
    if (ldims[0] != idims[0])
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: byte 4: label count does not match the images in %s (expected %u "
                         "vs got %u)",
                         rl->path, ri->path, idims[0], ldims[0]);
    size_t row, max;
    s = idx_check_size(ri, idims, opt, &row);
    if (!s) s = idx_check_room(rl, 8, idims[0], "label data");
    if (s) return s;
    st->count = idims[0];
    st->c = 1, st->h = idims[1], st->w = idims[2], st->features = row;
    st->u8 = dpt_alloc_bulk(st->count * row);
    st->labels = malloc(st->count * sizeof *st->labels);
    if (!st->u8 || !st->labels)
        return dpt_error(DPT_ERR_NOMEM, "%s: out of memory for %zu images", ri->path, st->count);
    s = dpt_reader_read(ri, st->u8, st->count * row, "image data");
    if (!s) s = dpt_reader_expect_end(ri, "the declared image data");
    if (!s) s = dpt_reader_read(rl, st->labels, st->count, "label data");
    if (!s) s = dpt_reader_expect_end(rl, "the declared label data");
    if (!s) s = idx_widen_labels(rl->path, st->labels, st->count, classes, &max);
    if (s) return s;
    st->classes = classes ? classes : max + 1;
    return DPT_OK;
}

dpt_status_t dpt_idx_load(const char *images, const char *labels, size_t classes, const char *name,
                          const dpt_data_options_t *opt, dpt_store_t **out)
{
    dpt_reader_t ri, rl;
    dpt_status_t s = dpt_reader_open(&ri, images);
    if (s) return s;
    s = dpt_reader_open(&rl, labels);
    if (s) {
        dpt_reader_close(&ri);
        return s;
    }
    dpt_store_t *st = dpt_store_new(name);
    s = st ? idx_read_all(&ri, &rl, classes, opt, st)
           : dpt_error(DPT_ERR_NOMEM, "%s: out of memory", images);
    dpt_reader_close(&ri);
    dpt_reader_close(&rl);
    if (s) {
        dpt_store_release(st);
        return s;
    }
    *out = st;
    return DPT_OK;
}
