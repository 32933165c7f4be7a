/* Training across processes (mpirun, Open MPI): R ranks x T threads give bitwise the weights
 * and metrics of one process at the same batch and micro-batch (even, uneven and empty rank
 * blocks, batch norm, dropout, a short last batch, the two-phase lamb + clipping path); a
 * checkpoint written by R ranks resumes bit for bit with R' ranks; ranks that differ in config
 * or data are refused with one line naming the rank and field; a rank killed with SIGKILL
 * ends the whole job within seconds and leaves the last checkpoint readable; SIGTERM to one
 * rank stops every rank after the same step with a checkpoint and exit 75, and the resumed
 * run ends as an uninterrupted one. Skipped (visibly) in a build without MPI, but for the
 * refusal of srun tasks started without an MPI plugin. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dptrain/checkpoint.h"
#include "support.h"

TestSuite(mpi, .fini = t_remove_scratch);

/* srun -n 2 without an MPI plugin (Slurm's default --mpi=none): SLURM_STEP_NUM_TASKS but
 * neither PMIx nor PMI; each task would train alone, so each refuses (in any build). */
Test(mpi, srun_tasks_without_an_mpi_plugin_are_refused)
{
    char *out = t_scratch_dir("run"), args[4096], *text;
    snprintf(args, sizeof args,
             "train --data synthetic:200,1,4,4,2 --model dense:2 --epochs 1 --quiet --out %s/r",
             out);
    setenv("SLURM_STEP_NUM_TASKS", "2", 1);
    int rc = t_run_dptrain(args, &text);
    cr_assert_eq(rc, 2, "exit %d: %s", rc, text);
    cr_assert(strstr(text, "srun started 2 tasks without an MPI plugin") &&
                  strstr(text, "--mpi=pmix"),
              "%s", text);
    char *r = t_path(out, "r");
    cr_assert_neq(access(r, F_OK), 0, "%s was made", r);
    free(text);
    /* One task, or DPT_WORLD=single, trains alone as before. */
    setenv("SLURM_STEP_NUM_TASKS", "1", 1);
    rc = t_run_dptrain(args, &text);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, text);
    free(text);
    setenv("SLURM_STEP_NUM_TASKS", "2", 1);
    setenv("DPT_WORLD", "single", 1);
    snprintf(args, sizeof args,
             "train --data synthetic:200,1,4,4,2 --model dense:2 --epochs 1 --quiet --out %s/s",
             out);
    rc = t_run_dptrain(args, &text);
    unsetenv("DPT_WORLD"), unsetenv("SLURM_STEP_NUM_TASKS");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, text);
    free(text), free(r);
}

#ifndef DPT_HAVE_MPI
Test(mpi, skipped_without_mpi)
{
    cr_skip_test("this build has no MPI (configure with -DDPT_MPI=ON and libopenmpi-dev)");
}
#else

/* mpirun as root needs these; --oversubscribe: more ranks than the 2 cores of CI. */
#define MPIRUN                                                                                     \
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "                                   \
    "OMPI_MCA_rmaps_base_oversubscribe=1 "                                                         \
    "mpirun --bind-to none "

/* Runs `mpirun -np np dptrain ARGS` (np 0: dptrain alone) with output captured into *out
 * when out is not NULL; returns the exit code. */
static int run_np(int np, const char *args, char **out)
{
    static char *dir;
    if (!dir) dir = t_scratch_dir("log");
    char *log = t_path(dir, "out.txt");
    size_t n = strlen(args) + strlen(log) + 4096;
    char *cmd = malloc(n);
    if (np)
        snprintf(cmd, n, MPIRUN "-np %d %s train %s > %s 2>&1", np, t_dptrain_bin(), args, log);
    else
        snprintf(cmd, n, "%s train %s > %s 2>&1", t_dptrain_bin(), args, log);
    int rc = t_system(cmd);
    size_t len;
    char *text = t_read_file(log, &len);
    if (out)
        *out = text;
    else
        free(text);
    free(cmd), free(log);
    return rc;
}

/* The "params" section of DIR/checkpoint.dpt: the trained weights and the batch-norm state. */
static void *params_of(const char *dir, size_t *bytes)
{
    char *path = t_path(dir, "checkpoint.dpt");
    dpt_checkpoint_t *c;
    cr_assert_eq(dpt_checkpoint_read(path, &c), DPT_OK, "%s: %s", path, dpt_last_error());
    const void *p = dpt_checkpoint_section(c, "params", bytes);
    cr_assert_not_null(p, "%s has no params section", path);
    void *copy = malloc(*bytes);
    memcpy(copy, p, *bytes);
    dpt_checkpoint_free(c);
    free(path);
    return copy;
}

/* metrics.csv without the columns that are measured or per setup: epoch_seconds,
 * samples_per_second, threads, ranks (columns 9-12 from 1). */
static char *metrics_of(const char *dir)
{
    char *path = t_path(dir, "metrics.csv");
    size_t n;
    char *text = t_read_file(path, &n), *out = calloc(1, n + 1), *o = out;
    int col = 1;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') col = 0;
        if (col < 9 || col > 12 || *p == '\n') *o++ = *p;
        if (*p == ',' || *p == '\n') col++;
    }
    free(text), free(path);
    return out;
}

static void assert_same_run(const char *a, const char *b)
{
    size_t na, nb;
    void *pa = params_of(a, &na), *pb = params_of(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(pa, pb, na) == 0, "%s and %s: parameters differ", a, b);
    char *ma = metrics_of(a), *mb = metrics_of(b);
    cr_assert_str_eq(ma, mb, "%s and %s: metrics differ", a, b);
    free(pa), free(pb), free(ma), free(mb);
}

/* A small CNN with batch norm and dropout; 300 samples at batch 64 in 8-row shards: 8 shards
 * a step, 6 in each epoch's short last batch, so 3 and 4 ranks get uneven blocks. */
#define CNN_ARGS                                                                                   \
    "--data synthetic:300,1,8,8,4 --model conv:4:3,bn,relu,maxpool:2,dense:16,relu,dropout:0.2,"   \
    "dense:4 --batch-size 64 --micro-batch 8 --lr 0.05 --quiet"

static void train_into(int np, int threads, const char *extra, const char *out_dir, int epochs)
{
    char args[4096];
    snprintf(args, sizeof args, CNN_ARGS " %s --threads %d --epochs %d --out %s", extra, threads,
             epochs, out_dir);
    char *log;
    int rc = run_np(np, args, &log);
    cr_assert_eq(rc, 0, "np %d x %d threads: exit %d:\n%s", np, threads, rc, log);
    free(log);
}

Test(mpi, ranks_times_threads_give_the_bits_of_one_process, .timeout = 120)
{
    char *one = t_scratch_dir("one");
    train_into(0, 1, "", one, 2);
    static const int shapes[][2] = {{1, 4}, {2, 2}, {4, 1}, {3, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "r%dt%d", shapes[i][0], shapes[i][1]);
        char *d = t_scratch_dir(tag);
        train_into(shapes[i][0], shapes[i][1], "", d, 2);
        assert_same_run(one, d);
    }
}

/* An MLP of 203k parameters: several exchange pieces (DPT_EXCHANGE_PIECE floats) per rank,
 * so the pipelined exchange (DPT_EXCHANGE=overlap) overlaps pieces; the phase-separated one
 * (phased, the default) gives the same bits, and an unknown mode is refused. */
#define MLP_ARGS                                                                                   \
    "--data synthetic:160,1,28,28,10 --model dense:256,relu,dense:10 --batch-size 64 "             \
    "--micro-batch 8 --optimizer adam --lr 0.001 --quiet --epochs 1"

static void train_mlp(int np, int threads, const char *out_dir)
{
    char args[4096];
    snprintf(args, sizeof args, MLP_ARGS " --threads %d --out %s", threads, out_dir);
    char *log;
    int rc = run_np(np, args, &log);
    cr_assert_eq(rc, 0, "np %d x %d threads: exit %d:\n%s", np, threads, rc, log);
    free(log);
}

Test(mpi, pipelined_and_phased_exchange_give_the_bits_of_one_process, .timeout = 120)
{
    char *one = t_scratch_dir("one"), *r2t2 = t_scratch_dir("r2t2"), *r3t1 = t_scratch_dir("r3t1");
    char *phased = t_scratch_dir("phased");
    train_mlp(0, 1, one);
    setenv("DPT_EXCHANGE", "overlap", 1);
    train_mlp(2, 2, r2t2);
    assert_same_run(one, r2t2);
    train_mlp(3, 1, r3t1);
    assert_same_run(one, r3t1);
    setenv("DPT_EXCHANGE", "phased", 1);
    train_mlp(2, 1, phased);
    assert_same_run(one, phased);
    setenv("DPT_EXCHANGE", "bogus", 1);
    char args[4096], *log;
    snprintf(args, sizeof args, MLP_ARGS " --threads 1 --out %s", t_scratch_dir("bogus"));
    int rc = run_np(2, args, &log);
    unsetenv("DPT_EXCHANGE");
    cr_assert_neq(rc, 0, "an unknown DPT_EXCHANGE was accepted:\n%s", log);
    cr_assert(strstr(log, "DPT_EXCHANGE 'bogus'"), "no line naming the mode:\n%s", log);
    free(log);
}

Test(mpi, two_phase_path_lamb_and_clipping_match_one_process, .timeout = 120)
{
    const char *extra = "--optimizer lamb:weight_decay=0.01 --clip-grad-norm 0.5";
    char *one = t_scratch_dir("one"), *three = t_scratch_dir("three");
    train_into(0, 2, extra, one, 1);
    train_into(3, 1, extra, three, 1);
    assert_same_run(one, three);
}

/* Augmentation draws are keyed by (seed, epoch, sample, op, draw) and mixup's partner by the
 * sample, so any split across processes augments the same batch. */
Test(mpi, augmented_training_matches_one_process, .timeout = 120)
{
    const char *extra = "--augment crop:pad=1+hflip+rotate:degrees=10+mixup:alpha=0.4";
    char *one = t_scratch_dir("one"), *three = t_scratch_dir("three"), *two = t_scratch_dir("two");
    train_into(0, 1, extra, one, 2);
    train_into(3, 1, extra, three, 2);
    assert_same_run(one, three);
    train_into(2, 2, extra, two, 2);
    assert_same_run(one, two);
}

Test(mpi, checkpoint_of_two_ranks_resumes_with_three_and_with_one, .timeout = 120)
{
    char *ref = t_scratch_dir("ref"), *a = t_scratch_dir("a"), *b = t_scratch_dir("b");
    train_into(0, 2, "", ref, 3);
    train_into(2, 1, "", a, 1);
    train_into(2, 1, "", b, 2);
    char args[4096], *log;
    snprintf(args, sizeof args, "--resume %s --epochs 3 --threads 1 --quiet", a);
    int rc = run_np(3, args, &log);
    cr_assert_eq(rc, 0, "resume with 3 ranks: exit %d:\n%s", rc, log);
    free(log);
    snprintf(args, sizeof args, "--resume %s --epochs 3 --threads 2 --quiet", b);
    rc = run_np(0, args, &log);
    cr_assert_eq(rc, 0, "resume alone: exit %d:\n%s", rc, log);
    free(log);
    assert_same_run(ref, a);
    assert_same_run(ref, b);
}

/* Counts occurrences of needle in hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(mpi, ranks_with_different_config_or_data_are_refused_naming_rank_and_field, .timeout = 60)
{
    char *d = t_scratch_dir("d"), *out = t_scratch_dir("out");
    char cmd[8192];
    /* MPMD: rank 1 runs another batch size. */
    snprintf(cmd, sizeof cmd,
             "-np 1 %s train " CNN_ARGS " --threads 1 --out %s/a : -np 1 %s train " CNN_ARGS
             " --threads 1 --batch-size 32 --out %s/a",
             t_dptrain_bin(), out, t_dptrain_bin(), out);
    char *log = t_path(d, "log.txt"), full[9000];
    snprintf(full, sizeof full, MPIRUN "%s > %s 2>&1", cmd, log);
    int rc = t_system(full);
    size_t n;
    char *text = t_read_file(log, &n);
    cr_assert_eq(rc, 2, "exit %d:\n%s", rc, text);
    cr_assert_eq(count(text, "batch_size ('32' there, '64' on rank 0)"), 1, "%s", text);
    cr_assert_eq(count(text, "dptrain: error: rank 1 differs from rank 0 in "), 1, "%s", text);
    cr_assert_eq(count(text, "dptrain: error:"), 1, "one line, not one per rank:\n%s", text);
    free(text);
    /* Same flags, other data under another path (as on another node): the bytes differ. */
    char *t1 = t_write_threshold_table(t_scratch_dir("t1"), 200, 6, 1);
    char *t2 = t_write_threshold_table(t_scratch_dir("t2"), 200, 6, 2);
    const char *rest = "--model dense:8,relu,dense:3 --val-split 0.25 --epochs 1 --threads 1 "
                       "--quiet";
    snprintf(full, sizeof full,
             MPIRUN "-np 2 %s train --data csv:%s %s --out %s/b : -np 1 %s train --data csv:%s "
                    "%s --out %s/b > %s 2>&1",
             t_dptrain_bin(), t1, rest, out, t_dptrain_bin(), t2, rest, out, log);
    rc = t_system(full);
    text = t_read_file(log, &n);
    cr_assert_eq(rc, 2, "exit %d:\n%s", rc, text);
    cr_assert_eq(count(text, "dptrain: error: rank 2 differs from rank 0 in "), 1, "%s", text);
    cr_assert_eq(count(text, ", dataset ('training part "), 1, "%s", text);
    cr_assert_eq(count(text, "dptrain: error:"), 1, "%s", text);
    free(text), free(log), free(t1), free(t2);
}

/* A longer run on 3 ranks that checkpoints every 4 steps, started in the background;
 * returns mpirun's pid. */
static pid_t start_long(const char *out_dir, const char *log)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "exec env " MPIRUN "-np %s %s train --data synthetic:4000,1,8,8,4 --model "
                 "dense:32,relu,dense:4 --batch-size 16 --micro-batch 8 --epochs 2 --threads 1 "
                 "--checkpoint-every-steps 4 --quiet --out %s > %s 2>&1",
                 getenv("DPT_TEST_NP") ? getenv("DPT_TEST_NP") : "3", t_dptrain_bin(), out_dir,
                 log);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void nap_10ms(void)
{
    nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
}

/* Waits (up to 60 s) for path to exist. */
static void wait_for_file(const char *path, pid_t pid)
{
    for (int i = 0; i < 6000; i++) {
        if (access(path, F_OK) == 0) return;
        int st;
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "the job ended before writing %s", path);
        nap_10ms();
    }
    cr_assert_fail("%s did not appear", path);
}

/* The pids of mpirun's children (the ranks), up to 8. */
static size_t ranks_of(pid_t mpirun, pid_t *pids)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 8) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int pid = 0, ppid = 0;
        char comm[256];
        if (fgets(buf, sizeof buf, f) &&
            sscanf(buf, "%d (%255[^)]) %*c %d", &pid, comm, &ppid) == 3 && ppid == mpirun &&
            !strcmp(comm, "dptrain"))
            pids[n++] = pid;
        fclose(f);
    }
    if (d) closedir(d);
    return n;
}

/* Waits up to `seconds` for pid; returns its exit code (negative: signal), or
 * T_STILL_RUNNING. */
static int wait_up_to(pid_t pid, double seconds)
{
    for (int i = 0; i < (int)(seconds * 100); i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        nap_10ms();
    }
    return T_STILL_RUNNING;
}

static int alive(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[512], state = 0;
    if (fgets(buf, sizeof buf, f)) sscanf(strrchr(buf, ')') + 2, "%c", &state);
    fclose(f);
    return state && state != 'Z';
}

Test(mpi, a_killed_rank_ends_every_rank_within_seconds, .timeout = 90)
{
    char *out = t_scratch_dir("run"), *d = t_scratch_dir("joblog");
    char *log = t_path(d, "log.txt"), *ckpt = t_path(out, "checkpoint.dpt");
    pid_t job = start_long(out, log);
    wait_for_file(ckpt, job);
    pid_t ranks[8];
    size_t n = ranks_of(job, ranks);
    cr_assert_eq(n, 3, "found %zu ranks under mpirun %d", n, (int)job);
    cr_assert_eq(kill(ranks[1], SIGKILL), 0);
    int rc = wait_up_to(job, 10.0);
    cr_assert_neq(rc, T_STILL_RUNNING, "the job still runs 10 s after a rank was killed");
    cr_assert_neq(rc, 0, "the job exited 0 after a rank was killed");
    /* mpirun may return while it still reaps the other ranks: give them 5 s more. */
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 500 && alive(ranks[i]); k++)
            nap_10ms();
        cr_assert(!alive(ranks[i]), "rank pid %d still alive 5 s after mpirun ended",
                  (int)ranks[i]);
    }
    dpt_checkpoint_t *c;
    cr_assert_eq(dpt_checkpoint_read(ckpt, &c), DPT_OK, "last checkpoint: %s", dpt_last_error());
    dpt_checkpoint_free(c);
    free(log), free(ckpt);
}

/* Starts a 2-rank job, waits for its first checkpoint, sends sig to mpirun itself (to_mpirun)
 * or to the last rank, and requires every rank to stop with one "interrupted" line and exit 75;
 * resumes it with 3 ranks and requires the bits of a run that never stopped. */
static void interrupt_and_resume(int sig, const char *sig_name, int to_mpirun)
{
    setenv("DPT_TEST_NP", "2", 1);
    char *out = t_scratch_dir("run"), *ref = t_scratch_dir("ref"), *d = t_scratch_dir("joblog");
    char *log = t_path(d, "log.txt"), *ckpt = t_path(out, "checkpoint.dpt");
    pid_t job = start_long(out, log);
    wait_for_file(ckpt, job);
    pid_t ranks[8];
    size_t n = ranks_of(job, ranks);
    cr_assert_eq(n, 2, "found %zu ranks", n);
    /* Not necessarily rank 0: the rank that is signalled tells the others at the next step. */
    cr_assert_eq(kill(to_mpirun ? job : ranks[n - 1], sig), 0);
    int rc = wait_up_to(job, 60.0);
    size_t len;
    char *text = t_read_file(log, &len), expected[64];
    cr_assert_eq(rc, 75, "exit %d:\n%s", rc, text);
    snprintf(expected, sizeof expected, "interrupted (%s) at epoch", sig_name);
    cr_assert_eq(count(text, expected), 1, "%s", text);
    free(text);
    /* Resume with another world size; the reference never stopped. */
    char args[4096], *rlog;
    snprintf(args, sizeof args, "--resume %s --threads 1 --quiet", out);
    rc = run_np(3, args, &rlog);
    cr_assert_eq(rc, 0, "resume: exit %d:\n%s", rc, rlog);
    free(rlog);
    snprintf(args, sizeof args,
             "--data synthetic:4000,1,8,8,4 --model dense:32,relu,dense:4 --batch-size 16 "
             "--micro-batch 8 --epochs 2 --threads 2 --checkpoint-every-steps 4 --quiet --out %s",
             ref);
    rc = run_np(0, args, &rlog);
    cr_assert_eq(rc, 0, "reference: exit %d:\n%s", rc, rlog);
    free(rlog);
    assert_same_run(ref, out);
    free(log), free(ckpt);
}

Test(mpi, sigterm_to_one_rank_stops_all_with_a_checkpoint_and_resumes_exactly, .timeout = 180)
{
    interrupt_and_resume(SIGTERM, "SIGTERM", 0);
}

/* What `kill -USR1` on mpirun (or a scheduler signalling the launcher) does: Open MPI forwards
 * SIGUSR1 to every rank. */
Test(mpi, sigusr1_to_mpirun_stops_all_with_a_checkpoint_and_resumes_exactly, .timeout = 180)
{
    interrupt_and_resume(SIGUSR1, "SIGUSR1", 1);
}

#endif
