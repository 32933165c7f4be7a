/* The reducer: sums the micro-shard gradient buffers in a fixed tree order, the one place
 * where gradients are combined (and where an MPI allreduce will later join in). */
#ifndef DPT_PARALLEL_REDUCER_H
#define DPT_PARALLEL_REDUCER_H

#include <stddef.h>

/* Elements per reduction chunk: small enough that the tree over all buffers stays in L1/L2
 * before the optimizer consumes it. */
#define DPT_REDUCE_CHUNK 2048

/* bufs[0][lo,hi) <- sum over m of bufs[m][lo,hi), combined pairwise in a tree fixed by
 * n_bufs alone ((b0+b1)+(b2+b3))+..., so the result does not depend on which thread runs
 * it. Overwrites bufs[1..] in the range. */
void dpt_reduce_tree(float *const *bufs, size_t n_bufs, size_t lo, size_t hi);

#endif
