/* The forward-only parallel pass over a whole dataset, shared by validation during training
 * and by eval/predict: one OpenMP region, chunks of `rows` samples dealt round-robin to the
 * replicas, per-chunk sums combined in chunk order (deterministic for any thread count). */
#ifndef DPT_TRAIN_FORWARD_ALL_H
#define DPT_TRAIN_FORWARD_ALL_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/dataset.h"
#include "parallel/replica.h"

/* replicas[0..threads) must each hold at least `rows` rows. Any output may be NULL: loss and
 * accuracy means, confusion [classes x classes] counts [true][predicted], probs
 * [count x classes]. */
dpt_status_t dpt_forward_all(dpt_replica_t *const *replicas, size_t threads, const dpt_model_t *m,
                             const float *params, const dpt_dataset_t *ds, size_t rows,
                             double *loss, double *accuracy, uint64_t *confusion, float *probs);

#endif
