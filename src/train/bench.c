/* Owns the scaling benchmarks behind `dptrain bench`: timed repetitions of training steps
 * for each (threads, batch) point, interleaved across the points of a mode, the same-run
 * sgemm roofline, the per-phase split. */
#include "dptrain/bench.h"

#include <math.h>
#include <stdbool.h>
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
    c.strong = c.weak = c.sweep = c.layers = 1;
    return c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double dpt_bench_median(double *v, size_t n)
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
        result = dpt_bench_median(t, reps);
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

/* One (threads, batch) point of a mode: its rate in each repetition and the phase times
 * summed over them. */
typedef struct {
    size_t threads, batch, team;
    double *rate;
    double compute, assembly, update, total;
} point_t;

/* Repetition r of point p: a fresh trainer, cfg->warmup untimed steps, cfg->steps timed. */
static dpt_status_t time_rep(const dpt_bench_config_t *cfg, const dpt_model_t *m,
                             const dpt_dataset_t *ds, point_t *p, size_t r)
{
    dpt_optimizer_t *o = NULL;
    dpt_trainer_t *t = NULL;
    dpt_trainer_config_t tc = {.threads = p->threads,
                               .batch_size = p->batch,
                               .micro_batch = cfg->micro_batch,
                               .seed = cfg->seed,
                               .augment = cfg->augment};
    dpt_status_t s = dpt_optimizer_create(cfg->optimizer_spec, m, &o);
    if (s == DPT_OK) s = dpt_trainer_create(m, o, &tc, &t);
    dpt_epoch_stats_t st;
    if (s == DPT_OK && cfg->warmup)
        s = dpt_trainer_train_steps(t, ds, cfg->warmup, bench_lr, NULL, NULL, &st);
    if (s == DPT_OK) s = dpt_trainer_train_steps(t, ds, cfg->steps, bench_lr, NULL, NULL, &st);
    if (s == DPT_OK) {
        p->rate[r] = st.samples_per_second;
        p->compute += st.forward_backward_seconds - st.assembly_seconds;
        p->assembly += st.assembly_seconds;
        p->update += st.update_seconds;
        p->total += st.seconds;
        p->team = dpt_trainer_team_size(t);
    }
    dpt_trainer_free(t);
    dpt_optimizer_free(o);
    return s;
}

/* Row i of a mode from its points; base is the index of the mode's base point or n (none).
 * ratio is scratch for cfg->reps doubles. */
static void fill_row(const dpt_bench_config_t *cfg, const dpt_model_t *m, const point_t *pts,
                     size_t i, size_t base, size_t n, double *ratio, dpt_bench_row_t *row)
{
    const point_t *p = &pts[i];
    row->threads = p->threads;
    row->batch = p->batch;
    row->team = p->team;
    const size_t last = cfg->reps - 1;
    memcpy(ratio, p->rate, cfg->reps * sizeof *ratio);
    row->samples_per_second = dpt_bench_median(ratio, cfg->reps); /* sorts: ends are min, max */
    row->min = ratio[0], row->max = ratio[last];
    row->speedup = row->speedup_min = row->speedup_max = NAN;
    if (base < n) {
        for (size_t r = 0; r < cfg->reps; r++)
            ratio[r] = p->rate[r] / pts[base].rate[r];
        row->speedup = dpt_bench_median(ratio, cfg->reps);
        row->speedup_min = ratio[0], row->speedup_max = ratio[last];
    }
    row->share_compute = p->compute / p->total;
    row->share_assembly = p->assembly / p->total;
    row->share_update = p->update / p->total;
    row->gflops_per_thread =
        row->samples_per_second * dpt_model_train_flops(m) / 1e9 / (double)p->threads;
    row->peak_rss_mib = peak_rss_mib();
}

/* The roofline of a point: one-thread sgemm of the shape of the model's largest GEMM at the
 * point's global batch (for the MLP, the first dense layer: batch x inputs times inputs x
 * outputs, e.g. 512x784x256), measured in the same process when the row is reported. Workers run
 * micro-shards of --micro-batch rows, so a ratio below 1 also shows what the smaller GEMMs cost. */
static void add_roofline(const dpt_bench_config_t *cfg, const dpt_model_t *m, dpt_bench_row_t *row)
{
    size_t rows = row->batch < 4096 ? row->batch : 4096, mnk[3];
    if (!dpt_model_main_gemm(m, rows, mnk)) return;
    row->sgemm_gflops = dpt_bench_sgemm_gflops(mnk[0], mnk[1], mnk[2], 5);
    row->roofline_ratio = row->gflops_per_thread / row->sgemm_gflops;
}

static dpt_status_t run_mode(const dpt_bench_config_t *cfg, const dpt_model_t *m,
                             const dpt_dataset_t *ds, const char *mode, dpt_bench_row_fn row_fn,
                             void *user)
{
    const bool sweep = strcmp(mode, "batch") == 0;
    size_t n = sweep ? cfg->n_batches : cfg->n_threads, base = sweep ? 0 : n;
    point_t pts[DPT_BENCH_MAX_LIST] = {{0}};
    double *ratio = calloc(cfg->reps, sizeof *ratio);
    dpt_status_t s = ratio ? DPT_OK : dpt_error(DPT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == DPT_OK && i < n; i++) {
        if (strcmp(mode, "strong") == 0)
            pts[i].threads = cfg->threads[i], pts[i].batch = cfg->strong_batch;
        else if (strcmp(mode, "weak") == 0)
            pts[i].threads = cfg->threads[i], pts[i].batch = cfg->weak_batch * cfg->threads[i];
        else
            pts[i].threads = cfg->sweep_threads, pts[i].batch = cfg->batches[i];
        if (!sweep && pts[i].threads == 1 && base == n) base = i;
        pts[i].rate = calloc(cfg->reps, sizeof *pts[i].rate);
        if (!pts[i].rate) s = dpt_error(DPT_ERR_NOMEM, "out of memory");
    }
    for (size_t r = 0; s == DPT_OK && r < cfg->reps; r++)
        for (size_t i = 0; s == DPT_OK && i < n; i++)
            s = time_rep(cfg, m, ds, &pts[i], r);
    for (size_t i = 0; s == DPT_OK && i < n; i++) {
        dpt_bench_row_t row = {.mode = mode};
        fill_row(cfg, m, pts, i, base, n, ratio, &row);
        add_roofline(cfg, m, &row);
        row.efficiency = sweep ? NAN : row.speedup / (double)row.threads;
        row_fn(user, &row);
    }
    for (size_t i = 0; i < n; i++)
        free(pts[i].rate);
    free(ratio);
    return s;
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
    s = dpt_model_create_for_data(cfg->model_spec, ds, dpt_dataset_classes(ds), &m);
    if (s != DPT_OK) return s;
    if (cfg->strong) s = run_mode(cfg, m, ds, "strong", row_fn, user);
    if (s == DPT_OK && cfg->weak) s = run_mode(cfg, m, ds, "weak", row_fn, user);
    if (s == DPT_OK && cfg->sweep) s = run_mode(cfg, m, ds, "batch", row_fn, user);
    dpt_model_free(m);
    return s;
}

/* Node rows of the per-layer split from the summed seconds of `steps` steps. */
static void report_layers(const dpt_bench_config_t *cfg, const dpt_model_t *m, size_t micro,
                          const double *fwd, const double *bwd, dpt_bench_layer_fn layer_fn,
                          void *user)
{
    const size_t nodes = dpt_model_node_count(m);
    double total = 0;
    for (size_t i = 0; i < nodes; i++)
        total += fwd[i] + bwd[i];
    for (size_t i = 0; i < nodes; i++) {
        dpt_bench_layer_t l = {.sgemm_gflops = NAN, .sgemm_ratio = NAN};
        dpt_model_node_info(m, i, micro, &l.node);
        const double steps = (double)cfg->steps;
        l.fwd_ms = 1e3 * fwd[i] / steps;
        l.bwd_ms = 1e3 * bwd[i] / steps;
        l.share = total > 0 ? (fwd[i] + bwd[i]) / total : NAN;
        double passes = 1.0 + (l.node.weight_grad ? 1.0 : 0.0) + (l.node.input_grad ? 1.0 : 0.0);
        double flops = l.node.flops * passes * (double)cfg->strong_batch * steps;
        l.gflops = fwd[i] + bwd[i] > 0 ? flops / (fwd[i] + bwd[i]) / 1e9 : NAN;
        if (l.node.has_gemm && l.node.flops > 0) {
            l.sgemm_gflops =
                dpt_bench_sgemm_gflops(l.node.gemm[0], l.node.gemm[1], l.node.gemm[2], 5);
            l.sgemm_ratio = l.gflops / l.sgemm_gflops;
        }
        layer_fn(user, &l);
    }
}

dpt_status_t dpt_bench_layers(const dpt_bench_config_t *cfg, const dpt_dataset_t *ds,
                              dpt_bench_layer_fn layer_fn, void *user)
{
    if (cfg->strong_batch > dpt_dataset_count(ds))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "bench: a batch of %zu needs at least that many samples; the data has %zu",
                         cfg->strong_batch, dpt_dataset_count(ds));
    dpt_model_t *m = NULL;
    dpt_optimizer_t *o = NULL;
    dpt_trainer_t *t = NULL;
    dpt_trainer_config_t tc = {.threads = 1,
                               .batch_size = cfg->strong_batch,
                               .micro_batch = cfg->micro_batch,
                               .seed = cfg->seed,
                               .augment = cfg->augment};
    dpt_status_t s = dpt_model_create_for_data(cfg->model_spec, ds, dpt_dataset_classes(ds), &m);
    if (s == DPT_OK) s = dpt_optimizer_create(cfg->optimizer_spec, m, &o);
    if (s == DPT_OK) s = dpt_trainer_create(m, o, &tc, &t);
    dpt_epoch_stats_t st;
    if (s == DPT_OK && cfg->warmup)
        s = dpt_trainer_train_steps(t, ds, cfg->warmup, bench_lr, NULL, NULL, &st);
    if (s == DPT_OK) s = dpt_trainer_profile(t, 1);
    if (s == DPT_OK) s = dpt_trainer_train_steps(t, ds, cfg->steps, bench_lr, NULL, NULL, &st);
    const size_t nodes = m ? dpt_model_node_count(m) : 0;
    double *fwd = calloc(nodes + 1, sizeof *fwd), *bwd = calloc(nodes + 1, sizeof *bwd);
    if (s == DPT_OK && (!fwd || !bwd)) s = dpt_error(DPT_ERR_NOMEM, "out of memory");
    if (s == DPT_OK) {
        dpt_trainer_node_seconds(t, fwd, bwd);
        size_t micro = dpt_trainer_micro_batch(t);
        report_layers(cfg, m, micro < cfg->strong_batch ? micro : cfg->strong_batch, fwd, bwd,
                      layer_fn, user);
    }
    free(fwd), free(bwd);
    dpt_trainer_free(t);
    dpt_optimizer_free(o);
    dpt_model_free(m);
    return s;
}
