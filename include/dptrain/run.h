/* A training run: data, model, optimizer, schedule and trainer wired together, with its run
 * directory (config snapshot, metrics.csv, checkpoints, plot) and exact resume.
 * This is what `dptrain train` calls; it is also usable from C. */
#ifndef DPTRAIN_RUN_H
#define DPTRAIN_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/dataset.h"
#include "dptrain/status.h"
#include "dptrain/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_run_config {
    const char *data_spec;     /* dataset spec (dpt_dataset_open) */
    dpt_data_options_t data;   /* CSV options, memory cap */
    double val_split;          /* 0: validate on the dataset's test split (if any) */
    const char *model_spec;
    const char *optimizer_spec;
    const char *schedule_spec; /* NULL/"" = constant */
    const char *warmup_spec;   /* NULL/"" = none */
    double lr;
    int lr_auto;               /* --lr auto: run the LR range test first, use its valley LR */
    const char *lr_scaling;    /* NULL/"" = none; "linear[:ref_batch=B]" | "sqrt[:ref_batch=B]" */
    size_t epochs;
    dpt_trainer_config_t trainer;
    const char *out_dir;       /* run directory (created) */
    int resume;                /* continue from out_dir/checkpoint.dpt */
    int quiet;                 /* no progress display, no per-epoch lines */
    int plot;                  /* draw metrics.png at the end (needs gnuplot) */
    /* The command line that produced this config (NUL-separated), stored in checkpoints so
     * that `train --resume DIR` can rebuild it. */
    const char *argv_blob;
    size_t argv_blob_len;
} dpt_run_config_t;

dpt_run_config_t dpt_run_config_default(void);

typedef struct dpt_run_result {
    size_t epochs_done;
    double val_loss, val_accuracy;     /* last epoch (NaN without validation data) */
    double train_loss, train_accuracy; /* last epoch */
    double samples_per_second;         /* last epoch */
    size_t threads;
} dpt_run_result_t;

dpt_status_t dpt_run_train(const dpt_run_config_t *cfg, dpt_run_result_t *result);

/* Name of the checkpoint a run keeps in its directory, and of its best-so-far copy. */
#define DPT_RUN_CHECKPOINT "checkpoint.dpt"
#define DPT_RUN_BEST_CHECKPOINT "best.dpt"

/* Reads the stored command line of a run directory's checkpoint (malloc'd, NUL-separated). */
dpt_status_t dpt_run_read_argv(const char *out_dir, char **blob, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
