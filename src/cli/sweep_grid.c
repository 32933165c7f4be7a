/* Owns `dptrain sweep --grid`: "KEY=V1/V2/...;KEY=..." of train flags, ranges for --random, and
 * the configurations they give. The values themselves are whatever the train flag takes
 * (numbers, or specs in the one spec grammar); train's own parser checks them later. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sweep.h"
#include "core/rng.h"

/* Flags the sweep sets for each trial itself, or that do not make sense per trial. */
static const char *const reserved[] = {
    "out", "resume", "overwrite", "seed", "threads", "quiet", "plot", "help", "pause-after-epoch"};

static dpt_status_t check_key(const char *name)
{
    if (!name[0]) return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: a key is empty");
    for (const char *c = name; *c; c++)
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '-')
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "sweep --grid: '%s' is not a train flag name (write lr, not --lr)",
                             name);
    if (!strcmp(name, "epochs"))
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "sweep --grid: epochs is every trial's budget; give --epochs N to the "
                         "sweep (successive halving stops the weak trials early)");
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(name, reserved[i]))
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "sweep --grid: '%s' is set by the sweep itself (use --seeds, "
                             "--threads, --out), not a grid key",
                             name);
    return DPT_OK;
}

/* "log:1e-4:1", "lin:0.1:0.9", "int:32:256": a range for --random. 0 when text is no range. */
static int parse_range(const char *text, sweep_key_t *k)
{
    static const struct {
        const char *prefix;
        sweep_kind_t kind;
    } forms[] = {{"log:", SWEEP_LOG}, {"lin:", SWEEP_LIN}, {"int:", SWEEP_INT}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(forms[i].prefix);
        if (strncmp(text, forms[i].prefix, n)) continue;
        char *end;
        k->lo = strtod(text + n, &end);
        if (*end != ':') return -1;
        k->hi = strtod(end + 1, &end);
        if (*end || !isfinite(k->lo) || !isfinite(k->hi) || !(k->lo < k->hi)) return -1;
        if (forms[i].kind == SWEEP_LOG && !(k->lo > 0)) return -1;
        if (forms[i].kind == SWEEP_INT && (k->lo != floor(k->lo) || k->hi != floor(k->hi)))
            return -1;
        k->kind = forms[i].kind;
        return 1;
    }
    return 0;
}

/* Cuts the next item ending at one of `stops` (outside braces) off *p, NUL-terminating it in
 * place and dropping one pair of braces around it. */
static char *next_item(char **p, const char *stops, int *unclosed)
{
    char *start = *p, *s = *p;
    int depth = 0;
    for (; *s && (depth || !strchr(stops, *s)); s++) {
        if (*s == '{') depth++;
        if (*s == '}' && depth) depth--;
    }
    *unclosed = depth != 0;
    *p = *s ? s + 1 : NULL;
    *s = '\0';
    size_t len = strlen(start);
    if (len >= 2 && start[0] == '{' && start[len - 1] == '}') {
        start[len - 1] = '\0';
        start++;
    }
    return start;
}

static dpt_status_t parse_values(sweep_key_t *k, char *text)
{
    int r = parse_range(text, k);
    if (r < 0)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "sweep --grid: %s=%s: a range is log:LO:HI (0 < LO < HI), lin:LO:HI or "
                         "int:LO:HI (whole numbers)",
                         k->name, text);
    if (r) return DPT_OK;
    k->kind = SWEEP_LIST;
    int unclosed = 0;
    for (char *p = text; p;) {
        char *v = next_item(&p, "/", &unclosed);
        if (unclosed)
            return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: %s: unclosed '{'", k->name);
        if (!*v) return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: %s: empty value", k->name);
        if (k->n == SWEEP_MAX_VALUES)
            return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: %s has more than %d values",
                             k->name, SWEEP_MAX_VALUES);
        k->value[k->n++] = v;
    }
    return DPT_OK;
}

dpt_status_t sweep_grid_parse(const char *text, sweep_grid_t *g)
{
    memset(g, 0, sizeof *g);
    if (!text || !*text) return dpt_error(DPT_ERR_INVALID_ARG, "sweep: --grid is empty");
    if (strlen(text) > SWEEP_GRID_MAX)
        return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid is %zu characters; the limit is %d",
                         strlen(text), SWEEP_GRID_MAX);
    strcpy(g->text, text);
    int unclosed = 0;
    for (char *p = g->text; p;) {
        char *entry = next_item(&p, ";", &unclosed);
        if (unclosed) return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: unclosed '{'");
        if (!*entry) continue; /* a trailing ';' */
        char *eq = strchr(entry, '=');
        if (!eq)
            return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: expected KEY=V1/V2/..., got '%s'",
                             entry);
        *eq = '\0';
        if (g->n_keys == SWEEP_MAX_KEYS)
            return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid has more than %d keys",
                             SWEEP_MAX_KEYS);
        sweep_key_t *k = &g->key[g->n_keys];
        if (strlen(entry) >= sizeof k->name)
            return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: key '%.40s...' is too long",
                             entry);
        dpt_status_t s = check_key(entry);
        if (s) return s;
        for (size_t i = 0; i < g->n_keys; i++)
            if (!strcmp(g->key[i].name, entry))
                return dpt_error(DPT_ERR_INVALID_ARG, "sweep --grid: key '%s' given twice", entry);
        strcpy(k->name, entry);
        if ((s = parse_values(k, eq + 1))) return s;
        g->n_keys++;
    }
    if (!g->n_keys) return dpt_error(DPT_ERR_INVALID_ARG, "sweep: --grid is empty");
    return DPT_OK;
}

const char *sweep_config_value(const sweep_grid_t *g, const sweep_config_t *c, size_t k)
{
    return g->key[k].kind == SWEEP_LIST ? g->key[k].value[c->pick[k]] : c->num[k];
}

void sweep_config_text(const sweep_grid_t *g, const sweep_config_t *c, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < g->n_keys && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s=%s", k ? " " : "", g->key[k].name,
                                sweep_config_value(g, c, k));
}

/* A draw for configuration i, key k: uniform in [0, 1), a pure function of the seed. */
static double draw(uint64_t seed, size_t i, size_t k)
{
    return (double)(dpt_hash3(seed, i, k) >> 11) * 0x1.0p-53;
}

static void draw_config(const sweep_grid_t *g, uint64_t seed, size_t i, sweep_config_t *c)
{
    for (size_t k = 0; k < g->n_keys; k++) {
        const sweep_key_t *key = &g->key[k];
        double u = draw(seed, i, k), v;
        switch (key->kind) {
        case SWEEP_LIST:
            c->pick[k] = (uint16_t)(u * (double)key->n);
            continue;
        case SWEEP_LOG:
            v = exp(log(key->lo) + u * (log(key->hi) - log(key->lo)));
            break;
        case SWEEP_LIN:
            v = key->lo + u * (key->hi - key->lo);
            break;
        default:
            v = key->lo + floor(u * (key->hi - key->lo + 1));
            snprintf(c->num[k], sizeof c->num[k], "%.0f", v);
            continue;
        }
        /* Three significant digits: values a person can read in the tables. */
        snprintf(c->num[k], sizeof c->num[k], "%.3g", v);
    }
}

dpt_status_t sweep_grid_configs(const sweep_grid_t *g, size_t random, uint64_t sweep_seed,
                                sweep_config_t **out, size_t *n)
{
    size_t total = 1;
    for (size_t k = 0; k < g->n_keys && !random; k++) {
        if (g->key[k].kind != SWEEP_LIST)
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "sweep --grid: %s is a range; ranges are sampled with --random N",
                             g->key[k].name);
        if (total > SWEEP_MAX_CONFIGS / g->key[k].n)
            return dpt_error(DPT_ERR_INVALID_ARG,
                             "sweep --grid gives more than %d configurations; use --random N",
                             SWEEP_MAX_CONFIGS);
        total *= g->key[k].n;
    }
    if (random) total = random;
    if (total > SWEEP_MAX_CONFIGS)
        return dpt_error(DPT_ERR_INVALID_ARG, "sweep: more than %d configurations",
                         SWEEP_MAX_CONFIGS);
    sweep_config_t *c = calloc(total, sizeof *c);
    if (!c) return dpt_error(DPT_ERR_NOMEM, "out of memory for %zu configurations", total);
    for (size_t i = 0; i < total; i++) {
        if (random) {
            draw_config(g, sweep_seed, i, &c[i]);
            continue;
        }
        /* The product in reading order: the last key varies fastest. */
        size_t rest = i;
        for (size_t k = g->n_keys; k-- > 0;) {
            c[i].pick[k] = (uint16_t)(rest % g->key[k].n);
            rest /= g->key[k].n;
        }
    }
    *out = c;
    *n = total;
    return DPT_OK;
}
