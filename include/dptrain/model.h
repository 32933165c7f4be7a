/* Models: a stack of layers parsed from a spec string, with one flat parameter layout.
 *
 * All parameters live in one contiguous float buffer described by a table of tensors
 * {name, offset, rows, cols}; gradients and optimizer state use the same layout, so zeroing,
 * reduction and updates are flat loops and a checkpoint is one write.
 * A model handle is immutable after creation and may be shared by all worker threads. */
#ifndef DPTRAIN_MODEL_H
#define DPTRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_model dpt_model_t;

/* The default classifier: an MLP with two hidden ReLU layers. */
#define DPT_DEFAULT_MODEL "dense:256,relu,dense:128,relu,dense:10"

typedef struct dpt_tensor_info {
    const char *name;  /* e.g. "dense0.weight" */
    size_t offset;     /* in floats from the start of the parameter buffer (64-byte aligned) */
    size_t rows, cols; /* weight: in x out; bias: 1 x out */
    int is_bias;
} dpt_tensor_info_t;

/* Parses spec (comma-separated layers: dense:N[:he|:xavier], relu, tanh, sigmoid, gelu,
 * dropout:P) for
 * inputs of in_features floats. The last layer must be dense:classes. Errors name the
 * offending item and list the valid layer kinds. */
dpt_status_t dpt_model_create(const char *spec, size_t in_features, size_t classes,
                              dpt_model_t **out);
void dpt_model_free(dpt_model_t *m);

size_t dpt_model_param_count(const dpt_model_t *m); /* floats, including alignment padding */
size_t dpt_model_tensor_count(const dpt_model_t *m);
const dpt_tensor_info_t *dpt_model_tensor(const dpt_model_t *m, size_t i);
size_t dpt_model_in_features(const dpt_model_t *m);
size_t dpt_model_classes(const dpt_model_t *m);
/* Canonical spec with input width, e.g. "784 -> dense:256,relu,dense:128,relu,dense:10". */
const char *dpt_model_describe(const dpt_model_t *m);
/* Multiply-adds of one sample's forward pass through the dense layers (for GFLOP/s). */
double dpt_model_forward_flops(const dpt_model_t *m);
/* Floating-point operations of one sample's training step: forward, weight gradients, and
 * input gradients of every dense layer but a first one. */
double dpt_model_train_flops(const dpt_model_t *m);

/* Initialises params (dpt_model_param_count floats): Xavier/Glorot-uniform weights (Keras's
 * default for Dense; measured better than He here, docs/design.md), He-normal for layers
 * written dense:N:he, zero biases; depends only on seed. */
void dpt_model_init_params(const dpt_model_t *m, float *params, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
