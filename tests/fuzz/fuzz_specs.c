/* libFuzzer target: the one spec grammar (core/spec.c) through every flag that speaks it:
 * dpt_model_create_shaped, dpt_optimizer_create (and --no-decay), dpt_schedule_create
 * (schedule and warmup), --early-stop, --divergence-guard, --lr-scaling, --augment and --tta.
 *
 * Input: 4 bytes of numbers (input shape, classes, steps per epoch, epochs), then up to five
 * strings separated by '\n': model spec, optimizer spec, schedule spec, warmup spec, and a
 * spec given to --no-decay, --early-stop, --divergence-guard, --lr-scaling, --augment and
 * --tta (a missing one is NULL). The first byte picks the input: below 128, a table of 1 + b % 64
 * features; from 128, an image of 1 + b % 4 channels and side 1 + (b / 4) % 16. A small model that
 * builds runs one training forward and backward pass over two rows (every op's code under the
 * sanitizers). A schedule that parses is evaluated at a few steps, its plateau state driven,
 * and its description must parse back to a schedule with the same description and LRs. An
 * augmentation that builds must describe itself in a form that builds the same; on an image
 * input it augments a few seeded images, whose pixels must stay in [0, 255], and test-time
 * augmentation gathers every view. */
#include <math.h>

#include "nn/plan.h"

#include "dptrain/augment.h"
#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/schedule.h"
#include "fuzz_common.h"
#include "train/guards.h"

/* Copies the text after key (up to the next space) of desc into out; NULL when absent. */
static const char *desc_part(const char *desc, const char *key, char *out, size_t cap)
{
    const char *p = strstr(desc, key);
    if (!p) return NULL;
    p += strlen(key);
    size_t n = strcspn(p, " ");
    if (n >= cap) abort();
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static void check_schedule(const char *sched, const char *warm, size_t spe, size_t epochs)
{
    dpt_schedule_t *s = NULL;
    dpt_status_t st = dpt_schedule_create(sched, warm, 0.1, spe, epochs, &s);
    fz_check_status(st);
    if (st != DPT_OK) {
        if (s) abort();
        return;
    }
    const uint64_t steps[] = {0, 1, spe - 1, spe, spe * epochs - 1, spe * epochs, UINT64_MAX};
    double lr[7];
    dpt_plateau_state_t ps;
    dpt_schedule_plateau_init(s, &ps);
    for (size_t i = 0; i < 7; i++) {
        lr[i] = dpt_schedule_lr(s, steps[i], &ps);
        double m;
        (void)dpt_schedule_momentum(s, steps[i], &m);
    }
    const char *monitor = NULL;
    if (dpt_schedule_uses_plateau(s, &monitor)) {
        if (!monitor) abort();
        for (int e = 0; e < 12; e++)
            (void)dpt_schedule_plateau_update(s, &ps, 1.0 / (1 + e % 3));
        (void)dpt_schedule_lr(s, spe * 3, &ps);
    }
    /* The description parses back to the same schedule (schedule.h promises it). */
    char *desc = strdup(dpt_schedule_describe(s));
    static char d_sched[16384], d_warm[16384];
    const char *rs = desc_part(desc, "schedule=", d_sched, sizeof d_sched);
    const char *rw = desc_part(desc, "warmup=", d_warm, sizeof d_warm);
    if (!rs || !rw) abort();
    if (!strcmp(rw, "none")) rw = NULL;
    dpt_schedule_t *s2 = NULL;
    if (dpt_schedule_create(rs, rw, 0.1, spe, epochs, &s2) != DPT_OK) {
        fprintf(stderr, "description does not parse back: %s\n  %s\n", desc, dpt_last_error());
        abort();
    }
    if (strcmp(desc, dpt_schedule_describe(s2))) {
        fprintf(stderr, "round trip changed the description:\n  %s\n  %s\n", desc,
                dpt_schedule_describe(s2));
        abort();
    }
    dpt_plateau_state_t ps2;
    dpt_schedule_plateau_init(s2, &ps2);
    for (size_t i = 0; i < 7; i++) {
        double a = dpt_schedule_lr(s2, steps[i], &ps2);
        if (memcmp(&a, &lr[i], sizeof a) && !(isnan(a) && isnan(lr[i]))) {
            fprintf(stderr, "round trip changed the LR at step %llu: %.17g vs %.17g (%s)\n",
                    (unsigned long long)steps[i], lr[i], a, desc);
            abort();
        }
    }
    free(desc);
    dpt_schedule_free(s2);
    dpt_schedule_free(s);
}

/* The small flags. An early-stop spec that parses describes itself in a form that parses
 * back to the same configuration. */
static void check_small_flags(const char *spec)
{
    dpt_early_stop_config_t es, es2;
    dpt_status_t st = dpt_early_stop_parse(spec, &es);
    fz_check_status(st);
    if (st == DPT_OK && es.enabled) {
        char desc[512];
        dpt_early_stop_describe(&es, desc, sizeof desc);
        if (dpt_early_stop_parse(desc, &es2) != DPT_OK || memcmp(&es, &es2, sizeof es)) {
            fprintf(stderr, "early-stop round trip failed: %s -> %s\n", spec, desc);
            abort();
        }
    }
    dpt_guard_config_t g;
    fz_check_status(dpt_guard_parse(spec, &g));
    double lr = 0;
    st = dpt_lr_scaling_apply(spec, 0.1, 256, &lr);
    fz_check_status(st);
    if (st == DPT_OK && !(lr > 0 && isfinite(lr))) abort();
}

static void augment_images(const dpt_augment_t *a, const dpt_dataset_t *ds, size_t f)
{
    float *img = malloc(f * sizeof *img), *scratch = malloc(dpt_augment_scratch_floats(a) * 4);
    if (!img || !scratch) abort();
    for (size_t i = 0; i < dpt_dataset_count(ds); i++)
        for (uint64_t e = 0; e < 2; e++) {
            int32_t y2;
            float lam;
            dpt_augment_view(a, ds, i, 1, e, img, scratch, &y2, &lam);
            for (size_t j = 0; j < f; j++)
                if (!(img[j] >= 0 && img[j] <= 255)) abort();
            if (!(lam >= 0 && lam <= 1) || y2 < 0) abort();
        }
    free(img), free(scratch);
}

static void tta_views(const dpt_tta_t *t, const dpt_dataset_t *ds, size_t f)
{
    const size_t n = dpt_dataset_count(ds);
    float *x = malloc(n * f * sizeof *x), *scratch = malloc(dpt_tta_scratch_floats(t) * 4);
    uint32_t ids[8];
    if (!x || !scratch || n > 8) abort();
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint32_t)i;
    for (size_t v = 0; v < dpt_tta_views(t); v++)
        dpt_tta_gather(t, v, ds, ids, n, x, NULL, scratch);
    free(x), free(scratch);
}

/* --augment and --tta; shape c x h x w (c = 0: a table input, the spec alone is checked). */
static void check_augment(const char *spec, size_t c, size_t h, size_t w)
{
    dpt_augment_t *a = NULL, *b = NULL;
    dpt_tta_t *t = NULL;
    dpt_status_t st = dpt_augment_create(spec, c, h, w, &a);
    fz_check_status(st);
    if (st == DPT_OK) {
        const char *d = dpt_augment_describe(a);
        if (dpt_augment_create(d, c, h, w, &b) != DPT_OK || strcmp(d, dpt_augment_describe(b))) {
            fprintf(stderr, "augment round trip failed: %s -> %s\n", spec, d);
            abort();
        }
        dpt_augment_free(b);
    }
    st = dpt_tta_create(spec, c ? c : 1, c ? h : 8, c ? w : 8, &t);
    fz_check_status(st);
    if (c && (a || t)) {
        char data[64];
        snprintf(data, sizeof data, "synthetic:6,%zu,%zu,%zu,3", c, h, w);
        dpt_dataset_t *ds = NULL, *test = NULL;
        if (dpt_dataset_open(data, NULL, &ds, &test) != DPT_OK) abort();
        if (a) augment_images(a, ds, c * h * w);
        if (t) tta_views(t, ds, c * h * w);
        dpt_dataset_free(ds), dpt_dataset_free(test);
    }
    dpt_augment_free(a);
    dpt_tta_free(t);
}

/* One training forward and backward pass of a small model over two rows of zeros. */
static void run_two_rows(const dpt_model_t *m, const float *params)
{
    if (dpt_model_replica_bytes(m, 2) > ((size_t)8 << 20)) return;
    dpt_plan_t *p = NULL;
    if (dpt_plan_create(m, 2, true, &p) != DPT_OK) abort();
    size_t nt = dpt_model_trainable_count(m), ns = dpt_model_stats_count(m);
    float *g = malloc((nt ? nt : 1) * sizeof *g), *st = calloc(ns + 1, sizeof *st);
    if (!g || !st) abort();
    memset(dpt_plan_input(p), 0, 2 * dpt_model_in_features(m) * sizeof(float));
    const uint32_t ids[2] = {3, 4};
    const dpt_step_ctx_t ctx = {.training = true, .seed = 1, .epoch = 0, .sample_ids = ids};
    dpt_plan_forward(p, params, 2, &ctx, st);
    memset(dpt_plan_dlogits(p), 0, 2 * dpt_model_classes(m) * sizeof(float));
    dpt_plan_backward(p, params, g, 2, &ctx, st);
    free(g), free(st);
    dpt_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    size_t classes = 2 + data[1] % 14;
    dpt_shape_t in = {1 + data[0] % 64, 1, 1};
    if (data[0] >= 128) in = (dpt_shape_t){1 + data[0] % 4, 1 + (data[0] / 4) % 16, 0};
    if (data[0] >= 128) in.w = in.h;
    size_t spe = 1 + data[2] % 50, epochs = 1 + data[3] % 20;
    char *text = malloc(size - 4 + 1);
    if (!text) abort();
    memcpy(text, data + 4, size - 4);
    text[size - 4] = '\0';
    char *part[5] = {NULL, NULL, NULL, NULL, NULL};
    char *p = text;
    for (int i = 0; i < 5 && p; i++) {
        part[i] = p;
        p = strchr(p, '\n');
        if (p) *p++ = '\0';
    }

    dpt_model_t *m = NULL;
    dpt_status_t s = dpt_model_create_shaped(part[0] ? part[0] : "", in, classes, &m);
    fz_check_status(s);
    if (s == DPT_OK) {
        size_t np = dpt_model_param_count(m);
        for (size_t i = 0; i < dpt_model_tensor_count(m); i++) {
            const dpt_tensor_info_t *t = dpt_model_tensor(m, i);
            if (!t || t->offset + t->rows * t->cols > np) abort();
        }
        (void)dpt_model_describe(m);
        (void)dpt_model_forward_flops(m);
        /* Huge (but legal) models would only measure the allocator. */
        if (np <= ((size_t)1 << 20)) {
            float *w = malloc(np * sizeof *w);
            if (!w) abort();
            dpt_model_init_params(m, w, 7);
            run_two_rows(m, w);
            free(w);
            dpt_optimizer_t *o = NULL;
            s = dpt_optimizer_create(part[1], m, &o);
            fz_check_status(s);
            if (s == DPT_OK) {
                if (part[4]) fz_check_status(dpt_optimizer_exclude_decay(o, part[4]));
                (void)dpt_optimizer_describe(o);
                size_t nf = 0;
                (void)dpt_optimizer_state(o, &nf);
                dpt_optimizer_free(o);
            }
        }
        dpt_model_free(m);
    }
    check_schedule(part[2], part[3], spe, epochs);
    check_small_flags(part[4]);
    check_augment(part[4], data[0] >= 128 ? in.c : 0, in.h, in.w);
    free(text);
    return 0;
}
