/* Tests for the engine (src/train, src/parallel): bitwise determinism across thread counts,
 * the last partial batch, micro-shard equivalence, learning on a separable problem. */
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

/* The learnable table of support.c, in the real CSV format the loader reads. */
static char *write_table(void)
{
    char *dir = t_make_tmpdir("trainer");
    char *path = t_write_group_table(dir, ROWS, CLASSES, 99);
    free(dir);
    return path;
}

typedef struct {
    float *params;
    size_t n;
    dpt_epoch_stats_t stats[2];
    double val_loss, val_acc;
    size_t team;
} outcome_t;

static double const_lr(void *user, uint64_t step, double *momentum)
{
    return 0.05;
}

static outcome_t train_run(const char *csv, size_t threads, size_t batch, size_t micro,
                           const char *model_spec)
{
    char spec[4096];
    snprintf(spec, sizeof spec, "csv:%s", csv);
    dpt_data_options_t opt = dpt_data_options_default();
    dpt_dataset_t *all, *test, *train, *val;
    cr_assert_eq(dpt_dataset_open(spec, &opt, &all, &test), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_split(all, 0.2, 5, &train, &val), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_fit_normalization(train), DPT_OK);
    cr_assert_eq(dpt_dataset_copy_normalization(val, train), DPT_OK);
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create(model_spec, FEATURES, CLASSES, &m), DPT_OK, "%s",
                 dpt_last_error());
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create("sgd:momentum=0.9", m, &o), DPT_OK);
    dpt_trainer_config_t cfg = {
        .threads = threads, .batch_size = batch, .micro_batch = micro, .seed = 1234};
    dpt_trainer_t *t;
    cr_assert_eq(dpt_trainer_create(m, o, &cfg, &t), DPT_OK, "%s", dpt_last_error());
    outcome_t out = {.n = dpt_model_param_count(m)};
    for (uint64_t e = 0; e < 2; e++)
        cr_assert_eq(
            dpt_trainer_train_epoch(t, train, e, const_lr, NULL, NULL, NULL, &out.stats[e]),
            DPT_OK);
    cr_assert_eq(dpt_trainer_evaluate(t, val, &out.val_loss, &out.val_acc, NULL), DPT_OK);
    out.team = dpt_trainer_team_size(t);
    out.params = malloc(out.n * sizeof(float));
    memcpy(out.params, dpt_trainer_params(t), out.n * sizeof(float));
    dpt_trainer_free(t);
    dpt_optimizer_free(o);
    dpt_model_free(m);
    dpt_dataset_free(train), dpt_dataset_free(val), dpt_dataset_free(all);
    dpt_dataset_free(test);
    return out;
}

#define DROPOUT_MLP "dense:32,relu,dropout:0.2,dense:16,tanh,dense:4"

static void assert_same_run(const outcome_t *ref, const outcome_t *o, size_t threads)
{
    cr_assert_eq(o->team, threads, "asked for %zu threads, got a team of %zu", threads, o->team);
    cr_assert_eq(memcmp(ref->params, o->params, ref->n * sizeof(float)), 0,
                 "parameters differ between 1 and %zu threads", threads);
    for (int e = 0; e < 2; e++) {
        cr_assert_eq(memcmp(&ref->stats[e].loss, &o->stats[e].loss, sizeof(double)), 0);
        cr_assert_eq(ref->stats[e].accuracy, o->stats[e].accuracy);
        cr_assert_eq(ref->stats[e].steps, o->stats[e].steps);
    }
    cr_assert_eq(memcmp(&ref->val_loss, &o->val_loss, sizeof(double)), 0);
}

Test(determinism, bitwise_identical_for_1_2_3_4_threads, .timeout = 120)
{
    char *csv = write_table();
    /* 480 training rows, batch 64 -> 7 full batches + one of 32; micro 16 -> 4 shards. */
    outcome_t ref = train_run(csv, 1, 64, 16, DROPOUT_MLP);
    cr_assert_eq(ref.team, 1u);
    for (size_t threads = 2; threads <= 4; threads++) {
        outcome_t o = train_run(csv, threads, 64, 16, DROPOUT_MLP);
        assert_same_run(&ref, &o, threads);
        free(o.params);
    }
    free(ref.params);
    free(csv);
}

/* The shapes of a 16-core machine, oversubscribed here: 16 shards over 5 and 16 threads
 * (uneven shard and parameter splits), and 16 threads with fewer shards than threads. */
Test(determinism, bitwise_identical_up_to_16_threads, .timeout = 120)
{
    char *csv = write_table();
    const struct {
        size_t batch, threads;
    } cases[] = {{256, 5}, {256, 16}, {64, 16}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        outcome_t ref = train_run(csv, 1, cases[i].batch, 16, DROPOUT_MLP);
        outcome_t o = train_run(csv, cases[i].threads, cases[i].batch, 16, DROPOUT_MLP);
        assert_same_run(&ref, &o, cases[i].threads);
        free(ref.params), free(o.params);
    }
    free(csv);
}

Test(trainer, last_partial_batch_is_a_smaller_step)
{
    char *csv = write_table();
    outcome_t o = train_run(csv, 2, 64, 64, "dense:4");
    /* 480 rows / 64 = 7 full batches + 1 of 32: 8 steps, every sample seen once. */
    cr_assert_eq(o.stats[0].steps, 8u);
    cr_assert_eq(o.stats[0].samples, 480u);
    free(o.params);
    free(csv);
}

Test(trainer, micro_shards_sum_to_the_whole_batch_gradient)
{
    char *csv = write_table();
    /* Same batch, different micro-shard cut: equal up to float rounding, not bitwise. */
    outcome_t a = train_run(csv, 1, 64, 64, "dense:16,relu,dense:4");
    outcome_t b = train_run(csv, 1, 64, 8, "dense:16,relu,dense:4");
    double max_diff = 0;
    for (size_t i = 0; i < a.n; i++)
        max_diff = fmax(max_diff, fabs(a.params[i] - b.params[i]));
    cr_assert_lt(max_diff, 1e-4, "max parameter difference %g", max_diff);
    cr_assert_gt(max_diff, 0.0, "different cuts should round differently");
    free(a.params), free(b.params), free(csv);
}

Test(trainer, learns_a_separable_problem)
{
    char *csv = write_table();
    outcome_t o = train_run(csv, 2, 32, 16, "dense:32,relu,dense:4");
    cr_assert_lt(o.stats[1].loss, o.stats[0].loss);
    cr_assert_gt(o.val_acc, 0.6, "validation accuracy %g", o.val_acc);
    free(o.params), free(csv);
}

Test(trainer, rejects_bad_config)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create("dense:4", 8, 4, &m), DPT_OK);
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create(NULL, m, &o), DPT_OK);
    dpt_trainer_t *t = NULL;
    dpt_trainer_config_t cfg = dpt_trainer_config_default();
    cfg.batch_size = 0;
    cr_assert_eq(dpt_trainer_create(m, o, &cfg, &t), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "batch size 0"));
    cfg = dpt_trainer_config_default();
    cfg.micro_batch = 70000;
    cr_assert_eq(dpt_trainer_create(m, o, &cfg, &t), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "micro-batch 70000 outside"), "%s", dpt_last_error());
    cr_assert_null(t);
    dpt_optimizer_free(o);
    dpt_model_free(m);
}

Test(trainer, epoch_order_is_a_seeded_permutation)
{
    uint32_t a[100], b[100], c[100];
    dpt_epoch_order(1, 0, a, 100);
    dpt_epoch_order(1, 0, b, 100);
    dpt_epoch_order(1, 1, c, 100);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_neq(memcmp(a, c, sizeof a), 0);
}

Test(trainer, auto_micro_batch_depends_on_the_batch_only)
{
    cr_assert_eq(dpt_micro_batch_resolve(128, 0), 64u);
    cr_assert_eq(dpt_micro_batch_resolve(512, 0), 64u);
    cr_assert_eq(dpt_micro_batch_resolve(2048, 0), 128u, "16 shards at batch 2048");
    cr_assert_eq(dpt_micro_batch_resolve(2049, 0), 129u);
    cr_assert_eq(dpt_micro_batch_resolve(32, 0), 64u);
    cr_assert_eq(dpt_micro_batch_resolve(512, 16), 16u, "an explicit value wins");
}
