/* Owns learning-rate scaling with the global batch size (Goyal et al. 2017, "Accurate, Large
 * Minibatch SGD"): linear (lr * batch / ref_batch) or square-root (lr * sqrt(batch /
 * ref_batch), the rule often preferred for adaptive optimizers). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/optimizer.h"

/* Parses the optional ":ref_batch=B" tail into *ref. */
static dpt_status_t parse_ref(const char *args, double *ref)
{
    if (strncmp(args, "ref_batch=", 10) != 0) {
        size_t klen = strcspn(args, "=");
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "lr scaling: unknown key '%.*s'; valid keys: ref_batch",
                         (int)(klen > 64 ? 64 : klen), args);
    }
    const char *text = args + 10;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || end == text || !isfinite(v))
        return dpt_error(DPT_ERR_INVALID_ARG, "lr scaling: ref_batch='%s' is not a number", text);
    if (v < 1 || v > 1048576 || v != floor(v))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "lr scaling: ref_batch=%g must be a whole number in [1, 1048576]", v);
    *ref = v;
    return DPT_OK;
}

dpt_status_t dpt_lr_scaling_apply(const char *spec, double base_lr, size_t batch_size,
                                  double *effective_lr)
{
    if (!spec || !*spec || strcmp(spec, "none") == 0) {
        *effective_lr = base_lr;
        return DPT_OK;
    }
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    int linear = len == 6 && strncmp(spec, "linear", 6) == 0;
    int sq = len == 4 && strncmp(spec, "sqrt", 4) == 0;
    if (!linear && !sq)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "unknown lr scaling '%.*s'; valid: none, linear, sqrt",
                         (int)(len > 64 ? 64 : len), spec);
    double ref = 256;
    if (colon) {
        dpt_status_t s = parse_ref(colon + 1, &ref);
        if (s != DPT_OK) return s;
    }
    double factor = (double)batch_size / ref;
    *effective_lr = base_lr * (linear ? factor : sqrt(factor));
    return DPT_OK;
}
