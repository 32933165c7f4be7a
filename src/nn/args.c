/* Owns the reading of one layer item's arguments (positional values and key=value options,
 * split at ':' by the graph parser) with range checks and one set of error messages. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"

static dpt_status_t parse_size(const dpt_layer_args_t *a, const char *what, const char *text,
                               size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < (long long)lo || (unsigned long long)v > hi)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: '%s': %s must be an integer in [%zu, %zu]", a->item, what, lo,
                         hi);
    *out = (size_t)v;
    return DPT_OK;
}

dpt_status_t dpt_args_pos_size(const dpt_layer_args_t *a, size_t i, const char *what, size_t lo,
                               size_t hi, size_t *out)
{
    if (i >= a->n_pos)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s': missing %s", a->item, what);
    return parse_size(a, what, a->pos[i], lo, hi, out);
}

static const char *take_opt(dpt_layer_args_t *a, const char *key)
{
    for (size_t i = 0; i < a->n_opt; i++)
        if (strcmp(a->key[i], key) == 0) {
            a->used[i] = true;
            return a->val[i];
        }
    return NULL;
}

dpt_status_t dpt_args_opt_size(dpt_layer_args_t *a, const char *key, size_t lo, size_t hi,
                               size_t *out)
{
    const char *v = take_opt(a, key);
    return v ? parse_size(a, key, v, lo, hi, out) : DPT_OK;
}

dpt_status_t dpt_args_opt_real(dpt_layer_args_t *a, const char *key, double lo, double hi,
                               double *out)
{
    const char *v = take_opt(a, key);
    if (!v) return DPT_OK;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || end == v || !isfinite(d) || !(d >= lo && d < hi))
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s': %s must be a number in [%g, %g)",
                         a->item, key, lo, hi);
    *out = d;
    return DPT_OK;
}

dpt_status_t dpt_args_finish(const dpt_layer_args_t *a, size_t max_pos, const char *valid)
{
    if (a->n_pos > 0 && max_pos == 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s' takes no value; usage: %s", a->item,
                         valid);
    if (a->n_pos > max_pos)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: '%s': too many values (%zu, at most %zu); usage: %s", a->item,
                         a->n_pos, max_pos, valid);
    for (size_t i = 0; i < a->n_opt; i++) {
        if (a->used[i]) continue;
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->key[j], a->key[i]) == 0)
                return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s': option '%s' given twice",
                                 a->item, a->key[i]);
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: '%s': unknown option '%s'; usage: %s",
                         a->item, a->key[i], valid);
    }
    return DPT_OK;
}

dpt_status_t dpt_op_parse_none(dpt_node_t *n, dpt_layer_args_t *a)
{
    return dpt_args_finish(a, 0, n->op->usage);
}

dpt_status_t dpt_op_infer_same(dpt_node_t *n)
{
    n->out = n->in_shape[0];
    return DPT_OK;
}
