/* Owns the world: MPI, when a launcher started this process, behind the small interface of
 * world.h; every other file of dptrain is MPI-free. Built without MPI (DPT_HAVE_MPI unset),
 * the world is always one process. */
#include "parallel/world.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel/reducer.h"

#ifdef DPT_HAVE_MPI
#include <mpi.h>
#endif

static size_t world_rank, world_size = 1;
static bool joined, shared_error;

bool dpt_world_built_with_mpi(void)
{
#ifdef DPT_HAVE_MPI
    return true;
#else
    return false;
#endif
}

size_t dpt_world_rank(void)
{
    return world_rank;
}
size_t dpt_world_size(void)
{
    return world_size;
}
void dpt_world_set_shared_error(bool shared)
{
    shared_error = shared;
}
bool dpt_world_shared_error(void)
{
    return shared_error;
}

void dpt_world_shard_bounds(size_t n, size_t ranks, size_t *bounds)
{
    for (size_t r = 0; r <= ranks; r++)
        bounds[r] = r * n / ranks;
}

void dpt_world_chunk_bounds(size_t n, size_t ranks, size_t *chunk)
{
    for (size_t r = 0; r < ranks; r++) {
        size_t c = (r * n / ranks) & ~(size_t)15;
        chunk[r] = c < n ? c : n;
    }
    chunk[ranks] = n;
}

/* DPT_WORLD=single keeps a launched process alone (e.g. a tool run under mpirun by hand). */
static bool forced_single(void)
{
    const char *w = getenv("DPT_WORLD");
    return w && !strcmp(w, "single");
}

/* A launcher started this process: Open MPI's mpirun (OMPI_COMM_WORLD_SIZE), a PMIx
 * launcher such as srun --mpi=pmix (PMIX_RANK), or a PMI-1/2 one (PMI_RANK). */
static bool launched(void)
{
    if (forced_single()) return false;
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

/* srun sets SLURM_STEP_NUM_TASKS in every task of a step (not in a batch script). Several
 * tasks with neither PMIx nor PMI (srun --mpi=none, Slurm's default MpiDefault) would each
 * train alone, racing for one run directory: refuse, naming the fix. */
static dpt_status_t tasks_without_launcher(void)
{
    const char *n = getenv("SLURM_STEP_NUM_TASKS");
    if (forced_single() || !n || atol(n) <= 1) return DPT_OK;
    return dpt_error(DPT_ERR_INVALID_ARG,
                     "srun started %s tasks without an MPI plugin, so each would train alone: "
                     "run srun --mpi=pmix (or set MpiDefault=pmix in slurm.conf)",
                     n);
}

#ifdef DPT_HAVE_MPI

static MPI_Request *pool;
static size_t pool_cap, pool_n;

static dpt_status_t mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
    return dpt_error(DPT_ERR_IO, "MPI %s failed: %s", what, msg);
}

dpt_status_t dpt_world_init(int *argc, char ***argv)
{
    if (joined) return DPT_OK;
    if (!launched()) return tasks_without_launcher();
    int provided = 0, rank = 0, size = 1;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init_thread");
    joined = true;
    /* A rank that dies takes the job with it: never wait for one that is gone. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided < MPI_THREAD_FUNNELED)
        return dpt_error(DPT_ERR_UNSUPPORTED, "the MPI library gives no MPI_THREAD_FUNNELED");
    if (size > DPT_WORLD_MAX_RANKS)
        return dpt_error(DPT_ERR_LIMIT, "%d ranks: at most %d are supported", size,
                         DPT_WORLD_MAX_RANKS);
    world_rank = (size_t)rank;
    world_size = (size_t)size;
    return DPT_OK;
}

void dpt_world_finalize(void)
{
    if (!joined) return;
    free(pool);
    pool = NULL, pool_cap = pool_n = 0;
    MPI_Finalize();
    joined = false;
}

void dpt_world_abort(int code)
{
    if (joined) MPI_Abort(MPI_COMM_WORLD, code);
}

const char *dpt_world_mpi_version(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    char *nl = strchr(v, '\n');
    if (nl) *nl = '\0';
    char *comma = strchr(v, ',');
    if (comma) *comma = '\0';
    return v;
}

dpt_status_t dpt_world_scatter_roots(float *const *grads, size_t n_shards, const size_t *bounds,
                                     const size_t *chunk)
{
    if (world_size == 1) return DPT_OK;
    static MPI_Request req[2 * 128 * DPT_WORLD_MAX_RANKS];
    size_t roots[128], n_req = 0;
    const size_t me = world_rank;
    const int my_len = (int)(chunk[me + 1] - chunk[me]);
    /* Receives first, in rank and root order: every other rank's roots of my chunk land in
     * the buffers of their shard positions, which this rank does not own. */
    for (size_t q = 0; q < world_size; q++) {
        if (q == me) continue;
        size_t k = dpt_reduce_roots(n_shards, bounds[q], bounds[q + 1], roots);
        for (size_t j = 0; j < k && my_len; j++)
            MPI_Irecv(grads[roots[j]] + chunk[me], my_len, MPI_FLOAT, (int)q, (int)roots[j],
                      MPI_COMM_WORLD, &req[n_req++]);
    }
    /* Then sends, starting with the next rank, so that ranks do not all queue on rank 0. */
    size_t k = dpt_reduce_roots(n_shards, bounds[me], bounds[me + 1], roots);
    for (size_t i = 1; i < world_size; i++) {
        size_t q = (me + i) % world_size;
        int len = (int)(chunk[q + 1] - chunk[q]);
        for (size_t j = 0; j < k && len; j++)
            MPI_Isend(grads[roots[j]] + chunk[q], len, MPI_FLOAT, (int)q, (int)roots[j],
                      MPI_COMM_WORLD, &req[n_req++]);
    }
    int rc = MPI_Waitall((int)n_req, req, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_fail(rc, "gradient exchange");
}

dpt_status_t dpt_world_requests_reserve(size_t n)
{
    if (pool_n + n <= pool_cap) return DPT_OK;
    size_t cap = pool_n + n;
    MPI_Request *p = realloc(pool, cap * sizeof *p);
    if (!p) return dpt_error(DPT_ERR_NOMEM, "out of memory for %zu MPI requests", cap);
    pool = p, pool_cap = cap;
    return DPT_OK;
}

size_t dpt_world_requests_posted(void)
{
    return pool_n;
}

/* Room was reserved: a post past it is a bug in the caller. MPI errors are fatal, so the
 * return codes carry nothing. */
void dpt_world_isend(const float *buf, size_t n, size_t to, int tag)
{
    if (pool_n >= pool_cap) dpt_world_abort(70);
    MPI_Isend(buf, (int)n, MPI_FLOAT, (int)to, tag, MPI_COMM_WORLD, &pool[pool_n++]);
}

void dpt_world_irecv(float *buf, size_t n, size_t from, int tag)
{
    if (pool_n >= pool_cap) dpt_world_abort(70);
    MPI_Irecv(buf, (int)n, MPI_FLOAT, (int)from, tag, MPI_COMM_WORLD, &pool[pool_n++]);
}

bool dpt_world_test(size_t first, size_t count)
{
    if (!count) return true;
    int flag = 0;
    MPI_Testall((int)count, pool + first, &flag, MPI_STATUSES_IGNORE);
    return flag != 0;
}

dpt_status_t dpt_world_wait_all(void)
{
    int rc = pool_n ? MPI_Waitall((int)pool_n, pool, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    pool_n = 0;
    return rc == MPI_SUCCESS ? DPT_OK : mpi_fail(rc, "pipelined gradient exchange");
}

/* Counts and displacements of blocks [lo[r], lo[r + 1]) of elem bytes: MPI_BYTE counts. */
static void block_counts(const size_t *lo, size_t elem, int *counts, int *displs)
{
    for (size_t r = 0; r < world_size; r++) {
        counts[r] = (int)((lo[r + 1] - lo[r]) * elem);
        displs[r] = (int)(lo[r] * elem);
    }
}

dpt_status_t dpt_world_allgather_chunks(float *buf, const size_t *chunk)
{
    if (world_size == 1) return DPT_OK;
    static int counts[DPT_WORLD_MAX_RANKS], displs[DPT_WORLD_MAX_RANKS];
    for (size_t r = 0; r < world_size; r++) {
        counts[r] = (int)(chunk[r + 1] - chunk[r]);
        displs[r] = (int)chunk[r];
    }
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                            MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_fail(rc, "allgather of the reduced gradient");
}

dpt_status_t dpt_world_allgather_blocks(void *buf, size_t elem, const size_t *bounds)
{
    if (world_size == 1) return DPT_OK;
    static int counts[DPT_WORLD_MAX_RANKS], displs[DPT_WORLD_MAX_RANKS];
    block_counts(bounds, elem, counts, displs);
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_BYTE,
                            MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_fail(rc, "allgather of per-shard results");
}

int dpt_world_max_int(int v)
{
    if (world_size == 1) return v;
    int out = v;
    MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return out;
}

dpt_status_t dpt_world_sum_u64(uint64_t *v, size_t n)
{
    if (world_size == 1) return DPT_OK;
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_fail(rc, "sum of counters");
}

dpt_status_t dpt_world_broadcast(void *buf, size_t len, size_t root)
{
    if (world_size == 1) return DPT_OK;
    int rc = MPI_Bcast(buf, (int)len, MPI_BYTE, (int)root, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_fail(rc, "broadcast");
}

dpt_status_t dpt_world_barrier(void)
{
    if (world_size == 1) return DPT_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? DPT_OK : mpi_fail(rc, "barrier");
}

double dpt_world_time(void)
{
    if (joined) return MPI_Wtime();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#else /* one process, always */

dpt_status_t dpt_world_init(int *argc, char ***argv)
{
    if (!launched()) return tasks_without_launcher();
    return dpt_error(DPT_ERR_UNSUPPORTED,
                     "started by an MPI launcher, but this dptrain was built without MPI "
                     "(install libopenmpi-dev and configure with -DDPT_MPI=ON)");
}
void dpt_world_finalize(void) {}
void dpt_world_abort(int code) {}
const char *dpt_world_mpi_version(void)
{
    return "none";
}
dpt_status_t dpt_world_scatter_roots(float *const *grads, size_t n_shards, const size_t *bounds,
                                     const size_t *chunk)
{
    return DPT_OK;
}
dpt_status_t dpt_world_requests_reserve(size_t n)
{
    return DPT_OK;
}
size_t dpt_world_requests_posted(void)
{
    return 0;
}
void dpt_world_isend(const float *buf, size_t n, size_t to, int tag) {}
void dpt_world_irecv(float *buf, size_t n, size_t from, int tag) {}
bool dpt_world_test(size_t first, size_t count)
{
    return true;
}
dpt_status_t dpt_world_wait_all(void)
{
    return DPT_OK;
}
dpt_status_t dpt_world_allgather_chunks(float *buf, const size_t *chunk)
{
    return DPT_OK;
}
dpt_status_t dpt_world_allgather_blocks(void *buf, size_t elem, const size_t *bounds)
{
    return DPT_OK;
}
int dpt_world_max_int(int v)
{
    return v;
}
dpt_status_t dpt_world_sum_u64(uint64_t *v, size_t n)
{
    return DPT_OK;
}
dpt_status_t dpt_world_broadcast(void *buf, size_t len, size_t root)
{
    return DPT_OK;
}
dpt_status_t dpt_world_barrier(void)
{
    return DPT_OK;
}
double dpt_world_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
