/* The op interface of the graph model: what one node kind (dense, conv, bn, ...) tells the
 * graph, behind a small vtable. Each op lives in its own file; nothing outside that file
 * switches on the kind. Ops hold no OpenMP and allocate nothing: the plan (nn/plan.c) hands
 * them every buffer, sized from what they declared.
 *
 * Activations are row-major [rows x C*H*W], NCHW within a row (one row = one sample). */
#ifndef DPT_NN_OP_H
#define DPT_NN_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/spec.h"
#include "dptrain/model.h"
#include "dptrain/status.h"

#define DPT_NODE_MAX_INPUTS 2
#define DPT_NODE_MAX_TENSORS 4
#define DPT_NODE_NAME 32

/* What a step knows that an op may need: whether it trains, and the keys that make
 * randomness a function of (seed, epoch, sample index, node), never of the thread. */
typedef struct dpt_step_ctx {
    bool training;
    uint64_t seed;
    uint64_t epoch;
    const uint32_t *sample_ids; /* dataset index of each row */
} dpt_step_ctx_t;

static inline size_t dpt_shape_size(dpt_shape_t s)
{
    return s.c * s.h * s.w;
}

/* XAVIER: Glorot uniform, U(+-sqrt(6 / (fan_in + fan_out))); HE: He normal over fan_in,
 * N(0, 2 / fan_in); TORCH: PyTorch's default for nn.Linear / nn.Conv2d weights and biases,
 * U(+-1 / sqrt(fan_in)) (its kaiming_uniform with a = sqrt(5)). */
typedef enum {
    DPT_INIT_ZERO,
    DPT_INIT_ONE,
    DPT_INIT_XAVIER,
    DPT_INIT_HE,
    DPT_INIT_TORCH
} dpt_init_t;
/* The `init` key of the layers with weights (dense, conv): the values of DPT_WEIGHT_INITS
 * in order are XAVIER, HE, TORCH. A layer's bias starts at 0, except under TORCH, where it
 * is drawn as PyTorch draws it (same bound as the weights). */
#define DPT_WEIGHT_INITS "xavier|he|torch"
static inline dpt_init_t dpt_weight_init(int spec_index)
{
    return (dpt_init_t)(DPT_INIT_XAVIER + spec_index);
}
static inline dpt_init_t dpt_bias_init(dpt_init_t weight_init)
{
    return weight_init == DPT_INIT_TORCH ? DPT_INIT_TORCH : DPT_INIT_ZERO;
}

/* The parsed attributes of a node; each op reads the fields it declared in its parse. */
typedef struct dpt_node_attr {
    size_t out;      /* dense: features; conv: output channels; zpad: channels */
    size_t k;        /* conv/pool: kernel size */
    size_t stride;   /* conv/pool/zpad */
    size_t pad;      /* conv/pool: zero padding on each side */
    size_t groups;   /* conv */
    int algo;        /* conv: lowering, a conv_algo_t of nn/conv.c */
    bool bias;       /* dense/conv: has a bias */
    dpt_init_t init; /* dense/conv: weight initialiser (dpt_weight_init) */
    float p;         /* dropout probability */
    double eps;      /* bn */
    double momentum; /* bn: running-statistics momentum (PyTorch's convention) */
} dpt_node_attr_t;

struct dpt_op;

/* One node of the static graph. Inputs are earlier nodes (index < this one) or the graph
 * input (DPT_NODE_INPUT). */
typedef struct dpt_node {
    const struct dpt_op *op;
    uint32_t index;           /* position in topological order (keys dropout randomness) */
    char name[DPT_NODE_NAME]; /* unique, e.g. "conv3", "bn2", "add1" */
    size_t n_in;
    int in[DPT_NODE_MAX_INPUTS];
    dpt_shape_t in_shape[DPT_NODE_MAX_INPUTS];
    dpt_shape_t out;
    dpt_node_attr_t a;
    /* Indices into the model's tensor table; offset[] are the matching float offsets in
     * the one parameter buffer (trainable tensors first, then state tensors). */
    size_t n_tensors;
    size_t tensor[DPT_NODE_MAX_TENSORS];
    size_t offset[DPT_NODE_MAX_TENSORS];
    /* Offset of this node's slice of a shard-statistics buffer (n_stats floats; ops with
     * state only, e.g. batch norm's batch mean and variance). */
    size_t stats_off;
} dpt_node_t;

#define DPT_NODE_INPUT (-1)

/* The vtable entry of ops that keep their input's shape (activations, dropout, bn). */
dpt_status_t dpt_op_infer_same(dpt_node_t *n);

/* A tensor an op declares; the graph lays it out in the parameter buffer. */
typedef struct dpt_tensor_decl {
    const char *suffix; /* "weight", "bias", "running_mean", ... (name = node.suffix) */
    size_t ndim;
    size_t shape[4];
    dpt_tensor_role_t role;
    dpt_init_t init;
    size_t fan_in, fan_out; /* for XAVIER / HE / TORCH */
} dpt_tensor_decl_t;

/* Buffers of one node's pass over `rows` samples. x[i] is input i ([rows x size(in_shape[i])]),
 * y the output ([rows x size(out)]). In backward, dy is dL/dy; dx[i] (NULL when that input
 * needs no gradient) receives dL/dx[i]: added to what is there when dx_acc[i], written
 * otherwise (the plan tells the first writer of a gradient slot to write, so slots need no
 * zeroing and fan-out adds up). Parameter gradients are written (not accumulated): every
 * parameter belongs to one node and a shard's gradient buffer is written once per step. */
typedef struct dpt_op_io {
    const float *x[DPT_NODE_MAX_INPUTS];
    float *y;
    const float *dy;
    float *dx[DPT_NODE_MAX_INPUTS];
    bool dx_acc[DPT_NODE_MAX_INPUTS];
    const float *params; /* the whole parameter buffer (state tensors included) */
    float *grads;        /* the whole gradient buffer (trainable part only) */
    float *stats;        /* training: this shard's statistics buffer (whole), or NULL */
    float *saved;        /* this node's saved floats (forward -> backward), saved_floats() */
    float *ws;           /* scratch shared by all nodes: workspace_floats() for rows */
    size_t rows;
    const dpt_step_ctx_t *ctx;
} dpt_op_io_t;

typedef struct dpt_op {
    /* The spec keyword and its typed keys in the one spec grammar (core/spec.h), which
     * checks names, types and ranges before parse runs. */
    dpt_spec_kind_t spec;
    /* Reads the parsed values into n->a and checks what spans keys (NULL: no keys). */
    dpt_status_t (*parse)(dpt_node_t *n, const dpt_spec_part_t *p);
    /* Sets n->out from n->in_shape; refuses shapes it cannot take (one line naming the node
     * and why). */
    dpt_status_t (*infer)(dpt_node_t *n);
    /* Writes up to DPT_NODE_MAX_TENSORS declarations, trainable ones before state ones
     * (node.offset[k] then matches declaration k); returns how many (may be NULL: none). */
    size_t (*declare)(const dpt_node_t *n, dpt_tensor_decl_t *decl);
    /* Scratch floats for `rows` samples (may be NULL: none). */
    size_t (*workspace_floats)(const dpt_node_t *n, size_t rows);
    /* Floats kept from forward to backward for `rows` samples (may be NULL: none). */
    size_t (*saved_floats)(const dpt_node_t *n, size_t rows);
    /* Floats of shard statistics (may be NULL: none). */
    size_t (*stats_floats)(const dpt_node_t *n);
    void (*forward)(const dpt_node_t *n, const dpt_op_io_t *io);
    void (*backward)(const dpt_node_t *n, const dpt_op_io_t *io);
    /* After a training step, on one thread: folds the statistics of the step's shards
     * (stats[s] is shard s's whole statistics buffer, of rows[s] samples; in shard order)
     * into the state tensors (may be NULL). */
    void (*fold_stats)(const dpt_node_t *n, float *params, const float *const *stats,
                       const size_t *rows, size_t shards);
    /* Forward may write y over x[0] (the plan then gives both one buffer), and backward is
     * right with x[0] overwritten by y: relu, whose x > 0 exactly where y > 0, and add, whose
     * backward reads no input. */
    bool in_place;
    /* Backward reads this node's own output y (tanh, sigmoid): no consumer may then write over
     * it in place. */
    bool backward_reads_output;
    /* Multiply-adds x 2 of one sample's forward pass (may be NULL: 0). */
    double (*flops)(const dpt_node_t *n);
    /* The main GEMM of a forward pass over `rows` samples as {M, N, K} (may be NULL: none),
     * for benchmarks' same-shape sgemm roofline. */
    void (*gemm_shape)(const dpt_node_t *n, size_t rows, size_t mnk[3]);
    /* The products the op actually runs, {M, N, K}, where they differ from gemm_shape (a
     * Winograd convolution: OUT x tile columns x C), for the kernel-set choice (may be NULL:
     * gemm_shape). */
    void (*product_shape)(const dpt_node_t *n, size_t rows, size_t mnk[3]);
} dpt_op_t;

/* Every op, for the parser's table (src/nn/graph.c lists them). */
extern const dpt_op_t dpt_op_dense, dpt_op_relu, dpt_op_tanh, dpt_op_sigmoid, dpt_op_gelu,
    dpt_op_dropout, dpt_op_conv, dpt_op_maxpool, dpt_op_avgpool, dpt_op_gap, dpt_op_flatten,
    dpt_op_bn, dpt_op_add, dpt_op_zpad;

/* Writes dst[i] (+)= v over n floats: the accumulate-or-write rule of dx. */
static inline void dpt_store_grad(float *restrict dst, const float *restrict v, size_t n, bool acc)
{
    if (acc)
        for (size_t i = 0; i < n; i++)
            dst[i] += v[i];
    else
        for (size_t i = 0; i < n; i++)
            dst[i] = v[i];
}

#endif
