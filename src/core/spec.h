/* The one grammar of every spec-taking flag (--optimizer, --schedule, --warmup, --early-stop,
 * --divergence-guard, --lr-scaling, --no-decay, --augment, --model's layer items, sweep grids):
 *
 *   spec  := part ('+' part)*              '+' starts a part only before a letter (1e+4 stays)
 *   part  := NAME [':' arg ((',' | ':') arg)*]   or   arg (',' arg)*  for a grammar's implicit name
 *   arg   := KEY '=' value  |  value       a bare value fills the next positional key
 *   value := item ('/' item)*              lists only where the key allows them
 *
 * Keys are typed (real, integer, bool, enum) with ranges; defaults are literal text parsed like
 * a user's value, so help, describe and behaviour cannot drift apart. Unknown names and keys,
 * repeated keys, empty values, malformed numbers and out-of-range values are errors with one
 * set of messages that name the valid choices. Parsing does not allocate. */
#ifndef DPT_CORE_SPEC_H
#define DPT_CORE_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

#define DPT_SPEC_TEXT_MAX 1024              /* characters in one spec */
#define DPT_SPEC_KEYS_MAX 24                /* keys of one kind */
#define DPT_SPEC_VALUES_MAX 288             /* numbers of one part, lists included */
#define DPT_SPEC_PARTS_MAX 8                /* parts joined by '+' */
#define DPT_SPEC_INT_MAX 9007199254740992.0 /* 2^53: integers convert to double exactly */

typedef enum dpt_spec_type {
    DPT_SPEC_REAL, /* finite number in the key's range */
    DPT_SPEC_INT,  /* whole number (digits only) in the key's range */
    DPT_SPEC_BOOL, /* 0, 1, false, true */
    DPT_SPEC_ENUM  /* one of choices, stored as its index */
} dpt_spec_type_t;

enum {
    DPT_SPEC_LO_OPEN = 1u << 0, /* lo itself is outside the range */
    DPT_SPEC_HI_OPEN = 1u << 1, /* hi itself is outside the range */
    DPT_SPEC_POS = 1u << 2,     /* may be given as a bare value, in table order */
    DPT_SPEC_LIST = 1u << 3     /* takes '/'-separated values */
};

/* A default of NULL means the user must give the key; "@why" means the key stays unset after
 * parsing and its owner derives it (dpt_spec_set), `why` saying from what in help texts. */
#define DPT_SPEC_REQUIRED NULL

typedef struct dpt_spec_key {
    const char *name;
    dpt_spec_type_t type;
    const char *def; /* literal default, DPT_SPEC_REQUIRED or "@why" */
    double lo, hi;   /* REAL and INT: the range (flags say which ends are open) */
    unsigned flags;
    const char *choices; /* ENUM: "a|b|c" */
} dpt_spec_key_t;

/* Table rows: DPT_SPEC_R("gamma", "0.1", 0, INFINITY, DPT_SPEC_LO_OPEN) is a real > 0. */
#define DPT_SPEC_R(name, def, lo, hi, flags)                                                       \
    {                                                                                              \
        name, DPT_SPEC_REAL, def, lo, hi, flags, NULL                                              \
    }
#define DPT_SPEC_I(name, def, lo, hi, flags)                                                       \
    {                                                                                              \
        name, DPT_SPEC_INT, def, lo, hi, flags, NULL                                               \
    }
#define DPT_SPEC_B(name, def)                                                                      \
    {                                                                                              \
        name, DPT_SPEC_BOOL, def, 0, 1, 0, NULL                                                    \
    }
#define DPT_SPEC_E(name, def, choices)                                                             \
    {                                                                                              \
        name, DPT_SPEC_ENUM, def, 0, 0, 0, choices                                                 \
    }
#define DPT_SPEC_END                                                                               \
    {                                                                                              \
        NULL, DPT_SPEC_REAL, NULL, 0, 0, 0, NULL                                                   \
    }

/* A name and its keys (terminated by a key with a NULL name). */
typedef struct dpt_spec_kind {
    const char *name;
    const dpt_spec_key_t *keys;
} dpt_spec_kind_t;

/* What one flag accepts. */
typedef struct dpt_spec_grammar {
    const char *what; /* names the flag in messages: "optimizer", "--early-stop" */
    const dpt_spec_kind_t *const *kinds;
    size_t n_kinds;
    const char *implicit; /* kind meant when the spec starts with KEY=value (NULL: none) */
    size_t max_parts;     /* parts joined by '+' (0 means 1) */
    const char *context;  /* when set, messages read "CONTEXT: 'PART TEXT': ..." (model spec) */
} dpt_spec_grammar_t;

typedef struct dpt_spec_value {
    unsigned given : 1; /* the user wrote it */
    unsigned set : 1;   /* it has a value: given, default or set by the owner */
    uint16_t off, n;    /* its numbers: part->num[off .. off+n) */
} dpt_spec_value_t;

/* One parsed part. Values are numbers (enum: the choice's index; bool: 0 or 1). */
typedef struct dpt_spec_part {
    const dpt_spec_grammar_t *grammar;
    const dpt_spec_kind_t *kind;
    size_t kind_index; /* into grammar->kinds */
    size_t n_keys;
    char label[96]; /* message prefix: "optimizer adam" */
    dpt_spec_value_t val[DPT_SPEC_KEYS_MAX];
    double num[DPT_SPEC_VALUES_MAX];
    size_t n_num;
} dpt_spec_part_t;

typedef struct dpt_spec {
    size_t n;
    dpt_spec_part_t part[DPT_SPEC_PARTS_MAX];
} dpt_spec_t;

/* Parses text (NULL or "" is an error: callers choose their own default spec) into out. */
dpt_status_t dpt_spec_parse(const dpt_spec_grammar_t *g, const char *text, dpt_spec_t *out);
/* Parses one part (no '+' splitting) of len characters: a --model layer item. */
dpt_status_t dpt_spec_parse_part(const dpt_spec_grammar_t *g, const char *text, size_t len,
                                 dpt_spec_part_t *out);

/* Reading values. key must be one of the kind's keys (an unknown key is a programming error
 * and asserts). The scalar getters return the first value of a list. */
int dpt_spec_given(const dpt_spec_part_t *p, const char *key);
int dpt_spec_is_set(const dpt_spec_part_t *p, const char *key);
double dpt_spec_real(const dpt_spec_part_t *p, const char *key);
uint64_t dpt_spec_u64(const dpt_spec_part_t *p, const char *key);
size_t dpt_spec_size(const dpt_spec_part_t *p, const char *key);
int dpt_spec_int(const dpt_spec_part_t *p, const char *key); /* bools and enum indices */
/* A list's numbers (n of them); valid while p lives. */
const double *dpt_spec_list(const dpt_spec_part_t *p, const char *key, size_t *n);
/* The value of the key at index i of the kind's table (table order). */
double dpt_spec_real_at(const dpt_spec_part_t *p, size_t i);

/* Sets a key's value, for derived defaults and values the owner resolves, so that
 * dpt_spec_describe shows them. */
void dpt_spec_set(dpt_spec_part_t *p, const char *key, double v);

/* A cross-key check failed: an error prefixed with the part's label, as the parser's are. */
dpt_status_t dpt_spec_error(const dpt_spec_part_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "name:k=v,k=v" with every set key in table order, numbers in the shortest form that reads
 * back to the same double: parsing it gives the same values. Returns the length (as
 * snprintf). */
int dpt_spec_describe(const dpt_spec_part_t *p, char *buf, size_t cap);
/* "k1, k2, ..." and "a, b, c" for help texts. */
void dpt_spec_key_names(const dpt_spec_kind_t *k, char *buf, size_t cap);
void dpt_spec_kind_names(const dpt_spec_grammar_t *g, char *buf, size_t cap);
/* "conv:OUT:K[:stride=1][:pad=...]" style usage from the key table. */
void dpt_spec_usage(const dpt_spec_kind_t *k, char *buf, size_t cap);

#endif
