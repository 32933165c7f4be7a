/* Owns a run's divergence guard and early stopping around the epoch loop: the guard's
 * snapshot of the last good state, its epoch checks and rollbacks (or giving up), and early
 * stopping's copy of the best parameters with their restore at the run's end. The decisions
 * themselves are guards.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/run_internal.h"

/* Early stopping and the divergence guard: specs, state, and the buffers they need, sized
 * here so that no step allocates. */
dpt_status_t run_guard_build(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_status_t s = dpt_early_stop_parse(c->early_stop_spec, &r->es.cfg);
    if (s == DPT_OK) s = dpt_guard_parse(c->divergence_guard_spec, &r->guard.cfg);
    if (s != DPT_OK) return s;
    if (r->es.cfg.enabled && !r->data.val)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "--early-stop monitors %s but the data has no validation part: use "
                         "--val-split",
                         dpt_early_stop_monitor_name(&r->es.cfg));
    dpt_early_stop_init(&r->es.cfg, &r->es.state);
    dpt_guard_init(&r->guard.state);
    r->guard.chance_loss = log((double)dpt_model_classes(r->model));
    size_t n_params = dpt_model_param_count(r->model), n_opt;
    dpt_optimizer_state(r->opt, &n_opt);
    if (r->es.cfg.restore_best && !(r->es.best_params = malloc(n_params * sizeof(float))))
        return dpt_error(DPT_ERR_NOMEM, "out of memory for the best parameters");
    if (r->guard.cfg.enabled) {
        r->guard.snap.params = malloc(n_params * sizeof(float));
        r->guard.snap.opt = malloc((n_opt ? n_opt : 1) * sizeof(float));
        if (!r->guard.snap.params || !r->guard.snap.opt)
            return dpt_error(DPT_ERR_NOMEM, "out of memory for the divergence guard's snapshot");
    }
    return DPT_OK;
}

void run_guard_diverged(run_t *r, uint64_t step, const char *why)
{
    r->guard.diverged = 1;
    r->guard.diverged_step = step;
    snprintf(r->guard.why, sizeof r->guard.why, "%s", why);
}

/* The guard judges losses per step; a non-finite gradient in the epoch's last step has no
 * next loss to show in, so the parameters are checked once per epoch (one read pass). */
void run_guard_check_params(run_t *r)
{
    const float *p = dpt_trainer_params(r->trainer);
    size_t n = dpt_model_param_count(r->model);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            run_guard_diverged(r, dpt_trainer_step_count(r->trainer), "non-finite parameters");
            return;
        }
}

void run_guard_check_val_loss(run_t *r, double vloss)
{
    /* Finite parameters can still overflow the logits: such an epoch is no good state. */
    if (r->guard.cfg.enabled && !r->guard.diverged && r->data.val && !isfinite(vloss))
        run_guard_diverged(r, dpt_trainer_step_count(r->trainer),
                           isnan(vloss) ? "validation loss nan" : "validation loss inf");
}

/* The last good state: the one at the start of the epoch (= the last epoch-end checkpoint's),
 * or, in an epoch resumed from a mid-epoch checkpoint, the resumed state: the epoch-start
 * state is not in that checkpoint (it would double its size). */
void run_guard_snapshot(run_t *r)
{
    size_t n_opt;
    const float *opt = dpt_optimizer_state(r->opt, &n_opt);
    memcpy(r->guard.snap.params, dpt_trainer_params(r->trainer),
           dpt_model_param_count(r->model) * sizeof(float));
    if (n_opt) memcpy(r->guard.snap.opt, opt, n_opt * sizeof(float));
    r->guard.snap.steps = dpt_trainer_step_count(r->trainer);
    r->guard.snap.guard = r->guard.state;
    r->guard.snap.plateau = r->plateau;
    r->guard.snap.from = r->epoch.from;
    r->guard.snap.has_from = r->epoch.has_from;
}

/* The guard gave up: a metrics row saying so (resume drops it with the other rows past the
 * checkpoint), and the error. The checkpoint of the last good epoch is untouched. */
static dpt_status_t give_up(run_t *r, const dpt_epoch_stats_t *es)
{
    unsigned long long epoch = (unsigned long long)r->epochs_done + 1;
    run_event(r, "diverged: %s at step %llu after %zu rollbacks", r->guard.why,
              (unsigned long long)r->guard.diverged_step, r->guard.rollbacks_in_row);
    run_row_t row = run_row_make(r, es, epoch, r->guard.diverged_step, NAN, NAN);
    dpt_status_t s = run_row_write(r, &row);
    if (s != DPT_OK) return s;
    char last[4200];
    if (r->epochs_done)
        snprintf(last, sizeof last, "%s/%s holds the last good epoch (%llu)", r->cfg->out_dir,
                 DPT_RUN_CHECKPOINT, (unsigned long long)r->epochs_done);
    else
        snprintf(last, sizeof last, "no epoch finished, so there is no checkpoint");
    return dpt_error(DPT_ERR_DIVERGED,
                     "training diverged in epoch %llu (%s at step %llu) and %zu rollback%s in a "
                     "row (lr x%g) did not help; %s: lower --lr (or loosen --divergence-guard) "
                     "and resume",
                     epoch, r->guard.why, (unsigned long long)r->guard.diverged_step,
                     r->guard.rollbacks_in_row, r->guard.rollbacks_in_row == 1 ? "" : "s",
                     r->guard.state.lr_scale, last);
}

dpt_status_t run_guard_roll_back(run_t *r, const dpt_progress_t *prog, const dpt_epoch_stats_t *es)
{
    if (r->guard.rollbacks_in_row >= r->guard.cfg.retries) return give_up(r, es);
    size_t n_opt;
    float *opt = dpt_optimizer_state(r->opt, &n_opt);
    memcpy(dpt_trainer_params(r->trainer), r->guard.snap.params,
           dpt_model_param_count(r->model) * sizeof(float));
    if (n_opt) memcpy(opt, r->guard.snap.opt, n_opt * sizeof(float));
    dpt_trainer_set_step_count(r->trainer, r->guard.snap.steps);
    double scale = r->guard.state.lr_scale * r->guard.cfg.factor;
    r->guard.state = r->guard.snap.guard; /* the loss average of the good state ... */
    r->guard.state.lr_scale = scale;      /* ... with the cumulative LR cut */
    r->plateau = r->guard.snap.plateau;
    r->epoch.from = r->guard.snap.from;
    r->epoch.has_from = r->guard.snap.has_from;
    r->guard.rollbacks_in_row++, r->guard.rollbacks++;
    run_event(r, "rollback %zu: %s at step %llu, lr x%g", r->guard.rollbacks_in_row, r->guard.why,
              (unsigned long long)r->guard.diverged_step, scale);
    run_say(prog, "epoch %llu: rollback %zu: %s at step %llu; retrying the epoch with lr x%g",
            (unsigned long long)r->epochs_done + 1, r->guard.rollbacks_in_row, r->guard.why,
            (unsigned long long)r->guard.diverged_step, scale);
    return r->files.steps ? dpt_step_log_rewind(r->files.steps) : DPT_OK;
}

int run_stopped_early(const run_t *r)
{
    return r->es.cfg.enabled && r->es.state.stopped;
}

const float *run_early_stop_update(run_t *r, double vloss, double vacc, char *stop_line, size_t n)
{
    if (!r->es.cfg.enabled) return NULL;
    double v = r->es.cfg.monitor_accuracy ? vacc : vloss;
    if (dpt_early_stop_update(&r->es.cfg, &r->es.state, v, r->epochs_done) && r->es.best_params) {
        memcpy(r->es.best_params, dpt_trainer_params(r->trainer),
               dpt_model_param_count(r->model) * sizeof(float));
        r->es.has_best_params = 1;
    }
    if (r->es.state.stopped) {
        char why[256];
        snprintf(why, sizeof why, "no %s improvement for %llu epochs (best %.6g at epoch %llu)",
                 dpt_early_stop_monitor_name(&r->es.cfg), (unsigned long long)r->es.state.wait,
                 r->es.state.best, (unsigned long long)r->es.state.best_epoch);
        run_event(r, "early stop: %s", why);
        snprintf(stop_line, n, "early stop after epoch %llu: %s",
                 (unsigned long long)r->epochs_done, why);
    }
    /* restore_best acts when the run ends, stopped early or not. */
    int last = r->es.state.stopped || r->epochs_done >= r->cfg->epochs;
    if (!last || !r->es.has_best_params) return NULL;
    run_event(r, "restored epoch %llu", (unsigned long long)r->es.state.best_epoch);
    return r->es.best_params;
}

void run_early_stop_restore(run_t *r, const dpt_progress_t *prog, const float *restored)
{
    if (!restored) return;
    run_say(prog, "restored the parameters of epoch %llu (%s %.6g) into %s/%s",
            (unsigned long long)r->es.state.best_epoch, dpt_early_stop_monitor_name(&r->es.cfg),
            r->es.state.best, r->cfg->out_dir, DPT_RUN_CHECKPOINT);
    memcpy(dpt_trainer_params(r->trainer), restored,
           dpt_model_param_count(r->model) * sizeof(float));
}
