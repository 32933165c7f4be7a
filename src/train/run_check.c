/* Owns the checks of a run's flags that need no data (dpt_run_check): every spec is parsed by
 * its owner exactly as the run will parse it, so a sweep can vet all its configurations, and a
 * run can fail on a typo before it reads a dataset or touches a directory. */
#include <math.h>
#include <string.h>

#include "dptrain/augment.h"
#include "dptrain/dataset.h"
#include "dptrain/model.h"
#include "dptrain/optimizer.h"
#include "dptrain/run.h"
#include "dptrain/schedule.h"
#include "train/guards.h"

static int given(const char *spec)
{
    return spec && *spec && strcmp(spec, "none") != 0;
}

static dpt_status_t check_numbers(const dpt_run_config_t *c)
{
    if (c->epochs < 1) return dpt_error(DPT_ERR_INVALID_ARG, "epochs must be >= 1");
    if (!c->lr_auto && (!(c->lr > 0) || !isfinite(c->lr)))
        return dpt_error(DPT_ERR_INVALID_ARG, "--lr must be a positive number, got %g", c->lr);
    if (c->lr_auto && given(c->lr_scaling))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "--lr auto and --lr-scaling do not combine: the range test already "
                         "runs at this batch size");
    if (!(c->train_fraction >= 0 && c->train_fraction <= 1))
        return dpt_error(DPT_ERR_INVALID_ARG, "--train-fraction must be in (0, 1] (0: all), got %g",
                         c->train_fraction);
    return DPT_OK;
}

/* --augment against the image shape the data spec implies, when it implies one (crop
 * padding, colour ops); otherwise the spec alone, and the shape after loading. */
static dpt_status_t check_augment(const dpt_run_config_t *c)
{
    if (!given(c->augment_spec)) return DPT_OK;
    size_t ch = 0, h = 0, w = 0, classes;
    if (!dpt_dataset_spec_shape(c->data_spec, &ch, &h, &w, &classes)) ch = h = w = 0;
    dpt_augment_t *a = NULL;
    dpt_status_t s = dpt_augment_create(c->augment_spec, ch, h, w, &a);
    dpt_augment_free(a);
    return s;
}

/* The optimizer and --no-decay on the run's model when the data spec fixes its shape, else on
 * a stand-in (both only size their state by the model). */
static dpt_status_t check_model_and_optimizer(const dpt_run_config_t *c)
{
    dpt_shape_t in = {1, 1, 1};
    size_t classes = 2;
    int known = dpt_dataset_spec_shape(c->data_spec, &in.c, &in.h, &in.w, &classes);
    dpt_model_t *m = NULL;
    dpt_status_t s = known ? dpt_model_create_shaped(c->model_spec, in, classes, &m)
                           : dpt_model_create_shaped("dense:2", in, 2, &m);
    dpt_optimizer_t *o = NULL;
    if (s == DPT_OK) s = dpt_optimizer_create(c->optimizer_spec, m, &o);
    if (s == DPT_OK && c->no_decay) s = dpt_optimizer_exclude_decay(o, c->no_decay);
    dpt_optimizer_free(o);
    dpt_model_free(m);
    return s;
}

static dpt_status_t check_schedule(const dpt_run_config_t *c)
{
    /* Steps per epoch depend on the data; one stands in (no spec's validity depends on it). */
    dpt_schedule_t *sch = NULL;
    dpt_status_t s =
        dpt_schedule_create(c->schedule_spec, c->warmup_spec,
                            c->lr_auto || !(c->lr > 0) ? 1.0 : c->lr, 1, c->epochs, &sch);
    dpt_schedule_free(sch);
    return s;
}

dpt_status_t dpt_run_check(const dpt_run_config_t *c)
{
    dpt_status_t s = check_numbers(c);
    if (s == DPT_OK) s = check_model_and_optimizer(c);
    if (s == DPT_OK) s = check_schedule(c);
    if (s == DPT_OK) s = check_augment(c);
    dpt_early_stop_config_t es;
    dpt_guard_config_t guard;
    if (s == DPT_OK) s = dpt_early_stop_parse(c->early_stop_spec, &es);
    if (s == DPT_OK) s = dpt_guard_parse(c->divergence_guard_spec, &guard);
    double lr = 0;
    if (s == DPT_OK)
        s = dpt_lr_scaling_apply(c->lr_scaling, 1.0,
                                 c->trainer.batch_size ? c->trainer.batch_size : 1, &lr);
    return s;
}
