/* Owns the dataset-loading benchmark: loads a spec N times and prints median/min seconds and
 * throughput in MB of in-memory sample storage per second.
 *
 * usage: bench_load [SPEC [N]]   (defaults: fashion-mnist, 5) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dptrain/bench.h"
#include "dptrain/dataset.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* Times one epoch of dpt_dataset_gather over the training part, as the trainer calls it. */
static void bench_gather(const char *spec, double *secs, size_t *rows)
{
    enum { BATCH = 256 };
    dpt_dataset_t *train = NULL;
    if (dpt_dataset_open(spec, NULL, &train, NULL) || dpt_dataset_fit_normalization(train)) {
        dpt_dataset_free(train);
        return;
    }
    size_t n = dpt_dataset_count(train), f = dpt_dataset_features(train);
    uint32_t *idx = malloc(n * sizeof *idx);
    float *x = malloc(BATCH * f * sizeof *x);
    int32_t y[BATCH];
    if (idx && x) {
        /* a fixed stride permutation: shuffled access without pulling in the RNG */
        for (size_t i = 0; i < n; i++)
            idx[i] = (uint32_t)((i * 7919) % n);
        double t0 = now_s();
        for (size_t i = 0; i < n; i += BATCH)
            dpt_dataset_gather(train, idx + i, n - i < BATCH ? n - i : BATCH, x, y);
        *secs = now_s() - t0;
        *rows = n;
    }
    free(idx);
    free(x);
    dpt_dataset_free(train);
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1] : "fashion-mnist";
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > 1000) {
        fprintf(stderr, "bench_load: N must be 1..1000\n");
        return 2;
    }
    /* wall time, and CPU time of this process: the latter is the figure to trust when other
     * jobs share the cores */
    double *t = malloc(2 * (size_t)runs * sizeof *t), *cpu = t + runs;
    size_t bytes = 0;
    char desc[2][256] = {"", ""};
    if (!t) return 1;
    for (int r = 0; r < runs; r++) {
        dpt_dataset_t *train = NULL, *test = NULL;
        double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        dpt_status_t s = dpt_dataset_open(spec, NULL, &train, &test);
        t[r] = now_s() - t0;
        cpu[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (s) {
            fprintf(stderr, "bench_load: %s\n", dpt_last_error());
            free(t);
            return dpt_status_exit_code(s);
        }
        bytes = dpt_dataset_storage_bytes(train) + (test ? dpt_dataset_storage_bytes(test) : 0);
        snprintf(desc[0], sizeof desc[0], "%s", dpt_dataset_describe(train));
        if (test) snprintf(desc[1], sizeof desc[1], "%s", dpt_dataset_describe(test));
        dpt_dataset_free(train);
        dpt_dataset_free(test);
    }
    double gather_s = 0.0;
    size_t gathered = 0;
    bench_gather(spec, &gather_s, &gathered);
    double med = dpt_bench_median(t, (size_t)runs), cpu_med = dpt_bench_median(cpu, (size_t)runs);
    printf("%s\n", desc[0]);
    if (desc[1][0]) printf("%s\n", desc[1]);
    printf("spec %s: %d runs, median %.3f s, min %.3f s, %.1f MB/s (median, %.1f MB in memory); "
           "CPU time median %.3f s, min %.3f s\n",
           spec, runs, med, t[0], (double)bytes / 1e6 / med, (double)bytes / 1e6, cpu_med, cpu[0]);
    if (gathered)
        printf("gather (fitted, batches of 256 in shuffled order): %zu rows in %.3f s, %.0f "
               "rows/s\n",
               gathered, gather_s, (double)gathered / gather_s);
    free(t);
    return 0;
}
