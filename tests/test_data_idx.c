/* Tests for src/data/idx.c and the mnist:/idx:/fashion-mnist specs: fixtures are written in
 * the real IDX format (raw and gzip) in temp dirs; every malformed case has its own test. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dptrain/dataset.h"
#include "support.h"

#define H 3
#define W 4
#define NTRAIN 12
#define NTEST 5

TestSuite(idx, .fini = t_remove_scratch);
TestSuite(idx_errors, .fini = t_remove_scratch);
TestSuite(idx_real, .fini = t_remove_scratch);

static uint8_t pix(size_t i, size_t j)
{
    return (uint8_t)(i * 31 + j * 7 + 3);
}

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8), b[3] = (unsigned char)v;
}

/* IDX image file bytes for n images of h x w: 16-byte header then pixels. */
static unsigned char *idx_images(uint32_t n, uint32_t h, uint32_t w, size_t *len)
{
    *len = 16 + (size_t)n * h * w;
    unsigned char *b = malloc(*len);
    cr_assert_not_null(b);
    b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = 3;
    put_be32(b + 4, n), put_be32(b + 8, h), put_be32(b + 12, w);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < (size_t)h * w; j++)
            b[16 + i * h * w + j] = pix(i, j);
    return b;
}

/* IDX label file bytes: 8-byte header then label i = i % modulo. */
static unsigned char *idx_labels(uint32_t n, unsigned modulo, size_t *len)
{
    *len = 8 + (size_t)n;
    unsigned char *b = malloc(*len);
    cr_assert_not_null(b);
    b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = 1;
    put_be32(b + 4, n);
    for (size_t i = 0; i < n; i++)
        b[8 + i] = (unsigned char)(i % modulo);
    return b;
}

static void write_bytes(const char *dir, const char *name, const void *b, size_t n, int gz)
{
    char *p = t_path(dir, name);
    t_write_file(p, b, n, gz);
    free(p);
}

/* A complete mnist:DIR fixture; names get ".gz" and gzip content when gz. */
static char *mnist_fixture(int gz)
{
    char *dir = t_scratch_dir("idx");
    const char *sfx = gz ? ".gz" : "";
    char name[64];
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    snprintf(name, sizeof name, "train-images-idx3-ubyte%s", sfx);
    write_bytes(dir, name, b, n, gz);
    free(b);
    b = idx_labels(NTRAIN, 10, &n);
    snprintf(name, sizeof name, "train-labels-idx1-ubyte%s", sfx);
    write_bytes(dir, name, b, n, gz);
    free(b);
    b = idx_images(NTEST, H, W, &n);
    snprintf(name, sizeof name, "t10k-images-idx3-ubyte%s", sfx);
    write_bytes(dir, name, b, n, gz);
    free(b);
    b = idx_labels(NTEST, 10, &n);
    snprintf(name, sizeof name, "t10k-labels-idx1-ubyte%s", sfx);
    write_bytes(dir, name, b, n, gz);
    free(b);
    return dir;
}

static char *spec_of(const char *prefix, const char *dir)
{
    size_t n = strlen(prefix) + strlen(dir) + 1;
    char *s = malloc(n);
    cr_assert_not_null(s);
    snprintf(s, n, "%s%s", prefix, dir);
    return s;
}

/* Opens mnist:DIR expecting failure; outputs must stay untouched. */
static dpt_status_t open_mnist_dir(const char *dir, const dpt_data_options_t *opt)
{
    char *spec = spec_of("mnist:", dir);
    dpt_dataset_t *sentinel = (dpt_dataset_t *)(uintptr_t)0x1;
    dpt_dataset_t *tr = sentinel, *te = sentinel;
    dpt_status_t s = dpt_dataset_open(spec, opt, &tr, &te);
    free(spec);
    if (s == DPT_OK) {
        dpt_dataset_free(tr);
        dpt_dataset_free(te);
    } else {
        cr_assert_eq(tr, sentinel, "train output set on failure");
        cr_assert_eq(te, sentinel, "test output set on failure");
    }
    return s;
}

/* Replaces one fixture file of dir with the given bytes. */
static void replace(const char *dir, const char *name, const void *b, size_t n, int gz)
{
    write_bytes(dir, name, b, n, gz);
}

static void check_loaded(dpt_dataset_t *tr, dpt_dataset_t *te)
{
    cr_assert_eq(dpt_dataset_count(tr), NTRAIN);
    cr_assert_eq(dpt_dataset_count(te), NTEST);
    cr_assert_eq(dpt_dataset_features(tr), H * W);
    cr_assert_eq(dpt_dataset_classes(tr), 10);
    size_t c, h, w;
    dpt_dataset_shape(tr, &c, &h, &w);
    cr_assert(c == 1 && h == H && w == W, "shape %zux%zux%zu", c, h, w);
    for (size_t i = 0; i < NTRAIN; i++)
        cr_assert_eq(dpt_dataset_label(tr, i), (int32_t)(i % 10));
    uint32_t idx[NTRAIN];
    float x[NTRAIN * H * W];
    int32_t y[NTRAIN];
    for (uint32_t i = 0; i < NTRAIN; i++)
        idx[i] = NTRAIN - 1 - i;
    dpt_dataset_gather(tr, idx, NTRAIN, x, y);
    for (size_t i = 0; i < NTRAIN; i++) {
        cr_assert_eq(y[i], (int32_t)(idx[i] % 10));
        for (size_t j = 0; j < H * W; j++)
            cr_assert_float_eq(x[i * H * W + j], pix(idx[i], j) / 255.0f, 1e-7f);
    }
    dpt_dataset_gather(te, idx + NTRAIN - NTEST, NTEST, x, NULL);
    for (size_t j = 0; j < H * W; j++)
        cr_assert_float_eq(x[j], pix(NTEST - 1, j) / 255.0f, 1e-7f);
    cr_assert_eq(dpt_dataset_storage_bytes(tr), NTRAIN * H * W + NTRAIN * sizeof(int32_t));
}

Test(idx, mnist_dir_raw_files_load_values_labels_shape)
{
    char *dir = mnist_fixture(0), *spec = spec_of("mnist:", dir);
    dpt_dataset_t *tr = NULL, *te = NULL;
    cr_assert_eq(dpt_dataset_open(spec, NULL, &tr, &te), DPT_OK, "%s", dpt_last_error());
    check_loaded(tr, te);
    cr_assert_not_null(strstr(dpt_dataset_describe(tr), "train: 12 x 1x3x4, 10 classes"), "%s",
                       dpt_dataset_describe(tr));
    cr_assert_not_null(strstr(dpt_dataset_describe(te), "test: 5 x 1x3x4"));
    dpt_dataset_free(tr);
    dpt_dataset_free(te);
    free(spec);
}

Test(idx, mnist_dir_gzip_files_load_the_same)
{
    char *dir = mnist_fixture(1), *spec = spec_of("mnist:", dir);
    dpt_dataset_t *tr = NULL, *te = NULL;
    cr_assert_eq(dpt_dataset_open(spec, NULL, &tr, &te), DPT_OK, "%s", dpt_last_error());
    check_loaded(tr, te);
    dpt_dataset_free(tr);
    dpt_dataset_free(te);
    free(spec);
}

Test(idx, test_output_may_be_null)
{
    char *dir = mnist_fixture(0), *spec = spec_of("mnist:", dir);
    dpt_dataset_t *tr = NULL;
    cr_assert_eq(dpt_dataset_open(spec, NULL, &tr, NULL), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_count(tr), NTRAIN);
    dpt_dataset_free(tr);
    free(spec);
}

Test(idx, idx_spec_detects_gzip_by_content_and_counts_classes)
{
    char *dir = t_scratch_dir("idx");
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    write_bytes(dir, "imgs.bin", b, n, 1); /* gzip content, no .gz name */
    free(b);
    b = idx_labels(NTRAIN, 13, &n); /* labels 0..11: 12 classes */
    write_bytes(dir, "labs.bin", b, n, 0);
    free(b);
    char spec[512];
    snprintf(spec, sizeof spec, "idx:%s/imgs.bin,%s/labs.bin", dir, dir);
    dpt_dataset_t *tr = NULL, *te = (dpt_dataset_t *)(uintptr_t)0x1;
    cr_assert_eq(dpt_dataset_open(spec, NULL, &tr, &te), DPT_OK, "%s", dpt_last_error());
    cr_assert_null(te);
    cr_assert_eq(dpt_dataset_count(tr), NTRAIN);
    cr_assert_eq(dpt_dataset_classes(tr), 12);
    cr_assert_eq(dpt_dataset_label(tr, 11), 11);
    float x[H * W];
    uint32_t i5 = 5;
    dpt_dataset_gather(tr, &i5, 1, x, NULL);
    cr_assert_float_eq(x[7], pix(5, 7) / 255.0f, 1e-7f);
    dpt_dataset_free(tr);
}

/* ---- malformed headers ---------------------------------------------------------------- */

Test(idx_errors, bad_magic)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    b[0] = 0x01;
    replace(dir, "train-images-idx3-ubyte", b, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte: byte 0: bad IDX magic (expected 00 00 08 03 vs got "
                 "01 00 08 03)");
    free(b);
}

Test(idx_errors, unsupported_element_type)
{
    char *dir = mnist_fixture(1);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    b[2] = 0x0d; /* float */
    replace(dir, "train-images-idx3-ubyte.gz", b, n, 1);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte.gz: byte 2: unsupported IDX element type (expected "
                 "0x08 unsigned byte vs got 0x0d)");
    free(b);
}

Test(idx_errors, images_with_wrong_number_of_dimensions)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_labels(NTRAIN, 10, &n); /* a label file where images belong */
    replace(dir, "train-images-idx3-ubyte", b, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte: byte 3: wrong number of dimensions for images "
                 "(expected 3 vs got 1)");
    free(b);
}

Test(idx_errors, labels_with_wrong_number_of_dimensions)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    replace(dir, "train-labels-idx1-ubyte", b, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-labels-idx1-ubyte: byte 3: wrong number of dimensions for labels "
                 "(expected 1 vs got 3)");
    free(b);
}

Test(idx_errors, zero_dimension)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    put_be32(b + 8, 0);
    replace(dir, "train-images-idx3-ubyte", b, 16, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte: byte 8: dimension 1 of images is zero");
    free(b);
}

Test(idx_errors, empty_file)
{
    char *dir = mnist_fixture(0);
    replace(dir, "train-labels-idx1-ubyte", "", 0, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-labels-idx1-ubyte: byte 0: file ends inside IDX header (expected 4 "
                 "bytes vs got 0)");
}

Test(idx_errors, truncated_header)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    replace(dir, "train-images-idx3-ubyte", b, 10, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte: byte 4: file ends inside IDX header (expected 12 "
                 "bytes vs got 6)");
    free(b);
}

Test(idx_errors, label_count_differs_from_image_count)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_labels(NTRAIN - 1, 10, &n);
    replace(dir, "train-labels-idx1-ubyte", b, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-labels-idx1-ubyte: byte 4: label count does not match the images");
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT, "(expected 12 vs got 11)");
    free(b);
}

/* ---- sizes and limits ----------------------------------------------------------------- */

Test(idx_errors, dimensions_overflow)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    put_be32(b + 4, 0xffffffffu), put_be32(b + 8, 0xffffffffu), put_be32(b + 12, 0xffffffffu);
    replace(dir, "train-images-idx3-ubyte", b, n, 0);
    unsigned char *l = idx_labels(NTRAIN, 10, &n);
    put_be32(l + 4, 0xffffffffu);
    replace(dir, "train-labels-idx1-ubyte", l, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_LIMIT,
                 "train-images-idx3-ubyte: byte 4: image data size overflows (4294967295 x "
                 "4294967295 x 4294967295 bytes)");
    free(b);
    free(l);
}

Test(idx_errors, over_max_bytes_before_allocating)
{
    char *dir = mnist_fixture(1);
    dpt_data_options_t opt = dpt_data_options_default();
    opt.max_bytes = 100; /* 12 images need 12*12 + 12*8 = 240 bytes */
    assert_fails(open_mnist_dir(dir, &opt), DPT_ERR_LIMIT,
                 "train-images-idx3-ubyte.gz: byte 4: dataset of 12 x 3 x 4 images is over the "
                 "memory limit (max_bytes 100 vs needed 240)");
    opt.max_bytes = 240;
    cr_assert_eq(open_mnist_dir(dir, &opt), DPT_OK, "%s", dpt_last_error());
}

Test(idx_errors, raw_file_shorter_than_header_declares_fails_before_allocating)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    put_be32(b + 4, 1000000), put_be32(b + 8, 28), put_be32(b + 12, 28);
    replace(dir, "train-images-idx3-ubyte", b, n, 0);
    unsigned char *l = idx_labels(NTRAIN, 10, &n);
    put_be32(l + 4, 1000000);
    replace(dir, "train-labels-idx1-ubyte", l, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte: byte 16: file ends inside image data (expected "
                 "784000000 bytes vs got 144)");
    free(b);
    free(l);
}

Test(idx_errors, truncated_raw_image_data)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    replace(dir, "train-images-idx3-ubyte", b, n - 44, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte: byte 16: file ends inside image data (expected 144 "
                 "bytes vs got 100)");
    free(b);
}

Test(idx_errors, truncated_raw_label_data)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_labels(NTRAIN, 10, &n);
    replace(dir, "train-labels-idx1-ubyte", b, n - 2, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-labels-idx1-ubyte: byte 8: file ends inside label data (expected 12 "
                 "bytes vs got 10)");
    free(b);
}

Test(idx_errors, gzip_content_shorter_than_declared)
{
    char *dir = mnist_fixture(1);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    /* a complete gzip stream whose content lacks 44 pixels */
    replace(dir, "train-images-idx3-ubyte.gz", b, n - 44, 1);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte.gz: byte 16: file ends inside image data (expected "
                 "144 bytes vs got 100)");
    free(b);
}

/* Writes a larger gzip image file and returns its compressed bytes. */
static unsigned char *big_gzip_images(const char *dir, const char *name, size_t *gzlen)
{
    size_t n;
    unsigned char *b = idx_images(400, 28, 28, &n);
    for (size_t i = 16; i < n; i++)
        b[i] = (unsigned char)((i * 2654435761u) >> 13);
    char *p = t_path(dir, name);
    t_write_file(p, b, n, 1);
    free(b);
    char *gz = t_read_file(p, gzlen);
    free(p);
    return (unsigned char *)gz;
}

static char *big_gzip_fixture(void)
{
    char *dir = t_scratch_dir("idx");
    size_t n, gzlen;
    free(big_gzip_images(dir, "train-images-idx3-ubyte.gz", &gzlen));
    unsigned char *l = idx_labels(400, 10, &n);
    write_bytes(dir, "train-labels-idx1-ubyte.gz", l, n, 1);
    write_bytes(dir, "t10k-labels-idx1-ubyte.gz", l, n, 1);
    free(l);
    free(big_gzip_images(dir, "t10k-images-idx3-ubyte.gz", &gzlen));
    return dir;
}

Test(idx_errors, big_gzip_fixture_is_valid)
{
    char *dir = big_gzip_fixture();
    cr_assert_eq(open_mnist_dir(dir, NULL), DPT_OK, "%s", dpt_last_error());
}

Test(idx_errors, truncated_gzip_stream)
{
    char *dir = big_gzip_fixture();
    size_t gzlen;
    unsigned char *gz = big_gzip_images(dir, "train-images-idx3-ubyte.gz", &gzlen);
    replace(dir, "train-images-idx3-ubyte.gz", gz, gzlen / 2, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte.gz: byte 16: truncated gzip stream in image data "
                 "(expected 313600 bytes vs got");
    free(gz);
}

Test(idx_errors, gzip_stream_cut_before_its_trailer)
{
    char *dir = big_gzip_fixture();
    size_t gzlen;
    unsigned char *gz = big_gzip_images(dir, "train-images-idx3-ubyte.gz", &gzlen);
    replace(dir, "train-images-idx3-ubyte.gz", gz, gzlen - 4, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte.gz: byte 313616: truncated gzip stream after the "
                 "declared image data");
    free(gz);
}

Test(idx_errors, corrupt_gzip_stream)
{
    char *dir = big_gzip_fixture();
    size_t gzlen;
    unsigned char *gz = big_gzip_images(dir, "train-images-idx3-ubyte.gz", &gzlen);
    for (size_t i = gzlen / 3; i < gzlen / 3 + 64; i++)
        gz[i] ^= 0xa5;
    replace(dir, "train-images-idx3-ubyte.gz", gz, gzlen, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT, "train-images-idx3-ubyte.gz: byte ");
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT, ": corrupt gzip stream");
    free(gz);
}

Test(idx_errors, gzip_checksum_mismatch)
{
    char *dir = big_gzip_fixture();
    size_t gzlen;
    unsigned char *gz = big_gzip_images(dir, "train-images-idx3-ubyte.gz", &gzlen);
    gz[gzlen - 8] ^= 0xff; /* first byte of the CRC-32 trailer */
    replace(dir, "train-images-idx3-ubyte.gz", gz, gzlen, 0);
    /* zlib inflates ahead of the reader, so the offset is where reading stood */
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT, "train-images-idx3-ubyte.gz: byte ");
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 ": corrupt gzip stream (zlib: incorrect data check) ");
    free(gz);
}

Test(idx_errors, trailing_garbage_after_images)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTRAIN, H, W, &n);
    unsigned char *b2 = malloc(n + 5);
    memcpy(b2, b, n);
    memcpy(b2 + n, "junk!", 5);
    replace(dir, "train-images-idx3-ubyte", b2, n + 5, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-images-idx3-ubyte: byte 160: trailing data after the declared image "
                 "data (expected end of file vs 5 more bytes)");
    free(b);
    free(b2);
}

Test(idx_errors, trailing_garbage_inside_gzip_labels)
{
    char *dir = mnist_fixture(1);
    size_t n;
    unsigned char *b = idx_labels(NTRAIN + 3, 10, &n);
    put_be32(b + 4, NTRAIN); /* declares 12, holds 15 */
    replace(dir, "train-labels-idx1-ubyte.gz", b, n, 1);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-labels-idx1-ubyte.gz: byte 20: trailing data after the declared label "
                 "data (expected end of file vs 3 more bytes)");
    free(b);
}

Test(idx_errors, label_out_of_range_for_ten_classes)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_labels(NTRAIN, 10, &n);
    b[8 + 3] = 10;
    replace(dir, "train-labels-idx1-ubyte", b, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "train-labels-idx1-ubyte: byte 11: label of item 3 out of range (expected < 10 "
                 "vs got 10)");
    free(b);
}

Test(idx_errors, test_images_of_another_size)
{
    char *dir = mnist_fixture(0);
    size_t n;
    unsigned char *b = idx_images(NTEST, W, H, &n);
    replace(dir, "t10k-images-idx3-ubyte", b, n, 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_FORMAT,
                 "t10k-images-idx3-ubyte: byte 8: image size differs from the training images "
                 "(expected 3x4 vs got 4x3)");
    free(b);
}

/* ---- files and specs ------------------------------------------------------------------ */

Test(idx_errors, missing_file_names_both_candidates)
{
    char *dir = mnist_fixture(0);
    char *p = t_path(dir, "t10k-labels-idx1-ubyte");
    cr_assert_eq(unlink(p), 0);
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_IO, "t10k-labels-idx1-ubyte: not found (nor ");
    assert_fails(open_mnist_dir(dir, NULL), DPT_ERR_IO, "t10k-labels-idx1-ubyte.gz)");
    free(p);
}

Test(idx_errors, missing_directory)
{
    assert_fails(open_mnist_dir("/nonexistent/dptrain-data", NULL), DPT_ERR_IO,
                 "/nonexistent/dptrain-data/train-images-idx3-ubyte: not found");
}

Test(idx_errors, missing_file_in_idx_spec)
{
    dpt_dataset_t *tr = NULL;
    assert_fails(dpt_dataset_open("idx:/nonexistent/a,/nonexistent/b", NULL, &tr, NULL), DPT_ERR_IO,
                 "/nonexistent/a: cannot open: No such file or directory");
    cr_assert_null(tr);
}

Test(idx_errors, idx_spec_without_two_files)
{
    dpt_dataset_t *tr = NULL;
    assert_fails(dpt_dataset_open("idx:/tmp/only-one", NULL, &tr, NULL), DPT_ERR_INVALID_ARG,
                 "expected two files, idx:IMAGES,LABELS");
    assert_fails(dpt_dataset_open("idx:/tmp/a,", NULL, &tr, NULL), DPT_ERR_INVALID_ARG,
                 "expected two files");
    cr_assert_null(tr);
}

Test(idx_errors, unknown_spec_lists_valid_forms)
{
    dpt_dataset_t *tr = NULL;
    assert_fails(dpt_dataset_open("imagenet:/data", NULL, &tr, NULL), DPT_ERR_INVALID_ARG,
                 "unknown dataset spec 'imagenet:/data' (expected fashion-mnist, mnist:DIR, "
                 "idx:IMAGES,LABELS, cifar10:DIR, csv:FILE or synthetic:N[,C,H,W,CLASSES])");
    assert_fails(dpt_dataset_open("fashion-mnist:x", NULL, &tr, NULL), DPT_ERR_INVALID_ARG,
                 "unknown dataset spec");
    cr_assert_null(tr);
}

Test(idx_errors, empty_path_in_spec)
{
    dpt_dataset_t *tr = NULL;
    assert_fails(dpt_dataset_open("mnist:", NULL, &tr, NULL), DPT_ERR_INVALID_ARG,
                 "dataset spec 'mnist:' is missing its path");
    cr_assert_null(tr);
}

/* ---- the real data -------------------------------------------------------------------- */

Test(idx_real, fashion_mnist_from_the_debian_package)
{
    struct stat sb;
    if (stat(DPT_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &sb) != 0)
        cr_skip_test("%s not installed (package dataset-fashion-mnist)", DPT_FASHION_MNIST_DIR);
    dpt_dataset_t *tr = NULL, *te = NULL;
    cr_assert_eq(dpt_dataset_open("fashion-mnist", NULL, &tr, &te), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_dataset_count(tr), 60000);
    cr_assert_eq(dpt_dataset_count(te), 10000);
    cr_assert_eq(dpt_dataset_features(tr), 784);
    cr_assert_eq(dpt_dataset_classes(tr), 10);
    cr_assert_str_eq(dpt_dataset_describe(tr), "fashion-mnist train: 60000 x 1x28x28, 10 classes");
    size_t per_class[10] = {0};
    for (size_t i = 0; i < 60000; i++)
        per_class[dpt_dataset_label(tr, i)]++;
    for (int k = 0; k < 10; k++)
        cr_assert_eq(per_class[k], 6000, "class %d", k);
    /* the published statistics of the training pixels */
    double mean, sd;
    cr_assert_eq(dpt_dataset_fit_normalization(tr), DPT_OK);
    dpt_dataset_normalization(tr, &mean, &sd);
    cr_assert_float_eq(mean, 0.2860, 5e-4);
    cr_assert_float_eq(sd, 0.3530, 5e-4);
    cr_assert_eq(dpt_dataset_storage_bytes(tr), 60000 * 784 + 60000 * 4);
    dpt_dataset_free(tr);
    dpt_dataset_free(te);
}
