/* Owns the scaling benchmarks behind `dptrain bench`: timed repetitions of training steps
 * for each (threads, batch) point, the same-run sgemm roofline, the per-phase split. */
#include "dptrain/bench.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/alloc.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/trainer.h"
#include "kernels/gemm.h"

dpt_bench_config_t dpt_bench_config_default(void)
{
    dpt_bench_config_t c = {0};
    c.model_spec = DPT_DEFAULT_MODEL;
    c.optimizer_spec = "sgd:momentum=0.9";
    size_t cores = (size_t)omp_get_num_procs();
    if (cores > DPT_BENCH_MAX_LIST) cores = DPT_BENCH_MAX_LIST;
    for (size_t t = 1; t <= cores; t++)
        c.threads[c.n_threads++] = t;
    const size_t sweep[] = {64, 128, 256, 512, 1024, 2048};
    for (size_t i = 0; i < sizeof sweep / sizeof sweep[0]; i++)
        c.batches[c.n_batches++] = sweep[i];
    c.strong_batch = 512;
    c.weak_batch = 128;
    c.sweep_threads = cores;
    c.micro_batch = 0; /* auto, as in training */
    c.reps = 5;
    c.steps = 100;
    c.warmup = 20;
    c.seed = 1;
    c.strong = c.weak = c.sweep = 1;
    return c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double dpt_bench_sgemm_gflops(size_t m, size_t n, size_t k, size_t reps)
{
    float *a = dpt_alloc_aligned(m * k * 4), *b = dpt_alloc_aligned(k * n * 4);
    float *c = dpt_alloc_aligned(m * n * 4);
    double *t = calloc(reps, sizeof *t), result = NAN;
    if (a && b && c && t) {
        for (size_t i = 0; i < m * k; i++)
            a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < k * n; i++)
            b[i] = (float)(i % 5) * 0.1f;
        dpt_sgemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n); /* warm caches */
        /* Enough calls per repetition for ~0.1 GFLOP, so the clock's resolution is no issue. */
        size_t calls = (size_t)(1e8 / (2.0 * m * n * k)) + 1;
        for (size_t r = 0; r < reps; r++) {
            double t0 = omp_get_wtime();
            for (size_t i = 0; i < calls; i++)
                dpt_sgemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
            t[r] = 2.0 * m * n * k * calls / (omp_get_wtime() - t0) / 1e9;
        }
        result = median(t, reps);
    }
    dpt_free_aligned(a), dpt_free_aligned(b), dpt_free_aligned(c), free(t);
    return result;
}

static double bench_lr(void *user, uint64_t step, double *momentum)
{
    return 0.01; /* small and constant: timing must not depend on divergence */
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* Times one (threads, batch) point into row (throughput and phase shares). */
static dpt_status_t time_point(const dpt_bench_config_t *cfg, const dpt_model_t *m,
                               const dpt_dataset_t *ds, size_t threads, size_t batch,
                               dpt_bench_row_t *row)
{
    dpt_optimizer_t *o = NULL;
    dpt_trainer_t *t = NULL;
    dpt_trainer_config_t tc = {.threads = threads,
                               .batch_size = batch,
                               .micro_batch = cfg->micro_batch,
                               .seed = cfg->seed};
    dpt_status_t s = dpt_optimizer_create(cfg->optimizer_spec, m, &o);
    if (s == DPT_OK) s = dpt_trainer_create(m, o, &tc, &t);
    double *rate = calloc(cfg->reps, sizeof *rate);
    if (s == DPT_OK && !rate) s = dpt_error(DPT_ERR_NOMEM, "out of memory");
    dpt_epoch_stats_t st;
    if (s == DPT_OK && cfg->warmup)
        s = dpt_trainer_train_steps(t, ds, cfg->warmup, bench_lr, NULL, NULL, &st);
    double compute = 0, assembly = 0, update = 0, total = 0;
    for (size_t r = 0; s == DPT_OK && r < cfg->reps; r++) {
        s = dpt_trainer_train_steps(t, ds, cfg->steps, bench_lr, NULL, NULL, &st);
        rate[r] = st.samples_per_second;
        compute += st.forward_backward_seconds - st.assembly_seconds;
        assembly += st.assembly_seconds;
        update += st.update_seconds;
        total += st.seconds;
    }
    if (s == DPT_OK) {
        row->threads = threads;
        row->batch = batch;
        row->team = dpt_trainer_team_size(t);
        row->min = row->max = rate[0];
        for (size_t r = 1; r < cfg->reps; r++)
            row->min = fmin(row->min, rate[r]), row->max = fmax(row->max, rate[r]);
        row->samples_per_second = median(rate, cfg->reps);
        row->share_compute = compute / total;
        row->share_assembly = assembly / total;
        row->share_update = update / total;
        row->gflops_per_thread =
            row->samples_per_second * dpt_model_train_flops(m) / 1e9 / (double)threads;
        row->peak_rss_mib = peak_rss_mib();
    }
    free(rate);
    dpt_trainer_free(t);
    dpt_optimizer_free(o);
    return s;
}

/* The roofline of a point: one-thread sgemm of the first dense layer's shape at the point's
 * global batch (batch x inputs times inputs x outputs, e.g. 512x784x256), measured right
 * after the point. Workers run micro-shards of --micro-batch rows, so a ratio below 1 also
 * shows what the smaller GEMMs cost. */
static void add_roofline(const dpt_bench_config_t *cfg, const dpt_model_t *m, dpt_bench_row_t *row)
{
    const dpt_tensor_info_t *w = dpt_model_tensor(m, 0);
    size_t rows = row->batch < 4096 ? row->batch : 4096;
    row->sgemm_gflops = dpt_bench_sgemm_gflops(rows, w->cols, w->rows, 5);
    row->roofline_ratio = row->gflops_per_thread / row->sgemm_gflops;
}

static dpt_status_t run_mode(const dpt_bench_config_t *cfg, const dpt_model_t *m,
                             const dpt_dataset_t *ds, const char *mode, dpt_bench_row_fn row_fn,
                             void *user)
{
    size_t n = strcmp(mode, "batch") == 0 ? cfg->n_batches : cfg->n_threads;
    double base = NAN; /* 1-thread (or first-batch) throughput of this mode */
    for (size_t i = 0; i < n; i++) {
        size_t threads, batch;
        if (strcmp(mode, "strong") == 0)
            threads = cfg->threads[i], batch = cfg->strong_batch;
        else if (strcmp(mode, "weak") == 0)
            threads = cfg->threads[i], batch = cfg->weak_batch * cfg->threads[i];
        else
            threads = cfg->sweep_threads, batch = cfg->batches[i];
        dpt_bench_row_t row = {.mode = mode};
        dpt_status_t s = time_point(cfg, m, ds, threads, batch, &row);
        if (s != DPT_OK) return s;
        add_roofline(cfg, m, &row);
        if (strcmp(mode, "batch") == 0) {
            if (i == 0) base = row.samples_per_second;
            row.speedup = row.samples_per_second / base; /* vs the smallest batch */
            row.efficiency = NAN;
        } else {
            if (threads == 1) base = row.samples_per_second;
            row.speedup = row.samples_per_second / base;
            row.efficiency = row.speedup / (double)threads;
        }
        row_fn(user, &row);
    }
    return DPT_OK;
}

static dpt_status_t check_config(const dpt_bench_config_t *c, const dpt_dataset_t *ds)
{
    if (c->reps < 1 || c->steps < 1)
        return dpt_error(DPT_ERR_INVALID_ARG, "bench needs at least 1 repetition of 1 step");
    /* Only the modes that run: `--modes strong` on a small synthetic set must not be refused
     * for the default sweep's batch of 2048. */
    size_t biggest = c->strong ? c->strong_batch : 0;
    for (size_t i = 0; c->sweep && i < c->n_batches; i++)
        biggest = c->batches[i] > biggest ? c->batches[i] : biggest;
    for (size_t i = 0; c->weak && i < c->n_threads; i++)
        if (c->weak_batch * c->threads[i] > biggest) biggest = c->weak_batch * c->threads[i];
    if (biggest > dpt_dataset_count(ds))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "bench: a batch of %zu needs at least that many samples; the data has "
                         "%zu (use --synthetic N with a larger N)",
                         biggest, dpt_dataset_count(ds));
    return DPT_OK;
}

dpt_status_t dpt_bench_run(const dpt_bench_config_t *cfg, const dpt_dataset_t *ds,
                           dpt_bench_row_fn row_fn, void *user)
{
    dpt_status_t s = check_config(cfg, ds);
    if (s != DPT_OK) return s;
    dpt_model_t *m;
    s = dpt_model_create(cfg->model_spec, dpt_dataset_features(ds), dpt_dataset_classes(ds), &m);
    if (s != DPT_OK) return s;
    if (cfg->strong) s = run_mode(cfg, m, ds, "strong", row_fn, user);
    if (s == DPT_OK && cfg->weak) s = run_mode(cfg, m, ds, "weak", row_fn, user);
    if (s == DPT_OK && cfg->sweep) s = run_mode(cfg, m, ds, "batch", row_fn, user);
    dpt_model_free(m);
    return s;
}
