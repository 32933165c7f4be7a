/* Scaling benchmarks: strong scaling (fixed global batch, 1..N threads), weak scaling (fixed
 * per-thread batch) and a batch-size sweep, each row the median of several timed repetitions
 * after warm-up steps, with the per-phase split of a step, effective GFLOP/s against a
 * single-thread BLIS sgemm roofline measured in the same run, and peak memory. */
#ifndef DPTRAIN_BENCH_H
#define DPTRAIN_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/augment.h"
#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_BENCH_MAX_LIST 64

typedef struct dpt_bench_config {
    const char *model_spec, *optimizer_spec;
    size_t threads[DPT_BENCH_MAX_LIST]; /* thread counts for strong and weak scaling */
    size_t n_threads;
    size_t batches[DPT_BENCH_MAX_LIST]; /* batch sizes for the sweep */
    size_t n_batches;
    size_t strong_batch;  /* global batch of the strong-scaling rows */
    size_t weak_batch;    /* per-thread batch of the weak-scaling rows */
    size_t sweep_threads; /* threads of the batch sweep */
    size_t micro_batch, reps, steps, warmup;
    uint64_t seed;
    int strong, weak, sweep; /* which modes to run */
    int layers;              /* the per-layer split (one thread, the strong batch) */
    /* Training-batch augmentation (NULL: none): its cost shows in the assembly share. */
    const dpt_augment_t *augment;
} dpt_bench_config_t;

/* Strong+weak+sweep, threads 1..cores, strong batch 512, weak 128/thread, sweep
 * 64..2048 on all cores, micro-batch 128, 5 reps of 100 steps after 20 warm-up steps. */
dpt_bench_config_t dpt_bench_config_default(void);

typedef struct dpt_bench_row {
    const char *mode; /* "strong", "weak", "batch" */
    size_t threads, batch, team;
    double samples_per_second, min, max; /* median and range over the repetitions */
    /* Against the mode's base row (1 thread; the first batch of the sweep): the median and
     * range over the repetitions of the ratio of this row's rate to the base row's rate in
     * the same repetition (NaN: no base row). Efficiency = speedup / threads (NaN: sweep). */
    double speedup, speedup_min, speedup_max, efficiency;
    double share_compute, share_assembly, share_update; /* of step time */
    double gflops_per_thread, sgemm_gflops, roofline_ratio;
    double peak_rss_mib;
} dpt_bench_row_t;

typedef void (*dpt_bench_row_fn)(void *user, const dpt_bench_row_t *row);

/* Runs the configured modes on ds (already normalised), calling row_fn for each row. The
 * repetitions are interleaved across the rows of a mode (repetition 1 of every row, then
 * repetition 2, ...), each on a fresh trainer after --warmup steps, so that the ratios
 * compare rates measured seconds apart on a shared, drifting machine. */
dpt_status_t dpt_bench_run(const dpt_bench_config_t *cfg, const dpt_dataset_t *ds,
                           dpt_bench_row_fn row_fn, void *user);

/* One node's share of a one-thread training step at the strong batch. */
typedef struct dpt_bench_layer {
    dpt_node_info_t node;
    double fwd_ms, bwd_ms; /* per step */
    double share;          /* of the step's forward + backward time over all nodes */
    double gflops;         /* forward + backward (weight and input gradients it computes) */
    double sgemm_gflops;   /* same-run single-thread sgemm of the node's forward GEMM shape */
    double sgemm_ratio;    /* gflops / sgemm_gflops (NaN without a GEMM) */
} dpt_bench_layer_t;

typedef void (*dpt_bench_layer_fn)(void *user, const dpt_bench_layer_t *layer);

/* The per-layer split: cfg->warmup untimed and cfg->steps timed steps of one thread at
 * cfg->strong_batch, then one call per node. */
dpt_status_t dpt_bench_layers(const dpt_bench_config_t *cfg, const dpt_dataset_t *ds,
                              dpt_bench_layer_fn layer_fn, void *user);

/* Median of v[0..n), n >= 1. Sorts v in place, so v[0] and v[n-1] are then the min and max. */
double dpt_bench_median(double *v, size_t n);

/* GFLOP/s of one-thread sgemm C[m x n] = A[m x k] B[k x n], median of reps timed calls. */
double dpt_bench_sgemm_gflops(size_t m, size_t n, size_t k, size_t reps);

#ifdef __cplusplus
}
#endif
#endif
