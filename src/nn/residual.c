/* Owns the ops that join a residual block: add (y = x0 + x1, same shapes; its backward
 * passes dy to both inputs, which is why every gradient slot accumulates) and zpad:C (the
 * parameter-free "option A" shortcut of He et al. 2016's CIFAR ResNets: subsample by
 * :stride=S and append zero channels up to C). Shapes [rows x C*H*W], NCHW per row. */
#include <string.h>

#include "nn/op.h"

static dpt_status_t add_infer(dpt_node_t *n)
{
    const dpt_shape_t a = n->in_shape[0], b = n->in_shape[1];
    if (a.c != b.c || a.h != b.h || a.w != b.w)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: residual add of mismatched shapes %zux%zux%zu and "
                         "%zux%zux%zu (give the shortcut a projection, e.g. "
                         "res(...|conv:%zu:1:stride=S,bn), or zpad:%zu:stride=S)",
                         n->name, a.c, a.h, a.w, b.c, b.h, b.w, a.c, a.c);
    n->out = a;
    return DPT_OK;
}

static void add_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const size_t cnt = io->rows * dpt_shape_size(n->out);
    const float *a = io->x[0], *b = io->x[1]; /* y may be a: add runs in place (op.h) */
    float *y = io->y;
    for (size_t i = 0; i < cnt; i++)
        y[i] = a[i] + b[i];
}

static void add_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const size_t cnt = io->rows * dpt_shape_size(n->out);
    for (size_t k = 0; k < 2; k++)
        if (io->dx[k]) dpt_store_grad(io->dx[k], io->dy, cnt, io->dx_acc[k]);
}

static double add_flops(const dpt_node_t *n)
{
    return (double)dpt_shape_size(n->out);
}

const dpt_op_t dpt_op_add = {.spec = {"add", NULL},
                             .infer = add_infer,
                             .forward = add_forward,
                             .backward = add_backward,
                             .in_place = true, /* its backward reads no input */
                             .flops = add_flops};

static const dpt_spec_key_t zpad_keys[] = {DPT_SPEC_I("channels", NULL, 1, 65536, DPT_SPEC_POS),
                                           DPT_SPEC_I("stride", "1", 1, 64, 0), DPT_SPEC_END};

static dpt_status_t zpad_parse(dpt_node_t *n, const dpt_spec_part_t *p)
{
    n->a.out = dpt_spec_size(p, "channels");
    n->a.stride = dpt_spec_size(p, "stride");
    return DPT_OK;
}

static dpt_status_t zpad_infer(dpt_node_t *n)
{
    const dpt_shape_t in = n->in_shape[0];
    if (n->a.out < in.c)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: zpad to %zu channels, fewer than its input's %zu",
                         n->name, n->a.out, in.c);
    const size_t s = n->a.stride;
    n->out = (dpt_shape_t){n->a.out, (in.h + s - 1) / s, (in.w + s - 1) / s};
    return DPT_OK;
}

/* Output channel c < in.c, pixel (oy, ox) is input (c, oy*S, ox*S); the rest are zeros. */
static void zpad_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    const size_t s = n->a.stride;
    for (size_t r = 0; r < io->rows; r++) {
        const float *x = io->x[0] + r * dpt_shape_size(in);
        float *y = io->y + r * dpt_shape_size(out);
        for (size_t c = 0; c < in.c; c++)
            for (size_t oy = 0; oy < out.h; oy++)
                for (size_t ox = 0; ox < out.w; ox++)
                    y[(c * out.h + oy) * out.w + ox] = x[(c * in.h + oy * s) * in.w + ox * s];
        memset(y + in.c * out.h * out.w, 0, (out.c - in.c) * out.h * out.w * sizeof *y);
    }
}

static void zpad_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    if (!io->dx[0]) return;
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    const size_t s = n->a.stride;
    if (!io->dx_acc[0]) memset(io->dx[0], 0, io->rows * dpt_shape_size(in) * sizeof(float));
    for (size_t r = 0; r < io->rows; r++) {
        float *dx = io->dx[0] + r * dpt_shape_size(in);
        const float *dy = io->dy + r * dpt_shape_size(out);
        for (size_t c = 0; c < in.c; c++)
            for (size_t oy = 0; oy < out.h; oy++)
                for (size_t ox = 0; ox < out.w; ox++)
                    dx[(c * in.h + oy * s) * in.w + ox * s] += dy[(c * out.h + oy) * out.w + ox];
    }
}

const dpt_op_t dpt_op_zpad = {.spec = {"zpad", zpad_keys},
                              .parse = zpad_parse,
                              .infer = zpad_infer,
                              .forward = zpad_forward,
                              .backward = zpad_backward};
