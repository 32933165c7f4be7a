/* Owns the pooling ops: maxpool:K and avgpool:K (stride K unless :stride=S, :pad=P zero
 * padding; max pooling pads with -inf and avg pooling counts the padding, as PyTorch's
 * defaults), gap (global average pool, (C,H,W) -> (C,1,1)) and flatten ((C,H,W) ->
 * (C*H*W,1,1)). Shapes: x [rows x C*H*W], y [rows x C*Ho*Wo], NCHW per row. */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "nn/op.h"

static const dpt_spec_key_t pool_keys[] = {DPT_SPEC_I("k", NULL, 1, 64, DPT_SPEC_POS),
                                           DPT_SPEC_I("stride", "@k", 1, 64, 0),
                                           DPT_SPEC_I("pad", "0", 0, 64, 0), DPT_SPEC_END};

static dpt_status_t pool_parse(dpt_node_t *n, const dpt_spec_part_t *p)
{
    n->a.k = dpt_spec_size(p, "k");
    n->a.stride = dpt_spec_is_set(p, "stride") ? dpt_spec_size(p, "stride") : n->a.k;
    n->a.pad = dpt_spec_size(p, "pad");
    return DPT_OK;
}

static dpt_status_t pool_infer(dpt_node_t *n)
{
    const dpt_shape_t in = n->in_shape[0];
    const size_t k = n->a.k, p = n->a.pad, s = n->a.stride;
    if (2 * p > k)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: padding %zu is more than half the kernel %zu", n->name, p,
                         k);
    if (k > in.h + 2 * p || k > in.w + 2 * p)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: kernel %zu larger than its input %zux%zu (padding %zu)",
                         n->name, k, in.h, in.w, p);
    n->out = (dpt_shape_t){in.c, (in.h + 2 * p - k) / s + 1, (in.w + 2 * p - k) / s + 1};
    return DPT_OK;
}

/* The window of output (oy, ox) clipped to the input: rows [y0, y1), columns [x0, x1). */
typedef struct {
    size_t y0, y1, x0, x1;
} window_t;

static window_t window_at(const dpt_node_t *n, size_t oy, size_t ox)
{
    const dpt_shape_t in = n->in_shape[0];
    long ys = (long)(oy * n->a.stride) - (long)n->a.pad,
         xs = (long)(ox * n->a.stride) - (long)n->a.pad;
    long ye = ys + (long)n->a.k, xe = xs + (long)n->a.k;
    window_t w = {ys < 0 ? 0 : (size_t)ys, ye > (long)in.h ? in.h : (size_t)ye,
                  xs < 0 ? 0 : (size_t)xs, xe > (long)in.w ? in.w : (size_t)xe};
    return w;
}

/* saved: the flat input index (within the plane) of each output's maximum, as uint32. */
static size_t maxpool_saved(const dpt_node_t *n, size_t rows)
{
    return rows * dpt_shape_size(n->out);
}

/* The common 2x2 window at stride 2 without padding, in straight loops (no window
 * clipping): 3x faster than the general path on 28x28 maps. Same results. */
static void maxpool2_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    uint32_t *arg = (uint32_t *)io->saved;
    for (size_t pl = 0; pl < io->rows * in.c; pl++) {
        const float *x = io->x[0] + pl * in.h * in.w;
        float *y = io->y + pl * out.h * out.w;
        uint32_t *am = arg + pl * out.h * out.w;
        for (size_t oy = 0; oy < out.h; oy++) {
            const float *r0 = x + 2 * oy * in.w, *r1 = r0 + in.w;
            for (size_t ox = 0; ox < out.w; ox++) {
                /* first maximum in scan order, as the general path */
                size_t c = 2 * ox, bi = c;
                float best = r0[c];
                if (r0[c + 1] > best) best = r0[c + 1], bi = c + 1;
                if (r1[c] > best) best = r1[c], bi = in.w + c;
                if (r1[c + 1] > best) best = r1[c + 1], bi = in.w + c + 1;
                y[oy * out.w + ox] = best;
                am[oy * out.w + ox] = (uint32_t)(2 * oy * in.w + bi);
            }
        }
    }
}

static void maxpool_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    if (n->a.k == 2 && n->a.stride == 2 && n->a.pad == 0) {
        maxpool2_forward(n, io);
        return;
    }
    uint32_t *arg = (uint32_t *)io->saved;
    for (size_t pl = 0; pl < io->rows * in.c; pl++) {
        const float *x = io->x[0] + pl * in.h * in.w;
        float *y = io->y + pl * out.h * out.w;
        uint32_t *am = arg + pl * out.h * out.w;
        for (size_t oy = 0; oy < out.h; oy++)
            for (size_t ox = 0; ox < out.w; ox++) {
                window_t w = window_at(n, oy, ox);
                float best = -FLT_MAX;
                size_t bi = w.y0 * in.w + w.x0;
                for (size_t iy = w.y0; iy < w.y1; iy++)
                    for (size_t ix = w.x0; ix < w.x1; ix++)
                        if (x[iy * in.w + ix] > best) best = x[iy * in.w + ix], bi = iy * in.w + ix;
                y[oy * out.w + ox] = best;
                am[oy * out.w + ox] = (uint32_t)bi;
            }
    }
}

static void maxpool_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    if (!io->dx[0]) return;
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    const size_t plane = in.h * in.w, oplane = out.h * out.w;
    const uint32_t *arg = (const uint32_t *)io->saved;
    if (!io->dx_acc[0]) memset(io->dx[0], 0, io->rows * in.c * plane * sizeof(float));
    for (size_t pl = 0; pl < io->rows * in.c; pl++) {
        float *dx = io->dx[0] + pl * plane;
        const float *dy = io->dy + pl * oplane;
        const uint32_t *am = arg + pl * oplane;
        for (size_t o = 0; o < oplane; o++)
            dx[am[o]] += dy[o];
    }
}

static void avgpool_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    const float inv = 1.0f / (float)(n->a.k * n->a.k);
    for (size_t pl = 0; pl < io->rows * in.c; pl++) {
        const float *x = io->x[0] + pl * in.h * in.w;
        float *y = io->y + pl * out.h * out.w;
        for (size_t oy = 0; oy < out.h; oy++)
            for (size_t ox = 0; ox < out.w; ox++) {
                window_t w = window_at(n, oy, ox);
                float s = 0.0f;
                for (size_t iy = w.y0; iy < w.y1; iy++)
                    for (size_t ix = w.x0; ix < w.x1; ix++)
                        s += x[iy * in.w + ix];
                y[oy * out.w + ox] = s * inv;
            }
    }
}

static void avgpool_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    if (!io->dx[0]) return;
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    const size_t plane = in.h * in.w;
    const float inv = 1.0f / (float)(n->a.k * n->a.k);
    if (!io->dx_acc[0]) memset(io->dx[0], 0, io->rows * in.c * plane * sizeof(float));
    for (size_t pl = 0; pl < io->rows * in.c; pl++) {
        float *dx = io->dx[0] + pl * plane;
        const float *dy = io->dy + pl * out.h * out.w;
        for (size_t oy = 0; oy < out.h; oy++)
            for (size_t ox = 0; ox < out.w; ox++) {
                window_t w = window_at(n, oy, ox);
                float g = dy[oy * out.w + ox] * inv;
                for (size_t iy = w.y0; iy < w.y1; iy++)
                    for (size_t ix = w.x0; ix < w.x1; ix++)
                        dx[iy * in.w + ix] += g;
            }
    }
}

static double pool_flops(const dpt_node_t *n)
{
    return (double)dpt_shape_size(n->out) * (double)(n->a.k * n->a.k);
}

const dpt_op_t dpt_op_maxpool = {.spec = {"maxpool", pool_keys},
                                 .parse = pool_parse,
                                 .infer = pool_infer,
                                 .saved_floats = maxpool_saved,
                                 .forward = maxpool_forward,
                                 .backward = maxpool_backward,
                                 .flops = pool_flops};

const dpt_op_t dpt_op_avgpool = {.spec = {"avgpool", pool_keys},
                                 .parse = pool_parse,
                                 .infer = pool_infer,
                                 .forward = avgpool_forward,
                                 .backward = avgpool_backward,
                                 .flops = pool_flops};

static dpt_status_t gap_infer(dpt_node_t *n)
{
    n->out = (dpt_shape_t){n->in_shape[0].c, 1, 1};
    return DPT_OK;
}

static void gap_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const size_t plane = n->in_shape[0].h * n->in_shape[0].w;
    const float inv = 1.0f / (float)plane;
    for (size_t pl = 0; pl < io->rows * n->out.c; pl++) {
        const float *x = io->x[0] + pl * plane;
        float s = 0.0f;
        for (size_t i = 0; i < plane; i++)
            s += x[i];
        io->y[pl] = s * inv;
    }
}

static void gap_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    if (!io->dx[0]) return;
    const size_t plane = n->in_shape[0].h * n->in_shape[0].w;
    const float inv = 1.0f / (float)plane;
    for (size_t pl = 0; pl < io->rows * n->out.c; pl++) {
        float *dx = io->dx[0] + pl * plane;
        const float g = io->dy[pl] * inv;
        if (io->dx_acc[0])
            for (size_t i = 0; i < plane; i++)
                dx[i] += g;
        else
            for (size_t i = 0; i < plane; i++)
                dx[i] = g;
    }
}

static double gap_flops(const dpt_node_t *n)
{
    return (double)dpt_shape_size(n->in_shape[0]);
}

const dpt_op_t dpt_op_gap = {.spec = {"gap", NULL},
                             .infer = gap_infer,
                             .forward = gap_forward,
                             .backward = gap_backward,
                             .flops = gap_flops};

static dpt_status_t flatten_infer(dpt_node_t *n)
{
    n->out = (dpt_shape_t){dpt_shape_size(n->in_shape[0]), 1, 1};
    return DPT_OK;
}

static void flatten_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    memcpy(io->y, io->x[0], io->rows * dpt_shape_size(n->out) * sizeof *io->y);
}

static void flatten_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    if (io->dx[0])
        dpt_store_grad(io->dx[0], io->dy, io->rows * dpt_shape_size(n->out), io->dx_acc[0]);
}

const dpt_op_t dpt_op_flatten = {.spec = {"flatten", NULL},
                                 .infer = flatten_infer,
                                 .forward = flatten_forward,
                                 .backward = flatten_backward};
