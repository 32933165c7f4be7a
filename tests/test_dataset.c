/* Tests for src/data/dataset.c: split determinism and coverage, normalisation, gather,
 * shared storage and concurrent gathers, on CSV and IDX fixtures written in temp dirs. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/dataset.h"
#include "support.h"

#define NROWS 101
#define NIMG 60
#define IMG_H 5
#define IMG_W 6

TestSuite(split, .fini = t_remove_scratch);
TestSuite(normalize, .fini = t_remove_scratch);
TestSuite(gather, .fini = t_remove_scratch);
TestSuite(dataset, .fini = t_remove_scratch);

static dpt_dataset_t *csv_table(void)
{
    char *dir = t_scratch_dir("ds");
    char *p = t_path(dir, "table.csv");
    size_t cap = NROWS * 32, n = 0;
    char *text = malloc(cap);
    for (int i = 0; i < NROWS; i++)
        n += (size_t)snprintf(text + n, cap - n, "%d,5,%d,%d\n", i, (i * i) % 17, i % 4);
    t_write_file(p, text, n, 0);
    char spec[512];
    snprintf(spec, sizeof spec, "csv:%s", p);
    dpt_dataset_t *ds = NULL;
    cr_assert_eq(dpt_dataset_open(spec, NULL, &ds, NULL), DPT_OK, "%s", dpt_last_error());
    free(text), free(p);
    return ds;
}

static uint8_t img_pix(size_t i, size_t j)
{
    return (uint8_t)((i * 37 + j * j * 11) % 251);
}

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8), b[3] = (unsigned char)v;
}

/* NIMG images of IMG_H x IMG_W through the idx: spec (raw files). */
static dpt_dataset_t *idx_images(void)
{
    char *dir = t_scratch_dir("ds");
    size_t ni = 16 + (size_t)NIMG * IMG_H * IMG_W, nl = 8 + NIMG;
    unsigned char *im = malloc(ni), *lb = malloc(nl);
    memcpy(im, "\0\0\x08\x03", 4), memcpy(lb, "\0\0\x08\x01", 4);
    put_be32(im + 4, NIMG), put_be32(im + 8, IMG_H), put_be32(im + 12, IMG_W);
    put_be32(lb + 4, NIMG);
    for (size_t i = 0; i < NIMG; i++) {
        lb[8 + i] = (unsigned char)(i % 3);
        for (size_t j = 0; j < IMG_H * IMG_W; j++)
            im[16 + i * IMG_H * IMG_W + j] = img_pix(i, j);
    }
    char *pi = t_path(dir, "im"), *pl = t_path(dir, "lb"), spec[512];
    t_write_file(pi, im, ni, 1);
    t_write_file(pl, lb, nl, 0);
    snprintf(spec, sizeof spec, "idx:%s,%s", pi, pl);
    dpt_dataset_t *ds = NULL;
    cr_assert_eq(dpt_dataset_open(spec, NULL, &ds, NULL), DPT_OK, "%s", dpt_last_error());
    free(im), free(lb), free(pi), free(pl);
    return ds;
}

/* Feature 0 (the row id) of every sample of a CSV view, via gather. */
static void ids_of(const dpt_dataset_t *ds, int *ids)
{
    size_t n = dpt_dataset_count(ds), f = dpt_dataset_features(ds);
    float *x = malloc(n * f * sizeof *x);
    uint32_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    dpt_dataset_gather(ds, idx, n, x, NULL);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int)x[i * f];
    free(x), free(idx);
}

/* ---- split ---------------------------------------------------------------------------- */

Test(split, sizes_follow_the_rounded_fraction)
{
    dpt_dataset_t *ds = csv_table(), *tr, *va;
    const double frac[3] = {0.2, 0.25, 0.5};
    const size_t nval[3] = {20, 25, 51}; /* round(20.2), round(25.25), round(50.5) */
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(dpt_dataset_split(ds, frac[k], 1, &tr, &va), DPT_OK, "%s", dpt_last_error());
        cr_assert_eq(dpt_dataset_count(va), nval[k], "fraction %g", frac[k]);
        cr_assert_eq(dpt_dataset_count(tr), NROWS - nval[k]);
        cr_assert_eq(dpt_dataset_features(tr), 3);
        cr_assert_eq(dpt_dataset_classes(va), 4);
        dpt_dataset_free(tr);
        dpt_dataset_free(va);
    }
    dpt_dataset_free(ds);
}

Test(split, parts_are_disjoint_and_cover_the_parent)
{
    dpt_dataset_t *ds = csv_table(), *tr, *va;
    cr_assert_eq(dpt_dataset_split(ds, 0.3, 42, &tr, &va), DPT_OK);
    int seen[NROWS] = {0}, ids[NROWS];
    ids_of(tr, ids);
    for (size_t i = 0; i < dpt_dataset_count(tr); i++)
        seen[ids[i]]++;
    ids_of(va, ids);
    for (size_t i = 0; i < dpt_dataset_count(va); i++)
        seen[ids[i]]++;
    for (int i = 0; i < NROWS; i++)
        cr_assert_eq(seen[i], 1, "row %d seen %d times", i, seen[i]);
    /* labels follow their rows */
    for (size_t i = 0; i < dpt_dataset_count(va); i++)
        cr_assert_eq(dpt_dataset_label(va, i), ids[i] % 4);
    dpt_dataset_free(tr), dpt_dataset_free(va), dpt_dataset_free(ds);
}

Test(split, same_seed_same_split_other_seed_other_split)
{
    dpt_dataset_t *ds = csv_table(), *t1, *v1, *t2, *v2, *t3, *v3;
    cr_assert_eq(dpt_dataset_split(ds, 0.3, 7, &t1, &v1), DPT_OK);
    cr_assert_eq(dpt_dataset_split(ds, 0.3, 7, &t2, &v2), DPT_OK);
    cr_assert_eq(dpt_dataset_split(ds, 0.3, 8, &t3, &v3), DPT_OK);
    int a[NROWS], b[NROWS], c[NROWS];
    ids_of(v1, a), ids_of(v2, b), ids_of(v3, c);
    size_t nv = dpt_dataset_count(v1), differ = 0;
    cr_assert_eq(dpt_dataset_count(v2), nv);
    for (size_t i = 0; i < nv; i++)
        cr_assert_eq(a[i], b[i], "val row %zu", i);
    for (size_t i = 0; i < nv; i++)
        differ += a[i] != c[i];
    cr_assert_gt(differ, 0, "seeds 7 and 8 gave the same validation set");
    /* membership is random, not a prefix or suffix of the rows */
    cr_assert(a[0] != 0 || a[nv - 1] != (int)nv - 1);
    dpt_dataset_free(t1), dpt_dataset_free(v1), dpt_dataset_free(t2), dpt_dataset_free(v2);
    dpt_dataset_free(t3), dpt_dataset_free(v3), dpt_dataset_free(ds);
}

Test(split, parts_outlive_the_parent_and_share_its_storage)
{
    dpt_dataset_t *ds = csv_table(), *tr, *va, *t2, *v2;
    size_t bytes = dpt_dataset_storage_bytes(ds);
    cr_assert_eq(bytes, NROWS * 3 * sizeof(float) + NROWS * sizeof(int32_t));
    cr_assert_eq(dpt_dataset_split(ds, 0.5, 3, &tr, &va), DPT_OK);
    dpt_dataset_free(ds);
    cr_assert_eq(dpt_dataset_storage_bytes(va), bytes);
    /* a split of a split maps through both index arrays */
    int parent[NROWS], child[NROWS];
    ids_of(va, parent);
    cr_assert_eq(dpt_dataset_split(va, 0.5, 4, &t2, &v2), DPT_OK);
    ids_of(v2, child);
    for (size_t i = 0; i < dpt_dataset_count(v2); i++) {
        int found = 0;
        for (size_t k = 0; k < dpt_dataset_count(va); k++)
            found |= child[i] == parent[k];
        cr_assert(found, "row %d of the nested split is not in its parent", child[i]);
    }
    cr_assert_not_null(strstr(dpt_dataset_describe(v2), " val: 26 x 3x1x1, 4 classes"), "%s",
                       dpt_dataset_describe(v2));
    dpt_dataset_free(tr), dpt_dataset_free(va), dpt_dataset_free(t2), dpt_dataset_free(v2);
}

Test(split, fraction_out_of_range)
{
    dpt_dataset_t *ds = csv_table(), *tr = NULL, *va = NULL;
    assert_fails(dpt_dataset_split(ds, 0.0, 1, &tr, &va), DPT_ERR_INVALID_ARG,
                 "validation fraction 0 out of range (expected 0 < fraction < 1)");
    assert_fails(dpt_dataset_split(ds, 1.0, 1, &tr, &va), DPT_ERR_INVALID_ARG,
                 "validation fraction 1 out of range");
    assert_fails(dpt_dataset_split(ds, NAN, 1, &tr, &va), DPT_ERR_INVALID_ARG,
                 "validation fraction nan out of range");
    cr_assert(tr == NULL && va == NULL);
    dpt_dataset_free(ds);
}

Test(split, fraction_leaving_a_part_empty)
{
    dpt_dataset_t *ds = csv_table(), *tr = NULL, *va = NULL;
    assert_fails(dpt_dataset_split(ds, 0.001, 1, &tr, &va), DPT_ERR_INVALID_ARG,
                 "splitting 101 samples with validation fraction 0.001 leaves a part empty "
                 "(validation 0 vs training 101)");
    assert_fails(dpt_dataset_split(ds, 0.999, 1, &tr, &va), DPT_ERR_INVALID_ARG,
                 "(validation 101 vs training 0)");
    cr_assert(tr == NULL && va == NULL);
    dpt_dataset_free(ds);
}

/* ---- normalisation -------------------------------------------------------------------- */

/* Mean and std of column j of every sample of ds, via gather. */
static void column_stats(const dpt_dataset_t *ds, size_t j, double *mean, double *sd)
{
    size_t n = dpt_dataset_count(ds), f = dpt_dataset_features(ds);
    float *x = malloc(n * f * sizeof *x);
    uint32_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    dpt_dataset_gather(ds, idx, n, x, NULL);
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i * f + j];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (x[i * f + j] - *mean) * (x[i * f + j] - *mean);
    *sd = sqrt(ss / (double)n);
    free(x), free(idx);
}

/* Mean and std of every value of an image view, via gather. */
static void image_stats(const dpt_dataset_t *ds, double *mean, double *sd)
{
    size_t f = dpt_dataset_features(ds);
    double s = 0, ss = 0;
    for (size_t j = 0; j < f; j++) {
        double m, d;
        column_stats(ds, j, &m, &d);
        s += m, ss += d * d + m * m;
    }
    *mean = s / (double)f;
    *sd = sqrt(ss / (double)f - *mean * *mean);
}

Test(normalize, images_one_global_mean_std_fitted_on_the_training_part)
{
    dpt_dataset_t *ds = idx_images(), *tr, *va;
    cr_assert_eq(dpt_dataset_split(ds, 0.25, 9, &tr, &va), DPT_OK);
    dpt_dataset_free(ds);
    double m0, s0;
    dpt_dataset_normalization(tr, &m0, &s0);
    cr_assert(m0 == 0.0 && s0 == 1.0, "unfitted normaliser reports %g %g", m0, s0);
    image_stats(tr, &m0, &s0); /* before fitting: pixels / 255 */
    cr_assert_gt(m0, 0.2);
    cr_assert_eq(dpt_dataset_fit_normalization(tr), DPT_OK);
    double mean, sd, gm, gs;
    dpt_dataset_normalization(tr, &mean, &sd);
    cr_assert_float_eq(mean, m0, 1e-6);
    cr_assert_float_eq(sd, s0, 1e-6);
    image_stats(tr, &gm, &gs);
    cr_assert_float_eq(gm, 0.0, 1e-5);
    cr_assert_float_eq(gs, 1.0, 1e-5);
    /* the validation part takes the training statistics, so it is not exactly 0 / 1 */
    cr_assert_eq(dpt_dataset_copy_normalization(va, tr), DPT_OK);
    double vm, vs;
    dpt_dataset_normalization(va, &vm, &vs);
    cr_assert(vm == mean && vs == sd);
    image_stats(va, &gm, &gs);
    cr_assert(fabs(gm) > 1e-4 || fabs(gs - 1.0) > 1e-4, "val stats %g %g", gm, gs);
    cr_assert_float_eq(gm, 0.0, 0.5);
    dpt_dataset_free(tr), dpt_dataset_free(va);
}

Test(normalize, image_lookup_matches_the_formula)
{
    dpt_dataset_t *ds = idx_images();
    cr_assert_eq(dpt_dataset_fit_normalization(ds), DPT_OK);
    double mean, sd;
    dpt_dataset_normalization(ds, &mean, &sd);
    float x[IMG_H * IMG_W];
    uint32_t i = 17;
    dpt_dataset_gather(ds, &i, 1, x, NULL);
    for (size_t j = 0; j < IMG_H * IMG_W; j++) {
        float want = (float)((img_pix(17, j) / 255.0 - mean) / sd);
        cr_assert_float_eq(x[j], want, 1e-6f, "pixel %zu", j);
    }
    dpt_dataset_free(ds);
}

Test(normalize, table_per_feature_with_constant_feature_kept_at_std_one)
{
    dpt_dataset_t *ds = csv_table(), *tr, *va;
    cr_assert_eq(dpt_dataset_split(ds, 0.2, 5, &tr, &va), DPT_OK);
    double m, s;
    column_stats(tr, 1, &m, &s);
    cr_assert(m == 5.0 && s == 0.0, "before fitting CSV values are raw (%g, %g)", m, s);
    cr_assert_eq(dpt_dataset_fit_normalization(tr), DPT_OK);
    for (size_t j = 0; j < 3; j += 2) {
        column_stats(tr, j, &m, &s);
        cr_assert_float_eq(m, 0.0, 1e-5, "feature %zu mean %g", j, m);
        cr_assert_float_eq(s, 1.0, 1e-5, "feature %zu std %g", j, s);
    }
    column_stats(tr, 1, &m, &s); /* constant 5: mean removed, std 1 keeps it at 0 */
    cr_assert(m == 0.0 && s == 0.0, "constant feature gives %g %g", m, s);
    double mean0, sd0;
    dpt_dataset_normalization(tr, &mean0, &sd0);
    cr_assert_gt(sd0, 20.0); /* ids 0..100 have std ~29 */
    cr_assert_lt(sd0, 35.0);
    int ids[NROWS];
    ids_of(va, ids); /* not fitted yet: raw ids */
    cr_assert_eq(dpt_dataset_copy_normalization(va, tr), DPT_OK);
    float x[3];
    uint32_t i0 = 0;
    dpt_dataset_gather(va, &i0, 1, x, NULL);
    cr_assert_float_eq(x[0], (float)((ids[0] - mean0) / sd0), 1e-5f);
    cr_assert_eq(x[1], 0.0f);
    dpt_dataset_free(ds), dpt_dataset_free(tr), dpt_dataset_free(va);
}

Test(normalize, copy_between_different_datasets_is_refused)
{
    dpt_dataset_t *img = idx_images(), *tab = csv_table();
    assert_fails(dpt_dataset_copy_normalization(tab, img), DPT_ERR_INVALID_ARG,
                 "copy normalisation: datasets differ (expected 30 image features vs got 3 "
                 "table)");
    assert_fails(dpt_dataset_fit_normalization(NULL), DPT_ERR_INVALID_ARG, "fit normalisation");
    dpt_dataset_free(img), dpt_dataset_free(tab);
}

/* ---- gather --------------------------------------------------------------------------- */

Test(gather, rows_in_any_order_with_labels)
{
    dpt_dataset_t *ds = idx_images();
    uint32_t idx[4] = {59, 0, 31, 31};
    float x[4 * IMG_H * IMG_W];
    int32_t y[4];
    dpt_dataset_gather(ds, idx, 4, x, y);
    for (size_t k = 0; k < 4; k++) {
        cr_assert_eq(y[k], (int32_t)(idx[k] % 3));
        for (size_t j = 0; j < IMG_H * IMG_W; j++)
            cr_assert_float_eq(x[k * IMG_H * IMG_W + j], img_pix(idx[k], j) / 255.0f, 1e-7f);
    }
    dpt_dataset_free(ds);
}

typedef struct gather_job {
    const dpt_dataset_t *ds;
    uint32_t idx[NIMG];
    float x[NIMG * IMG_H * IMG_W];
    int32_t y[NIMG];
} gather_job_t;

static void *gather_many(void *arg)
{
    gather_job_t *j = arg;
    for (int rep = 0; rep < 200; rep++)
        dpt_dataset_gather(j->ds, j->idx, NIMG, j->x, j->y);
    return NULL;
}

Test(gather, concurrent_gathers_agree_with_a_single_thread)
{
    dpt_dataset_t *ds = idx_images();
    cr_assert_eq(dpt_dataset_fit_normalization(ds), DPT_OK);
    enum { T = 4 };
    static gather_job_t jobs[T], ref;
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        jobs[t].ds = ds;
        for (uint32_t i = 0; i < NIMG; i++)
            jobs[t].idx[i] = (i * 7 + (uint32_t)t * 13) % NIMG;
        cr_assert_eq(pthread_create(&th[t], NULL, gather_many, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++)
        cr_assert_eq(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < T; t++) {
        ref.ds = ds;
        memcpy(ref.idx, jobs[t].idx, sizeof ref.idx);
        dpt_dataset_gather(ds, ref.idx, NIMG, ref.x, ref.y);
        cr_assert_eq(memcmp(ref.x, jobs[t].x, sizeof ref.x), 0, "thread %d", t);
        cr_assert_eq(memcmp(ref.y, jobs[t].y, sizeof ref.y), 0, "thread %d", t);
    }
    dpt_dataset_free(ds);
}

Test(dataset, options_default_values)
{
    dpt_data_options_t o = dpt_data_options_default();
    cr_assert_eq(o.csv_label_column, -1);
    cr_assert_eq(o.csv_header, 0);
    cr_assert_eq(o.csv_delimiter, ',');
    cr_assert_eq(o.max_bytes, (size_t)4 << 30);
    dpt_dataset_free(NULL);
}
