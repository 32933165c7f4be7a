/* The three GEMMs of each convolution of the small Fashion-MNIST CNN and of ResNet-20, as
 * src/nn/conv.c calls them on one block of samples (forward Y = W col, the transposed weight
 * gradient dW^T = col dY^T, the column gradient dcol = W^T dY), and of one of the 16 products
 * of each Winograd convolution (src/nn/conv_winograd.c: OUT x tile columns x C), each timed
 * on one thread through dpt_sgemm in dptrain's B modes and through kernels/thin.c
 * (dpt_thin_gemm, dpt_thin_dots), interleaved repetitions, median. Run it once per kernel set
 * to compare them on the convolutions' shapes:
 *     BLIS_ARCH_TYPE=3 build/bench_conv_gemm; BLIS_ARCH_TYPE=6 build/bench_conv_gemm
 *     bench_conv_gemm [reps=5]
 * Prints "kernel,layer,product,m x n x k,gflops" rows; kernel is the BLIS set or "thin". */
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "perf_fill.h"
#include "dptrain/bench.h"
#include "kernels/gemm.h"
#include "kernels/thin.h"

typedef struct {
    const char *layer;
    size_t out, ckk, cols; /* M of the forward, K of the forward, N = columns of one block */
} conv_t;

/* GFLOP/s of about 0.05 GFLOP of one product, through BLIS or (thin) kernels/thin.c: A^T B
 * with a strided A, A B^T as dot products. */
static double time_once(bool thin, bool ta, bool tb, size_t m, size_t n, size_t k, float *a,
                        float *b, float *c)
{
    size_t calls = (size_t)(5e7 / (2.0 * m * n * k)) + 1;
    size_t lda = ta ? m : k, ldb = tb ? k : n;
    double t0 = omp_get_wtime();
    for (size_t i = 0; i < calls; i++)
        if (!thin)
            dpt_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        else if (tb)
            dpt_thin_dots(m, n, k, a, lda, b, ldb, c, n, false);
        else
            dpt_thin_gemm(m, n, k, a, ta ? 1 : lda, ta ? m : 1, b, ldb, c, n, false);
    return 2.0 * m * n * k * calls / (omp_get_wtime() - t0) / 1e9;
}

int main(int argc, char **argv)
{
    size_t reps = argc > 1 ? strtoul(argv[1], NULL, 10) : 5;
    if (reps < 1 || reps > 101) {
        fprintf(stderr, "bench_conv_gemm: reps in [1, 101]\n");
        return 2;
    }
    dpt_gemm_init();
    /* cols = nb * HoWo with nb = ceil(256 / HoWo) (conv.c's block) */
    const conv_t convs[] = {
        {"cnn conv0 1->32 28x28", 32, 9, 784},
        {"cnn conv1 32->64 14x14", 64, 288, 392},
        {"r20 conv0 3->16 32x32", 16, 27, 1024},
        {"r20 16->16 32x32", 16, 144, 1024},
        {"r20 16->32 s2 16x16", 32, 144, 256},
        {"r20 32->32 16x16", 32, 288, 256},
        {"r20 32->64 s2 8x8", 64, 288, 256},
        {"r20 64->64 8x8", 64, 576, 256},
        /* Winograd: K = C, cols = a block's tile columns (runs of 16, 8, 4 lanes) */
        {"wino cnn 32->64 14x14", 64, 32, 896},
        {"wino r20 16->16 32x32", 16, 16, 1024},
        {"wino r20 32->32 16x16", 32, 32, 1024},
        {"wino r20 64->64 8x8", 64, 64, 1024},
    };
    float *a = dpt_perf_filled(1 << 20), *b = dpt_perf_filled(1 << 20),
          *c = dpt_perf_filled(1 << 20);
    double *t = calloc(6 * reps, sizeof *t);
    if (!a || !b || !c || !t) return 1;
    printf("kernel,layer,product,shape,gflops\n");
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        const conv_t *v = &convs[i];
        for (size_t r = 0; r < reps; r++)
            for (int thin = 0; thin < 2; thin++) {
                double *tt = t + 3 * thin * reps;
                tt[r] = time_once(thin, false, false, v->out, v->cols, v->ckk, a, b, c);
                tt[reps + r] = time_once(thin, false, true, v->ckk, v->out, v->cols, a, b, c);
                tt[2 * reps + r] = time_once(thin, true, false, v->ckk, v->cols, v->out, a, b, c);
            }
        const char *names[3] = {"forward W col", "dW^T = col dY^T", "dcol = W^T dY"};
        const size_t shapes[3][3] = {
            {v->out, v->cols, v->ckk}, {v->ckk, v->out, v->cols}, {v->ckk, v->cols, v->out}};
        for (int thin = 0; thin < 2; thin++)
            for (int p = 0; p < 3; p++)
                printf("%s,%s,%s,%zux%zux%zu,%.1f\n", thin ? "thin" : dpt_gemm_kernel_name(),
                       v->layer, names[p], shapes[p][0], shapes[p][1], shapes[p][2],
                       dpt_bench_median(t + (3 * thin + p) * reps, reps));
    }
    dpt_free_aligned(a), dpt_free_aligned(b), dpt_free_aligned(c), free(t);
    return 0;
}
