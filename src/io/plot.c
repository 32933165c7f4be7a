/* Owns the metrics plot: metrics.csv -> gnuplot script -> three-panel PNG (loss, accuracy, LR). */
#include "dptrain/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dptrain/metrics.h"

extern char **environ;

/* The series drawn, in data-block column order (column 1 is the epoch). */
enum { S_TRAIN_LOSS, S_VAL_LOSS, S_TRAIN_ACC, S_VAL_ACC, S_LR, S_COUNT };
static const char *const series_col[S_COUNT] = {"train_loss", "val_loss", "train_accuracy",
                                                "val_accuracy", "lr"};
static const char *const series_title[S_COUNT] = {"train", "validation", "train", "validation",
                                                  "learning rate"};

/* The metrics as numbers: NAN marks an absent column or an empty field. */
typedef struct {
    size_t rows;
    double *epoch;
    double *v[S_COUNT];
    bool has[S_COUNT]; /* at least one finite value: gnuplot refuses an all-undefined series */
} series_t;

static void series_free(series_t *s)
{
    free(s->epoch);
    for (int k = 0; k < S_COUNT; k++)
        free(s->v[k]);
}

/* Parses a whole field as a number; empty (and nan/inf, never written by dptrain) is NAN. */
static bool parse_value(const char *text, double *out)
{
    if (!*text) {
        *out = NAN;
        return true;
    }
    char *end;
    double v = strtod(text, &end);
    if (*end) return false;
    *out = isfinite(v) ? v : NAN;
    return true;
}

static dpt_status_t load_series(const char *csv, series_t *s)
{
    dpt_metrics_table_t *t;
    dpt_status_t st = dpt_metrics_read(csv, &t);
    if (st) return st;
    size_t n = dpt_metrics_table_rows(t), ecol = dpt_metrics_table_find(t, "epoch");
    if (ecol == (size_t)-1)
        st = dpt_error(DPT_ERR_FORMAT, "%s: no 'epoch' column in the header", csv);
    else if (n == 0)
        st = dpt_error(DPT_ERR_FORMAT, "%s: no rows to plot", csv);
    s->rows = n;
    s->epoch = st ? NULL : calloc(n, sizeof *s->epoch);
    for (int k = 0; !st && k < S_COUNT; k++)
        s->v[k] = calloc(n, sizeof *s->v[k]);
    for (int k = 0; !st && k < S_COUNT; k++)
        if (!s->v[k] || !s->epoch) st = dpt_error(DPT_ERR_NOMEM, "%s: out of memory", csv);
    for (size_t r = 0; !st && r < n; r++) {
        const char *e = dpt_metrics_table_field(t, r, ecol);
        if (!parse_value(e, &s->epoch[r]) || isnan(s->epoch[r])) {
            st =
                dpt_error(DPT_ERR_FORMAT, "%s: row %zu: epoch '%s' is not a number", csv, r + 1, e);
            break;
        }
        for (int k = 0; !st && k < S_COUNT; k++) {
            size_t c = dpt_metrics_table_find(t, series_col[k]);
            const char *f = c == (size_t)-1 ? "" : dpt_metrics_table_field(t, r, c);
            if (!parse_value(f, &s->v[k][r]))
                st = dpt_error(DPT_ERR_FORMAT, "%s: row %zu, column '%s': '%s' is not a number",
                               csv, r + 1, series_col[k], f);
            s->has[k] |= !st && !isnan(s->v[k][r]);
        }
    }
    dpt_metrics_table_free(t);
    return st;
}

/* Finds an executable gnuplot on PATH the way execvp would; malloc'd path or NULL. */
static char *find_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;; p++) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = malloc(len + 10);
        if (!cand) return NULL;
        /* An empty PATH entry means the current directory. */
        snprintf(cand, len + 10, "%.*s/gnuplot", len ? (int)len : 1, len ? p : ".");
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) return cand;
        free(cand);
        if (!colon) return NULL;
        p = colon;
    }
}

void dpt_gnuplot_put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* One panel: the given series against epoch, or a "no data" note when none has a value. */
static void put_panel(FILE *f, const series_t *s, const char *title, const char *ylabel, int a,
                      int b, bool log_y)
{
    fprintf(f, "set title '%s'\nset ylabel '%s'\n%sset logscale y\n", title, ylabel,
            log_y ? "" : "un");
    if (!s->has[a] && (b < 0 || !s->has[b])) {
        fprintf(f, "set yrange [0:1]\nset label 1 'no data' at graph 0.5,0.5 center\n"
                   "plot 2 notitle\nunset label 1\nset yrange [*:*]\n");
        return;
    }
    const char *sep = "plot ";
    const int ks[2] = {a, b};
    for (int j = 0; j < 2; j++) {
        int k = ks[j];
        if (k < 0 || !s->has[k]) continue;
        fprintf(f, "%s$metrics using 1:%d with linespoints pointsize 0.6 title '%s'", sep, k + 2,
                series_title[k]);
        sep = ", ";
    }
    fputc('\n', f);
}

/* A log axis shows a learning rate that spans decades (warmup, decay) better than a linear one. */
static bool lr_wants_log(const series_t *s)
{
    double lo = INFINITY, hi = 0;
    for (size_t r = 0; r < s->rows; r++) {
        double v = s->v[S_LR][r];
        if (isnan(v)) continue;
        if (v <= 0) return false;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    return s->has[S_LR] && hi / lo >= 100;
}

typedef struct {
    const series_t *s;
    const char *csv;
} metrics_plot_t;

static void put_metrics_script(FILE *f, void *user)
{
    const series_t *s = ((metrics_plot_t *)user)->s;
    const char *csv = ((metrics_plot_t *)user)->csv;
    fprintf(f, "$metrics << EOD\n");
    double lo = INFINITY, hi = -INFINITY;
    for (size_t r = 0; r < s->rows; r++) {
        fprintf(f, "%.17g", s->epoch[r]);
        for (int k = 0; k < S_COUNT; k++)
            fprintf(f, " %.17g", s->v[k][r]);
        fputc('\n', f);
        lo = fmin(lo, s->epoch[r]);
        hi = fmax(hi, s->epoch[r]);
    }
    double pad = hi > lo ? (hi - lo) * 0.02 : 1;
    /* NaN is "missing": lines join across a gap instead of breaking at it. */
    fprintf(f,
            "EOD\nset datafile missing 'NaN'\nset xrange [%.17g:%.17g]\nset grid\n"
            "set key top right\nset xlabel 'epoch'\nset multiplot layout 3,1 title ",
            lo - pad, hi + pad);
    dpt_gnuplot_put_quoted(f, csv);
    fputc('\n', f);
    put_panel(f, s, "loss", "loss", S_TRAIN_LOSS, S_VAL_LOSS, false);
    put_panel(f, s, "accuracy", "accuracy", S_TRAIN_ACC, S_VAL_ACC, false);
    put_panel(f, s, "learning rate", "lr", S_LR, -1, lr_wants_log(s));
    fprintf(f, "unset multiplot\n");
}

/* The last non-empty line of gnuplot's stderr, to say why it failed. */
static void last_line(const char *log, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[strspn(line, " \t^")]) snprintf(out, cap, "%s", line);
    }
    fclose(f);
}

/* Runs gnuplot on the script without a shell; stdout to /dev/null, stderr to log. */
static dpt_status_t run_gnuplot(const char *gnuplot, const char *script, const char *log,
                                const char *png_path)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return dpt_error(DPT_ERR_NOMEM, "%s: cannot start gnuplot", png_path);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return dpt_error(DPT_ERR_IO, "%s: cannot run %s: %s", png_path, gnuplot, strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return dpt_error(DPT_ERR_IO, "%s: waiting for gnuplot: %s", png_path, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return DPT_OK;
    char why[600];
    last_line(log, why, sizeof why);
    return dpt_error(DPT_ERR_IO, "%s: gnuplot failed (%s %d)%s%s", png_path,
                     WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), why[0] ? ": " : "",
                     why);
}

/* Writes the script, runs gnuplot into a temporary PNG beside png_path, renames it over. */
static dpt_status_t draw(const char *png_path, int height, const char *gnuplot,
                         dpt_gnuplot_script_fn put, void *user)
{
    static atomic_uint counter;
    size_t n = strlen(png_path) + 64;
    char *script = malloc(n), *log = malloc(n), *png_tmp = malloc(n);
    dpt_status_t st = DPT_OK;
    int fd = -1;
    if (!script || !log || !png_tmp) st = dpt_error(DPT_ERR_NOMEM, "%s: out of memory", png_path);
    for (int attempt = 0; !st && fd < 0 && attempt < 100; attempt++) {
        unsigned id = atomic_fetch_add(&counter, 1);
        snprintf(script, n, "%s.tmp.%ld.%u.gp", png_path, (long)getpid(), id);
        snprintf(log, n, "%s.tmp.%ld.%u.log", png_path, (long)getpid(), id);
        snprintf(png_tmp, n, "%s.tmp.%ld.%u.png", png_path, (long)getpid(), id);
        fd = open(script, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0 && errno != EEXIST) break;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!st && !f) {
        st = dpt_error(DPT_ERR_IO, "%s: cannot create a temporary file beside it: %s", png_path,
                       strerror(errno));
        if (fd >= 0) close(fd);
    }
    if (f) {
        /* pngcairo draws smoother text; plain png (libgd) is the fallback some builds have. */
        fprintf(f,
                "if (strstrt(' '.GPVAL_TERMINALS.' ', ' pngcairo ') > 0) {\n"
                "  set terminal pngcairo noenhanced size 900,%d font ',10'\n"
                "} else {\n  set terminal png noenhanced size 900,%d\n}\nset output ",
                height, height);
        dpt_gnuplot_put_quoted(f, png_tmp);
        fputc('\n', f);
        put(f, user);
        fprintf(f, "unset output\n");
        if (ferror(f) | fclose(f))
            st = dpt_error(DPT_ERR_IO, "%s: writing %s failed: %s", png_path, script,
                           strerror(errno));
        if (!st) st = run_gnuplot(gnuplot, script, log, png_path);
        if (!st && rename(png_tmp, png_path) != 0)
            st = dpt_error(DPT_ERR_IO, "%s: cannot rename %s over it: %s", png_path, png_tmp,
                           strerror(errno));
        unlink(script);
        unlink(log);
        if (st) unlink(png_tmp);
    }
    free(script);
    free(log);
    free(png_tmp);
    return st;
}

dpt_status_t dpt_gnuplot_draw(const char *png_path, int height, dpt_gnuplot_script_fn put,
                              void *user)
{
    if (!png_path || !*png_path) return dpt_error(DPT_ERR_INVALID_ARG, "plot: need a PNG path");
    /* The path goes into a gnuplot script on a line of its own. */
    if (strpbrk(png_path, "\r\n"))
        return dpt_error(DPT_ERR_INVALID_ARG, "plot: paths with line breaks are not supported");
    char *gnuplot = find_gnuplot();
    if (!gnuplot)
        return dpt_error(DPT_ERR_UNSUPPORTED,
                         "gnuplot not found: install it with apt-get install gnuplot-nox");
    dpt_status_t st = draw(png_path, height, gnuplot, put, user);
    free(gnuplot);
    return st;
}

dpt_status_t dpt_plot_metrics(const char *metrics_csv, const char *png_path)
{
    if (!metrics_csv || !png_path || !*png_path)
        return dpt_error(DPT_ERR_INVALID_ARG, "plot: need a metrics CSV and a PNG path");
    /* The paths go into a gnuplot script one per line. */
    if (strpbrk(png_path, "\r\n") || strpbrk(metrics_csv, "\r\n"))
        return dpt_error(DPT_ERR_INVALID_ARG, "plot: paths with line breaks are not supported");
    series_t s = {0};
    dpt_status_t st = load_series(metrics_csv, &s);
    metrics_plot_t mp = {&s, metrics_csv};
    if (!st) st = dpt_gnuplot_draw(png_path, 1200, put_metrics_script, &mp);
    series_free(&s);
    return st;
}
