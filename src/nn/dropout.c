/* Owns inverted dropout: in training y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) drawn
 * from a hash of (seed, epoch, sample index, node, unit), so a sample gets the same mask
 * whichever thread or micro-shard processes it. At evaluation y = x. Shapes [rows x size(in)]. */
#include <stdlib.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/op.h"

static const dpt_spec_key_t dropout_keys[] = {
    DPT_SPEC_R("p", NULL, 0, 1, DPT_SPEC_HI_OPEN | DPT_SPEC_POS), DPT_SPEC_END};

static dpt_status_t dropout_parse(dpt_node_t *n, const dpt_spec_part_t *p)
{
    n->a.p = (float)dpt_spec_real(p, "p");
    return DPT_OK;
}

static inline bool dropout_keep(const dpt_node_t *n, const dpt_step_ctx_t *ctx, size_t row,
                                size_t unit)
{
    uint64_t key = dpt_hash3(ctx->seed ^ ((uint64_t)n->index << 48), ctx->epoch,
                             ((uint64_t)ctx->sample_ids[row] << 24) ^ unit);
    return dpt_u64_to_unit_float(key) >= n->a.p;
}

/* out (+)= in * mask * scale; used by both passes (backward applies it to dy). */
static void apply_mask(const dpt_node_t *n, const dpt_op_io_t *io, const float *in, float *out,
                       bool acc)
{
    const float scale = 1.0f / (1.0f - n->a.p);
    const size_t width = dpt_shape_size(n->out);
    for (size_t r = 0; r < io->rows; r++)
        for (size_t j = 0; j < width; j++) {
            size_t i = r * width + j;
            float v = dropout_keep(n, io->ctx, r, j) ? in[i] * scale : 0.0f;
            out[i] = acc ? out[i] + v : v;
        }
}

static bool is_identity(const dpt_node_t *n, const dpt_op_io_t *io)
{
    return !io->ctx->training || n->a.p == 0.0f;
}

static void dropout_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    if (is_identity(n, io))
        memcpy(io->y, io->x[0], io->rows * dpt_shape_size(n->out) * sizeof *io->y);
    else
        apply_mask(n, io, io->x[0], io->y, false);
}

static void dropout_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    if (!io->dx[0]) return;
    if (is_identity(n, io))
        dpt_store_grad(io->dx[0], io->dy, io->rows * dpt_shape_size(n->out), io->dx_acc[0]);
    else
        apply_mask(n, io, io->dy, io->dx[0], io->dx_acc[0]);
}

const dpt_op_t dpt_op_dropout = {.spec = {"dropout", dropout_keys},
                                 .parse = dropout_parse,
                                 .infer = dpt_op_infer_same,
                                 .forward = dropout_forward,
                                 .backward = dropout_backward};
