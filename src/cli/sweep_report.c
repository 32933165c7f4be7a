/* Owns what a sweep reports: DIR/trials.csv (one row per trial), the ranking of
 * configurations by the mean over seeds on stdout, and the two plots. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sweep.h"
#include "core/fmt.h"
#include "dptrain/metrics.h"
#include "dptrain/plot.h"

/* ---- trials.csv ----------------------------------------------------------------------- */

dpt_status_t sweep_write_trials(const sweep_plan_t *p, const sweep_trial_t *t, size_t n)
{
    const size_t nk = p->grid->n_keys, ncols = nk + 10;
    const char *cols[SWEEP_MAX_KEYS + 10];
    char final[64], best[64], path[1100];
    snprintf(final, sizeof final, "final_%s", p->metric);
    snprintf(best, sizeof best, "best_%s", p->metric);
    size_t c = 0;
    cols[c++] = "trial";
    cols[c++] = "config";
    for (size_t k = 0; k < nk; k++)
        cols[c++] = p->grid->key[k].name;
    const char *tail[] = {"seed", "status", "epochs", final, best, "best_epoch", "seconds", "dir"};
    for (size_t k = 0; k < 8; k++)
        cols[c++] = tail[k];
    snprintf(path, sizeof path, "%s/trials.csv", p->out_dir);
    dpt_metrics_writer_t *w;
    dpt_status_t s = dpt_metrics_open(path, cols, ncols, -1, &w);
    for (size_t i = 0; i < n && s == DPT_OK; i++) {
        dpt_metric_value_t v[SWEEP_MAX_KEYS + 10];
        c = 0;
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_INT, .i = (int64_t)i};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_INT, .i = (int64_t)t[i].config};
        for (size_t k = 0; k < nk; k++)
            v[c++] = (dpt_metric_value_t){
                .kind = DPT_MV_TEXT,
                .text = sweep_config_value(p->grid, &p->configs[t[i].config], k)};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_INT, .i = (int64_t)t[i].seed};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_TEXT, .text = sweep_status_name(t[i].status)};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_INT, .i = (int64_t)t[i].epochs};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_REAL, .r = t[i].final};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_REAL, .r = t[i].best};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_INT, .i = (int64_t)t[i].best_epoch};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_REAL, .r = t[i].seconds};
        v[c++] = (dpt_metric_value_t){.kind = DPT_MV_TEXT, .text = t[i].dir};
        s = dpt_metrics_write_row(w, v);
    }
    dpt_metrics_close(w);
    return s;
}

/* ---- the ranking ---------------------------------------------------------------------- */

/* A configuration over its seeds. */
typedef struct summary {
    size_t config, n, finished, diverged, failed, stopped;
    double mean, std, lo, hi;
    int max;
} summary_t;

static summary_t summarise(const sweep_plan_t *p, const sweep_trial_t *t, size_t n, size_t config)
{
    summary_t s = {.config = config, .lo = INFINITY, .hi = -INFINITY, .max = p->metric_max};
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].config != config) continue;
        s.n++;
        s.diverged += t[i].status == TRIAL_DIVERGED;
        s.failed += t[i].status == TRIAL_FAILED;
        s.stopped += t[i].status == TRIAL_STOPPED;
        if ((t[i].status != TRIAL_DONE && t[i].status != TRIAL_EARLY) || !isfinite(t[i].final))
            continue;
        s.finished++;
        sum += t[i].final;
        sq += t[i].final * t[i].final;
        s.lo = fmin(s.lo, t[i].final);
        s.hi = fmax(s.hi, t[i].final);
    }
    s.mean = s.finished ? sum / (double)s.finished : NAN;
    double var = s.finished > 1 ? (sq - sum * s.mean) / (double)(s.finished - 1) : 0;
    s.std = sqrt(var > 0 ? var : 0);
    return s;
}

/* Complete configurations first (best mean first), then the rest by index. */
static int by_mean(const void *a, const void *b)
{
    const summary_t *x = a, *y = b;
    int cx = x->finished == x->n && x->n, cy = y->finished == y->n && y->n;
    if (cx != cy) return cy - cx;
    if (cx && x->mean != y->mean) return (x->max ? x->mean > y->mean : x->mean < y->mean) ? -1 : 1;
    return x->config < y->config ? -1 : 1;
}

static summary_t *ranking(const sweep_plan_t *p, const sweep_trial_t *t, size_t n)
{
    summary_t *s = calloc(p->n_configs, sizeof *s);
    if (!s) return NULL;
    for (size_t c = 0; c < p->n_configs; c++)
        s[c] = summarise(p, t, n, c);
    qsort(s, p->n_configs, sizeof *s, by_mean);
    return s;
}

void sweep_print_summary(const sweep_plan_t *p, const sweep_trial_t *t, size_t n)
{
    size_t count[TRIAL_FAILED + 1] = {0};
    for (size_t i = 0; i < n; i++)
        count[t[i].status]++;
    printf("sweep: %zu trials (%zu configurations x %zu seeds): %zu done, %zu stopped early, %zu "
           "stopped by halving, %zu diverged, %zu failed%s\n",
           n, p->n_configs, p->n_seeds, count[TRIAL_DONE], count[TRIAL_EARLY], count[TRIAL_STOPPED],
           count[TRIAL_DIVERGED], count[TRIAL_FAILED],
           count[TRIAL_PENDING] ? " (some still pending)" : "");
    summary_t *s = ranking(p, t, n);
    if (!s) return;
    printf("rank  %-12s mean +- std     (min .. max)        seeds  configuration\n", p->metric);
    for (size_t r = 0; r < p->n_configs; r++) {
        char cfg[1024];
        sweep_config_text(p->grid, &p->configs[s[r].config], cfg, sizeof cfg);
        if (s[r].finished == s[r].n && s[r].n)
            printf("%4zu  %.4f +- %.4f    (%.4f .. %.4f)  %5zu  %s\n", r + 1, s[r].mean, s[r].std,
                   s[r].lo, s[r].hi, s[r].n, cfg);
        else
            printf("   -  %zu/%zu finished, %zu stopped by halving, %zu diverged, %zu failed  %s\n",
                   s[r].finished, s[r].n, s[r].stopped, s[r].diverged, s[r].failed, cfg);
    }
    free(s);
}

/* ---- plots ---------------------------------------------------------------------------- */

typedef struct plot_ctx {
    const sweep_plan_t *p;
    const sweep_trial_t *t;
    size_t n;
    size_t lr_key;
} plot_ctx_t;

/* The configuration without the lr key: the curve a point belongs to. */
static void group_text(const plot_ctx_t *c, size_t config, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    const sweep_grid_t *g = c->p->grid;
    for (size_t k = 0; k < g->n_keys && len < cap; k++)
        if (k != c->lr_key)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s=%s", len ? " " : "", g->key[k].name,
                                    sweep_config_value(g, &c->p->configs[config], k));
    if (!buf[0]) snprintf(buf, cap, "all");
}

/* Metric against lr: one line per group of the other keys, a point per configuration (the
 * mean over its finished seeds), log x. */
static void put_metric_plot(FILE *f, void *user)
{
    const plot_ctx_t *c = user;
    const sweep_plan_t *p = c->p;
    char *done = calloc(p->n_configs, 1);
    if (!done) return;
    size_t groups = 0;
    fprintf(f,
            "set logscale x\nset xlabel 'lr'\nset ylabel '%s (mean over seeds)'\n"
            "set key outside below\nset grid\n",
            p->metric);
    for (size_t a = 0; a < p->n_configs; a++) {
        if (done[a]) continue;
        char ga[1024], gb[1024];
        group_text(c, a, ga, sizeof ga);
        fprintf(f, "$g%zu << EOD\n", groups);
        for (size_t b = a; b < p->n_configs; b++) {
            group_text(c, b, gb, sizeof gb);
            if (strcmp(ga, gb)) continue;
            done[b] = 1;
            summary_t s = summarise(p, c->t, c->n, b);
            if (!s.finished) continue;
            fprintf(f, "%s ", sweep_config_value(p->grid, &p->configs[b], c->lr_key));
            dpt_fprint_double(f, s.mean);
            fputc('\n', f);
        }
        fprintf(f, "EOD\n");
        fprintf(f, "# %s\n", ga);
        groups++;
    }
    fprintf(f, "plot ");
    memset(done, 0, p->n_configs);
    size_t g = 0;
    for (size_t a = 0; a < p->n_configs; a++) {
        if (done[a]) continue;
        char ga[1024], gb[1024];
        group_text(c, a, ga, sizeof ga);
        for (size_t b = a; b < p->n_configs; b++) {
            group_text(c, b, gb, sizeof gb);
            if (!strcmp(ga, gb)) done[b] = 1;
        }
        fprintf(f, "%s$g%zu using 1:2 smooth unique with linespoints title ", g ? ", " : "", g);
        dpt_gnuplot_put_quoted(f, ga);
        g++;
    }
    fprintf(f, "\n");
    free(done);
}

/* The validation metric per epoch of the best five finished trials. */
static void put_curves_plot(FILE *f, void *user)
{
    const plot_ctx_t *c = user;
    const sweep_plan_t *p = c->p;
    summary_t *s = ranking(p, c->t, c->n);
    if (!s) return;
    fprintf(f, "set xlabel 'epoch'\nset ylabel '%s'\nset key outside below\nset grid\n", p->metric);
    size_t shown = 0;
    char titles[5][1100];
    for (size_t r = 0; r < p->n_configs && shown < 5; r++) {
        if (s[r].finished != s[r].n || !s[r].n) continue;
        for (size_t i = 0; i < c->n; i++) {
            if (c->t[i].config != s[r].config) continue;
            char path[1100];
            snprintf(path, sizeof path, "%s/metrics.csv", c->t[i].dir);
            dpt_metrics_table_t *m;
            if (dpt_metrics_read(path, &m) != DPT_OK) break;
            size_t col = dpt_metrics_table_find(m, p->metric);
            fprintf(f, "$c%zu << EOD\n", shown);
            for (size_t row = 0; row < dpt_metrics_table_rows(m); row++)
                if (col < dpt_metrics_table_cols(m))
                    fprintf(f, "%zu %s\n", row + 1, dpt_metrics_table_field(m, row, col));
            fprintf(f, "EOD\n");
            dpt_metrics_table_free(m);
            char cfg[1024];
            sweep_config_text(p->grid, &p->configs[s[r].config], cfg, sizeof cfg);
            snprintf(titles[shown], sizeof titles[shown], "%zu. %s (seed %llu)", r + 1, cfg,
                     (unsigned long long)c->t[i].seed);
            shown++;
            break; /* the configuration's first seed */
        }
    }
    fprintf(f, "plot ");
    for (size_t k = 0; k < shown; k++) {
        fprintf(f, "%s$c%zu using 1:2 with linespoints title ", k ? ", " : "", k);
        dpt_gnuplot_put_quoted(f, titles[k]);
    }
    if (!shown) fprintf(f, "0 title 'no finished trial'");
    fprintf(f, "\n");
    free(s);
}

dpt_status_t sweep_plot(const sweep_plan_t *p, const sweep_trial_t *t, size_t n)
{
    plot_ctx_t c = {p, t, n, p->grid->n_keys};
    for (size_t k = 0; k < p->grid->n_keys; k++)
        if (!strcmp(p->grid->key[k].name, "lr")) c.lr_key = k;
    char path[1100];
    dpt_status_t s = DPT_OK;
    if (c.lr_key < p->grid->n_keys) {
        snprintf(path, sizeof path, "%s/sweep-metric.png", p->out_dir);
        s = dpt_gnuplot_draw(path, 600, put_metric_plot, &c);
    }
    if (s == DPT_OK) {
        snprintf(path, sizeof path, "%s/sweep-curves.png", p->out_dir);
        s = dpt_gnuplot_draw(path, 600, put_curves_plot, &c);
    }
    return s;
}
