/* Owns batch normalisation (PyTorch's BatchNorm1d/2d): per channel c, over the rows and the
 * H*W positions of one micro-shard (a ghost batch, so results do not depend on the thread
 * count), training computes
 *   y = gamma * (x - mean) * invstd + beta,  invstd = 1 / sqrt(var + eps)
 * with the biased batch variance; evaluation uses running_mean / running_var instead.
 *
 * Shapes (HW = H*W; a dense input is (F,1,1): the same code with HW = 1):
 *   x, y, dy, dx   [rows x C*HW], channel c of row r at r*C*HW + c*HW + (0..HW)
 *   weight (gamma), bias (beta)        {C} trainable, at n->offset[0], n->offset[1]
 *   running_mean, running_var          {C} state,     at n->offset[2], n->offset[3]
 *   saved (forward -> backward)        mean {C}, invstd {C}
 *   shard statistics (n->stats_off)    mean {C}, unbiased variance {C}
 * After the parallel region the trainer hands every shard's statistics, in shard order, to
 * bn_fold_stats, which pools them into the batch's and updates the running ones once.
 *
 * Per-channel sums run in double in a fixed order (rows in order, each run of HW floats in 8
 * fixed lanes), so they are deterministic and still vectorise without reassociation flags.
 * Channels go in blocks of BLK with their accumulators on the stack: no allocation, and the
 * dense case (HW = 1) gets a contiguous inner loop over channels instead of a strided one. */
#include <math.h>
#include <stddef.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "nn/op.h"

enum { BLK = 64, LANES = 8 };

/* ---- parse, shapes, declarations ---- */

static const dpt_spec_key_t bn_keys[] = {DPT_SPEC_R("eps", "1e-05", 0, 1, DPT_SPEC_HI_OPEN),
                                         DPT_SPEC_R("momentum", "0.1", 0, 1, 0), DPT_SPEC_END};

static dpt_status_t bn_parse(dpt_node_t *n, const dpt_spec_part_t *p)
{
    n->a.eps = dpt_spec_real(p, "eps");
    /* momentum 1 is valid: the running statistics are then the last step's */
    n->a.momentum = dpt_spec_real(p, "momentum");
    return DPT_OK;
}

static dpt_status_t bn_infer(dpt_node_t *n)
{
    if (n->n_in != 1)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: %s: bn takes one input, not %zu",
                         n->name, n->n_in);
    if (dpt_shape_size(n->in_shape[0]) == 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "model spec: %s: bn input is empty", n->name);
    n->out = n->in_shape[0];
    return DPT_OK;
}

static size_t bn_declare(const dpt_node_t *n, dpt_tensor_decl_t *d)
{
    const size_t c = n->in_shape[0].c;
    d[0] = (dpt_tensor_decl_t){"weight", 1, {c}, DPT_TENSOR_NORM, DPT_INIT_ONE, 0, 0};
    d[1] = (dpt_tensor_decl_t){"bias", 1, {c}, DPT_TENSOR_NORM, DPT_INIT_ZERO, 0, 0};
    d[2] = (dpt_tensor_decl_t){"running_mean", 1, {c}, DPT_TENSOR_STATE, DPT_INIT_ZERO, 0, 0};
    d[3] = (dpt_tensor_decl_t){"running_var", 1, {c}, DPT_TENSOR_STATE, DPT_INIT_ONE, 0, 0};
    return 4;
}

static size_t bn_saved_floats(const dpt_node_t *n, size_t rows)
{
    (void)rows;
    return 2 * n->in_shape[0].c; /* mean, invstd: all backward needs besides x */
}

static size_t bn_stats_floats(const dpt_node_t *n)
{
    return 2 * n->in_shape[0].c; /* shard mean, unbiased variance */
}

/* Per element: statistics (sum, squared deviation: ~4) and the affine (sub, mul, add: ~3),
 * rounded up to 10 for the per-channel work and the loads: an estimate for GFLOP/s only. */
static double bn_flops(const dpt_node_t *n)
{
    return 10.0 * (double)dpt_shape_size(n->in_shape[0]);
}

/* ---- deterministic sums of one contiguous run ---- */

static double lanes_total(const double l[LANES])
{
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* The three sums below, lane j taking elements j, j + 8, j + 16, ... and the tail from lane
 * 0, each product rounded before its addition. GCC leaves these loops scalar (the float ->
 * double conversions defeat its vectoriser), so with AVX-512 the 8 lanes are one register:
 * the same operations in the same order, so the same bits, about 5x faster. */
static double run_sum(const float *restrict x, size_t n)
{
    double l[LANES] = {0};
    size_t i = 0;
#if defined(__AVX512F__)
    __m512d v = _mm512_setzero_pd();
    for (; i + LANES <= n; i += LANES)
        v = _mm512_add_pd(v, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
    _mm512_storeu_pd(l, v);
#else
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; j++)
            l[j] += x[i + j];
#endif
    for (size_t j = 0; i < n; i++, j++)
        l[j] += x[i];
    return lanes_total(l);
}

/* sum (x - m)^2: the two-pass variance, which loses nothing when |mean| >> std. */
static double run_sqdev(const float *restrict x, size_t n, double m)
{
    double l[LANES] = {0};
    size_t i = 0;
#if defined(__AVX512F__)
    const __m512d mv = _mm512_set1_pd(m);
    __m512d v = _mm512_setzero_pd();
    for (; i + LANES <= n; i += LANES) {
        const __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), mv);
        v = _mm512_add_pd(v, _mm512_mul_pd(d, d));
    }
    _mm512_storeu_pd(l, v);
#else
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; j++) {
            double d = x[i + j] - m;
            l[j] += d * d;
        }
#endif
    for (size_t j = 0; i < n; i++, j++) {
        double d = x[i] - m;
        l[j] += d * d;
    }
    return lanes_total(l);
}

/* sum dy and sum dy * (x - m) (= sum dy * xhat / invstd). */
static void run_dy_sums(const float *restrict dy, const float *restrict x, size_t n, double m,
                        double *sdy, double *sdyx)
{
    double a[LANES] = {0}, b[LANES] = {0};
    size_t i = 0;
#if defined(__AVX512F__)
    const __m512d mv = _mm512_set1_pd(m);
    __m512d va = _mm512_setzero_pd(), vb = _mm512_setzero_pd();
    for (; i + LANES <= n; i += LANES) {
        const __m512d g = _mm512_cvtps_pd(_mm256_loadu_ps(dy + i));
        const __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), mv);
        va = _mm512_add_pd(va, g);
        vb = _mm512_add_pd(vb, _mm512_mul_pd(g, d));
    }
    _mm512_storeu_pd(a, va);
    _mm512_storeu_pd(b, vb);
#else
    for (; i + LANES <= n; i += LANES)
        for (size_t j = 0; j < LANES; j++) {
            a[j] += dy[i + j];
            b[j] += (double)dy[i + j] * (x[i + j] - m);
        }
#endif
    for (size_t j = 0; i < n; i++, j++) {
        a[j] += dy[i];
        b[j] += (double)dy[i] * (x[i] - m);
    }
    *sdy += lanes_total(a);
    *sdyx += lanes_total(b);
}

/* ---- per-channel sums over a shard, for channels [c0, c0 + nb), nb <= BLK ---- */

typedef struct {
    size_t c, hw, chw, rows;
} geom_t;

static geom_t geom(const dpt_node_t *n, size_t rows)
{
    dpt_shape_t s = n->in_shape[0];
    return (geom_t){s.c, s.h * s.w, dpt_shape_size(s), rows};
}

static void block_sum(geom_t g, const float *x, size_t c0, size_t nb, double *sum)
{
    for (size_t k = 0; k < nb; k++)
        sum[k] = 0.0;
    for (size_t r = 0; r < g.rows; r++) {
        const float *xr = x + r * g.chw + c0 * g.hw;
        if (g.hw == 1)
            for (size_t k = 0; k < nb; k++)
                sum[k] += xr[k];
        else
            for (size_t k = 0; k < nb; k++)
                sum[k] += run_sum(xr + k * g.hw, g.hw);
    }
}

static void block_sqdev(geom_t g, const float *x, size_t c0, size_t nb, const double *mean,
                        double *sq)
{
    for (size_t k = 0; k < nb; k++)
        sq[k] = 0.0;
    for (size_t r = 0; r < g.rows; r++) {
        const float *xr = x + r * g.chw + c0 * g.hw;
        if (g.hw == 1)
            for (size_t k = 0; k < nb; k++) {
                double d = xr[k] - mean[k];
                sq[k] += d * d;
            }
        else
            for (size_t k = 0; k < nb; k++)
                sq[k] += run_sqdev(xr + k * g.hw, g.hw, mean[k]);
    }
}

static void block_dy_sums(geom_t g, const float *x, const float *dy, size_t c0, size_t nb,
                          const float *mean, double *sdy, double *sdyx)
{
    for (size_t k = 0; k < nb; k++)
        sdy[k] = sdyx[k] = 0.0;
    for (size_t r = 0; r < g.rows; r++) {
        size_t o = r * g.chw + c0 * g.hw;
        if (g.hw == 1)
            for (size_t k = 0; k < nb; k++) {
                sdy[k] += dy[o + k];
                sdyx[k] += (double)dy[o + k] * (x[o + k] - (double)mean[c0 + k]);
            }
        else
            for (size_t k = 0; k < nb; k++)
                run_dy_sums(dy + o + k * g.hw, x + o + k * g.hw, g.hw, mean[c0 + k], &sdy[k],
                            &sdyx[k]);
    }
}

/* ---- elementwise passes over channels [c0, c0 + nb) ---- */

/* y = s * (x - m) + b per channel: the forward in both modes (m, s, b indexed by k). */
static void block_affine(geom_t g, const float *restrict x, float *restrict y, size_t c0, size_t nb,
                         const float *m, const float *s, const float *b)
{
    for (size_t r = 0; r < g.rows; r++) {
        size_t o = r * g.chw + c0 * g.hw;
        if (g.hw == 1)
            for (size_t k = 0; k < nb; k++)
                y[o + k] = s[k] * (x[o + k] - m[k]) + b[k];
        else
            for (size_t k = 0; k < nb; k++) {
                const float *xc = x + o + k * g.hw;
                float *yc = y + o + k * g.hw;
                const float mk = m[k], sk = s[k], bk = b[k];
                for (size_t i = 0; i < g.hw; i++)
                    yc[i] = sk * (xc[i] - mk) + bk;
            }
    }
}

/* Per-channel coefficients of dx = kd * dy + u * (x - m) + v. */
typedef struct {
    float kd[BLK], u[BLK], v[BLK], m[BLK];
} dx_coef_t;

/* One run of n values of one channel; the branch on acc sits outside the loops. */
static void run_dx(const float *restrict x, const float *restrict dy, float *restrict dx, size_t n,
                   float kd, float u, float v, float m, bool acc)
{
    if (acc)
        for (size_t i = 0; i < n; i++)
            dx[i] += kd * dy[i] + u * (x[i] - m) + v;
    else
        for (size_t i = 0; i < n; i++)
            dx[i] = kd * dy[i] + u * (x[i] - m) + v;
}

/* dx (+)= kd * dy + u * (x - m) + v over channels [c0, c0 + nb). */
static void block_dx(geom_t g, const float *restrict x, const float *restrict dy,
                     float *restrict dx, size_t c0, size_t nb, const dx_coef_t *cf, bool acc)
{
    for (size_t r = 0; r < g.rows; r++) {
        size_t o = r * g.chw + c0 * g.hw;
        if (g.hw == 1 && acc)
            for (size_t k = 0; k < nb; k++)
                dx[o + k] += cf->kd[k] * dy[o + k] + cf->u[k] * (x[o + k] - cf->m[k]) + cf->v[k];
        else if (g.hw == 1)
            for (size_t k = 0; k < nb; k++)
                dx[o + k] = cf->kd[k] * dy[o + k] + cf->u[k] * (x[o + k] - cf->m[k]) + cf->v[k];
        else
            for (size_t k = 0; k < nb; k++)
                run_dx(x + o + k * g.hw, dy + o + k * g.hw, dx + o + k * g.hw, g.hw, cf->kd[k],
                       cf->u[k], cf->v[k], cf->m[k], acc);
    }
}

/* ---- forward ---- */

/* Training: this shard's statistics; saves mean and invstd, writes the shard statistics. */
static void forward_train(const dpt_node_t *n, const dpt_op_io_t *io, geom_t g)
{
    const float *gamma = io->params + n->offset[0], *beta = io->params + n->offset[1];
    const double cnt = (double)(g.rows * g.hw);
    float *smean = io->saved, *sinv = io->saved + g.c;
    float *st = io->stats ? io->stats + n->stats_off : NULL;
    for (size_t c0 = 0; c0 < g.c; c0 += BLK) {
        const size_t nb = g.c - c0 < BLK ? g.c - c0 : BLK;
        double mean[BLK], var[BLK];
        float m[BLK], s[BLK], b[BLK];
        block_sum(g, io->x[0], c0, nb, mean);
        for (size_t k = 0; k < nb; k++)
            mean[k] /= cnt;
        block_sqdev(g, io->x[0], c0, nb, mean, var);
        for (size_t k = 0; k < nb; k++) {
            const size_t c = c0 + k;
            var[k] /= cnt;
            const double invstd = 1.0 / sqrt(var[k] + n->a.eps);
            /* Forward and backward both use the float mean, so xhat agrees between them. */
            smean[c] = m[k] = (float)mean[k];
            sinv[c] = (float)invstd;
            s[k] = (float)(gamma[c] * invstd);
            b[k] = beta[c];
            if (st) {
                st[c] = (float)mean[k];
                /* Unbiased, as PyTorch folds it; one value has no spread: 0. */
                st[g.c + c] = (float)(cnt > 1 ? var[k] * cnt / (cnt - 1) : var[k]);
            }
        }
        block_affine(g, io->x[0], io->y, c0, nb, m, s, b);
    }
}

static void forward_eval(const dpt_node_t *n, const dpt_op_io_t *io, geom_t g)
{
    const float *gamma = io->params + n->offset[0], *beta = io->params + n->offset[1];
    const float *rmean = io->params + n->offset[2], *rvar = io->params + n->offset[3];
    for (size_t c0 = 0; c0 < g.c; c0 += BLK) {
        const size_t nb = g.c - c0 < BLK ? g.c - c0 : BLK;
        float m[BLK], s[BLK], b[BLK];
        for (size_t k = 0; k < nb; k++) {
            const size_t c = c0 + k;
            m[k] = rmean[c];
            s[k] = (float)(gamma[c] / sqrt((double)rvar[c] + n->a.eps));
            b[k] = beta[c];
        }
        block_affine(g, io->x[0], io->y, c0, nb, m, s, b);
    }
}

static void bn_forward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    geom_t g = geom(n, io->rows);
    if (g.rows == 0) return; /* no samples: no statistics (and no division by zero) */
    if (io->ctx->training)
        forward_train(n, io, g);
    else
        forward_eval(n, io, g);
}

/* ---- backward ---- */

/* Training (batch statistics depend on x):
 *   dgamma = sum dy * xhat, dbeta = sum dy,
 *   dx = gamma * invstd / m * (m * dy - sum dy - xhat * sum dy * xhat),  m = rows * HW.
 * Evaluation (running statistics are constants): dx = dy * gamma * invstd_running. */
static void bn_backward(const dpt_node_t *n, const dpt_op_io_t *io)
{
    geom_t g = geom(n, io->rows);
    if (g.rows == 0) return;
    const bool train = io->ctx->training;
    const float *gamma = io->params + n->offset[0];
    const float *mean = train ? io->saved : io->params + n->offset[2];
    const float *rvar = io->params + n->offset[3];
    const double cnt = (double)(g.rows * g.hw);
    float *dgamma = io->grads ? io->grads + n->offset[0] : NULL;
    float *dbeta = io->grads ? io->grads + n->offset[1] : NULL;
    for (size_t c0 = 0; c0 < g.c; c0 += BLK) {
        const size_t nb = g.c - c0 < BLK ? g.c - c0 : BLK;
        double sdy[BLK], sdyx[BLK];
        dx_coef_t cf;
        block_dy_sums(g, io->x[0], io->dy, c0, nb, mean, sdy, sdyx);
        for (size_t k = 0; k < nb; k++) {
            const size_t c = c0 + k;
            const double inv =
                train ? (double)io->saved[g.c + c] : 1.0 / sqrt((double)rvar[c] + n->a.eps);
            const double sxh = sdyx[k] * inv; /* sum dy * xhat */
            if (dgamma) {
                dgamma[c] = (float)sxh;
                dbeta[c] = (float)sdy[k];
            }
            const double kd = gamma[c] * inv;
            cf.kd[k] = (float)kd;
            cf.m[k] = mean[c];
            /* dx = kd * (dy - sdy/m - (x - mean) * inv * sxh/m) */
            cf.u[k] = train ? (float)(-kd * inv * sxh / cnt) : 0.0f;
            cf.v[k] = train ? (float)(-kd * sdy[k] / cnt) : 0.0f;
        }
        if (io->dx[0]) block_dx(g, io->x[0], io->dy, io->dx[0], c0, nb, &cf, io->dx_acc[0]);
    }
}

/* ---- running statistics ---- */

/* One PyTorch update per step: the shards' statistics are pooled into those of the whole
 * batch (mean, and the unbiased variance of all rows*H*W values: the within-shard sums of
 * squares plus the spread of the shard means), then
 *   running = (1 - momentum) * running + momentum * batch,
 * in double rounded once to float. Training normalises with each shard's own statistics (the
 * ghost batch); the running statistics are those PyTorch keeps for the whole batch, and they
 * average over as many samples whatever the micro-batch. Shards are visited in order: the
 * same arithmetic for any thread count. */
static void bn_fold_stats(const dpt_node_t *n, float *params, const float *const *stats,
                          const size_t *rows, size_t shards)
{
    const size_t c = n->in_shape[0].c, hw = n->in_shape[0].h * n->in_shape[0].w;
    const double mom = n->a.momentum;
    float *rmean = params + n->offset[2], *rvar = params + n->offset[3];
    for (size_t i = 0; i < c; i++) {
        double cnt = 0, sum = 0;
        for (size_t s = 0; s < shards; s++) {
            double ns = (double)(rows[s] * hw);
            cnt += ns;
            sum += ns * stats[s][n->stats_off + i];
        }
        if (cnt == 0) continue; /* no samples: nothing to fold */
        const double mean = sum / cnt;
        double ss = 0;
        for (size_t s = 0; s < shards; s++) {
            const float *st = stats[s] + n->stats_off;
            double ns = (double)(rows[s] * hw), d = st[i] - mean;
            ss += (ns - 1) * st[c + i] + ns * d * d;
        }
        const double var = cnt > 1 ? ss / (cnt - 1) : 0.0;
        rmean[i] = (float)((1.0 - mom) * rmean[i] + mom * mean);
        rvar[i] = (float)((1.0 - mom) * rvar[i] + mom * var);
    }
}

const dpt_op_t dpt_op_bn = {
    .spec = {"bn", bn_keys},
    .parse = bn_parse,
    .infer = bn_infer,
    .declare = bn_declare,
    .workspace_floats = NULL,
    .saved_floats = bn_saved_floats,
    .stats_floats = bn_stats_floats,
    .forward = bn_forward,
    .backward = bn_backward,
    .fold_stats = bn_fold_stats,
    .flops = bn_flops,
};
