/* End to end through the CLI with image networks: a ResNet-20 run on files in the real
 * CIFAR-10 binary format (He et al.'s recipe, shortened), its checkpoint read back by eval and
 * predict, resume with batch norm state, and bad model specs refused with exit 2 before any
 * data is read. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(vision, .fini = t_remove_scratch, .timeout = 300);

/* DIR/data_batch_{1..5}.bin and DIR/test_batch.bin: records of one label byte and 3072 pixel
 * bytes (3 planes of 32x32), `per_file` each; class k is a bright square in quadrant k % 4
 * of plane k % 3 over seeded noise, so a CNN can learn it. */
static char *write_cifar(size_t per_file)
{
    char *dir = t_scratch_dir("cifar");
    uint64_t state = 42;
    for (int f = 0; f < 6; f++) {
        unsigned char *buf = malloc(per_file * 3073);
        for (size_t r = 0; r < per_file; r++) {
            unsigned char *rec = buf + r * 3073;
            int k = (int)((r * 7 + (size_t)f) % 10);
            rec[0] = (unsigned char)k;
            for (size_t j = 0; j < 3072; j++) {
                state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                rec[1 + j] = (unsigned char)(state >> 58); /* noise 0..63 */
            }
            size_t plane = (size_t)(k % 3), qy = (size_t)(k % 4) / 2 * 16,
                   qx = (size_t)(k % 4) % 2 * 16;
            for (size_t y = 0; y < 16; y++)
                for (size_t x = 0; x < 16; x++)
                    rec[1 + plane * 1024 + (qy + y) * 32 + qx + x] =
                        (unsigned char)(160 + 8 * (k / 3));
        }
        char name[32];
        if (f < 5)
            snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        else
            snprintf(name, sizeof name, "test_batch.bin");
        char *path = t_path(dir, name);
        t_write_file(path, buf, per_file * 3073, 0);
        free(path), free(buf);
    }
    return dir;
}

static double last_val_accuracy(const char *metrics)
{
    const char *last = metrics, *p = metrics;
    while ((p = strchr(p, '\n')) && p[1])
        last = ++p;
    /* epoch,step,lr,momentum,train_loss,train_accuracy,val_loss,val_accuracy,... */
    double v[8];
    cr_assert_eq(sscanf(last, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4],
                        &v[5], &v[6], &v[7]),
                 8, "%s", last);
    return v[7];
}

Test(vision, resnet20_on_cifar10_files_trains_evaluates_predicts_and_resumes)
{
    char *data = write_cifar(40); /* 200 training images, 40 test */
    char *run = t_scratch_dir("run"), *args, *out = NULL;
    size_t n = 8192;
    args = malloc(n);
    snprintf(args, n,
             "train --data cifar10:%s --model resnet20 --optimizer sgd:momentum=0.9,"
             "weight_decay=1e-4 --no-decay bn --lr 0.1 --lr-schedule multistep:milestones=2/3 "
             "--epochs 2 "
             "--batch-size 32 --threads 2 --quiet --out %s/r",
             data, run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    char *mpath = malloc(n), *cfg = malloc(n);
    snprintf(mpath, n, "%s/r/metrics.csv", run);
    snprintf(cfg, n, "%s/r/config.txt", run);
    char *metrics = t_read_file(mpath, NULL), *config = t_read_file(cfg, NULL);
    cr_assert(strstr(config, "model = 3x32x32 -> conv:16:3:bias=0:init=he,bn,relu,res("), "%s",
              config);
    cr_assert(strstr(config, "weight_decay=0.0001,nesterov=0,no_decay=bn"), "%s", config);
    double acc2 = last_val_accuracy(metrics);
    free(metrics);
    /* resume to 4 epochs: batch-norm state comes back from the checkpoint */
    snprintf(args, n, "train --resume %s/r --epochs 4 --quiet", run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    metrics = t_read_file(mpath, NULL);
    double acc4 = last_val_accuracy(metrics);
    cr_assert_gt(acc4, 0.3, "4 epochs on a learnable set: val accuracy %g (after 2: %g)\n%s", acc4,
                 acc2, metrics);
    /* eval reads the model, its running statistics and the normalisation from the file and
     * gets the run's own last validation accuracy */
    snprintf(args, n, "eval --checkpoint %s/r/checkpoint.dpt --data cifar10:%s --out %s/conf.csv",
             run, data, run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "accuracy = %.6f", acc4);
    cr_assert(strstr(out, want), "eval output lacks '%s':\n%s", want, out);
    free(out);
    snprintf(args, n, "predict --checkpoint %s/r/checkpoint.dpt --data cifar10:%s --out %s/p.csv",
             run, data, run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    free(metrics), free(config), free(mpath), free(cfg), free(args);
}

static void expect_exit_2(const char *model, const char *needle)
{
    char *run = t_scratch_dir("bad"), args[4096], *out = NULL;
    snprintf(args, sizeof args, "train --data fashion-mnist --model '%s' --out %s/r", model, run);
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert(strstr(out, needle), "'%s' not in: %s", needle, out);
    /* refused before the run directory (or the data) was touched */
    char path[4200];
    snprintf(path, sizeof path, "%s/r", run);
    FILE *f = fopen(path, "r");
    cr_assert_null(f, "%s was created", path);
    free(out);
}

Test(vision, bad_model_specs_exit_2_before_loading_data)
{
    expect_exit_2("conv:8:3,swish,dense:10", "unknown layer 'swish'");
    expect_exit_2("conv:8:31:pad=0,dense:10", "conv0: kernel 31 larger than its padded input");
    expect_exit_2("maxpool:2,maxpool:2,maxpool:2,maxpool:2,maxpool:2,dense:10",
                  "maxpool4: kernel 2 larger than its input 1x1");
    expect_exit_2("conv:8:3,res(conv:16:3),gap,dense:10", "residual add of mismatched shapes");
    expect_exit_2("dense:0,dense:10", "units must be an integer in [1, 65536], got '0'");
    /* 22 maps of 4096 x 28 x 28 (depthwise, so few parameters): 70M floats per sample */
    char deep[1024] = "conv:4096:1";
    for (int i = 0; i < 21; i++)
        strcat(deep, ",conv:4096:1:groups=4096");
    strcat(deep, ",gap,dense:10");
    expect_exit_2(deep, "activation floats per sample exceed the cap");
    expect_exit_2("conv:4096:3,conv:4096:3,conv:4096:3,conv:4096:3,gap,dense:10",
                  "parameters (with alignment) exceed the cap");
}

Test(vision, model_help_lists_presets_with_parameter_counts)
{
    char *out = NULL;
    cr_assert_eq(t_run_dptrain("train --model help", &out), 0, "%s", out);
    cr_assert(strstr(out, "resnet20         269722"), "%s", out);
    cr_assert(strstr(out, "res(MAIN[|SHORTCUT])"), "%s", out);
    free(out);
    cr_assert_eq(t_run_dptrain("info --model resnet20 --input 3x32x32", &out), 0, "%s", out);
    cr_assert(strstr(out, "total: 70 nodes, 269722 trainable parameters"), "%s", out);
    cr_assert(strstr(out, "replica_memory = "), "%s", out);
    /* ResNet-20's products are mostly narrow (16 and 32 channels): 0.680 of its FLOPs at 3x32x32 */
    cr_assert(strstr(out, "narrow_gemm_share = 0.680 "), "%s", out);
    cr_assert(strstr(out, "blis_kernel_set = "), "%s", out);
    free(out);
}

/* lr-find, early stopping with restore_best (the best epoch's parameters and batch-norm
 * state come back) and bench's per-layer split, on an image model. */
Test(vision, lr_find_early_stop_and_bench_take_image_models)
{
    char *data = write_cifar(24);
    char *run = t_scratch_dir("run"), args[8192], *out = NULL;
    snprintf(args, sizeof args,
             "lr-find --data cifar10:%s --model lenet5 --batch-size 24 --steps 20 --threads 2 "
             "--out %s/lr.csv",
             data, run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "valley"), "%s", out);
    free(out);
    snprintf(args, sizeof args,
             "train --data cifar10:%s --model conv:8:3,bn,relu,maxpool:2,dense:10 --epochs 6 "
             "--batch-size 24 --lr 0.05 --early-stop monitor=val_loss,patience=1,restore_best=1 "
             "--quiet --out %s/es",
             data, run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "info --checkpoint %s/es/checkpoint.dpt", run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args,
             "bench --data cifar10:%s --model resnet20 --modes layers --batch 16 --steps 2 "
             "--warmup 1 --out %s/bench",
             data, run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "add8     "), "%s", out);
    cr_assert(strstr(out, "conv0     conv     16x32x32"), "%s", out);
    free(out);
}

/* The divergence guard on an image model: rollbacks restore parameters and batch-norm state,
 * and a run it cannot rescue exits 7 with its message. */
Test(vision, divergence_guard_rolls_back_an_image_model)
{
    char *run = t_scratch_dir("div"), args[4096], *out = NULL;
    snprintf(args, sizeof args,
             "train --data synthetic:256,3,16,16,4 --model conv:8:3,bn,relu,maxpool:2,dense:4 "
             "--lr 30 --epochs 2 --batch-size 32 --out %s/r",
             run);
    cr_assert_eq(t_run_dptrain(args, &out), 7, "%s", out);
    cr_assert(strstr(out, "epoch 1: rollback 1: loss"), "%s", out);
    cr_assert(strstr(out, "rollbacks in a row (lr x0.125) did not help"), "%s", out);
    free(out);
    /* a rate the guard can rescue: it rolls back, lowers the rate and the run finishes */
    snprintf(args, sizeof args,
             "train --data synthetic:256,3,16,16,4 --model conv:8:3,bn,relu,maxpool:2,dense:4 "
             "--lr 4 --epochs 2 --batch-size 32 --out %s/r2",
             run);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "rollback 1: loss"), "%s", out);
    free(out);
}
