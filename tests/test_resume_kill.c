/* Exact resume after a real SIGKILL at arbitrary moments (mid-epoch, mid-checkpoint write):
 * whatever the moment, resuming until done ends bitwise equal to an uninterrupted run. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dptrain/checkpoint.h"
#include "support.h"

#define EPOCHS "12"

static char *dir, *csv;

/* Starts `dptrain train` for run `name` (or --resume it) and returns its pid; every > 0 adds
 * --checkpoint-every-steps (mid-epoch checkpoints: resumes then start inside an epoch). A
 * fresh start passes --overwrite: a run killed before its first checkpoint left a directory
 * that is started again, not resumed. */
static pid_t start(const char *name, int resume, const char *every)
{
    char out[4096], data[4096];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    snprintf(data, sizeof data, "csv:%s", csv);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        if (resume)
            execl(t_dptrain_bin(), "dptrain", "train", "--resume", out, "--quiet", (char *)NULL);
        else
            execl(t_dptrain_bin(), "dptrain", "train", "--data", data, "--val-split", "0.2",
                  "--model", "dense:64,bn,relu,dropout:0.1,dense:32,relu,dense:3", "--batch-size",
                  "16", "--micro-batch", "8", "--threads", "2", "--epochs", EPOCHS, "--lr", "0.02",
                  "--lr-schedule", "cosine:T_max=" EPOCHS, "--quiet", "--out", out,
                  "--checkpoint-every-steps", every, "--overwrite", (char *)NULL);
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

static char *final_params(const char *name, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/checkpoint.dpt", dir, name);
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s", dpt_last_error());
    const void *p = dpt_checkpoint_section(ck, "params", n);
    char *copy = malloc(*n);
    memcpy(copy, p, *n);
    dpt_checkpoint_free(ck);
    return copy;
}

/* Data rows in the run's metrics.csv (0 when it does not exist yet). */
static int metrics_rows(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines > 0 ? lines - 1 : 0;
}

/* Waits until the run has written `rows` metrics rows, or has exited (returns its exit code;
 * -1000 while it is still running). Progress, not a wall-clock guess, places the kills, so a
 * slow or busy machine moves them in time but never past the end of the run. */
static int wait_for_rows(pid_t pid, const char *name, int rows)
{
    for (int i = 0; i < 600000; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        cr_assert_neq(r, -1);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        if (metrics_rows(name) >= rows) return -1000;
        struct timespec d = {0, 200000};
        nanosleep(&d, NULL);
    }
    cr_assert_fail("run %s made no progress", name);
    return -1;
}

static int checkpoint_exists(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/checkpoint.dpt", dir, name);
    return access(path, F_OK) == 0;
}

Test(resume_kill, sigkill_at_many_moments_then_resume_is_exact, .timeout = 300)
{
    dir = t_make_tmpdir("kill");
    csv = t_write_threshold_table(dir, 4000, 16, 17);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert_eq(wait_exit(start("whole", 0, "0")), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double run_s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    double epoch_s = run_s / atoi(EPOCHS);
    size_t n_ref;
    char *ref = final_params("whole", &n_ref);
    /* Kill points spread over the run; each run may be killed several times. Trials 4 and 5
     * write checkpoints every 37 steps too (200 steps an epoch): most kills then resume inside
     * an epoch, which must end the same as the uninterrupted run without them. */
    int kills = 0;
    for (int trial = 0; trial < 6; trial++) {
        const char *every = trial >= 4 ? "37" : "0";
        char name[32];
        snprintf(name, sizeof name, "killed%d", trial);
        int resumes = 0;
        for (;;) {
            int done = metrics_rows(name);
            pid_t pid = start(name, checkpoint_exists(name), every);
            /* Kill a fraction of an epoch after the next epoch ends: just after its row and
             * during its checkpoint writes for frac ~0, mid-epoch for larger ones. */
            double frac = (trial < 4 ? 0.3 * trial : 0.15 + 0.35 * (trial - 4)) + 0.07 * resumes;
            int rc = wait_for_rows(pid, name, done + 1);
            if (rc == -1000) {
                double delay = frac * epoch_s;
                struct timespec d = {(time_t)delay, (long)((delay - (time_t)delay) * 1e9)};
                nanosleep(&d, NULL);
                kill(pid, SIGKILL);
                rc = wait_exit(pid);
            }
            if (rc == -SIGKILL)
                kills++;
            else
                cr_assert_eq(rc, 0, "run exited with %d", rc);
            if (rc == 0) break;
            cr_assert_lt(++resumes, 40, "no progress after %d resumes", resumes);
        }
        /* One more resume: a finished run resumes to the same state with nothing to do. */
        if (checkpoint_exists(name)) cr_assert_eq(wait_exit(start(name, 1, every)), 0);
        size_t n;
        char *got = final_params(name, &n);
        cr_assert_eq(n, n_ref);
        cr_assert_eq(memcmp(got, ref, n), 0, "trial %d: parameters differ after kill + resume",
                     trial);
        free(got);
        /* metrics.csv: same rows (timing columns aside) as the uninterrupted run. */
        char pa[4096], pb[4096];
        snprintf(pa, sizeof pa, "%s/whole/metrics.csv", dir);
        snprintf(pb, sizeof pb, "%s/%s/metrics.csv", dir, name);
        char cmd[9000];
        snprintf(cmd, sizeof cmd,
                 "diff <(cut -d, -f1-8,11- %s) <(cut -d, -f1-8,11- %s) > /dev/null", pa, pb);
        char shell[9100];
        snprintf(shell, sizeof shell, "bash -c '%s'", cmd);
        cr_assert_eq(t_system(shell), 0, "metrics differ: %s vs %s", pa, pb);
    }
    cr_assert_gt(kills, 0, "no run was actually killed (run of %.2fs)", run_s);
    fprintf(stderr, "resume_kill: %d kills, reference run %.3fs\n", kills, run_s);
    free(ref);
}
