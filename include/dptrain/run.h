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
    const char *data_spec;   /* dataset spec (dpt_dataset_open) */
    dpt_data_options_t data; /* CSV options, memory cap */
    double val_split;        /* 0: validate on the dataset's test split (if any) */
    /* Train on a seeded fraction of the training part (after any validation split), e.g.
     * 0.1 for a small-data study; 0 or 1 = all of it. */
    double train_fraction;
    const char *model_spec;
    const char *optimizer_spec;
    const char *no_decay;      /* tensors excluded from weight decay: "bias,bn", ... (NULL: none) */
    int overwrite;             /* replace a run already in out_dir (else that is an error) */
    const char *schedule_spec; /* NULL/"" = constant */
    const char *warmup_spec;   /* NULL/"" = none */
    double lr;
    int lr_auto;            /* --lr auto: run the LR range test first, use its valley LR */
    const char *lr_scaling; /* NULL/"" = none; "linear[:ref_batch=B]" | "sqrt[:ref_batch=B]" */
    size_t epochs;
    dpt_trainer_config_t trainer;
    const char *out_dir; /* run directory (created) */
    int resume;          /* continue from out_dir/checkpoint.dpt */
    int quiet;           /* no progress display, no per-epoch lines */
    int plot;            /* draw metrics.png at the end (needs gnuplot) */
    /* Early stopping: "monitor=val_loss|val_accuracy,mode=min|max,patience=N,min_delta=F,
     * restore_best=0|1" (Keras EarlyStopping semantics), "on" (its defaults) or NULL/"off". */
    const char *early_stop_spec;
    /* Divergence guard: NULL/"" = on with factor=0.5,retries=3,spike=10; "off"; or
     * "factor=F,retries=N,spike=S" (docs/formats.md, README). */
    const char *divergence_guard_spec;
    size_t keep_checkpoints; /* keep the last K epochs as checkpoint-epochNNNN.dpt; 0 = none */
    size_t log_every;        /* steps.csv row every N steps; 0 = no steps.csv */
    /* Also write checkpoint.dpt every N optimizer steps inside an epoch (never on an epoch's
     * last step: the epoch-end one follows); resume continues that epoch exactly. 0 = off. */
    size_t checkpoint_every_steps;
    /* End this process after epoch E (1-based) with the epoch's checkpoint written, as if
     * interrupted there; `--resume` continues with the same --epochs and schedule (what
     * `dptrain sweep` uses between successive-halving rungs). 0 = off; not stored for resume. */
    size_t pause_after_epoch;
    /* The command line that produced this config (NUL-separated), stored in checkpoints so
     * that `train --resume DIR` can rebuild it. */
    const char *argv_blob;
    /* --augment: training-batch augmentation (dptrain/augment.h; NULL/"" or "none" = off).
     * Its canonical form goes to config.txt and the checkpoint; resuming with a different
     * one is refused unless augment_override is set (--augment-override). */
    const char *augment_spec;
    int augment_override;
    size_t argv_blob_len;
} dpt_run_config_t;

dpt_run_config_t dpt_run_config_default(void);

typedef struct dpt_run_result {
    size_t epochs_done;
    double val_loss, val_accuracy;     /* last epoch (NaN without validation data) */
    double train_loss, train_accuracy; /* last epoch */
    double samples_per_second;         /* last epoch */
    size_t threads;
    int early_stopped; /* early stopping ended the run */
    size_t best_epoch; /* early stopping's best epoch (0 without it) */
    int restored_best; /* the final parameters are best_epoch's */
    double lr_scale;   /* the divergence guard's cumulative LR factor */
    size_t rollbacks;  /* divergence-guard rollbacks in this process */
    int paused;        /* pause_after_epoch ended this process before the last epoch */
} dpt_run_result_t;

/* Checks what can be checked without the data, so that a bad flag fails before anything is
 * read or written: the numbers, every spec (model, when the data spec fixes the input shape;
 * optimizer and --no-decay; schedule and warmup; early stop; divergence guard; lr scaling)
 * and the combinations dpt_run_train refuses. dpt_run_train calls it first. */
dpt_status_t dpt_run_check(const dpt_run_config_t *cfg);

/* Trains per cfg. A run the divergence guard cannot rescue returns DPT_ERR_DIVERGED, leaving
 * the checkpoint of its last good epoch in place; early stopping is a success. */
dpt_status_t dpt_run_train(const dpt_run_config_t *cfg, dpt_run_result_t *result);

/* Asks every run in this process to stop cleanly: finish the step in progress, write a
 * checkpoint, and return DPT_ERR_INTERRUPTED ("interrupted at epoch E, step S; resume with
 * `dptrain train --resume DIR`"). Async-signal-safe: meant for SIGINT/SIGTERM/SIGUSR1
 * handlers; `signo` is named in the message (0: none). */
void dpt_run_request_stop(int signo);

/* Name of the checkpoint a run keeps in its directory, and of its best-so-far copy. */
#define DPT_RUN_CHECKPOINT "checkpoint.dpt"
#define DPT_RUN_BEST_CHECKPOINT "best.dpt"
/* printf format of the per-epoch copies --keep-checkpoints retains (1-based epoch). */
#define DPT_RUN_EPOCH_CHECKPOINT "checkpoint-epoch%04llu.dpt"

/* Reads the stored command line of a run directory's checkpoint (malloc'd, NUL-separated). */
dpt_status_t dpt_run_read_argv(const char *out_dir, char **blob, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
