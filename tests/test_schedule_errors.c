/* Tests for the schedule spec parser in src/optim/schedule.c: every malformed input is its
 * own test with the exact status and the part of the message a user needs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "dptrain/schedule.h"

/* Expects create to fail with DPT_ERR_INVALID_ARG, leave *out NULL and say `needle`. */
static void expect_bad_run(const char *spec, const char *warmup, double lr, size_t spe,
                           size_t epochs, const char *needle)
{
    dpt_schedule_t *s = (dpt_schedule_t *)&s; /* not NULL: create must clear it */
    dpt_error_clear();
    dpt_status_t st = dpt_schedule_create(spec, warmup, lr, spe, epochs, &s);
    cr_assert_eq(st, DPT_ERR_INVALID_ARG, "spec '%s' warmup '%s': status %d", spec ? spec : "",
                 warmup ? warmup : "", (int)st);
    cr_assert_null(s);
    cr_assert_not_null(strstr(dpt_last_error(), needle), "message '%s' lacks '%s'",
                       dpt_last_error(), needle);
}

static void expect_bad(const char *spec, const char *needle)
{
    expect_bad_run(spec, NULL, 0.1, 10, 10, needle);
}

Test(schedule_errors, unknown_name_lists_valid_names)
{
    expect_bad("cosin:T_max=3", "unknown schedule 'cosin'; valid names: constant, step, "
                                "multistep, exponential, polynomial, linear, cosine, "
                                "cosine-restarts, cyclic, onecycle, plateau");
}

Test(schedule_errors, unknown_key_lists_valid_keys)
{
    expect_bad("step:step_size=2,gama=0.5",
               "step: unknown key 'gama'; valid keys: step_size, gamma, unit");
}

Test(schedule_errors, malformed_real)
{
    expect_bad("step:step_size=2,gamma=0.5x", "step: gamma: malformed number '0.5x'");
}

Test(schedule_errors, malformed_integer)
{
    expect_bad("cosine:T_max=2.5", "cosine: T_max: malformed number '2.5'");
}

Test(schedule_errors, non_finite_number)
{
    expect_bad("exponential:gamma=inf", "malformed number 'inf'");
}

Test(schedule_errors, zero_lr)
{
    expect_bad_run(NULL, NULL, 0.0, 10, 10, "lr must be a finite number > 0, got 0");
}

Test(schedule_errors, negative_lr)
{
    expect_bad_run("step:step_size=1", NULL, -0.1, 10, 10, "lr must be a finite number > 0");
}

Test(schedule_errors, zero_steps_per_epoch)
{
    expect_bad_run(NULL, NULL, 0.1, 0, 10, "steps_per_epoch and epochs must be >= 1");
}

Test(schedule_errors, pct_start_zero)
{
    expect_bad("onecycle:pct_start=0", "onecycle: pct_start must be a number in (0, 1), got '0'");
}

Test(schedule_errors, pct_start_one)
{
    expect_bad("onecycle:pct_start=1", "pct_start must be a number in (0, 1), got '1'");
}

Test(schedule_errors, milestones_repeat)
{
    expect_bad("multistep:milestones=30/30", "milestones must be strictly increasing");
}

Test(schedule_errors, milestones_decrease)
{
    expect_bad("multistep:milestones=60/30/90", "milestones must be strictly increasing");
}

Test(schedule_errors, milestones_empty_entry)
{
    expect_bad("multistep:milestones=30//60", "milestones: malformed number ''");
}

Test(schedule_errors, t_mult_below_one)
{
    expect_bad("cosine-restarts:T_0=5,T_mult=0", "T_mult must be an integer in [1, ");
}

Test(schedule_errors, max_lr_below_base_lr)
{
    expect_bad("cyclic:base_lr=0.1,max_lr=0.01", "cyclic: max_lr (0.01) must be >= base_lr (0.1)");
}

Test(schedule_errors, max_lr_below_default_base_lr)
{
    /* base_lr defaults to --lr = 0.1. */
    expect_bad("cyclic:max_lr=0.05", "max_lr (0.05) must be >= base_lr (0.1)");
}

Test(schedule_errors, gamma_zero)
{
    expect_bad("step:step_size=1,gamma=0", "step: gamma must be a number > 0, got '0'");
}

Test(schedule_errors, gamma_negative)
{
    expect_bad("exponential:gamma=-0.5", "exponential: gamma must be a number > 0, got '-0.5'");
}

Test(schedule_errors, cosine_needs_t_max)
{
    expect_bad("cosine", "cosine: missing required key T_max");
}

Test(schedule_errors, step_needs_step_size)
{
    expect_bad("step:gamma=0.5", "step: missing required key step_size");
}

Test(schedule_errors, cyclic_needs_max_lr)
{
    expect_bad("cyclic", "cyclic: missing required key max_lr");
}

Test(schedule_errors, spec_too_long)
{
    char spec[DPT_SCHEDULE_SPEC_MAX + 2];
    /* "step:step_size=1,gamma=0.5000...": a valid spec padded with zeros. */
    int n = snprintf(spec, sizeof spec, "step:step_size=1,gamma=0.5");
    memset(spec + n, '0', sizeof spec - 1 - (size_t)n);
    spec[sizeof spec - 1] = '\0';
    cr_assert_eq(strlen(spec), DPT_SCHEDULE_SPEC_MAX + 1);
    expect_bad(spec, "schedule spec is 1025 characters long; the limit is 1024");
    /* One character shorter is accepted. */
    spec[DPT_SCHEDULE_SPEC_MAX] = '\0';
    dpt_schedule_t *s = NULL;
    cr_assert_eq(dpt_schedule_create(spec, NULL, 1.0, 1, 1, &s), DPT_OK, "%s", dpt_last_error());
    cr_assert_float_eq(dpt_schedule_lr(s, 1, NULL), 0.5, 1e-15);
    dpt_schedule_free(s);
}

Test(schedule_errors, warmup_spec_too_long)
{
    char spec[DPT_SCHEDULE_SPEC_MAX + 2];
    int n = snprintf(spec, sizeof spec, "linear:steps=0");
    memset(spec + n, '0', sizeof spec - 1 - (size_t)n);
    spec[sizeof spec - 1] = '\0';
    expect_bad_run(NULL, spec, 0.1, 1, 1, "warmup spec is 1025 characters long");
}

/* "1/2/3/.../n" into buf. */
static void milestones(char *buf, size_t cap, int n)
{
    size_t len = (size_t)snprintf(buf, cap, "multistep:milestones=");
    for (int i = 1; i <= n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", i > 1 ? "/" : "", i);
    cr_assert_lt(len, cap);
}

Test(schedule_errors, too_many_milestones)
{
    char spec[DPT_SCHEDULE_SPEC_MAX + 1];
    milestones(spec, sizeof spec, DPT_SCHEDULE_LIST_MAX + 1);
    expect_bad(spec, "multistep: milestones has more than 256 entries");
    /* Exactly the cap is fine: after milestone 256 the lr is 0.1^256 * 0.1 (underflows to
     * a tiny positive number, far below 1e-200). */
    milestones(spec, sizeof spec, DPT_SCHEDULE_LIST_MAX);
    dpt_schedule_t *s = NULL;
    cr_assert_eq(dpt_schedule_create(spec, NULL, 1.0, 1, 1, &s), DPT_OK, "%s", dpt_last_error());
    cr_assert_float_eq(dpt_schedule_lr(s, 1, NULL), 0.1, 1e-15);
    cr_assert_lt(dpt_schedule_lr(s, 256, NULL), 1e-200);
    dpt_schedule_free(s);
}

Test(schedule_errors, duplicate_key)
{
    expect_bad("step:step_size=1,step_size=2", "step: key 'step_size' given twice");
}

Test(schedule_errors, empty_value)
{
    expect_bad("step:step_size=", "step: key 'step_size' has an empty value");
}

Test(schedule_errors, pair_without_equals)
{
    expect_bad("step:step_size", "step: expected key=value, got 'step_size'");
}

Test(schedule_errors, bad_enum_lists_choices)
{
    expect_bad("cyclic:max_lr=1,mode=triangle",
               "cyclic: mode must be one of triangular, triangular2, exp_range, got 'triangle'");
}

Test(schedule_errors, bad_unit)
{
    expect_bad("cosine:T_max=3,unit=batch", "unit must be one of epoch, step, got 'batch'");
}

Test(schedule_errors, two_main_schedules)
{
    expect_bad("step:step_size=1+cosine:T_max=3",
               "'+' combines one main schedule with one plateau");
}

Test(schedule_errors, two_plateaus)
{
    expect_bad("plateau+plateau:patience=1", "'+' combines one main schedule with one plateau");
}

Test(schedule_errors, three_parts)
{
    expect_bad("step:step_size=1+plateau+plateau", "joins more than 2 parts with '+'");
}

Test(schedule_errors, plateau_factor_one)
{
    expect_bad("plateau:factor=1", "plateau: factor must be a number in (0, 1), got '1'");
}

Test(schedule_errors, plateau_rel_threshold_one)
{
    expect_bad("plateau:threshold=1", "threshold must be < 1 with threshold_mode=rel");
}

Test(schedule_errors, warmup_unknown_name_lists_names)
{
    expect_bad_run(NULL, "cosine:steps=3", 0.1, 1, 1,
                   "unknown warmup 'cosine'; valid names: linear, constant, none");
}

Test(schedule_errors, warmup_needs_steps)
{
    expect_bad_run(NULL, "linear:start_factor=0.1", 0.1, 1, 1,
                   "warmup linear: missing required key steps");
}

Test(schedule_errors, warmup_unknown_key_lists_keys)
{
    expect_bad_run(NULL, "constant:steps=3,start_factor=0.5", 0.1, 1, 1,
                   "warmup constant: unknown key 'start_factor'; valid keys: steps, factor");
}

Test(schedule_errors, warmup_start_factor_zero)
{
    expect_bad_run(NULL, "linear:steps=3,start_factor=0", 0.1, 1, 1,
                   "warmup linear: start_factor must be a number in (0, 1], got '0'");
}
