/* Owns the public dataset API: spec parsing and dispatch to the loaders, views (index arrays)
 * over the reference-counted storage (store.c), the train/validation split, normalisation and
 * gather. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "data/data_internal.h"
#include "data/store.h"

/* RNG stream reserved for the train/validation split, so it never shares draws with the
 * shuffles and augmentations that use the same seed. */
#define DPT_SPLIT_STREAM 0x5b117ULL
#define DPT_DEFAULT_MAX_BYTES ((size_t)4 << 30)

struct dpt_dataset {
    dpt_store_t *st;
    uint32_t *idx; /* rows of st in this view, [count] */
    size_t count;
    /* Normaliser. Images: x = (p/255 - mean0)/std0 for every pixel. Tables:
     * x = (v - mean[j]) * inv_std[j], both [features]. Before fitting: mean 0, std/inv_std 1. */
    float *mean, *inv_std;
    double mean0, std0; /* reported by dpt_dataset_normalization */
    char part[16];
    char desc[256];
};

dpt_data_options_t dpt_data_options_default(void)
{
    return (dpt_data_options_t){.csv_label_column = -1,
                                .csv_header = 0,
                                .csv_delimiter = ',',
                                .max_bytes = DPT_DEFAULT_MAX_BYTES};
}

/* ---- views ------------------------------------------------------------------------------ */

static void view_describe(dpt_dataset_t *ds)
{
    const dpt_store_t *st = ds->st;
    snprintf(ds->desc, sizeof ds->desc, "%s %s: %zu x %zux%zux%zu, %zu classes", st->name, ds->part,
             ds->count, st->c, st->h, st->w, st->classes);
}

/* A view of `count` rows of st (index array left for the caller to fill) with the identity
 * normaliser; takes its own reference to st. */
static dpt_dataset_t *view_new(dpt_store_t *st, const char *part, size_t count)
{
    dpt_dataset_t *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->idx = malloc((count ? count : 1) * sizeof *ds->idx);
    if (st->f32) ds->mean = malloc(2 * st->features * sizeof *ds->mean);
    if (!ds->idx || (st->f32 && !ds->mean)) {
        free(ds->idx);
        free(ds->mean);
        free(ds);
        return NULL;
    }
    dpt_store_retain(st);
    ds->st = st;
    ds->count = count;
    if (st->f32) {
        ds->inv_std = ds->mean + st->features;
        for (size_t j = 0; j < st->features; j++)
            ds->mean[j] = 0.0f, ds->inv_std[j] = 1.0f;
    }
    ds->mean0 = 0.0, ds->std0 = 1.0;
    snprintf(ds->part, sizeof ds->part, "%s", part);
    view_describe(ds);
    return ds;
}

/* The view of every row of st, in order. */
static dpt_dataset_t *view_full(dpt_store_t *st, const char *part)
{
    dpt_dataset_t *ds = view_new(st, part, st->count);
    if (ds)
        for (size_t i = 0; i < st->count; i++)
            ds->idx[i] = (uint32_t)i;
    return ds;
}

static void view_copy_norm(dpt_dataset_t *dst, const dpt_dataset_t *src)
{
    if (dst->mean) memcpy(dst->mean, src->mean, 2 * src->st->features * sizeof *dst->mean);
    dst->mean0 = src->mean0, dst->std0 = src->std0;
}

void dpt_dataset_free(dpt_dataset_t *ds)
{
    if (!ds) return;
    dpt_store_release(ds->st);
    free(ds->idx);
    free(ds->mean);
    free(ds);
}

/* ---- opening ---------------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

/* DIR/name if it exists, else DIR/name.gz; DPT_ERR_IO naming both when neither does. */
static dpt_status_t find_idx_file(const char *dir, const char *name, const char *hint, char **out)
{
    struct stat sb;
    char *raw = path_join(dir, name, ""), *gz = path_join(dir, name, ".gz");
    dpt_status_t s = DPT_OK;
    if (!raw || !gz)
        s = dpt_error(DPT_ERR_NOMEM, "%s: out of memory", dir);
    else if (stat(raw, &sb) == 0)
        *out = raw, raw = NULL;
    else if (stat(gz, &sb) == 0)
        *out = gz, gz = NULL;
    else
        s = dpt_error(DPT_ERR_IO, "%s: not found (nor %s)%s", raw, gz, hint);
    free(raw);
    free(gz);
    return s;
}

/* Loads DIR/<prefix>-images-idx3-ubyte[.gz] with its labels file. When like is not NULL
 * (the training part), the images must have its geometry. */
static dpt_status_t load_mnist_part(const char *dir, const char *prefix, const char *name,
                                    const char *hint, const dpt_store_t *like,
                                    const dpt_data_options_t *opt, dpt_store_t **out)
{
    char img[64], lab[64], *pi = NULL, *pl = NULL;
    snprintf(img, sizeof img, "%s-images-idx3-ubyte", prefix);
    snprintf(lab, sizeof lab, "%s-labels-idx1-ubyte", prefix);
    dpt_status_t s = find_idx_file(dir, img, hint, &pi);
    if (!s) s = find_idx_file(dir, lab, hint, &pl);
    if (!s) s = dpt_idx_load(pi, pl, DPT_TEN_CLASSES, name, opt, out);
    if (!s && like && ((*out)->h != like->h || (*out)->w != like->w)) {
        s = dpt_error(DPT_ERR_FORMAT,
                      "%s: byte 8: image size differs from the training images (expected "
                      "%zux%zu vs got %zux%zu)",
                      pi, like->h, like->w, (*out)->h, (*out)->w);
        dpt_store_release(*out);
        *out = NULL;
    }
    free(pi);
    free(pl);
    return s;
}

static dpt_status_t open_mnist(const char *dir, const char *name, const char *hint,
                               const dpt_data_options_t *opt, dpt_store_t **tr, dpt_store_t **te)
{
    dpt_status_t s = load_mnist_part(dir, "train", name, hint, NULL, opt, tr);
    if (s) return s;
    s = load_mnist_part(dir, "t10k", name, hint, *tr, opt, te);
    if (s) {
        dpt_store_release(*tr);
        *tr = NULL;
    }
    return s;
}

/* "idx:IMAGES,LABELS": split at the first comma. */
static dpt_status_t open_idx(const char *arg, const dpt_data_options_t *opt, dpt_store_t **tr)
{
    const char *comma = strchr(arg, ',');
    if (!comma || comma == arg || !comma[1])
        return dpt_error(DPT_ERR_INVALID_ARG, "idx:%s: expected two files, idx:IMAGES,LABELS", arg);
    size_t n = (size_t)(comma - arg);
    char *images = malloc(n + 1), name[128];
    if (!images) return dpt_error(DPT_ERR_NOMEM, "idx: out of memory");
    memcpy(images, arg, n);
    images[n] = '\0';
    snprintf(name, sizeof name, "idx:%s", images);
    dpt_status_t s = dpt_idx_load(images, comma + 1, 0, name, opt, tr);
    free(images);
    return s;
}

static dpt_status_t open_cifar10(const char *dir, const dpt_data_options_t *opt, dpt_store_t **tr,
                                 dpt_store_t **te)
{
    char *paths[6] = {0}, name[128];
    dpt_status_t s = DPT_OK;
    for (int i = 0; i < 6 && !s; i++) {
        char base[32];
        if (i < 5)
            snprintf(base, sizeof base, "data_batch_%d.bin", i + 1);
        else
            snprintf(base, sizeof base, "test_batch.bin");
        paths[i] = path_join(dir, base, "");
        if (!paths[i]) s = dpt_error(DPT_ERR_NOMEM, "%s: out of memory", dir);
    }
    snprintf(name, sizeof name, "cifar10:%s", dir);
    if (!s) s = dpt_cifar10_load((const char *const *)paths, 5, name, opt, tr);
    if (!s && (s = dpt_cifar10_load((const char *const *)&paths[5], 1, name, opt, te))) {
        dpt_store_release(*tr);
        *tr = NULL;
    }
    for (int i = 0; i < 6; i++)
        free(paths[i]);
    return s;
}

/* The argument after prefix in spec, or NULL when spec has another form. An empty argument
 * is an error (*s set). */
static const char *spec_arg(const char *spec, const char *prefix, dpt_status_t *s)
{
    size_t n = strlen(prefix);
    if (strncmp(spec, prefix, n) != 0) return NULL;
    if (!spec[n])
        *s = dpt_error(DPT_ERR_INVALID_ARG, "dataset spec '%s' is missing its path", spec);
    return spec + n;
}

static dpt_status_t open_stores(const char *spec, const dpt_data_options_t *opt, dpt_store_t **tr,
                                dpt_store_t **te)
{
    dpt_status_t s = DPT_OK;
    const char *a;
    char name[128];
    if (strcmp(spec, "fashion-mnist") == 0)
        return open_mnist(DPT_FASHION_MNIST_DIR, "fashion-mnist",
                          " (install the Debian package dataset-fashion-mnist, or use mnist:DIR)",
                          opt, tr, te);
    if ((a = spec_arg(spec, "mnist:", &s))) {
        snprintf(name, sizeof name, "mnist:%s", a);
        return s ? s : open_mnist(a, name, "", opt, tr, te);
    }
    if ((a = spec_arg(spec, "idx:", &s))) return s ? s : open_idx(a, opt, tr);
    if ((a = spec_arg(spec, "cifar10:", &s))) return s ? s : open_cifar10(a, opt, tr, te);
    if ((a = spec_arg(spec, "csv:", &s))) return s ? s : dpt_csv_load(a, opt, tr);
    if ((a = spec_arg(spec, "synthetic:", &s))) return s ? s : dpt_synthetic_load(a, opt, tr, te);
    return dpt_error(DPT_ERR_INVALID_ARG,
                     "unknown dataset spec '%s' (expected fashion-mnist, mnist:DIR, "
                     "idx:IMAGES,LABELS, cifar10:DIR, csv:FILE or synthetic:N[,C,H,W,CLASSES])",
                     spec);
}

int dpt_dataset_spec_shape(const char *spec, size_t *c, size_t *h, size_t *w, size_t *classes)
{
    size_t d[5] = {0, 1, 28, 28, 10};
    dpt_status_t s = DPT_OK;
    const char *a;
    if (!spec) return 0;
    if (strcmp(spec, "fashion-mnist") == 0 || strncmp(spec, "mnist:", 6) == 0) {
        /* the formats fix these: 28x28 grey images of 10 classes */
    } else if (strncmp(spec, "cifar10:", 8) == 0) {
        d[1] = 3, d[2] = d[3] = 32;
    } else if ((a = spec_arg(spec, "synthetic:", &s))) {
        if (s != DPT_OK || dpt_synthetic_dims(a, d) != DPT_OK) return 0;
    } else {
        return 0;
    }
    *c = d[1], *h = d[2], *w = d[3], *classes = d[4];
    return 1;
}

dpt_status_t dpt_dataset_open(const char *spec, const dpt_data_options_t *opt,
                              dpt_dataset_t **train, dpt_dataset_t **test)
{
    if (!spec || !train)
        return dpt_error(DPT_ERR_INVALID_ARG, "dpt_dataset_open: spec and train are required");
    dpt_data_options_t o = opt ? *opt : dpt_data_options_default();
    dpt_store_t *tr = NULL, *te = NULL;
    dpt_status_t s = open_stores(spec, &o, &tr, &te);
    if (s) return s;
    dpt_dataset_t *vtr = view_full(tr, "train");
    dpt_dataset_t *vte = te && test ? view_full(te, "test") : NULL;
    dpt_store_release(tr); /* the views hold their own references */
    dpt_store_release(te);
    if (!vtr || (te && test && !vte)) {
        dpt_dataset_free(vtr);
        dpt_dataset_free(vte);
        return dpt_error(DPT_ERR_NOMEM, "%s: out of memory for the index arrays", spec);
    }
    *train = vtr;
    if (test) *test = vte;
    return DPT_OK;
}

/* ---- accessors -------------------------------------------------------------------------- */

size_t dpt_dataset_count(const dpt_dataset_t *ds)
{
    return ds->count;
}

size_t dpt_dataset_features(const dpt_dataset_t *ds)
{
    return ds->st->features;
}

size_t dpt_dataset_classes(const dpt_dataset_t *ds)
{
    return ds->st->classes;
}

void dpt_dataset_shape(const dpt_dataset_t *ds, size_t *c, size_t *h, size_t *w)
{
    if (c) *c = ds->st->c;
    if (h) *h = ds->st->h;
    if (w) *w = ds->st->w;
}

int32_t dpt_dataset_label(const dpt_dataset_t *ds, size_t i)
{
    return ds->st->labels[ds->idx[i]];
}

const char *dpt_dataset_describe(const dpt_dataset_t *ds)
{
    return ds->desc;
}

size_t dpt_dataset_storage_bytes(const dpt_dataset_t *ds)
{
    const dpt_store_t *st = ds->st;
    size_t elem = st->u8 ? 1 : sizeof(float);
    return st->count * st->features * elem + st->count * sizeof *st->labels;
}

/* ---- split ------------------------------------------------------------------------------ */

dpt_status_t dpt_dataset_split(const dpt_dataset_t *ds, double val_fraction, uint64_t seed,
                               dpt_dataset_t **train, dpt_dataset_t **val)
{
    if (!ds || !train || !val)
        return dpt_error(DPT_ERR_INVALID_ARG, "dpt_dataset_split: NULL argument");
    if (!(val_fraction > 0.0 && val_fraction < 1.0))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "validation fraction %g out of range (expected 0 < fraction < 1)",
                         val_fraction);
    size_t n = ds->count, nv = (size_t)llround(val_fraction * (double)n);
    if (nv == 0 || nv >= n)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "splitting %zu samples with validation fraction %g leaves a part empty "
                         "(validation %zu vs training %zu)",
                         n, val_fraction, nv, n - (nv < n ? nv : n));
    uint32_t *perm = malloc(n * sizeof *perm);
    unsigned char *in_val = calloc(n, 1);
    dpt_dataset_t *tv = view_new(ds->st, "train", n - nv), *vv = view_new(ds->st, "val", nv);
    if (!perm || !in_val || !tv || !vv) {
        free(perm), free(in_val), dpt_dataset_free(tv), dpt_dataset_free(vv);
        return dpt_error(DPT_ERR_NOMEM, "split of %zu samples: out of memory", n);
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    dpt_rng_t r;
    dpt_rng_seed(&r, seed, DPT_SPLIT_STREAM);
    dpt_rng_shuffle_u32(&r, perm, n);
    for (size_t i = 0; i < nv; i++)
        in_val[perm[i]] = 1;
    /* Each part keeps the parent's order: the draw decides membership only. */
    for (size_t i = 0, t = 0, v = 0; i < n; i++) {
        if (in_val[i])
            vv->idx[v++] = ds->idx[i];
        else
            tv->idx[t++] = ds->idx[i];
    }
    free(perm);
    free(in_val);
    view_copy_norm(tv, ds);
    view_copy_norm(vv, ds);
    *train = tv;
    *val = vv;
    return DPT_OK;
}

/* ---- normalisation ---------------------------------------------------------------------- */

/* One global mean/std over all pixels/255 of the view, from a 256-bin histogram (exact, and
 * one cheap pass over the bytes). */
static void fit_images(dpt_dataset_t *ds)
{
    const dpt_store_t *st = ds->st;
    uint64_t hist[256] = {0};
    for (size_t i = 0; i < ds->count; i++) {
        const uint8_t *p = st->u8 + (size_t)ds->idx[i] * st->features;
        for (size_t j = 0; j < st->features; j++)
            hist[p[j]]++;
    }
    double n = (double)ds->count * (double)st->features, sum = 0.0, ss = 0.0;
    for (int v = 0; v < 256; v++)
        sum += (double)hist[v] * (v / 255.0);
    double mean = sum / n;
    for (int v = 0; v < 256; v++)
        ss += (double)hist[v] * (v / 255.0 - mean) * (v / 255.0 - mean);
    double sd = sqrt(ss / n);
    if (!(sd > 0.0)) sd = 1.0;
    ds->mean0 = mean, ds->std0 = sd;
}

/* Per-feature mean/std in double, two passes; a constant feature keeps std 1. */
static dpt_status_t fit_table(dpt_dataset_t *ds)
{
    const dpt_store_t *st = ds->st;
    size_t f = st->features;
    double *sum = calloc(2 * f, sizeof *sum), *ss = sum + f;
    if (!sum) return dpt_error(DPT_ERR_NOMEM, "normalisation of %zu features: out of memory", f);
    for (size_t i = 0; i < ds->count; i++) {
        const float *x = st->f32 + (size_t)ds->idx[i] * f;
        for (size_t j = 0; j < f; j++)
            sum[j] += x[j];
    }
    for (size_t j = 0; j < f; j++)
        sum[j] /= (double)ds->count;
    for (size_t i = 0; i < ds->count; i++) {
        const float *x = st->f32 + (size_t)ds->idx[i] * f;
        for (size_t j = 0; j < f; j++)
            ss[j] += (x[j] - sum[j]) * (x[j] - sum[j]);
    }
    for (size_t j = 0; j < f; j++) {
        double sd = sqrt(ss[j] / (double)ds->count);
        /* zero (or float-underflowing) spread: leave the feature unscaled */
        if (!(sd > 0.0) || !isfinite((float)(1.0 / sd))) sd = 1.0;
        ds->mean[j] = (float)sum[j];
        ds->inv_std[j] = (float)(1.0 / sd);
        if (j == 0) ds->mean0 = sum[0], ds->std0 = sd;
    }
    free(sum);
    return DPT_OK;
}

dpt_status_t dpt_dataset_fit_normalization(dpt_dataset_t *ds)
{
    if (!ds || ds->count == 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "fit normalisation: empty or NULL dataset");
    if (ds->st->u8) {
        fit_images(ds);
        return DPT_OK;
    }
    return fit_table(ds);
}

/* Saved form: u64 features, u64 kind (1 image, 2 table), double mean0, double std0, then for
 * nothing more for images, for tables float mean[features], float inv_std[features]. Native
 * byte order: it lives inside a checkpoint written and read by the same build family. */
typedef struct {
    uint64_t features, kind;
    double mean0, std0;
} norm_header_t;

static size_t norm_floats(const dpt_dataset_t *ds)
{
    return ds->st->u8 ? 0 : 2 * ds->st->features;
}

size_t dpt_dataset_normalization_save(const dpt_dataset_t *ds, void *buf, size_t cap)
{
    size_t need = sizeof(norm_header_t) + norm_floats(ds) * sizeof(float);
    if (!buf || cap < need) return need;
    norm_header_t h = {ds->st->features, ds->st->u8 ? 1 : 2, ds->mean0, ds->std0};
    memcpy(buf, &h, sizeof h);
    if (!ds->st->u8) memcpy((char *)buf + sizeof h, ds->mean, norm_floats(ds) * sizeof(float));
    return need;
}

dpt_status_t dpt_dataset_normalization_load(dpt_dataset_t *ds, const void *buf, size_t n)
{
    norm_header_t h;
    if (n < sizeof h)
        return dpt_error(DPT_ERR_FORMAT, "saved normalisation: %zu bytes, need at least %zu", n,
                         sizeof h);
    memcpy(&h, buf, sizeof h);
    uint64_t kind = ds->st->u8 ? 1 : 2;
    if (h.features != ds->st->features || h.kind != kind ||
        n != sizeof h + norm_floats(ds) * sizeof(float))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "saved normalisation is for %llu %s features; this data has %zu %s "
                         "features",
                         (unsigned long long)h.features, h.kind == 1 ? "image" : "table",
                         ds->st->features, kind == 1 ? "image" : "table");
    if (!ds->st->u8)
        memcpy(ds->mean, (const char *)buf + sizeof h, norm_floats(ds) * sizeof(float));
    ds->mean0 = h.mean0, ds->std0 = h.std0;
    return DPT_OK;
}

dpt_status_t dpt_dataset_copy_normalization(dpt_dataset_t *dst, const dpt_dataset_t *src)
{
    if (!dst || !src) return dpt_error(DPT_ERR_INVALID_ARG, "copy normalisation: NULL dataset");
    if (!dst->st->u8 != !src->st->u8 || dst->st->features != src->st->features)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "copy normalisation: datasets differ (expected %zu %s features vs got "
                         "%zu %s)",
                         src->st->features, src->st->u8 ? "image" : "table", dst->st->features,
                         dst->st->u8 ? "image" : "table");
    view_copy_norm(dst, src);
    return DPT_OK;
}

void dpt_dataset_normalization(const dpt_dataset_t *ds, double *mean, double *std)
{
    if (mean) *mean = ds->mean0;
    if (std) *std = ds->std0;
}

/* ---- gather ----------------------------------------------------------------------------- */

int dpt_dataset_is_image(const dpt_dataset_t *ds)
{
    return ds->st->u8 != NULL;
}

const uint8_t *dpt_dataset_pixels(const dpt_dataset_t *ds, size_t i)
{
    const dpt_store_t *st = ds->st;
    return st->u8 ? st->u8 + (size_t)ds->idx[i] * st->features : NULL;
}

void dpt_dataset_pixel_affine(const dpt_dataset_t *ds, float *a, float *b)
{
    *a = (float)(1.0 / (255.0 * ds->std0));
    *b = (float)(-ds->mean0 / ds->std0);
}

void dpt_dataset_gather(const dpt_dataset_t *ds, const uint32_t *idx, size_t n, float *x,
                        int32_t *y)
{
    const dpt_store_t *st = ds->st;
    size_t f = st->features;
    if (st->u8) {
        /* (p/255 - mean)/std as one multiply-add per pixel: unlike a table lookup it
         * vectorises (bytes widened to floats 16 at a time), and gather runs in every step. */
        float a, b;
        dpt_dataset_pixel_affine(ds, &a, &b);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *restrict p = st->u8 + (size_t)ds->idx[idx[i]] * f;
            /* Rows come in shuffled order, so the hardware prefetcher cannot guess the next
             * one: ask for it while this one is converted. */
            if (i + 1 < n) {
                const uint8_t *next = st->u8 + (size_t)ds->idx[idx[i + 1]] * f;
                for (size_t j = 0; j < f; j += 64)
                    __builtin_prefetch(next + j);
            }
            float *restrict o = x + i * f;
            for (size_t j = 0; j < f; j++)
                o[j] = (float)p[j] * a + b;
        }
    } else {
        const float *restrict m = ds->mean, *restrict is = ds->inv_std;
        for (size_t i = 0; i < n; i++) {
            const float *restrict p = st->f32 + (size_t)ds->idx[idx[i]] * f;
            float *restrict o = x + i * f;
            for (size_t j = 0; j < f; j++)
                o[j] = (p[j] - m[j]) * is[j];
        }
    }
    if (y)
        for (size_t i = 0; i < n; i++)
            y[i] = st->labels[ds->idx[idx[i]]];
}
