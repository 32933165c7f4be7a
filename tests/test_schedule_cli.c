/* Tests for src/cli/cmd_schedule.c: runs the built dptrain binary and checks the preview
 * CSV, usage errors, help and the gnuplot plot. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* Runs `dptrain schedule ARGS` with stdout and stderr into files under dir; returns the
 * exit code. */
static int run(const char *dir, const char *args, char **out, char **err)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s schedule %s >%s/out.txt 2>%s/err.txt", t_dptrain_bin(), args, dir,
             dir);
    int rc = t_system(cmd);
    char *po = t_path(dir, "out.txt"), *pe = t_path(dir, "err.txt");
    size_t n;
    *out = t_read_file(po, &n);
    *err = t_read_file(pe, &n);
    free(po);
    free(pe);
    return rc;
}

/* Removes a scratch directory and frees its path. */
static void drop_dir(char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(t_system(cmd), 0);
    free(dir);
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

Test(schedule_cli, csv_header_and_one_row_per_step)
{
    char *dir = t_make_tmpdir("schedcli"), *out, *err;
    int rc = run(dir,
                 "--lr 0.1 --lr-schedule step:step_size=1,gamma=0.5 --epochs 3 "
                 "--steps-per-epoch 4",
                 &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    cr_assert_eq(strncmp(out, "step,epoch,lr,momentum\n", 23), 0, "%s", out);
    cr_assert_eq(count_lines(out), 1 + 3 * 4);
    /* Step 4 is epoch 1: 0.1 * 0.5 = 0.05, printed with %.17g; no momentum. */
    cr_assert_not_null(strstr(out, "\n4,1,0.05,\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\n11,2,0.025,\n"), "%s", out);
    free(out);
    free(err);
    drop_dir(dir);
}

Test(schedule_cli, momentum_column_and_out_file)
{
    char *dir = t_make_tmpdir("schedcli"), *out, *err, args[1024];
    char *csv = t_path(dir, "lr.csv");
    snprintf(args, sizeof args,
             "--lr 0.1 --lr-schedule onecycle:max_lr=1 --epochs 2 --steps-per-epoch 5 "
             "--out %s",
             csv);
    cr_assert_eq(run(dir, args, &out, &err), 0, "stderr: %s", err);
    cr_assert_str_eq(out, "");
    size_t n;
    char *text = t_read_file(csv, &n);
    cr_assert_eq(count_lines(text), 11);
    /* onecycle over 10 steps: step 0 is 1/25 with momentum 0.95; step 2 the peak, 0.85. */
    cr_assert_not_null(strstr(text, "\n0,0,0.040000000000000036,0.95\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\n2,0,1,0.85\n"), "%s", text);
    free(text);
    free(csv);
    free(out);
    free(err);
    drop_dir(dir);
}

Test(schedule_cli, plateau_preview_says_no_reductions)
{
    char *dir = t_make_tmpdir("schedcli"), *out, *err;
    int rc = run(dir,
                 "--lr 0.1 --lr-schedule plateau --warmup linear:steps=2 --epochs 1 "
                 "--steps-per-epoch 3",
                 &out, &err);
    cr_assert_eq(rc, 0, "stderr: %s", err);
    cr_assert_not_null(strstr(err, "no reductions"), "%s", err);
    cr_assert_not_null(strstr(out, "\n2,0,0.1,\n"), "%s", out);
    free(out);
    free(err);
    drop_dir(dir);
}

Test(schedule_cli, unknown_schedule_is_usage_error_listing_names)
{
    char *dir = t_make_tmpdir("schedcli"), *out, *err;
    int rc = run(dir, "--lr 0.1 --lr-schedule cosinus --epochs 1 --steps-per-epoch 1", &out, &err);
    cr_assert_eq(rc, 2);
    cr_assert_not_null(strstr(err, "unknown schedule 'cosinus'"), "%s", err);
    cr_assert_not_null(strstr(err, "cosine, cosine-restarts, cyclic, onecycle, plateau"), "%s",
                       err);
    free(out);
    free(err);
    drop_dir(dir);
}

Test(schedule_cli, bad_flags_are_usage_errors)
{
    const char *cases[] = {
        "--lr 0.1 --epochs 1 --steps-per-epoch 1 --bogus",
        "--lr 0.1 --epochs 1",                     /* missing --steps-per-epoch */
        "--epochs 1 --steps-per-epoch 1",          /* missing --lr */
        "--lr abc --epochs 1 --steps-per-epoch 1", /* malformed number */
        "--lr 0 --epochs 1 --steps-per-epoch 1",   /* lr must be > 0 */
        "--lr 0.1 --epochs 0 --steps-per-epoch 1", /* epochs >= 1 */
        "--lr 0.1 --epochs 1 --steps-per-epoch",   /* missing value */
        "--lr 0.1 --epochs 1 --steps-per-epoch 1 --warmup linear:steps=x",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = t_make_tmpdir("schedcli"), *out, *err;
        cr_assert_eq(run(dir, cases[i], &out, &err), 2, "'%s': %s", cases[i], err);
        cr_assert_not_null(strstr(err, "dptrain schedule: "), "'%s': %s", cases[i], err);
        free(out);
        free(err);
        drop_dir(dir);
    }
}

Test(schedule_cli, help_lists_flags_and_schedules)
{
    char *dir = t_make_tmpdir("schedcli"), *out, *err;
    cr_assert_eq(run(dir, "--help", &out, &err), 0);
    const char *want[] = {"--lr ",    "--lr-schedule",     "--warmup",
                          "--epochs", "--steps-per-epoch", "--out",
                          "--plot",   "T_max (required)",  "cosine-restarts",
                          "onecycle", "plateau",           "three_phase=0"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(out, want[i]), "help lacks '%s'", want[i]);
    free(out);
    free(err);
    drop_dir(dir);
}

Test(schedule_cli, plot_without_gnuplot_exits_6)
{
    char *dir = t_make_tmpdir("schedcli"), *out, *err, cmd[2048];
    /* An empty PATH: the binary is run by its absolute path, gnuplot cannot be found. */
    snprintf(cmd, sizeof cmd,
             "PATH=%s %s schedule --lr 0.1 --epochs 1 --steps-per-epoch 2 --plot %s/lr.png "
             ">%s/out.txt 2>%s/err.txt",
             dir, t_dptrain_bin(), dir, dir, dir);
    cr_assert_eq(t_system(cmd), 6);
    char *pe = t_path(dir, "err.txt");
    size_t n;
    err = t_read_file(pe, &n);
    cr_assert_not_null(
        strstr(err, "gnuplot not found: install it with apt-get install gnuplot-nox"), "%s", err);
    out = NULL;
    free(pe);
    free(err);
    free(out);
    drop_dir(dir);
}

Test(schedule_cli, plot_writes_png)
{
    if (t_system("command -v gnuplot >/dev/null 2>&1") != 0)
        cr_skip_test("gnuplot is not installed");
    char *dir = t_make_tmpdir("schedcli"), *out, *err, args[1024];
    char *png = t_path(dir, "it's.png"); /* a quote exercises gnuplot string escaping */
    snprintf(args, sizeof args,
             "--lr 0.1 --lr-schedule cyclic:max_lr=1,step_size_up=5 --epochs 2 "
             "--steps-per-epoch 10 --plot \"%s\"",
             png);
    cr_assert_eq(run(dir, args, &out, &err), 0, "stderr: %s", err);
    size_t n;
    unsigned char *data = (unsigned char *)t_read_file(png, &n);
    cr_assert_gt(n, 1000);
    cr_assert_eq(memcmp(data, "\x89PNG\r\n\x1a\n", 8), 0);
    free(data);
    free(png);
    free(out);
    free(err);
    drop_dir(dir);
}
