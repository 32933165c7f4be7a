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
#include "nn/plan.h"
#include "parallel/exchange.h"
#include "parallel/reducer.h"
#include "parallel/replica.h"
#include "parallel/world.h"
#include "train/forward_all.h"

struct dpt_trainer {
    const dpt_model_t *model;
    dpt_optimizer_t *opt;
    dpt_trainer_config_t cfg;
    size_t n_params;         /* trainable floats: gradient buffers, reduction and update */
    size_t n_all;            /* the whole parameter buffer (trainable, then state) */
    size_t n_stats;          /* floats of one shard's batch statistics (0: none) */
    float *stats_arena;      /* max_shards statistics buffers, folded in shard order */
    float **shard_stats_ptr; /* max_shards: the buffers, for the fold */
    size_t *shard_rows;      /* max_shards: rows of each shard of the step */
    size_t max_shards;       /* ceil(batch / micro_batch) */
    float *params;
    float *grad_arena; /* max_shards gradient buffers, parameter layout */
    float **grads;
    dpt_replica_t **replicas; /* one per thread */
    double *shard_loss;
    size_t *shard_correct;
    uint32_t *order; /* epoch permutation, sized on first use */
    size_t order_len;
    uint64_t steps;
    size_t team_size;
    dpt_step_fn step_hook; /* NULL: the default path, one untaken branch per step */
    void *step_hook_user;
    dpt_epoch_partial_t partial; /* the epoch in progress (read by the step hook) */
    dpt_epoch_partial_t start;   /* where the next epoch starts; batches 0 = its beginning */
    /* The two-phase path (clipping, or an optimizer that needs whole-tensor norms): fixed
     * blocks of at most DPT_NORM_BLOCK floats inside one tensor (or one padding gap,
     * tensor NO_TENSOR), so each partial sum covers the same floats whatever the thread
     * count, and the partials are combined in block order. */
    int two_phase;
    size_t n_blocks, n_tensors;
    size_t *block_lo, *block_tensor;        /* block b is [block_lo[b], block_lo[b + 1]) */
    double *block_g, *block_w, *block_d;    /* per-block sums of squares */
    double *tensor_g, *tensor_w, *tensor_d; /* per-tensor sums, combined in block order */
    double clip_scale, grad_norm;           /* of the current step */
    double *prof;                           /* threads x 2 x nodes seconds, when profiling */
    /* Across processes (src/parallel/world.h): this rank, the ranks, the step's shard blocks
     * (ranks + 1 bounds) and the exchange's parameter chunks (ranks + 1 bounds). */
    size_t rank, ranks;
    size_t *shard_bounds, *chunk_bounds;
    dpt_status_t world_status; /* the first failed exchange (MPI errors are fatal anyway) */
    /* The pipelined exchange (DPT_EXCHANGE=overlap); NULL: one rank, or the exchange as a
     * phase of its own between the backward pass and the update (phased, the default). */
    dpt_exchange_t *exchange;
};

#define DPT_NORM_BLOCK 4096
#define NO_TENSOR ((size_t)-1)

dpt_trainer_config_t dpt_trainer_config_default(void)
{
    return (dpt_trainer_config_t){
        .threads = 0, .batch_size = 128, .micro_batch = 0, .seed = 1, .clip_grad_norm = 0};
}

/* Per-sample activations above which a model counts as an image network for the auto
 * micro-batch (the default MLP has 394 floats; the small Fashion-MNIST CNN 100k). */
#define DPT_IMAGE_ACT_FLOATS 16384

static size_t resolve_with_floor(size_t batch_size, size_t micro_batch, size_t floor)
{
    if (micro_batch) return micro_batch;
    /* Past 16 shards the reduction grows, so shards widen. */
    size_t wide = (batch_size + 15) / 16;
    return wide > floor ? wide : floor;
}

size_t dpt_micro_batch_resolve(size_t batch_size, size_t micro_batch)
{
    /* 64-row shards cost no GEMM speed on one thread (docs/performance.md) and give two
     * threads work at batch 128. */
    return resolve_with_floor(batch_size, micro_batch, 64);
}

size_t dpt_micro_batch_resolve_for(const dpt_model_t *m, size_t batch_size, size_t micro_batch)
{
    /* An image network's convolutions lower a block of samples at a time whatever the shard
     * size, while its activations (100 kB+ a sample) stream through memory once per op:
     * 16-row shards keep them in cache, 1.2x the speed of 64-row ones for the small CNN
     * (docs/performance.md). */
    size_t act = 0;
    for (size_t i = 0; i < dpt_model_node_count(m); i++) {
        dpt_node_info_t info;
        dpt_model_node_info(m, i, 1, &info);
        act += info.out.c * info.out.h * info.out.w;
    }
    return resolve_with_floor(batch_size, micro_batch, act > DPT_IMAGE_ACT_FLOATS ? 16 : 64);
}

static dpt_status_t check_config(const dpt_trainer_config_t *c)
{
    if (c->batch_size < 1 || c->batch_size > (1u << 20))
        return dpt_error(DPT_ERR_INVALID_ARG, "batch size %zu outside [1, 1048576]", c->batch_size);
    if (c->micro_batch > 65536)
        return dpt_error(DPT_ERR_INVALID_ARG, "micro-batch %zu outside [0 (auto), 65536]",
                         c->micro_batch);
    if (c->threads > 1024)
        return dpt_error(DPT_ERR_INVALID_ARG, "threads %zu outside [0, 1024]", c->threads);
    if (!(c->clip_grad_norm >= 0) || !isfinite(c->clip_grad_norm))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "clip_grad_norm %g must be a finite number >= 0 (0 = off)",
                         c->clip_grad_norm);
    size_t micro = dpt_micro_batch_resolve(c->batch_size, c->micro_batch);
    if ((c->batch_size + micro - 1) / micro > 4096)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "batch %zu / micro-batch %zu gives more than 4096 micro-shards",
                         c->batch_size, micro);
    return DPT_OK;
}

static dpt_status_t alloc_buffers(dpt_trainer_t *t)
{
    size_t threads = t->cfg.threads, bytes;
    size_t rows = t->cfg.micro_batch < t->cfg.batch_size ? t->cfg.micro_batch : t->cfg.batch_size;
    t->params = dpt_alloc_aligned(t->n_all * sizeof(float));
    if (t->n_stats &&
        (!(t->stats_arena = calloc(t->max_shards * t->n_stats, sizeof *t->stats_arena)) ||
         !(t->shard_stats_ptr = calloc(t->max_shards, sizeof *t->shard_stats_ptr)) ||
         !(t->shard_rows = calloc(t->max_shards, sizeof *t->shard_rows))))
        return dpt_error(DPT_ERR_NOMEM, "out of memory for %zu batch-statistics buffers",
                         t->max_shards);
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
    for (size_t m = 0; m < t->max_shards; m++)
        t->grads[m] = t->grad_arena + m * t->n_params;
    for (size_t i = 0; i < threads; i++) {
        dpt_status_t s = dpt_replica_create(t->model, rows, &t->replicas[i]);
        if (s == DPT_OK) s = dpt_replica_set_augment(t->replicas[i], t->cfg.augment);
        if (s != DPT_OK) return s;
    }
    return DPT_OK;
}

/* Appends the blocks of [lo, hi) (tensor `tensor`) to the table, or only counts them when
 * the table is not allocated yet. */
static void add_blocks(dpt_trainer_t *t, size_t lo, size_t hi, size_t tensor)
{
    for (size_t b = lo; b < hi; b += DPT_NORM_BLOCK) {
        if (t->block_lo) {
            t->block_lo[t->n_blocks] = b;
            t->block_tensor[t->n_blocks] = tensor;
        }
        t->n_blocks++;
    }
}

/* Cuts the parameter layout into norm blocks: twice, once to count and once to fill. */
static void build_blocks(dpt_trainer_t *t)
{
    t->n_blocks = 0;
    size_t pos = 0;
    for (size_t k = 0; k < t->n_tensors; k++) {
        const dpt_tensor_info_t *ti = dpt_model_tensor(t->model, k);
        add_blocks(t, pos, ti->offset, NO_TENSOR);
        add_blocks(t, ti->offset, ti->offset + ti->rows * ti->cols, k);
        pos = ti->offset + ti->rows * ti->cols;
    }
    add_blocks(t, pos, t->n_params, NO_TENSOR);
    if (t->block_lo) t->block_lo[t->n_blocks] = t->n_params;
}

/* The two-phase path's tables, sized here so that no step allocates. */
static dpt_status_t alloc_norm_tables(dpt_trainer_t *t)
{
    t->two_phase = t->cfg.clip_grad_norm > 0 || dpt_optimizer_norms(t->opt) != DPT_OPTIM_NORMS_NONE;
    t->grad_norm = NAN;
    t->clip_scale = 1.0;
    if (!t->two_phase) return DPT_OK;
    /* The trainable tensors (a prefix of the table) are the ones with norms. */
    t->n_tensors = 0;
    while (t->n_tensors < dpt_model_tensor_count(t->model) &&
           dpt_model_tensor(t->model, t->n_tensors)->trainable)
        t->n_tensors++;
    build_blocks(t);
    size_t nb = t->n_blocks, nt = t->n_tensors + 1;
    t->block_lo = calloc(nb + 1, sizeof *t->block_lo);
    t->block_tensor = calloc(nb, sizeof *t->block_tensor);
    t->block_g = calloc(nb, sizeof(double));
    t->block_w = calloc(nb, sizeof(double));
    t->block_d = calloc(nb, sizeof(double));
    t->tensor_g = calloc(nt, sizeof(double));
    t->tensor_w = calloc(nt, sizeof(double));
    t->tensor_d = calloc(nt, sizeof(double));
    if (!t->block_lo || !t->block_tensor || !t->block_g || !t->block_w || !t->block_d ||
        !t->tensor_g || !t->tensor_w || !t->tensor_d)
        return dpt_error(DPT_ERR_NOMEM, "out of memory for %zu gradient-norm blocks", nb);
    build_blocks(t);
    return DPT_OK;
}

dpt_status_t dpt_trainer_create(const dpt_model_t *model, dpt_optimizer_t *opt,
                                const dpt_trainer_config_t *cfg, dpt_trainer_t **out)
{
    dpt_status_t s = check_config(cfg);
    if (s != DPT_OK) return s;
    /* BLIS must pick its kernel set before any worker calls it. */
    dpt_gemm_init_narrow(dpt_model_narrow_gemm_share(model));
    dpt_trainer_t *t = calloc(1, sizeof *t);
    if (!t) return dpt_error(DPT_ERR_NOMEM, "out of memory creating the trainer");
    t->model = model;
    t->opt = opt;
    t->cfg = *cfg;
    if (t->cfg.threads == 0) t->cfg.threads = (size_t)omp_get_num_procs();
    t->cfg.micro_batch = dpt_micro_batch_resolve_for(model, cfg->batch_size, cfg->micro_batch);
    t->n_params = dpt_model_trainable_count(model);
    t->n_all = dpt_model_param_count(model);
    t->n_stats = dpt_model_stats_count(model);
    t->max_shards = (cfg->batch_size + t->cfg.micro_batch - 1) / t->cfg.micro_batch;
    t->rank = dpt_world_rank();
    t->ranks = dpt_world_size();
    s = alloc_buffers(t);
    if (s == DPT_OK) s = alloc_norm_tables(t);
    if (s == DPT_OK && (!(t->shard_bounds = calloc(t->ranks + 1, sizeof(size_t))) ||
                        !(t->chunk_bounds = calloc(t->ranks + 1, sizeof(size_t)))))
        s = dpt_error(DPT_ERR_NOMEM, "out of memory for %zu ranks' bounds", t->ranks);
    if (s == DPT_OK) dpt_world_chunk_bounds(t->n_params, t->ranks, t->chunk_bounds);
    if (s == DPT_OK && t->ranks > 1) {
        const char *mode = getenv("DPT_EXCHANGE");
        /* Phased stays the default: the pipeline saved nothing measurable on 2 ranks of
         * one machine (docs/distributed.md, "Overlapping the exchange"). */
        if (mode && !strcmp(mode, "overlap"))
            s = dpt_exchange_create(t->n_params, t->rank, t->ranks, &t->exchange);
        else if (mode && strcmp(mode, "phased"))
            s = dpt_error(DPT_ERR_INVALID_ARG,
                          "DPT_EXCHANGE '%s': expected one of phased (the default), overlap", mode);
    }
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
        for (size_t i = 0; i < t->cfg.threads; i++)
            dpt_replica_free(t->replicas[i]);
    free(t->replicas);
    dpt_free_aligned(t->params);
    dpt_free_aligned(t->grad_arena);
    free(t->stats_arena);
    free(t->shard_stats_ptr);
    free(t->shard_rows);
    free(t->prof);
    free(t->grads);
    free(t->shard_loss);
    free(t->shard_correct);
    free(t->order);
    free(t->block_lo), free(t->block_tensor);
    free(t->block_g), free(t->block_w), free(t->block_d);
    free(t->tensor_g), free(t->tensor_w), free(t->tensor_d);
    free(t->shard_bounds), free(t->chunk_bounds);
    dpt_exchange_free(t->exchange);
    free(t);
}

size_t dpt_trainer_micro_batch(const dpt_trainer_t *t)
{
    return t->cfg.micro_batch;
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
void dpt_trainer_set_step_hook(dpt_trainer_t *t, dpt_step_fn fn, void *user)
{
    t->step_hook = fn;
    t->step_hook_user = user;
}

void dpt_trainer_set_epoch_start(dpt_trainer_t *t, const dpt_epoch_partial_t *from)
{
    t->start = from ? *from : (dpt_epoch_partial_t){0};
}

void dpt_trainer_epoch_partial(const dpt_trainer_t *t, dpt_epoch_partial_t *out)
{
    *out = t->partial;
    out->seconds = omp_get_wtime() - t->partial.seconds; /* the field holds the start time */
}

void dpt_epoch_order(uint64_t seed, uint64_t epoch, uint32_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    dpt_rng_t r;
    dpt_rng_seed(&r, seed, 0x5400000000ULL + epoch);
    dpt_rng_shuffle_u32(&r, idx, n);
}

/* One pass over the parameters, shared by the team chunk by chunk: tree-sum the shard
 * gradients of a chunk and feed it straight to the optimizer while it is still in cache.
 * Chunks are handed out dynamically, so a thread the VM held back takes fewer; every element's
 * sum and update is the same whoever computes it, so the result does not depend on the
 * schedule. Called by every thread of the step's region; the loop's barrier ends the step. */
static void reduce_and_update(dpt_trainer_t *t, size_t shards, const dpt_optim_step_t *st)
{
    const size_t n_chunks = (t->n_params + DPT_REDUCE_CHUNK - 1) / DPT_REDUCE_CHUNK;
#pragma omp for schedule(dynamic, 4)
    for (size_t k = 0; k < n_chunks; k++) {
        size_t c = k * DPT_REDUCE_CHUNK;
        size_t end = c + DPT_REDUCE_CHUNK < t->n_params ? c + DPT_REDUCE_CHUNK : t->n_params;
        dpt_reduce_tree(t->grads, shards, c, end);
        dpt_optimizer_update(t->opt, t->params, t->grads[0], c, end, st);
    }
}

/* Sum of squares of x[lo, hi) in double, in 8 fixed lanes added in a fixed order at the end:
 * vectorisable, and the same bits whichever thread computes it. */
static double sum_sq(const float *restrict x, size_t lo, size_t hi)
{
    double acc[8] = {0};
    size_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (size_t j = 0; j < 8; j++)
            acc[j] += (double)x[i + j] * (double)x[i + j];
    for (size_t j = 0; i < hi; i++, j++)
        acc[j] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Phase 1, block b: tree-sum the shard gradients and take the block's sums of squares of the
 * gradient (and of the parameters when the optimizer needs them). */
static void reduce_block(dpt_trainer_t *t, size_t shards, size_t b, int want_w)
{
    size_t lo = t->block_lo[b], hi = t->block_lo[b + 1];
    dpt_reduce_tree(t->grads, shards, lo, hi);
    t->block_g[b] = sum_sq(t->grads[0], lo, hi);
    t->block_w[b] = want_w ? sum_sq(t->params, lo, hi) : 0.0;
}

/* Per-tensor totals of one per-block column, added in block order: deterministic. Returns
 * the total over all tensors. */
static double combine_blocks(dpt_trainer_t *t, const double *block, double *tensor)
{
    for (size_t k = 0; k < t->n_tensors; k++)
        tensor[k] = 0;
    for (size_t b = 0; b < t->n_blocks; b++)
        if (t->block_tensor[b] != NO_TENSOR) tensor[t->block_tensor[b]] += block[b];
    double total = 0;
    for (size_t k = 0; k < t->n_tensors; k++)
        total += tensor[k];
    return total;
}

/* Between phases 1 and 2, on one thread: the global norm, the clipping factor and (lars)
 * the trust ratios from the clipped gradient. */
static void after_reduce(dpt_trainer_t *t)
{
    double total = combine_blocks(t, t->block_g, t->tensor_g);
    t->grad_norm = sqrt(total);
    /* torch.nn.utils.clip_grad_norm_: coef = max / (norm + 1e-6), applied when below 1. */
    double coef = t->cfg.clip_grad_norm / (t->grad_norm + 1e-6);
    t->clip_scale = t->cfg.clip_grad_norm > 0 && coef < 1.0 ? coef : 1.0;
    if (dpt_optimizer_norms(t->opt) == DPT_OPTIM_NORMS_NONE) return;
    combine_blocks(t, t->block_w, t->tensor_w);
    if (dpt_optimizer_norms(t->opt) == DPT_OPTIM_NORMS_GRAD) {
        double s2 = t->clip_scale * t->clip_scale;
        for (size_t k = 0; k < t->n_tensors; k++)
            t->tensor_g[k] *= s2;
        dpt_optimizer_set_norms(t->opt, t->tensor_w, t->tensor_g);
    }
}

/* Phase 2, block b: clip, then update (or, for lamb, turn the gradient into the update
 * direction and take the block's sum of squares), chunk by chunk while it is in cache. */
static void update_block(dpt_trainer_t *t, size_t b, const dpt_optim_step_t *st)
{
    const int direction = dpt_optimizer_norms(t->opt) == DPT_OPTIM_NORMS_DIRECTION;
    const float scale = (float)t->clip_scale;
    float *g = t->grads[0];
    size_t lo = t->block_lo[b], hi = t->block_lo[b + 1];
    for (size_t c = lo; c < hi; c += DPT_REDUCE_CHUNK) {
        size_t end = c + DPT_REDUCE_CHUNK < hi ? c + DPT_REDUCE_CHUNK : hi;
        if (scale != 1.0f)
            for (size_t i = c; i < end; i++)
                g[i] *= scale;
        if (direction)
            dpt_optimizer_direction(t->opt, t->params, g, c, end, st);
        else
            dpt_optimizer_update(t->opt, t->params, g, c, end, st);
    }
    if (direction) t->block_d[b] = sum_sq(g, lo, hi);
}

/* The two-phase reduce and update, inside the step's parallel region (all threads call it).
 * Phase 3 (lamb only) applies the direction scaled by the trust ratios. */
static void reduce_norms_update(dpt_trainer_t *t, size_t shards, const dpt_optim_step_t *st)
{
    const dpt_optim_norms_t kind = dpt_optimizer_norms(t->opt);
    /* Blocks go to whichever thread is free, as the shards do; each block's sums are stored
     * per block and combined in block order, so the schedule cannot change the result. The
     * loops' implied barriers separate the phases. */
#pragma omp for schedule(dynamic, 1)
    for (size_t b = 0; b < t->n_blocks; b++)
        reduce_block(t, shards, b, kind != DPT_OPTIM_NORMS_NONE);
#pragma omp single
    after_reduce(t);
    /* (the single's implied barrier: every thread sees the clip factor and ratios) */
#pragma omp for schedule(dynamic, 1)
    for (size_t b = 0; b < t->n_blocks; b++)
        update_block(t, b, st);
    if (kind != DPT_OPTIM_NORMS_DIRECTION) return;
#pragma omp single
    {
        combine_blocks(t, t->block_d, t->tensor_d);
        dpt_optimizer_set_norms(t->opt, t->tensor_w, t->tensor_d);
    }
#pragma omp for schedule(dynamic, 1)
    for (size_t b = 0; b < t->n_blocks; b++)
        dpt_optimizer_update(t->opt, t->params, t->grads[0], t->block_lo[b], t->block_lo[b + 1],
                             st);
}

typedef struct {
    double fb_seconds, update_seconds, exchange_seconds;
} step_timing_t;

static float *shard_stats(const dpt_trainer_t *t, size_t s)
{
    return t->n_stats ? t->stats_arena + s * t->n_stats : NULL;
}

/* Running statistics (batch norm) take the step's shard statistics in shard order, after the
 * parallel region: the same arithmetic whatever the thread count. */
static void fold_stats(dpt_trainer_t *t, size_t rows, size_t shards)
{
    if (!t->n_stats) return;
    const size_t micro = t->cfg.micro_batch;
    for (size_t s = 0; s < shards; s++) {
        size_t lo = s * micro;
        t->shard_rows[s] = rows - lo < micro ? rows - lo : micro;
        t->shard_stats_ptr[s] = shard_stats(t, s);
    }
    dpt_model_fold_stats(t->model, t->params, (const float *const *)t->shard_stats_ptr,
                         t->shard_rows, shards);
}

static double train_step_world(dpt_trainer_t *t, const dpt_dataset_t *ds, const uint32_t *ids,
                               size_t rows, uint64_t epoch, const dpt_optim_step_t *st,
                               size_t *correct, step_timing_t *timing);

/* Micro-shard s of the step's rows ids[0..rows): forward, loss, backward into its buffer. */
static void train_shard(dpt_trainer_t *t, dpt_replica_t *rep, const dpt_dataset_t *ds,
                        const uint32_t *ids, size_t rows, size_t s, uint64_t epoch, float scale)
{
    const size_t micro = t->cfg.micro_batch;
    size_t lo = s * micro, n = rows - lo < micro ? rows - lo : micro;
    dpt_step_ctx_t ctx = {
        .training = true, .seed = t->cfg.seed, .epoch = epoch, .sample_ids = ids + lo};
    t->shard_loss[s] =
        dpt_replica_train_shard(rep, t->model, t->params, ds, ids + lo, n, scale, t->grads[s],
                                shard_stats(t, s), &ctx, &t->shard_correct[s]);
}

/* One optimizer step on rows ids[0..rows). Returns the summed loss; *correct the hits. */
static double train_step(dpt_trainer_t *t, const dpt_dataset_t *ds, const uint32_t *ids,
                         size_t rows, uint64_t epoch, const dpt_optim_step_t *st, size_t *correct,
                         step_timing_t *timing)
{
    const size_t micro = t->cfg.micro_batch;
    const size_t shards = (rows + micro - 1) / micro;
    const float scale = 1.0f / (float)rows;
    if (t->ranks > 1) return train_step_world(t, ds, ids, rows, epoch, st, correct, timing);
    double t0 = omp_get_wtime(), t1 = t0;
#pragma omp parallel num_threads((int)t->cfg.threads)
    {
        const size_t tid = (size_t)omp_get_thread_num();
        const size_t nt = (size_t)omp_get_num_threads(); /* the team we actually got */
        dpt_replica_t *rep = t->replicas[tid];
        /* Shards go to whichever thread is free (a shard's gradient is the same whoever
         * computes it): on a shared machine a thread that was held back takes fewer. */
#pragma omp for schedule(dynamic, 1) nowait
        for (size_t s = 0; s < shards; s++)
            train_shard(t, rep, ds, ids, rows, s, epoch, scale);
#pragma omp barrier
        if (tid == 0) {
            t->team_size = nt;
            t1 = omp_get_wtime();
        }
        if (t->two_phase)
            reduce_norms_update(t, shards, st);
        else
            reduce_and_update(t, shards, st);
    }
    fold_stats(t, rows, shards);
    double t2 = omp_get_wtime();
    timing->fb_seconds += t1 - t0;
    timing->update_seconds += t2 - t1;
    double loss = 0;
    size_t hits = 0;
    for (size_t s = 0; s < shards; s++)
        loss += t->shard_loss[s], hits += t->shard_correct[s];
    *correct = hits;
    return loss;
}

/* After the exchange: every rank's shard losses, hits and batch statistics to every rank
 * (per-shard records in shard order); records the first failure. */
static void gather_records(dpt_trainer_t *t, const size_t *bounds, dpt_status_t s)
{
    if (s == DPT_OK) s = dpt_world_allgather_blocks(t->shard_loss, sizeof(double), bounds);
    if (s == DPT_OK) s = dpt_world_allgather_blocks(t->shard_correct, sizeof(size_t), bounds);
    if (s == DPT_OK && t->n_stats)
        s = dpt_world_allgather_blocks(t->stats_arena, t->n_stats * sizeof(float), bounds);
    if (s != DPT_OK && t->world_status == DPT_OK) t->world_status = s;
}

/* The step's summed loss, added in shard order; *correct the hits. */
static double add_losses(const dpt_trainer_t *t, size_t shards, size_t *correct)
{
    double loss = 0;
    size_t hits = 0;
    for (size_t k = 0; k < shards; k++)
        loss += t->shard_loss[k], hits += t->shard_correct[k];
    *correct = hits;
    return loss;
}

static double train_step_overlap(dpt_trainer_t *t, const dpt_dataset_t *ds, const uint32_t *ids,
                                 size_t rows, uint64_t epoch, const dpt_optim_step_t *st,
                                 size_t *correct, step_timing_t *timing);

/* Inside the step's region (every thread calls it): this rank's block of the step's shards,
 * forward and backward, handed out dynamically; returns after the team's barrier, with the
 * team size and *t1 (the end of the backward pass) recorded by thread 0. */
static void block_backward(dpt_trainer_t *t, const dpt_dataset_t *ds, const uint32_t *ids,
                           size_t rows, uint64_t epoch, float scale, double *t1)
{
    const size_t tid = (size_t)omp_get_thread_num();
    dpt_replica_t *rep = t->replicas[tid];
    const size_t s_lo = t->shard_bounds[t->rank], s_hi = t->shard_bounds[t->rank + 1];
#pragma omp for schedule(dynamic, 1) nowait
    for (size_t s = s_lo; s < s_hi; s++)
        train_shard(t, rep, ds, ids, rows, s, epoch, scale);
#pragma omp barrier
    if (tid == 0) {
        t->team_size = (size_t)omp_get_num_threads();
        *t1 = omp_get_wtime();
    }
}

/* The step across ranks: the same shards and the same tree as train_step, cut at rank
 * blocks. Each rank computes its contiguous block of the step's shards and the subtrees
 * inside it; the roots go point to point to the owner of each parameter chunk, which adds the
 * nodes that span ranks in the tree's order (so every float is summed exactly as one process
 * sums it); the reduced chunks are gathered everywhere, with the shards' losses, hits and
 * batch statistics; then every rank runs the same optimizer update on the whole gradient, so
 * optimizer state stays replicated and any rank's checkpoint is the run's. */
static double train_step_world(dpt_trainer_t *t, const dpt_dataset_t *ds, const uint32_t *ids,
                               size_t rows, uint64_t epoch, const dpt_optim_step_t *st,
                               size_t *correct, step_timing_t *timing)
{
    if (t->exchange) return train_step_overlap(t, ds, ids, rows, epoch, st, correct, timing);
    const size_t micro = t->cfg.micro_batch;
    const size_t shards = (rows + micro - 1) / micro;
    const float scale = 1.0f / (float)rows;
    size_t *bounds = t->shard_bounds, *chunk = t->chunk_bounds;
    dpt_world_shard_bounds(shards, t->ranks, bounds);
    const size_t s_lo = bounds[t->rank], s_hi = bounds[t->rank + 1];
    const size_t n_chunks = (t->n_params + DPT_REDUCE_CHUNK - 1) / DPT_REDUCE_CHUNK;
    const size_t c_lo = chunk[t->rank], c_hi = chunk[t->rank + 1];
    const size_t my_chunks = (c_hi - c_lo + DPT_REDUCE_CHUNK - 1) / DPT_REDUCE_CHUNK;
    double t0 = omp_get_wtime(), t1 = t0;
#pragma omp parallel num_threads((int)t->cfg.threads)
    {
        block_backward(t, ds, ids, rows, epoch, scale, &t1);
#pragma omp for schedule(dynamic, 4)
        for (size_t k = 0; k < n_chunks; k++) {
            size_t c = k * DPT_REDUCE_CHUNK;
            size_t end = c + DPT_REDUCE_CHUNK < t->n_params ? c + DPT_REDUCE_CHUNK : t->n_params;
            dpt_reduce_tree_inside(t->grads, shards, s_lo, s_hi, c, end);
        }
    }
    double t2 = omp_get_wtime();
    dpt_status_t s = dpt_world_scatter_roots(t->grads, shards, bounds, chunk);
#pragma omp parallel for schedule(dynamic, 4) num_threads((int)t->cfg.threads)
    for (size_t k = 0; k < my_chunks; k++) {
        size_t c = c_lo + k * DPT_REDUCE_CHUNK;
        size_t end = c + DPT_REDUCE_CHUNK < c_hi ? c + DPT_REDUCE_CHUNK : c_hi;
        dpt_reduce_tree_across(t->grads, shards, bounds, t->ranks, c, end);
    }
    if (s == DPT_OK) s = dpt_world_allgather_chunks(t->grads[0], chunk);
    gather_records(t, bounds, s);
    double t3 = omp_get_wtime();
    /* The whole gradient is in buffer 0: the update is the one-process path over one buffer. */
#pragma omp parallel num_threads((int)t->cfg.threads)
    {
        if (t->two_phase)
            reduce_norms_update(t, 1, st);
        else
            reduce_and_update(t, 1, st);
    }
    fold_stats(t, rows, shards);
    double t4 = omp_get_wtime();
    timing->fb_seconds += t1 - t0;
    timing->update_seconds += t4 - t1;
    timing->exchange_seconds += t3 - t2;
    return add_losses(t, shards, correct);
}

/* The step across ranks with the exchange pipelined (src/parallel/exchange.h): the same
 * nodes of the same tree as train_step_world, on pieces of the parameters, so the roots of
 * piece k travel while piece k + 1 is summed, and each reduced piece is updated as soon as
 * it is complete here (the owner) or has arrived (the others). Thread 0, the thread that
 * initialised MPI (MPI_THREAD_FUNNELED), posts and tests every message between its pieces;
 * the other threads only read and set the pieces' atomic flags. One parallel region. The
 * two-phase update (clipping, lars, lamb) needs the whole gradient's norms: it runs after
 * the region, as in train_step_world. */
static double train_step_overlap(dpt_trainer_t *t, const dpt_dataset_t *ds, const uint32_t *ids,
                                 size_t rows, uint64_t epoch, const dpt_optim_step_t *st,
                                 size_t *correct, step_timing_t *timing)
{
    const size_t micro = t->cfg.micro_batch;
    const size_t shards = (rows + micro - 1) / micro;
    const float scale = 1.0f / (float)rows;
    size_t *bounds = t->shard_bounds;
    dpt_world_shard_bounds(shards, t->ranks, bounds);
    dpt_exchange_t *x = t->exchange;
    const size_t n_pieces = dpt_exchange_pieces(x);
    dpt_status_t s = dpt_exchange_begin(x, t->grads, shards, bounds);
    if (s != DPT_OK) dpt_world_abort(71); /* out of memory for requests: no rank can go on */
    const int update = !t->two_phase;
    double t0 = omp_get_wtime(), t1 = t0, t2 = t0;
#pragma omp parallel num_threads((int)t->cfg.threads)
    {
        const size_t tid = (size_t)omp_get_thread_num();
        block_backward(t, ds, ids, rows, epoch, scale, &t1);
#pragma omp for schedule(dynamic, 1) nowait
        for (size_t i = 0; i < n_pieces; i++) {
            dpt_exchange_inside(x, i);
            if (tid == 0) dpt_exchange_drive(x);
        }
        size_t lo, hi;
        while (dpt_exchange_next(x, tid == 0, &lo, &hi))
            for (size_t c = lo; update && c < hi; c += DPT_REDUCE_CHUNK)
                dpt_optimizer_update(t->opt, t->params, t->grads[0], c,
                                     c + DPT_REDUCE_CHUNK < hi ? c + DPT_REDUCE_CHUNK : hi, st);
        if (tid == 0) {
            s = dpt_exchange_end(x);
            t2 = omp_get_wtime();
        }
    }
    gather_records(t, bounds, s);
    double t3 = omp_get_wtime();
    if (t->two_phase) {
#pragma omp parallel num_threads((int)t->cfg.threads)
        reduce_norms_update(t, 1, st);
    }
    fold_stats(t, rows, shards);
    double t4 = omp_get_wtime();
    timing->fb_seconds += t1 - t0;
    timing->update_seconds += t4 - t1;
    /* The time the exchange held the step up: thread 0's waits for messages, and the
     * records' gather. */
    timing->exchange_seconds += dpt_exchange_wait_seconds(x) + (t3 - t2);
    return add_losses(t, shards, correct);
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
    return t->cfg.augment ? dpt_augment_check_data(t->cfg.augment, ds) : DPT_OK;
}

/* Runs batches [from->batches, n_batches) of the current order, continuing from's sums;
 * shared by epochs and step runs. The sums live in t->partial (seconds there holds the
 * start time) so that the step hook can read them. */
static void run_batches(dpt_trainer_t *t, const dpt_dataset_t *ds, size_t n_rows, size_t n_batches,
                        uint64_t epoch, dpt_lr_fn lr_fn, void *lr_user, dpt_progress_fn progress,
                        void *progress_user, double *loss_out, const dpt_epoch_partial_t *from,
                        dpt_epoch_stats_t *st)
{
    const size_t batch = t->cfg.batch_size;
    step_timing_t timing = {0, 0, 0};
    dpt_replica_take_assembly_seconds(t->replicas[0]);
    dpt_epoch_partial_t *p = &t->partial;
    *p = *from;
    p->seconds = omp_get_wtime() - from->seconds;
    size_t b = (size_t)from->batches;
    st->grad_norm = NAN;
    for (; b < n_batches; b++) {
        size_t lo = (b * batch) % n_rows;
        size_t rows = n_rows - lo < batch ? n_rows - lo : batch;
        double mom = -1.0;
        double lr = lr_fn(lr_user, t->steps, &mom);
        if (isnan(lr)) break;
        dpt_optim_step_t ost = {.lr = lr, .momentum = mom, .t = t->steps + 1};
        size_t hits;
        double loss = train_step(t, ds, t->order + lo, rows, epoch, &ost, &hits, &timing);
        t->steps++;
        p->loss_sum += loss;
        p->correct += hits;
        p->samples += rows;
        p->batches = b + 1;
        st->lr_last = lr;
        st->momentum_last = mom >= 0 ? mom : dpt_optimizer_momentum(t->opt);
        st->grad_norm = t->two_phase ? t->grad_norm : NAN;
        if (loss_out) loss_out[b] = loss / (double)rows;
        int stop =
            t->step_hook && !t->step_hook(t->step_hook_user, t->steps, lr, loss / (double)rows);
        if (progress)
            progress(progress_user, b + 1, n_batches, (size_t)p->samples,
                     p->loss_sum / (double)p->samples);
        if (stop) {
            st->aborted = 1;
            b++; /* this step ran */
            break;
        }
    }
    const size_t done = (size_t)p->samples;
    st->seconds = omp_get_wtime() - p->seconds;
    st->steps = b;
    st->samples = done;
    st->loss = done ? p->loss_sum / (double)done : NAN;
    st->accuracy = done ? (double)p->correct / (double)done : NAN;
    st->samples_per_second = st->seconds > 0 ? (double)done / st->seconds : 0;
    st->forward_backward_seconds = timing.fb_seconds;
    st->update_seconds = timing.update_seconds;
    st->exchange_seconds = timing.exchange_seconds;
    st->ranks = t->ranks;
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
    dpt_epoch_partial_t from = t->start;
    t->start = (dpt_epoch_partial_t){0}; /* one epoch only */
    if (from.batches >= n_batches)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "epoch %llu: cannot start at batch %llu of %zu (other data?)",
                         (unsigned long long)epoch, (unsigned long long)from.batches, n_batches);
    memset(stats, 0, sizeof *stats);
    run_batches(t, ds, n, n_batches, epoch, lr_fn, lr_user, progress, progress_user, NULL, &from,
                stats);
    return t->world_status;
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
    const dpt_epoch_partial_t from = {0};
    run_batches(t, ds, usable, steps, 0, lr_fn, lr_user, NULL, NULL, loss_out, &from, stats);
    return t->world_status;
}

dpt_status_t dpt_trainer_evaluate(dpt_trainer_t *t, const dpt_dataset_t *ds, double *loss,
                                  double *accuracy, uint64_t *confusion)
{
    dpt_status_t s = check_dataset(t, ds);
    if (s != DPT_OK) return s;
    /* The replicas hold one micro-shard (or one small batch) of rows. */
    size_t rows = t->cfg.micro_batch < t->cfg.batch_size ? t->cfg.micro_batch : t->cfg.batch_size;
    return dpt_forward_all(t->replicas, t->cfg.threads, t->model, t->params, ds, rows, loss,
                           accuracy, confusion, NULL);
}

dpt_status_t dpt_trainer_profile(dpt_trainer_t *t, int on)
{
    const size_t nodes = dpt_model_node_count(t->model);
    free(t->prof);
    t->prof = NULL;
    if (on && !(t->prof = calloc(t->cfg.threads * 2 * nodes, sizeof *t->prof)))
        return dpt_error(DPT_ERR_NOMEM, "out of memory for the per-node timers");
    for (size_t i = 0; i < t->cfg.threads; i++) {
        double *p = on ? t->prof + i * 2 * nodes : NULL;
        dpt_replica_profile(t->replicas[i], p, p ? p + nodes : NULL);
    }
    return DPT_OK;
}

void dpt_trainer_node_seconds(dpt_trainer_t *t, double *fwd, double *bwd)
{
    const size_t nodes = dpt_model_node_count(t->model);
    for (size_t j = 0; j < nodes; j++)
        fwd[j] = bwd[j] = 0;
    if (!t->prof) return;
    for (size_t i = 0; i < t->cfg.threads; i++)
        for (size_t j = 0; j < nodes; j++) {
            fwd[j] += t->prof[i * 2 * nodes + j];
            bwd[j] += t->prof[i * 2 * nodes + nodes + j];
        }
    memset(t->prof, 0, t->cfg.threads * 2 * nodes * sizeof *t->prof);
}
