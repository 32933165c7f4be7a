/* Owns inference from a checkpoint: rebuilding the model, restoring parameters and the
 * normalisation, and the forward-only parallel loop behind eval and predict. */
#include "dptrain/inference.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "dptrain/checkpoint.h"
#include "kernels/gemm.h"
#include "parallel/replica.h"
#include "train/forward_all.h"

#define INFER_ROWS 256

struct dpt_inference {
    dpt_model_t *model;
    float *params;
    void *norm;
    size_t norm_bytes;
    size_t threads;
    dpt_replica_t **replicas;
    dpt_tta_t *tta; /* NULL: none */
};

static dpt_status_t load_sections(dpt_inference_t *inf, const char *path,
                                  const dpt_checkpoint_t *ck)
{
    /* The model reads its own section; the parameters and the normaliser follow it. */
    dpt_status_t s = dpt_model_checkpoint_load(ck, path, &inf->model);
    if (s != DPT_OK) return s;
    size_t n, want = dpt_model_param_count(inf->model) * sizeof(float);
    const void *params = dpt_checkpoint_section(ck, "params", &n);
    if (!params || n != want)
        return dpt_error(DPT_ERR_FORMAT, "%s: 'params' section of %zu bytes, the model needs %zu",
                         path, params ? n : 0, want);
    const void *norm = dpt_checkpoint_section(ck, "normalization", &inf->norm_bytes);
    if (!norm) return dpt_error(DPT_ERR_FORMAT, "%s: no 'normalization' section", path);
    inf->params = dpt_alloc_aligned(want);
    inf->norm = malloc(inf->norm_bytes ? inf->norm_bytes : 1);
    if (!inf->params || !inf->norm) return dpt_error(DPT_ERR_NOMEM, "out of memory");
    memcpy(inf->params, params, want);
    memcpy(inf->norm, norm, inf->norm_bytes);
    return DPT_OK;
}

dpt_status_t dpt_inference_load(const char *checkpoint, size_t threads, dpt_inference_t **out)
{
    dpt_inference_t *inf = calloc(1, sizeof *inf);
    if (!inf) return dpt_error(DPT_ERR_NOMEM, "out of memory");
    inf->threads = threads ? threads : (size_t)omp_get_num_procs();
    dpt_checkpoint_t *ck = NULL;
    dpt_status_t s = dpt_checkpoint_read(checkpoint, &ck);
    if (s == DPT_OK) s = load_sections(inf, checkpoint, ck);
    dpt_checkpoint_free(ck);
    /* The kernel set training chose for this model (the same bits). */
    if (s == DPT_OK) dpt_gemm_init_narrow(dpt_model_narrow_gemm_share(inf->model));
    if (s == DPT_OK && !(inf->replicas = calloc(inf->threads, sizeof *inf->replicas)))
        s = dpt_error(DPT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == DPT_OK && i < inf->threads; i++)
        s = dpt_replica_create(inf->model, INFER_ROWS, &inf->replicas[i]);
    if (s != DPT_OK) {
        dpt_inference_free(inf);
        return s;
    }
    *out = inf;
    return DPT_OK;
}

void dpt_inference_free(dpt_inference_t *inf)
{
    if (!inf) return;
    if (inf->replicas)
        for (size_t i = 0; i < inf->threads; i++)
            dpt_replica_free(inf->replicas[i]);
    free(inf->replicas);
    dpt_tta_free(inf->tta);
    dpt_model_free(inf->model);
    dpt_free_aligned(inf->params);
    free(inf->norm);
    free(inf);
}

const dpt_model_t *dpt_inference_model(const dpt_inference_t *inf)
{
    return inf->model;
}

dpt_status_t dpt_inference_set_tta(dpt_inference_t *inf, const char *spec)
{
    dpt_tta_t *t = NULL;
    if (spec && *spec && strcmp(spec, "none") != 0) {
        dpt_shape_t in = dpt_model_input_shape(inf->model);
        dpt_status_t s = dpt_tta_create(spec, in.c, in.h, in.w, &t);
        if (s != DPT_OK) return s;
    }
    for (size_t i = 0; i < inf->threads; i++) {
        dpt_status_t s = dpt_replica_set_tta(inf->replicas[i], inf->model, t);
        if (s != DPT_OK) {
            for (size_t j = 0; j <= i; j++)
                dpt_replica_set_tta(inf->replicas[j], inf->model, NULL);
            dpt_tta_free(t);
            return s;
        }
    }
    dpt_tta_free(inf->tta);
    inf->tta = t;
    return DPT_OK;
}

dpt_status_t dpt_inference_prepare(const dpt_inference_t *inf, dpt_dataset_t *ds)
{
    size_t f = dpt_dataset_features(ds), c = dpt_dataset_classes(ds);
    if (inf->tta && !dpt_dataset_is_image(ds))
        return dpt_error(DPT_ERR_INVALID_ARG, "--tta needs image data; %s is a table",
                         dpt_dataset_describe(ds));
    if (f != dpt_model_in_features(inf->model) || c > dpt_model_classes(inf->model))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "data (%zu features, %zu classes) does not fit the checkpoint's model "
                         "(%zu inputs, %zu classes)",
                         f, c, dpt_model_in_features(inf->model), dpt_model_classes(inf->model));
    return dpt_dataset_normalization_load(ds, inf->norm, inf->norm_bytes);
}

dpt_status_t dpt_inference_run(dpt_inference_t *inf, const dpt_dataset_t *ds, double *loss,
                               double *accuracy, uint64_t *confusion, float *probs)
{
    return dpt_forward_all(inf->replicas, inf->threads, inf->model, inf->params, ds, INFER_ROWS,
                           loss, accuracy, confusion, probs);
}
