/* Owns status names, exit codes and the per-thread last-error message. */
#include "dptrain/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

const char *dpt_status_str(dpt_status_t s)
{
    static const char *const names[DPT_STATUS_COUNT] = {
        [DPT_OK] = "ok",
        [DPT_ERR_INVALID_ARG] = "invalid argument",
        [DPT_ERR_FORMAT] = "format error",
        [DPT_ERR_IO] = "I/O error",
        [DPT_ERR_NOMEM] = "out of memory",
        [DPT_ERR_LIMIT] = "limit exceeded",
        [DPT_ERR_UNSUPPORTED] = "unsupported",
        [DPT_ERR_DIVERGED] = "training diverged",
        [DPT_ERR_INTERNAL] = "internal error",
        [DPT_ERR_INTERRUPTED] = "interrupted",
    };
    if ((unsigned)s >= DPT_STATUS_COUNT) return "unknown status";
    return names[s];
}

const char *dpt_last_error(void)
{
    return last_error;
}

dpt_status_t dpt_error(dpt_status_t s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

void dpt_error_clear(void)
{
    last_error[0] = '\0';
}

int dpt_status_exit_code(dpt_status_t s)
{
    /* 2 is reserved for command-line usage errors (see src/cli). */
    switch (s) {
    case DPT_OK:
        return 0;
    case DPT_ERR_INVALID_ARG:
        return 2;
    case DPT_ERR_FORMAT:
        return 3;
    case DPT_ERR_IO:
        return 4;
    case DPT_ERR_NOMEM:
        return 5;
    case DPT_ERR_LIMIT:
        return 5;
    case DPT_ERR_UNSUPPORTED:
        return 6;
    case DPT_ERR_DIVERGED:
        return 7;
    case DPT_ERR_INTERRUPTED:
        return 75; /* sysexits' EX_TEMPFAIL: stopped, run it again (with --resume) */
    default:
        return 1;
    }
}
