/* Owns Adagrad (torch.optim.Adagrad semantics), step t >= 1:
 *   clr = lr / (1 + (t - 1) * lr_decay)
 *   g <- g + weight_decay * p
 *   s <- s + g^2                      (s starts at initial_accumulator_value)
 *   p <- p - clr * g / (sqrt(s) + eps)
 * State: s. */
#include <math.h>

#include "optim/optimizer_internal.h"

enum { K_LR_DECAY, K_INIT, K_EPS, K_WEIGHT_DECAY };
static const dpt_spec_key_t keys[] = {
    DPT_SPEC_R("lr_decay", "0", 0, 1e6, 0),
    DPT_SPEC_R("initial_accumulator_value", "0", 0, 1e6, 0),
    DPT_SPEC_R("eps", "1e-10", 0, 1e3, 0),
    DPT_SPEC_R("weight_decay", "0", 0, 1e3, 0),
    DPT_SPEC_END,
};

static size_t buffers(const dpt_optimizer_t *o)
{
    return 1;
}

static void init_state(dpt_optimizer_t *o)
{
    const float v = (float)o->hp[K_INIT];
    for (size_t i = 0; i < o->n; i++)
        o->buf[0][i] = v;
}

static void update(dpt_optimizer_t *o, float *restrict p, const float *restrict grad, size_t lo,
                   size_t hi, const dpt_optim_step_t *st)
{
    const double t = (double)(st->t ? st->t : 1);
    const float clr = (float)(st->lr / (1.0 + (t - 1.0) * o->hp[K_LR_DECAY]));
    const float eps = (float)o->hp[K_EPS], wd = st->no_decay ? 0.0f : (float)o->hp[K_WEIGHT_DECAY];
    float *restrict s = o->buf[0];
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i] + wd * p[i];
        s[i] += g * g;
        p[i] -= clr * g / (sqrtf(s[i]) + eps);
    }
}

const dpt_opt_rule_t dpt_opt_adagrad = {
    .spec = {"adagrad", keys},
    .n_keys = sizeof keys / sizeof keys[0] - 1,
    .momentum_key = -1,
    .norms = DPT_OPTIM_NORMS_NONE,
    .buffers = buffers,
    .init_state = init_state,
    .update = update,
};
