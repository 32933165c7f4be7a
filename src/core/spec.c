/* Owns the one spec grammar (see spec.h): splitting, key lookup, typed values with ranges,
 * defaults, the error messages and the canonical description. */
#include "core/spec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"

/* A key name the owner's code asks for but its table lacks is a programming error. */
#define SPEC_ASSERT(cond, key)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: spec key '%s' is not in the table\n", __FILE__, __LINE__,      \
                    key);                                                                          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int is_sep(char c)
{
    return c == ',' || c == ':';
}

/* ------------------------------------------------------------------------------------------
 * Names for messages. */

void dpt_spec_key_names(const dpt_spec_kind_t *k, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; k->keys && k->keys[i].name && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", k->keys[i].name);
    if (!buf[0]) snprintf(buf, cap, "(none)");
}

void dpt_spec_kind_names(const dpt_spec_grammar_t *g, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < g->n_kinds && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", g->kinds[i]->name);
}

/* "a, b, c" from "a|b|c". */
static void choice_list(const char *choices, char *buf, size_t cap)
{
    size_t len = 0;
    for (const char *p = choices; *p && len + 3 < cap; p++) {
        if (*p == '|') {
            buf[len++] = ',';
            buf[len++] = ' ';
        } else
            buf[len++] = *p;
    }
    buf[len] = '\0';
}

/* The text of choice i of "a|b|c" into buf. */
static void choice_at(const char *choices, size_t i, char *buf, size_t cap)
{
    const char *p = choices;
    for (; i > 0 && p; i--) {
        p = strchr(p, '|');
        if (p) p++;
    }
    size_t len = p ? strcspn(p, "|") : 0;
    if (len >= cap) len = cap - 1;
    memcpy(buf, p ? p : "", len);
    buf[len] = '\0';
}

static void bound_text(char *buf, size_t cap, double v)
{
    if (v >= DPT_SPEC_INT_MAX)
        snprintf(buf, cap, "%s", "2^53");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, cap, "%.0f", v); /* 1000000, not 1e+06 */
    else
        dpt_fmt_double(buf, cap, v);
}

/* "a number in (0, 1]", "an integer in [1, 64]", "a number >= 0", "one of a, b". */
static void expect_text(const dpt_spec_key_t *k, char *buf, size_t cap)
{
    char lo[40], hi[40];
    bound_text(lo, sizeof lo, k->lo);
    bound_text(hi, sizeof hi, k->hi);
    const char *noun = k->type == DPT_SPEC_INT ? "an integer" : "a number";
    int lo_open = (k->flags & DPT_SPEC_LO_OPEN) != 0, hi_open = (k->flags & DPT_SPEC_HI_OPEN) != 0;
    switch (k->type) {
    case DPT_SPEC_BOOL:
        snprintf(buf, cap, "0 or 1");
        return;
    case DPT_SPEC_ENUM: {
        char list[256];
        choice_list(k->choices, list, sizeof list);
        snprintf(buf, cap, "one of %s", list);
        return;
    }
    default:
        break;
    }
    if (isinf(k->hi) && isinf(k->lo))
        snprintf(buf, cap, "%s", noun);
    else if (isinf(k->hi))
        snprintf(buf, cap, "%s %s %s", noun, lo_open ? ">" : ">=", lo);
    else
        snprintf(buf, cap, "%s in %c%s, %s%c", noun, lo_open ? '(' : '[', lo, hi,
                 hi_open ? ')' : ']');
}

void dpt_spec_usage(const dpt_spec_kind_t *k, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s", k->name);
    for (size_t i = 0; k->keys && k->keys[i].name && len < cap; i++) {
        const dpt_spec_key_t *key = &k->keys[i];
        char upper[32];
        size_t j = 0;
        for (; key->name[j] && j + 1 < sizeof upper; j++)
            upper[j] = (char)toupper((unsigned char)key->name[j]);
        upper[j] = '\0';
        int required = key->def == DPT_SPEC_REQUIRED;
        if (key->flags & DPT_SPEC_POS)
            len += (size_t)snprintf(buf + len, cap - len, required ? ":%s" : "[:%s]", upper);
        else if (key->def && key->def[0] == '@')
            len += (size_t)snprintf(buf + len, cap - len, "[:%s=(%s)]", key->name, key->def + 1);
        else if (key->def)
            len += (size_t)snprintf(buf + len, cap - len, "[:%s=%s]", key->name, key->def);
        else
            len += (size_t)snprintf(buf + len, cap - len, required ? ":%s=%s" : "[:%s=%s]",
                                    key->name, upper);
    }
}

/* ------------------------------------------------------------------------------------------
 * Values. */

static dpt_status_t verror(const dpt_spec_part_t *p, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return dpt_error(DPT_ERR_INVALID_ARG, "%s: %s", p->label, msg);
}

dpt_status_t dpt_spec_error(const dpt_spec_part_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dpt_status_t s = verror(p, fmt, ap);
    va_end(ap);
    return s;
}

static int in_range(const dpt_spec_key_t *k, double v)
{
    int lo_ok = (k->flags & DPT_SPEC_LO_OPEN) ? v > k->lo : v >= k->lo;
    int hi_ok = (k->flags & DPT_SPEC_HI_OPEN) ? v < k->hi : v <= k->hi;
    return lo_ok && hi_ok;
}

static int parse_real(const char *text, double *out)
{
    char *end;
    if (!text[0] || isspace((unsigned char)text[0])) return 0;
    errno = 0;
    double v = strtod(text, &end);
    if (*end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_int(const char *text, double *out)
{
    if (!text[0] || strlen(text) > 16) return 0;
    for (const char *c = text; *c; c++)
        if (!isdigit((unsigned char)*c)) return 0;
    *out = (double)strtoull(text, NULL, 10);
    return *out <= DPT_SPEC_INT_MAX;
}

static int parse_choice(const char *choices, const char *text, double *out)
{
    size_t len = strlen(text), i = 0;
    for (const char *c = choices; c; i++) {
        size_t n = strcspn(c, "|");
        if (n == len && !strncmp(c, text, len)) {
            *out = (double)i;
            return 1;
        }
        c = c[n] ? c + n + 1 : NULL;
    }
    return 0;
}

/* One item of a value (text is NUL-terminated) into *out. */
static dpt_status_t parse_item(const dpt_spec_part_t *p, const dpt_spec_key_t *k, const char *text,
                               const char *whole, double *out)
{
    int ok = 0;
    switch (k->type) {
    case DPT_SPEC_REAL:
        ok = parse_real(text, out);
        break;
    case DPT_SPEC_INT:
        ok = parse_int(text, out);
        break;
    case DPT_SPEC_BOOL:
        ok = parse_choice("0|1|false|true", text, out);
        if (ok) *out = fmod(*out, 2.0);
        break;
    case DPT_SPEC_ENUM:
        ok = parse_choice(k->choices, text, out);
        break;
    }
    char want[320];
    expect_text(k, want, sizeof want);
    int numeric = k->type == DPT_SPEC_REAL || k->type == DPT_SPEC_INT;
    if (!ok && numeric)
        return dpt_spec_error(p, "%s: malformed number '%s' (expected %s)", k->name, text, want);
    if (ok && numeric) ok = in_range(k, *out);
    if (ok) return DPT_OK;
    return dpt_spec_error(p, "%s must be %s, got '%s'", k->name, want, whole);
}

/* Parses value text (len characters) as key i's value: one item, or a '/' list. */
static dpt_status_t parse_value(dpt_spec_part_t *p, size_t i, const char *text, size_t len)
{
    const dpt_spec_key_t *k = &p->kind->keys[i];
    char whole[DPT_SPEC_TEXT_MAX + 1];
    memcpy(whole, text, len);
    whole[len] = '\0';
    if (!len) return dpt_spec_error(p, "key '%s' has an empty value", k->name);
    dpt_spec_value_t *v = &p->val[i];
    v->off = (uint16_t)p->n_num;
    v->n = 0;
    for (char *item = whole;;) {
        char *slash = (k->flags & DPT_SPEC_LIST) ? strchr(item, '/') : NULL;
        if (slash) *slash = '\0';
        if (p->n_num == DPT_SPEC_VALUES_MAX)
            return dpt_spec_error(p, "%s has too many values (the limit is %d)", k->name,
                                  DPT_SPEC_VALUES_MAX);
        char shown[DPT_SPEC_TEXT_MAX + 1];
        memcpy(shown, text, len);
        shown[len] = '\0';
        dpt_status_t s = parse_item(p, k, item, shown, &p->num[p->n_num]);
        if (s) return s;
        p->n_num++;
        v->n++;
        if (!slash) break;
        item = slash + 1;
    }
    v->set = 1;
    return DPT_OK;
}

/* ------------------------------------------------------------------------------------------
 * Parts. */

static size_t key_index(const dpt_spec_kind_t *k, const char *key, size_t keylen)
{
    size_t i = 0;
    for (; k->keys && k->keys[i].name; i++)
        if (strlen(k->keys[i].name) == keylen && !strncmp(k->keys[i].name, key, keylen)) break;
    return i;
}

static const dpt_spec_kind_t *find_kind(const dpt_spec_grammar_t *g, const char *name, size_t len,
                                        size_t *index)
{
    for (size_t i = 0; i < g->n_kinds; i++)
        if (strlen(g->kinds[i]->name) == len && !strncmp(g->kinds[i]->name, name, len)) {
            *index = i;
            return g->kinds[i];
        }
    return NULL;
}

/* One argument "key=value" or a bare value; *next_pos is the next positional key to fill. */
static dpt_status_t parse_arg(dpt_spec_part_t *p, const char *arg, size_t len, size_t *next_pos)
{
    const char *eq = memchr(arg, '=', len);
    size_t i;
    if (!len) return dpt_spec_error(p, "empty argument (two separators in a row?)");
    if (eq) {
        size_t klen = (size_t)(eq - arg);
        if (!klen) return dpt_spec_error(p, "expected key=value, got '%.*s'", (int)len, arg);
        i = key_index(p->kind, arg, klen);
        if (i == p->n_keys) {
            char keys[512];
            dpt_spec_key_names(p->kind, keys, sizeof keys);
            return dpt_spec_error(p, "unknown key '%.*s'; valid keys: %s", (int)klen, arg, keys);
        }
        arg = eq + 1;
        len -= klen + 1;
    } else {
        while (*next_pos < p->n_keys && !(p->kind->keys[*next_pos].flags & DPT_SPEC_POS))
            ++*next_pos;
        if (*next_pos == p->n_keys) {
            char usage[512];
            dpt_spec_usage(p->kind, usage, sizeof usage);
            return dpt_spec_error(p, "expected key=value, got '%.*s' (usage: %s)", (int)len, arg,
                                  usage);
        }
        i = (*next_pos)++;
    }
    if (p->val[i].given) return dpt_spec_error(p, "key '%s' given twice", p->kind->keys[i].name);
    dpt_status_t s = parse_value(p, i, arg, len);
    p->val[i].given = 1;
    return s;
}

/* Defaults for keys not given; a missing required key is an error. */
static dpt_status_t apply_defaults(dpt_spec_part_t *p)
{
    for (size_t i = 0; i < p->n_keys; i++) {
        const dpt_spec_key_t *k = &p->kind->keys[i];
        if (p->val[i].given) continue;
        if (k->def == DPT_SPEC_REQUIRED) {
            char usage[512];
            dpt_spec_usage(p->kind, usage, sizeof usage);
            return dpt_spec_error(p, "missing required key %s (usage: %s)", k->name, usage);
        }
        if (k->def[0] == '@') continue; /* derived by the owner */
        dpt_status_t s = parse_value(p, i, k->def, strlen(k->def));
        if (s) return s;
    }
    return DPT_OK;
}

/* "optimizer adam", "model spec 'conv:3'", or the flag alone for an implicit name. */
static void set_label(dpt_spec_part_t *p, const char *text, size_t len, int implicit)
{
    const char *what = p->grammar->what;
    if (implicit)
        snprintf(p->label, sizeof p->label, "%s", what);
    else if (p->grammar->context)
        snprintf(p->label, sizeof p->label, "%s: '%.*s'", p->grammar->context,
                 (int)(len > 60 ? 60 : len), text);
    else
        snprintf(p->label, sizeof p->label, "%s %s", what, p->kind->name);
}

dpt_status_t dpt_spec_parse_part(const dpt_spec_grammar_t *g, const char *text, size_t len,
                                 dpt_spec_part_t *p)
{
    memset(p, 0, offsetof(dpt_spec_part_t, num)); /* num is filled as values arrive */
    p->n_num = 0;
    p->grammar = g;
    size_t name_len = 0;
    while (name_len < len && !is_sep(text[name_len]))
        name_len++;
    const char *args = text + name_len;
    size_t args_len = len - name_len;
    if (g->implicit && memchr(text, '=', name_len)) {
        name_len = strlen(g->implicit);
        p->kind = find_kind(g, g->implicit, name_len, &p->kind_index);
        args = text;
        args_len = len;
    } else {
        p->kind = find_kind(g, text, name_len, &p->kind_index);
        if (args_len)
            args++, args_len--; /* the ':' after the name */
        else
            args = NULL;
    }
    if (!p->kind) {
        char names[512];
        dpt_spec_kind_names(g, names, sizeof names);
        return dpt_error(DPT_ERR_INVALID_ARG, "%s%sunknown %s '%.*s'; valid names: %s",
                         g->context ? g->context : "", g->context ? ": " : "", g->what,
                         (int)(name_len > 64 ? 64 : name_len), text, names);
    }
    while (p->kind->keys && p->kind->keys[p->n_keys].name)
        p->n_keys++;
    set_label(p, text, len, args == text);
    if (args && !p->n_keys)
        return dpt_spec_error(p, "%s takes no keys or values%s", p->kind->name,
                              g->max_parts > 1 ? "; join names with '+'" : "");
    /* (Not for an implicit name: name_len is then the implicit name's, not the text's.) */
    if (args && args != text && text[name_len] == ',')
        return dpt_spec_error(p, "a ':' goes between the name and its keys");
    size_t next_pos = 0;
    for (size_t at = 0; args && at <= args_len;) {
        size_t n = 0;
        while (at + n < args_len && !is_sep(args[at + n]))
            n++;
        dpt_status_t s = parse_arg(p, args + at, n, &next_pos);
        if (s) return s;
        at += n + 1;
    }
    return apply_defaults(p);
}

/* Where the part starting at text ends: at a '+' that starts a name (a letter follows, so a
 * number such as 1e+4 stays whole), else at the end. */
static size_t part_length(const char *text)
{
    size_t i = 0;
    for (; text[i]; i++)
        if (text[i] == '+' && isalpha((unsigned char)text[i + 1])) break;
    return i;
}

dpt_status_t dpt_spec_parse(const dpt_spec_grammar_t *g, const char *text, dpt_spec_t *out)
{
    out->n = 0;
    if (!text || !text[0]) {
        char names[512];
        dpt_spec_kind_names(g, names, sizeof names);
        return dpt_error(DPT_ERR_INVALID_ARG, "%s: empty spec; valid names: %s", g->what, names);
    }
    size_t total = strlen(text), max_parts = g->max_parts ? g->max_parts : 1;
    if (total > DPT_SPEC_TEXT_MAX)
        return dpt_error(DPT_ERR_INVALID_ARG, "%s spec is %zu characters long; the limit is %d",
                         g->what, total, DPT_SPEC_TEXT_MAX);
    if (max_parts > DPT_SPEC_PARTS_MAX) max_parts = DPT_SPEC_PARTS_MAX;
    for (const char *p = text;;) {
        size_t len = part_length(p);
        if (out->n == max_parts)
            return dpt_error(DPT_ERR_INVALID_ARG, "%s '%s' joins more than %zu part%s with '+'",
                             g->what, text, max_parts, max_parts == 1 ? "" : "s");
        dpt_status_t s = dpt_spec_parse_part(g, p, len, &out->part[out->n]);
        if (s) return s;
        out->n++;
        if (!p[len]) break;
        p += len + 1;
    }
    return DPT_OK;
}

/* ------------------------------------------------------------------------------------------
 * Reading and describing. */

static size_t need_key(const dpt_spec_part_t *p, const char *key)
{
    size_t i = key_index(p->kind, key, strlen(key));
    SPEC_ASSERT(i < p->n_keys, key);
    return i;
}

int dpt_spec_given(const dpt_spec_part_t *p, const char *key)
{
    return p->val[need_key(p, key)].given;
}

int dpt_spec_is_set(const dpt_spec_part_t *p, const char *key)
{
    return p->val[need_key(p, key)].set;
}

double dpt_spec_real_at(const dpt_spec_part_t *p, size_t i)
{
    const dpt_spec_value_t *v = &p->val[i];
    return v->set && v->n ? p->num[v->off] : 0.0;
}

double dpt_spec_real(const dpt_spec_part_t *p, const char *key)
{
    return dpt_spec_real_at(p, need_key(p, key));
}

uint64_t dpt_spec_u64(const dpt_spec_part_t *p, const char *key)
{
    return (uint64_t)dpt_spec_real(p, key);
}

size_t dpt_spec_size(const dpt_spec_part_t *p, const char *key)
{
    return (size_t)dpt_spec_real(p, key);
}

int dpt_spec_int(const dpt_spec_part_t *p, const char *key)
{
    return (int)dpt_spec_real(p, key);
}

const double *dpt_spec_list(const dpt_spec_part_t *p, const char *key, size_t *n)
{
    const dpt_spec_value_t *v = &p->val[need_key(p, key)];
    *n = v->set ? v->n : 0;
    return p->num + v->off;
}

void dpt_spec_set(dpt_spec_part_t *p, const char *key, double v)
{
    size_t i = need_key(p, key);
    if (p->n_num == DPT_SPEC_VALUES_MAX) return; /* the caps bound what parsing used */
    p->val[i].off = (uint16_t)p->n_num;
    p->val[i].n = 1;
    p->val[i].set = 1;
    p->num[p->n_num++] = v;
}

static int describe_number(const dpt_spec_key_t *k, double v, char *buf, size_t cap)
{
    switch (k->type) {
    case DPT_SPEC_INT:
        return snprintf(buf, cap, "%llu", (unsigned long long)v);
    case DPT_SPEC_BOOL:
        return snprintf(buf, cap, "%d", v != 0);
    case DPT_SPEC_ENUM:
        choice_at(k->choices, (size_t)v, buf, cap);
        return (int)strlen(buf);
    default:
        return dpt_fmt_double(buf, cap, v);
    }
}

int dpt_spec_describe(const dpt_spec_part_t *p, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s", p->kind->name);
    int first = 1;
    for (size_t i = 0; i < p->n_keys; i++) {
        const dpt_spec_value_t *v = &p->val[i];
        if (!v->set) continue;
        len += (size_t)snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0,
                                "%c%s=", first ? ':' : ',', p->kind->keys[i].name);
        first = 0;
        for (size_t j = 0; j < v->n; j++) {
            char num[64];
            describe_number(&p->kind->keys[i], p->num[v->off + j], num, sizeof num);
            len += (size_t)snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s%s",
                                    j ? "/" : "", num);
        }
    }
    return (int)len;
}
