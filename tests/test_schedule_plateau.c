/* Tests for ReduceLROnPlateau in src/optim/schedule.c: PyTorch's step() rules (mode,
 * threshold, patience, cooldown, min_lr, eps), composition with warmup and a main schedule,
 * and exact resumption from a copied state. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "dptrain/schedule.h"

#define TOL(x) (1e-12 * fabs(x) + 1e-15)
#define ASSERT_LR(s, step, ps, want)                                                               \
    do {                                                                                           \
        double want_ = (want);                                                                     \
        cr_assert_float_eq(dpt_schedule_lr((s), (step), (ps)), want_, TOL(want_),                  \
                           "lr at step %llu: got %.17g, want %.17g", (unsigned long long)(step),   \
                           dpt_schedule_lr((s), (step), (ps)), want_);                             \
    } while (0)

static dpt_schedule_t *make(const char *spec, const char *warmup, double lr, size_t spe)
{
    dpt_schedule_t *s = NULL;
    cr_assert_eq(dpt_schedule_create(spec, warmup, lr, spe, 100, &s), DPT_OK, "%s: %s", spec,
                 dpt_last_error());
    return s;
}

/* Feeds metrics in order; reduced[i] is what update returned for metric i. */
static void feed(const dpt_schedule_t *s, dpt_plateau_state_t *ps, const double *metrics,
                 const int *reduced, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(dpt_schedule_plateau_update(s, ps, metrics[i]), reduced[i],
                     "metric %zu (%g): expected reduced=%d", i, metrics[i], reduced[i]);
}

Test(plateau, defaults_monitor_val_loss_mode_min)
{
    dpt_schedule_t *s = make("plateau", NULL, 1.0, 1);
    const char *monitor = NULL;
    cr_assert_eq(dpt_schedule_uses_plateau(s, &monitor), 1);
    cr_assert_str_eq(monitor, "val_loss");
    cr_assert(strstr(dpt_schedule_describe(s),
                     "plateau:mode=min,factor=0.1,patience=10,threshold=0.0001,"
                     "threshold_mode=rel,cooldown=0,min_lr=0,eps=1e-08,monitor=val_loss"));
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    cr_assert(isinf(ps.best) && ps.best > 0);
    cr_assert_eq(ps.scale, 1.0);
    cr_assert_eq(ps.has_best, 0);
    /* Patience 10: 1 improvement then 10 bad epochs keep the lr; the 11th reduces to 0.1. */
    int reduced = 0;
    for (int i = 0; i < 11; i++)
        reduced += dpt_schedule_plateau_update(s, &ps, 1.0);
    cr_assert_eq(reduced, 0);
    ASSERT_LR(s, 0, &ps, 1.0);
    cr_assert_eq(dpt_schedule_plateau_update(s, &ps, 1.0), 1);
    ASSERT_LR(s, 0, &ps, 0.1);
    ASSERT_LR(s, 0, NULL, 1.0); /* NULL state: no reductions */
    cr_assert_eq(ps.reductions, 1);
    cr_assert_eq(ps.has_best, 1);
    dpt_schedule_free(s);
}

Test(plateau, mode_min_rel_threshold_and_patience)
{
    /* patience 1, factor 0.5, threshold 0.1 rel: better means < best * 0.9.
     * 1.0 best; 0.95 not better (needs < 0.9) bad 1; 0.95 bad 2 > 1 -> reduce to 0.5;
     * 0.5 better (best .5) ; 0.46 not better (needs < .45) bad 1; 0.44 better. */
    dpt_schedule_t *s = make("plateau:patience=1,factor=0.5,threshold=0.1", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {1.0, 0.95, 0.95, 0.5, 0.46, 0.44};
    const int r[] = {0, 0, 1, 0, 0, 0};
    feed(s, &ps, m, r, 6);
    cr_assert_float_eq(ps.best, 0.44, 0);
    cr_assert_eq(ps.num_bad_epochs, 0);
    ASSERT_LR(s, 3, &ps, 0.5);
    dpt_schedule_free(s);
}

Test(plateau, mode_min_abs_threshold)
{
    /* threshold 0.01 abs: better means < best - 0.01. 1.0; 0.995 bad (patience 0 ->
     * reduce to 0.1); 0.985 better (< 0.99). */
    dpt_schedule_t *s = make("plateau:patience=0,threshold=0.01,threshold_mode=abs", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {1.0, 0.995, 0.985};
    const int r[] = {0, 1, 0};
    feed(s, &ps, m, r, 3);
    cr_assert_float_eq(ps.best, 0.985, 0);
    ASSERT_LR(s, 0, &ps, 0.1);
    dpt_schedule_free(s);
}

Test(plateau, accuracy_monitor_defaults_to_mode_max)
{
    /* monitor=val_accuracy -> mode max, best starts at -inf. patience 0, factor 0.5:
     * 0.5 better; 0.6 better; 0.6 not better (needs > 0.6 * 1.0001) -> reduce to 0.5. */
    dpt_schedule_t *s = make("plateau:monitor=val_accuracy,patience=0,factor=0.5", NULL, 0.2, 1);
    const char *monitor = NULL;
    cr_assert_eq(dpt_schedule_uses_plateau(s, &monitor), 1);
    cr_assert_str_eq(monitor, "val_accuracy");
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    cr_assert(isinf(ps.best) && ps.best < 0);
    const double m[] = {0.5, 0.6, 0.6};
    const int r[] = {0, 0, 1};
    feed(s, &ps, m, r, 3);
    ASSERT_LR(s, 0, &ps, 0.1);
    dpt_schedule_free(s);
}

Test(plateau, mode_max_abs)
{
    /* mode max, abs 0.05: better means > best + 0.05. 0.5; 0.54 bad 1; 0.56 better. */
    dpt_schedule_t *s =
        make("plateau:mode=max,threshold_mode=abs,threshold=0.05,patience=1", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {0.5, 0.54, 0.56};
    const int r[] = {0, 0, 0};
    feed(s, &ps, m, r, 2);
    cr_assert_eq(ps.num_bad_epochs, 1);
    cr_assert_float_eq(ps.best, 0.5, 0);
    feed(s, &ps, m + 2, r + 2, 1);
    cr_assert_eq(ps.num_bad_epochs, 0);
    cr_assert_float_eq(ps.best, 0.56, 0);
    dpt_schedule_free(s);
}

Test(plateau, cooldown_ignores_bad_epochs)
{
    /* patience 0, cooldown 2, factor 0.5: 1.0 best; 2.0 bad -> reduce (0.5), cooldown 2;
     * 2.0 in cooldown (counter 2 -> 1, bad reset); 2.0 (1 -> 0, reset); 2.0 bad -> reduce
     * (0.25). */
    dpt_schedule_t *s = make("plateau:patience=0,cooldown=2,factor=0.5", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {1.0, 2.0, 2.0, 2.0, 2.0};
    const int r[] = {0, 1, 0, 0, 1};
    feed(s, &ps, m, r, 5);
    cr_assert_eq(ps.reductions, 2);
    cr_assert_eq(ps.cooldown_counter, 2);
    ASSERT_LR(s, 0, &ps, 0.25);
    dpt_schedule_free(s);
}

Test(plateau, min_lr_floor_then_no_more_reductions)
{
    /* factor 0.1, min_lr 0.05, lr 1, patience 0: 1 -> max(0.1, 0.05) = 0.1 ->
     * max(0.01, 0.05) = 0.05 -> max(0.005, 0.05) = 0.05 (old - new = 0 <= eps: skipped). */
    dpt_schedule_t *s = make("plateau:patience=0,min_lr=0.05", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {1.0, 1.0, 1.0, 1.0};
    const int r[] = {0, 1, 1, 0};
    feed(s, &ps, m, r, 4);
    ASSERT_LR(s, 0, &ps, 0.05);
    cr_assert_eq(ps.reductions, 2);
    dpt_schedule_free(s);
}

Test(plateau, eps_skips_tiny_reductions)
{
    /* factor 0.5, eps 0.3, lr 1: 1 -> 0.5 (diff 0.5 > 0.3); 0.5 -> 0.25 has diff 0.25 <=
     * 0.3: skipped, lr stays 0.5. */
    dpt_schedule_t *s = make("plateau:patience=0,factor=0.5,eps=0.3", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {1.0, 1.0, 1.0};
    const int r[] = {0, 1, 0};
    feed(s, &ps, m, r, 3);
    ASSERT_LR(s, 0, &ps, 0.5);
    dpt_schedule_free(s);
}

Test(plateau, nan_metric_is_a_bad_epoch)
{
    dpt_schedule_t *s = make("plateau:patience=1", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {1.0, NAN, NAN};
    const int r[] = {0, 0, 1};
    feed(s, &ps, m, r, 3);
    cr_assert_float_eq(ps.best, 1.0, 0);
    dpt_schedule_free(s);
}

Test(plateau, scales_warmup_too)
{
    /* Warmup linear 4 steps from 0.5, lr 1: factor 0.5 + 0.5 t/4. After one reduction
     * (factor 0.5) step 1 is 0.5 * 0.625 = 0.3125 and step 6 (main) is 0.5. */
    dpt_schedule_t *s =
        make("plateau:patience=0,factor=0.5", "linear:steps=4,start_factor=0.5", 1.0, 2);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    ASSERT_LR(s, 1, &ps, 0.625);
    const double m[] = {1.0, 1.0};
    const int r[] = {0, 1};
    feed(s, &ps, m, r, 2);
    ASSERT_LR(s, 1, &ps, 0.3125);
    ASSERT_LR(s, 6, &ps, 0.5);
    dpt_schedule_free(s);
}

Test(plateau, combined_with_cosine_and_floor)
{
    /* cosine T_max 4 (epochs, 1 step each), lr 0.1, plus plateau factor 0.5, min_lr 0.03:
     * lr = min(f, max(0.5 f, 0.03)). f(1) = 0.08535533905932738 -> 0.04267766952966369;
     * f(2) = 0.05 -> max(0.025, 0.03) = 0.03; f(4) = 0 -> min(0, 0.03) = 0 (never lifted). */
    dpt_schedule_t *s =
        make("cosine:T_max=4+plateau:patience=0,factor=0.5,min_lr=0.03", NULL, 0.1, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    const double m[] = {3.0, 3.0};
    const int r[] = {0, 1};
    feed(s, &ps, m, r, 2);
    ASSERT_LR(s, 1, &ps, 0.04267766952966369);
    ASSERT_LR(s, 2, &ps, 0.03);
    ASSERT_LR(s, 4, &ps, 0.0);
    ASSERT_LR(s, 1, NULL, 0.08535533905932738);
    dpt_schedule_free(s);
}

Test(plateau, either_order_and_main_unit)
{
    /* "plateau:...+step:..." is the same schedule as "step:...+plateau:...". */
    dpt_schedule_t *a = make("plateau:patience=3+step:step_size=2,gamma=0.5", NULL, 1.0, 3);
    dpt_schedule_t *b = make("step:step_size=2,gamma=0.5+plateau:patience=3", NULL, 1.0, 3);
    cr_assert_str_eq(dpt_schedule_describe(a), dpt_schedule_describe(b));
    ASSERT_LR(a, 5, NULL, 1.0);
    ASSERT_LR(a, 6, NULL, 0.5);
    dpt_schedule_free(a);
    dpt_schedule_free(b);
}

Test(plateau, update_is_a_no_op_without_plateau)
{
    dpt_schedule_t *s = make("cosine:T_max=3", NULL, 1.0, 1);
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    cr_assert_eq(dpt_schedule_uses_plateau(s, NULL), 0);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(dpt_schedule_plateau_update(s, &ps, 1.0), 0);
    cr_assert_eq(ps.scale, 1.0);
    dpt_schedule_free(s);
}

Test(plateau, resume_from_copied_state_is_exact)
{
    /* A run with warmup, cosine and plateau is interrupted after epoch 6: its state is
     * copied as bytes (as a checkpoint does) and a second schedule built from the same
     * specs continues. Every later lr and decision must match the uninterrupted run. */
    const char *spec = "cosine:T_max=20,eta_min=0.001+plateau:patience=1,factor=0.5,cooldown=1";
    const char *warm = "linear:steps=5";
    const size_t spe = 7;
    const double metrics[] = {2.0, 1.5, 1.6,  1.7, 1.4, 1.45, 1.5, 1.5, 1.3, 1.35,
                              1.4, 1.4, 1.41, 1.2, 1.3, 1.3,  1.3, 1.3, 1.3, 1.3};
    const size_t epochs = sizeof metrics / sizeof metrics[0];
    dpt_schedule_t *a = make(spec, warm, 0.1, spe);
    dpt_plateau_state_t pa, pb;
    dpt_schedule_plateau_init(a, &pa);
    double lr_a[20 * 7];
    int red_a[20];
    for (size_t e = 0; e < epochs; e++) {
        for (size_t i = 0; i < spe; i++)
            lr_a[e * spe + i] = dpt_schedule_lr(a, e * spe + i, &pa);
        red_a[e] = dpt_schedule_plateau_update(a, &pa, metrics[e]);
    }
    int total = 0;
    for (size_t e = 0; e < epochs; e++)
        total += red_a[e];
    cr_assert_geq(total, 2, "fixture must exercise several reductions");

    /* Replay the first 6 epochs, checkpoint, resume on a fresh schedule object. */
    dpt_schedule_t *b = make(spec, warm, 0.1, spe);
    dpt_schedule_plateau_init(b, &pb);
    for (size_t e = 0; e < 6; e++)
        dpt_schedule_plateau_update(b, &pb, metrics[e]);
    unsigned char saved[sizeof pb];
    memcpy(saved, &pb, sizeof pb);
    dpt_schedule_free(b);
    b = make(spec, warm, 0.1, spe);
    dpt_plateau_state_t resumed;
    memcpy(&resumed, saved, sizeof resumed);
    for (size_t e = 6; e < epochs; e++) {
        for (size_t i = 0; i < spe; i++) {
            uint64_t t = e * spe + i;
            double lr = dpt_schedule_lr(b, t, &resumed);
            cr_assert(memcmp(&lr, &lr_a[t], sizeof lr) == 0, "step %llu: %.17g vs %.17g",
                      (unsigned long long)t, lr, lr_a[t]);
        }
        cr_assert_eq(dpt_schedule_plateau_update(b, &resumed, metrics[e]), red_a[e]);
    }
    cr_assert(memcmp(&resumed, &pa, sizeof pa) == 0);
    dpt_schedule_free(a);
    dpt_schedule_free(b);
}
