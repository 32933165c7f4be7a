/* Single-precision GEMM for the layers, on BLIS, one thread per call, plus the process-wide
 * choice of BLIS kernel set. This header does not expose BLIS: only gemm.c includes blis.h. */
#ifndef DPT_KERNELS_GEMM_H
#define DPT_KERNELS_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "dptrain/status.h"

/* Chooses the BLIS kernel set and initialises BLIS. Idempotent and thread-safe; call it
 * before the first parallel region (dpt_trainer_create and `dptrain info` do).
 * BLIS reads BLIS_ARCH_TYPE once, at its first initialisation: an explicit user setting
 * wins; otherwise dptrain asks BLIS (in a short-lived child process) which set it would
 * pick, keeps it when BLIS recognises the CPU, and when BLIS falls back to its slow
 * `generic` kernels (Debian's 0.9.0 on CPUs newer than it) forces the fastest set the CPU
 * supports. Call it before any threads are started: the probe forks. */
dpt_status_t dpt_gemm_init(void);
/* Asks BLIS (in a short-lived child process) which kernel set it would pick, and keeps the
 * answer for dpt_gemm_init. The program calls it first thing, while its heap is small: the
 * child is a copy of the whole process (memory checkers see the parent's allocations in it).
 * dpt_gemm_init asks itself when this was not called. Not thread-safe: call it before any
 * threads start. */
void dpt_gemm_probe(void);

/* dpt_gemm_init with a hint about the products to come: the share of their FLOPs in GEMMs
 * with min(M, N, K) < 64 ("narrow"). On Intel CPUs with AVX-512 where BLIS 0.9.0 picks its AVX2
 * `haswell` set, dptrain forces `skx` unless that share is over one half: skx is 1.1-1.4x
 * faster on wide products (the MLP, 64+ channels) and haswell's small-matrix path on narrow
 * ones (ResNet-20's 16- and 32-channel stages). On CPUs with AVX-512 that BLIS does not
 * recognise (AMD Zen 5), the same rule picks skx or, for narrow models, zen3 (AMD) or haswell.
 * Only the first call of either function counts. */
dpt_status_t dpt_gemm_init_narrow(double narrow_share);

/* The decision rule, for tests: given the kernel set BLIS picks by itself on this CPU
 * ("zen3", "generic", ...) and the model's narrow share, the set dptrain forces instead, or
 * NULL to keep BLIS's choice. */
const char *dpt_gemm_pick_for(const char *blis_own, double narrow_share);

/* Name of the kernel set in use ("skx", "zen", "generic", ...), the reason it was chosen,
 * and the BLIS version string. Valid after dpt_gemm_init. */
const char *dpt_gemm_kernel_name(void);
const char *dpt_gemm_kernel_reason(void);
const char *dpt_gemm_blis_version(void);

/* Whether the kernel set in use has BLIS's small-matrix ("sup") path for sgemm, which reads
 * small operands without packing them (haswell, zen, zen2, zen3 in BLIS 0.9.0; not skx). */
bool dpt_gemm_small_path(void);

/* Whether kernels/thin.c beats BLIS on products with a short side (an inner dimension or an
 * output of 64 or less: thin convolutions, Winograd's 16 products) on this CPU and kernel set:
 * where the set has no small-matrix path, and on AMD Zen 5 and later (AVX-512 at full width)
 * in an AVX-512 build, where thin.c ran Winograd's products 1.2-1.6x faster than zen3's
 * small-matrix path. On a Zen 4 BLIS's zen3 path wins (docs/performance.md). A property of
 * the machine, so fixed for a process and the same for every thread count. */
bool dpt_gemm_thin_wins(void);

/* Whether dpt_thin_gemm also beats BLIS on products with no short side (a convolution's
 * forward W col and input gradient W^T dY with K = C*K*K of 144-576): on AMD Zen 5 and later
 * in an AVX-512 build, 1.7-1.9x zen3's speed on ResNet-20's strided convolutions (64 x 256 x
 * 288: 100 -> 192 GFLOP/s). Not its dots (weight gradients over 256 columns: 61 against 84). */
bool dpt_gemm_thin_any_shape(void);

/* How BLIS is asked to treat B. Small products go through BLIS's unpacked "sup" path by
 * default, which is fastest for x W but reads a transposed operand poorly; packing B fixes
 * that (perf/bench_step_gemm times each product of a step both ways). */
typedef enum { DPT_GEMM_B_BLIS_DEFAULT, DPT_GEMM_B_PACKED } dpt_gemm_b_mode_t;

/* The mode dpt_sgemm uses: packed whenever an operand is transposed (the weight and input
 * gradients). It depends on the shape of the product only, never on the calling thread, so
 * results stay bitwise identical for any thread count. */
dpt_gemm_b_mode_t dpt_gemm_b_mode_for(bool trans_a, bool trans_b);

/* C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is m x k: A is stored
 * m x k (lda >= k) or, with trans_a, k x m (lda >= m); likewise B. Runs on the calling
 * thread only, whatever BLIS_NUM_THREADS / OMP_NUM_THREADS say. Thread-safe. */
void dpt_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc);

/* C (+)= op(A) op(B) (added to when acc, written otherwise), as dpt_sgemm with alpha 1, through
 * kernels/thin.c when `thin` (dpt_gemm_thin_wins and dpt_gemm_thin_any_shape say where that is
 * the faster kernel; A^T B^T has no thin form and takes BLIS). A B^T runs as dot products of
 * rows (dpt_thin_dots), or, where dpt_product_scratch_floats is not 0 and scratch (that many
 * floats, or NULL) is given, as B^T transposed into scratch and a dpt_thin_gemm; the others as
 * dpt_thin_gemm with A read through strides. The one place where an op's product picks its
 * kernel. */
void dpt_product(bool thin, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                 const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                 bool acc, float *scratch);

/* The scratch floats dpt_product can use for this shape (0: it uses none): k x n for A B^T
 * from 64 rows of A. A function of the shape only, so an op's workspace does not depend on
 * the machine. */
size_t dpt_product_scratch_floats(bool trans_a, bool trans_b, size_t m, size_t n, size_t k);

/* dpt_sgemm with an explicit B mode, for tests and benchmarks. */
void dpt_sgemm_mode(dpt_gemm_b_mode_t mode, bool trans_a, bool trans_b, size_t m, size_t n,
                    size_t k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                    float beta, float *c, size_t ldc);

#endif
