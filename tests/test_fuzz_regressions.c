/* Regression tests for what the fuzzers and the resource-bounds review found
 * (docs/hardening.md): each feeds the exact bytes to the same entry point as its fuzz target
 * and asserts the clean error. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "support.h"

/* Opens "idx:IMG,LBL" from the given file contents; returns the status, dataset freed. */
static dpt_status_t open_idx_bytes(const void *img, size_t ni, int img_gz, const void *lbl,
                                   size_t nl, int lbl_gz)
{
    char *dir = t_make_tmpdir("fuzzreg-idx");
    char *pi = t_path(dir, "images"), *pl = t_path(dir, "labels");
    t_write_file(pi, img, ni, img_gz);
    t_write_file(pl, lbl, nl, lbl_gz);
    char spec[4096];
    snprintf(spec, sizeof spec, "idx:%s,%s", pi, pl);
    dpt_data_options_t opt = dpt_data_options_default();
    dpt_dataset_t *tr = NULL, *te = NULL;
    dpt_status_t s = dpt_dataset_open(spec, &opt, &tr, &te);
    dpt_dataset_free(tr);
    dpt_dataset_free(te);
    free(pi), free(pl), free(dir);
    return s;
}

static void assert_error(dpt_status_t s, dpt_status_t want, const char *msg)
{
    cr_assert_eq(s, want, "status %d (%s), expected %d: %s", s, dpt_status_str(s), want,
                 dpt_last_error());
    cr_assert(strstr(dpt_last_error(), msg), "message '%s' lacks '%s'", dpt_last_error(), msg);
}

/* Review finding: a gzip IDX file's declared size was only checked against max_bytes, so a
 * 16-byte header declaring 60000 x 28 x 23 (~37 MB, under the 4 GiB default cap) behind a
 * ~50-byte gzip file made the loader allocate the whole image buffer before finding out
 * that the stream is short. deflate expands at most 1032:1: now refused before allocating. */
Test(fuzz_regressions, gzip_idx_declaring_more_than_deflate_can_hold)
{
    const unsigned char img[16] = {0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 23};
    unsigned char lbl[8 + 60000] = {0, 0, 8, 1, 0, 0, 0xea, 0x60};
    dpt_status_t s = open_idx_bytes(img, sizeof img, 1, lbl, sizeof lbl, 0);
    assert_error(s, DPT_ERR_FORMAT, "cannot hold the declared image data (expected 38640000 bytes");
}

/* The same bound applies to a gzip label file. */
Test(fuzz_regressions, gzip_idx_labels_declaring_more_than_deflate_can_hold)
{
    /* 200000 raw 1 x 1 images (200 KB) and a ~30-byte gzip label file declaring 200000. */
    size_t n = 200000;
    unsigned char *img = calloc(16 + n, 1);
    cr_assert_not_null(img);
    const unsigned char ih[16] = {0, 0, 8, 3, 0, 3, 0x0d, 0x40, 0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(img, ih, sizeof ih);
    const unsigned char lbl[8] = {0, 0, 8, 1, 0, 3, 0x0d, 0x40};
    dpt_status_t s = open_idx_bytes(img, 16 + n, 0, lbl, sizeof lbl, 1);
    assert_error(s, DPT_ERR_FORMAT, "cannot hold the declared label data (expected 200000 bytes");
    free(img);
}

/* Review finding: a raw label file shorter than the declared count is now refused before
 * the label buffer is allocated, with the message the short read used to give. */
Test(fuzz_regressions, raw_idx_labels_shorter_than_declared_before_allocating)
{
    const unsigned char img[16 + 4] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4};
    const unsigned char lbl[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1};
    dpt_status_t s = open_idx_bytes(img, sizeof img, 0, lbl, sizeof lbl, 0);
    assert_error(s, DPT_ERR_FORMAT,
                 "labels: byte 8: file ends inside label data (expected 4 bytes vs got 2)");
}

/* Checks the tensor table of a model of `dense` dense layers: two tensors per layer, named in
 * order, each starting after the previous one ends, all inside the parameter count. */
static void assert_tensor_table(const dpt_model_t *m, size_t dense)
{
    cr_assert_eq(dpt_model_tensor_count(m), 2 * dense);
    size_t end = 0;
    for (size_t i = 0; i < 2 * dense; i++) {
        const dpt_tensor_info_t *t = dpt_model_tensor(m, i);
        char want[32];
        snprintf(want, sizeof want, "dense%zu.%s", i / 2, i % 2 ? "bias" : "weight");
        cr_assert_not_null(t);
        cr_assert_str_eq(t->name, want);
        cr_assert_eq(t->is_bias, (int)(i % 2));
        cr_assert_geq(t->offset, end, "tensor %zu overlaps the previous one", i);
        end = t->offset + t->rows * t->cols;
    }
    cr_assert_leq(end, dpt_model_param_count(m));
    cr_assert_null(dpt_model_tensor(m, 2 * dense));
}

/* fuzz_specs crash 1ddba138: the tensor table had DPT_MAX_LAYERS (64) entries but a dense
 * layer adds two (weight and bias), so a legal spec of 33+ dense layers wrote past it
 * (UBSan: index 65 out of bounds for 'dpt_tensor_info_t[64]') into the names and the
 * parameter count. This is the crashing input's model spec, width 8, 3 classes. */
Test(fuzz_regressions, model_with_33_dense_layers_keeps_its_tensor_table)
{
    const char *spec =
        "dense:5,dense:5,dense:5,dense:5,dense:5,dense:24,dense:5,dense:5,dense:5,dense:5,"
        "dense:5,dense:5,dense:5,dense:5,dense:5,dense:24,dense:5,dense:5,dense:5,dense:5,"
        "dense:5,dense:5,dense:5,dense:5,dense:24,dense:5,dense:5,dense:5,dense:5,dense:5,"
        "dense:5,dense:5,dense:3";
    dpt_model_t *m = NULL;
    cr_assert_eq(dpt_model_create(spec, 8, 3, &m), DPT_OK, "%s", dpt_last_error());
    assert_tensor_table(m, 33);
    dpt_model_free(m);
}

/* 64 dense layers, 128 tensors (the cap before the graph model; now far inside it). */
Test(fuzz_regressions, model_with_64_dense_layers_keeps_its_tensor_table)
{
    char spec[1024] = "";
    for (int i = 0; i < 63; i++)
        strcat(spec, "dense:4,");
    strcat(spec, "dense:2");
    dpt_model_t *m = NULL;
    cr_assert_eq(dpt_model_create(spec, 3, 2, &m), DPT_OK, "%s", dpt_last_error());
    assert_tensor_table(m, 64);
    dpt_model_free(m);
}
