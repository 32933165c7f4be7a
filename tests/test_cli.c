/* End-to-end tests of the dptrain binary: help and usage errors, a training run on a CSV table
 * written by the test, its run directory, exact resume, and `dptrain info`. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "dptrain/checkpoint.h"
#include "support.h"

Test(cli, help_lists_every_command)
{
    char *out;
    cr_assert_eq(t_run_dptrain("--help", &out), 0);
    const char *cmds[] = {"train",   "eval",  "predict", "schedule",
                          "lr-find", "bench", "info",    "plot"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        cr_assert(strstr(out, cmds[i]), "help lacks %s", cmds[i]);
    free(out);
}

Test(cli, unknown_command_is_a_usage_error)
{
    char *out;
    cr_assert_eq(t_run_dptrain("trian", &out), 2);
    cr_assert(strstr(out, "unknown command 'trian'"), "%s", out);
    free(out);
}

Test(cli, train_help_documents_flags)
{
    char *out;
    cr_assert_eq(t_run_dptrain("train --help", &out), 0);
    const char *flags[] = {"--data",       "--val-split",   "--model",  "--optimizer",
                           "--lr ",        "--lr-schedule", "--warmup", "--epochs",
                           "--batch-size", "--micro-batch", "--seed",   "--threads",
                           "--out",        "--resume",      "--quiet",  "--csv-header"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert(strstr(out, flags[i]), "train --help lacks %s", flags[i]);
    free(out);
}

Test(cli, bad_flag_values_are_usage_errors)
{
    char *out;
    cr_assert_eq(t_run_dptrain("train --epochs abc", &out), 2);
    cr_assert(strstr(out, "--epochs expects an integer"), "%s", out);
    free(out);
    cr_assert_eq(t_run_dptrain("train --lr -1", &out), 2);
    free(out);
    cr_assert_eq(t_run_dptrain("train --bogus 1", &out), 2);
    cr_assert(strstr(out, "unknown flag '--bogus'"), "%s", out);
    free(out);
    cr_assert_eq(t_run_dptrain("train --epochs", &out), 2);
    cr_assert(strstr(out, "needs a value"), "%s", out);
    free(out);
}

Test(cli, missing_data_file_is_an_io_error)
{
    char *out;
    char *dir = t_make_tmpdir("cli");
    char args[4096];
    snprintf(args, sizeof args, "train --data csv:%s/nope.csv --out %s/run --quiet", dir, dir);
    cr_assert_eq(t_run_dptrain(args, &out), 4, "%s", out);
    cr_assert(strstr(out, "nope.csv"), "%s", out);
    free(out), free(dir);
}

Test(cli, bad_model_spec_exits_2_with_one_line)
{
    char *dir = t_make_tmpdir("cli");
    char *csv = t_write_class_table(dir);
    char args[4096], *out;
    snprintf(args, sizeof args,
             "train --data csv:%s --csv-header --model dense:8,swish,dense:3 --out %s/run", csv,
             dir);
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "dptrain: error: model spec: unknown layer 'swish'"), "%s", out);
    cr_assert_eq(strchr(out, '\n') - out + 1, (long)strlen(out), "more than one line: %s", out);
    free(out), free(csv), free(dir);
}

static void train_csv(const char *dir, const char *csv, const char *run, const char *extra)
{
    char args[4096], *out;
    snprintf(args, sizeof args,
             "train --data csv:%s --csv-header --val-split 0.25 --model dense:16,relu,dense:3 "
             "--batch-size 32 --micro-batch 8 --lr 0.05 --threads 2 --quiet --out %s/%s %s",
             csv, dir, run, extra);
    int rc = t_run_dptrain(args, &out);
    cr_assert_eq(rc, 0, "%s -> %d: %s", args, rc, out);
    free(out);
}

static char *params_sha(const char *dir, const char *run)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/checkpoint.dpt", dir, run);
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s", dpt_last_error());
    size_t n;
    const float *p = dpt_checkpoint_section(ck, "params", &n);
    cr_assert_not_null(p);
    cr_assert_gt(n, 0u);
    char *copy = malloc(n);
    memcpy(copy, p, n);
    dpt_checkpoint_free(ck);
    return copy;
}

/* metrics.csv with the timing columns (epoch_seconds, samples_per_second) blanked. */
static char *metrics_without_timing(const char *dir, const char *run)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, run);
    char *text = t_read_file(path, NULL), *outp = malloc(strlen(text) + 1), *o = outp;
    int col = 0;
    for (const char *p = text; *p; p++) {
        if (*p == ',') col++;
        if (*p == '\n') col = 0;
        if ((col == 8 || col == 9) && *p != ',') continue;
        *o++ = *p;
    }
    *o = '\0';
    free(text);
    return outp;
}

Test(cli, train_writes_run_directory, .timeout = 120)
{
    char *dir = t_make_tmpdir("cli");
    char *csv = t_write_class_table(dir);
    train_csv(dir, csv, "run", "--epochs 3");
    char *p = t_path(dir, "run/metrics.csv");
    char *metrics = t_read_file(p, NULL);
    const char *header =
        "epoch,step,lr,momentum,train_loss,train_accuracy,val_loss,"
        "val_accuracy,epoch_seconds,samples_per_second,threads,ranks,grad_norm,event\n";
    cr_assert(strncmp(metrics, header, strlen(header)) == 0, "%s", metrics);
    int lines = 0;
    for (char *c = metrics; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 4, "header + 3 epochs expected:\n%s", metrics);
    /* 300 training rows, batch 32 -> 10 steps per epoch; epoch 3 ends at step 30 */
    cr_assert(strstr(metrics, "\n3,30,0.05,"), "%s", metrics);
    char *c = t_path(dir, "run/config.txt");
    char *config = t_read_file(c, NULL);
    cr_assert(strstr(config, "blis_kernel_set = "), "%s", config);
    cr_assert(strstr(config, "micro_batch = 8"), "%s", config);
    cr_assert(strstr(config, "model = 6x1x1 -> dense:16,relu,dense:3"), "%s", config);
    free(metrics), free(config), free(p), free(c), free(csv), free(dir);
}

Test(cli, resume_continues_exactly, .timeout = 120)
{
    char *dir = t_make_tmpdir("cli");
    char *csv = t_write_class_table(dir);
    train_csv(dir, csv, "whole", "--epochs 4 --model dense:16,relu,dropout:0.3,dense:3");
    train_csv(dir, csv, "split", "--epochs 2 --model dense:16,relu,dropout:0.3,dense:3");
    char args[4096], *out;
    /* Resume replays the stored flags; only the new total epoch count is given. */
    snprintf(args, sizeof args, "train --resume %s/split --epochs 4 --quiet", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    char *a = params_sha(dir, "whole"), *b = params_sha(dir, "split");
    cr_assert_eq(memcmp(a, b, 16 * 3 * sizeof(float)), 0, "weights differ after resume");
    char *ma = metrics_without_timing(dir, "whole"), *mb = metrics_without_timing(dir, "split");
    cr_assert_str_eq(ma, mb);
    free(a), free(b), free(ma), free(mb), free(csv), free(dir);
}

Test(cli, resume_without_checkpoint_fails_clearly)
{
    char *dir = t_make_tmpdir("cli");
    char args[4096], *out;
    snprintf(args, sizeof args, "train --resume %s", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 4, "%s", out);
    cr_assert(strstr(out, "checkpoint.dpt"), "%s", out);
    free(out), free(dir);
}

Test(cli, info_reports_kernel_set)
{
    char *out;
    cr_assert_eq(t_run_dptrain("info", &out), 0);
    cr_assert(strstr(out, "dptrain_version = "), "%s", out);
    cr_assert(strstr(out, "blis_version = 0."), "%s", out);
    cr_assert(strstr(out, "blis_kernel_set = "), "%s", out);
    cr_assert(strstr(out, "omp_max_threads = "), "%s", out);
    cr_assert(strstr(out, "cpu_features = "), "%s", out);
    free(out);
}

Test(cli, user_blis_arch_type_wins)
{
    char *out;
    /* 3 = BLIS_ARCH_HASWELL in BLIS 0.9.0's arch_t; AVX2 kernels run on any AVX-512 CPU. */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        cr_skip_test("CPU lacks AVX2+FMA");
    char *dir = t_make_tmpdir("cli-out");
    char *log = t_path(dir, "log");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "BLIS_ARCH_TYPE=3 %s info > %s 2>&1", t_dptrain_bin(), log);
    cr_assert_eq(t_system(cmd), 0);
    out = t_read_file(log, NULL);
    cr_assert(strstr(out, "blis_kernel_set = haswell"), "%s", out);
    cr_assert(strstr(out, "BLIS_ARCH_TYPE=3 set by the user"), "%s", out);
    free(out), free(log), free(dir);
}

Test(cli, info_checkpoint_lists_sections, .timeout = 60)
{
    char *dir = t_make_tmpdir("cli");
    char *csv = t_write_class_table(dir);
    train_csv(dir, csv, "run", "--epochs 1");
    char args[4096], *out;
    snprintf(args, sizeof args, "info --checkpoint %s/run/checkpoint.dpt", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "params"), "%s", out);
    cr_assert(strstr(out, "optimizer"), "%s", out);
    free(out), free(csv), free(dir);
}

/* The value of column `col` (0-based) in the last row of a run's metrics.csv. */
static char *last_row_field(const char *dir, const char *run, int col)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, run);
    char *text = t_read_file(path, NULL);
    size_t len = strlen(text);
    cr_assert_gt(len, 1u);
    text[len - 1] = '\0';
    char *line = strrchr(text, '\n') + 1, *f = line;
    for (int i = 0; i < col; i++)
        f = strchr(f, ',') + 1;
    char *end = strchr(f, ',');
    if (end) *end = '\0';
    char *out = strdup(f);
    free(text);
    return out;
}

Test(cli, grad_norm_column_when_the_step_measures_it, .timeout = 60)
{
    char *dir = t_make_tmpdir("cli");
    char *csv = t_write_class_table(dir);
    train_csv(dir, csv, "plain", "--epochs 1");
    train_csv(dir, csv, "clipped", "--epochs 1 --clip-grad-norm 1e9");
    char *plain = last_row_field(dir, "plain", 12), *clipped = last_row_field(dir, "clipped", 12);
    cr_assert_str_eq(plain, "", "the fused step does not measure the norm: empty, not nan");
    double norm = strtod(clipped, NULL);
    cr_assert(norm > 0 && norm < 1e6, "grad_norm '%s'", clipped);
    free(plain), free(clipped), free(csv), free(dir);
}

Test(cli, unwritable_output_directory_is_an_io_error)
{
    char *dir = t_make_tmpdir("cli");
    char *file = t_path(dir, "file");
    t_write_text(file, "x");
    char args[4096], *out;
    /* A directory cannot be created under a regular file (root ignores permission bits). */
    snprintf(args, sizeof args, "train --data synthetic:200 --epochs 1 --quiet --out %s/run", file);
    cr_assert_eq(t_run_dptrain(args, &out), 4, "%s", out);
    cr_assert(strstr(out, "cannot create directory"), "%s", out);
    free(out), free(file), free(dir);
}

Test(cli, best_checkpoint_follows_the_monitored_metric, .timeout = 60)
{
    char *dir = t_make_tmpdir("cli");
    char *csv = t_write_class_table(dir);
    /* Seed 1 at lr 0.2: lowest val_loss at epoch 7, highest val_accuracy at epoch 5, so the
     * test tells the two rules apart. */
    train_csv(dir, csv, "acc",
              "--epochs 8 --lr 0.2 --seed 1 --early-stop monitor=val_accuracy,patience=100");
    /* The epoch with the highest val_accuracy (the first of equals: improvement is strict). */
    char path[4096];
    snprintf(path, sizeof path, "%s/acc/metrics.csv", dir);
    char *text = t_read_file(path, NULL);
    double best = -1;
    unsigned long long best_epoch = 0;
    for (char *l = strchr(text, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        unsigned long long e;
        char *f = l;
        cr_assert_eq(sscanf(f, "%llu,", &e), 1);
        for (int i = 0; i < 7; i++)
            f = strchr(f, ',') + 1;
        double acc = strtod(f, NULL);
        if (acc > best) best = acc, best_epoch = e;
    }
    snprintf(path, sizeof path, "%s/acc/best.dpt", dir);
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s", dpt_last_error());
    size_t n;
    const uint64_t *state = dpt_checkpoint_section(ck, "state", &n);
    cr_assert_not_null(state);
    cr_assert_eq(state[0], best_epoch, "best.dpt holds epoch %llu, best val_accuracy at %llu",
                 (unsigned long long)state[0], best_epoch);
    dpt_checkpoint_free(ck);
    free(text), free(csv), free(dir);
}

Test(cli, data_flags_are_checked_the_same_in_every_command)
{
    const char *cmds[] = {"train", "lr-find", "eval --checkpoint x.dpt",
                          "predict --checkpoint x.dpt"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[256], *out;
        snprintf(args, sizeof args, "%s --csv-label-column 1.5", cmds[i]);
        cr_assert_eq(t_run_dptrain(args, &out), 2, "%s: %s", cmds[i], out);
        cr_assert(strstr(out, "--csv-label-column expects an integer, got '1.5'"), "%s", out);
        free(out);
        snprintf(args, sizeof args, "%s --csv-delimiter ';;'", cmds[i]);
        cr_assert_eq(t_run_dptrain(args, &out), 2, "%s: %s", cmds[i], out);
        cr_assert(strstr(out, "--csv-delimiter takes one character"), "%s", out);
        free(out);
        snprintf(args, sizeof args, "%s --data", cmds[i]);
        cr_assert_eq(t_run_dptrain(args, &out), 2, "%s: %s", cmds[i], out);
        cr_assert(strstr(out, "--data needs a value"), "%s", out);
        free(out);
    }
}
