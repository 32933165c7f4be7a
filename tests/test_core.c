/* Tests for src/core: status messages, exit codes, the seeded RNG. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/checked.h"
#include "core/fmt.h"
#include "core/rng.h"
#include "dptrain/status.h"

Test(status, error_message_is_recorded_and_returned)
{
    dpt_status_t s = dpt_error(DPT_ERR_FORMAT, "%s: byte %d: bad magic", "f.idx", 3);
    cr_assert_eq(s, DPT_ERR_FORMAT);
    cr_assert_str_eq(dpt_last_error(), "f.idx: byte 3: bad magic");
    dpt_error_clear();
    cr_assert_str_eq(dpt_last_error(), "");
}

Test(status, exit_codes_distinguish_classes)
{
    cr_assert_eq(dpt_status_exit_code(DPT_OK), 0);
    cr_assert_eq(dpt_status_exit_code(DPT_ERR_INVALID_ARG), 2);
    cr_assert_eq(dpt_status_exit_code(DPT_ERR_FORMAT), 3);
    cr_assert_eq(dpt_status_exit_code(DPT_ERR_IO), 4);
    cr_assert_str_eq(dpt_status_str(DPT_ERR_FORMAT), "format error");
    cr_assert_str_eq(dpt_status_str((dpt_status_t)999), "unknown status");
}

Test(rng, same_seed_same_sequence_and_streams_differ)
{
    dpt_rng_t a, b, c;
    dpt_rng_seed(&a, 42, 0);
    dpt_rng_seed(&b, 42, 0);
    dpt_rng_seed(&c, 42, 1);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = dpt_rng_next(&a);
        cr_assert_eq(x, dpt_rng_next(&b));
        differ += x != dpt_rng_next(&c);
    }
    cr_assert_gt(differ, 95);
}

Test(rng, shuffle_is_a_permutation_and_below_is_in_range)
{
    enum { N = 1000 };
    uint32_t idx[N];
    int seen[N] = {0};
    for (uint32_t i = 0; i < N; i++)
        idx[i] = i;
    dpt_rng_t r;
    dpt_rng_seed(&r, 7, 3);
    dpt_rng_shuffle_u32(&r, idx, N);
    int moved = 0;
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_lt(idx[i], N);
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(seen[i], 1);
    cr_assert_gt(moved, 900);
    for (int i = 0; i < 1000; i++)
        cr_assert_lt(dpt_rng_below(&r, 7), 7u);
}

Test(rng, uniform_mean_is_plausible)
{
    dpt_rng_t r;
    dpt_rng_seed(&r, 1, 1);
    double sum = 0;
    for (int i = 0; i < 100000; i++)
        sum += dpt_rng_uniform(&r);
    cr_assert_float_eq(sum / 100000, 0.5, 0.01);
}

Test(checked, multiplication_overflow_is_detected)
{
    size_t out;
    cr_assert(dpt_mul_size(1000, 1000, &out));
    cr_assert_eq(out, 1000000u);
    cr_assert_not(dpt_mul_size(SIZE_MAX / 2, 3, &out));
    cr_assert_not(dpt_add_size(SIZE_MAX, 1, &out));
}

int __lsan_is_turned_off(void);

/* tests/support.c turns LeakSanitizer off in Criterion's runner process only; the tests
 * themselves run in workers and must stay checked. If Criterion ever names its workers
 * differently, this fails instead of leak checking silently stopping everywhere. */
Test(alloc, bulk_blocks_are_usable_and_large_ones_are_2mib_aligned)
{
    const size_t sizes[] = {0, 1, 4096, (2u << 20) - 1, 2u << 20, (47u << 20) + 123};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = dpt_alloc_bulk(sizes[i]);
        cr_assert_not_null(p, "%zu bytes", sizes[i]);
        if (sizes[i] >= (2u << 20))
            cr_assert_eq((uintptr_t)p % (2u << 20), 0, "%zu bytes at %p", sizes[i], (void *)p);
        memset(p, 0xA5, sizes[i]); /* every byte is writable (ASan checks the bounds) */
        if (sizes[i]) cr_assert_eq(p[sizes[i] - 1], 0xA5);
        free(p);
    }
    cr_assert_null(dpt_alloc_bulk(SIZE_MAX - 5), "a size that overflows when rounded");
}

Test(support, leak_checking_stays_on_inside_tests)
{
    cr_assert_eq(__lsan_is_turned_off(), 0);
}

/* The number formatter: readable where a shorter text reads back, exact always. */
Test(fmt, shortest_text_that_reads_back)
{
    char buf[64];
    const struct {
        double v;
        const char *text;
    } cases[] = {{0.05, "0.05"},
                 {0.9, "0.9"},
                 {1e-05, "1e-05"},
                 {0.1, "0.1"},
                 {100000, "100000"},
                 {1.0 / 3, "0.3333333333333333"},
                 {0.040000000000000036, "0.040000000000000036"},
                 {-2.5, "-2.5"},
                 {0, "0"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dpt_fmt_double(buf, sizeof buf, cases[i].v);
        cr_assert_str_eq(buf, cases[i].text);
    }
    dpt_fmt_double(buf, sizeof buf, NAN);
    cr_assert_str_eq(buf, "nan");
    dpt_fmt_double(buf, sizeof buf, -INFINITY);
    cr_assert_str_eq(buf, "-inf");
}

Test(fmt, every_double_reads_back_bit_for_bit)
{
    dpt_rng_t r;
    dpt_rng_seed(&r, 3, 3);
    char buf[64];
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = dpt_rng_next(&r);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) continue;
        dpt_fmt_double(buf, sizeof buf, v);
        double back = strtod(buf, NULL);
        cr_assert_eq(memcmp(&back, &v, sizeof v), 0, "%.17g printed as %s", v, buf);
        /* and typical training values: rates, losses, accuracies */
        double u = dpt_rng_uniform(&r) * pow(10.0, (double)(i % 12) - 8);
        dpt_fmt_double(buf, sizeof buf, u);
        back = strtod(buf, NULL);
        cr_assert_eq(memcmp(&back, &u, sizeof u), 0, "%.17g printed as %s", u, buf);
    }
}
