/* Private to `dptrain sweep` (cmd_sweep.c): the grid of train flags and its configurations
 * (sweep_grid.c), the trials as child `dptrain train` processes with successive halving
 * (sweep_trials.c), and what is reported (sweep_report.c). */
#ifndef DPT_CLI_SWEEP_H
#define DPT_CLI_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

#define SWEEP_MAX_KEYS 16
#define SWEEP_MAX_VALUES 64
#define SWEEP_MAX_CONFIGS 4096
#define SWEEP_MAX_SEEDS 64
#define SWEEP_GRID_MAX 8192 /* characters of --grid */

/* ---- the grid (sweep_grid.c) ---------------------------------------------------------- */

typedef enum { SWEEP_LIST, SWEEP_LOG, SWEEP_LIN, SWEEP_INT } sweep_kind_t;

typedef struct sweep_key {
    char name[40]; /* the train flag without "--": "lr", "lr-schedule" */
    sweep_kind_t kind;
    size_t n;                            /* SWEEP_LIST: values */
    const char *value[SWEEP_MAX_VALUES]; /* into the grid's text */
    double lo, hi;                       /* ranges (--random only) */
} sweep_key_t;

typedef struct sweep_grid {
    size_t n_keys;
    sweep_key_t key[SWEEP_MAX_KEYS];
    char text[SWEEP_GRID_MAX + 1]; /* the values, NUL-separated */
} sweep_grid_t;

/* One configuration: for each key of the grid, the value picked from its list, or the number
 * drawn from its range. */
typedef struct sweep_config {
    uint16_t pick[SWEEP_MAX_KEYS];
    char num[SWEEP_MAX_KEYS][32];
} sweep_config_t;

/* Parses "KEY=V1/V2/...;KEY=log:LO:HI;..." (a value in braces may hold '/' and ';'). Keys the
 * sweep sets itself (out, resume, seed, threads, ...) are refused. */
dpt_status_t sweep_grid_parse(const char *text, sweep_grid_t *g);
/* The configurations: the full product of the lists (random == 0; ranges are refused), or
 * `random` draws, each key's value a pure function of (sweep_seed, configuration, key).
 * *out is malloc'd (caller frees). */
dpt_status_t sweep_grid_configs(const sweep_grid_t *g, size_t random, uint64_t sweep_seed,
                                sweep_config_t **out, size_t *n);
/* Key k's value in configuration c. */
const char *sweep_config_value(const sweep_grid_t *g, const sweep_config_t *c, size_t k);
/* "lr=0.1 optimizer=adam" for messages and tables. */
void sweep_config_text(const sweep_grid_t *g, const sweep_config_t *c, char *buf, size_t cap);

/* ---- trials (sweep_trials.c) ---------------------------------------------------------- */

typedef enum {
    TRIAL_PENDING,  /* not started, or paused between rungs */
    TRIAL_DONE,     /* ran all its epochs */
    TRIAL_EARLY,    /* early stopping ended it */
    TRIAL_STOPPED,  /* successive halving stopped it after a rung */
    TRIAL_DIVERGED, /* the divergence guard gave up (exit 7) */
    TRIAL_FAILED    /* any other failure (its log.txt says why) */
} trial_status_t;

typedef struct sweep_trial {
    size_t config;
    uint64_t seed;
    char dir[1024];
    trial_status_t status;
    int exit_code;
    size_t epochs;      /* epochs in its metrics.csv */
    double final, best; /* the metric at its last epoch, and its best (NaN: none) */
    size_t best_epoch;
    double seconds; /* wall time of its processes so far */
} sweep_trial_t;

typedef struct sweep_plan {
    const char *out_dir;
    const char *self;  /* this program's path, to start `train` children */
    char **train_args; /* flags every trial gets */
    size_t n_train_args;
    const sweep_grid_t *grid;
    const sweep_config_t *configs;
    size_t n_configs;
    uint64_t seeds[SWEEP_MAX_SEEDS];
    size_t n_seeds;
    size_t epochs;   /* each trial's --epochs */
    size_t parallel; /* trials at once */
    size_t threads;  /* per trial */
    int metric_max;  /* 1: val_accuracy (higher is better), 0: val_loss */
    const char *metric;
    size_t eta, min_epochs; /* successive halving; eta 0 = off */
} sweep_plan_t;

const char *sweep_status_name(trial_status_t s);
/* Runs (or continues) every trial of the plan through its rungs, K at once; stopped trials
 * keep their partial results. Returns DPT_ERR_INTERRUPTED when a signal stopped the sweep
 * (the trials resume from their checkpoints next time). */
dpt_status_t sweep_run(const sweep_plan_t *p, sweep_trial_t *trials, size_t n_trials);
/* Reads a trial's metrics.csv into its epochs, final, best and best_epoch. */
void sweep_trial_read_metrics(const sweep_plan_t *p, sweep_trial_t *t);
/* Asks the running trials to stop (from a signal handler). */
void sweep_request_stop(int signo);

/* ---- results (sweep_report.c) ---------------------------------------------------------- */

/* DIR/trials.csv: one row per trial. */
dpt_status_t sweep_write_trials(const sweep_plan_t *p, const sweep_trial_t *t, size_t n);
/* The ranking by the mean over seeds, with the spread, on stdout. */
void sweep_print_summary(const sweep_plan_t *p, const sweep_trial_t *t, size_t n);
/* DIR/sweep-metric.png (metric against lr per other setting) and DIR/sweep-curves.png (the
 * validation curves of the top trials). */
dpt_status_t sweep_plot(const sweep_plan_t *p, const sweep_trial_t *t, size_t n);

#endif
