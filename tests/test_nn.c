/* Tests for src/nn: finite-difference gradient checks (parameters and input) of every op kind
 * inside small graphs, residual graphs with fan-out, the loss, the spec parser and its errors,
 * presets and the parameter layout. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/gemm.h"
#include "nn/plan.h"
#include "nn/softmax_xent.h"

enum { ROWS = 5 };

typedef struct {
    dpt_model_t *m;
    dpt_plan_t *plan;
    float *params, *grads, *stats;
    size_t in;
    int32_t labels[ROWS];
    uint32_t ids[ROWS];
    dpt_step_ctx_t ctx;
} fixture_t;

static void init(void)
{
    dpt_gemm_init();
}
TestSuite(gradcheck, .init = init);
TestSuite(dropout, .init = init);

static void setup_shaped(fixture_t *f, const char *spec, dpt_shape_t in, size_t classes)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(dpt_model_create_shaped(spec, in, classes, &f->m), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(dpt_plan_create(f->m, ROWS, true, &f->plan), DPT_OK, "%s", dpt_last_error());
    size_t n = dpt_model_param_count(f->m);
    f->params = calloc(n, sizeof(float));
    f->grads = calloc(n, sizeof(float));
    f->stats = calloc(dpt_model_stats_count(f->m) + 1, sizeof(float));
    dpt_model_init_params(f->m, f->params, 11);
    dpt_rng_t r;
    dpt_rng_seed(&r, 5, 5);
    /* Non-zero biases and batch-norm shifts so every path is exercised. */
    for (size_t t = 0; t < dpt_model_tensor_count(f->m); t++) {
        const dpt_tensor_info_t *ti = dpt_model_tensor(f->m, t);
        if (ti->is_bias)
            for (size_t k = 0; k < ti->rows * ti->cols; k++)
                f->params[ti->offset + k] += (float)(dpt_rng_uniform(&r) - 0.5);
    }
    f->in = dpt_model_in_features(f->m);
    float *x = dpt_plan_input(f->plan);
    for (size_t i = 0; i < ROWS * f->in; i++)
        x[i] = (float)(dpt_rng_uniform(&r) * 2 - 1);
    for (int i = 0; i < ROWS; i++)
        f->labels[i] = i % (int)classes, f->ids[i] = 100 + i;
    f->ctx = (dpt_step_ctx_t){.training = true, .seed = 3, .epoch = 1, .sample_ids = f->ids};
}

static void setup(fixture_t *f, const char *spec, size_t in, size_t classes)
{
    setup_shaped(f, spec, (dpt_shape_t){in, 1, 1}, classes);
}

static void teardown(fixture_t *f)
{
    free(f->params), free(f->grads), free(f->stats);
    dpt_plan_free(f->plan);
    dpt_model_free(f->m);
}

static double loss_at(fixture_t *f)
{
    dpt_plan_forward(f->plan, f->params, ROWS, &f->ctx, f->stats);
    return dpt_softmax_xent(dpt_plan_logits(f->plan), f->labels, ROWS, dpt_model_classes(f->m),
                            1.0f, NULL, NULL, NULL);
}

static void check_one(const char *spec, const char *what, size_t k, float *slot, double an,
                      fixture_t *f)
{
    float saved = *slot;
    /* Small enough that no pre-activation of these draws crosses relu's kink (1e-2 did once
     * layers started from PyTorch's smaller initialisation), large enough that the float
     * rounding of the loss (~1e-7) stays far under the tolerance. */
    const float eps = 1e-3f;
    *slot = saved + eps;
    double lp = loss_at(f);
    *slot = saved - eps;
    double lm = loss_at(f);
    *slot = saved;
    double fd = (lp - lm) / (2.0 * eps);
    cr_assert(fabs(fd - an) <= 3e-3 + 3e-2 * fmax(fabs(fd), fabs(an)),
              "%s: %s[%zu]: analytic %.6g vs finite difference %.6g", spec, what, k, an, fd);
}

/* Compares every analytic parameter gradient, and the gradient of the input, with a central
 * difference of the loss (the loss is summed in double; the model runs in float, hence the
 * tolerance). Training mode: batch norm uses the batch's statistics, dropout its masks. */
static void gradient_check_shaped(const char *spec, dpt_shape_t in, size_t classes)
{
    fixture_t f;
    setup_shaped(&f, spec, in, classes);
    dpt_plan_forward(f.plan, f.params, ROWS, &f.ctx, f.stats);
    dpt_softmax_xent(dpt_plan_logits(f.plan), f.labels, ROWS, classes, 1.0f,
                     dpt_plan_dlogits(f.plan), NULL, NULL);
    dpt_plan_backward(f.plan, f.params, f.grads, ROWS, &f.ctx, f.stats);
    float *dx = malloc(ROWS * f.in * sizeof(float));
    memcpy(dx, dpt_plan_input_grad(f.plan), ROWS * f.in * sizeof(float));
    size_t checked = 0;
    for (size_t t = 0; t < dpt_model_tensor_count(f.m); t++) {
        const dpt_tensor_info_t *ti = dpt_model_tensor(f.m, t);
        if (!ti->trainable) continue;
        for (size_t k = 0; k < ti->rows * ti->cols; k++, checked++)
            check_one(spec, ti->name, k, f.params + ti->offset + k, f.grads[ti->offset + k], &f);
    }
    float *x = dpt_plan_input(f.plan);
    for (size_t k = 0; k < ROWS * f.in; k++, checked++)
        check_one(spec, "input", k, x + k, dx[k], &f);
    cr_assert_gt(checked, 0u);
    free(dx);
    teardown(&f);
}

static void gradient_check(const char *spec, size_t in, size_t classes)
{
    gradient_check_shaped(spec, (dpt_shape_t){in, 1, 1}, classes);
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
Test(gradcheck, dense_without_bias_then_bn)
{
    gradient_check("dense:6:bias=0,bn,tanh,dense:3", 4, 3);
}
Test(gradcheck, conv_bn_pool_dense)
{
    gradient_check_shaped("conv:3:3,bn,tanh,avgpool:2,dense:3", (dpt_shape_t){2, 6, 5}, 3);
}
Test(gradcheck, strided_grouped_conv_avgpool)
{
    gradient_check_shaped("conv:4:3:stride=2:pad=1,tanh,conv:4:3:groups=4,avgpool:2:stride=1,"
                          "flatten,dense:3",
                          (dpt_shape_t){2, 7, 7}, 3);
}
Test(gradcheck, residual_identity_fan_out)
{
    /* The block's input feeds both the main branch and the add: its gradient is the sum. */
    gradient_check_shaped("conv:3:3,tanh,res(conv:3:3,bn,tanh,conv:3:3),tanh,gap,dense:3",
                          (dpt_shape_t){2, 5, 5}, 3);
}
Test(gradcheck, relu_in_place_over_bn_and_add)
{
    /* Each relu writes over its input (bn, then the block's add, whose input fans out); the
     * add writes over the block's last dense. */
    gradient_check("dense:6,bn,relu,res(dense:6,bn,relu,dense:6),relu,dense:3", 4, 3);
}
Test(gradcheck, relu_in_place_over_conv_and_maxpool)
{
    gradient_check_shaped("conv:2:3,relu,maxpool:2,relu,dense:3", (dpt_shape_t){1, 4, 4}, 3);
}
Test(gradcheck, residual_zero_padded_shortcut)
{
    gradient_check_shaped("conv:2:3,tanh,res(conv:4:3:stride=2,tanh|zpad:4:stride=2),gap,dense:3",
                          (dpt_shape_t){1, 6, 6}, 3);
}
Test(gradcheck, residual_projection_shortcut_nested)
{
    gradient_check_shaped(
        "res(conv:3:3,tanh,res(conv:3:1,tanh)|conv:3:1:pad=0,bn),maxpool:2:stride=2:pad=1,"
        "dense:3",
        (dpt_shape_t){2, 4, 4}, 3);
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
    float *xa = dpt_plan_input(a.plan), *xb = dpt_plan_input(b.plan);
    for (int r = 0; r < ROWS; r++) {
        memcpy(xb + r * 4, xa + (ROWS - 1 - r) * 4, 4 * sizeof(float));
        b.ids[r] = a.ids[ROWS - 1 - r];
    }
    dpt_plan_forward(a.plan, a.params, ROWS, &a.ctx, NULL);
    dpt_plan_forward(b.plan, b.params, ROWS, &b.ctx, NULL);
    const float *ya = dpt_plan_node_output(a.plan, 0), *yb = dpt_plan_node_output(b.plan, 0);
    int zeros = 0;
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < 4; j++) {
            float va = ya[r * 4 + j], vb = yb[(ROWS - 1 - r) * 4 + j];
            cr_assert_eq(va, vb);
            zeros += va == 0.0f;
        }
    cr_assert(zeros > 0 && zeros < ROWS * 4, "dropout 0.5 dropped %d of %d", zeros, ROWS * 4);
    a.ctx.training = false;
    dpt_plan_forward(a.plan, a.params, ROWS, &a.ctx, NULL);
    cr_assert_eq(memcmp(xa, dpt_plan_node_output(a.plan, 0), ROWS * 4 * sizeof(float)), 0);
    teardown(&a), teardown(&b);
}

/* The bytes a replica needs for `pairs` copies of `pair` (e.g. "dense:256,tanh,") and a
 * dense:10 on 256 inputs. */
static size_t stack_bytes(const char *pair, size_t pairs, size_t rows)
{
    char spec[1024] = "";
    for (size_t i = 0; i < pairs; i++)
        strcat(spec, pair);
    strcat(spec, "dense:10");
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create(spec, 256, 10, &m), DPT_OK, "%s", dpt_last_error());
    size_t bytes = dpt_model_replica_bytes(m, rows);
    dpt_model_free(m);
    return bytes;
}

/* Bytes a replica grows by from 8 to 16 copies of pair, in nodes of 64 x 256 floats. */
static double growth_in_nodes(const char *pair)
{
    const size_t rows = 64, per_node = rows * 256 * sizeof(float);
    return (double)(stack_bytes(pair, 16, rows) - stack_bytes(pair, 8, rows)) / (double)per_node;
}

Test(model, gradient_buffers_are_shared_along_the_backward_walk)
{
    /* Eight more dense+tanh pairs add 16 activations; with one gradient slot per node they
     * would add as many gradients again, with the plan's shared buffers none. */
    const double grown = growth_in_nodes("dense:256,tanh,");
    cr_assert(grown >= 16.0 && grown < 17.0, "grew by %.2f nodes for 16 nodes", grown);
}

Test(model, relu_and_add_run_in_place_where_nothing_else_reads_the_input)
{
    double grown = growth_in_nodes("dense:256,relu,");
    cr_assert(grown >= 8.0 && grown < 9.0, "dense+relu: grew by %.2f nodes for 8 pairs", grown);
    /* tanh's backward reads its output, so the relu after it keeps its own buffer. */
    grown = growth_in_nodes("dense:256,tanh,relu,");
    cr_assert(grown >= 24.0 && grown < 25.0, "dense+tanh+relu: grew by %.2f nodes", grown);
    /* dense's output is read by the relu and by the block's add: the relu keeps its own
     * buffer, and the add, the relu's only reader, writes over it. */
    grown = growth_in_nodes("dense:256,res(relu),");
    cr_assert(grown >= 16.0 && grown < 17.0, "dense+res(relu): grew by %.2f nodes", grown);
    /* The add of a block writes over its branch's output (dense, read by nothing else). */
    grown = growth_in_nodes("res(dense:256,tanh,dense:256),");
    cr_assert(grown >= 24.0 && grown < 25.0, "res(dense+tanh+dense): grew by %.2f nodes", grown);
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
    cr_assert_eq(dpt_model_weight_count(m), real);
    cr_assert_geq(dpt_model_param_count(m), real);
    cr_assert_eq(dpt_model_trainable_count(m), dpt_model_param_count(m));
    cr_assert_str_eq(dpt_model_tensor(m, 0)->name, "dense0.weight");
    cr_assert_float_eq(dpt_model_forward_flops(m), 2.0 * (784 * 256 + 256 * 128 + 128 * 10), 1);
    /* 2x forward + input gradients of the 2nd and 3rd dense layers */
    cr_assert_float_eq(dpt_model_train_flops(m),
                       4.0 * (784 * 256 + 256 * 128 + 128 * 10) + 2.0 * (256 * 128 + 128 * 10), 1);
    dpt_model_free(m);
}

Test(model, state_tensors_follow_the_trainable_prefix)
{
    dpt_model_t *m;
    cr_assert_eq(dpt_model_create_shaped("conv:8:3:bias=0,bn,relu,gap,dense:10",
                                         (dpt_shape_t){3, 8, 8}, 10, &m),
                 DPT_OK, "%s", dpt_last_error());
    const char *names[] = {"conv0.weight", "bn0.weight",       "bn0.bias",       "dense0.weight",
                           "dense0.bias",  "bn0.running_mean", "bn0.running_var"};
    cr_assert_eq(dpt_model_tensor_count(m), 7u);
    for (size_t t = 0; t < 7; t++) {
        const dpt_tensor_info_t *ti = dpt_model_tensor(m, t);
        cr_assert_str_eq(ti->name, names[t]);
        cr_assert_eq(ti->trainable, t < 5, "%s", ti->name);
        cr_assert_eq(ti->offset < dpt_model_trainable_count(m), t < 5, "%s", ti->name);
    }
    const dpt_tensor_info_t *w = dpt_model_tensor_named(m, "conv0.weight");
    cr_assert(w->ndim == 4 && w->shape[0] == 8 && w->shape[1] == 3 && w->shape[2] == 3 &&
              w->shape[3] == 3);
    cr_assert_eq(dpt_model_weight_count(m), 8u * 27 + 16 + 80 + 10);
    cr_assert_eq(dpt_model_stats_count(m), 16u);
    float *p = calloc(dpt_model_param_count(m), sizeof(float));
    dpt_model_init_params(m, p, 1);
    cr_assert_eq(p[dpt_model_tensor_named(m, "bn0.weight")->offset], 1.0f);
    cr_assert_eq(p[dpt_model_tensor_named(m, "bn0.running_var")->offset + 7], 1.0f);
    cr_assert_eq(p[dpt_model_tensor_named(m, "bn0.running_mean")->offset + 7], 0.0f);
    free(p);
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

/* Parameter counts of the presets against the reference implementations' (trainable
 * parameters, 10 classes, 3x32x32): He et al.'s ResNet-20 as in the common PyTorch CIFAR
 * code (269,722), and ResNet-18 for CIFAR (11,173,962). */
Test(presets, parameter_counts_match_reference_models)
{
    dpt_model_t *m;
    const dpt_shape_t cifar = {3, 32, 32};
    cr_assert_eq(dpt_model_create_shaped("resnet20", cifar, 10, &m), DPT_OK, "%s",
                 dpt_last_error());
    cr_assert_eq(dpt_model_weight_count(m), 269722u);
    dpt_model_free(m);
    cr_assert_eq(dpt_model_create_shaped("resnet18", cifar, 10, &m), DPT_OK, "%s",
                 dpt_last_error());
    cr_assert_eq(dpt_model_weight_count(m), 11173962u);
    dpt_model_free(m);
}

Test(presets, every_preset_builds_for_28_and_32_pixel_images)
{
    const dpt_shape_t shapes[] = {{1, 28, 28}, {3, 32, 32}};
    for (size_t i = 0; i < dpt_model_preset_count(); i++)
        for (size_t s = 0; s < 2; s++) {
            dpt_model_t *m = NULL;
            const char *name = dpt_model_preset_name(i);
            cr_assert_eq(dpt_model_create_shaped(name, shapes[s], 10, &m), DPT_OK, "%s: %s", name,
                         dpt_last_error());
            cr_assert_str_eq(dpt_model_spec(m), name);
            cr_assert_gt(dpt_model_forward_flops(m), 0.0);
            dpt_model_free(m);
        }
}

static void expect_spec_error_shaped(const char *spec, dpt_shape_t in, size_t classes,
                                     const char *needle)
{
    dpt_model_t *m = NULL;
    cr_assert_eq(dpt_model_create_shaped(spec, in, classes, &m), DPT_ERR_INVALID_ARG, "%s: %s",
                 spec, dpt_last_error());
    cr_assert_null(m);
    cr_assert(strstr(dpt_last_error(), needle), "'%s' not in '%s'", needle, dpt_last_error());
}

static void expect_spec_error(const char *spec, size_t classes, const char *needle)
{
    expect_spec_error_shaped(spec, (dpt_shape_t){10, 1, 1}, classes, needle);
}

Test(model_spec, unknown_layer_lists_valid_ones)
{
    expect_spec_error("dense:8,swish,dense:3", 3,
                      "model spec: unknown layer 'swish'; valid names: dense, conv, bn, relu");
}
Test(model_spec, last_layer_must_match_classes)
{
    expect_spec_error("dense:8,relu,dense:4", 3, "(end with dense:3)");
}
Test(model_spec, last_layer_must_give_the_classes)
{
    expect_spec_error("dense:3,relu,dense:5,relu", 3, "the last layer (relu1) gives 5 outputs");
}
Test(model_spec, bad_width)
{
    expect_spec_error("dense:abc,dense:3", 3,
                      "model spec: 'dense:abc': units: malformed number 'abc' (expected an "
                      "integer in [1, 65536])");
    expect_spec_error("dense:0,dense:3", 3,
                      "model spec: 'dense:0': units must be an integer in [1, 65536], got '0'");
    expect_spec_error("dense:-5,dense:3", 3, "units: malformed number '-5'");
}
Test(model_spec, missing_argument)
{
    expect_spec_error("dense,dense:3", 3,
                      "'dense': missing required key units (usage: dense:UNITS");
    expect_spec_error("dropout,dense:3", 3, "'dropout': missing required key p (usage: dropout:P)");
}
Test(model_spec, bad_dropout)
{
    expect_spec_error("dropout:1.5,dense:3", 3,
                      "model spec: 'dropout:1.5': p must be a number in [0, 1), got '1.5'");
}
Test(model_spec, empty)
{
    expect_spec_error("", 3, "model spec is empty");
    expect_spec_error(",,,", 3, "empty layer");
}
Test(model_spec, argument_on_activation)
{
    expect_spec_error("relu:3,dense:3", 3, "model spec: 'relu:3': relu takes no keys or values");
}
Test(model_spec, bad_initialisation)
{
    expect_spec_error(
        "dense:8:lecun,dense:3", 3,
        "model spec: 'dense:8:lecun': init must be one of xavier, he, torch, got 'lecun'");
    expect_spec_error_shaped("conv:8:3:init=kaiming,gap,dense:3", (dpt_shape_t){1, 8, 8}, 3,
                             "model spec: 'conv:8:3:init=kaiming': init must be one of xavier, "
                             "he, torch, got 'kaiming'");
}
Test(model_spec, unknown_option_lists_the_usage)
{
    expect_spec_error_shaped(
        "conv:8:3:dilation=2,gap,dense:3", (dpt_shape_t){1, 8, 8}, 3,
        "unknown key 'dilation'; valid keys: out, k, stride, pad, bias, groups");
}
Test(model_spec, kernel_larger_than_input)
{
    expect_spec_error_shaped("conv:4:5:pad=0,gap,dense:3", (dpt_shape_t){1, 4, 4}, 3, "conv0");
    expect_spec_error_shaped("maxpool:2,maxpool:2,maxpool:2,dense:3", (dpt_shape_t){1, 4, 4}, 3,
                             "maxpool2: kernel 2 larger than its input 1x1");
}
Test(model_spec, residual_shapes_must_match)
{
    expect_spec_error_shaped("res(conv:8:3),gap,dense:3", (dpt_shape_t){4, 6, 6}, 3,
                             "add0: residual add of mismatched shapes 8x6x6 and 4x6x6");
    expect_spec_error_shaped("res(conv:4:3:stride=2),gap,dense:3", (dpt_shape_t){4, 6, 6}, 3,
                             "mismatched shapes 4x3x3 and 4x6x6");
}
Test(model_spec, residual_syntax_errors)
{
    const dpt_shape_t in = {4, 6, 6};
    expect_spec_error_shaped("res(conv:4:3,gap,dense:3", in, 3, "unclosed '('");
    expect_spec_error_shaped("res(),gap,dense:3", in, 3, "res() needs layers");
    expect_spec_error_shaped("res(relu|),gap,dense:3", in, 3, "empty shortcut");
    expect_spec_error_shaped("res(relu|relu|relu),gap,dense:3", in, 3, "one '|'");
    expect_spec_error_shaped("relu),gap,dense:3", in, 3, "unbalanced ')'");
    expect_spec_error_shaped("conv(3),gap,dense:3", in, 3, "only go in res(");
}
Test(model_spec, too_many_nodes)
{
    char spec[4096] = "";
    for (int i = 0; i < 511; i++)
        strcat(spec, "relu,");
    strcat(spec, "dense:3");
    dpt_model_t *m = NULL;
    cr_assert_eq(dpt_model_create(spec, 10, 3, &m), DPT_OK, "%s", dpt_last_error());
    dpt_model_free(m);
    strcat(spec, ",relu");
    expect_spec_error(spec, 3, "more than 512 nodes");
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

/* Mean and variance of n floats, and whether every |x| <= bound. */
static void moments(const float *x, size_t n, double bound, double *mean, double *var, bool *in)
{
    double s = 0, ss = 0;
    *in = true;
    for (size_t i = 0; i < n; i++) {
        s += x[i], ss += (double)x[i] * x[i];
        *in &= fabs(x[i]) <= bound;
    }
    *mean = s / (double)n, *var = ss / (double)n - *mean * *mean;
}

/* A model of `spec` and its initial parameters for `seed`. */
static float *init_model(const char *spec, dpt_shape_t in, size_t classes, uint64_t seed,
                         dpt_model_t **m)
{
    cr_assert_eq(dpt_model_create_shaped(spec, in, classes, m), DPT_OK, "%s", dpt_last_error());
    float *p = calloc(dpt_model_param_count(*m), 4);
    dpt_model_init_params(*m, p, seed);
    return p;
}

static const float *tensor_at(const dpt_model_t *m, const float *p, const char *name)
{
    const dpt_tensor_info_t *t = dpt_model_tensor_named(m, name);
    cr_assert(t, "no tensor %s", name);
    return p + t->offset;
}

static void expect_zeros(const float *x, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(x[i], 0.0f, "%s[%zu] = %g", name, i, x[i]);
}

/* The default initialisation (init=torch) is PyTorch's for nn.Conv2d / nn.Linear: weights and
 * biases U(+-1/sqrt(fan_in)), so variance 1 / (3 fan_in); the bias is drawn on its own stream,
 * not a copy of the weights. */
Test(model, default_initialisation_is_pytorchs_for_weights_and_biases)
{
    dpt_model_t *m;
    float *p = init_model("conv:64:3,dense:32,dense:4:xavier", (dpt_shape_t){4, 8, 8}, 4, 5, &m);
    const struct {
        const char *name;
        double fan_in;
        size_t n;
    } t[] = {{"conv0.weight", 36, 64 * 36},
             {"conv0.bias", 36, 64},
             {"dense0.weight", 64 * 64, 64 * 64 * 32},
             {"dense0.bias", 64 * 64, 32}};
    for (size_t i = 0; i < 4; i++) {
        double mean, var, bound = 1 / sqrt(t[i].fan_in);
        bool in;
        moments(tensor_at(m, p, t[i].name), t[i].n, bound, &mean, &var, &in);
        cr_assert(in, "%s: a value outside +-%g", t[i].name, bound);
        /* 64 and 32 draws for the biases: a loose band; thousands for the weights */
        double tol = t[i].n < 100 ? 0.45 : 0.08;
        cr_assert(fabs(var * 3 * t[i].fan_in - 1) < tol, "%s: variance %g, expected %g", t[i].name,
                  var, 1 / (3 * t[i].fan_in));
    }
    cr_assert_neq(memcmp(tensor_at(m, p, "conv0.weight"), tensor_at(m, p, "conv0.bias"), 64 * 4), 0,
                  "the bias repeats the weights' stream");
    /* a layer given another init keeps a zero bias */
    expect_zeros(tensor_at(m, p, "dense1.bias"), 4, "dense1.bias");
    free(p);
    dpt_model_free(m);
}

/* Presets keep the initialisation their recipes were measured with, whatever the layers'
 * defaults: He-normal convolutions (variance 2 / fan_in) and a Xavier-uniform classifier with
 * a zero bias. */
Test(presets, spell_out_he_convolutions_and_a_xavier_classifier)
{
    dpt_model_t *m;
    float *p = init_model("resnet20", (dpt_shape_t){3, 32, 32}, 10, 2, &m);
    double mean, var;
    bool in;
    /* conv9: 32 x 32 x 3 x 3, fan_in 288 */
    moments(tensor_at(m, p, "conv9.weight"), 32 * 288, INFINITY, &mean, &var, &in);
    cr_assert(fabs(var * 288 / 2 - 1) < 0.05, "conv9: variance %g, He's %g", var, 2.0 / 288);
    /* dense0: 64 x 10 */
    moments(tensor_at(m, p, "dense0.weight"), 640, sqrt(6.0 / 74), &mean, &var, &in);
    cr_assert(in && fabs(var * 74 / 2 - 1) < 0.2, "dense0: variance %g, Xavier's %g", var,
              2.0 / 74);
    expect_zeros(tensor_at(m, p, "dense0.bias"), 10, "dense0.bias");
    free(p);
    dpt_model_free(m);
}

/* A spec over the caps is a bad spec the user wrote (exit 2), refused before allocating. */
Test(model_spec, parameter_cap_is_a_spec_error)
{
    dpt_model_t *m = NULL;
    /* 8 x (65536 x 65536) weights: far over the cap, refused before anything is allocated. */
    cr_assert_eq(
        dpt_model_create("dense:65536,dense:65536,dense:65536,dense:65536,dense:3", 10, 3, &m),
        DPT_ERR_INVALID_ARG);
    cr_assert_null(m);
    cr_assert(strstr(dpt_last_error(), "exceed the cap of 268435456"), "%s", dpt_last_error());
}

Test(model_spec, activation_cap_is_a_spec_error)
{
    dpt_model_t *m = NULL;
    /* 4096 channels of 128x128 per conv, 16 of them: 1G floats per sample. */
    char spec[1024] = "";
    for (int i = 0; i < 16; i++)
        strcat(spec, "conv:4096:1,");
    strcat(spec, "gap,dense:3");
    cr_assert_eq(dpt_model_create_shaped(spec, (dpt_shape_t){1, 128, 128}, 3, &m),
                 DPT_ERR_INVALID_ARG);
    cr_assert_null(m);
    cr_assert(strstr(dpt_last_error(), "activation floats per sample exceed the cap"), "%s",
              dpt_last_error());
}

/* Runs a parameter-free model forward and backward on one hand-made sample; returns the
 * plan (input gradient inside) after setting dL/dy = dy. */
static dpt_plan_t *run_by_hand(const char *spec, dpt_shape_t in, size_t outs, const float *x,
                               const float *dy, dpt_model_t **m)
{
    cr_assert_eq(dpt_model_create_shaped(spec, in, outs, m), DPT_OK, "%s", dpt_last_error());
    dpt_plan_t *p;
    cr_assert_eq(dpt_plan_create(*m, 1, true, &p), DPT_OK);
    memcpy(dpt_plan_input(p), x, dpt_model_in_features(*m) * sizeof(float));
    uint32_t id = 0;
    dpt_step_ctx_t ctx = {.training = true, .sample_ids = &id};
    dpt_plan_forward(p, NULL, 1, &ctx, NULL);
    memcpy(dpt_plan_dlogits(p), dy, outs * sizeof(float));
    dpt_plan_backward(p, NULL, NULL, 1, &ctx, NULL);
    return p;
}

Test(pool, maxpool_routes_the_gradient_to_each_window_maximum)
{
    /* 3x3 input, 2x2 windows at stride 1: the 9 in the middle is every window's maximum but
     * the last one's, where 10 wins. */
    const float x[9] = {1, 2, 3, 4, 9, 5, 6, 7, 10};
    const float dy[4] = {1, 2, 3, 4};
    dpt_model_t *m;
    dpt_plan_t *p = run_by_hand("maxpool:2:stride=1", (dpt_shape_t){1, 3, 3}, 4, x, dy, &m);
    const float want_y[4] = {9, 9, 9, 10}, want_dx[9] = {0, 0, 0, 0, 6, 0, 0, 0, 4};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(dpt_plan_logits(p)[i], want_y[i], "y[%d]", i);
    for (int i = 0; i < 9; i++)
        cr_assert_eq(dpt_plan_input_grad(p)[i], want_dx[i], "dx[%d]", i);
    dpt_plan_free(p);
    dpt_model_free(m);
}

Test(pool, padded_avgpool_counts_the_padding_as_pytorch_does)
{
    /* 2x2 input, 2x2 windows at stride 2 with padding 1: each output sees one real pixel
     * and three zeros, divided by 4 (count_include_pad=True). */
    const float x[4] = {4, 8, 12, 16};
    const float dy[4] = {4, 8, 12, 16};
    dpt_model_t *m;
    dpt_plan_t *p = run_by_hand("avgpool:2:stride=2:pad=1", (dpt_shape_t){1, 2, 2}, 4, x, dy, &m);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(dpt_plan_logits(p)[i], x[i] / 4, "y[%d]", i);
        cr_assert_eq(dpt_plan_input_grad(p)[i], dy[i] / 4, "dx[%d]", i);
    }
    dpt_plan_free(p);
    dpt_model_free(m);
}

Test(pool, gap_and_zpad_by_hand)
{
    /* zpad to 2 channels at stride 2 keeps pixels (0,0),(0,2),(2,0),(2,2) of channel 0. */
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float dy[8] = {1, 1, 1, 1, 5, 5, 5, 5};
    dpt_model_t *m;
    dpt_plan_t *p = run_by_hand("zpad:2:stride=2", (dpt_shape_t){1, 3, 3}, 8, x, dy, &m);
    const float want_y[8] = {1, 3, 7, 9, 0, 0, 0, 0}, want_dx[9] = {1, 0, 1, 0, 0, 0, 1, 0, 1};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(dpt_plan_logits(p)[i], want_y[i], "y[%d]", i);
    for (int i = 0; i < 9; i++)
        cr_assert_eq(dpt_plan_input_grad(p)[i], want_dx[i], "dx[%d]", i);
    dpt_plan_free(p);
    dpt_model_free(m);
    const float g[8] = {1, 2, 3, 4, 10, 20, 30, 40}, gdy[2] = {4, 8};
    p = run_by_hand("gap", (dpt_shape_t){2, 2, 2}, 2, g, gdy, &m);
    cr_assert_eq(dpt_plan_logits(p)[0], 2.5f);
    cr_assert_eq(dpt_plan_logits(p)[1], 25.0f);
    cr_assert_eq(dpt_plan_input_grad(p)[0], 1.0f);
    cr_assert_eq(dpt_plan_input_grad(p)[7], 2.0f);
    dpt_plan_free(p);
    dpt_model_free(m);
}

/* The kernel-set hint: the MLP's GEMMs are wide, ResNet-20's mostly narrow (16 and 32
 * channels), at the nominal 64 rows whatever the batch; the products counted are those an op
 * runs: the small CNN's 32 -> 64 conv is wide as im2col (K = 288) and narrow as Winograd (16
 * products with K = 32). */
Test(model, narrow_gemm_share_separates_wide_and_narrow_models)
{
    dpt_model_t *mlp, *r20, *cnn;
    cr_assert_eq(dpt_model_create(DPT_DEFAULT_MODEL, 784, 10, &mlp), DPT_OK);
    cr_assert_eq(dpt_model_create_shaped("resnet20", (dpt_shape_t){3, 32, 32}, 10, &r20), DPT_OK);
    cr_assert_eq(
        dpt_model_create_shaped("conv:16:3,gap,dense:10", (dpt_shape_t){1, 8, 8}, 10, &cnn),
        DPT_OK);
    double a = dpt_model_narrow_gemm_share(mlp), b = dpt_model_narrow_gemm_share(r20);
    /* MLP: only the 128 -> 10 layer is narrow: 2560 of 470016 FLOPs */
    cr_assert_float_eq(a, 2.0 * 128 * 10 / (2.0 * (784 * 256 + 256 * 128 + 128 * 10)), 1e-12);
    cr_assert(b > 0.5 && b < 0.8, "resnet20: %g", b);
    cr_assert_eq(dpt_model_narrow_gemm_share(cnn), 1.0);
    dpt_model_free(mlp), dpt_model_free(r20), dpt_model_free(cnn);
    const dpt_shape_t fmnist = {1, 28, 28};
    cr_assert_eq(
        dpt_model_create_shaped("conv:32:3,maxpool:2,conv:64:3,dense:10", fmnist, 10, &cnn),
        DPT_OK);
    cr_assert_gt(dpt_model_narrow_gemm_share(cnn), 0.5);
    dpt_model_free(cnn);
    cr_assert_eq(dpt_model_create_shaped("conv:32:3,maxpool:2,conv:64:3:algo=im2col,dense:10",
                                         fmnist, 10, &cnn),
                 DPT_OK);
    cr_assert_lt(dpt_model_narrow_gemm_share(cnn), 0.5);
    dpt_model_free(cnn);
}

/* The 2x2 fast path (forward) and maxpool backward against a naive reference on planes wider
 * than one vector with a partial one, odd sizes (the last row and column are in no window and
 * get 0), ties (values on a coarse grid: the first maximum in scan order wins), and, through a
 * residual add of two pools, accumulation. */
Test(pool, maxpool_2x2_fast_path_matches_a_naive_reference)
{
    const dpt_shape_t in = {2, 7, 37};
    const size_t ho = 3, wo = 18, n_in = 2 * 7 * 37, n_out = 2 * ho * wo;
    float *x = malloc(n_in * sizeof *x), *dy = malloc(n_out * sizeof *dy);
    float *want = calloc(n_in, sizeof *want);
    for (size_t i = 0; i < n_in; i++)
        x[i] = (float)((i * 7919u) % 5u); /* 0..4: many ties */
    for (size_t i = 0; i < n_out; i++)
        dy[i] = 1.0f + (float)i;
    for (size_t c = 0; c < 2; c++)
        for (size_t oy = 0; oy < ho; oy++)
            for (size_t ox = 0; ox < wo; ox++) {
                const float *xc = x + c * 7 * 37;
                size_t best = (2 * oy) * 37 + 2 * ox;
                for (size_t q = 1; q < 4; q++) {
                    size_t at = (2 * oy + q / 2) * 37 + 2 * ox + q % 2;
                    if (xc[at] > xc[best]) best = at;
                }
                want[c * 7 * 37 + best] += dy[(c * ho + oy) * wo + ox];
            }
    for (int twice = 0; twice < 2; twice++) {
        const char *spec = twice ? "res(maxpool:2|maxpool:2)" : "maxpool:2";
        dpt_model_t *m;
        cr_assert_eq(dpt_model_create_shaped(spec, in, n_out, &m), DPT_OK, "%s", dpt_last_error());
        dpt_plan_t *p;
        cr_assert_eq(dpt_plan_create(m, 1, true, &p), DPT_OK);
        memcpy(dpt_plan_input(p), x, n_in * sizeof(float));
        uint32_t id = 0;
        dpt_step_ctx_t ctx = {.training = true, .sample_ids = &id};
        dpt_plan_forward(p, NULL, 1, &ctx, NULL);
        memcpy(dpt_plan_dlogits(p), dy, n_out * sizeof(float));
        /* stale values in the input's gradient slot: the pool must write every position */
        float *slot = (float *)dpt_plan_input_grad(p);
        for (size_t i = 0; i < n_in; i++)
            slot[i] = NAN;
        dpt_plan_backward(p, NULL, NULL, 1, &ctx, NULL);
        for (size_t i = 0; i < n_in; i++)
            cr_assert_eq(dpt_plan_input_grad(p)[i], (twice ? 2 : 1) * want[i],
                         "%s dx[%zu]: %g, want %g", twice ? "res" : "single", i,
                         dpt_plan_input_grad(p)[i], (twice ? 2 : 1) * want[i]);
        dpt_plan_free(p);
        dpt_model_free(m);
    }
    free(x), free(dy), free(want);
}

/* The 2x2 fast path of max pooling's forward: outputs and input gradients by hand, written and
 * (two consumers of one input) accumulated. */
Test(pool, maxpool_2x2_fast_path_by_hand)
{
    const float x[16] = {1, 5, 2, 0, 3, 4, 9, 9, 0, 0, 0, 0, 7, 1, 2, 8};
    const float dy[4] = {1, 2, 3, 4};
    dpt_model_t *m;
    dpt_plan_t *p = run_by_hand("maxpool:2", (dpt_shape_t){1, 4, 4}, 4, x, dy, &m);
    /* windows: {1,5,3,4} -> 5 at 1; {2,0,9,9} -> first 9 at 6; {0,0,7,1} -> 7 at 12;
     * {0,0,2,8} -> 8 at 15 */
    const float want_y[4] = {5, 9, 7, 8};
    const float want_dx[16] = {0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 4};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(dpt_plan_logits(p)[i], want_y[i], "y[%d]", i);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(dpt_plan_input_grad(p)[i], want_dx[i], "dx[%d]", i);
    dpt_plan_free(p);
    dpt_model_free(m);
    /* both branches pool the input: the add doubles y, and dx adds up at the maxima */
    p = run_by_hand("res(maxpool:2|maxpool:2)", (dpt_shape_t){1, 4, 4}, 4, x, dy, &m);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(dpt_plan_logits(p)[i], 2 * want_y[i], "y[%d]", i);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(dpt_plan_input_grad(p)[i], 2 * want_dx[i], "dx[%d]", i);
    dpt_plan_free(p);
    dpt_model_free(m);
}
