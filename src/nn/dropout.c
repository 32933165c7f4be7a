/* Owns inverted dropout: in training y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) drawn
 * from a hash of (seed, epoch, sample index, layer, unit), so a sample gets the same mask
 * whichever thread or micro-shard processes it. At evaluation y = x. Shapes [rows x in]. */
#include <string.h>

#include "core/rng.h"
#include "nn/layer.h"

static inline bool dropout_keep(const dpt_layer_t *l, const dpt_step_ctx_t *ctx, size_t row,
                                size_t unit)
{
    uint64_t key = dpt_hash3(ctx->seed ^ ((uint64_t)l->index << 48), ctx->epoch,
                             ((uint64_t)ctx->sample_ids[row] << 24) ^ unit);
    return dpt_u64_to_unit_float(key) >= l->p;
}

/* Writes y = x * mask * scale; used by both passes (backward applies it to dy). */
static void apply_mask(const dpt_layer_t *l, const float *in, float *out, size_t rows,
                       const dpt_step_ctx_t *ctx)
{
    const float scale = 1.0f / (1.0f - l->p);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < l->in; j++) {
            size_t i = r * l->in + j;
            out[i] = dropout_keep(l, ctx, r, j) ? in[i] * scale : 0.0f;
        }
}

static void dropout_forward(const dpt_layer_t *l, const float *params, const float *x, float *y,
                            size_t rows, const dpt_step_ctx_t *ctx)
{
    if (!ctx->training || l->p == 0.0f) {
        memcpy(y, x, rows * l->in * sizeof *y);
        return;
    }
    apply_mask(l, x, y, rows, ctx);
}

static void dropout_backward(const dpt_layer_t *l, const float *params, const float *x,
                             const float *y, const float *dy, float *dx, float *grads, size_t rows,
                             const dpt_step_ctx_t *ctx)
{
    if (!ctx->training || l->p == 0.0f) {
        memcpy(dx, dy, rows * l->in * sizeof *dx);
        return;
    }
    apply_mask(l, dy, dx, rows, ctx);
}

const dpt_layer_ops_t dpt_dropout_ops = {"dropout", dropout_forward, dropout_backward};
