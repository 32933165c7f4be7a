/* Using a trained model: load it from a checkpoint (model spec, parameters, the training
 * data's normalisation), evaluate it on a dataset (loss, accuracy, per-class accuracy,
 * confusion matrix) or predict class probabilities, on worker threads. */
#ifndef DPTRAIN_INFERENCE_H
#define DPTRAIN_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_inference dpt_inference_t;

/* Reads and verifies a checkpoint written by a training run. threads 0 = all cores. */
dpt_status_t dpt_inference_load(const char *checkpoint, size_t threads, dpt_inference_t **out);
void dpt_inference_free(dpt_inference_t *inf);
const dpt_model_t *dpt_inference_model(const dpt_inference_t *inf);

/* Test-time augmentation (dptrain/augment.h, --tta): later runs average the softmax over
 * the spec's views. The spec is checked against the model's input shape (NULL/"" or
 * "none": off). */
dpt_status_t dpt_inference_set_tta(dpt_inference_t *inf, const char *spec);

/* Checks that ds fits the model (features, classes) and applies the training normalisation. */
dpt_status_t dpt_inference_prepare(const dpt_inference_t *inf, dpt_dataset_t *ds);

/* Forward pass over every sample of ds (prepared). Any output may be NULL:
 * loss/accuracy means, confusion [classes x classes] counts [true][predicted],
 * probs [count x classes] softmax probabilities. */
dpt_status_t dpt_inference_run(dpt_inference_t *inf, const dpt_dataset_t *ds, double *loss,
                               double *accuracy, uint64_t *confusion, float *probs);

#ifdef __cplusplus
}
#endif
#endif
