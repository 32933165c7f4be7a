/* Tests for image networks in the engine: bitwise determinism of ResNet-20 (synthetic data)
 * and of a CNN with batch norm (Fashion-MNIST) for 1, 2, 3 and 16 threads, running
 * statistics folded per micro-shard, evaluation on the running statistics, and every
 * optimizer on a model with state tensors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/dataset.h"
#include "dptrain/trainer.h"
#include "support.h"

#define BN_CNN                                                                                     \
    "conv:8:3,bn,relu,maxpool:2,conv:16:3:bias=0,bn,relu,maxpool:2,dense:32,bn,relu,dropout:0.2,"  \
    "dense:10"

typedef struct {
    float *params;
    size_t n;
    double loss, val_loss;
} outcome_t;

static double const_lr(void *user, uint64_t step, double *momentum)
{
    return 0.05;
}

static void open_data(const char *spec, dpt_dataset_t **train, dpt_dataset_t **test)
{
    cr_assert_eq(dpt_dataset_open(spec, NULL, train, test), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_fit_normalization(*train), DPT_OK);
    if (*test) cr_assert_eq(dpt_dataset_copy_normalization(*test, *train), DPT_OK);
}

/* `steps` steps of the model on train with `threads` threads, then the loss on test. */
static outcome_t run(const char *model_spec, const char *optimizer, const dpt_dataset_t *train,
                     const dpt_dataset_t *test, size_t threads, size_t batch, size_t micro,
                     size_t steps)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create_for_data(model_spec, train, dpt_dataset_classes(train), &m),
                 DPT_OK, "%s", dpt_last_error());
    dpt_optimizer_t *o;
    cr_assert_eq(dpt_optimizer_create(optimizer, m, &o), DPT_OK, "%s", dpt_last_error());
    dpt_trainer_config_t cfg = {
        .threads = threads, .batch_size = batch, .micro_batch = micro, .seed = 7};
    dpt_trainer_t *t;
    cr_assert_eq(dpt_trainer_create(m, o, &cfg, &t), DPT_OK, "%s", dpt_last_error());
    dpt_epoch_stats_t st;
    cr_assert_eq(dpt_trainer_train_steps(t, train, steps, const_lr, NULL, NULL, &st), DPT_OK, "%s",
                 dpt_last_error());
    cr_assert_eq(st.steps, steps);
    cr_assert_eq(dpt_trainer_team_size(t), threads);
    outcome_t out = {.n = dpt_model_param_count(m), .loss = st.loss};
    double acc;
    cr_assert_eq(dpt_trainer_evaluate(t, test, &out.val_loss, &acc, NULL), DPT_OK);
    out.params = malloc(out.n * sizeof(float));
    memcpy(out.params, dpt_trainer_params(t), out.n * sizeof(float));
    dpt_trainer_free(t);
    dpt_optimizer_free(o);
    dpt_model_free(m);
    return out;
}

static void assert_identical(const outcome_t *a, const outcome_t *b, size_t threads)
{
    cr_assert_eq(memcmp(a->params, b->params, a->n * sizeof(float)), 0,
                 "parameters or running statistics differ between 1 and %zu threads", threads);
    cr_assert_eq(memcmp(&a->loss, &b->loss, sizeof(double)), 0);
    cr_assert_eq(memcmp(&a->val_loss, &b->val_loss, sizeof(double)), 0);
}

static void determinism(const char *model, const char *data, size_t batch, size_t micro,
                        size_t steps)
{
    dpt_dataset_t *train, *test;
    open_data(data, &train, &test);
    outcome_t ref =
        run(model, "sgd:momentum=0.9,weight_decay=1e-4", train, test, 1, batch, micro, steps);
    cr_assert(isfinite(ref.loss) && isfinite(ref.val_loss));
    const size_t threads[] = {2, 3, 16};
    for (size_t i = 0; i < 3; i++) {
        outcome_t o = run(model, "sgd:momentum=0.9,weight_decay=1e-4", train, test, threads[i],
                          batch, micro, steps);
        assert_identical(&ref, &o, threads[i]);
        free(o.params);
    }
    free(ref.params);
    dpt_dataset_free(train), dpt_dataset_free(test);
}

Test(determinism, resnet20_bitwise_identical_for_1_2_3_16_threads, .timeout = 300)
{
    /* 6 micro-shards of 4 rows (the last batch has 2 shards fewer), 2 steps. */
    determinism("resnet20", "synthetic:48,3,32,32,10", 24, 4, 2);
}

Test(determinism, bn_cnn_on_fashion_mnist_bitwise_identical_for_1_2_3_16_threads, .timeout = 300)
{
    determinism(BN_CNN, "fashion-mnist", 64, 16, 3);
}

/* Running statistics: the fold of each shard's statistics moves them away from 0 / 1, and
 * evaluation uses them (an untouched model evaluates differently). */
Test(batch_norm, running_statistics_are_updated_and_used, .timeout = 120)
{
    dpt_dataset_t *train, *test;
    open_data("synthetic:96,1,8,8,3", &train, &test);
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create_for_data("conv:4:3,bn,relu,gap,dense:3", train, 3, &m), DPT_OK);
    const dpt_tensor_info_t *mean = dpt_model_tensor_named(m, "bn0.running_mean");
    const dpt_tensor_info_t *var = dpt_model_tensor_named(m, "bn0.running_var");
    cr_assert(mean && var && !mean->trainable && !var->trainable);
    outcome_t none = run("conv:4:3,bn,relu,gap,dense:3", "sgd", train, test, 2, 32, 8, 1);
    /* one step of 4 shards: running = 0.9^4 * init + ..., so neither stays at its init */
    int moved = 0;
    for (size_t c = 0; c < 4; c++)
        moved += none.params[mean->offset + c] != 0.0f && none.params[var->offset + c] != 1.0f;
    cr_assert_eq(moved, 4, "every channel's running statistics move after one step");
    free(none.params);
    dpt_model_free(m);
    dpt_dataset_free(train), dpt_dataset_free(test);
}

/* Every optimizer trains a model with batch norm (its state tensors lie outside the
 * optimizer's span): finite losses on training and on evaluation with the running
 * statistics. */
Test(optimizers, every_optimizer_trains_a_bn_cnn, .timeout = 300)
{
    dpt_dataset_t *train, *test;
    open_data("synthetic:64,1,12,12,4", &train, &test);
    const char *opts[] = {"sgd",     "sgd:momentum=0.9,nesterov=1", "adam", "adamw", "rmsprop",
                          "adagrad", "lars:momentum=0.9",           "lamb"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        outcome_t o = run("conv:4:3,bn,relu,maxpool:2,dense:8,bn,relu,dense:4", opts[i], train,
                          test, 2, 32, 8, 2);
        cr_assert(isfinite(o.loss) && isfinite(o.val_loss), "%s: loss %g, val %g", opts[i], o.loss,
                  o.val_loss);
        free(o.params);
    }
    dpt_dataset_free(train), dpt_dataset_free(test);
}
