/* The learning-rate range test (Smith 2017; fastai's lr_find): an exponential sweep of the
 * LR, one optimizer step each, on a fresh trainer, with a smoothed loss curve, early stop at
 * divergence, and suggested learning rates read off the curve. Formulas: docs/optimizers.md.
 *
 * Thread safety: one call at a time per model; it starts its own worker threads. */
#ifndef DPTRAIN_LR_FIND_H
#define DPTRAIN_LR_FIND_H

#include <stddef.h>

#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "dptrain/status.h"
#include "dptrain/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dpt_lr_find_config {
    double start_lr, end_lr; /* 0 < start < end */
    size_t steps;            /* planned steps, >= 2 */
    double beta;             /* loss smoothing (debiased EMA) */
    double diverge_factor;   /* stop when smoothed loss > factor * best smoothed loss */
} dpt_lr_find_config_t;

/* start 1e-7, end 10, 100 steps, beta 0.98, diverge_factor 4. */
dpt_lr_find_config_t dpt_lr_find_config_default(void);

typedef struct dpt_lr_find_result {
    size_t n;                     /* steps taken and recorded */
    double *lr, *loss, *smoothed; /* n each (malloc'd; dpt_lr_find_result_free) */
    int stopped_early;            /* divergence (or a non-finite loss) ended the sweep */
    /* Suggestions (NaN when the curve has fewer than 2 usable points), with the index of the
     * point each was read from: */
    double steepest;
    size_t steepest_idx; /* most negative d(smoothed)/d(log lr) */
    double valley;
    size_t valley_idx; /* fastai's valley: see docs/optimizers.md */
    double min_div10;
    size_t min_idx; /* (LR of the lowest smoothed loss) / 10 */
} dpt_lr_find_result_t;

/* Runs the sweep: a new optimizer from optimizer_spec and a new trainer (tcfg: threads,
 * batch, micro-batch, seed, clipping) on model, trained on the first batches of `train`'s
 * epoch-0 order (wrapping around), lr_i = start * (end/start)^(i/(steps-1)). Fills *out
 * (freed with dpt_lr_find_result_free, also after errors). Errors: DPT_ERR_INVALID_ARG for
 * a bad config (naming the field) or a dataset smaller than one batch; those of the
 * optimizer and trainer. */
dpt_status_t dpt_lr_find(const dpt_model_t *model, const char *optimizer_spec,
                         const dpt_trainer_config_t *tcfg, const dpt_dataset_t *train,
                         const dpt_lr_find_config_t *cfg, dpt_lr_find_result_t *out);
void dpt_lr_find_result_free(dpt_lr_find_result_t *r);

/* Recomputes the suggestions of r from r->lr and r->smoothed (used by dpt_lr_find; public for
 * tests and for curves recorded elsewhere). */
void dpt_lr_find_suggest(dpt_lr_find_result_t *r);

/* Writes "lr,loss,smoothed_loss" and one %.17g row per step; atomic (temporary + rename). */
dpt_status_t dpt_lr_find_write_csv(const dpt_lr_find_result_t *r, const char *path);

/* Draws loss and smoothed loss against LR (log axis) with the suggestions marked, by gnuplot
 * into png_path (replaced atomically). DPT_ERR_UNSUPPORTED when gnuplot is not on PATH. */
dpt_status_t dpt_lr_find_plot(const dpt_lr_find_result_t *r, const char *png_path);

#ifdef __cplusplus
}
#endif
#endif
