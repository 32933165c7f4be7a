/* Internal to src/train: the state of one training run, shared by the files a run is made of.
 * Each part of the state is a sub-struct owned by one file (its "room"):
 *   run.c            the run's lifecycle, the epoch loop, the step hook and stop requests
 *   run_setup.c      data, model, optimizer, schedule, trainer and LR; config.txt
 *   run_guard.c      the divergence guard's snapshot and rollbacks; early stopping's best
 *                    parameters and their restore (the decisions themselves: guards.c)
 *   run_metrics.c    metrics.csv rows, steps.csv, the epoch's events, lines on stderr
 *   run_checkpoint.c the run's own checkpoint sections, saving and exact resume
 *   run_retention.c  best.dpt, the kept per-epoch copies, stale temporaries, and the repair
 *                    of what derives from a checkpoint after a resume
 *   run_world.c      the run across processes: every rank runs the same config on the same
 *                    data (checked at start), rank 0 alone writes the run directory */
#ifndef DPT_TRAIN_RUN_INTERNAL_H
#define DPT_TRAIN_RUN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/metrics.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/run.h"
#include "dptrain/schedule.h"
#include "io/progress.h"
#include "io/run_dir.h"
#include "io/step_log.h"
#include "train/guards.h"

/* An epoch's metrics.csv row, kept in its epoch-end checkpoint (section "epoch_row") so that
 * the checkpoint can be written before the row: a resume whose metrics.csv lacks the row of
 * the epoch it starts after writes it from here. Fixed-width fields. */
typedef struct run_row {
    /* threads: the team size per rank in the low 32 bits, the ranks in the high 32 (0: 1,
     * as in checkpoints from before runs across processes). */
    uint64_t epoch, step, threads;
    double lr, momentum, train_loss, train_acc, val_loss, val_acc, seconds, rate, grad_norm;
    char events[1024]; /* NUL-terminated */
} run_row_t;
_Static_assert(sizeof(run_row_t) == 1120, "epoch_row layout (docs/formats.md)");

/* The data parts (run_setup.c); val points at test when not split. */
typedef struct run_data {
    dpt_dataset_t *all, *test, *train, *val;
} run_data_t;

/* Early stopping (run_guard.c): its spec, state and restore_best's copy of the parameters of
 * state.best_epoch. */
typedef struct run_early_stop {
    dpt_early_stop_config_t cfg;
    dpt_early_stop_state_t state;
    float *best_params;
    int has_best_params;
} run_early_stop_t;

/* The guard's last good state, taken at each epoch start (buffers sized at build). A
 * rollback after a mid-epoch resume returns to that point (from, has_from). */
typedef struct run_snapshot {
    float *params, *opt;
    uint64_t steps;
    dpt_guard_state_t guard;
    dpt_plateau_state_t plateau;
    dpt_epoch_partial_t from;
    int has_from;
} run_snapshot_t;

/* The divergence guard (run_guard.c). */
typedef struct run_guard {
    dpt_guard_config_t cfg;
    dpt_guard_state_t state;
    double chance_loss; /* ln(classes): the guard's floor for a loss spike */
    run_snapshot_t snap;
    int diverged; /* set by the step hook or the epoch's checks: the epoch was aborted */
    uint64_t diverged_step;
    char why[160];
    size_t rollbacks_in_row, rollbacks;
} run_guard_t;

/* The epoch in progress (run.c). */
typedef struct run_epoch {
    /* Mid-epoch resume: where the current epoch starts (has_from: not at batch 0). */
    dpt_epoch_partial_t from;
    int has_from;
    int interrupted;          /* set by the step hook: a stop request ended the epoch */
    dpt_status_t hook_status; /* a step-log or checkpoint write error seen by the step hook */
    char events[1024];        /* the epoch's event column: "; "-joined */
} run_epoch_t;

/* What the resumed checkpoint carried besides the state (run_checkpoint.c). */
typedef struct run_resumed {
    run_row_t row; /* the row of the epoch it ended */
    int has_row;
    int restored; /* it holds restore_best's parameters */
} run_resumed_t;

/* The run's output files besides checkpoints (run_metrics.c). */
typedef struct run_files {
    dpt_run_dir_t *dir; /* the locked run directory */
    dpt_metrics_writer_t *metrics;
    dpt_step_log_t *steps; /* NULL without --log-every */
} run_files_t;

/* Everything a run holds; freed in one place (run.c). */
typedef struct run {
    const dpt_run_config_t *cfg;
    int writer; /* this process writes the run directory: rank 0 (or the only process) */
    run_data_t data;
    dpt_model_t *model;
    dpt_optimizer_t *opt;
    dpt_schedule_t *sched;
    dpt_trainer_t *trainer;
    dpt_augment_t *augment; /* NULL: none (run_setup.c) */
    dpt_plateau_state_t plateau;
    const char *monitor;  /* plateau's metric, or NULL */
    double best_val_loss; /* best.dpt's monitored value, oriented so lower is better */
    uint64_t epochs_done;
    size_t steps_per_epoch;
    double lr; /* effective base LR: scaled, or found by the range test */
    run_early_stop_t es;
    run_guard_t guard;
    run_epoch_t epoch;
    run_resumed_t resumed;
    run_files_t files;
    char lr_note[512];      /* how lr was derived, for config.txt */
    char config_text[8192]; /* config.txt, also the checkpoints' "config" section */
} run_t;

/* The path of a file in the run directory, held by the caller: two can be live at once. */
typedef struct run_path {
    char s[4096];
} run_path_t;
run_path_t run_path(const run_t *r, const char *name);

/* run.c: the trainer's per-step hook (set by run_setup). */
int run_on_step(void *user, uint64_t steps_done, double lr, double loss);

/* run_setup.c: opens and splits the data, builds model, optimizer, LR, schedule, trainer
 * and guards; then config.txt. */
dpt_status_t run_setup(run_t *r);
/* Builds config_text (every rank: run_world_check compares it); run_write_config writes it. */
void run_describe_config(run_t *r);
/* Whether cfg asks for augmentation ("none" and "" do not). */
int run_augment_on(const dpt_run_config_t *c);
/* The canonical augmentation spec ("none" without one), for config.txt and checkpoints. */
const char *run_augment_text(const run_t *r);
dpt_status_t run_write_config(run_t *r);

/* run_world.c: every rank has the same resolved config (config_text, built), the same data and
 * the same starting parameters, or all refuse with one line naming the first differing rank
 * and field. A no-op alone. */
dpt_status_t run_world_check(run_t *r);
/* The number of ranks (1 alone) and a row's team size and ranks. */
size_t run_world_ranks(void);
uint64_t run_row_pack_threads(size_t threads, size_t ranks);
size_t run_row_threads(const run_row_t *row);
size_t run_row_ranks(const run_row_t *row);

/* run_guard.c */
dpt_status_t run_guard_build(run_t *r);
/* The epoch aborted: step and why ("non-finite parameters", ...). */
void run_guard_diverged(run_t *r, uint64_t step, const char *why);
void run_guard_snapshot(run_t *r);
/* The epoch's own checks after training (parameters) and after validation (its loss). */
void run_guard_check_params(run_t *r);
void run_guard_check_val_loss(run_t *r, double vloss);
/* Puts the last good state back and scales the LR down (the caller runs the epoch again), or
 * gives up with DPT_ERR_DIVERGED after the allowed retries. */
dpt_status_t run_guard_roll_back(run_t *r, const dpt_progress_t *prog, const dpt_epoch_stats_t *es);
int run_stopped_early(const run_t *r);
/* Early stopping after a finished epoch: updates its state and best copy, adds its events,
 * fills stop_line when it stops the run; returns the parameters to restore at the run's end
 * (restore_best), or NULL. */
const float *run_early_stop_update(run_t *r, double vloss, double vacc, char *stop_line, size_t n);
/* Puts restored (from run_early_stop_update) into the trainer, saying so. */
void run_early_stop_restore(run_t *r, const dpt_progress_t *prog, const float *restored);

/* run_metrics.c */
dpt_status_t run_metrics_open(run_t *r);
run_row_t run_row_make(const run_t *r, const dpt_epoch_stats_t *es, uint64_t epoch, uint64_t step,
                       double vloss, double vacc);
/* Writes a row; NaN values (no validation data, no gradient norm) are empty fields. */
dpt_status_t run_row_write(run_t *r, const run_row_t *row);
/* Whether metrics.csv has a row for epoch `epoch`. */
int run_row_exists(const run_t *r, uint64_t epoch);
/* Appends one event to this epoch's event column ("; " between events). */
void run_event(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line on stderr, even with --quiet (these events change the run), clearing a progress
 * bar first. */
void run_say(const dpt_progress_t *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* run_checkpoint.c */
/* Writes the run's state to name. restored (may be NULL): parameters to store as the model
 * instead of the trained ones, which then go to "trained_params" (for a later resume). row
 * (may be NULL): the metrics row an epoch-end checkpoint carries. */
dpt_status_t run_checkpoint_save(const run_t *r, const char *name, const float *restored,
                                 const run_row_t *row);
/* checkpoint.dpt with the epoch in progress (--checkpoint-every-steps, stop requests); not
 * on the epoch's last step. */
dpt_status_t run_checkpoint_mid_epoch(run_t *r);
dpt_status_t run_checkpoint_restore(run_t *r);
/* The best key the checkpoint `name` was written with, or NaN when it is missing or
 * unreadable. */
double run_checkpoint_best_key(const run_t *r, const char *name);

/* run_retention.c */
dpt_status_t run_remove_stale_temps(const run_t *r);
/* Whether the finished epoch is the best so far by best.dpt's key (updating the key). */
int run_best_update(run_t *r, double vloss, double vacc);
/* --keep-checkpoints: the just-written checkpoint.dpt becomes this epoch's kept copy. */
dpt_status_t run_retain_checkpoint(const run_t *r, const float *restored);
dpt_status_t run_repair_after_resume(run_t *r);

#endif
