/* The image kernels of augmentation (augment_ops.c), on one image of c x h x w floats in pixel
 * units [0, 255], channel-major (CHW). Pure functions of their arguments: the draws are made
 * by the caller (augment.c), so the tests can check each kernel on chosen parameters. */
#ifndef DPT_DATA_AUGMENT_OPS_H
#define DPT_DATA_AUGMENT_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Reverses each row (horizontal flip) or the rows (vertical flip), in place. */
void dpt_aug_hflip(float *img, size_t c, size_t h, size_t w);
void dpt_aug_vflip(float *img, size_t c, size_t h, size_t w);

/* dst = the h x w window at (dx, dy) of src padded by pad on every side (0 <= dx, dy <=
 * 2 pad): pixel (x, y) comes from src (x + dx - pad, y + dy - pad). Outside src: 0 (zero), or
 * the mirror image without repeating the edge (reflect, numpy's / PyTorch's; pad < h, w). */
void dpt_aug_crop(const float *src, float *dst, size_t c, size_t h, size_t w, size_t pad, size_t dx,
                  size_t dy, int reflect);

/* An output-to-source map: the source of output pixel (x, y) is
 * (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]). */
typedef struct dpt_aug_affine {
    float m[6];
} dpt_aug_affine_t;

/* The inverse map of: rotate by `degrees` (counter-clockwise as displayed, torchvision's
 * sign), shear x by `shear` degrees, scale by `scale` about the image centre, then translate
 * by (tx, ty) pixels. Coefficients within 1e-9 of an integer are made that integer, so
 * quarter turns and identities map pixels to pixels exactly. */
dpt_aug_affine_t dpt_aug_affine_make(size_t h, size_t w, double degrees, double tx, double ty,
                                     double scale, double shear);

/* Floats of the padded-source scratch dpt_aug_warp needs. */
size_t dpt_aug_warp_scratch(size_t h, size_t w);

/* img = bilinear samples of img through map; a tap outside the image reads `fill`. In place,
 * one channel at a time through pad (dpt_aug_warp_scratch floats). */
void dpt_aug_warp(float *img, size_t c, size_t h, size_t w, const dpt_aug_affine_t *map, float fill,
                  float *pad);

/* v + delta, v = mean + (v - mean) * factor (mean over the whole image), and (3 channels)
 * grey + (v - grey) * factor with grey the ITU-R 601 luma; each clamped to [0, 255]. */
void dpt_aug_brightness(float *img, size_t n, float delta);
void dpt_aug_contrast(float *img, size_t n, float factor);
void dpt_aug_saturation(float *img, size_t h, size_t w, float factor);

/* Sets rows [y0, y0 + rh) x columns [x0, x0 + rw) of every channel to value. */
void dpt_aug_fill_box(float *img, size_t c, size_t h, size_t w, size_t y0, size_t x0, size_t rh,
                      size_t rw, float value);
/* Copies that box from src into img (cutmix). */
void dpt_aug_paste_box(float *img, const float *src, size_t c, size_t h, size_t w, size_t y0,
                       size_t x0, size_t rh, size_t rw);
/* img = lam img + (1 - lam) other (mixup). */
void dpt_aug_mix(float *img, const float *other, size_t n, float lam);

/* Clamps to [0, 255]. */
void dpt_aug_clamp(float *img, size_t n);

#endif
