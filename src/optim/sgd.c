/* Owns the optimizer handle and SGD with momentum (torch.optim.SGD semantics):
 *   g <- g + weight_decay * p
 *   b <- g                                   at the first update
 *   b <- momentum * b + (1 - dampening) * g  afterwards
 *   g <- g + momentum * b  (nesterov)  or  g <- b
 *   p <- p - lr * g */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "dptrain/optimizer.h"

struct dpt_optimizer {
    double momentum, dampening, weight_decay;
    int nesterov;
    size_t n;
    float *buf; /* momentum buffer, parameter layout */
    char describe[256];
};

typedef struct {
    const char *key;
    double *dst;
    double min, max;
} opt_key_t;

static dpt_status_t parse_keys(const char *name, const char *args, opt_key_t *keys,
                               size_t nkeys, const char *valid)
{
    char buf[512];
    if (strlen(args) >= sizeof buf)
        return dpt_error(DPT_ERR_INVALID_ARG, "optimizer spec too long");
    snprintf(buf, sizeof buf, "%s", args);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return dpt_error(DPT_ERR_INVALID_ARG, "optimizer %s: '%s' is not key=value", name,
                             kv);
        *eq = '\0';
        size_t k = 0;
        while (k < nkeys && strcmp(keys[k].key, kv) != 0) k++;
        if (k == nkeys)
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "optimizer %s: unknown key '%s'; valid keys: %s", name, kv, valid);
        char *end;
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (errno || *end || end == eq + 1 || !isfinite(v))
            return dpt_error(DPT_ERR_INVALID_ARG, "optimizer %s: %s='%s' is not a number",
                             name, kv, eq + 1);
        if (v < keys[k].min || v > keys[k].max)
            return dpt_error(DPT_ERR_INVALID_ARG, "optimizer %s: %s=%g outside [%g, %g]",
                             name, kv, v, keys[k].min, keys[k].max);
        *keys[k].dst = v;
    }
    return DPT_OK;
}

dpt_status_t dpt_optimizer_create(const char *spec, const dpt_model_t *model,
                                  dpt_optimizer_t **out)
{
    if (!spec || !*spec) spec = "sgd";
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (name_len != 3 || strncmp(spec, "sgd", 3) != 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "unknown optimizer '%.*s'; valid optimizers: sgd",
                         (int)name_len, spec);
    dpt_optimizer_t *o = calloc(1, sizeof *o);
    if (!o) return dpt_error(DPT_ERR_NOMEM, "out of memory creating the optimizer");
    double nesterov = 0;
    opt_key_t keys[] = {
        {"momentum", &o->momentum, 0, 1},
        {"dampening", &o->dampening, 0, 1},
        {"weight_decay", &o->weight_decay, 0, 1e3},
        {"nesterov", &nesterov, 0, 1},
    };
    dpt_status_t s = colon ? parse_keys("sgd", colon + 1, keys, 4,
                                        "momentum, dampening, weight_decay, nesterov")
                           : DPT_OK;
    if (s == DPT_OK && nesterov != 0 && (o->momentum <= 0 || o->dampening != 0))
        s = dpt_error(DPT_ERR_INVALID_ARG,
                      "optimizer sgd: nesterov=1 needs momentum > 0 and dampening = 0");
    if (s != DPT_OK) {
        free(o);
        return s;
    }
    o->nesterov = nesterov != 0;
    o->n = dpt_model_param_count(model);
    o->buf = dpt_alloc_aligned(o->n * sizeof *o->buf);
    if (!o->buf) {
        free(o);
        return dpt_error(DPT_ERR_NOMEM, "out of memory for optimizer state");
    }
    snprintf(o->describe, sizeof o->describe,
             "sgd:momentum=%g,dampening=%g,weight_decay=%g,nesterov=%d", o->momentum,
             o->dampening, o->weight_decay, o->nesterov);
    *out = o;
    return DPT_OK;
}

void dpt_optimizer_free(dpt_optimizer_t *o)
{
    if (!o) return;
    dpt_free_aligned(o->buf);
    free(o);
}

const char *dpt_optimizer_describe(const dpt_optimizer_t *o)
{
    return o->describe;
}

double dpt_optimizer_momentum(const dpt_optimizer_t *o)
{
    return o->momentum;
}

float *dpt_optimizer_state(dpt_optimizer_t *o, size_t *n_floats)
{
    *n_floats = o->n;
    return o->buf;
}

void dpt_optimizer_update(dpt_optimizer_t *o, float *restrict params,
                          const float *restrict grad, size_t lo, size_t hi,
                          const dpt_optim_step_t *st)
{
    const float lr = (float)st->lr, wd = (float)o->weight_decay;
    const float mom = (float)(st->momentum >= 0 ? st->momentum : o->momentum);
    const float damp = 1.0f - (float)o->dampening;
    float *restrict b = o->buf;
    if (mom == 0.0f) {
        for (size_t i = lo; i < hi; i++) params[i] -= lr * (grad[i] + wd * params[i]);
        return;
    }
    const bool first = st->t <= 1;
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i] + wd * params[i];
        float v = first ? g : mom * b[i] + damp * g;
        b[i] = v;
        params[i] -= lr * (o->nesterov ? g + mom * v : v);
    }
}
