/* Owns the run's early-stopping and divergence-guard specs, decisions and their checkpoint
 * section (see guards.h). */
#include "train/guards.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/fmt.h"

#define ES_FLAG "--early-stop"
#define ES_KEYS "monitor, mode, patience, min_delta, restore_best"
#define GUARD_FLAG "--divergence-guard"
#define GUARD_KEYS "factor, retries, spike"

/* Splits "key=value,..." one pair at a time: copies the next pair's key and value into the
 * buffers and advances *p; 0 at the end, -1 for a pair without '=' or too long. */
static int next_pair(const char **p, char *key, size_t kn, char *val, size_t vn)
{
    if (!**p) return 0;
    const char *end = strchr(*p, ','), *eq = strchr(*p, '=');
    size_t len = end ? (size_t)(end - *p) : strlen(*p);
    if (!eq || eq >= *p + len) return -1;
    size_t klen = (size_t)(eq - *p), vlen = len - klen - 1;
    if (klen >= kn || vlen >= vn) return -1;
    memcpy(key, *p, klen), key[klen] = '\0';
    memcpy(val, eq + 1, vlen), val[vlen] = '\0';
    *p += len + (end ? 1 : 0);
    return 1;
}

static int parse_real(const char *text, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

static int parse_count(const char *text, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    if (!*text || *text == '-') return 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || errno || v > hi) return 0;
    *out = (size_t)v;
    return 1;
}

static dpt_status_t bad_pair(const char *flag, const char *key, const char *val, const char *want)
{
    return dpt_error(DPT_ERR_INVALID_ARG, "%s: %s='%s': expected %s", flag, key, val, want);
}

static dpt_status_t bad_spec(const char *flag, const char *spec, const char *keys)
{
    return dpt_error(DPT_ERR_INVALID_ARG, "%s: '%s' is not 'off', 'on' or key=value,... (keys: %s)",
                     flag, spec, keys);
}

/* One early-stop key; mode_set tells whether mode was given (else it follows the monitor). */
static dpt_status_t es_key(dpt_early_stop_config_t *c, const char *k, const char *v, int *mode_set)
{
    if (!strcmp(k, "monitor")) {
        if (!strcmp(v, "val_loss"))
            c->monitor_accuracy = 0;
        else if (!strcmp(v, "val_accuracy"))
            c->monitor_accuracy = 1;
        else
            return bad_pair(ES_FLAG, k, v, "val_loss or val_accuracy");
    } else if (!strcmp(k, "mode")) {
        if (!strcmp(v, "auto"))
            *mode_set = 0;
        else if (!strcmp(v, "min") || !strcmp(v, "max")) {
            c->mode_max = !strcmp(v, "max");
            *mode_set = 1;
        } else
            return bad_pair(ES_FLAG, k, v, "min, max or auto");
    } else if (!strcmp(k, "patience")) {
        if (!parse_count(v, 1000000, &c->patience))
            return bad_pair(ES_FLAG, k, v, "an integer in [0, 1000000]");
    } else if (!strcmp(k, "min_delta")) {
        if (!parse_real(v, 0, 1e300, &c->min_delta))
            return bad_pair(ES_FLAG, k, v, "a finite number >= 0");
    } else if (!strcmp(k, "restore_best")) {
        if (strcmp(v, "0") && strcmp(v, "1")) return bad_pair(ES_FLAG, k, v, "0 or 1");
        c->restore_best = v[0] == '1';
    } else
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: unknown key '%s'; valid keys: %s", ES_FLAG, k,
                         ES_KEYS);
    return DPT_OK;
}

dpt_status_t dpt_early_stop_parse(const char *spec, dpt_early_stop_config_t *out)
{
    /* Keras EarlyStopping's defaults: val_loss, patience 0, min_delta 0, no restore. */
    dpt_early_stop_config_t c = {0};
    *out = c;
    if (!spec || !*spec || !strcmp(spec, "off")) return DPT_OK;
    c.enabled = 1;
    int mode_set = 0;
    if (strcmp(spec, "on") != 0) {
        const char *p = spec;
        char k[32], v[64];
        int got;
        while ((got = next_pair(&p, k, sizeof k, v, sizeof v)) == 1) {
            dpt_status_t s = es_key(&c, k, v, &mode_set);
            if (s != DPT_OK) return s;
        }
        if (got < 0) return bad_spec(ES_FLAG, spec, ES_KEYS);
    }
    if (!mode_set) c.mode_max = c.monitor_accuracy;
    *out = c;
    return DPT_OK;
}

dpt_status_t dpt_guard_parse(const char *spec, dpt_guard_config_t *out)
{
    dpt_guard_config_t c = {.enabled = 1, .factor = 0.5, .retries = 3, .spike = 10};
    *out = c;
    if (spec && !strcmp(spec, "off")) {
        out->enabled = 0;
        return DPT_OK;
    }
    if (!spec || !*spec || !strcmp(spec, "on")) return DPT_OK;
    const char *p = spec;
    char k[32], v[64];
    int got;
    while ((got = next_pair(&p, k, sizeof k, v, sizeof v)) == 1) {
        if (!strcmp(k, "factor")) {
            if (!parse_real(v, 0, 1, &c.factor) || c.factor <= 0 || c.factor >= 1)
                return bad_pair(GUARD_FLAG, k, v, "a number with 0 < factor < 1");
        } else if (!strcmp(k, "retries")) {
            if (!parse_count(v, 100, &c.retries))
                return bad_pair(GUARD_FLAG, k, v, "an integer in [0, 100]");
        } else if (!strcmp(k, "spike")) {
            if (!parse_real(v, 0, 1e300, &c.spike) || (c.spike > 0 && c.spike <= 1))
                return bad_pair(GUARD_FLAG, k, v, "a number > 1, or 0 to test only for NaN/inf");
        } else
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: unknown key '%s'; valid keys: %s",
                             GUARD_FLAG, k, GUARD_KEYS);
    }
    if (got < 0) return bad_spec(GUARD_FLAG, spec, GUARD_KEYS);
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
