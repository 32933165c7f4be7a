/* Owns the LR range test plot: loss and smoothed loss against learning rate (log axis) with
 * the suggestions marked, drawn by gnuplot the way plot.c does it (no shell, a private
 * temporary script and PNG beside the target, renamed over it when gnuplot succeeds). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dptrain/lr_find.h"

extern char **environ;

/* An executable gnuplot on PATH, as execvp would find it; malloc'd, or NULL. */
static char *find_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;; p++) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = malloc(len + 10);
        if (!cand) return NULL;
        snprintf(cand, len + 10, "%.*s/gnuplot", len ? (int)len : 1, len ? p : ".");
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) return cand;
        free(cand);
        if (!colon) return NULL;
        p = colon;
    }
}

/* A gnuplot single-quoted string: only ' needs escaping (as ''). */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void put_marker(FILE *f, int id, double lr, const char *what)
{
    if (!isfinite(lr) || lr <= 0) return;
    fprintf(f, "set arrow %d from %.17g, graph 0 to %.17g, graph 1 nohead dashtype 2\n", id, lr,
            lr);
    fprintf(f, "set label %d '%s %.3g' at %.17g, graph %.2f left offset 0.5,0\n", id, what, lr, lr,
            0.95 - 0.06 * id);
}

static void put_script(FILE *f, const dpt_lr_find_result_t *r, const char *png_tmp)
{
    fprintf(f, "if (strstrt(' '.GPVAL_TERMINALS.' ', ' pngcairo ') > 0) {\n"
               "  set terminal pngcairo noenhanced size 900,600 font ',10'\n"
               "} else {\n  set terminal png noenhanced size 900,600\n}\nset output ");
    put_quoted(f, png_tmp);
    fprintf(f, "\n$curve << EOD\n");
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < r->n; i++) {
        fprintf(f, "%.17g %.17g %.17g\n", r->lr[i], isfinite(r->loss[i]) ? r->loss[i] : NAN,
                isfinite(r->smoothed[i]) ? r->smoothed[i] : NAN);
        if (isfinite(r->smoothed[i])) lo = fmin(lo, r->smoothed[i]), hi = fmax(hi, r->smoothed[i]);
        if (isfinite(r->loss[i])) lo = fmin(lo, r->loss[i]);
    }
    fprintf(f, "EOD\nset datafile missing 'NaN'\nset logscale x\nset format x '%%g'\nset grid\nset key top left\n"
               "set title 'learning-rate range test'\nset xlabel 'learning rate'\n"
               "set ylabel 'loss'\n");
    /* Divergence shoots the loss up: keep the interesting part in view. */
    double first = r->smoothed[0], top = hi;
    if (isfinite(first) && first > lo) top = fmin(hi, first + (first - lo));
    if (isfinite(lo) && top > lo)
        fprintf(f, "set yrange [%.17g:%.17g]\n", lo - 0.05 * (top - lo), top + 0.05 * (top - lo));
    put_marker(f, 1, r->valley, "valley");
    put_marker(f, 2, r->steepest, "steepest");
    put_marker(f, 3, r->min_div10, "minimum/10");
    fprintf(f, "plot $curve using 1:2 with points pointsize 0.5 title 'loss', "
               "$curve using 1:3 with lines linewidth 2 title 'smoothed loss'\n"
               "unset output\n");
}

static dpt_status_t run_gnuplot(const char *gnuplot, const char *script, const char *png)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return dpt_error(DPT_ERR_NOMEM, "%s: cannot start gnuplot", png);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return dpt_error(DPT_ERR_IO, "%s: cannot run %s: %s", png, gnuplot, strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return dpt_error(DPT_ERR_IO, "%s: waiting for gnuplot: %s", png, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return DPT_OK;
    return dpt_error(DPT_ERR_IO, "%s: gnuplot failed (%s %d)", png,
                     WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

dpt_status_t dpt_lr_find_plot(const dpt_lr_find_result_t *r, const char *png_path)
{
    if (!png_path || !*png_path || strpbrk(png_path, "\r\n"))
        return dpt_error(DPT_ERR_INVALID_ARG, "lr-find plot: need a PNG path without line breaks");
    if (r->n == 0) return dpt_error(DPT_ERR_INVALID_ARG, "lr-find plot: no points to draw");
    char *gnuplot = find_gnuplot();
    if (!gnuplot)
        return dpt_error(DPT_ERR_UNSUPPORTED,
                         "gnuplot not found: install it with apt-get install gnuplot-nox");
    size_t n = strlen(png_path) + 64;
    char *script = malloc(n), *png_tmp = malloc(n);
    dpt_status_t st = DPT_OK;
    int fd = -1;
    if (!script || !png_tmp) st = dpt_error(DPT_ERR_NOMEM, "%s: out of memory", png_path);
    for (unsigned id = 0; !st && fd < 0 && id < 100; id++) {
        snprintf(script, n, "%s.tmp.%ld.%u.gp", png_path, (long)getpid(), id);
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
        put_script(f, r, png_tmp);
        if (ferror(f) | fclose(f))
            st = dpt_error(DPT_ERR_IO, "%s: writing %s failed", png_path, script);
        if (!st) st = run_gnuplot(gnuplot, script, png_path);
        if (!st && rename(png_tmp, png_path) != 0)
            st = dpt_error(DPT_ERR_IO, "%s: cannot rename %s over it: %s", png_path, png_tmp,
                           strerror(errno));
        unlink(script);
        if (st) unlink(png_tmp);
    }
    free(script), free(png_tmp), free(gnuplot);
    return st;
}
