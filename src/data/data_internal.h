/* Owns the loader entry points dataset.c dispatches to (idx.c, cifar10.c, synthetic.c,
 * csv.c) and their shared caps. The loaders fill a store (data/store.h) and know nothing of
 * datasets: the dependency runs one way, dataset.c -> loaders -> store. */
#ifndef DPT_DATA_INTERNAL_H
#define DPT_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/store.h"
#include "dptrain/dataset.h"

/* Classes of the fixed 10-class sets (MNIST, Fashion-MNIST, CIFAR-10). */
#define DPT_TEN_CLASSES 10
/* Caps for CSV tables: classes, columns per row, bytes per field, bytes per line. */
#define DPT_CSV_MAX_CLASSES 65536u
#define DPT_CSV_MAX_COLUMNS ((size_t)1 << 20)
#define DPT_CSV_MAX_FIELD ((size_t)1 << 20)
#define DPT_CSV_MAX_LINE ((size_t)16 << 20)

/* Loads one IDX image file and its label file (raw or gzip). classes == 0 means "max label
 * + 1"; otherwise labels must be below it. On success *out owns the storage. */
dpt_status_t dpt_idx_load(const char *images, const char *labels, size_t classes, const char *name,
                          const dpt_data_options_t *opt, dpt_store_t **out);
/* Loads n CIFAR-10 binary batch files, in order, into one store. */
dpt_status_t dpt_cifar10_load(const char *const *paths, size_t n, const char *name,
                              const dpt_data_options_t *opt, dpt_store_t **out);
/* Generates "synthetic:N[,C,H,W,CLASSES]": N seeded random images (default 1x28x28, 10
 * classes) for training and N/6 for test. */
/* Parses synthetic:'s argument "N[,C,H,W,CLASSES]" into dims (defaults 1, 28, 28, 10). */
dpt_status_t dpt_synthetic_dims(const char *arg, size_t dims[5]);
dpt_status_t dpt_synthetic_load(const char *arg, const dpt_data_options_t *opt, dpt_store_t **tr,
                                dpt_store_t **te);
/* Loads a numeric CSV table with one label column. */
dpt_status_t dpt_csv_load(const char *path, const dpt_data_options_t *opt, dpt_store_t **out);

/* For batch assembly outside dataset.c (augment.c): the uint8 pixels of sample i of a view
 * (NULL for float tables), and the view's normaliser as x = pixel * a + b, pixel in [0, 255]
 * (the multiply-add dpt_dataset_gather uses, so an identity augmentation gives its bits). */
const uint8_t *dpt_dataset_pixels(const dpt_dataset_t *ds, size_t i);
void dpt_dataset_pixel_affine(const dpt_dataset_t *ds, float *a, float *b);

#endif
