/* A SIGKILL at exact moments of a checkpoint write (tests/kill_shim.c, preloaded): the
 * checkpoint left behind is always a valid one (or absent before the first), resuming until
 * done ends bitwise equal to an uninterrupted run with the same metrics (timing aside), and
 * no temporary file survives the run that finishes. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dptrain/checkpoint.h"
#include "support.h"

static char *dir, *csv;

/* Runs `dptrain train` for run `name` (fresh, or --resume when resume is set) to its end;
 * with kill_nth > 0 under the shim, killed per kill_at. Extra flags (NULL-terminated list,
 * may be NULL) go after the usual ones. Returns the exit code, or -signal. */
/* NULL: the shim SIGKILLs; "ENOSPC": it makes the chosen temp file's writes fail. */
static const char *shim_mode;

static int run(const char *name, int resume, long kill_nth, const char *kill_at,
               const char *const *extra)
{
    char out[4096], data[4096], nth[32];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    snprintf(data, sizeof data, "csv:%s", csv);
    const char *argv[64] = {"dptrain", "train"};
    int n = 2;
    if (resume) {
        argv[n++] = "--resume", argv[n++] = out;
    } else {
        const char *base[] = {"--data", data, "--val-split", "0.2", "--model",
                              "dense:32,relu,dropout:0.1,dense:3", "--batch-size", "16",
                              "--micro-batch", "8", "--threads", "2", "--epochs", "3", "--lr",
                              "0.05", "--lr-schedule", "cosine:T_max=3", "--out", out,
                              /* killed before its first checkpoint: start again */
                              "--overwrite"};
        for (size_t i = 0; i < sizeof base / sizeof *base; i++)
            argv[n++] = base[i];
        for (; extra && *extra; extra++)
            argv[n++] = *extra;
    }
    argv[n++] = "--quiet";
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        if (kill_nth > 0) {
            snprintf(nth, sizeof nth, "%ld", kill_nth);
            setenv("LD_PRELOAD", DPT_KILL_SHIM, 1);
            setenv("DPT_KILL_NTH", nth, 1);
            setenv("DPT_KILL_AT", kill_at, 1);
            if (shim_mode) setenv("DPT_KILL_SIGNAL", shim_mode, 1);
            /* A sanitizer build's runtime wants to be first; the shim only wraps two calls. */
            setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
        }
        execv(t_dptrain_bin(), (char *const *)argv);
        _exit(127);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static int exists(const char *name, const char *file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    return access(path, F_OK) == 0;
}

/* The file is absent or a complete, verified checkpoint. */
static void assert_valid_or_absent(const char *name, const char *file, const char *when)
{
    if (!exists(name, file)) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s: %s after a kill %s: %s", name, file,
                 when, dpt_last_error());
    dpt_checkpoint_free(ck);
}

/* A section of one of a run's checkpoint files (malloc'd copy; NULL when absent). */
static char *section_of(const char *name, const char *file, const char *section, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    dpt_checkpoint_t *ck;
    if (dpt_checkpoint_read(path, &ck) != DPT_OK) return NULL;
    const void *p = dpt_checkpoint_section(ck, section, n);
    char *copy = p ? malloc(*n ? *n : 1) : NULL;
    if (copy) memcpy(copy, p, *n);
    dpt_checkpoint_free(ck);
    return copy;
}

/* The last epoch in metrics.csv (0: none). */
static unsigned long long last_metrics_epoch(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    unsigned long long last = 0;
    while (fgets(line, sizeof line, f))
        if (line[0] >= '0' && line[0] <= '9') last = strtoull(line, NULL, 10);
    fclose(f);
    return last;
}

/* No metrics row is ahead of the checkpoint a resume would start from. */
static void assert_rows_not_ahead(const char *name, const char *when)
{
    size_t n;
    char *st = section_of(name, "checkpoint.dpt", "state", &n);
    unsigned long long done = 0;
    if (st) memcpy(&done, st, sizeof done); /* run_state_t starts with epochs_done */
    cr_assert_leq(last_metrics_epoch(name), done,
                  "%s: metrics.csv has epoch %llu, the checkpoint only %llu, after a kill %s", name,
                  last_metrics_epoch(name), done, when);
    free(st);
}

static char *final_params(const char *name, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/checkpoint.dpt", dir, name);
    dpt_checkpoint_t *ck;
    cr_assert_eq(dpt_checkpoint_read(path, &ck), DPT_OK, "%s", dpt_last_error());
    const void *p = dpt_checkpoint_section(ck, "params", n);
    cr_assert_not_null(p);
    char *copy = malloc(*n);
    memcpy(copy, p, *n);
    dpt_checkpoint_free(ck);
    return copy;
}

static int temp_files(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

/* metrics.csv of two runs: the same rows, the timing columns (9, 10) aside. */
static void assert_same_metrics(const char *a, const char *b)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "bash -c 'diff <(cut -d, -f1-8,11- %s/%s/metrics.csv) "
             "<(cut -d, -f1-8,11- %s/%s/metrics.csv) >/dev/null'",
             dir, a, dir, b);
    cr_assert_eq(t_system(cmd), 0, "metrics.csv of %s and %s differ", a, b);
}

/* A file both runs have (or neither) with the same bytes. */
static void assert_same_file(const char *a, const char *b, const char *file)
{
    cr_assert_eq(exists(a, file), exists(b, file), "%s only in one of %s, %s", file, a, b);
    if (!exists(a, file)) return;
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s %s/%s/%s %s/%s/%s", dir, a, file, dir, b, file);
    cr_assert_eq(t_system(cmd), 0, "%s of %s and %s differ", file, a, b);
}

typedef struct {
    long nth;
    const char *at;
} kill_point_t;

/* Each kill point on a fresh run with `extra` flags, then resumes until done; compared with
 * the uninterrupted run `ref`. */
static void kill_and_resume(const char *ref, const char *const *extra, const kill_point_t *kp,
                            size_t n_kp)
{
    size_t n_ref;
    char *want = final_params(ref, &n_ref);
    for (size_t i = 0; i < n_kp; i++) {
        char name[64], when[96];
        snprintf(name, sizeof name, "%s-k%ld-%s", ref, kp[i].nth, kp[i].at);
        for (char *c = name; *c; c++)
            if (*c == ':') *c = '_';
        snprintf(when, sizeof when, "in temp file %ld (%s)", kp[i].nth, kp[i].at);
        int rc = run(name, 0, kp[i].nth, kp[i].at, extra);
        if (shim_mode)
            cr_assert_eq(rc, 4, "%s: a full disk must end the run with an I/O error (exit %d)",
                         name, rc);
        else
            cr_assert_eq(rc, -SIGKILL, "%s: the shim did not kill the run (exit %d)", name, rc);
        assert_valid_or_absent(name, "checkpoint.dpt", when);
        assert_valid_or_absent(name, "best.dpt", when);
        assert_rows_not_ahead(name, when);
        /* the resumes below run clean */
        const char *mode = shim_mode;
        shim_mode = NULL;
        /* Before the first checkpoint there is nothing to resume: start again. */
        int resume = exists(name, "checkpoint.dpt");
        cr_assert_eq(run(name, resume, 0, NULL, extra), 0, "%s: resume failed", name);
        shim_mode = mode;
        size_t n;
        char *got = final_params(name, &n);
        cr_assert_eq(n, n_ref);
        cr_assert_eq(memcmp(got, want, n), 0, "%s: parameters differ from %s", name, ref);
        free(got);
        assert_same_metrics(ref, name);
        /* best.dpt holds the same best model as the uninterrupted run's */
        size_t nb_ref = 0, nb = 0;
        char *b_ref = section_of(ref, "best.dpt", "params", &nb_ref);
        char *b = section_of(name, "best.dpt", "params", &nb);
        cr_assert(b_ref && b && nb == nb_ref && !memcmp(b, b_ref, nb), "%s: best.dpt differs",
                  name);
        free(b_ref), free(b);
        assert_same_file(ref, name, "steps.csv");
        cr_assert_eq(temp_files(name), 0, "%s: temporary files left behind", name);
    }
    free(want);
}

Test(kill_during_write, epoch_end_checkpoints, .timeout = 300)
{
    dir = t_make_tmpdir("killw");
    csv = t_write_threshold_table(dir, 1200, 12, 23);
    cr_assert_eq(run("whole", 0, 0, NULL, NULL), 0);
    cr_assert_eq(temp_files("whole"), 0);
    /* Temp files in order: checkpoint.dpt then best.dpt of epoch 1 (best.dpt again only when
     * the validation loss improves): the first write, a later one, and each moment of one. */
    const kill_point_t kp[] = {{1, "open"},    {2, "bytes:100"},  {2, "bytes:3000"}, {2, "rename"},
                               {2, "renamed"}, {4, "bytes:2000"}, {4, "rename"}};
    kill_and_resume("whole", NULL, kp, sizeof kp / sizeof *kp);
}

Test(kill_during_write, mid_epoch_checkpoints, .timeout = 300)
{
    dir = t_make_tmpdir("killm");
    csv = t_write_threshold_table(dir, 1200, 12, 23);
    /* 60 steps an epoch: checkpoints at steps 7, 14, ..., 56 (temp files 1-8), then epoch 1's
     * checkpoint.dpt (9) and best.dpt (10), then 63, 70, ... (11-): the kills below resume
     * from mid-epoch checkpoints, in epoch 1 and 2. */
    const char *const extra[] = {"--checkpoint-every-steps", "7", "--log-every", "5", NULL};
    cr_assert_eq(run("plain", 0, 0, NULL, NULL), 0);
    cr_assert_eq(run("every", 0, 0, NULL, extra), 0);
    /* Mid-epoch checkpoints change nothing in the training. */
    size_t n_plain, n_every;
    char *plain = final_params("plain", &n_plain), *every = final_params("every", &n_every);
    cr_assert_eq(n_plain, n_every);
    cr_assert_eq(memcmp(plain, every, n_plain), 0, "--checkpoint-every-steps changed the run");
    free(plain), free(every);
    assert_same_metrics("plain", "every");
    const kill_point_t kp[] = {{2, "open"},  {3, "bytes:3000"}, {5, "rename"},    {8, "renamed"},
                               {13, "open"}, {15, "rename"},    {16, "bytes:200"}};
    kill_and_resume("every", extra, kp, sizeof kp / sizeof *kp);
}

/* A disk that fills up during a checkpoint write (ENOSPC from the shim): the run ends with an
 * I/O error, the directory holds the last complete checkpoint and no row past it, and
 * --resume finishes the run as if nothing happened. */
Test(kill_during_write, disk_full_during_checkpoint_writes, .timeout = 300)
{
    dir = t_make_tmpdir("killf");
    csv = t_write_threshold_table(dir, 1200, 12, 23);
    cr_assert_eq(run("whole", 0, 0, NULL, NULL), 0);
    const kill_point_t kp[] = {{1, "bytes:2000"}, {2, "open"}, {3, "bytes:100"}, {4, "bytes:2000"}};
    shim_mode = "ENOSPC";
    kill_and_resume("whole", NULL, kp, sizeof kp / sizeof *kp);
    shim_mode = NULL;
}
