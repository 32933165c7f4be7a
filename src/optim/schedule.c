/* Owns learning-rate schedules: parsing "NAME:key=value,..." specs once into an immutable
 * dpt_schedule, and the LR/momentum at a step as closed-form functions of the config, the
 * step and the plateau state (formulas and their PyTorch origin in docs/schedules.md). */
#include "dptrain/schedule.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counts are kept below 2^53 so that converting them to double is exact. */
#define COUNT_MAX 9007199254740992ULL
/* More keys than any schedule has: a longer list is rejected as too many keys. */
#define MAX_KEYS 16
#define DESC_CAP 8192
#define POOL_CAP 6144

/* ------------------------------------------------------------------------------------------
 * Spec tables: every schedule and warmup with its keys. A key's default is literal text
 * (parsed like a user value, so defaults and help cannot drift apart), NULL when the key is
 * required, or "@why" when the builder derives it from other values. */

typedef struct key_spec {
    const char *name;
    const char *def;
} key_spec_t;

typedef enum kind {
    K_CONSTANT,
    K_STEP,
    K_MULTISTEP,
    K_EXPONENTIAL,
    K_POLYNOMIAL,
    K_LINEAR,
    K_COSINE,
    K_RESTARTS,
    K_CYCLIC,
    K_ONECYCLE,
    K_PLATEAU,
    K_COUNT
} kind_t;

typedef enum warmup_kind { W_NONE, W_LINEAR, W_CONSTANT } warmup_kind_t;

struct comp;
typedef dpt_status_t (*build_fn)(dpt_schedule_t *s, struct comp *c);

typedef struct kind_spec {
    const char *name;
    const key_spec_t *keys; /* terminated by {NULL, NULL} */
    build_fn build;
} kind_spec_t;

typedef struct plateau_cfg {
    int mode_max, thr_abs, monitor_acc;
    double factor, threshold, min_lr, eps;
    uint64_t patience, cooldown;
} plateau_cfg_t;

struct dpt_schedule {
    kind_t kind; /* main schedule; K_PLATEAU means constant base_lr times reductions */
    int unit_epoch;
    double base_lr;
    uint64_t steps_per_epoch, epochs;
    struct {
        uint64_t size;
        double gamma;
    } step;
    struct {
        uint64_t at[DPT_SCHEDULE_LIST_MAX];
        size_t n;
        double gamma;
    } multistep;
    double exp_gamma;
    struct {
        uint64_t total_iters;
        double power;
    } poly;
    struct {
        double start, end;
        uint64_t total_iters;
    } linear;
    struct {
        uint64_t t_max;
        double eta_min;
    } cosine;
    struct {
        uint64_t t0, t_mult;
        double eta_min;
    } restarts;
    struct {
        double base_lr, max_lr, gamma, base_m, max_m;
        uint64_t up, down;
        int mode, cycle_m;
    } cyclic;
    struct {
        double max_lr, initial_lr, min_lr, pct, base_m, max_m;
        uint64_t total;
        int linear, three_phase, cycle_m;
    } onecycle;
    int has_plateau;
    plateau_cfg_t plateau;
    struct {
        warmup_kind_t kind;
        uint64_t steps;
        double factor;
    } warmup;
    char desc[DESC_CAP];
};

/* One parsed "name:key=value,..." component. Values point into the caller's copy of the
 * spec; res holds each key's resolved canonical text for dpt_schedule_describe. */
typedef struct comp {
    const kind_spec_t *kind;
    size_t index; /* position of kind in its table */
    char prefix[48];
    const char *given[MAX_KEYS];
    const char *res[MAX_KEYS];
    char pool[POOL_CAP];
    size_t pool_used;
} comp_t;

static dpt_status_t build_constant(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_step(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_multistep(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_exponential(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_polynomial(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_linear(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_cosine(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_restarts(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_cyclic(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_onecycle(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_plateau(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_warmup_linear(dpt_schedule_t *s, comp_t *c);
static dpt_status_t build_warmup_constant(dpt_schedule_t *s, comp_t *c);

/* 1/3 is PyTorch's LinearLR/ConstantLR default; this text is its shortest round-trip form. */
#define ONE_THIRD "0.3333333333333333"

static const key_spec_t constant_keys[] = {{"unit", "epoch"}, {NULL, NULL}};
static const key_spec_t step_keys[] = {
    {"step_size", NULL}, {"gamma", "0.1"}, {"unit", "epoch"}, {NULL, NULL}};
static const key_spec_t multistep_keys[] = {
    {"milestones", NULL}, {"gamma", "0.1"}, {"unit", "epoch"}, {NULL, NULL}};
static const key_spec_t exponential_keys[] = {{"gamma", NULL}, {"unit", "epoch"}, {NULL, NULL}};
static const key_spec_t polynomial_keys[] = {
    {"total_iters", "5"}, {"power", "1"}, {"unit", "epoch"}, {NULL, NULL}};
static const key_spec_t linear_keys[] = {{"start_factor", ONE_THIRD},
                                         {"end_factor", "1"},
                                         {"total_iters", "5"},
                                         {"unit", "epoch"},
                                         {NULL, NULL}};
static const key_spec_t cosine_keys[] = {
    {"T_max", NULL}, {"eta_min", "0"}, {"unit", "epoch"}, {NULL, NULL}};
static const key_spec_t restarts_keys[] = {
    {"T_0", NULL}, {"T_mult", "1"}, {"eta_min", "0"}, {"unit", "epoch"}, {NULL, NULL}};
static const key_spec_t cyclic_keys[] = {{"base_lr", "@--lr"},
                                         {"max_lr", NULL},
                                         {"step_size_up", "2000"},
                                         {"step_size_down", "@step_size_up"},
                                         {"mode", "triangular"},
                                         {"gamma", "1"},
                                         {"cycle_momentum", "1"},
                                         {"base_momentum", "0.8"},
                                         {"max_momentum", "0.9"},
                                         {"unit", "step"},
                                         {NULL, NULL}};
static const key_spec_t onecycle_keys[] = {
    {"max_lr", "@--lr"},       {"total_steps", "@epochs*steps_per_epoch"},
    {"epochs", "@--epochs"},   {"steps_per_epoch", "@--steps-per-epoch"},
    {"pct_start", "0.3"},      {"anneal_strategy", "cos"},
    {"div_factor", "25"},      {"final_div_factor", "10000"},
    {"three_phase", "0"},      {"cycle_momentum", "1"},
    {"base_momentum", "0.85"}, {"max_momentum", "0.95"},
    {"unit", "step"},          {NULL, NULL}};
static const key_spec_t plateau_keys[] = {{"mode", "@min, or max for monitor=val_accuracy"},
                                          {"factor", "0.1"},
                                          {"patience", "10"},
                                          {"threshold", "0.0001"},
                                          {"threshold_mode", "rel"},
                                          {"cooldown", "0"},
                                          {"min_lr", "0"},
                                          {"eps", "1e-08"},
                                          {"monitor", "val_loss"},
                                          {"unit", "epoch"},
                                          {NULL, NULL}};
static const key_spec_t warmup_linear_keys[] = {
    {"steps", NULL}, {"start_factor", ONE_THIRD}, {NULL, NULL}};
static const key_spec_t warmup_constant_keys[] = {
    {"steps", NULL}, {"factor", ONE_THIRD}, {NULL, NULL}};

static const kind_spec_t kinds[K_COUNT] = {
    [K_CONSTANT] = {"constant", constant_keys, build_constant},
    [K_STEP] = {"step", step_keys, build_step},
    [K_MULTISTEP] = {"multistep", multistep_keys, build_multistep},
    [K_EXPONENTIAL] = {"exponential", exponential_keys, build_exponential},
    [K_POLYNOMIAL] = {"polynomial", polynomial_keys, build_polynomial},
    [K_LINEAR] = {"linear", linear_keys, build_linear},
    [K_COSINE] = {"cosine", cosine_keys, build_cosine},
    [K_RESTARTS] = {"cosine-restarts", restarts_keys, build_restarts},
    [K_CYCLIC] = {"cyclic", cyclic_keys, build_cyclic},
    [K_ONECYCLE] = {"onecycle", onecycle_keys, build_onecycle},
    [K_PLATEAU] = {"plateau", plateau_keys, build_plateau},
};
static const char kind_names[] = "constant, step, multistep, exponential, polynomial, linear, "
                                 "cosine, cosine-restarts, cyclic, onecycle, plateau";

static const kind_spec_t warmups[] = {
    {"linear", warmup_linear_keys, build_warmup_linear},
    {"constant", warmup_constant_keys, build_warmup_constant},
};
static const char warmup_names[] = "linear, constant";

const char *dpt_schedule_names(void)
{
    return kind_names;
}

/* ------------------------------------------------------------------------------------------
 * Tokenising a component. */

static size_t key_count(const kind_spec_t *k)
{
    size_t n = 0;
    while (k->keys[n].name)
        n++;
    return n;
}

/* Index of key in k's table, or key_count(k) when absent. */
static size_t key_index(const kind_spec_t *k, const char *key)
{
    size_t i = 0;
    while (k->keys[i].name && strcmp(k->keys[i].name, key))
        i++;
    return i;
}

static void key_list(const kind_spec_t *k, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; k->keys[i].name && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", k->keys[i].name);
}

/* Records value as key's given text; rejects unknown and repeated keys. */
static dpt_status_t comp_set_given(comp_t *c, const char *key, const char *value)
{
    size_t i = key_index(c->kind, key);
    if (i == key_count(c->kind)) {
        char keys[512];
        key_list(c->kind, keys, sizeof keys);
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: unknown key '%s'; valid keys: %s", c->prefix,
                         key, keys);
    }
    if (c->given[i])
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: key '%s' given twice", c->prefix, key);
    if (!value[0])
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: key '%s' has an empty value", c->prefix, key);
    c->given[i] = value;
    return DPT_OK;
}

/* Splits "key=value,key=value" (text is modified) into c->given. */
static dpt_status_t comp_parse_pairs(comp_t *c, char *text)
{
    size_t pairs = 0;
    for (char *item = text; item;) {
        char *next = strchr(item, ',');
        if (next) *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq || eq == item)
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: expected key=value, got '%s'", c->prefix,
                             item);
        *eq = '\0';
        if (++pairs > MAX_KEYS)
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: too many key=value pairs", c->prefix);
        dpt_status_t st = comp_set_given(c, item, eq + 1);
        if (st) return st;
        item = next;
    }
    return DPT_OK;
}

/* Parses "name[:pairs]" against a table of kinds. `what` names the table in messages. */
static dpt_status_t comp_parse(comp_t *c, char *text, const kind_spec_t *table, size_t n,
                               const char *what, const char *names)
{
    memset(c, 0, sizeof *c);
    char *colon = strchr(text, ':');
    if (colon) *colon = '\0';
    for (size_t i = 0; i < n && !c->kind; i++)
        if (!strcmp(table[i].name, text)) {
            c->kind = &table[i];
            c->index = i;
        }
    if (!c->kind)
        return dpt_error(DPT_ERR_INVALID_ARG, "unknown %s '%s'; valid names: %s", what, text,
                         names);
    snprintf(c->prefix, sizeof c->prefix, "%s%s", strcmp(what, "warmup") ? "" : "warmup ",
             c->kind->name);
    if (!colon) return DPT_OK;
    return comp_parse_pairs(c, colon + 1);
}

/* ------------------------------------------------------------------------------------------
 * Values: parsing, range checks and the canonical resolved text. */

typedef enum range { R_ANY, R_POS, R_NONNEG, R_OPEN01, R_HALF01, R_UNIT } range_t;

static int range_ok(range_t r, double v)
{
    switch (r) {
    case R_POS:
        return v > 0;
    case R_NONNEG:
        return v >= 0;
    case R_OPEN01:
        return v > 0 && v < 1;
    case R_HALF01:
        return v > 0 && v <= 1;
    case R_UNIT:
        return v >= 0 && v <= 1;
    default:
        return 1;
    }
}

static const char *range_text(range_t r)
{
    static const char *const text[] = {"finite",    "> 0",       ">= 0",
                                       "in (0, 1)", "in (0, 1]", "in [0, 1]"};
    return text[r];
}

/* Shortest %g text that reads back as exactly v, so descriptions round-trip. */
static void fmt_real(char *buf, size_t cap, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static const char *pool_put(comp_t *c, const char *text)
{
    size_t n = strlen(text) + 1;
    if (c->pool_used + n > POOL_CAP) return "?"; /* cannot happen: the caps bound the text */
    char *dst = c->pool + c->pool_used;
    memcpy(dst, text, n);
    c->pool_used += n;
    return dst;
}

static void set_res(comp_t *c, const char *key, const char *text)
{
    c->res[key_index(c->kind, key)] = pool_put(c, text);
}

static void set_res_real(comp_t *c, const char *key, double v)
{
    char buf[40];
    fmt_real(buf, sizeof buf, v);
    set_res(c, key, buf);
}

static void set_res_count(comp_t *c, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    set_res(c, key, buf);
}

static int is_given(const comp_t *c, const char *key)
{
    return c->given[key_index(c->kind, key)] != NULL;
}

/* The text to parse for key: the user's value, else the literal default. *text is NULL when
 * the default is derived by the builder; a missing required key is an error. */
static dpt_status_t value_text(const comp_t *c, const char *key, const char **text)
{
    size_t i = key_index(c->kind, key);
    const char *def = c->kind->keys[i].def;
    *text = c->given[i];
    if (*text) return DPT_OK;
    if (!def) return dpt_error(DPT_ERR_INVALID_ARG, "%s: missing required key %s", c->prefix, key);
    *text = def[0] == '@' ? NULL : def;
    return DPT_OK;
}

static int parse_real_text(const char *text, double *out)
{
    char *end;
    if (!text[0] || isspace((unsigned char)text[0])) return 0;
    errno = 0;
    double v = strtod(text, &end);
    if (*end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* A real-valued key. Leaves *out alone when the key is absent with a derived default. */
static dpt_status_t get_real(comp_t *c, const char *key, range_t r, double *out)
{
    const char *text;
    dpt_status_t st = value_text(c, key, &text);
    if (st || !text) return st;
    double v;
    if (!parse_real_text(text, &v))
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: %s: malformed number '%s'", c->prefix, key,
                         text);
    if (!range_ok(r, v))
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: %s must be %s, got '%s'", c->prefix, key,
                         range_text(r), text);
    *out = v;
    set_res_real(c, key, v);
    return DPT_OK;
}

static int parse_count_text(const char *text, uint64_t *out)
{
    if (!text[0]) return 0;
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno) return 0;
    *out = v;
    return 1;
}

static dpt_status_t check_count(const comp_t *c, const char *key, const char *text, uint64_t min,
                                uint64_t *out)
{
    if (!parse_count_text(text, out))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "%s: %s: malformed number '%s' (expects a whole number)", c->prefix, key,
                         text);
    if (*out < min || *out > COUNT_MAX)
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: %s must be an integer in [%llu, %llu], got '%s'",
                         c->prefix, key, (unsigned long long)min, COUNT_MAX, text);
    return DPT_OK;
}

/* A whole-number key (steps, epochs, patience). Same absent rule as get_real. */
static dpt_status_t get_count(comp_t *c, const char *key, uint64_t min, uint64_t *out)
{
    const char *text;
    dpt_status_t st = value_text(c, key, &text);
    if (st || !text) return st;
    st = check_count(c, key, text, min, out);
    if (!st) set_res_count(c, key, *out);
    return st;
}

/* A key with a fixed set of values; *out gets the index into choices (NULL-terminated). */
static dpt_status_t get_enum(comp_t *c, const char *key, const char *const *choices, int *out)
{
    const char *text;
    dpt_status_t st = value_text(c, key, &text);
    if (st || !text) return st;
    char list[256];
    size_t len = 0;
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(choices[i], text)) {
            *out = i;
            set_res(c, key, choices[i]);
            return DPT_OK;
        }
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", choices[i]);
    }
    return dpt_error(DPT_ERR_INVALID_ARG, "%s: %s must be one of %s, got '%s'", c->prefix, key,
                     list, text);
}

static dpt_status_t get_bool(comp_t *c, const char *key, int *out)
{
    static const char *const choices[] = {"0", "1", "false", "true", NULL};
    int i = 0;
    dpt_status_t st = get_enum(c, key, choices, &i);
    if (st) return st;
    *out = i % 2;
    set_res(c, key, *out ? "1" : "0");
    return DPT_OK;
}

static dpt_status_t get_unit(dpt_schedule_t *s, comp_t *c)
{
    static const char *const units[] = {"epoch", "step", NULL};
    int u = 0;
    dpt_status_t st = get_enum(c, "unit", units, &u);
    if (!st && c->kind->build != build_plateau) s->unit_epoch = u == 0;
    return st;
}

/* ------------------------------------------------------------------------------------------
 * Builders: one per schedule, reading its keys from c into s. */

static dpt_status_t build_constant(dpt_schedule_t *s, comp_t *c)
{
    return get_unit(s, c);
}

static dpt_status_t build_step(dpt_schedule_t *s, comp_t *c)
{
    dpt_status_t st = get_count(c, "step_size", 1, &s->step.size);
    if (!st) st = get_real(c, "gamma", R_POS, &s->step.gamma);
    return st ? st : get_unit(s, c);
}

/* "30/60/90": strictly increasing, at most DPT_SCHEDULE_LIST_MAX entries. */
static dpt_status_t parse_milestones(dpt_schedule_t *s, comp_t *c, const char *text)
{
    char item[32];
    size_t n = 0;
    for (const char *p = text;; p++) {
        size_t len = strcspn(p, "/");
        if (n == DPT_SCHEDULE_LIST_MAX)
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: milestones has more than %d entries",
                             c->prefix, DPT_SCHEDULE_LIST_MAX);
        if (len >= sizeof item) len = sizeof item - 1; /* still fails: no digit is that long */
        memcpy(item, p, len);
        item[len] = '\0';
        dpt_status_t st = check_count(c, "milestones", item, 0, &s->multistep.at[n]);
        if (st) return st;
        if (n && s->multistep.at[n] <= s->multistep.at[n - 1])
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "%s: milestones must be strictly increasing, got %s", c->prefix, text);
        n++;
        p += strcspn(p, "/");
        if (!*p) break;
    }
    s->multistep.n = n;
    return DPT_OK;
}

static dpt_status_t build_multistep(dpt_schedule_t *s, comp_t *c)
{
    const char *text;
    dpt_status_t st = value_text(c, "milestones", &text);
    if (!st) st = parse_milestones(s, c, text);
    if (st) return st;
    char buf[DPT_SCHEDULE_LIST_MAX * 18];
    size_t len = 0;
    for (size_t i = 0; i < s->multistep.n; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%llu", i ? "/" : "",
                                (unsigned long long)s->multistep.at[i]);
    set_res(c, "milestones", buf);
    st = get_real(c, "gamma", R_POS, &s->multistep.gamma);
    return st ? st : get_unit(s, c);
}

static dpt_status_t build_exponential(dpt_schedule_t *s, comp_t *c)
{
    dpt_status_t st = get_real(c, "gamma", R_POS, &s->exp_gamma);
    return st ? st : get_unit(s, c);
}

static dpt_status_t build_polynomial(dpt_schedule_t *s, comp_t *c)
{
    dpt_status_t st = get_count(c, "total_iters", 1, &s->poly.total_iters);
    if (!st) st = get_real(c, "power", R_NONNEG, &s->poly.power);
    return st ? st : get_unit(s, c);
}

static dpt_status_t build_linear(dpt_schedule_t *s, comp_t *c)
{
    /* PyTorch's LinearLR bounds: start in (0, 1], end in [0, 1]. */
    dpt_status_t st = get_real(c, "start_factor", R_HALF01, &s->linear.start);
    if (!st) st = get_real(c, "end_factor", R_UNIT, &s->linear.end);
    if (!st) st = get_count(c, "total_iters", 1, &s->linear.total_iters);
    return st ? st : get_unit(s, c);
}

static dpt_status_t build_cosine(dpt_schedule_t *s, comp_t *c)
{
    dpt_status_t st = get_count(c, "T_max", 1, &s->cosine.t_max);
    if (!st) st = get_real(c, "eta_min", R_NONNEG, &s->cosine.eta_min);
    return st ? st : get_unit(s, c);
}

static dpt_status_t build_restarts(dpt_schedule_t *s, comp_t *c)
{
    dpt_status_t st = get_count(c, "T_0", 1, &s->restarts.t0);
    if (!st) st = get_count(c, "T_mult", 1, &s->restarts.t_mult);
    if (!st) st = get_real(c, "eta_min", R_NONNEG, &s->restarts.eta_min);
    return st ? st : get_unit(s, c);
}

static dpt_status_t build_cyclic_momentum(dpt_schedule_t *s, comp_t *c)
{
    dpt_status_t st = get_bool(c, "cycle_momentum", &s->cyclic.cycle_m);
    if (!st) st = get_real(c, "base_momentum", R_UNIT, &s->cyclic.base_m);
    if (!st) st = get_real(c, "max_momentum", R_UNIT, &s->cyclic.max_m);
    return st;
}

static dpt_status_t build_cyclic(dpt_schedule_t *s, comp_t *c)
{
    static const char *const modes[] = {"triangular", "triangular2", "exp_range", NULL};
    /* PyTorch's CyclicLR ignores the optimizer's lr; base_lr defaults to --lr here. */
    s->cyclic.base_lr = s->base_lr;
    dpt_status_t st = get_real(c, "base_lr", R_POS, &s->cyclic.base_lr);
    if (!st) st = get_real(c, "max_lr", R_POS, &s->cyclic.max_lr);
    if (st) return st;
    set_res_real(c, "base_lr", s->cyclic.base_lr);
    if (s->cyclic.max_lr < s->cyclic.base_lr)
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: max_lr (%g) must be >= base_lr (%g)", c->prefix,
                         s->cyclic.max_lr, s->cyclic.base_lr);
    st = get_count(c, "step_size_up", 1, &s->cyclic.up);
    if (st) return st;
    s->cyclic.down = s->cyclic.up;
    st = get_count(c, "step_size_down", 1, &s->cyclic.down);
    if (st) return st;
    set_res_count(c, "step_size_down", s->cyclic.down);
    st = get_enum(c, "mode", modes, &s->cyclic.mode);
    if (!st) st = get_real(c, "gamma", R_POS, &s->cyclic.gamma);
    if (!st) st = build_cyclic_momentum(s, c);
    return st ? st : get_unit(s, c);
}

/* total_steps wins when given (as in PyTorch); else epochs * steps_per_epoch, each defaulting
 * to the run's values. With unit=epoch the clock counts epochs, so steps_per_epoch is 1. */
static dpt_status_t onecycle_total(dpt_schedule_t *s, comp_t *c)
{
    uint64_t epochs = s->epochs, spe = s->unit_epoch ? 1 : s->steps_per_epoch;
    dpt_status_t st = get_count(c, "epochs", 1, &epochs);
    if (!st) st = get_count(c, "steps_per_epoch", 1, &spe);
    if (st) return st;
    set_res_count(c, "epochs", epochs);
    set_res_count(c, "steps_per_epoch", spe);
    if (!is_given(c, "total_steps")) {
        if (epochs > COUNT_MAX / spe)
            return dpt_error(DPT_ERR_INVALID_ARG, "%s: epochs * steps_per_epoch is too large",
                             c->prefix);
        s->onecycle.total = epochs * spe;
        set_res_count(c, "total_steps", s->onecycle.total);
        return DPT_OK;
    }
    return get_count(c, "total_steps", 1, &s->onecycle.total);
}

static dpt_status_t build_onecycle(dpt_schedule_t *s, comp_t *c)
{
    static const char *const anneal[] = {"cos", "linear", NULL};
    double div = 0, final_div = 0;
    dpt_status_t st = get_unit(s, c);
    if (!st) st = onecycle_total(s, c);
    if (st) return st;
    s->onecycle.max_lr = s->base_lr;
    st = get_real(c, "max_lr", R_POS, &s->onecycle.max_lr);
    if (st) return st;
    set_res_real(c, "max_lr", s->onecycle.max_lr);
    st = get_real(c, "pct_start", R_OPEN01, &s->onecycle.pct);
    if (!st) st = get_enum(c, "anneal_strategy", anneal, &s->onecycle.linear);
    if (!st) st = get_real(c, "div_factor", R_POS, &div);
    if (!st) st = get_real(c, "final_div_factor", R_POS, &final_div);
    if (!st) st = get_bool(c, "three_phase", &s->onecycle.three_phase);
    if (!st) st = get_bool(c, "cycle_momentum", &s->onecycle.cycle_m);
    if (!st) st = get_real(c, "base_momentum", R_UNIT, &s->onecycle.base_m);
    if (!st) st = get_real(c, "max_momentum", R_UNIT, &s->onecycle.max_m);
    s->onecycle.initial_lr = s->onecycle.max_lr / div;
    s->onecycle.min_lr = s->onecycle.initial_lr / final_div;
    return st;
}

static dpt_status_t build_plateau(dpt_schedule_t *s, comp_t *c)
{
    static const char *const modes[] = {"min", "max", NULL};
    static const char *const thr_modes[] = {"rel", "abs", NULL};
    static const char *const monitors[] = {"val_loss", "val_accuracy", NULL};
    plateau_cfg_t *p = &s->plateau;
    dpt_status_t st = get_enum(c, "monitor", monitors, &p->monitor_acc);
    if (st) return st;
    /* A loss improves downwards, an accuracy upwards: the monitor picks the default mode. */
    p->mode_max = p->monitor_acc;
    st = get_enum(c, "mode", modes, &p->mode_max);
    if (st) return st;
    set_res(c, "mode", modes[p->mode_max]);
    st = get_real(c, "factor", R_OPEN01, &p->factor);
    if (!st) st = get_count(c, "patience", 0, &p->patience);
    if (!st) st = get_real(c, "threshold", R_NONNEG, &p->threshold);
    if (!st) st = get_enum(c, "threshold_mode", thr_modes, &p->thr_abs);
    if (!st) st = get_count(c, "cooldown", 0, &p->cooldown);
    if (!st) st = get_real(c, "min_lr", R_NONNEG, &p->min_lr);
    if (!st) st = get_real(c, "eps", R_NONNEG, &p->eps);
    if (!st) st = get_unit(s, c);
    if (!st && !p->thr_abs && p->threshold >= 1)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "%s: threshold must be < 1 with threshold_mode=rel, got %g", c->prefix,
                         p->threshold);
    s->has_plateau = 1;
    return st;
}

static dpt_status_t build_warmup_linear(dpt_schedule_t *s, comp_t *c)
{
    s->warmup.kind = W_LINEAR;
    dpt_status_t st = get_count(c, "steps", 0, &s->warmup.steps);
    return st ? st : get_real(c, "start_factor", R_HALF01, &s->warmup.factor);
}

static dpt_status_t build_warmup_constant(dpt_schedule_t *s, comp_t *c)
{
    s->warmup.kind = W_CONSTANT;
    dpt_status_t st = get_count(c, "steps", 0, &s->warmup.steps);
    return st ? st : get_real(c, "factor", R_UNIT, &s->warmup.factor);
}

/* ------------------------------------------------------------------------------------------
 * Whole specs and the description. */

static dpt_status_t check_length(const char *what, const char *spec)
{
    size_t n = strlen(spec);
    if (n > DPT_SCHEDULE_SPEC_MAX)
        return dpt_error(DPT_ERR_INVALID_ARG, "%s spec is %zu characters long; the limit is %d",
                         what, n, DPT_SCHEDULE_SPEC_MAX);
    return DPT_OK;
}

/* Splits "MAIN+plateau:..." at a '+' that starts a name (a letter follows it), so that a
 * number such as 1e+4 inside a value stays whole. Returns the number of parts (1..3). */
static size_t split_plus(char *buf, char *parts[3])
{
    size_t n = 0;
    parts[n++] = buf;
    for (char *p = buf; *p; p++)
        if (*p == '+' && isalpha((unsigned char)p[1])) {
            *p = '\0';
            if (n == 3) break;
            parts[n++] = p + 1;
        }
    return n;
}

/* Fills main (kind constant when absent) and plateau from the schedule spec. */
static dpt_status_t parse_schedule(dpt_schedule_t *s, const char *spec, comp_t *main_c,
                                   comp_t *plat_c, int *has_main)
{
    char buf[DPT_SCHEDULE_SPEC_MAX + 1], *parts[3];
    strcpy(buf, spec && spec[0] ? spec : "constant");
    size_t n = split_plus(buf, parts);
    if (n > 2)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "schedule spec combines more than two parts with '+'; use MAIN+plateau");
    *has_main = 0;
    for (size_t i = 0; i < n; i++) {
        comp_t tmp;
        dpt_status_t st = comp_parse(&tmp, parts[i], kinds, K_COUNT, "schedule", kind_names);
        if (st) return st;
        int is_plateau = tmp.index == K_PLATEAU;
        if ((is_plateau && s->has_plateau) || (!is_plateau && *has_main))
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "'+' combines one main schedule with one plateau, got '%s'", spec);
        comp_t *dst = is_plateau ? plat_c : main_c;
        *dst = tmp;
        /* Values point into buf: build now, before buf goes out of scope. */
        st = dst->kind->build(s, dst);
        if (st) return st;
        if (is_plateau) {
            if (!*has_main) s->kind = K_PLATEAU;
        } else {
            *has_main = 1;
            s->kind = (kind_t)dst->index;
        }
    }
    return DPT_OK;
}

static dpt_status_t parse_warmup(dpt_schedule_t *s, const char *spec, comp_t *c)
{
    char buf[DPT_SCHEDULE_SPEC_MAX + 1];
    s->warmup.kind = W_NONE;
    if (!spec || !spec[0]) return DPT_OK;
    strcpy(buf, spec);
    dpt_status_t st =
        comp_parse(c, buf, warmups, sizeof warmups / sizeof warmups[0], "warmup", warmup_names);
    return st ? st : c->kind->build(s, c);
}

typedef struct text_buf {
    char *buf;
    size_t cap, len;
} text_buf_t;

static void tb_printf(text_buf_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->len < t->cap ? t->buf + t->len : NULL,
                      t->len < t->cap ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

static void describe_comp(text_buf_t *t, const comp_t *c)
{
    tb_printf(t, "%s", c->kind->name);
    for (size_t i = 0; c->kind->keys[i].name; i++)
        tb_printf(t, "%c%s=%s", i ? ',' : ':', c->kind->keys[i].name, c->res[i] ? c->res[i] : "?");
}

static dpt_status_t describe(dpt_schedule_t *s, const comp_t *main_c, int has_main,
                             const comp_t *plat_c, const comp_t *warm_c)
{
    text_buf_t t = {s->desc, sizeof s->desc, 0};
    char num[40];
    tb_printf(&t, "schedule=");
    if (has_main) describe_comp(&t, main_c);
    if (s->has_plateau) {
        tb_printf(&t, "%s", has_main ? "+" : "");
        describe_comp(&t, plat_c);
    }
    tb_printf(&t, " warmup=");
    if (s->warmup.kind == W_NONE)
        tb_printf(&t, "none");
    else
        describe_comp(&t, warm_c);
    fmt_real(num, sizeof num, s->base_lr);
    tb_printf(&t, " lr=%s steps_per_epoch=%llu epochs=%llu", num,
              (unsigned long long)s->steps_per_epoch, (unsigned long long)s->epochs);
    if (t.len >= t.cap)
        return dpt_error(DPT_ERR_INTERNAL, "schedule description longer than %zu bytes", t.cap);
    return DPT_OK;
}

static dpt_status_t check_run(double base_lr, size_t steps_per_epoch, size_t epochs)
{
    if (!isfinite(base_lr) || base_lr <= 0)
        return dpt_error(DPT_ERR_INVALID_ARG, "lr must be a finite number > 0, got %g", base_lr);
    if (steps_per_epoch < 1 || epochs < 1)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "steps_per_epoch and epochs must be >= 1, got %zu and %zu",
                         steps_per_epoch, epochs);
    if ((uint64_t)steps_per_epoch > COUNT_MAX || (uint64_t)epochs > COUNT_MAX)
        return dpt_error(DPT_ERR_INVALID_ARG, "steps_per_epoch or epochs is too large");
    return DPT_OK;
}

dpt_status_t dpt_schedule_create(const char *schedule_spec, const char *warmup_spec, double base_lr,
                                 size_t steps_per_epoch, size_t epochs, dpt_schedule_t **out)
{
    *out = NULL;
    dpt_status_t st = check_run(base_lr, steps_per_epoch, epochs);
    if (!st && schedule_spec) st = check_length("schedule", schedule_spec);
    if (!st && warmup_spec) st = check_length("warmup", warmup_spec);
    if (st) return st;
    dpt_schedule_t *s = calloc(1, sizeof *s);
    /* The three components hold a few KB each of resolved text: keep them off the stack. */
    comp_t *comps = calloc(3, sizeof *comps);
    if (!s || !comps) {
        free(s);
        free(comps);
        return dpt_error(DPT_ERR_NOMEM, "out of memory creating a schedule");
    }
    s->base_lr = base_lr;
    s->steps_per_epoch = steps_per_epoch;
    s->epochs = epochs;
    int has_main = 0;
    st = parse_schedule(s, schedule_spec, &comps[0], &comps[1], &has_main);
    if (!st) st = parse_warmup(s, warmup_spec, &comps[2]);
    if (!st) st = describe(s, &comps[0], has_main, &comps[1], &comps[2]);
    free(comps);
    if (st) {
        free(s);
        return st;
    }
    *out = s;
    return DPT_OK;
}

void dpt_schedule_free(dpt_schedule_t *s)
{
    free(s);
}

const char *dpt_schedule_describe(const dpt_schedule_t *s)
{
    return s->desc;
}

static void help_table(text_buf_t *t, const kind_spec_t *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tb_printf(t, "  %-16s", table[i].name);
        size_t col = 18;
        for (size_t k = 0; table[i].keys[k].name; k++) {
            const key_spec_t *key = &table[i].keys[k];
            char item[128];
            if (!key->def)
                snprintf(item, sizeof item, "%s (required)", key->name);
            else if (key->def[0] == '@')
                snprintf(item, sizeof item, "%s=(%s)", key->name, key->def + 1);
            else
                snprintf(item, sizeof item, "%s=%s", key->name, key->def);
            /* Wrap at 96 columns so that help reads in a terminal. */
            if (k && col + strlen(item) + 2 > 96) {
                tb_printf(t, ",\n%18s", "");
                col = 18;
            } else if (k) {
                tb_printf(t, ", ");
                col += 2;
            }
            tb_printf(t, "%s", item);
            col += strlen(item);
        }
        tb_printf(t, "\n");
    }
}

size_t dpt_schedule_help(char *buf, size_t cap)
{
    text_buf_t t = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    tb_printf(&t, "schedules (--lr-schedule NAME:key=value,...; MAIN+plateau:... combines):\n");
    help_table(&t, kinds, K_COUNT);
    tb_printf(&t, "warmups (--warmup NAME:key=value,...; steps counted in optimizer steps):\n");
    help_table(&t, warmups, sizeof warmups / sizeof warmups[0]);
    return t.len;
}

/* ------------------------------------------------------------------------------------------
 * Evaluation: closed forms of PyTorch's schedulers at clock t (epochs or steps). */

static const double PI = 3.14159265358979323846;

/* PyTorch's cosine annealing between start (pct 0) and end (pct 1). */
static double anneal_cos(double start, double end, double pct)
{
    double cos_out = cos(PI * pct) + 1.0;
    return end + (start - end) / 2.0 * cos_out;
}

static double anneal_linear(double start, double end, double pct)
{
    return (end - start) * pct + start;
}

static double cosine_lr(double base, double eta_min, double t_cur, double t_i)
{
    return eta_min + (base - eta_min) * (1.0 + cos(PI * t_cur / t_i)) / 2.0;
}

/* Position inside the current warm-restart cycle: cycles last T_0, T_0*T_mult, ... */
static double restarts_lr(const dpt_schedule_t *s, uint64_t t)
{
    uint64_t t0 = s->restarts.t0, mult = s->restarts.t_mult, start = 0, len = t0;
    if (mult == 1) {
        start = t - t % t0;
    } else {
        /* Integer walk (at most ~53 cycles) instead of PyTorch's log(), which can land a
         * boundary step in the wrong cycle through rounding. */
        while (t - start >= len) {
            start += len;
            if (len > UINT64_MAX / mult) {
                len = UINT64_MAX;
                break;
            }
            len *= mult;
        }
    }
    return cosine_lr(s->base_lr, s->restarts.eta_min, (double)(t - start), (double)len);
}

/* CyclicLR's triangle position in [0, 1] and amplitude scale at step t. */
static void cyclic_pos(const dpt_schedule_t *s, uint64_t t, double *height, double *scale)
{
    uint64_t up = s->cyclic.up, total = up + s->cyclic.down;
    uint64_t cycle = 1 + t / total, pos = t % total;
    *height = pos <= up ? (double)pos / (double)up : (double)(total - pos) / (double)s->cyclic.down;
    if (s->cyclic.mode == 0)
        *scale = 1.0;
    else if (s->cyclic.mode == 1)
        *scale = 1.0 / pow(2.0, (double)(cycle - 1));
    else
        *scale = pow(s->cyclic.gamma, (double)t); /* exp_range scales per iteration */
}

typedef struct phase {
    double end_step, start_lr, end_lr, start_m, end_m;
} phase_t;

static size_t onecycle_phases(const dpt_schedule_t *s, phase_t ph[3])
{
    double total = (double)s->onecycle.total, pct = s->onecycle.pct;
    double init = s->onecycle.initial_lr, peak = s->onecycle.max_lr, lo = s->onecycle.min_lr;
    double bm = s->onecycle.base_m, mm = s->onecycle.max_m;
    if (!s->onecycle.three_phase) {
        ph[0] = (phase_t){pct * total - 1, init, peak, mm, bm};
        ph[1] = (phase_t){total - 1, peak, lo, bm, mm};
        return 2;
    }
    ph[0] = (phase_t){pct * total - 1, init, peak, mm, bm};
    ph[1] = (phase_t){2 * pct * total - 2, peak, init, bm, mm};
    ph[2] = (phase_t){total - 1, init, lo, mm, mm};
    return 3;
}

/* OneCycleLR at step t, held at its last step (t = total_steps - 1) afterwards. */
static void onecycle_at(const dpt_schedule_t *s, uint64_t t, double *lr, double *m)
{
    phase_t ph[3];
    size_t n = onecycle_phases(s, ph);
    double step = (double)(t < s->onecycle.total ? t : s->onecycle.total - 1), start = 0;
    for (size_t i = 0; i < n; i++) {
        if (step <= ph[i].end_step || i == n - 1) {
            double span = ph[i].end_step - start;
            /* PyTorch divides by zero here on degenerate phases; jump to the phase end. */
            double pct = span > 0 ? (step - start) / span : 1.0;
            double (*f)(double, double, double) = s->onecycle.linear ? anneal_linear : anneal_cos;
            *lr = f(ph[i].start_lr, ph[i].end_lr, pct);
            *m = f(ph[i].start_m, ph[i].end_m, pct);
            return;
        }
        start = ph[i].end_step;
    }
}

static double main_lr(const dpt_schedule_t *s, uint64_t t)
{
    double b = s->base_lr, lr = b, m, h, sc;
    uint64_t k = 0;
    switch (s->kind) {
    case K_STEP:
        return b * pow(s->step.gamma, (double)(t / s->step.size));
    case K_MULTISTEP:
        while (k < s->multistep.n && s->multistep.at[k] <= t)
            k++;
        return b * pow(s->multistep.gamma, (double)k);
    case K_EXPONENTIAL:
        return b * pow(s->exp_gamma, (double)t);
    case K_POLYNOMIAL:
        k = t < s->poly.total_iters ? t : s->poly.total_iters;
        return b * pow(1.0 - (double)k / (double)s->poly.total_iters, s->poly.power);
    case K_LINEAR:
        k = t < s->linear.total_iters ? t : s->linear.total_iters;
        return b * (s->linear.start +
                    (s->linear.end - s->linear.start) * (double)k / (double)s->linear.total_iters);
    case K_COSINE:
        k = t < s->cosine.t_max ? t : s->cosine.t_max;
        return cosine_lr(b, s->cosine.eta_min, (double)k, (double)s->cosine.t_max);
    case K_RESTARTS:
        return restarts_lr(s, t);
    case K_CYCLIC:
        cyclic_pos(s, t, &h, &sc);
        return s->cyclic.base_lr + (s->cyclic.max_lr - s->cyclic.base_lr) * h * sc;
    case K_ONECYCLE:
        onecycle_at(s, t, &lr, &m);
        return lr;
    default:
        return lr;
    }
}

static int main_momentum(const dpt_schedule_t *s, uint64_t t, double *momentum)
{
    double lr, h, sc;
    if (s->kind == K_CYCLIC && s->cyclic.cycle_m) {
        cyclic_pos(s, t, &h, &sc);
        *momentum = s->cyclic.max_m - (s->cyclic.max_m - s->cyclic.base_m) * h * sc;
        return 1;
    }
    if (s->kind == K_ONECYCLE && s->onecycle.cycle_m) {
        onecycle_at(s, t, &lr, momentum);
        return 1;
    }
    return 0;
}

/* The main schedule's clock at a global step after warmup (SequentialLR: it starts at 0). */
static uint64_t main_clock(const dpt_schedule_t *s, uint64_t step)
{
    uint64_t t = step - s->warmup.steps;
    return s->unit_epoch ? t / s->steps_per_epoch : t;
}

static double warmup_factor(const dpt_schedule_t *s, uint64_t step)
{
    if (s->warmup.kind == W_CONSTANT) return s->warmup.factor;
    double f0 = s->warmup.factor;
    return f0 + (1.0 - f0) * (double)step / (double)s->warmup.steps;
}

/* Plateau reductions scale the running curve f but never push it below min_lr, nor lift it
 * above f: lr = min(f, max(scale * f, min_lr)). */
static double apply_plateau(const dpt_schedule_t *s, double f, const dpt_plateau_state_t *ps)
{
    if (!s->has_plateau || !ps || ps->scale == 1.0) return f;
    double lr = fmax(ps->scale * f, s->plateau.min_lr);
    return lr < f ? lr : f;
}

double dpt_schedule_lr(const dpt_schedule_t *s, uint64_t step, const dpt_plateau_state_t *ps)
{
    double f;
    if (step < s->warmup.steps)
        f = s->base_lr * warmup_factor(s, step);
    else
        f = main_lr(s, main_clock(s, step));
    return apply_plateau(s, f, ps);
}

int dpt_schedule_momentum(const dpt_schedule_t *s, uint64_t step, double *momentum)
{
    /* During warmup the momentum waits at the main schedule's starting value. */
    uint64_t t = step < s->warmup.steps ? 0 : main_clock(s, step);
    return main_momentum(s, t, momentum);
}

void dpt_schedule_plateau_init(const dpt_schedule_t *s, dpt_plateau_state_t *ps)
{
    memset(ps, 0, sizeof *ps);
    ps->best = s->has_plateau && s->plateau.mode_max ? -INFINITY : INFINITY;
    ps->scale = 1.0;
}

int dpt_schedule_uses_plateau(const dpt_schedule_t *s, const char **monitor)
{
    if (monitor) *monitor = s->has_plateau && s->plateau.monitor_acc ? "val_accuracy" : "val_loss";
    return s->has_plateau;
}

/* ReduceLROnPlateau.is_better; NaN never improves. */
static int plateau_better(const plateau_cfg_t *p, double a, double best)
{
    if (!p->mode_max) return p->thr_abs ? a < best - p->threshold : a < best * (1.0 - p->threshold);
    return p->thr_abs ? a > best + p->threshold : a > best * (p->threshold + 1.0);
}

/* The LR a reduction is judged on. It has no step, so it uses the base lr: for plateau
 * alone this is exactly PyTorch's old_lr; combined, it stops reducing once scale * --lr has
 * reached min_lr (within eps). */
static double plateau_ref_lr(const dpt_schedule_t *s, double scale)
{
    double lr = fmax(scale * s->base_lr, s->plateau.min_lr);
    return lr < s->base_lr ? lr : s->base_lr;
}

static int plateau_reduce(const dpt_schedule_t *s, dpt_plateau_state_t *ps)
{
    double old_lr = plateau_ref_lr(s, ps->scale);
    double new_lr = plateau_ref_lr(s, ps->scale * s->plateau.factor);
    if (old_lr - new_lr <= s->plateau.eps) return 0;
    ps->scale *= s->plateau.factor;
    ps->reductions++;
    return 1;
}

int dpt_schedule_plateau_update(const dpt_schedule_t *s, dpt_plateau_state_t *ps, double metric)
{
    if (!s->has_plateau || !ps) return 0;
    const plateau_cfg_t *p = &s->plateau;
    int reduced = 0;
    if (plateau_better(p, metric, ps->best)) {
        ps->best = metric;
        ps->has_best = 1;
        ps->num_bad_epochs = 0;
    } else {
        ps->num_bad_epochs++;
    }
    if (ps->cooldown_counter > 0) {
        ps->cooldown_counter--;
        ps->num_bad_epochs = 0;
    }
    if ((uint64_t)ps->num_bad_epochs > p->patience) {
        reduced = plateau_reduce(s, ps);
        ps->cooldown_counter = (int64_t)p->cooldown;
        ps->num_bad_epochs = 0;
    }
    return reduced;
}
