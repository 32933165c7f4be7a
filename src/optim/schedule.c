/* Owns learning-rate schedules: parsing "NAME:key=value,..." specs once (through the one spec
 * grammar, core/spec.h) into an immutable dpt_schedule, and the LR/momentum at a step as
 * closed-form functions of the config, the step and the plateau state (formulas and their
 * PyTorch origin in docs/schedules.md). */
#include "dptrain/schedule.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"
#include "core/spec.h"

/* Counts are kept below 2^53 so that converting them to double is exact. */
#define COUNT_MAX 9007199254740992ULL
#define DESC_CAP 8192

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

/* ------------------------------------------------------------------------------------------
 * Spec tables: every schedule and warmup with its typed keys. A default is literal text
 * (parsed like a user value, so defaults and help cannot drift apart), NULL when the key is
 * required, or "@why" when the builder derives it from other values. */

/* 1/3 is PyTorch's LinearLR/ConstantLR default; this text is its shortest round-trip form. */
#define ONE_THIRD "0.3333333333333333"
#define COUNT(name, def, min) DPT_SPEC_I(name, def, min, DPT_SPEC_INT_MAX, 0)
#define POSITIVE(name, def) DPT_SPEC_R(name, def, 0, INFINITY, DPT_SPEC_LO_OPEN)
#define NONNEG(name, def) DPT_SPEC_R(name, def, 0, INFINITY, 0)
#define UNIT_RANGE(name, def) DPT_SPEC_R(name, def, 0, 1, 0)
#define UNIT(def) DPT_SPEC_E("unit", def, "epoch|step")

static const dpt_spec_key_t constant_keys[] = {UNIT("epoch"), DPT_SPEC_END};
static const dpt_spec_key_t step_keys[] = {COUNT("step_size", NULL, 1), POSITIVE("gamma", "0.1"),
                                           UNIT("epoch"), DPT_SPEC_END};
static const dpt_spec_key_t multistep_keys[] = {
    DPT_SPEC_I("milestones", NULL, 0, DPT_SPEC_INT_MAX, DPT_SPEC_LIST), POSITIVE("gamma", "0.1"),
    UNIT("epoch"), DPT_SPEC_END};
static const dpt_spec_key_t exponential_keys[] = {POSITIVE("gamma", NULL), UNIT("epoch"),
                                                  DPT_SPEC_END};
static const dpt_spec_key_t polynomial_keys[] = {COUNT("total_iters", "5", 1), NONNEG("power", "1"),
                                                 UNIT("epoch"), DPT_SPEC_END};
/* PyTorch's LinearLR bounds: start in (0, 1], end in [0, 1]. */
static const dpt_spec_key_t linear_keys[] = {
    DPT_SPEC_R("start_factor", ONE_THIRD, 0, 1, DPT_SPEC_LO_OPEN), UNIT_RANGE("end_factor", "1"),
    COUNT("total_iters", "5", 1), UNIT("epoch"), DPT_SPEC_END};
static const dpt_spec_key_t cosine_keys[] = {COUNT("T_max", NULL, 1), NONNEG("eta_min", "0"),
                                             UNIT("epoch"), DPT_SPEC_END};
static const dpt_spec_key_t restarts_keys[] = {COUNT("T_0", NULL, 1), COUNT("T_mult", "1", 1),
                                               NONNEG("eta_min", "0"), UNIT("epoch"), DPT_SPEC_END};
static const dpt_spec_key_t cyclic_keys[] = {
    POSITIVE("base_lr", "@--lr"),
    POSITIVE("max_lr", NULL),
    COUNT("step_size_up", "2000", 1),
    COUNT("step_size_down", "@step_size_up", 1),
    DPT_SPEC_E("mode", "triangular", "triangular|triangular2|exp_range"),
    POSITIVE("gamma", "1"),
    DPT_SPEC_B("cycle_momentum", "1"),
    UNIT_RANGE("base_momentum", "0.8"),
    UNIT_RANGE("max_momentum", "0.9"),
    UNIT("step"),
    DPT_SPEC_END};
static const dpt_spec_key_t onecycle_keys[] = {
    POSITIVE("max_lr", "@--lr"),
    COUNT("total_steps", "@epochs*steps_per_epoch", 1),
    COUNT("epochs", "@--epochs", 1),
    COUNT("steps_per_epoch", "@--steps-per-epoch", 1),
    DPT_SPEC_R("pct_start", "0.3", 0, 1, DPT_SPEC_LO_OPEN | DPT_SPEC_HI_OPEN),
    DPT_SPEC_E("anneal_strategy", "cos", "cos|linear"),
    POSITIVE("div_factor", "25"),
    POSITIVE("final_div_factor", "10000"),
    DPT_SPEC_B("three_phase", "0"),
    DPT_SPEC_B("cycle_momentum", "1"),
    UNIT_RANGE("base_momentum", "0.85"),
    UNIT_RANGE("max_momentum", "0.95"),
    UNIT("step"),
    DPT_SPEC_END};
static const dpt_spec_key_t plateau_keys[] = {
    DPT_SPEC_E("mode", "@min, or max for monitor=val_accuracy", "min|max"),
    DPT_SPEC_R("factor", "0.1", 0, 1, DPT_SPEC_LO_OPEN | DPT_SPEC_HI_OPEN),
    COUNT("patience", "10", 0),
    NONNEG("threshold", "0.0001"),
    DPT_SPEC_E("threshold_mode", "rel", "rel|abs"),
    COUNT("cooldown", "0", 0),
    NONNEG("min_lr", "0"),
    NONNEG("eps", "1e-08"),
    DPT_SPEC_E("monitor", "val_loss", "val_loss|val_accuracy"),
    UNIT("epoch"),
    DPT_SPEC_END};
static const dpt_spec_key_t warmup_linear_keys[] = {
    COUNT("steps", NULL, 0), DPT_SPEC_R("start_factor", ONE_THIRD, 0, 1, DPT_SPEC_LO_OPEN),
    DPT_SPEC_END};
static const dpt_spec_key_t warmup_constant_keys[] = {
    COUNT("steps", NULL, 0), UNIT_RANGE("factor", ONE_THIRD), DPT_SPEC_END};

static const dpt_spec_kind_t constant_kind = {"constant", constant_keys},
                             step_kind = {"step", step_keys},
                             multistep_kind = {"multistep", multistep_keys},
                             exponential_kind = {"exponential", exponential_keys},
                             polynomial_kind = {"polynomial", polynomial_keys},
                             linear_kind = {"linear", linear_keys},
                             cosine_kind = {"cosine", cosine_keys},
                             restarts_kind = {"cosine-restarts", restarts_keys},
                             cyclic_kind = {"cyclic", cyclic_keys},
                             onecycle_kind = {"onecycle", onecycle_keys},
                             plateau_kind = {"plateau", plateau_keys},
                             warmup_none_kind = {"none", NULL},
                             warmup_linear_kind = {"linear", warmup_linear_keys},
                             warmup_constant_kind = {"constant", warmup_constant_keys};

/* In kind_t order. */
static const dpt_spec_kind_t *const kinds[K_COUNT] = {
    &constant_kind,   &step_kind,     &multistep_kind, &exponential_kind,
    &polynomial_kind, &linear_kind,   &cosine_kind,    &restarts_kind,
    &cyclic_kind,     &onecycle_kind, &plateau_kind};
static const dpt_spec_grammar_t schedule_grammar = {"schedule", kinds, K_COUNT, NULL, 2, 0};

static const dpt_spec_kind_t *const warmups[] = {&warmup_linear_kind, &warmup_constant_kind,
                                                 &warmup_none_kind};
static const dpt_spec_grammar_t warmup_grammar = {"warmup", warmups, 3, NULL, 1, 0};

const char *dpt_schedule_names(void)
{
    return "constant, step, multistep, exponential, polynomial, linear, cosine, cosine-restarts, "
           "cyclic, onecycle, plateau";
}

/* ------------------------------------------------------------------------------------------
 * Builders: one per schedule, reading its parsed keys into s. Values were checked against
 * their ranges by the parser; builders check what spans keys and set the derived keys. */

typedef dpt_spec_part_t part_t;

static void get_unit(dpt_schedule_t *s, const part_t *c)
{
    s->unit_epoch = dpt_spec_int(c, "unit") == 0;
}

static dpt_status_t build_constant(dpt_schedule_t *s, part_t *c)
{
    get_unit(s, c);
    return DPT_OK;
}

static dpt_status_t build_step(dpt_schedule_t *s, part_t *c)
{
    s->step.size = dpt_spec_u64(c, "step_size");
    s->step.gamma = dpt_spec_real(c, "gamma");
    get_unit(s, c);
    return DPT_OK;
}

/* Milestones: strictly increasing, at most DPT_SCHEDULE_LIST_MAX of them. */
static dpt_status_t build_multistep(dpt_schedule_t *s, part_t *c)
{
    size_t n;
    const double *at = dpt_spec_list(c, "milestones", &n);
    if (n > DPT_SCHEDULE_LIST_MAX)
        return dpt_spec_error(c, "milestones has more than %d entries", DPT_SCHEDULE_LIST_MAX);
    for (size_t i = 0; i < n; i++) {
        if (i && at[i] <= at[i - 1])
            return dpt_spec_error(c, "milestones must be strictly increasing");
        s->multistep.at[i] = (uint64_t)at[i];
    }
    s->multistep.n = n;
    s->multistep.gamma = dpt_spec_real(c, "gamma");
    get_unit(s, c);
    return DPT_OK;
}

static dpt_status_t build_exponential(dpt_schedule_t *s, part_t *c)
{
    s->exp_gamma = dpt_spec_real(c, "gamma");
    get_unit(s, c);
    return DPT_OK;
}

static dpt_status_t build_polynomial(dpt_schedule_t *s, part_t *c)
{
    s->poly.total_iters = dpt_spec_u64(c, "total_iters");
    s->poly.power = dpt_spec_real(c, "power");
    get_unit(s, c);
    return DPT_OK;
}

static dpt_status_t build_linear(dpt_schedule_t *s, part_t *c)
{
    s->linear.start = dpt_spec_real(c, "start_factor");
    s->linear.end = dpt_spec_real(c, "end_factor");
    s->linear.total_iters = dpt_spec_u64(c, "total_iters");
    get_unit(s, c);
    return DPT_OK;
}

static dpt_status_t build_cosine(dpt_schedule_t *s, part_t *c)
{
    s->cosine.t_max = dpt_spec_u64(c, "T_max");
    s->cosine.eta_min = dpt_spec_real(c, "eta_min");
    get_unit(s, c);
    return DPT_OK;
}

static dpt_status_t build_restarts(dpt_schedule_t *s, part_t *c)
{
    s->restarts.t0 = dpt_spec_u64(c, "T_0");
    s->restarts.t_mult = dpt_spec_u64(c, "T_mult");
    s->restarts.eta_min = dpt_spec_real(c, "eta_min");
    get_unit(s, c);
    return DPT_OK;
}

/* A derived key: the user's value, else `fallback`, recorded for the description. */
static double real_or(part_t *c, const char *key, double fallback)
{
    if (!dpt_spec_is_set(c, key)) dpt_spec_set(c, key, fallback);
    return dpt_spec_real(c, key);
}

static uint64_t count_or(part_t *c, const char *key, uint64_t fallback)
{
    if (!dpt_spec_is_set(c, key)) dpt_spec_set(c, key, (double)fallback);
    return dpt_spec_u64(c, key);
}

static dpt_status_t build_cyclic(dpt_schedule_t *s, part_t *c)
{
    /* PyTorch's CyclicLR ignores the optimizer's lr; base_lr defaults to --lr here. */
    s->cyclic.base_lr = real_or(c, "base_lr", s->base_lr);
    s->cyclic.max_lr = dpt_spec_real(c, "max_lr");
    if (s->cyclic.max_lr < s->cyclic.base_lr)
        return dpt_spec_error(c, "max_lr (%g) must be >= base_lr (%g)", s->cyclic.max_lr,
                              s->cyclic.base_lr);
    s->cyclic.up = dpt_spec_u64(c, "step_size_up");
    s->cyclic.down = count_or(c, "step_size_down", s->cyclic.up);
    s->cyclic.mode = dpt_spec_int(c, "mode");
    s->cyclic.gamma = dpt_spec_real(c, "gamma");
    s->cyclic.cycle_m = dpt_spec_int(c, "cycle_momentum");
    s->cyclic.base_m = dpt_spec_real(c, "base_momentum");
    s->cyclic.max_m = dpt_spec_real(c, "max_momentum");
    get_unit(s, c);
    return DPT_OK;
}

/* total_steps wins when given (as in PyTorch); else epochs * steps_per_epoch, each defaulting
 * to the run's values. With unit=epoch the clock counts epochs, so steps_per_epoch is 1. */
static dpt_status_t onecycle_total(dpt_schedule_t *s, part_t *c)
{
    uint64_t epochs = count_or(c, "epochs", s->epochs);
    uint64_t spe = count_or(c, "steps_per_epoch", s->unit_epoch ? 1 : s->steps_per_epoch);
    if (dpt_spec_is_set(c, "total_steps")) {
        s->onecycle.total = dpt_spec_u64(c, "total_steps");
        return DPT_OK;
    }
    if (epochs > COUNT_MAX / spe) return dpt_spec_error(c, "epochs * steps_per_epoch is too large");
    s->onecycle.total = count_or(c, "total_steps", epochs * spe);
    return DPT_OK;
}

static dpt_status_t build_onecycle(dpt_schedule_t *s, part_t *c)
{
    get_unit(s, c);
    dpt_status_t st = onecycle_total(s, c);
    if (st) return st;
    s->onecycle.max_lr = real_or(c, "max_lr", s->base_lr);
    s->onecycle.pct = dpt_spec_real(c, "pct_start");
    s->onecycle.linear = dpt_spec_int(c, "anneal_strategy");
    s->onecycle.three_phase = dpt_spec_int(c, "three_phase");
    s->onecycle.cycle_m = dpt_spec_int(c, "cycle_momentum");
    s->onecycle.base_m = dpt_spec_real(c, "base_momentum");
    s->onecycle.max_m = dpt_spec_real(c, "max_momentum");
    s->onecycle.initial_lr = s->onecycle.max_lr / dpt_spec_real(c, "div_factor");
    s->onecycle.min_lr = s->onecycle.initial_lr / dpt_spec_real(c, "final_div_factor");
    return DPT_OK;
}

static dpt_status_t build_plateau(dpt_schedule_t *s, part_t *c)
{
    plateau_cfg_t *p = &s->plateau;
    p->monitor_acc = dpt_spec_int(c, "monitor");
    /* A loss improves downwards, an accuracy upwards: the monitor picks the default mode. */
    p->mode_max = (int)real_or(c, "mode", p->monitor_acc);
    p->factor = dpt_spec_real(c, "factor");
    p->patience = dpt_spec_u64(c, "patience");
    p->threshold = dpt_spec_real(c, "threshold");
    p->thr_abs = dpt_spec_int(c, "threshold_mode");
    p->cooldown = dpt_spec_u64(c, "cooldown");
    p->min_lr = dpt_spec_real(c, "min_lr");
    p->eps = dpt_spec_real(c, "eps");
    if (!p->thr_abs && p->threshold >= 1)
        return dpt_spec_error(c, "threshold must be < 1 with threshold_mode=rel, got %g",
                              p->threshold);
    s->has_plateau = 1;
    return DPT_OK;
}

static dpt_status_t build_warmup(dpt_schedule_t *s, part_t *c)
{
    if (c->kind == &warmup_none_kind) return DPT_OK; /* as no --warmup */
    int linear = c->kind == &warmup_linear_kind;
    s->warmup.kind = linear ? W_LINEAR : W_CONSTANT;
    s->warmup.steps = dpt_spec_u64(c, "steps");
    s->warmup.factor = dpt_spec_real(c, linear ? "start_factor" : "factor");
    return DPT_OK;
}

typedef dpt_status_t (*build_fn)(dpt_schedule_t *s, part_t *c);
static const build_fn builders[K_COUNT] = {build_constant,    build_step,       build_multistep,
                                           build_exponential, build_polynomial, build_linear,
                                           build_cosine,      build_restarts,   build_cyclic,
                                           build_onecycle,    build_plateau};

/* ------------------------------------------------------------------------------------------
 * Whole specs and the description. */

/* The parsed schedule: a main part (constant when absent) and an optional plateau; the
 * warmup. Held on the heap: each part holds a few KB of values. */
typedef struct parsed {
    dpt_spec_t sched, warm;
    const part_t *main, *plateau;
} parsed_t;

/* Builds MAIN[+plateau] from the parsed parts, in order. */
static dpt_status_t build_schedule(dpt_schedule_t *s, parsed_t *ps, const char *spec)
{
    for (size_t i = 0; i < ps->sched.n; i++) {
        part_t *c = &ps->sched.part[i];
        int is_plateau = c->kind_index == K_PLATEAU;
        if ((is_plateau && ps->plateau) || (!is_plateau && ps->main))
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "'+' combines one main schedule with one plateau, got '%s'", spec);
        dpt_status_t st = builders[c->kind_index](s, c);
        if (st) return st;
        if (is_plateau) {
            ps->plateau = c;
            if (!ps->main) s->kind = K_PLATEAU;
        } else {
            ps->main = c;
            s->kind = (kind_t)c->kind_index;
        }
    }
    return DPT_OK;
}

static dpt_status_t parse_all(dpt_schedule_t *s, parsed_t *ps, const char *schedule_spec,
                              const char *warmup_spec)
{
    const char *spec = schedule_spec && schedule_spec[0] ? schedule_spec : "constant";
    dpt_status_t st = dpt_spec_parse(&schedule_grammar, spec, &ps->sched);
    if (!st) st = build_schedule(s, ps, spec);
    if (st || !warmup_spec || !warmup_spec[0]) return st;
    st = dpt_spec_parse(&warmup_grammar, warmup_spec, &ps->warm);
    return st ? st : build_warmup(s, &ps->warm.part[0]);
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

static void describe_part(text_buf_t *t, const part_t *c)
{
    int n = dpt_spec_describe(c, t->len < t->cap ? t->buf + t->len : NULL,
                              t->len < t->cap ? t->cap - t->len : 0);
    if (n > 0) t->len += (size_t)n;
}

static dpt_status_t describe(dpt_schedule_t *s, const parsed_t *ps)
{
    text_buf_t t = {s->desc, sizeof s->desc, 0};
    char num[40];
    tb_printf(&t, "schedule=");
    if (ps->main) describe_part(&t, ps->main);
    if (ps->plateau) {
        tb_printf(&t, "%s", ps->main ? "+" : "");
        describe_part(&t, ps->plateau);
    }
    tb_printf(&t, " warmup=");
    if (s->warmup.kind == W_NONE)
        tb_printf(&t, "none"); /* also what --warmup none parses to */
    else
        describe_part(&t, &ps->warm.part[0]);
    dpt_fmt_double(num, sizeof num, s->base_lr);
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
    if (st) return st;
    dpt_schedule_t *s = calloc(1, sizeof *s);
    parsed_t *ps = calloc(1, sizeof *ps);
    if (!s || !ps) {
        free(s);
        free(ps);
        return dpt_error(DPT_ERR_NOMEM, "out of memory creating a schedule");
    }
    s->base_lr = base_lr;
    s->steps_per_epoch = steps_per_epoch;
    s->epochs = epochs;
    st = parse_all(s, ps, schedule_spec, warmup_spec);
    if (!st) st = describe(s, ps);
    free(ps);
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

static void help_table(text_buf_t *t, const dpt_spec_kind_t *const *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tb_printf(t, "  %-16s", table[i]->name);
        size_t col = 18;
        for (size_t k = 0; table[i]->keys && table[i]->keys[k].name; k++) {
            const dpt_spec_key_t *key = &table[i]->keys[k];
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
