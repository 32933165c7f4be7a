/* The world: the processes of one training job (MPI ranks), the one seam between dptrain and
 * MPI. With one process (no launcher, or a build without MPI) every call is a no-op that
 * returns at once, so the trainer and the run call it unconditionally.
 *
 * Threading: MPI is initialised with MPI_THREAD_FUNNELED; every function here is called by
 * the thread that called dpt_world_init (the driving thread: outside parallel regions, or as
 * thread 0 of the step's region for the non-blocking messages of the pipelined exchange).
 *
 * Faults: errors on the communicator are fatal (MPI_ERRORS_ARE_FATAL), so a rank that dies
 * makes the launcher end the job; a rank that fails on its own (an I/O error, ...) calls
 * dpt_world_abort. Nothing here ever waits for a rank that is gone. */
#ifndef DPT_PARALLEL_WORLD_H
#define DPT_PARALLEL_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

/* Most ranks a job may have (the reduction tree has at most 4096 shards anyway). */
#define DPT_WORLD_MAX_RANKS 1024

/* Joins the job when a launcher started this process (mpirun/mpiexec: OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK; srun: PMI_RANK or SLURM_STEP_ID with PMIX); otherwise stays alone without
 * touching MPI. Idempotent. */
dpt_status_t dpt_world_init(int *argc, char ***argv);
/* Leaves the job (MPI_Finalize) after a collective end: every rank calls it. */
void dpt_world_finalize(void);
/* Ends every rank of the job now with exit code `code` (MPI_Abort); a no-op when alone. */
void dpt_world_abort(int code);

size_t dpt_world_rank(void);
size_t dpt_world_size(void);
/* Whether this build can run across processes (built with MPI). */
bool dpt_world_built_with_mpi(void);
/* The MPI library's version line, or "none". */
const char *dpt_world_mpi_version(void);

/* Shards [bounds[r], bounds[r + 1]) of a step's n shards belong to rank r: contiguous,
 * balanced blocks (bounds has ranks + 1 entries). Parameters [chunk[r], chunk[r + 1]) of n
 * floats are rank r's chunk in the exchange, cut at 16-float (64-byte) boundaries. */
void dpt_world_shard_bounds(size_t n, size_t ranks, size_t *bounds);
void dpt_world_chunk_bounds(size_t n, size_t ranks, size_t *chunk);

/* The reduce-scatter half of the gradient exchange. grads[s] is shard s's buffer (n floats)
 * for every s < n_shards; this rank's block of shards has been reduced inside
 * (dpt_reduce_tree_inside). Sends each of this rank's roots' chunk r to rank r and receives
 * every other rank's roots of this rank's chunk into grads[root] (buffers of shards this rank
 * does not own), with point-to-point messages; no arithmetic. Afterwards
 * dpt_reduce_tree_across on this rank's chunk completes the one-process tree there. */
dpt_status_t dpt_world_scatter_roots(float *const *grads, size_t n_shards, const size_t *bounds,
                                     const size_t *chunk);
/* Non-blocking messages of floats (the pipelined exchange, src/parallel/exchange.h): a pool of
 * requests, numbered in posting order from 0 since the last dpt_world_wait_all. Reserve room
 * first (grows only); post; test a run of them; wait for all, which empties the pool. Alone,
 * nothing is posted and every test is true. Buffers must stay untouched until completion. */
dpt_status_t dpt_world_requests_reserve(size_t n);
size_t dpt_world_requests_posted(void);
void dpt_world_isend(const float *buf, size_t n, size_t to, int tag);
void dpt_world_irecv(float *buf, size_t n, size_t from, int tag);
/* Whether requests [first, first + count) are all complete (count 0: true). */
bool dpt_world_test(size_t first, size_t count);
dpt_status_t dpt_world_wait_all(void);
/* The allgather half: every rank's chunk of buf (n floats, its own chunk filled) to every
 * rank. */
dpt_status_t dpt_world_allgather_chunks(float *buf, const size_t *chunk);
/* Every rank's block of per-shard records (elem bytes each; block r is shards
 * [bounds[r], bounds[r + 1])) to every rank, in place. */
dpt_status_t dpt_world_allgather_blocks(void *buf, size_t elem, const size_t *bounds);
/* The largest of every rank's v (exact, so any order is fine). */
int dpt_world_max_int(int v);
/* Sums of n uint64 counters over ranks (exact). */
dpt_status_t dpt_world_sum_u64(uint64_t *v, size_t n);
/* Rank `root`'s bytes (len bytes, the same len everywhere) to every rank. */
dpt_status_t dpt_world_broadcast(void *buf, size_t len, size_t root);
/* Waits for every rank. */
dpt_status_t dpt_world_barrier(void);
/* Seconds on a monotonic clock (MPI_Wtime when joined). */
double dpt_world_time(void);

/* A collective error: every rank returns the same status and message, so only rank 0 needs
 * to print it. The CLI asks this before printing on the other ranks. */
void dpt_world_set_shared_error(bool shared);
bool dpt_world_shared_error(void);

#endif
