/* A worker's model replica: its own activations and gradient scratch, reading the shared
 * parameters. Sized once for a maximum number of rows; nothing is allocated in a step. */
#ifndef DPT_PARALLEL_REPLICA_H
#define DPT_PARALLEL_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/augment.h"
#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "nn/plan.h"

typedef struct dpt_replica dpt_replica_t;

dpt_status_t dpt_replica_create(const dpt_model_t *m, size_t max_rows, dpt_replica_t **out);
void dpt_replica_free(dpt_replica_t *r);

/* Gathers rows ids[0..rows) of ds (batch assembly), runs forward and backward, and writes
 * this shard's gradient (the sum over its rows of dL/dparams * scale) into grads and its
 * batch statistics (batch norm) into stats (NULL when the model keeps none). Returns the
 * summed loss; *correct gets the number of right predictions. */
double dpt_replica_train_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                               const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                               float scale, float *grads, float *stats, const dpt_step_ctx_t *ctx,
                               size_t *correct);

/* Forward only (evaluation mode). probs (may be NULL) receives rows x classes softmax
 * probabilities; labels_out (may be NULL) receives the true labels. Returns summed loss. */
double dpt_replica_eval_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                              const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                              float *probs, size_t *correct);

/* Training shards assemble their batch through a (NULL: plain gather, the default); the
 * replica sizes its scratch, label and weight buffers for it. a must outlive the replica. */
dpt_status_t dpt_replica_set_augment(dpt_replica_t *r, const dpt_augment_t *a);
/* Evaluation shards average the softmax over t's views (NULL: one plain view). */
dpt_status_t dpt_replica_set_tta(dpt_replica_t *r, const dpt_model_t *m, const dpt_tta_t *t);

/* What the last eval shard's predictions are the argmax of ([rows x classes]): the logits,
 * or with test-time augmentation the softmax averaged over the views. */
const float *dpt_replica_scores(const dpt_replica_t *r, const dpt_model_t *m);

/* Logits of the last forward pass ([rows x classes]). */
const float *dpt_replica_logits(const dpt_replica_t *r, const dpt_model_t *m);
const int32_t *dpt_replica_labels(const dpt_replica_t *r);
/* Per-node timing (dpt_plan_profile): adds each node's forward and backward seconds to
 * fwd[i] and bwd[i]; NULL turns it off. */
void dpt_replica_profile(dpt_replica_t *r, double *fwd, double *bwd);
/* Seconds this replica spent in batch assembly since the last call (then reset). */
double dpt_replica_take_assembly_seconds(dpt_replica_t *r);

#endif
