/* Owns SGD with momentum (torch.optim.SGD semantics):
 *   g <- g + weight_decay * p
 *   b <- g                                   at the first update
 *   b <- momentum * b + (1 - dampening) * g  afterwards
 *   g <- g + momentum * b  (nesterov)  or  g <- b
 *   p <- p - lr * g
 * State: one buffer b, kept even at momentum 0 because a schedule may cycle momentum on. */
#include <stdbool.h>

#include "optim/optimizer_internal.h"

enum { K_MOMENTUM, K_DAMPENING, K_WEIGHT_DECAY, K_NESTEROV };
static const dpt_spec_key_t keys[] = {
    DPT_SPEC_R("momentum", "0", 0, 1, 0),
    DPT_SPEC_R("dampening", "0", 0, 1, 0),
    DPT_SPEC_R("weight_decay", "0", 0, 1e3, 0),
    DPT_SPEC_B("nesterov", "0"),
    DPT_SPEC_END,
};

static dpt_status_t check(const dpt_optimizer_t *o)
{
    if (o->hp[K_NESTEROV] != 0 && (o->hp[K_MOMENTUM] <= 0 || o->hp[K_DAMPENING] != 0))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "optimizer sgd: nesterov=1 needs momentum > 0 and dampening = 0");
    return DPT_OK;
}

static size_t buffers(const dpt_optimizer_t *o)
{
    return 1;
}

static void update(dpt_optimizer_t *o, float *restrict params, const float *restrict grad,
                   size_t lo, size_t hi, const dpt_optim_step_t *st)
{
    const float lr = (float)st->lr, wd = st->no_decay ? 0.0f : (float)o->hp[K_WEIGHT_DECAY];
    const float mom = (float)dpt_opt_momentum(o, st);
    const float damp = 1.0f - (float)o->hp[K_DAMPENING];
    const bool nesterov = o->hp[K_NESTEROV] != 0;
    float *restrict b = o->buf[0];
    if (mom == 0.0f) {
        for (size_t i = lo; i < hi; i++)
            params[i] -= lr * (grad[i] + wd * params[i]);
        return;
    }
    const bool first = st->t <= 1;
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i] + wd * params[i];
        float v = first ? g : mom * b[i] + damp * g;
        b[i] = v;
        params[i] -= lr * (nesterov ? g + mom * v : v);
    }
}

const dpt_opt_rule_t dpt_opt_sgd = {
    .spec = {"sgd", keys},
    .n_keys = sizeof keys / sizeof keys[0] - 1,
    .momentum_key = K_MOMENTUM,
    .norms = DPT_OPTIM_NORMS_NONE,
    .check = check,
    .buffers = buffers,
    .update = update,
};
