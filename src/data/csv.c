/* Owns numeric CSV tables: streaming them through libcsv (strict quoting), checking every
 * field, and storing features as float row-major plus one integer label column. */
#include <csv.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "data/data_internal.h"
#include "data/reader.h"

/* Bytes handed to libcsv per call. */
#define CSV_READ_CHUNK (64u * 1024u)
/* How much of a bad field an error message quotes. */
#define CSV_PREVIEW 40

typedef struct csv_state {
    const char *path;
    size_t max_bytes;
    size_t row;       /* 1-based number of the record being parsed */
    size_t col;       /* fields seen so far in that record */
    size_t ncols;     /* fields per record, fixed by the first record; 0 until then */
    size_t label_col; /* 0-based, resolved when ncols is known */
    int label_opt;    /* as given: -1 = last column */
    int in_header;    /* the current record is the header row */
    double *cur;      /* values of the current record, [ncols] */
    size_t cur_cap;
    float *x; /* features, [cap_rows x (ncols - 1)] */
    int32_t *y;
    size_t rows, cap_rows;
    size_t max_label;
    dpt_status_t status; /* first error; the callbacks ignore everything after it */
} csv_state_t;

/* libcsv grows its field buffer through this; refusing past the cap makes csv_parse stop
 * with CSV_ENOMEM instead of buffering an absurd field. libcsv passes no context, so the
 * refusal is flagged per thread. */
static _Thread_local int csv_field_cap_hit;

static void *csv_capped_realloc(void *p, size_t size)
{
    if (size > DPT_CSV_MAX_FIELD + 1) {
        csv_field_cap_hit = 1;
        return NULL;
    }
    return realloc(p, size);
}

/* Copies up to CSV_PREVIEW bytes of a field for a one-line message. */
static const char *csv_preview(char out[CSV_PREVIEW + 4], const char *s, size_t len)
{
    size_t n = len < CSV_PREVIEW ? len : CSV_PREVIEW;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    strcpy(out + n, len > n ? "..." : "");
    return out;
}

/* Records a field error that quotes the field. */
static dpt_status_t csv_fail_at(csv_state_t *st, dpt_status_t s, size_t col, const char *what,
                                const char *field, size_t len)
{
    char pv[CSV_PREVIEW + 4];
    st->status = dpt_error(s, "%s: row %zu, column %zu: %s '%s'", st->path, st->row, col, what,
                           csv_preview(pv, field, len));
    return st->status;
}

/* Parses one field as a finite float-range number into *v. */
static dpt_status_t csv_parse_number(csv_state_t *st, const char *s, size_t len, size_t col,
                                     double *v)
{
    if (len == 0)
        return st->status = dpt_error(DPT_ERR_FORMAT,
                                      "%s: row %zu, column %zu: empty field (expected a number)",
                                      st->path, st->row, col);
    char *end = NULL;
    *v = strtod(s, &end);
    if (end != s + len) return csv_fail_at(st, DPT_ERR_FORMAT, col, "not a number:", s, len);
    if (!isfinite(*v)) return csv_fail_at(st, DPT_ERR_FORMAT, col, "value is not finite:", s, len);
    if (fabs(*v) > FLT_MAX)
        return csv_fail_at(st, DPT_ERR_FORMAT, col, "value out of float range:", s, len);
    return DPT_OK;
}

static void csv_on_field(void *data, size_t len, void *ctx)
{
    csv_state_t *st = ctx;
    if (st->status) return;
    size_t c = st->col++;
    if (c >= DPT_CSV_MAX_COLUMNS) {
        st->status = dpt_error(DPT_ERR_LIMIT, "%s: row %zu, column %zu: more than %zu columns",
                               st->path, st->row, c + 1, DPT_CSV_MAX_COLUMNS);
        return;
    }
    if (st->in_header || (st->ncols && c >= st->ncols)) return; /* ragged: seen at row end */
    double v = 0.0;
    if (csv_parse_number(st, data, len, c + 1, &v)) return;
    if (c >= st->cur_cap) {
        size_t cap = st->cur_cap ? 2 * st->cur_cap : 64;
        double *p = realloc(st->cur, cap * sizeof *p);
        if (!p) {
            st->status = dpt_error(DPT_ERR_NOMEM, "%s: row %zu: out of memory", st->path, st->row);
            return;
        }
        st->cur = p, st->cur_cap = cap;
    }
    st->cur[c] = v;
}

/* Fixes the column count and the label column from the first record. */
static dpt_status_t csv_first_record(csv_state_t *st, size_t n)
{
    if (n < 2)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: row %zu, column 1: a table needs a label and at least one feature "
                         "(expected >= 2 columns vs got %zu)",
                         st->path, st->row, n);
    if (st->label_opt >= 0 && (size_t)st->label_opt >= n)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "%s: row %zu: label column %d out of range (expected 0..%zu or -1 for "
                         "the last vs got %d)",
                         st->path, st->row, st->label_opt, n - 1, st->label_opt);
    st->ncols = n;
    st->label_col = st->label_opt < 0 ? n - 1 : (size_t)st->label_opt;
    return DPT_OK;
}

/* Makes room for one more data row, within max_bytes. */
static dpt_status_t csv_grow(csv_state_t *st)
{
    size_t nf = st->ncols - 1, row_bytes, per_row, need;
    /* per row: float features, label, one index entry of the full view */
    if (!dpt_mul_size(nf, sizeof(float), &row_bytes) ||
        !dpt_store_bytes_needed(1, row_bytes, &per_row) ||
        !dpt_mul_size(per_row, st->rows + 1, &need))
        need = SIZE_MAX;
    if (need > st->max_bytes)
        return dpt_error(DPT_ERR_LIMIT,
                         "%s: row %zu: table is over the memory limit (max_bytes %zu vs needed at "
                         "least %zu)",
                         st->path, st->row, st->max_bytes, need);
    if (st->rows == UINT32_MAX)
        return dpt_error(DPT_ERR_LIMIT, "%s: row %zu: more than %u data rows", st->path, st->row,
                         UINT32_MAX);
    size_t cap = st->cap_rows ? 2 * st->cap_rows : 256;
    if (cap > st->max_bytes / per_row) cap = st->max_bytes / per_row;
    if (cap > UINT32_MAX) cap = UINT32_MAX;
    float *x = realloc(st->x, cap * nf * sizeof *x);
    if (x) st->x = x;
    int32_t *y = x ? realloc(st->y, cap * sizeof *y) : NULL;
    if (!y) return dpt_error(DPT_ERR_NOMEM, "%s: row %zu: out of memory", st->path, st->row);
    st->y = y, st->cap_rows = cap;
    return DPT_OK;
}

/* Checks the label of the completed record and appends the record to the table. */
static dpt_status_t csv_store_row(csv_state_t *st)
{
    double v = st->cur[st->label_col];
    size_t col = st->label_col + 1;
    if (v < 0 || v != floor(v))
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: row %zu, column %zu: label must be a non-negative integer (got %g)",
                         st->path, st->row, col, v);
    if (v >= DPT_CSV_MAX_CLASSES)
        return dpt_error(DPT_ERR_LIMIT,
                         "%s: row %zu, column %zu: label over the cap of %u classes (expected < "
                         "%u vs got %.0f)",
                         st->path, st->row, col, DPT_CSV_MAX_CLASSES, DPT_CSV_MAX_CLASSES, v);
    if (st->rows == st->cap_rows) {
        dpt_status_t s = csv_grow(st);
        if (s) return s;
    }
    float *out = st->x + st->rows * (st->ncols - 1);
    for (size_t c = 0, j = 0; c < st->ncols; c++)
        if (c != st->label_col) out[j++] = (float)st->cur[c];
    st->y[st->rows++] = (int32_t)v;
    if ((size_t)v > st->max_label) st->max_label = (size_t)v;
    return DPT_OK;
}

static void csv_on_row(int term, void *ctx)
{
    csv_state_t *st = ctx;
    size_t n = st->col;
    (void)term; /* the terminating character (CR or LF) does not matter here */
    if (st->status) return;
    if (!st->ncols && (st->status = csv_first_record(st, n))) return;
    if (n != st->ncols) {
        st->status =
            dpt_error(DPT_ERR_FORMAT,
                      "%s: row %zu, column %zu: ragged row (expected %zu fields vs got "
                      "%zu)",
                      st->path, st->row, (n < st->ncols ? n : st->ncols) + 1, st->ncols, n);
        return;
    }
    if (!st->in_header) st->status = csv_store_row(st);
    st->in_header = 0;
    st->row++;
    st->col = 0;
}

/* Length of the prefix of b[0..n) that keeps every line within DPT_CSV_MAX_LINE bytes;
 * *line_len carries the length of the unfinished line across chunks. */
static size_t csv_line_prefix(const char *b, size_t n, size_t *line_len)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(b + i, '\n', n - i);
        size_t seg = nl ? (size_t)(nl - (b + i)) : n - i;
        if (*line_len + seg > DPT_CSV_MAX_LINE) return i + (DPT_CSV_MAX_LINE - *line_len);
        if (!nl) {
            *line_len += seg;
            return n;
        }
        *line_len = 0;
        i += seg + 1;
    }
    return n;
}

/* Turns a libcsv failure inside csv_parse or csv_fini into a message. */
static dpt_status_t csv_parser_error(csv_state_t *st, int err, int at_end)
{
    size_t col = st->col + 1;
    if (err == CSV_EPARSE && at_end)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: row %zu, column %zu: unterminated quoted field at end of file",
                         st->path, st->row, col);
    if (err == CSV_EPARSE)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: row %zu, column %zu: malformed quoting (a quote inside an unquoted "
                         "field, or text after a closing quote)",
                         st->path, st->row, col);
    if ((err == CSV_ENOMEM && csv_field_cap_hit) || err == CSV_ETOOBIG)
        return dpt_error(DPT_ERR_LIMIT,
                         "%s: row %zu, column %zu: field longer than %zu bytes (the cap)", st->path,
                         st->row, col, DPT_CSV_MAX_FIELD);
    return dpt_error(DPT_ERR_NOMEM, "%s: row %zu, column %zu: out of memory in the CSV parser",
                     st->path, st->row, col);
}

/* Streams the file through the parser; st collects rows or the first error. */
static dpt_status_t csv_stream(dpt_reader_t *f, struct csv_parser *p, csv_state_t *st)
{
    char *buf = malloc(CSV_READ_CHUNK);
    if (!buf) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", st->path);
    size_t n = 0, line_len = 0;
    dpt_status_t s = DPT_OK;
    while (!s && !(s = dpt_reader_read_some(f, buf, CSV_READ_CHUNK, &n)) && n > 0) {
        size_t ok = csv_line_prefix(buf, n, &line_len);
        size_t done = csv_parse(p, buf, ok, csv_on_field, csv_on_row, st);
        if (st->status)
            s = st->status;
        else if (done != ok)
            s = csv_parser_error(st, csv_error(p), 0);
        else if (ok < n)
            s = dpt_error(DPT_ERR_LIMIT, "%s: row %zu: line longer than %zu bytes (the cap)",
                          st->path, st->row, DPT_CSV_MAX_LINE);
    }
    free(buf);
    if (s) return s;
    if (csv_fini(p, csv_on_field, csv_on_row, st) != 0 && !st->status)
        return csv_parser_error(st, csv_error(p), 1);
    if (st->status) return st->status;
    if (st->rows == 0 && st->ncols == 0)
        return dpt_error(DPT_ERR_FORMAT, "%s: empty file (expected at least one data row vs got 0)",
                         st->path);
    if (st->rows == 0)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: header only (expected at least one data row vs got 0)", st->path);
    return DPT_OK;
}

/* Hands the collected table to a new store, shrinking it to its exact size. */
static dpt_status_t csv_to_store(csv_state_t *st, dpt_store_t **out)
{
    char name[128];
    snprintf(name, sizeof name, "csv:%s", st->path);
    dpt_store_t *ds = dpt_store_new(name);
    if (!ds) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", st->path);
    size_t nf = st->ncols - 1;
    float *x = realloc(st->x, st->rows * nf * sizeof *x);
    int32_t *y = realloc(st->y, st->rows * sizeof *y);
    ds->f32 = x ? x : st->x;
    ds->labels = y ? y : st->y;
    st->x = NULL, st->y = NULL;
    ds->count = st->rows, ds->features = nf;
    ds->c = nf, ds->h = 1, ds->w = 1; /* F channels of 1x1: batch norm normalises per feature */
    ds->classes = st->max_label + 1;
    *out = ds;
    return DPT_OK;
}

dpt_status_t dpt_csv_load(const char *path, const dpt_data_options_t *opt, dpt_store_t **out)
{
    char d = opt->csv_delimiter;
    if (d == '"' || d == '\n' || d == '\r' || d == '\0')
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "csv: delimiter 0x%02x cannot be a quote, newline or NUL",
                         (unsigned char)d);
    if (opt->csv_label_column < -1)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "csv: label column %d (expected 0-based index or -1 for the last)",
                         opt->csv_label_column);
    /* Plain or gzip-compressed (by content, as IDX files); other compressions refused. */
    dpt_reader_t f;
    dpt_status_t s = dpt_reader_open(&f, path);
    if (s != DPT_OK) return s;
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        dpt_reader_close(&f);
        return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    csv_set_delim(&p, (unsigned char)d);
    csv_set_realloc_func(&p, csv_capped_realloc);
    csv_set_blk_size(&p, 4096);
    csv_field_cap_hit = 0;
    csv_state_t st = {.path = path,
                      .max_bytes = opt->max_bytes,
                      .row = 1,
                      .label_opt = opt->csv_label_column,
                      .in_header = opt->csv_header != 0};
    s = csv_stream(&f, &p, &st);
    csv_free(&p);
    dpt_reader_close(&f);
    if (!s) s = csv_to_store(&st, out);
    free(st.cur);
    free(st.x);
    free(st.y);
    return s;
}
