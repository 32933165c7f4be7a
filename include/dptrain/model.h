/* Models: a static graph of shaped nodes parsed from a spec string (or a preset name), with
 * one flat parameter layout.
 *
 * All tensors live in one contiguous float buffer described by a table of tensors
 * {name, offset, shape, role}: the trainable ones first (gradients and optimizer state use
 * that prefix's layout, so zeroing, reduction and updates are flat loops), then the
 * non-trainable state (batch norm's running statistics), so a checkpoint, a best-epoch copy
 * or a rollback is still one copy of one buffer.
 * A model handle is immutable after creation and may be shared by all worker threads. */
#ifndef DPTRAIN_MODEL_H
#define DPTRAIN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dptrain/checkpoint.h"
#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_model dpt_model_t;

/* The default classifier: an MLP with two hidden ReLU layers. */
#define DPT_DEFAULT_MODEL "dense:256,relu,dense:128,relu,dense:10"

/* Per-sample shape: channels, height, width (a table row of F features is F x 1 x 1). */
typedef struct dpt_shape {
    size_t c, h, w;
} dpt_shape_t;

typedef enum dpt_tensor_role {
    DPT_TENSOR_WEIGHT, /* dense or conv weight */
    DPT_TENSOR_BIAS,   /* a bias */
    DPT_TENSOR_NORM,   /* batch norm's scale (gamma) or shift (beta) */
    DPT_TENSOR_STATE,  /* non-trainable state: batch norm's running mean / variance */
} dpt_tensor_role_t;

typedef struct dpt_tensor_info {
    const char *name;  /* node name + "." + suffix, e.g. "conv0.weight", "bn1.running_var" */
    size_t offset;     /* in floats from the start of the parameter buffer (64-byte aligned) */
    size_t rows, cols; /* a 2-D view: dense weight in x out; conv weight out x (in/g)*k*k;
                          vectors 1 x n */
    size_t ndim;       /* the real shape: dense weight {in, out}; conv weight
                          {out, in/groups, k, k} (PyTorch's order); vectors {n} */
    size_t shape[4];
    dpt_tensor_role_t role;
    int is_bias;   /* role is BIAS or NORM: one-dimensional, excluded from LARS/LAMB trust
                      ratios and weight decay where an optimizer says so */
    int trainable; /* role != STATE */
} dpt_tensor_info_t;

/* Parses spec for F x 1 x 1 inputs (F = in_features): dpt_model_create_shaped. */
dpt_status_t dpt_model_create(const char *spec, size_t in_features, size_t classes,
                              dpt_model_t **out);

/* Parses spec (comma-separated layers, residual groups and presets: docs/models.md) for
 * samples of shape `in`. The last node must produce `classes` outputs. Errors name the
 * offending layer and why (unknown kind, bad argument, a shape that reaches zero, a kernel
 * larger than its input, mismatched residual shapes, over the size caps) and list the valid
 * kinds where that helps. */
dpt_status_t dpt_model_create_shaped(const char *spec, dpt_shape_t in, size_t classes,
                                     dpt_model_t **out);
/* dpt_model_create_shaped for the sample shape of a dataset. */
struct dpt_dataset;
dpt_status_t dpt_model_create_for_data(const char *spec, const struct dpt_dataset *ds,
                                       size_t classes, dpt_model_t **out);
/* Refuses a bad spec before any data is loaded when the data spec alone fixes the sample
 * shape (dpt_dataset_spec_shape); DPT_OK when it cannot tell yet. */
dpt_status_t dpt_model_check_early(const char *spec, const char *data_spec);
void dpt_model_free(dpt_model_t *m);

/* The model's checkpoint section: its spec, input features, classes and input shape as text
 * ("SPEC\nF\nCLASSES\nC H W\n"). save writes at most cap bytes and returns the length
 * (>= cap: cut off); load rebuilds the model (a section without the shape line, from
 * before image models, means F x 1 x 1). */
#define DPT_MODEL_TEXT_MAX 4300
size_t dpt_model_save_text(const dpt_model_t *m, char *buf, size_t cap);
dpt_status_t dpt_model_load_text(const char *text, size_t n, dpt_model_t **out);
/* The same as a checkpoint section named DPT_MODEL_SECTION, written and read by the model
 * (src/nn/model_checkpoint.c): section fills *out with the text in buf (cap >=
 * DPT_MODEL_TEXT_MAX; DPT_ERR_LIMIT when the spec does not fit), pointing into buf; load
 * rebuilds the model from checkpoint ck read from path (DPT_ERR_FORMAT naming path when the
 * section is missing or malformed). */
#define DPT_MODEL_SECTION "model"
dpt_status_t dpt_model_checkpoint_section(const dpt_model_t *m, char *buf, size_t cap,
                                          dpt_ckpt_section_t *out);
dpt_status_t dpt_model_checkpoint_load(const dpt_checkpoint_t *ck, const char *path,
                                       dpt_model_t **out);

/* Floats of the whole parameter buffer: trainable tensors, then state, with alignment. */
size_t dpt_model_param_count(const dpt_model_t *m);
/* Floats of the trainable prefix (what gradient buffers and optimizer state cover). */
size_t dpt_model_trainable_count(const dpt_model_t *m);
/* Real (unpadded) floats of the trainable tensors, for reports. */
size_t dpt_model_weight_count(const dpt_model_t *m);
size_t dpt_model_tensor_count(const dpt_model_t *m);
const dpt_tensor_info_t *dpt_model_tensor(const dpt_model_t *m, size_t i);
/* Tensor by name, or NULL. */
const dpt_tensor_info_t *dpt_model_tensor_named(const dpt_model_t *m, const char *name);
size_t dpt_model_in_features(const dpt_model_t *m);
dpt_shape_t dpt_model_input_shape(const dpt_model_t *m);
size_t dpt_model_classes(const dpt_model_t *m);
/* The spec as given (a preset keeps its name). */
const char *dpt_model_spec(const dpt_model_t *m);
/* Canonical spec with input shape, e.g. "1x28x28 -> dense:256,relu,dense:128,relu,dense:10";
 * presets are expanded (what config.txt records). */
const char *dpt_model_describe(const dpt_model_t *m);
/* One short line for progress output: the spec as given with the input shape, the node count
 * and the trainable parameters, e.g. "3x32x32 -> resnet20 (70 nodes, 269722 parameters)". */
const char *dpt_model_brief(const dpt_model_t *m);
/* Multiply-adds x 2 of one sample's forward pass (for GFLOP/s). */
double dpt_model_forward_flops(const dpt_model_t *m);
/* Floating-point operations of one sample's training step: forward, and the backward pass
 * (taken as twice the forward of every node with parameters that also needs its input
 * gradient, once for the first such node). */
double dpt_model_train_flops(const dpt_model_t *m);

/* Initialises params (dpt_model_param_count floats) as each layer's `init` says: by default
 * PyTorch's (weights and biases uniform in +-1/sqrt(fan_in)), `he` He-normal over fan_in,
 * `xavier` Glorot-uniform, both with zero biases (docs/models.md, "Initialisation"); batch
 * norm gamma 1, beta 0, running mean 0 and variance 1; depends only on seed. */
void dpt_model_init_params(const dpt_model_t *m, float *params, uint64_t seed);

/* The GEMM {M, N, K} of the forward pass of the node with the most FLOPs, for `rows`
 * samples (the benchmarks' same-shape sgemm roofline); false when no node runs a GEMM. */
bool dpt_model_main_gemm(const dpt_model_t *m, size_t rows, size_t mnk[3]);

/* One node of the graph, for reports and tools (names are stable: "conv0", "bn3", ...). */
typedef struct dpt_node_info {
    const char *name, *kind;
    dpt_shape_t out;
    size_t params;   /* trainable floats */
    double flops;    /* forward, per sample */
    int weight_grad; /* backward computes parameter gradients */
    int input_grad;  /* backward computes its input's gradient */
    int has_gemm;    /* gemm[] is its forward GEMM for the rows asked */
    size_t gemm[3];  /* M, N, K */
} dpt_node_info_t;
size_t dpt_model_node_count(const dpt_model_t *m);
/* Node i (< count) with its GEMM shape for a pass over `rows` samples. */
void dpt_model_node_info(const dpt_model_t *m, size_t i, size_t rows, dpt_node_info_t *out);

/* Share of the GEMM FLOPs of a forward pass in products with min(M, N, K) < 64 at 64 rows (the
 * products an op runs: a Winograd convolution's are OUT x tile columns x C): the hint the
 * kernel-set choice takes (dpt_gemm_init_narrow). */
double dpt_model_narrow_gemm_share(const dpt_model_t *m);

/* Prints one line per node: name, kind, output shape, parameters, forward MFLOPs per sample. */
void dpt_model_print_summary(const dpt_model_t *m, void *file);

/* Bytes a worker replica needs for `rows` samples: activations, their gradients, the saved
 * floats and the largest workspace (what dptrain info and the run's config report). */
size_t dpt_model_replica_bytes(const dpt_model_t *m, size_t rows);
/* Of that, the workspace shared by the nodes (the convolutions' lowered blocks, bounded
 * whatever rows is). */
size_t dpt_model_workspace_bytes(const dpt_model_t *m, size_t rows);

/* Preset names with one line each, for --model help. */
size_t dpt_model_preset_count(void);
const char *dpt_model_preset_name(size_t i);
const char *dpt_model_preset_about(size_t i);

#ifdef __cplusplus
}
#endif
#endif
