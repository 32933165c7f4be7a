/* Owns the layer-wise adaptive rules LARS and LAMB. Both scale each parameter tensor's
 * step by a trust ratio computed from whole-tensor 2-norms (the model's tensor table), so
 * the trainer computes the norms over the fully reduced gradient before any update.
 *
 * LARS (You, Gitman, Ginsburg 2017, "Large Batch Training of Convolutional Networks"), per
 * tensor with w = parameters, g = batch-mean gradient, eta = trust_coefficient:
 *   ratio = eta * ||w|| / (||g|| + weight_decay * ||w||)   (1 when ||w|| or ||g|| is 0)
 *   d = ratio * (g + weight_decay * w)
 *   b <- d at the first update, else b <- momentum * b + (1 - dampening) * d
 *   w <- w - lr * b
 * (the paper's v <- m v + lr * ratio * (g + wd w) with lr moved outside the momentum
 * buffer, as in torch.optim.SGD and timm's Lars; identical at constant lr). State: b.
 *
 * LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Algorithm 2 with
 * phi = identity and Adam's bias correction), step t >= 1:
 *   m <- beta1 * m + (1 - beta1) * g;  v <- beta2 * v + (1 - beta2) * g^2
 *   r = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + weight_decay * w
 *   ratio = ||w|| / ||r||   (1 when ||w|| or ||r|| is 0)
 *   w <- w - lr * ratio * r
 * State: m, v.
 *
 * exclude_bias=1: bias tensors get no weight decay and ratio 1 (plain momentum SGD / Adam
 * step for them), as is usual for LARS and LAMB. Padding between tensors is never touched. */
#include <math.h>
#include <stdbool.h>

#include "optim/optimizer_internal.h"

enum { L_MOMENTUM, L_DAMPENING, L_WEIGHT_DECAY, L_TRUST, L_EXCLUDE };
static const dpt_spec_key_t lars_keys[] = {
    DPT_SPEC_R("momentum", "0.9", 0, 1, 0),
    DPT_SPEC_R("dampening", "0", 0, 1, 0),
    DPT_SPEC_R("weight_decay", "0", 0, 1e3, 0),
    DPT_SPEC_R("trust_coefficient", "0.001", 0, 1e3, 0),
    DPT_SPEC_B("exclude_bias", "0"),
    DPT_SPEC_END,
};

enum { B_BETA1, B_BETA2, B_EPS, B_WEIGHT_DECAY, B_EXCLUDE };
static const dpt_spec_key_t lamb_keys[] = {
    DPT_SPEC_R("beta1", "0.9", 0, 1, DPT_SPEC_HI_OPEN),
    DPT_SPEC_R("beta2", "0.999", 0, 1, DPT_SPEC_HI_OPEN),
    DPT_SPEC_R("eps", "1e-6", 0, 1e3, 0),
    DPT_SPEC_R("weight_decay", "0.01", 0, 1e3, 0),
    DPT_SPEC_B("exclude_bias", "0"),
    DPT_SPEC_END,
};

static size_t one_buffer(const dpt_optimizer_t *o)
{
    return 1;
}
static size_t two_buffers(const dpt_optimizer_t *o)
{
    return 2;
}

/* Whether tensor i is left out of weight decay and the trust ratio. */
static bool excluded(const dpt_optimizer_t *o, size_t i, int exclude_key)
{
    return o->spans[i].is_bias && o->hp[exclude_key] != 0;
}

/* The part of tensor i inside [lo, hi); false when empty. */
static bool clip_span(const dpt_optimizer_t *o, size_t i, size_t lo, size_t hi, size_t *a,
                      size_t *b)
{
    *a = o->spans[i].lo > lo ? o->spans[i].lo : lo;
    *b = o->spans[i].hi < hi ? o->spans[i].hi : hi;
    return *a < *b;
}

static void lars_set_norms(dpt_optimizer_t *o, const double *w_sq, const double *g_sq)
{
    const double eta = o->hp[L_TRUST], wd = o->hp[L_WEIGHT_DECAY];
    for (size_t i = 0; i < o->n_tensors; i++) {
        double w = sqrt(w_sq[i]), g = sqrt(g_sq[i]);
        o->ratio[i] =
            excluded(o, i, L_EXCLUDE) || !(w > 0) || !(g > 0) ? 1.0 : eta * w / (g + wd * w);
    }
}

static void lars_update(dpt_optimizer_t *o, float *restrict p, const float *restrict grad,
                        size_t lo, size_t hi, const dpt_optim_step_t *st)
{
    const float lr = (float)st->lr, mom = (float)dpt_opt_momentum(o, st);
    const float damp = 1.0f - (float)o->hp[L_DAMPENING];
    const bool first = st->t <= 1;
    float *restrict buf = o->buf[0];
    for (size_t ti = 0; ti < o->n_tensors; ti++) {
        size_t a, b;
        if (!clip_span(o, ti, lo, hi, &a, &b)) continue;
        const float wd = excluded(o, ti, L_EXCLUDE) ? 0.0f : (float)o->hp[L_WEIGHT_DECAY];
        const float ratio = (float)o->ratio[ti];
        for (size_t i = a; i < b; i++) {
            float d = ratio * (grad[i] + wd * p[i]);
            if (mom != 0.0f) d = buf[i] = first ? d : mom * buf[i] + damp * d;
            p[i] -= lr * d;
        }
    }
}

static void lamb_direction(dpt_optimizer_t *o, const float *restrict p, float *restrict grad,
                           size_t lo, size_t hi, const dpt_optim_step_t *st)
{
    const double b1 = dpt_opt_momentum(o, st), b2 = o->hp[B_BETA2];
    const double t = (double)(st->t ? st->t : 1);
    const float inv_bc1 = (float)(1.0 / (1.0 - pow(b1, t)));
    const float inv_bc2 = (float)(1.0 / (1.0 - pow(b2, t)));
    const float fb1 = (float)b1, fb2 = (float)b2, eps = (float)o->hp[B_EPS];
    const float nb1 = (float)(1.0 - b1), nb2 = (float)(1.0 - b2);
    float *restrict m = o->buf[0], *restrict v = o->buf[1];
    for (size_t ti = 0; ti < o->n_tensors; ti++) {
        size_t a, b;
        if (!clip_span(o, ti, lo, hi, &a, &b)) continue;
        const float wd = excluded(o, ti, B_EXCLUDE) ? 0.0f : (float)o->hp[B_WEIGHT_DECAY];
        for (size_t i = a; i < b; i++) {
            float g = grad[i];
            m[i] = fb1 * m[i] + nb1 * g;
            v[i] = fb2 * v[i] + nb2 * g * g;
            grad[i] = m[i] * inv_bc1 / (sqrtf(v[i] * inv_bc2) + eps) + wd * p[i];
        }
    }
}

static void lamb_set_norms(dpt_optimizer_t *o, const double *w_sq, const double *r_sq)
{
    for (size_t i = 0; i < o->n_tensors; i++) {
        double w = sqrt(w_sq[i]), r = sqrt(r_sq[i]);
        o->ratio[i] = excluded(o, i, B_EXCLUDE) || !(w > 0) || !(r > 0) ? 1.0 : w / r;
    }
}

static void lamb_update(dpt_optimizer_t *o, float *restrict p, const float *restrict r, size_t lo,
                        size_t hi, const dpt_optim_step_t *st)
{
    for (size_t ti = 0; ti < o->n_tensors; ti++) {
        size_t a, b;
        if (!clip_span(o, ti, lo, hi, &a, &b)) continue;
        const float step = (float)(st->lr * o->ratio[ti]);
        for (size_t i = a; i < b; i++)
            p[i] -= step * r[i];
    }
}

const dpt_opt_rule_t dpt_opt_lars = {
    .spec = {"lars", lars_keys},
    .n_keys = sizeof lars_keys / sizeof lars_keys[0] - 1,
    .momentum_key = L_MOMENTUM,
    .norms = DPT_OPTIM_NORMS_GRAD,
    .buffers = one_buffer,
    .update = lars_update,
    .set_norms = lars_set_norms,
};

const dpt_opt_rule_t dpt_opt_lamb = {
    .spec = {"lamb", lamb_keys},
    .n_keys = sizeof lamb_keys / sizeof lamb_keys[0] - 1,
    .momentum_key = B_BETA1,
    .norms = DPT_OPTIM_NORMS_DIRECTION,
    .buffers = two_buffers,
    .update = lamb_update,
    .direction = lamb_direction,
    .set_norms = lamb_set_norms,
};
