/* The model's memory plan and its walk: one arena per replica holding, for a maximum number
 * of rows, the input rows, every node's output and output gradient, every node's saved
 * floats and the largest workspace; forward and backward over the nodes in order.
 * The replica allocates through this and never sees the graph. */
#ifndef DPT_NN_PLAN_H
#define DPT_NN_PLAN_H

#include <stddef.h>

#include "dptrain/model.h"
#include "nn/op.h"

typedef struct dpt_plan dpt_plan_t;

/* A plan for up to max_rows samples. With input_grad, backward also computes dL/d(input)
 * (dpt_plan_input_grad); otherwise that gradient is skipped. */
dpt_status_t dpt_plan_create(const dpt_model_t *m, size_t max_rows, bool input_grad,
                             dpt_plan_t **out);
void dpt_plan_free(dpt_plan_t *p);
size_t dpt_plan_bytes(const dpt_plan_t *p);

/* Input rows [max_rows x in_features], written by batch assembly. */
float *dpt_plan_input(dpt_plan_t *p);
/* Output of the last forward pass [rows x classes]. */
const float *dpt_plan_logits(const dpt_plan_t *p);
/* Where the loss writes dL/dlogits before backward [rows x classes]. */
float *dpt_plan_dlogits(dpt_plan_t *p);
/* dL/d(input) after backward (input_grad plans only, else NULL). */
const float *dpt_plan_input_grad(const dpt_plan_t *p);
/* Output of node i of the last forward pass [rows x size(out)]. */
const float *dpt_plan_node_output(const dpt_plan_t *p, size_t i);

/* Forward over all nodes for `rows` (<= max_rows) samples. In training, ops with statistics
 * write this shard's into stats (dpt_model_stats_count floats; NULL when the model has
 * none). */
void dpt_plan_forward(dpt_plan_t *p, const float *params, size_t rows, const dpt_step_ctx_t *ctx,
                      float *stats);
/* Backward from dpt_plan_dlogits: writes every trainable parameter's gradient into grads
 * (dpt_model_trainable_count floats, overwritten). */
void dpt_plan_backward(dpt_plan_t *p, const float *params, float *grads, size_t rows,
                       const dpt_step_ctx_t *ctx, float *stats);

/* Per-node timing for benchmarks: while fwd and bwd are set (arrays of one double per node),
 * forward and backward add each node's wall seconds to them; NULL turns it off. */
void dpt_plan_profile(dpt_plan_t *p, double *fwd, double *bwd);

/* Floats of one shard-statistics buffer (0: the model keeps no running statistics). */
size_t dpt_model_stats_count(const dpt_model_t *m);
/* Folds the statistics of one step's shards (stats[s] of rows[s] samples, in shard order)
 * into the state part of params. Called on one thread after the step, which keeps the
 * running statistics independent of the thread count. */
void dpt_model_fold_stats(const dpt_model_t *m, float *params, const float *const *stats,
                          const size_t *rows, size_t shards);

#endif
