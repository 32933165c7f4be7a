/* The per-step log of a run (steps.csv: step,epoch,lr,loss every N steps): appending, rewinding
 * the rows of a rolled-back epoch, and dropping rows past the step a resumed run restarts from.
 * Internal to the library; the run (src/train/run.c) is its only user. Not thread-safe. */
#ifndef DPT_IO_STEP_LOG_H
#define DPT_IO_STEP_LOG_H

#include <stdint.h>

#include "dptrain/status.h"

#define DPT_STEP_LOG_HEADER "step,epoch,lr,loss\n"

typedef struct dpt_step_log dpt_step_log_t;

/* resume_step < 0: creates (truncates) path and writes the header. resume_step >= 0: keeps the
 * header and the rows with step <= resume_step of an existing file (rows past it, a final line
 * cut short and anything after are cut off), or creates the file when there is none. A file
 * with another header is DPT_ERR_FORMAT. The caller owns *out (dpt_step_log_close). */
dpt_status_t dpt_step_log_open(const char *path, int64_t resume_step, dpt_step_log_t **out);

/* Appends one row (stdio-buffered: no system call per row). lr and loss as their shortest
 * round-trip text (core/fmt.h); a non-finite loss as an empty field, like metrics.csv. */
dpt_status_t dpt_step_log_write(dpt_step_log_t *l, uint64_t step, uint64_t epoch, double lr,
                                double loss);

/* Remembers the current end of the file (the start of an epoch) ... */
dpt_status_t dpt_step_log_mark(dpt_step_log_t *l);
/* ... and cuts the file back to it (the epoch was rolled back and runs again). */
dpt_status_t dpt_step_log_rewind(dpt_step_log_t *l);

/* fflush + fsync: called before a checkpoint, so every row up to it survives a crash. */
dpt_status_t dpt_step_log_sync(dpt_step_log_t *l);

/* Flushes, closes and frees. NULL is a no-op. */
void dpt_step_log_close(dpt_step_log_t *l);

#endif
