/* Owns the model's memory plan and the forward/backward walk over its nodes. One arena per
 * plan, 64-byte aligned slots sized for max_rows: the input rows, each node's output, each
 * gradient slot that backward needs, each node's saved floats, and one workspace as large as
 * the largest any node asks for (nodes run one at a time, so they share it). */
#include "nn/plan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/checked.h"
#include "nn/graph.h"
#include "nn/spec.h"

struct dpt_plan {
    const dpt_model_t *m;
    size_t max_rows;
    bool input_grad;
    float *arena;
    size_t floats;
    float *input, *input_grad_slot;
    float *act[DPT_MAX_NODES];
    float *grad[DPT_MAX_NODES];
    float *saved[DPT_MAX_NODES];
    float *ws;
    bool needs[DPT_MAX_NODES];   /* node's output gradient is needed */
    bool runs[DPT_MAX_NODES];    /* node's backward runs */
    double *prof_fwd, *prof_bwd; /* per-node seconds, when profiling */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dpt_plan_profile(dpt_plan_t *p, double *fwd, double *bwd)
{
    p->prof_fwd = fwd;
    p->prof_bwd = bwd;
}

/* Which gradients this plan computes: a node's output needs one when it or something before
 * it has parameters (or, with input_grad, when it depends on the input). */
static void plan_needs(const dpt_model_t *m, bool input_grad, bool *needs, bool *runs)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        needs[i] = runs[i] = dpt_graph_needs_grad(m, needs, i, input_grad);
    /* The last node's slot receives dL/dlogits whatever the model is. */
    needs[m->n_nodes - 1] = true;
}

/* Which buffer holds each node's output gradient. A gradient is live in backward from the first
 * write into it (the backward of its last consumer, or the loss for the last node) until its
 * own node's backward has read it; backward runs one node at a time, last to first, so a slot
 * whose node is done is handed to the next gradient that starts, largest-fitting first. A node
 * then writes its input gradients into buffers its successors have just used, still in cache,
 * instead of into one cold slot per node (ResNet-20: 41 gradient slots of up to 1 MiB a 16-row
 * shard, against 4 buffers). The two gradients a backward touches are live together, so they
 * never share a buffer. A node no consumer writes (an unused branch) keeps a buffer of its own,
 * which stays zero as allocated. */
typedef struct grad_buffers {
    size_t n;
    size_t floats[DPT_MAX_NODES]; /* each buffer's size, per row */
    int of[DPT_MAX_NODES];        /* buffer of node i's gradient, -1 for none */
} grad_buffers_t;

static int take_buffer(grad_buffers_t *gb, bool *busy, size_t floats)
{
    int best = -1;
    for (size_t b = 0; b < gb->n; b++)
        if (!busy[b] && gb->floats[b] >= floats && (best < 0 || gb->floats[b] < gb->floats[best]))
            best = (int)b;
    if (best < 0) {
        best = (int)gb->n++;
        gb->floats[best] = floats;
    }
    busy[best] = true;
    return best;
}

/* consumers[j]: how many inputs of later nodes are node j's output. */
static void count_consumers(const dpt_model_t *m, size_t *consumers)
{
    memset(consumers, 0, m->n_nodes * sizeof *consumers);
    for (size_t i = 0; i < m->n_nodes; i++)
        for (size_t k = 0; k < m->nodes[i].n_in; k++)
            if (m->nodes[i].in[k] != DPT_NODE_INPUT) consumers[m->nodes[i].in[k]]++;
}

/* Every consumer of a node whose gradient is needed runs its backward (dpt_graph_needs_grad),
 * so a needed gradient with consumers is written by the last of them and freed after its own
 * node; the logits' gradient (written by the loss) and an unused branch's have none. */
static void plan_grad_buffers(const dpt_model_t *m, const bool *needs, const bool *runs,
                              const size_t *consumers, grad_buffers_t *gb)
{
    bool busy[DPT_MAX_NODES] = {0};
    gb->n = 0;
    for (size_t i = 0; i < m->n_nodes; i++)
        gb->of[i] = -1;
    const size_t last = m->n_nodes - 1;
    for (size_t i = 0; i < last; i++) /* unused branches: a buffer each, never freed */
        if (needs[i] && !consumers[i])
            gb->of[i] = take_buffer(gb, busy, dpt_shape_size(m->nodes[i].out));
    gb->of[last] = take_buffer(gb, busy, dpt_shape_size(m->nodes[last].out)); /* dL/dlogits */
    for (size_t i = m->n_nodes; i-- > 0;) {
        const dpt_node_t *n = &m->nodes[i];
        for (size_t k = 0; runs[i] && k < n->n_in; k++) {
            const int j = n->in[k];
            if (j != DPT_NODE_INPUT && needs[j] && gb->of[j] < 0)
                gb->of[j] = take_buffer(gb, busy, dpt_shape_size(m->nodes[j].out));
        }
        if (gb->of[i] >= 0 && (consumers[i] || i == last)) busy[gb->of[i]] = false;
    }
}

/* Whether node i writes its output over its first input's (one buffer for both): an in-place
 * op (relu, add) whose first input is a node with no other consumer (so not add(x, x)) and
 * whose backward does not read the output being overwritten. ResNet-20's relus and adds then
 * add no activation of their own, and each writes into lines the node before it has just
 * written (bn, add). */
static bool runs_in_place(const dpt_model_t *m, const size_t *consumers, size_t i)
{
    const dpt_node_t *n = &m->nodes[i];
    if (!n->op->in_place || n->in[0] == DPT_NODE_INPUT) return false;
    const int j = n->in[0];
    return consumers[j] == 1 && !m->nodes[j].op->backward_reads_output;
}

/* Slot sizes in floats (each rounded to 64 bytes), in arena order; fills p's pointers when
 * base is not NULL. Returns the total, or 0 on overflow. */
static size_t plan_layout(const dpt_model_t *m, size_t rows, bool input_grad, const bool *needs,
                          const bool *runs, float *base, dpt_plan_t *p)
{
    size_t total = 0, ws = 0, sz;
#define TAKE(slot, count)                                                                          \
    do {                                                                                           \
        if (!dpt_mul_size(rows, (count), &sz)) return 0;                                           \
        if (base) *(slot) = base + total;                                                          \
        total += dpt_round_floats(sz);                                                             \
    } while (0)
    size_t consumers[DPT_MAX_NODES];
    count_consumers(m, consumers);
    TAKE(base ? &p->input : NULL, dpt_shape_size(m->in));
    if (input_grad) TAKE(base ? &p->input_grad_slot : NULL, dpt_shape_size(m->in));
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        if (!runs_in_place(m, consumers, i))
            TAKE(base ? &p->act[i] : NULL, dpt_shape_size(n->out));
        else if (base)
            p->act[i] = p->act[n->in[0]];
        if (n->op->saved_floats) {
            size_t s = dpt_round_floats(n->op->saved_floats(n, rows));
            if (base) p->saved[i] = base + total;
            total += s;
        }
        if (n->op->workspace_floats) {
            size_t w = n->op->workspace_floats(n, rows);
            if (w > ws) ws = w;
        }
    }
    grad_buffers_t gb;
    float *buf[DPT_MAX_NODES];
    plan_grad_buffers(m, needs, runs, consumers, &gb);
    for (size_t b = 0; b < gb.n; b++)
        TAKE(base ? &buf[b] : NULL, gb.floats[b]);
    if (base)
        for (size_t i = 0; i < m->n_nodes; i++)
            p->grad[i] = gb.of[i] >= 0 ? buf[gb.of[i]] : NULL;
    if (base) p->ws = base + total;
    total += dpt_round_floats(ws);
#undef TAKE
    return total;
}

size_t dpt_model_replica_bytes(const dpt_model_t *m, size_t rows)
{
    bool needs[DPT_MAX_NODES], runs[DPT_MAX_NODES];
    plan_needs(m, false, needs, runs);
    return plan_layout(m, rows, false, needs, runs, NULL, NULL) * sizeof(float);
}

size_t dpt_model_workspace_bytes(const dpt_model_t *m, size_t rows)
{
    size_t ws = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        size_t w = n->op->workspace_floats ? n->op->workspace_floats(n, rows) : 0;
        if (w > ws) ws = w;
    }
    return dpt_round_floats(ws) * sizeof(float);
}

dpt_status_t dpt_plan_create(const dpt_model_t *m, size_t max_rows, bool input_grad,
                             dpt_plan_t **out)
{
    dpt_plan_t *p = calloc(1, sizeof *p);
    if (!p) return dpt_error(DPT_ERR_NOMEM, "out of memory creating a replica");
    p->m = m;
    p->max_rows = max_rows;
    p->input_grad = input_grad;
    plan_needs(m, input_grad, p->needs, p->runs);
    size_t total = plan_layout(m, max_rows, input_grad, p->needs, p->runs, NULL, NULL), bytes;
    if (!total || !dpt_mul_size(total, sizeof(float), &bytes) ||
        !(p->arena = dpt_alloc_aligned(bytes))) {
        free(p);
        return dpt_error(DPT_ERR_NOMEM,
                         "out of memory for a replica's activations (%zu rows of %s: %.1f MiB); "
                         "lower --micro-batch",
                         max_rows, dpt_model_spec(m), (double)total * 4.0 / 1048576.0);
    }
    p->floats = total;
    plan_layout(m, max_rows, input_grad, p->needs, p->runs, p->arena, p);
    *out = p;
    return DPT_OK;
}

void dpt_plan_free(dpt_plan_t *p)
{
    if (!p) return;
    dpt_free_aligned(p->arena);
    free(p);
}

size_t dpt_plan_bytes(const dpt_plan_t *p)
{
    return p->floats * sizeof(float);
}
float *dpt_plan_input(dpt_plan_t *p)
{
    return p->input;
}
const float *dpt_plan_logits(const dpt_plan_t *p)
{
    return p->act[p->m->n_nodes - 1];
}
float *dpt_plan_dlogits(dpt_plan_t *p)
{
    return p->grad[p->m->n_nodes - 1];
}
const float *dpt_plan_input_grad(const dpt_plan_t *p)
{
    return p->input_grad_slot;
}
const float *dpt_plan_node_output(const dpt_plan_t *p, size_t i)
{
    return i < p->m->n_nodes ? p->act[i] : NULL;
}

static const float *output_of(const dpt_plan_t *p, int node)
{
    return node == DPT_NODE_INPUT ? p->input : p->act[node];
}

void dpt_plan_forward(dpt_plan_t *p, const float *params, size_t rows, const dpt_step_ctx_t *ctx,
                      float *stats)
{
    const dpt_model_t *m = p->m;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        dpt_op_io_t io = {.y = p->act[i],
                          .params = params,
                          .stats = ctx->training ? stats : NULL,
                          .saved = p->saved[i],
                          .ws = p->ws,
                          .rows = rows,
                          .ctx = ctx};
        for (size_t k = 0; k < n->n_in; k++)
            io.x[k] = output_of(p, n->in[k]);
        double t0 = p->prof_fwd ? now_seconds() : 0;
        n->op->forward(n, &io);
        if (p->prof_fwd) p->prof_fwd[i] += now_seconds() - t0;
    }
}

/* The gradient slot of an input of a node, or NULL when this plan does not compute it. */
static float *grad_of(const dpt_plan_t *p, int node)
{
    if (node == DPT_NODE_INPUT) return p->input_grad_slot;
    return p->needs[node] ? p->grad[node] : NULL;
}

void dpt_plan_backward(dpt_plan_t *p, const float *params, float *grads, size_t rows,
                       const dpt_step_ctx_t *ctx, float *stats)
{
    const dpt_model_t *m = p->m;
    for (size_t i = m->n_nodes; i-- > 0;) {
        if (!p->runs[i]) continue;
        const dpt_node_t *n = &m->nodes[i];
        dpt_op_io_t io = {.y = p->act[i],
                          .dy = p->grad[i],
                          .params = params,
                          .grads = grads,
                          .stats = ctx->training ? stats : NULL,
                          .saved = p->saved[i],
                          .ws = p->ws,
                          .rows = rows,
                          .ctx = ctx};
        for (size_t k = 0; k < n->n_in; k++) {
            io.x[k] = output_of(p, n->in[k]);
            io.dx[k] = grad_of(p, n->in[k]);
            io.dx_acc[k] = m->dx_acc[i][k];
        }
        double t0 = p->prof_bwd ? now_seconds() : 0;
        n->op->backward(n, &io);
        if (p->prof_bwd) p->prof_bwd[i] += now_seconds() - t0;
    }
}

size_t dpt_model_stats_count(const dpt_model_t *m)
{
    return m->n_stats;
}

void dpt_model_fold_stats(const dpt_model_t *m, float *params, const float *const *stats,
                          const size_t *rows, size_t shards)
{
    for (size_t i = 0; i < m->n_nodes; i++) {
        const dpt_node_t *n = &m->nodes[i];
        if (n->op->fold_stats) n->op->fold_stats(n, params, stats, rows, shards);
    }
}
