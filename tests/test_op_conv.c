/* Tests for src/nn/conv.c: forward and every gradient against a naive 7-loop convolution in
 * double, over strides, paddings, groups, 1x1 kernels and sample blocks; a central-difference
 * check of the gradients themselves; parse, infer and declare, and their errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/gemm.h"
#include "nn/op.h"
#include "nn/spec.h"
#include "support.h"

static void init(void)
{
    dpt_gemm_init();
}

TestSuite(op_conv, .init = init);

/* A node built as the graph would: the item read by the layer grammar, parsed, inferred for input
 * shape `in`, its tensors laid out weight first, then bias. */
typedef struct {
    dpt_node_t n;
    dpt_spec_part_t args;
    dpt_tensor_decl_t decl[DPT_NODE_MAX_TENSORS];
    size_t n_decl, n_params;
} node_t;

/* parse + infer; returns the first failure (the node is then unusable). */
static dpt_status_t build(node_t *t, const char *item, dpt_shape_t in)
{
    memset(&t->n, 0, sizeof t->n);
    t->n.op = &dpt_op_conv;
    snprintf(t->n.name, sizeof t->n.name, "conv3");
    t->n.n_in = 1;
    t->n.in_shape[0] = in;
    const dpt_op_t *op;
    dpt_status_t s = dpt_op_parse_item(item, strlen(item), &op, &t->args);
    if (s == DPT_OK && op != &dpt_op_conv) s = DPT_ERR_INTERNAL;
    if (s == DPT_OK) s = dpt_op_conv.parse(&t->n, &t->args);
    if (s != DPT_OK) return s;
    return dpt_op_conv.infer(&t->n);
}

static void build_ok(node_t *t, const char *item, dpt_shape_t in)
{
    cr_assert_eq(build(t, item, in), DPT_OK, "%s: %s", item, dpt_last_error());
    t->n_decl = dpt_op_conv.declare(&t->n, t->decl);
    t->n_params = 0;
    for (size_t k = 0; k < t->n_decl; k++) {
        size_t sz = 1;
        for (size_t d = 0; d < t->decl[k].ndim; d++)
            sz *= t->decl[k].shape[d];
        t->n.offset[k] = t->n_params;
        t->n_params += sz;
    }
    t->n.n_tensors = t->n_decl;
}

static uint64_t rng_state;

static float uniform(void) /* splitmix64 -> [-1, 1) */
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2 - 1);
}

static float *random_floats(size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = uniform();
    return v;
}

static float *nan_floats(size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = NAN;
    return v;
}

/* The reference: the direct 7-loop convolution (rows, out channels, out rows, out columns,
 * channels of the group, kernel rows, kernel columns) in double, with the sums of absolute
 * terms that bound the rounding of a float computation. Backward takes dy = R. */
typedef struct {
    double *y, *ya, *dw, *dwa, *db, *dba, *dx, *dxa;
} ref_t;

static ref_t reference(const dpt_node_t *n, const float *w, const float *bias, const float *x,
                       const float *r, size_t rows)
{
    const dpt_shape_t in = n->in_shape[0], out = n->out;
    const size_t k = n->a.k, s = n->a.stride, p = n->a.pad, cg = in.c / n->a.groups;
    const size_t og = out.c / n->a.groups, in_sz = dpt_shape_size(in), out_sz = dpt_shape_size(out),
                 w_sz = out.c * cg * k * k;
    ref_t f = {calloc(rows * out_sz, 8), calloc(rows * out_sz, 8), calloc(w_sz, 8),
               calloc(w_sz, 8),          calloc(out.c, 8),         calloc(out.c, 8),
               calloc(rows * in_sz, 8),  calloc(rows * in_sz, 8)};
    for (size_t b = 0; b < rows; b++)
        for (size_t o = 0; o < out.c; o++)
            for (size_t oh = 0; oh < out.h; oh++)
                for (size_t ow = 0; ow < out.w; ow++) {
                    const size_t yi = ((b * out.c + o) * out.h + oh) * out.w + ow;
                    double acc = bias ? bias[o] : 0, abs_acc = bias ? fabs(bias[o]) : 0;
                    const double dy = r[yi];
                    if (bias) f.db[o] += dy, f.dba[o] += fabs(dy);
                    for (size_t ci = 0; ci < cg; ci++)
                        for (size_t ki = 0; ki < k; ki++)
                            for (size_t kj = 0; kj < k; kj++) {
                                const long ih = (long)(oh * s + ki) - (long)p;
                                const long iw = (long)(ow * s + kj) - (long)p;
                                if (ih < 0 || iw < 0 || ih >= (long)in.h || iw >= (long)in.w)
                                    continue;
                                const size_t c = o / og * cg + ci;
                                const size_t xi = ((b * in.c + c) * in.h + ih) * in.w + iw;
                                const size_t wi = ((o * cg + ci) * k + ki) * k + kj;
                                acc += (double)w[wi] * x[xi];
                                abs_acc += fabs((double)w[wi] * x[xi]);
                                f.dw[wi] += dy * x[xi], f.dwa[wi] += fabs(dy * x[xi]);
                                f.dx[xi] += dy * w[wi], f.dxa[xi] += fabs(dy * w[wi]);
                            }
                    f.y[yi] = acc, f.ya[yi] = abs_acc;
                }
    return f;
}

static void ref_free(ref_t *f)
{
    free(f->y), free(f->ya), free(f->dw), free(f->dwa), free(f->db), free(f->dba);
    free(f->dx), free(f->dxa);
}

/* |got - (base + want)| within float rounding of a sum whose absolute terms add to abs. */
static void expect_close(const char *what, const char *item, const float *got, const float *base,
                         const double *want, const double *abs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double w = (base ? base[i] : 0) + want[i];
        const double tol = 1e-5 * (abs[i] + (base ? fabs(base[i]) : 0)) + 1e-6;
        cr_assert(fabs(got[i] - w) <= tol, "%s: %s[%zu] = %.9g, want %.9g", item, what, i, got[i],
                  w);
    }
}

/* Runs forward and backward (dx written, then dx added onto random values) of `item` on
 * `rows` random samples of shape `in`, and compares all of it with the reference. Parameter
 * gradients and outputs start as NaN, so anything read before written, or left unwritten,
 * shows up. */
static void check_item(const char *item, dpt_shape_t in, size_t rows)
{
    node_t t;
    build_ok(&t, item, in);
    const dpt_node_t *n = &t.n;
    const size_t in_sz = dpt_shape_size(in), out_sz = dpt_shape_size(n->out);
    const size_t ws_n = dpt_op_conv.workspace_floats(n, rows);
    const size_t w_sz = n->out.c * t.decl[0].shape[1] * n->a.k * n->a.k;
    float *params = random_floats(t.n_params), *x = random_floats(rows * in_sz);
    float *r = random_floats(rows * out_sz), *y = nan_floats(rows * out_sz);
    float *grads = nan_floats(t.n_params), *dx = nan_floats(rows * in_sz);
    float *dx0 = random_floats(rows * in_sz), *ws = nan_floats(ws_n);
    const float *bias = n->a.bias ? params + n->offset[1] : NULL;
    ref_t f = reference(n, params, bias, x, r, rows);

    dpt_op_io_t io = {.x = {x},
                      .y = y,
                      .dy = r,
                      .dx = {dx},
                      .params = params,
                      .grads = grads,
                      .ws = ws,
                      .rows = rows};
    dpt_op_conv.forward(n, &io);
    expect_close("y", item, y, NULL, f.y, f.ya, rows * out_sz);

    dpt_op_conv.backward(n, &io);
    expect_close("dW", item, grads, NULL, f.dw, f.dwa, w_sz);
    if (bias) expect_close("db", item, grads + n->offset[1], NULL, f.db, f.dba, n->out.c);
    expect_close("dx (written)", item, dx, NULL, f.dx, f.dxa, rows * in_sz);

    /* Again, adding onto dx0; the parameter gradients are written again, not summed. */
    memcpy(dx, dx0, rows * in_sz * sizeof *dx);
    io.dx_acc[0] = true;
    dpt_op_conv.backward(n, &io);
    expect_close("dx (added)", item, dx, dx0, f.dx, f.dxa, rows * in_sz);
    expect_close("dW (second pass)", item, grads, NULL, f.dw, f.dwa, w_sz);

    /* Without an input gradient: parameter gradients only. */
    for (size_t i = 0; i < t.n_params; i++)
        grads[i] = NAN;
    io.dx[0] = NULL;
    dpt_op_conv.backward(n, &io);
    if (bias) expect_close("db (no dx)", item, grads + n->offset[1], NULL, f.db, f.dba, n->out.c);
    expect_close("dW (no dx)", item, grads, NULL, f.dw, f.dwa, w_sz);

    ref_free(&f);
    free(params), free(x), free(r), free(y), free(grads), free(dx), free(dx0), free(ws);
}

#define SHAPE(C, H, W) ((dpt_shape_t){(C), (H), (W)})

Test(op_conv, odd_sizes_strides_pads)
{
    rng_state = 1;
    const char *items[] = {"conv:4:3",
                           "conv:4:3:pad=0",
                           "conv:4:3:pad=2",
                           "conv:4:3:stride=2",
                           "conv:4:3:stride=2:pad=0",
                           "conv:4:3:stride=2:pad=2",
                           "conv:4:3:bias=0",
                           "conv:4:2",
                           "conv:4:5:stride=3:pad=1",
                           "conv:4:4:stride=2:pad=3",
                           "conv:4:2:pad=3" /* windows over padding only */};
    for (size_t i = 0; i < sizeof items / sizeof *items; i++)
        check_item(items[i], SHAPE(3, 7, 5), 3);
}

Test(op_conv, groups_and_depthwise)
{
    rng_state = 2;
    check_item("conv:3:3:groups=3", SHAPE(3, 7, 5), 2);          /* depthwise */
    check_item("conv:6:3:groups=3:stride=2", SHAPE(3, 7, 5), 2); /* depthwise, multiplier 2 */
    check_item("conv:6:3:groups=2:bias=0", SHAPE(4, 6, 7), 2);   /* two groups */
    check_item("conv:4:1:groups=2", SHAPE(4, 5, 5), 2);          /* grouped 1x1 */
}

Test(op_conv, one_by_one_and_large_kernel)
{
    rng_state = 3;
    check_item("conv:4:1", SHAPE(3, 7, 5), 3);          /* direct: col is the input */
    check_item("conv:4:1:stride=2", SHAPE(3, 7, 5), 3); /* lowered: strided */
    check_item("conv:4:1:pad=1", SHAPE(3, 7, 5), 3);    /* lowered: padded */
    check_item("conv:2:5", SHAPE(3, 6, 6), 2);
    check_item("conv:2:5:pad=0", SHAPE(3, 6, 6), 2);
    check_item("conv:2:6:pad=0", SHAPE(3, 6, 6), 2); /* kernel = input: one output */
}

/* Both product paths on the same geometries: 3 input channels with a 3x3 kernel lower to 27
 * rows (the thin kernels of kernels/thin.c, up to 32 rows per group, where the kernel set
 * has no small-matrix path or the convolution is grouped), 4 to 36 (BLIS); one
 * input channel is the Fashion-MNIST stem; a depthwise layer with 40 channels runs thin
 * with dx, in blocks. */
Test(op_conv, thin_and_blis_products)
{
    /* Under ctest's second run: the kernel set asked for (generic: no small-matrix path, so
     * the ungrouped thin products) must be the one in use. */
    const char *want = getenv("DPT_TEST_EXPECT_KERNEL");
    if (want) cr_assert_str_eq(dpt_gemm_kernel_name(), want);
    rng_state = 6;
    const char *items[] = {"conv:5:3", "conv:6:3:stride=2", "conv:5:3:pad=0:bias=0",
                           "conv:4:2:pad=1"};
    for (size_t i = 0; i < sizeof items / sizeof *items; i++) {
        check_item(items[i], SHAPE(3, 9, 7), 3); /* 27 (or 12) lowered rows: thin */
        check_item(items[i], SHAPE(4, 9, 7), 3); /* 36 (or 16): BLIS for 3x3 */
        check_item(items[i], SHAPE(9, 9, 7), 2); /* 81 (or 36): BLIS */
    }
    check_item("conv:32:3", SHAPE(1, 28, 28), 2);          /* one channel, 784 positions */
    check_item("conv:40:3:groups=40", SHAPE(40, 6, 6), 5); /* depthwise, blocks of 8 */
}

/* Blocks of several samples (small outputs), with a partial last block, and one sample at a
 * time (outputs of 256 positions or more), for the direct 1x1 path too. */
Test(op_conv, sample_blocks)
{
    rng_state = 4;
    check_item("conv:5:3", SHAPE(3, 5, 5), 25); /* 25 positions: blocks of 11, 11, 3 */
    check_item("conv:5:1", SHAPE(3, 5, 4), 30); /* direct 1x1 in blocks of 13 */
    check_item("conv:3:3:groups=3", SHAPE(3, 4, 4), 40);
    check_item("conv:4:3", SHAPE(2, 16, 17), 3); /* 272 positions: one sample a block */
    check_item("conv:4:1:groups=2", SHAPE(4, 24, 23), 3);
    check_item("conv:4:3:stride=2", SHAPE(2, 45, 46), 2);
}

/* The Winograd lowering (3x3, stride 1, pad 1, one group) against the same reference: odd and
 * one-pixel planes (tiles cut by the border), every way of walking tiles: runs of 16 (32 wide;
 * 56 wide, two runs a row, the second with 4 empty lanes), of 8 (16 wide; 14 and 13 wide, 7
 * tiles and an empty lane), of 4 (9x7) and gathered lanes (40 wide: 20 tiles a row; 5 and 6
 * wide), blocks of several samples with a partial last one, and `auto`, which picks it from 8
 * input channels on planes of 2x2 or more. */
Test(op_conv, winograd_matches_reference)
{
    rng_state = 7;
    check_item("conv:4:3:algo=winograd", SHAPE(3, 7, 5), 3);
    check_item("conv:5:3:algo=winograd:bias=0", SHAPE(2, 1, 1), 2);
    check_item("conv:3:3:algo=winograd", SHAPE(4, 2, 9), 3);
    check_item("conv:6:3:algo=winograd", SHAPE(5, 1, 6), 2);
    check_item("conv:5:3", SHAPE(8, 9, 7), 3);     /* auto */
    check_item("conv:4:3", SHAPE(8, 32, 32), 6);   /* 256 tiles: blocks of 4 and 2 */
    check_item("conv:3:3", SHAPE(9, 40, 6), 2);    /* 60 tiles, 20 a row */
    check_item("conv:2:3", SHAPE(8, 6, 40), 2);    /* 60 tiles, 20 a row */
    check_item("conv:7:3", SHAPE(10, 14, 14), 45); /* 7 x 8 columns: blocks of 19, 19, 7 */
    check_item("conv:3:3", SHAPE(8, 5, 13), 3);
    check_item("conv:4:3", SHAPE(8, 16, 16), 3);
    check_item("conv:3:3", SHAPE(8, 5, 56), 2);
    check_item("conv:6:3:algo=winograd", SHAPE(1, 4, 4), 3);
    /* 64 channels and more: the weight gradient as dM^T and a GEMM where the thin kernels
     * run (dpt_gemm_thin_wins); outputs not a multiple of 16 (the transpose's edges), several
     * blocks (the GEMM adds into dU), and a full 64-wide block */
    check_item("conv:5:3", SHAPE(64, 6, 7), 3);
    check_item("conv:20:3", SHAPE(70, 9, 9), 17);
    check_item("conv:64:3", SHAPE(64, 8, 8), 3);
}

/* The reference's gradients are hand-derived too: check the op's against central
 * differences of L = sum(y * R) in double. L is linear in each of W, b and x, so the
 * difference quotient is exact but for the float rounding of y. */
static void check_finite_differences(const char *item, dpt_shape_t in)
{
    node_t t;
    build_ok(&t, item, in);
    const dpt_node_t *n = &t.n;
    const size_t rows = 2, in_sz = dpt_shape_size(in), out_sz = dpt_shape_size(n->out);
    float *params = random_floats(t.n_params), *x = random_floats(rows * in_sz);
    float *r = random_floats(rows * out_sz), *y = malloc(rows * out_sz * sizeof *y);
    float *grads = malloc(t.n_params * sizeof *grads), *dx = malloc(rows * in_sz * sizeof *dx);
    float *ws = malloc((dpt_op_conv.workspace_floats(n, rows) + 1) * sizeof *ws);
    dpt_op_io_t io = {.x = {x},
                      .y = y,
                      .dy = r,
                      .dx = {dx},
                      .params = params,
                      .grads = grads,
                      .ws = ws,
                      .rows = rows};
    dpt_op_conv.backward(n, &io);
    const float h = 0.25f;
    float *vars[2] = {params, x};
    const float *ana[2] = {grads, dx};
    const size_t counts[2] = {t.n_params, rows * in_sz};
    for (int v = 0; v < 2; v++)
        for (size_t i = 0; i < counts[v]; i++) {
            const float saved = vars[v][i];
            double l[2];
            for (int side = 0; side < 2; side++) {
                vars[v][i] = saved + (side ? h : -h);
                dpt_op_conv.forward(n, &io);
                l[side] = 0;
                for (size_t j = 0; j < rows * out_sz; j++)
                    l[side] += (double)y[j] * r[j];
            }
            vars[v][i] = saved;
            const double fd = (l[1] - l[0]) / (2 * h);
            cr_assert(fabs(fd - ana[v][i]) <= 1e-4 * (1 + fabs(fd)), "%s: %s[%zu]: %g vs fd %g",
                      item, v ? "dx" : "dparams", i, ana[v][i], fd);
        }
    free(params), free(x), free(r), free(y), free(grads), free(dx), free(ws);
}

Test(op_conv, gradients_match_finite_differences)
{
    rng_state = 5;
    check_finite_differences("conv:4:3:stride=2:pad=1:groups=2", SHAPE(4, 5, 6));
    check_finite_differences("conv:3:3:algo=winograd", SHAPE(2, 5, 6));  /* gathered */
    check_finite_differences("conv:3:3:algo=winograd", SHAPE(2, 6, 14)); /* runs of 8 */
}

/* Same inputs, same bits, and the row block a sample falls in does not change its output. */
Test(op_conv, deterministic)
{
    rng_state = 6;
    node_t t;
    const dpt_shape_t in = SHAPE(8, 6, 6);
    build_ok(&t, "conv:8:3", in);
    const dpt_node_t *n = &t.n;
    const size_t rows = 20, in_sz = dpt_shape_size(in), out_sz = dpt_shape_size(n->out);
    float *params = random_floats(t.n_params), *x = random_floats(rows * in_sz);
    float *r = random_floats(rows * out_sz),
          *ws = malloc(dpt_op_conv.workspace_floats(n, rows) * 4);
    float *y[2], *g[2], *dx[2];
    for (int run = 0; run < 2; run++) {
        y[run] = nan_floats(rows * out_sz), g[run] = nan_floats(t.n_params);
        dx[run] = nan_floats(rows * in_sz);
        dpt_op_io_t io = {.x = {x},
                          .y = y[run],
                          .dy = r,
                          .dx = {dx[run]},
                          .params = params,
                          .grads = g[run],
                          .ws = ws,
                          .rows = rows};
        for (size_t i = 0; i < dpt_op_conv.workspace_floats(n, rows); i++)
            ws[i] = run ? 1e30f : -7.0f; /* stale workspace must not leak in */
        dpt_op_conv.forward(n, &io);
        dpt_op_conv.backward(n, &io);
    }
    cr_assert_eq(memcmp(y[0], y[1], rows * out_sz * 4), 0);
    cr_assert_eq(memcmp(g[0], g[1], t.n_params * 4), 0);
    cr_assert_eq(memcmp(dx[0], dx[1], rows * in_sz * 4), 0);
    free(params), free(x), free(r), free(ws);
    for (int run = 0; run < 2; run++)
        free(y[run]), free(g[run]), free(dx[run]);
}

Test(op_conv, parse_defaults_and_options)
{
    node_t t;
    build_ok(&t, "conv:16:3", SHAPE(3, 32, 32));
    cr_assert_eq(t.n.a.out, 16);
    cr_assert_eq(t.n.a.k, 3);
    cr_assert_eq(t.n.a.stride, 1);
    cr_assert_eq(t.n.a.pad, 1, "same padding by default");
    cr_assert_eq(t.n.a.groups, 1);
    cr_assert(t.n.a.bias);
    cr_assert_eq(t.n.out.c, 16);
    cr_assert_eq(t.n.out.h, 32);
    cr_assert_eq(t.n.out.w, 32);

    build_ok(&t, "conv:8:5:stride=2:pad=0:bias=0:groups=1", SHAPE(2, 11, 12));
    cr_assert_eq(t.n.a.pad, 0, "an explicit pad=0 is kept");
    cr_assert_eq(t.n.a.stride, 2);
    cr_assert(!t.n.a.bias);
    cr_assert_eq(t.n.out.h, 4);
    cr_assert_eq(t.n.out.w, 4);

    build_ok(&t, "conv:4:4", SHAPE(1, 8, 8));
    cr_assert_eq(t.n.a.pad, 1, "(K-1)/2 for an even kernel");
    cr_assert_eq(t.n.out.h, 7);
}

Test(op_conv, declare_and_flops)
{
    node_t t;
    build_ok(&t, "conv:6:3:groups=3:stride=2", SHAPE(3, 7, 5));
    cr_assert_eq(t.n_decl, 2);
    const dpt_tensor_decl_t *w = &t.decl[0], *b = &t.decl[1];
    cr_assert_str_eq(w->suffix, "weight");
    cr_assert_eq(w->ndim, 4);
    cr_assert_eq(w->shape[0], 6);
    cr_assert_eq(w->shape[1], 1);
    cr_assert_eq(w->shape[2], 3);
    cr_assert_eq(w->shape[3], 3);
    cr_assert_eq(w->role, DPT_TENSOR_WEIGHT);
    cr_assert_eq(w->init, DPT_INIT_TORCH);
    cr_assert_eq(w->fan_in, 9);
    cr_assert_eq(w->fan_out, 6 * 9 / 3);
    cr_assert_str_eq(b->suffix, "bias");
    cr_assert_eq(b->ndim, 1);
    cr_assert_eq(b->shape[0], 6);
    cr_assert_eq(b->role, DPT_TENSOR_BIAS);
    cr_assert_eq(b->init, DPT_INIT_TORCH);
    cr_assert_eq(b->fan_in, 9, "the bias is drawn with the weights' bound");
    /* 2 * OUT * C/G * K*K * Ho*Wo, Ho = 4, Wo = 3 */
    cr_assert_float_eq(dpt_op_conv.flops(&t.n), 2.0 * 6 * 1 * 9 * 12, 1e-9);

    build_ok(&t, "conv:16:3:init=he", SHAPE(8, 4, 4));
    cr_assert_eq(t.decl[0].init, DPT_INIT_HE);
    cr_assert_eq(t.decl[1].init, DPT_INIT_ZERO, "a bias starts at 0 unless init=torch");

    build_ok(&t, "conv:16:3:bias=0", SHAPE(8, 4, 4));
    cr_assert_eq(t.n_decl, 1);
    cr_assert_eq(t.decl[0].fan_in, 72);
    cr_assert_eq(t.decl[0].fan_out, 144);
}

/* The workspace does not grow with the rows past one block; its block matrices have rows a
 * padded stride apart (a multiple of 16 floats, never of 128). */
Test(op_conv, workspace_bounded)
{
    node_t t;
    build_ok(&t, "conv:64:3:algo=im2col", SHAPE(64, 8, 8));
    const size_t bound = (64 * 9 + 64) * (64 + 256 + 128) + 64 * 64 * 9;
    const size_t w1 = dpt_op_conv.workspace_floats(&t.n, 1);
    const size_t w_many = dpt_op_conv.workspace_floats(&t.n, 100000);
    cr_assert_eq(w1, 64 * 9 * 64 + 64 * 64 + 64 * 64 * 9, "one sample: col, Y and dW^T");
    /* 4 samples a block: 256 columns, rows 272 apart */
    cr_assert_eq(w_many, (64 * 9 + 64) * 272 + 64 * 64 * 9);
    cr_assert_leq(w_many, bound);
    cr_assert_eq(w_many, dpt_op_conv.workspace_floats(&t.n, 1000));
    build_ok(&t, "conv:4:1", SHAPE(3, 32, 32));
    cr_assert_eq(dpt_op_conv.workspace_floats(&t.n, 64), 4 * 1040 + 4 * 3,
                 "direct 1x1: Y (1024 columns, rows 1040 apart) and dW^T");
}

/* Winograd's workspace: U and dU^T (16 x OUT x C each), V and M (16 matrices of C, OUT rows
 * of a block's tile columns, an odd number of 64-byte lines apart), the block's padded planes
 * and a zero plane, and the tile table; it too stops growing at one block. */
Test(op_conv, winograd_workspace_bounded)
{
    node_t t;
    build_ok(&t, "conv:64:3", SHAPE(64, 8, 8)); /* auto: Winograd */
    /* 16 tiles a sample (runs of 4); blocks of 16 rows (256 columns, rows 272 apart); 64 * 272
     * floats is 1088 lines, even, so the matrices are 64 * 272 + 16 apart; dM^T of one matrix
     * (256 x 64: 64 channels take the weight gradient as a transpose and a GEMM); 16 + 1
     * planes of 10 x 10; a table entry a column */
    const size_t per_rows16 =
        2 * 16 * 64 * 64 + 2 * 16 * (64 * 272 + 16) + 256 * 64 + 17 * 10 * 10 + 256;
    cr_assert_eq(dpt_op_conv.workspace_floats(&t.n, 16), per_rows16);
    cr_assert_eq(dpt_op_conv.workspace_floats(&t.n, 100000), dpt_op_conv.workspace_floats(&t.n, 64),
                 "one block of 64 rows at most");
    cr_assert_leq(dpt_op_conv.workspace_floats(&t.n, 1), dpt_op_conv.workspace_floats(&t.n, 64));
}

Test(op_conv, kernel_larger_than_input)
{
    node_t t;
    assert_fails(build(&t, "conv:8:5:pad=0", SHAPE(3, 3, 3)), DPT_ERR_INVALID_ARG,
                 "conv3: kernel 5 larger than its padded input 3x3");
    assert_fails(build(&t, "conv:8:5:pad=1", SHAPE(3, 9, 2)), DPT_ERR_INVALID_ARG,
                 "conv3: kernel 5 larger than its padded input 11x4");
    cr_assert_eq(build(&t, "conv:8:5:pad=1", SHAPE(3, 9, 3)), DPT_OK, "5 fits 3 + 2");
}

/* Refused in infer, before anything is allocated for it. */
Test(op_conv, lowered_input_over_the_cap)
{
    node_t t;
    assert_fails(build(&t, "conv:8:5", SHAPE(4096, 64, 64)), DPT_ERR_INVALID_ARG,
                 "conv3: lowered input of one sample (102400 x 4096 floats) over the cap");
    cr_assert_eq(build(&t, "conv:8:3", SHAPE(4096, 64, 64)), DPT_OK, "%s", dpt_last_error());
}

Test(op_conv, groups_must_divide_channels)
{
    node_t t;
    assert_fails(build(&t, "conv:8:3:groups=2", SHAPE(3, 8, 8)), DPT_ERR_INVALID_ARG,
                 "conv3: groups=2 must divide both the input channels (3)");
    assert_fails(build(&t, "conv:9:3:groups=2", SHAPE(4, 8, 8)), DPT_ERR_INVALID_ARG,
                 "and the output channels (9)");
}

Test(op_conv, bad_arguments)
{
    node_t t;
    const dpt_shape_t in = SHAPE(3, 8, 8);
    assert_fails(build(&t, "conv:8", in), DPT_ERR_INVALID_ARG, "'conv:8': missing required key k");
    assert_fails(build(&t, "conv", in), DPT_ERR_INVALID_ARG,
                 "'conv': missing required key out (usage: conv:OUT:K[:stride=1]");
    assert_fails(build(&t, "conv:8:3:dilation=2", in), DPT_ERR_INVALID_ARG,
                 "unknown key 'dilation'; valid keys: out, k, stride, pad, bias, groups");
    assert_fails(build(&t, "conv:8:3:3", in), DPT_ERR_INVALID_ARG,
                 "'conv:8:3:3': expected key=value, got '3'");
    assert_fails(build(&t, "conv:8:0", in), DPT_ERR_INVALID_ARG,
                 "k must be an integer in [1, 64], got '0'");
    assert_fails(build(&t, "conv:0:3", in), DPT_ERR_INVALID_ARG,
                 "out must be an integer in [1, 65536], got '0'");
    assert_fails(build(&t, "conv:8:3:stride=0", in), DPT_ERR_INVALID_ARG,
                 "stride must be an integer in [1, 64]");
    assert_fails(build(&t, "conv:8:3:bias=2", in), DPT_ERR_INVALID_ARG,
                 "bias must be 0 or 1, got '2'");
    assert_fails(build(&t, "conv:8:3:pad=65", in), DPT_ERR_INVALID_ARG,
                 "pad must be an integer in [0, 64]");
    assert_fails(build(&t, "conv:8:3:groups=0", in), DPT_ERR_INVALID_ARG,
                 "groups must be an integer in [1, 65536]");
    assert_fails(build(&t, "conv:8:3:algo=fft", in), DPT_ERR_INVALID_ARG,
                 "algo must be one of auto, im2col, winograd, got 'fft'");
    const char *no_wino[] = {"conv:8:3:algo=winograd:stride=2", "conv:8:3:algo=winograd:pad=0",
                             "conv:8:5:algo=winograd", "conv:3:3:algo=winograd:groups=3"};
    for (size_t i = 0; i < sizeof no_wino / sizeof *no_wino; i++)
        assert_fails(build(&t, no_wino[i], in), DPT_ERR_INVALID_ARG,
                     "conv3: algo=winograd takes a 3x3 kernel at stride 1 with pad 1 and one "
                     "group");
}
