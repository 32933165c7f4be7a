/* Helpers shared by the Criterion suites: scratch directories and fixture files that the
 * tests generate in the real formats. */
#ifndef DPT_TEST_SUPPORT_H
#define DPT_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "dptrain/status.h"

/* The status and a substring of the one-line message an operation must fail with; the
 * message must not end in a newline. */
#define assert_fails(expr, status, substr)                                                         \
    do {                                                                                           \
        dpt_status_t s_ = (expr);                                                                  \
        const char *m_ = dpt_last_error();                                                         \
        cr_assert_eq(s_, (status), "status %d, message: %s", (int)s_, m_);                         \
        cr_assert_not_null(strstr(m_, (substr)), "message '%s' lacks '%s'", m_, (substr));         \
        cr_assert(m_[0] && m_[strlen(m_) - 1] != '\n', "message ends in a newline: '%s'", m_);     \
    } while (0)

/* A scratch directory of the running test (each test runs in its own process), removed by
 * t_remove_scratch, which suites use as their .fini hook. At most 8 per test. */
char *t_scratch_dir(const char *tag);
void t_remove_scratch(void);

/* A fresh empty directory under $TMPDIR (or /tmp), unique per call; returns a static-owned
 * malloc'd path the caller may free. Aborts the test on failure. */
char *t_make_tmpdir(const char *tag);
/* Joins dir and name into a malloc'd path. */
char *t_path(const char *dir, const char *name);
/* Writes bytes to path (raw), or gzip-compressed when gz is non-zero. */
void t_write_file(const char *path, const void *data, size_t n, int gz);
/* Writes a NUL-terminated string to path. */
void t_write_text(const char *path, const char *text);
/* Reads a whole file into a malloc'd NUL-terminated buffer; *n gets its length. */
char *t_read_file(const char *path, size_t *n);
/* Runs a shell command, returns its exit status (WEXITSTATUS) or -1. */
int t_system(const char *cmd);
/* Runs `dptrain ARGS` (ARGS as a shell would split them) with stdout and stderr captured
 * into *out (malloc'd); returns the exit code. */
int t_run_dptrain(const char *args, char **out);
/* Writes DIR/table.csv: a header and 400 rows of 6 seeded features and a label in {0,1,2}
 * that depends on them (learnable); returns the malloc'd path. */
char *t_write_class_table(const char *dir);
/* Writes DIR/t.csv without a header: `rows` rows of `features` seeded uniform features and a
 * label in {0,1,2} from the sum of the first half minus the second (thresholds +-0.3);
 * returns the malloc'd path. */
char *t_write_threshold_table(const char *dir, int rows, int features, uint64_t seed);
/* Writes DIR/table.csv without a header: `rows` rows of `classes` * 5 seeded features in
 * [-1, 1) and a label = the group of 5 consecutive features with the largest sum (learnable
 * and noisy); returns the malloc'd path. */
char *t_write_group_table(const char *dir, int rows, int classes, uint64_t seed);
/* Path of the built dptrain binary. */
const char *t_dptrain_bin(void);

/* Waits until the `dptrain train` process pid holds the lock of run_dir (its lock file names
 * it: the run's signal handlers are in place by then). Returns T_STILL_RUNNING, or the exit
 * code (negative signal number when killed) of a process that ended first, which it reaps.
 * Fails the test after about a minute. */
#define T_STILL_RUNNING (-1000)
int t_wait_for_lock(const char *run_dir, pid_t pid);

#endif
