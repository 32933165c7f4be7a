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

/* Used by the parser (graph.c): one layer item (len characters, "conv:16:3:stride=2") read
 * through the one spec grammar into its op and parsed values; and appending one node with
 * inputs in[0..n_in) (args NULL for ops without keys); *out gets its index. */
dpt_status_t dpt_op_parse_item(const char *item, size_t len, const dpt_op_t **op,
                               dpt_spec_part_t *part);
dpt_status_t dpt_graph_add(dpt_model_t *m, const dpt_op_t *op, const dpt_spec_part_t *args,
                           const int *in, size_t n_in, int *out);
/* Whether node i's output needs a gradient, given the answers for earlier nodes. */
bool dpt_graph_needs_grad(const dpt_model_t *m, const bool *needs, size_t i, bool input_grad);

#endif
