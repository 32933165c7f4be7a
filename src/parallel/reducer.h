/* The reducer: sums the micro-shard gradient buffers in a fixed tree order, the one place
 * where gradients are combined. Across processes (src/parallel/world.h) the same tree is cut
 * in two: each rank sums the subtrees inside its block of shards, and the owner of a parameter
 * chunk sums the nodes that span ranks, so the result is the one-process tree's, bit for bit. */
#ifndef DPT_PARALLEL_REDUCER_H
#define DPT_PARALLEL_REDUCER_H

#include <stddef.h>

/* Elements per reduction chunk: small enough that the tree over all buffers stays in L1/L2
 * before the optimizer consumes it. */
#define DPT_REDUCE_CHUNK 2048

/* bufs[0][lo,hi) <- sum over m of bufs[m][lo,hi), combined pairwise in a tree fixed by
 * n_bufs alone ((b0+b1)+(b2+b3))+..., so the result does not depend on which thread runs
 * it. Overwrites bufs[1..] in the range.
 *
 * The tree: at stride s = 1, 2, 4, ... node (m, s), m a multiple of 2s with m + s < n_bufs,
 * adds bufs[m + s] into bufs[m]; afterwards bufs[m] holds the sum of shards
 * [m, min(m + 2s, n_bufs)). */
void dpt_reduce_tree(float *const *bufs, size_t n_bufs, size_t lo, size_t hi);

/* The nodes of that tree whose shards all lie in [s_lo, s_hi) (one rank's block): afterwards
 * each root of the block (dpt_reduce_roots) holds its subtree's sum. */
void dpt_reduce_tree_inside(float *const *bufs, size_t n_bufs, size_t s_lo, size_t s_hi, size_t lo,
                            size_t hi);

/* The remaining nodes: those whose shards are not all in one block of `bounds` (ranks + 1
 * shard boundaries, bounds[0] = 0, bounds[ranks] = n_bufs). Needs every block's roots in
 * bufs; leaves the total in bufs[0]. After dpt_reduce_tree_inside on every block, the two
 * together are exactly dpt_reduce_tree. */
void dpt_reduce_tree_across(float *const *bufs, size_t n_bufs, const size_t *bounds, size_t ranks,
                            size_t lo, size_t hi);

/* The roots of block [s_lo, s_hi): the positions whose buffers hold the block's maximal
 * subtrees once dpt_reduce_tree_inside ran, in increasing order, into roots (room for 2 x 64).
 * Returns how many. */
size_t dpt_reduce_roots(size_t n_bufs, size_t s_lo, size_t s_hi, size_t *roots);

#endif
