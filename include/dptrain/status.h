/* dptrain status codes and the per-thread last-error message.
 *
 * Every fallible library function returns a dpt_status_t. On failure it also records a
 * one-line message (file, byte offset or row:column, what is wrong) that the caller reads
 * with dpt_last_error() on the same thread. The library never exits or aborts. */
#ifndef DPTRAIN_STATUS_H
#define DPTRAIN_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dpt_status {
    DPT_OK = 0,
    DPT_ERR_INVALID_ARG, /* bad flag, spec string or parameter value */
    DPT_ERR_FORMAT,      /* malformed input file (dataset, checkpoint, CSV) */
    DPT_ERR_IO,          /* file cannot be opened, read or written */
    DPT_ERR_NOMEM,       /* allocation failed */
    DPT_ERR_LIMIT,       /* a size exceeds a configured or sane cap */
    DPT_ERR_UNSUPPORTED, /* a feature that is not available in this build */
    DPT_ERR_DIVERGED,    /* training diverged and could not recover */
    DPT_ERR_INTERNAL,    /* broken invariant: a bug in dptrain */
    DPT_ERR_INTERRUPTED, /* stopped on request (a signal) with a checkpoint: resumable */
    DPT_STATUS_COUNT
} dpt_status_t;

/* Short fixed name of a status ("format error", ...). Never NULL. */
const char *dpt_status_str(dpt_status_t s);

/* Message of the last error recorded on the calling thread ("" if none). The pointer
 * stays valid until the next error on this thread. */
const char *dpt_last_error(void);

/* Records a message for the calling thread and returns s, so that callers can write
 * `return dpt_error(DPT_ERR_FORMAT, "%s: byte %zu: bad magic", path, off);`. */
dpt_status_t dpt_error(dpt_status_t s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears the calling thread's last error. */
void dpt_error_clear(void);

/* Process exit code the CLI uses for a status (documented in docs/errors.md). */
int dpt_status_exit_code(dpt_status_t s);

#ifdef __cplusplus
}
#endif
#endif
