/* Tests for the LR range test (src/train/lr_find.c, src/cli/cmd_lr_find.c) and the LR
 * controls of a run (src/train/run.c): the sweep on a CSV table the test writes, its CSV,
 * early stop, the suggestions, and `train --lr auto`, `--lr-scaling`, `--clip-grad-norm`
 * through the CLI. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "dptrain/dataset.h"
#include "dptrain/lr_find.h"
#include "support.h"

/* 400 rows, 6 features, 3 classes decided by a linear rule; header row. */
static char *write_table(const char *dir)
{
    char *path = t_path(dir, "table.csv");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    dpt_rng_t r;
    dpt_rng_seed(&r, 11, 0);
    fprintf(f, "a,b,c,d,e,f,label\n");
    for (int i = 0; i < 400; i++) {
        double x[6], s = 0;
        for (int j = 0; j < 6; j++)
            x[j] = dpt_rng_uniform(&r), s += j < 3 ? x[j] : -x[j];
        fprintf(f, "%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%d\n", x[0], x[1], x[2], x[3], x[4], x[5],
                s > 0 ? 1 : (s > -0.3 ? 2 : 0));
    }
    fclose(f);
    return path;
}

typedef struct {
    char *dir, *csv;
    dpt_dataset_t *all, *test;
    dpt_model_t *model;
} fixture_t;

static fixture_t fixture(void)
{
    fixture_t fx = {.dir = t_make_tmpdir("lrfind")};
    fx.csv = write_table(fx.dir);
    char spec[4096];
    snprintf(spec, sizeof spec, "csv:%s", fx.csv);
    dpt_data_options_t opt = dpt_data_options_default();
    opt.csv_header = 1;
    cr_assert_eq(dpt_dataset_open(spec, &opt, &fx.all, &fx.test), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_fit_normalization(fx.all), DPT_OK);
    cr_assert_eq(dpt_model_create("dense:16,relu,dense:3", 6, 3, &fx.model), DPT_OK);
    return fx;
}

static void fixture_free(fixture_t *fx)
{
    dpt_model_free(fx->model);
    dpt_dataset_free(fx->all), dpt_dataset_free(fx->test);
    free(fx->csv), free(fx->dir);
}

static dpt_trainer_config_t small_trainer(void)
{
    dpt_trainer_config_t t = dpt_trainer_config_default();
    t.threads = 2, t.batch_size = 32, t.micro_batch = 8, t.seed = 3;
    return t;
}

Test(lr_find, sweep_csv_and_suggestions, .timeout = 60)
{
    fixture_t fx = fixture();
    dpt_trainer_config_t tc = small_trainer();
    dpt_lr_find_config_t c = dpt_lr_find_config_default();
    c.start_lr = 1e-5, c.end_lr = 1, c.steps = 40;
    dpt_lr_find_result_t r;
    cr_assert_eq(dpt_lr_find(fx.model, "sgd:momentum=0.9", &tc, fx.all, &c, &r), DPT_OK, "%s",
                 dpt_last_error());
    cr_assert_eq(r.n, 40u, "an end of 1 should not diverge here (%zu points)", r.n);
    cr_assert_not(r.stopped_early);
    /* lr_i = start * (end/start)^(i/(steps-1)): strictly increasing, ends exactly at end */
    cr_assert_float_eq(r.lr[0], 1e-5, 1e-18);
    cr_assert_float_eq(r.lr[39], 1.0, 1e-12);
    cr_assert_float_eq(r.lr[13], 1e-5 * pow(1e5, 13.0 / 39), 1e-15);
    for (size_t i = 1; i < r.n; i++)
        cr_assert_gt(r.lr[i], r.lr[i - 1]);
    /* smoothed_i = avg_i / (1 - 0.98^(i+1)), avg_i = 0.98 avg_{i-1} + 0.02 loss_i */
    double avg = 0;
    for (size_t i = 0; i < r.n; i++) {
        avg = 0.98 * avg + 0.02 * r.loss[i];
        cr_assert_float_eq(r.smoothed[i], avg / (1 - pow(0.98, (double)i + 1)), 1e-12);
    }
    cr_assert_eq(r.smoothed[0], r.loss[0], "debiasing makes the first point the raw loss");
    /* The suggestions are points of the sweep. */
    cr_assert(r.valley >= c.start_lr && r.valley <= c.end_lr, "valley %g", r.valley);
    cr_assert(r.steepest >= c.start_lr && r.steepest <= c.end_lr, "steepest %g", r.steepest);
    cr_assert(r.min_div10 >= c.start_lr / 10 && r.min_div10 <= c.end_lr / 10, "min/10 %g",
              r.min_div10);
    cr_assert_eq(r.valley, r.lr[r.valley_idx]);
    cr_assert_eq(r.min_div10, r.lr[r.min_idx] / 10);
    /* The CSV: header, one %.17g row per step that reads back exactly. */
    char *path = t_path(fx.dir, "lr.csv");
    cr_assert_eq(dpt_lr_find_write_csv(&r, path), DPT_OK);
    size_t len;
    char *text = t_read_file(path, &len);
    cr_assert(strncmp(text, "lr,loss,smoothed_loss\n", 22) == 0, "%s", text);
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 41);
    char *row = strchr(text, '\n') + 1;
    double a, b, s;
    cr_assert_eq(sscanf(row, "%lf,%lf,%lf", &a, &b, &s), 3);
    cr_assert_eq(a, r.lr[0]);
    cr_assert_eq(b, r.loss[0]);
    cr_assert_eq(s, r.smoothed[0]);
    free(text), free(path);
    dpt_lr_find_result_free(&r);
    fixture_free(&fx);
}

Test(lr_find, huge_end_lr_stops_early, .timeout = 60)
{
    fixture_t fx = fixture();
    dpt_trainer_config_t tc = small_trainer();
    dpt_lr_find_config_t c = dpt_lr_find_config_default();
    c.start_lr = 1e-4, c.end_lr = 1e6, c.steps = 60;
    dpt_lr_find_result_t r;
    cr_assert_eq(dpt_lr_find(fx.model, "sgd", &tc, fx.all, &c, &r), DPT_OK, "%s", dpt_last_error());
    cr_assert(r.stopped_early);
    cr_assert_lt(r.n, 60u);
    cr_assert_gt(r.n, 2u);
    /* The last point is the one that diverged: above 4x the best before it, or not finite. */
    double best = INFINITY;
    for (size_t i = 0; i + 1 < r.n; i++)
        best = fmin(best, r.smoothed[i]);
    double last = r.smoothed[r.n - 1];
    cr_assert(!isfinite(last) || last > 4 * best, "last %g best %g", last, best);
    cr_assert(r.valley >= c.start_lr && r.valley <= c.end_lr);
    dpt_lr_find_result_free(&r);
    fixture_free(&fx);
}

Test(lr_find, identical_for_1_and_3_threads, .timeout = 60)
{
    fixture_t fx = fixture();
    dpt_trainer_config_t tc = small_trainer();
    dpt_lr_find_config_t c = dpt_lr_find_config_default();
    c.steps = 25;
    dpt_lr_find_result_t a, b;
    tc.threads = 1;
    cr_assert_eq(dpt_lr_find(fx.model, "adam", &tc, fx.all, &c, &a), DPT_OK);
    tc.threads = 3;
    cr_assert_eq(dpt_lr_find(fx.model, "adam", &tc, fx.all, &c, &b), DPT_OK);
    cr_assert_eq(a.n, b.n);
    cr_assert_eq(memcmp(a.loss, b.loss, a.n * sizeof(double)), 0);
    cr_assert_eq(a.valley, b.valley);
    dpt_lr_find_result_free(&a), dpt_lr_find_result_free(&b);
    fixture_free(&fx);
}

Test(lr_find, suggestions_on_a_known_curve)
{
    /* 30 points, lr = 10^(i/10 - 3); loss flat 2.0 to i=9, falls to i=20 (steepest between
     * 14 and 15), flat-ish, rises at the end. */
    enum { N = 30 };
    double lr[N], loss[N];
    for (int i = 0; i < N; i++) {
        lr[i] = pow(10, i / 10.0 - 3);
        loss[i] = i < 10 ? 2.0 : 2.0 - 0.01 * (i - 9) * (i - 9);
    }
    loss[15] = loss[14] - 0.5; /* the steepest drop: between points 14 and 15 */
    for (int i = 16; i <= 20; i++)
        loss[i] = loss[15] - 0.01 * (i - 15);
    for (int i = 21; i < N; i++)
        loss[i] = loss[20] + 0.05 * (i - 20);
    dpt_lr_find_result_t r = {.n = N, .lr = lr, .loss = loss, .smoothed = loss};
    dpt_lr_find_suggest(&r);
    /* The usable range skips the first 3 points (n/10) and the last 5. */
    cr_assert_eq(r.steepest_idx, 14u);
    cr_assert_float_eq(r.steepest, lr[14], 1e-15);
    /* Minimum in [3, 25): index 20 (the curve rises after it). */
    cr_assert_eq(r.min_idx, 20u);
    cr_assert_float_eq(r.min_div10, lr[20] / 10, 1e-15);
    /* Valley: longest strictly decreasing run over [3, 25) is indices 9..20 in range
     * coordinates 6..17 (length lds = 12 at 17, start = 17 - 12 = 5); sections = 12/3 = 4;
     * idx = 5 + 4 + 2 = 11 -> point 14. */
    cr_assert_eq(r.valley_idx, 14u, "valley at %zu", r.valley_idx);
    /* Too short a curve: nothing to suggest. */
    r.n = 1;
    dpt_lr_find_suggest(&r);
    cr_assert(isnan(r.valley) && isnan(r.steepest) && isnan(r.min_div10));
}

Test(lr_find, bad_config_names_the_field)
{
    fixture_t fx = fixture();
    dpt_trainer_config_t tc = small_trainer();
    dpt_lr_find_config_t c = dpt_lr_find_config_default();
    dpt_lr_find_result_t r;
    c.end_lr = c.start_lr;
    cr_assert_eq(dpt_lr_find(fx.model, "sgd", &tc, fx.all, &c, &r), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "lr-find: end 1e-07 must be a number above start 1e-07"),
              "%s", dpt_last_error());
    dpt_lr_find_result_free(&r);
    c = dpt_lr_find_config_default();
    c.steps = 1;
    cr_assert_eq(dpt_lr_find(fx.model, "sgd", &tc, fx.all, &c, &r), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "steps 1 outside [2, 100000]"), "%s", dpt_last_error());
    dpt_lr_find_result_free(&r);
    c = dpt_lr_find_config_default();
    cr_assert_eq(dpt_lr_find(fx.model, "adam:eps=-1", &tc, fx.all, &c, &r), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "eps must be a number in [0, 1000], got '-1'"), "%s",
              dpt_last_error());
    dpt_lr_find_result_free(&r);
    fixture_free(&fx);
}

Test(lr_find_cli, writes_csv_and_prints_suggestions, .timeout = 60)
{
    fixture_t fx = fixture();
    char args[8192], *out;
    snprintf(args, sizeof args,
             "lr-find --data csv:%s --csv-header --model dense:16,relu,dense:3 --batch-size 32 "
             "--threads 2 --start 1e-5 --end 100 --steps 50 --out %s/curve.csv",
             fx.csv, fx.dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "suggested lr: valley "), "%s", out);
    char *p = t_path(fx.dir, "curve.csv");
    char *text = t_read_file(p, NULL);
    cr_assert(strncmp(text, "lr,loss,smoothed_loss\n1e-05,", 28) == 0, "%s", text);
    free(text), free(p), free(out);
    snprintf(args, sizeof args, "lr-find --data csv:%s --csv-header --start 1 --end 0.1", fx.csv);
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "--end (0.1) must be above --start (1)"), "%s", out);
    free(out);
    cr_assert_eq(t_run_dptrain("lr-find --help", &out), 0);
    cr_assert(strstr(out, "--steps") && strstr(out, "--plot") && strstr(out, "valley"), "%s", out);
    free(out);
    fixture_free(&fx);
}

static char *config_of(const char *dir, const char *run)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/config.txt", dir, run);
    return t_read_file(path, NULL);
}

#define TRAIN_ARGS                                                                                 \
    "train --data csv:%s --csv-header --model dense:16,relu,dense:3 --batch-size 32 "              \
    "--micro-batch 8 --threads 2 --epochs 1 --out %s/%s "

Test(train_cli, lr_auto_runs_the_range_test, .timeout = 120)
{
    fixture_t fx = fixture();
    char args[8192], *out;
    snprintf(args, sizeof args, TRAIN_ARGS "--lr auto --optimizer adam", fx.csv, fx.dir, "auto");
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "dptrain: lr = auto -> "), "%s", out);
    char *config = config_of(fx.dir, "auto");
    const char *line = strstr(config, "lr = auto -> ");
    cr_assert(line, "%s", config);
    double lr = strtod(line + 13, NULL);
    cr_assert(lr >= 1e-7 && lr <= 10, "lr %g", lr);
    cr_assert(strstr(line, "(lr-find start=1e-07 end=10 steps=100"), "%s", config);
    /* The metrics row reports the LR actually used: the one found. */
    char path[4096];
    snprintf(path, sizeof path, "%s/auto/metrics.csv", fx.dir);
    char *metrics = t_read_file(path, NULL);
    const char *row = strstr(metrics, "\n1,13,"); /* 400 rows / 32: 13 steps */
    cr_assert(row, "%s", metrics);
    /* compared as numbers: the CSV writes the shortest text that reads back the same double */
    cr_assert_eq(strtod(row + 6, NULL), lr, "metrics lr %s, config lr %.17g", row + 6, lr);
    free(metrics), free(config), free(out);
    snprintf(args, sizeof args, TRAIN_ARGS "--lr auto --lr-scaling linear", fx.csv, fx.dir, "x");
    cr_assert_neq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "--lr auto and --lr-scaling do not combine"), "%s", out);
    free(out);
    fixture_free(&fx);
}

Test(train_cli, lr_scaling_and_clipping_in_the_snapshot, .timeout = 120)
{
    fixture_t fx = fixture();
    char args[8192], *out;
    snprintf(args, sizeof args,
             TRAIN_ARGS "--lr 0.05 --lr-scaling linear:ref_batch=16 --clip-grad-norm 1 --quiet",
             fx.csv, fx.dir, "scaled");
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    char *config = config_of(fx.dir, "scaled");
    /* batch 32 / ref 16 = 2: 0.05 -> 0.1 */
    cr_assert(strstr(config, "lr = 0.05\nlr_scaling = linear:ref_batch=16 "
                             "(batch 32) -> 0.1\n"),
              "%s", config);
    cr_assert(strstr(config, "lr_effective = 0.1\n"), "%s", config);
    cr_assert(strstr(config, "clip_grad_norm = 1\n"), "%s", config);
    char path[4096];
    snprintf(path, sizeof path, "%s/scaled/metrics.csv", fx.dir);
    char *metrics = t_read_file(path, NULL);
    cr_assert(strstr(metrics, "\n1,13,0.1,"), "%s", metrics);
    free(metrics), free(config), free(out);
    snprintf(args, sizeof args, TRAIN_ARGS "--lr 0.05 --lr-scaling sqrt:ref_batch=128 --quiet",
             fx.csv, fx.dir, "sqrt");
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    config = config_of(fx.dir, "sqrt");
    /* 0.05 * sqrt(32/128) = 0.025 */
    cr_assert(strstr(config, "lr_effective = 0.025\n"), "%s", config);
    cr_assert(strstr(config, "clip_grad_norm = 0 (off)\n"), "%s", config);
    free(config), free(out);
    snprintf(args, sizeof args, TRAIN_ARGS "--lr-scaling cubic", fx.csv, fx.dir, "bad");
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "unknown lr scaling 'cubic'; valid names: none, linear, sqrt"), "%s",
              out);
    free(out);
    snprintf(args, sizeof args, TRAIN_ARGS "--clip-grad-norm -1", fx.csv, fx.dir, "bad2");
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    free(out);
    fixture_free(&fx);
}
