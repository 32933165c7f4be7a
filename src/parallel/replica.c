/* Owns a worker replica: the model's memory plan for max_rows (input rows, every node's
 * output and gradient, workspace) and the labels of its rows. */
#include "parallel/replica.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/softmax_xent.h"

struct dpt_replica {
    size_t max_rows;
    dpt_plan_t *plan; /* the model's memory plan: input rows, activations, gradients */
    int32_t *labels;
    double assembly_seconds; /* time spent gathering rows, for the per-phase split */
    /* Augmentation of training shards: its scratch, and the partners' labels and own-label
     * weights of a mixing op. */
    const dpt_augment_t *aug;
    float *aug_scratch, *lam;
    int32_t *labels2;
    /* Test-time augmentation of eval shards: its scratch, and the averaged softmax. */
    const dpt_tta_t *tta;
    float *tta_scratch, *tta_probs, *view_probs;
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
    free(r->aug_scratch), free(r->lam), free(r->labels2);
    free(r->tta_scratch), free(r->tta_probs), free(r->view_probs);
    free(r);
}

dpt_status_t dpt_replica_set_augment(dpt_replica_t *r, const dpt_augment_t *a)
{
    free(r->aug_scratch), free(r->lam), free(r->labels2);
    r->aug_scratch = r->lam = NULL;
    r->labels2 = NULL;
    r->aug = a;
    if (!a) return DPT_OK;
    r->aug_scratch = malloc(dpt_augment_scratch_floats(a) * sizeof *r->aug_scratch);
    r->lam = malloc(r->max_rows * sizeof *r->lam);
    r->labels2 = malloc(r->max_rows * sizeof *r->labels2);
    if (!r->aug_scratch || !r->lam || !r->labels2)
        return dpt_error(DPT_ERR_NOMEM, "out of memory for augmentation buffers");
    return DPT_OK;
}

dpt_status_t dpt_replica_set_tta(dpt_replica_t *r, const dpt_model_t *m, const dpt_tta_t *t)
{
    free(r->tta_scratch), free(r->tta_probs), free(r->view_probs);
    r->tta_scratch = r->tta_probs = r->view_probs = NULL;
    r->tta = t;
    if (!t) return DPT_OK;
    size_t n = r->max_rows * dpt_model_classes(m);
    r->tta_scratch = malloc(dpt_tta_scratch_floats(t) * sizeof *r->tta_scratch);
    r->tta_probs = malloc(n * sizeof *r->tta_probs);
    r->view_probs = malloc(n * sizeof *r->view_probs);
    if (!r->tta_scratch || !r->tta_probs || !r->view_probs)
        return dpt_error(DPT_ERR_NOMEM, "out of memory for test-time augmentation buffers");
    return DPT_OK;
}

double dpt_replica_train_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                               const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                               float scale, float *grads, float *stats, const dpt_step_ctx_t *ctx,
                               size_t *correct)
{
    double t0 = omp_get_wtime();
    /* Augmentation is keyed by (seed, epoch, sample index): the same rows whichever thread
     * assembles them. */
    const int mixes = r->aug && dpt_augment_mixes_labels(r->aug);
    if (r->aug)
        dpt_augment_gather(r->aug, ds, ids, rows, ctx->seed, ctx->epoch, dpt_plan_input(r->plan),
                           r->labels, mixes ? r->labels2 : NULL, mixes ? r->lam : NULL,
                           r->aug_scratch);
    else
        dpt_dataset_gather(ds, ids, rows, dpt_plan_input(r->plan), r->labels);
    r->assembly_seconds += omp_get_wtime() - t0;
    dpt_plan_forward(r->plan, params, rows, ctx, stats);
    double loss = dpt_softmax_xent_soft(
        dpt_plan_logits(r->plan), r->labels, mixes ? r->labels2 : NULL, r->lam, rows,
        dpt_model_classes(m), scale, dpt_plan_dlogits(r->plan), NULL, correct);
    dpt_plan_backward(r->plan, params, grads, rows, ctx, stats);
    return loss;
}

/* Test-time augmentation: the softmax of every view, added in view order and averaged; the
 * loss is the cross-entropy of the average, a hit its argmax. */
static double eval_tta(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                       const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                       const dpt_step_ctx_t *ctx, float *probs, size_t *correct)
{
    const size_t classes = dpt_model_classes(m), views = dpt_tta_views(r->tta), n = rows * classes;
    float *acc = r->tta_probs;
    memset(acc, 0, n * sizeof *acc);
    for (size_t v = 0; v < views; v++) {
        dpt_tta_gather(r->tta, v, ds, ids, rows, dpt_plan_input(r->plan), r->labels,
                       r->tta_scratch);
        dpt_plan_forward(r->plan, params, rows, ctx, NULL);
        dpt_softmax_xent(dpt_plan_logits(r->plan), r->labels, rows, classes, 0.0f, NULL,
                         r->view_probs, NULL);
        for (size_t j = 0; j < n; j++)
            acc[j] += r->view_probs[j];
    }
    const float inv = 1.0f / (float)views;
    double loss = 0;
    size_t hits = 0;
    for (size_t i = 0; i < rows; i++) {
        float *p = acc + i * classes;
        size_t arg = 0;
        for (size_t j = 0; j < classes; j++) {
            p[j] *= inv;
            if (p[j] > p[arg]) arg = j;
        }
        hits += arg == (size_t)r->labels[i];
        /* An averaged probability that underflowed to 0: clamp, log(0) is infinite. */
        double py = p[r->labels[i]];
        loss -= log(py > 1.17549435e-38 ? py : 1.17549435e-38);
    }
    if (probs) memcpy(probs, acc, n * sizeof *probs);
    if (correct) *correct = hits;
    return loss;
}

double dpt_replica_eval_shard(dpt_replica_t *r, const dpt_model_t *m, const float *params,
                              const dpt_dataset_t *ds, const uint32_t *ids, size_t rows,
                              float *probs, size_t *correct)
{
    dpt_step_ctx_t ctx = {.training = false, .sample_ids = ids};
    if (r->tta) return eval_tta(r, m, params, ds, ids, rows, &ctx, probs, correct);
    dpt_dataset_gather(ds, ids, rows, dpt_plan_input(r->plan), r->labels);
    dpt_plan_forward(r->plan, params, rows, &ctx, NULL);
    return dpt_softmax_xent(dpt_plan_logits(r->plan), r->labels, rows, dpt_model_classes(m), 0.0f,
                            NULL, probs, correct);
}

const float *dpt_replica_scores(const dpt_replica_t *r, const dpt_model_t *m)
{
    return r->tta ? r->tta_probs : dpt_plan_logits(r->plan);
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
