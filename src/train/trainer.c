/* Owns the training step and the epoch loop: the only OpenMP parallel region per step. */
#include "dptrain/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/checked.h"
#include "core/rng.h"
#include "kernels/gemm.h"
#include "nn/model_internal.h"
#include "parallel/reducer.h"
#include "parallel/replica.h"

struct dpt_trainer {
    const dpt_model_t *model;
    dpt_optimizer_t *opt;
    dpt_trainer_config_t cfg;
    size_t n_params;
    size_t max_shards;       /* ceil(batch / micro_batch) */
    float *params;
    float *grad_arena;       /* max_shards gradient buffers, parameter layout */
    float **grads;
    dpt_replica_t **replicas; /* one per thread */
    double *shard_loss;
    size_t *shard_correct;
    uint32_t *order;         /* epoch permutation, sized on first use */
    size_t order_len;
    uint64_t steps;
    size_t team_size;
};

dpt_trainer_config_t dpt_trainer_config_default(void)
{
    return (dpt_trainer_config_t){.threads = 0, .batch_size = 128, .micro_batch = 128, .seed = 1};
}

static dpt_status_t check_config(const dpt_trainer_config_t *c)
{
    if (c->batch_size < 1 || c->batch_size > (1u << 20))
        return dpt_error(DPT_ERR_INVALID_ARG, "batch size %zu outside [1, 1048576]",
                         c->batch_size);
    if (c->micro_batch < 1 || c->micro_batch > 65536)
        return dpt_error(DPT_ERR_INVALID_ARG, "micro-batch %zu outside [1, 65536]",
                         c->micro_batch);
    if (c->threads > 1024)
        return dpt_error(DPT_ERR_INVALID_ARG, "threads %zu outside [0, 1024]", c->threads);
    if ((c->batch_size + c->micro_batch - 1) / c->micro_batch > 4096)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "batch %zu / micro-batch %zu gives more than 4096 micro-shards",
                         c->batch_size, c->micro_batch);
    return DPT_OK;
}

static dpt_status_t alloc_buffers(dpt_trainer_t *t)
{
    size_t threads = t->cfg.threads, bytes;
    size_t rows = t->cfg.micro_batch < t->cfg.batch_size ? t->cfg.micro_batch
                                                         : t->cfg.batch_size;
    t->params = dpt_alloc_aligned(t->n_params * sizeof(float));
    if (!dpt_mul_size(t->max_shards, t->n_params * sizeof(float), &bytes))
        return dpt_error(DPT_ERR_LIMIT, "gradient buffers overflow size_t");
    t->grad_arena = dpt_alloc_aligned(bytes);
    t->grads = calloc(t->max_shards, sizeof *t->grads);
    t->replicas = calloc(threads, sizeof *t->replicas);
    t->shard_loss = calloc(t->max_shards, sizeof *t->shard_loss);
    t->shard_correct = calloc(t->max_shards, sizeof *t->shard_correct);
    if (!t->params || !t->grad_arena || !t->grads || !t->replicas || !t->shard_loss ||
        !t->shard_correct)
        return dpt_error(DPT_ERR_NOMEM, "out of memory for %zu gradient buffers of %zu floats",
                         t->max_shards, t->n_params);
    for (size_t m = 0; m < t->max_shards; m++) t->grads[m] = t->grad_arena + m * t->n_params;
    for (size_t i = 0; i < threads; i++) {
        dpt_status_t s = dpt_replica_create(t->model, rows, &t->replicas[i]);
        if (s != DPT_OK) return s;
    }
    return DPT_OK;
}

dpt_status_t dpt_trainer_create(const dpt_model_t *model, dpt_optimizer_t *opt,
                                const dpt_trainer_config_t *cfg, dpt_trainer_t **out)
{
    dpt_status_t s = check_config(cfg);
    if (s != DPT_OK) return s;
    /* BLIS must pick its kernel set before any worker calls it. */
    dpt_gemm_init();
    dpt_trainer_t *t = calloc(1, sizeof *t);
    if (!t) return dpt_error(DPT_ERR_NOMEM, "out of memory creating the trainer");
    t->model = model;
    t->opt = opt;
    t->cfg = *cfg;
    if (t->cfg.threads == 0) t->cfg.threads = (size_t)omp_get_num_procs();
    t->n_params = dpt_model_param_count(model);
    t->max_shards = (cfg->batch_size + cfg->micro_batch - 1) / cfg->micro_batch;
    s = alloc_buffers(t);
    if (s != DPT_OK) {
        dpt_trainer_free(t);
        return s;
    }
    dpt_model_init_params(model, t->params, cfg->seed);
    *out = t;
    return DPT_OK;
}

void dpt_trainer_free(dpt_trainer_t *t)
{
    if (!t) return;
    if (t->replicas)
        for (size_t i = 0; i < t->cfg.threads; i++) dpt_replica_free(t->replicas[i]);
    free(t->replicas);
    dpt_free_aligned(t->params);
    dpt_free_aligned(t->grad_arena);
    free(t->grads);
    free(t->shard_loss);
    free(t->shard_correct);
    free(t->order);
    free(t);
}

size_t dpt_trainer_threads(const dpt_trainer_t *t)
{
    return t->cfg.threads;
}
size_t dpt_trainer_team_size(const dpt_trainer_t *t)
{
    return t->team_size;
}
float *dpt_trainer_params(dpt_trainer_t *t)
{
    return t->params;
}
uint64_t dpt_trainer_step_count(const dpt_trainer_t *t)
{
    return t->steps;
}
void dpt_trainer_set_step_count(dpt_trainer_t *t, uint64_t steps)
{
    t->steps = steps;
}

void dpt_epoch_order(uint64_t seed, uint64_t epoch, uint32_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    dpt_rng_t r;
    dpt_rng_seed(&r, seed, 0x5400000000ULL + epoch);
    dpt_rng_shuffle_u32(&r, idx, n);
}

/* Parameter range [lo, hi) of thread tid out of nt, aligned to 16 floats (one cache line) so
 * no two threads write the same line. */
static void thread_range(size_t n, size_t tid, size_t nt, size_t *lo, size_t *hi)
{
    size_t lines = (n + 15) / 16;
    size_t per = lines / nt, extra = lines % nt;
    size_t first = tid * per + (tid < extra ? tid : extra);
    size_t count = per + (tid < extra);
    *lo = first * 16 < n ? first * 16 : n;
    *hi = (first + count) * 16 < n ? (first + count) * 16 : n;
}

/* One pass over this thread's parameter range: tree-sum the shard gradients chunk by chunk
 * and feed each chunk straight to the optimizer while it is still in cache. */
static void reduce_and_update(dpt_trainer_t *t, size_t shards, size_t tid, size_t nt,
                              const dpt_optim_step_t *st)
{
    size_t lo, hi;
    thread_range(t->n_params, tid, nt, &lo, &hi);
    for (size_t c = lo; c < hi; c += DPT_REDUCE_CHUNK) {
        size_t end = c + DPT_REDUCE_CHUNK < hi ? c + DPT_REDUCE_CHUNK : hi;
        dpt_reduce_tree(t->grads, shards, c, end);
        dpt_optimizer_update(t->opt, t->params, t->grads[0], c, end, st);
    }
}

typedef struct {
    double fb_seconds, update_seconds;
} step_timing_t;

/* One optimizer step on rows ids[0..rows). Returns the summed loss; *correct the hits. */
static double train_step(dpt_trainer_t *t, const dpt_dataset_t *ds, const uint32_t *ids,
                         size_t rows, uint64_t epoch, const dpt_optim_step_t *st,
                         size_t *correct, step_timing_t *timing)
{
    const size_t micro = t->cfg.micro_batch;
    const size_t shards = (rows + micro - 1) / micro;
    const float scale = 1.0f / (float)rows;
    const dpt_model_t *m = t->model;
    double t0 = omp_get_wtime(), t1 = t0;
#pragma omp parallel num_threads((int)t->cfg.threads)
    {
        const size_t tid = (size_t)omp_get_thread_num();
        const size_t nt = (size_t)omp_get_num_threads(); /* the team we actually got */
        dpt_replica_t *rep = t->replicas[tid];
        for (size_t s = tid; s < shards; s += nt) {
            size_t lo = s * micro, n = rows - lo < micro ? rows - lo : micro;
            dpt_step_ctx_t ctx = {
                .training = true, .seed = t->cfg.seed, .epoch = epoch, .sample_ids = ids + lo};
            t->shard_loss[s] = dpt_replica_train_shard(rep, m, t->params, ds, ids + lo, n, scale,
                                                       t->grads[s], &ctx, &t->shard_correct[s]);
        }
#pragma omp barrier
        if (tid == 0) {
            t->team_size = nt;
            t1 = omp_get_wtime();
        }
        reduce_and_update(t, shards, tid, nt, st);
    }
    double t2 = omp_get_wtime();
    timing->fb_seconds += t1 - t0;
    timing->update_seconds += t2 - t1;
    double loss = 0;
    size_t hits = 0;
    for (size_t s = 0; s < shards; s++) loss += t->shard_loss[s], hits += t->shard_correct[s];
    *correct = hits;
    return loss;
}

static dpt_status_t ensure_order(dpt_trainer_t *t, size_t n)
{
    if (t->order_len == n) return DPT_OK;
    free(t->order);
    t->order = malloc(n * sizeof *t->order);
    t->order_len = t->order ? n : 0;
    return t->order ? DPT_OK : dpt_error(DPT_ERR_NOMEM, "out of memory for the epoch order");
}

static dpt_status_t check_dataset(const dpt_trainer_t *t, const dpt_dataset_t *ds)
{
    if (dpt_dataset_features(ds) != dpt_model_in_features(t->model) ||
        dpt_dataset_classes(ds) > dpt_model_classes(t->model))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "dataset (%zu features, %zu classes) does not fit the model (%zu "
                         "inputs, %zu classes)",
                         dpt_dataset_features(ds), dpt_dataset_classes(ds),
                         dpt_model_in_features(t->model), dpt_model_classes(t->model));
    if (dpt_dataset_count(ds) == 0) return dpt_error(DPT_ERR_INVALID_ARG, "dataset is empty");
    return DPT_OK;
}

/* Runs batches [0, n_batches) of the current order; shared by epochs and step runs. */
static void run_batches(dpt_trainer_t *t, const dpt_dataset_t *ds, size_t n_rows,
                        size_t n_batches, uint64_t epoch, dpt_lr_fn lr_fn, void *lr_user,
                        dpt_progress_fn progress, void *progress_user, double *loss_out,
                        dpt_epoch_stats_t *st)
{
    const size_t batch = t->cfg.batch_size;
    step_timing_t timing = {0, 0};
    dpt_replica_take_assembly_seconds(t->replicas[0]);
    double loss_sum = 0, start = omp_get_wtime();
    size_t hits_sum = 0, done = 0;
    for (size_t b = 0; b < n_batches; b++) {
        size_t lo = (b * batch) % n_rows;
        size_t rows = n_rows - lo < batch ? n_rows - lo : batch;
        double mom = -1.0;
        double lr = lr_fn(lr_user, t->steps, &mom);
        dpt_optim_step_t ost = {.lr = lr, .momentum = mom, .t = t->steps + 1};
        size_t hits;
        double loss = train_step(t, ds, t->order + lo, rows, epoch, &ost, &hits, &timing);
        t->steps++;
        loss_sum += loss;
        hits_sum += hits;
        done += rows;
        st->lr_last = lr;
        st->momentum_last = mom >= 0 ? mom : dpt_optimizer_momentum(t->opt);
        if (loss_out) loss_out[b] = loss / (double)rows;
        if (progress) progress(progress_user, b + 1, n_batches, done, loss_sum / (double)done);
    }
    st->seconds = omp_get_wtime() - start;
    st->steps = n_batches;
    st->samples = done;
    st->loss = done ? loss_sum / (double)done : NAN;
    st->accuracy = done ? (double)hits_sum / (double)done : NAN;
    st->samples_per_second = st->seconds > 0 ? (double)done / st->seconds : 0;
    st->forward_backward_seconds = timing.fb_seconds;
    st->update_seconds = timing.update_seconds;
    st->assembly_seconds = dpt_replica_take_assembly_seconds(t->replicas[0]);
}

dpt_status_t dpt_trainer_train_epoch(dpt_trainer_t *t, const dpt_dataset_t *ds, uint64_t epoch,
                                     dpt_lr_fn lr_fn, void *lr_user, dpt_progress_fn progress,
                                     void *progress_user, dpt_epoch_stats_t *stats)
{
    dpt_status_t s = check_dataset(t, ds);
    if (s == DPT_OK) s = ensure_order(t, dpt_dataset_count(ds));
    if (s != DPT_OK) return s;
    size_t n = dpt_dataset_count(ds);
    dpt_epoch_order(t->cfg.seed, epoch, t->order, n);
    size_t n_batches = (n + t->cfg.batch_size - 1) / t->cfg.batch_size;
    memset(stats, 0, sizeof *stats);
    run_batches(t, ds, n, n_batches, epoch, lr_fn, lr_user, progress, progress_user, NULL,
                stats);
    return DPT_OK;
}

dpt_status_t dpt_trainer_train_steps(dpt_trainer_t *t, const dpt_dataset_t *ds, size_t steps,
                                     dpt_lr_fn lr_fn, void *lr_user, double *loss_out,
                                     dpt_epoch_stats_t *stats)
{
    dpt_status_t s = check_dataset(t, ds);
    if (s == DPT_OK) s = ensure_order(t, dpt_dataset_count(ds));
    if (s != DPT_OK) return s;
    size_t n = dpt_dataset_count(ds);
    dpt_epoch_order(t->cfg.seed, 0, t->order, n);
    /* Whole batches only, wrapping around the order, so every step has the same shape. */
    size_t usable = n - n % t->cfg.batch_size;
    if (usable == 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "dataset has fewer samples (%zu) than a batch (%zu)",
                         n, t->cfg.batch_size);
    memset(stats, 0, sizeof *stats);
    run_batches(t, ds, usable, steps, 0, lr_fn, lr_user, NULL, NULL, loss_out, stats);
    return DPT_OK;
}

dpt_status_t dpt_trainer_evaluate(dpt_trainer_t *t, const dpt_dataset_t *ds, double *loss,
                                  double *accuracy, uint64_t *confusion)
{
    dpt_status_t s = check_dataset(t, ds);
    if (s != DPT_OK) return s;
    const size_t n = dpt_dataset_count(ds), rows = t->cfg.micro_batch < t->cfg.batch_size
                                                        ? t->cfg.micro_batch
                                                        : t->cfg.batch_size;
    const size_t chunks = (n + rows - 1) / rows, classes = dpt_model_classes(t->model);
    double *chunk_loss = calloc(chunks, sizeof *chunk_loss);
    size_t *chunk_hits = calloc(chunks, sizeof *chunk_hits);
    uint32_t *ids = malloc(n * sizeof *ids);
    if (!chunk_loss || !chunk_hits || !ids) {
        free(chunk_loss), free(chunk_hits), free(ids);
        return dpt_error(DPT_ERR_NOMEM, "out of memory evaluating %zu samples", n);
    }
    for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)i;
    if (confusion) memset(confusion, 0, classes * classes * sizeof *confusion);
#pragma omp parallel num_threads((int)t->cfg.threads)
    {
        const size_t tid = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        dpt_replica_t *rep = t->replicas[tid];
        for (size_t c = tid; c < chunks; c += nt) {
            size_t lo = c * rows, cnt = n - lo < rows ? n - lo : rows;
            chunk_loss[c] = dpt_replica_eval_shard(rep, t->model, t->params, ds, ids + lo, cnt,
                                                   NULL, &chunk_hits[c]);
            if (!confusion) continue;
            const float *z = dpt_replica_logits(rep, t->model);
            const int32_t *y = dpt_replica_labels(rep);
            for (size_t r = 0; r < cnt; r++) {
                size_t arg = 0;
                for (size_t j = 1; j < classes; j++)
                    if (z[r * classes + j] > z[r * classes + arg]) arg = j;
#pragma omp atomic
                confusion[(size_t)y[r] * classes + arg]++;
            }
        }
    }
    double total = 0;
    size_t hits = 0;
    for (size_t c = 0; c < chunks; c++) total += chunk_loss[c], hits += chunk_hits[c];
    *loss = total / (double)n;
    *accuracy = (double)hits / (double)n;
    free(chunk_loss), free(chunk_hits), free(ids);
    return DPT_OK;
}
