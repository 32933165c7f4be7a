/* Owns the dense (fully connected) layer: y[rows x out] = x[rows x in] W[in x out] + b[out],
 * in = size(input shape): a spatial input is read flattened (NCHW rows are already flat). */
#include <string.h>

#include "kernels/gemm.h"
#include "nn/op.h"

static const dpt_spec_key_t dense_keys[] = {
    DPT_SPEC_I("units", NULL, 1, 65536, DPT_SPEC_POS),
    /* dense:10:he; the default is PyTorch's nn.Linear (docs/design.md, "Initialisation") */
    {"init", DPT_SPEC_ENUM, "torch", 0, 0, DPT_SPEC_POS, DPT_WEIGHT_INITS},
    DPT_SPEC_B("bias", "1"),
    DPT_SPEC_END};

static dpt_status_t dense_parse(dpt_node_t *n, const dpt_spec_part_t *p)
{
    n->a.out = dpt_spec_size(p, "units");
    n->a.init = dpt_weight_init(dpt_spec_int(p, "init"));
    n->a.bias = dpt_spec_int(p, "bias") != 0;
    return DPT_OK;
}

static dpt_status_t dense_infer(dpt_node_t *n)
{
    n->out = (dpt_shape_t){n->a.out, 1, 1};
    return DPT_OK;
}

static size_t dense_declare(const dpt_node_t *n, dpt_tensor_decl_t *d)
{
    size_t in = dpt_shape_size(n->in_shape[0]), out = n->a.out;
    d[0] = (dpt_tensor_decl_t){"weight", 2, {in, out}, DPT_TENSOR_WEIGHT, n->a.init, in, out};
    if (!n->a.bias) return 1;
    d[1] =
        (dpt_tensor_decl_t){"bias", 1, {out}, DPT_TENSOR_BIAS, dpt_bias_init(n->a.init), in, out};
    return 2;
}

static void dense_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const size_t in = dpt_shape_size(n->in_shape[0]), out = n->a.out, rows = io->rows;
    const float *w = io->params + n->offset[0];
    if (n->a.bias) {
        /* Broadcast the bias first, then accumulate x W on top of it. */
        const float *b = io->params + n->offset[1];
        for (size_t r = 0; r < rows; r++)
            memcpy(io->y + r * out, b, out * sizeof *io->y);
    }
    /* x W: kernels/thin.c where it beats BLIS on every forward shape measured (AMD Zen 5,
     * dpt_gemm_thin_any_shape: 64 x 256 x 784 at 155 GFLOP/s against skx's 113 and zen3's 93;
     * the small CNN's 16 x 128 x 3136 at 127 against 86); the weight and input gradients
     * stay on BLIS, which was as fast or faster there (docs/performance.md). */
    dpt_product(dpt_gemm_thin_any_shape(), false, false, rows, out, in, io->x[0], in, w, out, io->y,
                out, n->a.bias, NULL);
}

static void dense_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const size_t in = dpt_shape_size(n->in_shape[0]), out = n->a.out, rows = io->rows;
    const float *dy = io->dy;
    /* dW[in x out] = x^T[in x rows] dy[rows x out] */
    dpt_sgemm(true, false, in, out, rows, 1.0f, io->x[0], in, dy, out, 0.0f,
              io->grads + n->offset[0], out);
    if (n->a.bias) {
        /* db[out] = column sums of dy */
        float *db = io->grads + n->offset[1];
        memset(db, 0, out * sizeof *db);
        for (size_t r = 0; r < rows; r++) {
            const float *row = dy + r * out;
            for (size_t j = 0; j < out; j++)
                db[j] += row[j];
        }
    }
    /* dx[rows x in] (+)= dy[rows x out] W^T[out x in] */
    if (io->dx[0])
        dpt_sgemm(false, true, rows, in, out, 1.0f, dy, out, io->params + n->offset[0], out,
                  io->dx_acc[0] ? 1.0f : 0.0f, io->dx[0], in);
}

static double dense_flops(const dpt_node_t *n)
{
    return 2.0 * (double)dpt_shape_size(n->in_shape[0]) * (double)n->a.out;
}

static void dense_gemm_shape(const dpt_node_t *n, size_t rows, size_t mnk[3])
{
    mnk[0] = rows, mnk[1] = n->a.out, mnk[2] = dpt_shape_size(n->in_shape[0]);
}

const dpt_op_t dpt_op_dense = {.spec = {"dense", dense_keys},
                               .parse = dense_parse,
                               .infer = dense_infer,
                               .declare = dense_declare,
                               .forward = dense_forward,
                               .backward = dense_backward,
                               .flops = dense_flops,
                               .gemm_shape = dense_gemm_shape};
