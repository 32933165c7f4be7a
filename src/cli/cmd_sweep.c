/* Owns `dptrain sweep`: its flags, vetting every configuration before anything runs, the
 * sweep directory (lock, identity, resume) and the order of the work (sweep.h has the rest). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/sweep.h"
#include "core/spec.h"
#include "dptrain/run.h"

static const char usage[] =
    "usage: dptrain sweep --out DIR --grid \"KEY=V1/V2/...;KEY=...\" [sweep flags] [train flags]\n"
    "       dptrain sweep --resume DIR [--parallel K] [--threads T]\n"
    "Trains one run per configuration and seed (each an ordinary run directory under DIR),\n"
    "writes DIR/trials.csv, ranks the configurations by the mean over seeds, and draws\n"
    "DIR/sweep-metric.png and DIR/sweep-curves.png (docs/sweep.md).\n"
    "  --grid G              train flags without '--' and their values: lr=0.01/0.1;optimizer=\n"
    "                        sgd:momentum=0.9/adam. Braces keep '/' or ';' inside a value:\n"
    "                        lr-schedule={multistep:milestones=3/6}/cosine:T_max=9. With\n"
    "                        --random, a key may be a range: log:LO:HI, lin:LO:HI, int:LO:HI\n"
    "  --random N            sample N configurations instead of the full grid\n"
    "  --sweep-seed S        seed of the --random draws (default 0)\n"
    "  --seeds LIST          training seeds of every configuration, e.g. 1,2,3 (default 1)\n"
    "  --parallel K          trials at once, the threads split between them (default 1)\n"
    "  --threads T           threads of the whole sweep (default: all cores)\n"
    "  --halving SPEC        successive halving: eta=3,min_epochs=1 (or on, off): after epochs\n"
    "                        m, m*eta, ... only the best 1/eta of the configurations go on\n"
    "  --metric M            val_accuracy (default) or val_loss: what ranks configurations\n"
    "  --out DIR             the sweep directory; the same command again continues it\n"
    "  --resume DIR          continue the sweep in DIR\n"
    "every other flag is a train flag given to every trial (dptrain train --help); each\n"
    "configuration is checked as train would check it before anything runs.\n";

/* --halving: "off", "on" or on's keys (the one spec grammar). */
static const dpt_spec_key_t halving_keys[] = {
    DPT_SPEC_I("eta", "3", 2, 100, 0), DPT_SPEC_I("min_epochs", "1", 1, 1000000, 0), DPT_SPEC_END};
static const dpt_spec_kind_t halving_on = {"on", halving_keys}, halving_off = {"off", NULL};
static const dpt_spec_kind_t *const halving_kinds[] = {&halving_on, &halving_off};
static const dpt_spec_grammar_t halving_grammar = {"--halving", halving_kinds, 2, "on", 1, NULL};

/* Flags the sweep sets for every trial itself. */
static const char *const trial_flags[] = {"--out",   "--resume",  "--overwrite",
                                          "--seed",  "--threads", "--pause-after-epoch",
                                          "--quiet", "--plot"};

typedef struct sweep_args {
    const char *out, *grid, *resume, *halving, *metric, *seeds;
    size_t random, parallel, threads;
    uint64_t sweep_seed;
    char **train;
    size_t n_train;
} sweep_args_t;

/* Sweep flags into a; everything else goes to a->train (validated later by train's parser).
 * Returns -1 on success, else the exit code. */
static int parse_flags(sweep_args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        for (size_t k = 0; k < sizeof trial_flags / sizeof trial_flags[0]; k++)
            if (!strcmp(f, trial_flags[k]) && strcmp(f, "--out") && strcmp(f, "--resume") &&
                strcmp(f, "--threads"))
                return dpt_cli_usage_error("sweep", "%s is set per trial by the sweep%s", f,
                                           !strcmp(f, "--seed") ? "; use --seeds" : "");
        static const char *const own[] = {"--out",     "--grid",      "--resume", "--halving",
                                          "--metric",  "--seeds",     "--random", "--parallel",
                                          "--threads", "--sweep-seed"};
        int mine = 0;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
            mine |= !strcmp(f, own[k]);
        if (!mine) {
            a->train[a->n_train++] = argv[i];
            continue;
        }
        if (!(v = dpt_cli_value("sweep", argc, argv, &i))) return DPT_EXIT_USAGE;
        bool ok = true;
        if (!strcmp(f, "--out"))
            a->out = v;
        else if (!strcmp(f, "--grid"))
            a->grid = v;
        else if (!strcmp(f, "--resume"))
            a->resume = v;
        else if (!strcmp(f, "--halving"))
            a->halving = v;
        else if (!strcmp(f, "--metric"))
            a->metric = v;
        else if (!strcmp(f, "--seeds"))
            a->seeds = v;
        else if (!strcmp(f, "--random"))
            ok = dpt_cli_parse_size("sweep", f, v, 1, SWEEP_MAX_CONFIGS, &a->random);
        else if (!strcmp(f, "--parallel"))
            ok = dpt_cli_parse_size("sweep", f, v, 1, 256, &a->parallel);
        else if (!strcmp(f, "--threads"))
            ok = dpt_cli_parse_size("sweep", f, v, 1, 1024, &a->threads);
        else
            ok = dpt_cli_parse_u64("sweep", f, v, &a->sweep_seed);
        if (!ok) return DPT_EXIT_USAGE;
    }
    return -1;
}

static int parse_seeds(const char *text, sweep_plan_t *p)
{
    p->n_seeds = 0;
    char buf[2048];
    if (strlen(text) >= sizeof buf) return dpt_cli_usage_error("sweep", "--seeds is too long");
    strcpy(buf, text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (p->n_seeds == SWEEP_MAX_SEEDS)
            return dpt_cli_usage_error("sweep", "--seeds lists more than %d seeds",
                                       SWEEP_MAX_SEEDS);
        if (!dpt_cli_parse_u64("sweep", "--seeds", tok, &p->seeds[p->n_seeds]))
            return DPT_EXIT_USAGE;
        for (size_t i = 0; i < p->n_seeds; i++)
            if (p->seeds[i] == p->seeds[p->n_seeds])
                return dpt_cli_usage_error("sweep", "--seeds lists %s twice", tok);
        p->n_seeds++;
    }
    if (!p->n_seeds) return dpt_cli_usage_error("sweep", "--seeds is empty");
    return -1;
}

/* The trial flags of configuration i: the sweep's train flags, then the grid's values. */
static int config_argv(const sweep_plan_t *p, size_t i, char **argv, char flags[][48])
{
    int n = 0;
    argv[n++] = "train";
    for (size_t k = 0; k < p->n_train_args; k++)
        argv[n++] = p->train_args[k];
    for (size_t k = 0; k < p->grid->n_keys; k++) {
        snprintf(flags[k], 48, "--%s", p->grid->key[k].name);
        argv[n++] = flags[k];
        argv[n++] = (char *)sweep_config_value(p->grid, &p->configs[i], k);
    }
    argv[n] = NULL;
    return n;
}

/* Every configuration through train's own parser and dpt_run_check, before anything runs;
 * sets p->epochs. Returns -1 when all pass, else the exit code (the message is printed). */
static int vet_configs(sweep_plan_t *p)
{
    char **argv = malloc((p->n_train_args + 2 * SWEEP_MAX_KEYS + 2) * sizeof *argv);
    char flags[SWEEP_MAX_KEYS][48];
    if (!argv) return dpt_cli_fail(dpt_error(DPT_ERR_NOMEM, "out of memory"));
    int rc = -1;
    for (size_t i = 0; i < p->n_configs && rc < 0; i++) {
        int argc = config_argv(p, i, argv, flags);
        dpt_run_config_t cfg = dpt_run_config_default();
        char cfg_text[1024];
        sweep_config_text(p->grid, &p->configs[i], cfg_text, sizeof cfg_text);
        rc = dpt_cli_train_flags(argc, argv, 1, &cfg);
        if (rc == 0) rc = dpt_cli_usage_error("sweep", "--help is not a train flag for trials");
        if (rc >= 0) {
            fprintf(stderr, "dptrain sweep: (in configuration %zu: %s)\n", i, cfg_text);
            break;
        }
        cfg.out_dir = p->out_dir;
        dpt_status_t s = dpt_run_check(&cfg);
        if (s != DPT_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", dpt_last_error());
            rc = dpt_cli_fail(dpt_error(s, "sweep configuration %zu (%s): %s", i, cfg_text, msg));
            break;
        }
        if (i == 0) p->epochs = cfg.epochs;
    }
    free(argv);
    return rc;
}

/* ---- the sweep directory ------------------------------------------------------------- */

/* One sweep per directory at a time: an flock the kernel drops when the sweep dies. */
static dpt_status_t lock_dir(const char *dir, int *fd)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return dpt_error(DPT_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    char path[1100];
    snprintf(path, sizeof path, "%s/.sweep.lock", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        ssize_t n = read(*fd, pid, sizeof pid - 1);
        pid[n > 0 ? n : 1] = '\0';
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "%s is in use by another dptrain sweep (pid %s); wait for it or choose "
                         "another --out",
                         dir, strtok(pid, "\n"));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(*fd, 0) != 0 || pwrite(*fd, pid, (size_t)n, 0) != n)
        return dpt_error(DPT_ERR_IO, "%s: cannot write the lock", path);
    return DPT_OK;
}

/* The sweep's identity: its command line minus what does not change results (--parallel,
 * --threads, --out, --resume), NUL-separated. */
static size_t identity(int argc, char **argv, char *buf, size_t cap)
{
    size_t len = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--parallel") || !strcmp(f, "--threads") || !strcmp(f, "--out") ||
            !strcmp(f, "--resume")) {
            i++;
            continue;
        }
        size_t n = strlen(f) + 1;
        if (len + n > cap) return 0;
        memcpy(buf + len, f, n);
        len += n;
    }
    return len;
}

static dpt_status_t read_file(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    *len = fread(buf, 1, cap, f);
    fclose(f);
    return *len == cap ? dpt_error(DPT_ERR_LIMIT, "%s: too long", path) : DPT_OK;
}

/* A new sweep writes its identity; the same command again continues; another is refused. */
static dpt_status_t check_identity(const char *dir, const char *id, size_t len)
{
    char path[1100], old[65536];
    snprintf(path, sizeof path, "%s/sweep.argv", dir);
    size_t old_len;
    if (access(path, F_OK) == 0) {
        dpt_status_t s = read_file(path, old, sizeof old, &old_len);
        if (s) return s;
        if (old_len == len && !memcmp(old, id, len)) return DPT_OK;
        for (size_t i = 0; i + 1 < old_len; i++)
            if (!old[i]) old[i] = ' ';
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "%s holds a different sweep (dptrain sweep %.*s); continue it with "
                         "--resume %s, or choose another --out",
                         dir, (int)(old_len ? old_len - 1 : 0), old, dir);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(id, 1, len, f) != len || fclose(f) != 0)
        return dpt_error(DPT_ERR_IO, "%s: cannot write", path);
    return DPT_OK;
}

/* ---- the command ---------------------------------------------------------------------- */

static void on_signal(int signo)
{
    sweep_request_stop(signo);
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

static int plan_from_args(const sweep_args_t *a, sweep_plan_t *p, sweep_grid_t *g)
{
    dpt_status_t s = sweep_grid_parse(a->grid, g);
    if (s) return dpt_cli_fail(s);
    p->grid = g;
    sweep_config_t *configs;
    s = sweep_grid_configs(g, a->random, a->sweep_seed, &configs, &p->n_configs);
    if (s) return dpt_cli_fail(s);
    p->configs = configs;
    int rc = parse_seeds(a->seeds ? a->seeds : "1", p);
    if (rc >= 0) return rc;
    if (!strcmp(a->metric, "val_accuracy") || !strcmp(a->metric, "val_loss")) {
        p->metric = a->metric;
        p->metric_max = !strcmp(a->metric, "val_accuracy");
    } else
        return dpt_cli_usage_error("sweep", "--metric must be val_accuracy or val_loss, got '%s'",
                                   a->metric);
    dpt_spec_part_t h;
    s = dpt_spec_parse_part(&halving_grammar, a->halving, strlen(a->halving), &h);
    if (s) return dpt_cli_fail(s);
    p->eta = h.kind == &halving_on ? dpt_spec_size(&h, "eta") : 0;
    p->min_epochs = p->eta ? dpt_spec_size(&h, "min_epochs") : 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = a->threads ? a->threads : (size_t)(cores > 0 ? cores : 1);
    if (a->parallel > threads)
        return dpt_cli_usage_error("sweep",
                                   "--parallel %zu is more than the %zu threads; each trial "
                                   "needs one",
                                   a->parallel, threads);
    p->parallel = a->parallel;
    p->threads = threads / a->parallel;
    p->train_args = a->train;
    p->n_train_args = a->n_train;
    return -1;
}

static char *self_path(void)
{
    static char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return NULL;
    buf[n] = '\0';
    return buf;
}

static int run_sweep(sweep_plan_t *p, int lock_fd)
{
    size_t n = p->n_configs * p->n_seeds;
    sweep_trial_t *t = calloc(n, sizeof *t);
    if (!t) return dpt_cli_fail(dpt_error(DPT_ERR_NOMEM, "out of memory for %zu trials", n));
    for (size_t c = 0, i = 0; c < p->n_configs; c++)
        for (size_t k = 0; k < p->n_seeds; k++, i++) {
            t[i].config = c;
            t[i].seed = p->seeds[k];
            snprintf(t[i].dir, sizeof t[i].dir, "%s/t%03zu-s%llu", p->out_dir, c,
                     (unsigned long long)p->seeds[k]);
        }
    fprintf(stderr,
            "sweep: %zu configurations x %zu seeds = %zu trials, %zu at once with %zu "
            "threads each%s; %s\n",
            p->n_configs, p->n_seeds, n, p->parallel, p->threads,
            p->eta ? " (successive halving)" : "", p->out_dir);
    install_handlers();
    dpt_status_t s = sweep_run(p, t, n);
    dpt_status_t w = sweep_write_trials(p, t, n);
    if (s == DPT_OK) s = w;
    sweep_print_summary(p, t, n);
    if (s == DPT_OK) {
        dpt_status_t ps = sweep_plot(p, t, n);
        if (ps != DPT_OK) fprintf(stderr, "dptrain sweep: no plots: %s\n", dpt_last_error());
    }
    free(t);
    close(lock_fd);
    return s == DPT_OK ? 0 : dpt_cli_fail(s);
}

int dpt_cmd_sweep(int argc, char **argv)
{
    sweep_args_t a = {.metric = "val_accuracy", .halving = "off", .parallel = 1};
    char *stored = NULL, **stored_argv = NULL;
    a.train = calloc((size_t)argc + 1, sizeof *a.train);
    if (!a.train) return dpt_cli_fail(dpt_error(DPT_ERR_NOMEM, "out of memory"));
    int rc = parse_flags(&a, argc, argv);
    const char *dir = a.resume ? a.resume : a.out;
    static char id[65536];
    size_t id_len = 0;
    if (rc < 0 && !dir) rc = dpt_cli_usage_error("sweep", "--out DIR (or --resume DIR) is needed");
    if (rc < 0 && a.resume) {
        /* The stored command, with today's --parallel and --threads. */
        char path[1100];
        snprintf(path, sizeof path, "%s/sweep.argv", a.resume);
        stored = malloc(sizeof id);
        dpt_status_t s = stored ? read_file(path, stored, sizeof id, &id_len)
                                : dpt_error(DPT_ERR_NOMEM, "out of memory");
        if (s) rc = dpt_cli_fail(s);
        size_t n = 1;
        for (size_t i = 0; rc < 0 && i < id_len; i++)
            n += !stored[i];
        stored_argv = rc < 0 ? calloc(n + 1, sizeof *stored_argv) : NULL;
        if (rc < 0 && stored_argv) {
            int k = 0;
            stored_argv[k++] = "sweep";
            for (size_t i = 0; i < id_len; i += strlen(stored + i) + 1)
                stored_argv[k++] = stored + i;
            sweep_args_t b = {.metric = "val_accuracy",
                              .halving = "off",
                              .parallel = a.parallel,
                              .threads = a.threads,
                              .train = calloc((size_t)k + 1, sizeof(char *))};
            free(a.train);
            a = b;
            a.out = dir;
            rc = a.train ? parse_flags(&a, k, stored_argv) : DPT_EXIT_USAGE;
            memcpy(id, stored, id_len);
        }
    } else if (rc < 0) {
        id_len = identity(argc, argv, id, sizeof id);
        if (!id_len) rc = dpt_cli_usage_error("sweep", "the command line is too long");
    }
    if (rc < 0 && !a.grid) rc = dpt_cli_usage_error("sweep", "--grid is needed");
    sweep_grid_t *g = calloc(1, sizeof *g);
    sweep_plan_t p = {.out_dir = dir, .self = self_path()};
    if (rc < 0 && (!g || !p.self))
        rc = dpt_cli_fail(dpt_error(DPT_ERR_INTERNAL, "cannot find this program's path"));
    if (rc < 0) rc = plan_from_args(&a, &p, g);
    if (rc < 0) rc = vet_configs(&p);
    int lock_fd = -1;
    if (rc < 0) {
        dpt_status_t s = lock_dir(dir, &lock_fd);
        if (s == DPT_OK) s = check_identity(dir, id, id_len);
        rc = s ? dpt_cli_fail(s) : run_sweep(&p, lock_fd);
    }
    free((void *)p.configs), free(g), free(a.train), free(stored), free(stored_argv);
    return rc;
}
