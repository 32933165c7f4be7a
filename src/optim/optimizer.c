/* Owns the optimizer handle: spec parsing and validation, the one-block state, the
 * canonical description, and dispatch to the update rules (sgd.c, adam.c, rmsprop.c,
 * adagrad.c, lars_lamb.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "optim/optimizer_internal.h"
#include "core/fmt.h"
#include "core/spec.h"

static const dpt_opt_rule_t *const rules[] = {&dpt_opt_sgd,     &dpt_opt_adam,    &dpt_opt_adamw,
                                              &dpt_opt_rmsprop, &dpt_opt_adagrad, &dpt_opt_lars,
                                              &dpt_opt_lamb};
#define N_RULES (sizeof rules / sizeof rules[0])

static const dpt_spec_kind_t *const kinds[] = {
    &dpt_opt_sgd.spec,     &dpt_opt_adam.spec, &dpt_opt_adamw.spec, &dpt_opt_rmsprop.spec,
    &dpt_opt_adagrad.spec, &dpt_opt_lars.spec, &dpt_opt_lamb.spec};
static const dpt_spec_grammar_t grammar = {"optimizer", kinds, N_RULES, NULL, 1, 0};

const char *dpt_optimizer_names(void)
{
    return "sgd, adam, adamw, rmsprop, adagrad, lars, lamb";
}

/* The canonical "name:k=v,..." with every key, from the resolved values. */
static void describe(dpt_optimizer_t *o)
{
    size_t used = (size_t)snprintf(o->describe, sizeof o->describe, "%s", o->rule->spec.name);
    for (size_t k = 0; k < o->rule->n_keys && used < sizeof o->describe; k++) {
        char num[32];
        dpt_fmt_double(num, sizeof num, o->hp[k]);
        used += (size_t)snprintf(o->describe + used, sizeof o->describe - used, "%c%s=%s",
                                 k ? ',' : ':', o->rule->spec.keys[k].name, num);
    }
}

/* The state block and the tensor spans; sized once here so no step allocates. */
static dpt_status_t alloc_state(dpt_optimizer_t *o, const dpt_model_t *model)
{
    /* Only the trainable prefix has gradients and state; its tensors come first in the
     * table. */
    o->n = dpt_model_trainable_count(model);
    o->n_bufs = o->rule->buffers(o);
    o->n_tensors = 0;
    while (o->n_tensors < dpt_model_tensor_count(model) &&
           dpt_model_tensor(model, o->n_tensors)->trainable)
        o->n_tensors++;
    o->spans = calloc(o->n_tensors ? o->n_tensors : 1, sizeof *o->spans);
    o->ratio = calloc(o->n_tensors ? o->n_tensors : 1, sizeof *o->ratio);
    size_t floats = o->n_bufs * o->n;
    o->state = dpt_alloc_aligned((floats ? floats : 1) * sizeof(float));
    if (!o->spans || !o->ratio || !o->state)
        return dpt_error(DPT_ERR_NOMEM, "out of memory for %zu x %zu floats of optimizer state",
                         o->n_bufs, o->n);
    memset(o->state, 0, o->n_bufs * o->n * sizeof(float));
    for (size_t b = 0; b < o->n_bufs; b++)
        o->buf[b] = o->state + b * o->n;
    for (size_t i = 0; i < o->n_tensors; i++) {
        const dpt_tensor_info_t *t = dpt_model_tensor(model, i);
        o->spans[i] =
            (dpt_opt_span_t){t->offset, t->offset + t->rows * t->cols, t->is_bias, t->role, 0};
        o->ratio[i] = 1.0;
    }
    if (o->rule->init_state) o->rule->init_state(o);
    return DPT_OK;
}

dpt_status_t dpt_optimizer_create(const char *spec, const dpt_model_t *model, dpt_optimizer_t **out)
{
    if (!spec || !*spec) spec = "sgd";
    dpt_spec_t *parsed = malloc(sizeof *parsed);
    dpt_optimizer_t *o = calloc(1, sizeof *o);
    if (!o || !parsed) {
        free(o);
        free(parsed);
        return dpt_error(DPT_ERR_NOMEM, "out of memory creating the optimizer");
    }
    dpt_status_t s = dpt_spec_parse(&grammar, spec, parsed);
    if (s == DPT_OK) {
        o->rule = rules[parsed->part[0].kind_index];
        for (size_t k = 0; k < o->rule->n_keys; k++)
            o->hp[k] = dpt_spec_real_at(&parsed->part[0], k);
    }
    free(parsed);
    if (s == DPT_OK && o->rule->check) s = o->rule->check(o);
    if (s == DPT_OK) s = alloc_state(o, model);
    if (s != DPT_OK) {
        dpt_optimizer_free(o);
        return s;
    }
    describe(o);
    *out = o;
    return DPT_OK;
}

void dpt_optimizer_free(dpt_optimizer_t *o)
{
    if (!o) return;
    dpt_free_aligned(o->state);
    free(o->spans);
    free(o->ratio);
    free(o);
}

const char *dpt_optimizer_describe(const dpt_optimizer_t *o)
{
    return o->describe;
}

double dpt_optimizer_momentum(const dpt_optimizer_t *o)
{
    return o->rule->momentum_key >= 0 ? o->hp[o->rule->momentum_key] : 0.0;
}

float *dpt_optimizer_state(dpt_optimizer_t *o, size_t *n_floats)
{
    *n_floats = o->n_bufs * o->n;
    return o->state;
}

dpt_optim_norms_t dpt_optimizer_norms(const dpt_optimizer_t *o)
{
    return o->rule->norms;
}

void dpt_optimizer_update(dpt_optimizer_t *o, float *params, const float *grad, size_t lo,
                          size_t hi, const dpt_optim_step_t *st)
{
    if (!o->any_no_decay) {
        o->rule->update(o, params, grad, lo, hi, st);
        return;
    }
    /* Cut [lo, hi) at the edges of excluded tensors; each piece is updated with its own
     * decay. Element-wise rules give the same result for any cut. */
    dpt_optim_step_t piece = *st;
    size_t pos = lo;
    for (size_t i = 0; i < o->n_tensors && pos < hi; i++) {
        const dpt_opt_span_t *sp = &o->spans[i];
        if (!sp->no_decay || sp->hi <= pos) continue;
        if (sp->lo >= hi) break;
        size_t a = sp->lo > pos ? sp->lo : pos, b = sp->hi < hi ? sp->hi : hi;
        piece.no_decay = 0;
        if (a > pos) o->rule->update(o, params, grad, pos, a, &piece);
        piece.no_decay = 1;
        o->rule->update(o, params, grad, a, b, &piece);
        pos = b;
    }
    piece.no_decay = 0;
    if (pos < hi) o->rule->update(o, params, grad, pos, hi, &piece);
}

/* --no-decay: "none", or tensor groups joined by '+'. */
static const dpt_spec_kind_t no_decay_none = {"none", NULL}, no_decay_bias = {"bias", NULL},
                             no_decay_bn = {"bn", NULL};
static const dpt_spec_kind_t *const no_decay_kinds[] = {&no_decay_none, &no_decay_bias,
                                                        &no_decay_bn};
static const dpt_spec_grammar_t no_decay_grammar = {"--no-decay", no_decay_kinds, 3, NULL, 2, 0};

dpt_status_t dpt_optimizer_exclude_decay(dpt_optimizer_t *o, const char *list)
{
    dpt_spec_t *parsed = malloc(sizeof *parsed);
    if (!parsed) return dpt_error(DPT_ERR_NOMEM, "out of memory parsing --no-decay");
    dpt_status_t s = dpt_spec_parse(&no_decay_grammar, list, parsed);
    int bias = 0, bn = 0, none = 0;
    for (size_t i = 0; s == DPT_OK && i < parsed->n; i++) {
        const dpt_spec_kind_t *k = parsed->part[i].kind;
        none |= k == &no_decay_none;
        bias |= k == &no_decay_bias;
        bn |= k == &no_decay_bn;
    }
    free(parsed);
    if (s != DPT_OK) return s;
    if (none && (bias || bn))
        return dpt_error(DPT_ERR_INVALID_ARG, "--no-decay: 'none' goes alone, got '%s'", list);
    o->any_no_decay = 0;
    for (size_t i = 0; i < o->n_tensors; i++) {
        dpt_opt_span_t *sp = &o->spans[i];
        sp->no_decay = (bias && sp->role == DPT_TENSOR_BIAS) || (bn && sp->role == DPT_TENSOR_NORM);
        o->any_no_decay |= sp->no_decay;
    }
    describe(o);
    if (bias || bn) {
        size_t used = strlen(o->describe);
        snprintf(o->describe + used, sizeof o->describe - used, ",no_decay=%s%s%s",
                 bias ? "bias" : "", bias && bn ? "+" : "", bn ? "bn" : "");
    }
    return DPT_OK;
}

void dpt_optimizer_direction(dpt_optimizer_t *o, const float *params, float *grad, size_t lo,
                             size_t hi, const dpt_optim_step_t *st)
{
    if (o->rule->direction) o->rule->direction(o, params, grad, lo, hi, st);
}

void dpt_optimizer_set_norms(dpt_optimizer_t *o, const double *param_sq, const double *d_sq)
{
    if (o->rule->set_norms) o->rule->set_norms(o, param_sq, d_sq);
}

double dpt_optimizer_trust_ratio(const dpt_optimizer_t *o, size_t i)
{
    return i < o->n_tensors ? o->ratio[i] : 1.0;
}

/* Sum of squares of x[lo, hi) in double. */
static double sum_sq(const float *x, size_t lo, size_t hi)
{
    double s = 0;
    for (size_t i = lo; i < hi; i++)
        s += (double)x[i] * x[i];
    return s;
}

dpt_status_t dpt_optimizer_step(dpt_optimizer_t *o, float *params, float *grad,
                                const dpt_optim_step_t *st)
{
    if (o->rule->norms == DPT_OPTIM_NORMS_NONE) {
        dpt_optimizer_update(o, params, grad, 0, o->n, st);
        return DPT_OK;
    }
    /* Not a training-step path (the trainer keeps its own sums), so it may allocate. */
    double *w = calloc(o->n_tensors + 1, sizeof *w), *d = calloc(o->n_tensors + 1, sizeof *d);
    if (!w || !d) {
        free(w), free(d);
        return dpt_error(DPT_ERR_NOMEM, "out of memory for %zu tensor norms", o->n_tensors);
    }
    dpt_optimizer_direction(o, params, grad, 0, o->n, st);
    for (size_t i = 0; i < o->n_tensors; i++) {
        w[i] = sum_sq(params, o->spans[i].lo, o->spans[i].hi);
        d[i] = sum_sq(grad, o->spans[i].lo, o->spans[i].hi);
    }
    dpt_optimizer_set_norms(o, w, d);
    dpt_optimizer_update(o, params, grad, 0, o->n, st);
    free(w), free(d);
    return DPT_OK;
}
