/* Clean stops: SIGTERM, SIGUSR1 and SIGINT make `dptrain train` finish its step, write a
 * checkpoint, say where it stopped and exit 75; resuming ends bitwise equal to a run that was
 * never stopped, whatever the moment of the signal (seeded random moments, and inside each
 * kind of checkpoint write through the LD_PRELOAD shim). A second SIGINT exits at once (130)
 * and the directory still resumes from its last checkpoint. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/rng.h"
#include "dptrain/checkpoint.h"
#include "support.h"

static char *dir, *csv;

/* Starts a run (or resumes it) with stderr in DIR/NAME.err; env_sig/env_nth/env_at set the
 * shim (NULL: no shim). */
static pid_t start(const char *name, int resume, const char *env_sig, const char *env_nth,
                   const char *env_at)
{
    char out[4096], data[4096], err[4200];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    snprintf(data, sizeof data, "csv:%s", csv);
    snprintf(err, sizeof err, "%s/%s.err", dir, name);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen(err, "w", stderr);
        if (env_sig) {
            setenv("LD_PRELOAD", DPT_KILL_SHIM, 1);
            setenv("DPT_KILL_SIGNAL", env_sig, 1);
            setenv("DPT_KILL_NTH", env_nth, 1);
            setenv("DPT_KILL_AT", env_at, 1);
            /* A sanitizer build's runtime wants to be first; the shim only wraps two calls. */
            setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
        }
        if (resume)
            execl(t_dptrain_bin(), "dptrain", "train", "--resume", out, "--quiet", (char *)NULL);
        else
            execl(t_dptrain_bin(), "dptrain", "train", "--data", data, "--val-split", "0.2",
                  "--model", "dense:32,bn,relu,dropout:0.1,dense:3", "--batch-size", "16",
                  "--micro-batch", "8", "--threads", "2", "--epochs", "4", "--lr", "0.05",
                  "--lr-schedule", "cosine:T_max=4", "--log-every", "5", "--quiet", "--out", out,
                  "--overwrite", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static int has_checkpoint(const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/checkpoint.dpt", dir, name);
    return access(path, F_OK) == 0;
}

static char *params_of(const char *name, size_t *n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/checkpoint.dpt", dir, name);
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s", dpt_last_error());
    const void *p = dpt_checkpoint_section(ck, "params", n);
    char *copy = malloc(*n);
    memcpy(copy, p, *n);
    dpt_checkpoint_free(ck);
    return copy;
}

/* Waits until the run holds its directory's lock (a signal before the program has started
 * is the shell's business, not dptrain's); T_STILL_RUNNING or the exit code of a run that
 * already ended. */
static int wait_started(const char *name, pid_t pid)
{
    char run[4200];
    snprintf(run, sizeof run, "%s/%s", dir, name);
    return t_wait_for_lock(run, pid);
}

/* After a stop: exit 75 with the message (or 0 if the run had finished). */
static void check_stopped(const char *name, int rc)
{
    if (rc == 0) return;
    cr_assert_eq(rc, 75, "%s: exit %d", name, rc);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.err", dir, name);
    char *text = t_read_file(path, NULL);
    cr_assert(strstr(text, "interrupted (SIG") &&
                  (strstr(text, "resume with `dptrain train --resume ") ||
                   strstr(text, "before the first checkpoint")),
              "%s: %s", name, text);
    free(text);
}

/* Resumes (or restarts, before any checkpoint) until the run finishes. */
static void finish(const char *name)
{
    for (int i = 0; i < 20; i++) {
        int rc = wait_exit(start(name, has_checkpoint(name), NULL, NULL, NULL));
        if (rc == 0) return;
        cr_assert_fail("%s: resume exited %d", name, rc);
    }
}

static void assert_same_as_reference(const char *name)
{
    size_t n_ref, n;
    char *ref = params_of("whole", &n_ref), *got = params_of(name, &n);
    cr_assert_eq(n, n_ref);
    cr_assert_eq(memcmp(ref, got, n), 0, "%s: parameters differ from the uninterrupted run", name);
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "bash -c 'diff <(cut -d, -f1-8,11- %s/whole/metrics.csv) "
             "<(cut -d, -f1-8,11- %s/%s/metrics.csv) >/dev/null && "
             "cmp -s %s/whole/steps.csv %s/%s/steps.csv'",
             dir, dir, name, dir, dir, name);
    cr_assert_eq(t_system(cmd), 0, "%s: metrics.csv or steps.csv differ", name);
    free(ref), free(got);
}

static double ref_seconds; /* the uninterrupted run's wall time, to place the signals */

static void setup(void)
{
    dir = t_make_tmpdir("signals");
    csv = t_write_threshold_table(dir, 1500, 12, 23);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert_eq(wait_exit(start("whole", 0, NULL, NULL, NULL)), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    ref_seconds = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
}

TestSuite(signals, .init = setup, .timeout = 300);

/* A stop request in the middle of each kind of checkpoint write (the first two epoch-end
 * checkpoints and best copies): the write completes, the run stops, resume is exact. */
Test(signals, sigterm_during_checkpoint_writes)
{
    const char *ats[] = {"open", "bytes:3000", "rename", "renamed"};
    const char *nths[] = {"1", "2", "3"};
    int stopped = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "w-%zu-%zu", a, k);
            int rc = wait_exit(start(name, 0, "TERM", nths[k], ats[a]));
            check_stopped(name, rc);
            stopped += rc == 75;
            finish(name);
            assert_same_as_reference(name);
        }
    cr_assert_gt(stopped, 6, "the shim's signal stopped only %d runs", stopped);
}

/* SIGTERM and SIGUSR1 at seeded random moments, several per run. The moments are fractions of
 * the reference run's time; on a shared machine a run may go faster than that run did, so a
 * run that finishes before its first signal is started again with the moments halved. */
Test(signals, signals_at_random_moments_then_resume_is_exact)
{
    dpt_rng_t r;
    dpt_rng_seed(&r, 99, 1);
    int stops = 0;
    for (int trial = 0; trial < 4; trial++) {
        char name[64];
        snprintf(name, sizeof name, "rand%d", trial);
        double scale = 0.6 * ref_seconds;
        int trial_stops = 0, fresh = 1;
        for (int round = 0; round < 40; round++) {
            pid_t pid = start(name, !fresh && has_checkpoint(name), NULL, NULL, NULL);
            fresh = 0;
            int rc = wait_started(name, pid);
            if (rc == T_STILL_RUNNING) {
                /* from data loading (before any checkpoint) to late in training */
                double delay = dpt_rng_uniform(&r) * scale;
                struct timespec d = {(time_t)delay, (long)((delay - (time_t)delay) * 1e9)};
                nanosleep(&d, NULL);
                kill(pid, (trial + round) % 2 ? SIGUSR1 : SIGTERM);
                rc = wait_exit(pid);
            }
            check_stopped(name, rc);
            trial_stops += rc == 75;
            if (rc == 0 && trial_stops > 0) break;
            if (rc == 0) { /* finished before the signal: again, from scratch, sooner */
                scale /= 2;
                fresh = 1;
            }
        }
        cr_assert_gt(trial_stops, 0, "%s: no run was stopped by a signal", name);
        stops += trial_stops;
        finish(name);
        assert_same_as_reference(name);
    }
    cr_assert_geq(stops, 4, "only %d runs were stopped by a signal", stops);
}

/* Two SIGINTs: the second exits at once with 130; the directory resumes as usual. */
Test(signals, second_sigint_exits_at_once)
{
    const char *name = "int2";
    pid_t pid = start(name, 0, NULL, NULL, NULL);
    cr_assert_eq(wait_started(name, pid), T_STILL_RUNNING);
    double delay = 0.3 * ref_seconds;
    struct timespec d = {(time_t)delay, (long)((delay - (time_t)delay) * 1e9)};
    nanosleep(&d, NULL);
    kill(pid, SIGINT);
    kill(pid, SIGINT);
    int rc = wait_exit(pid);
    cr_assert(rc == 130 || rc == 75 || rc == 0, "exit %d", rc);
    finish(name);
    assert_same_as_reference(name);
}
