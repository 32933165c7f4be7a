/* Tests for the trainer's two-phase path (src/train/trainer.c): global-norm gradient
 * clipping with torch.nn.utils.clip_grad_norm_ semantics, the reported gradient norm, lars and
 * lamb through the engine, bitwise determinism across 1-4 threads on that path, and the NaN
 * learning rate that ends a run of steps. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "dptrain/dataset.h"
#include "dptrain/trainer.h"
#include "support.h"

enum { ROWS = 600, CLASSES = 4, FEATURES = CLASSES * 5 }; /* t_write_group_table: 5 per class */

/* The learnable group-sum table of support.c (as in test_trainer.c). */
static dpt_dataset_t *open_table(dpt_dataset_t **all_out, dpt_dataset_t **test_out)
{
    char *dir = t_make_tmpdir("norms");
    char *path = t_write_group_table(dir, ROWS, CLASSES, 7);
    char spec[4096];
    snprintf(spec, sizeof spec, "csv:%s", path);
    dpt_data_options_t opt = dpt_data_options_default();
    cr_assert_eq(dpt_dataset_open(spec, &opt, all_out, test_out), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_fit_normalization(*all_out), DPT_OK);
    free(path), free(dir);
    return *all_out;
}

typedef struct {
    float *params;
    size_t n;
    dpt_epoch_stats_t stats;
    size_t team;
} result_t;

static double lr_value = 0.05;
static double fixed_lr(void *user, uint64_t step, double *momentum)
{
    return lr_value;
}

/* Runs `steps` steps (0: two epochs) and keeps the parameters. */
static result_t run(const char *opt_spec, const char *model, double clip, size_t threads,
                    size_t steps)
{
    dpt_dataset_t *all, *test;
    dpt_dataset_t *ds = open_table(&all, &test);
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create(model, FEATURES, CLASSES, &m), DPT_OK, "%s", dpt_last_error());
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create(opt_spec, m, &o), DPT_OK, "%s", dpt_last_error());
    dpt_trainer_config_t cfg = {.threads = threads,
                                .batch_size = 64,
                                .micro_batch = 16,
                                .seed = 99,
                                .clip_grad_norm = clip};
    dpt_trainer_t *t;
    cr_assert_eq(dpt_trainer_create(m, o, &cfg, &t), DPT_OK, "%s", dpt_last_error());
    result_t r = {.n = dpt_model_param_count(m)};
    if (steps)
        cr_assert_eq(dpt_trainer_train_steps(t, ds, steps, fixed_lr, NULL, NULL, &r.stats), DPT_OK);
    else
        for (uint64_t e = 0; e < 2; e++)
            cr_assert_eq(dpt_trainer_train_epoch(t, ds, e, fixed_lr, NULL, NULL, NULL, &r.stats),
                         DPT_OK);
    r.team = dpt_trainer_team_size(t);
    r.params = malloc(r.n * sizeof(float));
    memcpy(r.params, dpt_trainer_params(t), r.n * sizeof(float));
    dpt_trainer_free(t);
    dpt_optimizer_free(o);
    dpt_model_free(m);
    dpt_dataset_free(all), dpt_dataset_free(test);
    return r;
}

/* The initial parameters of the same model and seed (a trainer that takes no step). */
static float *initial_params(const char *model, size_t *n)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create(model, FEATURES, CLASSES, &m), DPT_OK);
    *n = dpt_model_param_count(m);
    float *p = malloc(*n * sizeof(float));
    dpt_model_init_params(m, p, 99);
    dpt_model_free(m);
    return p;
}

#define MLP "dense:32,relu,dropout:0.1,dense:16,tanh,dense:4"

static void expect_same_for_1_to_4_threads(const char *opt_spec, double clip)
{
    result_t ref = run(opt_spec, MLP, clip, 1, 0);
    cr_assert(isfinite(ref.stats.grad_norm), "%s: grad norm %g", opt_spec, ref.stats.grad_norm);
    /* The clip level is below the last step's norm, so clipping is really at work. */
    if (clip > 0) cr_assert_gt(ref.stats.grad_norm, clip, "norm %g", ref.stats.grad_norm);
    for (size_t threads = 2; threads <= 4; threads++) {
        result_t r = run(opt_spec, MLP, clip, threads, 0);
        cr_assert_eq(r.team, threads);
        cr_assert_eq(memcmp(ref.params, r.params, ref.n * sizeof(float)), 0,
                     "%s clip %g: parameters differ between 1 and %zu threads", opt_spec, clip,
                     threads);
        cr_assert_eq(memcmp(&ref.stats.grad_norm, &r.stats.grad_norm, sizeof(double)), 0,
                     "grad norm %.17g vs %.17g", ref.stats.grad_norm, r.stats.grad_norm);
        free(r.params);
    }
    free(ref.params);
}

Test(norms_determinism, sgd_with_clipping, .timeout = 120)
{
    lr_value = 0.05;
    expect_same_for_1_to_4_threads("sgd:momentum=0.9", 0.25);
}

Test(norms_determinism, lamb, .timeout = 120)
{
    lr_value = 0.01;
    expect_same_for_1_to_4_threads("lamb:exclude_bias=1", 0);
}

Test(norms_determinism, lars_with_clipping, .timeout = 120)
{
    lr_value = 1.0;
    expect_same_for_1_to_4_threads("lars:weight_decay=1e-4", 0.25);
}

/* A wider model (about 140k parameters, ~35 blocks of 4096) so that the blocks are really
 * shared out among the threads, up to 16 (oversubscribed here), for every phase of the
 * two-phase path: clipping, and lamb's three phases. 20 steps keep it quick. */
Test(norms_determinism, many_blocks_up_to_16_threads, .timeout = 120)
{
    const char *wide = "dense:512,relu,dense:256,relu,dense:4";
    const struct {
        const char *opt;
        double clip, lr;
    } cases[] = {{"sgd:momentum=0.9", 0.25, 0.05}, {"lamb:exclude_bias=1", 0, 0.01}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lr_value = cases[i].lr;
        result_t ref = run(cases[i].opt, wide, cases[i].clip, 1, 20);
        const size_t threads[] = {3, 16};
        for (size_t k = 0; k < 2; k++) {
            result_t r = run(cases[i].opt, wide, cases[i].clip, threads[k], 20);
            cr_assert_eq(r.team, threads[k]);
            cr_assert_eq(memcmp(ref.params, r.params, ref.n * sizeof(float)), 0,
                         "%s: parameters differ between 1 and %zu threads", cases[i].opt,
                         threads[k]);
            cr_assert_eq(memcmp(&ref.stats.grad_norm, &r.stats.grad_norm, sizeof(double)), 0);
            free(r.params);
        }
        free(ref.params);
    }
}

Test(clipping, below_the_norm_scales_the_step_exactly, .timeout = 60)
{
    /* One plain SGD step at lr 1 moves the parameters by minus the (clipped) gradient. */
    lr_value = 1.0;
    size_t n;
    float *p0 = initial_params("dense:8,relu,dense:4", &n);
    result_t free_run = run("sgd", "dense:8,relu,dense:4", 1e9, 2, 1);
    double norm = free_run.stats.grad_norm, step_sq = 0;
    for (size_t i = 0; i < n; i++)
        step_sq += pow((double)p0[i] - free_run.params[i], 2);
    cr_assert(norm > 0.1, "grad norm %g", norm);
    cr_assert_float_eq(sqrt(step_sq), norm, 1e-5 * norm, "step %g vs reported norm %g",
                       sqrt(step_sq), norm);
    /* max = norm/4: each gradient scaled by max/(norm + 1e-6) */
    double max = norm / 4, coef = max / (norm + 1e-6);
    result_t clipped = run("sgd", "dense:8,relu,dense:4", max, 2, 1);
    cr_assert_eq(clipped.stats.grad_norm, norm, "the reported norm is the one before clipping");
    double clipped_sq = 0;
    for (size_t i = 0; i < n; i++) {
        double full = (double)p0[i] - free_run.params[i], got = (double)p0[i] - clipped.params[i];
        clipped_sq += got * got;
        cr_assert_float_eq(got, full * coef, 1e-6, "param %zu: %g vs %g", i, got, full * coef);
    }
    cr_assert_float_eq(sqrt(clipped_sq), max, 1e-4 * max);
    free(p0), free(free_run.params), free(clipped.params);
}

Test(clipping, above_the_norm_changes_nothing, .timeout = 60)
{
    lr_value = 0.05;
    result_t plain = run("sgd:momentum=0.9", MLP, 0, 2, 0);
    cr_assert(isnan(plain.stats.grad_norm), "the fused path does not compute the norm");
    /* A max far above any gradient norm: the two-phase path, no scaling, same bits. */
    result_t loose = run("sgd:momentum=0.9", MLP, 1e6, 2, 0);
    cr_assert(isfinite(loose.stats.grad_norm) && loose.stats.grad_norm > 0);
    cr_assert_eq(memcmp(plain.params, loose.params, plain.n * sizeof(float)), 0,
                 "two-phase path without clipping must equal the fused path");
    result_t tight = run("sgd:momentum=0.9", MLP, 0.01, 2, 0);
    cr_assert_neq(memcmp(plain.params, tight.params, plain.n * sizeof(float)), 0);
    free(plain.params), free(loose.params), free(tight.params);
}

Test(clipping, rejects_negative_max)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create("dense:4", 8, 4, &m), DPT_OK);
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create(NULL, m, &o), DPT_OK);
    dpt_trainer_config_t cfg = dpt_trainer_config_default();
    cfg.clip_grad_norm = -1;
    dpt_trainer_t *t = NULL;
    cr_assert_eq(dpt_trainer_create(m, o, &cfg, &t), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "clip_grad_norm -1 must be a finite number >= 0"), "%s",
              dpt_last_error());
    cr_assert_null(t);
    dpt_optimizer_free(o);
    dpt_model_free(m);
}

Test(lamb_engine, learns_the_table, .timeout = 60)
{
    lr_value = 0.02;
    /* LAMB's step scales with each layer's weight norm; this lr learns the table in two
     * epochs from Xavier's scale (PyTorch's default draws ~2x smaller weights here) */
    result_t a = run("lamb", "dense:32:xavier,relu,dense:4:xavier", 0, 2, 0);
    dpt_epoch_stats_t second = a.stats;
    cr_assert_lt(second.loss, log(4.0) * 0.8, "lamb did not learn: loss %g", second.loss);
    free(a.params);
}

static double stop_at_three(void *user, uint64_t step, double *momentum)
{
    return step < 3 ? 0.01 : NAN;
}

Test(trainer_steps, nan_lr_stops_early, .timeout = 60)
{
    dpt_dataset_t *all, *test;
    dpt_dataset_t *ds = open_table(&all, &test);
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create("dense:4", FEATURES, CLASSES, &m), DPT_OK);
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create("adam", m, &o), DPT_OK);
    dpt_trainer_config_t cfg = dpt_trainer_config_default();
    cfg.threads = 2, cfg.batch_size = 32;
    dpt_trainer_t *t;
    cr_assert_eq(dpt_trainer_create(m, o, &cfg, &t), DPT_OK);
    double losses[10];
    dpt_epoch_stats_t st;
    cr_assert_eq(dpt_trainer_train_steps(t, ds, 10, stop_at_three, NULL, losses, &st), DPT_OK);
    cr_assert_eq(st.steps, 3u);
    cr_assert_eq(st.samples, 96u);
    cr_assert_eq(dpt_trainer_step_count(t), 3u);
    dpt_trainer_free(t);
    dpt_optimizer_free(o);
    dpt_model_free(m);
    dpt_dataset_free(all), dpt_dataset_free(test);
}
