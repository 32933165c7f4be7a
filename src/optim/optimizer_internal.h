/* Private to src/optim: the optimizer handle's layout and the rule table that optimizer.c
 * (parsing, state, dispatch) shares with the one-file-per-family update rules. */
#ifndef DPT_OPTIM_OPTIMIZER_INTERNAL_H
#define DPT_OPTIM_OPTIMIZER_INTERNAL_H

#include <stddef.h>

#include "core/spec.h"
#include "dptrain/optimizer.h"

/* Most keys any rule has, and most state buffers (adam with amsgrad, centered rmsprop with
 * momentum: three). */
#define DPT_OPT_MAX_KEYS 8
#define DPT_OPT_MAX_BUFS 3

typedef struct dpt_optimizer dpt_optimizer_t;

/* Elementwise update of params[lo, hi) (or, for norm-based rules, the tensors' parts inside
 * [lo, hi) using o->ratio). */
typedef void (*dpt_opt_update_fn)(dpt_optimizer_t *o, float *restrict params,
                                  const float *restrict grad, size_t lo, size_t hi,
                                  const dpt_optim_step_t *st);

/* A family member: its name and typed keys in the one spec grammar (core/spec.h), in
 * canonical order (o->hp[i] holds key i), and its behaviour. */
typedef struct dpt_opt_rule {
    dpt_spec_kind_t spec;
    size_t n_keys;
    int momentum_key; /* key a schedule's momentum overrides (momentum/beta1), -1 */
    dpt_optim_norms_t norms;
    /* Cross-key checks after parsing (NULL: none). */
    dpt_status_t (*check)(const dpt_optimizer_t *o);
    /* State buffers of n floats this configuration needs. */
    size_t (*buffers)(const dpt_optimizer_t *o);
    /* Fills the zeroed state (NULL: zeros are right). */
    void (*init_state)(dpt_optimizer_t *o);
    dpt_opt_update_fn update;
    /* DPT_OPTIM_NORMS_DIRECTION only: grad[lo, hi) <- update direction. */
    void (*direction)(dpt_optimizer_t *o, const float *restrict params, float *restrict grad,
                      size_t lo, size_t hi, const dpt_optim_step_t *st);
    /* GRAD/DIRECTION only: o->ratio[i] from per-tensor sums of squares. */
    void (*set_norms)(dpt_optimizer_t *o, const double *param_sq, const double *d_sq);
} dpt_opt_rule_t;

/* A parameter tensor's span in the flat layout; bias tensors can be excluded from the trust
 * ratio and weight decay. */
typedef struct dpt_opt_span {
    size_t lo, hi;
    int is_bias;
    dpt_tensor_role_t role;
    int no_decay; /* excluded from weight decay (dpt_optimizer_exclude_decay) */
} dpt_opt_span_t;

struct dpt_optimizer {
    const dpt_opt_rule_t *rule;
    double hp[DPT_OPT_MAX_KEYS]; /* resolved hyper-parameters, rule->keys order */
    size_t n;                    /* floats per buffer (dpt_model_param_count) */
    size_t n_bufs;
    float *state; /* n_bufs * n floats, one block: one checkpoint section */
    float *buf[DPT_OPT_MAX_BUFS];
    size_t n_tensors;
    dpt_opt_span_t *spans; /* n_tensors, in offset order */
    double *ratio;         /* n_tensors trust ratios, set by dpt_optimizer_set_norms */
    int any_no_decay;      /* some span has no_decay */
    char describe[320];
};

/* The momentum (or beta1) a step uses: the schedule's when it drives one, else configured. */
static inline double dpt_opt_momentum(const dpt_optimizer_t *o, const dpt_optim_step_t *st)
{
    return st->momentum >= 0 ? st->momentum : o->hp[o->rule->momentum_key];
}

extern const dpt_opt_rule_t dpt_opt_sgd, dpt_opt_adam, dpt_opt_adamw, dpt_opt_rmsprop,
    dpt_opt_adagrad, dpt_opt_lars, dpt_opt_lamb;

#endif
