/* Owns the fixed-order tree reduction of micro-shard gradients, whole or cut at rank blocks. */
#include "parallel/reducer.h"

static void add_into(float *restrict dst, const float *restrict src, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++)
        dst[i] += src[i];
}

void dpt_reduce_tree(float *const *bufs, size_t n_bufs, size_t lo, size_t hi)
{
    for (size_t stride = 1; stride < n_bufs; stride *= 2)
        for (size_t m = 0; m + stride < n_bufs; m += 2 * stride)
            add_into(bufs[m], bufs[m + stride], lo, hi);
}

/* Shards of node (m, stride): [m, min(m + 2 stride, n)). */
static size_t node_end(size_t m, size_t stride, size_t n)
{
    return m + 2 * stride < n ? m + 2 * stride : n;
}

void dpt_reduce_tree_inside(float *const *bufs, size_t n_bufs, size_t s_lo, size_t s_hi, size_t lo,
                            size_t hi)
{
    for (size_t stride = 1; stride < n_bufs; stride *= 2)
        for (size_t m = 0; m + stride < n_bufs; m += 2 * stride)
            if (m >= s_lo && node_end(m, stride, n_bufs) <= s_hi)
                add_into(bufs[m], bufs[m + stride], lo, hi);
}

/* The block of `bounds` holding shard s. */
static size_t block_of(const size_t *bounds, size_t ranks, size_t s)
{
    size_t r = 0;
    while (r + 1 < ranks && bounds[r + 1] <= s)
        r++;
    return r;
}

void dpt_reduce_tree_across(float *const *bufs, size_t n_bufs, const size_t *bounds, size_t ranks,
                            size_t lo, size_t hi)
{
    for (size_t stride = 1; stride < n_bufs; stride *= 2)
        for (size_t m = 0; m + stride < n_bufs; m += 2 * stride) {
            size_t b = block_of(bounds, ranks, m);
            if (node_end(m, stride, n_bufs) > bounds[b + 1])
                add_into(bufs[m], bufs[m + stride], lo, hi);
        }
}

size_t dpt_reduce_roots(size_t n_bufs, size_t s_lo, size_t s_hi, size_t *roots)
{
    /* Greedy: from each position the largest aligned subtree that ends inside the block.
     * Position p after strides < s holds [p, min(p + s, n)) when p is a multiple of s. */
    size_t k = 0;
    for (size_t p = s_lo; p < s_hi;) {
        size_t s = 1;
        while (p % (2 * s) == 0 && 2 * s < 2 * n_bufs &&
               (p + 2 * s < n_bufs ? p + 2 * s : n_bufs) <= s_hi)
            s *= 2;
        roots[k++] = p;
        p = p + s < n_bufs ? p + s : n_bufs;
    }
    return k;
}
