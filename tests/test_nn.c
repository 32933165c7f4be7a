/* Tests for src/nn: finite-difference gradient checks for every layer kind and a whole small
 * model, the loss, the spec parser and the parameter layout. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/model_internal.h"
#include "nn/softmax_xent.h"

enum { ROWS = 5 };

typedef struct {
    dpt_model_t *m;
    float *params, *grads, *x;
    float *acts[DPT_MAX_LAYERS + 1];
    float *d0, *d1;
    int32_t labels[ROWS];
    uint32_t ids[ROWS];
    dpt_step_ctx_t ctx;
} fixture_t;

static void setup(fixture_t *f, const char *spec, size_t in, size_t classes)
{
    cr_assert_eq(dpt_model_create(spec, in, classes, &f->m), DPT_OK, "%s", dpt_last_error());
    size_t n = dpt_model_param_count(f->m);
    f->params = calloc(n, sizeof(float));
    f->grads = calloc(n, sizeof(float));
    dpt_model_init_params(f->m, f->params, 11);
    dpt_rng_t r;
    dpt_rng_seed(&r, 5, 5);
    /* Non-zero biases so every path is exercised. */
    for (size_t t = 0; t < dpt_model_tensor_count(f->m); t++) {
        const dpt_tensor_info_t *ti = dpt_model_tensor(f->m, t);
        if (ti->is_bias)
            for (size_t k = 0; k < ti->cols; k++)
                f->params[ti->offset + k] = (float)(dpt_rng_uniform(&r) - 0.5);
    }
    f->acts[0] = calloc(ROWS * in, sizeof(float));
    for (size_t i = 0; i < ROWS * in; i++)
        f->acts[0][i] = (float)(dpt_rng_uniform(&r) * 2 - 1);
    for (size_t l = 0; l < f->m->n_layers; l++)
        f->acts[l + 1] = calloc(ROWS * f->m->layers[l].out, sizeof(float));
    f->d0 = calloc(ROWS * f->m->max_width, sizeof(float));
    f->d1 = calloc(ROWS * f->m->max_width, sizeof(float));
    for (int i = 0; i < ROWS; i++)
        f->labels[i] = i % (int)classes, f->ids[i] = 100 + i;
    f->ctx = (dpt_step_ctx_t){.training = true, .seed = 3, .epoch = 1, .sample_ids = f->ids};
}

static void teardown(fixture_t *f)
{
    for (size_t l = 0; l <= f->m->n_layers; l++)
        free(f->acts[l]);
    free(f->params), free(f->grads), free(f->d0), free(f->d1);
    dpt_model_free(f->m);
}

static double loss_at(fixture_t *f)
{
    dpt_model_forward(f->m, f->params, f->acts, ROWS, &f->ctx);
    return dpt_softmax_xent(f->acts[f->m->n_layers], f->labels, ROWS, f->m->classes, 1.0f, NULL,
                            NULL, NULL);
}

/* Compares every analytic parameter gradient with a central difference of the loss. */
static void gradient_check(const char *spec, size_t in, size_t classes)
{
    fixture_t f;
    setup(&f, spec, in, classes);
    dpt_model_forward(f.m, f.params, f.acts, ROWS, &f.ctx);
    dpt_softmax_xent(f.acts[f.m->n_layers], f.labels, ROWS, classes, 1.0f, f.d0, NULL, NULL);
    dpt_model_backward(f.m, f.params, f.acts, f.d0, f.d1, f.grads, ROWS, &f.ctx);
    size_t checked = 0;
    for (size_t t = 0; t < dpt_model_tensor_count(f.m); t++) {
        const dpt_tensor_info_t *ti = dpt_model_tensor(f.m, t);
        for (size_t k = 0; k < ti->rows * ti->cols; k++) {
            size_t i = ti->offset + k;
            float saved = f.params[i];
            const float eps = 1e-2f;
            f.params[i] = saved + eps;
            double lp = loss_at(&f);
            f.params[i] = saved - eps;
            double lm = loss_at(&f);
            f.params[i] = saved;
            double fd = (lp - lm) / (2.0 * eps), an = f.grads[i];
            cr_assert(fabs(fd - an) <= 2e-3 + 2e-2 * fmax(fabs(fd), fabs(an)),
                      "%s: %s[%zu]: analytic %.6g vs finite difference %.6g", spec, ti->name, k, an,
                      fd);
            checked++;
        }
    }
    cr_assert_gt(checked, 0u);
    teardown(&f);
}

Test(gradcheck, dense_only)
{
    gradient_check("dense:3", 4, 3);
}
Test(gradcheck, relu)
{
    gradient_check("dense:6,relu,dense:3", 4, 3);
}
Test(gradcheck, tanh)
{
    gradient_check("dense:6,tanh,dense:3", 4, 3);
}
Test(gradcheck, sigmoid)
{
    gradient_check("dense:6,sigmoid,dense:3", 4, 3);
}
Test(gradcheck, gelu)
{
    gradient_check("dense:6,gelu,dense:3", 4, 3);
}
Test(gradcheck, dropout)
{
    gradient_check("dense:8,dropout:0.5,dense:3", 4, 3);
}
Test(gradcheck, whole_mlp)
{
    gradient_check("dense:7,relu,dropout:0.2,dense:6,tanh,dense:5,gelu,dense:4", 6, 4);
}
Test(gradcheck, leading_activation)
{
    gradient_check("tanh,dense:3", 4, 3);
}

Test(softmax_xent, matches_hand_computed_values)
{
    /* logits (1, 2, 3), label 2: loss = log(e^1 + e^2 + e^3) - 3 = 0.40760596 */
    const float z[3] = {1, 2, 3};
    const int32_t y[1] = {2};
    float d[3], p[3];
    size_t correct;
    double loss = dpt_softmax_xent(z, y, 1, 3, 0.5f, d, p, &correct);
    cr_assert_float_eq(loss, 0.4076059644443803, 1e-6);
    cr_assert_eq(correct, 1u);
    cr_assert_float_eq(p[0], 0.09003057f, 1e-6);
    cr_assert_float_eq(d[2], (0.66524096f - 1.0f) * 0.5f, 1e-6);
}

Test(softmax_xent, large_logits_stay_finite)
{
    const float z[2] = {1000.0f, -1000.0f};
    const int32_t y[1] = {1};
    double loss = dpt_softmax_xent(z, y, 1, 2, 1.0f, NULL, NULL, NULL);
    cr_assert(isfinite(loss));
    cr_assert_float_eq(loss, 2000.0, 1e-3);
}

Test(dropout, mask_depends_on_sample_not_row_position)
{
    fixture_t a, b;
    setup(&a, "dropout:0.5,dense:3", 4, 3);
    setup(&b, "dropout:0.5,dense:3", 4, 3);
    /* b holds a's rows in reverse order with their sample ids: masks must follow samples. */
    for (int r = 0; r < ROWS; r++) {
        memcpy(b.acts[0] + r * 4, a.acts[0] + (ROWS - 1 - r) * 4, 4 * sizeof(float));
        b.ids[r] = a.ids[ROWS - 1 - r];
    }
    dpt_model_forward(a.m, a.params, a.acts, ROWS, &a.ctx);
    dpt_model_forward(b.m, b.params, b.acts, ROWS, &b.ctx);
    int zeros = 0;
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < 4; j++) {
            float va = a.acts[1][r * 4 + j], vb = b.acts[1][(ROWS - 1 - r) * 4 + j];
            cr_assert_eq(va, vb);
            zeros += va == 0.0f;
        }
    cr_assert(zeros > 0 && zeros < ROWS * 4, "dropout 0.5 dropped %d of %d", zeros, ROWS * 4);
    a.ctx.training = false;
    dpt_model_forward(a.m, a.params, a.acts, ROWS, &a.ctx);
    cr_assert_eq(memcmp(a.acts[0], a.acts[1], ROWS * 4 * sizeof(float)), 0);
    teardown(&a), teardown(&b);
}

Test(model, layout_is_aligned_and_counts_parameters)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create(DPT_DEFAULT_MODEL, 784, 10, &m), DPT_OK);
    cr_assert_eq(dpt_model_tensor_count(m), 6u);
    size_t real = 0;
    for (size_t t = 0; t < dpt_model_tensor_count(m); t++) {
        const dpt_tensor_info_t *ti = dpt_model_tensor(m, t);
        cr_assert_eq(ti->offset % 16, 0u, "%s not 64-byte aligned", ti->name);
        real += ti->rows * ti->cols;
    }
    cr_assert_eq(real, 784u * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    cr_assert_geq(dpt_model_param_count(m), real);
    cr_assert_str_eq(dpt_model_tensor(m, 0)->name, "dense0.weight");
    cr_assert_float_eq(dpt_model_forward_flops(m), 2.0 * (784 * 256 + 256 * 128 + 128 * 10), 1);
    /* 2x forward + input gradients of the 2nd and 3rd dense layers */
    cr_assert_float_eq(dpt_model_train_flops(m),
                       4.0 * (784 * 256 + 256 * 128 + 128 * 10) + 2.0 * (256 * 128 + 128 * 10), 1);
    dpt_model_free(m);
}

Test(model, init_is_seeded)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create("dense:16,relu,dense:4", 8, 4, &m), DPT_OK);
    size_t n = dpt_model_param_count(m);
    float *a = calloc(n, 4), *b = calloc(n, 4), *c = calloc(n, 4);
    dpt_model_init_params(m, a, 1);
    dpt_model_init_params(m, b, 1);
    dpt_model_init_params(m, c, 2);
    cr_assert_eq(memcmp(a, b, n * 4), 0);
    cr_assert_neq(memcmp(a, c, n * 4), 0);
    free(a), free(b), free(c);
    dpt_model_free(m);
}

static void expect_spec_error(const char *spec, size_t classes, const char *needle)
{
    dpt_model_t *m = NULL;
    cr_assert_eq(dpt_model_create(spec, 10, classes, &m), DPT_ERR_INVALID_ARG, "%s", spec);
    cr_assert_null(m);
    cr_assert(strstr(dpt_last_error(), needle), "'%s' not in '%s'", needle, dpt_last_error());
}

Test(model_spec, unknown_layer_lists_valid_ones)
{
    expect_spec_error("dense:8,swish,dense:3", 3, "unknown layer 'swish'; valid layers: dense:N");
}
Test(model_spec, last_layer_must_match_classes)
{
    expect_spec_error("dense:8,relu,dense:4", 3, "must be dense:3");
}
Test(model_spec, last_layer_must_be_dense)
{
    expect_spec_error("dense:3,relu", 3, "must be dense:3");
}
Test(model_spec, bad_width)
{
    expect_spec_error("dense:abc,dense:3", 3, "width must be an integer");
    expect_spec_error("dense:0,dense:3", 3, "width must be an integer");
    expect_spec_error("dense:-5,dense:3", 3, "width must be an integer");
}
Test(model_spec, missing_argument)
{
    expect_spec_error("dense,dense:3", 3, "needs an argument");
}
Test(model_spec, bad_dropout)
{
    expect_spec_error("dropout:1.5,dense:3", 3, "dropout probability must be in [0, 1)");
}
Test(model_spec, empty)
{
    expect_spec_error("", 3, "model spec is empty");
    expect_spec_error(",,,", 3, "no layers");
}
Test(model_spec, argument_on_activation)
{
    expect_spec_error("relu:3,dense:3", 3, "takes no argument");
}
Test(model_spec, bad_initialisation)
{
    expect_spec_error("dense:8:lecun,dense:3", 3, "initialisation must be he or xavier");
}

Test(model, he_and_xavier_initialisations_differ_in_scale)
{
    dpt_model_t *he, *xa;
    cr_assert_eq(dpt_model_create("dense:64:he,relu,dense:4", 400, 4, &he), DPT_OK);
    cr_assert_eq(dpt_model_create("dense:64:xavier,relu,dense:4", 400, 4, &xa), DPT_OK);
    size_t n = dpt_model_param_count(he), k = 400 * 64;
    float *a = calloc(n, 4), *b = calloc(n, 4);
    dpt_model_init_params(he, a, 3);
    dpt_model_init_params(xa, b, 3);
    double va = 0, vb = 0;
    for (size_t i = 0; i < k; i++)
        va += a[i] * a[i], vb += b[i] * b[i];
    /* He normal: var 2/400 = 0.005; Xavier uniform: var 2/(400+64) = 0.00431 */
    cr_assert_float_eq(va / k, 0.005, 0.0003);
    cr_assert_float_eq(vb / k, 2.0 / 464, 0.0003);
    free(a), free(b);
    dpt_model_free(he), dpt_model_free(xa);
}

Test(model_spec, parameter_cap_is_a_limit_error)
{
    dpt_model_t *m = NULL;
    /* 8 x (65536 x 65536) weights: far over the cap, refused before anything is allocated. */
    cr_assert_eq(
        dpt_model_create("dense:65536,dense:65536,dense:65536,dense:65536,dense:3", 10, 3, &m),
        DPT_ERR_LIMIT);
    cr_assert_null(m);
    cr_assert(strstr(dpt_last_error(), "exceed the cap of 268435456"), "%s", dpt_last_error());
}
