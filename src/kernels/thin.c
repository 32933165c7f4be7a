/* Owns the thin-side products (kernels/thin.h). Both kernels work on fixed 4-row blocks whose
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

/* Columns of C a block of dpt_thin_gemm keeps in registers: 4 rows x 64 = 16 AVX-512 vectors. */
#define GEMM_COLS 64
/* Lanes of a dot product's partial sums. */
#define DOT_LANES 16

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Rows [i, i+4) of C over `width` columns (64 or 16, a constant after inlining, so the
 * accumulators stay in registers; or the last few columns). Each element gets the same
 * operations in the same order whatever its block's width. */
static inline __attribute__((always_inline)) void gemm_block(size_t width, size_t k,
                                                             const float *const a[4], size_t a_cs,
                                                             const float *b, size_t ldb,
                                                             float *const c[4], bool acc)
{
    float s[4][GEMM_COLS];
    for (size_t r = 0; r < 4; r++)
        for (size_t l = 0; l < width; l++)
            s[r][l] = acc ? c[r][l] : 0.0f;
    for (size_t p = 0; p < k; p++) {
        const float *restrict br = b + p * ldb;
        const float a0 = a[0][p * a_cs], a1 = a[1][p * a_cs], a2 = a[2][p * a_cs],
                    a3 = a[3][p * a_cs];
        for (size_t l = 0; l < width; l++) {
            s[0][l] = MADD(a0, br[l], s[0][l]);
            s[1][l] = MADD(a1, br[l], s[1][l]);
            s[2][l] = MADD(a2, br[l], s[2][l]);
            s[3][l] = MADD(a3, br[l], s[3][l]);
        }
    }
    for (size_t r = 0; r < 4; r++)
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
        for (size_t i = 0; i < m; i += 4) {
            const size_t rows = min_sz(4, m - i);
            const float *ar[4];
            float *cr[4];
            float spare[4][GEMM_COLS]; /* rows past the edge: computed, discarded */
            for (size_t r = 0; r < 4; r++) {
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

/* C[i..i+4) x [j..j+4) of the dots; a[r] and b[q] are the rows (edge rows repeated). */
static void dots_block(size_t k, const float *const a[4], const float *const b[4], float out[4][4])
{
    float s[4][4][DOT_LANES];
    memset(s, 0, sizeof s);
    size_t p = 0;
    for (; p + DOT_LANES <= k; p += DOT_LANES)
        for (size_t r = 0; r < 4; r++)
            for (size_t q = 0; q < 4; q++)
                for (size_t l = 0; l < DOT_LANES; l++)
                    s[r][q][l] = MADD(a[r][p + l], b[q][p + l], s[r][q][l]);
    for (size_t r = 0; r < 4; r++)
        for (size_t q = 0; q < 4; q++) {
            for (size_t l = 0; p + l < k; l++)
                s[r][q][l] = MADD(a[r][p + l], b[q][p + l], s[r][q][l]);
            out[r][q] = lane_sum(s[r][q]);
        }
}

void dpt_thin_dots(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                   size_t ldb, float *c, size_t ldc, bool acc)
{
    for (size_t i = 0; i < m; i += 4) {
        const size_t rows = min_sz(4, m - i);
        for (size_t j = 0; j < n; j += 4) {
            const size_t cols = min_sz(4, n - j);
            const float *ar[4], *br[4];
            for (size_t r = 0; r < 4; r++) {
                ar[r] = a + (i + min_sz(r, rows - 1)) * lda;
                br[r] = b + (j + min_sz(r, cols - 1)) * ldb;
            }
            float out[4][4];
            dots_block(k, ar, br, out);
            for (size_t r = 0; r < rows; r++)
                for (size_t q = 0; q < cols; q++) {
                    float *cv = c + (i + r) * ldc + j + q;
                    *cv = acc ? *cv + out[r][q] : out[r][q];
                }
        }
    }
}
