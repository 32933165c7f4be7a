/* Helpers shared by the Criterion suites: scratch directories and fixture files that the
 * tests generate in the real formats. */
#ifndef DPT_TEST_SUPPORT_H
#define DPT_TEST_SUPPORT_H

#include <stddef.h>

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
/* Path of the built dptrain binary. */
const char *t_dptrain_bin(void);

#endif
