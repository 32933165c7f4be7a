/* A run directory's ownership: creating it, one writer at a time (an flock'd lock file the
 * kernel releases when the process dies), and never replacing an earlier run silently. */
#ifndef DPT_IO_RUN_DIR_H
#define DPT_IO_RUN_DIR_H

#include <stdbool.h>

#include "dptrain/status.h"

/* The lock file inside a run directory; it holds the writer's pid as text. */
#define DPT_RUN_LOCK_FILE ".dptrain.lock"

typedef struct dpt_run_dir dpt_run_dir_t;

/* Creates dir (and its parents), takes its lock, and checks what is there:
 *   - another process holds the lock: DPT_ERR_INVALID_ARG naming its pid;
 *   - not resuming and the directory holds a run (config.txt, metrics.csv or a checkpoint):
 *     DPT_ERR_INVALID_ARG saying what is there and the choices (--resume, --overwrite, another
 *     --out), unless overwrite, which deletes that run's files (saying so on stderr unless
 *     quiet) and keeps everything else in the directory.
 * The lock is held until dpt_run_dir_close (or the process ends). */
dpt_status_t dpt_run_dir_open(const char *dir, bool resume, bool overwrite, bool quiet,
                              dpt_run_dir_t **out);
/* Releases the lock. NULL is a no-op. */
void dpt_run_dir_close(dpt_run_dir_t *d);

#endif
