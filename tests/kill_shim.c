/* LD_PRELOAD shim for test_kill_during_write: SIGKILLs the process at a chosen moment of the
 * K-th checkpoint temp file ("*.dpt.tmp.*") it writes, deterministically.
 *   DPT_KILL_NTH=K     which temp file (1-based, in the order they are first written)
 *   DPT_KILL_AT=open   at its first write (the file exists, empty)
 *              bytes:B after B bytes of it are written (the write crossing B is cut short)
 *              rename  instead of renaming it over the checkpoint (full temp file left)
 *              renamed right after the rename (before the directory fsync)
 *   DPT_KILL_SIGNAL=TERM|INT|USR1  send that signal instead, once, and carry on writing (a
 *              stop request arriving in the middle of a checkpoint write: test_signals)
 *   DPT_KILL_SIGNAL=ENOSPC  instead, from that moment on every write to that temp file fails
 *              with ENOSPC (a disk that fills up: test_kill_during_write)
 * A write's file is found through /proc/self/fd: slow, but only tests load this. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static char current[4096]; /* name of the temp file written last */
static long nth;           /* its number */
static unsigned long long written;

static long want_nth(void)
{
    const char *k = getenv("DPT_KILL_NTH");
    return k ? atol(k) : 0;
}

static const char *kill_at(void)
{
    const char *a = getenv("DPT_KILL_AT");
    return a ? a : "open";
}

static int disk_full(void)
{
    const char *s = getenv("DPT_KILL_SIGNAL");
    return s && !strcmp(s, "ENOSPC");
}

/* The signal to send instead of SIGKILL, or 0. */
static int soft_signal(void)
{
    const char *s = getenv("DPT_KILL_SIGNAL");
    if (!s || disk_full()) return 0;
    return !strcmp(s, "TERM") ? SIGTERM : !strcmp(s, "INT") ? SIGINT : SIGUSR1;
}

static int failing; /* ENOSPC mode: the chosen temp file's writes fail from now on */

/* SIGKILL (never returns), or the soft signal once (returns; the write goes on whole). */
static void die(void)
{
    static int sent;
    if (disk_full()) {
        failing = 1;
        return;
    }
    int sig = soft_signal();
    if (sig) {
        if (!sent) kill(getpid(), sig);
        sent = 1;
        return;
    }
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

static int is_temp(const char *name)
{
    return strstr(name, ".dpt.tmp.") != NULL;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    char link[64], name[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = fd > 2 ? readlink(link, name, sizeof name - 1) : -1;
    if (len <= 0) return real(fd, buf, n);
    name[len] = '\0';
    if (!is_temp(name)) return real(fd, buf, n);
    if (strcmp(name, current) != 0) {
        snprintf(current, sizeof current, "%s", name);
        nth++;
        written = 0;
    }
    if (nth != want_nth()) return real(fd, buf, n);
    if (failing) {
        errno = ENOSPC;
        return -1;
    }
    const char *at = kill_at();
    if (!strcmp(at, "open")) die();
    if (failing) {
        errno = ENOSPC;
        return -1;
    }
    if (!strncmp(at, "bytes:", 6)) {
        unsigned long long limit = strtoull(at + 6, NULL, 10);
        if (written + n >= limit && !soft_signal() && !disk_full()) {
            if (limit > written) real(fd, buf, (size_t)(limit - written));
            die();
        }
        if (written + n >= limit) die(); /* soft: signal, then write it all */
        if (failing) {
            errno = ENOSPC;
            return -1;
        }
    }
    ssize_t w = real(fd, buf, n);
    if (w > 0) written += (unsigned long long)w;
    return w;
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (!is_temp(from) || nth != want_nth()) return real(from, to);
    if (!strcmp(kill_at(), "rename")) die();
    int rc = real(from, to);
    if (!strcmp(kill_at(), "renamed")) die();
    return rc;
}
