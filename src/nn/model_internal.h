/* The model's inside, shared by src/nn and the replica that runs it. */
#ifndef DPT_NN_MODEL_INTERNAL_H
#define DPT_NN_MODEL_INTERNAL_H

#include "dptrain/model.h"
#include "nn/layer.h"

#define DPT_MAX_LAYERS 64
#define DPT_MAX_SPEC 1024
#define DPT_MAX_WIDTH 65536
/* Cap on parameters (floats): 1 GiB per parameter-shaped buffer; a run holds several
 * (parameters, one gradient buffer per micro-shard, optimizer state). */
#define DPT_MAX_PARAMS ((size_t)1 << 28)
/* A weight and a bias per dense layer, and every layer may be dense. */
#define DPT_MAX_TENSORS (2 * DPT_MAX_LAYERS)

struct dpt_model {
    size_t n_layers;
    dpt_layer_t layers[DPT_MAX_LAYERS];
    size_t n_tensors;
    dpt_tensor_info_t tensors[DPT_MAX_TENSORS];
    char tensor_names[DPT_MAX_TENSORS][32];
    size_t n_params;
    size_t in_features, classes;
    size_t max_width; /* widest activation, input included */
    char describe[DPT_MAX_SPEC + 64];
};

/* Forward through all layers for `rows` samples: acts[0] is the input [rows x in_features],
 * acts[l + 1] the output of layer l. */
void dpt_model_forward(const dpt_model_t *m, const float *params, float *const *acts, size_t rows,
                       const dpt_step_ctx_t *ctx);

/* Backward through all layers given dL/d(logits) in dtop (overwritten as scratch) and a
 * second scratch buffer of rows * max_width floats; writes parameter gradients. */
void dpt_model_backward(const dpt_model_t *m, const float *params, float *const *acts, float *dtop,
                        float *scratch, float *grads, size_t rows, const dpt_step_ctx_t *ctx);

#endif
