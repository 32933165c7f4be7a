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

typedef struct wino_layout {
    size_t th, tw, tiles; /* tile rows, columns, and both a sample */
    size_t pw, ph;        /* the padded plane: 2*tw + 2 columns, 2*th + 2 rows */
    size_t nb, ld;        /* samples a block, row stride of V and M */
    size_t vs, ms;        /* the stride from V[xi] to V[xi+1], from M[xi] to M[xi+1] */
    size_t u, dut, v, m, plane, off, total; /* offsets in floats */
} wino_layout_t;

/* The stride of the 16 matrices of V or M, each of n floats (a multiple of 16): an odd number
 * of 64-byte lines, so the 16 rows a transform reads or writes at once fall into 16
 * different cache sets. At C*ld floats, a multiple of 1024 whenever C is of 64, all 16 fell
 * into one set of the 8-way L1 and the transforms ran 3-4x slower. */
static size_t odd_lines(size_t n)
{
    return n / 16 % 2 ? n : n + 16;
}

static wino_layout_t layout_of(const dpt_wino_dims_t *d, size_t rows)
{
    wino_layout_t l = {.th = (d->h + 1) / 2, .tw = (d->w + 1) / 2};
    l.tiles = l.th * l.tw;
    l.pw = 2 * l.tw + 2, l.ph = 2 * l.th + 2;
    l.nb = (WINO_BLOCK_COLS + l.tiles - 1) / l.tiles;
    if (l.nb > rows) l.nb = rows;
    if (l.nb == 0) l.nb = 1;
    l.ld = dpt_conv_padded_ld(l.nb * l.tiles);
    l.vs = odd_lines(d->c * l.ld), l.ms = odd_lines(d->out * l.ld);
    l.u = 0;
    l.dut = l.u + TILE * d->out * d->c;
    l.v = l.dut + TILE * d->c * d->out;
    l.m = l.v + TILE * l.vs;
    l.plane = l.m + TILE * l.ms;
    l.off = l.plane + l.ph * l.pw;
    l.total = l.off + (l.tiles + LANES - 1) / LANES * LANES;
    return l;
}

size_t dpt_wino_workspace_floats(const dpt_wino_dims_t *d, size_t rows)
{
    return layout_of(d, rows).total;
}

/* u[xi][o][c] = (G g G^T)[xi] for each kernel g = w[o][c]. */
static void transform_weights(const dpt_wino_dims_t *d, const float *w, float *u)
{
    const size_t oc = d->out * d->c;
    for (size_t o = 0; o < d->out; o++)
        for (size_t c = 0; c < d->c; c++) {
            const float *g = w + (o * d->c + c) * 9;
            float t[4][3]; /* G g */
            for (size_t k = 0; k < 3; k++) {
                t[0][k] = g[k];
                t[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
                t[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
                t[3][k] = g[6 + k];
            }
            float *dst = u + o * d->c + c;
#pragma GCC unroll 4
            for (size_t i = 0; i < 4; i++) { /* (G g) G^T */
                dst[(4 * i + 0) * oc] = t[i][0];
                dst[(4 * i + 1) * oc] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                dst[(4 * i + 2) * oc] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                dst[(4 * i + 3) * oc] = t[i][2];
            }
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

/* The tile table: off[t] = 2ti*pw + 2tj, where tile t = ti*tw + tj starts in a plane of pitch
 * pw (its 4x4 input patch in the padded plane, its 2x2 output tile in an unpadded one), and 0
 * for the lanes past the last tile. The transforms run over LANES consecutive tiles of a
 * sample at a time, whatever the plane's width, so V and M are read and written in whole
 * vectors and small planes (8x8: 4 tiles a row) waste no lanes; the plane side is gathered
 * through the table. */
static int32_t *tile_table(const wino_layout_t *l, float *ws)
{
    int32_t *off = (int32_t *)(ws + l->off);
    const size_t n = (l->tiles + LANES - 1) / LANES * LANES;
    for (size_t t = 0; t < n; t++)
        off[t] = t < l->tiles ? (int32_t)(2 * (t / l->tw) * l->pw + 2 * (t % l->tw)) : 0;
    return off;
}

/* dst[xi*xs + l] = m[xi][l] for l < n. Whole chunks copy a constant size, which the compiler
 * turns into one vector store; a call to memcpy per row cost more than the transform. */
static void store_lanes(float m[TILE][LANES], size_t n, float *dst, size_t xs)
{
    if (n == LANES)
        for (size_t xi = 0; xi < TILE; xi++)
            memcpy(dst + xi * xs, m[xi], LANES * sizeof(float));
    else
        for (size_t xi = 0; xi < TILE; xi++)
            for (size_t l = 0; l < n; l++)
                dst[xi * xs + l] = m[xi][l];
}

/* m[xi][l] = src[xi*xs + l] for l < n, 0 beyond. */
static void load_lanes(const float *src, size_t xs, size_t n, float m[TILE][LANES])
{
    if (n == LANES)
        for (size_t xi = 0; xi < TILE; xi++)
            memcpy(m[xi], src + xi * xs, LANES * sizeof(float));
    else
        for (size_t xi = 0; xi < TILE; xi++)
            for (size_t l = 0; l < LANES; l++)
                m[xi][l] = l < n ? src[xi * xs + l] : 0.0f;
}

/* The chunk of tiles whose table entries start at off: n = min(LANES, tiles left). */
static size_t chunk_of(const wino_layout_t *l, size_t t0)
{
    return l->tiles - t0 < LANES ? l->tiles - t0 : LANES;
}

/* Whether a chunk's tiles lie in one tile row: then tile l starts 2l floats after tile 0,
 * and the transforms read and write the plane in (stride-2) vectors instead of gathering
 * through the table, 2.7x faster for 16 channels at 32x32. Both ways compute the same. */
static bool is_row_chunk(const int32_t *off)
{
    return off[LANES - 1] - off[0] == 2 * (LANES - 1);
}

/* Where tile l of a chunk starts in the plane (row: a constant, so the compiler vectorises). */
static inline __attribute__((always_inline)) size_t tile_at(const int32_t *off, size_t l, bool row)
{
    return row ? (size_t)off[0] + 2 * l : (size_t)off[l];
}

/* V (row vc of V[0], V[xi] xs floats on) = B^T d B of the patches of one padded plane p. */
static inline __attribute__((always_inline)) void input_chunk_as(const float *p, size_t pw,
                                                                 const int32_t *off, size_t n,
                                                                 float *vc, size_t xs, bool row)
{
    float v[TILE][LANES];
    for (size_t l = 0; l < LANES; l++) {
        float e[4][4]; /* d B, row by row */
#pragma GCC unroll 4
        for (size_t r = 0; r < 4; r++) {
            const float *q = p + tile_at(off, l, row) + r * pw;
            e[r][0] = q[0] - q[2];
            e[r][1] = q[1] + q[2];
            e[r][2] = q[2] - q[1];
            e[r][3] = q[1] - q[3];
        }
#pragma GCC unroll 4
        for (size_t j = 0; j < 4; j++) { /* B^T (d B) */
            v[j][l] = e[0][j] - e[2][j];
            v[4 + j][l] = e[1][j] + e[2][j];
            v[8 + j][l] = e[2][j] - e[1][j];
            v[12 + j][l] = e[1][j] - e[3][j];
        }
    }
    store_lanes(v, n, vc, xs);
}

static void input_chunk(const float *p, size_t pw, const int32_t *off, size_t n, float *vc,
                        size_t xs)
{
    if (is_row_chunk(off))
        input_chunk_as(p, pw, off, n, vc, xs, true);
    else
        input_chunk_as(p, pw, off, n, vc, xs, false);
}

/* Lowers sample x [C][H][W] into its T columns of V (vb: V[0] at its first column). */
static void lower_sample(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                         const float *x, float *vb, float *plane)
{
    memset(plane, 0, l->ph * l->pw * sizeof *plane);
    for (size_t c = 0; c < d->c; c++) {
        for (size_t r = 0; r < d->h; r++) /* the border stays zero */
            memcpy(plane + (r + 1) * l->pw + 1, x + (c * d->h + r) * d->w, d->w * sizeof *plane);
        for (size_t t0 = 0; t0 < l->tiles; t0 += LANES)
            input_chunk(plane, l->pw, off + t0, chunk_of(l, t0), vb + c * l->ld + t0, l->vs);
    }
}

/* The 2x2 tiles A^T M A of a chunk (mo: its columns of M[0] for one channel) into the plane
 * p (pitch pw) at off. */
static inline __attribute__((always_inline)) void output_chunk_as(const float *mo, size_t xs,
                                                                  const int32_t *off, size_t n,
                                                                  float *p, size_t pw, bool row)
{
    float m[TILE][LANES], y[4][LANES];
    load_lanes(mo, xs, n, m);
    for (size_t l = 0; l < LANES; l++) {
        float s[2][4]; /* A^T M */
#pragma GCC unroll 4
        for (size_t j = 0; j < 4; j++) {
            s[0][j] = m[j][l] + m[4 + j][l] + m[8 + j][l];
            s[1][j] = m[4 + j][l] - m[8 + j][l] - m[12 + j][l];
        }
        y[0][l] = s[0][0] + s[0][1] + s[0][2];
        y[1][l] = s[0][1] - s[0][2] - s[0][3];
        y[2][l] = s[1][0] + s[1][1] + s[1][2];
        y[3][l] = s[1][1] - s[1][2] - s[1][3];
    }
    for (size_t l = 0; l < n; l++) {
        float *q = p + tile_at(off, l, row);
        q[0] = y[0][l], q[1] = y[1][l], q[pw] = y[2][l], q[pw + 1] = y[3][l];
    }
}

static void output_chunk(const float *mo, size_t xs, const int32_t *off, size_t n, float *p,
                         size_t pw)
{
    if (is_row_chunk(off))
        output_chunk_as(mo, xs, off, n, p, pw, true);
    else
        output_chunk_as(mo, xs, off, n, p, pw, false);
}

/* y [OUT][H][W] of one sample from its columns of M (mb), plus the bias. */
static void raise_sample(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                         const float *mb, const float *bias, float *y, float *plane)
{
    for (size_t o = 0; o < d->out; o++) {
        for (size_t t0 = 0; t0 < l->tiles; t0 += LANES)
            output_chunk(mb + o * l->ld + t0, l->ms, off + t0, chunk_of(l, t0), plane, l->pw);
        const float bo = bias ? bias[o] : 0.0f;
        for (size_t r = 0; r < d->h; r++) {
            const float *src = plane + r * l->pw;
            float *dst = y + (o * d->h + r) * d->w;
            for (size_t s = 0; s < d->w; s++)
                dst[s] = src[s] + bo;
        }
    }
}

/* dM = A dy A^T of a chunk's 2x2 tiles of the plane p (pitch pw, zero past the output) into
 * mo (one channel's columns of M[0]). */
static inline __attribute__((always_inline)) void grad_chunk_as(const float *p, size_t pw,
                                                                const int32_t *off, size_t n,
                                                                float *mo, size_t xs, bool row)
{
    float m[TILE][LANES];
    for (size_t l = 0; l < LANES; l++) {
        const float *q = p + tile_at(off, l, row);
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
    store_lanes(m, n, mo, xs);
}

static void grad_chunk(const float *p, size_t pw, const int32_t *off, size_t n, float *mo,
                       size_t xs)
{
    if (is_row_chunk(off))
        grad_chunk_as(p, pw, off, n, mo, xs, true);
    else
        grad_chunk_as(p, pw, off, n, mo, xs, false);
}

/* dM of one sample's dy [OUT][H][W] into its columns of M (mb). */
static void lower_grad_sample(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                              const float *dy, float *mb, float *plane)
{
    memset(plane, 0, l->ph * l->pw * sizeof *plane); /* past H and W stays zero */
    for (size_t o = 0; o < d->out; o++) {
        for (size_t r = 0; r < d->h; r++)
            memcpy(plane + r * l->pw, dy + (o * d->h + r) * d->w, d->w * sizeof *plane);
        for (size_t t0 = 0; t0 < l->tiles; t0 += LANES)
            grad_chunk(plane, l->pw, off + t0, chunk_of(l, t0), mb + o * l->ld + t0, l->ms);
    }
}

/* Adds B dV B^T of a chunk's patches (vc: one channel's columns of dV[0]) into the padded
 * plane p at off, tile after tile (neighbouring patches overlap; the order is fixed). */
static void patch_chunk(const float *vc, size_t xs, const int32_t *off, size_t n, float *p,
                        size_t pw)
{
    float v[TILE][LANES], dd[TILE][LANES];
    load_lanes(vc, xs, n, v);
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
    if (is_row_chunk(off)) {
        /* Left halves, then right halves: each pass writes distinct positions, in vectors
         * (a row chunk is always whole: n == LANES). */
        for (size_t r = 0; r < 4; r++) {
            float *q = p + off[0] + r * pw;
            for (size_t l = 0; l < LANES; l++) {
                q[2 * l] += dd[4 * r][l];
                q[2 * l + 1] += dd[4 * r + 1][l];
            }
            for (size_t l = 0; l < LANES; l++) {
                q[2 * l + 2] += dd[4 * r + 2][l];
                q[2 * l + 3] += dd[4 * r + 3][l];
            }
        }
        return;
    }
    for (size_t l = 0; l < n; l++) {
        float *q = p + off[l];
        for (size_t r = 0; r < 4; r++)
            for (size_t k = 0; k < 4; k++)
                q[r * pw + k] += dd[4 * r + k][l];
    }
}

/* dx [C][H][W] of one sample (+)= its patch gradients from dV (vb: dV[0] at its first
 * column); the padding border of the plane is dropped. */
static void raise_grad_sample(const dpt_wino_dims_t *d, const wino_layout_t *l, const int32_t *off,
                              const float *vb, float *dx, bool acc, float *plane)
{
    for (size_t c = 0; c < d->c; c++) {
        memset(plane, 0, l->ph * l->pw * sizeof *plane);
        for (size_t t0 = 0; t0 < l->tiles; t0 += LANES)
            patch_chunk(vb + c * l->ld + t0, l->vs, off + t0, chunk_of(l, t0), plane, l->pw);
        for (size_t r = 0; r < d->h; r++) {
            const float *src = plane + (r + 1) * l->pw + 1;
            float *dst = dx + (c * d->h + r) * d->w;
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
    transform_weights(d, w, u);
    for (size_t r0 = 0; r0 < rows; r0 += l.nb) {
        const size_t nb = rows - r0 < l.nb ? rows - r0 : l.nb, cols = nb * l.tiles;
        for (size_t b = 0; b < nb; b++)
            lower_sample(d, &l, off, x + (r0 + b) * in_sz, v + b * l.tiles, ws + l.plane);
        for (size_t xi = 0; xi < TILE; xi++)
            dpt_sgemm(false, false, d->out, cols, d->c, 1.0f, u + xi * d->out * d->c, d->c,
                      v + xi * l.vs, l.ld, 0.0f, m + xi * l.ms, l.ld);
        for (size_t b = 0; b < nb; b++)
            raise_sample(d, &l, off, m + b * l.tiles, bias, y + (r0 + b) * out_sz, ws + l.plane);
    }
}

void dpt_wino_backward(const dpt_wino_dims_t *d, const float *w, const float *x, const float *dy,
                       size_t rows, float *dw, float *dx, bool dx_acc, float *ws)
{
    const wino_layout_t l = layout_of(d, rows);
    const size_t in_sz = d->c * d->h * d->w, out_sz = d->out * d->h * d->w;
    float *u = ws + l.u, *dut = ws + l.dut, *v = ws + l.v, *m = ws + l.m;
    const int32_t *off = tile_table(&l, ws);
    if (dx) transform_weights(d, w, u);
    if (rows == 0) memset(dut, 0, TILE * d->c * d->out * sizeof *dut);
    for (size_t r0 = 0; r0 < rows; r0 += l.nb) {
        const size_t nb = rows - r0 < l.nb ? rows - r0 : l.nb, cols = nb * l.tiles;
        for (size_t b = 0; b < nb; b++) {
            /* V is recomputed rather than saved: it is 4x the input. */
            lower_sample(d, &l, off, x + (r0 + b) * in_sz, v + b * l.tiles, ws + l.plane);
            lower_grad_sample(d, &l, off, dy + (r0 + b) * out_sz, m + b * l.tiles, ws + l.plane);
        }
        for (size_t xi = 0; xi < TILE; xi++) {
            float *vx = v + xi * l.vs, *mx = m + xi * l.ms;
            /* dU[xi]^T [C x OUT] (+)= V dM^T: the first block writes */
            dpt_sgemm(false, true, d->c, d->out, cols, 1.0f, vx, l.ld, mx, l.ld, r0 ? 1.0f : 0.0f,
                      dut + xi * d->c * d->out, d->out);
            /* dV[xi] = U^T dM over V[xi], which this block no longer needs */
            if (dx)
                dpt_sgemm(true, false, d->c, cols, d->out, 1.0f, u + xi * d->out * d->c, d->c, mx,
                          l.ld, 0.0f, vx, l.ld);
        }
        if (dx)
            for (size_t b = 0; b < nb; b++)
                raise_grad_sample(d, &l, off, v + b * l.tiles, dx + (r0 + b) * in_sz, dx_acc,
                                  ws + l.plane);
    }
    untransform_weight_grad(d, dut, dw);
}
