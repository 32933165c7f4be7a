/* Owns running a sweep's trials: each is an ordinary `dptrain train` run directory, trained by
 * a child process (so a crash or a divergence is a result, not the sweep's end), K at once,
 * through the rungs of successive halving. A trial's state lives in its directory (metrics.csv,
 * checkpoint.dpt and a one-line sweep-status), so a restarted sweep continues where it was. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/sweep.h"
#include "dptrain/metrics.h"
#include "dptrain/run.h"

#define STATUS_FILE "sweep-status"
#define EXIT_DIVERGED 7
#define EXIT_INTERRUPTED 75
#define MAX_RUNNING 256

extern char **environ;

static volatile sig_atomic_t stop_signo;
static volatile pid_t running[MAX_RUNNING];

void sweep_request_stop(int signo)
{
    stop_signo = signo;
    /* The children checkpoint and exit 75; a terminal's ^C reaches them directly too. */
    for (size_t i = 0; i < MAX_RUNNING; i++)
        if (running[i] > 0) kill(running[i], signo == SIGINT ? SIGINT : SIGTERM);
}

static const char *const status_names[] = {"pending", "done",     "stopped early",
                                           "stopped", "diverged", "failed"};

const char *sweep_status_name(trial_status_t s)
{
    return status_names[s];
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- a trial's state on disk ---------------------------------------------------------- */

static void trial_path(const sweep_trial_t *t, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", t->dir, name);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The row of each epoch is the run's own metrics.csv; the metric column is read from it. */
void sweep_trial_read_metrics(const sweep_plan_t *p, sweep_trial_t *t)
{
    char path[1100];
    trial_path(t, "metrics.csv", path, sizeof path);
    t->epochs = 0;
    t->final = t->best = NAN;
    t->best_epoch = 0;
    dpt_metrics_table_t *m = NULL;
    if (!file_exists(path) || dpt_metrics_read(path, &m) != DPT_OK) return;
    size_t col = dpt_metrics_table_find(m, p->metric), rows = dpt_metrics_table_rows(m);
    t->epochs = rows;
    for (size_t r = 0; r < rows && col < dpt_metrics_table_cols(m); r++) {
        const char *f = dpt_metrics_table_field(m, r, col);
        double v = f && *f ? strtod(f, NULL) : NAN;
        t->final = v;
        if (isfinite(v) && (!isfinite(t->best) || (p->metric_max ? v > t->best : v < t->best))) {
            t->best = v;
            t->best_epoch = r + 1;
        }
    }
    dpt_metrics_table_free(m);
}

static void write_status(const sweep_trial_t *t)
{
    char path[1100], tmp[1120];
    trial_path(t, STATUS_FILE, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return; /* the status is recomputed from the run's files next time */
    fprintf(f, "%d %d %.3f\n", (int)t->status, t->exit_code, t->seconds);
    if (fclose(f) == 0) rename(tmp, path);
}

static void read_status(sweep_trial_t *t)
{
    char path[1100];
    trial_path(t, STATUS_FILE, path, sizeof path);
    FILE *f = fopen(path, "r");
    int st = 0, code = 0;
    double sec = 0;
    if (f && fscanf(f, "%d %d %lf", &st, &code, &sec) == 3 && st >= TRIAL_PENDING &&
        st <= TRIAL_FAILED) {
        t->status = (trial_status_t)st;
        t->exit_code = code;
        t->seconds = sec;
    }
    if (f) fclose(f);
}

/* ---- child processes ------------------------------------------------------------------ */

typedef struct argv_buf {
    char *v[512];
    int n;
    char num[4][32];
    char flag[SWEEP_MAX_KEYS][48]; /* "--" + each grid key */
} argv_buf_t;

static void push(argv_buf_t *a, const char *s)
{
    if (a->n < 510) a->v[a->n++] = (char *)s;
}

/* `train` for this trial: a first start (with the sweep's flags, the configuration and the
 * seed), or a resume of its checkpoint; paused after epoch `pause` (0: run to the end). */
static void trial_argv(const sweep_plan_t *p, const sweep_trial_t *t, size_t pause, argv_buf_t *a)
{
    char ck[1100];
    trial_path(t, DPT_RUN_CHECKPOINT, ck, sizeof ck);
    a->n = 0;
    push(a, p->self);
    push(a, "train");
    if (file_exists(ck)) {
        push(a, "--resume");
        push(a, t->dir);
    } else {
        for (size_t i = 0; i < p->n_train_args; i++)
            push(a, p->train_args[i]);
        const sweep_config_t *c = &p->configs[t->config];
        for (size_t k = 0; k < p->grid->n_keys; k++) {
            snprintf(a->flag[k], sizeof a->flag[k], "--%s", p->grid->key[k].name);
            push(a, a->flag[k]);
            push(a, sweep_config_value(p->grid, c, k));
        }
        snprintf(a->num[0], sizeof a->num[0], "%llu", (unsigned long long)t->seed);
        push(a, "--seed");
        push(a, a->num[0]);
        push(a, "--out");
        push(a, t->dir);
        push(a, "--overwrite"); /* a start cut short before its first checkpoint */
    }
    snprintf(a->num[1], sizeof a->num[1], "%zu", p->threads);
    push(a, "--threads");
    push(a, a->num[1]);
    push(a, "--quiet");
    if (pause) {
        snprintf(a->num[2], sizeof a->num[2], "%zu", pause);
        push(a, "--pause-after-epoch");
        push(a, a->num[2]);
    }
    a->v[a->n] = NULL;
}

static dpt_status_t spawn_trial(const sweep_plan_t *p, const sweep_trial_t *t, size_t pause,
                                pid_t *pid)
{
    if (mkdir(t->dir, 0755) != 0 && errno != EEXIST)
        return dpt_error(DPT_ERR_IO, "%s: cannot create directory: %s", t->dir, strerror(errno));
    char log[1100];
    trial_path(t, "log.txt", log, sizeof log);
    argv_buf_t a;
    trial_argv(p, t, pause, &a);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(pid, p->self, &fa, NULL, a.v, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return dpt_error(DPT_ERR_IO, "cannot start %s train: %s", p->self, strerror(rc));
    return DPT_OK;
}

/* The trial's state after its process ended with `code`, having been asked to pause after
 * epoch `pause` (0: none). */
static void settle(const sweep_plan_t *p, sweep_trial_t *t, int code, size_t pause)
{
    sweep_trial_read_metrics(p, t);
    t->exit_code = code;
    if (code == 0 && t->epochs >= p->epochs)
        t->status = TRIAL_DONE;
    else if (code == 0 && pause && t->epochs >= pause)
        t->status = TRIAL_PENDING; /* paused at the rung */
    else if (code == 0)
        t->status = TRIAL_EARLY;
    else if (code == EXIT_DIVERGED)
        t->status = TRIAL_DIVERGED;
    else if (code == EXIT_INTERRUPTED)
        t->status = TRIAL_PENDING; /* resumes from its checkpoint next time */
    else
        t->status = TRIAL_FAILED;
    write_status(t);
}

static void report(const sweep_plan_t *p, const sweep_trial_t *t, size_t done, size_t total)
{
    char cfg[1024];
    sweep_config_text(p->grid, &p->configs[t->config], cfg, sizeof cfg);
    fprintf(stderr, "sweep: [%zu/%zu] %s (%s seed %llu): %s after %zu epochs, %s %.4g (%.1f s)\n",
            done, total, strrchr(t->dir, '/') ? strrchr(t->dir, '/') + 1 : t->dir, cfg,
            (unsigned long long)t->seed,
            t->exit_code == EXIT_INTERRUPTED ? "interrupted"
            : t->status == TRIAL_PENDING     ? "paused"
                                             : sweep_status_name(t->status),
            t->epochs, p->metric, t->final, t->seconds);
}

/* Runs the trials listed in todo (indices), up to p->parallel at once, each to epoch
 * `target` (paused there when it is before the end). */
static dpt_status_t run_rung(const sweep_plan_t *p, sweep_trial_t *trials, const size_t *todo,
                             size_t n, size_t target)
{
    size_t next = 0, live = 0, finished = 0;
    size_t slot_trial[MAX_RUNNING];
    double started[MAX_RUNNING];
    size_t pause = target < p->epochs ? target : 0;
    dpt_status_t s = DPT_OK;
    while (next < n || live) {
        while (s == DPT_OK && !stop_signo && next < n && live < p->parallel) {
            size_t slot = 0;
            while (running[slot] > 0)
                slot++;
            pid_t pid;
            s = spawn_trial(p, &trials[todo[next]], pause, &pid);
            if (s) break;
            running[slot] = pid;
            slot_trial[slot] = todo[next++];
            started[slot] = now_seconds();
            live++;
        }
        if (!live) break;
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, 0);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        size_t slot = 0;
        while (slot < MAX_RUNNING && running[slot] != pid)
            slot++;
        if (slot == MAX_RUNNING) continue;
        running[slot] = 0;
        live--;
        sweep_trial_t *t = &trials[slot_trial[slot]];
        t->seconds += now_seconds() - started[slot];
        int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        settle(p, t, code, pause);
        report(p, t, ++finished, n);
    }
    if (s == DPT_OK && stop_signo)
        s = dpt_error(DPT_ERR_INTERRUPTED,
                      "sweep interrupted; run the same command again (or dptrain sweep --resume "
                      "%s) to continue: finished trials are kept, the others resume from their "
                      "checkpoints",
                      p->out_dir);
    return s;
}

/* ---- successive halving --------------------------------------------------------------- */

/* A configuration's score at a rung: the mean of its trials' metric (worst for a failure). */
static double config_score(const sweep_plan_t *p, const sweep_trial_t *trials, size_t n_trials,
                           size_t config)
{
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < n_trials; i++) {
        if (trials[i].config != config) continue;
        double v = trials[i].final;
        if (!isfinite(v) || trials[i].status == TRIAL_DIVERGED || trials[i].status == TRIAL_FAILED)
            return p->metric_max ? -INFINITY : INFINITY;
        sum += v;
        n++;
    }
    return n ? sum / (double)n : (p->metric_max ? -INFINITY : INFINITY);
}

typedef struct ranked {
    size_t config;
    double score;
    int max;
} ranked_t;

static int by_score(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->score != y->score) return (x->max ? x->score > y->score : x->score < y->score) ? -1 : 1;
    return x->config < y->config ? -1 : 1; /* ties: the earlier configuration */
}

/* After a rung: the configurations still running keep their best 1/eta (at least one); the
 * rest stop with what they have. Deterministic: scores come from the runs' metrics.csv. */
static dpt_status_t halve(const sweep_plan_t *p, sweep_trial_t *trials, size_t n_trials,
                          size_t rung_epoch)
{
    ranked_t *r = calloc(p->n_configs, sizeof *r);
    if (!r) return dpt_error(DPT_ERR_NOMEM, "out of memory ranking configurations");
    size_t n = 0;
    for (size_t c = 0; c < p->n_configs; c++) {
        int alive = 0;
        for (size_t i = 0; i < n_trials; i++)
            alive |= trials[i].config == c && trials[i].status == TRIAL_PENDING;
        if (alive) r[n++] = (ranked_t){c, config_score(p, trials, n_trials, c), p->metric_max};
    }
    qsort(r, n, sizeof *r, by_score);
    size_t keep = n / p->eta ? n / p->eta : 1;
    for (size_t k = keep; k < n; k++)
        for (size_t i = 0; i < n_trials; i++)
            if (trials[i].config == r[k].config && trials[i].status == TRIAL_PENDING) {
                trials[i].status = TRIAL_STOPPED;
                write_status(&trials[i]);
            }
    if (n)
        fprintf(stderr, "sweep: rung at epoch %zu: %zu of %zu configurations go on\n", rung_epoch,
                keep < n ? keep : n, n);
    free(r);
    return DPT_OK;
}

dpt_status_t sweep_run(const sweep_plan_t *p, sweep_trial_t *trials, size_t n_trials)
{
    for (size_t i = 0; i < n_trials; i++) {
        read_status(&trials[i]);
        sweep_trial_read_metrics(p, &trials[i]);
    }
    size_t rungs[64], n_rungs = 0;
    if (p->eta)
        for (size_t e = p->min_epochs; e < p->epochs && n_rungs < 63; e *= p->eta)
            rungs[n_rungs++] = e;
    rungs[n_rungs++] = p->epochs;
    size_t *todo = malloc(n_trials * sizeof *todo);
    if (!todo) return dpt_error(DPT_ERR_NOMEM, "out of memory");
    dpt_status_t s = DPT_OK;
    for (size_t r = 0; r < n_rungs && s == DPT_OK; r++) {
        size_t n = 0;
        for (size_t i = 0; i < n_trials; i++)
            if (trials[i].status == TRIAL_PENDING && trials[i].epochs < rungs[r]) todo[n++] = i;
        s = run_rung(p, trials, todo, n, rungs[r]);
        if (s == DPT_OK && r + 1 < n_rungs) s = halve(p, trials, n_trials, rungs[r]);
    }
    free(todo);
    return s;
}
