/* Owns a training run end to end: loading and splitting data, building model, optimizer,
 * schedule and trainer, the epoch loop with validation, the run directory (config snapshot,
 * metrics.csv, checkpoints) and exact resume from the latest checkpoint. */
#include "dptrain/run.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dptrain/checkpoint.h"
#include "dptrain/lr_find.h"
#include "dptrain/metrics.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/plot.h"
#include "dptrain/schedule.h"
#include "io/progress.h"
#include "kernels/gemm.h"

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
typedef struct run {
    const dpt_run_config_t *cfg;
    dpt_dataset_t *all, *test, *train, *val; /* val points at test when not split */
    dpt_model_t *model;
    dpt_optimizer_t *opt;
    dpt_schedule_t *sched;
    dpt_trainer_t *trainer;
    dpt_metrics_writer_t *metrics;
    dpt_plateau_state_t plateau;
    const char *monitor; /* plateau's metric, or NULL */
    double best_val_loss;
    uint64_t epochs_done;
    double lr;          /* effective base LR: scaled, or found by the range test */
    char lr_note[512];  /* how lr was derived, for config.txt */
    char path[4096];
    char config_text[8192];
} run_t;

/* Model section: "spec\nin_features\nclasses\n"; normalisation section: the dataset's saved
 * normaliser (dpt_dataset_normalization_save). */
#define DPT_RUN_MODEL_TEXT_MAX 1200

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

static dpt_status_t make_dirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return dpt_error(DPT_ERR_INVALID_ARG, "output directory path too long");
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return dpt_error(DPT_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = saved;
        if (!saved) break;
    }
    return DPT_OK;
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
        snprintf(r->lr_note, sizeof r->lr_note,
                 "auto -> %.17g (lr-find start=%g end=%g steps=%zu: %zu taken%s; valley %.4g, "
                 "steepest %.4g, minimum/10 %.4g)",
                 r->lr, fc.start_lr, fc.end_lr, fc.steps, res.n,
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
    if (c->lr_scaling && *c->lr_scaling && strcmp(c->lr_scaling, "none") != 0)
        snprintf(r->lr_note, sizeof r->lr_note, "%.17g\nlr_scaling = %s (batch %zu) -> %.17g",
                 c->lr, c->lr_scaling, c->trainer.batch_size, r->lr);
    else
        snprintf(r->lr_note, sizeof r->lr_note, "%.17g", c->lr);
    return DPT_OK;
}

static dpt_status_t build(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_status_t s = dpt_model_create(c->model_spec, dpt_dataset_features(r->train),
                                      dpt_dataset_classes(r->all), &r->model);
    if (s == DPT_OK) s = dpt_optimizer_create(c->optimizer_spec, r->model, &r->opt);
    if (s == DPT_OK) s = resolve_lr(r);
    if (s != DPT_OK) return s;
    size_t n = dpt_dataset_count(r->train);
    size_t steps_per_epoch = (n + c->trainer.batch_size - 1) / c->trainer.batch_size;
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
    return dpt_trainer_create(r->model, r->opt, &c->trainer, &r->trainer);
}

static void describe_config(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    double mean, std;
    dpt_dataset_normalization(r->train, &mean, &std);
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
             "lr_effective = %.17g\n"
             "clip_grad_norm = %g%s\n"
             "lr_schedule = %s\n"
             "epochs = %zu\n"
             "batch_size = %zu\n"
             "micro_batch = %zu\n"
             "threads = %zu\n"
             "seed = %llu\n"
             "blis_version = %s\n"
             "blis_kernel_set = %s (%s)\n"
             "omp_max_threads = %d\n",
             DPT_VERSION, c->data_spec, dpt_dataset_describe(r->train),
             r->val ? dpt_dataset_describe(r->val) : "none", c->val_split, mean, std,
             dpt_model_describe(r->model), dpt_model_param_count(r->model),
             dpt_optimizer_describe(r->opt), r->lr_note, r->lr, c->trainer.clip_grad_norm,
             c->trainer.clip_grad_norm > 0 ? "" : " (off)", dpt_schedule_describe(r->sched),
             c->epochs,
             c->trainer.batch_size, c->trainer.micro_batch, dpt_trainer_threads(r->trainer),
             (unsigned long long)c->trainer.seed, dpt_gemm_blis_version(),
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

static dpt_status_t save_checkpoint(run_t *r, const char *name)
{
    size_t n_params = dpt_model_param_count(r->model), n_opt;
    float *opt_state = dpt_optimizer_state(r->opt, &n_opt);
    run_state_t st = {.epochs_done = r->epochs_done,
                      .steps = dpt_trainer_step_count(r->trainer),
                      .n_params = n_params,
                      .best_val_loss = r->best_val_loss,
                      .plateau = r->plateau};
    char model[DPT_RUN_MODEL_TEXT_MAX];
    snprintf(model, sizeof model, "%s\n%zu\n%zu\n", r->cfg->model_spec,
             dpt_model_in_features(r->model), dpt_model_classes(r->model));
    size_t norm_bytes = dpt_dataset_normalization_save(r->train, NULL, 0);
    void *norm = malloc(norm_bytes);
    if (!norm) return dpt_error(DPT_ERR_NOMEM, "out of memory saving the normalisation");
    dpt_dataset_normalization_save(r->train, norm, norm_bytes);
    dpt_ckpt_section_t sec[] = {
        {"config", r->config_text, strlen(r->config_text)},
        {"model", model, strlen(model)},
        {"normalization", norm, norm_bytes},
        {"argv", r->cfg->argv_blob, r->cfg->argv_blob ? r->cfg->argv_blob_len : 0},
        {"state", &st, sizeof st},
        {"params", dpt_trainer_params(r->trainer), n_params * sizeof(float)},
        {"optimizer", opt_state, n_opt * sizeof(float)},
    };
    dpt_status_t s = dpt_checkpoint_write(run_path(r, name), sec, sizeof sec / sizeof sec[0]);
    free(norm);
    return s;
}

static dpt_status_t section_exact(const dpt_checkpoint_t *ck, const char *path, const char *name,
                                  size_t want, const void **data)
{
    size_t bytes;
    *data = dpt_checkpoint_section(ck, name, &bytes);
    if (!*data || bytes != want)
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: section '%s' missing or of %zu bytes where this run needs %zu "
                         "(checkpoint from a different model or optimizer?)",
                         path, name, *data ? bytes : 0, want);
    return DPT_OK;
}

static dpt_status_t restore_checkpoint(run_t *r)
{
    const char *path = run_path(r, DPT_RUN_CHECKPOINT);
    dpt_checkpoint_t *ck;
    dpt_status_t s = dpt_checkpoint_read(path, &ck);
    if (s != DPT_OK) return s;
    size_t n_params = dpt_model_param_count(r->model), n_opt;
    float *opt_state = dpt_optimizer_state(r->opt, &n_opt);
    const void *st_p, *params, *opt;
    s = section_exact(ck, path, "state", sizeof(run_state_t), &st_p);
    if (s == DPT_OK) s = section_exact(ck, path, "params", n_params * sizeof(float), &params);
    if (s == DPT_OK) s = section_exact(ck, path, "optimizer", n_opt * sizeof(float), &opt);
    if (s == DPT_OK) {
        run_state_t st;
        memcpy(&st, st_p, sizeof st);
        memcpy(dpt_trainer_params(r->trainer), params, n_params * sizeof(float));
        memcpy(opt_state, opt, n_opt * sizeof(float));
        dpt_trainer_set_step_count(r->trainer, st.steps);
        r->epochs_done = st.epochs_done;
        r->best_val_loss = st.best_val_loss;
        r->plateau = st.plateau;
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
    return dpt_schedule_lr(r->sched, step, &r->plateau);
}

enum { COL_EPOCH, COL_STEP, COL_LR, COL_MOMENTUM, COL_TRAIN_LOSS, COL_TRAIN_ACC, COL_VAL_LOSS,
       COL_VAL_ACC, COL_SECONDS, COL_RATE, COL_THREADS, COL_EVENT, N_COLS };
static const char *const metric_columns[N_COLS] = {
    "epoch", "step", "lr", "momentum", "train_loss", "train_accuracy", "val_loss",
    "val_accuracy", "epoch_seconds", "samples_per_second", "threads", "event"};

static dpt_metric_value_t mv_real(double v)
{
    return (dpt_metric_value_t){.kind = isfinite(v) ? DPT_MV_REAL : DPT_MV_EMPTY, .r = v};
}
static dpt_metric_value_t mv_int(int64_t v)
{
    return (dpt_metric_value_t){.kind = DPT_MV_INT, .i = v};
}

/* Validation, plateau bookkeeping, the CSV row, checkpoints and the summary line of one
 * finished epoch. */
static dpt_status_t finish_epoch(run_t *r, dpt_progress_t *prog, const dpt_epoch_stats_t *es,
                                 dpt_run_result_t *res)
{
    double vloss = NAN, vacc = NAN;
    dpt_status_t s = DPT_OK;
    if (r->val) s = dpt_trainer_evaluate(r->trainer, r->val, &vloss, &vacc, NULL);
    if (s != DPT_OK) return s;
    r->epochs_done++;
    const char *event = "";
    if (r->monitor) {
        double metric = strcmp(r->monitor, "val_accuracy") == 0 ? vacc : vloss;
        if (dpt_schedule_plateau_update(r->sched, &r->plateau, metric)) event = "plateau reduce";
    }
    dpt_metric_value_t row[N_COLS] = {
        [COL_EPOCH] = mv_int((int64_t)r->epochs_done),
        [COL_STEP] = mv_int((int64_t)dpt_trainer_step_count(r->trainer)),
        [COL_LR] = mv_real(es->lr_last),
        [COL_MOMENTUM] = mv_real(es->momentum_last),
        [COL_TRAIN_LOSS] = mv_real(es->loss),
        [COL_TRAIN_ACC] = mv_real(es->accuracy),
        [COL_VAL_LOSS] = mv_real(vloss),
        [COL_VAL_ACC] = mv_real(vacc),
        [COL_SECONDS] = mv_real(es->seconds),
        [COL_RATE] = mv_real(es->samples_per_second),
        [COL_THREADS] = mv_int((int64_t)dpt_trainer_team_size(r->trainer)),
        [COL_EVENT] = {.kind = DPT_MV_TEXT, .text = event},
    };
    /* Order matters for a kill at any point: the row first (resume drops rows past the
     * checkpoint), then best.dpt, then checkpoint.dpt, so that the state resumed from never
     * claims a best model that best.dpt does not hold. */
    s = dpt_metrics_write_row(r->metrics, row);
    if (s == DPT_OK && r->val && vloss < r->best_val_loss) {
        r->best_val_loss = vloss;
        s = save_checkpoint(r, DPT_RUN_BEST_CHECKPOINT);
    }
    if (s == DPT_OK) s = save_checkpoint(r, DPT_RUN_CHECKPOINT);
    char line[512];
    snprintf(line, sizeof line,
             "epoch %llu/%zu  lr %.4g  train loss %.4f acc %.4f  val loss %.4f acc %.4f  "
             "%.2fs  %.0f samples/s  %zu threads%s%s",
             (unsigned long long)r->epochs_done, r->cfg->epochs, es->lr_last, es->loss,
             es->accuracy, vloss, vacc, es->seconds, es->samples_per_second,
             dpt_trainer_team_size(r->trainer), event[0] ? "  " : "", event);
    dpt_progress_epoch_end(prog, line);
    *res = (dpt_run_result_t){.epochs_done = r->epochs_done,
                              .val_loss = vloss,
                              .val_accuracy = vacc,
                              .train_loss = es->loss,
                              .train_accuracy = es->accuracy,
                              .samples_per_second = es->samples_per_second,
                              .threads = dpt_trainer_team_size(r->trainer)};
    return s;
}

static dpt_status_t run_epochs(run_t *r, dpt_run_result_t *res)
{
    dpt_progress_t prog;
    dpt_progress_init(&prog, stderr, r->cfg->quiet, r->cfg->epochs);
    lr_ctx_t lc = {r};
    dpt_status_t s = DPT_OK;
    while (s == DPT_OK && r->epochs_done < r->cfg->epochs) {
        dpt_epoch_stats_t es;
        dpt_progress_epoch_begin(&prog, r->epochs_done + 1);
        s = dpt_trainer_train_epoch(r->trainer, r->train, r->epochs_done, scheduled_lr, &lc,
                                    dpt_progress_update, &prog, &es);
        if (s == DPT_OK) s = finish_epoch(r, &prog, &es, res);
    }
    return s;
}

static void run_free(run_t *r)
{
    dpt_metrics_close(r->metrics);
    dpt_trainer_free(r->trainer);
    dpt_schedule_free(r->sched);
    dpt_optimizer_free(r->opt);
    dpt_model_free(r->model);
    if (r->val != r->test) dpt_dataset_free(r->val);
    if (r->train != r->all) dpt_dataset_free(r->train);
    dpt_dataset_free(r->test);
    dpt_dataset_free(r->all);
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
    dpt_status_t s = make_dirs(cfg->out_dir);
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
    if (s == DPT_OK && !cfg->quiet)
        fprintf(stderr, "dptrain: %s | %s | %zu threads | BLIS %s kernels | run dir %s%s\n",
                dpt_dataset_describe(r.train), dpt_model_describe(r.model),
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
