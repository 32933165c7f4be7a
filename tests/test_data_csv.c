/* Tests for src/data/csv.c: numeric tables written as real CSV text in temp dirs; every
 * malformed case has its own test with its row:column. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/checkpoint.h"
#include "dptrain/dataset.h"
#include "support.h"

TestSuite(csv, .fini = t_remove_scratch);
TestSuite(csv_errors, .fini = t_remove_scratch);

static char *csv_fixture(const char *text, size_t n)
{
    char *dir = t_scratch_dir("csv");
    char *p = t_path(dir, "t.csv");
    t_write_file(p, text, n, 0);
    char *spec = malloc(strlen(p) + 5);
    cr_assert_not_null(spec);
    sprintf(spec, "csv:%s", p);
    free(p);
    return spec;
}

/* Loads text as a table; on failure the outputs must stay untouched. */
static dpt_status_t load_text(const char *text, const dpt_data_options_t *opt, dpt_dataset_t **out)
{
    char *spec = csv_fixture(text, strlen(text));
    dpt_dataset_t *sentinel = (dpt_dataset_t *)(uintptr_t)0x1, *tr = sentinel, *te = sentinel;
    dpt_status_t s = dpt_dataset_open(spec, opt, &tr, &te);
    free(spec);
    if (s != DPT_OK) {
        cr_assert(tr == sentinel && te == sentinel, "outputs set on failure");
        return s;
    }
    cr_assert_null(te, "a CSV table has no test part");
    if (out)
        *out = tr;
    else
        dpt_dataset_free(tr);
    return s;
}

static dpt_status_t load_fails(const char *text, const dpt_data_options_t *opt)
{
    return load_text(text, opt, NULL);
}

Test(csv, loads_features_as_float_and_last_column_labels)
{
    dpt_dataset_t *ds = NULL;
    cr_assert_eq(load_text("1.5,2,0\n-3,4e2,2\n0.25,-0,1\n", NULL, &ds), DPT_OK, "%s",
                 dpt_last_error());
    cr_assert_eq(dpt_dataset_count(ds), 3);
    cr_assert_eq(dpt_dataset_features(ds), 2);
    cr_assert_eq(dpt_dataset_classes(ds), 3);
    size_t c, h, w;
    dpt_dataset_shape(ds, &c, &h, &w);
    cr_assert(c == 2 && h == 1 && w == 1, "shape %zux%zux%zu", c, h, w);
    float x[6];
    int32_t y[3];
    uint32_t idx[3] = {0, 1, 2};
    dpt_dataset_gather(ds, idx, 3, x, y);
    const float want[6] = {1.5f, 2.0f, -3.0f, 400.0f, 0.25f, 0.0f};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(x[i], want[i], "x[%d] = %g", i, x[i]);
    cr_assert(y[0] == 0 && y[1] == 2 && y[2] == 1, "labels %d %d %d", y[0], y[1], y[2]);
    cr_assert_eq(dpt_dataset_storage_bytes(ds), 3 * 2 * sizeof(float) + 3 * sizeof(int32_t));
    cr_assert_not_null(strstr(dpt_dataset_describe(ds), "t.csv train: 3 x 2x1x1, 3 classes"), "%s",
                       dpt_dataset_describe(ds));
    dpt_dataset_free(ds);
}

Test(csv, header_delimiter_label_column_quotes_spaces_crlf)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_header = 1, opt.csv_delimiter = ';', opt.csv_label_column = 0;
    dpt_dataset_t *ds = NULL;
    cr_assert_eq(load_text("label;a;b\r\n1; 2.5 ;\"3\"\r\n\r\n0;-1;7", &opt, &ds), DPT_OK, "%s",
                 dpt_last_error());
    cr_assert_eq(dpt_dataset_count(ds), 2);
    cr_assert_eq(dpt_dataset_features(ds), 2);
    cr_assert_eq(dpt_dataset_classes(ds), 2);
    float x[4];
    int32_t y[2];
    uint32_t idx[2] = {1, 0};
    dpt_dataset_gather(ds, idx, 2, x, y);
    cr_assert(x[0] == -1.0f && x[1] == 7.0f && x[2] == 2.5f && x[3] == 3.0f, "%g %g %g %g", x[0],
              x[1], x[2], x[3]);
    cr_assert(y[0] == 0 && y[1] == 1);
    dpt_dataset_free(ds);
}

Test(csv, label_column_in_the_middle)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_label_column = 1;
    dpt_dataset_t *ds = NULL;
    cr_assert_eq(load_text("10,4,20\n30,9,40\n", &opt, &ds), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_classes(ds), 10);
    cr_assert_eq(dpt_dataset_label(ds, 1), 9);
    float x[2];
    uint32_t i1 = 1;
    dpt_dataset_gather(ds, &i1, 1, x, NULL);
    cr_assert(x[0] == 30.0f && x[1] == 40.0f);
    dpt_dataset_free(ds);
}

/* ---- fields --------------------------------------------------------------------------- */

Test(csv_errors, non_numeric_field)
{
    assert_fails(load_fails("1,2,0\n3,abc,1\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 2, column 2: not a number: 'abc'");
}

Test(csv_errors, number_with_trailing_text)
{
    assert_fails(load_fails("1,2,0\n3,4,1\n5,6kg,1\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 3, column 2: not a number: '6kg'");
}

Test(csv_errors, embedded_nul_byte)
{
    char *spec = csv_fixture("1,2\0,0\n", 7);
    dpt_dataset_t *tr = NULL;
    assert_fails(dpt_dataset_open(spec, NULL, &tr, NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 2: not a number: '2?'");
    cr_assert_null(tr);
    free(spec);
}

Test(csv_errors, empty_field)
{
    assert_fails(load_fails("1,,0\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 2: empty field (expected a number)");
}

Test(csv_errors, nan_value)
{
    assert_fails(load_fails("1,2,0\n3,nan,1\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 2, column 2: value is not finite: 'nan'");
}

Test(csv_errors, infinite_value)
{
    assert_fails(load_fails("-Infinity,2,0\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 1: value is not finite: '-Infinity'");
}

Test(csv_errors, value_overflowing_double)
{
    assert_fails(load_fails("1e999,2,0\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 1: value is not finite: '1e999'");
}

Test(csv_errors, value_outside_float_range)
{
    assert_fails(load_fails("1,-1e300,0\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 2: value out of float range: '-1e300'");
}

Test(csv_errors, field_longer_than_the_cap)
{
    size_t n = ((size_t)1 << 20) + 16;
    char *text = malloc(n + 8);
    memset(text, '1', n);
    strcpy(text + n, ",0\n");
    assert_fails(load_fails(text, NULL), DPT_ERR_LIMIT,
                 "t.csv: row 1, column 1: field longer than 1048576 bytes (the cap)");
    free(text);
}

Test(csv_errors, line_longer_than_the_cap)
{
    /* 20-byte fields: the line cap (16 MiB) is reached before the column cap (1 Mi) */
    size_t fields = 900000, n = fields * 20;
    char *text = malloc(n + 8);
    for (size_t i = 0; i < fields; i++)
        memcpy(text + i * 20, "1234567890123456789,", 20);
    strcpy(text + n, "0\n");
    assert_fails(load_fails(text, NULL), DPT_ERR_LIMIT,
                 "t.csv: row 1: line longer than 16777216 bytes (the cap)");
    free(text);
}

Test(csv_errors, too_many_columns)
{
    size_t fields = ((size_t)1 << 20) + 1, n = fields * 2;
    char *text = malloc(n + 8);
    for (size_t i = 0; i < fields; i++)
        memcpy(text + i * 2, "1,", 2);
    strcpy(text + n, "0\n");
    assert_fails(load_fails(text, NULL), DPT_ERR_LIMIT,
                 "t.csv: row 1, column 1048577: more than 1048576 columns");
    free(text);
}

/* ---- rows and quoting ----------------------------------------------------------------- */

Test(csv_errors, ragged_row_with_fewer_fields)
{
    assert_fails(load_fails("1,2,0\n3,1\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 2, column 3: ragged row (expected 3 fields vs got 2)");
}

Test(csv_errors, ragged_row_with_more_fields)
{
    assert_fails(load_fails("1,2,0\n3,4,1\n3,1,1,9\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 3, column 4: ragged row (expected 3 fields vs got 4)");
}

Test(csv_errors, data_row_shorter_than_header)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_header = 1;
    assert_fails(load_fails("a,b,label\n1,0\n", &opt), DPT_ERR_FORMAT,
                 "t.csv: row 2, column 3: ragged row (expected 3 fields vs got 2)");
}

Test(csv_errors, empty_file)
{
    assert_fails(load_fails("", NULL), DPT_ERR_FORMAT,
                 "t.csv: empty file (expected at least one data row vs got 0)");
}

Test(csv_errors, blank_lines_only)
{
    assert_fails(load_fails("\n\r\n\n", NULL), DPT_ERR_FORMAT, "t.csv: empty file");
}

Test(csv_errors, header_only)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_header = 1;
    assert_fails(load_fails("a,b,label\n", &opt), DPT_ERR_FORMAT,
                 "t.csv: header only (expected at least one data row vs got 0)");
}

Test(csv_errors, unterminated_quote)
{
    assert_fails(load_fails("1,2,0\n3,\"4,1\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 2, column 2: unterminated quoted field at end of file");
}

Test(csv_errors, quote_inside_unquoted_field)
{
    assert_fails(load_fails("1,2\"3,0\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 2: malformed quoting");
}

Test(csv_errors, text_after_closing_quote)
{
    assert_fails(load_fails("1,2,0\n\"3\"x,4,1\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 2, column 1: malformed quoting");
}

/* ---- labels and options --------------------------------------------------------------- */

Test(csv_errors, label_column_beyond_the_table)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_label_column = 5;
    assert_fails(load_fails("1,2,0\n", &opt), DPT_ERR_INVALID_ARG,
                 "t.csv: row 1: label column 5 out of range (expected 0..2 or -1 for the last "
                 "vs got 5)");
}

Test(csv_errors, label_column_below_minus_one)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_label_column = -2;
    assert_fails(load_fails("1,2,0\n", &opt), DPT_ERR_INVALID_ARG, "csv: label column -2");
}

Test(csv_errors, single_column_has_no_features)
{
    assert_fails(load_fails("1\n2\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 1: a table needs a label and at least one feature "
                 "(expected >= 2 columns vs got 1)");
}

Test(csv_errors, negative_label)
{
    assert_fails(load_fails("1,2,0\n3,4,-1\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 2, column 3: label must be a non-negative integer (got -1)");
}

Test(csv_errors, fractional_label)
{
    assert_fails(load_fails("1,2,2.5\n", NULL), DPT_ERR_FORMAT,
                 "t.csv: row 1, column 3: label must be a non-negative integer (got 2.5)");
}

Test(csv_errors, label_over_the_class_cap)
{
    assert_fails(load_fails("1,2,65536\n", NULL), DPT_ERR_LIMIT,
                 "t.csv: row 1, column 3: label over the cap of 65536 classes (expected < "
                 "65536 vs got 65536)");
    cr_assert_eq(load_fails("1,2,65535\n", NULL), DPT_OK, "%s", dpt_last_error());
}

Test(csv_errors, row_numbers_count_the_header)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_header = 1;
    assert_fails(load_fails("x,y,label\n1,2,0\n3,?,1\n", &opt), DPT_ERR_FORMAT,
                 "t.csv: row 3, column 2: not a number: '?'");
}

Test(csv_errors, over_max_bytes)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.max_bytes = 40; /* 2 rows x (2 floats + label + index) = 32; 3 rows = 48 */
    assert_fails(
        load_fails("1,2,0\n3,4,1\n5,6,0\n", &opt), DPT_ERR_LIMIT,
        "t.csv: row 3: table is over the memory limit (max_bytes 40 vs needed at least 48)");
    opt.max_bytes = 48;
    cr_assert_eq(load_fails("1,2,0\n3,4,1\n5,6,0\n", &opt), DPT_OK, "%s", dpt_last_error());
}

Test(csv_errors, invalid_delimiter)
{
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_delimiter = '"';
    assert_fails(load_fails("1,2,0\n", &opt), DPT_ERR_INVALID_ARG,
                 "csv: delimiter 0x22 cannot be a quote, newline or NUL");
}

Test(csv_errors, missing_file)
{
    dpt_dataset_t *tr = NULL;
    assert_fails(dpt_dataset_open("csv:/nonexistent/t.csv", NULL, &tr, NULL), DPT_ERR_IO,
                 "/nonexistent/t.csv: cannot open: No such file or directory");
    cr_assert_null(tr);
}

/* A gzip-compressed table (scikit-learn ships digits.csv.gz) is read through zlib, found by
 * content whatever its name, and trains bit for bit as the plain file does. */
Test(csv, gzip_table_trains_bit_for_bit_as_the_plain_one, .timeout = 60)
{
    char *dir = t_scratch_dir("gz");
    char *plain = t_write_threshold_table(dir, 300, 6, 5);
    size_t n;
    char *text = t_read_file(plain, &n);
    char *gz = t_path(dir, "t.csv.gz"), *renamed = t_path(dir, "named-plain.csv");
    t_write_file(gz, text, n, 1);
    t_write_file(renamed, text, n, 1); /* gzip bytes under a plain name */
    const char *files[3] = {plain, gz, renamed};
    char *params[3];
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        char args[8192], *out = NULL, run[64];
        snprintf(run, sizeof run, "run%d", i);
        char *rdir = t_path(dir, run);
        snprintf(args, sizeof args,
                 "train --data csv:%s --model dense:8,relu,dense:3 --epochs 2 --batch-size 32 "
                 "--threads 2 --quiet --out %s",
                 files[i], rdir);
        cr_assert_eq(t_run_dptrain(args, &out), 0, "%s: %s", files[i], out);
        free(out);
        char *ck = t_path(rdir, "checkpoint.dpt");
        dpt_checkpoint_t *c;
        cr_assert_eq(dpt_checkpoint_read(ck, &c), DPT_OK, "%s", dpt_last_error());
        const void *p = dpt_checkpoint_section(c, "params", &len[i]);
        params[i] = malloc(len[i]);
        memcpy(params[i], p, len[i]);
        dpt_checkpoint_free(c);
        free(ck), free(rdir);
    }
    for (int i = 1; i < 3; i++) {
        cr_assert_eq(len[i], len[0]);
        cr_assert_eq(memcmp(params[i], params[0], len[0]), 0, "%s trains differently", files[i]);
    }
    for (int i = 0; i < 3; i++)
        free(params[i]);
    free(text), free(plain), free(gz), free(renamed);
}

/* Other compressions are recognised by their magic and refused with what to do, not parsed
 * as text (and IDX files share the reader). */
Test(csv_errors, other_compressed_formats_are_refused)
{
    const struct {
        const char *kind, *tool;
        unsigned char magic[8];
        size_t len;
    } cases[] = {
        {"xz", "xz -d", {0xfd, '7', 'z', 'X', 'Z', 0x00, 1, 2}, 8},
        {"zstd", "zstd -d", {0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4}, 8},
        {"bzip2", "bzip2 -d", {'B', 'Z', 'h', '9', '1', 'A', 'Y', '&'}, 8},
        {"zip", "unzip", {'P', 'K', 0x03, 0x04, 20, 0, 0, 0}, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *spec = csv_fixture((const char *)cases[i].magic, cases[i].len);
        dpt_dataset_t *tr = NULL, *te = NULL;
        char want[160];
        snprintf(want, sizeof want,
                 "byte 0: %s-compressed file; dptrain reads plain or gzip-compressed files "
                 "(decompress it first: %s)",
                 cases[i].kind, cases[i].tool);
        assert_fails(dpt_dataset_open(spec, NULL, &tr, &te), DPT_ERR_FORMAT, want);
        char idx[4200];
        snprintf(idx, sizeof idx, "idx:%s,%s", spec + 4, spec + 4);
        assert_fails(dpt_dataset_open(idx, NULL, &tr, &te), DPT_ERR_FORMAT, want);
        free(spec);
    }
}

/* A gzip stream cut short is an error with its offset, not a shorter table. */
Test(csv_errors, truncated_gzip_table)
{
    char *dir = t_scratch_dir("gzcut");
    char *plain = t_write_threshold_table(dir, 200, 4, 3);
    size_t n, m;
    char *text = t_read_file(plain, &n);
    char *gz = t_path(dir, "t.csv.gz");
    t_write_file(gz, text, n, 1);
    char *bytes = t_read_file(gz, &m);
    t_write_file(gz, bytes, m / 2, 0);
    char spec[4200];
    snprintf(spec, sizeof spec, "csv:%s", gz);
    dpt_dataset_t *tr = NULL, *te = NULL;
    assert_fails(dpt_dataset_open(spec, NULL, &tr, &te), DPT_ERR_FORMAT, "gzip stream");
    free(text), free(bytes), free(gz), free(plain);
}
