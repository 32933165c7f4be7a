/* Owns the learning-rate curve plot (the LR range test's): loss and smoothed loss against
 * learning rate (log axis) with the suggestions marked, drawn through dpt_gnuplot_draw
 * (src/io/plot.c). It takes plain arrays: io draws, train (lr_find.c) computes. */
#include <math.h>
#include <stdio.h>

#include "dptrain/plot.h"

static void put_marker(FILE *f, int id, double lr, const char *what)
{
    if (!isfinite(lr) || lr <= 0) return;
    fprintf(f, "set arrow %d from %.17g, graph 0 to %.17g, graph 1 nohead dashtype 2\n", id, lr,
            lr);
    fprintf(f, "set label %d '%s %.3g' at %.17g, graph %.2f left offset 0.5,0\n", id, what, lr, lr,
            0.95 - 0.06 * id);
}

static void put_script(FILE *f, void *user)
{
    const dpt_plot_lr_curve_t *r = user;
    fprintf(f, "$curve << EOD\n");
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < r->n; i++) {
        fprintf(f, "%.17g %.17g %.17g\n", r->lr[i], isfinite(r->loss[i]) ? r->loss[i] : NAN,
                isfinite(r->smoothed[i]) ? r->smoothed[i] : NAN);
        if (isfinite(r->smoothed[i])) lo = fmin(lo, r->smoothed[i]), hi = fmax(hi, r->smoothed[i]);
        if (isfinite(r->loss[i])) lo = fmin(lo, r->loss[i]);
    }
    fprintf(f, "EOD\nset datafile missing 'NaN'\nset logscale x\nset format x '%%g'\nset grid\nset "
               "key top left\n"
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
               "$curve using 1:3 with lines linewidth 2 title 'smoothed loss'\n");
}

dpt_status_t dpt_plot_lr_curve(const dpt_plot_lr_curve_t *c, const char *png_path)
{
    if (c->n == 0) return dpt_error(DPT_ERR_INVALID_ARG, "lr-find plot: no points to draw");
    return dpt_gnuplot_draw(png_path, 600, put_script, (void *)c);
}
