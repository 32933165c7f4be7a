/* The one spec grammar (src/core/spec.c) on its own: splitting, positional and key=value
 * arguments, typed values with ranges, lists, implicit names, defaults, every error message,
 * and descriptions that parse back to the same values. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/spec.h"

static const dpt_spec_key_t fruit_keys[] = {DPT_SPEC_I("count", NULL, 1, 100, DPT_SPEC_POS),
                                            DPT_SPEC_R("weight", "0.5", 0, 10, DPT_SPEC_LO_OPEN),
                                            DPT_SPEC_E("colour", "red", "red|green|yellow"),
                                            DPT_SPEC_B("ripe", "1"),
                                            DPT_SPEC_I("sizes", "1/2", 0, 1000, DPT_SPEC_LIST),
                                            DPT_SPEC_R("price", "@from the weight", 0, INFINITY, 0),
                                            DPT_SPEC_END};
static const dpt_spec_kind_t apple = {"apple", fruit_keys}, none = {"none", NULL};
static const dpt_spec_kind_t *const kinds[] = {&apple, &none};
static const dpt_spec_grammar_t fruit = {"fruit", kinds, 2, NULL, 3, NULL};
static const dpt_spec_grammar_t implicit = {"--fruit", kinds, 2, "apple", 1, NULL};
static const dpt_spec_grammar_t in_context = {"item", kinds, 2, NULL, 1, "basket"};

static dpt_spec_t parse_ok(const dpt_spec_grammar_t *g, const char *text)
{
    dpt_spec_t s;
    cr_assert_eq(dpt_spec_parse(g, text, &s), DPT_OK, "%s: %s", text, dpt_last_error());
    return s;
}

static void parse_bad(const dpt_spec_grammar_t *g, const char *text, const char *want)
{
    dpt_spec_t s;
    cr_assert_eq(dpt_spec_parse(g, text, &s), DPT_ERR_INVALID_ARG, "%s parsed", text);
    cr_assert_str_eq(dpt_last_error(), want);
}

Test(spec, defaults_positional_and_typed_values)
{
    dpt_spec_t s = parse_ok(&fruit, "apple:3");
    const dpt_spec_part_t *p = &s.part[0];
    cr_assert_eq(s.n, 1u);
    cr_assert_eq(p->kind, &apple);
    cr_assert_eq(dpt_spec_u64(p, "count"), 3u);
    cr_assert(dpt_spec_given(p, "count"));
    cr_assert_not(dpt_spec_given(p, "weight"));
    cr_assert_eq(dpt_spec_real(p, "weight"), 0.5);
    cr_assert_eq(dpt_spec_int(p, "colour"), 0);
    cr_assert_eq(dpt_spec_int(p, "ripe"), 1);
    cr_assert_not(dpt_spec_is_set(p, "price"), "a derived key stays unset");
    size_t n;
    const double *sizes = dpt_spec_list(p, "sizes", &n);
    cr_assert_eq(n, 2u);
    cr_assert_eq(sizes[0], 1.0);
    cr_assert_eq(sizes[1], 2.0);

    s = parse_ok(&fruit, "apple:count=7,colour=yellow:ripe=false,weight=1e-3,sizes=5/6/7");
    p = &s.part[0];
    cr_assert_eq(dpt_spec_u64(p, "count"), 7u);
    cr_assert_eq(dpt_spec_int(p, "colour"), 2);
    cr_assert_eq(dpt_spec_int(p, "ripe"), 0);
    cr_assert_eq(dpt_spec_real(p, "weight"), 1e-3);
    cr_assert_eq(dpt_spec_list(p, "sizes", &n)[2], 7.0);
    cr_assert_eq(n, 3u);
}

Test(spec, plus_joins_parts_but_not_inside_numbers)
{
    dpt_spec_t s = parse_ok(&fruit, "apple:2,weight=1e+0+none+apple:count=1");
    cr_assert_eq(s.n, 3u);
    cr_assert_eq(dpt_spec_real(&s.part[0], "weight"), 1.0);
    cr_assert_eq(s.part[1].kind, &none);
    cr_assert_eq(s.part[2].kind_index, 0u);
    parse_bad(&fruit, "none+none+none+none",
              "fruit 'none+none+none+none' joins more than 3 parts with '+'");
}

Test(spec, implicit_name_and_context_labels)
{
    dpt_spec_t s = parse_ok(&implicit, "count=4,ripe=true");
    cr_assert_eq(s.part[0].kind, &apple);
    cr_assert_eq(dpt_spec_u64(&s.part[0], "count"), 4u);
    parse_bad(&implicit, "count=0", "--fruit: count must be an integer in [1, 100], got '0'");
    parse_bad(&in_context, "apple:2:lemon=1",
              "basket: 'apple:2:lemon=1': unknown key 'lemon'; valid keys: count, weight, "
              "colour, ripe, sizes, price");
    parse_bad(&in_context, "pear", "basket: unknown item 'pear'; valid names: apple, none");
}

/* A part is len characters, not a C string: an implicit-name part shorter than the implicit
 * name must not be read past its end (a fuzz find; ASan sees it in this exact-size copy). */
Test(spec, a_part_is_read_within_its_length)
{
    char *buf = malloc(2);
    memcpy(buf, "a=", 2);
    dpt_spec_part_t p;
    cr_assert_eq(dpt_spec_parse_part(&implicit, buf, 2, &p), DPT_ERR_INVALID_ARG);
    cr_assert_str_eq(dpt_last_error(),
                     "--fruit: unknown key 'a'; valid keys: count, weight, colour, ripe, sizes, "
                     "price");
    free(buf);
}

Test(spec, every_error_names_the_part_and_the_choices)
{
    parse_bad(&fruit, "", "fruit: empty spec; valid names: apple, none");
    parse_bad(&fruit, "pear:1", "unknown fruit 'pear'; valid names: apple, none");
    parse_bad(&fruit, "apple:1,stem=2",
              "fruit apple: unknown key 'stem'; valid keys: count, weight, colour, ripe, "
              "sizes, price");
    parse_bad(&fruit, "apple:1,count=2", "fruit apple: key 'count' given twice");
    parse_bad(&fruit, "apple:1,weight=", "fruit apple: key 'weight' has an empty value");
    parse_bad(&fruit, "apple:1,,ripe=1", "fruit apple: empty argument (two separators in a row?)");
    parse_bad(&fruit, "apple:1,=2", "fruit apple: expected key=value, got '=2'");
    parse_bad(&fruit, "apple:1:2",
              "fruit apple: expected key=value, got '2' (usage: "
              "apple:COUNT[:weight=0.5][:colour=red][:ripe=1][:sizes=1/2][:price=(from the "
              "weight)])");
    parse_bad(&fruit, "apple",
              "fruit apple: missing required key count (usage: apple:COUNT[:weight=0.5]"
              "[:colour=red][:ripe=1][:sizes=1/2][:price=(from the weight)])");
    parse_bad(&fruit, "apple:1,weight=0",
              "fruit apple: weight must be a number in (0, 10], got '0'");
    parse_bad(&fruit, "apple:1,weight=heavy",
              "fruit apple: weight: malformed number 'heavy' (expected a number in (0, 10])");
    parse_bad(&fruit, "apple:1,weight=nan",
              "fruit apple: weight: malformed number 'nan' (expected a number in (0, 10])");
    parse_bad(&fruit, "apple:2.5",
              "fruit apple: count: malformed number '2.5' (expected an integer in [1, 100])");
    parse_bad(&fruit, "apple:1,colour=blue",
              "fruit apple: colour must be one of red, green, yellow, got 'blue'");
    parse_bad(&fruit, "apple:1,ripe=2", "fruit apple: ripe must be 0 or 1, got '2'");
    parse_bad(&fruit, "apple:1,sizes=1/x",
              "fruit apple: sizes: malformed number 'x' (expected an integer in [0, 1000])");
    parse_bad(&fruit, "apple:1,weight=1/2",
              "fruit apple: weight: malformed number '1/2' (expected a number in (0, 10])");
    parse_bad(&fruit, "apple:1,price=-1", "fruit apple: price must be a number >= 0, got '-1'");
    parse_bad(&fruit, "none:1", "fruit none: none takes no keys or values; join names with '+'");
}

Test(spec, long_specs_and_long_lists_are_refused)
{
    char text[DPT_SPEC_TEXT_MAX + 64];
    size_t len = (size_t)snprintf(text, sizeof text, "apple:1,weight=1");
    while (len < DPT_SPEC_TEXT_MAX + 1)
        text[len++] = '0';
    text[len] = '\0';
    parse_bad(&fruit, text, "fruit spec is 1025 characters long; the limit is 1024");
    len = (size_t)snprintf(text, sizeof text, "apple:1,sizes=");
    for (int i = 0; i < DPT_SPEC_VALUES_MAX; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s1", i ? "/" : "");
    parse_bad(&fruit, text, "fruit apple: sizes has too many values (the limit is 288)");
}

/* The description lists every set key and parses back to the same numbers, bit for bit. */
Test(spec, describe_round_trips)
{
    dpt_spec_t s = parse_ok(&fruit, "apple:9,weight=0.1,colour=green,sizes=0/3");
    dpt_spec_set(&s.part[0], "price", 1.0 / 3.0);
    char desc[512];
    dpt_spec_describe(&s.part[0], desc, sizeof desc);
    cr_assert_str_eq(desc, "apple:count=9,weight=0.1,colour=green,ripe=1,sizes=0/3,"
                           "price=0.3333333333333333");
    dpt_spec_t back = parse_ok(&fruit, desc);
    for (size_t i = 0; i < s.part[0].n_keys; i++) {
        double a = dpt_spec_real_at(&s.part[0], i), b = dpt_spec_real_at(&back.part[0], i);
        cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "key %zu", i);
    }
}
