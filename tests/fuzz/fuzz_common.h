/* Shared by the libFuzzer targets: a private scratch directory (in /dev/shm when it exists, so
 * the parsers' fsyncs and rewrites cost nothing) and helpers that turn fuzz bytes into files.
 * Every target feeds the public (or loader) API the bytes exactly as a user's file would. */
#ifndef DPT_FUZZ_COMMON_H
#define DPT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dptrain/status.h"

/* The scratch directory, created on first use and kept for the process. */
static inline const char *fz_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/dpt-fuzz-XXXXXX", base);
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* dir/name into out (cap bytes). */
static inline const char *fz_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", fz_dir(), name);
    return out;
}

/* Writes n bytes to path (replacing it); aborts on failure, which is a harness bug. */
static inline void fz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) abort();
}

/* Every failure must leave a message behind: a parser that returns an error without one
 * would give the user a blank line. */
static inline void fz_check_status(dpt_status_t s)
{
    if (s == DPT_OK) return;
    if (s <= DPT_OK || s >= DPT_STATUS_COUNT) abort();
    if (!dpt_last_error()[0]) abort();
}

#endif
