/* Owns a worker replica: the model's memory plan for max_rows (input rows, every node's
 * output and gradient, workspace) and the labels of its rows. */
#include "parallel/replica.h"

#include <omp.h>
#include <stdlib.h>

#include "nn/softmax_xent.h"

struct dpt_replica {
    size_t max_rows;
    dpt_plan_t *plan; /* the model's memory plan: input rows, activations, gradients */
    int32_t *labels;
    double assembly_seconds; /* time spent gathering rows, for the per-phase split */
};

dpt_status_t dpt_replica_create(const dpt_model_t *m, size_t max_rows, dpt_replica_t **out)
{
    dpt_replica_t *r = calloc(1, sizeof *r);
    if (!r) return dpt_error(DPT_ERR_NOMEM, "out of memory creating a replica");
    r->max_rows = max_rows;
    dpt_status_t s = dpt_plan_create(m, max_rows, false, &r->plan);
    if (s != DPT_OK) {
        free(r);
        return s;
    }
    r->labels = calloc(max_rows, sizeof *r->labels);
    if (!r->labels) {
        dpt_replica_free(r);
        return dpt_error(DPT_ERR_NOMEM, "out of memory for replica labels");
    }
    *out = r;
    return DPT_OK;
}

void dpt_replica_free(dpt_replica_t *r)
{
    if (!r) return;
    dpt_plan_free(r->plan);
    free(r->labels);
    free(r);
}

double dpt_replica_train_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                               const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                               float scale, float *grads, float *stats, const dpt_step_ctx_t *ctx,
                               size_t *correct)
{
    double t0 = omp_get_wtime();
    dpt_dataset_gather(ds, ids, rows, dpt_plan_input(r->plan), r->labels);
    r->assembly_seconds += omp_get_wtime() - t0;
    dpt_plan_forward(r->plan, params, rows, ctx, stats);
    double loss = dpt_softmax_xent(dpt_plan_logits(r->plan), r->labels, rows, dpt_model_classes(m),
                                   scale, dpt_plan_dlogits(r->plan), NULL, correct);
    dpt_plan_backward(r->plan, params, grads, rows, ctx, stats);
    return loss;
}

double dpt_replica_eval_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                              const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                              float *probs, size_t *correct)
{
    dpt_step_ctx_t ctx = {.training = false, .sample_ids = ids};
    dpt_dataset_gather(ds, ids, rows, dpt_plan_input(r->plan), r->labels);
    dpt_plan_forward(r->plan, params, rows, &ctx, NULL);
    return dpt_softmax_xent(dpt_plan_logits(r->plan), r->labels, rows, dpt_model_classes(m), 0.0f,
                            NULL, probs, correct);
}

const float *dpt_replica_logits(const dpt_replica_t *r, const dpt_model_t *m)
{
    return dpt_plan_logits(r->plan);
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

void dpt_replica_profile(dpt_replica_t *r, double *fwd, double *bwd)
{
    dpt_plan_profile(r->plan, fwd, bwd);
}
