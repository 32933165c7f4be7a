/* Optimizers: parsed once from "NAME:key=value,..." (PyTorch names, defaults and update
 * rules); state lives in one flat buffer with the parameters' layout. The trainer calls
 * dpt_optimizer_update on disjoint parameter ranges from several threads at once, fused
 * with the gradient reduction, so an update touches each parameter exactly once. */
#ifndef DPTRAIN_OPTIMIZER_H
#define DPTRAIN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/model.h"
#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_optimizer dpt_optimizer_t;

/* What changes from step to step: the scheduled learning rate, the momentum when a schedule
 * cycles it (negative: use the configured one), and the 1-based update count. */
typedef struct dpt_optim_step {
    double lr;
    double momentum;
    uint64_t t;
} dpt_optim_step_t;

/* spec: "sgd:momentum=0.9,dampening=0,nesterov=0,weight_decay=0"; NULL or "" = "sgd".
 * Unknown names or keys are errors that list the valid ones. */
dpt_status_t dpt_optimizer_create(const char *spec, const dpt_model_t *model,
                                  dpt_optimizer_t **out);
void dpt_optimizer_free(dpt_optimizer_t *o);
/* Canonical spec with every resolved parameter. */
const char *dpt_optimizer_describe(const dpt_optimizer_t *o);
/* Configured momentum (or beta1), for the metrics CSV. */
double dpt_optimizer_momentum(const dpt_optimizer_t *o);

/* Flat state (n floats, parameter layout) and scalars, for checkpoints. */
float *dpt_optimizer_state(dpt_optimizer_t *o, size_t *n_floats);

/* Updates params[lo, hi) with the batch-mean gradient grad[lo, hi). Thread-safe for
 * disjoint ranges. */
void dpt_optimizer_update(dpt_optimizer_t *o, float *params, const float *grad, size_t lo,
                          size_t hi, const dpt_optim_step_t *st);

#ifdef __cplusplus
}
#endif
#endif
