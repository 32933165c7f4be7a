/* The data-parallel training engine.
 *
 * Each minibatch is cut into fixed micro-shards of `micro_batch` rows (their number depends
 * on the batch, never on the thread count). Worker threads (one OpenMP parallel region per
 * step) each own a replica and process micro-shards; each micro-shard's gradient goes to its
 * own buffer; after a barrier the threads split the parameters by range and, chunk by chunk,
 * sum the micro-shard buffers in a fixed tree order and apply the optimizer in the same pass.
 * Same seed, batch and micro-batch => bitwise-identical parameters for any thread count.
 *
 * Thread safety: a trainer is driven from one thread; it starts its own workers. */
#ifndef DPTRAIN_TRAINER_H
#define DPTRAIN_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/augment.h"
#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_trainer dpt_trainer_t;

typedef struct dpt_trainer_config {
    size_t threads;     /* worker threads; 0 = all cores */
    size_t batch_size;  /* global minibatch */
    size_t micro_batch; /* rows per micro-shard (fixes the reduction order); 0 = auto */
    uint64_t seed;      /* initialisation, shuffling, dropout */
    /* Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_): when the 2-norm of the
     * whole batch-mean gradient exceeds this, every gradient is scaled by
     * clip_grad_norm / (norm + 1e-6) before the update. 0 = off. */
    double clip_grad_norm;
    /* Augmentation of the training batches (NULL: none), built for the dataset's shape and
     * keyed by (seed, epoch, sample index); not owned, must outlive the trainer. Validation
     * and evaluation are never augmented. */
    const dpt_augment_t *augment;
} dpt_trainer_config_t;

/* threads 0, batch 128, micro_batch 0 (auto), seed 1, no clipping, no augmentation. */
dpt_trainer_config_t dpt_trainer_config_default(void);

/* Learning rate (and momentum, or a negative value for "configured") for optimizer step
 * `step` (0-based). Called once per step on the driving thread. Returning NaN ends a
 * dpt_trainer_train_steps run before that step (the LR range test stops at divergence). */
typedef double (*dpt_lr_fn)(void *user, uint64_t step, double *momentum);

/* Called after each step with the number of batches done in this epoch (may be NULL). */
typedef void (*dpt_progress_fn)(void *user, size_t batches_done, size_t batches_total,
                                size_t samples_done, double running_loss);

/* Called after each step (before the progress callback) with the optimizer steps done so far
 * (so 1 after the first step), the LR the step used and its mean loss. Returning 0 ends the
 * epoch (or step run) right there, with stats->aborted set: the run's divergence guard uses it,
 * and its step log. The loss is the only thing checked per step: it is computed anyway, and a
 * non-finite gradient shows up as a non-finite loss on the next step (the update spreads it to
 * the parameters), so no extra pass over the gradients is needed. */
typedef int (*dpt_step_fn)(void *user, uint64_t steps_done, double lr, double loss);

typedef struct dpt_epoch_stats {
    double loss, accuracy; /* means over the epoch's training samples */
    double seconds, samples_per_second;
    double lr_last, momentum_last; /* of the last step */
    size_t steps, samples;
    double forward_backward_seconds; /* per-phase split of the steps, driving thread's view */
    double update_seconds;           /* fused reduce + optimizer */
    /* Across processes (a part of update_seconds): the gradient exchange between ranks,
     * point-to-point reduce-scatter + allgather with the per-shard results; 0 alone. */
    double exchange_seconds;
    size_t ranks; /* processes that trained (1: alone) */
    /* 2-norm of the whole batch-mean gradient of the last step, before clipping; NaN when the
     * step did not compute it (only clipping and lars/lamb need it: the fused path skips it). */
    double grad_norm;
    double assembly_seconds; /* batch assembly (gather + normalise), thread 0's share */
    int aborted;             /* the step hook ended the epoch early */
} dpt_epoch_stats_t;

/* Where an epoch stands after some of its batches: the sums its stats are made of. A run
 * checkpoints this between steps and hands it back after a restart, so the epoch continues
 * at batch `batches` of the same order with the same sums (exact mid-epoch resume). */
typedef struct dpt_epoch_partial {
    uint64_t batches; /* batches done (the next one is batch `batches` of the order) */
    uint64_t samples; /* training samples done */
    uint64_t correct; /* of those, predicted right */
    double loss_sum;  /* summed per-sample loss, added step by step in batch order */
    double seconds;   /* wall time spent on them */
} dpt_epoch_partial_t;

/* The trainer borrows model and optimizer (they must outlive it) and owns the parameters,
 * gradient buffers and replicas. Initialises parameters from cfg->seed. */
dpt_status_t dpt_trainer_create(const dpt_model_t *model, dpt_optimizer_t *opt,
                                const dpt_trainer_config_t *cfg, dpt_trainer_t **out);
void dpt_trainer_free(dpt_trainer_t *t);

/* The micro-batch a configuration resolves to: micro_batch itself, or for 0 ("auto")
 * max(64, ceil(batch_size / 16)). It depends on the batch size only, never on the thread
 * count, so results stay identical for any --threads. */
size_t dpt_micro_batch_resolve(size_t batch_size, size_t micro_batch);
/* The same for a model: image networks (over 16384 activation floats per sample) use
 * max(16, ceil(batch_size / 16)) instead, which keeps a shard's activations in cache. Still a
 * function of the model and batch only. */
size_t dpt_micro_batch_resolve_for(const dpt_model_t *m, size_t batch_size, size_t micro_batch);
/* The micro-batch in use (resolved). */
size_t dpt_trainer_micro_batch(const dpt_trainer_t *t);

/* Threads the trainer runs (cfg->threads resolved) and the team size it actually got in its
 * last parallel region (0 before the first). */
size_t dpt_trainer_threads(const dpt_trainer_t *t);
size_t dpt_trainer_team_size(const dpt_trainer_t *t);

/* Installs (or, with fn NULL, removes) the per-step hook of every later epoch and step run. */
void dpt_trainer_set_step_hook(dpt_trainer_t *t, dpt_step_fn fn, void *user);

/* Parameters (dpt_model_param_count floats, the model's layout); writable for restores. */
float *dpt_trainer_params(dpt_trainer_t *t);
/* Optimizer steps taken so far; settable for exact resume. */
uint64_t dpt_trainer_step_count(const dpt_trainer_t *t);
void dpt_trainer_set_step_count(dpt_trainer_t *t, uint64_t steps);

/* Runs one epoch over ds in the order given by a permutation of (seed, epoch). The last
 * partial batch is a smaller step. */
/* (The epoch starts at batch 0 unless dpt_trainer_set_epoch_start said otherwise.) */
dpt_status_t dpt_trainer_train_epoch(dpt_trainer_t *t, const dpt_dataset_t *ds, uint64_t epoch,
                                     dpt_lr_fn lr_fn, void *lr_user, dpt_progress_fn progress,
                                     void *progress_user, dpt_epoch_stats_t *stats);

/* Makes the next dpt_trainer_train_epoch (only that one) start after from->batches batches
 * with from's sums, as if those batches had just run; NULL cancels. The caller restores the
 * parameters, optimizer state and step count that went with it. */
void dpt_trainer_set_epoch_start(dpt_trainer_t *t, const dpt_epoch_partial_t *from);

/* The sums of the epoch in progress, for the step hook (between steps; outside an epoch:
 * those of the last one). */
void dpt_trainer_epoch_partial(const dpt_trainer_t *t, dpt_epoch_partial_t *out);

/* Runs `steps` optimizer steps on the first rows of the epoch-0 order (for benchmarks and the
 * LR range test); loss_out (may be NULL) receives each step's mean loss. A NaN from lr_fn
 * stops early; stats->steps says how many ran. */
dpt_status_t dpt_trainer_train_steps(dpt_trainer_t *t, const dpt_dataset_t *ds, size_t steps,
                                     dpt_lr_fn lr_fn, void *lr_user, double *loss_out,
                                     dpt_epoch_stats_t *stats);

/* Mean loss and accuracy of the current parameters on ds (evaluation mode: no dropout).
 * confusion (may be NULL) receives classes x classes counts [true][predicted]. */
dpt_status_t dpt_trainer_evaluate(dpt_trainer_t *t, const dpt_dataset_t *ds, double *loss,
                                  double *accuracy, uint64_t *confusion);

/* Per-node timing for benchmarks: after dpt_trainer_profile(t, true), every step adds each
 * node's forward and backward wall seconds (summed over the worker threads) to counters that
 * dpt_trainer_node_seconds copies out (arrays of dpt_model_node_count doubles) and zeroes. */
dpt_status_t dpt_trainer_profile(dpt_trainer_t *t, int on);
void dpt_trainer_node_seconds(dpt_trainer_t *t, double *fwd, double *bwd);

/* Writes the epoch order (a permutation of 0..n-1) that epoch `epoch` uses. */
void dpt_epoch_order(uint64_t seed, uint64_t epoch, uint32_t *idx, size_t n);

#ifdef __cplusplus
}
#endif
#endif
