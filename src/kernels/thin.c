/* Owns the thin-side products (kernels/thin.h). Both kernels work on fixed row blocks whose
 * accumulators fit the vector registers; a block past the edge of the matrix repeats its last
 * valid row and stores only the valid ones, so every output element is computed by the same
 * sequence of operations wherever it falls. fmaf keeps one rounding per multiply-add where the
 * CPU has FMA (the build is ISO C, which does not contract a*b+c by itself). */
#include <math.h>
#include <string.h>

#include "kernels/thin.h"

#if defined(__FMA__)
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* The block of C dpt_thin_gemm keeps in registers: 6 rows x 64 columns, 24 of the 32 AVX-512
 * vectors (4 rows where vectors are AVX2's). Measured on an AMD EPYC Zen 5 against 4 rows, on
 * Winograd's products (64 x 1040 x 64: 123 -> 166 GFLOP/s; 32 x 896 x 64: 121 -> 152); 8 rows
 * (32 accumulators) spill and fall back to 4 rows' speed. The block's shape does not change
 * any element's sum: each is one chain of multiply-adds over k, in order. */
#define GEMM_COLS 64
#if defined(__AVX512F__)
#define GEMM_ROWS 6
#else
#define GEMM_ROWS 4
#endif
/* Lanes of a dot product's partial sums, and the block of dots dpt_thin_dots computes at once:
 * 4 x 5 (20 of the 32 AVX-512 vectors), 4 x 4 with AVX2's. Against 4 x 4 on an AMD EPYC Zen 5,
 * Winograd's weight-gradient products ran 1.1-1.25x faster (64 x 64 x 1040: 99 -> 123
 * GFLOP/s; 32 x 64 x 896: 97 -> 122); 4 x 6 and 6 x 4 gained less. The block does not change
 * any dot's sum. */
#define DOT_LANES 16
#define DOT_ROWS 4
#if defined(__AVX512F__)
#define DOT_COLS 5
#else
#define DOT_COLS 4
#endif

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Rows [i, i+GEMM_ROWS) of C over `width` columns (64 or 16, a constant after inlining, so the
 * accumulators stay in registers; or the last few columns). Each element gets the same
 * operations in the same order whatever its block's width. */
static inline __attribute__((always_inline)) void
gemm_block(size_t width, size_t k, const float *const a[GEMM_ROWS], size_t a_cs, const float *b,
           size_t ldb, float *const c[GEMM_ROWS], bool acc)
{
    float s[GEMM_ROWS][GEMM_COLS];
    for (size_t r = 0; r < GEMM_ROWS; r++)
        for (size_t l = 0; l < width; l++)
            s[r][l] = acc ? c[r][l] : 0.0f;
    for (size_t p = 0; p < k; p++) {
        const float *restrict br = b + p * ldb;
        float av[GEMM_ROWS];
        for (size_t r = 0; r < GEMM_ROWS; r++)
            av[r] = a[r][p * a_cs];
        for (size_t l = 0; l < width; l++)
            for (size_t r = 0; r < GEMM_ROWS; r++)
                s[r][l] = MADD(av[r], br[l], s[r][l]);
    }
    for (size_t r = 0; r < GEMM_ROWS; r++)
        memcpy(c[r], s[r], width * sizeof s[r][0]);
}

void dpt_thin_gemm(size_t m, size_t n, size_t k, const float *a, size_t a_rs, size_t a_cs,
                   const float *b, size_t ldb, float *c, size_t ldc, bool acc)
{
    /* Column blocks outside, row blocks inside: one block of B ([k x 64]) is read from cache
     * by every row block instead of all of B from memory by each. */
    size_t j = 0;
    while (j < n) {
        const size_t width = n - j >= GEMM_COLS ? GEMM_COLS : n - j >= 16 ? 16 : n - j;
        for (size_t i = 0; i < m; i += GEMM_ROWS) {
            const size_t rows = min_sz(GEMM_ROWS, m - i);
            const float *ar[GEMM_ROWS];
            float *cr[GEMM_ROWS];
            float spare[GEMM_ROWS][GEMM_COLS]; /* rows past the edge: computed, discarded */
            for (size_t r = 0; r < GEMM_ROWS; r++) {
                ar[r] = a + (i + min_sz(r, rows - 1)) * a_rs;
                cr[r] = r < rows ? c + (i + r) * ldc + j : spare[r];
                if (r >= rows && acc)
                    memcpy(spare[r], c + (i + rows - 1) * ldc + j, width * sizeof(float));
            }
            if (width == GEMM_COLS)
                gemm_block(GEMM_COLS, k, ar, a_cs, b + j, ldb, cr, acc);
            else if (width == 16)
                gemm_block(16, k, ar, a_cs, b + j, ldb, cr, acc);
            else /* the last n % 16 columns: a width known at run time only */
                gemm_block(width, k, ar, a_cs, b + j, ldb, cr, acc);
        }
        j += width;
    }
}

/* The sum of the lanes, in lane order. */
static float lane_sum(const float v[DOT_LANES])
{
    float t = 0.0f;
    for (size_t l = 0; l < DOT_LANES; l++)
        t += v[l];
    return t;
}

/* C[i..i+DOT_ROWS) x [j..j+DOT_COLS) of the dots; a[r] and b[q] are the rows (edge rows
 * repeated). */
static void dots_block(size_t k, const float *const a[DOT_ROWS], const float *const b[DOT_COLS],
                       float out[DOT_ROWS][DOT_COLS])
{
    float s[DOT_ROWS][DOT_COLS][DOT_LANES];
    memset(s, 0, sizeof s);
    size_t p = 0;
    for (; p + DOT_LANES <= k; p += DOT_LANES)
        for (size_t r = 0; r < DOT_ROWS; r++)
            for (size_t q = 0; q < DOT_COLS; q++)
                for (size_t l = 0; l < DOT_LANES; l++)
                    s[r][q][l] = MADD(a[r][p + l], b[q][p + l], s[r][q][l]);
    for (size_t r = 0; r < DOT_ROWS; r++)
        for (size_t q = 0; q < DOT_COLS; q++) {
            for (size_t l = 0; p + l < k; l++)
                s[r][q][l] = MADD(a[r][p + l], b[q][p + l], s[r][q][l]);
            out[r][q] = lane_sum(s[r][q]);
        }
}

void dpt_thin_dots(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                   size_t ldb, float *c, size_t ldc, bool acc)
{
    for (size_t i = 0; i < m; i += DOT_ROWS) {
        const size_t rows = min_sz(DOT_ROWS, m - i);
        for (size_t j = 0; j < n; j += DOT_COLS) {
            const size_t cols = min_sz(DOT_COLS, n - j);
            const float *ar[DOT_ROWS], *br[DOT_COLS];
            for (size_t r = 0; r < DOT_ROWS; r++)
                ar[r] = a + (i + min_sz(r, rows - 1)) * lda;
            for (size_t q = 0; q < DOT_COLS; q++)
                br[q] = b + (j + min_sz(q, cols - 1)) * ldb;
            float out[DOT_ROWS][DOT_COLS];
            dots_block(k, ar, br, out);
            for (size_t r = 0; r < rows; r++)
                for (size_t q = 0; q < cols; q++) {
                    float *cv = c + (i + r) * ldc + j + q;
                    *cv = acc ? *cv + out[r][q] : out[r][q];
                }
        }
    }
}
