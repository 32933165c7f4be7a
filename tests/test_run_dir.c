/* Run-directory safety through the CLI: a rerun never replaces an earlier run silently
 * (--resume or --overwrite), --overwrite replaces only the run's files and says so, one writer
 * per directory (a second process is refused naming the first's pid), and a kill -9 leaves
 * no stale lock. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

TestSuite(run_dir, .fini = t_remove_scratch, .timeout = 120);

static int train(const char *dir, const char *extra, char **out)
{
    char args[8192];
    snprintf(args, sizeof args,
             "train --data synthetic:300 --model dense:16,relu,dense:10 --batch-size 50 "
             "--threads 2 --quiet --out %s %s",
             dir, extra);
    return t_run_dptrain(args, out);
}

static char *slurp(const char *dir, const char *name)
{
    char *p = t_path(dir, name), *text = t_read_file(p, NULL);
    free(p);
    return text;
}

Test(run_dir, rerun_is_refused_and_the_old_run_kept)
{
    char *base = t_scratch_dir("rerun"), *dir = t_path(base, "r"), *out = NULL;
    cr_assert_eq(train(dir, "--epochs 3", &out), 0, "%s", out);
    free(out);
    char *metrics = slurp(dir, "metrics.csv"), *config = slurp(dir, "config.txt");
    cr_assert_eq(train(dir, "--epochs 1", &out), 2, "%s", out);
    cr_assert(strstr(out, "already holds a run ("), "%s", out);
    cr_assert(strstr(out, "continue it with --resume"), "%s", out);
    cr_assert(strstr(out, "replace it with --overwrite, or choose another --out"), "%s", out);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    free(out);
    char *m2 = slurp(dir, "metrics.csv"), *c2 = slurp(dir, "config.txt");
    cr_assert_str_eq(m2, metrics, "metrics.csv changed");
    cr_assert_str_eq(c2, config, "config.txt changed");
    free(metrics), free(config), free(m2), free(c2), free(dir);
}

Test(run_dir, overwrite_replaces_the_run_files_only_and_says_so)
{
    char *base = t_scratch_dir("over"), *dir = t_path(base, "r"), *out = NULL;
    cr_assert_eq(train(dir, "--epochs 3", &out), 0, "%s", out);
    free(out);
    char *note = t_path(dir, "notes.txt");
    t_write_text(note, "mine\n");
    char args[8192];
    snprintf(args, sizeof args,
             "train --data synthetic:300 --model dense:16,relu,dense:10 --batch-size 50 "
             "--epochs 1 --overwrite --out %s",
             dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    cr_assert(strstr(out, "--overwrite: replacing the run in "), "%s", out);
    free(out);
    char *metrics = slurp(dir, "metrics.csv");
    int lines = 0;
    for (char *c = metrics; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 2, "header + 1 epoch:\n%s", metrics);
    char *kept = t_read_file(note, NULL);
    cr_assert_str_eq(kept, "mine\n", "a file that is not the run's was touched");
    /* the replaced run resumes as usual, and --resume with --overwrite is refused */
    snprintf(args, sizeof args, "train --resume %s --epochs 2 --quiet", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "train --resume %s --overwrite", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "--resume and --overwrite do not combine"), "%s", out);
    free(out), free(metrics), free(kept), free(note), free(dir);
}

Test(run_dir, empty_existing_directory_is_fine)
{
    char *dir = t_scratch_dir("empty"), *out = NULL;
    cr_assert_eq(train(dir, "--epochs 1", &out), 0, "%s", out);
    free(out);
}

static pid_t start_long_run(const char *dir)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(t_dptrain_bin(), "dptrain", "train", "--data", "synthetic:20000", "--epochs", "500",
              "--threads", "1", "--quiet", "--out", dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

Test(run_dir, second_writer_is_refused_and_kill_9_leaves_no_stale_lock)
{
    char *base = t_scratch_dir("lock"), *dir = t_path(base, "r"), *out = NULL;
    pid_t pid = start_long_run(dir);
    cr_assert_eq(t_wait_for_lock(dir, pid), T_STILL_RUNNING);
    cr_assert_eq(train(dir, "--epochs 1 --overwrite", &out), 2, "%s", out);
    char want[128];
    snprintf(want, sizeof want, "is in use by another dptrain process (pid %ld)", (long)pid);
    cr_assert(strstr(out, want), "'%s' not in: %s", want, out);
    free(out);
    /* readers need no lock: once the run has a checkpoint, eval, info and plot work on the
     * directory while it trains */
    char *ck = t_path(dir, "checkpoint.dpt"), args[8192];
    for (int i = 0; i < 20000 && access(ck, F_OK) != 0; i++) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    snprintf(args, sizeof args,
             "eval --checkpoint %s --data synthetic:20000 --threads 1 --out %s/cm.csv", ck, base);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "info --checkpoint %s", ck);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out);
    snprintf(args, sizeof args, "plot %s", dir);
    cr_assert_eq(t_run_dptrain(args, &out), 0, "%s", out);
    free(out), free(ck);
    kill(pid, SIGKILL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    /* the kernel released the lock with the process: the directory is usable at once */
    cr_assert_eq(train(dir, "--epochs 1 --overwrite", &out), 0, "%s", out);
    free(out), free(dir);
}
