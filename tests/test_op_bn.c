/* Tests for src/nn/bn.c: batch normalisation's forward (training against the formula in
 * double, evaluation against the running statistics), the shard statistics and their fold,
 * finite-difference gradient checks in double in both modes, and the option parser. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"
#include "nn/spec.h"
#include "support.h"

/* A small seeded generator of the test's own, so the suite needs nothing but the op. */
static uint64_t rng_state;
static void rng_seed(uint64_t s)
{
    rng_state = s * 0x9E3779B97F4A7C15ull + 1;
}
static double rng_uniform(void) /* [0, 1) */
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}

/* A bn node for input (c, h, w), built the way the graph builds it: parse, infer, declare,
 * then tensors laid out at offset[k] = k * c and statistics at offset 0. `opts` are
 * key=value pairs ("eps", "1e-3", ...), n_opt pairs. */
static dpt_node_t make_node(size_t c, size_t h, size_t w, const char *const *opts, size_t n_opt)
{
    dpt_node_t n;
    memset(&n, 0, sizeof n);
    n.op = &dpt_op_bn;
    strcpy(n.name, "bn0");
    n.n_in = 1;
    n.in_shape[0] = (dpt_shape_t){c, h, w};
    char item[256];
    size_t len = (size_t)snprintf(item, sizeof item, "bn");
    for (size_t i = 0; i < n_opt; i++)
        len += (size_t)snprintf(item + len, sizeof item - len, "%c%s=%s", i ? ',' : ':',
                                opts[2 * i], opts[2 * i + 1]);
    const dpt_op_t *op;
    dpt_spec_part_t a;
    cr_assert_eq(dpt_op_parse_item(item, len, &op, &a), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(op, &dpt_op_bn);
    cr_assert_eq(dpt_op_bn.parse(&n, &a), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_op_bn.infer(&n), DPT_OK, "%s", dpt_last_error());
    dpt_tensor_decl_t d[DPT_NODE_MAX_TENSORS];
    n.n_tensors = dpt_op_bn.declare(&n, d);
    cr_assert_eq(n.n_tensors, 4u);
    for (size_t k = 0; k < 4; k++)
        n.offset[k] = k * c;
    n.stats_off = 0;
    return n;
}

/* Buffers of one pass over `rows` samples of node n. */
typedef struct {
    dpt_node_t n;
    size_t c, hw, size, rows;
    float *params, *grads, *stats, *saved, *x, *y, *dy, *dx;
    dpt_step_ctx_t ctx;
    dpt_op_io_t io;
} fix_t;

static void fix_init(fix_t *f, size_t c, size_t h, size_t w, size_t rows, bool training)
{
    memset(f, 0, sizeof *f);
    f->n = make_node(c, h, w, NULL, 0);
    f->c = c, f->hw = h * w, f->size = c * h * w, f->rows = rows;
    f->params = calloc(4 * c, sizeof(float));
    f->grads = calloc(2 * c, sizeof(float));
    f->stats = calloc(dpt_op_bn.stats_floats(&f->n), sizeof(float));
    f->saved = calloc(dpt_op_bn.saved_floats(&f->n, rows), sizeof(float));
    f->x = calloc(rows * f->size, sizeof(float));
    f->y = calloc(rows * f->size, sizeof(float));
    f->dy = calloc(rows * f->size, sizeof(float));
    f->dx = calloc(rows * f->size, sizeof(float));
    rng_seed(c * 131 + h * 17 + rows);
    /* Channels with different means and spreads, so a mix-up of channels shows. */
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < c; k++)
            for (size_t i = 0; i < f->hw; i++)
                f->x[r * f->size + k * f->hw + i] =
                    (float)((double)k - 1.0 + (0.5 + 0.3 * k) * (2 * rng_uniform() - 1));
    for (size_t k = 0; k < c; k++) {
        f->params[k] = (float)(0.5 + rng_uniform());             /* gamma */
        f->params[c + k] = (float)(rng_uniform() - 0.5);         /* beta */
        f->params[2 * c + k] = (float)(rng_uniform() - 0.5);     /* running mean */
        f->params[3 * c + k] = (float)(0.5 + 2 * rng_uniform()); /* running var */
    }
    for (size_t i = 0; i < rows * f->size; i++)
        f->dy[i] = (float)(2 * rng_uniform() - 1);
    f->ctx = (dpt_step_ctx_t){.training = training, .seed = 1, .epoch = 0};
    f->io = (dpt_op_io_t){.x = {f->x},
                          .y = f->y,
                          .dy = f->dy,
                          .dx = {f->dx},
                          .params = f->params,
                          .grads = f->grads,
                          .stats = f->stats,
                          .saved = f->saved,
                          .rows = rows,
                          .ctx = &f->ctx};
}

static void fix_free(fix_t *f)
{
    free(f->params), free(f->grads), free(f->stats), free(f->saved);
    free(f->x), free(f->y), free(f->dy), free(f->dx);
}

static float *at(const fix_t *f, float *buf, size_t r, size_t k, size_t i)
{
    return buf + r * f->size + k * f->hw + i;
}

/* Mean and biased variance of channel k, in double. */
static void channel_stats(const fix_t *f, size_t k, double *mean, double *var)
{
    double s = 0, q = 0, m = (double)(f->rows * f->hw);
    for (size_t r = 0; r < f->rows; r++)
        for (size_t i = 0; i < f->hw; i++)
            s += *at(f, f->x, r, k, i);
    s /= m;
    for (size_t r = 0; r < f->rows; r++)
        for (size_t i = 0; i < f->hw; i++) {
            double d = *at(f, f->x, r, k, i) - s;
            q += d * d;
        }
    *mean = s, *var = q / m;
}

static void close_to(double got, double want, double tol, const char *what, size_t k)
{
    cr_assert(fabs(got - want) <= tol * (1 + fabs(want)), "%s, channel %zu: %.9g, want %.9g", what,
              k, got, want);
}

/* Training forward against y = gamma (x - mean) / sqrt(var + eps) + beta in double, and the
 * shard statistics against the mean and the unbiased variance. */
static void check_train_forward(size_t c, size_t h, size_t w, size_t rows, const char *eps)
{
    fix_t f;
    fix_init(&f, c, h, w, rows, true);
    const char *opts[] = {"eps", eps};
    if (eps) f.n = make_node(c, h, w, opts, 1);
    const double e = eps ? atof(eps) : 1e-5;
    dpt_op_bn.forward(&f.n, &f.io);
    const double m = (double)(rows * f.hw);
    for (size_t k = 0; k < c; k++) {
        double mean, var;
        channel_stats(&f, k, &mean, &var);
        const double invstd = 1 / sqrt(var + e);
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < f.hw; i++) {
                double want =
                    f.params[k] * (*at(&f, f.x, r, k, i) - mean) * invstd + f.params[c + k];
                close_to(*at(&f, f.y, r, k, i), want, 1e-5, "y", k);
            }
        close_to(f.stats[k], mean, 1e-6, "shard mean", k);
        close_to(f.stats[c + k], var * m / (m - 1), 1e-6, "shard unbiased variance", k);
        close_to(f.saved[k], mean, 1e-6, "saved mean", k);
        close_to(f.saved[c + k], invstd, 1e-6, "saved invstd", k);
    }
    fix_free(&f);
}

Test(bn_forward, train_spatial)
{
    check_train_forward(3, 4, 4, 5, NULL);
}

Test(bn_forward, train_dense)
{
    check_train_forward(7, 1, 1, 5, NULL);
}

/* More channels than one block of the op's accumulators (64), odd H*W (lane tails). */
Test(bn_forward, train_many_channels)
{
    check_train_forward(70, 3, 3, 2, NULL);
    check_train_forward(130, 1, 1, 3, NULL);
}

/* eps reaches the training formula (a large one, so that leaving it out shows). */
Test(bn_forward, train_eps_option)
{
    check_train_forward(3, 2, 2, 4, "0.5");
}

/* With gamma 1 and beta 0 every channel comes out with mean 0 and variance var/(var+eps). */
Test(bn_forward, train_normalises)
{
    fix_t f;
    fix_init(&f, 3, 4, 4, 5, true);
    for (size_t k = 0; k < 3; k++)
        f.params[k] = 1, f.params[3 + k] = 0;
    dpt_op_bn.forward(&f.n, &f.io);
    for (size_t k = 0; k < 3; k++) {
        double s = 0, q = 0, m = 5.0 * 16, xm, xv;
        channel_stats(&f, k, &xm, &xv);
        for (size_t r = 0; r < 5; r++)
            for (size_t i = 0; i < 16; i++)
                s += *at(&f, f.y, r, k, i);
        s /= m;
        for (size_t r = 0; r < 5; r++)
            for (size_t i = 0; i < 16; i++)
                q += (*at(&f, f.y, r, k, i) - s) * (*at(&f, f.y, r, k, i) - s);
        cr_assert(fabs(s) < 1e-6, "channel %zu: mean %g", k, s);
        close_to(q / m, xv / (xv + 1e-5), 1e-5, "output variance", k);
    }
    fix_free(&f);
}

/* Without a statistics buffer the output is the same and nothing else is touched. */
Test(bn_forward, train_without_stats)
{
    fix_t f;
    fix_init(&f, 4, 2, 3, 3, true);
    dpt_op_bn.forward(&f.n, &f.io);
    float *y1 = malloc(3 * f.size * sizeof(float));
    memcpy(y1, f.y, 3 * f.size * sizeof(float));
    memset(f.y, 0, 3 * f.size * sizeof(float));
    f.io.stats = NULL;
    dpt_op_bn.forward(&f.n, &f.io);
    cr_assert_arr_eq(f.y, y1, 3 * f.size * sizeof(float));
    free(y1);
    fix_free(&f);
}

/* Evaluation uses the running statistics: no saved floats (NULL here) and no statistics. */
Test(bn_forward, eval_uses_running_stats)
{
    fix_t f;
    fix_init(&f, 3, 2, 2, 4, false);
    for (size_t k = 0; k < 6; k++)
        f.stats[k] = 42.0f;
    f.io.saved = NULL;
    dpt_op_bn.forward(&f.n, &f.io);
    for (size_t k = 0; k < 3; k++) {
        double rm = f.params[6 + k], rv = f.params[9 + k];
        for (size_t r = 0; r < 4; r++)
            for (size_t i = 0; i < 4; i++) {
                double want =
                    f.params[k] * (*at(&f, f.x, r, k, i) - rm) / sqrt(rv + 1e-5) + f.params[3 + k];
                close_to(*at(&f, f.y, r, k, i), want, 1e-5, "eval y", k);
            }
    }
    for (size_t k = 0; k < 6; k++)
        cr_assert_eq(f.stats[k], 42.0f, "statistics written at evaluation");
    fix_free(&f);
}

/* eps reaches the formula: with eps = 0.5 the eval output of a channel with running_var 0.5
 * is gamma (x - mean) + beta. */
Test(bn_forward, eps_option)
{
    const char *opts[] = {"eps", "0.5"};
    fix_t f;
    fix_init(&f, 2, 1, 1, 3, false);
    f.n = make_node(2, 1, 1, opts, 1);
    for (size_t k = 0; k < 2; k++)
        f.params[6 + k] = 0.5f;
    dpt_op_bn.forward(&f.n, &f.io);
    for (size_t r = 0; r < 3; r++)
        for (size_t k = 0; k < 2; k++)
            close_to(*at(&f, f.y, r, k, 0),
                     f.params[k] * ((double)*at(&f, f.x, r, k, 0) - f.params[4 + k]) +
                         f.params[2 + k],
                     1e-6, "y with eps 0.5", k);
    fix_free(&f);
}

/* One row of a dense input: variance 0, unbiased statistic 0, output beta. */
Test(bn_forward, single_value_per_channel)
{
    fix_t f;
    fix_init(&f, 3, 1, 1, 1, true);
    dpt_op_bn.forward(&f.n, &f.io);
    for (size_t k = 0; k < 3; k++) {
        cr_assert_eq(f.stats[3 + k], 0.0f);
        cr_assert_eq(f.stats[k], f.x[k]);
        close_to(f.y[k], f.params[3 + k], 1e-6, "y of one value", k);
    }
    fix_free(&f);
}

/* Two shards folded: one PyTorch update r = (1 - mom) r + mom b with b the statistics of the
 * pooled batch (the mean of all values; the unbiased variance from within-shard sums of
 * squares plus the spread of the shard means), computed here from the definitions. */
static void check_fold(const char *const *opts, size_t n_opt, double mom)
{
    const size_t c = 5, hw = 4;
    dpt_node_t n = make_node(c, 2, 2, opts, n_opt);
    cr_assert_eq(n.a.momentum, mom);
    float params[20], init[20], st1[10], st2[10];
    rng_seed(9);
    for (size_t i = 0; i < 20; i++)
        params[i] = init[i] = (float)(rng_uniform() + 0.1);
    for (size_t i = 0; i < 10; i++)
        st1[i] = (float)(4 * rng_uniform()), st2[i] = (float)(4 * rng_uniform());
    const float *sh[2] = {st1, st2};
    const size_t rows[2] = {8, 3};
    dpt_op_bn.fold_stats(&n, params, sh, rows, 2);
    for (size_t k = 0; k < c; k++) {
        double n1 = 8.0 * hw, n2 = 3.0 * hw, m1 = st1[k], m2 = st2[k];
        double mean = (n1 * m1 + n2 * m2) / (n1 + n2);
        double ss = (n1 - 1) * st1[c + k] + (n2 - 1) * st2[c + k] + n1 * (m1 - mean) * (m1 - mean) +
                    n2 * (m2 - mean) * (m2 - mean);
        double var = ss / (n1 + n2 - 1);
        close_to(params[2 * c + k], (1 - mom) * init[2 * c + k] + mom * mean, 1e-6, "running mean",
                 k);
        close_to(params[3 * c + k], (1 - mom) * init[3 * c + k] + mom * var, 1e-6, "running var",
                 k);
        cr_assert_neq(params[2 * c + k], init[2 * c + k]);
    }
    /* gamma and beta stay */
    for (size_t i = 0; i < 2 * c; i++)
        cr_assert_eq(params[i], init[i], "params[%zu] moved", i);
}

Test(bn_fold, default_momentum)
{
    check_fold(NULL, 0, 0.1);
}

Test(bn_fold, momentum_option)
{
    const char *opts[] = {"momentum", "0.25"};
    check_fold(opts, 1, 0.25);
}

Test(bn_fold, momentum_one_takes_the_step)
{
    const char *opts[] = {"momentum", "1"};
    dpt_node_t n = make_node(2, 1, 1, opts, 1);
    float params[8] = {1, 1, 0, 0, 7, 7, 9, 9}, st[4] = {1.5f, -2, 3, 4};
    const float *sh[1] = {st};
    const size_t rows[1] = {4};
    dpt_op_bn.fold_stats(&n, params, sh, rows, 1);
    const float want[8] = {1, 1, 0, 0, 1.5f, -2, 3, 4};
    cr_assert_arr_eq(params, want, sizeof want);
}

Test(bn_fold, empty_step_changes_nothing)
{
    dpt_node_t n = make_node(2, 1, 1, NULL, 0);
    float params[8] = {1, 1, 0, 0, 7, 7, 9, 9}, st[4] = {1.5f, -2, 3, 4};
    const float *sh[1] = {st};
    const size_t rows[1] = {0};
    dpt_op_bn.fold_stats(&n, params, sh, rows, 1);
    const float want[8] = {1, 1, 0, 0, 7, 7, 9, 9};
    cr_assert_arr_eq(params, want, sizeof want);
}

/* Training forward then fold: the running statistics move towards the shard's. */
Test(bn_fold, after_forward)
{
    fix_t f;
    fix_init(&f, 3, 2, 2, 4, true);
    dpt_op_bn.forward(&f.n, &f.io);
    for (size_t k = 0; k < 3; k++)
        f.params[6 + k] = 0, f.params[9 + k] = 1;
    const float *sh[1] = {f.stats};
    const size_t rows[1] = {4};
    dpt_op_bn.fold_stats(&f.n, f.params, sh, rows, 1);
    for (size_t k = 0; k < 3; k++) {
        double mean, var, m = 16;
        channel_stats(&f, k, &mean, &var);
        close_to(f.params[6 + k], 0.1 * mean, 1e-6, "running mean", k);
        close_to(f.params[9 + k], 0.9 + 0.1 * var * m / (m - 1), 1e-6, "running var", k);
    }
    fix_free(&f);
}

/* L = sum y * R (R = f->dy), from a fresh forward. */
static double loss(fix_t *f)
{
    dpt_op_bn.forward(&f->n, &f->io);
    double l = 0;
    for (size_t i = 0; i < f->rows * f->size; i++)
        l += (double)f->y[i] * f->dy[i];
    return l;
}

static void check_fd(fix_t *f, float *v, double analytic, const char *what, size_t k)
{
    const float h = 1e-2f, saved = *v;
    *v = saved + h;
    double lp = loss(f);
    *v = saved - h;
    double lm = loss(f);
    *v = saved;
    double fd = (lp - lm) / ((double)(saved + h) - (double)(saved - h));
    cr_assert(fabs(fd - analytic) <= 2e-3 + 1e-2 * fmax(fabs(fd), fabs(analytic)),
              "%s[%zu]: analytic %.6g vs finite difference %.6g", what, k, analytic, fd);
}

/* Every gamma, beta and x gradient against a central difference of L. */
static void gradient_check(size_t c, size_t h, size_t w, size_t rows, bool training)
{
    fix_t f;
    fix_init(&f, c, h, w, rows, training);
    dpt_op_bn.forward(&f.n, &f.io);
    for (size_t i = 0; i < rows * f.size; i++)
        f.dx[i] = NAN; /* written, not added: NAN would survive an add */
    for (size_t i = 0; i < 2 * c; i++)
        f.grads[i] = NAN;
    dpt_op_bn.backward(&f.n, &f.io);
    float *dx = malloc(rows * f.size * sizeof(float)), *g = malloc(2 * c * sizeof(float));
    memcpy(dx, f.dx, rows * f.size * sizeof(float));
    memcpy(g, f.grads, 2 * c * sizeof(float));
    for (size_t k = 0; k < c; k++) {
        check_fd(&f, &f.params[k], g[k], "gamma", k);
        check_fd(&f, &f.params[c + k], g[c + k], "beta", k);
    }
    for (size_t i = 0; i < rows * f.size; i++)
        check_fd(&f, &f.x[i], dx[i], "x", i);
    free(dx), free(g);
    fix_free(&f);
}

Test(bn_gradcheck, train_spatial)
{
    gradient_check(3, 2, 3, 4, true);
}

Test(bn_gradcheck, train_spatial_long_runs)
{
    gradient_check(2, 4, 5, 3, true);
}

Test(bn_gradcheck, train_dense)
{
    gradient_check(5, 1, 1, 6, true);
}

Test(bn_gradcheck, eval_spatial)
{
    gradient_check(3, 2, 3, 4, false);
}

Test(bn_gradcheck, eval_dense)
{
    gradient_check(4, 1, 1, 3, false);
}

/* dx_acc adds onto what is there; dx NULL skips dx and still writes the parameter grads. */
static void check_acc(size_t c, size_t h, size_t w, size_t rows, bool training)
{
    fix_t f;
    fix_init(&f, c, h, w, rows, training);
    const size_t total = rows * f.size;
    dpt_op_bn.forward(&f.n, &f.io);
    dpt_op_bn.backward(&f.n, &f.io);
    float *dx1 = malloc(total * sizeof(float)), *prior = malloc(total * sizeof(float));
    float g1[64];
    memcpy(dx1, f.dx, total * sizeof(float));
    memcpy(g1, f.grads, 2 * c * sizeof(float));
    for (size_t i = 0; i < total; i++)
        prior[i] = f.dx[i] = (float)(3 * rng_uniform() - 1);
    f.io.dx_acc[0] = true;
    dpt_op_bn.backward(&f.n, &f.io);
    for (size_t i = 0; i < total; i++)
        cr_assert(fabsf(f.dx[i] - (prior[i] + dx1[i])) <= 1e-6f * (1 + fabsf(prior[i])),
                  "dx[%zu]: %.9g, want %.9g + %.9g", i, f.dx[i], prior[i], dx1[i]);
    cr_assert_arr_eq(f.grads, g1, 2 * c * sizeof(float), "parameter grads must be written");
    f.io.dx[0] = NULL;
    memset(f.grads, 0, 2 * c * sizeof(float));
    dpt_op_bn.backward(&f.n, &f.io);
    cr_assert_arr_eq(f.grads, g1, 2 * c * sizeof(float), "parameter grads without dx");
    free(dx1), free(prior);
    fix_free(&f);
}

Test(bn_backward, dx_acc_adds_train)
{
    check_acc(3, 2, 3, 4, true);
    check_acc(6, 1, 1, 5, true);
}

Test(bn_backward, dx_acc_adds_eval)
{
    check_acc(3, 2, 3, 4, false);
    check_acc(6, 1, 1, 5, false);
}

/* ---- shapes, declarations, sizes ---- */

Test(bn_node, shapes_and_declarations)
{
    dpt_node_t n = make_node(6, 3, 5, NULL, 0);
    cr_assert_eq(n.out.c, 6u);
    cr_assert_eq(n.out.h, 3u);
    cr_assert_eq(n.out.w, 5u);
    cr_assert_eq(n.a.eps, 1e-5);
    cr_assert_eq(n.a.momentum, 0.1);
    dpt_tensor_decl_t d[DPT_NODE_MAX_TENSORS];
    cr_assert_eq(dpt_op_bn.declare(&n, d), 4u);
    const char *names[] = {"weight", "bias", "running_mean", "running_var"};
    const dpt_tensor_role_t roles[] = {DPT_TENSOR_NORM, DPT_TENSOR_NORM, DPT_TENSOR_STATE,
                                       DPT_TENSOR_STATE};
    const dpt_init_t inits[] = {DPT_INIT_ONE, DPT_INIT_ZERO, DPT_INIT_ZERO, DPT_INIT_ONE};
    for (size_t k = 0; k < 4; k++) {
        cr_assert_str_eq(d[k].suffix, names[k]);
        cr_assert_eq(d[k].ndim, 1u);
        cr_assert_eq(d[k].shape[0], 6u);
        cr_assert_eq(d[k].role, roles[k], "%s role", names[k]);
        cr_assert_eq(d[k].init, inits[k], "%s init", names[k]);
    }
    cr_assert_eq(dpt_op_bn.stats_floats(&n), 12u);
    cr_assert_eq(dpt_op_bn.saved_floats(&n, 7), 12u);
    cr_assert(dpt_op_bn.workspace_floats == NULL);
    cr_assert_eq(dpt_op_bn.flops(&n), 10.0 * 6 * 15);
    cr_assert_str_eq(dpt_op_bn.spec.name, "bn");
    char usage[128];
    dpt_spec_usage(&dpt_op_bn.spec, usage, sizeof usage);
    cr_assert_str_eq(usage, "bn[:eps=1e-05][:momentum=0.1]");
}

Test(bn_node, infer_refuses_two_inputs)
{
    dpt_node_t n = make_node(2, 1, 1, NULL, 0);
    n.n_in = 2;
    assert_fails(dpt_op_bn.infer(&n), DPT_ERR_INVALID_ARG, "bn0: bn takes one input");
}

/* ---- parse errors ---- */

/* The item through the layer grammar, then bn's parse. */
static dpt_status_t parse_item(const char *item)
{
    dpt_node_t n;
    memset(&n, 0, sizeof n);
    n.op = &dpt_op_bn;
    n.n_in = 1;
    n.in_shape[0] = (dpt_shape_t){3, 1, 1};
    const dpt_op_t *op;
    dpt_spec_part_t a;
    dpt_status_t s = dpt_op_parse_item(item, strlen(item), &op, &a);
    return s != DPT_OK ? s : dpt_op_bn.parse(&n, &a);
}

Test(bn_parse, unknown_option)
{
    assert_fails(parse_item("bn:gamma=2"), DPT_ERR_INVALID_ARG,
                 "model spec: 'bn:gamma=2': unknown key 'gamma'; valid keys: eps, momentum");
}

Test(bn_parse, eps_one)
{
    assert_fails(parse_item("bn:eps=1"), DPT_ERR_INVALID_ARG,
                 "model spec: 'bn:eps=1': eps must be a number in [0, 1), got '1'");
}

Test(bn_parse, eps_negative)
{
    assert_fails(parse_item("bn:eps=-1e-5"), DPT_ERR_INVALID_ARG, "eps must be a number in [0, 1)");
}

Test(bn_parse, eps_not_a_number)
{
    assert_fails(parse_item("bn:eps=small"), DPT_ERR_INVALID_ARG,
                 "model spec: 'bn:eps=small': eps: malformed number 'small' (expected a number "
                 "in [0, 1))");
}

Test(bn_parse, momentum_above_one)
{
    assert_fails(parse_item("bn:momentum=1.5"), DPT_ERR_INVALID_ARG,
                 "model spec: 'bn:momentum=1.5': momentum must be a number in [0, 1], got '1.5'");
}

Test(bn_parse, momentum_negative)
{
    assert_fails(parse_item("bn:momentum=-0.1"), DPT_ERR_INVALID_ARG,
                 "momentum must be a number in [0, 1]");
}

Test(bn_parse, momentum_bounds_accepted)
{
    cr_assert_eq(parse_item("bn:momentum=1"), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(parse_item("bn:momentum=0"), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(parse_item("bn:eps=0"), DPT_OK, "%s", dpt_last_error());
}

Test(bn_parse, positional_value)
{
    assert_fails(parse_item("bn:16"), DPT_ERR_INVALID_ARG,
                 "model spec: 'bn:16': expected key=value, got '16' (usage: "
                 "bn[:eps=1e-05][:momentum=0.1])");
}
