/* The model spec grammar (docs/models.md) and the presets, read into graph nodes. */
#ifndef DPT_NN_SPEC_H
#define DPT_NN_SPEC_H

#include "nn/graph.h"

/* Appends the nodes of an expanded spec (no preset names) to m, whose input shape and
 * classes are set. */
dpt_status_t dpt_spec_build(dpt_model_t *m, const char *spec);
/* Copies spec into out, or, when spec names a preset, that preset's spec for this input
 * shape and number of classes. */
dpt_status_t dpt_preset_expand(const char *spec, dpt_shape_t in, size_t classes, char *out,
                               size_t cap);

/* Used by the parser (graph.c): the op of a spec keyword (NULL when unknown), the list of
 * valid keywords for messages, and appending one node with inputs in[0..n_in); *out gets
 * its index. */
const dpt_op_t *dpt_op_find(const char *name);
const char *dpt_op_names(void);
dpt_status_t dpt_graph_add(dpt_model_t *m, const dpt_op_t *op, dpt_layer_args_t *args,
                           const int *in, size_t n_in, int *out);
/* Whether node i's output needs a gradient, given the answers for earlier nodes. */
bool dpt_graph_needs_grad(const dpt_model_t *m, const bool *needs, size_t i, bool input_grad);

#endif
