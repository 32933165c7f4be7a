/* Tests for src/optim/schedule.c: every schedule's values against fixtures computed
 * independently from PyTorch's torch.optim.lr_scheduler formulas (derivation next to each),
 * warmup composition, past-the-end holding, momentum, describe round trips and help. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dptrain/schedule.h"

/* Relative tolerance 1e-12 (plus a tiny absolute floor for values at 0). */
#define TOL(x) (1e-12 * fabs(x) + 1e-15)
#define ASSERT_LR(s, step, ps, want)                                                               \
    do {                                                                                           \
        double want_ = (want);                                                                     \
        cr_assert_float_eq(dpt_schedule_lr((s), (step), (ps)), want_, TOL(want_),                  \
                           "lr at step %llu: got %.17g, want %.17g", (unsigned long long)(step),   \
                           dpt_schedule_lr((s), (step), (ps)), want_);                             \
    } while (0)
#define ASSERT_MOM(s, step, want)                                                                  \
    do {                                                                                           \
        double m_ = -1, want_ = (want);                                                            \
        cr_assert_eq(dpt_schedule_momentum((s), (step), &m_), 1);                                  \
        cr_assert_float_eq(m_, want_, TOL(want_), "momentum at step %llu: got %.17g, want %.17g",  \
                           (unsigned long long)(step), m_, want_);                                 \
    } while (0)

static dpt_schedule_t *make(const char *spec, const char *warmup, double lr, size_t spe,
                            size_t epochs)
{
    dpt_schedule_t *s = NULL;
    dpt_status_t st = dpt_schedule_create(spec, warmup, lr, spe, epochs, &s);
    cr_assert_eq(st, DPT_OK, "create('%s', '%s'): %s", spec ? spec : "(null)",
                 warmup ? warmup : "(null)", dpt_last_error());
    cr_assert_not_null(s);
    return s;
}

Test(schedule, constant_is_base_lr_everywhere)
{
    /* No spec, "" and "constant" are all the --lr value at every step. */
    const char *specs[] = {NULL, "", "constant", "constant:unit=step"};
    for (size_t i = 0; i < 4; i++) {
        dpt_schedule_t *s = make(specs[i], NULL, 0.1, 10, 3);
        ASSERT_LR(s, 0, NULL, 0.1);
        ASSERT_LR(s, 29, NULL, 0.1);
        ASSERT_LR(s, 1000000, NULL, 0.1);
        double m = 42;
        cr_assert_eq(dpt_schedule_momentum(s, 5, &m), 0);
        cr_assert_eq(m, 42);
        cr_assert_eq(dpt_schedule_uses_plateau(s, NULL), 0);
        dpt_schedule_free(s);
    }
}

/* --warmup none is the same schedule as no --warmup, description included. */
Test(schedule, warmup_none_is_no_warmup)
{
    dpt_schedule_t *a = make("cosine:T_max=3", NULL, 0.1, 10, 3);
    dpt_schedule_t *b = make("cosine:T_max=3", "none", 0.1, 10, 3);
    cr_assert_str_eq(dpt_schedule_describe(a), dpt_schedule_describe(b));
    cr_assert(strstr(dpt_schedule_describe(b), " warmup=none "), "%s", dpt_schedule_describe(b));
    for (uint64_t t = 0; t < 30; t++)
        cr_assert_eq(dpt_schedule_lr(a, t, NULL), dpt_schedule_lr(b, t, NULL), "step %llu",
                     (unsigned long long)t);
    dpt_schedule_free(a), dpt_schedule_free(b);
}

Test(schedule, step_per_epoch)
{
    /* StepLR step_size=2, gamma=0.5, lr0=0.1, 3 steps per epoch: lr = 0.1 * 0.5^floor(e/2).
     * epochs 0,1 -> 0.1; 2,3 -> 0.05; 4 -> 0.025. Steps 0..5 are epochs 0-1, 6..11 are 2-3. */
    dpt_schedule_t *s = make("step:step_size=2,gamma=0.5", NULL, 0.1, 3, 10);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 5, NULL, 0.1);
    ASSERT_LR(s, 6, NULL, 0.05);
    ASSERT_LR(s, 11, NULL, 0.05);
    ASSERT_LR(s, 12, NULL, 0.025);
    dpt_schedule_free(s);
}

Test(schedule, step_per_step_with_default_gamma)
{
    /* unit=step: clock is the step. step_size=3, gamma=0.1 (default), lr0=1:
     * steps 0-2 -> 1, 3-5 -> 0.1, 6 -> 0.01. */
    dpt_schedule_t *s = make("step:step_size=3,unit=step", NULL, 1.0, 100, 1);
    ASSERT_LR(s, 2, NULL, 1.0);
    ASSERT_LR(s, 3, NULL, 0.1);
    ASSERT_LR(s, 6, NULL, 0.01);
    dpt_schedule_free(s);
}

Test(schedule, multistep)
{
    /* MultiStepLR milestones 2,5, gamma 0.1, lr0 1, 1 step/epoch:
     * lr = gamma^(number of milestones <= e): e 0,1 -> 1; 2..4 -> 0.1; >= 5 -> 0.01. */
    dpt_schedule_t *s = make("multistep:milestones=2/5", NULL, 1.0, 1, 10);
    ASSERT_LR(s, 1, NULL, 1.0);
    ASSERT_LR(s, 2, NULL, 0.1);
    ASSERT_LR(s, 4, NULL, 0.1);
    ASSERT_LR(s, 5, NULL, 0.01);
    ASSERT_LR(s, 500, NULL, 0.01);
    dpt_schedule_free(s);
}

Test(schedule, exponential)
{
    /* ExponentialLR gamma 0.9, lr0 0.1, unit=step: 0.1 * 0.9^3 = 0.0729 at step 3. */
    dpt_schedule_t *s = make("exponential:gamma=0.9,unit=step", NULL, 0.1, 7, 1);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 3, NULL, 0.0729);
    dpt_schedule_free(s);
}

Test(schedule, polynomial_and_hold_past_end)
{
    /* PolynomialLR total_iters 4, power 2, lr0 0.1: 0.1 * (1 - min(e,4)/4)^2:
     * e=1 -> 0.1*0.75^2 = 0.05625, e=2 -> 0.025, e=4 and after -> 0. */
    dpt_schedule_t *s = make("polynomial:total_iters=4,power=2", NULL, 0.1, 1, 10);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 1, NULL, 0.05625);
    ASSERT_LR(s, 2, NULL, 0.025);
    ASSERT_LR(s, 4, NULL, 0.0);
    ASSERT_LR(s, 10, NULL, 0.0);
    dpt_schedule_free(s);
    /* Defaults total_iters=5, power=1: e=2 -> 0.1 * (1 - 2/5) = 0.06. */
    s = make("polynomial", NULL, 0.1, 1, 10);
    ASSERT_LR(s, 2, NULL, 0.06);
    dpt_schedule_free(s);
}

Test(schedule, linear_defaults_and_hold)
{
    /* LinearLR defaults start 1/3, end 1, total_iters 5, lr0 0.3:
     * 0.3 * (1/3 + (2/3) * min(e,5)/5): e=0 -> 0.1, e=1 -> 0.14, e=2 -> 0.18, e>=5 -> 0.3. */
    dpt_schedule_t *s = make("linear", NULL, 0.3, 1, 10);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 1, NULL, 0.14);
    ASSERT_LR(s, 2, NULL, 0.18);
    ASSERT_LR(s, 5, NULL, 0.3);
    ASSERT_LR(s, 9, NULL, 0.3);
    dpt_schedule_free(s);
    /* Decay: start 1, end 0.5, total_iters 2, lr0 1: e=1 -> 0.75, e>=2 -> 0.5. */
    s = make("linear:start_factor=1,end_factor=0.5,total_iters=2", NULL, 1.0, 1, 10);
    ASSERT_LR(s, 1, NULL, 0.75);
    ASSERT_LR(s, 7, NULL, 0.5);
    dpt_schedule_free(s);
}

Test(schedule, cosine_closed_form_and_hold)
{
    /* CosineAnnealingLR T_max 4, eta_min 0.01, lr0 0.1:
     * 0.01 + 0.09 * (1 + cos(pi e/4)) / 2: e=1 -> 0.08681980515339464, e=2 -> 0.055,
     * e=3 -> 0.023180194846605363, e=4 -> 0.01; held at eta_min after T_max. */
    dpt_schedule_t *s = make("cosine:T_max=4,eta_min=0.01", NULL, 0.1, 2, 10);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 1, NULL, 0.1); /* same epoch */
    ASSERT_LR(s, 2, NULL, 0.08681980515339464);
    ASSERT_LR(s, 4, NULL, 0.055);
    ASSERT_LR(s, 6, NULL, 0.023180194846605363);
    ASSERT_LR(s, 8, NULL, 0.01);
    ASSERT_LR(s, 12, NULL, 0.01);
    ASSERT_LR(s, 19, NULL, 0.01);
    dpt_schedule_free(s);
}

Test(schedule, cosine_restarts_t_mult_2)
{
    /* CosineAnnealingWarmRestarts T_0 2, T_mult 2, eta_min 0, lr0 1: cycles cover epochs
     * [0,2), [2,6), [6,14), [14,30), ... lr = (1 + cos(pi T_cur / T_i)) / 2:
     * e=1 -> 0.5; e=2 -> 1 (restart); e=3 -> (1+cos(pi/4))/2 = 0.8535533905932737;
     * e=5 -> (1+cos(3pi/4))/2 = 0.14644660940672627; e=6 -> 1; e=13 -> (1+cos(7pi/8))/2 =
     * 0.03806023374435663; e=14 -> 1; e=29 -> (1+cos(15pi/16))/2 = 0.009607359798384785. */
    dpt_schedule_t *s = make("cosine-restarts:T_0=2,T_mult=2", NULL, 1.0, 1, 40);
    ASSERT_LR(s, 0, NULL, 1.0);
    ASSERT_LR(s, 1, NULL, 0.5);
    ASSERT_LR(s, 2, NULL, 1.0);
    ASSERT_LR(s, 3, NULL, 0.8535533905932737);
    ASSERT_LR(s, 4, NULL, 0.5);
    ASSERT_LR(s, 5, NULL, 0.14644660940672627);
    ASSERT_LR(s, 6, NULL, 1.0);
    ASSERT_LR(s, 13, NULL, 0.03806023374435663);
    ASSERT_LR(s, 14, NULL, 1.0);
    ASSERT_LR(s, 29, NULL, 0.009607359798384785);
    ASSERT_LR(s, 30, NULL, 1.0);
    dpt_schedule_free(s);
}

Test(schedule, cosine_restarts_t_mult_1)
{
    /* T_0 3, T_mult 1, eta_min 0.001, lr0 0.1: e=4 -> T_cur 1 of 3:
     * 0.001 + 0.099 * (1 + cos(pi/3)) / 2 = 0.001 + 0.099 * 0.75 = 0.07525. */
    dpt_schedule_t *s = make("cosine-restarts:T_0=3,eta_min=0.001", NULL, 0.1, 1, 10);
    ASSERT_LR(s, 3, NULL, 0.1);
    ASSERT_LR(s, 4, NULL, 0.07525);
    dpt_schedule_free(s);
}

/* CyclicLR base 0.1, max 1, up 2, down 4 (cycle of 6 steps), momentum 0.8..0.9:
 * height h = t/2 rising (t mod 6 <= 2), else (6 - t mod 6)/4; lr = 0.1 + 0.9 h scale,
 * momentum = 0.9 - 0.1 h scale. */
Test(schedule, cyclic_triangular_with_momentum)
{
    /* scale 1: t=1 -> h .5 -> 0.55, m 0.85; t=2 -> 1.0, m 0.8; t=3 -> h .75 -> 0.775,
     * m 0.825; t=5 -> h .25 -> 0.325, m 0.875; t=6 -> 0.1, m 0.9; t=8 -> 1.0. */
    dpt_schedule_t *s =
        make("cyclic:base_lr=0.1,max_lr=1,step_size_up=2,step_size_down=4", NULL, 0.5, 100, 1);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 1, NULL, 0.55);
    ASSERT_LR(s, 2, NULL, 1.0);
    ASSERT_LR(s, 3, NULL, 0.775);
    ASSERT_LR(s, 5, NULL, 0.325);
    ASSERT_LR(s, 6, NULL, 0.1);
    ASSERT_LR(s, 8, NULL, 1.0);
    ASSERT_MOM(s, 0, 0.9);
    ASSERT_MOM(s, 1, 0.85);
    ASSERT_MOM(s, 2, 0.8);
    ASSERT_MOM(s, 3, 0.825);
    ASSERT_MOM(s, 5, 0.875);
    dpt_schedule_free(s);
}

Test(schedule, cyclic_triangular2_halves_each_cycle)
{
    /* scale 1/2^(cycle-1): t=8 (cycle 2, h 1) -> 0.1 + 0.9*0.5 = 0.55, m 0.85;
     * t=14 (cycle 3, h 1) -> 0.1 + 0.9*0.25 = 0.325, m 0.875. Cycle 1 as triangular. */
    dpt_schedule_t *s = make("cyclic:base_lr=0.1,max_lr=1,step_size_up=2,step_size_down=4,"
                             "mode=triangular2",
                             NULL, 0.5, 100, 1);
    ASSERT_LR(s, 2, NULL, 1.0);
    ASSERT_LR(s, 8, NULL, 0.55);
    ASSERT_LR(s, 14, NULL, 0.325);
    ASSERT_MOM(s, 8, 0.85);
    ASSERT_MOM(s, 14, 0.875);
    dpt_schedule_free(s);
}

Test(schedule, cyclic_exp_range_scales_per_iteration)
{
    /* scale gamma^t, gamma 0.9: t=1 -> 0.1 + 0.9*0.5*0.9 = 0.505, m 0.9 - 0.1*0.5*0.9 = 0.855;
     * t=2 -> 0.1 + 0.9*0.81 = 0.829, m 0.819; t=8 -> 0.1 + 0.9*0.9^8 = 0.487420489,
     * m 0.9 - 0.1*0.9^8 = 0.856953279. */
    dpt_schedule_t *s = make("cyclic:base_lr=0.1,max_lr=1,step_size_up=2,step_size_down=4,"
                             "mode=exp_range,gamma=0.9",
                             NULL, 0.5, 100, 1);
    ASSERT_LR(s, 1, NULL, 0.505);
    ASSERT_LR(s, 2, NULL, 0.829);
    ASSERT_LR(s, 8, NULL, 0.487420489);
    ASSERT_MOM(s, 1, 0.855);
    ASSERT_MOM(s, 2, 0.819);
    ASSERT_MOM(s, 8, 0.856953279);
    dpt_schedule_free(s);
}

Test(schedule, cyclic_base_lr_defaults_to_lr_and_down_to_up)
{
    /* base_lr = --lr = 0.2, max 0.6, up = down = 4: t=2 -> 0.4, t=4 -> 0.6, t=6 -> 0.4. */
    dpt_schedule_t *s = make("cyclic:max_lr=0.6,step_size_up=4,cycle_momentum=0", NULL, 0.2, 10, 1);
    ASSERT_LR(s, 2, NULL, 0.4);
    ASSERT_LR(s, 4, NULL, 0.6);
    ASSERT_LR(s, 6, NULL, 0.4);
    ASSERT_LR(s, 8, NULL, 0.2);
    double m = 7;
    cr_assert_eq(dpt_schedule_momentum(s, 2, &m), 0);
    cr_assert_eq(m, 7);
    dpt_schedule_free(s);
}

/* OneCycleLR max_lr 1, total_steps 10, pct_start 0.3: initial_lr = 1/25 = 0.04,
 * min_lr = 0.04/1e4 = 4e-6. Two phases end at steps 0.3*10-1 = 2 and 9; momentum
 * 0.95 -> 0.85 -> 0.95. cos anneal: end + (start-end)/2 (1 + cos(pi pct)). */
Test(schedule, onecycle_cos)
{
    /* t=1: pct .5 -> 0.52, m 0.9; t=2 -> 1, m .85; t=5: pct 3/7 -> 0.6112620219362893,
     * m 0.8888739533021842; t=9 -> 4e-6, m .95; held after the end (PyTorch raises). */
    dpt_schedule_t *s = make("onecycle:max_lr=1,total_steps=10", NULL, 0.1, 1000, 1);
    ASSERT_LR(s, 0, NULL, 0.04);
    ASSERT_LR(s, 1, NULL, 0.52);
    ASSERT_LR(s, 2, NULL, 1.0);
    ASSERT_LR(s, 5, NULL, 0.6112620219362893);
    ASSERT_LR(s, 9, NULL, 4e-6);
    ASSERT_LR(s, 10, NULL, 4e-6);
    ASSERT_LR(s, 999, NULL, 4e-6);
    ASSERT_MOM(s, 0, 0.95);
    ASSERT_MOM(s, 1, 0.9);
    ASSERT_MOM(s, 2, 0.85);
    ASSERT_MOM(s, 5, 0.8888739533021842);
    ASSERT_MOM(s, 9, 0.95);
    ASSERT_MOM(s, 500, 0.95);
    dpt_schedule_free(s);
}

Test(schedule, onecycle_linear_anneal)
{
    /* linear: (end-start) pct + start. t=1 -> 0.52, m 0.9; t=5: pct 3/7 ->
     * 1 + (4e-6 - 1) 3/7 = 0.5714302857142857, m 0.85 + 0.1*3/7 = 0.8928571428571428. */
    dpt_schedule_t *s =
        make("onecycle:max_lr=1,total_steps=10,anneal_strategy=linear", NULL, 0.1, 1000, 1);
    ASSERT_LR(s, 1, NULL, 0.52);
    ASSERT_LR(s, 5, NULL, 0.5714302857142857);
    ASSERT_LR(s, 9, NULL, 4e-6);
    ASSERT_MOM(s, 5, 0.8928571428571428);
    dpt_schedule_free(s);
}

Test(schedule, onecycle_three_phase)
{
    /* Phases end at 2, 2*0.3*10-2 = 4 and 9: 0.04 -> 1 -> 0.04 -> 4e-6; momentum
     * .95 -> .85 -> .95 -> .95. t=3: pct .5 -> 0.52, m 0.9; t=4 -> 0.04, m .95;
     * t=6: pct 2/5 of 0.04 -> 4e-6: 0.0261817218535102 (cos), 0.0240016 (linear). */
    dpt_schedule_t *s = make("onecycle:max_lr=1,total_steps=10,three_phase=1", NULL, 0.1, 1, 99);
    ASSERT_LR(s, 2, NULL, 1.0);
    ASSERT_LR(s, 3, NULL, 0.52);
    ASSERT_LR(s, 4, NULL, 0.04);
    ASSERT_LR(s, 6, NULL, 0.0261817218535102);
    ASSERT_LR(s, 9, NULL, 4e-6);
    ASSERT_LR(s, 50, NULL, 4e-6);
    ASSERT_MOM(s, 3, 0.9);
    ASSERT_MOM(s, 4, 0.95);
    ASSERT_MOM(s, 6, 0.95);
    dpt_schedule_free(s);
    s = make("onecycle:max_lr=1,total_steps=10,three_phase=true,anneal_strategy=linear", NULL, 0.1,
             1, 99);
    ASSERT_LR(s, 6, NULL, 0.0240016);
    dpt_schedule_free(s);
}

Test(schedule, onecycle_defaults_from_run)
{
    /* max_lr = --lr = 0.5, total = epochs 2 * steps_per_epoch 5 = 10: peak 0.5 at step 2,
     * start 0.5/25 = 0.02, end 0.02/1e4 = 2e-6 at step 9. final_div_factor=1e+4 keeps its
     * '+' (a '+' before a digit does not split the spec). */
    dpt_schedule_t *s = make("onecycle:final_div_factor=1e+4", NULL, 0.5, 5, 2);
    ASSERT_LR(s, 0, NULL, 0.02);
    ASSERT_LR(s, 2, NULL, 0.5);
    ASSERT_LR(s, 9, NULL, 2e-6);
    dpt_schedule_free(s);
    /* epochs= key overrides the run: 4 * 5 = 20 steps, peak at 0.3*20-1 = 5. */
    s = make("onecycle:epochs=4", NULL, 0.5, 5, 2);
    ASSERT_LR(s, 5, NULL, 0.5);
    ASSERT_LR(s, 19, NULL, 2e-6);
    dpt_schedule_free(s);
    /* onecycle with cycle_momentum=0 drives no momentum. */
    s = make("onecycle:cycle_momentum=0", NULL, 0.5, 5, 2);
    double m = 3;
    cr_assert_eq(dpt_schedule_momentum(s, 1, &m), 0);
    cr_assert_eq(m, 3);
    dpt_schedule_free(s);
}

Test(schedule, linear_warmup_then_step_sequential_clock)
{
    /* Warmup linear 4 steps from 0.25, lr 1: factor 0.25 + 0.75 t/4 -> 0.25, 0.4375, 0.625,
     * 0.8125. Then StepLR step_size 1 gamma 0.5 per epoch (2 steps/epoch) with its clock
     * restarted at step 4: steps 4,5 -> epoch 0 -> 1; 6,7 -> 0.5; 8 -> 0.25. */
    dpt_schedule_t *s =
        make("step:step_size=1,gamma=0.5", "linear:steps=4,start_factor=0.25", 1.0, 2, 10);
    ASSERT_LR(s, 0, NULL, 0.25);
    ASSERT_LR(s, 1, NULL, 0.4375);
    ASSERT_LR(s, 2, NULL, 0.625);
    ASSERT_LR(s, 3, NULL, 0.8125);
    ASSERT_LR(s, 4, NULL, 1.0);
    ASSERT_LR(s, 5, NULL, 1.0);
    ASSERT_LR(s, 6, NULL, 0.5);
    ASSERT_LR(s, 8, NULL, 0.25);
    dpt_schedule_free(s);
}

Test(schedule, constant_warmup_then_cosine)
{
    /* Warmup constant factor 0.5 for 3 steps at lr 0.2 -> 0.1; then cosine T_max 4 (per
     * step) from step 3: step 3 -> 0.2, step 5 (t=2) -> 0.1, step 7 (t=4) -> 0 held. */
    dpt_schedule_t *s = make("cosine:T_max=4,unit=step", "constant:steps=3,factor=0.5", 0.2, 1, 20);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 2, NULL, 0.1);
    ASSERT_LR(s, 3, NULL, 0.2);
    ASSERT_LR(s, 5, NULL, 0.1);
    ASSERT_LR(s, 7, NULL, 0.0);
    ASSERT_LR(s, 19, NULL, 0.0);
    dpt_schedule_free(s);
    /* Default warmup factor 1/3 (PyTorch's LinearLR/ConstantLR default). */
    s = make(NULL, "linear:steps=2", 0.3, 1, 20);
    ASSERT_LR(s, 0, NULL, 0.1);
    ASSERT_LR(s, 1, NULL, 0.2);
    ASSERT_LR(s, 2, NULL, 0.3);
    dpt_schedule_free(s);
}

Test(schedule, warmup_keeps_onecycle_momentum_at_start)
{
    /* During warmup the momentum is the main schedule's at clock 0 (max_momentum 0.95);
     * after 2 warmup steps onecycle starts: step 3 is its step 1 -> 0.52 and 0.9. */
    dpt_schedule_t *s = make("onecycle:max_lr=1,total_steps=10", "linear:steps=2", 1.0, 1, 12);
    ASSERT_MOM(s, 0, 0.95);
    ASSERT_MOM(s, 1, 0.95);
    ASSERT_LR(s, 3, NULL, 0.52);
    ASSERT_MOM(s, 3, 0.9);
    dpt_schedule_free(s);
}

Test(schedule, same_answer_for_huge_steps)
{
    /* Closed forms do not loop over t: far past the end of training, values stay defined. */
    dpt_schedule_t *s = make("cosine-restarts:T_0=1,T_mult=2", NULL, 1.0, 1, 1);
    /* Cycle starts are 2^k - 1; step 2^40 - 1 starts a cycle -> lr 1. */
    ASSERT_LR(s, (1ULL << 40) - 1, NULL, 1.0);
    dpt_schedule_free(s);
    s = make("step:step_size=1,gamma=0.5", NULL, 1.0, 1, 1);
    ASSERT_LR(s, UINT64_MAX, NULL, 0.0);
    dpt_schedule_free(s);
}

/* Text after "key=" up to the next space, into buf. */
static void field(const char *desc, const char *key, char *buf, size_t cap)
{
    const char *p = strstr(desc, key);
    cr_assert_not_null(p, "'%s' has no %s", desc, key);
    p += strlen(key);
    size_t n = strcspn(p, " ");
    cr_assert_lt(n, cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

Test(schedule, describe_lists_every_resolved_parameter)
{
    dpt_schedule_t *s = make("step:step_size=2", NULL, 0.1, 10, 5);
    cr_assert_str_eq(dpt_schedule_describe(s), "schedule=step:step_size=2,gamma=0.1,unit=epoch "
                                               "warmup=none lr=0.1 steps_per_epoch=10 epochs=5");
    dpt_schedule_free(s);
    s = make("cyclic:max_lr=1,step_size_up=3", "linear:steps=5", 0.25, 10, 5);
    cr_assert_str_eq(dpt_schedule_describe(s),
                     "schedule=cyclic:base_lr=0.25,max_lr=1,step_size_up=3,step_size_down=3,"
                     "mode=triangular,gamma=1,cycle_momentum=1,base_momentum=0.8,"
                     "max_momentum=0.9,unit=step warmup=linear:steps=5,"
                     "start_factor=0.3333333333333333 lr=0.25 steps_per_epoch=10 epochs=5");
    dpt_schedule_free(s);
}

Test(schedule, describe_round_trips)
{
    const char *specs[] = {
        NULL,
        "multistep:milestones=3/7/20,gamma=0.3",
        "onecycle:max_lr=0.9,pct_start=0.25,three_phase=1",
        "cosine:T_max=7,unit=step+plateau:patience=2,monitor=val_accuracy",
        "plateau:factor=0.5,threshold_mode=abs",
        "cosine-restarts:T_0=3,T_mult=3,eta_min=1e-5",
        "cyclic:max_lr=2,mode=exp_range,gamma=0.999",
        "polynomial:power=0.5",
        "linear:end_factor=0.1",
        "exponential:gamma=0.97",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        dpt_schedule_t *a = make(specs[i], "constant:steps=3", 0.1, 7, 9);
        char sched[2048], warm[256];
        field(dpt_schedule_describe(a), "schedule=", sched, sizeof sched);
        field(dpt_schedule_describe(a), "warmup=", warm, sizeof warm);
        dpt_schedule_t *b = make(sched, warm, 0.1, 7, 9);
        cr_assert_str_eq(dpt_schedule_describe(a), dpt_schedule_describe(b));
        for (uint64_t t = 0; t < 80; t++)
            cr_assert_eq(dpt_schedule_lr(a, t, NULL), dpt_schedule_lr(b, t, NULL), "%s step %llu",
                         sched, (unsigned long long)t);
        dpt_schedule_free(a);
        dpt_schedule_free(b);
    }
}

Test(schedule, names_and_help_cover_every_schedule)
{
    const char *names[] = {"constant",   "step",     "multistep", "exponential",
                           "polynomial", "linear",   "cosine",    "cosine-restarts",
                           "cyclic",     "onecycle", "plateau"};
    char help[8192];
    size_t n = dpt_schedule_help(help, sizeof help);
    cr_assert_lt(n, sizeof help);
    cr_assert_eq(strlen(help), n);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cr_assert_not_null(strstr(dpt_schedule_names(), names[i]), "%s", names[i]);
        cr_assert_not_null(strstr(help, names[i]), "%s", names[i]);
    }
    cr_assert_not_null(strstr(help, "T_max (required)"));
    cr_assert_not_null(strstr(help, "step_size_down=(step_size_up)"));
    cr_assert_not_null(strstr(help, "start_factor=0.3333333333333333"));
    /* Truncation still reports the full length and terminates the buffer. */
    char small[16];
    cr_assert_eq(dpt_schedule_help(small, sizeof small), n);
    cr_assert_eq(strlen(small), sizeof small - 1);
    dpt_schedule_free(NULL);
}
