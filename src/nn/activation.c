/* Owns the element-wise activations: relu, tanh, sigmoid, gelu (tanh approximation, as
 * PyTorch's approximate='tanh'). Shapes: x, y, dy, dx all [rows x in], in == out. */
#include <math.h>

#include "nn/layer.h"

static void relu_forward(const dpt_layer_t *l, const float *params, const float *x, float *y,
                         size_t rows, const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(const dpt_layer_t *l, const float *params, const float *x, const float *y,
                          const float *dy, float *dx, float *grads, size_t rows,
                          const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++)
        dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

static void tanh_forward(const dpt_layer_t *l, const float *params, const float *x, float *y,
                         size_t rows, const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

static void tanh_backward(const dpt_layer_t *l, const float *params, const float *x, const float *y,
                          const float *dy, float *dx, float *grads, size_t rows,
                          const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

static void sigmoid_forward(const dpt_layer_t *l, const float *params, const float *x, float *y,
                            size_t rows, const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void sigmoid_backward(const dpt_layer_t *l, const float *params, const float *x,
                             const float *y, const float *dy, float *dx, float *grads, size_t rows,
                             const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

/* gelu(x) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi) */
#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f

static void gelu_forward(const dpt_layer_t *l, const float *params, const float *x, float *y,
                         size_t rows, const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_C * v * v * v)));
    }
}

static void gelu_backward(const dpt_layer_t *l, const float *params, const float *x, const float *y,
                          const float *dy, float *dx, float *grads, size_t rows,
                          const dpt_step_ctx_t *ctx)
{
    size_t n = rows * l->in;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float t = tanhf(GELU_K * (v + GELU_C * v * v * v));
        float dt = (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * v * v);
        dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
    }
}

const dpt_layer_ops_t dpt_relu_ops = {"relu", relu_forward, relu_backward};
const dpt_layer_ops_t dpt_tanh_ops = {"tanh", tanh_forward, tanh_backward};
const dpt_layer_ops_t dpt_sigmoid_ops = {"sigmoid", sigmoid_forward, sigmoid_backward};
const dpt_layer_ops_t dpt_gelu_ops = {"gelu", gelu_forward, gelu_backward};
