/* Tests for src/kernels/gemm.c and thin.c: every transpose case against a naive double loop, and
 * the kernel-set choice. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/thin.h"

static void fill(float *x, size_t n, uint64_t seed)
{
    dpt_rng_t r;
    dpt_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(dpt_rng_uniform(&r) * 2 - 1);
}

/* Element (i, j) of op(X) where X is stored row-major with leading dimension ld. */
static double at(const float *x, size_t ld, bool trans, size_t i, size_t j)
{
    return trans ? x[j * ld + i] : x[i * ld + j];
}

/* What check_call runs: dpt_sgemm_mode with `mode`, or (product >= 0) dpt_product with
 * thin = product, alpha 1 and acc = (beta == 1). */
typedef struct {
    dpt_gemm_b_mode_t mode;
    int product;
} call_t;

static void check_call(call_t call, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                       float beta)
{
    size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    size_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = malloc(arows * lda * sizeof *a), *b = malloc(brows * ldb * sizeof *b);
    float *c = malloc(m * ldc * sizeof *c), *c0 = malloc(m * ldc * sizeof *c0);
    fill(a, arows * lda, 1);
    fill(b, brows * ldb, 2);
    fill(c, m * ldc, 3);
    memcpy(c0, c, m * ldc * sizeof *c);
    /* with the scratch it asks for, so A B^T from 64 rows takes the transpose and the GEMM */
    float *scratch = malloc((dpt_product_scratch_floats(ta, tb, m, n, k) + 1) * sizeof *scratch);
    if (call.product >= 0)
        dpt_product(call.product, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, beta == 1.0f, scratch);
    else
        dpt_sgemm_mode(call.mode, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++)
                s += at(a, lda, ta, i, p) * at(b, ldb, tb, p, j);
            double want = alpha * s + beta * c0[i * ldc + j];
            cr_assert_float_eq(c[i * ldc + j], want, 1e-4 * (1 + fabs(want)),
                               "mode=%d product=%d ta=%d tb=%d (%zu,%zu): %g vs %g", (int)call.mode,
                               call.product, ta, tb, i, j, c[i * ldc + j], want);
        }
        /* Padding between rows must be untouched. */
        for (size_t j = n; j < ldc; j++)
            cr_assert_eq(c[i * ldc + j], c0[i * ldc + j]);
    }
    free(a), free(b), free(c), free(c0), free(scratch);
}

/* Both B modes (BLIS's default path and B packed) must compute the same product, and so must
 * dpt_sgemm, which picks one of them. */
static void check_case(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, float beta)
{
    check_call((call_t){DPT_GEMM_B_BLIS_DEFAULT, -1}, ta, tb, m, n, k, alpha, beta);
    check_call((call_t){DPT_GEMM_B_PACKED, -1}, ta, tb, m, n, k, alpha, beta);
    check_call((call_t){dpt_gemm_b_mode_for(ta, tb), -1}, ta, tb, m, n, k, alpha, beta);
}

/* dpt_product, the door the ops' products take, through either kernel, for every transpose
 * (A^T B^T has no thin form and falls back to BLIS), written and accumulated; A B^T from 64
 * rows through the transpose and the GEMM, with edges in every dimension. */
Test(gemm, product_takes_either_kernel)
{
    const size_t shapes[][3] = {{16, 1040, 16}, {7, 33, 50}, {64, 20, 9}, {66, 17, 35}, {1, 1, 1}};
    cr_assert_eq(dpt_product_scratch_floats(false, true, 64, 20, 9), 180u);
    cr_assert_eq(dpt_product_scratch_floats(false, true, 63, 20, 9), 0u);
    cr_assert_eq(dpt_product_scratch_floats(false, false, 64, 20, 9), 0u);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int thin = 0; thin < 2; thin++)
            for (int t = 0; t < 4; t++)
                for (int acc = 0; acc < 2; acc++)
                    check_call((call_t){DPT_GEMM_B_BLIS_DEFAULT, thin}, t & 1, t >> 1, shapes[s][0],
                               shapes[s][1], shapes[s][2], 1.0f, acc ? 1.0f : 0.0f);
}

Test(gemm, b_mode_depends_on_the_transposes_only)
{
    cr_assert_eq(dpt_gemm_b_mode_for(false, false), DPT_GEMM_B_BLIS_DEFAULT);
    cr_assert_eq(dpt_gemm_b_mode_for(true, false), DPT_GEMM_B_PACKED);
    cr_assert_eq(dpt_gemm_b_mode_for(false, true), DPT_GEMM_B_PACKED);
    cr_assert_eq(dpt_gemm_b_mode_for(true, true), DPT_GEMM_B_PACKED);
}

Test(gemm, no_transpose)
{
    check_case(false, false, 37, 29, 53, 1.0f, 0.0f);
}
Test(gemm, transpose_a)
{
    check_case(true, false, 31, 17, 64, 0.5f, 1.0f);
}
Test(gemm, transpose_b)
{
    check_case(false, true, 64, 33, 19, 1.0f, 1.0f);
}
Test(gemm, transpose_both)
{
    check_case(true, true, 13, 41, 27, -2.0f, 0.25f);
}
Test(gemm, layer_shapes)
{
    check_case(false, false, 128, 256, 784, 1.0f, 0.0f);
    check_case(true, false, 784, 256, 128, 1.0f, 0.0f);
    check_case(false, true, 128, 784, 256, 1.0f, 0.0f);
}

Test(gemm, kernel_set_is_reported_and_never_generic_on_avx2)
{
    dpt_gemm_init();
    cr_assert_neq(strcmp(dpt_gemm_kernel_name(), "uninitialised"), 0);
    cr_assert_gt(strlen(dpt_gemm_kernel_reason()), 0u);
    cr_assert_gt(strlen(dpt_gemm_blis_version()), 0u);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        !getenv("BLIS_ARCH_TYPE"))
        cr_assert_str_neq(dpt_gemm_kernel_name(), "generic");
}

Test(gemm, generic_fallback_is_replaced_and_recognised_sets_are_kept)
{
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512cd");
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool amd = __builtin_cpu_is("amd");
    const char *pick = dpt_gemm_pick_for("generic", 0.1),
               *narrow = dpt_gemm_pick_for("generic", 0.9);
    if (avx512) {
        cr_assert_str_eq(pick, "skx");
        /* narrow models take an AVX2 set with BLIS's small-matrix path */
        cr_assert_str_eq(narrow, amd ? "zen3" : "haswell");
    } else if (avx2) {
        cr_assert(pick && (!strcmp(pick, "zen") || !strcmp(pick, "haswell")));
        cr_assert_str_eq(narrow, pick);
    } else {
        cr_assert_null(pick);
        cr_assert_null(narrow);
    }
    cr_assert_null(dpt_gemm_pick_for("zen3", 0.1), "a set BLIS recognised is kept");
    cr_assert_null(dpt_gemm_pick_for("zen3", 0.9), "a set BLIS recognised is kept");
    /* except haswell on an Intel CPU with AVX-512, which BLIS 0.9.0 does not list, for wide
     * models */
    if (avx512 && __builtin_cpu_is("intel"))
        cr_assert_str_eq(dpt_gemm_pick_for("haswell", 0.1), "skx");
    else
        cr_assert_null(dpt_gemm_pick_for("haswell", 0.1));
    cr_assert_null(dpt_gemm_pick_for("haswell", 0.9));
}

/* kernels/thin.c: dpt_thin_gemm with A read directly and transposed (strides), row counts
 * that are and are not multiples of the row block (6 rows with AVX-512, 4 without), column counts
 * that end in a 64-wide, a 16-wide and a one-column piece, written and accumulated; against a
 * double loop. */
static void check_thin_gemm(size_t m, size_t n, size_t k, bool a_trans, bool acc)
{
    const size_t a_rs = a_trans ? 1 : k, a_cs = a_trans ? m : 1, ldb = n + 3, ldc = n + 5;
    float *a = malloc(m * k * sizeof *a), *b = malloc(k * ldb * sizeof *b);
    float *c = malloc(m * ldc * sizeof *c), *c0 = malloc(m * ldc * sizeof *c0);
    fill(a, m * k, 11);
    fill(b, k * ldb, 12);
    fill(c, m * ldc, 13);
    memcpy(c0, c, m * ldc * sizeof *c);
    dpt_thin_gemm(m, n, k, a, a_rs, a_cs, b, ldb, c, ldc, acc);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = acc ? c0[i * ldc + j] : 0.0;
            for (size_t p = 0; p < k; p++)
                s += (double)a[i * a_rs + p * a_cs] * b[p * ldb + j];
            cr_assert(fabs(c[i * ldc + j] - s) <= 1e-5 * (k + 1),
                      "thin_gemm %zux%zux%zu (A^T %d, acc %d): C[%zu][%zu] = %g, expected %g", m, n,
                      k, a_trans, acc, i, j, c[i * ldc + j], s);
        }
        for (size_t j = n; j < ldc; j++) /* the padding of each row is left alone */
            cr_assert_eq(c[i * ldc + j], c0[i * ldc + j]);
    }
    free(a), free(b), free(c), free(c0);
}

Test(thin, gemm_shapes_edges_and_strides)
{
    const size_t shapes[][3] = {{32, 784, 9}, {5, 97, 3},   {1, 1, 1}, {7, 64, 27},
                                {4, 17, 32},  {9, 200, 40}, {3, 15, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 2; t++)
            for (int acc = 0; acc < 2; acc++)
                check_thin_gemm(shapes[s][0], shapes[s][1], shapes[s][2], t, acc);
}

/* dpt_thin_dots: C = A B^T over a long k, with k below, at and off the 16-lane step. */
static void check_thin_dots(size_t m, size_t n, size_t k, bool acc)
{
    const size_t lda = k + 1, ldb = k + 2, ldc = n + 3;
    float *a = malloc(m * lda * sizeof *a), *b = malloc(n * ldb * sizeof *b);
    float *c = malloc(m * ldc * sizeof *c), *c0 = malloc(m * ldc * sizeof *c0);
    fill(a, m * lda, 21);
    fill(b, n * ldb, 22);
    fill(c, m * ldc, 23);
    memcpy(c0, c, m * ldc * sizeof *c);
    dpt_thin_dots(m, n, k, a, lda, b, ldb, c, ldc, acc);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = acc ? c0[i * ldc + j] : 0.0;
            for (size_t p = 0; p < k; p++)
                s += (double)a[i * lda + p] * b[j * ldb + p];
            cr_assert(fabs(c[i * ldc + j] - s) <= 1e-5 * (k + 1),
                      "thin_dots %zux%zux%zu (acc %d): C[%zu][%zu] = %g, expected %g", m, n, k, acc,
                      i, j, c[i * ldc + j], s);
        }
        for (size_t j = n; j < ldc; j++)
            cr_assert_eq(c[i * ldc + j], c0[i * ldc + j]);
    }
    free(a), free(b), free(c), free(c0);
}

Test(thin, dots_shapes_and_edges)
{
    const size_t shapes[][3] = {{9, 32, 784}, {5, 7, 15},     {1, 1, 1},
                                {4, 4, 16},   {27, 16, 1033}, {3, 6, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int acc = 0; acc < 2; acc++)
            check_thin_dots(shapes[s][0], shapes[s][1], shapes[s][2], acc);
}

/* dpt_thin_transpose: whole 16 x 16 blocks, their edges and matrices smaller than a block,
 * with row strides wider than the rows. */
Test(thin, transpose_blocks_and_edges)
{
    const size_t shapes[][2] = {{64, 256}, {16, 16}, {37, 50}, {5, 3}, {17, 33}, {1, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const size_t rows = shapes[s][0], cols = shapes[s][1], lds = cols + 7, ldd = rows + 3;
        float *src = malloc(rows * lds * sizeof *src), *dst = malloc(cols * ldd * sizeof *dst);
        for (size_t i = 0; i < rows * lds; i++)
            src[i] = (float)i;
        for (size_t i = 0; i < cols * ldd; i++)
            dst[i] = -1.0f;
        dpt_thin_transpose(rows, cols, src, lds, dst, ldd);
        for (size_t c = 0; c < cols; c++)
            for (size_t r = 0; r < ldd; r++)
                cr_assert_eq(dst[c * ldd + r], r < rows ? src[r * lds + c] : -1.0f,
                             "%zux%zu: dst[%zu][%zu]", rows, cols, c, r);
        free(src), free(dst);
    }
}

/* The small-matrix path is what decides thin convolutions: BLIS 0.9.0 has it in its AVX2 sets
 * and not in skx or generic (ctest runs test_op_conv once more on generic). */
Test(gemm, small_path_follows_the_kernel_set)
{
    dpt_gemm_init();
    const char *name = dpt_gemm_kernel_name();
    const bool has = !strcmp(name, "haswell") || !strncmp(name, "zen", 3);
    const bool lacks = !strcmp(name, "skx") || !strcmp(name, "generic");
    if (has) cr_assert(dpt_gemm_small_path(), "%s has BLIS's sup path", name);
    if (lacks) cr_assert_not(dpt_gemm_small_path(), "%s has no sup path", name);
    cr_assert(has || lacks, "kernel set %s: add it to this test", name);
}
