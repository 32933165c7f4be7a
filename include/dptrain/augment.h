/* Data augmentation and test-time augmentation of images.
 *
 * --augment SPEC: ops joined by '+', each "name" or "name:k=v,k=v" (the one spec grammar):
 * crop, hflip, vflip, rotate, translate, scale, affine, brightness, contrast, saturation,
 * noise, erase, and the label-mixing mixup / cutmix (at most one, last). Ops run in spec order
 * on each training sample, inside the workers during batch assembly, on pixels after decoding
 * and before normalisation (docs/augmentation.md).
 *
 * Every random draw is a pure function of (seed, epoch, sample index, op index, draw index)
 * through a counter-based hash: no generator state, so the augmented batch is the same bits
 * for any thread count, after a resume (also mid-epoch), and for any split across processes.
 *
 * --tta SPEC: hflip, vflip, crop:pad=P joined by '+'; the views are every combination
 * (identity included), and eval / predict average the softmax over them.
 *
 * Thread safety: a built dpt_augment_t / dpt_tta_t is read-only; the apply functions may be
 * called from many threads at once, each with its own scratch. */
#ifndef DPTRAIN_AUGMENT_H
#define DPTRAIN_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/dataset.h"
#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_augment dpt_augment_t;

/* Parses spec for images of c x h x w. c == 0 means the shape is not known yet: only what
 * the spec alone decides is checked (names, keys, ranges, cross-key rules); build again with
 * the shape before use. Errors are DPT_ERR_INVALID_ARG with one line naming the valid ops or
 * keys. */
dpt_status_t dpt_augment_create(const char *spec, size_t c, size_t h, size_t w,
                                dpt_augment_t **out);
void dpt_augment_free(dpt_augment_t *a);
/* The canonical spec: every key of every op with its value ("crop:pad=2,mode=zero,p=1+..."),
 * parsing back to the same augmentation. Stored in config.txt and checkpoints. */
const char *dpt_augment_describe(const dpt_augment_t *a);
/* Whether the spec mixes labels (mixup, cutmix): the loss then takes two labels a row. */
int dpt_augment_mixes_labels(const dpt_augment_t *a);
/* Floats of scratch one thread needs for dpt_augment_view / _gather. */
size_t dpt_augment_scratch_floats(const dpt_augment_t *a);

/* DPT_OK when ds is uint8 image data of the shape a was built for; otherwise
 * DPT_ERR_INVALID_ARG saying what the data is. */
dpt_status_t dpt_augment_check_data(const dpt_augment_t *a, const dpt_dataset_t *ds);

/* Sample `sample` of ds (an image dataset of the built shape) as augmented for epoch
 * `epoch`: c*h*w floats in pixel units [0, 255] into out (before normalisation). With a
 * mixing op, *label2 gets the partner's label and *lam the weight of the sample's own label
 * (1 without one); either may be NULL. */
void dpt_augment_view(const dpt_augment_t *a, const dpt_dataset_t *ds, size_t sample, uint64_t seed,
                      uint64_t epoch, float *out, float *scratch, int32_t *label2, float *lam);

/* Batch assembly with augmentation: rows ids[0..n) of ds, augmented, then normalised as
 * dpt_dataset_gather does, into x[n * features]; labels into y, partners' labels into y2 and
 * own-label weights into lam (y2, lam may be NULL when the spec does not mix labels). */
void dpt_augment_gather(const dpt_augment_t *a, const dpt_dataset_t *ds, const uint32_t *ids,
                        size_t n, uint64_t seed, uint64_t epoch, float *x, int32_t *y, int32_t *y2,
                        float *lam, float *scratch);

/* Test-time augmentation. */
typedef struct dpt_tta dpt_tta_t;

dpt_status_t dpt_tta_create(const char *spec, size_t c, size_t h, size_t w, dpt_tta_t **out);
void dpt_tta_free(dpt_tta_t *t);
const char *dpt_tta_describe(const dpt_tta_t *t);
size_t dpt_tta_views(const dpt_tta_t *t); /* view 0 is the image itself */
size_t dpt_tta_scratch_floats(const dpt_tta_t *t);
/* View `view` of rows ids[0..n), normalised, into x (labels into y, may be NULL). */
void dpt_tta_gather(const dpt_tta_t *t, size_t view, const dpt_dataset_t *ds, const uint32_t *ids,
                    size_t n, float *x, int32_t *y, float *scratch);

#ifdef __cplusplus
}
#endif
#endif
