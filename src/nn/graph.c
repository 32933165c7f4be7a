/* Owns the model: building the graph of nodes (from the parsed spec), the flat tensor layout
 * (trainable tensors, then state), initialisation, FLOP counts, the backward bookkeeping
 * (which outputs need gradients, which gradient slots accumulate) and the summary. The spec
 * text is read by nn/spec.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "dptrain/dataset.h"
#include "nn/graph.h"
#include "nn/spec.h"

/* The node kinds a spec may name, in the order `--model help` lists them (add comes only from
 * res(...)), and their spec kinds in the same order. */
static const dpt_op_t *const spec_ops[] = {
    &dpt_op_dense,   &dpt_op_conv,    &dpt_op_bn,      &dpt_op_relu,    &dpt_op_tanh,
    &dpt_op_sigmoid, &dpt_op_gelu,    &dpt_op_dropout, &dpt_op_maxpool, &dpt_op_avgpool,
    &dpt_op_gap,     &dpt_op_flatten, &dpt_op_zpad,
};
static const dpt_spec_kind_t *const spec_kinds[] = {
    &dpt_op_dense.spec,   &dpt_op_conv.spec,    &dpt_op_bn.spec,   &dpt_op_relu.spec,
    &dpt_op_tanh.spec,    &dpt_op_sigmoid.spec, &dpt_op_gelu.spec, &dpt_op_dropout.spec,
    &dpt_op_maxpool.spec, &dpt_op_avgpool.spec, &dpt_op_gap.spec,  &dpt_op_flatten.spec,
    &dpt_op_zpad.spec,
};
static const dpt_spec_grammar_t layer_grammar = {
    "layer", spec_kinds, sizeof spec_kinds / sizeof spec_kinds[0], NULL, 1, "model spec"};

dpt_status_t dpt_op_parse_item(const char *item, size_t len, const dpt_op_t **op,
                               dpt_spec_part_t *part)
{
    dpt_status_t s = dpt_spec_parse_part(&layer_grammar, item, len, part);
    *op = s == DPT_OK ? spec_ops[part->kind_index] : NULL;
    return s;
}

dpt_status_t dpt_op_infer_same(dpt_node_t *n)
{
    n->out = n->in_shape[0];
    return DPT_OK;
}

static dpt_shape_t input_shape(const dpt_model_t *m, int in)
{
    return in == DPT_NODE_INPUT ? m->in : m->nodes[in].out;
}

dpt_status_t dpt_graph_add(dpt_model_t *m, const dpt_op_t *op, const dpt_spec_part_t *args,
                           const int *in, size_t n_in, int *out)
{
    if (m->n_nodes == DPT_MAX_NODES)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: more than %d nodes", DPT_MAX_NODES);
    dpt_node_t *n = &m->nodes[m->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->index = (uint32_t)m->n_nodes;
    size_t same = 0;
    for (size_t i = 0; i < m->n_nodes; i++)
        same += m->nodes[i].op == op;
    snprintf(n->name, sizeof n->name, "%s%zu", op->spec.name, same);
    n->n_in = n_in;
    for (size_t k = 0; k < n_in; k++) {
        n->in[k] = in[k];
        n->in_shape[k] = input_shape(m, in[k]);
    }
    dpt_status_t s = op->parse ? op->parse(n, args) : DPT_OK;
    if (s == DPT_OK) s = op->infer(n);
    if (s != DPT_OK) return s;
    if (dpt_shape_size(n->out) == 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: %s: the output shape reaches zero",
                         args ? args->label : "model spec: 'res(...)'", n->name);
    if (n->out.c > DPT_MAX_WIDTH * 16 || dpt_shape_size(n->out) > DPT_MAX_ACT_PER_SAMPLE)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: %s: output %zux%zux%zu is too large",
                         n->name, n->out.c, n->out.h, n->out.w);
    *out = (int)m->n_nodes++;
    return DPT_OK;
}

/* Appends one tensor to the table at the current end of the buffer. */
static void add_tensor(dpt_model_t *m, size_t node, const dpt_tensor_decl_t *d)
{
    size_t i = m->n_tensors++;
    dpt_tensor_info_t *t = &m->tensors[i];
    snprintf(m->tensor_names[i], sizeof m->tensor_names[i], "%s.%s", m->nodes[node].name,
             d->suffix);
    size_t numel = 1;
    for (size_t k = 0; k < d->ndim; k++)
        numel *= d->shape[k];
    *t = (dpt_tensor_info_t){.name = m->tensor_names[i],
                             .offset = m->n_params,
                             .rows = d->ndim == 2  ? d->shape[0]
                                     : d->ndim > 2 ? d->shape[0]
                                                   : 1,
                             .cols = d->ndim == 2  ? d->shape[1]
                                     : d->ndim > 2 ? numel / d->shape[0]
                                                   : numel,
                             .ndim = d->ndim,
                             .role = d->role,
                             .is_bias = d->role == DPT_TENSOR_BIAS || d->role == DPT_TENSOR_NORM,
                             .trainable = d->role != DPT_TENSOR_STATE};
    memcpy(t->shape, d->shape, sizeof t->shape);
    m->tensor_init[i] = d->init;
    m->tensor_fan_in[i] = d->fan_in;
    m->tensor_fan_out[i] = d->fan_out;
    m->tensor_node[i] = node;
    /* Each tensor starts 64-byte aligned inside the one parameter buffer. */
    m->n_params += dpt_round_floats(numel);
    if (t->trainable) m->n_weights += numel;
    dpt_node_t *n = &m->nodes[node];
    n->tensor[n->n_tensors] = i;
    n->offset[n->n_tensors] = t->offset;
    n->n_tensors++;
}

/* Lays out every node's tensors: all trainable ones (in node order), then all state, so the
 * gradient and optimizer buffers cover one prefix. Ops declare trainable tensors before state
 * ones, so a node's offset[] follows its declaration order. */
static void build_layout(dpt_model_t *m)
{
    /* Declarations are pure, so each pass asks again instead of keeping them all (a model
     * may be built on a thread with a small stack). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < m->n_nodes; i++) {
            const dpt_node_t *n = &m->nodes[i];
            dpt_tensor_decl_t decl[DPT_NODE_MAX_TENSORS];
            size_t nd = n->op->declare ? n->op->declare(n, decl) : 0;
            for (size_t k = 0; k < nd; k++)
                if ((decl[k].role == DPT_TENSOR_STATE) == (pass == 1)) add_tensor(m, i, &decl[k]);
        }
        if (pass == 0) m->n_trainable = m->n_params;
    }
    for (size_t i = 0; i < m->n_nodes; i++) {
        dpt_node_t *n = &m->nodes[i];
        n->stats_off = m->n_stats;
        if (n->op->stats_floats) m->n_stats += n->op->stats_floats(n);
    }
}

static bool has_params(const dpt_model_t *m, size_t i)
{
    const dpt_node_t *n = &m->nodes[i];
    for (size_t k = 0; k < n->n_tensors; k++)
        if (m->tensors[n->tensor[k]].trainable) return true;
    return false;
}

bool dpt_graph_needs_grad(const dpt_model_t *m, const bool *needs, size_t i, bool input_grad)
{
    if (has_params(m, i)) return true;
    const dpt_node_t *n = &m->nodes[i];
    for (size_t k = 0; k < n->n_in; k++)
        if (n->in[k] == DPT_NODE_INPUT ? input_grad : needs[n->in[k]]) return true;
    return false;
}

/* Backward visits nodes last to first; the first visitor to write a node's gradient slot
 * overwrites it and every later one adds, so the slots need no zeroing and fan-out sums. */
static void build_backward(dpt_model_t *m)
{
    bool written[DPT_MAX_NODES + 1] = {0}; /* [0] is the graph input */
    for (size_t i = m->n_nodes; i-- > 0;) {
        const dpt_node_t *n = &m->nodes[i];
        for (size_t k = 0; k < n->n_in; k++) {
            size_t slot = (size_t)(n->in[k] + 1);
            m->dx_acc[i][k] = written[slot];
            written[slot] = true;
        }
    }
    for (size_t i = 0; i < m->n_nodes; i++)
        m->needs_grad[i] = dpt_graph_needs_grad(m, m->needs_grad, i, false);
}

static dpt_status_t check_model(const dpt_model_t *m)
{
    if (m->n_nodes == 0) return dpt_error(DPT_ERR_INVALID_ARG, "model spec has no layers");
    const dpt_node_t *last = &m->nodes[m->n_nodes - 1];
    if (dpt_shape_size(last->out) != m->classes)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: the last layer (%s) gives %zu outputs; it must give %zu to "
                         "match the classes of the data (end with dense:%zu)",
                         last->name, dpt_shape_size(last->out), m->classes, m->classes);
    size_t act = 0;
    for (size_t i = 0; i < m->n_nodes; i++)
        act += dpt_shape_size(m->nodes[i].out);
    if (act > DPT_MAX_ACT_PER_SAMPLE)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %zu activation floats per sample exceed the cap of %zu; "
                         "make the model shallower or narrower",
                         act, (size_t)DPT_MAX_ACT_PER_SAMPLE);
    if (m->n_params > DPT_MAX_PARAMS)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %zu parameters (with alignment) exceed the cap of %zu; "
                         "make the layers narrower",
                         m->n_params, (size_t)DPT_MAX_PARAMS);
    return DPT_OK;
}

dpt_status_t dpt_model_create_shaped(const char *spec, dpt_shape_t in, size_t classes,
                                     dpt_model_t **out)
{
    if (dpt_shape_size(in) == 0 || classes < 2)
        return dpt_error(DPT_ERR_INVALID_ARG, "model needs >= 1 input feature and >= 2 classes");
    if (!spec || !*spec) return dpt_error(DPT_ERR_INVALID_ARG, "model spec is empty");
    if (strlen(spec) > DPT_MAX_SPEC)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec longer than %d characters", DPT_MAX_SPEC);
    dpt_model_t *m = calloc(1, sizeof *m);
    if (!m) return dpt_error(DPT_ERR_NOMEM, "out of memory creating the model");
    m->in = in;
    m->classes = classes;
    snprintf(m->spec, sizeof m->spec, "%s", spec);
    char expanded[DPT_MAX_SPEC + 1];
    dpt_status_t s = dpt_preset_expand(spec, in, classes, expanded, sizeof expanded);
    if (s == DPT_OK) s = dpt_spec_build(m, expanded);
    if (s == DPT_OK) {
        build_layout(m);
        build_backward(m);
        s = check_model(m);
    }
    if (s != DPT_OK) {
        free(m);
        return s;
    }
    snprintf(m->describe, sizeof m->describe, "%zux%zux%zu -> %s", in.c, in.h, in.w, expanded);
    snprintf(m->brief, sizeof m->brief, "%zux%zux%zu -> %s (%zu nodes, %zu parameters)", in.c, in.h,
             in.w, spec, m->n_nodes, m->n_weights);
    *out = m;
    return DPT_OK;
}

dpt_status_t dpt_model_create(const char *spec, size_t in_features, size_t classes,
                              dpt_model_t **out)
{
    return dpt_model_create_shaped(spec, (dpt_shape_t){in_features, 1, 1}, classes, out);
}

dpt_status_t dpt_model_create_for_data(const char *spec, const dpt_dataset_t *ds, size_t classes,
                                       dpt_model_t **out)
{
    dpt_shape_t in;
    dpt_dataset_shape(ds, &in.c, &in.h, &in.w);
    return dpt_model_create_shaped(spec, in, classes, out);
}

dpt_status_t dpt_model_check_early(const char *spec, const char *data_spec)
{
    dpt_shape_t in;
    size_t classes;
    if (!dpt_dataset_spec_shape(data_spec, &in.c, &in.h, &in.w, &classes)) return DPT_OK;
    dpt_model_t *m = NULL;
    dpt_status_t s = dpt_model_create_shaped(spec, in, classes, &m);
    dpt_model_free(m);
    return s;
}

size_t dpt_model_save_text(const dpt_model_t *m, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s\n%zu\n%zu\n%zu %zu %zu\n", m->spec, dpt_shape_size(m->in),
                     m->classes, m->in.c, m->in.h, m->in.w);
    return n < 0 ? 0 : (size_t)n;
}

dpt_status_t dpt_model_load_text(const char *text, size_t n, dpt_model_t **out)
{
    char buf[DPT_MODEL_TEXT_MAX];
    if (n >= sizeof buf) return dpt_error(DPT_ERR_FORMAT, "model section too long");
    memcpy(buf, text, n);
    buf[n] = '\0';
    char *nl1 = strchr(buf, '\n'), *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    unsigned long long in, classes, c, h, w;
    char tail;
    if (!nl1 || !nl2 || sscanf(nl1 + 1, "%llu\n%llu\n", &in, &classes) != 2)
        return dpt_error(DPT_ERR_FORMAT, "malformed model section");
    *nl1 = '\0';
    char *nl3 = strchr(nl2 + 1, '\n');
    if (!nl3 || !nl3[1]) /* written before the graph model: a table of `in` features */
        return dpt_model_create(buf, (size_t)in, (size_t)classes, out);
    if (sscanf(nl3 + 1, "%llu %llu %llu\n%c", &c, &h, &w, &tail) != 3 || c * h * w != in ||
        c > in || h > in || w > in)
        return dpt_error(DPT_ERR_FORMAT, "malformed input shape in the model section");
    return dpt_model_create_shaped(buf, (dpt_shape_t){(size_t)c, (size_t)h, (size_t)w},
                                   (size_t)classes, out);
}

void dpt_model_free(dpt_model_t *m)
{
    free(m);
}

size_t dpt_model_param_count(const dpt_model_t *m)
{
    return m->n_params;
}
size_t dpt_model_trainable_count(const dpt_model_t *m)
{
    return m->n_trainable;
}
size_t dpt_model_weight_count(const dpt_model_t *m)
{
    return m->n_weights;
}
size_t dpt_model_tensor_count(const dpt_model_t *m)
{
    return m->n_tensors;
}
const dpt_tensor_info_t *dpt_model_tensor(const dpt_model_t *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}
const dpt_tensor_info_t *dpt_model_tensor_named(const dpt_model_t *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}
size_t dpt_model_in_features(const dpt_model_t *m)
{
    return dpt_shape_size(m->in);
}
dpt_shape_t dpt_model_input_shape(const dpt_model_t *m)
{
    return m->in;
}
size_t dpt_model_classes(const dpt_model_t *m)
{
    return m->classes;
}
const char *dpt_model_spec(const dpt_model_t *m)
{
    return m->spec;
}
const char *dpt_model_describe(const dpt_model_t *m)
{
    return m->describe;
}
const char *dpt_model_brief(const dpt_model_t *m)
{
    return m->brief;
}

static double node_flops(const dpt_node_t *n)
{
    return n->op->flops ? n->op->flops(n) : 0.0;
}

double dpt_model_forward_flops(const dpt_model_t *m)
{
    double f = 0;
    for (size_t i = 0; i < m->n_nodes; i++)
        f += node_flops(&m->nodes[i]);
    return f;
}

double dpt_model_train_flops(const dpt_model_t *m)
{
    /* forward, then per node a weight gradient (nodes with parameters) and an input gradient
     * (when its input needs one: the data needs none), each costing about a forward. */
    double f = dpt_model_forward_flops(m);
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        if (has_params(m, i)) f += node_flops(n);
        bool dx = false;
        for (size_t k = 0; k < n->n_in; k++)
            dx |= n->in[k] != DPT_NODE_INPUT && m->needs_grad[n->in[k]];
        if (dx) f += node_flops(n);
    }
    return f;
}

/* p[0..n) uniform in [-bound, bound). */
static void fill_uniform(float *p, size_t n, dpt_rng_t *r, double bound)
{
    for (size_t k = 0; k < n; k++)
        p[k] = (float)((dpt_rng_uniform(r) * 2 - 1) * bound);
}

static void init_tensor(const dpt_model_t *m, size_t i, float *params, uint64_t seed)
{
    const dpt_tensor_info_t *t = &m->tensors[i];
    float *p = params + t->offset;
    size_t n = t->rows * t->cols;
    dpt_rng_t r;
    /* One stream per tensor of a node, the first (the weight) on the node's own stream: the
     * weights of a layer do not change when another layer does, and a drawn bias is not a
     * copy of the first weights. */
    const dpt_node_t *node = &m->nodes[m->tensor_node[i]];
    uint64_t slot = 0;
    while (node->tensor[slot] != i)
        slot++;
    dpt_rng_seed(&r, seed, 1000 + m->tensor_node[i] + (slot << 32));
    switch (m->tensor_init[i]) {
    case DPT_INIT_ZERO:
        break; /* the buffer is zeroed */
    case DPT_INIT_ONE:
        for (size_t k = 0; k < n; k++)
            p[k] = 1.0f;
        break;
    case DPT_INIT_HE: {
        double std = sqrt(2.0 / (double)m->tensor_fan_in[i]);
        for (size_t k = 0; k < n; k++)
            p[k] = (float)(dpt_rng_normal(&r) * std);
        break;
    }
    case DPT_INIT_XAVIER:
        fill_uniform(p, n, &r, sqrt(6.0 / (double)(m->tensor_fan_in[i] + m->tensor_fan_out[i])));
        break;
    case DPT_INIT_TORCH:
        fill_uniform(p, n, &r, 1.0 / sqrt((double)m->tensor_fan_in[i]));
        break;
    }
}

void dpt_model_init_params(const dpt_model_t *m, float *params, uint64_t seed)
{
    memset(params, 0, m->n_params * sizeof *params);
    for (size_t i = 0; i < m->n_tensors; i++)
        init_tensor(m, i, params, seed);
}

size_t dpt_model_node_count(const dpt_model_t *m)
{
    return m->n_nodes;
}

void dpt_model_node_info(const dpt_model_t *m, size_t i, size_t rows, dpt_node_info_t *out)
{
    const dpt_node_t *n = &m->nodes[i];
    memset(out, 0, sizeof *out);
    out->name = n->name;
    out->kind = n->op->spec.name;
    out->out = n->out;
    for (size_t k = 0; k < n->n_tensors; k++) {
        const dpt_tensor_info_t *t = &m->tensors[n->tensor[k]];
        if (t->trainable) out->params += t->rows * t->cols;
    }
    out->flops = node_flops(n);
    out->weight_grad = has_params(m, i);
    for (size_t k = 0; k < n->n_in; k++)
        out->input_grad |= n->in[k] != DPT_NODE_INPUT && m->needs_grad[n->in[k]];
    if (n->op->gemm_shape) {
        out->has_gemm = 1;
        n->op->gemm_shape(n, rows, out->gemm);
    }
}

double dpt_model_narrow_gemm_share(const dpt_model_t *m)
{
    /* At a nominal 64 rows, so that training, evaluation and benchmarks of one model choose
     * the same kernel set (and so the same bits) whatever their batch or micro-batch. */
    double narrow = 0, all = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        if (!n->op->gemm_shape) continue;
        size_t mnk[3];
        (n->op->product_shape ? n->op->product_shape : n->op->gemm_shape)(n, 64, mnk);
        double f = node_flops(n);
        all += f;
        /* A short side of any of the three, K included: packing then costs as much as the
         * product, and BLIS's small-matrix path, which skips it, wins. */
        size_t side = mnk[0] < mnk[1] ? mnk[0] : mnk[1];
        if ((side < mnk[2] ? side : mnk[2]) < 64) narrow += f;
    }
    return all > 0 ? narrow / all : 0.0;
}

bool dpt_model_main_gemm(const dpt_model_t *m, size_t rows, size_t mnk[3])
{
    double best = -1;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        if (!n->op->gemm_shape || node_flops(n) <= best) continue;
        best = node_flops(n);
        n->op->gemm_shape(n, rows, mnk);
    }
    return best >= 0;
}

void dpt_model_print_summary(const dpt_model_t *m, void *file)
{
    FILE *f = file;
    fprintf(f, "%-10s %-8s %-14s %-12s %10s %10s\n", "node", "kind", "inputs", "output", "params",
            "MFLOP/smp");
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        char ins[64] = "", shape[32];
        for (size_t k = 0; k < n->n_in; k++) {
            size_t len = strlen(ins);
            snprintf(ins + len, sizeof ins - len, "%s%s", k ? "+" : "",
                     n->in[k] == DPT_NODE_INPUT ? "input" : m->nodes[n->in[k]].name);
        }
        snprintf(shape, sizeof shape, "%zux%zux%zu", n->out.c, n->out.h, n->out.w);
        size_t np = 0;
        for (size_t k = 0; k < n->n_tensors; k++) {
            const dpt_tensor_info_t *t = &m->tensors[n->tensor[k]];
            if (t->trainable) np += t->rows * t->cols;
        }
        fprintf(f, "%-10s %-8s %-14s %-12s %10zu %10.3f\n", n->name, n->op->spec.name, ins, shape,
                np, node_flops(n) / 1e6);
    }
    fprintf(f,
            "total: %zu nodes, %zu trainable parameters, %.2f MFLOP forward and %.2f MFLOP "
            "per training sample\n",
            m->n_nodes, m->n_weights, dpt_model_forward_flops(m) / 1e6,
            dpt_model_train_flops(m) / 1e6);
}
