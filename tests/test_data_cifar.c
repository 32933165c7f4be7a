/* Tests for src/data/cifar10.c: batch files written in the real 3073-byte record format;
 * every malformed case has its own test. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dptrain/dataset.h"
#include "support.h"

#define REC 3073
#define PIX 3072

TestSuite(cifar, .fini = t_remove_scratch);
TestSuite(cifar_errors, .fini = t_remove_scratch);

static const size_t per_file[6] = {2, 3, 1, 2, 2, 3};

static uint8_t pix(size_t rec, size_t j)
{
    return (uint8_t)(rec * 13 + j * 5 + 1);
}

static int32_t label_of(size_t rec)
{
    return (int32_t)((rec * 3) % 10);
}

static const char *file_name(int f)
{
    static const char *names[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                   "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    return names[f];
}

/* Bytes of file f; records are numbered globally across the training files (and from 0 in
 * the test file). */
static unsigned char *batch_bytes(int f, size_t *len)
{
    size_t first = 0;
    for (int k = 0; k < f && f < 5; k++)
        first += per_file[k];
    *len = per_file[f] * REC;
    unsigned char *b = malloc(*len);
    cr_assert_not_null(b);
    for (size_t r = 0; r < per_file[f]; r++) {
        b[r * REC] = (unsigned char)label_of(first + r);
        for (size_t j = 0; j < PIX; j++)
            b[r * REC + 1 + j] = pix(first + r, j);
    }
    return b;
}

static void write_batch(const char *dir, const char *name, const void *b, size_t n, int gz)
{
    char *p = t_path(dir, name);
    t_write_file(p, b, n, gz);
    free(p);
}

static char *cifar_fixture(void)
{
    char *dir = t_scratch_dir("cifar");
    for (int f = 0; f < 6; f++) {
        size_t n;
        unsigned char *b = batch_bytes(f, &n);
        write_batch(dir, file_name(f), b, n, 0);
        free(b);
    }
    return dir;
}

static dpt_status_t open_cifar(const char *dir, const dpt_data_options_t *opt)
{
    char spec[512];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    dpt_dataset_t *sentinel = (dpt_dataset_t *)(uintptr_t)0x1, *tr = sentinel, *te = sentinel;
    dpt_status_t s = dpt_dataset_open(spec, opt, &tr, &te);
    if (s == DPT_OK) {
        dpt_dataset_free(tr);
        dpt_dataset_free(te);
    } else {
        cr_assert(tr == sentinel && te == sentinel, "outputs set on failure");
    }
    return s;
}

Test(cifar, loads_records_labels_and_channel_major_pixels)
{
    char *dir = cifar_fixture(), spec[512];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    dpt_dataset_t *tr = NULL, *te = NULL;
    cr_assert_eq(dpt_dataset_open(spec, NULL, &tr, &te), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_count(tr), 10);
    cr_assert_eq(dpt_dataset_count(te), 3);
    cr_assert_eq(dpt_dataset_features(tr), PIX);
    cr_assert_eq(dpt_dataset_classes(tr), 10);
    size_t c, h, w;
    dpt_dataset_shape(tr, &c, &h, &w);
    cr_assert(c == 3 && h == 32 && w == 32, "shape %zux%zux%zu", c, h, w);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(dpt_dataset_label(tr, i), label_of(i));
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(dpt_dataset_label(te, i), label_of(i));
    static float x[2 * PIX];
    int32_t y[2];
    uint32_t idx[2] = {7, 2};
    dpt_dataset_gather(tr, idx, 2, x, y);
    cr_assert_eq(y[0], label_of(7));
    cr_assert_eq(y[1], label_of(2));
    for (size_t k = 0; k < 2; k++)
        for (size_t j = 0; j < PIX; j++)
            cr_assert_float_eq(x[k * PIX + j], pix(idx[k], j) / 255.0f, 1e-7f);
    /* channel-major: green (c=1), row 2, column 5 is record byte 1 + 1024 + 2*32 + 5 */
    cr_assert_float_eq(x[1024 + 64 + 5], pix(7, 1024 + 64 + 5) / 255.0f, 1e-7f);
    cr_assert_eq(dpt_dataset_storage_bytes(tr), 10 * PIX + 10 * sizeof(int32_t));
    cr_assert_not_null(strstr(dpt_dataset_describe(tr), "train: 10 x 3x32x32, 10 classes"));
    dpt_dataset_free(tr);
    dpt_dataset_free(te);
}

Test(cifar_errors, size_not_a_multiple_of_the_record)
{
    char *dir = cifar_fixture();
    size_t n;
    unsigned char *b = batch_bytes(2, &n);
    unsigned char *b2 = calloc(1, 2 * REC + 10);
    memcpy(b2, b, n);
    write_batch(dir, "data_batch_3.bin", b2, 2 * REC + 10, 0);
    assert_fails(open_cifar(dir, NULL), DPT_ERR_FORMAT,
                 "data_batch_3.bin: file size 6156 is not a multiple of the 3073-byte record (2 "
                 "records + 10 extra bytes)");
    free(b);
    free(b2);
}

Test(cifar_errors, label_above_nine)
{
    char *dir = cifar_fixture();
    size_t n;
    unsigned char *b = batch_bytes(1, &n);
    b[1 * REC] = 10;
    write_batch(dir, "data_batch_2.bin", b, n, 0);
    assert_fails(open_cifar(dir, NULL), DPT_ERR_FORMAT,
                 "data_batch_2.bin: byte 3073: label of record 1 out of range (expected < 10 vs "
                 "got 10)");
    free(b);
}

Test(cifar_errors, label_255_in_the_test_batch)
{
    char *dir = cifar_fixture();
    size_t n;
    unsigned char *b = batch_bytes(5, &n);
    b[2 * REC] = 255;
    write_batch(dir, "test_batch.bin", b, n, 0);
    assert_fails(open_cifar(dir, NULL), DPT_ERR_FORMAT,
                 "test_batch.bin: byte 6146: label of record 2 out of range (expected < 10 vs "
                 "got 255)");
    free(b);
}

Test(cifar_errors, empty_file)
{
    char *dir = cifar_fixture();
    write_batch(dir, "test_batch.bin", "", 0, 0);
    assert_fails(open_cifar(dir, NULL), DPT_ERR_FORMAT,
                 "test_batch.bin: empty file (expected a multiple of 3073 bytes vs got 0)");
}

Test(cifar_errors, missing_batch_file)
{
    char *dir = cifar_fixture();
    char *p = t_path(dir, "data_batch_4.bin");
    cr_assert_eq(unlink(p), 0);
    assert_fails(open_cifar(dir, NULL), DPT_ERR_IO,
                 "data_batch_4.bin: cannot open: No such file or directory");
    free(p);
}

Test(cifar_errors, gzip_compressed_batch)
{
    char *dir = cifar_fixture();
    size_t n;
    unsigned char *b = batch_bytes(0, &n);
    write_batch(dir, "data_batch_1.bin", b, n, 1);
    assert_fails(open_cifar(dir, NULL), DPT_ERR_FORMAT,
                 "data_batch_1.bin: byte 0: gzip-compressed CIFAR-10 batch");
    free(b);
}

Test(cifar_errors, over_max_bytes)
{
    char *dir = cifar_fixture();
    dpt_data_options_t opt = dpt_data_options_default();
    opt.max_bytes = 10 * PIX; /* + 8 bytes per record for label and index */
    assert_fails(open_cifar(dir, &opt), DPT_ERR_LIMIT,
                 "data_batch_1.bin: 10 CIFAR-10 records are over the memory limit (max_bytes "
                 "30720 vs needed 30800)");
}

Test(cifar_errors, batch_path_is_a_directory)
{
    char *dir = cifar_fixture();
    char *p = t_path(dir, "data_batch_5.bin");
    cr_assert_eq(unlink(p), 0);
    cr_assert_eq(mkdir(p, 0755), 0);
    free(p);
    assert_fails(open_cifar(dir, NULL), DPT_ERR_IO, "data_batch_5.bin: not a regular file");
}
