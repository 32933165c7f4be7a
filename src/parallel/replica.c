/* Owns a worker replica: one aligned arena holding the input rows, every layer's output and
 * two gradient scratch buffers, all sized for max_rows. */
#include "parallel/replica.h"

#include <omp.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/checked.h"
#include "nn/softmax_xent.h"

struct dpt_replica {
    size_t max_rows;
    float *arena;
    float *acts[DPT_MAX_LAYERS + 1]; /* acts[0] = input rows */
    float *d0, *d1;                  /* rows x max_width each */
    int32_t *labels;
    double assembly_seconds; /* time spent gathering rows, for the per-phase split */
};

dpt_status_t dpt_replica_create(const dpt_model_t *m, size_t max_rows, dpt_replica_t **out)
{
    dpt_replica_t *r = calloc(1, sizeof *r);
    if (!r) return dpt_error(DPT_ERR_NOMEM, "out of memory creating a replica");
    r->max_rows = max_rows;
    size_t total = dpt_round_floats(max_rows * m->in_features);
    for (size_t i = 0; i < m->n_layers; i++)
        total += dpt_round_floats(max_rows * m->layers[i].out);
    total += 2 * dpt_round_floats(max_rows * m->max_width);
    total += dpt_round_floats(max_rows); /* labels, int32 */
    size_t bytes;
    if (!dpt_mul_size(total, sizeof(float), &bytes) || !(r->arena = dpt_alloc_aligned(bytes))) {
        free(r);
        return dpt_error(DPT_ERR_NOMEM, "out of memory for replica activations (%zu floats)",
                         total);
    }
    float *p = r->arena;
    r->acts[0] = p;
    p += dpt_round_floats(max_rows * m->in_features);
    for (size_t i = 0; i < m->n_layers; i++) {
        r->acts[i + 1] = p;
        p += dpt_round_floats(max_rows * m->layers[i].out);
    }
    r->d0 = p;
    p += dpt_round_floats(max_rows * m->max_width);
    r->d1 = p;
    p += dpt_round_floats(max_rows * m->max_width);
    r->labels = (int32_t *)p;
    *out = r;
    return DPT_OK;
}

void dpt_replica_free(dpt_replica_t *r)
{
    if (!r) return;
    dpt_free_aligned(r->arena);
    free(r);
}

double dpt_replica_train_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                               const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                               float scale, float *grads, const dpt_step_ctx_t *ctx,
                               size_t *correct)
{
    double t0 = omp_get_wtime();
    dpt_dataset_gather(ds, ids, rows, r->acts[0], r->labels);
    r->assembly_seconds += omp_get_wtime() - t0;
    dpt_model_forward(m, params, r->acts, rows, ctx);
    double loss = dpt_softmax_xent(r->acts[m->n_layers], r->labels, rows, m->classes, scale, r->d0,
                                   NULL, correct);
    dpt_model_backward(m, params, r->acts, r->d0, r->d1, grads, rows, ctx);
    return loss;
}

double dpt_replica_eval_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                              const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                              float *probs, size_t *correct)
{
    dpt_step_ctx_t ctx = {.training = false, .sample_ids = ids};
    dpt_dataset_gather(ds, ids, rows, r->acts[0], r->labels);
    dpt_model_forward(m, params, r->acts, rows, &ctx);
    return dpt_softmax_xent(r->acts[m->n_layers], r->labels, rows, m->classes, 0.0f, NULL, probs,
                            correct);
}

const float *dpt_replica_logits(const dpt_replica_t *r, const dpt_model_t *m)
{
    return r->acts[m->n_layers];
}

double dpt_replica_take_assembly_seconds(dpt_replica_t *r)
{
    double s = r->assembly_seconds;
    r->assembly_seconds = 0;
    return s;
}

const int32_t *dpt_replica_labels(const dpt_replica_t *r)
{
    return r->labels;
}
