/* Owns the thin-side products (kernels/thin.h) and the transpose that feeds them. Both product
 * kernels work on fixed row blocks whose accumulators fit the vector registers; a block past
 * the edge of the matrix repeats its last valid row and stores only the valid ones, so every
 * output element is computed by the same sequence of operations wherever it falls. fmaf keeps
 * one rounding per multiply-add where the CPU has FMA (the build is ISO C, which does not
 * contract a*b+c by itself); the AVX-512 intrinsic blocks use the same fused multiply-add, so
 * the plain and the intrinsic code give the same bits. */
#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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
 * 6 x 4 (24 of the 32 AVX-512 vectors), 4 x 4 with AVX2's. With the lanes summed by a tree
 * (lane_sums), 6 x 4 ran 1.05-1.15x faster than 4 x 5 on an AMD EPYC Zen 5 (64 x 64 x 256, the
 * weight gradient of an 8x8 Winograd layer on a 16-row shard: 98 -> 103 GFLOP/s; 16 x 16 x
 * 1024: 108 -> 121); 8 x 3 about the same, 7 x 4 and 8 x 4 (28, 32 accumulators) spill and
 * run at a third. Where each dot's lanes were summed one by one, 4 x 5 had been the best. The
 * block does not change any dot's sum. */
#define DOT_LANES 16
#define DOT_COLS 4
#if defined(__AVX512F__)
#define DOT_ROWS 6
#else
#define DOT_ROWS 4
#endif

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Rows [i, i+GEMM_ROWS) of C over `width` columns (64, 32 or 16, a constant after inlining, so
 * the accumulators stay in registers; or the last few columns): the plain-C block, which AVX-512
 * builds use for the last n % 16 columns only (gemm_block_vec below takes the rest). Each element
 * gets the same operations in the same order whatever its block's width. */
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

#if defined(__AVX512F__) && defined(__FMA__)
/* gemm_block for 6 rows and nv (4, 2 or 1, a constant after inlining) vectors of 16 columns,
 * in AVX-512 intrinsics: the 6*nv accumulators, B's nv vectors and one broadcast at a time fit
 * the 32 registers. From the plain loops GCC unrolled k twice and kept 6-8 accumulators and
 * the row pointers on the stack (objdump). The same fused multiply-add per element, in the
 * same order over k: the same bits. On an AMD EPYC Zen 5, Winograd's products ran 1.7x (16 x
 * 1024 x 16: 110 -> 185 GFLOP/s), 1.37x (32 x 1024 x 32: 138 -> 190) and 1.22x (64 x 256 x 64:
 * 173 -> 211) faster with 4 vectors. */
_Static_assert(GEMM_ROWS == 6, "gemm_block_vec is written for 6 rows");
static inline __attribute__((always_inline)) void
gemm_block_vec(size_t nv, size_t k, const float *const a[GEMM_ROWS], size_t a_cs, const float *b,
               size_t ldb, float *const c[GEMM_ROWS], bool acc)
{
    __m512 s[GEMM_ROWS][4];
    for (size_t r = 0; r < GEMM_ROWS; r++)
        for (size_t q = 0; q < nv; q++)
            s[r][q] = acc ? _mm512_loadu_ps(c[r] + 16 * q) : _mm512_setzero_ps();
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (size_t p = 0; p < k; p++, b += ldb) {
        __m512 bv[4];
        for (size_t q = 0; q < nv; q++)
            bv[q] = _mm512_loadu_ps(b + 16 * q);
        const size_t o = p * a_cs;
#define ROW(r, ar)                                                                                 \
    do {                                                                                           \
        const __m512 av = _mm512_set1_ps(ar[o]);                                                   \
        for (size_t q = 0; q < nv; q++)                                                            \
            s[r][q] = _mm512_fmadd_ps(av, bv[q], s[r][q]);                                         \
    } while (0)
        ROW(0, a0);
        ROW(1, a1);
        ROW(2, a2);
        ROW(3, a3);
        ROW(4, a4);
        ROW(5, a5);
#undef ROW
    }
    for (size_t r = 0; r < GEMM_ROWS; r++)
        for (size_t q = 0; q < nv; q++)
            _mm512_storeu_ps(c[r] + 16 * q, s[r][q]);
}
#define GEMM_BLOCK_VEC(nv, k, a, a_cs, b, ldb, c, acc)                                             \
    gemm_block_vec(nv, k, a, a_cs, b, ldb, c, acc)
#else
#define GEMM_BLOCK_VEC(nv, k, a, a_cs, b, ldb, c, acc)                                             \
    gemm_block(16 * (nv), k, a, a_cs, b, ldb, c, acc)
#endif

void dpt_thin_gemm(size_t m, size_t n, size_t k, const float *a, size_t a_rs, size_t a_cs,
                   const float *b, size_t ldb, float *c, size_t ldc, bool acc)
{
    /* Column blocks outside, row blocks inside: one block of B ([k x 64]) is read from cache
     * by every row block instead of all of B from memory by each. */
    size_t j = 0;
    while (j < n) {
        const size_t width = n - j >= GEMM_COLS ? GEMM_COLS
                             : n - j >= 32      ? 32
                             : n - j >= 16      ? 16
                                                : n - j;
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
                GEMM_BLOCK_VEC(4, k, ar, a_cs, b + j, ldb, cr, acc);
            else if (width == 32)
                GEMM_BLOCK_VEC(2, k, ar, a_cs, b + j, ldb, cr, acc);
            else if (width == 16)
                GEMM_BLOCK_VEC(1, k, ar, a_cs, b + j, ldb, cr, acc);
            else /* the last n % 16 columns: a width known at run time only */
                gemm_block(width, k, ar, a_cs, b + j, ldb, cr, acc);
        }
        j += width;
    }
}

/* Sums of 16 vectors of lane partial sums at once, by a tree that pairs them up while it
 * halves the lanes: level one adds lanes l and l + 8 of two vectors into one (the first's
 * sums in lanes 0-7, the second's in 8-15), level two l and l + 4 of those, and so on, until
 * lane d holds the sum of vector d. Every vector's lanes are added in the same order, which
 * depends on nothing but the lane: ((l + l+8) + (l+4 + l+12)) + ..., and a vector's sum does
 * not depend on its neighbours, so padding with zero vectors changes nothing. 15 vector adds
 * and 30 shuffles for 16 dots, where summing each dot's lanes one by one took 15 dependent
 * scalar adds a dot, about a fifth of dpt_thin_dots's time on ResNet-20's Winograd weight
 * gradients (perf annotate, AMD EPYC Zen 5). */
typedef float lanes_t __attribute__((vector_size(DOT_LANES * sizeof(float))));

/* Lane j of a fold at half-width h takes, from a's and then b's lanes (0-31), lane
 * FOLD_LO(h, j) plus the lane h further on: the low and the high half of each group of 2h. */
#define FOLD_LO(h, j) ((j) / (h)*2 * (h) + (j) % (h))
#define FOLD_HALF(a, b, h, o)                                                                      \
    __builtin_shufflevector(                                                                       \
        a, b, FOLD_LO(h, 0) + (o), FOLD_LO(h, 1) + (o), FOLD_LO(h, 2) + (o), FOLD_LO(h, 3) + (o),  \
        FOLD_LO(h, 4) + (o), FOLD_LO(h, 5) + (o), FOLD_LO(h, 6) + (o), FOLD_LO(h, 7) + (o),        \
        FOLD_LO(h, 8) + (o), FOLD_LO(h, 9) + (o), FOLD_LO(h, 10) + (o), FOLD_LO(h, 11) + (o),      \
        FOLD_LO(h, 12) + (o), FOLD_LO(h, 13) + (o), FOLD_LO(h, 14) + (o), FOLD_LO(h, 15) + (o))
/* t[i] = the fold of t[2i] and t[2i+1] at half-width h (a constant: the shuffles' lanes must
 * be). Vectors pass by pointer: by value, their ABI differs with and without AVX-512. */
#define FOLD(t, i, h)                                                                              \
    do {                                                                                           \
        const lanes_t a_ = (t)[2 * (i)], b_ = (t)[2 * (i) + 1];                                    \
        (t)[i] = FOLD_HALF(a_, b_, h, 0) + FOLD_HALF(a_, b_, h, h);                                \
    } while (0)

/* out[d] = the sum of the lanes of v[d], d < n <= DOT_LANES. */
static inline __attribute__((always_inline)) void lane_sums(float (*v)[DOT_LANES], size_t n,
                                                            float *out)
{
    lanes_t t[DOT_LANES];
    for (size_t d = 0; d < DOT_LANES; d++) {
        lanes_t z = {0};
        if (d < n) memcpy(&z, v[d], sizeof z);
        t[d] = z;
    }
    for (int i = 0; i < 8; i++)
        FOLD(t, i, 8);
    for (int i = 0; i < 4; i++)
        FOLD(t, i, 4);
    for (int i = 0; i < 2; i++)
        FOLD(t, i, 2);
    FOLD(t, 0, 1);
    float sums[DOT_LANES];
    memcpy(sums, &t[0], sizeof sums);
    for (size_t d = 0; d < n; d++)
        out[d] = sums[d];
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
        for (size_t q = 0; q < DOT_COLS; q++)
            for (size_t l = 0; p + l < k; l++)
                s[r][q][l] = MADD(a[r][p + l], b[q][p + l], s[r][q][l]);
    float(*dots)[DOT_LANES] = &s[0][0];
    float *flat = &out[0][0];
    for (size_t d = 0; d < DOT_ROWS * DOT_COLS; d += DOT_LANES) {
        const size_t n = DOT_ROWS * DOT_COLS - d < DOT_LANES ? DOT_ROWS * DOT_COLS - d : DOT_LANES;
        lane_sums(dots + d, n, flat + d);
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

#if defined(__AVX512F__)
/* dst rows 0-15 = columns of the 16 x 16 block at src: 32-bit, 64-bit and twice 128-bit
 * interleaves, 64 shuffles for 256 floats. */
static void transpose16(const float *src, size_t lds, float *dst, size_t ldd)
{
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + (size_t)i * lds);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int h = 0; h < 2; h++) {
            const __m512d a = _mm512_castps_pd(t[i + h]), b = _mm512_castps_pd(t[i + h + 2]);
            u[i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            u[i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    for (int i = 0; i < 16; i += 8) /* u[i..i+8) rows 4 a 128-bit lane */
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(u[i + j], u[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(u[i + j], u[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        _mm512_storeu_ps(dst + (size_t)j * ldd, _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88));
        _mm512_storeu_ps(dst + (size_t)(j + 8) * ldd, _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd));
    }
}
#endif

void dpt_thin_transpose(size_t rows, size_t cols, const float *src, size_t lds, float *dst,
                        size_t ldd)
{
    size_t r0 = 0;
#if defined(__AVX512F__)
    for (; r0 + 16 <= rows; r0 += 16) {
        size_t c0 = 0;
        for (; c0 + 16 <= cols; c0 += 16)
            transpose16(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd);
        for (size_t c = c0; c < cols; c++)
            for (size_t r = r0; r < r0 + 16; r++)
                dst[c * ldd + r] = src[r * lds + c];
    }
#endif
    for (size_t c = 0; c < cols; c++)
        for (size_t r = r0; r < rows; r++)
            dst[c * ldd + r] = src[r * lds + c];
}
