/* Per-epoch metrics CSV: the writer the trainer appends one row per epoch to (crash-safe,
 * resumable), and a small reader of the same files for `dptrain plot`.
 *
 * Format (docs/formats.md): RFC 4180 CSV, one header line of column names, then one line per
 * epoch. Integers in decimal, reals as %.17g (they read back bit for bit with strtod), a
 * missing or non-finite value as an empty field, text quoted only when it needs to be. */
#ifndef DPTRAIN_METRICS_H
#define DPTRAIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DPT_MV_EMPTY, DPT_MV_INT, DPT_MV_REAL, DPT_MV_TEXT } dpt_metric_kind_t;

/* One cell: only the member named by kind is read. text NULL is written as empty. */
typedef struct {
    dpt_metric_kind_t kind;
    int64_t i;
    double r;
    const char *text;
} dpt_metric_value_t;

typedef struct dpt_metrics_writer dpt_metrics_writer_t;

/* Opens path with the given header (ncols >= 1 column names, copied; none may be empty). The
 * first column is the epoch number: resume compares it as an integer.
 *
 * resume_epoch < 0: create/truncate path and write the header.
 * resume_epoch >= 0: path must exist (else DPT_ERR_IO) with exactly this header (else
 * DPT_ERR_FORMAT naming the first difference); rows whose epoch is > resume_epoch are dropped,
 * and so is a final line cut short by a crash (no newline), by rewriting the file atomically
 * (temp file + rename); further rows are appended. Never a second header, never a duplicate
 * row. The writer is owned by the caller (dpt_metrics_close) and not thread-safe. */
dpt_status_t dpt_metrics_open(const char *path, const char *const *columns, size_t ncols,
                              int64_t resume_epoch, dpt_metrics_writer_t **out);

/* Writes one row of ncols values and makes it durable (fflush + fsync), so a process killed
 * after this returns keeps the row. A write error (disk full, ...) is DPT_ERR_IO naming the
 * path; the writer should then be closed. */
dpt_status_t dpt_metrics_write_row(dpt_metrics_writer_t *w, const dpt_metric_value_t *values);

/* Closes the file and frees the writer. NULL is a no-op. */
void dpt_metrics_close(dpt_metrics_writer_t *w);

/* A metrics CSV read back whole, as text. Rows with a different number of fields than the
 * header are DPT_ERR_FORMAT; a final line without a newline (a write cut short) is left out. */
typedef struct dpt_metrics_table dpt_metrics_table_t;

/* Reads path (DPT_ERR_IO if it cannot be read, DPT_ERR_FORMAT if it is not such a CSV,
 * DPT_ERR_LIMIT over 256 MiB or 1024 columns). The caller owns *out (dpt_metrics_table_free). */
dpt_status_t dpt_metrics_read(const char *path, dpt_metrics_table_t **out);
size_t dpt_metrics_table_cols(const dpt_metrics_table_t *t);
size_t dpt_metrics_table_rows(const dpt_metrics_table_t *t);
/* Header name of column j (j < cols). */
const char *dpt_metrics_table_column(const dpt_metrics_table_t *t, size_t j);
/* Index of the column called name, or (size_t)-1 when there is none. */
size_t dpt_metrics_table_find(const dpt_metrics_table_t *t, const char *name);
/* Field (row, col) as NUL-terminated text, "" when empty. Valid until the table is freed. */
const char *dpt_metrics_table_field(const dpt_metrics_table_t *t, size_t row, size_t col);
/* NULL is a no-op. */
void dpt_metrics_table_free(dpt_metrics_table_t *t);

#ifdef __cplusplus
}
#endif
#endif
