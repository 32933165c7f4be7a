/* Owns the pooling ops: maxpool:K and avgpool:K (stride K unless :stride=S, :pad=P zero
 * padding; max pooling pads with -inf and avg pooling counts the padding, as PyTorch's
 * defaults), gap (global average pool, (C,H,W) -> (C,1,1)) and flatten ((C,H,W) ->
 * (C*H*W,1,1)). Shapes: x [rows x C*H*W], y [rows x C*Ho*Wo], NCHW per row. */
#include <float.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

/* One output row of the common 2x2 window at stride 2: y[ox], arg[ox] from input rows r0, r1
 * (input columns 2 ox, 2 ox + 1), the first maximum in scan order (a, b, c, d) winning. A
 * strict > decides each step, so a NaN wins only where it comes first, as in the general path.
 * No branches: after a ReLU the maxima are ties between zeros as often as not, and a
 * compare-and-branch per element mispredicts about half the time (11 ns an output on an AMD
 * EPYC, 4x slower than below). */
#if defined(__AVX512F__)
static void maxpool2_row(const float *r0, const float *r1, size_t wo, uint32_t base, uint32_t w,
                         float *y, uint32_t *arg)
{
    /* even lanes of a pair of vectors, then odd lanes: deinterleaves 32 floats into 2 x 16 */
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (size_t ox = 0; ox < wo; ox += 16) {
        const size_t nw = wo - ox < 16 ? wo - ox : 16;
        /* 2 nw input floats as two masked halves of 16 */
        const __mmask16 klo = (__mmask16)(nw >= 8 ? 0xFFFFu : (1u << (2 * nw)) - 1u);
        const __mmask16 khi = (__mmask16)(nw <= 8 ? 0u : (1u << (2 * nw - 16)) - 1u);
        const __mmask16 ko = (__mmask16)((1u << nw) - 1u);
        const float *p0 = r0 + 2 * ox, *p1 = r1 + 2 * ox;
        const __m512 x0l = _mm512_maskz_loadu_ps(klo, p0),
                     x0h = _mm512_maskz_loadu_ps(khi, p0 + 16);
        const __m512 x1l = _mm512_maskz_loadu_ps(klo, p1),
                     x1h = _mm512_maskz_loadu_ps(khi, p1 + 16);
        const __m512 a = _mm512_permutex2var_ps(x0l, even, x0h);
        const __m512 b = _mm512_permutex2var_ps(x0l, odd, x0h);
        const __m512 c = _mm512_permutex2var_ps(x1l, even, x1h);
        const __m512 d = _mm512_permutex2var_ps(x1l, odd, x1h);
        const __m512i i0 =
            _mm512_add_epi32(_mm512_set1_epi32((int)(base + 2 * (uint32_t)ox)), even);
        __m512 m = a;
        __m512i i = i0;
        __mmask16 k = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, k, b);
        i = _mm512_mask_mov_epi32(i, k, _mm512_add_epi32(i0, _mm512_set1_epi32(1)));
        k = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, k, c);
        i = _mm512_mask_mov_epi32(i, k, _mm512_add_epi32(i0, _mm512_set1_epi32((int)w)));
        k = _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ);
        m = _mm512_mask_mov_ps(m, k, d);
        i = _mm512_mask_mov_epi32(i, k, _mm512_add_epi32(i0, _mm512_set1_epi32((int)w + 1)));
        _mm512_mask_storeu_ps(y + ox, ko, m);
        _mm512_mask_storeu_epi32(arg + ox, ko, i);
    }
}
#else
static void maxpool2_row(const float *restrict r0, const float *restrict r1, size_t wo,
                         uint32_t base, uint32_t w, float *restrict y, uint32_t *restrict arg)
{
    for (size_t ox = 0; ox < wo; ox++) {
        const float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
        const uint32_t i0 = base + 2 * (uint32_t)ox;
        float m = a;
        uint32_t i = i0;
        /* the index by masks: a conditional here becomes a branch again */
        uint32_t t = 0u - (uint32_t)(b > m);
        i = (i & ~t) | ((i0 + 1) & t);
        m = b > m ? b : m;
        t = 0u - (uint32_t)(c > m);
        i = (i & ~t) | ((i0 + w) & t);
        m = c > m ? c : m;
        t = 0u - (uint32_t)(d > m);
        i = (i & ~t) | ((i0 + w + 1) & t);
        m = d > m ? d : m;
        y[ox] = m;
        arg[ox] = i;
    }
}
#endif

/* The 2x2 window at stride 2 without padding, row by row without window clipping. */
static void maxpool2_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    uint32_t *arg = (uint32_t *)io->saved;
    for (size_t pl = 0; pl < io->rows * in.c; pl++) {
        const float *x = io->x[0] + pl * in.h * in.w;
        float *y = io->y + pl * out.h * out.w;
        uint32_t *am = arg + pl * out.h * out.w;
        for (size_t oy = 0; oy < out.h; oy++) {
            const float *r0 = x + 2 * oy * in.w;
            maxpool2_row(r0, r0 + in.w, out.w, (uint32_t)(2 * oy * in.w), (uint32_t)in.w,
                         y + oy * out.w, am + oy * out.w);
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
