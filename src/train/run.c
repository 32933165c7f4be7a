/* Owns a training run end to end: loading and splitting data, building model, optimizer,
 * schedule and trainer, the epoch loop with validation, early stopping and the divergence
 * guard's rollbacks, the run directory (config snapshot, metrics.csv, steps.csv, checkpoints
 * and their retention) and exact resume from the latest checkpoint. */
#include "dptrain/run.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dptrain/checkpoint.h"
#include "dptrain/lr_find.h"
#include "dptrain/metrics.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/plot.h"
#include "dptrain/schedule.h"
#include "core/fmt.h"
#include "io/atomic_file.h"
#include "io/run_dir.h"
#include "io/progress.h"
#include "io/step_log.h"
#include "kernels/gemm.h"
#include "train/guards.h"

dpt_run_config_t dpt_run_config_default(void)
{
    dpt_run_config_t c = {0};
    c.data_spec = "fashion-mnist";
    c.data = dpt_data_options_default();
    c.model_spec = DPT_DEFAULT_MODEL;
    c.optimizer_spec = "sgd:momentum=0.9";
    c.lr = 0.05;
    c.epochs = 3;
    c.trainer = dpt_trainer_config_default();
    c.out_dir = NULL; /* the CLI picks a timestamped default */
    return c;
}

/* Everything a run holds; freed in one place. */
/* An epoch's metrics.csv row, kept in its epoch-end checkpoint (section "epoch_row") so that
 * the checkpoint can be written before the row: a resume whose metrics.csv lacks the row of
 * the epoch it starts after writes it from here. Fixed-width fields. */
typedef struct run_row {
    uint64_t epoch, step, threads;
    double lr, momentum, train_loss, train_acc, val_loss, val_acc, seconds, rate, grad_norm;
    char events[1024]; /* NUL-terminated */
} run_row_t;
_Static_assert(sizeof(run_row_t) == 1120, "epoch_row layout (docs/formats.md)");

typedef struct run {
    const dpt_run_config_t *cfg;
    dpt_run_dir_t *dir;                      /* the locked run directory */
    dpt_dataset_t *all, *test, *train, *val; /* val points at test when not split */
    dpt_model_t *model;
    dpt_optimizer_t *opt;
    dpt_schedule_t *sched;
    dpt_trainer_t *trainer;
    dpt_metrics_writer_t *metrics;
    dpt_plateau_state_t plateau;
    const char *monitor;  /* plateau's metric, or NULL */
    double best_val_loss; /* best.dpt's monitored value, oriented so lower is better */
    uint64_t epochs_done;
    double lr; /* effective base LR: scaled, or found by the range test */
    dpt_early_stop_config_t es;
    dpt_early_stop_state_t es_state;
    float *best_params; /* restore_best: the parameters of es_state.best_epoch */
    int has_best_params;
    dpt_guard_config_t guard;
    dpt_guard_state_t guard_state;
    double chance_loss; /* ln(classes): the guard's floor for a loss spike */
    /* The guard's last good state, taken at each epoch start (buffers sized at build). */
    float *snap_params, *snap_opt;
    uint64_t snap_steps;
    dpt_guard_state_t snap_guard;
    dpt_plateau_state_t snap_plateau;
    /* Mid-epoch resume: where the current epoch starts (has_from: not at batch 0), and the
     * same for the snapshot (a rollback after a mid-epoch resume returns to that point). */
    dpt_epoch_partial_t from, snap_from;
    int has_from, snap_has_from;
    size_t steps_per_epoch;
    int diverged;         /* set by the step hook: the epoch was aborted */
    int interrupted;      /* set by the step hook: a stop request ended the epoch */
    const run_row_t *row; /* the row an epoch-end checkpoint carries (NULL otherwise) */
    run_row_t saved_row;  /* the row the resumed checkpoint carried */
    int has_saved_row;
    int resumed_restored; /* the resumed checkpoint holds restore_best's parameters */
    uint64_t diverged_step;
    char diverged_why[160];
    size_t rollbacks_in_row, rollbacks;
    dpt_status_t hook_status; /* a step-log write error seen by the step hook */
    dpt_step_log_t *steps;
    char events[1024]; /* this epoch's event column: "; "-joined */
    char lr_note[512]; /* how lr was derived, for config.txt */
    char path[4096];
    char config_text[8192];
} run_t;

/* The "epoch_progress" section of a mid-epoch checkpoint (absent at epoch ends): the
 * epoch's sums so far and the epoch's own bookkeeping, so its metrics row comes out as an
 * uninterrupted run's. Fixed-width fields. */
typedef struct run_progress {
    dpt_epoch_partial_t partial;
    uint64_t rollbacks_in_row;
    char events[1024]; /* NUL-terminated */
} run_progress_t;
_Static_assert(sizeof(run_progress_t) == 1072, "epoch_progress layout (docs/formats.md)");

/* The model, the optimizer and the guards write and read their own sections
 * (dpt_model_checkpoint_section, dpt_optimizer_checkpoint_section, dpt_guards_section_t);
 * normalisation section: the dataset's saved normaliser (dpt_dataset_normalization_save). */

/* Checkpointed scalars. Fixed-width fields: the file is read back by the same layout. */
typedef struct run_state {
    uint64_t epochs_done, steps, n_params;
    double best_val_loss;
    dpt_plateau_state_t plateau;
} run_state_t;

static const char *run_path(run_t *r, const char *name)
{
    snprintf(r->path, sizeof r->path, "%s/%s", r->cfg->out_dir, name);
    return r->path;
}

static dpt_status_t load_data(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_status_t s = dpt_dataset_open(c->data_spec, &c->data, &r->all, &r->test);
    if (s != DPT_OK) return s;
    if (c->val_split > 0) {
        s = dpt_dataset_split(r->all, c->val_split, c->trainer.seed, &r->train, &r->val);
    } else {
        r->train = r->all;
        r->val = r->test;
    }
    if (s != DPT_OK) return s;
    /* Statistics come from the training part only, then apply everywhere. */
    s = dpt_dataset_fit_normalization(r->train);
    if (s == DPT_OK && r->val) s = dpt_dataset_copy_normalization(r->val, r->train);
    if (s == DPT_OK && r->test && r->test != r->val)
        s = dpt_dataset_copy_normalization(r->test, r->train);
    return s;
}

/* --lr auto: the range test on the same data, model, optimizer and trainer settings; the
 * valley suggestion becomes the base LR (fastai's default: it sits inside the steep part of
 * the curve, where steepest alone is noisy and minimum/10 often too timid). */
static dpt_status_t find_lr(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_lr_find_config_t fc = dpt_lr_find_config_default();
    dpt_lr_find_result_t res;
    if (!c->quiet)
        fprintf(stderr, "dptrain: --lr auto: running the LR range test (%zu steps, %g to %g)\n",
                fc.steps, fc.start_lr, fc.end_lr);
    dpt_status_t s = dpt_lr_find(r->model, c->optimizer_spec, &c->trainer, r->train, &fc, &res);
    if (s == DPT_OK && !(res.valley > 0))
        s = dpt_error(DPT_ERR_INVALID_ARG,
                      "--lr auto: the range test gave no usable curve (%zu points)", res.n);
    if (s == DPT_OK) {
        r->lr = res.valley;
        char lr[40];
        dpt_fmt_double(lr, sizeof lr, r->lr);
        snprintf(r->lr_note, sizeof r->lr_note,
                 "auto -> %s (lr-find start=%g end=%g steps=%zu: %zu taken%s; valley %.4g, "
                 "steepest %.4g, minimum/10 %.4g)",
                 lr, fc.start_lr, fc.end_lr, fc.steps, res.n,
                 res.stopped_early ? ", stopped at divergence" : "", res.valley, res.steepest,
                 res.min_div10);
        if (!c->quiet) fprintf(stderr, "dptrain: lr = %s\n", r->lr_note);
    }
    dpt_lr_find_result_free(&res);
    return s;
}

/* The base LR the schedule starts from: --lr, scaled with the batch size, or auto. */
static dpt_status_t resolve_lr(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    if (c->lr_auto) return find_lr(r);
    dpt_status_t s = dpt_lr_scaling_apply(c->lr_scaling, c->lr, c->trainer.batch_size, &r->lr);
    if (s != DPT_OK) return s;
    char given[40], scaled[40];
    dpt_fmt_double(given, sizeof given, c->lr);
    dpt_fmt_double(scaled, sizeof scaled, r->lr);
    if (c->lr_scaling && *c->lr_scaling && strcmp(c->lr_scaling, "none") != 0)
        snprintf(r->lr_note, sizeof r->lr_note, "%s\nlr_scaling = %s (batch %zu) -> %s", given,
                 c->lr_scaling, c->trainer.batch_size, scaled);
    else
        snprintf(r->lr_note, sizeof r->lr_note, "%s", given);
    return DPT_OK;
}

static int on_step(void *user, uint64_t steps_done, double lr, double loss);

/* Set by dpt_run_request_stop (a signal handler), read by the step hook and the epoch loop. */
static volatile sig_atomic_t stop_signal, stop_requested;

void dpt_run_request_stop(int signo)
{
    stop_signal = signo;
    stop_requested = 1;
}

/* Early stopping and the divergence guard: specs, state, and the buffers they need, sized
 * here so that no step allocates. */
static dpt_status_t build_guards(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_status_t s = dpt_early_stop_parse(c->early_stop_spec, &r->es);
    if (s == DPT_OK) s = dpt_guard_parse(c->divergence_guard_spec, &r->guard);
    if (s != DPT_OK) return s;
    if (r->es.enabled && !r->val)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "--early-stop monitors %s but the data has no validation part: use "
                         "--val-split",
                         dpt_early_stop_monitor_name(&r->es));
    dpt_early_stop_init(&r->es, &r->es_state);
    dpt_guard_init(&r->guard_state);
    r->chance_loss = log((double)dpt_model_classes(r->model));
    size_t n_params = dpt_model_param_count(r->model), n_opt;
    dpt_optimizer_state(r->opt, &n_opt);
    if (r->es.restore_best && !(r->best_params = malloc(n_params * sizeof(float))))
        return dpt_error(DPT_ERR_NOMEM, "out of memory for the best parameters");
    if (r->guard.enabled) {
        r->snap_params = malloc(n_params * sizeof(float));
        r->snap_opt = malloc((n_opt ? n_opt : 1) * sizeof(float));
        if (!r->snap_params || !r->snap_opt)
            return dpt_error(DPT_ERR_NOMEM, "out of memory for the divergence guard's snapshot");
    }
    /* The hook also answers stop requests (signals), so every run has it: one call per step. */
    dpt_trainer_set_step_hook(r->trainer, on_step, r);
    return DPT_OK;
}

static dpt_status_t build(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_status_t s =
        dpt_model_create_for_data(c->model_spec, r->train, dpt_dataset_classes(r->all), &r->model);
    if (s == DPT_OK) s = dpt_optimizer_create(c->optimizer_spec, r->model, &r->opt);
    if (s == DPT_OK && c->no_decay) s = dpt_optimizer_exclude_decay(r->opt, c->no_decay);
    if (s == DPT_OK) s = resolve_lr(r);
    if (s != DPT_OK) return s;
    size_t n = dpt_dataset_count(r->train);
    size_t steps_per_epoch = (n + c->trainer.batch_size - 1) / c->trainer.batch_size;
    r->steps_per_epoch = steps_per_epoch;
    s = dpt_schedule_create(c->schedule_spec, c->warmup_spec, r->lr, steps_per_epoch, c->epochs,
                            &r->sched);
    if (s != DPT_OK) return s;
    dpt_schedule_plateau_init(r->sched, &r->plateau);
    if (!dpt_schedule_uses_plateau(r->sched, &r->monitor)) r->monitor = NULL;
    if (r->monitor && !r->val)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "the plateau schedule monitors %s but the data has no validation part: "
                         "use --val-split",
                         r->monitor);
    r->best_val_loss = INFINITY;
    s = dpt_trainer_create(r->model, r->opt, &c->trainer, &r->trainer);
    if (s == DPT_OK) s = build_guards(r);
    return s;
}

static void describe_config(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    double mean, std;
    char es[256], guard[256];
    dpt_dataset_normalization(r->train, &mean, &std);
    dpt_early_stop_describe(&r->es, es, sizeof es);
    dpt_guard_describe(&r->guard, guard, sizeof guard);
    char lr_eff[40];
    dpt_fmt_double(lr_eff, sizeof lr_eff, r->lr);
    snprintf(r->config_text, sizeof r->config_text,
             "dptrain_version = %s\n"
             "data = %s\n"
             "train = %s\n"
             "validation = %s\n"
             "val_split = %g\n"
             "normalization = mean %.9g, std %.9g (fitted on the training part)\n"
             "model = %s\n"
             "parameters = %zu\n"
             "optimizer = %s\n"
             "lr = %s\n"
             "lr_effective = %s\n"
             "clip_grad_norm = %g%s\n"
             "lr_schedule = %s\n"
             "epochs = %zu\n"
             "batch_size = %zu\n"
             "micro_batch = %zu\n"
             "replica_memory = %.1f MiB a worker (workspace %.2f MiB)\n"
             "threads = %zu\n"
             "seed = %llu\n"
             "early_stop = %s\n"
             "divergence_guard = %s\n"
             "keep_checkpoints = %zu\n"
             "log_every = %zu\n"
             "checkpoint_every_steps = %zu\n"
             "blis_version = %s\n"
             "blis_kernel_set = %s (%s)\n"
             "omp_max_threads = %d\n",
             DPT_VERSION, c->data_spec, dpt_dataset_describe(r->train),
             r->val ? dpt_dataset_describe(r->val) : "none", c->val_split, mean, std,
             dpt_model_describe(r->model), dpt_model_param_count(r->model),
             dpt_optimizer_describe(r->opt), r->lr_note, lr_eff, c->trainer.clip_grad_norm,
             c->trainer.clip_grad_norm > 0 ? "" : " (off)", dpt_schedule_describe(r->sched),
             c->epochs, c->trainer.batch_size, dpt_trainer_micro_batch(r->trainer),
             (double)dpt_model_replica_bytes(r->model, dpt_trainer_micro_batch(r->trainer)) /
                 1048576.0,
             (double)dpt_model_workspace_bytes(r->model, dpt_trainer_micro_batch(r->trainer)) /
                 1048576.0,
             dpt_trainer_threads(r->trainer), (unsigned long long)c->trainer.seed, es, guard,
             c->keep_checkpoints, c->log_every, c->checkpoint_every_steps, dpt_gemm_blis_version(),
             dpt_gemm_kernel_name(), dpt_gemm_kernel_reason(), omp_get_max_threads());
}

static dpt_status_t write_text_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? dpt_error(DPT_ERR_IO, "%s: write failed: %s", path, strerror(errno)) : DPT_OK;
}

/* Writes the run's state to name. restored (may be NULL): parameters to store as the model
 * instead of the trained ones, which then go to "trained_params" (for a later resume).
 * progress (may be NULL): the epoch in progress, for a checkpoint taken inside it. */
static dpt_status_t save_checkpoint(run_t *r, const char *name, const float *restored,
                                    const run_progress_t *progress)
{
    size_t n_params = dpt_model_param_count(r->model);
    run_state_t st = {.epochs_done = r->epochs_done,
                      .steps = dpt_trainer_step_count(r->trainer),
                      .n_params = n_params,
                      .best_val_loss = r->best_val_loss,
                      .plateau = r->plateau};
    dpt_guards_section_t gs = dpt_guards_section_make(&r->guard_state, &r->es_state,
                                                      r->best_params && r->has_best_params);
    char model_text[DPT_MODEL_TEXT_MAX];
    dpt_ckpt_section_t model;
    dpt_status_t s = dpt_model_checkpoint_section(r->model, model_text, sizeof model_text, &model);
    if (s != DPT_OK) return s;
    size_t norm_bytes = dpt_dataset_normalization_save(r->train, NULL, 0);
    void *norm = malloc(norm_bytes);
    if (!norm) return dpt_error(DPT_ERR_NOMEM, "out of memory saving the normalisation");
    dpt_dataset_normalization_save(r->train, norm, norm_bytes);
    const float *trained = dpt_trainer_params(r->trainer);
    dpt_ckpt_section_t sec[12] = {
        {"config", r->config_text, strlen(r->config_text)},
        model,
        {"normalization", norm, norm_bytes},
        {"argv", r->cfg->argv_blob, r->cfg->argv_blob ? r->cfg->argv_blob_len : 0},
        {"state", &st, sizeof st},
        {"params", restored ? restored : trained, n_params * sizeof(float)},
        dpt_optimizer_checkpoint_section(r->opt),
        {DPT_GUARDS_SECTION, &gs, sizeof gs},
    };
    size_t n_sec = 8;
    if (gs.has_best_params)
        sec[n_sec++] =
            (dpt_ckpt_section_t){"early_stop_params", r->best_params, n_params * sizeof(float)};
    if (restored)
        sec[n_sec++] = (dpt_ckpt_section_t){"trained_params", trained, n_params * sizeof(float)};
    if (progress) sec[n_sec++] = (dpt_ckpt_section_t){"epoch_progress", progress, sizeof *progress};
    if (r->row && !progress)
        sec[n_sec++] = (dpt_ckpt_section_t){"epoch_row", r->row, sizeof *r->row};
    s = dpt_checkpoint_write(run_path(r, name), sec, n_sec);
    free(norm);
    return s;
}

/* Early stopping and guard state; an early-stop state kept for another monitor or mode
 * starts over (its best value means nothing for the new one). */
static void restore_guards(run_t *r, const dpt_guards_section_t *g, const void *best)
{
    dpt_guards_section_restore(g, &r->es, &r->guard_state, &r->es_state);
    if (r->best_params && best && r->es_state.best_epoch) {
        memcpy(r->best_params, best, dpt_model_param_count(r->model) * sizeof(float));
        r->has_best_params = 1;
    }
}

/* A mid-epoch checkpoint: the epoch continues where it stood, with its sums and events. */
static dpt_status_t restore_progress(run_t *r, const char *path, const void *data)
{
    run_progress_t p;
    memcpy(&p, data, sizeof p);
    if (p.partial.batches == 0 || p.partial.batches >= r->steps_per_epoch ||
        p.events[sizeof p.events - 1] != '\0')
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: epoch_progress at batch %llu of an epoch of %zu batches (other "
                         "data or batch size?)",
                         path, (unsigned long long)p.partial.batches, r->steps_per_epoch);
    r->from = p.partial;
    r->has_from = 1;
    r->rollbacks_in_row = (size_t)p.rollbacks_in_row;
    memcpy(r->events, p.events, sizeof r->events);
    return DPT_OK;
}

static dpt_status_t restore_checkpoint(run_t *r)
{
    const char *path = run_path(r, DPT_RUN_CHECKPOINT);
    dpt_checkpoint_t *ck;
    dpt_status_t s = dpt_checkpoint_read(path, &ck);
    if (s != DPT_OK) return s;
    size_t pbytes = dpt_model_param_count(r->model) * sizeof(float);
    const void *st_p, *params, *guards, *best, *trained, *progress, *row;
    s = dpt_checkpoint_section_exact(ck, path, "state", sizeof(run_state_t), &st_p);
    if (s == DPT_OK) s = dpt_checkpoint_section_exact(ck, path, "params", pbytes, &params);
    if (s == DPT_OK) s = dpt_optimizer_checkpoint_load(r->opt, ck, path);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, DPT_GUARDS_SECTION,
                                            sizeof(dpt_guards_section_t), &guards);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "early_stop_params", pbytes, &best);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "trained_params", pbytes, &trained);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "epoch_progress", sizeof(run_progress_t),
                                            &progress);
    if (s == DPT_OK && progress) s = restore_progress(r, path, progress);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "epoch_row", sizeof(run_row_t), &row);
    if (s == DPT_OK && row) {
        memcpy(&r->saved_row, row, sizeof r->saved_row);
        r->saved_row.events[sizeof r->saved_row.events - 1] = '\0';
        r->has_saved_row = 1;
    }
    if (s == DPT_OK) {
        run_state_t st;
        memcpy(&st, st_p, sizeof st);
        /* After restore_best, "params" is the restored model; training goes on from the
         * parameters it had actually reached. */
        memcpy(dpt_trainer_params(r->trainer), trained ? trained : params, pbytes);
        r->resumed_restored = trained != NULL;
        dpt_trainer_set_step_count(r->trainer, st.steps);
        r->epochs_done = st.epochs_done;
        r->best_val_loss = st.best_val_loss;
        r->plateau = st.plateau;
        if (guards) {
            dpt_guards_section_t g;
            memcpy(&g, guards, sizeof g);
            restore_guards(r, &g, best);
        }
    }
    dpt_checkpoint_free(ck);
    return s;
}

typedef struct lr_ctx {
    run_t *r;
} lr_ctx_t;

static double scheduled_lr(void *user, uint64_t step, double *momentum)
{
    run_t *r = ((lr_ctx_t *)user)->r;
    double m;
    if (dpt_schedule_momentum(r->sched, step, &m)) *momentum = m;
    /* The guard's scale is 1 until a rollback: x1.0 keeps the LR bit for bit. */
    return r->guard_state.lr_scale * dpt_schedule_lr(r->sched, step, &r->plateau);
}

enum {
    COL_EPOCH,
    COL_STEP,
    COL_LR,
    COL_MOMENTUM,
    COL_TRAIN_LOSS,
    COL_TRAIN_ACC,
    COL_VAL_LOSS,
    COL_VAL_ACC,
    COL_SECONDS,
    COL_RATE,
    COL_THREADS,
    COL_GRAD_NORM,
    COL_EVENT,
    N_COLS
};
static const char *const metric_columns[N_COLS] = {
    "epoch",          "step",      "lr",           "momentum",      "train_loss",
    "train_accuracy", "val_loss",  "val_accuracy", "epoch_seconds", "samples_per_second",
    "threads",        "grad_norm", "event"};

static dpt_metric_value_t mv_real(double v)
{
    return (dpt_metric_value_t){.kind = isfinite(v) ? DPT_MV_REAL : DPT_MV_EMPTY, .r = v};
}
static dpt_metric_value_t mv_int(int64_t v)
{
    return (dpt_metric_value_t){.kind = DPT_MV_INT, .i = v};
}

/* Appends one event to this epoch's event column ("; " between events). */
static void add_event(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_event(run_t *r, const char *fmt, ...)
{
    size_t len = strlen(r->events);
    if (len && len + 2 < sizeof r->events) strcpy(r->events + len, "; "), len += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->events + len, sizeof r->events - len, fmt, ap);
    va_end(ap);
}

/* One line on stderr, even with --quiet (these events change the run), clearing a progress
 * bar first. */
static void say(const dpt_progress_t *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const dpt_progress_t *prog, const char *fmt, ...)
{
    if (prog->tty && !prog->quiet) fputs("\r\033[K", prog->out);
    va_list ap;
    va_start(ap, fmt);
    fputs("dptrain: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* --checkpoint-every-steps, from the step hook (between steps, on the driving thread):
 * checkpoint.dpt with the epoch in progress. Not on the epoch's last step (the epoch-end
 * checkpoint follows at once). steps.csv is synced first, as at epoch ends. */
static dpt_status_t checkpoint_mid_epoch(run_t *r)
{
    run_progress_t p = {.rollbacks_in_row = r->rollbacks_in_row};
    dpt_trainer_epoch_partial(r->trainer, &p.partial);
    if (p.partial.batches >= r->steps_per_epoch) return DPT_OK;
    snprintf(p.events, sizeof p.events, "%s", r->events);
    dpt_status_t s = r->steps ? dpt_step_log_sync(r->steps) : DPT_OK;
    return s == DPT_OK ? save_checkpoint(r, DPT_RUN_CHECKPOINT, NULL, &p) : s;
}

/* The trainer's per-step hook: the step log, the divergence guard, then mid-epoch
 * checkpoints (of sane steps only). 0 ends the epoch. */
static int on_step(void *user, uint64_t steps_done, double lr, double loss)
{
    run_t *r = user;
    if (r->steps && steps_done % r->cfg->log_every == 0) {
        dpt_status_t s = dpt_step_log_write(r->steps, steps_done, r->epochs_done + 1, lr, loss);
        if (s != DPT_OK) {
            r->hook_status = s;
            return 0;
        }
    }
    if (r->guard.enabled && !dpt_guard_check(&r->guard, &r->guard_state, loss, r->chance_loss,
                                             r->diverged_why, sizeof r->diverged_why)) {
        r->diverged = 1;
        r->diverged_step = steps_done;
        return 0;
    }
    if (r->cfg->checkpoint_every_steps && steps_done % r->cfg->checkpoint_every_steps == 0) {
        dpt_status_t s = checkpoint_mid_epoch(r);
        if (s != DPT_OK) {
            r->hook_status = s;
            return 0;
        }
    }
    if (stop_requested) {
        /* Inside an epoch: stop after this step (run_epochs checkpoints it). On its last
         * step: let the epoch finish, with its metrics row and checkpoint, and stop after. */
        dpt_epoch_partial_t p;
        dpt_trainer_epoch_partial(r->trainer, &p);
        if (p.batches < r->steps_per_epoch) {
            r->interrupted = 1;
            return 0;
        }
    }
    return 1;
}

/* The message and status of a run stopped on request, after its checkpoint. */
static dpt_status_t interrupted(run_t *r)
{
    const char *sig = stop_signal == SIGINT    ? " (SIGINT)"
                      : stop_signal == SIGTERM ? " (SIGTERM)"
                      : stop_signal == SIGUSR1 ? " (SIGUSR1)"
                                               : "";
    char where[128];
    dpt_epoch_partial_t p;
    dpt_trainer_epoch_partial(r->trainer, &p);
    if (r->interrupted)
        snprintf(where, sizeof where, "epoch %llu, step %llu",
                 (unsigned long long)r->epochs_done + 1,
                 (unsigned long long)dpt_trainer_step_count(r->trainer));
    else
        snprintf(where, sizeof where, "the end of epoch %llu, step %llu",
                 (unsigned long long)r->epochs_done,
                 (unsigned long long)dpt_trainer_step_count(r->trainer));
    /* The directory held no other run's checkpoint (refused or --overwrite'd at start). */
    if (access(run_path(r, DPT_RUN_CHECKPOINT), F_OK) != 0)
        return dpt_error(DPT_ERR_INTERRUPTED,
                         "interrupted%s before the first checkpoint (%s): nothing to resume; "
                         "start again with --overwrite",
                         sig, where);
    return dpt_error(DPT_ERR_INTERRUPTED,
                     "interrupted%s at %s; resume with `dptrain train --resume %s`", sig, where,
                     r->cfg->out_dir);
}

/* The guard judges losses per step; a non-finite gradient in the epoch's last step has no
 * next loss to show in, so the parameters are checked once per epoch (one read pass). */
static void check_params(run_t *r)
{
    const float *p = dpt_trainer_params(r->trainer);
    size_t n = dpt_model_param_count(r->model);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) {
            r->diverged = 1;
            r->diverged_step = dpt_trainer_step_count(r->trainer);
            snprintf(r->diverged_why, sizeof r->diverged_why, "non-finite parameters");
            return;
        }
}

/* The last good state: the one at the start of the epoch (= the last epoch-end checkpoint's),
 * or, in an epoch resumed from a mid-epoch checkpoint, the resumed state: the epoch-start
 * state is not in that checkpoint (it would double its size). */
static void take_snapshot(run_t *r)
{
    size_t n_opt;
    const float *opt = dpt_optimizer_state(r->opt, &n_opt);
    memcpy(r->snap_params, dpt_trainer_params(r->trainer),
           dpt_model_param_count(r->model) * sizeof(float));
    if (n_opt) memcpy(r->snap_opt, opt, n_opt * sizeof(float));
    r->snap_steps = dpt_trainer_step_count(r->trainer);
    r->snap_guard = r->guard_state;
    r->snap_plateau = r->plateau;
    r->snap_from = r->from;
    r->snap_has_from = r->has_from;
}

/* The one place a metrics.csv row is built: epoch `epoch` ending at optimizer step `step`,
 * with the run's events so far. */
static run_row_t make_row(run_t *r, const dpt_epoch_stats_t *es, uint64_t epoch, uint64_t step,
                          double vloss, double vacc)
{
    run_row_t row = {.epoch = epoch,
                     .step = step,
                     .threads = dpt_trainer_team_size(r->trainer),
                     .lr = es->lr_last,
                     .momentum = es->momentum_last,
                     .train_loss = es->loss,
                     .train_acc = es->accuracy,
                     .val_loss = vloss,
                     .val_acc = vacc,
                     .seconds = es->seconds,
                     .rate = es->samples_per_second,
                     /* Measured where the step computes it anyway (clipping, lars, lamb). */
                     .grad_norm = es->grad_norm};
    snprintf(row.events, sizeof row.events, "%s", r->events);
    return row;
}

/* Writes a row; NaN values (no validation data, no gradient norm) are empty fields. */
static dpt_status_t write_epoch_row(run_t *r, const run_row_t *w)
{
    dpt_metric_value_t row[N_COLS] = {
        [COL_EPOCH] = mv_int((int64_t)w->epoch),
        [COL_STEP] = mv_int((int64_t)w->step),
        [COL_LR] = mv_real(w->lr),
        [COL_MOMENTUM] = mv_real(w->momentum),
        [COL_TRAIN_LOSS] = mv_real(w->train_loss),
        [COL_TRAIN_ACC] = mv_real(w->train_acc),
        [COL_VAL_LOSS] = mv_real(w->val_loss),
        [COL_VAL_ACC] = mv_real(w->val_acc),
        [COL_SECONDS] = mv_real(w->seconds),
        [COL_RATE] = mv_real(w->rate),
        [COL_THREADS] = mv_int((int64_t)w->threads),
        [COL_GRAD_NORM] = mv_real(w->grad_norm),
        [COL_EVENT] = {.kind = DPT_MV_TEXT, .text = w->events},
    };
    return dpt_metrics_write_row(r->metrics, row);
}

/* The guard gave up: a metrics row saying so (resume drops it with the other rows past the
 * checkpoint), and the error. The checkpoint of the last good epoch is untouched. */
static dpt_status_t give_up(run_t *r, const dpt_epoch_stats_t *es)
{
    unsigned long long epoch = (unsigned long long)r->epochs_done + 1;
    add_event(r, "diverged: %s at step %llu after %zu rollbacks", r->diverged_why,
              (unsigned long long)r->diverged_step, r->rollbacks_in_row);
    run_row_t row = make_row(r, es, epoch, r->diverged_step, NAN, NAN);
    dpt_status_t s = write_epoch_row(r, &row);
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
                     epoch, r->diverged_why, (unsigned long long)r->diverged_step,
                     r->rollbacks_in_row, r->rollbacks_in_row == 1 ? "" : "s",
                     r->guard_state.lr_scale, last);
}

/* Puts the last good state back, scales the LR down and records the event; the caller runs
 * the epoch again. */
static dpt_status_t roll_back(run_t *r, const dpt_progress_t *prog, const dpt_epoch_stats_t *es)
{
    if (r->rollbacks_in_row >= r->guard.retries) return give_up(r, es);
    size_t n_opt;
    float *opt = dpt_optimizer_state(r->opt, &n_opt);
    memcpy(dpt_trainer_params(r->trainer), r->snap_params,
           dpt_model_param_count(r->model) * sizeof(float));
    if (n_opt) memcpy(opt, r->snap_opt, n_opt * sizeof(float));
    dpt_trainer_set_step_count(r->trainer, r->snap_steps);
    double scale = r->guard_state.lr_scale * r->guard.factor;
    r->guard_state = r->snap_guard;  /* the loss average of the good state ... */
    r->guard_state.lr_scale = scale; /* ... with the cumulative LR cut */
    r->plateau = r->snap_plateau;
    r->from = r->snap_from;
    r->has_from = r->snap_has_from;
    r->rollbacks_in_row++, r->rollbacks++;
    add_event(r, "rollback %zu: %s at step %llu, lr x%g", r->rollbacks_in_row, r->diverged_why,
              (unsigned long long)r->diverged_step, scale);
    say(prog, "epoch %llu: rollback %zu: %s at step %llu; retrying the epoch with lr x%g",
        (unsigned long long)r->epochs_done + 1, r->rollbacks_in_row, r->diverged_why,
        (unsigned long long)r->diverged_step, scale);
    return r->steps ? dpt_step_log_rewind(r->steps) : DPT_OK;
}

/* A run file's temporary twin "<file>.tmp.<pid>.<n>" (src/io/atomic_file.c) whose writer is
 * gone: a process killed mid-write leaves one, and nothing else would ever remove it. A live
 * pid (another process on this directory, or a reused pid) keeps its file. */
static int stale_temp(const char *name)
{
    static const char *const files[] = {DPT_RUN_CHECKPOINT, DPT_RUN_BEST_CHECKPOINT, "metrics.csv",
                                        "checkpoint-epoch"};
    const char *tmp = strstr(name, ".tmp.");
    int ours = 0;
    for (size_t i = 0; tmp && i < sizeof files / sizeof *files; i++)
        ours |= strncmp(name, files[i], strlen(files[i])) == 0;
    if (!ours) return 0;
    char *end;
    long pid = strtol(tmp + 5, &end, 10);
    if (end == tmp + 5 || *end != '.' || pid <= 0) return 0;
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes the temporary files killed writers left in the run directory (at every start, so
 * a resumed run that finishes leaves none). */
static dpt_status_t remove_stale_temps(run_t *r)
{
    DIR *d = opendir(r->cfg->out_dir);
    if (!d) return dpt_error(DPT_ERR_IO, "%s: cannot list: %s", r->cfg->out_dir, strerror(errno));
    dpt_status_t s = DPT_OK;
    for (struct dirent *e; s == DPT_OK && (e = readdir(d));) {
        if (!stale_temp(e->d_name)) continue;
        if (unlink(run_path(r, e->d_name)) != 0 && errno != ENOENT)
            s = dpt_error(DPT_ERR_IO, "%s: cannot delete: %s", r->path, strerror(errno));
    }
    closedir(d);
    return s;
}

/* Unlinks the kept epoch checkpoints that fell out of the last K. */
static dpt_status_t prune_checkpoints(run_t *r)
{
    DIR *d = opendir(r->cfg->out_dir);
    if (!d) return dpt_error(DPT_ERR_IO, "%s: cannot list: %s", r->cfg->out_dir, strerror(errno));
    const char *prefix = "checkpoint-epoch";
    dpt_status_t s = DPT_OK;
    for (struct dirent *e; s == DPT_OK && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char *end;
        const char *digits = e->d_name + strlen(prefix);
        unsigned long long epoch = strtoull(digits, &end, 10);
        if (end == digits || strcmp(end, ".dpt") != 0) continue;
        if (epoch + r->cfg->keep_checkpoints > r->epochs_done) continue;
        if (unlink(run_path(r, e->d_name)) != 0 && errno != ENOENT)
            s = dpt_error(DPT_ERR_IO, "%s: cannot delete: %s", r->path, strerror(errno));
    }
    closedir(d);
    return s;
}

/* --keep-checkpoints K: checkpoint.dpt, just written, also becomes checkpoint-epochNNNN.dpt
 * (a hard link: the next checkpoint.dpt is a new file renamed over the name, so the link
 * keeps this epoch's bytes; a second write where links are not supported), then the copies
 * older than the last K go. */
static dpt_status_t retain_checkpoint(run_t *r, const float *restored)
{
    if (!r->cfg->keep_checkpoints || !r->epochs_done) return DPT_OK;
    char name[64], latest[4096], tmp[4200];
    snprintf(name, sizeof name, DPT_RUN_EPOCH_CHECKPOINT, (unsigned long long)r->epochs_done);
    snprintf(latest, sizeof latest, "%s", run_path(r, DPT_RUN_CHECKPOINT));
    snprintf(tmp, sizeof tmp, "%s.link-tmp", run_path(r, name));
    unlink(tmp);
    dpt_status_t s = DPT_OK;
    if (link(latest, tmp) == 0) {
        if (rename(tmp, run_path(r, name)) != 0) {
            s = dpt_error(DPT_ERR_IO, "%s: cannot rename into place: %s", r->path, strerror(errno));
            unlink(tmp);
        }
        if (s == DPT_OK) s = dpt_sync_parent_dir(r->path);
    } else {
        s = save_checkpoint(r, name, restored, NULL);
    }
    return s == DPT_OK ? prune_checkpoints(r) : s;
}

/* What best.dpt is best by: the early-stopping monitor when early stopping is on, else the
 * plateau schedule's monitor, else validation loss; negated when higher is better, so the
 * stored best is always "lower is better" (and the checkpoint state keeps one double). */
static double best_checkpoint_key(const run_t *r, double vloss, double vacc)
{
    if (r->es.enabled) {
        double v = r->es.monitor_accuracy ? vacc : vloss;
        return r->es.mode_max ? -v : v;
    }
    if (r->monitor && strcmp(r->monitor, "val_accuracy") == 0) return -vacc;
    return vloss;
}

/* Validation, plateau and early-stop bookkeeping, the CSV row, checkpoints and the summary
 * line of one finished epoch. */
static dpt_status_t finish_epoch(run_t *r, dpt_progress_t *prog, const dpt_epoch_stats_t *es,
                                 double vloss, double vacc, dpt_run_result_t *res)
{
    dpt_status_t s = DPT_OK;
    r->epochs_done++;
    r->rollbacks_in_row = 0;
    r->has_from = 0;
    if (r->monitor) {
        double metric = strcmp(r->monitor, "val_accuracy") == 0 ? vacc : vloss;
        if (dpt_schedule_plateau_update(r->sched, &r->plateau, metric))
            add_event(r, "plateau reduce");
    }
    char stop_line[512] = "";
    const float *restored = NULL;
    if (r->es.enabled) {
        double v = r->es.monitor_accuracy ? vacc : vloss;
        if (dpt_early_stop_update(&r->es, &r->es_state, v, r->epochs_done) && r->best_params) {
            memcpy(r->best_params, dpt_trainer_params(r->trainer),
                   dpt_model_param_count(r->model) * sizeof(float));
            r->has_best_params = 1;
        }
        if (r->es_state.stopped) {
            char why[256];
            snprintf(why, sizeof why, "no %s improvement for %llu epochs (best %.6g at epoch %llu)",
                     dpt_early_stop_monitor_name(&r->es), (unsigned long long)r->es_state.wait,
                     r->es_state.best, (unsigned long long)r->es_state.best_epoch);
            add_event(r, "early stop: %s", why);
            snprintf(stop_line, sizeof stop_line, "early stop after epoch %llu: %s",
                     (unsigned long long)r->epochs_done, why);
        }
        /* restore_best acts when the run ends, stopped early or not. */
        int last = r->es_state.stopped || r->epochs_done >= r->cfg->epochs;
        if (last && r->has_best_params) {
            restored = r->best_params;
            add_event(r, "restored epoch %llu", (unsigned long long)r->es_state.best_epoch);
        }
    }
    /* Order matters for a kill (or a full disk) at any point. The resumable state comes
     * first: steps.csv synced, then checkpoint.dpt, which carries this epoch's metrics row and
     * the updated best key. Then what derives from it, each of which a resume redoes when it is
     * missing (repair_after_resume): the metrics row (so no row is ever ahead of the
     * checkpoint), best.dpt, the kept copy. */
    if (r->steps) s = dpt_step_log_sync(r->steps);
    run_row_t row =
        make_row(r, es, r->epochs_done, dpt_trainer_step_count(r->trainer), vloss, vacc);
    double best_key = best_checkpoint_key(r, vloss, vacc);
    int is_best = r->val && best_key < r->best_val_loss;
    if (is_best) r->best_val_loss = best_key;
    r->row = &row;
    if (s == DPT_OK) s = save_checkpoint(r, DPT_RUN_CHECKPOINT, restored, NULL);
    r->row = NULL;
    if (s == DPT_OK) s = write_epoch_row(r, &row);
    if (s == DPT_OK && is_best) s = save_checkpoint(r, DPT_RUN_BEST_CHECKPOINT, NULL, NULL);
    if (s == DPT_OK) s = retain_checkpoint(r, restored);
    char line[1600];
    snprintf(line, sizeof line,
             "epoch %llu/%zu  lr %.4g  train loss %.4f acc %.4f  val loss %.4f acc %.4f  "
             "%.2fs  %.0f samples/s  %zu threads%s%s",
             (unsigned long long)r->epochs_done, r->cfg->epochs, es->lr_last, es->loss,
             es->accuracy, vloss, vacc, es->seconds, es->samples_per_second,
             dpt_trainer_team_size(r->trainer), r->events[0] ? "  " : "", r->events);
    dpt_progress_epoch_end(prog, line);
    if (stop_line[0]) say(prog, "%s", stop_line);
    if (restored) {
        say(prog, "restored the parameters of epoch %llu (%s %.6g) into %s/%s",
            (unsigned long long)r->es_state.best_epoch, dpt_early_stop_monitor_name(&r->es),
            r->es_state.best, r->cfg->out_dir, DPT_RUN_CHECKPOINT);
        memcpy(dpt_trainer_params(r->trainer), restored,
               dpt_model_param_count(r->model) * sizeof(float));
    }
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

static int stopped_early(const run_t *r)
{
    return r->es.enabled && r->es_state.stopped;
}

static dpt_status_t run_epochs(run_t *r, dpt_run_result_t *res)
{
    dpt_progress_t prog;
    dpt_progress_init(&prog, stderr, r->cfg->quiet, r->cfg->epochs);
    lr_ctx_t lc = {r};
    dpt_status_t s = DPT_OK;
    if (stopped_early(r) && r->epochs_done < r->cfg->epochs)
        say(&prog,
            "the run stopped early after epoch %llu; nothing to do (--early-stop off "
            "trains on)",
            (unsigned long long)r->epochs_done);
    /* A mid-epoch resume may come back with rollbacks in a row: its first pass still takes
     * the snapshot, and keeps the restored events. */
    int first = 1;
    while (s == DPT_OK && r->epochs_done < r->cfg->epochs && !stopped_early(r)) {
        if (stop_requested) {
            s = interrupted(r);
            break;
        }
        dpt_epoch_stats_t es;
        if (r->rollbacks_in_row == 0 || first) {
            if (!r->has_from) r->events[0] = '\0';
            if (r->guard.enabled) take_snapshot(r);
            if (r->steps) s = dpt_step_log_mark(r->steps);
            if (s != DPT_OK) break;
        }
        first = 0;
        r->diverged = 0;
        dpt_trainer_set_epoch_start(r->trainer, r->has_from ? &r->from : NULL);
        dpt_progress_epoch_begin(&prog, r->epochs_done + 1);
        s = dpt_trainer_train_epoch(r->trainer, r->train, r->epochs_done, scheduled_lr, &lc,
                                    dpt_progress_update, &prog, &es);
        if (s == DPT_OK) s = r->hook_status;
        if (s == DPT_OK && r->interrupted && !r->diverged) {
            /* The steps so far are kept as a mid-epoch checkpoint; resume continues there. */
            s = checkpoint_mid_epoch(r);
            if (s == DPT_OK) s = interrupted(r);
            break;
        }
        if (s == DPT_OK && r->guard.enabled && !r->diverged) check_params(r);
        double vloss = NAN, vacc = NAN;
        if (s == DPT_OK && !r->diverged && r->val)
            s = dpt_trainer_evaluate(r->trainer, r->val, &vloss, &vacc, NULL);
        /* Finite parameters can still overflow the logits: such an epoch is no good state. */
        if (s == DPT_OK && r->guard.enabled && !r->diverged && r->val && !isfinite(vloss)) {
            r->diverged = 1;
            r->diverged_step = dpt_trainer_step_count(r->trainer);
            snprintf(r->diverged_why, sizeof r->diverged_why, "validation loss %s",
                     isnan(vloss) ? "nan" : "inf");
        }
        if (s == DPT_OK && r->diverged)
            s = roll_back(r, &prog, &es);
        else if (s == DPT_OK)
            s = finish_epoch(r, &prog, &es, vloss, vacc, res);
    }
    res->early_stopped = stopped_early(r);
    res->best_epoch = (size_t)r->es_state.best_epoch;
    res->lr_scale = r->guard_state.lr_scale;
    res->rollbacks = r->rollbacks;
    return s;
}

/* The best key best.dpt was written with, or NaN when it is missing or unreadable. */
static double best_file_key(run_t *r)
{
    dpt_checkpoint_t *ck;
    if (dpt_checkpoint_read(run_path(r, DPT_RUN_BEST_CHECKPOINT), &ck) != DPT_OK) {
        dpt_error_clear();
        return NAN;
    }
    size_t n;
    const void *st = dpt_checkpoint_section(ck, "state", &n);
    double key = NAN;
    if (st && n == sizeof(run_state_t)) {
        run_state_t s;
        memcpy(&s, st, sizeof s);
        key = s.best_val_loss;
    }
    dpt_checkpoint_free(ck);
    return key;
}

/* Whether metrics.csv has a row for epoch `epoch`. */
static int has_row(run_t *r, uint64_t epoch)
{
    dpt_metrics_table_t *t;
    if (dpt_metrics_read(run_path(r, "metrics.csv"), &t) != DPT_OK) {
        dpt_error_clear();
        return 0;
    }
    int found = 0;
    for (size_t i = 0; i < dpt_metrics_table_rows(t) && !found; i++)
        found = strtoull(dpt_metrics_table_field(t, i, 0), NULL, 10) == epoch;
    dpt_metrics_table_free(t);
    return found;
}

/* Resuming from an epoch-end checkpoint: what the epoch's end writes after the checkpoint —
 * its metrics row, best.dpt when the epoch was the best so far, the kept copy — is written
 * again where a kill or a full disk stopped it. */
static dpt_status_t repair_after_resume(run_t *r)
{
    dpt_status_t s = DPT_OK;
    if (r->has_saved_row && r->saved_row.epoch == r->epochs_done && !has_row(r, r->epochs_done))
        s = write_epoch_row(r, &r->saved_row);
    /* The checkpoint names the best key; best.dpt written after it holds the same. After
     * restore_best (trained_params) the run is over and best.dpt was written before. */
    double key = best_file_key(r);
    if (s == DPT_OK && r->val && isfinite(r->best_val_loss) && !r->resumed_restored &&
        !(key == r->best_val_loss))
        s = save_checkpoint(r, DPT_RUN_BEST_CHECKPOINT, NULL, NULL);
    if (s == DPT_OK) s = retain_checkpoint(r, NULL);
    return s;
}

static void run_free(run_t *r)
{
    dpt_run_dir_close(r->dir);
    dpt_step_log_close(r->steps);
    dpt_metrics_close(r->metrics);
    dpt_trainer_free(r->trainer);
    dpt_schedule_free(r->sched);
    dpt_optimizer_free(r->opt);
    dpt_model_free(r->model);
    if (r->val != r->test) dpt_dataset_free(r->val);
    if (r->train != r->all) dpt_dataset_free(r->train);
    dpt_dataset_free(r->test);
    dpt_dataset_free(r->all);
    free(r->best_params);
    free(r->snap_params), free(r->snap_opt);
}

dpt_status_t dpt_run_train(const dpt_run_config_t *cfg, dpt_run_result_t *result)
{
    run_t r = {.cfg = cfg};
    dpt_run_result_t res = {.val_loss = NAN, .val_accuracy = NAN};
    if (!cfg->out_dir || !*cfg->out_dir)
        return dpt_error(DPT_ERR_INVALID_ARG, "a run needs an output directory");
    if (cfg->epochs < 1) return dpt_error(DPT_ERR_INVALID_ARG, "epochs must be >= 1");
    if (!cfg->lr_auto && (!(cfg->lr > 0) || !isfinite(cfg->lr)))
        return dpt_error(DPT_ERR_INVALID_ARG, "--lr must be a positive number, got %g", cfg->lr);
    if (cfg->lr_auto && cfg->lr_scaling && *cfg->lr_scaling && strcmp(cfg->lr_scaling, "none"))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "--lr auto and --lr-scaling do not combine: the range test already "
                         "runs at this batch size");
    /* A bad model spec is refused before the run directory or the data are touched. */
    dpt_status_t s = dpt_model_check_early(cfg->model_spec, cfg->data_spec);
    if (s == DPT_OK)
        s = dpt_run_dir_open(cfg->out_dir, cfg->resume, cfg->overwrite, cfg->quiet, &r.dir);
    if (s == DPT_OK) s = remove_stale_temps(&r);
    if (s == DPT_OK) s = load_data(&r);
    if (s == DPT_OK) s = build(&r);
    if (s == DPT_OK && cfg->resume) s = restore_checkpoint(&r);
    if (s == DPT_OK) {
        describe_config(&r);
        s = write_text_file(run_path(&r, "config.txt"), r.config_text);
    }
    if (s == DPT_OK)
        s = dpt_metrics_open(run_path(&r, "metrics.csv"), metric_columns, N_COLS,
                             cfg->resume ? (int64_t)r.epochs_done : -1, &r.metrics);
    if (s == DPT_OK && cfg->log_every)
        s = dpt_step_log_open(run_path(&r, "steps.csv"),
                              cfg->resume ? (int64_t)dpt_trainer_step_count(r.trainer) : -1,
                              &r.steps);
    /* A kill (or a full disk) after the checkpoint and before what derives from it: redo it. */
    if (s == DPT_OK && cfg->resume && !r.has_from) s = repair_after_resume(&r);
    if (s == DPT_OK && !cfg->quiet)
        fprintf(stderr, "dptrain: %s | %s | %zu threads | BLIS %s kernels | run dir %s%s\n",
                dpt_dataset_describe(r.train), dpt_model_brief(r.model),
                dpt_trainer_threads(r.trainer), dpt_gemm_kernel_name(), cfg->out_dir,
                cfg->resume ? " (resumed)" : "");
    if (s == DPT_OK) s = run_epochs(&r, &res);
    if (s == DPT_OK && cfg->plot) {
        char png[4096];
        snprintf(png, sizeof png, "%s/metrics.png", cfg->out_dir);
        s = dpt_plot_metrics(run_path(&r, "metrics.csv"), png);
    }
    run_free(&r);
    if (result) *result = res;
    return s;
}

dpt_status_t dpt_run_read_argv(const char *out_dir, char **blob, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, DPT_RUN_CHECKPOINT);
    dpt_checkpoint_t *ck;
    dpt_status_t s = dpt_checkpoint_read(path, &ck);
    if (s != DPT_OK) return s;
    size_t n;
    const char *data = dpt_checkpoint_section(ck, "argv", &n);
    if (!data) {
        dpt_checkpoint_free(ck);
        return dpt_error(DPT_ERR_FORMAT, "%s: no 'argv' section to resume from", path);
    }
    *blob = malloc(n + 1);
    if (!*blob) {
        dpt_checkpoint_free(ck);
        return dpt_error(DPT_ERR_NOMEM, "out of memory");
    }
    memcpy(*blob, data, n);
    (*blob)[n] = '\0';
    *len = n;
    dpt_checkpoint_free(ck);
    return DPT_OK;
}
