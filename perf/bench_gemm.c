/* Single-thread sgemm GFLOP/s of the shapes one training step of the default MLP runs, with
 * the kernel set dptrain chose (or BLIS_ARCH_TYPE when set). Usage: bench_gemm [rows=128]
 * Prints "kernel,shape,gflops" rows (median of 5). perf/gemm_kernels.sh runs it per kernel set. */
#include <stdio.h>
#include <stdlib.h>

#include "dptrain/bench.h"
#include "kernels/gemm.h"

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? strtoul(argv[1], NULL, 10) : 128;
    if (rows < 1 || rows > 65536) {
        fprintf(stderr, "bench_gemm: rows in [1, 65536]\n");
        return 2;
    }
    dpt_gemm_init();
    const size_t shapes[][3] = {
        {rows, 256, 784}, {rows, 128, 256}, {256, 784, 256}, {512, 256, 784}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        printf("%s,%zux%zux%zu,%.1f\n", dpt_gemm_kernel_name(), shapes[i][0], shapes[i][1],
               shapes[i][2], dpt_bench_sgemm_gflops(shapes[i][0], shapes[i][1], shapes[i][2], 5));
    return 0;
}
