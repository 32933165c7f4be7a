/* Owns a training run's lifecycle and its epoch loop: checking the config, opening the run
 * directory, setting up (run_setup.c) or resuming (run_checkpoint.c), then epoch after epoch
 * training, validating, and either finishing the epoch (its row, checkpoints, summary line)
 * or rolling it back (run_guard.c); the trainer's per-step hook and stop requests. The
 * other rooms of a run are listed in run_internal.h. */
#include "dptrain/run.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dptrain/plot.h"
#include "kernels/gemm.h"
#include "parallel/world.h"
#include "train/run_internal.h"

dpt_run_config_t dpt_run_config_default(void)
{
    dpt_run_config_t c = {0};
    c.data_spec = "fashion-mnist";
    c.data = dpt_data_options_default();
    c.model_spec = DPT_DEFAULT_MODEL;
    c.optimizer_spec = "sgd:momentum=0.9";
    /* docs/lr-study.md: the best constant rate for the default model at the default epochs
     * (0.01 edges ahead from 6 epochs on). The schedule stays constant: a schedule spanning the
     * total epochs (onecycle, the study's best) would make `--resume --epochs N` extensions
     * differ from a longer run. */
    c.lr = 0.03;
    c.epochs = 3;
    c.trainer = dpt_trainer_config_default();
    c.out_dir = NULL; /* the CLI picks a timestamped default */
    return c;
}

run_path_t run_path(const run_t *r, const char *name)
{
    run_path_t p;
    snprintf(p.s, sizeof p.s, "%s/%s", r->cfg->out_dir, name);
    return p;
}

/* Set by dpt_run_request_stop (a signal handler), read by the step hook and the epoch loop. */
static volatile sig_atomic_t stop_signal, stop_requested;

void dpt_run_request_stop(int signo)
{
    stop_signal = signo;
    stop_requested = 1;
}

/* Whether to stop, agreed by every rank at the same point of the same step: the largest
 * signal any rank has seen (a signal may reach one rank only, e.g. Slurm's --signal or a kill
 * of one process). Every decision to stop reads this, never the local flag, so all ranks
 * stop after the same step. One tiny allreduce a step across processes; alone, the flag. */
static int stop_agreed(void)
{
    int mine = stop_requested ? (stop_signal ? (int)stop_signal : 1) : 0;
    int all = dpt_world_max_int(mine);
    if (all && !stop_requested) {
        stop_signal = all > 1 ? all : 0;
        stop_requested = 1;
    }
    return all != 0;
}

static double scheduled_lr(void *user, uint64_t step, double *momentum)
{
    run_t *r = user;
    double m;
    if (dpt_schedule_momentum(r->sched, step, &m)) *momentum = m;
    /* The guard's scale is 1 until a rollback: x1.0 keeps the LR bit for bit. */
    return r->guard.state.lr_scale * dpt_schedule_lr(r->sched, step, &r->plateau);
}

/* The trainer's per-step hook: the step log, the divergence guard, then mid-epoch
 * checkpoints (of sane steps only). 0 ends the epoch. */
int run_on_step(void *user, uint64_t steps_done, double lr, double loss)
{
    run_t *r = user;
    if (r->files.steps && steps_done % r->cfg->log_every == 0) {
        dpt_status_t s =
            dpt_step_log_write(r->files.steps, steps_done, r->epochs_done + 1, lr, loss);
        if (s != DPT_OK) {
            r->epoch.hook_status = s;
            return 0;
        }
    }
    if (r->guard.cfg.enabled &&
        !dpt_guard_check(&r->guard.cfg, &r->guard.state, loss, r->guard.chance_loss, r->guard.why,
                         sizeof r->guard.why)) {
        r->guard.diverged = 1;
        r->guard.diverged_step = steps_done;
        return 0;
    }
    if (r->cfg->checkpoint_every_steps && steps_done % r->cfg->checkpoint_every_steps == 0) {
        dpt_status_t s = run_checkpoint_mid_epoch(r);
        if (s != DPT_OK) {
            r->epoch.hook_status = s;
            return 0;
        }
    }
    if (stop_agreed()) {
        /* Inside an epoch: stop after this step (run_epochs checkpoints it). On its last
         * step: let the epoch finish, with its metrics row and checkpoint, and stop after. */
        dpt_epoch_partial_t p;
        dpt_trainer_epoch_partial(r->trainer, &p);
        if (p.batches < r->steps_per_epoch) {
            r->epoch.interrupted = 1;
            return 0;
        }
    }
    return 1;
}

/* The message and status of a run stopped on request, after its checkpoint. */
static dpt_status_t interrupted(const run_t *r)
{
    const char *sig = stop_signal == SIGINT    ? " (SIGINT)"
                      : stop_signal == SIGTERM ? " (SIGTERM)"
                      : stop_signal == SIGUSR1 ? " (SIGUSR1)"
                                               : "";
    char where[128];
    dpt_epoch_partial_t p;
    dpt_trainer_epoch_partial(r->trainer, &p);
    if (r->epoch.interrupted)
        snprintf(where, sizeof where, "epoch %llu, step %llu",
                 (unsigned long long)r->epochs_done + 1,
                 (unsigned long long)dpt_trainer_step_count(r->trainer));
    else
        snprintf(where, sizeof where, "the end of epoch %llu, step %llu",
                 (unsigned long long)r->epochs_done,
                 (unsigned long long)dpt_trainer_step_count(r->trainer));
    /* The directory held no other run's checkpoint (refused or --overwrite'd at start). */
    run_path_t ckpt = run_path(r, DPT_RUN_CHECKPOINT);
    /* Every rank stops at the same step and returns this; rank 0 says it. */
    dpt_world_set_shared_error(true);
    if (access(ckpt.s, F_OK) != 0)
        return dpt_error(DPT_ERR_INTERRUPTED,
                         "interrupted%s before the first checkpoint (%s): nothing to resume; "
                         "start again with --overwrite",
                         sig, where);
    return dpt_error(DPT_ERR_INTERRUPTED,
                     "interrupted%s at %s; resume with `dptrain train --resume %s`", sig, where,
                     r->cfg->out_dir);
}

/* What a fresh epoch (not a retry after a rollback) starts with: its event column cleared
 * (unless resumed mid-epoch: the checkpoint's events stay), the guard's snapshot, and a mark
 * in steps.csv to rewind to. */
static dpt_status_t begin_epoch(run_t *r)
{
    if (!r->epoch.has_from) r->epoch.events[0] = '\0';
    if (r->guard.cfg.enabled) run_guard_snapshot(r);
    return r->files.steps ? dpt_step_log_mark(r->files.steps) : DPT_OK;
}

/* One pass over the training data, from where the epoch stands; the step hook may end it
 * early (divergence, a stop request). */
static dpt_status_t train_epoch(run_t *r, dpt_progress_t *prog, dpt_epoch_stats_t *es)
{
    r->guard.diverged = 0;
    dpt_trainer_set_epoch_start(r->trainer, r->epoch.has_from ? &r->epoch.from : NULL);
    dpt_progress_epoch_begin(prog, r->epochs_done + 1);
    dpt_status_t s = dpt_trainer_train_epoch(r->trainer, r->data.train, r->epochs_done,
                                             scheduled_lr, r, dpt_progress_update, prog, es);
    /* A measurement probe (docs/distributed.md): each rank's split of the epoch's steps. */
    if (s == DPT_OK && getenv("DPT_PHASE_TIMES"))
        fprintf(stderr,
                "phases: rank %zu epoch %llu steps %zu forward_backward %.4f update %.4f "
                "exchange %.4f\n",
                dpt_world_rank(), (unsigned long long)r->epochs_done + 1, es->steps,
                es->forward_backward_seconds, es->update_seconds, es->exchange_seconds);
    return s == DPT_OK ? r->epoch.hook_status : s;
}

/* The guard's epoch checks around validation; a diverged epoch is not validated. */
static dpt_status_t validate(run_t *r, double *vloss, double *vacc)
{
    if (r->guard.cfg.enabled && !r->guard.diverged) run_guard_check_params(r);
    dpt_status_t s = DPT_OK;
    if (!r->guard.diverged && r->data.val)
        s = dpt_trainer_evaluate(r->trainer, r->data.val, vloss, vacc, NULL);
    if (s == DPT_OK) run_guard_check_val_loss(r, *vloss);
    return s;
}

/* Order matters for a kill (or a full disk) at any point. The resumable state comes first:
 * steps.csv synced, then checkpoint.dpt, which carries this epoch's metrics row and the
 * updated best key. Then what derives from it, each of which a resume redoes when it is
 * missing (run_repair_after_resume): the metrics row (so no row is ever ahead of the
 * checkpoint), best.dpt, the kept copy. */
static dpt_status_t save_epoch_end(run_t *r, const dpt_epoch_stats_t *es, double vloss, double vacc,
                                   const float *restored)
{
    dpt_status_t s = r->files.steps ? dpt_step_log_sync(r->files.steps) : DPT_OK;
    run_row_t row =
        run_row_make(r, es, r->epochs_done, dpt_trainer_step_count(r->trainer), vloss, vacc);
    int is_best = run_best_update(r, vloss, vacc);
    if (s == DPT_OK) s = run_checkpoint_save(r, DPT_RUN_CHECKPOINT, restored, &row);
    if (s == DPT_OK) s = run_row_write(r, &row);
    if (s == DPT_OK && is_best) s = run_checkpoint_save(r, DPT_RUN_BEST_CHECKPOINT, NULL, NULL);
    if (s == DPT_OK) s = run_retain_checkpoint(r, restored);
    return s;
}

/* Plateau and early-stop bookkeeping, the row and checkpoints, and the summary line of one
 * finished (validated) epoch. */
static dpt_status_t finish_epoch(run_t *r, dpt_progress_t *prog, const dpt_epoch_stats_t *es,
                                 double vloss, double vacc, dpt_run_result_t *res)
{
    r->epochs_done++;
    r->guard.rollbacks_in_row = 0;
    r->epoch.has_from = 0;
    if (r->monitor) {
        double metric = strcmp(r->monitor, "val_accuracy") == 0 ? vacc : vloss;
        if (dpt_schedule_plateau_update(r->sched, &r->plateau, metric))
            run_event(r, "plateau reduce");
    }
    char stop_line[512] = "";
    const float *restored = run_early_stop_update(r, vloss, vacc, stop_line, sizeof stop_line);
    dpt_status_t s = save_epoch_end(r, es, vloss, vacc, restored);
    char line[1600], ranks_note[48] = "";
    if (run_world_ranks() > 1)
        snprintf(ranks_note, sizeof ranks_note, "%zu ranks x ", run_world_ranks());
    snprintf(line, sizeof line,
             "epoch %llu/%zu  lr %.4g  train loss %.4f acc %.4f  val loss %.4f acc %.4f  "
             "%.2fs  %.0f samples/s  %s%zu threads%s%s",
             (unsigned long long)r->epochs_done, r->cfg->epochs, es->lr_last, es->loss,
             es->accuracy, vloss, vacc, es->seconds, es->samples_per_second, ranks_note,
             dpt_trainer_team_size(r->trainer), r->epoch.events[0] ? "  " : "", r->epoch.events);
    dpt_progress_epoch_end(prog, line);
    if (stop_line[0]) run_say(prog, "%s", stop_line);
    run_early_stop_restore(r, prog, restored);
    *res = (dpt_run_result_t){.epochs_done = r->epochs_done,
                              .val_loss = vloss,
                              .val_accuracy = vacc,
                              .train_loss = es->loss,
                              .train_accuracy = es->accuracy,
                              .samples_per_second = es->samples_per_second,
                              .threads = dpt_trainer_team_size(r->trainer),
                              .restored_best = restored != NULL};
    return s;
}

/* --pause-after-epoch: this process ends once that many epochs are done. */
static int run_paused(const run_t *r)
{
    return r->cfg->pause_after_epoch && r->epochs_done >= r->cfg->pause_after_epoch;
}

/* The epoch loop: train, validate, then finish the epoch or roll it back and run it again. */
static dpt_status_t run_epochs(run_t *r, dpt_run_result_t *res)
{
    dpt_progress_t prog;
    dpt_progress_init(&prog, stderr, r->cfg->quiet, r->cfg->epochs);
    dpt_status_t s = DPT_OK;
    if (run_stopped_early(r) && r->epochs_done < r->cfg->epochs)
        run_say(&prog,
                "the run stopped early after epoch %llu; nothing to do (--early-stop off "
                "trains on)",
                (unsigned long long)r->epochs_done);
    /* A mid-epoch resume may come back with rollbacks in a row: its first pass still takes
     * the snapshot, and keeps the restored events. */
    int first = 1;
    while (s == DPT_OK && r->epochs_done < r->cfg->epochs && !run_stopped_early(r) &&
           !run_paused(r)) {
        if (stop_agreed()) {
            s = interrupted(r);
            break;
        }
        if (r->guard.rollbacks_in_row == 0 || first) s = begin_epoch(r);
        first = 0;
        dpt_epoch_stats_t es;
        double vloss = NAN, vacc = NAN;
        if (s == DPT_OK) s = train_epoch(r, &prog, &es);
        if (s == DPT_OK && r->epoch.interrupted && !r->guard.diverged) {
            /* The steps so far are kept as a mid-epoch checkpoint; resume continues there. */
            s = run_checkpoint_mid_epoch(r);
            if (s == DPT_OK) s = interrupted(r);
            break;
        }
        if (s == DPT_OK) s = validate(r, &vloss, &vacc);
        if (s == DPT_OK && r->guard.diverged)
            s = run_guard_roll_back(r, &prog, &es);
        else if (s == DPT_OK)
            s = finish_epoch(r, &prog, &es, vloss, vacc, res);
    }
    res->paused =
        s == DPT_OK && run_paused(r) && r->epochs_done < r->cfg->epochs && !run_stopped_early(r);
    if (res->paused)
        run_say(&prog,
                "paused after epoch %llu (--pause-after-epoch); continue with `dptrain train "
                "--resume %s`",
                (unsigned long long)r->epochs_done, r->cfg->out_dir);
    res->early_stopped = run_stopped_early(r);
    res->best_epoch = (size_t)r->es.state.best_epoch;
    res->lr_scale = r->guard.state.lr_scale;
    res->rollbacks = r->guard.rollbacks;
    return s;
}

static void run_free(run_t *r)
{
    dpt_run_dir_close(r->files.dir);
    dpt_step_log_close(r->files.steps);
    dpt_metrics_close(r->files.metrics);
    dpt_trainer_free(r->trainer);
    dpt_augment_free(r->augment);
    dpt_schedule_free(r->sched);
    dpt_optimizer_free(r->opt);
    dpt_model_free(r->model);
    if (r->data.val != r->data.test) dpt_dataset_free(r->data.val);
    if (r->data.train != r->data.all) dpt_dataset_free(r->data.train);
    dpt_dataset_free(r->data.test);
    dpt_dataset_free(r->data.all);
    free(r->es.best_params);
    free(r->guard.snap.params), free(r->guard.snap.opt);
}

dpt_status_t dpt_run_train(const dpt_run_config_t *cfg, dpt_run_result_t *result)
{
    run_t r = {.cfg = cfg, .writer = dpt_world_rank() == 0};
    dpt_run_result_t res = {.val_loss = NAN, .val_accuracy = NAN};
    if (!cfg->out_dir || !*cfg->out_dir)
        return dpt_error(DPT_ERR_INVALID_ARG, "a run needs an output directory");
    /* Bad flags are refused before the run directory or the data are touched. */
    dpt_status_t s = dpt_run_check(cfg);
    /* Across processes rank 0 alone owns (locks and writes) the run directory; the others
     * read the checkpoint they resume from and write nothing. */
    if (s == DPT_OK && r.writer)
        s = dpt_run_dir_open(cfg->out_dir, cfg->resume, cfg->overwrite, cfg->quiet, &r.files.dir);
    if (s == DPT_OK && r.writer) s = run_remove_stale_temps(&r);
    if (s == DPT_OK) s = run_setup(&r);
    if (s == DPT_OK && cfg->resume) s = run_checkpoint_restore(&r);
    if (s == DPT_OK) s = run_world_check(&r);
    if (s == DPT_OK && r.writer) s = run_write_config(&r);
    if (s == DPT_OK && r.writer) s = run_metrics_open(&r);
    /* A kill (or a full disk) after the checkpoint and before what derives from it: redo it. */
    if (s == DPT_OK && r.writer && cfg->resume && !r.epoch.has_from)
        s = run_repair_after_resume(&r);
    char world[64] = "";
    if (run_world_ranks() > 1) snprintf(world, sizeof world, "%zu ranks x ", run_world_ranks());
    if (s == DPT_OK && !cfg->quiet)
        fprintf(stderr, "dptrain: %s | %s | %s%zu threads | BLIS %s kernels | run dir %s%s\n",
                dpt_dataset_describe(r.data.train), dpt_model_brief(r.model), world,
                dpt_trainer_threads(r.trainer), dpt_gemm_kernel_name(), cfg->out_dir,
                cfg->resume ? " (resumed)" : "");
    if (s == DPT_OK) s = run_epochs(&r, &res);
    if (s == DPT_OK && cfg->plot && r.writer) {
        run_path_t csv = run_path(&r, "metrics.csv"), png = run_path(&r, "metrics.png");
        s = dpt_plot_metrics(csv.s, png.s);
    }
    run_free(&r);
    if (result) *result = res;
    return s;
}
