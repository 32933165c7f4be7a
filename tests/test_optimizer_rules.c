/* Tests for src/optim (adam.c, rmsprop.c, adagrad.c, lars_lamb.c, optimizer.c,
 * lr_scaling.c): a few steps of each rule against values computed by hand from the
 * torch.optim update rules (derivations in the comments; the digits were checked with a
 * float64 reference), trust ratios on a two-tensor toy, state exposure and bad input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/optimizer.h"

static dpt_model_t *tiny_model(void)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create("dense:2", 1, 2, &m), DPT_OK);
    return m;
}

static dpt_optimizer_t *make(dpt_model_t *m, const char *spec)
{
    dpt_optimizer_t *o = NULL;
    cr_assert_eq(dpt_optimizer_create(spec, m, &o), DPT_OK, "%s: %s", spec, dpt_last_error());
    return o;
}

/* Two scalar steps p <- update(p, g_t) at lr; returns p after each. */
static void two_steps(const char *spec, double lr, float p0, float g1, float g2, float out[2])
{
    dpt_model_t *m = tiny_model();
    dpt_optimizer_t *o = make(m, spec);
    float p[1] = {p0}, g[1] = {g1};
    dpt_optim_step_t st = {.lr = lr, .momentum = -1, .t = 1};
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    out[0] = p[0];
    g[0] = g2, st.t = 2;
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    out[1] = p[0];
    dpt_optimizer_free(o);
    dpt_model_free(m);
}

Test(adam, two_steps_by_hand)
{
    float p[2];
    /* t=1, g=0.5: m=0.05, v=0.00025; m^=0.5, v^=0.25 -> p = 1 - 0.1*0.5/(0.5+1e-8) = 0.9.
     * t=2, g=-1: m=0.045-0.1=-0.055, m^=-0.055/0.19=-0.28947; v=0.00024975+0.001=0.00124975,
     * v^=0.00124975/0.001999=0.62519, sqrt=0.79069 -> p = 0.9 + 0.1*0.28947/0.79069
     * = 0.9366104 */
    two_steps("adam", 0.1, 1.0f, 0.5f, -1.0f, p);
    cr_assert_float_eq(p[0], 0.9f, 1e-6);
    cr_assert_float_eq(p[1], 0.9366104f, 2e-6);
}

Test(adam, l2_weight_decay_enters_the_gradient)
{
    float p[2];
    /* t=1: g = 0.5 + 0.1*1 = 0.6; first Adam step is lr*sign -> 0.9.
     * t=2: g = -1 + 0.09 = -0.91 ... -> 0.9252635 (float64 reference) */
    two_steps("adam:weight_decay=0.1", 0.1, 1.0f, 0.5f, -1.0f, p);
    cr_assert_float_eq(p[0], 0.9f, 1e-6);
    cr_assert_float_eq(p[1], 0.9252635f, 2e-6);
}

Test(adamw, decoupled_decay_before_the_step)
{
    float p[2];
    /* t=1: p = 1*(1 - 0.1*0.1) = 0.99, then the Adam step of 0.1 -> 0.89.
     * t=2: p = 0.89*0.99 = 0.8811, + 0.0366104 (the same moments as plain adam) = 0.9177104 */
    two_steps("adamw:weight_decay=0.1", 0.1, 1.0f, 0.5f, -1.0f, p);
    cr_assert_float_eq(p[0], 0.89f, 1e-6);
    cr_assert_float_eq(p[1], 0.9177104f, 2e-6);
    /* adamw's default weight_decay is 0.01: t=1 p = 0.999 - 0.1 */
    two_steps("adamw", 0.1, 1.0f, 0.5f, -1.0f, p);
    cr_assert_float_eq(p[0], 0.899f, 1e-6);
}

Test(adam, amsgrad_keeps_the_largest_second_moment)
{
    float ams[2], plain[2];
    /* g = 1 then 0: v = 0.001 then 0.000999; amsgrad divides by sqrt(vmax = 0.001), a larger
     * denominator: 0.8330277 against plain Adam's 0.8329942. */
    two_steps("adam:amsgrad=1", 0.1, 1.0f, 1.0f, 0.0f, ams);
    two_steps("adam", 0.1, 1.0f, 1.0f, 0.0f, plain);
    cr_assert_float_eq(ams[1], 0.8330277f, 2e-6, "%.9g", ams[1]);
    cr_assert_float_eq(plain[1], 0.8329942f, 2e-6);
    cr_assert_gt(ams[1] - plain[1], 2e-5);
}

Test(rmsprop, plain_centered_and_momentum_by_hand)
{
    float p[2];
    /* t=1: v = 0.01*0.25 = 0.0025, sqrt = 0.05 -> p = 1 - 0.01*0.5/0.05 = 0.9.
     * t=2: v = 0.002475+0.0025 = 0.004975, sqrt = 0.070534 -> p = 0.9 - 0.01*7.08881 = 0.8291119 */
    two_steps("rmsprop", 0.01, 1.0f, 0.5f, 0.5f, p);
    cr_assert_float_eq(p[0], 0.9f, 1e-6);
    cr_assert_float_eq(p[1], 0.8291119f, 1e-6);
    /* centered, t=1: a = 0.005, var = 0.0025 - 0.000025 = 0.002475, sqrt = 0.0497494
     * -> p = 1 - 0.01*0.5/0.0497494 = 0.8994962 */
    two_steps("rmsprop:centered=1", 0.01, 1.0f, 0.5f, 0.5f, p);
    cr_assert_float_eq(p[0], 0.8994962f, 1e-6);
    cr_assert_float_eq(p[1], 0.8278921f, 1e-6);
    /* momentum 0.9: b = 10 then 0.9*10 + 7.08881 = 16.08881 -> p = 0.9 - 0.1608881 */
    two_steps("rmsprop:momentum=0.9", 0.01, 1.0f, 0.5f, 0.5f, p);
    cr_assert_float_eq(p[1], 0.7391119f, 1e-6);
}

Test(adagrad, lr_decay_and_initial_accumulator_by_hand)
{
    float p[2];
    /* t=1: s = 0.25 -> p = 1 - 0.1*0.5/0.5 = 0.9. t=2: clr = 0.1/(1 + 0.5) = 0.0666667,
     * s = 0.5 -> p = 0.9 - 0.0666667*0.5/0.7071068 = 0.8528595 */
    two_steps("adagrad:lr_decay=0.5", 0.1, 1.0f, 0.5f, 0.5f, p);
    cr_assert_float_eq(p[0], 0.9f, 1e-6);
    cr_assert_float_eq(p[1], 0.8528595f, 1e-6);
    /* s starts at 1: s = 1.25 -> p = 1 - 0.1*0.5/1.1180340 = 0.9552786 */
    two_steps("adagrad:initial_accumulator_value=1", 0.1, 1.0f, 0.5f, 0.5f, p);
    cr_assert_float_eq(p[0], 0.9552786f, 1e-6);
}

/* The two-tensor toy: dense:2 on one input has weight (1x2) and bias (1x2) tensors.
 * w = [3, 4] (norm 5), b = [bias0, 0]; grad_w = [0.6, 0.8] (norm 1), grad_b = [2, 0] (norm 2). */
typedef struct {
    dpt_model_t *m;
    float *p, *g;
    size_t w, b; /* tensor offsets */
} toy_t;

static toy_t toy(float bias0)
{
    toy_t t = {.m = tiny_model()};
    size_t n = dpt_model_param_count(t.m);
    cr_assert_eq(dpt_model_tensor_count(t.m), 2u);
    t.w = dpt_model_tensor(t.m, 0)->offset;
    t.b = dpt_model_tensor(t.m, 1)->offset;
    cr_assert(dpt_model_tensor(t.m, 1)->is_bias);
    t.p = calloc(n, sizeof(float));
    t.g = calloc(n, sizeof(float));
    t.p[t.w] = 3, t.p[t.w + 1] = 4, t.p[t.b] = bias0;
    t.g[t.w] = 0.6f, t.g[t.w + 1] = 0.8f, t.g[t.b] = 2;
    return t;
}

static void toy_free(toy_t *t)
{
    free(t->p), free(t->g);
    dpt_model_free(t->m);
}

static void toy_step(toy_t *t, dpt_optimizer_t *o, double lr)
{
    dpt_optim_step_t st = {.lr = lr, .momentum = -1, .t = 1};
    cr_assert_eq(dpt_optimizer_step(o, t->p, t->g, &st), DPT_OK);
}

Test(lars, trust_ratio_per_tensor)
{
    toy_t t = toy(1);
    dpt_optimizer_t *o = make(t.m, "lars:weight_decay=0.1");
    cr_assert_eq(dpt_optimizer_norms(o), DPT_OPTIM_NORMS_GRAD);
    toy_step(&t, o, 1.0);
    /* weight: ratio = 0.001*5/(1 + 0.1*5) = 1/300; d = (g + 0.1 w)/300 = [0.9, 1.2]/300
     * = [0.003, 0.004]. bias: ratio = 0.001*1/(2 + 0.1*1) = 1/2100; d = [2.1, 0]/2100. */
    cr_assert_float_eq(dpt_optimizer_trust_ratio(o, 0), 1.0 / 300, 1e-9, "%.12g",
                       dpt_optimizer_trust_ratio(o, 0));
    cr_assert_float_eq(dpt_optimizer_trust_ratio(o, 1), 1.0 / 2100, 1e-10);
    cr_assert_float_eq(t.p[t.w], 2.997f, 1e-6);
    cr_assert_float_eq(t.p[t.w + 1], 3.996f, 1e-6);
    cr_assert_float_eq(t.p[t.b], 0.999f, 1e-6);
    dpt_optimizer_free(o);
    toy_free(&t);
}

Test(lars, exclude_bias_and_zero_norm)
{
    toy_t t = toy(1);
    dpt_optimizer_t *o = make(t.m, "lars:weight_decay=0.1,exclude_bias=1");
    toy_step(&t, o, 1.0);
    /* The bias takes a plain step: ratio 1, no decay: 1 - 1*2 = -1. Weight as before. */
    cr_assert_float_eq(dpt_optimizer_trust_ratio(o, 1), 1.0, 1e-15);
    cr_assert_float_eq(t.p[t.b], -1.0f, 1e-6);
    cr_assert_float_eq(t.p[t.w], 2.997f, 1e-6);
    dpt_optimizer_free(o);
    toy_free(&t);
    /* A zero tensor (bias 0 here) gets ratio 1 rather than 0/x = 0 (it could never move). */
    t = toy(0);
    o = make(t.m, "lars");
    toy_step(&t, o, 0.5);
    cr_assert_float_eq(dpt_optimizer_trust_ratio(o, 1), 1.0, 1e-15);
    cr_assert_float_eq(t.p[t.b], -1.0f, 1e-6);
    dpt_optimizer_free(o);
    toy_free(&t);
}

Test(lamb, trust_ratio_is_weight_norm_over_update_norm)
{
    toy_t t = toy(2);
    dpt_optimizer_t *o = make(t.m, "lamb:weight_decay=0.1");
    cr_assert_eq(dpt_optimizer_norms(o), DPT_OPTIM_NORMS_DIRECTION);
    toy_step(&t, o, 0.01);
    /* t=1: m^ = g, v^ = g^2, so Adam's part is g/(|g| + 1e-6) ~ sign(g).
     * weight: r = [1, 1] + 0.1*[3, 4] = [1.3, 1.4], ||r|| = sqrt(3.65) = 1.910497,
     * ratio = 5/1.910497 = 2.6171224 (with the eps in sign(g)); w = [3 - 0.01*2.61712*1.3,
     * 4 - 0.01*2.61712*1.4] = [2.965977, 3.963360]. bias: r = [1 + 0.2, 0], ratio = 2/1.2, b = 2 -
     * 0.01*2 = 1.98 */
    cr_assert_float_eq(dpt_optimizer_trust_ratio(o, 0), 2.6171224, 2e-6, "%.9g",
                       dpt_optimizer_trust_ratio(o, 0));
    cr_assert_float_eq(t.p[t.w], 2.965977f, 2e-6);
    cr_assert_float_eq(t.p[t.w + 1], 3.963360f, 2e-6);
    cr_assert_float_eq(t.p[t.b], 1.98f, 2e-6);
    dpt_optimizer_free(o);
    toy_free(&t);
}

Test(lamb, exclude_bias)
{
    toy_t t = toy(2);
    dpt_optimizer_t *o = make(t.m, "lamb:weight_decay=0.1,exclude_bias=1");
    toy_step(&t, o, 0.01);
    /* bias: r = [1, 0] (no decay), ratio 1 -> b = 2 - 0.01 = 1.99; weight unchanged rule */
    cr_assert_float_eq(dpt_optimizer_trust_ratio(o, 1), 1.0, 1e-15);
    cr_assert_float_eq(t.p[t.b], 1.99f, 2e-6);
    cr_assert_float_eq(t.p[t.w], 2.965977f, 2e-6);
    dpt_optimizer_free(o);
    toy_free(&t);
}

Test(optimizer, state_block_covers_every_buffer)
{
    dpt_model_t *m = tiny_model();
    size_t n = dpt_model_param_count(m), got;
    const struct {
        const char *spec;
        size_t bufs;
    } cases[] = {{"sgd", 1},     {"adam", 2},    {"adam:amsgrad=1", 3}, {"adamw", 2},
                 {"rmsprop", 3}, {"adagrad", 1}, {"lars", 1},           {"lamb", 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dpt_optimizer_t *o = make(m, cases[i].spec);
        cr_assert_not_null(dpt_optimizer_state(o, &got));
        cr_assert_eq(got, cases[i].bufs * n, "%s: %zu floats", cases[i].spec, got);
        dpt_optimizer_free(o);
    }
    /* Adam's m and v land in the block: after one step with g = 0.5 at index 0,
     * m = 0.05 (first buffer) and v = 0.00025 (second). */
    dpt_optimizer_t *o = make(m, "adam");
    float *state = dpt_optimizer_state(o, &got);
    float p[1] = {1}, g[1] = {0.5f};
    dpt_optim_step_t st = {.lr = 0.1, .momentum = -1, .t = 1};
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    cr_assert_float_eq(state[0], 0.05f, 1e-7);
    cr_assert_float_eq(state[n], 0.00025f, 1e-8, "%.9g", state[n]);
    dpt_optimizer_free(o);
    /* Adagrad's accumulator starts at initial_accumulator_value everywhere. */
    o = make(m, "adagrad:initial_accumulator_value=0.5");
    state = dpt_optimizer_state(o, &got);
    cr_assert_eq(state[0], 0.5f);
    cr_assert_eq(state[n - 1], 0.5f);
    dpt_optimizer_free(o);
    dpt_model_free(m);
}

Test(optimizer, describe_lists_defaults_and_round_trips)
{
    dpt_model_t *m = tiny_model();
    const char *specs[] = {
        "adam", "adamw", "rmsprop", "adagrad", "lars", "lamb", "adam:beta1=0.85,eps=1e-7"};
    const char *want[] = {"adam:beta1=0.9,beta2=0.999,eps=1e-08,weight_decay=0,amsgrad=0",
                          "adamw:beta1=0.9,beta2=0.999,eps=1e-08,weight_decay=0.01,amsgrad=0",
                          "rmsprop:alpha=0.99,eps=1e-08,momentum=0,centered=0,weight_decay=0",
                          "adagrad:lr_decay=0,initial_accumulator_value=0,eps=1e-10,"
                          "weight_decay=0",
                          "lars:momentum=0.9,dampening=0,weight_decay=0,trust_coefficient=0.001,"
                          "exclude_bias=0",
                          "lamb:beta1=0.9,beta2=0.999,eps=1e-06,weight_decay=0.01,exclude_bias=0",
                          "adam:beta1=0.85,beta2=0.999,eps=1e-07,weight_decay=0,amsgrad=0"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        dpt_optimizer_t *o = make(m, specs[i]);
        cr_assert_str_eq(dpt_optimizer_describe(o), want[i]);
        dpt_optimizer_t *again = make(m, dpt_optimizer_describe(o));
        cr_assert_str_eq(dpt_optimizer_describe(again), want[i]);
        dpt_optimizer_free(again);
        dpt_optimizer_free(o);
    }
    dpt_optimizer_t *o = make(m, "lamb:beta1=0.8");
    cr_assert_float_eq(dpt_optimizer_momentum(o), 0.8, 1e-15);
    dpt_optimizer_free(o);
    dpt_model_free(m);
}

static void expect_error(const char *spec, const char *needle)
{
    dpt_model_t *m = tiny_model();
    dpt_optimizer_t *o = NULL;
    cr_assert_eq(dpt_optimizer_create(spec, m, &o), DPT_ERR_INVALID_ARG, "%s", spec);
    cr_assert_null(o);
    cr_assert(strstr(dpt_last_error(), needle), "'%s' not in '%s'", needle, dpt_last_error());
    dpt_model_free(m);
}

Test(optimizer_errors, unknown_name_lists_all_valid)
{
    expect_error("adamax", "unknown optimizer 'adamax'; valid names: sgd, adam, adamw, "
                           "rmsprop, adagrad, lars, lamb");
    expect_error("Adam", "unknown optimizer 'Adam'");
}
Test(optimizer_errors, unknown_key_lists_the_rules_keys)
{
    expect_error("adam:lr=0.1", "optimizer adam: unknown key 'lr'; valid keys: beta1, beta2, eps, "
                                "weight_decay, amsgrad");
    expect_error("lamb:betas=0.9", "valid keys: beta1, beta2, eps, weight_decay, exclude_bias");
    expect_error("lars:eta=0.01", "valid keys: momentum, dampening, weight_decay, "
                                  "trust_coefficient, exclude_bias");
}
Test(optimizer_errors, malformed_number)
{
    expect_error("adam:eps=1e-8x", "optimizer adam: eps: malformed number '1e-8x'");
    expect_error("rmsprop:alpha=", "optimizer rmsprop: key 'alpha' has an empty value");
    expect_error("adagrad:eps", "optimizer adagrad: expected key=value, got 'eps'");
}
Test(optimizer_errors, out_of_range_names_key_and_range)
{
    expect_error("adam:eps=-1", "optimizer adam: eps must be a number in [0, 1000], got '-1'");
    expect_error("adam:beta1=1", "beta1 must be a number in [0, 1), got '1'");
    expect_error("adamw:beta2=-0.1", "beta2 must be a number in [0, 1), got '-0.1'");
    expect_error("lamb:beta2=1.5", "beta2 must be a number in [0, 1), got '1.5'");
    expect_error("rmsprop:eps=-1e-9", "eps must be a number in [0, 1000], got '-1e-9'");
    expect_error("adam:amsgrad=2", "amsgrad must be 0 or 1, got '2'");
    expect_error("lars:exclude_bias=0.5", "exclude_bias must be 0 or 1, got '0.5'");
}

Test(lr_scaling, linear_and_sqrt_arithmetic)
{
    double lr;
    cr_assert_eq(dpt_lr_scaling_apply("linear:ref_batch=256", 0.1, 512, &lr), DPT_OK);
    cr_assert_float_eq(lr, 0.2, 1e-15);
    cr_assert_eq(dpt_lr_scaling_apply("linear:ref_batch=256", 0.1, 64, &lr), DPT_OK);
    cr_assert_float_eq(lr, 0.025, 1e-15);
    cr_assert_eq(dpt_lr_scaling_apply("sqrt:ref_batch=256", 0.1, 1024, &lr), DPT_OK);
    cr_assert_float_eq(lr, 0.2, 1e-15);
    cr_assert_eq(dpt_lr_scaling_apply("sqrt:ref_batch=100", 0.3, 25, &lr), DPT_OK);
    cr_assert_float_eq(lr, 0.15, 1e-15);
    /* ref_batch defaults to 256 (Goyal et al.'s reference) */
    cr_assert_eq(dpt_lr_scaling_apply("linear", 0.1, 128, &lr), DPT_OK);
    cr_assert_float_eq(lr, 0.05, 1e-15);
    cr_assert_eq(dpt_lr_scaling_apply(NULL, 0.1, 4096, &lr), DPT_OK);
    cr_assert_eq(lr, 0.1);
    cr_assert_eq(dpt_lr_scaling_apply("none", 0.1, 4096, &lr), DPT_OK);
    cr_assert_eq(lr, 0.1);
}

Test(lr_scaling, bad_specs)
{
    double lr = -1;
    cr_assert_eq(dpt_lr_scaling_apply("cubic", 0.1, 128, &lr), DPT_ERR_INVALID_ARG);
    cr_assert(
        strstr(dpt_last_error(), "unknown lr scaling 'cubic'; valid names: none, linear, sqrt"),
        "%s", dpt_last_error());
    cr_assert_eq(dpt_lr_scaling_apply("linear:ref=3", 0.1, 128, &lr), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "unknown key 'ref'; valid keys: ref_batch"), "%s",
              dpt_last_error());
    cr_assert_eq(dpt_lr_scaling_apply("sqrt:ref_batch=0", 0.1, 128, &lr), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(),
                     "lr scaling sqrt: ref_batch must be an integer in [1, 1048576], got '0'"));
    cr_assert_eq(dpt_lr_scaling_apply("sqrt:ref_batch=12.5", 0.1, 128, &lr), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "ref_batch: malformed number '12.5'"), "%s",
              dpt_last_error());
    cr_assert_eq(dpt_lr_scaling_apply("linear:ref_batch=abc", 0.1, 128, &lr), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "lr scaling linear: ref_batch: malformed number 'abc'"));
    cr_assert_eq(lr, -1, "a failed call leaves the output alone");
}

/* --no-decay: the excluded tensors keep their values under pure weight decay (zero gradient),
 * the others shrink by lr * weight_decay; a cut of the range anywhere gives the same. */
Test(no_decay, excluded_tensors_are_not_decayed)
{
    const char *specs[] = {"sgd:weight_decay=0.5", "adamw:weight_decay=0.5",
                           "rmsprop:weight_decay=0.5", "adagrad:weight_decay=0.5",
                           "sgd:weight_decay=0.5,momentum=0.9"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        toy_t t = toy(1);
        t.g[t.w] = t.g[t.w + 1] = t.g[t.b] = 0;
        dpt_optimizer_t *o = make(t.m, specs[i]);
        cr_assert_eq(dpt_optimizer_exclude_decay(o, "bias"), DPT_OK, "%s", dpt_last_error());
        cr_assert(strstr(dpt_optimizer_describe(o), ",no_decay=bias"), "%s",
                  dpt_optimizer_describe(o));
        toy_step(&t, o, 0.1);
        cr_assert_eq(t.p[t.b], 1.0f, "%s: the bias decayed to %g", specs[i], t.p[t.b]);
        cr_assert_lt(t.p[t.w], 3.0f, "%s: the weight did not decay", specs[i]);
        dpt_optimizer_free(o);
        toy_free(&t);
    }
}

Test(no_decay, none_restores_decay_and_unknown_names_are_refused)
{
    toy_t t = toy(1);
    t.g[t.b] = 0;
    dpt_optimizer_t *o = make(t.m, "sgd:weight_decay=0.5");
    cr_assert_eq(dpt_optimizer_exclude_decay(o, "bias+bn"), DPT_OK);
    cr_assert_eq(dpt_optimizer_exclude_decay(o, "none"), DPT_OK);
    cr_assert_null(strstr(dpt_optimizer_describe(o), "no_decay"));
    toy_step(&t, o, 0.1);
    cr_assert_lt(t.p[t.b], 1.0f, "decay applies again after none");
    cr_assert_eq(dpt_optimizer_exclude_decay(o, "bias+gamma"), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "unknown --no-decay 'gamma'; valid names: none, bias, bn"),
              "%s", dpt_last_error());
    /* Groups join with '+' as every spec's parts do; a comma gets a pointed message. */
    cr_assert_eq(dpt_optimizer_exclude_decay(o, "bias,bn"), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(),
                     "--no-decay bias: bias takes no keys or values; join names with '+'"),
              "%s", dpt_last_error());
    cr_assert_eq(dpt_optimizer_exclude_decay(o, "none+bias"), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "'none' goes alone"), "%s", dpt_last_error());
    dpt_optimizer_free(o);
    toy_free(&t);
}
