/* The layer interface: a small vtable of forward/backward over row-major [rows x features]
 * activations. Layers hold no OpenMP and allocate nothing; buffers come from the replica.
 * New kinds (convolution, pooling) add a file and a vtable without touching the engine. */
#ifndef DPT_NN_LAYER_H
#define DPT_NN_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum dpt_layer_kind {
    DPT_LAYER_DENSE,
    DPT_LAYER_RELU,
    DPT_LAYER_TANH,
    DPT_LAYER_SIGMOID,
    DPT_LAYER_GELU,
    DPT_LAYER_DROPOUT,
} dpt_layer_kind_t;

/* What a step knows that a layer may need: whether it trains, and the keys that make
 * dropout randomness a function of (seed, epoch, sample index), never of the thread. */
typedef struct dpt_step_ctx {
    bool training;
    uint64_t seed;
    uint64_t epoch;
    const uint32_t *sample_ids; /* dataset index of each row */
} dpt_step_ctx_t;

struct dpt_layer;

typedef struct dpt_layer_ops {
    const char *name;
    /* y[rows x out] = f(x[rows x in]). */
    void (*forward)(const struct dpt_layer *l, const float *params, const float *x, float *y,
                    size_t rows, const dpt_step_ctx_t *ctx);
    /* Given x, y = f(x) and dy = dL/dy: writes dx = dL/dx (when dx is not NULL) and this
     * layer's parameter gradients into grads (same layout as params; overwritten, not
     * accumulated, because each micro-shard gradient buffer is written once per step). */
    void (*backward)(const struct dpt_layer *l, const float *params, const float *x, const float *y,
                     const float *dy, float *dx, float *grads, size_t rows,
                     const dpt_step_ctx_t *ctx);
} dpt_layer_ops_t;

typedef struct dpt_layer {
    dpt_layer_kind_t kind;
    const dpt_layer_ops_t *ops;
    size_t in, out;      /* features per sample */
    size_t w_off, b_off; /* dense: weight [in x out] and bias [out] offsets in floats */
    float p;             /* dropout probability */
    bool init_he;        /* dense: He-normal instead of Xavier-uniform weights */
    uint32_t index;      /* position in the model (keys dropout randomness) */
} dpt_layer_t;

extern const dpt_layer_ops_t dpt_dense_ops, dpt_relu_ops, dpt_tanh_ops, dpt_sigmoid_ops,
    dpt_gelu_ops, dpt_dropout_ops;

#endif
