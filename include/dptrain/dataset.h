/* Datasets: loading Fashion-MNIST / MNIST / IDX / CIFAR-10 / CSV into memory, train/validation
 * split, normalisation, and gathering rows as float for a batch.
 *
 * Image pixels stay uint8 in memory (memory ~ the raw dataset size) and are converted per
 * batch by dpt_dataset_gather. A dataset handle is a view: shared, immutable storage plus an
 * index list and a normaliser, so splits cost only their index arrays.
 *
 * Thread safety: loading, splitting and fitting are single-threaded; once built, a dataset is
 * read-only and dpt_dataset_gather / _label may be called from many threads at once. */
#ifndef DPTRAIN_DATASET_H
#define DPTRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_dataset dpt_dataset_t;

/* Where Debian's dataset-fashion-mnist package puts its files. */
#define DPT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct dpt_data_options {
    /* CSV only: label column (0-based; -1 = last column), whether the first row is a
     * header, field delimiter. */
    int csv_label_column;
    int csv_header;
    char csv_delimiter;
    /* Cap on the bytes one dataset may occupy in memory; loading a larger one fails with
     * DPT_ERR_LIMIT before anything big is allocated. */
    size_t max_bytes;
} dpt_data_options_t;

/* Defaults: label column -1 (last), header 0, delimiter ',', max_bytes 4 GiB. */
dpt_data_options_t dpt_data_options_default(void);

/* Opens the dataset named by spec:
 *   "fashion-mnist"            the Debian package's files (DPT_FASHION_MNIST_DIR)
 *   "mnist:DIR"                DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 *   "idx:IMAGES,LABELS"        one pair of IDX files (training part only)
 *   "cifar10:DIR"              DIR/data_batch_{1..5}.bin and DIR/test_batch.bin
 *   "csv:FILE"                 numeric table, one label column (training part only)
 *   "synthetic:N[,C,H,W,K]"    N seeded random uint8 images (default 1x28x28, K=10 classes)
 *                              and N/6 for test, for benchmarks; not learnable
 * IDX files may be raw or gzip-compressed (detected by content, not name).
 * On success *train is set and *test is set to the dataset's own test split, or NULL when it
 * has none (idx:, csv:). Errors name the file and the byte offset or row:column. */
dpt_status_t dpt_dataset_open(const char *spec, const dpt_data_options_t *opt,
                              dpt_dataset_t **train, dpt_dataset_t **test);

void dpt_dataset_free(dpt_dataset_t *ds);

/* The sample shape and classes a dataset spec implies by its format alone, without reading
 * anything (fashion-mnist, mnist:, cifar10:, synthetic:): 1, or 0 when only the files can
 * tell (idx:, csv:) or the spec is malformed (dpt_dataset_open reports that). Lets a bad
 * model spec be refused before any data is loaded. */
int dpt_dataset_spec_shape(const char *spec, size_t *c, size_t *h, size_t *w, size_t *classes);

size_t dpt_dataset_count(const dpt_dataset_t *ds);    /* samples in this view */
size_t dpt_dataset_features(const dpt_dataset_t *ds); /* floats per sample */
size_t dpt_dataset_classes(const dpt_dataset_t *ds);  /* labels are 0..classes-1 */
/* Image geometry (channels, height, width); CSV tables report 1 x 1 x features. */
void dpt_dataset_shape(const dpt_dataset_t *ds, size_t *c, size_t *h, size_t *w);
/* Whether the samples are images stored as uint8 pixels (not a float table). */
int dpt_dataset_is_image(const dpt_dataset_t *ds);
/* Label of sample i of this view (0 <= i < count). */
int32_t dpt_dataset_label(const dpt_dataset_t *ds, size_t i);
/* Human-readable one-line description, e.g. "fashion-mnist train: 60000 x 1x28x28, 10 classes". */
const char *dpt_dataset_describe(const dpt_dataset_t *ds);

/* Deterministic split: a permutation seeded by `seed` puts round(val_fraction * count)
 * samples in *val and the rest in *train (0 < val_fraction < 1). Both share storage with
 * ds (which may be freed afterwards: storage is reference counted). */
dpt_status_t dpt_dataset_split(const dpt_dataset_t *ds, double val_fraction, uint64_t seed,
                               dpt_dataset_t **train, dpt_dataset_t **val);

/* Computes normalisation on this view only (the training part): images use one global
 * mean/std over all pixels scaled to [0,1]; CSV tables use per-feature mean/std (a feature
 * with zero variance keeps std 1). Before this is called, gather returns pixels/255 for
 * images and raw values for CSV. */
dpt_status_t dpt_dataset_fit_normalization(dpt_dataset_t *ds);
/* Applies the normalisation fitted on src to dst (same features required). */
dpt_status_t dpt_dataset_copy_normalization(dpt_dataset_t *dst, const dpt_dataset_t *src);
/* Fitted normalisation as (mean, std) of feature 0 for images (global) - for reporting. */
void dpt_dataset_normalization(const dpt_dataset_t *ds, double *mean, double *std);

/* The fitted normalisation as bytes, for checkpoints: returns the size needed and writes it
 * when cap is large enough. _load applies saved bytes to a dataset with the same features
 * (DPT_ERR_INVALID_ARG naming both shapes otherwise, DPT_ERR_FORMAT for a short buffer). */
size_t dpt_dataset_normalization_save(const dpt_dataset_t *ds, void *buf, size_t cap);
dpt_status_t dpt_dataset_normalization_load(dpt_dataset_t *ds, const void *buf, size_t n);

/* Writes n samples, rows idx[0..n) of this view, as normalised floats into
 * x[n * features] (row-major) and their labels into y[n] (y may be NULL). No allocation;
 * idx entries must be < count. Thread-safe. */
void dpt_dataset_gather(const dpt_dataset_t *ds, const uint32_t *idx, size_t n, float *x,
                        int32_t *y);

/* Bytes of sample storage held (shared storage counted once per call). */
size_t dpt_dataset_storage_bytes(const dpt_dataset_t *ds);

#ifdef __cplusplus
}
#endif
#endif
