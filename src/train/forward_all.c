/* Owns the forward-only pass over a dataset (evaluation and prediction). */
#include "train/forward_all.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/world.h"

/* Adds this chunk's (true, predicted) pairs to the confusion matrix. */
static void count_confusion(const dpt_replica_t *rep, const dpt_model_t *m, size_t cnt,
                            size_t classes, uint64_t *confusion)
{
    const float *z = dpt_replica_scores(rep, m);
    const int32_t *y = dpt_replica_labels(rep);
    for (size_t r = 0; r < cnt; r++) {
        size_t arg = 0;
        for (size_t j = 1; j < classes; j++)
            if (z[r * classes + j] > z[r * classes + arg]) arg = j;
#pragma omp atomic
        confusion[(size_t)y[r] * classes + arg]++;
    }
}

dpt_status_t dpt_forward_all(dpt_replica_t *const *replicas, size_t threads, const dpt_model_t *m,
                             const float *params, const dpt_dataset_t *ds, size_t rows,
                             double *loss, double *accuracy, uint64_t *confusion, float *probs)
{
    const size_t n = dpt_dataset_count(ds), classes = dpt_model_classes(m);
    if (n == 0) return dpt_error(DPT_ERR_INVALID_ARG, "no samples to run the model on");
    const size_t chunks = (n + rows - 1) / rows;
    double *chunk_loss = calloc(chunks, sizeof *chunk_loss);
    size_t *chunk_hits = calloc(chunks, sizeof *chunk_hits);
    uint32_t *ids = malloc(n * sizeof *ids);
    if (!chunk_loss || !chunk_hits || !ids) {
        free(chunk_loss), free(chunk_hits), free(ids);
        return dpt_error(DPT_ERR_NOMEM, "out of memory for a pass over %zu samples", n);
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = (uint32_t)i;
    if (confusion) memset(confusion, 0, classes * classes * sizeof *confusion);
    /* Across processes (not for probabilities, which stay in one process): each rank runs a
     * contiguous block of the chunks, then every rank gets every chunk's sums and adds them
     * in chunk order, as one process does. */
    const size_t ranks = probs ? 1 : dpt_world_size(), rank = ranks > 1 ? dpt_world_rank() : 0;
    size_t bounds[DPT_WORLD_MAX_RANKS + 1];
    dpt_world_shard_bounds(chunks, ranks, bounds);
    const size_t c_lo = bounds[rank], c_hi = bounds[rank + 1];
#pragma omp parallel num_threads((int)threads)
    {
        const size_t tid = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        dpt_replica_t *rep = replicas[tid];
        for (size_t c = c_lo + tid; c < c_hi; c += nt) {
            size_t lo = c * rows, cnt = n - lo < rows ? n - lo : rows;
            chunk_loss[c] =
                dpt_replica_eval_shard(rep, m, params, ds, ids + lo, cnt,
                                       probs ? probs + lo * classes : NULL, &chunk_hits[c]);
            if (confusion) count_confusion(rep, m, cnt, classes, confusion);
        }
    }
    dpt_status_t s = DPT_OK;
    if (ranks > 1) {
        s = dpt_world_allgather_blocks(chunk_loss, sizeof *chunk_loss, bounds);
        if (s == DPT_OK) s = dpt_world_allgather_blocks(chunk_hits, sizeof *chunk_hits, bounds);
        if (s == DPT_OK && confusion) s = dpt_world_sum_u64(confusion, classes * classes);
    }
    double total = 0;
    size_t hits = 0;
    for (size_t c = 0; c < chunks; c++)
        total += chunk_loss[c], hits += chunk_hits[c];
    if (loss) *loss = total / (double)n;
    if (accuracy) *accuracy = (double)hits / (double)n;
    free(chunk_loss), free(chunk_hits), free(ids);
    return s;
}
