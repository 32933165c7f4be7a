/* Owns a run's setup: loading and splitting the data (normalisation fitted on the training
 * part), building model, optimizer, LR (scaled, or found by the range test), schedule,
 * trainer and guards, and the config snapshot (config.txt). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "dptrain/lr_find.h"
#include "core/fmt.h"
#include "kernels/gemm.h"
#include "parallel/world.h"
#include "train/run_internal.h"

static dpt_status_t load_data(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_status_t s = dpt_dataset_open(c->data_spec, &c->data, &r->data.all, &r->data.test);
    if (s != DPT_OK) return s;
    if (c->val_split > 0) {
        s = dpt_dataset_split(r->data.all, c->val_split, c->trainer.seed, &r->data.train,
                              &r->data.val);
    } else {
        r->data.train = r->data.all;
        r->data.val = r->data.test;
    }
    if (s == DPT_OK && c->train_fraction > 0 && c->train_fraction < 1) {
        /* A seeded subset (its own stream: the split's permutation of a different size). */
        dpt_dataset_t *keep = NULL, *drop = NULL;
        s = dpt_dataset_split(r->data.train, 1.0 - c->train_fraction, c->trainer.seed ^ 0x5b5e7ULL,
                              &keep, &drop);
        dpt_dataset_free(drop);
        if (s == DPT_OK) {
            if (r->data.train != r->data.all) dpt_dataset_free(r->data.train);
            r->data.train = keep;
        }
    }
    if (s != DPT_OK) return s;
    /* Statistics come from the training part only, then apply everywhere. */
    s = dpt_dataset_fit_normalization(r->data.train);
    if (s == DPT_OK && r->data.val) s = dpt_dataset_copy_normalization(r->data.val, r->data.train);
    if (s == DPT_OK && r->data.test && r->data.test != r->data.val)
        s = dpt_dataset_copy_normalization(r->data.test, r->data.train);
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
    dpt_status_t s =
        dpt_lr_find(r->model, c->optimizer_spec, &c->trainer, r->data.train, &fc, &res);
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

int run_augment_on(const dpt_run_config_t *c)
{
    return c->augment_spec && *c->augment_spec && strcmp(c->augment_spec, "none") != 0;
}

const char *run_augment_text(const run_t *r)
{
    return r->augment ? dpt_augment_describe(r->augment) : "none";
}

/* --augment for the training part's image shape (the spec alone, and against the shape the
 * data spec implies, was checked before any data was loaded: dpt_run_check). */
static dpt_status_t build_augment(run_t *r)
{
    if (!run_augment_on(r->cfg)) return DPT_OK;
    size_t c, h, w;
    dpt_dataset_shape(r->data.train, &c, &h, &w);
    dpt_status_t s = dpt_augment_create(r->cfg->augment_spec, c, h, w, &r->augment);
    return s == DPT_OK ? dpt_augment_check_data(r->augment, r->data.train) : s;
}

static dpt_status_t build(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    dpt_status_t s = build_augment(r);
    if (s != DPT_OK) return s;
    dpt_trainer_config_t tc = c->trainer;
    tc.augment = r->augment;
    s = dpt_model_create_for_data(c->model_spec, r->data.train, dpt_dataset_classes(r->data.all),
                                  &r->model);
    if (s == DPT_OK) s = dpt_optimizer_create(c->optimizer_spec, r->model, &r->opt);
    if (s == DPT_OK && c->no_decay) s = dpt_optimizer_exclude_decay(r->opt, c->no_decay);
    if (s == DPT_OK) s = resolve_lr(r);
    if (s != DPT_OK) return s;
    size_t n = dpt_dataset_count(r->data.train);
    size_t steps_per_epoch = (n + c->trainer.batch_size - 1) / c->trainer.batch_size;
    r->steps_per_epoch = steps_per_epoch;
    s = dpt_schedule_create(c->schedule_spec, c->warmup_spec, r->lr, steps_per_epoch, c->epochs,
                            &r->sched);
    if (s != DPT_OK) return s;
    dpt_schedule_plateau_init(r->sched, &r->plateau);
    if (!dpt_schedule_uses_plateau(r->sched, &r->monitor)) r->monitor = NULL;
    if (r->monitor && !r->data.val)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "the plateau schedule monitors %s but the data has no validation part: "
                         "use --val-split",
                         r->monitor);
    r->best_val_loss = INFINITY;
    s = dpt_trainer_create(r->model, r->opt, &tc, &r->trainer);
    if (s == DPT_OK) s = run_guard_build(r);
    /* The hook also answers stop requests (signals), so every run has it: one call per step. */
    if (s == DPT_OK) dpt_trainer_set_step_hook(r->trainer, run_on_step, r);
    return s;
}

dpt_status_t run_setup(run_t *r)
{
    dpt_status_t s = load_data(r);
    return s == DPT_OK ? build(r) : s;
}

void run_describe_config(run_t *r)
{
    const dpt_run_config_t *c = r->cfg;
    double mean, std;
    char es[256], guard[256];
    dpt_dataset_normalization(r->data.train, &mean, &std);
    dpt_early_stop_describe(&r->es.cfg, es, sizeof es);
    dpt_guard_describe(&r->guard.cfg, guard, sizeof guard);
    char lr_eff[40];
    dpt_fmt_double(lr_eff, sizeof lr_eff, r->lr);
    snprintf(
        r->config_text, sizeof r->config_text,
        "dptrain_version = %s\n"
        "data = %s\n"
        "train = %s\n"
        "validation = %s\n"
        "val_split = %g\n"
        "train_fraction = %g\n"
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
        "augment = %s\n"
        "replica_memory = %.1f MiB a worker (workspace %.2f MiB)\n"
        "ranks = %zu\n"
        "threads = %zu\n"
        "seed = %llu\n"
        "early_stop = %s\n"
        "divergence_guard = %s\n"
        "keep_checkpoints = %zu\n"
        "log_every = %zu\n"
        "checkpoint_every_steps = %zu\n"
        "blis_version = %s\n"
        "blis_kernel_set = %s (%s)\n"
        "omp_max_threads = %d\n"
        "mpi = %s\n",
        DPT_VERSION, c->data_spec, dpt_dataset_describe(r->data.train),
        r->data.val ? dpt_dataset_describe(r->data.val) : "none", c->val_split,
        c->train_fraction > 0 && c->train_fraction < 1 ? c->train_fraction : 1.0, mean, std,
        dpt_model_describe(r->model), dpt_model_param_count(r->model),
        dpt_optimizer_describe(r->opt), r->lr_note, lr_eff, c->trainer.clip_grad_norm,
        c->trainer.clip_grad_norm > 0 ? "" : " (off)", dpt_schedule_describe(r->sched), c->epochs,
        c->trainer.batch_size, dpt_trainer_micro_batch(r->trainer), run_augment_text(r),
        (double)dpt_model_replica_bytes(r->model, dpt_trainer_micro_batch(r->trainer)) / 1048576.0,
        (double)dpt_model_workspace_bytes(r->model, dpt_trainer_micro_batch(r->trainer)) /
            1048576.0,
        run_world_ranks(), dpt_trainer_threads(r->trainer), (unsigned long long)c->trainer.seed, es,
        guard, c->keep_checkpoints, c->log_every, c->checkpoint_every_steps,
        dpt_gemm_blis_version(), dpt_gemm_kernel_name(), dpt_gemm_kernel_reason(),
        omp_get_max_threads(),
        run_world_ranks() > 1 ? dpt_world_mpi_version() : "not used (one process)");
}

static dpt_status_t write_text_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? dpt_error(DPT_ERR_IO, "%s: write failed: %s", path, strerror(errno)) : DPT_OK;
}

dpt_status_t run_write_config(run_t *r)
{
    run_path_t p = run_path(r, "config.txt");
    return write_text_file(p.s, r->config_text);
}
