/* Owns the per-epoch metrics CSV: crash-safe row writer, resume truncation, and the reader. */
#include "dptrain/metrics.h"
#include "io/atomic_file.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checked.h"
#include "core/fmt.h"

/* A metrics file is a few hundred rows; these caps only stop a wrong file from eating memory. */
#define METRICS_MAX_FILE_BYTES ((size_t)256 << 20)
#define METRICS_MAX_COLS 1024

struct dpt_metrics_writer {
    FILE *f;
    char *path;
    size_t ncols;
};

struct dpt_metrics_table {
    size_t cols;
    size_t rows;   /* data rows, header excluded */
    size_t cap;    /* capacity of cells, in rows (header included) */
    char **cells;  /* (rows + 1) x cols, row 0 is the header */
    bool torn;     /* the file ended in a line without newline, which was left out */
    char **record; /* fields of the record being parsed */
    size_t nrecord;
    bool in_fini;
    dpt_status_t err;
    const char *path;
};

/* ---- reading ---------------------------------------------------------------------------- */

static void free_record(dpt_metrics_table_t *t)
{
    for (size_t j = 0; j < t->nrecord; j++)
        free(t->record[j]);
    t->nrecord = 0;
}

void dpt_metrics_table_free(dpt_metrics_table_t *t)
{
    if (!t) return;
    size_t n = t->cols ? (t->rows + 1) * t->cols : 0;
    for (size_t k = 0; k < n; k++)
        free(t->cells[k]);
    free(t->cells);
    free_record(t);
    free(t->record);
    free(t);
}

/* libcsv field callback: copies the field into the current record. */
static void on_field(void *s, size_t len, void *data)
{
    dpt_metrics_table_t *t = data;
    if (t->err) return;
    size_t row = t->rows + (t->cols ? 1 : 0);
    if (t->nrecord >= METRICS_MAX_COLS) {
        t->err = dpt_error(DPT_ERR_LIMIT, "%s: row %zu: more than %d fields", t->path, row,
                           METRICS_MAX_COLS);
        return;
    }
    if (len && memchr(s, '\0', len)) {
        t->err = dpt_error(DPT_ERR_FORMAT, "%s: row %zu: field %zu contains a NUL byte", t->path,
                           row, t->nrecord + 1);
        return;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        t->err = dpt_error(DPT_ERR_NOMEM, "%s: out of memory reading a field", t->path);
        return;
    }
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    t->record[t->nrecord++] = copy;
}

/* Appends the finished record as the header (first one) or as a data row. */
static dpt_status_t take_record(dpt_metrics_table_t *t)
{
    if (!t->cols) {
        t->cols = t->nrecord;
        t->cap = 16;
        t->cells = calloc(t->cap * t->cols, sizeof *t->cells);
        if (!t->cells) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", t->path);
    } else if (t->nrecord != t->cols) {
        return dpt_error(DPT_ERR_FORMAT, "%s: row %zu has %zu fields, the header has %zu", t->path,
                         t->rows + 1, t->nrecord, t->cols);
    } else {
        if (t->rows + 1 == t->cap) {
            size_t cap, bytes;
            if (!dpt_mul_size(t->cap, 2, &cap) ||
                !dpt_mul_size(cap * t->cols, sizeof(char *), &bytes))
                return dpt_error(DPT_ERR_LIMIT, "%s: too many rows", t->path);
            char **cells = realloc(t->cells, bytes);
            if (!cells) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", t->path);
            t->cells = cells;
            t->cap = cap;
        }
        t->rows++;
    }
    memcpy(t->cells + t->rows * t->cols, t->record, t->nrecord * sizeof *t->record);
    t->nrecord = 0;
    return DPT_OK;
}

/* libcsv end-of-record callback. A record ended by csv_fini had no newline: the writer was
 * cut short, so it is not a row. */
static void on_record(int c, void *data)
{
    dpt_metrics_table_t *t = data;
    if (t->err) return;
    if (t->in_fini) {
        t->torn = true;
        free_record(t);
        return;
    }
    t->err = take_record(t);
    if (t->err) free_record(t);
}

/* Reads the whole file into a malloc'd buffer, refusing files over the cap. */
static dpt_status_t slurp(const char *path, char **out, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return dpt_error(DPT_ERR_IO, "%s: not a regular file", path);
    }
    if ((uintmax_t)st.st_size > METRICS_MAX_FILE_BYTES) {
        fclose(f);
        return dpt_error(DPT_ERR_LIMIT, "%s: %jd bytes is over the %zu-byte cap for a metrics file",
                         path, (intmax_t)st.st_size, METRICS_MAX_FILE_BYTES);
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, size, f);
    fclose(f);
    if (got != size) {
        free(buf);
        return dpt_error(DPT_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, size);
    }
    buf[size] = '\0';
    *out = buf;
    *n = size;
    return DPT_OK;
}

dpt_status_t dpt_metrics_read(const char *path, dpt_metrics_table_t **out)
{
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    dpt_status_t s = slurp(path, &buf, &n);
    if (s) return s;
    dpt_metrics_table_t *t = calloc(1, sizeof *t);
    if (t) t->record = calloc(METRICS_MAX_COLS, sizeof *t->record);
    if (!t || !t->record) {
        free(buf);
        dpt_metrics_table_free(t);
        return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    t->path = path;
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT) != 0) {
        free(buf);
        dpt_metrics_table_free(t);
        return dpt_error(DPT_ERR_NOMEM, "%s: cannot initialise the CSV parser", path);
    }
    if (csv_parse(&p, buf, n, on_field, on_record, t) != n && !t->err)
        t->err = dpt_error(DPT_ERR_FORMAT, "%s: after row %zu: %s", path, t->rows,
                           csv_strerror(csv_error(&p)));
    t->in_fini = true;
    if (!t->err) csv_fini(&p, on_field, on_record, t);
    csv_free(&p);
    free(buf);
    if (!t->err && !t->cols) t->err = dpt_error(DPT_ERR_FORMAT, "%s: no header line", path);
    if (t->err) {
        s = t->err;
        dpt_metrics_table_free(t);
        return s;
    }
    t->path = NULL; /* borrowed only while parsing */
    *out = t;
    return DPT_OK;
}

size_t dpt_metrics_table_cols(const dpt_metrics_table_t *t)
{
    return t->cols;
}

size_t dpt_metrics_table_rows(const dpt_metrics_table_t *t)
{
    return t->rows;
}

const char *dpt_metrics_table_column(const dpt_metrics_table_t *t, size_t j)
{
    return t->cells[j];
}

size_t dpt_metrics_table_find(const dpt_metrics_table_t *t, const char *name)
{
    for (size_t j = 0; j < t->cols; j++)
        if (!strcmp(t->cells[j], name)) return j;
    return (size_t)-1;
}

const char *dpt_metrics_table_field(const dpt_metrics_table_t *t, size_t row, size_t col)
{
    return t->cells[(row + 1) * t->cols + col];
}

/* ---- writing ---------------------------------------------------------------------------- */

/* Unquoted text survives a CSV reader only without separators, quotes, line breaks and
 * leading/trailing blanks (libcsv trims those); anything else goes through csv_fwrite. */
static bool needs_quotes(const char *s)
{
    size_t n = strlen(s);
    if (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')) return true;
    return strpbrk(s, ",\"\r\n") != NULL;
}

/* Writes one text field; returns false on a stdio error. */
static bool put_text(FILE *f, const char *s)
{
    if (needs_quotes(s)) return csv_fwrite(f, s, strlen(s)) == 0;
    return fputs(s, f) != EOF;
}

static bool put_value(FILE *f, const dpt_metric_value_t *v)
{
    switch (v->kind) {
    case DPT_MV_INT:
        return fprintf(f, "%" PRId64, v->i) > 0;
    /* The shortest text that reads back to the same double (core/fmt.h); non-finite values
     * are "no value" in this format, like EMPTY, so that spreadsheets and plots see a gap. */
    case DPT_MV_REAL:
        return isfinite(v->r) ? dpt_fprint_double(f, v->r) > 0 : true;
    case DPT_MV_TEXT:
        return v->text ? put_text(f, v->text) : true;
    default:
        return true;
    }
}

/* Pushes buffered bytes to the disk. fsync of a pipe or character device fails with EINVAL:
 * there is nothing to make durable then. */
static dpt_status_t flush_durable(FILE *f, const char *path)
{
    if (fflush(f) != 0 || ferror(f))
        return dpt_error(DPT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (fsync(fileno(f)) != 0 && errno != EINVAL)
        return dpt_error(DPT_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    return DPT_OK;
}

/* Writes the fields of one line (text) and its newline; false on a stdio error. */
static bool put_text_line(FILE *f, char *const *fields, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (j && fputc(',', f) == EOF) return false;
        if (!put_text(f, fields[j])) return false;
    }
    return fputc('\n', f) != EOF;
}

/* A stdio stream on a new temporary file beside path (see io/atomic_file.h). */
static FILE *open_temp_beside(const char *path, char **tmp_out)
{
    int fd = dpt_create_temp_beside(path, tmp_out);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(*tmp_out);
        free(*tmp_out);
        errno = e;
    }
    return f;
}

/* Keeps the header and the rows with epoch <= resume_epoch, replacing path atomically. */
static dpt_status_t rewrite_kept(const char *path, const dpt_metrics_table_t *t, const bool *keep)
{
    char *tmp = NULL;
    FILE *f = open_temp_beside(path, &tmp);
    if (!f)
        return dpt_error(DPT_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                         strerror(errno));
    bool ok = put_text_line(f, t->cells, t->cols);
    for (size_t r = 0; ok && r < t->rows; r++)
        if (keep[r]) ok = put_text_line(f, t->cells + (r + 1) * t->cols, t->cols);
    dpt_status_t s = ok ? flush_durable(f, tmp)
                        : dpt_error(DPT_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && !s)
        s = dpt_error(DPT_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (!s && rename(tmp, path) != 0)
        s = dpt_error(DPT_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (s) unlink(tmp);
    free(tmp);
    return s ? s : dpt_sync_parent_dir(path);
}

/* The existing header must equal the run's columns: a resumed run appends under it. */
static dpt_status_t check_header(const char *path, const dpt_metrics_table_t *t,
                                 const char *const *columns, size_t ncols)
{
    for (size_t j = 0; j < ncols && j < t->cols; j++)
        if (strcmp(t->cells[j], columns[j]))
            return dpt_error(DPT_ERR_FORMAT,
                             "%s: header differs from this run's columns: column %zu is '%s' in "
                             "the file, '%s' expected",
                             path, j + 1, t->cells[j], columns[j]);
    if (t->cols != ncols)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: header differs from this run's columns: the file has %zu columns, "
                         "this run writes %zu ('%s' %s)",
                         path, t->cols, ncols, t->cols > ncols ? t->cells[ncols] : columns[t->cols],
                         t->cols > ncols ? "is extra in the file" : "is missing from the file");
    return DPT_OK;
}

/* Parses a whole-field decimal integer. */
static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) return false;
    *out = (int64_t)v;
    return true;
}

/* Drops rows after resume_epoch (and a torn last line) so that appending cannot duplicate. */
static dpt_status_t prepare_resume(const char *path, const char *const *columns, size_t ncols,
                                   int64_t resume_epoch)
{
    dpt_metrics_table_t *t;
    dpt_status_t s = dpt_metrics_read(path, &t);
    if (s) return s;
    s = check_header(path, t, columns, ncols);
    bool *keep = s ? NULL : calloc(t->rows + 1, sizeof *keep);
    if (!s && !keep) s = dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    bool dropped = t->torn;
    for (size_t r = 0; !s && r < t->rows; r++) {
        const char *e = dpt_metrics_table_field(t, r, 0);
        int64_t epoch;
        if (!parse_i64(e, &epoch)) {
            s = dpt_error(DPT_ERR_FORMAT, "%s: row %zu: epoch '%s' is not an integer", path, r + 1,
                          e);
            break;
        }
        keep[r] = epoch <= resume_epoch;
        dropped |= !keep[r];
    }
    if (!s && dropped) s = rewrite_kept(path, t, keep);
    free(keep);
    dpt_metrics_table_free(t);
    return s;
}

static dpt_status_t check_columns(const char *path, const char *const *columns, size_t ncols)
{
    if (!path || !columns || ncols == 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "metrics: need a path and at least one column");
    if (ncols > METRICS_MAX_COLS)
        return dpt_error(DPT_ERR_LIMIT, "%s: %zu columns, at most %d", path, ncols,
                         METRICS_MAX_COLS);
    for (size_t j = 0; j < ncols; j++)
        if (!columns[j] || !columns[j][0])
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: column %zu has no name", path, j + 1);
    return DPT_OK;
}

dpt_status_t dpt_metrics_open(const char *path, const char *const *columns, size_t ncols,
                              int64_t resume_epoch, dpt_metrics_writer_t **out)
{
    *out = NULL;
    dpt_status_t s = check_columns(path, columns, ncols);
    if (s) return s;
    if (resume_epoch >= 0 && (s = prepare_resume(path, columns, ncols, resume_epoch))) return s;
    dpt_metrics_writer_t *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    w->ncols = ncols;
    w->f = fopen(path, resume_epoch >= 0 ? "a" : "w");
    if (!w->f) {
        s = dpt_error(DPT_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    } else if (resume_epoch < 0) {
        s = put_text_line(w->f, (char *const *)columns, ncols)
                ? flush_durable(w->f, path)
                : dpt_error(DPT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    if (s) {
        dpt_metrics_close(w);
        return s;
    }
    *out = w;
    return DPT_OK;
}

dpt_status_t dpt_metrics_write_row(dpt_metrics_writer_t *w, const dpt_metric_value_t *values)
{
    bool ok = true;
    for (size_t j = 0; ok && j < w->ncols; j++) {
        if (j) ok = fputc(',', w->f) != EOF;
        if (ok) ok = put_value(w->f, &values[j]);
    }
    if (ok) ok = fputc('\n', w->f) != EOF;
    if (!ok) return dpt_error(DPT_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    return flush_durable(w->f, w->path);
}

void dpt_metrics_close(dpt_metrics_writer_t *w)
{
    if (!w) return;
    if (w->f) fclose(w->f);
    free(w->path);
    free(w);
}
