/* Owns the dense (fully connected) layer: y[rows x out] = x[rows x in] W[in x out] + b[out]. */
#include "kernels/gemm.h"
#include "nn/layer.h"

#include <string.h>

static void dense_forward(const dpt_layer_t *l, const float *params, const float *x, float *y,
                          size_t rows, const dpt_step_ctx_t *ctx)
{
    const float *w = params + l->w_off, *b = params + l->b_off;
    /* Broadcast the bias first, then accumulate x W on top of it (beta = 1). */
    for (size_t r = 0; r < rows; r++)
        memcpy(y + r * l->out, b, l->out * sizeof *y);
    dpt_sgemm(false, false, rows, l->out, l->in, 1.0f, x, l->in, w, l->out, 1.0f, y, l->out);
}

static void dense_backward(const dpt_layer_t *l, const float *params, const float *x,
                           const float *y, const float *dy, float *dx, float *grads, size_t rows,
                           const dpt_step_ctx_t *ctx)
{
    const size_t in = l->in, out = l->out;
    /* dW[in x out] = x^T[in x rows] dy[rows x out] */
    dpt_sgemm(true, false, in, out, rows, 1.0f, x, in, dy, out, 0.0f, grads + l->w_off, out);
    /* db[out] = column sums of dy */
    float *db = grads + l->b_off;
    memset(db, 0, out * sizeof *db);
    for (size_t r = 0; r < rows; r++) {
        const float *row = dy + r * out;
        for (size_t j = 0; j < out; j++)
            db[j] += row[j];
    }
    /* dx[rows x in] = dy[rows x out] W^T[out x in] */
    if (dx)
        dpt_sgemm(false, true, rows, in, out, 1.0f, dy, out, params + l->w_off, out, 0.0f, dx, in);
}

const dpt_layer_ops_t dpt_dense_ops = {"dense", dense_forward, dense_backward};
