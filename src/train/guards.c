/* Owns the run's early-stopping and divergence-guard specs, decisions and their checkpoint
 * section (see guards.h). */
#include "train/guards.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fmt.h"
#include "core/spec.h"

/* Both flags: "off", "on", or "on"'s keys (the name may be left out: "patience=3"). */
static const dpt_spec_key_t es_keys[] = {DPT_SPEC_E("monitor", "val_loss", "val_loss|val_accuracy"),
                                         DPT_SPEC_E("mode", "auto", "auto|min|max"),
                                         DPT_SPEC_I("patience", "0", 0, 1000000, 0),
                                         DPT_SPEC_R("min_delta", "0", 0, INFINITY, 0),
                                         DPT_SPEC_B("restore_best", "0"),
                                         DPT_SPEC_END};
static const dpt_spec_key_t guard_keys[] = {
    DPT_SPEC_R("factor", "0.5", 0, 1, DPT_SPEC_LO_OPEN | DPT_SPEC_HI_OPEN),
    DPT_SPEC_I("retries", "3", 0, 100, 0), DPT_SPEC_R("spike", "10", 0, INFINITY, 0), DPT_SPEC_END};
static const dpt_spec_kind_t off_kind = {"off", NULL}, es_on = {"on", es_keys},
                             guard_on = {"on", guard_keys};
static const dpt_spec_kind_t *const es_kinds[] = {&es_on, &off_kind};
static const dpt_spec_kind_t *const guard_kinds[] = {&guard_on, &off_kind};
static const dpt_spec_grammar_t es_grammar = {"--early-stop", es_kinds, 2, "on", 1, 0};
static const dpt_spec_grammar_t guard_grammar = {"--divergence-guard", guard_kinds, 2, "on", 1, 0};

dpt_status_t dpt_early_stop_parse(const char *spec, dpt_early_stop_config_t *out)
{
    /* Keras EarlyStopping's defaults: val_loss, patience 0, min_delta 0, no restore. */
    *out = (dpt_early_stop_config_t){0};
    if (!spec || !*spec) return DPT_OK;
    dpt_spec_part_t p;
    dpt_status_t s = dpt_spec_parse_part(&es_grammar, spec, strlen(spec), &p);
    if (s != DPT_OK || p.kind == &off_kind) return s;
    dpt_early_stop_config_t c = {.enabled = 1};
    c.monitor_accuracy = dpt_spec_int(&p, "monitor");
    int mode = dpt_spec_int(&p, "mode"); /* auto: an accuracy improves upwards */
    c.mode_max = mode == 0 ? c.monitor_accuracy : mode == 2;
    c.patience = dpt_spec_size(&p, "patience");
    c.min_delta = dpt_spec_real(&p, "min_delta");
    c.restore_best = dpt_spec_int(&p, "restore_best");
    *out = c;
    return DPT_OK;
}

dpt_status_t dpt_guard_parse(const char *spec, dpt_guard_config_t *out)
{
    dpt_spec_part_t p;
    dpt_status_t s = dpt_spec_parse_part(&guard_grammar, spec && *spec ? spec : "on",
                                         spec && *spec ? strlen(spec) : 2, &p);
    if (s != DPT_OK) return s;
    if (p.kind == &off_kind) {
        *out = (dpt_guard_config_t){.enabled = 0, .factor = 0.5, .retries = 3, .spike = 10};
        return DPT_OK;
    }
    dpt_guard_config_t c = {.enabled = 1};
    c.factor = dpt_spec_real(&p, "factor");
    c.retries = dpt_spec_size(&p, "retries");
    c.spike = dpt_spec_real(&p, "spike");
    if (c.spike > 0 && c.spike <= 1)
        return dpt_spec_error(&p, "spike must be > 1, or 0 to test only for NaN/inf, got %g",
                              c.spike);
    *out = c;
    return DPT_OK;
}

const char *dpt_early_stop_monitor_name(const dpt_early_stop_config_t *c)
{
    return c->monitor_accuracy ? "val_accuracy" : "val_loss";
}

void dpt_early_stop_describe(const dpt_early_stop_config_t *c, char *buf, size_t n)
{
    if (!c->enabled) {
        snprintf(buf, n, "off");
        return;
    }
    char delta[40];
    dpt_fmt_double(delta, sizeof delta, c->min_delta);
    snprintf(buf, n, "monitor=%s,mode=%s,patience=%zu,min_delta=%s,restore_best=%d",
             dpt_early_stop_monitor_name(c), c->mode_max ? "max" : "min", c->patience, delta,
             c->restore_best);
}

void dpt_guard_describe(const dpt_guard_config_t *c, char *buf, size_t n)
{
    if (!c->enabled)
        snprintf(buf, n, "off");
    else {
        char factor[40], spike[40];
        dpt_fmt_double(factor, sizeof factor, c->factor);
        dpt_fmt_double(spike, sizeof spike, c->spike);
        snprintf(buf, n, "factor=%s,retries=%zu,spike=%s%s", factor, c->retries, spike,
                 c->spike > 0 ? "" : " (non-finite losses only)");
    }
}

uint64_t dpt_early_stop_key(const dpt_early_stop_config_t *c)
{
    return (uint64_t)c->monitor_accuracy + 2u * (uint64_t)c->mode_max;
}

void dpt_early_stop_init(const dpt_early_stop_config_t *c, dpt_early_stop_state_t *st)
{
    *st = (dpt_early_stop_state_t){.best = c->mode_max ? -INFINITY : INFINITY,
                                   .monitor_key = dpt_early_stop_key(c)};
}

int dpt_early_stop_update(const dpt_early_stop_config_t *c, dpt_early_stop_state_t *st,
                          double value, uint64_t epoch)
{
    /* Keras: improvement is value - min_delta > best (max) or value + min_delta < best (min). */
    int better = c->mode_max ? value - c->min_delta > st->best : value + c->min_delta < st->best;
    if (better) {
        st->best = value;
        st->best_epoch = epoch;
        st->wait = 0;
        return 1;
    }
    st->wait++;
    if (st->wait >= c->patience) st->stopped = 1; /* Keras: patience epochs with none */
    return 0;
}

void dpt_guard_init(dpt_guard_state_t *st)
{
    *st = (dpt_guard_state_t){.lr_scale = 1.0, .loss_ema = 0, .ema_steps = 0};
}

int dpt_guard_check(const dpt_guard_config_t *c, dpt_guard_state_t *st, double loss,
                    double chance_loss, char *why, size_t n)
{
    if (!isfinite(loss)) {
        snprintf(why, n, "loss %s", isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf");
        return 0;
    }
    if (c->spike > 0 && st->ema_steps >= DPT_GUARD_WARMUP && loss > c->spike * st->loss_ema &&
        loss > chance_loss) {
        snprintf(why, n, "loss %.4g > %g x average %.4g", loss, c->spike, st->loss_ema);
        return 0;
    }
    st->loss_ema = st->ema_steps
                       ? (1 - DPT_GUARD_EMA_WEIGHT) * st->loss_ema + DPT_GUARD_EMA_WEIGHT * loss
                       : loss;
    st->ema_steps++;
    return 1;
}

dpt_guards_section_t dpt_guards_section_make(const dpt_guard_state_t *guard,
                                             const dpt_early_stop_state_t *early_stop,
                                             int has_best_params)
{
    return (dpt_guards_section_t){
        .guard = *guard, .early_stop = *early_stop, .has_best_params = has_best_params != 0};
}

void dpt_guards_section_restore(const dpt_guards_section_t *sec, const dpt_early_stop_config_t *c,
                                dpt_guard_state_t *guard, dpt_early_stop_state_t *early_stop)
{
    *guard = sec->guard;
    if (c->enabled && sec->early_stop.monitor_key == dpt_early_stop_key(c))
        *early_stop = sec->early_stop;
}
