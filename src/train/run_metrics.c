/* Owns what a run writes besides checkpoints: metrics.csv (its columns and the one place a row
 * is built), steps.csv, the epoch's event column and the lines a run says on stderr. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/world.h"
#include "train/run_internal.h"

enum {
    COL_EPOCH,
    COL_STEP,
    COL_LR,
    COL_MOMENTUM,
    COL_TRAIN_LOSS,
    COL_TRAIN_ACC,
    COL_VAL_LOSS,
    COL_VAL_ACC,
    COL_SECONDS,
    COL_RATE,
    COL_THREADS,
    COL_RANKS,
    COL_GRAD_NORM,
    COL_EVENT,
    N_COLS
};
static const char *const metric_columns[N_COLS] = {
    "epoch",          "step",     "lr",           "momentum",      "train_loss",
    "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds", "samples_per_second",
    "threads",        "ranks",    "grad_norm",    "event"};

static dpt_metric_value_t mv_real(double v)
{
    return (dpt_metric_value_t){.kind = isfinite(v) ? DPT_MV_REAL : DPT_MV_EMPTY, .r = v};
}
static dpt_metric_value_t mv_int(int64_t v)
{
    return (dpt_metric_value_t){.kind = DPT_MV_INT, .i = v};
}

dpt_status_t run_metrics_open(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    run_path_t metrics = run_path(r, "metrics.csv");
    dpt_status_t s = dpt_metrics_open(metrics.s, metric_columns, N_COLS,
                                      c->resume ? (int64_t)r->epochs_done : -1, &r->files.metrics);
    if (s == DPT_OK && c->log_every) {
        run_path_t steps = run_path(r, "steps.csv");
        s = dpt_step_log_open(steps.s, c->resume ? (int64_t)dpt_trainer_step_count(r->trainer) : -1,
                              &r->files.steps);
    }
    return s;
}

/* The one place a metrics.csv row is built: epoch `epoch` ending at optimizer step `step`,
 * with the run's events so far. */
run_row_t run_row_make(const run_t *r, const dpt_epoch_stats_t *es, uint64_t epoch, uint64_t step,
                       double vloss, double vacc)
{
    run_row_t row = {.epoch = epoch,
                     .step = step,
                     .threads =
                         run_row_pack_threads(dpt_trainer_team_size(r->trainer), run_world_ranks()),
                     .lr = es->lr_last,
                     .momentum = es->momentum_last,
                     .train_loss = es->loss,
                     .train_acc = es->accuracy,
                     .val_loss = vloss,
                     .val_acc = vacc,
                     .seconds = es->seconds,
                     .rate = es->samples_per_second,
                     /* Measured where the step computes it anyway (clipping, lars, lamb). */
                     .grad_norm = es->grad_norm};
    snprintf(row.events, sizeof row.events, "%s", r->epoch.events);
    return row;
}

dpt_status_t run_row_write(run_t *r, const run_row_t *w)
{
    if (!r->writer) return DPT_OK;
    dpt_metric_value_t row[N_COLS] = {
        [COL_EPOCH] = mv_int((int64_t)w->epoch),
        [COL_STEP] = mv_int((int64_t)w->step),
        [COL_LR] = mv_real(w->lr),
        [COL_MOMENTUM] = mv_real(w->momentum),
        [COL_TRAIN_LOSS] = mv_real(w->train_loss),
        [COL_TRAIN_ACC] = mv_real(w->train_acc),
        [COL_VAL_LOSS] = mv_real(w->val_loss),
        [COL_VAL_ACC] = mv_real(w->val_acc),
        [COL_SECONDS] = mv_real(w->seconds),
        [COL_RATE] = mv_real(w->rate),
        [COL_THREADS] = mv_int((int64_t)run_row_threads(w)),
        [COL_RANKS] = mv_int((int64_t)run_row_ranks(w)),
        [COL_GRAD_NORM] = mv_real(w->grad_norm),
        [COL_EVENT] = {.kind = DPT_MV_TEXT, .text = w->events},
    };
    return dpt_metrics_write_row(r->files.metrics, row);
}

int run_row_exists(const run_t *r, uint64_t epoch)
{
    dpt_metrics_table_t *t;
    run_path_t p = run_path(r, "metrics.csv");
    if (dpt_metrics_read(p.s, &t) != DPT_OK) {
        dpt_error_clear();
        return 0;
    }
    int found = 0;
    for (size_t i = 0; i < dpt_metrics_table_rows(t) && !found; i++)
        found = strtoull(dpt_metrics_table_field(t, i, 0), NULL, 10) == epoch;
    dpt_metrics_table_free(t);
    return found;
}

void run_event(run_t *r, const char *fmt, ...)
{
    size_t len = strlen(r->epoch.events);
    if (len && len + 2 < sizeof r->epoch.events) strcpy(r->epoch.events + len, "; "), len += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->epoch.events + len, sizeof r->epoch.events - len, fmt, ap);
    va_end(ap);
}

void run_say(const dpt_progress_t *prog, const char *fmt, ...)
{
    if (dpt_world_rank() != 0) return; /* across processes rank 0 speaks for the run */
    if (prog->tty && !prog->quiet) fputs("\r\033[K", prog->out);
    va_list ap;
    va_start(ap, fmt);
    fputs("dptrain: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
