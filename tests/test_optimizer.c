/* Tests for src/optim/sgd.c: updates against hand-computed values (torch.optim.SGD rules). */
#include <criterion/criterion.h>
#include <string.h>

#include "dptrain/optimizer.h"

static dpt_model_t *tiny_model(void)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create("dense:2", 1, 2, &m), DPT_OK);
    return m;
}

Test(sgd, momentum_and_weight_decay_by_hand)
{
    dpt_model_t *m = tiny_model();
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create("sgd:momentum=0.9,weight_decay=0.1", m, &o), DPT_OK, "%s",
                 dpt_last_error());
    float p[1] = {1.0f}, g[1] = {0.5f};
    /* t=1: g' = 0.5 + 0.1*1 = 0.6; b = 0.6; p = 1 - 0.1*0.6 = 0.94 */
    dpt_optim_step_t st = {.lr = 0.1, .momentum = -1, .t = 1};
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    cr_assert_float_eq(p[0], 0.94f, 1e-6);
    /* t=2: g' = 0.5 + 0.094 = 0.594; b = 0.9*0.6 + 0.594 = 1.134; p = 0.94 - 0.1134 = 0.8266 */
    st.t = 2;
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    cr_assert_float_eq(p[0], 0.8266f, 1e-6);
    dpt_optimizer_free(o);
    dpt_model_free(m);
}

Test(sgd, nesterov_and_dampening_by_hand)
{
    dpt_model_t *m = tiny_model();
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create("sgd:momentum=0.5,nesterov=1", m, &o), DPT_OK);
    float p[1] = {0.0f}, g[1] = {1.0f};
    /* t=1: b = 1; step = g + 0.5*b = 1.5; p = -0.15. t=2: b = 0.5 + 1 = 1.5; step = 1.75 */
    dpt_optim_step_t st = {.lr = 0.1, .momentum = -1, .t = 1};
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    cr_assert_float_eq(p[0], -0.15f, 1e-6);
    st.t = 2;
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    cr_assert_float_eq(p[0], -0.325f, 1e-6);
    dpt_optimizer_free(o);
    cr_assert_eq(dpt_optimizer_create("sgd:momentum=0.5,dampening=0.5", m, &o), DPT_OK);
    p[0] = 0;
    /* t=1: b = g = 1 (no dampening on the first step); t=2: b = 0.5 + 0.5*1 = 1 */
    st.t = 1;
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    st.t = 2;
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    cr_assert_float_eq(p[0], -0.2f, 1e-6);
    dpt_optimizer_free(o);
    dpt_model_free(m);
}

Test(sgd, scheduled_momentum_overrides_configured)
{
    dpt_model_t *m = tiny_model();
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create("sgd:momentum=0.9", m, &o), DPT_OK);
    float p[1] = {0}, g[1] = {1};
    dpt_optim_step_t st = {.lr = 1, .momentum = 0.0, .t = 1};
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    st.t = 2;
    dpt_optimizer_update(o, p, g, 0, 1, &st);
    /* momentum 0 from the schedule: two plain steps of 1 */
    cr_assert_float_eq(p[0], -2.0f, 1e-6);
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

Test(sgd, unknown_name_lists_valid)
{
    expect_error("adamx:lr=1", "unknown optimizer 'adamx'; valid names: sgd, adam, adamw, "
                               "rmsprop, adagrad, lars, lamb");
}
Test(sgd, unknown_key_lists_valid)
{
    expect_error("sgd:mom=0.9", "unknown key 'mom'; valid keys: momentum");
}
Test(sgd, malformed_number)
{
    expect_error("sgd:momentum=abc",
                 "optimizer sgd: momentum: malformed number 'abc' (expected a number in [0, 1])");
}
Test(sgd, out_of_range)
{
    expect_error("sgd:momentum=1.5",
                 "optimizer sgd: momentum must be a number in [0, 1], got '1.5'");
}
Test(sgd, nesterov_needs_momentum)
{
    expect_error("sgd:nesterov=1", "nesterov=1 needs momentum > 0");
}
