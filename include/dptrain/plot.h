/* Plots of a run's metrics.csv (loss, accuracy and learning rate against epoch) drawn by
 * gnuplot, for `dptrain plot` and for the trainer at the end of a run. */
#ifndef DPTRAIN_PLOT_H
#define DPTRAIN_PLOT_H

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

#ifdef __cplusplus
}
#endif
#endif
