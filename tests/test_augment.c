/* Tests for data augmentation (src/data/augment.c, augment_ops.c): golden results per op,
 * the soft-target loss of mixup / cutmix, the spec's errors, determinism of augmented training
 * for 1, 2, 3 and 16 threads, after a mid-epoch restart and for any split of the samples, and
 * test-time augmentation's views. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment_ops.h"
#include "dptrain/augment.h"
#include "dptrain/dataset.h"
#include "dptrain/trainer.h"
#include "nn/softmax_xent.h"
#include "support.h"

/* A c x h x w image with distinct values: 3 * index mod 251. */
static float *pattern(size_t c, size_t h, size_t w)
{
    float *img = malloc(c * h * w * sizeof *img);
    for (size_t i = 0; i < c * h * w; i++)
        img[i] = (float)((3 * i) % 251);
    return img;
}

static dpt_augment_t *build(const char *spec, size_t c, size_t h, size_t w)
{
    dpt_augment_t *a = NULL;
    cr_assert_eq(dpt_augment_create(spec, c, h, w, &a), DPT_OK, "%s: %s", spec, dpt_last_error());
    return a;
}

/* ---- golden results per op ------------------------------------------------------------- */

Test(ops, flips_are_exact)
{
    const size_t c = 2, h = 3, w = 4;
    float *src = pattern(c, h, w), *img = pattern(c, h, w);
    dpt_aug_hflip(img, c, h, w);
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                cr_assert_eq(img[(ch * h + y) * w + x], src[(ch * h + y) * w + (w - 1 - x)]);
    memcpy(img, src, c * h * w * sizeof *img);
    dpt_aug_vflip(img, c, h, w);
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                cr_assert_eq(img[(ch * h + y) * w + x], src[(ch * h + (h - 1 - y)) * w + x]);
    free(src), free(img);
}

Test(ops, crop_offsets_and_padding_modes)
{
    const size_t h = 4, w = 5, pad = 2;
    float *src = pattern(1, h, w), dst[20];
    /* dx = dy = pad: the image itself. */
    dpt_aug_crop(src, dst, 1, h, w, pad, pad, pad, 0);
    cr_assert_eq(memcmp(dst, src, sizeof dst), 0);
    /* (0, 0): shifted down-right by pad, zeros in the first pad rows and columns. */
    dpt_aug_crop(src, dst, 1, h, w, pad, 0, 0, 0);
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            float want = y < pad || x < pad ? 0.0f : src[(y - pad) * w + (x - pad)];
            cr_assert_eq(dst[y * w + x], want, "zero (%zu,%zu)", x, y);
        }
    /* reflect at (2 pad, 1): source (x + 2, y - 1), mirrored without repeating the edge:
     * column w -> w - 2, w + 1 -> w - 3; row -1 -> 1. */
    dpt_aug_crop(src, dst, 1, h, w, pad, 2 * pad, 1, 1);
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            long sx = (long)x + 2, sy = (long)y - 1;
            if (sx >= (long)w) sx = 2 * ((long)w - 1) - sx;
            if (sy < 0) sy = -sy;
            cr_assert_eq(dst[y * w + x], src[sy * (long)w + sx], "reflect (%zu,%zu)", x, y);
        }
    cr_assert_eq(dst[0 * w + 4], src[1 * w + 2]); /* a hand-checked corner: (6,-1) -> (2,1) */
    free(src);
}

Test(ops, rotation_by_90_degrees_is_transpose_and_flip)
{
    const size_t c = 3, n = 7;
    float *src = pattern(c, n, n), *img = pattern(c, n, n);
    float *pad = malloc(dpt_aug_warp_scratch(n, n) * sizeof *pad);
    dpt_aug_affine_t m = dpt_aug_affine_make(n, n, 90, 0, 0, 1, 0);
    dpt_aug_warp(img, c, n, n, &m, 0, pad);
    /* Counter-clockwise as displayed: out(x, y) = src(n - 1 - y, x), i.e. the transpose
     * flipped upside down. Exact: the map's coefficients are integers. */
    for (size_t ch = 0; ch < c; ch++)
        for (size_t y = 0; y < n; y++)
            for (size_t x = 0; x < n; x++)
                cr_assert_eq(img[(ch * n + y) * n + x], src[(ch * n + x) * n + (n - 1 - y)],
                             "(%zu,%zu,%zu)", ch, x, y);
    /* -90 turns it back. */
    m = dpt_aug_affine_make(n, n, -90, 0, 0, 1, 0);
    dpt_aug_warp(img, c, n, n, &m, 0, pad);
    cr_assert_eq(memcmp(img, src, c * n * n * sizeof *img), 0);
    free(src), free(img), free(pad);
}

/* Reference bilinear sampling: each of the four taps read with a bounds check (fill outside),
 * weights (1-ax)(1-ay) ..., in double; the map written out from the rotation's definition. */
static double ref_sample(const float *src, size_t h, size_t w, double sx, double sy, double fill)
{
    double fx = floor(sx), fy = floor(sy), ax = sx - fx, ay = sy - fy, v = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            long x = (long)fx + dx, y = (long)fy + dy;
            double p = x >= 0 && y >= 0 && x < (long)w && y < (long)h ? src[y * (long)w + x] : fill;
            v += p * (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay);
        }
    return v;
}

Test(ops, small_rotation_matches_a_reference_bilinear)
{
    const size_t h = 9, w = 11;
    const double deg = 7.5, fill = 77;
    float *src = pattern(1, h, w), *img = pattern(1, h, w);
    float *pad = malloc(dpt_aug_warp_scratch(h, w) * sizeof *pad);
    dpt_aug_affine_t m = dpt_aug_affine_make(h, w, deg, 0, 0, 1, 0);
    dpt_aug_warp(img, 1, h, w, &m, (float)fill, pad);
    const double a = deg * 3.14159265358979323846 / 180, cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    size_t filled = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            /* The source of an output pixel: rotate back by -deg about the centre. */
            double dx = x - cx, dy = y - cy;
            double sx = cx + cos(a) * dx - sin(a) * dy, sy = cy + sin(a) * dx + cos(a) * dy;
            double want = ref_sample(src, h, w, sx, sy, fill);
            cr_assert(fabs(img[y * w + x] - want) < 1e-3, "(%zu,%zu): %g, reference %g", x, y,
                      img[y * w + x], want);
            filled += sx < -0.5 || sy < -0.5;
        }
    cr_assert_gt(filled, 0, "the corners should sample the fill");
    free(src), free(img), free(pad);
}

Test(ops, a_warp_entirely_outside_reads_only_its_scratch)
{
    /* Every output pixel maps past (w, h): all taps clamp to the far corner of the fill
     * border. A float just past the scratch is NaN, so reading it (the fuzz find: the last tap
     * read one float too far) would poison the output. */
    const size_t h = 5, w = 6, n = dpt_aug_warp_scratch(h, w);
    float *img = pattern(2, h, w), *pad = malloc((n + 1) * sizeof *pad);
    pad[n] = NAN;
    dpt_aug_affine_t m = dpt_aug_affine_make(h, w, 0, -100, -100, 1, 0);
    dpt_aug_warp(img, 2, h, w, &m, 33.0f, pad);
    for (size_t i = 0; i < 2 * h * w; i++)
        cr_assert_eq(img[i], 33.0f, "[%zu] = %g", i, img[i]);
    free(img), free(pad);
}

Test(ops, brightness_and_contrast_stay_in_range)
{
    float img[6] = {0, 10, 128, 200, 250, 255};
    dpt_aug_brightness(img, 6, 20);
    const float want_b[6] = {20, 30, 148, 220, 255, 255};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(img[i], want_b[i], "brightness +20 [%d]: %g", i, img[i]);
    dpt_aug_brightness(img, 6, -40);
    cr_assert_eq(img[0], 0.0f);
    cr_assert_eq(img[1], 0.0f);
    float c[4] = {0, 100, 155, 255}; /* mean 127.5 */
    dpt_aug_contrast(c, 4, 2.0f);
    const float want_c[4] = {0, 72.5f, 182.5f, 255};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(c[i], want_c[i], "contrast x2 [%d]: %g", i, c[i]);
}

/* ---- mixing: the label weights and the loss ------------------------------------------- */

static void open_synthetic(const char *spec, dpt_dataset_t **train)
{
    dpt_dataset_t *test = NULL;
    cr_assert_eq(dpt_dataset_open(spec, NULL, train, &test), DPT_OK, "%s", dpt_last_error());
    dpt_dataset_free(test);
    cr_assert_eq(dpt_dataset_fit_normalization(*train), DPT_OK);
}

Test(mixing, cutmix_weight_is_the_area_kept_and_mixup_weights_sum_to_one)
{
    dpt_dataset_t *ds;
    open_synthetic("synthetic:64,1,12,12,10", &ds);
    dpt_augment_t *cut = build("cutmix:alpha=1", 1, 12, 12);
    dpt_augment_t *mix = build("mixup:alpha=0.4", 1, 12, 12);
    dpt_augment_t *none = build("hflip:p=0", 1, 12, 12);
    cr_assert(dpt_augment_mixes_labels(cut) && dpt_augment_mixes_labels(mix));
    float img[144], own[144], *scratch = malloc(dpt_augment_scratch_floats(cut) * sizeof(float));
    size_t mixed = 0;
    for (size_t i = 0; i < 64; i++) {
        int32_t y2 = -1;
        float lam = -1;
        dpt_augment_view(cut, ds, i, 3, 0, img, scratch, &y2, &lam);
        cr_assert(lam >= 0 && lam <= 1, "cutmix lam %g", lam);
        cr_assert(y2 >= 0 && y2 < 10);
        /* Own pixels outside the box, the partner's inside: the changed pixels are at most the
         * box, (1 - lam) of the image (random images differ almost everywhere). */
        /* The sample's own pixels: a view through an op that never fires. */
        dpt_augment_view(none, ds, i, 3, 0, own, scratch, NULL, NULL);
        size_t changed = 0;
        for (size_t j = 0; j < 144; j++)
            changed += img[j] != own[j];
        double box = (1.0 - lam) * 144.0;
        cr_assert(changed <= (size_t)llround(box), "sample %zu: %zu pixels changed, box %g", i,
                  changed, box);
        cr_assert(changed + 8 >= (size_t)llround(0.9 * box), "sample %zu: %zu changed, box %g", i,
                  changed, box);
        mixed += lam < 1;
        dpt_augment_view(mix, ds, i, 3, 0, img, scratch, &y2, &lam);
        cr_assert(lam >= 0 && lam <= 1, "mixup lam %g", lam);
    }
    cr_assert_gt(mixed, 32, "cutmix should cut most samples");
    free(scratch);
    dpt_augment_free(cut), dpt_augment_free(mix), dpt_augment_free(none);
    dpt_dataset_free(ds);
}

Test(mixing, soft_target_loss_and_gradient)
{
    const float z[2][4] = {{1.0f, 2.0f, 0.5f, -1.0f}, {0.0f, 0.3f, 3.0f, 0.1f}};
    const int32_t y[2] = {1, 0}, y2[2] = {3, 2};
    const float lam[2] = {0.7f, 0.25f};
    float d[8];
    size_t hits = 99;
    double loss = dpt_softmax_xent_soft(&z[0][0], y, y2, lam, 2, 4, 0.5f, d, NULL, &hits);
    double want = 0;
    for (int r = 0; r < 2; r++) {
        double s = 0;
        for (int j = 0; j < 4; j++)
            s += exp(z[r][j]);
        double lp_y = z[r][y[r]] - log(s), lp_y2 = z[r][y2[r]] - log(s);
        want -= lam[r] * lp_y + (1 - lam[r]) * lp_y2;
        double sum_d = 0;
        for (int j = 0; j < 4; j++) {
            double t = (j == y[r] ? lam[r] : 0) + (j == y2[r] ? 1 - lam[r] : 0);
            double g = (exp(z[r][j]) / s - t) * 0.5;
            cr_assert(fabs(d[r * 4 + j] - g) < 1e-6, "dlogits[%d][%d] %g vs %g", r, j, d[r * 4 + j],
                      g);
            sum_d += d[r * 4 + j];
        }
        /* The target's weights sum to 1, as the softmax's: each gradient row sums to 0. */
        cr_assert(fabs(sum_d) < 1e-6, "row %d sums to %g", r, sum_d);
    }
    cr_assert(fabs(loss - want) < 1e-5, "loss %g vs %g", loss, want);
    /* Row 0: argmax 1 = its dominant label y (0.7). Row 1: argmax 2 = y2 (dominant at 0.75). */
    cr_assert_eq(hits, 2);
}

/* ---- the spec's errors ----------------------------------------------------------------- */

static void refused(const char *spec, size_t c, const char *substr)
{
    dpt_augment_t *a = (dpt_augment_t *)1;
    assert_fails(dpt_augment_create(spec, c, c ? 28 : 0, c ? 28 : 0, &a), DPT_ERR_INVALID_ARG,
                 substr);
    cr_assert_null(a);
}

Test(spec, bad_specs_are_refused_with_one_clear_line)
{
    refused("blur", 1,
            "unknown --augment 'blur'; valid names: crop, hflip, vflip, rotate, translate, "
            "scale, affine, brightness, contrast, saturation, noise, erase, mixup, cutmix");
    refused("hflip:p=0.3,p=0.4", 1, "key 'p' given twice");
    refused("hflip:p=1.5", 1, "p must be a number in [0, 1]");
    refused("rotate:degrees=-5", 1, "degrees must be a number in [0, 180]");
    refused("rotate", 1, "degrees");
    refused("crop:pad=29", 1, "pad 29 is larger than the 28x28 image");
    refused("crop:pad=28,mode=reflect", 1, "mode=reflect needs pad below the image side");
    refused("crop:pad=2,size=3", 1, "size");
    refused("saturation:factor=0.3", 1, "needs a colour (3-channel) image; this data has 1");
    refused("mixup+hflip", 1, "must be the last op");
    refused("scale:min=1.2,max=1.1", 0, "min 1.2 is above max 1.1");
    refused("erase:area=0.3/0.1", 0, "area: lo 0.3 is above hi 0.1");
    refused("hflip+hflip+hflip+hflip+hflip+hflip+hflip+hflip+hflip", 0, "more than 8 parts");
    /* Without a shape, only the spec itself is checked: pad and colour wait for the data. */
    dpt_augment_t *a;
    cr_assert_eq(dpt_augment_create("crop:pad=40+saturation:factor=0.2", 0, 0, 0, &a), DPT_OK);
    dpt_augment_free(a);
}

Test(spec, describe_is_canonical_and_parses_back)
{
    dpt_augment_t *a = build("crop:2+hflip+rotate:degrees=10", 1, 28, 28);
    const char *d = dpt_augment_describe(a);
    cr_assert_str_eq(d, "crop:pad=2,mode=zero,p=1+hflip:p=0.5+rotate:degrees=10,fill=0,p=1");
    dpt_augment_t *b = build(d, 1, 28, 28);
    cr_assert_str_eq(dpt_augment_describe(b), d);
    dpt_augment_free(a), dpt_augment_free(b);
}

/* ---- determinism ----------------------------------------------------------------------- */

#define AUG_SPEC "crop:pad=2+hflip+rotate:degrees=10+brightness:0.1+noise:0.02+erase+cutmix"

Test(determinism, identity_augmentation_gives_the_plain_gather)
{
    dpt_dataset_t *ds;
    open_synthetic("synthetic:40,3,8,8,10", &ds);
    dpt_augment_t *a = build("hflip:p=0+crop:pad=1,p=0", 3, 8, 8);
    uint32_t ids[40];
    for (uint32_t i = 0; i < 40; i++)
        ids[i] = (i * 7) % 40;
    float *x = malloc(40 * 192 * sizeof *x), *ref = malloc(40 * 192 * sizeof *ref);
    float *scratch = malloc(dpt_augment_scratch_floats(a) * sizeof *scratch);
    int32_t y[40], yr[40];
    dpt_augment_gather(a, ds, ids, 40, 1, 0, x, y, NULL, NULL, scratch);
    dpt_dataset_gather(ds, ids, 40, ref, yr);
    cr_assert_eq(memcmp(x, ref, 40 * 192 * sizeof *x), 0);
    cr_assert_eq(memcmp(y, yr, sizeof y), 0);
    free(x), free(ref), free(scratch);
    dpt_augment_free(a);
    dpt_dataset_free(ds);
}

Test(determinism, a_sample_is_the_same_in_any_batch_split_and_changes_with_the_epoch)
{
    dpt_dataset_t *ds;
    open_synthetic("synthetic:50,3,10,10,10", &ds);
    dpt_augment_t *a = build(AUG_SPEC, 3, 10, 10);
    const size_t f = 300;
    uint32_t ids[50];
    for (uint32_t i = 0; i < 50; i++)
        ids[i] = (i * 13) % 50;
    float *whole = malloc(50 * f * sizeof(float)), *parts = malloc(50 * f * sizeof(float));
    float *scratch = malloc(dpt_augment_scratch_floats(a) * sizeof(float));
    int32_t y[50], y2[50], py[50], py2[50];
    float lam[50], plam[50];
    dpt_augment_gather(a, ds, ids, 50, 5, 2, whole, y, y2, lam, scratch);
    /* Any cut of the rows (threads, micro-shards, processes): 17 + 1 + 32. */
    const size_t cut[] = {0, 17, 18, 50};
    for (int k = 0; k < 3; k++)
        dpt_augment_gather(a, ds, ids + cut[k], cut[k + 1] - cut[k], 5, 2, parts + cut[k] * f,
                           py + cut[k], py2 + cut[k], plam + cut[k], scratch);
    cr_assert_eq(memcmp(whole, parts, 50 * f * sizeof(float)), 0);
    cr_assert_eq(memcmp(y2, py2, sizeof y2), 0);
    cr_assert_eq(memcmp(lam, plam, sizeof lam), 0);
    /* Another epoch draws other views. */
    dpt_augment_gather(a, ds, ids, 50, 5, 3, parts, py, py2, plam, scratch);
    cr_assert_neq(memcmp(whole, parts, 50 * f * sizeof(float)), 0);
    free(whole), free(parts), free(scratch);
    dpt_augment_free(a);
    dpt_dataset_free(ds);
}

static double const_lr(void *user, uint64_t step, double *momentum)
{
    return 0.05;
}

#define CNN "conv:4:3,bn,relu,maxpool:2,dense:16,relu,dense:10"

typedef struct {
    dpt_model_t *m;
    dpt_optimizer_t *o;
    dpt_trainer_t *t;
} rig_t;

static rig_t rig(const dpt_dataset_t *ds, const dpt_augment_t *a, size_t threads)
{
    rig_t r;
    cr_assert_eq(dpt_model_create_for_data(CNN, ds, 10, &r.m), DPT_OK, "%s", dpt_last_error());
    /* Plain SGD has no state: a restart needs only the parameters and the step count. */
    cr_assert_eq(dpt_optimizer_create("sgd", r.m, &r.o), DPT_OK, "%s", dpt_last_error());
    dpt_trainer_config_t cfg = {
        .threads = threads, .batch_size = 24, .micro_batch = 4, .seed = 9, .augment = a};
    cr_assert_eq(dpt_trainer_create(r.m, r.o, &cfg, &r.t), DPT_OK, "%s", dpt_last_error());
    return r;
}

static void rig_free(rig_t *r)
{
    dpt_trainer_free(r->t), dpt_optimizer_free(r->o), dpt_model_free(r->m);
}

static int stop_after_two(void *user, uint64_t steps, double lr, double loss)
{
    return steps < 2;
}

Test(determinism, augmented_training_is_bitwise_identical_for_threads_and_restarts, .timeout = 120)
{
    dpt_dataset_t *ds;
    open_synthetic("synthetic:96,1,12,12,10", &ds);
    dpt_augment_t *a = build(AUG_SPEC, 1, 12, 12);
    rig_t ref = rig(ds, a, 1);
    const size_t np = dpt_model_param_count(ref.m);
    dpt_epoch_stats_t st;
    cr_assert_eq(dpt_trainer_train_epoch(ref.t, ds, 4, const_lr, NULL, NULL, NULL, &st), DPT_OK);
    cr_assert_eq(st.steps, 4);
    const float *want = dpt_trainer_params(ref.t);
    const size_t threads[] = {2, 3, 16};
    for (int i = 0; i < 3; i++) {
        rig_t r = rig(ds, a, threads[i]);
        dpt_epoch_stats_t s2;
        cr_assert_eq(dpt_trainer_train_epoch(r.t, ds, 4, const_lr, NULL, NULL, NULL, &s2), DPT_OK);
        cr_assert_eq(memcmp(dpt_trainer_params(r.t), want, np * sizeof(float)), 0,
                     "%zu threads differ from 1", threads[i]);
        cr_assert_eq(memcmp(&s2.loss, &st.loss, sizeof st.loss), 0);
        rig_free(&r);
    }
    /* A restart inside the epoch (what a mid-epoch resume does): stop after 2 steps, carry the
     * parameters and the epoch's sums to a fresh trainer on 3 threads, finish the epoch. */
    rig_t first = rig(ds, a, 2);
    dpt_trainer_set_step_hook(first.t, stop_after_two, NULL);
    dpt_epoch_stats_t part;
    cr_assert_eq(dpt_trainer_train_epoch(first.t, ds, 4, const_lr, NULL, NULL, NULL, &part),
                 DPT_OK);
    cr_assert(part.aborted);
    dpt_epoch_partial_t from;
    dpt_trainer_epoch_partial(first.t, &from);
    cr_assert_eq(from.batches, 2);
    rig_t second = rig(ds, a, 3);
    memcpy(dpt_trainer_params(second.t), dpt_trainer_params(first.t), np * sizeof(float));
    dpt_trainer_set_step_count(second.t, 2);
    dpt_trainer_set_epoch_start(second.t, &from);
    dpt_epoch_stats_t rest;
    cr_assert_eq(dpt_trainer_train_epoch(second.t, ds, 4, const_lr, NULL, NULL, NULL, &rest),
                 DPT_OK);
    cr_assert_eq(memcmp(dpt_trainer_params(second.t), want, np * sizeof(float)), 0,
                 "a restart inside the epoch changed the result");
    cr_assert_eq(memcmp(&rest.loss, &st.loss, sizeof st.loss), 0);
    /* And augmentation does change training. */
    rig_t plain = rig(ds, NULL, 1);
    dpt_epoch_stats_t sp;
    cr_assert_eq(dpt_trainer_train_epoch(plain.t, ds, 4, const_lr, NULL, NULL, NULL, &sp), DPT_OK);
    cr_assert_neq(memcmp(dpt_trainer_params(plain.t), want, np * sizeof(float)), 0);
    rig_free(&plain), rig_free(&first), rig_free(&second), rig_free(&ref);
    dpt_augment_free(a);
    dpt_dataset_free(ds);
}

/* ---- test-time augmentation ------------------------------------------------------------ */

Test(tta, views_are_flips_and_shifted_crops)
{
    dpt_dataset_t *ds;
    open_synthetic("synthetic:6,1,6,6,10", &ds);
    dpt_tta_t *t;
    cr_assert_eq(dpt_tta_create("hflip+crop:pad=1", 1, 6, 6, &t), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_tta_views(t), 10);
    cr_assert_str_eq(dpt_tta_describe(t), "hflip+crop:pad=1,mode=zero");
    uint32_t ids[6] = {0, 1, 2, 3, 4, 5};
    float v0[216], v[216], plain[216];
    float *scratch = malloc(dpt_tta_scratch_floats(t) * sizeof(float));
    dpt_tta_gather(t, 0, ds, ids, 6, v0, NULL, scratch);
    dpt_dataset_gather(ds, ids, 6, plain, NULL);
    cr_assert_eq(memcmp(v0, plain, sizeof v0), 0, "view 0 is the image itself");
    dpt_tta_gather(t, 5, ds, ids, 6, v, NULL, scratch); /* centre crop, flipped */
    for (size_t i = 0; i < 6; i++)
        for (size_t y = 0; y < 6; y++)
            for (size_t x = 0; x < 6; x++)
                cr_assert_eq(v[i * 36 + y * 6 + x], v0[i * 36 + y * 6 + 5 - x]);
    dpt_tta_gather(t, 1, ds, ids, 6, v, NULL, scratch); /* corner (0, 0): shifted by +1 */
    cr_assert_eq(v[1 * 6 + 1], v0[0]);
    cr_assert_neq(v[0], v0[0]);
    free(scratch);
    dpt_tta_free(t);
    assert_fails(dpt_tta_create("hflip+hflip", 1, 6, 6, &t), DPT_ERR_INVALID_ARG, "given twice");
    assert_fails(dpt_tta_create("rotate", 1, 6, 6, &t), DPT_ERR_INVALID_ARG,
                 "valid names: hflip, vflip, crop");
    assert_fails(dpt_tta_create("crop:pad=7", 1, 6, 6, &t), DPT_ERR_INVALID_ARG,
                 "larger than the 6x6 image");
    dpt_dataset_free(ds);
}
