/* Optimizers: parsed once from "NAME:key=value,..." (PyTorch names, defaults and update
 * rules: sgd, adam, adamw, rmsprop, adagrad, plus the layer-wise lars and lamb); state lives
 * in one flat block of 1-3 buffers with the parameters' layout. The trainer calls
 * dpt_optimizer_update on disjoint parameter ranges from several threads at once, fused
 * with the gradient reduction, so an update touches each parameter exactly once.
 * Formulas, defaults and the state layout: docs/optimizers.md. */
#ifndef DPTRAIN_OPTIMIZER_H
#define DPTRAIN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/checkpoint.h"
#include "dptrain/model.h"
#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_optimizer dpt_optimizer_t;

/* What changes from step to step: the scheduled learning rate, the momentum (sgd, rmsprop,
 * lars) or beta1 (adam, adamw, lamb) when a schedule cycles it (negative: use the configured
 * one), and the 1-based update count (Adam's bias correction, Adagrad's lr_decay). */
typedef struct dpt_optim_step {
    double lr;
    double momentum;
    uint64_t t;
    /* Set by dpt_optimizer_update (callers leave it 0) for the parts of [lo, hi) inside tensors
     * excluded from weight decay (dpt_optimizer_exclude_decay): the rule uses decay 0 there. */
    int no_decay;
} dpt_optim_step_t;

/* What an optimizer needs to know about whole tensors before it may update any part of one.
 *   NONE:      elementwise; any split into ranges gives the same result (sgd, adam, ...).
 *   GRAD:      per-tensor sums of squares of the parameters and of the (clipped) batch-mean
 *              gradient, given to dpt_optimizer_set_norms before dpt_optimizer_update (lars).
 *   DIRECTION: dpt_optimizer_direction first turns the gradient into the update direction
 *              in place; then per-tensor sums of squares of the parameters and of that
 *              direction go to dpt_optimizer_set_norms; then dpt_optimizer_update (lamb). */
typedef enum dpt_optim_norms {
    DPT_OPTIM_NORMS_NONE = 0,
    DPT_OPTIM_NORMS_GRAD = 1,
    DPT_OPTIM_NORMS_DIRECTION = 2
} dpt_optim_norms_t;

/* spec: "NAME[:key=value,...]"; NULL or "" = "sgd". Names and keys:
 *   sgd:      momentum=0, dampening=0, weight_decay=0, nesterov=0
 *   adam:     beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0, amsgrad=0
 *   adamw:    beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=0
 *   rmsprop:  alpha=0.99, eps=1e-8, momentum=0, centered=0, weight_decay=0
 *   adagrad:  lr_decay=0, initial_accumulator_value=0, eps=1e-10, weight_decay=0
 *   lars:     momentum=0.9, dampening=0, weight_decay=0, trust_coefficient=0.001,
 *             exclude_bias=0
 *   lamb:     beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01, exclude_bias=0
 * The learning rate is not a key: it comes from --lr and the schedule, per step.
 * Errors (DPT_ERR_INVALID_ARG, *out untouched): an unknown name lists the valid names, an
 * unknown key the valid keys, a malformed number or an out-of-range value names the key and
 * its range. The model must outlive nothing: its tensor table is copied. */
dpt_status_t dpt_optimizer_create(const char *spec, const dpt_model_t *model,
                                  dpt_optimizer_t **out);
void dpt_optimizer_free(dpt_optimizer_t *o);
/* Canonical spec with every resolved parameter; parses back to the same optimizer. */
const char *dpt_optimizer_describe(const dpt_optimizer_t *o);

/* Excludes tensors from weight decay by role: list is "none" or a comma-separated set of
 * "bias" (biases) and "bn" (batch norm's gamma and beta), as Goyal et al. 2017 do. Applies to
 * the element-wise rules (sgd, adam, adamw, rmsprop, adagrad); lars and lamb keep their own
 * exclude_bias key. The description gains ",no_decay=bias/bn". An unknown name is
 * DPT_ERR_INVALID_ARG listing the valid ones. */
dpt_status_t dpt_optimizer_exclude_decay(dpt_optimizer_t *o, const char *list);
/* Configured momentum (or beta1; 0 for adagrad), for the metrics CSV. */
double dpt_optimizer_momentum(const dpt_optimizer_t *o);
/* Comma-separated valid optimizer names. Static storage. */
const char *dpt_optimizer_names(void);

/* All mutable state in one contiguous block of *n_floats floats (buffers of
 * dpt_model_param_count floats each, in the order docs/optimizers.md lists), for
 * checkpoints: save it as one section, restore by copying into it. The step count is the
 * trainer's. Owned by o. */
float *dpt_optimizer_state(dpt_optimizer_t *o, size_t *n_floats);

/* The state above as the checkpoint section DPT_OPTIMIZER_SECTION, written and read by the
 * optimizer (src/optim/optimizer_checkpoint.c): section describes it in place (valid while o
 * lives); load copies it back from checkpoint ck read from path, which must hold exactly this
 * optimizer's state (else DPT_ERR_FORMAT, dpt_checkpoint_section_exact's message). */
#define DPT_OPTIMIZER_SECTION "optimizer"
dpt_ckpt_section_t dpt_optimizer_checkpoint_section(dpt_optimizer_t *o);
dpt_status_t dpt_optimizer_checkpoint_load(dpt_optimizer_t *o, const dpt_checkpoint_t *ck,
                                           const char *path);

/* Which whole-tensor norms the update needs (see dpt_optim_norms_t). */
dpt_optim_norms_t dpt_optimizer_norms(const dpt_optimizer_t *o);

/* Updates params[lo, hi) with the batch-mean gradient grad[lo, hi) (for DIRECTION
 * optimizers: the direction written by dpt_optimizer_direction). Thread-safe for disjoint
 * ranges. */
void dpt_optimizer_update(dpt_optimizer_t *o, float *params, const float *grad, size_t lo,
                          size_t hi, const dpt_optim_step_t *st);

/* DIRECTION optimizers: advances the moment estimates for [lo, hi) and overwrites grad[lo, hi)
 * with the update direction. A no-op for the others. Thread-safe for disjoint ranges. */
void dpt_optimizer_direction(dpt_optimizer_t *o, const float *params, float *grad, size_t lo,
                             size_t hi, const dpt_optim_step_t *st);

/* GRAD and DIRECTION optimizers: per-tensor sums of squares (dpt_model_tensor_count entries,
 * the model's tensor order) of the parameters and of the gradient (GRAD) or direction
 * (DIRECTION); computes the trust ratios the next dpt_optimizer_update uses. Call from one
 * thread between the phases. A no-op for NONE optimizers. */
void dpt_optimizer_set_norms(dpt_optimizer_t *o, const double *param_sq, const double *d_sq);
/* Trust ratio of tensor i from the last dpt_optimizer_set_norms (1 for NONE optimizers). */
double dpt_optimizer_trust_ratio(const dpt_optimizer_t *o, size_t i);

/* One whole step on one thread: direction, norms and update over all of params/grad
 * (dpt_model_param_count floats each; grad is used as scratch). For tests and callers
 * without a trainer; the trainer runs the same phases split across threads. Allocates
 * (DPT_ERR_NOMEM) for norm-based optimizers. */
dpt_status_t dpt_optimizer_step(dpt_optimizer_t *o, float *params, float *grad,
                                const dpt_optim_step_t *st);

/* Learning-rate scaling with the global batch size (Goyal et al. 2017), applied to the base
 * LR before the schedule is built. spec: NULL, "" or "none" (factor 1), "linear[:ref_batch=B]"
 * (factor batch/B) or "sqrt[:ref_batch=B]" (factor sqrt(batch/B)); B defaults to 256.
 * *effective_lr = base_lr * factor. Errors name the bad part (DPT_ERR_INVALID_ARG). */
dpt_status_t dpt_lr_scaling_apply(const char *spec, double base_lr, size_t batch_size,
                                  double *effective_lr);

#ifdef __cplusplus
}
#endif
#endif
