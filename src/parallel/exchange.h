/* The pipelined gradient exchange across ranks: the reduce-scatter of the tree's roots, the
 * spanning nodes and the gather of the reduced gradient, cut into pieces of parameters so
 * that piece k travels while piece k + 1 is summed and piece k - 1 is updated. The sums are
 * exactly those of dpt_world_scatter_roots + dpt_reduce_tree_across + allgather (the same
 * tree nodes on the same floats); only the schedule changes.
 *
 * Pieces: each rank's parameter chunk (dpt_world_chunk_bounds) cut into DPT_EXCHANGE_PIECE
 * floats. Two orders over them: the inside order (the next rank's chunk first, this rank's
 * own last, so that what must travel is summed first) and the update order (this rank's own
 * chunk first, because the other ranks wait for it, then the next rank's, ...).
 *
 * Threads: dpt_exchange_begin, _drive and _end on the thread that initialised the world (MPI
 * is MPI_THREAD_FUNNELED); _inside and _next on any thread of the step's team, each piece
 * once. Progress flags are C11 atomics (release/acquire), so no lock is taken. */
#ifndef DPT_PARALLEL_EXCHANGE_H
#define DPT_PARALLEL_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "dptrain/status.h"

/* Floats of one piece: 16 reduction chunks (128 KiB), a few pieces per rank's chunk for the
 * small models (the MLP's 235k parameters: 4 pieces a rank at 2 ranks). */
#define DPT_EXCHANGE_PIECE (16 * 2048)

typedef struct dpt_exchange dpt_exchange_t;

dpt_status_t dpt_exchange_create(size_t n_params, size_t rank, size_t ranks, dpt_exchange_t **out);
void dpt_exchange_free(dpt_exchange_t *x);
size_t dpt_exchange_pieces(const dpt_exchange_t *x);

/* Before the step's region: the step's shard buffers grads[0..shards) and shard blocks
 * (ranks + 1 bounds); posts the receives of the other ranks' roots of this rank's chunk. */
dpt_status_t dpt_exchange_begin(dpt_exchange_t *x, float *const *grads, size_t shards,
                                const size_t *bounds);
/* Item i < pieces of the inside order: the tree nodes inside this rank's block on that piece
 * (dpt_reduce_tree_inside), then marks it summed. */
void dpt_exchange_inside(dpt_exchange_t *x, size_t i);
/* Posts what has become possible (sends of summed pieces, sends of reduced pieces, receives
 * of gathered pieces) and marks pieces whose messages arrived as ready. Never blocks. */
void dpt_exchange_drive(dpt_exchange_t *x);
/* Claims the next piece of the update order, waits until it is ready (driving the exchange
 * while it waits when `driver`), completes the tree on it when this rank owns it, and gives
 * its range [*lo, *hi) of the reduced gradient in grads[0]. False when none is left. */
bool dpt_exchange_next(dpt_exchange_t *x, bool driver, size_t *lo, size_t *hi);
/* The driving thread, after its last _next: drives until every message is posted, then
 * waits for them all. */
dpt_status_t dpt_exchange_end(dpt_exchange_t *x);
/* Seconds the driving thread spent waiting for messages in the last step. */
double dpt_exchange_wait_seconds(const dpt_exchange_t *x);

#endif
