/* The cross-rank gradient exchange against MPI_Allreduce, side by side between the same
 * ranks. Run under a launcher:  mpirun -np 2 build/bench_exchange [MiB=16] [shards=ranks]
 * [reps=15]. Each rank owns a contiguous block of `shards` micro-shards (as a training step);
 * the exchange is dptrain's: the subtrees inside each block, a point-to-point reduce-scatter
 * of their roots, the tree's spanning nodes on each chunk owner, an allgather
 * (src/parallel/world.c). MPI_Allreduce sums one buffer per rank in an order MPI chooses.
 * Prints per size: median milliseconds of each, algorithm bandwidth (bytes / time) and bus
 * bandwidth (2 (p - 1) / p x bytes / time, what a ring moves per rank), and the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "parallel/reducer.h"
#include "parallel/world.h"

#ifdef DPT_HAVE_MPI
#include <mpi.h>

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

int main(int argc, char **argv)
{
    if (dpt_world_init(&argc, &argv) != DPT_OK || dpt_world_size() < 2) {
        fprintf(stderr, "bench_exchange: run it under mpirun with -np 2 or more (%s)\n",
                dpt_last_error());
        return 2;
    }
    const size_t ranks = dpt_world_size(), rank = dpt_world_rank();
    const double mib = argc > 1 ? atof(argv[1]) : 16.0;
    const size_t shards = argc > 2 ? strtoul(argv[2], NULL, 10) : ranks;
    const size_t reps = argc > 3 ? strtoul(argv[3], NULL, 10) : 15;
    const size_t n = (size_t)(mib * 1048576.0 / sizeof(float));
    if (shards < ranks || shards > 64 || reps < 1 || n < 16) {
        fprintf(stderr, "bench_exchange: shards in [ranks, 64], reps >= 1, size >= 64 B\n");
        return 2;
    }
    size_t bounds[DPT_WORLD_MAX_RANKS + 1], chunk[DPT_WORLD_MAX_RANKS + 1];
    dpt_world_shard_bounds(shards, ranks, bounds);
    dpt_world_chunk_bounds(n, ranks, chunk);
    float *grads[64];
    for (size_t s = 0; s < shards; s++) {
        grads[s] = dpt_alloc_aligned(n * sizeof(float));
        if (!grads[s]) return 5;
        for (size_t i = 0; i < n; i++)
            grads[s][i] = (float)((s * 31 + i) % 97) * 0.01f;
    }
    float *ar = dpt_alloc_aligned(n * sizeof(float));
    double *t_ours = calloc(reps, sizeof(double)), *t_mpi = calloc(reps, sizeof(double));
    if (!ar || !t_ours || !t_mpi) return 5;
    const size_t warm = 3;
    for (size_t it = 0; it < warm + reps; it++) {
        /* Interleaved, so that both see the same machine. */
        dpt_world_barrier();
        double t0 = MPI_Wtime();
        for (size_t c = 0; c < n; c += DPT_REDUCE_CHUNK)
            dpt_reduce_tree_inside(grads, shards, bounds[rank], bounds[rank + 1], c,
                                   c + DPT_REDUCE_CHUNK < n ? c + DPT_REDUCE_CHUNK : n);
        dpt_world_scatter_roots(grads, shards, bounds, chunk);
        for (size_t c = chunk[rank]; c < chunk[rank + 1]; c += DPT_REDUCE_CHUNK)
            dpt_reduce_tree_across(grads, shards, bounds, ranks, c,
                                   c + DPT_REDUCE_CHUNK < chunk[rank + 1] ? c + DPT_REDUCE_CHUNK
                                                                          : chunk[rank + 1]);
        dpt_world_allgather_chunks(grads[0], chunk);
        double t1 = MPI_Wtime();
        dpt_world_barrier();
        memcpy(ar, grads[bounds[rank]], n * sizeof(float));
        dpt_world_barrier();
        double t2 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, ar, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double t3 = MPI_Wtime();
        double mine[2] = {t1 - t0, t3 - t2}, slowest[2];
        MPI_Allreduce(mine, slowest, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (it >= warm) t_ours[it - warm] = slowest[0], t_mpi[it - warm] = slowest[1];
    }
    double mo = median(t_ours, reps), mm = median(t_mpi, reps);
    double bytes = (double)n * sizeof(float), bus = 2.0 * (double)(ranks - 1) / (double)ranks;
    if (rank == 0) {
        printf("ranks,shards,mib,exchange_ms,allreduce_ms,exchange_algbw_gbs,allreduce_algbw_gbs,"
               "exchange_busbw_gbs,allreduce_busbw_gbs,exchange_over_allreduce_bw\n");
        printf("%zu,%zu,%.3g,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f\n", ranks, shards, mib, mo * 1e3,
               mm * 1e3, bytes / mo / 1e9, bytes / mm / 1e9, bus * bytes / mo / 1e9,
               bus * bytes / mm / 1e9, mm / mo);
    }
    for (size_t s = 0; s < shards; s++)
        dpt_free_aligned(grads[s]);
    dpt_free_aligned(ar);
    free(t_ours), free(t_mpi);
    dpt_world_finalize();
    return 0;
}
#else
int main(void)
{
    fprintf(stderr, "bench_exchange: this build has no MPI (configure with -DDPT_MPI=ON)\n");
    return 6;
}
#endif
