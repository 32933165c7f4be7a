/* Owns Adam and AdamW (torch.optim.Adam / AdamW semantics), step t >= 1:
 *   adam:  g <- g + weight_decay * p            (L2 penalty in the gradient)
 *   adamw: p <- p * (1 - lr * weight_decay)     (decoupled decay, before the step)
 *   m <- beta1 * m + (1 - beta1) * g
 *   v <- beta2 * v + (1 - beta2) * g^2
 *   amsgrad: vmax <- max(vmax, v), and vmax replaces v below
 *   p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * State: m, v (and vmax with amsgrad=1), in that order. */
#include <math.h>

#include "optim/optimizer_internal.h"

enum { K_BETA1, K_BETA2, K_EPS, K_WEIGHT_DECAY, K_AMSGRAD };
static const dpt_spec_key_t adam_keys[] = {
    DPT_SPEC_R("beta1", "0.9", 0, 1, DPT_SPEC_HI_OPEN),
    DPT_SPEC_R("beta2", "0.999", 0, 1, DPT_SPEC_HI_OPEN),
    DPT_SPEC_R("eps", "1e-8", 0, 1e3, 0),
    DPT_SPEC_R("weight_decay", "0", 0, 1e3, 0),
    DPT_SPEC_B("amsgrad", "0"),
    DPT_SPEC_END,
};
static const dpt_spec_key_t adamw_keys[] = {
    DPT_SPEC_R("beta1", "0.9", 0, 1, DPT_SPEC_HI_OPEN),
    DPT_SPEC_R("beta2", "0.999", 0, 1, DPT_SPEC_HI_OPEN),
    DPT_SPEC_R("eps", "1e-8", 0, 1e3, 0),
    DPT_SPEC_R("weight_decay", "1e-2", 0, 1e3, 0),
    DPT_SPEC_B("amsgrad", "0"),
    DPT_SPEC_END,
};

static size_t buffers(const dpt_optimizer_t *o)
{
    return o->hp[K_AMSGRAD] != 0 ? 3 : 2;
}

/* The shared moment update; `decoupled` selects AdamW's decay. */
static void adam_core(dpt_optimizer_t *o, float *restrict p, const float *restrict grad, size_t lo,
                      size_t hi, const dpt_optim_step_t *st, int decoupled)
{
    const double b1 = dpt_opt_momentum(o, st), b2 = o->hp[K_BETA2];
    const double t = (double)(st->t ? st->t : 1);
    const float step = (float)(st->lr / (1.0 - pow(b1, t)));
    const float inv_bc2_sqrt = (float)(1.0 / sqrt(1.0 - pow(b2, t)));
    /* 1 - beta in double, then rounded once, as torch passes value=1-beta to addcmul_. */
    const float fb1 = (float)b1, fb2 = (float)b2, eps = (float)o->hp[K_EPS];
    const float nb1 = (float)(1.0 - b1), nb2 = (float)(1.0 - b2);
    const double wd0 = st->no_decay ? 0.0 : o->hp[K_WEIGHT_DECAY];
    const float wd = (float)wd0;
    const float decay = (float)(1.0 - st->lr * wd0);
    float *restrict m = o->buf[0], *restrict v = o->buf[1], *restrict vmax = o->buf[2];
    const int ams = o->hp[K_AMSGRAD] != 0;
    for (size_t i = lo; i < hi; i++) {
        float g = grad[i];
        if (decoupled)
            p[i] *= decay;
        else
            g += wd * p[i];
        m[i] = fb1 * m[i] + nb1 * g;
        v[i] = fb2 * v[i] + nb2 * g * g;
        float vv = v[i];
        if (ams) vv = vmax[i] = vmax[i] > vv ? vmax[i] : vv;
        p[i] -= step * m[i] / (sqrtf(vv) * inv_bc2_sqrt + eps);
    }
}

static void adam_update(dpt_optimizer_t *o, float *restrict p, const float *restrict g, size_t lo,
                        size_t hi, const dpt_optim_step_t *st)
{
    adam_core(o, p, g, lo, hi, st, 0);
}

static void adamw_update(dpt_optimizer_t *o, float *restrict p, const float *restrict g, size_t lo,
                         size_t hi, const dpt_optim_step_t *st)
{
    adam_core(o, p, g, lo, hi, st, 1);
}

const dpt_opt_rule_t dpt_opt_adam = {
    .spec = {"adam", adam_keys},
    .n_keys = sizeof adam_keys / sizeof adam_keys[0] - 1,
    .momentum_key = K_BETA1,
    .norms = DPT_OPTIM_NORMS_NONE,
    .buffers = buffers,
    .update = adam_update,
};

const dpt_opt_rule_t dpt_opt_adamw = {
    .spec = {"adamw", adamw_keys},
    .n_keys = sizeof adamw_keys / sizeof adamw_keys[0] - 1,
    .momentum_key = K_BETA1,
    .norms = DPT_OPTIM_NORMS_NONE,
    .buffers = buffers,
    .update = adamw_update,
};
