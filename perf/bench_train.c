/* Training-step throughput of the default MLP on Fashion-MNIST: samples/s (median of
 * several repetitions after warm-up steps), the per-phase split of a step, and the effective
 * GFLOP/s against a single-thread BLIS sgemm of the first layer's shape measured in the same
 * run (the roofline). Usage:
 *   bench_train [--threads 1,2] [--batch 128,256,512] [--reps 5] [--steps 200] [--data SPEC]
 * Prints one CSV row per (threads, batch) to stdout. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/trainer.h"
#include "kernels/gemm.h"

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

static size_t parse_list(const char *s, size_t *out, size_t cap)
{
    size_t n = 0;
    char *end;
    while (*s && n < cap) {
        out[n++] = strtoul(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}

/* GFLOP/s of one-thread sgemm m x k times k x n, median of reps. */
static double sgemm_gflops(size_t m, size_t n, size_t k, int reps)
{
    float *a = calloc(m * k, 4), *b = calloc(k * n, 4), *c = calloc(m * n, 4);
    for (size_t i = 0; i < m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < k * n; i++)
        b[i] = (float)(i % 5) * 0.1f;
    double t[32];
    for (int r = 0; r < reps && r < 32; r++) {
        double t0 = omp_get_wtime();
        for (int i = 0; i < 20; i++)
            dpt_sgemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        t[r] = 2.0 * m * n * k * 20 / (omp_get_wtime() - t0) / 1e9;
    }
    free(a), free(b), free(c);
    return median(t, (size_t)(reps < 32 ? reps : 32));
}

static double constant_lr(void *user, uint64_t step, double *momentum)
{
    return 0.01;
}

int main(int argc, char **argv)
{
    size_t threads[32] = {1, 2}, batches[32] = {128, 256, 512};
    size_t nt = 2, nb = 3, reps = 5, steps = 200;
    const char *spec = "fashion-mnist";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            nt = parse_list(argv[i + 1], threads, 32);
        else if (!strcmp(argv[i], "--batch"))
            nb = parse_list(argv[i + 1], batches, 32);
        else if (!strcmp(argv[i], "--reps"))
            reps = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--steps"))
            steps = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--data"))
            spec = argv[i + 1];
    }
    if (reps < 1 || reps > 64 || steps < 1) {
        fprintf(stderr, "bench_train: --reps in [1,64], --steps >= 1\n");
        return 2;
    }
    dpt_data_options_t opt = dpt_data_options_default();
    dpt_dataset_t *train, *test;
    if (dpt_dataset_open(spec, &opt, &train, &test) != DPT_OK ||
        dpt_dataset_fit_normalization(train) != DPT_OK) {
        fprintf(stderr, "bench_train: %s\n", dpt_last_error());
        return 3;
    }
    dpt_model_t *m;
    if (dpt_model_create(DPT_DEFAULT_MODEL, dpt_dataset_features(train), dpt_dataset_classes(train),
                         &m) != DPT_OK) {
        fprintf(stderr, "bench_train: %s\n", dpt_last_error());
        return 2;
    }
    dpt_gemm_init();
    fprintf(stderr, "BLIS %s, kernel set %s (%s)\n", dpt_gemm_blis_version(),
            dpt_gemm_kernel_name(), dpt_gemm_kernel_reason());
    printf("threads,batch,samples_per_second,min,max,speedup_vs_1_thread,efficiency,"
           "fwd_bwd_share,update_share,step_gflops,sgemm_gflops,roofline_ratio\n");
    const double flops_per_sample = 3.0 * dpt_model_forward_flops(m); /* fwd + 2x bwd */
    for (size_t bi = 0; bi < nb; bi++) {
        double base = 0;
        for (size_t ti = 0; ti < nt; ti++) {
            dpt_trainer_config_t cfg = {
                .threads = threads[ti], .batch_size = batches[bi], .micro_batch = 128, .seed = 1};
            dpt_optimizer_t *o;
            dpt_trainer_t *t;
            if (dpt_optimizer_create("sgd:momentum=0.9", m, &o) != DPT_OK ||
                dpt_trainer_create(m, o, &cfg, &t) != DPT_OK) {
                fprintf(stderr, "bench_train: %s\n", dpt_last_error());
                return 2;
            }
            dpt_epoch_stats_t st;
            dpt_trainer_train_steps(t, train, 20, constant_lr, NULL, NULL, &st); /* warm-up */
            double rate[64], fb = 0, up = 0;
            for (size_t r = 0; r < reps; r++) {
                dpt_trainer_train_steps(t, train, steps, constant_lr, NULL, NULL, &st);
                rate[r] = st.samples_per_second;
                fb += st.forward_backward_seconds / st.seconds;
                up += st.update_seconds / st.seconds;
            }
            double lo = rate[0], hi = rate[0];
            for (size_t r = 1; r < reps; r++)
                lo = fmin(lo, rate[r]), hi = fmax(hi, rate[r]);
            double med = median(rate, reps);
            if (threads[ti] == 1 || base == 0) base = med / (double)threads[ti];
            /* The roofline is measured right after, in the same process, on one thread. */
            double roof = sgemm_gflops(batches[bi] < 512 ? batches[bi] : 512, 256, 784, 5);
            double gflops = med * flops_per_sample / 1e9;
            printf("%zu,%zu,%.0f,%.0f,%.0f,%.3f,%.3f,%.3f,%.3f,%.1f,%.1f,%.3f\n", threads[ti],
                   batches[bi], med, lo, hi, med / base, med / base / (double)threads[ti],
                   fb / reps, up / reps, gflops / (double)threads[ti], roof,
                   gflops / (double)threads[ti] / roof);
            fflush(stdout);
            dpt_trainer_free(t);
            dpt_optimizer_free(o);
        }
    }
    dpt_model_free(m);
    dpt_dataset_free(train);
    dpt_dataset_free(test);
    return 0;
}
