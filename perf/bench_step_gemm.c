/* The eight GEMMs of one micro-shard's training step of the default MLP (784-256-128-10),
 * each timed on one thread with BLIS's default runtime settings and with B packed, side by
 * side (interleaved repetitions, median), to justify the per-product choice dptrain makes in
 * dpt_gemm_b_mode_for (B packed whenever an operand is transposed).
 *     bench_step_gemm [rows=64] [reps=7]
 * Prints "kernel,product,m x n x k,default_gflops,pack_b_gflops,dptrain_uses" rows. */
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "perf_fill.h"
#include "dptrain/bench.h"
#include "kernels/gemm.h"

typedef struct {
    const char *name;
    bool ta, tb;
    size_t m, n, k;
} product_t;

/* GFLOP/s of one timed batch of calls (~0.05 GFLOP) of product p in the given B mode. */
static double time_once(const product_t *p, dpt_gemm_b_mode_t mode, float *a, float *b, float *c)
{
    size_t calls = (size_t)(5e7 / (2.0 * p->m * p->n * p->k)) + 1;
    /* Row-major as dptrain stores them: op(A) is m x k, op(B) is k x n. */
    size_t lda = p->ta ? p->m : p->k, ldb = p->tb ? p->k : p->n;
    double t0 = omp_get_wtime();
    for (size_t i = 0; i < calls; i++)
        dpt_sgemm_mode(mode, p->ta, p->tb, p->m, p->n, p->k, 1.0f, a, lda, b, ldb, 0.0f, c, p->n);
    return 2.0 * p->m * p->n * p->k * calls / (omp_get_wtime() - t0) / 1e9;
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    size_t reps = argc > 2 ? strtoul(argv[2], NULL, 10) : 7;
    if (rows < 1 || rows > 65536 || reps < 1 || reps > 101) {
        fprintf(stderr, "bench_step_gemm: rows in [1, 65536], reps in [1, 101]\n");
        return 2;
    }
    dpt_gemm_init(); /* the kernel set dptrain uses (BLIS_ARCH_TYPE wins when set) */
    const product_t products[] = {
        {"forward 1: x W1", false, false, rows, 256, 784},
        {"dW1 = x^T dy", true, false, 784, 256, rows},
        {"forward 2", false, false, rows, 128, 256},
        {"dW2", true, false, 256, 128, rows},
        {"dx2 = dy W2^T", false, true, rows, 256, 128},
        {"forward 3", false, false, rows, 10, 128},
        {"dW3", true, false, 128, 10, rows},
        {"dx3", false, true, rows, 128, 10},
    };
    const dpt_gemm_b_mode_t plain = DPT_GEMM_B_BLIS_DEFAULT, pack_b = DPT_GEMM_B_PACKED;
    float *a = dpt_perf_filled(rows * 784), *b = dpt_perf_filled(784 * 256),
          *c = dpt_perf_filled(784 * 256);
    double *tp = calloc(reps, sizeof *tp), *tb = calloc(reps, sizeof *tb);
    if (!a || !b || !c || !tp || !tb) {
        fprintf(stderr, "bench_step_gemm: out of memory\n");
        return 1;
    }
    printf("kernel,product,shape,default_gflops,pack_b_gflops,dptrain_uses\n");
    for (size_t i = 0; i < sizeof products / sizeof products[0]; i++) {
        const product_t *p = &products[i];
        time_once(p, plain, a, b, c), time_once(p, pack_b, a, b, c); /* warm up */
        for (size_t r = 0; r < reps; r++)
            tp[r] = time_once(p, plain, a, b, c), tb[r] = time_once(p, pack_b, a, b, c);
        printf("%s,%s,%zux%zux%zu,%.1f,%.1f,%s\n", dpt_gemm_kernel_name(), p->name, p->m, p->n,
               p->k, dpt_bench_median(tp, reps), dpt_bench_median(tb, reps),
               dpt_gemm_b_mode_for(p->ta, p->tb) == pack_b ? "pack_b" : "default");
    }
    dpt_free_aligned(a), dpt_free_aligned(b), dpt_free_aligned(c), free(tp), free(tb);
    return 0;
}
