/* Owns --augment and --tta: their grammar (the one spec grammar, core/spec.h), the checks
 * against the image shape, the counter-based draws, and batch assembly with augmentation
 * (pixels -> ops in spec order -> normalisation). The image kernels are augment_ops.c. */
#include "dptrain/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/spec.h"
#include "data/augment_ops.h"
#include "data/data_internal.h"

#define DPT_AUG_OPS_MAX 8
/* Keeps augmentation draws apart from every other user of the same seed. */
#define DPT_AUG_STREAM 0xa06e17a7e5eedULL
/* Op indices of the mixing partner's own augmentation: its draws never repeat the sample's. */
#define DPT_AUG_PARTNER 0x10000u

/* ---- grammar ---------------------------------------------------------------------------- */

#define P_KEY(def) DPT_SPEC_R("p", def, 0, 1, 0)
#define FILL_KEY DPT_SPEC_R("fill", "0", 0, 1, 0)
#define POS_REAL(name, def, hi) DPT_SPEC_R(name, def, 0, hi, DPT_SPEC_POS)

static const dpt_spec_key_t crop_keys[] = {DPT_SPEC_I("pad", "4", 1, 4096, DPT_SPEC_POS),
                                           DPT_SPEC_E("mode", "zero", "zero|reflect"), P_KEY("1"),
                                           DPT_SPEC_END};
static const dpt_spec_key_t flip_keys[] = {P_KEY("0.5"), DPT_SPEC_END};
static const dpt_spec_key_t rotate_keys[] = {POS_REAL("degrees", DPT_SPEC_REQUIRED, 180), FILL_KEY,
                                             P_KEY("1"), DPT_SPEC_END};
static const dpt_spec_key_t translate_keys[] = {POS_REAL("pixels", DPT_SPEC_REQUIRED, 4096),
                                                FILL_KEY, P_KEY("1"), DPT_SPEC_END};
static const dpt_spec_key_t scale_keys[] = {DPT_SPEC_R("min", "0.9", 0, 16, DPT_SPEC_LO_OPEN),
                                            DPT_SPEC_R("max", "1.1", 0, 16, DPT_SPEC_LO_OPEN),
                                            FILL_KEY, P_KEY("1"), DPT_SPEC_END};
static const dpt_spec_key_t affine_keys[] = {DPT_SPEC_R("degrees", "0", 0, 180, 0),
                                             DPT_SPEC_R("translate", "0", 0, 4096, 0),
                                             DPT_SPEC_R("scale_min", "1", 0, 16, DPT_SPEC_LO_OPEN),
                                             DPT_SPEC_R("scale_max", "1", 0, 16, DPT_SPEC_LO_OPEN),
                                             DPT_SPEC_R("shear", "0", 0, 60, 0),
                                             FILL_KEY,
                                             P_KEY("1"),
                                             DPT_SPEC_END};
static const dpt_spec_key_t brightness_keys[] = {POS_REAL("delta", DPT_SPEC_REQUIRED, 1),
                                                 P_KEY("1"), DPT_SPEC_END};
static const dpt_spec_key_t factor_keys[] = {POS_REAL("factor", DPT_SPEC_REQUIRED, 1), P_KEY("1"),
                                             DPT_SPEC_END};
static const dpt_spec_key_t noise_keys[] = {POS_REAL("std", DPT_SPEC_REQUIRED, 1), P_KEY("1"),
                                            DPT_SPEC_END};
static const dpt_spec_key_t erase_keys[] = {
    P_KEY("0.5"), DPT_SPEC_R("area", "0.02/0.33", 0, 1, DPT_SPEC_LO_OPEN | DPT_SPEC_LIST),
    DPT_SPEC_R("ratio", "0.3/3.3", 0, 100, DPT_SPEC_LO_OPEN | DPT_SPEC_LIST),
    DPT_SPEC_R("value", "0", 0, 1, 0), DPT_SPEC_END};
static const dpt_spec_key_t mixup_keys[] = {
    DPT_SPEC_R("alpha", "0.2", 0, 100, DPT_SPEC_LO_OPEN | DPT_SPEC_POS), P_KEY("1"), DPT_SPEC_END};
static const dpt_spec_key_t cutmix_keys[] = {
    DPT_SPEC_R("alpha", "1", 0, 100, DPT_SPEC_LO_OPEN | DPT_SPEC_POS), P_KEY("1"), DPT_SPEC_END};

typedef enum {
    OP_CROP,
    OP_HFLIP,
    OP_VFLIP,
    OP_ROTATE,
    OP_TRANSLATE,
    OP_SCALE,
    OP_AFFINE,
    OP_BRIGHTNESS,
    OP_CONTRAST,
    OP_SATURATION,
    OP_NOISE,
    OP_ERASE,
    OP_MIXUP,
    OP_CUTMIX,
    OP_COUNT
} op_kind_t;

/* In op_kind_t order. */
static const dpt_spec_kind_t op_kinds[OP_COUNT] = {
    {"crop", crop_keys},           {"hflip", flip_keys},
    {"vflip", flip_keys},          {"rotate", rotate_keys},
    {"translate", translate_keys}, {"scale", scale_keys},
    {"affine", affine_keys},       {"brightness", brightness_keys},
    {"contrast", factor_keys},     {"saturation", factor_keys},
    {"noise", noise_keys},         {"erase", erase_keys},
    {"mixup", mixup_keys},         {"cutmix", cutmix_keys}};
static const dpt_spec_kind_t *const op_kind_list[OP_COUNT] = {
    &op_kinds[0],  &op_kinds[1],  &op_kinds[2],  &op_kinds[3], &op_kinds[4],
    &op_kinds[5],  &op_kinds[6],  &op_kinds[7],  &op_kinds[8], &op_kinds[9],
    &op_kinds[10], &op_kinds[11], &op_kinds[12], &op_kinds[13]};
static const dpt_spec_grammar_t augment_grammar = {"--augment", op_kind_list,    OP_COUNT,
                                                   NULL,        DPT_AUG_OPS_MAX, NULL};

static const dpt_spec_key_t tta_crop_keys[] = {
    DPT_SPEC_I("pad", DPT_SPEC_REQUIRED, 1, 4096, DPT_SPEC_POS),
    DPT_SPEC_E("mode", "zero", "zero|reflect"), DPT_SPEC_END};
static const dpt_spec_kind_t tta_hflip = {"hflip", NULL}, tta_vflip = {"vflip", NULL},
                             tta_crop = {"crop", tta_crop_keys};
static const dpt_spec_kind_t *const tta_kinds[] = {&tta_hflip, &tta_vflip, &tta_crop};
static const dpt_spec_grammar_t tta_grammar = {"--tta", tta_kinds, 3, NULL, 3, NULL};

/* ---- the parsed spec -------------------------------------------------------------------- */

typedef struct aug_op {
    op_kind_t kind;
    float p;
    size_t pad;
    int reflect;
    double lo, hi; /* degrees, pixels, scale range, delta, factor, std, alpha */
    double degrees, translate, smin, smax, shear; /* affine */
    float fill;                                   /* pixel units */
    double area[2], ratio[2];
} aug_op_t;

struct dpt_augment {
    size_t c, h, w;
    size_t n_ops, n_before_mix; /* ops [0, n_before_mix) run on both images of a mix */
    aug_op_t op[DPT_AUG_OPS_MAX];
    char desc[DPT_SPEC_TEXT_MAX * 2];
};

/* [lo, hi] of a 1-or-2-value list key; one value is both ends. */
static dpt_status_t range_key(const dpt_spec_part_t *p, const char *key, double out[2])
{
    size_t n;
    const double *v = dpt_spec_list(p, key, &n);
    if (n > 2) return dpt_spec_error(p, "%s takes one value or lo/hi, got %zu values", key, n);
    out[0] = v[0];
    out[1] = n == 2 ? v[1] : v[0];
    if (out[0] > out[1]) return dpt_spec_error(p, "%s: lo %g is above hi %g", key, out[0], out[1]);
    return DPT_OK;
}

static dpt_status_t read_op(const dpt_spec_part_t *p, aug_op_t *o)
{
    *o = (aug_op_t){.kind = (op_kind_t)p->kind_index, .p = 1.0f};
    if (p->kind->keys && dpt_spec_is_set(p, "p")) o->p = (float)dpt_spec_real(p, "p");
    switch (o->kind) {
    case OP_CROP:
        o->pad = dpt_spec_size(p, "pad");
        o->reflect = dpt_spec_int(p, "mode") == 1;
        break;
    case OP_ROTATE:
        o->hi = dpt_spec_real(p, "degrees");
        break;
    case OP_TRANSLATE:
        o->hi = dpt_spec_real(p, "pixels");
        break;
    case OP_SCALE:
        o->lo = dpt_spec_real(p, "min");
        o->hi = dpt_spec_real(p, "max");
        if (o->lo > o->hi) return dpt_spec_error(p, "min %g is above max %g", o->lo, o->hi);
        break;
    case OP_AFFINE:
        o->degrees = dpt_spec_real(p, "degrees");
        o->translate = dpt_spec_real(p, "translate");
        o->smin = dpt_spec_real(p, "scale_min");
        o->smax = dpt_spec_real(p, "scale_max");
        o->shear = dpt_spec_real(p, "shear");
        if (o->smin > o->smax)
            return dpt_spec_error(p, "scale_min %g is above scale_max %g", o->smin, o->smax);
        break;
    case OP_BRIGHTNESS:
        o->hi = dpt_spec_real(p, "delta");
        break;
    case OP_CONTRAST:
    case OP_SATURATION:
        o->hi = dpt_spec_real(p, "factor");
        break;
    case OP_NOISE:
        o->hi = dpt_spec_real(p, "std");
        break;
    case OP_ERASE: {
        dpt_status_t s = range_key(p, "area", o->area);
        if (s == DPT_OK) s = range_key(p, "ratio", o->ratio);
        if (s != DPT_OK) return s;
        o->fill = (float)(255.0 * dpt_spec_real(p, "value"));
        break;
    }
    case OP_MIXUP:
    case OP_CUTMIX:
        o->hi = dpt_spec_real(p, "alpha");
        break;
    default:
        break;
    }
    if (o->kind == OP_ROTATE || o->kind == OP_TRANSLATE || o->kind == OP_SCALE ||
        o->kind == OP_AFFINE)
        o->fill = (float)(255.0 * dpt_spec_real(p, "fill"));
    return DPT_OK;
}

/* What the image shape decides: crop padding, colour ops. */
static dpt_status_t check_shape(const dpt_spec_part_t *p, const aug_op_t *o, size_t c, size_t h,
                                size_t w)
{
    size_t side = h < w ? h : w;
    if (o->kind == OP_CROP && o->pad > side)
        return dpt_spec_error(p, "pad %zu is larger than the %zux%zu image", o->pad, h, w);
    if (o->kind == OP_CROP && o->reflect && o->pad >= side)
        return dpt_spec_error(p, "mode=reflect needs pad below the image side (%zu), got %zu", side,
                              o->pad);
    if (o->kind == OP_SATURATION && c != 3)
        return dpt_spec_error(p, "needs a colour (3-channel) image; this data has %zu channel%s", c,
                              c == 1 ? "" : "s");
    return DPT_OK;
}

static void append_desc(char *desc, size_t cap, const dpt_spec_part_t *p)
{
    size_t len = strlen(desc);
    if (len && len + 1 < cap) desc[len++] = '+', desc[len] = '\0';
    if (len < cap) dpt_spec_describe(p, desc + len, cap - len);
}

dpt_status_t dpt_augment_create(const char *spec, size_t c, size_t h, size_t w, dpt_augment_t **out)
{
    *out = NULL;
    dpt_spec_t *parsed = malloc(sizeof *parsed);
    dpt_augment_t *a = calloc(1, sizeof *a);
    if (!parsed || !a) {
        free(parsed), free(a);
        return dpt_error(DPT_ERR_NOMEM, "out of memory parsing --augment");
    }
    a->c = c, a->h = h, a->w = w;
    dpt_status_t s = dpt_spec_parse(&augment_grammar, spec, parsed);
    for (size_t i = 0; s == DPT_OK && i < parsed->n; i++) {
        const dpt_spec_part_t *p = &parsed->part[i];
        aug_op_t *o = &a->op[i];
        s = read_op(p, o);
        int mixes = o->kind == OP_MIXUP || o->kind == OP_CUTMIX;
        if (s == DPT_OK && mixes && i + 1 != parsed->n)
            s = dpt_spec_error(p, "mixes two samples and their labels, so it must be the last "
                                  "op (and the only mixup or cutmix)");
        if (s == DPT_OK && c) s = check_shape(p, o, c, h, w);
        if (s == DPT_OK) append_desc(a->desc, sizeof a->desc, p);
        a->n_ops = i + 1;
        a->n_before_mix = mixes ? i : a->n_ops;
    }
    free(parsed);
    if (s != DPT_OK) {
        free(a);
        return s;
    }
    *out = a;
    return DPT_OK;
}

void dpt_augment_free(dpt_augment_t *a)
{
    free(a);
}

const char *dpt_augment_describe(const dpt_augment_t *a)
{
    return a->desc;
}

int dpt_augment_mixes_labels(const dpt_augment_t *a)
{
    return a->n_before_mix < a->n_ops;
}

size_t dpt_augment_scratch_floats(const dpt_augment_t *a)
{
    /* A second image (crop's output), the mixing partner, the warp's padded channel. */
    return 2 * a->c * a->h * a->w + dpt_aug_warp_scratch(a->h, a->w);
}

dpt_status_t dpt_augment_check_data(const dpt_augment_t *a, const dpt_dataset_t *ds)
{
    size_t c, h, w;
    dpt_dataset_shape(ds, &c, &h, &w);
    if (!dpt_dataset_is_image(ds))
        return dpt_error(DPT_ERR_INVALID_ARG, "--augment needs image data; %s is a table",
                         dpt_dataset_describe(ds));
    if (c != a->c || h != a->h || w != a->w)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "--augment was built for %zux%zux%zu images; the data is %zux%zux%zu",
                         a->c, a->h, a->w, c, h, w);
    return DPT_OK;
}

/* ---- draws ------------------------------------------------------------------------------ */

/* Draw d of op k of the sample whose key is `key` (seed, epoch, sample index): a hash, no
 * state, so any thread, process or resume computes the same. */
static inline uint64_t draw_bits(uint64_t key, uint64_t k, uint64_t d)
{
    return dpt_hash3(key, k, d);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double draw_unit(uint64_t key, uint64_t k, uint64_t d)
{
    return (double)(draw_bits(key, k, d) >> 11) * 0x1p-53;
}

static inline double draw_range(uint64_t key, uint64_t k, uint64_t d, double lo, double hi)
{
    return lo + (hi - lo) * draw_unit(key, k, d);
}

/* Uniform integer in [0, n]. */
static inline size_t draw_upto(uint64_t key, uint64_t k, uint64_t d, size_t n)
{
    size_t v = (size_t)(draw_unit(key, k, d) * (double)(n + 1));
    return v > n ? n : v;
}

/* Standard normal pair by Box-Muller from draws d and d + 1 (u1 in (0, 1]). */
static inline void draw_normal2(uint64_t key, uint64_t k, uint64_t d, double *z0, double *z1)
{
    double u1 = (double)((draw_bits(key, k, d) >> 11) + 1) * 0x1p-53;
    double u2 = draw_unit(key, k, d + 1);
    double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
    *z0 = r * cos(t);
    if (z1) *z1 = r * sin(t);
}

/* Gamma(alpha, 1) by Marsaglia and Tsang (alpha < 1 through alpha + 1 and U^(1/alpha)), its
 * draws from d upwards; the rejection loop is bounded (acceptance is above 95% a try). */
static double draw_gamma(uint64_t key, uint64_t k, uint64_t d, double alpha)
{
    double boost = 1.0;
    if (alpha < 1.0) {
        boost = pow(draw_unit(key, k, d), 1.0 / alpha);
        alpha += 1.0;
    }
    const double dd = alpha - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
    for (uint64_t t = 0; t < 64; t++) {
        double x, v, u = draw_unit(key, k, d + 1 + 3 * t);
        draw_normal2(key, k, d + 2 + 3 * t, &x, NULL);
        v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        if (log(u) < 0.5 * x * x + dd - dd * v + dd * log(v)) return dd * v * boost;
    }
    return dd * boost;
}

/* Beta(alpha, alpha): the mixing weight of mixup and cutmix (Zhang et al. 2018, Yun et al.
 * 2019). */
static double draw_beta(uint64_t key, uint64_t k, double alpha)
{
    double x = draw_gamma(key, k, 16, alpha), y = draw_gamma(key, k, 1024, alpha);
    return x + y > 0 ? x / (x + y) : 0.5;
}

/* ---- applying ops ----------------------------------------------------------------------- */

static void load_pixels(const dpt_dataset_t *ds, size_t i, float *img, size_t n)
{
    const uint8_t *restrict p = dpt_dataset_pixels(ds, i);
    for (size_t j = 0; j < n; j++)
        img[j] = (float)p[j];
}

static void apply_erase(const dpt_augment_t *a, const aug_op_t *o, uint64_t key, uint64_t k,
                        float *img)
{
    /* torchvision RandomErasing: up to 10 tries for a box that fits. */
    const double hw = (double)(a->h * a->w);
    const double lr0 = log(o->ratio[0]), lr1 = log(o->ratio[1]);
    for (uint64_t t = 0; t < 10; t++) {
        double area = hw * draw_range(key, k, 1 + 4 * t, o->area[0], o->area[1]);
        double ar = exp(draw_range(key, k, 2 + 4 * t, lr0, lr1));
        double eh = nearbyint(sqrt(area * ar)), ew = nearbyint(sqrt(area / ar));
        if (!(eh >= 1 && ew >= 1 && eh < (double)a->h && ew < (double)a->w)) continue;
        size_t rh = (size_t)eh, rw = (size_t)ew;
        size_t y0 = draw_upto(key, k, 3 + 4 * t, a->h - rh);
        size_t x0 = draw_upto(key, k, 4 + 4 * t, a->w - rw);
        dpt_aug_fill_box(img, a->c, a->h, a->w, y0, x0, rh, rw, o->fill);
        return;
    }
}

static void apply_noise(const aug_op_t *o, uint64_t key, uint64_t k, float *img, size_t n)
{
    const double sd = 255.0 * o->hi;
    for (size_t j = 0; j < n; j += 2) {
        double z0, z1;
        draw_normal2(key, k, 2 + j, &z0, &z1);
        img[j] = (float)(img[j] + sd * z0);
        if (j + 1 < n) img[j + 1] = (float)(img[j + 1] + sd * z1);
    }
    dpt_aug_clamp(img, n);
}

static dpt_aug_affine_t geometry(const dpt_augment_t *a, const aug_op_t *o, uint64_t key,
                                 uint64_t k)
{
    double deg = 0, tx = 0, ty = 0, s = 1, shear = 0;
    switch (o->kind) {
    case OP_ROTATE:
        deg = draw_range(key, k, 1, -o->hi, o->hi);
        break;
    case OP_TRANSLATE:
        tx = draw_range(key, k, 1, -o->hi, o->hi);
        ty = draw_range(key, k, 2, -o->hi, o->hi);
        break;
    case OP_SCALE:
        s = draw_range(key, k, 1, o->lo, o->hi);
        break;
    default: /* affine */
        deg = draw_range(key, k, 1, -o->degrees, o->degrees);
        tx = draw_range(key, k, 2, -o->translate, o->translate);
        ty = draw_range(key, k, 3, -o->translate, o->translate);
        s = draw_range(key, k, 4, o->smin, o->smax);
        shear = draw_range(key, k, 5, -o->shear, o->shear);
        break;
    }
    return dpt_aug_affine_make(a->h, a->w, deg, tx, ty, s, shear);
}

/* Ops [0, end) on img; op k draws with index k + base (base: DPT_AUG_PARTNER for a mixing
 * partner). tmp holds an image, pad the warp's channel. */
static void apply_ops(const dpt_augment_t *a, size_t end, uint64_t key, uint64_t base, float *img,
                      float *tmp, float *pad)
{
    const size_t c = a->c, h = a->h, w = a->w, n = c * h * w;
    for (size_t i = 0; i < end; i++) {
        const aug_op_t *o = &a->op[i];
        const uint64_t k = base + i;
        if (o->p < 1.0f && !(draw_unit(key, k, 0) < o->p)) continue;
        switch (o->kind) {
        case OP_CROP: {
            size_t dx = draw_upto(key, k, 1, 2 * o->pad), dy = draw_upto(key, k, 2, 2 * o->pad);
            dpt_aug_crop(img, tmp, c, h, w, o->pad, dx, dy, o->reflect);
            memcpy(img, tmp, n * sizeof *img);
            break;
        }
        case OP_HFLIP:
            dpt_aug_hflip(img, c, h, w);
            break;
        case OP_VFLIP:
            dpt_aug_vflip(img, c, h, w);
            break;
        case OP_ROTATE:
        case OP_TRANSLATE:
        case OP_SCALE:
        case OP_AFFINE: {
            dpt_aug_affine_t m = geometry(a, o, key, k);
            dpt_aug_warp(img, c, h, w, &m, o->fill, pad);
            break;
        }
        case OP_BRIGHTNESS:
            dpt_aug_brightness(img, n, (float)(255.0 * draw_range(key, k, 1, -o->hi, o->hi)));
            break;
        case OP_CONTRAST:
            dpt_aug_contrast(img, n, (float)draw_range(key, k, 1, 1 - o->hi, 1 + o->hi));
            break;
        case OP_SATURATION:
            dpt_aug_saturation(img, h, w, (float)draw_range(key, k, 1, 1 - o->hi, 1 + o->hi));
            break;
        case OP_NOISE:
            apply_noise(o, key, k, img, n);
            break;
        case OP_ERASE:
            apply_erase(a, o, key, k, img);
            break;
        default:
            break; /* mixing ops: apply_mix */
        }
    }
}

/* The last op mixes img with a partner drawn from the whole dataset (not from the batch: the
 * partner is then a function of the sample alone, whatever the shards). Returns the weight
 * of img's own label. */
static float apply_mix(const dpt_augment_t *a, const dpt_dataset_t *ds, size_t sample, uint64_t key,
                       float *img, float *partner, float *tmp, float *pad, int32_t *label2)
{
    const aug_op_t *o = &a->op[a->n_before_mix];
    const uint64_t k = a->n_before_mix;
    const size_t c = a->c, h = a->h, w = a->w, n = c * h * w;
    if (o->p < 1.0f && !(draw_unit(key, k, 0) < o->p)) return 1.0f;
    /* Another sample: mixing one with itself would only blur its label weight. */
    const size_t count = dpt_dataset_count(ds);
    size_t j = count > 1 ? (size_t)(draw_bits(key, k, 1) % (count - 1)) : sample;
    if (count > 1 && j >= sample) j++;
    if (label2) *label2 = dpt_dataset_label(ds, j);
    load_pixels(ds, j, partner, n);
    apply_ops(a, a->n_before_mix, key, DPT_AUG_PARTNER, partner, tmp, pad);
    double lam = draw_beta(key, k, o->hi);
    if (o->kind == OP_MIXUP) {
        dpt_aug_mix(img, partner, n, (float)lam);
        return (float)lam;
    }
    /* cutmix: a box of area (1 - lam) around a uniform centre, clipped to the image; the
     * label weight is the area actually kept. */
    double cut = sqrt(1.0 - lam);
    size_t cw = (size_t)((double)w * cut), ch = (size_t)((double)h * cut);
    size_t cx = draw_upto(key, k, 2, w - 1), cy = draw_upto(key, k, 3, h - 1);
    size_t x0 = cx > cw / 2 ? cx - cw / 2 : 0, y0 = cy > ch / 2 ? cy - ch / 2 : 0;
    size_t x1 = cx + cw / 2 < w ? cx + cw / 2 : w, y1 = cy + ch / 2 < h ? cy + ch / 2 : h;
    if (x1 <= x0 || y1 <= y0) return 1.0f;
    dpt_aug_paste_box(img, partner, c, h, w, y0, x0, y1 - y0, x1 - x0);
    return (float)(1.0 - (double)((x1 - x0) * (y1 - y0)) / (double)(h * w));
}

void dpt_augment_view(const dpt_augment_t *a, const dpt_dataset_t *ds, size_t sample, uint64_t seed,
                      uint64_t epoch, float *out, float *scratch, int32_t *label2, float *lam)
{
    const size_t n = a->c * a->h * a->w;
    float *tmp = scratch, *partner = scratch + n, *pad = scratch + 2 * n;
    const uint64_t key = dpt_hash3(seed ^ DPT_AUG_STREAM, epoch, sample);
    load_pixels(ds, sample, out, n);
    apply_ops(a, a->n_before_mix, key, 0, out, tmp, pad);
    int32_t y2 = dpt_dataset_label(ds, sample);
    float l = 1.0f;
    if (dpt_augment_mixes_labels(a)) l = apply_mix(a, ds, sample, key, out, partner, tmp, pad, &y2);
    if (label2) *label2 = y2;
    if (lam) *lam = l;
}

static void normalise(float *restrict x, size_t n, float a, float b)
{
    for (size_t j = 0; j < n; j++)
        x[j] = x[j] * a + b;
}

void dpt_augment_gather(const dpt_augment_t *a, const dpt_dataset_t *ds, const uint32_t *ids,
                        size_t n, uint64_t seed, uint64_t epoch, float *x, int32_t *y, int32_t *y2,
                        float *lam, float *scratch)
{
    const size_t f = a->c * a->h * a->w;
    float na, nb;
    dpt_dataset_pixel_affine(ds, &na, &nb);
    for (size_t i = 0; i < n; i++) {
        float *row = x + i * f;
        dpt_augment_view(a, ds, ids[i], seed, epoch, row, scratch, y2 ? &y2[i] : NULL,
                         lam ? &lam[i] : NULL);
        normalise(row, f, na, nb);
        if (y) y[i] = dpt_dataset_label(ds, ids[i]);
    }
}

/* ---- test-time augmentation ------------------------------------------------------------- */

struct dpt_tta {
    size_t c, h, w;
    int hflip, vflip, reflect;
    size_t pad;     /* 0: no crops */
    size_t n_crops; /* 1 or 5: the centre, then the four corners */
    char desc[256];
};

dpt_status_t dpt_tta_create(const char *spec, size_t c, size_t h, size_t w, dpt_tta_t **out)
{
    *out = NULL;
    dpt_spec_t *parsed = malloc(sizeof *parsed);
    dpt_tta_t *t = calloc(1, sizeof *t);
    if (!parsed || !t) {
        free(parsed), free(t);
        return dpt_error(DPT_ERR_NOMEM, "out of memory parsing --tta");
    }
    *t = (dpt_tta_t){.c = c, .h = h, .w = w, .n_crops = 1};
    dpt_status_t s = dpt_spec_parse(&tta_grammar, spec, parsed);
    for (size_t i = 0; s == DPT_OK && i < parsed->n; i++) {
        const dpt_spec_part_t *p = &parsed->part[i];
        int *flag = p->kind == &tta_hflip ? &t->hflip : p->kind == &tta_vflip ? &t->vflip : NULL;
        if ((flag && *flag) || (!flag && t->pad))
            s = dpt_spec_error(p, "is given twice");
        else if (flag)
            *flag = 1;
        else {
            aug_op_t o = {.kind = OP_CROP,
                          .pad = dpt_spec_size(p, "pad"),
                          .reflect = dpt_spec_int(p, "mode") == 1};
            s = check_shape(p, &o, c, h, w);
            t->pad = o.pad, t->reflect = o.reflect, t->n_crops = 5;
        }
        if (s == DPT_OK) append_desc(t->desc, sizeof t->desc, p);
    }
    free(parsed);
    if (s != DPT_OK) {
        free(t);
        return s;
    }
    *out = t;
    return DPT_OK;
}

void dpt_tta_free(dpt_tta_t *t)
{
    free(t);
}

const char *dpt_tta_describe(const dpt_tta_t *t)
{
    return t->desc;
}

size_t dpt_tta_views(const dpt_tta_t *t)
{
    return t->n_crops * (t->hflip ? 2u : 1u) * (t->vflip ? 2u : 1u);
}

size_t dpt_tta_scratch_floats(const dpt_tta_t *t)
{
    return t->c * t->h * t->w;
}

void dpt_tta_gather(const dpt_tta_t *t, size_t view, const dpt_dataset_t *ds, const uint32_t *ids,
                    size_t n, float *x, int32_t *y, float *scratch)
{
    /* view = crop + n_crops * (hflip + 2 * vflip), the flips counted only when enabled. */
    const size_t c = t->c, h = t->h, w = t->w, f = c * h * w;
    size_t crop = view % t->n_crops, rest = view / t->n_crops;
    int hf = t->hflip ? (int)(rest % 2) : 0;
    int vf = t->vflip ? (int)((t->hflip ? rest / 2 : rest) % 2) : 0;
    /* Window offsets in the padded image: the centre, then the four corners. */
    static const int corner[5][2] = {{1, 1}, {0, 0}, {2, 0}, {0, 2}, {2, 2}};
    float na, nb;
    dpt_dataset_pixel_affine(ds, &na, &nb);
    for (size_t i = 0; i < n; i++) {
        float *row = x + i * f;
        load_pixels(ds, ids[i], crop ? scratch : row, f);
        if (crop)
            dpt_aug_crop(scratch, row, c, h, w, t->pad, (size_t)corner[crop][0] * t->pad,
                         (size_t)corner[crop][1] * t->pad, t->reflect);
        if (hf) dpt_aug_hflip(row, c, h, w);
        if (vf) dpt_aug_vflip(row, c, h, w);
        normalise(row, f, na, nb);
        if (y) y[i] = dpt_dataset_label(ds, ids[i]);
    }
}
