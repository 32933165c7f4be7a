/* `dptrain sweep` end to end on a small learnable table: trials.csv and the ranking, the grid's
 * product and --random draws, successive halving, --parallel giving the same trials, divergence
 * as a result, a restart that reruns nothing, an interrupted sweep that resumes its trials
 * exactly, and every bad input refused with one line before anything runs. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dptrain/metrics.h"
#include "support.h"

static void sleep_ms(long ms)
{
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

TestSuite(sweep, .fini = t_remove_scratch, .timeout = 120);

typedef struct {
    char *dir, *csv;
} fixture_t;

static fixture_t fixture(void)
{
    fixture_t f;
    f.dir = t_scratch_dir("sweep");
    f.csv = t_write_group_table(f.dir, 600, 3, 5);
    return f;
}

/* Runs `dptrain sweep --out DIR/name --data csv:CSV --val-split 0.25 ARGS`. */
/* DIR/rel read whole (malloc'd). */
static char *read_rel(const fixture_t *f, const char *rel)
{
    char *path = t_path(f->dir, rel), *text = t_read_file(path, NULL);
    free(path);
    return text;
}

static int sweep(const fixture_t *f, const char *name, const char *args, char **out)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "sweep --out %s/%s --data csv:%s --val-split 0.25 --model dense:16,relu,dense:3 %s",
             f->dir, name, f->csv, args);
    return t_run_dptrain(cmd, out);
}

static dpt_metrics_table_t *read_csv(const fixture_t *f, const char *rel)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", f->dir, rel);
    dpt_metrics_table_t *t = NULL;
    cr_assert_eq(dpt_metrics_read(path, &t), DPT_OK, "%s: %s", path, dpt_last_error());
    return t;
}

static const char *field(const dpt_metrics_table_t *t, size_t row, const char *col)
{
    size_t c = dpt_metrics_table_find(t, col);
    cr_assert_lt(c, dpt_metrics_table_cols(t), "no column %s", col);
    return dpt_metrics_table_field(t, row, c);
}

/* The trained columns of a trial's metrics.csv (not its timings), as one string. */
static char *trained(const fixture_t *f, const char *rel)
{
    dpt_metrics_table_t *t = read_csv(f, rel);
    static const char *const cols[] = {"epoch",          "step",     "lr",          "train_loss",
                                       "train_accuracy", "val_loss", "val_accuracy"};
    size_t cap = 65536, len = 0;
    char *s = calloc(cap, 1);
    for (size_t r = 0; r < dpt_metrics_table_rows(t); r++)
        for (size_t c = 0; c < 7; c++)
            len += (size_t)snprintf(s + len, cap - len, "%s%c", field(t, r, cols[c]),
                                    c == 6 ? '\n' : ',');
    dpt_metrics_table_free(t);
    return s;
}

/* Trials 0..n-1 (of seed `seed`) of sweeps a and b trained the same bits. */
static void assert_same_trials(const fixture_t *f, const char *a, const char *b, int n, int seed)
{
    for (int c = 0; c < n; c++) {
        char pa[64], pb[64];
        snprintf(pa, sizeof pa, "%s/t%03d-s%d/metrics.csv", a, c, seed);
        snprintf(pb, sizeof pb, "%s/t%03d-s%d/metrics.csv", b, c, seed);
        char *x = trained(f, pa), *y = trained(f, pb);
        cr_assert_str_eq(x, y, "trial %d differs between %s and %s", c, a, b);
        free(x), free(y);
    }
}

Test(sweep, grid_trials_csv_and_ranking)
{
    fixture_t f = fixture();
    char *out;
    int rc = sweep(&f, "a",
                   "--grid 'lr=0.01/0.3;optimizer=sgd:momentum=0.9/adam' --seeds 1,2 "
                   "--epochs 2 --parallel 2 --threads 2",
                   &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "sweep: 8 trials (4 configurations x 2 seeds): 8 done"), "%s", out);
    cr_assert(strstr(out, "rank  val_accuracy mean +- std"), "%s", out);
    cr_assert(strstr(out, "   1  0."), "%s", out);
    dpt_metrics_table_t *t = read_csv(&f, "a/trials.csv");
    cr_assert_eq(dpt_metrics_table_rows(t), 8u);
    /* The product in reading order, each configuration with its seeds. */
    cr_assert_str_eq(field(t, 0, "lr"), "0.01");
    cr_assert_str_eq(field(t, 0, "optimizer"), "sgd:momentum=0.9");
    cr_assert_str_eq(field(t, 3, "optimizer"), "adam");
    cr_assert_str_eq(field(t, 3, "seed"), "2");
    cr_assert_str_eq(field(t, 7, "lr"), "0.3");
    for (size_t r = 0; r < 8; r++) {
        cr_assert_str_eq(field(t, r, "status"), "done");
        cr_assert_str_eq(field(t, r, "epochs"), "2");
        double v = strtod(field(t, r, "final_val_accuracy"), NULL);
        cr_assert(v > 0 && v <= 1, "row %zu: %g", r, v);
    }
    /* Each trial is an ordinary run directory with its own config. */
    char *cfg = read_rel(&f, "a/t003-s2/config.txt");
    cr_assert(strstr(cfg, "optimizer = adam:"), "%s", cfg);
    cr_assert(strstr(cfg, "seed = 2"), "%s", cfg);
    free(cfg);
    dpt_metrics_table_free(t);
    free(out);
    free(f.csv);
}

/* --parallel splits the threads; a trial's bits do not depend on it. */
Test(sweep, parallel_trials_equal_serial_ones)
{
    fixture_t f = fixture();
    char *out;
    const char *g = "--grid 'lr=0.05/0.2' --seeds 3 --epochs 3";
    char args[512];
    snprintf(args, sizeof args, "%s --parallel 2 --threads 2", g);
    cr_assert_eq(sweep(&f, "par", args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "%s --parallel 1 --threads 1", g);
    cr_assert_eq(sweep(&f, "ser", args, &out), 0, "%s", out);
    free(out);
    assert_same_trials(&f, "par", "ser", 2, 3);
    free(f.csv);
}

Test(sweep, halving_keeps_the_best_third_and_records_the_rest)
{
    fixture_t f = fixture();
    char *out;
    cr_assert_eq(sweep(&f, "h",
                       "--grid 'lr=0.0001/0.001/0.01/0.1/0.3/0.5' --epochs 4 "
                       "--halving eta=3,min_epochs=1",
                       &out),
                 0, "%s", out);
    cr_assert(strstr(out, "rung at epoch 1: 2 of 6 configurations go on"), "%s", out);
    cr_assert(strstr(out, "rung at epoch 3: 1 of 2 configurations go on"), "%s", out);
    dpt_metrics_table_t *t = read_csv(&f, "h/trials.csv");
    size_t done = 0, stopped1 = 0, stopped3 = 0;
    for (size_t r = 0; r < 6; r++) {
        const char *st = field(t, r, "status"), *ep = field(t, r, "epochs");
        done += !strcmp(st, "done") && !strcmp(ep, "4");
        stopped1 += !strcmp(st, "stopped") && !strcmp(ep, "1");
        stopped3 += !strcmp(st, "stopped") && !strcmp(ep, "3");
    }
    cr_assert_eq(done, 1u);
    cr_assert_eq(stopped1, 4u);
    cr_assert_eq(stopped3, 1u);
    /* The tiny learning rates learn least in one epoch: they are the first to go. */
    cr_assert_str_eq(field(t, 0, "status"), "stopped");
    cr_assert_str_eq(field(t, 0, "epochs"), "1");
    dpt_metrics_table_free(t);
    free(out);
    free(f.csv);
}

Test(sweep, random_draws_are_seeded_and_in_range)
{
    fixture_t f = fixture();
    char *out;
    cr_assert_eq(sweep(&f, "r",
                       "--grid 'lr=log:0.001:0.1;batch-size=int:16:64' --random 3 "
                       "--sweep-seed 9 --epochs 1",
                       &out),
                 0, "%s", out);
    free(out);
    cr_assert_eq(sweep(&f, "r2",
                       "--grid 'lr=log:0.001:0.1;batch-size=int:16:64' --random 3 "
                       "--sweep-seed 9 --epochs 1",
                       &out),
                 0, "%s", out);
    free(out);
    dpt_metrics_table_t *a = read_csv(&f, "r/trials.csv"), *b = read_csv(&f, "r2/trials.csv");
    cr_assert_eq(dpt_metrics_table_rows(a), 3u);
    for (size_t r = 0; r < 3; r++) {
        double lr = strtod(field(a, r, "lr"), NULL);
        long bs = strtol(field(a, r, "batch-size"), NULL, 10);
        cr_assert(lr >= 0.001 && lr <= 0.1, "%g", lr);
        cr_assert(bs >= 16 && bs <= 64, "%ld", bs);
        cr_assert_str_eq(field(a, r, "lr"), field(b, r, "lr"));
        cr_assert_str_eq(field(a, r, "batch-size"), field(b, r, "batch-size"));
    }
    dpt_metrics_table_free(a), dpt_metrics_table_free(b);
    free(f.csv);
}

Test(sweep, a_diverging_trial_is_a_result)
{
    fixture_t f = fixture();
    char *out;
    cr_assert_eq(
        sweep(&f, "d", "--grid 'lr=0.05/100000' --epochs 2 --divergence-guard retries=0", &out), 0,
        "%s", out);
    dpt_metrics_table_t *t = read_csv(&f, "d/trials.csv");
    cr_assert_str_eq(field(t, 0, "status"), "done");
    cr_assert_str_eq(field(t, 1, "status"), "diverged");
    cr_assert(strstr(out, "1 diverged"), "%s", out);
    dpt_metrics_table_free(t);
    free(out);
    free(f.csv);
}

/* Starts the sweep `name` in the background, sends it signo once its first trial has written
 * a metrics row, and returns its exit code (-signal when killed). */
static int start_and_signal(const fixture_t *f, const char *name, const char *args, int signo)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "exec %s sweep --out %s/%s --data csv:%s --val-split 0.25 --model "
             "dense:16,relu,dense:3 %s >%s/%s.log 2>&1",
             t_dptrain_bin(), f->dir, name, f->csv, args, f->dir, name);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char rel[256];
    snprintf(rel, sizeof rel, "%s/t000-s1/metrics.csv", name);
    char *first = t_path(f->dir, rel);
    struct stat st;
    for (int i = 0; i < 6000 && stat(first, &st) != 0; i++)
        sleep_ms(1);
    sleep_ms(20);
    kill(pid, signo);
    int ws;
    waitpid(pid, &ws, 0);
    free(first);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
}

/* The same command again reruns nothing; an interrupted sweep resumes its trials exactly. */
Test(sweep, restart_reruns_nothing_and_interrupt_resumes_exactly)
{
    fixture_t f = fixture();
    char *out;
    const char *g = "--grid 'lr=0.02/0.1' --epochs 30 --threads 1";
    cr_assert_eq(sweep(&f, "ref", g, &out), 0, "%s", out);
    free(out);
    char *log = read_rel(&f, "ref/t000-s1/log.txt");
    cr_assert_eq(sweep(&f, "ref", g, &out), 0, "%s", out);
    cr_assert_null(strstr(out, "sweep: [1/"), "a finished trial ran again: %s", out);
    char *log2 = read_rel(&f, "ref/t000-s1/log.txt");
    cr_assert_str_eq(log, log2);
    free(out), free(log), free(log2);

    /* Interrupted (SIGTERM) while its first trial trains, then run again. */
    int code = start_and_signal(&f, "int", g, SIGTERM);
    cr_assert(code == 75 || code == 0, "exit %d", code);
    if (code == 75) {
        char *l = read_rel(&f, "int.log");
        cr_assert(strstr(l, "sweep interrupted; run the same command again"), "%s", l);
        free(l);
    }
    cr_assert_eq(sweep(&f, "int", g, &out), 0, "%s", out);
    free(out);
    /* Killed (-9): its trials end with it (they checkpoint on the parent's death), and the
     * restart takes over their directories. */
    code = start_and_signal(&f, "int9", g, SIGKILL);
    cr_assert(code == -SIGKILL || code == 0, "exit %d", code);
    cr_assert_eq(sweep(&f, "int9", g, &out), 0, "%s", out);
    cr_assert(strstr(out, "2 done"), "%s", out);
    free(out);
    assert_same_trials(&f, "ref", "int9", 2, 1);
    assert_same_trials(&f, "ref", "int", 2, 1);
    free(f.csv);
}

static void refused(const fixture_t *f, const char *name, const char *args, const char *want)
{
    char *out;
    int rc = sweep(f, name, args, &out);
    cr_assert_eq(rc, 2, "%s: exit %d: %s", args, rc, out);
    cr_assert(strstr(out, want), "%s: '%s' not in: %s", args, want, out);
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/t000-s1", f->dir, name);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "%s: a trial started", args);
    free(out);
}

Test(sweep, bad_input_is_refused_before_anything_runs)
{
    fixture_t f = fixture();
    refused(&f, "b1", "--grid 'lr=0.1/abc'", "--lr expects a number in [1e-12, 1e+06], got 'abc'");
    refused(&f, "b2", "--grid 'bogus=1/2'", "unknown flag '--bogus'");
    refused(&f, "b3", "--grid ''", "sweep: --grid is empty");
    refused(&f, "b4", "--grid 'lr=0.1' --parallel 3 --threads 2",
            "--parallel 3 is more than the 2 threads");
    refused(&f, "b5", "--grid 'seed=1/2'", "'seed' is set by the sweep itself");
    refused(&f, "b6", "--grid 'optimizer=sgd/adam:beta1=2'",
            "sweep configuration 1 (optimizer=adam:beta1=2): optimizer adam: beta1 must be a "
            "number in [0, 1), got '2'");
    refused(&f, "b7", "--grid 'lr=log:0.001:1'", "lr is a range; ranges are sampled with --random");
    refused(&f, "b8", "--grid 'lr=0.1' --halving eta=1",
            "--halving: eta must be an integer in "
            "[2, 100], got '1'");
    refused(&f, "b9", "--grid 'lr=0.1' --seed 3",
            "--seed is set per trial by the sweep; use --seeds");
    refused(&f, "b10", "--grid 'lr=0.1;lr=0.2'", "key 'lr' given twice");
    char *out;
    cr_assert_eq(sweep(&f, "same", "--grid 'lr=0.1' --epochs 1", &out), 0, "%s", out);
    free(out);
    cr_assert_eq(sweep(&f, "same", "--grid 'lr=0.2' --epochs 1", &out), 2, "%s", out);
    cr_assert(strstr(out, "holds a different sweep"), "%s", out);
    free(out);
    free(f.csv);
}
