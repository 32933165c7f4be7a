/* Products with a thin side, which BLIS's packing makes slow: a convolution over one or three
 * input channels (a 3x3 kernel gives an inner dimension of 9 or 27) or a depthwise one (one
 * output channel a group). Plain C loops the compiler vectorises across the long side, in a
 * fixed order of additions that depends on the shape only, so results are reproducible and
 * independent of the thread count, like dpt_sgemm's. Row-major storage throughout. AVX-512
 * builds run the full register blocks in intrinsics (thin.c says why). */
#ifndef DPT_KERNELS_THIN_H
#define DPT_KERNELS_THIN_H

#include <stdbool.h>
#include <stddef.h>

/* C[m x n] (+)= A[m x k] B[k x n] for a small k (or a small m), the long side n vectorised.
 * A is read through strides, a[i * a_rs + p * a_cs], so a weight matrix and its transpose
 * are both A. With acc, C is added to; otherwise written. */
void dpt_thin_gemm(size_t m, size_t n, size_t k, const float *a, size_t a_rs, size_t a_cs,
                   const float *b, size_t ldb, float *c, size_t ldc, bool acc);

/* C[m x n] (+)= A[m x k] B[n x k]^T for small m and n and a long k: m*n dot products of rows
 * of A with rows of B. Each dot sums 16 lanes of k-strided partial sums, then the lanes by a
 * fixed tree (thin.c). With acc, C is added to; otherwise written. */
void dpt_thin_dots(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                   size_t ldb, float *c, size_t ldc, bool acc);

/* dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols: the copy that turns a product
 * A B^T into A (B^T) for dpt_thin_gemm. */
void dpt_thin_transpose(size_t rows, size_t cols, const float *src, size_t lds, float *dst,
                        size_t ldd);

#endif
