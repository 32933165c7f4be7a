/* The Winograd lowering of a 3x3 convolution at stride 1 with padding 1 and one group,
 * F(2x2, 3x3) (Lavin and Gray 2016): each 2x2 output tile costs 16 products per channel pair
 * instead of 36, as 16 GEMMs, through dpt_sgemm like every other product. Used by
 * nn/conv.c; see there for when. */
#ifndef DPT_NN_CONV_WINOGRAD_H
#define DPT_NN_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>

/* One sample x [C][H][W] -> y [OUT][H][W]; weight [OUT][C][3][3]. */
typedef struct dpt_wino_dims {
    size_t c, h, w, out;
} dpt_wino_dims_t;

/* The row stride of a lowered block matrix of `cols` columns (defined in nn/conv.c, shared by
 * both lowerings): a multiple of 16 floats that is not a multiple of 128. */
size_t dpt_conv_padded_ld(size_t cols);

/* Columns of the products of a pass over `rows` samples: a block's tiles (and empty lanes). */
size_t dpt_wino_block_columns(const dpt_wino_dims_t *d, size_t rows);

/* Scratch floats for a pass over `rows` samples (bounded whatever rows is). */
size_t dpt_wino_workspace_floats(const dpt_wino_dims_t *d, size_t rows);

/* y = conv(x, w) + bias (bias may be NULL) for `rows` samples. */
void dpt_wino_forward(const dpt_wino_dims_t *d, const float *w, const float *bias, const float *x,
                      size_t rows, float *y, float *ws);

/* dw = dL/dw (written); dx (may be NULL) = dL/dx, added when dx_acc, written otherwise. The
 * bias gradient is the caller's (it does not depend on the lowering). */
void dpt_wino_backward(const dpt_wino_dims_t *d, const float *w, const float *x, const float *dy,
                       size_t rows, float *dw, float *dx, bool dx_acc, float *ws);

#endif
