/* Owns the pipelined gradient exchange: pieces, their progress flags and the messages. */
#include "parallel/exchange.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "parallel/reducer.h"
#include "parallel/world.h"

/* The tag of gathered (reduced) pieces; roots use their shard position (< 4096 shards), and
 * 32767 is the smallest MPI_TAG_UB the standard allows. */
#define TAG_GATHER 32767

enum { SUMMED = 1, READY = 2, REDUCED = 4 };

struct dpt_exchange {
    size_t n, rank, ranks, n_pieces;
    size_t *piece_lo;    /* n_pieces + 1: piece p is [piece_lo[p], piece_lo[p + 1]) */
    size_t *first_piece; /* ranks + 1: rank q owns pieces [first_piece[q], first_piece[q + 1]) */
    size_t *send_first, *send_n, *recv_first, *recv_n; /* per piece: its requests */
    atomic_int *flags;                                 /* per piece: SUMMED | READY | REDUCED */
    atomic_size_t next_claim;                          /* update order: next to claim */
    /* The step: */
    float *const *grads;
    size_t shards;
    const size_t *bounds;
    size_t roots[128], n_roots; /* this rank's roots */
    /* The driving thread's positions: */
    size_t next_send;  /* inside order: roots of earlier pieces sent */
    size_t next_grecv; /* inside order: gathered receives of earlier pieces posted */
    size_t next_ready; /* update order: earlier pieces marked ready */
    size_t next_gsend; /* own pieces: gathered sends of earlier ones posted */
    double wait_seconds;
};

static size_t inside_piece(const dpt_exchange_t *x, size_t i)
{
    return (x->first_piece[(x->rank + 1) % x->ranks] + i) % x->n_pieces;
}
static size_t update_piece(const dpt_exchange_t *x, size_t i)
{
    return (x->first_piece[x->rank] + i) % x->n_pieces;
}
static bool owned(const dpt_exchange_t *x, size_t p)
{
    return p >= x->first_piece[x->rank] && p < x->first_piece[x->rank + 1];
}
static size_t owner(const dpt_exchange_t *x, size_t p)
{
    size_t q = 0;
    while (p >= x->first_piece[q + 1])
        q++;
    return q;
}

dpt_status_t dpt_exchange_create(size_t n_params, size_t rank, size_t ranks, dpt_exchange_t **out)
{
    *out = NULL;
    dpt_exchange_t *x = calloc(1, sizeof *x);
    size_t *chunk = calloc(ranks + 1, sizeof *chunk);
    if (!x || !chunk) goto nomem;
    x->n = n_params, x->rank = rank, x->ranks = ranks;
    dpt_world_chunk_bounds(n_params, ranks, chunk);
    for (size_t q = 0; q < ranks; q++)
        x->n_pieces += (chunk[q + 1] - chunk[q] + DPT_EXCHANGE_PIECE - 1) / DPT_EXCHANGE_PIECE;
    size_t np = x->n_pieces;
    if (!(x->piece_lo = calloc(np + 1, sizeof(size_t))) ||
        !(x->first_piece = calloc(ranks + 1, sizeof(size_t))) ||
        !(x->send_first = calloc(np + 1, sizeof(size_t))) ||
        !(x->send_n = calloc(np + 1, sizeof(size_t))) ||
        !(x->recv_first = calloc(np + 1, sizeof(size_t))) ||
        !(x->recv_n = calloc(np + 1, sizeof(size_t))) ||
        !(x->flags = calloc(np + 1, sizeof(atomic_int))))
        goto nomem;
    size_t p = 0;
    for (size_t q = 0; q < ranks; q++) {
        x->first_piece[q] = p;
        for (size_t c = chunk[q]; c < chunk[q + 1]; c += DPT_EXCHANGE_PIECE)
            x->piece_lo[p++] = c;
    }
    x->first_piece[ranks] = p;
    x->piece_lo[p] = n_params;
    free(chunk);
    *out = x;
    return DPT_OK;
nomem:
    free(chunk);
    dpt_exchange_free(x);
    return dpt_error(DPT_ERR_NOMEM, "out of memory for the exchange's pieces");
}

void dpt_exchange_free(dpt_exchange_t *x)
{
    if (!x) return;
    free(x->piece_lo), free(x->first_piece);
    free(x->send_first), free(x->send_n), free(x->recv_first), free(x->recv_n);
    free(x->flags);
    free(x);
}

size_t dpt_exchange_pieces(const dpt_exchange_t *x)
{
    return x->n_pieces;
}

double dpt_exchange_wait_seconds(const dpt_exchange_t *x)
{
    return x->wait_seconds;
}

dpt_status_t dpt_exchange_begin(dpt_exchange_t *x, float *const *grads, size_t shards,
                                const size_t *bounds)
{
    x->grads = grads, x->shards = shards, x->bounds = bounds;
    x->n_roots = dpt_reduce_roots(shards, bounds[x->rank], bounds[x->rank + 1], x->roots);
    x->next_send = x->next_grecv = x->next_ready = x->next_gsend = 0;
    x->wait_seconds = 0;
    atomic_store_explicit(&x->next_claim, 0, memory_order_relaxed);
    /* Requests of the step: roots out and gathered pieces in for others' pieces; others'
     * roots in and gathered pieces out for this rank's. */
    size_t others_roots = 0, roots[128];
    for (size_t q = 0; q < x->ranks; q++)
        if (q != x->rank) others_roots += dpt_reduce_roots(shards, bounds[q], bounds[q + 1], roots);
    size_t mine = x->first_piece[x->rank + 1] - x->first_piece[x->rank];
    size_t need = (x->n_pieces - mine) * (x->n_roots + 1) + mine * (others_roots + x->ranks);
    dpt_status_t s = dpt_world_requests_reserve(need);
    if (s != DPT_OK) return s;
    for (size_t p = 0; p < x->n_pieces; p++) {
        atomic_store_explicit(&x->flags[p], 0, memory_order_relaxed);
        x->send_n[p] = x->recv_n[p] = 0;
    }
    /* Receives of the other ranks' roots of each own piece, in piece order (messages between
     * two ranks with one tag match in posting order, and the senders post in piece order). */
    for (size_t p = x->first_piece[x->rank]; p < x->first_piece[x->rank + 1]; p++) {
        size_t lo = x->piece_lo[p], len = x->piece_lo[p + 1] - lo;
        x->recv_first[p] = dpt_world_requests_posted();
        for (size_t q = 0; q < x->ranks; q++) {
            if (q == x->rank) continue;
            size_t k = dpt_reduce_roots(shards, bounds[q], bounds[q + 1], roots);
            for (size_t j = 0; j < k; j++)
                dpt_world_irecv(grads[roots[j]] + lo, len, q, (int)roots[j]);
        }
        x->recv_n[p] = dpt_world_requests_posted() - x->recv_first[p];
    }
    return DPT_OK;
}

void dpt_exchange_inside(dpt_exchange_t *x, size_t i)
{
    size_t p = inside_piece(x, i);
    size_t s_lo = x->bounds[x->rank], s_hi = x->bounds[x->rank + 1];
    for (size_t c = x->piece_lo[p]; c < x->piece_lo[p + 1]; c += DPT_REDUCE_CHUNK) {
        size_t end =
            c + DPT_REDUCE_CHUNK < x->piece_lo[p + 1] ? c + DPT_REDUCE_CHUNK : x->piece_lo[p + 1];
        dpt_reduce_tree_inside(x->grads, x->shards, s_lo, s_hi, c, end);
    }
    atomic_fetch_or_explicit(&x->flags[p], SUMMED, memory_order_release);
}

static bool has(dpt_exchange_t *x, size_t p, int flag)
{
    return atomic_load_explicit(&x->flags[p], memory_order_acquire) & flag;
}

void dpt_exchange_drive(dpt_exchange_t *x)
{
    const size_t np = x->n_pieces;
    /* Roots of summed pieces to their owners, in the inside order. */
    for (; x->next_send < np; x->next_send++) {
        size_t p = inside_piece(x, x->next_send);
        if (!has(x, p, SUMMED)) break;
        if (owned(x, p)) continue;
        size_t lo = x->piece_lo[p], len = x->piece_lo[p + 1] - lo, q = owner(x, p);
        x->send_first[p] = dpt_world_requests_posted();
        for (size_t j = 0; j < x->n_roots; j++)
            dpt_world_isend(x->grads[x->roots[j]] + lo, len, q, (int)x->roots[j]);
        x->send_n[p] = x->n_roots;
    }
    /* The gathered piece lands in grads[0], which on rank 0 is a root being sent: its
     * receive is posted once that piece's sends are complete. */
    for (; x->next_grecv < x->next_send; x->next_grecv++) {
        size_t p = inside_piece(x, x->next_grecv);
        if (owned(x, p)) continue;
        if (!dpt_world_test(x->send_first[p], x->send_n[p])) break;
        size_t lo = x->piece_lo[p];
        x->recv_first[p] = dpt_world_requests_posted();
        dpt_world_irecv(x->grads[0] + lo, x->piece_lo[p + 1] - lo, owner(x, p), TAG_GATHER);
        x->recv_n[p] = 1;
    }
    /* Reduced own pieces to every other rank, in piece order. */
    size_t mine = x->first_piece[x->rank + 1] - x->first_piece[x->rank];
    for (; x->next_gsend < mine; x->next_gsend++) {
        size_t p = x->first_piece[x->rank] + x->next_gsend;
        if (!has(x, p, REDUCED)) break;
        size_t lo = x->piece_lo[p], len = x->piece_lo[p + 1] - lo;
        for (size_t i = 1; i < x->ranks; i++)
            dpt_world_isend(x->grads[0] + lo, len, (x->rank + i) % x->ranks, TAG_GATHER);
    }
    /* Pieces whose messages arrived, in the update order. */
    for (; x->next_ready < np; x->next_ready++) {
        size_t p = update_piece(x, x->next_ready);
        if (owned(x, p) ? !has(x, p, SUMMED) : x->recv_n[p] == 0) break;
        if (!dpt_world_test(x->recv_first[p], x->recv_n[p])) break;
        atomic_fetch_or_explicit(&x->flags[p], READY, memory_order_release);
    }
}

bool dpt_exchange_next(dpt_exchange_t *x, bool driver, size_t *lo, size_t *hi)
{
    size_t i = atomic_fetch_add_explicit(&x->next_claim, 1, memory_order_relaxed);
    if (i >= x->n_pieces) return false;
    size_t p = update_piece(x, i);
    if (!has(x, p, READY)) {
        double t0 = dpt_world_time();
        while (!has(x, p, READY))
            if (driver) dpt_exchange_drive(x);
        if (driver) x->wait_seconds += dpt_world_time() - t0;
    }
    *lo = x->piece_lo[p], *hi = x->piece_lo[p + 1];
    if (owned(x, p)) {
        dpt_reduce_tree_across(x->grads, x->shards, x->bounds, x->ranks, *lo, *hi);
        atomic_fetch_or_explicit(&x->flags[p], REDUCED, memory_order_release);
        if (driver) dpt_exchange_drive(x);
    }
    return true;
}

dpt_status_t dpt_exchange_end(dpt_exchange_t *x)
{
    double t0 = dpt_world_time();
    size_t mine = x->first_piece[x->rank + 1] - x->first_piece[x->rank];
    while (x->next_send < x->n_pieces || x->next_grecv < x->n_pieces || x->next_gsend < mine ||
           x->next_ready < x->n_pieces)
        dpt_exchange_drive(x);
    dpt_status_t s = dpt_world_wait_all();
    x->wait_seconds += dpt_world_time() - t0;
    return s;
}
