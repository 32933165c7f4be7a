/* Owns the learning-rate range test: the exponential sweep on a fresh trainer, the debiased
 * EMA of the loss with early stop at divergence, the suggestions, the CSV, and handing the
 * curve to the plot (src/io/plot_lr.c draws it). */
#include "dptrain/lr_find.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dptrain/optimizer.h"
#include "dptrain/plot.h"
#include "core/fmt.h"

dpt_lr_find_config_t dpt_lr_find_config_default(void)
{
    return (dpt_lr_find_config_t){
        .start_lr = 1e-7, .end_lr = 10, .steps = 100, .beta = 0.98, .diverge_factor = 4};
}

static dpt_status_t check_config(const dpt_lr_find_config_t *c)
{
    if (!(c->start_lr > 0) || !isfinite(c->start_lr))
        return dpt_error(DPT_ERR_INVALID_ARG, "lr-find: start %g must be a positive number",
                         c->start_lr);
    if (!(c->end_lr > c->start_lr) || !isfinite(c->end_lr))
        return dpt_error(DPT_ERR_INVALID_ARG, "lr-find: end %g must be a number above start %g",
                         c->end_lr, c->start_lr);
    if (c->steps < 2 || c->steps > 100000)
        return dpt_error(DPT_ERR_INVALID_ARG, "lr-find: steps %zu outside [2, 100000]", c->steps);
    if (!(c->beta >= 0 && c->beta < 1))
        return dpt_error(DPT_ERR_INVALID_ARG, "lr-find: beta %g outside [0, 1)", c->beta);
    if (!(c->diverge_factor > 1) || !isfinite(c->diverge_factor))
        return dpt_error(DPT_ERR_INVALID_ARG, "lr-find: diverge_factor %g must be above 1",
                         c->diverge_factor);
    return DPT_OK;
}

/* The sweep's state, shared with the LR callback: it smooths each finished step's loss and
 * answers NaN (stop) once the curve has diverged. */
typedef struct sweep {
    const dpt_lr_find_config_t *cfg;
    dpt_lr_find_result_t *res;
    double avg, best;
    size_t seen; /* losses smoothed so far */
    int stop;
} sweep_t;

/* Folds loss i into the debiased EMA; sets stop on divergence. */
static void take_loss(sweep_t *s, size_t i)
{
    const double beta = s->cfg->beta, loss = s->res->loss[i];
    s->avg = beta * s->avg + (1 - beta) * loss;
    double smoothed = s->avg / (1 - pow(beta, (double)(i + 1)));
    s->res->smoothed[i] = smoothed;
    s->seen = i + 1;
    if (!isfinite(smoothed) || (i > 0 && smoothed > s->cfg->diverge_factor * s->best)) s->stop = 1;
    if (smoothed < s->best || i == 0) s->best = smoothed;
}

static double sweep_lr(void *user, uint64_t step, double *momentum)
{
    sweep_t *s = user;
    if (step > 0) take_loss(s, step - 1);
    if (s->stop) return NAN;
    const dpt_lr_find_config_t *c = s->cfg;
    double lr = c->start_lr * pow(c->end_lr / c->start_lr, (double)step / (double)(c->steps - 1));
    s->res->lr[step] = lr;
    return lr;
}

void dpt_lr_find_result_free(dpt_lr_find_result_t *r)
{
    if (!r) return;
    free(r->lr), free(r->loss), free(r->smoothed);
    r->lr = r->loss = r->smoothed = NULL;
    r->n = 0;
}

/* The points the suggestions look at: fastai skips the first tenth (the loss has not yet
 * reacted to the LR) and the last few (the divergence); too short a curve keeps them all. */
static void usable_range(size_t n, size_t *lo, size_t *hi)
{
    size_t skip_end = n / 4 < 5 ? n / 4 : 5;
    *lo = n / 10;
    *hi = n - skip_end;
    if (*hi < *lo + 2) *lo = 0, *hi = n;
}

/* fastai's valley (fastai.callback.schedule.valley): the longest strictly decreasing
 * subsequence of the loss curve; the suggestion sits 1/2 of the way into its middle third:
 * idx = start + floor(len/3) + floor(len/3/2), with len = end - start. */
static size_t valley_index(const double *loss, size_t n)
{
    size_t *lds = malloc(n * sizeof *lds), max_end = 0;
    long max_start = 0; /* fastai's start can be -1 (a run from index 0): signed */
    if (!lds) return 0;
    for (size_t i = 0; i < n; i++)
        lds[i] = 1;
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (loss[i] < loss[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
        if (lds[max_end] < lds[i]) {
            max_end = i;
            max_start = (long)max_end - (long)lds[max_end];
        }
    }
    free(lds);
    double sections = (double)((long)max_end - max_start) / 3;
    long idx = max_start + (long)sections + (long)(sections / 2);
    return idx < 0 ? 0 : (size_t)idx >= n ? n - 1 : (size_t)idx;
}

void dpt_lr_find_suggest(dpt_lr_find_result_t *r)
{
    r->steepest = r->valley = r->min_div10 = NAN;
    r->steepest_idx = r->valley_idx = r->min_idx = 0;
    if (r->n < 2) return;
    size_t lo, hi;
    usable_range(r->n, &lo, &hi);
    const double *s = r->smoothed, *lr = r->lr;
    double best_grad = INFINITY, best_loss = INFINITY;
    for (size_t i = lo; i < hi; i++) {
        if (isfinite(s[i]) && s[i] < best_loss) best_loss = s[i], r->min_idx = i;
        if (i + 1 >= hi) continue;
        double g = (s[i + 1] - s[i]) / (log(lr[i + 1]) - log(lr[i]));
        if (isfinite(g) && g < best_grad) best_grad = g, r->steepest_idx = i;
    }
    if (isfinite(best_loss)) r->min_div10 = lr[r->min_idx] / 10;
    if (isfinite(best_grad)) r->steepest = lr[r->steepest_idx];
    r->valley_idx = lo + valley_index(s + lo, hi - lo);
    r->valley = lr[r->valley_idx];
}

dpt_status_t dpt_lr_find(const dpt_model_t *model, const char *optimizer_spec,
                         const dpt_trainer_config_t *tcfg, const dpt_dataset_t *train,
                         const dpt_lr_find_config_t *cfg, dpt_lr_find_result_t *out)
{
    memset(out, 0, sizeof *out);
    dpt_status_t s = check_config(cfg);
    if (s != DPT_OK) return s;
    out->lr = calloc(cfg->steps, sizeof(double));
    out->loss = calloc(cfg->steps, sizeof(double));
    out->smoothed = calloc(cfg->steps, sizeof(double));
    if (!out->lr || !out->loss || !out->smoothed)
        return dpt_error(DPT_ERR_NOMEM, "lr-find: out of memory for %zu steps", cfg->steps);
    dpt_optimizer_t *opt = NULL;
    dpt_trainer_t *t = NULL;
    s = dpt_optimizer_create(optimizer_spec, model, &opt);
    if (s == DPT_OK) s = dpt_trainer_create(model, opt, tcfg, &t);
    sweep_t sw = {.cfg = cfg, .res = out};
    dpt_epoch_stats_t st;
    if (s == DPT_OK)
        s = dpt_trainer_train_steps(t, train, cfg->steps, sweep_lr, &sw, out->loss, &st);
    if (s == DPT_OK) {
        /* The callback smooths a loss when asked for the next LR: the last one is left. */
        if (!sw.stop && st.steps > 0) take_loss(&sw, st.steps - 1);
        out->n = sw.seen;
        out->stopped_early = sw.stop;
        dpt_lr_find_suggest(out);
    }
    dpt_trainer_free(t);
    dpt_optimizer_free(opt);
    return s;
}

dpt_status_t dpt_lr_find_write_csv(const dpt_lr_find_result_t *r, const char *path)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return dpt_error(DPT_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        dpt_status_t s = dpt_error(DPT_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    int bad = fputs("lr,loss,smoothed_loss\n", f) < 0;
    for (size_t i = 0; i < r->n && !bad; i++)
        bad = dpt_fprint_double(f, r->lr[i]) < 0 || fputc(',', f) == EOF ||
              dpt_fprint_double(f, r->loss[i]) < 0 || fputc(',', f) == EOF ||
              dpt_fprint_double(f, r->smoothed[i]) < 0 || fputc('\n', f) == EOF;
    bad |= fclose(f) != 0;
    dpt_status_t s = DPT_OK;
    if (bad)
        s = dpt_error(DPT_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    else if (rename(tmp, path) != 0)
        s = dpt_error(DPT_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (s != DPT_OK) unlink(tmp);
    free(tmp);
    return s;
}

dpt_status_t dpt_lr_find_plot(const dpt_lr_find_result_t *r, const char *png_path)
{
    dpt_plot_lr_curve_t c = {.n = r->n,
                             .lr = r->lr,
                             .loss = r->loss,
                             .smoothed = r->smoothed,
                             .valley = r->valley,
                             .steepest = r->steepest,
                             .min_div10 = r->min_div10};
    return dpt_plot_lr_curve(&c, png_path);
}
