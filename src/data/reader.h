/* Owns sequential reading of a possibly gzip-compressed file with byte-offset error
 * messages: short reads, corrupt or truncated gzip streams and trailing data are errors. */
#ifndef DPT_DATA_READER_H
#define DPT_DATA_READER_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "dptrain/status.h"

typedef struct dpt_reader {
    gzFile gz;
    const char *path; /* borrowed; must outlive the reader */
    size_t off;       /* bytes of (decompressed) content consumed so far */
    int is_gzip;      /* the file starts with the gzip magic 1f 8b */
    size_t file_size; /* on-disk size in bytes */
} dpt_reader_t;

/* Opens path for reading; DPT_ERR_IO naming the file when it cannot be opened, and
 * DPT_ERR_FORMAT for xz, zstd, bzip2, zip and 7z files (recognised by magic; only gzip is
 * read). */
dpt_status_t dpt_reader_open(dpt_reader_t *r, const char *path);
/* Reads exactly n bytes into buf; `what` names the data for the message ("image data").
 * A short read is DPT_ERR_FORMAT with the byte offset and expected vs got. */
dpt_status_t dpt_reader_read(dpt_reader_t *r, void *buf, size_t n, const char *what);
/* Reads up to cap bytes into buf; *got = 0 at a clean end of file. A read error or a
 * corrupt or truncated gzip stream is an error with the byte offset. */
dpt_status_t dpt_reader_read_some(dpt_reader_t *r, void *buf, size_t cap, size_t *got);
/* Succeeds only at a clean end of file (and, for gzip, a stream whose trailer checks). */
dpt_status_t dpt_reader_expect_end(dpt_reader_t *r, const char *after);
void dpt_reader_close(dpt_reader_t *r);

#endif
