/* Owns the element-wise activations: relu, tanh, sigmoid, gelu (tanh approximation, as
 * PyTorch's approximate='tanh'). Shapes: x, y, dy, dx all [rows x size(in)], out == in. */
#include <math.h>

#include "nn/op.h"

static size_t elems(const dpt_node_t *n, const dpt_op_io_t *io)
{
    return io->rows * dpt_shape_size(n->out);
}

/* The backward of every activation: dx (+)= dy * f'(.), with the local derivative given
 * as an expression of v = x[i] and u = y[i]; one loop per (op, accumulate) pair so each
 * vectorises. */
#define ACT_BACKWARD(fn, deriv)                                                                    \
    static void fn(const dpt_node_t *n, const dpt_op_io_t *io)                                     \
    {                                                                                              \
        float *restrict dx = io->dx[0];                                                            \
        if (!dx) return;                                                                           \
        const float *restrict x = io->x[0], *restrict y = io->y, *restrict dy = io->dy;            \
        size_t cnt = elems(n, io);                                                                 \
        if (io->dx_acc[0])                                                                         \
            for (size_t i = 0; i < cnt; i++) {                                                     \
                float v = x[i], u = y[i];                                                          \
                (void)v, (void)u;                                                                  \
                dx[i] += (deriv);                                                                  \
            }                                                                                      \
        else                                                                                       \
            for (size_t i = 0; i < cnt; i++) {                                                     \
                float v = x[i], u = y[i];                                                          \
                (void)v, (void)u;                                                                  \
                dx[i] = (deriv);                                                                   \
            }                                                                                      \
    }

/* No restrict on x and y: relu runs in place (y == x, op.h's in_place). */
#define ACT_FORWARD(fn, expr)                                                                      \
    static void fn(const dpt_node_t *n, const dpt_op_io_t *io)                                     \
    {                                                                                              \
        const float *x = io->x[0];                                                                 \
        float *y = io->y;                                                                          \
        size_t cnt = elems(n, io);                                                                 \
        for (size_t i = 0; i < cnt; i++) {                                                         \
            float v = x[i];                                                                        \
            y[i] = (expr);                                                                         \
        }                                                                                          \
    }

/* gelu(x) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi) */
#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f

static inline float gelu_grad(float v)
{
    float t = tanhf(GELU_K * (v + GELU_C * v * v * v));
    float dt = (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * v * v);
    return 0.5f * (1.0f + t) + 0.5f * v * dt;
}

ACT_FORWARD(relu_forward, v > 0.0f ? v : 0.0f)
ACT_BACKWARD(relu_backward, v > 0.0f ? dy[i] : 0.0f)
ACT_FORWARD(tanh_forward, tanhf(v))
ACT_BACKWARD(tanh_backward, dy[i] * (1.0f - u * u))
ACT_FORWARD(sigmoid_forward, 1.0f / (1.0f + expf(-v)))
ACT_BACKWARD(sigmoid_backward, dy[i] * u * (1.0f - u))
ACT_FORWARD(gelu_forward, 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_C * v * v * v))))
ACT_BACKWARD(gelu_backward, dy[i] * gelu_grad(v))

/* in_place: relu's backward tests x > 0, which holds where y > 0; reads_y: the backward's
 * derivative is written in y (tanh, sigmoid). */
#define ACTIVATION(sym, nm, fwd, bwd, in_place_, reads_y)                                          \
    const dpt_op_t sym = {.spec = {nm, NULL},                                                      \
                          .infer = dpt_op_infer_same,                                              \
                          .forward = fwd,                                                          \
                          .backward = bwd,                                                         \
                          .in_place = in_place_,                                                   \
                          .backward_reads_output = reads_y}

ACTIVATION(dpt_op_relu, "relu", relu_forward, relu_backward, true, false);
ACTIVATION(dpt_op_tanh, "tanh", tanh_forward, tanh_backward, false, true);
ACTIVATION(dpt_op_sigmoid, "sigmoid", sigmoid_forward, sigmoid_backward, false, true);
ACTIVATION(dpt_op_gelu, "gelu", gelu_forward, gelu_backward, false, false);
