/* Owns RMSprop (torch.optim.RMSprop semantics):
 *   g <- g + weight_decay * p
 *   v <- alpha * v + (1 - alpha) * g^2
 *   centered: a <- alpha * a + (1 - alpha) * g;  d = sqrt(v - a^2) + eps
 *   else:     d = sqrt(v) + eps
 *   momentum > 0: b <- momentum * b + g / d;  p <- p - lr * b
 *   else:         p <- p - lr * g / d
 * State: v, b, a (b and a are always allocated, so a schedule may turn momentum on and the
 * checkpoint size does not depend on the values). */
#include <math.h>

#include "optim/optimizer_internal.h"

enum { K_ALPHA, K_EPS, K_MOMENTUM, K_CENTERED, K_WEIGHT_DECAY };
static const dpt_spec_key_t keys[] = {
    DPT_SPEC_R("alpha", "0.99", 0, 1, 0),       DPT_SPEC_R("eps", "1e-8", 0, 1e3, 0),
    DPT_SPEC_R("momentum", "0", 0, 1, 0),       DPT_SPEC_B("centered", "0"),
    DPT_SPEC_R("weight_decay", "0", 0, 1e3, 0), DPT_SPEC_END,
};

static size_t buffers(const dpt_optimizer_t *o)
{
    return 3;
}

static void update(dpt_optimizer_t *o, float *restrict p, const float *restrict grad, size_t lo,
                   size_t hi, const dpt_optim_step_t *st)
{
    const float lr = (float)st->lr, alpha = (float)o->hp[K_ALPHA], eps = (float)o->hp[K_EPS];
    const float nalpha = (float)(1.0 - o->hp[K_ALPHA]); /* rounded once, as in torch */
    const float wd = st->no_decay ? 0.0f : (float)o->hp[K_WEIGHT_DECAY],
                mom = (float)dpt_opt_momentum(o, st);
    const int centered = o->hp[K_CENTERED] != 0;
    float *restrict v = o->buf[0], *restrict b = o->buf[1], *restrict a = o->buf[2];
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i] + wd * p[i];
        v[i] = alpha * v[i] + nalpha * g * g;
        float var = v[i];
        if (centered) {
            a[i] = alpha * a[i] + nalpha * g;
            var -= a[i] * a[i];
        }
        float step = g / (sqrtf(var) + eps);
        if (mom > 0.0f) step = b[i] = mom * b[i] + step;
        p[i] -= lr * step;
    }
}

const dpt_opt_rule_t dpt_opt_rmsprop = {
    .spec = {"rmsprop", keys},
    .n_keys = sizeof keys / sizeof keys[0] - 1,
    .momentum_key = K_MOMENTUM,
    .norms = DPT_OPTIM_NORMS_NONE,
    .buffers = buffers,
    .update = update,
};
