/* Runs users can trust (src/train/guards.c, src/train/run.c, src/io/step_log.c): early
 * stopping, the divergence guard and its rollbacks, checkpoint retention and steps.csv, from
 * the decision functions up to the dptrain binary on a CSV table the tests write. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "dptrain/checkpoint.h"
#include "dptrain/metrics.h"
#include "support.h"
#include "train/guards.h"

/* ---- decisions ------------------------------------------------------------------------- */

Test(early_stop, spec_defaults_follow_keras)
{
    dpt_early_stop_config_t c;
    cr_assert_eq(dpt_early_stop_parse(NULL, &c), DPT_OK);
    cr_assert_eq(c.enabled, 0);
    cr_assert_eq(dpt_early_stop_parse("on", &c), DPT_OK);
    cr_assert_eq(c.enabled, 1);
    cr_assert_eq(c.monitor_accuracy, 0);
    cr_assert_eq(c.mode_max, 0);
    cr_assert_eq(c.patience, 0u);
    cr_assert_eq(c.restore_best, 0);
    cr_assert_eq(dpt_early_stop_parse("monitor=val_accuracy,patience=4", &c), DPT_OK);
    cr_assert_eq(c.mode_max, 1, "mode defaults to max for an accuracy");
    cr_assert_eq(c.patience, 4u);
    cr_assert_eq(dpt_early_stop_parse("monitor=val_accuracy,mode=min,min_delta=0.01,"
                                      "restore_best=1",
                                      &c),
                 DPT_OK);
    cr_assert_eq(c.mode_max, 0, "an explicit mode wins");
    cr_assert_float_eq(c.min_delta, 0.01, 1e-15);
    cr_assert_eq(c.restore_best, 1);
}

Test(early_stop, spec_errors_name_key_and_range)
{
    dpt_early_stop_config_t c;
    cr_assert_eq(dpt_early_stop_parse("patiense=3", &c), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(), "--early-stop: unknown key 'patiense'; valid keys: "
                                       "monitor, mode, patience, min_delta, restore_best");
    cr_assert_eq(dpt_early_stop_parse("monitor=loss", &c), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(),
                     "--early-stop: monitor must be one of val_loss, val_accuracy, got 'loss'");
    cr_assert_eq(dpt_early_stop_parse("patience=-1", &c), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(),
                     "--early-stop: patience: malformed number '-1' (expected an integer in "
                     "[0, 1000000])");
    cr_assert_eq(dpt_early_stop_parse("min_delta=nan", &c), DPT_ERR_INVALID_ARG);
    cr_assert_eq(dpt_early_stop_parse("restore_best=yes", &c), DPT_ERR_INVALID_ARG);
    cr_assert_eq(dpt_early_stop_parse("patience", &c), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(), "unknown --early-stop 'patience'; valid names: on, off");
    cr_assert_eq(dpt_early_stop_parse("on:patience=2,patience=3", &c), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(), "--early-stop on: key 'patience' given twice");
}

/* Keras EarlyStopping on a fixed sequence: improvement means beating the best by more than
 * min_delta; the run stops after `patience` epochs in a row without one. */
Test(early_stop, stops_after_patience_epochs_without_improvement)
{
    dpt_early_stop_config_t c;
    cr_assert_eq(dpt_early_stop_parse("patience=2,min_delta=0.1", &c), DPT_OK);
    dpt_early_stop_state_t st;
    dpt_early_stop_init(&c, &st);
    /* epoch:            1    2    3     4    5    6 */
    const double v[] = {1.0, 0.8, 0.75, 0.5, 0.45, 0.41};
    const int improved[] = {1, 1, 0, 1, 0, 0};
    for (int e = 0; e < 6; e++) {
        cr_assert_eq(st.stopped, 0, "stopped before epoch %d", e + 1);
        cr_assert_eq(dpt_early_stop_update(&c, &st, v[e], (uint64_t)e + 1), improved[e], "epoch %d",
                     e + 1);
    }
    cr_assert_eq(st.stopped, 1);
    cr_assert_eq(st.best_epoch, 4u);
    cr_assert_float_eq(st.best, 0.5, 0);
    cr_assert_eq(st.wait, 2u);
}

Test(early_stop, max_mode_and_nan)
{
    dpt_early_stop_config_t c;
    cr_assert_eq(dpt_early_stop_parse("monitor=val_accuracy,patience=1", &c), DPT_OK);
    dpt_early_stop_state_t st;
    dpt_early_stop_init(&c, &st);
    cr_assert_eq(dpt_early_stop_update(&c, &st, 0.5, 1), 1);
    cr_assert_eq(dpt_early_stop_update(&c, &st, 0.6, 2), 1);
    cr_assert_eq(dpt_early_stop_update(&c, &st, NAN, 3), 0, "NaN is never an improvement");
    cr_assert_eq(st.stopped, 1);
    cr_assert_eq(st.best_epoch, 2u);
}

Test(divergence_guard, spec_defaults_and_errors)
{
    dpt_guard_config_t g;
    cr_assert_eq(dpt_guard_parse(NULL, &g), DPT_OK);
    cr_assert_eq(g.enabled, 1, "on by default");
    cr_assert_float_eq(g.factor, 0.5, 0);
    cr_assert_eq(g.retries, 3u);
    cr_assert_float_eq(g.spike, 10, 0);
    cr_assert_eq(dpt_guard_parse("off", &g), DPT_OK);
    cr_assert_eq(g.enabled, 0);
    cr_assert_eq(dpt_guard_parse("factor=0.1,retries=0,spike=0", &g), DPT_OK);
    cr_assert_float_eq(g.factor, 0.1, 0);
    cr_assert_eq(g.retries, 0u);
    cr_assert_float_eq(g.spike, 0, 0);
    cr_assert_eq(dpt_guard_parse("factor=1", &g), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(),
                     "--divergence-guard: factor must be a number in (0, 1), got '1'");
    cr_assert_eq(dpt_guard_parse("spike=0.5", &g), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(), "--divergence-guard: spike must be > 1, or 0 to test only "
                                       "for NaN/inf, got 0.5");
    cr_assert_eq(dpt_guard_parse("retries=101", &g), DPT_ERR_INVALID_ARG);
    cr_assert_eq(dpt_guard_parse("lr=2", &g), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(), "--divergence-guard: unknown key 'lr'; valid keys: "
                                       "factor, retries, spike");
}

Test(divergence_guard, nan_always_spikes_after_warmup_above_chance)
{
    dpt_guard_config_t g;
    dpt_guard_parse(NULL, &g);
    dpt_guard_state_t st;
    dpt_guard_init(&st);
    char why[128];
    const double chance = log(3.0);
    /* The warm-up judges no spike, however large ... */
    cr_assert_eq(dpt_guard_check(&g, &st, 1.0, chance, why, sizeof why), 1);
    cr_assert_eq(dpt_guard_check(&g, &st, 50.0, chance, why, sizeof why), 1);
    /* ... but a NaN or an infinity at any time. */
    dpt_guard_state_t fresh;
    dpt_guard_init(&fresh);
    cr_assert_eq(dpt_guard_check(&g, &fresh, NAN, chance, why, sizeof why), 0);
    cr_assert_str_eq(why, "loss nan");
    cr_assert_eq(dpt_guard_check(&g, &fresh, INFINITY, chance, why, sizeof why), 0);
    cr_assert_str_eq(why, "loss inf");
    /* Settle the average at 0.05, well below chance. */
    dpt_guard_init(&st);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(dpt_guard_check(&g, &st, 0.05, chance, why, 128), 1);
    cr_assert_eq(st.ema_steps, 30u);
    /* 0.9 is 18x the average but below chance: a noisy batch, not divergence. */
    cr_assert_eq(dpt_guard_check(&g, &st, 0.9, chance, why, sizeof why), 1);
    dpt_guard_init(&st);
    for (int i = 0; i < 30; i++)
        dpt_guard_check(&g, &st, 0.5, chance, why, 128);
    cr_assert_eq(dpt_guard_check(&g, &st, 4.9, chance, why, sizeof why), 1, "under 10x");
    cr_assert_eq(dpt_guard_check(&g, &st, 60.0, chance, why, sizeof why), 0);
    cr_assert(strstr(why, "loss 60 > 10 x average"), "%s", why);
    cr_assert_float_eq(st.lr_scale, 1.0, 0, "the check never touches the LR scale");
}

/* ---- the dptrain binary ------------------------------------------------------------------ */

/* 300 training rows at batch 32: 10 steps per epoch. */
static int train(const char *dir, const char *csv, const char *run, const char *extra, char **out)
{
    char args[4096];
    snprintf(args, sizeof args,
             "train --data csv:%s --csv-header --val-split 0.25 --model dense:16,relu,dense:3 "
             "--batch-size 32 --micro-batch 8 --threads 2 --quiet --out %s/%s %s",
             csv, dir, run, extra);
    return t_run_dptrain(args, out);
}

static void train_ok(const char *dir, const char *csv, const char *run, const char *extra)
{
    char *out;
    int rc = train(dir, csv, run, extra, &out);
    cr_assert_eq(rc, 0, "%s -> %d: %s", extra, rc, out);
    free(out);
}

static int resume(const char *dir, const char *run, const char *extra, char **out)
{
    char args[4096];
    snprintf(args, sizeof args, "train --resume %s/%s --quiet %s", dir, run, extra);
    return t_run_dptrain(args, out);
}

/* A section of DIR/RUN/FILE, copied (NULL when absent). */
static char *section(const char *dir, const char *run, const char *file, const char *name,
                     size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, run, file);
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s", dpt_last_error());
    size_t bytes = 0;
    const void *p = dpt_checkpoint_section(ck, name, &bytes);
    char *copy = NULL;
    if (p) {
        copy = malloc(bytes ? bytes : 1);
        memcpy(copy, p, bytes);
    }
    dpt_checkpoint_free(ck);
    if (n) *n = bytes;
    return copy;
}

static dpt_metrics_table_t *metrics(const char *dir, const char *run)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, run);
    dpt_metrics_table_t *t;
    cr_assert_eq(dpt_metrics_read(path, &t), DPT_OK, "%s", dpt_last_error());
    return t;
}

static const char *field(const dpt_metrics_table_t *t, size_t row, const char *col)
{
    size_t j = dpt_metrics_table_find(t, col);
    cr_assert_neq(j, (size_t)-1, "no column %s", col);
    return dpt_metrics_table_field(t, row, j);
}

/* A file of the run read whole, with the timing columns of metrics.csv blanked. */
static char *run_file(const char *dir, const char *run, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, run, name);
    char *text = t_read_file(path, NULL);
    if (strcmp(name, "metrics.csv") != 0) return text;
    char *o = text;
    int col = 0;
    for (const char *p = text; *p; p++) {
        if (*p == ',') col++;
        if (*p == '\n') col = 0;
        if ((col == 8 || col == 9) && *p != ',') continue;
        *o++ = *p;
    }
    *o = '\0';
    return text;
}

static int file_exists(const char *dir, const char *run, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, run, name);
    return access(path, F_OK) == 0;
}

Test(run_cli, help_lists_the_new_flags)
{
    char *out;
    cr_assert_eq(t_run_dptrain("train --help", &out), 0);
    const char *flags[] = {"--early-stop", "--divergence-guard", "--keep-checkpoints",
                           "--log-every",  "restore_best",       "Exit 7"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert(strstr(out, flags[i]), "train --help lacks %s", flags[i]);
    free(out);
}

Test(run_cli, spec_errors_exit_2_with_one_line, .timeout = 60)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir), *out;
    cr_assert_eq(train(dir, csv, "a", "--early-stop patience=x", &out), 2, "%s", out);
    cr_assert(strstr(out, "dptrain: error: --early-stop: patience: malformed number 'x'"), "%s",
              out);
    cr_assert_eq(strchr(out, '\n') - out + 1, (long)strlen(out), "more than one line: %s", out);
    free(out);
    cr_assert_eq(train(dir, csv, "b", "--divergence-guard factor=2", &out), 2, "%s", out);
    cr_assert(strstr(out, "--divergence-guard: factor must be a number in (0, 1), got '2'"), "%s",
              out);
    free(out);
    char args[4096];
    snprintf(args, sizeof args,
             "train --data csv:%s --csv-header --model dense:8,relu,dense:3 --early-stop on "
             "--quiet --out %s/c",
             csv, dir);
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "--early-stop monitors val_loss but the data has no validation part: "
                          "use --val-split"),
              "%s", out);
    free(out), free(csv), free(dir);
}

/* Stops exactly where Keras would on the recorded validation losses, and the final model is
 * the best epoch's: the parameters best.dpt holds (lowest val_loss, min_delta 0). */
Test(run_cli, early_stop_stops_at_the_right_epoch_and_restores_best, .timeout = 120)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir), *out;
    int rc =
        train(dir, csv, "run", "--lr 0.5 --epochs 40 --early-stop patience=2,restore_best=1", &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "dptrain: early stop after epoch"), "%s", out);
    cr_assert(strstr(out, "dptrain: restored the parameters of epoch"), "%s", out);
    dpt_metrics_table_t *t = metrics(dir, "run");
    size_t rows = dpt_metrics_table_rows(t);
    cr_assert_lt(rows, 40u, "did not stop early");
    double best = INFINITY;
    size_t best_epoch = 0, wait = 0, stop = 0;
    for (size_t i = 0; i < rows && !stop; i++) {
        double v = strtod(field(t, i, "val_loss"), NULL);
        if (v < best)
            best = v, best_epoch = i + 1, wait = 0;
        else if (++wait >= 2)
            stop = i + 1;
    }
    cr_assert_eq(stop, rows, "stopped after epoch %zu, Keras would stop after %zu", rows, stop);
    cr_assert(strstr(field(t, rows - 1, "event"), "early stop: no val_loss improvement for 2 "
                                                  "epochs"),
              "%s", field(t, rows - 1, "event"));
    char want[64];
    snprintf(want, sizeof want, "restored epoch %zu", best_epoch);
    cr_assert(strstr(field(t, rows - 1, "event"), want), "%s", field(t, rows - 1, "event"));
    for (size_t i = 0; i + 1 < rows; i++)
        cr_assert_str_eq(field(t, i, "event"), "", "row %zu", i + 1);
    size_t n, nb, nt;
    char *p = section(dir, "run", "checkpoint.dpt", "params", &n);
    char *b = section(dir, "run", "best.dpt", "params", &nb);
    char *trained = section(dir, "run", "checkpoint.dpt", "trained_params", &nt);
    cr_assert_eq(n, nb);
    cr_assert_eq(memcmp(p, b, n), 0, "checkpoint.dpt does not hold the best epoch's params");
    cr_assert_not_null(trained, "the last epoch's parameters are kept for a resume");
    cr_assert_eq(nt, n);
    cr_assert_neq(memcmp(p, trained, n), 0, "nothing was restored");
    /* A stopped run resumes to nothing: same files. */
    char *m0 = run_file(dir, "run", "metrics.csv");
    free(out);
    cr_assert_eq(resume(dir, "run", "--epochs 50", &out), 0, "%s", out);
    cr_assert(strstr(out, "stopped early after epoch"), "%s", out);
    free(out);
    char *m1 = run_file(dir, "run", "metrics.csv");
    cr_assert_str_eq(m0, m1);
    char *p2 = section(dir, "run", "checkpoint.dpt", "params", NULL);
    cr_assert_eq(memcmp(p, p2, n), 0);
    dpt_metrics_table_free(t);
    free(p), free(b), free(trained), free(p2), free(m0), free(m1), free(csv), free(dir);
}

/* A crafted case: min_delta above any possible change means epoch 1 stays the best, so the
 * run stops after exactly 1 + patience epochs. */
Test(run_cli, early_stop_with_large_min_delta_stops_after_patience, .timeout = 60)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir);
    train_ok(dir, csv, "run", "--lr 0.1 --epochs 20 --early-stop patience=3,min_delta=1e9");
    dpt_metrics_table_t *t = metrics(dir, "run");
    cr_assert_eq(dpt_metrics_table_rows(t), 4u);
    cr_assert(strstr(field(t, 3, "event"), "(best "), "%s", field(t, 3, "event"));
    cr_assert(strstr(field(t, 3, "event"), "at epoch 1)"), "%s", field(t, 3, "event"));
    dpt_metrics_table_free(t);
    free(csv), free(dir);
}

/* The early-stop state (best, wait, best parameters) survives a stop at every epoch
 * boundary: resuming ends exactly like the uninterrupted run. */
Test(run_cli, early_stop_state_survives_resume, .timeout = 180)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir);
    const char *flags = "--lr 0.5 --epochs 40 --early-stop patience=2,restore_best=1";
    train_ok(dir, csv, "whole", flags);
    dpt_metrics_table_t *t = metrics(dir, "whole");
    size_t rows = dpt_metrics_table_rows(t);
    dpt_metrics_table_free(t);
    cr_assert_gt(rows, 3u);
    size_t n;
    char *ref = section(dir, "whole", "checkpoint.dpt", "params", &n);
    char *ref_trained = section(dir, "whole", "checkpoint.dpt", "trained_params", NULL);
    char *ref_metrics = run_file(dir, "whole", "metrics.csv");
    /* Split after each epoch but the last two: the wait counter is 0, 1 or 2 there. */
    for (size_t cut = 1; cut + 1 < rows; cut++) {
        char name[32], extra[256], *out;
        snprintf(name, sizeof name, "cut%zu", cut);
        snprintf(extra, sizeof extra, "%s --epochs %zu", flags, cut);
        /* --epochs cut ends the run there, like a kill after the checkpoint; the final
         * restore of that short run is what a resume must see through. */
        train_ok(dir, csv, name, extra);
        cr_assert_eq(resume(dir, name, "--epochs 40", &out), 0, "%s", out);
        free(out);
        char *got = section(dir, name, "checkpoint.dpt", "params", NULL);
        char *got_trained = section(dir, name, "checkpoint.dpt", "trained_params", NULL);
        cr_assert_eq(memcmp(got, ref, n), 0, "cut %zu: final parameters differ", cut);
        cr_assert_eq(memcmp(got_trained, ref_trained, n), 0, "cut %zu: trained differ", cut);
        char *m = run_file(dir, name, "metrics.csv");
        /* The short run's last row says it restored; the rest is the same. */
        char *a = strchr(ref_metrics, '\n'), *b = strchr(m, '\n');
        size_t lines = 0;
        for (; a && b && *a && *b; a = strchr(a + 1, '\n'), b = strchr(b + 1, '\n'), lines++) {
            size_t la = strcspn(a + 1, "\n"), lb = strcspn(b + 1, "\n");
            if (lines + 1 == cut) continue;
            cr_assert(la == lb && memcmp(a + 1, b + 1, la) == 0, "cut %zu: row %zu differs", cut,
                      lines + 1);
        }
        free(got), free(got_trained), free(m);
    }
    free(ref), free(ref_trained), free(ref_metrics), free(csv), free(dir);
}

/* --lr 50 explodes within a few steps; the guard rolls back and cuts the LR until it trains. */
Test(run_cli, divergence_rolls_back_and_recovers, .timeout = 120)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir), *out;
    int rc = train(dir, csv, "run",
                   "--lr 50 --epochs 4 --divergence-guard factor=0.1 --log-every 1", &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "dptrain: epoch 1: rollback 1: "), "%s", out);
    dpt_metrics_table_t *t = metrics(dir, "run");
    cr_assert_eq(dpt_metrics_table_rows(t), 4u);
    const char *ev = field(t, 0, "event");
    cr_assert(strstr(ev, "rollback 1: loss "), "%s", ev);
    cr_assert(strstr(ev, "lr x0.1"), "%s", ev);
    double lr = strtod(field(t, 3, "lr"), NULL), loss = strtod(field(t, 3, "train_loss"), NULL);
    cr_assert_lt(lr, 50 * 0.1 + 1e-9, "LR scale not reduced: lr %g", lr);
    cr_assert(isfinite(loss) && loss < 2, "final loss %g", loss);
    cr_assert(isfinite(strtod(field(t, 3, "val_loss"), NULL)));
    size_t n;
    char *g = section(dir, "run", "checkpoint.dpt", "guards", &n);
    cr_assert_eq(n, sizeof(dpt_guard_state_t) + sizeof(dpt_early_stop_state_t) + 8);
    dpt_guard_state_t gs;
    memcpy(&gs, g, sizeof gs);
    cr_assert_lt(gs.lr_scale, 0.1 + 1e-12, "lr_scale %g", gs.lr_scale);
    /* steps.csv: every step once, in order, although steps were rolled back and retried. */
    char *steps = run_file(dir, "run", "steps.csv");
    char *line = strchr(steps, '\n') + 1;
    for (unsigned long want = 1; want <= 40; want++) {
        cr_assert_eq(strtoul(line, NULL, 10), want, "steps.csv: %.40s", line);
        line = strchr(line, '\n') + 1;
    }
    cr_assert_str_eq(line, "");
    dpt_metrics_table_free(t);
    free(g), free(steps), free(out), free(csv), free(dir);
}

/* The LR scale is in the checkpoint: a recovered run resumes exactly. */
Test(run_cli, lr_scale_survives_resume, .timeout = 120)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir), *out;
    train_ok(dir, csv, "whole", "--lr 50 --epochs 3 --divergence-guard factor=0.1");
    train_ok(dir, csv, "split", "--lr 50 --epochs 1 --divergence-guard factor=0.1");
    cr_assert_eq(resume(dir, "split", "--epochs 3", &out), 0, "%s", out);
    size_t n;
    char *a = section(dir, "whole", "checkpoint.dpt", "params", &n);
    char *b = section(dir, "split", "checkpoint.dpt", "params", NULL);
    cr_assert_eq(memcmp(a, b, n), 0);
    char *ma = run_file(dir, "whole", "metrics.csv"), *mb = run_file(dir, "split", "metrics.csv");
    cr_assert_str_eq(ma, mb);
    free(a), free(b), free(ma), free(mb), free(out), free(csv), free(dir);
}

/* One good epoch, then an absurd LR with one retry: exit 7, a clear message, and the
 * checkpoint of the good epoch byte for byte. */
Test(run_cli, unrecoverable_divergence_exits_7_with_checkpoint_intact, .timeout = 120)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir), *out;
    train_ok(dir, csv, "run", "--lr 0.05 --epochs 1");
    size_t n0, n1;
    char path[4096];
    snprintf(path, sizeof path, "%s/run/checkpoint.dpt", dir);
    char *before = t_read_file(path, &n0);
    int rc = resume(dir, "run", "--epochs 3 --lr 100000 --divergence-guard retries=1", &out);
    cr_assert_eq(rc, 7, "%d: %s", rc, out);
    cr_assert(strstr(out, "dptrain: epoch 2: rollback 1: "), "%s", out);
    cr_assert(strstr(out, "dptrain: error: training diverged in epoch 2 ("), "%s", out);
    cr_assert(strstr(out, "and 1 rollback in a row (lr x0.5) did not help"), "%s", out);
    cr_assert(strstr(out, "run/checkpoint.dpt holds the last good epoch (1)"), "%s", out);
    char *after = t_read_file(path, &n1);
    cr_assert_eq(n0, n1);
    cr_assert_eq(memcmp(before, after, n0), 0, "checkpoint.dpt changed");
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s", dpt_last_error());
    dpt_checkpoint_free(ck);
    dpt_metrics_table_t *t = metrics(dir, "run");
    cr_assert_eq(dpt_metrics_table_rows(t), 2u);
    cr_assert(strstr(field(t, 1, "event"), "diverged: "), "%s", field(t, 1, "event"));
    dpt_metrics_table_free(t);
    free(before), free(after), free(out), free(csv), free(dir);
}

Test(run_cli, guard_off_lets_nan_through, .timeout = 60)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir), *out;
    int rc = train(dir, csv, "run", "--lr 100000 --epochs 2 --divergence-guard off", &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_null(strstr(out, "rollback"), "%s", out);
    dpt_metrics_table_t *t = metrics(dir, "run");
    cr_assert_eq(dpt_metrics_table_rows(t), 2u);
    cr_assert_str_eq(field(t, 1, "train_loss"), "", "a non-finite loss is an empty field");
    cr_assert_str_eq(field(t, 1, "event"), "");
    size_t n;
    float *p = (float *)section(dir, "run", "checkpoint.dpt", "params", &n);
    int bad = 0;
    for (size_t i = 0; i < n / sizeof(float); i++)
        bad |= !isfinite(p[i]);
    cr_assert(bad, "the parameters stayed finite: the guard did not need to be off");
    dpt_metrics_table_free(t);
    free(p), free(out), free(csv), free(dir);
}

Test(run_cli, keep_checkpoints_keeps_exactly_k, .timeout = 60)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir);
    train_ok(dir, csv, "run", "--lr 0.05 --epochs 5 --keep-checkpoints 2");
    for (int e = 1; e <= 5; e++) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-epoch%04d.dpt", e);
        cr_assert_eq(file_exists(dir, "run", name), e >= 4, "%s", name);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "test $(ls %s/run | grep -c '^checkpoint') -eq 3", dir);
    cr_assert_eq(t_system(cmd), 0, "other checkpoint files are left");
    size_t n;
    char *latest = section(dir, "run", "checkpoint.dpt", "params", &n);
    char *e5 = section(dir, "run", "checkpoint-epoch0005.dpt", "params", NULL);
    char *e4 = section(dir, "run", "checkpoint-epoch0004.dpt", "params", NULL);
    cr_assert_eq(memcmp(latest, e5, n), 0);
    cr_assert_neq(memcmp(latest, e4, n), 0, "epoch 4's copy was overwritten by epoch 5's");
    /* Resuming with a smaller K prunes to it. */
    char *out;
    cr_assert_eq(resume(dir, "run", "--epochs 6 --keep-checkpoints 1", &out), 0, "%s", out);
    cr_assert(file_exists(dir, "run", "checkpoint-epoch0006.dpt"));
    cr_assert(!file_exists(dir, "run", "checkpoint-epoch0005.dpt"));
    cr_assert(!file_exists(dir, "run", "checkpoint-epoch0004.dpt"));
    free(latest), free(e5), free(e4), free(out), free(csv), free(dir);
}

Test(run_cli, steps_csv_rows_and_exact_resume, .timeout = 120)
{
    char *dir = t_make_tmpdir("guards"), *csv = t_write_class_table(dir), *out;
    train_ok(dir, csv, "whole", "--lr 0.05 --epochs 3 --log-every 3");
    char *whole = run_file(dir, "whole", "steps.csv");
    cr_assert(strncmp(whole, "step,epoch,lr,loss\n3,1,0.05,", 28) == 0, "%s", whole);
    int lines = 0;
    for (char *c = whole; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 11, "header + steps 3, 6, ..., 30:\n%s", whole);
    cr_assert(strstr(whole, "\n9,1,"), "%s", whole);
    cr_assert(strstr(whole, "\n12,2,"), "%s", whole);
    cr_assert(strstr(whole, "\n30,3,"), "%s", whole);
    /* Resume after epoch 1, with rows of a killed epoch 2 and a torn line after the
     * checkpoint: they go, and the file ends as the uninterrupted run's. */
    train_ok(dir, csv, "split", "--lr 0.05 --epochs 1 --log-every 3");
    char path[4096];
    snprintf(path, sizeof path, "%s/split/steps.csv", dir);
    FILE *f = fopen(path, "a");
    fputs("12,2,0.05,0.123\n15,2,0.0", f);
    fclose(f);
    cr_assert_eq(resume(dir, "split", "--epochs 3", &out), 0, "%s", out);
    char *split = run_file(dir, "split", "steps.csv");
    cr_assert_str_eq(split, whole);
    free(whole), free(split), free(out), free(csv), free(dir);
}
