/* Owns the model: spec parsing, the flat parameter layout table, initialisation, and the
 * forward/backward walk over the layer vtables. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "nn/model_internal.h"

#define VALID_LAYERS "dense:N, relu, tanh, sigmoid, gelu, dropout:P"

static dpt_status_t parse_width(const char *item, const char *arg, size_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || *end || end == arg || v < 1 || v > DPT_MAX_WIDTH)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: '%s': width must be an integer in [1, %d]", item,
                         DPT_MAX_WIDTH);
    *out = (size_t)v;
    return DPT_OK;
}

/* "N" or "N:he" / "N:xavier": width and weight initialisation. */
static dpt_status_t parse_dense_arg(const char *item, char *arg, dpt_layer_t *l)
{
    char *init = strchr(arg, ':');
    if (init) {
        *init++ = '\0';
        if (strcmp(init, "he") == 0)
            l->init_he = true;
        else if (strcmp(init, "xavier") != 0)
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "model spec: 'dense:%s:%s': initialisation must be he or xavier", arg,
                             init);
    }
    return parse_width(item, arg, &l->out);
}

static dpt_status_t parse_prob(const char *item, const char *arg, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || *end || end == arg || !(v >= 0.0 && v < 1.0))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: '%s': dropout probability must be in [0, 1)", item);
    *out = (float)v;
    return DPT_OK;
}

/* Appends one layer parsed from `item` ("dense:256", "relu", ...) taking `width` inputs. */
static dpt_status_t add_layer(dpt_model_t *m, char *item, size_t *width)
{
    if (m->n_layers == DPT_MAX_LAYERS)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: more than %d layers", DPT_MAX_LAYERS);
    char *colon = strchr(item, ':');
    char *arg = NULL;
    if (colon) *colon = '\0', arg = colon + 1;
    dpt_layer_t *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    l->index = (uint32_t)m->n_layers;
    l->in = l->out = *width;
    static const struct {
        const char *name;
        dpt_layer_kind_t kind;
        const dpt_layer_ops_t *ops;
        int needs_arg;
    } kinds[] = {
        {"dense", DPT_LAYER_DENSE, &dpt_dense_ops, 1},
        {"relu", DPT_LAYER_RELU, &dpt_relu_ops, 0},
        {"tanh", DPT_LAYER_TANH, &dpt_tanh_ops, 0},
        {"sigmoid", DPT_LAYER_SIGMOID, &dpt_sigmoid_ops, 0},
        {"gelu", DPT_LAYER_GELU, &dpt_gelu_ops, 0},
        {"dropout", DPT_LAYER_DROPOUT, &dpt_dropout_ops, 1},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (strcmp(item, kinds[k].name) != 0) continue;
        if (kinds[k].needs_arg && !arg)
            return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s' needs an argument (%s:N)", item,
                             item);
        if (!kinds[k].needs_arg && arg)
            return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s' takes no argument", item);
        l->kind = kinds[k].kind;
        l->ops = kinds[k].ops;
        dpt_status_t s = DPT_OK;
        if (l->kind == DPT_LAYER_DENSE) s = parse_dense_arg(item, arg, l);
        if (l->kind == DPT_LAYER_DROPOUT) s = parse_prob(item, arg, &l->p);
        if (s != DPT_OK) return s;
        *width = l->out;
        m->n_layers++;
        return DPT_OK;
    }
    return dpt_error(DPT_ERR_INVALID_ARG, "model spec: unknown layer '%s'; valid layers: %s", item,
                     VALID_LAYERS);
}

static void add_tensor(dpt_model_t *m, const char *fmt, size_t layer_no, size_t rows, size_t cols,
                       int is_bias)
{
    dpt_tensor_info_t *t = &m->tensors[m->n_tensors];
    snprintf(m->tensor_names[m->n_tensors], sizeof m->tensor_names[0], fmt, layer_no);
    t->name = m->tensor_names[m->n_tensors];
    t->offset = m->n_params;
    t->rows = rows;
    t->cols = cols;
    t->is_bias = is_bias;
    /* Each tensor starts 64-byte aligned inside the one parameter buffer. */
    m->n_params += dpt_round_floats(rows * cols);
    m->n_tensors++;
}

static void build_layout(dpt_model_t *m)
{
    size_t dense_no = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        dpt_layer_t *l = &m->layers[i];
        if (l->kind != DPT_LAYER_DENSE) continue;
        l->w_off = m->n_params;
        add_tensor(m, "dense%zu.weight", dense_no, l->in, l->out, 0);
        l->b_off = m->n_params;
        add_tensor(m, "dense%zu.bias", dense_no, 1, l->out, 1);
        dense_no++;
    }
}

static dpt_status_t parse_spec(dpt_model_t *m, const char *spec)
{
    if (!spec || !*spec) return dpt_error(DPT_ERR_INVALID_ARG, "model spec is empty");
    if (strlen(spec) > DPT_MAX_SPEC)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec longer than %d characters", DPT_MAX_SPEC);
    char buf[DPT_MAX_SPEC + 1];
    snprintf(buf, sizeof buf, "%s", spec);
    size_t width = m->in_features;
    m->max_width = width;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        dpt_status_t s = add_layer(m, item, &width);
        if (s != DPT_OK) return s;
        if (width > m->max_width) m->max_width = width;
    }
    if (m->n_layers == 0) return dpt_error(DPT_ERR_INVALID_ARG, "model spec has no layers");
    const dpt_layer_t *last = &m->layers[m->n_layers - 1];
    if (last->kind != DPT_LAYER_DENSE || last->out != m->classes)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: the last layer must be dense:%zu to match the %zu "
                         "classes of the data",
                         m->classes, m->classes);
    return DPT_OK;
}

dpt_status_t dpt_model_create(const char *spec, size_t in_features, size_t classes,
                              dpt_model_t **out)
{
    if (in_features == 0 || classes < 2)
        return dpt_error(DPT_ERR_INVALID_ARG, "model needs >= 1 input feature and >= 2 classes");
    dpt_model_t *m = calloc(1, sizeof *m);
    if (!m) return dpt_error(DPT_ERR_NOMEM, "out of memory creating the model");
    m->in_features = in_features;
    m->classes = classes;
    dpt_status_t s = parse_spec(m, spec);
    if (s != DPT_OK) {
        free(m);
        return s;
    }
    build_layout(m);
    if (m->n_params > DPT_MAX_PARAMS) {
        s = dpt_error(DPT_ERR_LIMIT,
                      "model spec: %zu parameters (with alignment) exceed the cap of %zu; "
                      "make the layers narrower",
                      m->n_params, (size_t)DPT_MAX_PARAMS);
        free(m);
        return s;
    }
    snprintf(m->describe, sizeof m->describe, "%zu -> %s", in_features, spec);
    *out = m;
    return DPT_OK;
}

void dpt_model_free(dpt_model_t *m)
{
    free(m);
}

size_t dpt_model_param_count(const dpt_model_t *m)
{
    return m->n_params;
}
size_t dpt_model_tensor_count(const dpt_model_t *m)
{
    return m->n_tensors;
}
const dpt_tensor_info_t *dpt_model_tensor(const dpt_model_t *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}
size_t dpt_model_in_features(const dpt_model_t *m)
{
    return m->in_features;
}
size_t dpt_model_classes(const dpt_model_t *m)
{
    return m->classes;
}
const char *dpt_model_describe(const dpt_model_t *m)
{
    return m->describe;
}

double dpt_model_forward_flops(const dpt_model_t *m)
{
    double f = 0;
    for (size_t i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == DPT_LAYER_DENSE)
            f += 2.0 * (double)m->layers[i].in * (double)m->layers[i].out;
    return f;
}

double dpt_model_train_flops(const dpt_model_t *m)
{
    /* forward + weight gradient for every dense layer, input gradient for all but the first
     * layer (the data needs none). */
    double f = 2.0 * dpt_model_forward_flops(m);
    for (size_t i = 1; i < m->n_layers; i++)
        if (m->layers[i].kind == DPT_LAYER_DENSE)
            f += 2.0 * (double)m->layers[i].in * (double)m->layers[i].out;
    return f;
}

void dpt_model_init_params(const dpt_model_t *m, float *params, uint64_t seed)
{
    memset(params, 0, m->n_params * sizeof *params);
    for (size_t i = 0; i < m->n_layers; i++) {
        const dpt_layer_t *l = &m->layers[i];
        if (l->kind != DPT_LAYER_DENSE) continue;
        dpt_rng_t r;
        dpt_rng_seed(&r, seed, 1000 + i);
        float *w = params + l->w_off;
        size_t n = l->in * l->out;
        if (l->init_he) {
            double std = sqrt(2.0 / (double)l->in);
            for (size_t k = 0; k < n; k++)
                w[k] = (float)(dpt_rng_normal(&r) * std);
        } else {
            double a = sqrt(6.0 / (double)(l->in + l->out));
            for (size_t k = 0; k < n; k++)
                w[k] = (float)((dpt_rng_uniform(&r) * 2 - 1) * a);
        }
    }
}

void dpt_model_forward(const dpt_model_t *m, const float *params, float *const *acts, size_t rows,
                       const dpt_step_ctx_t *ctx)
{
    for (size_t i = 0; i < m->n_layers; i++)
        m->layers[i].ops->forward(&m->layers[i], params, acts[i], acts[i + 1], rows, ctx);
}

void dpt_model_backward(const dpt_model_t *m, const float *params, float *const *acts, float *dtop,
                        float *scratch, float *grads, size_t rows, const dpt_step_ctx_t *ctx)
{
    float *dy = dtop, *dx = scratch;
    for (size_t i = m->n_layers; i-- > 0;) {
        const dpt_layer_t *l = &m->layers[i];
        /* The input gradient of the first layer is never needed: a parameter-free first
         * layer has nothing left to compute. */
        if (i == 0 && l->kind != DPT_LAYER_DENSE) break;
        float *dx_out = i > 0 ? dx : NULL;
        l->ops->backward(l, params, acts[i], acts[i + 1], dy, dx_out, grads, rows, ctx);
        float *t = dy;
        dy = dx, dx = t;
    }
}
