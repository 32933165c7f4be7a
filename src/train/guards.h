/* Internal to src/train: a run's early stopping and divergence guard — their specs, their
 * per-epoch / per-step decisions and the small state a checkpoint stores for exact resume.
 * Pure functions of (config, state, inputs): no I/O, no allocation. */
#ifndef DPT_TRAIN_GUARDS_H
#define DPT_TRAIN_GUARDS_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

/* --early-stop monitor=val_loss|val_accuracy,mode=min|max,patience=N,min_delta=F,
 * restore_best=0|1 (Keras EarlyStopping), or "off". */
typedef struct dpt_early_stop_config {
    int enabled;
    int monitor_accuracy; /* 0: val_loss, 1: val_accuracy */
    int mode_max;         /* 0: lower is better; defaults from the monitor */
    size_t patience;      /* epochs without improvement before stopping */
    double min_delta;     /* an improvement beats the best by more than this */
    int restore_best;     /* put back the best epoch's parameters at the end */
} dpt_early_stop_config_t;

/* Checkpointed as plain bytes: fixed-width fields only. */
typedef struct dpt_early_stop_state {
    double best;          /* best monitored value so far (+-inf before the first) */
    uint64_t wait;        /* epochs since the last improvement */
    uint64_t best_epoch;  /* 1-based epoch of best; 0 = none yet */
    uint64_t stopped;     /* 1 once the run stopped early */
    uint64_t monitor_key; /* monitor + 2 * mode: a resumed run with another one starts over */
} dpt_early_stop_state_t;

/* --divergence-guard factor=F,retries=N,spike=S (on by default), or "off". */
typedef struct dpt_guard_config {
    int enabled;
    double factor;  /* LR multiplier after each rollback, 0 < factor < 1 */
    size_t retries; /* rollbacks allowed in a row; the next failure ends the run */
    double spike;   /* a step loss above spike x its running average diverged; 0 = off */
} dpt_guard_config_t;

typedef struct dpt_guard_state {
    double lr_scale;    /* cumulative factor on the scheduled LR (1 until a rollback) */
    double loss_ema;    /* running average of the step losses */
    uint64_t ema_steps; /* steps in loss_ema (the spike test waits DPT_GUARD_WARMUP of them) */
} dpt_guard_state_t;

/* Steps the spike test waits before it judges (the average of fewer is one batch's noise),
 * and the weight of the newest step loss in the average (about the last 10 steps). A loss
 * that grows geometrically, as in divergence, outruns this average at once. */
#define DPT_GUARD_WARMUP 5u
#define DPT_GUARD_EMA_WEIGHT 0.1

/* Parse a spec (NULL or "" = the default: early stopping off, the guard on with
 * factor=0.5,retries=3,spike=10). DPT_ERR_INVALID_ARG names the flag, key and valid range. */
dpt_status_t dpt_early_stop_parse(const char *spec, dpt_early_stop_config_t *out);
dpt_status_t dpt_guard_parse(const char *spec, dpt_guard_config_t *out);

/* One-line descriptions for config.txt. */
void dpt_early_stop_describe(const dpt_early_stop_config_t *c, char *buf, size_t n);
void dpt_guard_describe(const dpt_guard_config_t *c, char *buf, size_t n);

const char *dpt_early_stop_monitor_name(const dpt_early_stop_config_t *c);
uint64_t dpt_early_stop_key(const dpt_early_stop_config_t *c);
void dpt_early_stop_init(const dpt_early_stop_config_t *c, dpt_early_stop_state_t *st);

/* Feeds the monitored value after 1-based epoch `epoch`. Returns 1 when it is an improvement
 * (state updated, wait 0); otherwise counts the epoch and sets st->stopped once `patience`
 * epochs in a row brought none. A NaN value is never an improvement. */
int dpt_early_stop_update(const dpt_early_stop_config_t *c, dpt_early_stop_state_t *st,
                          double value, uint64_t epoch);

void dpt_guard_init(dpt_guard_state_t *st);

/* Judges one step's mean loss. Returns 1 (and folds the loss into the running average) when it
 * is sane; 0 with a reason in why ("loss nan", "loss 812.3 > 10 x average 0.41") when it is not
 * finite, or, after the warm-up, above spike x the running average and above chance_loss (the
 * loss of a uniform guess, ln(classes)): noisy batches of a well-fitting model stay below it. */
int dpt_guard_check(const dpt_guard_config_t *c, dpt_guard_state_t *st, double loss,
                    double chance_loss, char *why, size_t n);

/* The "guards" section of a run checkpoint (optional on resume: older checkpoints start from
 * fresh state). Fixed-width fields: the file is read back by the same layout
 * (docs/formats.md). */
#define DPT_GUARDS_SECTION "guards"
typedef struct dpt_guards_section {
    dpt_guard_state_t guard;
    dpt_early_stop_state_t early_stop;
    uint64_t has_best_params; /* an "early_stop_params" section follows */
} dpt_guards_section_t;
_Static_assert(sizeof(dpt_guards_section_t) == 72, "guards layout (docs/formats.md)");

dpt_guards_section_t dpt_guards_section_make(const dpt_guard_state_t *guard,
                                             const dpt_early_stop_state_t *early_stop,
                                             int has_best_params);
/* Restores the guard's state, and early stopping's when it was kept for the same monitor and
 * mode as c's (a best value of another one means nothing for this one: it starts over). */
void dpt_guards_section_restore(const dpt_guards_section_t *sec, const dpt_early_stop_config_t *c,
                                dpt_guard_state_t *guard, dpt_early_stop_state_t *early_stop);

#endif
