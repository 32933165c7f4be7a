/* The progress display of a run: on a terminal one line per epoch redrawn in place (bar,
 * batches, samples/s, running loss, ETA) and finished by a summary; plain lines otherwise. */
#ifndef DPT_IO_PROGRESS_H
#define DPT_IO_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct dpt_progress {
    FILE *out;
    bool tty, quiet;
    size_t epoch, epochs;
    double start, last_draw;
} dpt_progress_t;

void dpt_progress_init(dpt_progress_t *p, FILE *out, bool quiet, size_t epochs);
void dpt_progress_epoch_begin(dpt_progress_t *p, size_t epoch);
/* Matches dpt_progress_fn: redraws at most 10 times a second, and only on a terminal. */
void dpt_progress_update(void *p, size_t batches_done, size_t batches_total, size_t samples_done,
                         double running_loss);
/* The epoch's summary line (replaces the bar on a terminal). */
void dpt_progress_epoch_end(dpt_progress_t *p, const char *summary);

#endif
