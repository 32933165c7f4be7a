/* The model's inside: the node list, the tensor table and the limits, shared by src/nn only
 * (the replica and the trainer use nn/plan.h and the public model.h). */
#ifndef DPT_NN_GRAPH_H
#define DPT_NN_GRAPH_H

#include "dptrain/model.h"
#include "nn/op.h"

#define DPT_MAX_NODES 512
#define DPT_MAX_SPEC 4096
#define DPT_MAX_WIDTH 65536
/* Cap on parameters (floats): 1 GiB per parameter-shaped buffer; a run holds several
 * (parameters, one gradient buffer per micro-shard, optimizer state). */
#define DPT_MAX_PARAMS ((size_t)1 << 28)
/* Cap on the floats of one sample's activations (all nodes): 256 MiB per sample keeps a
 * replica of a few rows inside memory, and refuses absurd specs before allocating. */
#define DPT_MAX_ACT_PER_SAMPLE ((size_t)1 << 26)
#define DPT_MAX_TENSORS (DPT_NODE_MAX_TENSORS * DPT_MAX_NODES)
#define DPT_TENSOR_NAME 48

struct dpt_model {
    size_t n_nodes;
    dpt_node_t nodes[DPT_MAX_NODES];
    size_t n_tensors;
    dpt_tensor_info_t tensors[DPT_MAX_TENSORS];
    dpt_init_t tensor_init[DPT_MAX_TENSORS];
    size_t tensor_fan_in[DPT_MAX_TENSORS], tensor_fan_out[DPT_MAX_TENSORS];
    size_t tensor_node[DPT_MAX_TENSORS];
    char tensor_names[DPT_MAX_TENSORS][DPT_TENSOR_NAME];
    size_t n_params;    /* whole buffer */
    size_t n_trainable; /* trainable prefix */
    size_t n_weights;   /* real trainable floats */
    size_t n_stats;     /* floats of one shard-statistics buffer */
    dpt_shape_t in;
    size_t classes;
    /* Backward bookkeeping, fixed at build time: whether node i's output needs a gradient
     * (some node at or before it has parameters), and for each input whether node i adds
     * into that gradient slot (an earlier writer in backward order exists) or writes it. */
    bool needs_grad[DPT_MAX_NODES];
    bool dx_acc[DPT_MAX_NODES][DPT_NODE_MAX_INPUTS];
    char spec[DPT_MAX_SPEC + 1];
    char describe[DPT_MAX_SPEC + 64];
    char brief[DPT_MAX_SPEC + 96];
};

#endif
