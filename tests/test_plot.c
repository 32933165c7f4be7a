/* Tests for src/io/plot.c and `dptrain plot`: a real PNG from gnuplot, and each refusal. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/plot.h"
#include "support.h"

static const char metrics[] = "epoch,lr,train_loss,val_loss,train_accuracy,val_accuracy,note\n"
                              "1,0.001,2.1,2.0,0.31,0.35,warmup\n"
                              "2,0.01,1.2,1.3,0.62,0.6,\n"
                              "3,0.1,0.8,,0.75,,\"a, b\"\n"
                              "4,0.05,0.6,0.7,0.8,0.78,\n"
                              "5,0.01,0.5,0.65,0.84,0.8,\n";

static char *run_dir_with(const char *csv_text)
{
    char *dir = t_make_tmpdir("plot");
    char *csv = t_path(dir, "metrics.csv");
    t_write_text(csv, csv_text);
    free(csv);
    return dir;
}

static void assert_png(const char *path)
{
    size_t n;
    char *png = t_read_file(path, &n);
    cr_assert_gt(n, 1024, "%s is only %zu bytes", path, n);
    cr_assert_eq(memcmp(png, "\x89PNG\r\n\x1a\n", 8), 0, "%s lacks the PNG signature", path);
    free(png);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(plot, draws_a_png_and_leaves_no_temp_files)
{
    char *dir = run_dir_with(metrics);
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "metrics.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_OK, "%s", dpt_last_error());
    assert_png(png);
    cr_assert_eq(count_entries(dir), 2);
    /* Drawing again replaces the image. */
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(count_entries(dir), 2);
    free(csv);
    free(png);
    free(dir);
}

Test(plot, missing_columns_and_all_empty_series_still_draw)
{
    char *dir = run_dir_with("epoch,lr,val_loss\n1,0.1,\n2,0.1,\n");
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "it's.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_OK, "%s", dpt_last_error());
    assert_png(png);
    free(csv);
    free(png);
    free(dir);
}

Test(plot, no_gnuplot_on_path_is_unsupported)
{
    char *dir = run_dir_with(metrics);
    char *empty = t_make_tmpdir("nopath");
    cr_assert_eq(setenv("PATH", empty, 1), 0);
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "metrics.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_ERR_UNSUPPORTED);
    cr_assert_str_eq(dpt_last_error(),
                     "gnuplot not found: install it with apt-get install gnuplot-nox");
    cr_assert_eq(count_entries(dir), 1);
    free(csv);
    free(png);
    free(dir);
    free(empty);
}

Test(plot, missing_csv_is_an_io_error)
{
    char *dir = t_make_tmpdir("plot");
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "metrics.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), "metrics.csv: cannot open"), "%s", dpt_last_error());
    free(csv);
    free(png);
    free(dir);
}

Test(plot, csv_without_epoch_column_is_a_format_error)
{
    char *dir = run_dir_with("step,lr\n1,0.1\n");
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "metrics.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_ERR_FORMAT);
    cr_assert(strstr(dpt_last_error(), "no 'epoch' column"), "%s", dpt_last_error());
    free(csv);
    free(png);
    free(dir);
}

Test(plot, csv_without_rows_is_a_format_error)
{
    char *dir = run_dir_with("epoch,lr\n");
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "metrics.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_ERR_FORMAT);
    cr_assert(strstr(dpt_last_error(), "no rows to plot"), "%s", dpt_last_error());
    free(csv);
    free(png);
    free(dir);
}

Test(plot, non_numeric_value_is_a_format_error)
{
    char *dir = run_dir_with("epoch,lr\n1,0.1\n2,fast\n");
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "metrics.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_ERR_FORMAT);
    cr_assert(strstr(dpt_last_error(), "row 2, column 'lr': 'fast' is not a number"), "%s",
              dpt_last_error());
    free(csv);
    free(png);
    free(dir);
}

Test(plot, unwritable_png_is_an_io_error)
{
    char *dir = run_dir_with(metrics);
    char *csv = t_path(dir, "metrics.csv"), *png = t_path(dir, "no/such/dir/m.png");
    cr_assert_eq(dpt_plot_metrics(csv, png), DPT_ERR_IO);
    cr_assert(strstr(dpt_last_error(), png), "%s", dpt_last_error());
    free(csv);
    free(png);
    free(dir);
}

/* ---- the subcommand ----------------------------------------------------------------------- */

static int run_cli(const char *env, const char *args, const char *err_file)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' plot %s >/dev/null 2>'%s'", env, t_dptrain_bin(), args,
             err_file);
    return t_system(cmd);
}

Test(plot_cli, draws_default_and_out_paths)
{
    char *dir = run_dir_with(metrics);
    char *err = t_path(dir, "stderr.txt");
    char args[1024];
    snprintf(args, sizeof args, "'%s'", dir);
    cr_assert_eq(run_cli("", args, err), 0);
    char *png = t_path(dir, "metrics.png");
    assert_png(png);
    char *other = t_path(dir, "other.png");
    snprintf(args, sizeof args, "'%s' --out '%s'", dir, other);
    cr_assert_eq(run_cli("", args, err), 0);
    assert_png(other);
    free(png);
    free(other);
    free(err);
    free(dir);
}

Test(plot_cli, exit_codes_and_messages)
{
    char *dir = run_dir_with(metrics);
    char *empty = t_make_tmpdir("nopath");
    char *err = t_path(empty, "stderr.txt");
    char args[1024], env[1024];
    snprintf(args, sizeof args, "'%s'", dir);
    snprintf(env, sizeof env, "PATH='%s'", empty);
    cr_assert_eq(run_cli(env, args, err), 6);
    char *text = t_read_file(err, NULL);
    cr_assert_str_eq(text, "dptrain: error: gnuplot not found: install it with apt-get install "
                           "gnuplot-nox\n");
    free(text);

    snprintf(args, sizeof args, "'%s'", empty);
    cr_assert_eq(run_cli("", args, err), 4);
    cr_assert_eq(run_cli("", "", err), 2);
    cr_assert_eq(run_cli("", "a b", err), 2);
    cr_assert_eq(run_cli("", "--bogus", err), 2);
    cr_assert_eq(run_cli("", "x --out", err), 2);
    free(err);
    free(dir);
    free(empty);
}

Test(plot_cli, help_documents_the_flags)
{
    char *dir = t_make_tmpdir("plot");
    char *out = t_path(dir, "help.txt");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' plot --help >'%s'", t_dptrain_bin(), out);
    cr_assert_eq(t_system(cmd), 0);
    char *text = t_read_file(out, NULL);
    cr_assert(strstr(text, "usage: dptrain plot RUN_DIR [--out FILE.png]"), "%s", text);
    cr_assert(strstr(text, "--out FILE.png"), "%s", text);
    free(text);
    free(out);
    free(dir);
}
