/* Tests for src/io/metrics_csv.c: exact text, quoting, resume, full precision, write errors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/metrics.h"
#include "support.h"

static const char *const cols3[] = {"epoch", "lr", "note"};

static dpt_metric_value_t mv_int(int64_t i)
{
    return (dpt_metric_value_t){.kind = DPT_MV_INT, .i = i};
}
static dpt_metric_value_t mv_real(double r)
{
    return (dpt_metric_value_t){.kind = DPT_MV_REAL, .r = r};
}
static dpt_metric_value_t mv_text(const char *t)
{
    return (dpt_metric_value_t){.kind = DPT_MV_TEXT, .text = t};
}
static dpt_metric_value_t mv_empty(void)
{
    return (dpt_metric_value_t){.kind = DPT_MV_EMPTY};
}

/* Writes rows epoch = 1..n with lr = epoch / 10 and note "e<epoch>". */
static void write_epochs(dpt_metrics_writer_t *w, int from, int to)
{
    for (int e = from; e <= to; e++) {
        char note[16];
        snprintf(note, sizeof note, "e%d", e);
        dpt_metric_value_t v[] = {mv_int(e), mv_real(e / 4.0), mv_text(note)};
        cr_assert_eq(dpt_metrics_write_row(w, v), DPT_OK, "%s", dpt_last_error());
    }
}

static char *fresh_file(const char *tag)
{
    char *dir = t_make_tmpdir(tag);
    char *p = t_path(dir, "metrics.csv");
    free(dir);
    return p;
}

Test(metrics_csv, header_and_rows_exact_text)
{
    char *p = fresh_file("mcsv");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, -1, &w), DPT_OK, "%s", dpt_last_error());
    write_epochs(w, 1, 2);
    dpt_metrics_close(w);
    char *text = t_read_file(p, NULL);
    cr_assert_str_eq(text, "epoch,lr,note\n1,0.25,e1\n2,0.5,e2\n");
    free(text);
    free(p);
}

Test(metrics_csv, empty_and_non_finite_values_are_empty_fields)
{
    char *p = fresh_file("mcsv");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, -1, &w), DPT_OK);
    dpt_metric_value_t a[] = {mv_int(1), mv_empty(), mv_text(NULL)};
    dpt_metric_value_t b[] = {mv_int(2), mv_real(NAN), mv_text("")};
    dpt_metric_value_t c[] = {mv_int(3), mv_real(INFINITY), mv_empty()};
    cr_assert_eq(dpt_metrics_write_row(w, a), DPT_OK);
    cr_assert_eq(dpt_metrics_write_row(w, b), DPT_OK);
    cr_assert_eq(dpt_metrics_write_row(w, c), DPT_OK);
    dpt_metrics_close(w);
    char *text = t_read_file(p, NULL);
    cr_assert_str_eq(text, "epoch,lr,note\n1,,\n2,,\n3,,\n");
    cr_assert_null(strstr(text, "nan"));
    free(text);
    free(p);
}

Test(metrics_csv, text_with_commas_quotes_and_newlines_is_quoted_and_reads_back)
{
    char *p = fresh_file("mcsv");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, -1, &w), DPT_OK);
    const char *nasty = "say \"hi\", then\nleave";
    dpt_metric_value_t a[] = {mv_int(1), mv_real(0.5), mv_text(nasty)};
    dpt_metric_value_t b[] = {mv_int(2), mv_real(0.5), mv_text(" padded ")};
    cr_assert_eq(dpt_metrics_write_row(w, a), DPT_OK);
    cr_assert_eq(dpt_metrics_write_row(w, b), DPT_OK);
    dpt_metrics_close(w);
    char *text = t_read_file(p, NULL);
    cr_assert_str_eq(text,
                     "epoch,lr,note\n1,0.5,\"say \"\"hi\"\", then\nleave\"\n2,0.5,\" padded \"\n");
    free(text);
    dpt_metrics_table_t *t;
    cr_assert_eq(dpt_metrics_read(p, &t), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_metrics_table_rows(t), 2);
    cr_assert_str_eq(dpt_metrics_table_field(t, 0, 2), nasty);
    cr_assert_str_eq(dpt_metrics_table_field(t, 1, 2), " padded ");
    dpt_metrics_table_free(t);
    free(p);
}

Test(metrics_csv, doubles_round_trip_bit_for_bit)
{
    char *p = fresh_file("mcsv");
    const char *const cols[] = {"epoch", "x"};
    const double xs[] = {0.1,
                         1.0 / 3.0,
                         1e-300,
                         5e-324,
                         -2.2250738585072014e-308,
                         1.7976931348623157e308,
                         3.141592653589793,
                         123456789.00000001,
                         -0.0};
    size_t n = sizeof xs / sizeof xs[0];
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols, 2, -1, &w), DPT_OK);
    for (size_t k = 0; k < n; k++) {
        dpt_metric_value_t v[] = {mv_int((int64_t)k), mv_real(xs[k])};
        cr_assert_eq(dpt_metrics_write_row(w, v), DPT_OK);
    }
    dpt_metrics_close(w);
    dpt_metrics_table_t *t;
    cr_assert_eq(dpt_metrics_read(p, &t), DPT_OK);
    cr_assert_eq(dpt_metrics_table_rows(t), n);
    for (size_t k = 0; k < n; k++) {
        double back = strtod(dpt_metrics_table_field(t, k, 1), NULL);
        cr_assert_eq(memcmp(&back, &xs[k], sizeof back), 0, "row %zu: %s", k,
                     dpt_metrics_table_field(t, k, 1));
    }
    /* and written as a person (and Keras's CSVLogger) writes them */
    cr_assert_str_eq(dpt_metrics_table_field(t, 0, 1), "0.1");
    cr_assert_str_eq(dpt_metrics_table_field(t, 6, 1), "3.141592653589793");
    dpt_metrics_table_free(t);
    free(p);
}

Test(metrics_csv, resume_drops_later_rows_and_appends_without_second_header)
{
    char *p = fresh_file("mcsv");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, -1, &w), DPT_OK);
    write_epochs(w, 1, 5);
    dpt_metrics_close(w);
    /* The checkpoint was taken after epoch 3: epochs 4 and 5 are redone. */
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, 3, &w), DPT_OK, "%s", dpt_last_error());
    write_epochs(w, 4, 6);
    dpt_metrics_close(w);
    char *text = t_read_file(p, NULL);
    cr_assert_str_eq(text, "epoch,lr,note\n1,0.25,e1\n2,0.5,e2\n3,0.75,e3\n4,1,e4\n5,1.25,e5\n"
                           "6,1.5,e6\n");
    free(text);
    char *dir = strndup(p, strrchr(p, '/') - p);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        entries += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(entries, 1, "a temporary file was left behind in %s", dir);
    free(dir);
    free(p);
}

Test(metrics_csv, resume_at_last_epoch_appends_in_place)
{
    char *p = fresh_file("mcsv");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, -1, &w), DPT_OK);
    write_epochs(w, 1, 2);
    dpt_metrics_close(w);
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, 2, &w), DPT_OK, "%s", dpt_last_error());
    write_epochs(w, 3, 3);
    dpt_metrics_close(w);
    char *text = t_read_file(p, NULL);
    cr_assert_str_eq(text, "epoch,lr,note\n1,0.25,e1\n2,0.5,e2\n3,0.75,e3\n");
    free(text);
    free(p);
}

Test(metrics_csv, resume_drops_a_torn_last_line)
{
    char *p = fresh_file("mcsv");
    t_write_text(p, "epoch,lr,note\n1,0.25,e1\n2,0.5,e2\n3,0.7");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, 2, &w), DPT_OK, "%s", dpt_last_error());
    write_epochs(w, 3, 3);
    dpt_metrics_close(w);
    char *text = t_read_file(p, NULL);
    cr_assert_str_eq(text, "epoch,lr,note\n1,0.25,e1\n2,0.5,e2\n3,0.75,e3\n");
    free(text);
    free(p);
}

Test(metrics_csv, resume_with_a_different_header_is_refused)
{
    char *p = fresh_file("mcsv");
    t_write_text(p, "epoch,lr,remark\n1,0.25,e1\n");
    dpt_metrics_writer_t *w = (void *)1;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, 1, &w), DPT_ERR_FORMAT);
    cr_assert_null(w);
    cr_assert(strstr(dpt_last_error(), "column 3 is 'remark' in the file, 'note' expected"), "%s",
              dpt_last_error());
    /* The file is left as it was. */
    char *text = t_read_file(p, NULL);
    cr_assert_str_eq(text, "epoch,lr,remark\n1,0.25,e1\n");
    free(text);
    free(p);
}

Test(metrics_csv, resume_with_fewer_columns_names_the_missing_one)
{
    char *p = fresh_file("mcsv");
    t_write_text(p, "epoch,lr\n1,0.25\n");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, 1, &w), DPT_ERR_FORMAT);
    cr_assert(strstr(dpt_last_error(), "'note' is missing from the file"), "%s", dpt_last_error());
    free(p);
}

Test(metrics_csv, resume_without_a_file_is_an_io_error)
{
    char *p = fresh_file("mcsv");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, 0, &w), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), "metrics.csv: cannot open"), "%s", dpt_last_error());
    free(p);
}

Test(metrics_csv, resume_with_a_non_integer_epoch_is_refused)
{
    char *p = fresh_file("mcsv");
    t_write_text(p, "epoch,lr,note\n1,0.25,e1\nx,0.5,e2\n");
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open(p, cols3, 3, 1, &w), DPT_ERR_FORMAT);
    cr_assert(strstr(dpt_last_error(), "row 2: epoch 'x' is not an integer"), "%s",
              dpt_last_error());
    free(p);
}

Test(metrics_csv, read_refuses_a_row_with_the_wrong_field_count)
{
    char *p = fresh_file("mcsv");
    t_write_text(p, "epoch,lr,note\n1,0.25,e1\n2,0.5\n");
    dpt_metrics_table_t *t;
    cr_assert_eq(dpt_metrics_read(p, &t), DPT_ERR_FORMAT);
    cr_assert(strstr(dpt_last_error(), "row 2 has 2 fields, the header has 3"), "%s",
              dpt_last_error());
    free(p);
}

Test(metrics_csv, write_to_a_full_disk_is_an_io_error)
{
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open("/dev/full", cols3, 3, -1, &w), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), "/dev/full: write failed"), "%s", dpt_last_error());
}

Test(metrics_csv, open_in_a_missing_directory_is_an_io_error)
{
    dpt_metrics_writer_t *w;
    cr_assert_eq(dpt_metrics_open("/nonexistent-dir/metrics.csv", cols3, 3, -1, &w), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), "/nonexistent-dir/metrics.csv"), "%s", dpt_last_error());
}
