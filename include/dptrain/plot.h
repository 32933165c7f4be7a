/* Plots of a run's metrics.csv (loss, accuracy and learning rate against epoch) drawn by
 * gnuplot, for `dptrain plot` and for the trainer at the end of a run. */
#ifndef DPTRAIN_PLOT_H
#define DPTRAIN_PLOT_H

#include <stddef.h>
#include <stdio.h>

#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads metrics_csv (columns found by name: epoch is required; train_loss, val_loss,
 * train_accuracy, val_accuracy and lr are drawn when present; empty values are gaps) and
 * writes a PNG with three panels to png_path, replacing it atomically.
 *
 * Errors: DPT_ERR_IO when the CSV cannot be read or the PNG not written, DPT_ERR_FORMAT for a
 * malformed CSV (no epoch column, no rows, a non-numeric value), DPT_ERR_UNSUPPORTED when
 * gnuplot is not on PATH ("gnuplot not found: install it with apt-get install gnuplot-nox").
 * Runs gnuplot as a child process (no shell); safe to call from any one thread at a time. */
dpt_status_t dpt_plot_metrics(const char *metrics_csv, const char *png_path);

/* A loss curve against the learning rate with suggested learning rates marked: what the LR
 * range test draws (dpt_lr_find_plot hands its result over in this form). */
typedef struct dpt_plot_lr_curve {
    size_t n;                           /* points */
    const double *lr, *loss, *smoothed; /* n each; non-finite losses are gaps */
    double valley, steepest, min_div10; /* marked when finite and > 0 */
} dpt_plot_lr_curve_t;

/* Draws loss and smoothed loss against LR (log axis) with the marks, by gnuplot into png_path
 * (replaced atomically). DPT_ERR_INVALID_ARG without points; DPT_ERR_UNSUPPORTED when gnuplot
 * is not on PATH. */
dpt_status_t dpt_plot_lr_curve(const dpt_plot_lr_curve_t *c, const char *png_path);

/* Writes the body of a gnuplot script (data blocks, settings, plot commands) to f; the
 * terminal and output lines are already written and `unset output` follows. */
typedef void (*dpt_gnuplot_script_fn)(FILE *f, void *user);

/* The one way dptrain runs gnuplot: writes a script with a 900 x height PNG terminal (pngcairo when
 * available) and the body from put, runs gnuplot without a shell, and renames the PNG over
 * png_path only on success. DPT_ERR_UNSUPPORTED when gnuplot is not on PATH, DPT_ERR_IO when
 * it fails (with gnuplot's last error line). Used by plot, schedule, lr-find and bench. */
dpt_status_t dpt_gnuplot_draw(const char *png_path, int height, dpt_gnuplot_script_fn put,
                              void *user);

/* Writes s as a gnuplot single-quoted string (a quote inside is doubled). */
void dpt_gnuplot_put_quoted(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif
