/* Owns the Winograd F(2x2, 3x3) lowering of 3x3 / stride 1 / pad 1 convolutions.
 *
 * The padded input plane (H+2 x W+2, zero border) is cut into 4x4 patches d two apart; patch
 * (ti, tj) gives the 2x2 output tile at (2ti, 2tj). With th = ceil(H/2), tw = ceil(W/2) and
 * T = th*tw tiles a sample, a block of nb samples has cols = nb*T columns t = b*T + ti*tw + tj:
 *   U[xi] [OUT x C]     = (G g G^T)[xi] of each 3x3 kernel g = w[o][c]   (xi = 4i + j, 16)
 *   V[xi] [C x cols]    = (B^T d B)[xi] of each patch
 *   M[xi] [OUT x cols]  = U[xi] V[xi]                                    (16 GEMMs)
 *   y tile              = A^T M A (+ bias), cut to H x W
 * Backward, with dM = A dy_tile A^T (dy zero past H, W):
 *   dU[xi] = dM[xi] V[xi]^T (over the blocks), dw = G^T dU G
 *   dV[xi] = U[xi]^T dM[xi], dx += B dV B^T of each patch, overlapping patches added in a
 *   fixed order and the padding border dropped
 * with the matrices of Lavin and Gray 2016:
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * The products are 16 * 2*OUT*C per tile against 36 * 2*OUT*C for im2col; the transforms
 * add O(C + OUT) per tile. Every sum runs in an order fixed by the shape and the rows of a
 * pass, so results are reproducible and independent of the thread count. Tiles are
 * transformed LANES at a time through small local arrays, which the compiler vectorises. */
#include "nn/conv_winograd.h"

#include <stdint.h>
#include <string.h>

#include "kernels/gemm.h"

/* Tile columns a block of samples aims for. Measured on one thread (AMD EPYC Zen 4, zen3
 * kernels), the 16 products of a block against the im2col product of the same samples:
 * 16 channels at 32x32, 256 columns (one sample) 1.28x faster, 1024 columns (4) 1.68x;
 * 32 -> 64 channels at 14x14, 98 columns 1.64x, 392 2.01x. */
#define WINO_BLOCK_COLS 1024
enum { TILE = 16, LANES = 16 };

/* A block's nb samples are transformed together, channel by channel: their planes lie one
 * after the other (ps floats each, pitch pw), followed by one plane of zeros, and column t of
 * V and M is the tile that starts at off[t] in them. The columns come in chunks of LANES,
 * each chunk LANES/g runs of g lanes, a run g consecutive tiles of one tile row (the lanes 2
 * floats apart, which the compiler turns into vector loads and stores). With g = 1 every lane
 * is gathered on its own. Lanes with no tile (a tile row's lanes past tw, the columns past
 * the block's samples) read zeros, so their columns of V and dM are exactly 0: they add
 * nothing to any product or gradient, and their outputs are dropped. */
typedef struct wino_layout {
    size_t th, tw;     /* tile rows and columns of a sample */
    size_t g, rw, sc;  /* lanes a run, a tile row (tw rounded up to g) and a sample (th*rw) */
    size_t pw, ph, ps; /* a plane's pitch 2*rw + 2, its rows 2*th + 2, its floats */
    size_t nb, cols;   /* samples a block; columns of a full one (whole chunks) */
    size_t ld, vs, ms; /* row stride of V and M; the stride from V[xi] to V[xi+1], M's */
    size_t u, dut, v, m, mt, planes, off, total; /* offsets in floats */
} wino_layout_t;

/* The stride of the 16 matrices of V or M, each of n floats (a multiple of 16): an odd number
 * of 64-byte lines, so the 16 rows a transform reads or writes at once fall into 16
 * different cache sets. At C*ld floats, a multiple of 1024 whenever C is of 64, all 16 fell
 * into one set of the 8-way L1 and the transforms ran 3-4x slower. */
static size_t odd_lines(size_t n)
{
    return n / 16 % 2 ? n : n + 16;
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Lanes of a run for tile rows tw tiles wide: 4, 8 or 16, the fewest that hold a row (wider
 * rows take several runs of 16), if the empty lanes that adds cost at most one product column
 * in 8 (14x14 planes: 7 tiles a row in 8 lanes); else 1, gathered. Runs are 2.7x faster than
 * gathered lanes for 16 channels at 32x32 (AMD EPYC Zen 4). */
static size_t run_lanes(size_t tw)
{
    const size_t g = tw <= 4 ? 4 : tw <= 8 ? 8 : 16;
    return 7 * round_up(tw, g) <= 8 * tw ? g : 1;
}

static wino_layout_t layout_of(const dpt_wino_dims_t *d, size_t rows)
{
    wino_layout_t l = {.th = (d->h + 1) / 2, .tw = (d->w + 1) / 2};
    l.g = run_lanes(l.tw);
    l.rw = round_up(l.tw, l.g), l.sc = l.th * l.rw;
    l.pw = 2 * l.rw + 2, l.ph = 2 * l.th + 2, l.ps = l.pw * l.ph;
    l.nb = (WINO_BLOCK_COLS + l.sc - 1) / l.sc;
    if (l.nb > rows) l.nb = rows;
    if (l.nb == 0) l.nb = 1;
    l.cols = round_up(l.nb * l.sc, LANES);
    l.ld = dpt_conv_padded_ld(l.cols);
    l.vs = odd_lines(d->c * l.ld), l.ms = odd_lines(d->out * l.ld);
    l.u = 0;
    l.dut = l.u + TILE * d->out * d->c;
    l.v = l.dut + TILE * d->c * d->out;
    l.m = l.v + TILE * l.vs;
    l.mt = l.m + TILE * l.ms;
    l.planes = l.mt + dpt_product_scratch_floats(false, true, d->c, d->out, l.cols);
    l.off = l.planes + (l.nb + 1) * l.ps;
    l.total = l.off + l.cols;
    return l;
}

size_t dpt_wino_block_columns(const dpt_wino_dims_t *d, size_t rows)
{
    return layout_of(d, rows).cols;
}

size_t dpt_wino_workspace_floats(const dpt_wino_dims_t *d, size_t rows)
{
    return layout_of(d, rows).total;
}

/* The columns of a block of nb samples: whole chunks. */
static size_t block_cols(const wino_layout_t *l, size_t nb)
{
    return round_up(nb * l->sc, LANES);
}

/* U of n (<= LANES) kernels g = w[o][c..c+n) (src: the first, 9 floats each) into dst (u[0] at
 * [o][c], U[xi] xs floats on): transposed to lanes first, so the transform runs on vectors of
 * n kernels and stores them contiguously. */
static inline __attribute__((always_inline)) void weight_chunk(const float *src, size_t n,
                                                               float *dst, size_t xs)
{
    float g[9][LANES], u[TILE][LANES];
    for (size_t l = 0; l < n; l++)
        for (size_t k = 0; k < 9; k++)
            g[k][l] = src[l * 9 + k];
    for (size_t l = 0; l < n; l++) {
        float t[4][3]; /* G g */
        for (size_t k = 0; k < 3; k++) {
            t[0][k] = g[k][l];
            t[1][k] = 0.5f * (g[k][l] + g[3 + k][l] + g[6 + k][l]);
            t[2][k] = 0.5f * (g[k][l] - g[3 + k][l] + g[6 + k][l]);
            t[3][k] = g[6 + k][l];
        }
#pragma GCC unroll 4
        for (size_t i = 0; i < 4; i++) { /* (G g) G^T */
            u[4 * i + 0][l] = t[i][0];
            u[4 * i + 1][l] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
            u[4 * i + 2][l] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
            u[4 * i + 3][l] = t[i][2];
        }
    }
    for (size_t xi = 0; xi < TILE; xi++)
        memcpy(dst + xi * xs, u[xi], n * sizeof(float));
}

/* u[xi][o][c] = (G g G^T)[xi] for each kernel g = w[o][c]. */
static void transform_weights(const dpt_wino_dims_t *d, const float *w, float *u)
{
    const size_t oc = d->out * d->c;
    for (size_t o = 0; o < d->out; o++) {
        size_t c = 0;
        for (; c + LANES <= d->c; c += LANES)
            weight_chunk(w + (o * d->c + c) * 9, LANES, u + o * d->c + c, oc);
        if (c < d->c) weight_chunk(w + (o * d->c + c) * 9, d->c - c, u + o * d->c + c, oc);
    }
}

/* dw[o][c] = G^T dU G, dU[xi] = dut[xi][c][o]. */
static void untransform_weight_grad(const dpt_wino_dims_t *d, const float *dut, float *dw)
{
    const size_t co = d->c * d->out;
    for (size_t o = 0; o < d->out; o++)
        for (size_t c = 0; c < d->c; c++) {
            const float *src = dut + c * d->out + o;
            float r[4][3]; /* dU G */
#pragma GCC unroll 4
            for (size_t i = 0; i < 4; i++) {
                const float u0 = src[(4 * i) * co], u1 = src[(4 * i + 1) * co];
                const float u2 = src[(4 * i + 2) * co], u3 = src[(4 * i + 3) * co];
                r[i][0] = u0 + 0.5f * (u1 + u2);
                r[i][1] = 0.5f * (u1 - u2);
                r[i][2] = 0.5f * (u1 + u2) + u3;
            }
            float *g = dw + (o * d->c + c) * 9;
            for (size_t k = 0; k < 3; k++) { /* G^T (dU G) */
                g[k] = r[0][k] + 0.5f * (r[1][k] + r[2][k]);
                g[3 + k] = 0.5f * (r[1][k] - r[2][k]);
                g[6 + k] = 0.5f * (r[1][k] + r[2][k]) + r[3][k];
            }
        }
}

/* The tile table of a full block (see wino_layout_t): column t = b*sc + ti*rw + tj is tile
 * (ti, tj) of sample b, at 2ti*pw + 2tj in its plane; columns past the samples lie in the
 * zero plane, run lanes 2 apart there too. A shorter last block uses the first columns: its
 * missing samples' planes stay zero. */
static int32_t *tile_table(const wino_layout_t *l, float *ws)
{
    int32_t *off = (int32_t *)(ws + l->off);
    for (size_t t = 0; t < l->cols; t++) {
        size_t at = l->nb * l->ps + (l->g == 1 ? 0 : 2 * (t % l->g));
        if (t < l->nb * l->sc) {
            const size_t b = t / l->sc, ti = t % l->sc / l->rw, tj = t % l->rw;
            at = b * l->ps + 2 * ti * l->pw + 2 * tj;
        }
        off[t] = (int32_t)at;
    }
    return off;
}

/* dst[xi*xs + l] = m[xi][l]: a constant size, which the compiler turns into vector stores; a
 * call to memcpy per row cost more than the transform. */
static inline void store_lanes(float m[TILE][LANES], float *dst, size_t xs)
{
    for (size_t xi = 0; xi < TILE; xi++)
        memcpy(dst + xi * xs, m[xi], LANES * sizeof(float));
}

static inline void load_lanes(const float *src, size_t xs, float m[TILE][LANES])
{
    for (size_t xi = 0; xi < TILE; xi++)
        memcpy(m[xi], src + xi * xs, LANES * sizeof(float));
}

/* t[2j] = a[j], t[2j+1] = b[j] for j < g: the two columns of g 2x2 tiles side by side in a
 * plane row. Built in a local array of constant size and then stored or added whole, which
 * the compiler turns into permutes and full vectors; written element by element into the
 * plane, the same loop ran as scalar or 2-float stores (perf annotate). */
static inline __attribute__((always_inline)) void pair_up(const float *a, const float *b, size_t g,
                                                          float t[2 * LANES])
{
    for (size_t j = 0; j < g; j++) {
        t[2 * j] = a[j];
        t[2 * j + 1] = b[j];
    }
}

/* dst[0..2g) = the pairs of a and b. */
static inline __attribute__((always_inline)) void interleave(const float *a, const float *b,
                                                             size_t g, float *dst)
{
    float t[2 * LANES];
    pair_up(a, b, g, t);
    memcpy(dst, t, 2 * g * sizeof *dst);
}

/* dst[0..2g) += the pairs of a and b. */
static inline __attribute__((always_inline)) void interleave_add(const float *a, const float *b,
                                                                 size_t g, float *dst)
{
    float t[2 * LANES];
    pair_up(a, b, g, t);
    for (size_t x = 0; x < 2 * g; x++)
        dst[x] += t[x];
}

/* Each transform below walks a chunk run by run: lane l = r*g + j is tile j of run r, which
 * starts at p + off[r*g] + 2j. It is written once for a run width g and instantiated for
 * each (always inline, so g is a constant the loops are vectorised for). */
#define DPT_WINO_INLINE static inline __attribute__((always_inline))
#define WINO_DISPATCH(g, call)                                                                     \
    switch (g) {                                                                                   \
    case 16:                                                                                       \
        call(16);                                                                                  \
        break;                                                                                     \
    case 8:                                                                                        \
        call(8);                                                                                   \
        break;                                                                                     \
    case 4:                                                                                        \
        call(4);                                                                                   \
        break;                                                                                     \
    default:                                                                                       \
        call(1);                                                                                   \
        break;                                                                                     \
    }

/* V (vc: one channel's chunk of V[0], V[xi] xs floats on) = B^T d B of the patches. */
DPT_WINO_INLINE void input_chunk_as(const float *p, size_t pw, const int32_t *off, float *vc,
                                    size_t xs, size_t g)
{
    float v[TILE][LANES];
    for (size_t r = 0; r < LANES / g; r++)
        for (size_t j = 0; j < g; j++) {
            const size_t l = r * g + j;
            float e[4][4]; /* d B, row by row */
#pragma GCC unroll 4
            for (size_t i = 0; i < 4; i++) {
                const float *q = p + off[r * g] + 2 * j + i * pw;
                e[i][0] = q[0] - q[2];
                e[i][1] = q[1] + q[2];
                e[i][2] = q[2] - q[1];
                e[i][3] = q[1] - q[3];
            }
#pragma GCC unroll 4
            for (size_t k = 0; k < 4; k++) { /* B^T (d B) */
                v[k][l] = e[0][k] - e[2][k];
                v[4 + k][l] = e[1][k] + e[2][k];
                v[8 + k][l] = e[2][k] - e[1][k];
                v[12 + k][l] = e[1][k] - e[3][k];
            }
        }
    store_lanes(v, vc, xs);
}

static void input_chunk(const wino_layout_t *l, const float *p, const int32_t *off, float *vc)
{
#define CALL(g) input_chunk_as(p, l->pw, off, vc, l->vs, g)
    WINO_DISPATCH(l->g, CALL)
#undef CALL
}

/* Copies channel ch of nb samples (each `channels` planes of H x W) into their planes, each
 * plane's row 0 at `at` (pw + 1 past a one-pixel border, or 0); the rest is left as it is. */
static void fill_planes(const dpt_wino_dims_t *d, const wino_layout_t *l, const float *src,
                        size_t channels, size_t ch, size_t nb, size_t at, float *planes)
{
    const size_t sample = channels * d->h * d->w;
    for (size_t b = 0; b < nb; b++)
        for (size_t r = 0; r < d->h; r++)
            memcpy(planes + b * l->ps + at + r * l->pw, src + b * sample + (ch * d->h + r) * d->w,
                   d->w * sizeof *planes);
}

/* Lowers a block of nb samples x (each [C][H][W]) into V. */
static void lower_block(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                        const float *x, size_t nb, float *v, float *planes)
{
    const size_t cols = block_cols(l, nb);
    memset(planes, 0, (l->nb + 1) * l->ps * sizeof *planes); /* borders stay zero */
    for (size_t c = 0; c < d->c; c++) {
        fill_planes(d, l, x, d->c, c, nb, l->pw + 1, planes);
        for (size_t t0 = 0; t0 < cols; t0 += LANES)
            input_chunk(l, planes, off + t0, v + c * l->ld + t0);
    }
}

/* The 2x2 tiles A^T M A of a chunk (mo: one channel's chunk of M[0]) into the planes p
 * (unpadded: tile (ti, tj) at 2ti*pw + 2tj). */
DPT_WINO_INLINE void output_chunk_as(const float *mo, size_t xs, const int32_t *off, float *p,
                                     size_t pw, size_t g)
{
    float m[TILE][LANES], y[4][LANES]; /* y: the tiles' (0,0), (0,1), (1,0), (1,1) */
    load_lanes(mo, xs, m);
    for (size_t l = 0; l < LANES; l++) {
        float s[2][4]; /* A^T M */
#pragma GCC unroll 4
        for (size_t k = 0; k < 4; k++) {
            s[0][k] = m[k][l] + m[4 + k][l] + m[8 + k][l];
            s[1][k] = m[4 + k][l] - m[8 + k][l] - m[12 + k][l];
        }
        y[0][l] = s[0][0] + s[0][1] + s[0][2];
        y[1][l] = s[0][1] - s[0][2] - s[0][3];
        y[2][l] = s[1][0] + s[1][1] + s[1][2];
        y[3][l] = s[1][1] - s[1][2] - s[1][3];
    }
    for (size_t r = 0; r < LANES / g; r++) {
        float *q = p + off[r * g];
        interleave(y[0] + r * g, y[1] + r * g, g, q);
        interleave(y[2] + r * g, y[3] + r * g, g, q + pw);
    }
}

static void output_chunk(const wino_layout_t *l, const float *mo, const int32_t *off, float *p)
{
#define CALL(g) output_chunk_as(mo, l->ms, off, p, l->pw, g)
    WINO_DISPATCH(l->g, CALL)
#undef CALL
}

/* y (each sample [OUT][H][W], out_sz floats apart) of a block of nb samples from M, plus
 * the bias. */
static void raise_block(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                        const float *m, size_t nb, const float *bias, float *y, float *planes)
{
    const size_t out_sz = d->out * d->h * d->w, cols = block_cols(l, nb);
    for (size_t o = 0; o < d->out; o++) {
        for (size_t t0 = 0; t0 < cols; t0 += LANES)
            output_chunk(l, m + o * l->ld + t0, off + t0, planes);
        const float bo = bias ? bias[o] : 0.0f;
        for (size_t b = 0; b < nb; b++)
            for (size_t r = 0; r < d->h; r++) {
                const float *src = planes + b * l->ps + r * l->pw;
                float *dst = y + b * out_sz + (o * d->h + r) * d->w;
                for (size_t s = 0; s < d->w; s++)
                    dst[s] = src[s] + bo;
            }
    }
}

/* dM = A dy A^T of a chunk's 2x2 tiles of the planes p (unpadded, zero past H and W) into mo
 * (one channel's chunk of M[0]). */
DPT_WINO_INLINE void grad_chunk_as(const float *p, size_t pw, const int32_t *off, float *mo,
                                   size_t xs, size_t g)
{
    float m[TILE][LANES];
    for (size_t r = 0; r < LANES / g; r++)
        for (size_t j = 0; j < g; j++) {
            const size_t l = r * g + j;
            const float *q = p + off[r * g] + 2 * j;
            const float a = q[0], b = q[1], c = q[pw], e = q[pw + 1];
            const float u[4] = {a, a + c, a - c, -c}, w[4] = {b, b + e, b - e, -e}; /* A dy */
#pragma GCC unroll 4
            for (size_t i = 0; i < 4; i++) { /* (A dy) A^T */
                m[4 * i][l] = u[i];
                m[4 * i + 1][l] = u[i] + w[i];
                m[4 * i + 2][l] = u[i] - w[i];
                m[4 * i + 3][l] = -w[i];
            }
        }
    store_lanes(m, mo, xs);
}

static void grad_chunk(const wino_layout_t *l, const float *p, const int32_t *off, float *mo)
{
#define CALL(g) grad_chunk_as(p, l->pw, off, mo, l->ms, g)
    WINO_DISPATCH(l->g, CALL)
#undef CALL
}

/* dM of a block of nb samples' dy (each [OUT][H][W]) into M. */
static void lower_grad_block(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                             const float *dy, size_t nb, float *m, float *planes)
{
    const size_t cols = block_cols(l, nb);
    memset(planes, 0, (l->nb + 1) * l->ps * sizeof *planes); /* past H and W stays zero */
    for (size_t o = 0; o < d->out; o++) {
        fill_planes(d, l, dy, d->out, o, nb, 0, planes);
        for (size_t t0 = 0; t0 < cols; t0 += LANES)
            grad_chunk(l, planes, off + t0, m + o * l->ld + t0);
    }
}

/* Adds B dV B^T of a chunk's patches (vc: one channel's chunk of dV[0]) into the padded
 * planes p. Neighbouring patches overlap: each run adds its left halves, then its right
 * halves (each pass writes distinct positions, in vectors), and runs go in order, so every
 * sum runs in an order fixed by the shape. */
DPT_WINO_INLINE void patch_chunk_as(const float *vc, size_t xs, const int32_t *off, float *p,
                                    size_t pw, size_t g)
{
    float v[TILE][LANES], dd[TILE][LANES];
    load_lanes(vc, xs, v);
    for (size_t l = 0; l < LANES; l++) {
        float f[4][4]; /* dV B^T, row by row */
#pragma GCC unroll 4
        for (size_t i = 0; i < 4; i++) {
            const float v0 = v[4 * i][l], v1 = v[4 * i + 1][l];
            const float v2 = v[4 * i + 2][l], v3 = v[4 * i + 3][l];
            f[i][0] = v0;
            f[i][1] = v1 - v2 + v3;
            f[i][2] = v1 + v2 - v0;
            f[i][3] = -v3;
        }
#pragma GCC unroll 4
        for (size_t k = 0; k < 4; k++) { /* B (dV B^T) */
            dd[k][l] = f[0][k];
            dd[4 + k][l] = f[1][k] - f[2][k] + f[3][k];
            dd[8 + k][l] = f[1][k] + f[2][k] - f[0][k];
            dd[12 + k][l] = -f[3][k];
        }
    }
    for (size_t r = 0; r < LANES / g; r++)
        for (size_t i = 0; i < 4; i++) {
            float *q = p + off[r * g] + i * pw;
            interleave_add(dd[4 * i] + r * g, dd[4 * i + 1] + r * g, g, q);
            interleave_add(dd[4 * i + 2] + r * g, dd[4 * i + 3] + r * g, g, q + 2);
        }
}

static void patch_chunk(const wino_layout_t *l, const float *vc, const int32_t *off, float *p)
{
#define CALL(g) patch_chunk_as(vc, l->vs, off, p, l->pw, g)
    WINO_DISPATCH(l->g, CALL)
#undef CALL
}

/* dx (each sample [C][H][W]) of a block of nb samples (+)= its patch gradients from dV; the
 * padding border of the planes is dropped. */
static void raise_grad_block(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                             const float *v, size_t nb, float *dx, bool acc, float *planes)
{
    const size_t in_sz = d->c * d->h * d->w, cols = block_cols(l, nb);
    for (size_t c = 0; c < d->c; c++) {
        memset(planes, 0, (l->nb + 1) * l->ps * sizeof *planes);
        for (size_t t0 = 0; t0 < cols; t0 += LANES)
            patch_chunk(l, v + c * l->ld + t0, off + t0, planes);
        for (size_t b = 0; b < nb; b++)
            for (size_t r = 0; r < d->h; r++) {
                const float *src = planes + b * l->ps + (r + 1) * l->pw + 1;
                float *dst = dx + b * in_sz + (c * d->h + r) * d->w;
                if (acc)
                    for (size_t s = 0; s < d->w; s++)
                        dst[s] += src[s];
                else
                    memcpy(dst, src, d->w * sizeof *dst);
            }
    }
}

void dpt_wino_forward(const dpt_wino_dims_t *d, const float *w, const float *bias, const float *x,
                      size_t rows, float *y, float *ws)
{
    const wino_layout_t l = layout_of(d, rows);
    const size_t in_sz = d->c * d->h * d->w, out_sz = d->out * d->h * d->w;
    float *u = ws + l.u, *v = ws + l.v, *m = ws + l.m;
    const int32_t *off = tile_table(&l, ws);
    /* The 16 products have a short side (C or OUT channels against ~1024 tile columns):
     * kernels/thin.c runs them where it beats BLIS (1.2-1.6x on an AMD EPYC Zen 5). */
    const bool thin = dpt_gemm_thin_wins();
    transform_weights(d, w, u);
    for (size_t r0 = 0; r0 < rows; r0 += l.nb) {
        const size_t nb = rows - r0 < l.nb ? rows - r0 : l.nb, cols = block_cols(&l, nb);
        lower_block(d, &l, off, x + r0 * in_sz, nb, v, ws + l.planes);
        for (size_t xi = 0; xi < TILE; xi++) /* M[xi] [OUT x cols] = U[xi] V[xi] */
            dpt_product(thin, false, false, d->out, cols, d->c, u + xi * d->out * d->c, d->c,
                        v + xi * l.vs, l.ld, m + xi * l.ms, l.ld, false, NULL);
        raise_block(d, &l, off, m, nb, bias, y + r0 * out_sz, ws + l.planes);
    }
}

void dpt_wino_backward(const dpt_wino_dims_t *d, const float *w, const float *x, const float *dy,
                       size_t rows, float *dw, float *dx, bool dx_acc, float *ws)
{
    const wino_layout_t l = layout_of(d, rows);
    const size_t in_sz = d->c * d->h * d->w, out_sz = d->out * d->h * d->w;
    float *u = ws + l.u, *dut = ws + l.dut, *v = ws + l.v, *m = ws + l.m, *mt = ws + l.mt;
    const int32_t *off = tile_table(&l, ws);
    const bool thin = dpt_gemm_thin_wins();
    if (dx) transform_weights(d, w, u);
    if (rows == 0) memset(dut, 0, TILE * d->c * d->out * sizeof *dut);
    for (size_t r0 = 0; r0 < rows; r0 += l.nb) {
        const size_t nb = rows - r0 < l.nb ? rows - r0 : l.nb, cols = block_cols(&l, nb);
        /* V is recomputed rather than saved: it is 4x the input. */
        lower_block(d, &l, off, x + r0 * in_sz, nb, v, ws + l.planes);
        lower_grad_block(d, &l, off, dy + r0 * out_sz, nb, m, ws + l.planes);
        for (size_t xi = 0; xi < TILE; xi++) {
            float *vx = v + xi * l.vs, *mx = m + xi * l.ms;
            /* dU[xi]^T [C x OUT] (+)= V dM^T: the first block writes, the others add (from 64
             * channels through dM^T in mt and a GEMM, gemm.c) */
            dpt_product(thin, false, true, d->c, d->out, cols, vx, l.ld, mx, l.ld,
                        dut + xi * d->c * d->out, d->out, r0 > 0, mt);
            /* dV[xi] = U^T dM over V[xi], which this block no longer needs */
            if (dx)
                dpt_product(thin, true, false, d->c, cols, d->out, u + xi * d->out * d->c, d->c, mx,
                            l.ld, vx, l.ld, false, NULL);
        }
        if (dx) raise_grad_block(d, &l, off, v, nb, dx + r0 * in_sz, dx_acc, ws + l.planes);
    }
    untransform_weight_grad(d, dut, dw);
}
