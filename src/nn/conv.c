/* Owns the 2-D convolution, conv:OUT:K[:stride=S][:pad=P][:bias=0|1][:groups=G], lowered to
 * GEMM by im2col.
 *
 * Shapes, per sample (one row of the activations):
 *   x [C][H][W] -> y [OUT][Ho][Wo],  Ho = (H + 2P - K) / S + 1,  Wo = (W + 2P - K) / S + 1
 *   weight [OUT][C/G][K][K] (PyTorch's order), bias [OUT]
 * Group g maps input channels [g C/G, (g+1) C/G) to output channels [g OUT/G, (g+1) OUT/G), so
 * W_g, the rows of group g, is a row-major [OUT/G x CKg] matrix with CKg = C/G * K * K.
 *
 * Samples are lowered in blocks of nb (columns j = b * HoWo + p, p = oh * Wo + ow):
 *   col  [C*K*K x nb*HoWo]   col[(c, ki, kj)][j] = x[b][c][oh S - P + ki][ow S - P + kj] (0 off
 *                            the input); the rows of group g are col_g [CKg x nb*HoWo]
 *   forward    Y_g    [OUT/G x nb*HoWo] = W_g col_g (+ bias)
 *   backward   dW_g   [OUT/G x CKg]     = sum over blocks of dY_g col_g^T (computed transposed)
 *              dcol_g [CKg x nb*HoWo]   = W_g^T dY_g,   dx = col2im(dcol)
 * With nb = 1, Y and dY are the sample's own y and dy rows (no copies). With nb > 1 they live
 * in the workspace ([OUT x nb*HoWo]) and are scattered to / gathered from NCHW, which costs
 * OUT*HoWo floats of copying per sample against 2*OUT*CKg*HoWo flops, and buys GEMMs with
 * nb*HoWo columns. Measured (CONV_BLOCK_COLS): about even at 8x8 and 7x7, 2x faster at 2x2
 * and for depthwise convolutions, whose one-sample GEMMs are too thin for BLIS. */
#include <string.h>

#include "kernels/gemm.h"
#include "nn/conv_winograd.h"
#include "nn/op.h"

/* Columns a block of samples aims for: nb = ceil(CONV_BLOCK_COLS / HoWo), at most rows.
 * Measured, forward + backward of 64 rows on one thread (Xeon, AVX-512, BLIS haswell kernels),
 * GFLOP/s at 1 / 256 / 512 columns: 64x8x8 3x3 77 / 79 / 73, 64x7x7 70 / 75 / 70, 128x4x4
 * 76 / 78 / 71, 256x2x2 27 / 59 / 57, depthwise 64x8x8 1.3 / 2.8 / 3.3; 32x32 and 16x16 planes
 * (one sample a block either way) are unchanged. */
#define CONV_BLOCK_COLS 256
/* Cap on one sample's lowered input (C*K*K x Ho*Wo floats, 1 GiB): keeps the workspace sane
 * and its size arithmetic far from overflow. */
#define CONV_MAX_COL_FLOATS ((size_t)1 << 28)

typedef struct conv_dims {
    size_t c, h, w, out, k, s, p, g, ho, wo;
    size_t hw, howo; /* input and output plane sizes */
    size_t cg, og;   /* channels per group, in and out */
    size_t ckk, ckg; /* rows of col: all channels, one group */
} conv_dims_t;

static conv_dims_t dims_of(const dpt_node_t *n)
{
    conv_dims_t d = {.c = n->in_shape[0].c,
                     .h = n->in_shape[0].h,
                     .w = n->in_shape[0].w,
                     .out = n->a.out,
                     .k = n->a.k,
                     .s = n->a.stride,
                     .p = n->a.pad,
                     .g = n->a.groups,
                     .ho = n->out.h,
                     .wo = n->out.w};
    d.hw = d.h * d.w, d.howo = d.ho * d.wo;
    d.cg = d.c / d.g, d.og = d.out / d.g;
    d.ckk = d.c * d.k * d.k, d.ckg = d.cg * d.k * d.k;
    return d;
}

/* A 1x1 kernel at stride 1 without padding: the lowered sample is the sample itself. */
static bool is_direct(const conv_dims_t *d)
{
    return d->k == 1 && d->s == 1 && d->p == 0;
}

/* Samples per block; depends on the shape and on rows only (so on nothing thread-related). */
static size_t block_of(const conv_dims_t *d, size_t rows)
{
    size_t nb = (CONV_BLOCK_COLS + d->howo - 1) / d->howo;
    if (nb > rows) nb = rows;
    return nb ? nb : 1;
}

/* Lowered rows per group (C/G*K*K) up to which the three products of a block may run through
 * kernels/thin.c instead of BLIS: with so short an inner dimension, BLIS's packing costs more
 * than the multiply-adds. They do for grouped convolutions (depthwise: 5.5x the same-shape
 * sgemm on an AMD EPYC Zen 5), and for the others only where BLIS's kernel set has no
 * small-matrix path that skips the packing: forward + backward of the Fashion-MNIST CNN's
 * first convolution (1 -> 32 channels, K*K = 9) on one thread, thin against BLIS, 2.8 against
 * 5.2 ms a step with skx on the Zen 5, but 3.8 against 3.2 ms with zen3 (small-matrix path) on
 * an AMD EPYC Zen 4 (ResNet-20's stem 5.5 against 4.6 ms), and on the Zen 5 whatever the
 * set (dpt_gemm_thin_wins); see docs/performance.md. The choice changes the products only,
 * not the workspace. */
#define CONV_THIN_K 32

static bool is_thin(const conv_dims_t *d)
{
    return d->ckg <= CONV_THIN_K && (d->g > 1 || dpt_gemm_thin_wins());
}

/* The forward and input-gradient products also take the thin kernels for any K where they
 * win there too (dpt_gemm_thin_any_shape: AMD Zen 5). */
static bool is_thin_gemm(const conv_dims_t *d)
{
    return is_thin(d) || dpt_gemm_thin_any_shape();
}

/* The lowering, `algo=` of the spec (the order of its choices). */
typedef enum { CONV_ALGO_AUTO, CONV_ALGO_IM2COL, CONV_ALGO_WINOGRAD } conv_algo_t;

/* Input channels from which `auto` picks Winograd for a convolution it can take: below, its
 * 16 products have too short an inner dimension to beat one im2col product of C*9 rows (the
 * stems of ResNet-20, 3 channels, and of the Fashion-MNIST CNN, 1, stay on im2col). */
#define CONV_WINO_MIN_C 8

/* The shapes nn/conv_winograd.c takes: 3x3, stride 1, pad 1, one group. */
static bool winograd_fits(const conv_dims_t *d)
{
    return d->k == 3 && d->s == 1 && d->p == 1 && d->g == 1;
}

/* Whether this convolution runs through the Winograd lowering: a function of the spec and
 * the shape only, so of nothing thread- or machine-related. */
static bool is_winograd(const dpt_node_t *n, const conv_dims_t *d)
{
    if (n->a.algo == CONV_ALGO_WINOGRAD) return true;
    /* A plane one pixel high or wide fills half of each 2x2 tile: 16 products for 2 outputs
     * against im2col's 18, nothing gained. */
    return n->a.algo == CONV_ALGO_AUTO && winograd_fits(d) && d->c >= CONV_WINO_MIN_C &&
           d->h >= 2 && d->w >= 2;
}

static dpt_wino_dims_t wino_dims(const conv_dims_t *d)
{
    return (dpt_wino_dims_t){.c = d->c, .h = d->h, .w = d->w, .out = d->out};
}

/* Y_g [OUT/G x cols] = W_g col_g: the forward product of one group (col_g's rows ldc
 * floats apart, Y_g's ldy). */
static void product_forward(const conv_dims_t *d, const float *wg, const float *colg, size_t ldc,
                            size_t cols, float *yg, size_t ldy)
{
    dpt_product(is_thin_gemm(d), false, false, d->og, cols, d->ckg, wg, d->ckg, colg, ldc, yg, ldy,
                false, NULL);
}

/* dW_g^T [CKg x OUT/G] (+)= col_g dY_g^T. In BLIS, the same product with the long side as M
 * runs 1.2-1.5x faster than dW_g = dY_g col_g^T (71 -> 106 GFLOP/s for 16 channels at 32x32),
 * and transposing dW once per pass is cheap. */
static void product_weight_grad(const conv_dims_t *d, const float *colg, size_t ldc,
                                const float *dyg, size_t ldy, size_t cols, bool acc, float *dwtg)
{
    dpt_product(is_thin(d), false, true, d->ckg, d->og, cols, colg, ldc, dyg, ldy, dwtg, d->og, acc,
                NULL);
}

/* dcol_g [CKg x cols] (+)= W_g^T dY_g, into dst (row stride ldd). */
static void product_input_grad(const conv_dims_t *d, const float *wg, const float *dyg, size_t ldy,
                               size_t cols, bool acc, float *dst, size_t ldd)
{
    dpt_product(is_thin_gemm(d), true, false, d->ckg, cols, d->og, wg, d->ckg, dyg, ldy, dst, ldd,
                acc, NULL);
}

/* init defaults to PyTorch's nn.Conv2d initialisation (docs/design.md, "Initialisation") */
static const dpt_spec_key_t conv_keys[] = {
    DPT_SPEC_I("out", NULL, 1, 65536, DPT_SPEC_POS),
    DPT_SPEC_I("k", NULL, 1, 64, DPT_SPEC_POS),
    DPT_SPEC_I("stride", "1", 1, 64, 0),
    DPT_SPEC_I("pad", "@(k-1)/2: same", 0, 64, 0),
    DPT_SPEC_B("bias", "1"),
    DPT_SPEC_I("groups", "1", 1, 65536, 0),
    DPT_SPEC_E("algo", "auto", "auto|im2col|winograd"),
    DPT_SPEC_E("init", "torch", DPT_WEIGHT_INITS),
    DPT_SPEC_END,
};

static dpt_status_t conv_parse(dpt_node_t *n, const dpt_spec_part_t *p)
{
    n->a.out = dpt_spec_size(p, "out");
    n->a.k = dpt_spec_size(p, "k");
    n->a.stride = dpt_spec_size(p, "stride");
    /* "same" for odd k at stride 1, as the default */
    n->a.pad = dpt_spec_is_set(p, "pad") ? dpt_spec_size(p, "pad") : (n->a.k - 1) / 2;
    n->a.bias = dpt_spec_int(p, "bias") != 0;
    n->a.groups = dpt_spec_size(p, "groups");
    n->a.algo = dpt_spec_int(p, "algo");
    n->a.init = dpt_weight_init(dpt_spec_int(p, "init"));
    return DPT_OK;
}

static dpt_status_t conv_infer(dpt_node_t *n)
{
    const dpt_shape_t in = n->in_shape[0];
    const size_t k = n->a.k, s = n->a.stride, p = n->a.pad, g = n->a.groups;
    if (in.c == 0 || in.h == 0 || in.w == 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: %s: empty input %zux%zux%zu", n->name,
                         in.c, in.h, in.w);
    if (k > in.h + 2 * p || k > in.w + 2 * p)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: kernel %zu larger than its padded input %zux%zu "
                         "(%zux%zu, pad %zu)",
                         n->name, k, in.h + 2 * p, in.w + 2 * p, in.h, in.w, p);
    if (in.c % g || n->a.out % g)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: groups=%zu must divide both the input channels (%zu) "
                         "and the output channels (%zu)",
                         n->name, g, in.c, n->a.out);
    /* The output cannot be empty past this point: k <= h + 2p gives Ho >= 1, Wo likewise. A
     * window over padding only (pad >= k) is legal, as in PyTorch: its outputs are the bias. */
    const size_t ho = (in.h + 2 * p - k) / s + 1, wo = (in.w + 2 * p - k) / s + 1;
    /* Bounded operands: in.c, ho, wo are each <= the graph's per-sample cap (2^26) and k <= 64,
     * so the products below fit in 64 bits before the comparison. */
    if (in.c * k * k > CONV_MAX_COL_FLOATS / (ho * wo))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: lowered input of one sample (%zu x %zu floats) over "
                         "the cap of %zu",
                         n->name, in.c * k * k, ho * wo, CONV_MAX_COL_FLOATS);
    n->out = (dpt_shape_t){n->a.out, ho, wo};
    const conv_dims_t d = dims_of(n);
    if (n->a.algo == CONV_ALGO_WINOGRAD && !winograd_fits(&d))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "model spec: %s: algo=winograd takes a 3x3 kernel at stride 1 with pad "
                         "1 and one group (got %zux%zu, stride %zu, pad %zu, groups %zu)",
                         n->name, k, k, s, p, g);
    return DPT_OK;
}

static size_t conv_declare(const dpt_node_t *n, dpt_tensor_decl_t *decl)
{
    const size_t out = n->a.out, cg = n->in_shape[0].c / n->a.groups, k = n->a.k;
    decl[0] = (dpt_tensor_decl_t){.suffix = "weight",
                                  .ndim = 4,
                                  .shape = {out, cg, k, k},
                                  .role = DPT_TENSOR_WEIGHT,
                                  .init = n->a.init,
                                  .fan_in = cg * k * k,
                                  .fan_out = out * k * k / n->a.groups};
    if (!n->a.bias) return 1;
    decl[1] = (dpt_tensor_decl_t){.suffix = "bias",
                                  .ndim = 1,
                                  .shape = {out},
                                  .role = DPT_TENSOR_BIAS,
                                  .init = dpt_bias_init(n->a.init),
                                  .fan_in = cg * k * k};
    return 2;
}

/* The row stride of the block matrices in the workspace (col, dcol, Y, dY) for blocks of
 * cols columns: a multiple of 16 floats (64-byte rows) that is not a multiple of 128. Rows a
 * power of two apart (1024 floats at 32x32, 256 at 16x16 and in 8x8 blocks) fall into the
 * same cache sets, and BLIS then reads them 1.3-1.8x slower (measured on one thread, AMD EPYC
 * Zen 4, zen3 kernels: forward 16x1024x144 81 -> 46 us, weight gradient 32x256x288 53 -> 43 us,
 * input gradient 59 -> 45 us). */
size_t dpt_conv_padded_ld(size_t cols)
{
    size_t ld = (cols + 15) / 16 * 16;
    return ld % 128 == 0 ? ld + 16 : ld;
}

/* The workspace for blocks of nb samples, in floats from its start (cols = nb*HoWo, its rows
 * ld = dpt_conv_padded_ld(cols) apart):
 *   col  [C*K*K x ld]     im2col of the block, then dcol over it; absent for a direct 1x1 conv
 *                         one sample at a time (col is x)
 *   Y    [OUT x ld]       the block's output or output gradient, scattered to / gathered from
 *                         the samples' NCHW rows (OUT*HoWo floats a sample against
 *                         2*OUT*C*K*K/G*HoWo flops)
 *   dWt  [C*K*K/G x OUT]  backward: dW transposed, group by group ([CKg x OUT/G] each)
 * Bounded whatever rows is: nb*HoWo < HoWo + CONV_BLOCK_COLS, so under
 * (C*K*K + OUT) * (HoWo + CONV_BLOCK_COLS + 128) + OUT*C*K*K/G floats. */
typedef struct ws_layout {
    bool direct; /* col is x itself (a direct 1x1 conv one sample at a time) */
    size_t ld, col, y, dwt, total;
} ws_layout_t;

static ws_layout_t layout_of(const conv_dims_t *d, size_t nb)
{
    ws_layout_t l = {
        .direct = is_direct(d) && nb == 1, .ld = dpt_conv_padded_ld(nb * d->howo), .col = 0};
    l.y = l.direct ? 0 : d->ckk * l.ld;
    l.dwt = l.y + d->out * l.ld;
    l.total = l.dwt + d->out * d->ckg;
    return l;
}

static size_t conv_workspace_floats(const dpt_node_t *n, size_t rows)
{
    const conv_dims_t d = dims_of(n);
    if (is_winograd(n, &d)) {
        const dpt_wino_dims_t wd = wino_dims(&d);
        return dpt_wino_workspace_floats(&wd, rows);
    }
    return layout_of(&d, block_of(&d, rows)).total;
}

static double conv_flops(const dpt_node_t *n)
{
    const conv_dims_t d = dims_of(n);
    return 2.0 * (double)d.out * (double)d.ckg * (double)d.howo;
}

/* The output columns ow whose input column ow*S + kj - P lies in [0, W): [*lo, *hi). */
static void valid_range(size_t kj, size_t s, size_t p, size_t w, size_t wo, size_t *lo, size_t *hi)
{
    size_t a = kj >= p ? 0 : (p - kj + s - 1) / s;
    size_t b = w + p <= kj ? 0 : (w + p - kj + s - 1) / s;
    if (b > wo) b = wo;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* The part of row (c, ki, kj) of col that sees the input: output rows [oh_lo, oh_hi) and
 * columns [ow_lo, ow_hi); everything else of the row is padding. */
typedef struct window {
    size_t oh_lo, oh_hi, ow_lo, ow_hi;
} window_t;

static window_t window_of(const conv_dims_t *d, size_t ki, size_t kj)
{
    window_t v;
    valid_range(ki, d->s, d->p, d->h, d->ho, &v.oh_lo, &v.oh_hi);
    valid_range(kj, d->s, d->p, d->w, d->wo, &v.ow_lo, &v.ow_hi);
    return v;
}

/* Stride 1 with W == Wo ("same" padding): output position j = oh*Wo + ow reads input j + shift,
 * shift = (ki - P)*W + kj - P, so the whole window is one contiguous run [j0, j1) of both
 * planes, and the columns that wrapped around the row ends are fixed up afterwards. One
 * sample of an 8x8 layer then costs one copy per row of col instead of 8 (the per-call cost
 * of copying 8 floats dominated im2col). */
static bool is_contiguous(const conv_dims_t *d)
{
    return d->s == 1 && d->w == d->wo;
}

static void run_of(const conv_dims_t *d, const window_t *v, size_t *j0, size_t *j1)
{
    *j0 = v->oh_lo * d->wo + v->ow_lo;
    *j1 = (v->oh_hi - 1) * d->wo + v->ow_hi;
}

/* Zeroes the columns of row [oh_lo, oh_hi) outside [ow_lo, ow_hi). */
static void zero_wrapped(const conv_dims_t *d, const window_t *v, float *row)
{
    if (v->ow_lo == 0 && v->ow_hi == d->wo) return;
    for (size_t oh = v->oh_lo; oh < v->oh_hi; oh++) {
        float *r = row + oh * d->wo;
        for (size_t ow = 0; ow < v->ow_lo; ow++)
            r[ow] = 0.0f;
        for (size_t ow = v->ow_hi; ow < d->wo; ow++)
            r[ow] = 0.0f;
    }
}

/* dst[i] = src[i*s]. Stride 2 (downsampling convolutions) gets its own loop with the stride
 * as a constant, which the compiler vectorises with permutes; a run-time stride costs a scalar
 * load per element. */
static void gather_strided(float *restrict dst, const float *restrict src, size_t n, size_t s)
{
    if (s == 2)
        for (size_t i = 0; i < n; i++)
            dst[i] = src[2 * i];
    else
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i * s];
}

/* dst[i*s] += src[i], the adjoint of gather_strided. */
static void scatter_add_strided(float *restrict dst, const float *restrict src, size_t n, size_t s)
{
    if (s == 2)
        for (size_t i = 0; i < n; i++)
            dst[2 * i] += src[i];
    else
        for (size_t i = 0; i < n; i++)
            dst[i * s] += src[i];
}

/* Row (ki, kj) of col for one input plane xc [H][W]: row[oh*Wo + ow] = xc[ih][iw] or 0. */
static void lower_row(const conv_dims_t *d, const window_t *v, size_t ki, size_t kj,
                      const float *restrict xc, float *restrict row)
{
    if (v->oh_lo >= v->oh_hi || v->ow_lo >= v->ow_hi) { /* the window sees padding only */
        memset(row, 0, d->howo * sizeof *row);
        return;
    }
    /* In range by valid_range: oh_lo*S + ki >= P and ow_lo*S + kj >= P. */
    const float *src0 = xc + (v->oh_lo * d->s + ki - d->p) * d->w + v->ow_lo * d->s + kj - d->p;
    if (is_contiguous(d)) {
        size_t j0, j1;
        run_of(d, v, &j0, &j1);
        memset(row, 0, j0 * sizeof *row);
        memcpy(row + j0, src0, (j1 - j0) * sizeof *row);
        memset(row + j1, 0, (d->howo - j1) * sizeof *row);
        zero_wrapped(d, v, row);
        return;
    }
    memset(row, 0, v->oh_lo * d->wo * sizeof *row);
    for (size_t oh = v->oh_lo; oh < v->oh_hi; oh++) {
        float *dst = row + oh * d->wo;
        const float *src = src0 + (oh - v->oh_lo) * d->s * d->w;
        for (size_t ow = 0; ow < v->ow_lo; ow++)
            dst[ow] = 0.0f;
        gather_strided(dst + v->ow_lo, src, v->ow_hi - v->ow_lo, d->s);
        for (size_t ow = v->ow_hi; ow < d->wo; ow++)
            dst[ow] = 0.0f;
    }
    memset(row + v->oh_hi * d->wo, 0, (d->ho - v->oh_hi) * d->wo * sizeof *row);
}

/* Lowers one sample x [C][H][W] into the columns [0, HoWo) of col (row stride ld). */
static void im2col(const conv_dims_t *d, const float *x, float *col, size_t ld)
{
    for (size_t ki = 0; ki < d->k; ki++)
        for (size_t kj = 0; kj < d->k; kj++) {
            const window_t v = window_of(d, ki, kj);
            for (size_t c = 0; c < d->c; c++)
                lower_row(d, &v, ki, kj, x + c * d->hw, col + ((c * d->k + ki) * d->k + kj) * ld);
        }
}

/* The adjoint of lower_row: adds row into the plane dxc [H][W]. Clobbers the padding entries
 * of row (they are gradients with respect to padding, which nobody needs): the contiguous
 * case adds them, zeroed, into the wrapped-around positions. */
static void raise_row(const conv_dims_t *d, const window_t *v, size_t ki, size_t kj,
                      float *restrict row, float *restrict dxc)
{
    if (v->oh_lo >= v->oh_hi || v->ow_lo >= v->ow_hi) return;
    float *dst0 = dxc + (v->oh_lo * d->s + ki - d->p) * d->w + v->ow_lo * d->s + kj - d->p;
    if (is_contiguous(d)) {
        size_t j0, j1;
        run_of(d, v, &j0, &j1);
        zero_wrapped(d, v, row);
        const float *src = row + j0;
        for (size_t j = 0; j < j1 - j0; j++)
            dst0[j] += src[j];
        return;
    }
    for (size_t oh = v->oh_lo; oh < v->oh_hi; oh++) {
        float *dst = dst0 + (oh - v->oh_lo) * d->s * d->w;
        scatter_add_strided(dst, row + oh * d->wo + v->ow_lo, v->ow_hi - v->ow_lo, d->s);
    }
}

/* The adjoint of im2col: adds the columns [0, HoWo) of dcol (row stride ld) into one sample's
 * dx [C][H][W], clobbering dcol's padding entries. The order of the additions is fixed, so
 * results are reproducible. */
static void col2im_add(const conv_dims_t *d, float *dcol, size_t ld, float *dx)
{
    for (size_t ki = 0; ki < d->k; ki++)
        for (size_t kj = 0; kj < d->k; kj++) {
            const window_t v = window_of(d, ki, kj);
            for (size_t c = 0; c < d->c; c++)
                raise_row(d, &v, ki, kj, dcol + ((c * d->k + ki) * d->k + kj) * ld, dx + c * d->hw);
        }
}

/* Lowers samples [0, nb) of x into col [C*K*K x nb*HoWo] (rows ld apart). */
static void lower_block(const conv_dims_t *d, const float *x, size_t nb, float *col, size_t ld)
{
    for (size_t b = 0; b < nb; b++)
        im2col(d, x + b * d->c * d->hw, col + b * d->howo, ld);
}

/* y[b][o][p] = Y[o][b*HoWo + p] + bias[o] (bias may be NULL). */
static void scatter_block(const conv_dims_t *d, const float *Y, size_t ld, size_t nb,
                          const float *bias, float *y)
{
    for (size_t b = 0; b < nb; b++)
        for (size_t o = 0; o < d->out; o++) {
            const float *src = Y + o * ld + b * d->howo;
            float *dst = y + (b * d->out + o) * d->howo;
            const float bo = bias ? bias[o] : 0.0f;
            for (size_t p = 0; p < d->howo; p++)
                dst[p] = src[p] + bo;
        }
}

/* dY[o][b*HoWo + p] = dy[b][o][p]. */
static void gather_block(const conv_dims_t *d, const float *dy, size_t nb, float *dY, size_t ld)
{
    for (size_t b = 0; b < nb; b++)
        for (size_t o = 0; o < d->out; o++)
            memcpy(dY + o * ld + b * d->howo, dy + (b * d->out + o) * d->howo,
                   d->howo * sizeof *dY);
}

static void conv_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const conv_dims_t d = dims_of(n);
    const float *w = io->params + n->offset[0];
    const float *bias = n->a.bias ? io->params + n->offset[1] : NULL;
    if (is_winograd(n, &d)) {
        const dpt_wino_dims_t wd = wino_dims(&d);
        dpt_wino_forward(&wd, w, bias, io->x[0], io->rows, io->y, io->ws);
        return;
    }
    const size_t in_sz = d.c * d.hw, out_sz = d.out * d.howo, wg_sz = d.og * d.ckg;
    const size_t nb_max = block_of(&d, io->rows);
    const ws_layout_t l = layout_of(&d, nb_max);
    const bool direct = l.direct;
    float *Y = io->ws + l.y;
    for (size_t r0 = 0; r0 < io->rows; r0 += nb_max) {
        const size_t nb = io->rows - r0 < nb_max ? io->rows - r0 : nb_max, cols = nb * d.howo;
        const float *x = io->x[0] + r0 * in_sz, *col = x;
        size_t ldc = d.howo; /* direct: the sample is its own col */
        if (!direct) {
            lower_block(&d, x, nb, io->ws + l.col, l.ld);
            col = io->ws + l.col, ldc = l.ld;
        }
        for (size_t g = 0; g < d.g; g++)
            product_forward(&d, w + g * wg_sz, col + g * d.ckg * ldc, ldc, cols,
                            Y + g * d.og * l.ld, l.ld);
        scatter_block(&d, Y, l.ld, nb, bias, io->y + r0 * out_sz);
    }
}

/* Independent partial sums of plane_sum: one vector of them, so the compiler keeps them in
 * one register instead of a chain of dependent scalar additions (4 cycles each), which made
 * the bias gradient of the Fashion-MNIST CNN's first convolution cost 3 ms a step. */
enum { SUM_LANES = 16 };

/* The sum of v[0..n) in a fixed order (lane l adds v[l], v[l + 16], ...; then the lanes in
 * halves), the same on every machine and for every thread count. */
static float plane_sum(const float *v, size_t n)
{
    float lane[SUM_LANES] = {0};
    size_t p = 0;
    for (; p + SUM_LANES <= n; p += SUM_LANES)
        for (size_t l = 0; l < SUM_LANES; l++)
            lane[l] += v[p + l];
    for (size_t l = 0; p < n; p++, l++)
        lane[l] += v[p];
    for (size_t half = SUM_LANES / 2; half > 0; half /= 2)
        for (size_t l = 0; l < half; l++)
            lane[l] += lane[l + half];
    return lane[0];
}

/* db[o] = sum over rows and positions of dy[r][o][.], written. */
static void bias_grad(const conv_dims_t *d, const float *dy, size_t rows, float *db)
{
    memset(db, 0, d->out * sizeof *db);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < d->out; o++)
            db[o] += plane_sum(dy + (r * d->out + o) * d->howo, d->howo);
}

/* dw[g][o][j] = dwt[g][j][o]: dW from its transpose, group by group. */
static void untranspose_dw(const conv_dims_t *d, const float *dwt, float *dw)
{
    for (size_t g = 0; g < d->g; g++) {
        const float *src = dwt + g * d->ckg * d->og;
        float *dst = dw + g * d->og * d->ckg;
        for (size_t o = 0; o < d->og; o++)
            for (size_t j = 0; j < d->ckg; j++)
                dst[o * d->ckg + j] = src[j * d->og + o];
    }
}

static void conv_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    const conv_dims_t d = dims_of(n);
    const float *w = io->params + n->offset[0];
    float *dx = io->dx[0];
    const bool acc = io->dx_acc[0];
    const size_t in_sz = d.c * d.hw, out_sz = d.out * d.howo, wg_sz = d.og * d.ckg;
    const size_t nb_max = block_of(&d, io->rows);
    const ws_layout_t l = layout_of(&d, nb_max);
    const bool direct = l.direct;
    float *dwt = io->ws + l.dwt, *dY = io->ws + l.y;
    if (n->a.bias) bias_grad(&d, io->dy, io->rows, io->grads + n->offset[1]);
    if (is_winograd(n, &d)) {
        const dpt_wino_dims_t wd = wino_dims(&d);
        dpt_wino_backward(&wd, w, io->x[0], io->dy, io->rows, io->grads + n->offset[0], dx, acc,
                          io->ws);
        return;
    }
    if (io->rows == 0) memset(dwt, 0, d.out * d.ckg * sizeof *dwt);
    for (size_t r0 = 0; r0 < io->rows; r0 += nb_max) {
        const size_t nb = io->rows - r0 < nb_max ? io->rows - r0 : nb_max, cols = nb * d.howo;
        const float *x = io->x[0] + r0 * in_sz;
        /* col is recomputed rather than saved: it is K*K times the input. */
        float *col = direct ? NULL : io->ws + l.col;
        const size_t ldc = direct ? d.howo : l.ld;
        if (col) lower_block(&d, x, nb, col, l.ld);
        gather_block(&d, io->dy + r0 * out_sz, nb, dY, l.ld);
        const bool acc_w = r0 != 0; /* the first block writes dW */
        for (size_t g = 0; g < d.g; g++) {
            const float *colg = (col ? col : x) + g * d.ckg * ldc;
            const float *dYg = dY + g * d.og * l.ld;
            product_weight_grad(&d, colg, ldc, dYg, l.ld, cols, acc_w, dwt + g * wg_sz);
            if (!dx) continue;
            if (direct) { /* dx is the lowered sample: write or add straight into it */
                product_input_grad(&d, w + g * wg_sz, dYg, l.ld, cols, acc,
                                   dx + r0 * in_sz + g * d.ckg * d.howo, d.howo);
                continue;
            }
            /* dcol_g overwrites col_g: this group's rows of col are no longer needed. */
            product_input_grad(&d, w + g * wg_sz, dYg, l.ld, cols, false, col + g * d.ckg * l.ld,
                               l.ld);
        }
        if (!dx || direct) continue;
        for (size_t b = 0; b < nb; b++) {
            float *dxb = dx + (r0 + b) * in_sz;
            if (!acc) memset(dxb, 0, in_sz * sizeof *dxb);
            col2im_add(&d, col + b * d.howo, l.ld, dxb);
        }
    }
    untranspose_dw(&d, dwt, io->grads + n->offset[0]);
}

/* The forward GEMM of one block: W_g [OUT/G x C*K*K/G] times col_g [. x nb*HoWo]. */
static void conv_gemm_shape(const dpt_node_t *n, size_t rows, size_t mnk[3])
{
    const conv_dims_t d = dims_of(n);
    mnk[0] = d.og, mnk[1] = block_of(&d, rows) * d.howo, mnk[2] = d.ckg;
}

/* Winograd's 16 products are OUT x (a block's tile columns) x C; im2col's are gemm_shape's. */
static void conv_product_shape(const dpt_node_t *n, size_t rows, size_t mnk[3])
{
    const conv_dims_t d = dims_of(n);
    if (!is_winograd(n, &d)) {
        conv_gemm_shape(n, rows, mnk);
        return;
    }
    const dpt_wino_dims_t wd = wino_dims(&d);
    mnk[0] = d.out, mnk[1] = dpt_wino_block_columns(&wd, rows), mnk[2] = d.c;
}

const dpt_op_t dpt_op_conv = {
    .spec = {"conv", conv_keys},
    .parse = conv_parse,
    .infer = conv_infer,
    .declare = conv_declare,
    .workspace_floats = conv_workspace_floats,
    .forward = conv_forward,
    .backward = conv_backward,
    .flops = conv_flops,
    .gemm_shape = conv_gemm_shape,
    .product_shape = conv_product_shape,
};
