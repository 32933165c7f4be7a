/* Tests for dptrain bench (src/train/bench.c, src/cli/cmd_bench.c): rows, CSV, errors. */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/bench.h"
#include "support.h"

typedef struct {
    dpt_bench_row_t rows[16];
    size_t n;
} rows_t;

static void collect(void *user, const dpt_bench_row_t *r)
{
    rows_t *rs = user;
    cr_assert_lt(rs->n, 16u);
    rs->rows[rs->n++] = *r;
}

Test(bench, rows_for_each_mode_with_consistent_ratios, .timeout = 120)
{
    dpt_dataset_t *tr, *te;
    cr_assert_eq(dpt_dataset_open("synthetic:4096", NULL, &tr, &te), DPT_OK);
    dpt_bench_config_t c = dpt_bench_config_default();
    c.model_spec = "dense:32,relu,dense:10";
    c.n_threads = 2, c.threads[0] = 1, c.threads[1] = 2;
    c.n_batches = 2, c.batches[0] = 64, c.batches[1] = 256;
    c.strong_batch = 256, c.weak_batch = 64, c.sweep_threads = 2;
    c.reps = 3, c.steps = 5, c.warmup = 2, c.micro_batch = 32;
    rows_t rs = {.n = 0};
    cr_assert_eq(dpt_bench_run(&c, tr, collect, &rs), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(rs.n, 6u);
    cr_assert_str_eq(rs.rows[0].mode, "strong");
    cr_assert_str_eq(rs.rows[2].mode, "weak");
    cr_assert_str_eq(rs.rows[4].mode, "batch");
    cr_assert_eq(rs.rows[3].batch, 128u, "weak scaling: 2 threads x 64");
    for (size_t i = 0; i < rs.n; i++) {
        const dpt_bench_row_t *r = &rs.rows[i];
        cr_assert_gt(r->samples_per_second, 0);
        cr_assert(r->min <= r->samples_per_second && r->samples_per_second <= r->max);
        cr_assert_float_eq(r->share_compute + r->share_assembly + r->share_update, 1.0, 0.05);
        cr_assert_gt(r->sgemm_gflops, 0);
        cr_assert_float_eq(r->roofline_ratio, r->gflops_per_thread / r->sgemm_gflops, 1e-9);
        cr_assert_gt(r->peak_rss_mib, 1.0);
    }
    cr_assert_float_eq(rs.rows[0].speedup, 1.0, 1e-12);
    cr_assert_float_eq(rs.rows[0].speedup_min, 1.0, 1e-12);
    cr_assert_float_eq(rs.rows[0].speedup_max, 1.0, 1e-12);
    cr_assert_float_eq(rs.rows[1].efficiency, rs.rows[1].speedup / 2, 1e-12);
    for (size_t i = 0; i < rs.n; i++) /* speed-up: median of same-repetition ratios */
        cr_assert(rs.rows[i].speedup_min <= rs.rows[i].speedup &&
                      rs.rows[i].speedup <= rs.rows[i].speedup_max,
                  "row %zu: %g not in [%g, %g]", i, rs.rows[i].speedup, rs.rows[i].speedup_min,
                  rs.rows[i].speedup_max);
    cr_assert_float_eq(rs.rows[4].speedup, 1.0, 1e-12, "the sweep's base is its first batch");
    cr_assert(isnan(rs.rows[4].efficiency));
    dpt_dataset_free(tr), dpt_dataset_free(te);
}

Test(bench, median_sorts_and_takes_the_middle)
{
    double odd[] = {5, 1, 4, 2, 3}, even[] = {9, 1, 3, 7}, one[] = {2.5};
    cr_assert_float_eq(dpt_bench_median(odd, 5), 3.0, 0);
    cr_assert(odd[0] == 1 && odd[4] == 5, "sorted in place: ends are min and max");
    cr_assert_float_eq(dpt_bench_median(even, 4), 5.0, 0);
    cr_assert(even[0] == 1 && even[3] == 9);
    cr_assert_float_eq(dpt_bench_median(one, 1), 2.5, 0);
}

Test(bench, batch_larger_than_data_is_refused)
{
    dpt_dataset_t *tr, *te;
    cr_assert_eq(dpt_dataset_open("synthetic:100", NULL, &tr, &te), DPT_OK);
    dpt_bench_config_t c = dpt_bench_config_default();
    cr_assert_eq(dpt_bench_run(&c, tr, collect, NULL), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "needs at least that many samples"), "%s", dpt_last_error());
    dpt_dataset_free(tr), dpt_dataset_free(te);
}

/* The size check covers the modes that run, not the defaults of the others. */
Test(bench, batch_check_ignores_modes_that_do_not_run, .timeout = 60)
{
    dpt_dataset_t *tr, *te;
    cr_assert_eq(dpt_dataset_open("synthetic:300", NULL, &tr, &te), DPT_OK);
    dpt_bench_config_t c = dpt_bench_config_default(); /* sweep up to 2048, weak 128/thread */
    c.strong = 1, c.weak = 0, c.sweep = 0;
    c.strong_batch = 256, c.threads[0] = 1, c.n_threads = 1;
    c.reps = 1, c.steps = 1, c.warmup = 0;
    rows_t rows = {0};
    cr_assert_eq(dpt_bench_run(&c, tr, collect, &rows), DPT_OK, "%s", dpt_last_error());
    cr_assert_eq(rows.n, 1u);
    c.threads[0] = 2; /* no 1-thread row: no base for the speed-up */
    rows.n = 0;
    cr_assert_eq(dpt_bench_run(&c, tr, collect, &rows), DPT_OK, "%s", dpt_last_error());
    cr_assert(isnan(rows.rows[0].speedup) && isnan(rows.rows[0].speedup_min));
    cr_assert(isnan(rows.rows[0].efficiency));
    c.strong_batch = 512; /* the mode that runs is still checked */
    cr_assert_eq(dpt_bench_run(&c, tr, collect, &rows), DPT_ERR_INVALID_ARG);
    cr_assert(strstr(dpt_last_error(), "a batch of 512 needs"), "%s", dpt_last_error());
    dpt_dataset_free(tr), dpt_dataset_free(te);
}

Test(bench, sgemm_roofline_is_positive)
{
    cr_assert_gt(dpt_bench_sgemm_gflops(64, 64, 64, 3), 0.1);
}

Test(bench_cli, writes_csv_and_rejects_bad_mode, .timeout = 120)
{
    char *dir = t_make_tmpdir("bench");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s bench --synthetic 2048 --model dense:16,relu,dense:10 --threads 1,2 "
             "--batches 64,128 --batch 128 --reps 2 --steps 3 --warmup 1 --out %s > %s/log 2>&1",
             t_dptrain_bin(), dir, dir);
    cr_assert_eq(t_system(cmd), 0);
    char *csv_path = t_path(dir, "bench.csv");
    char *csv = t_read_file(csv_path, NULL);
    cr_assert(strncmp(csv, "mode,threads,batch,team,samples_per_second,", 43) == 0, "%s", csv);
    int lines = 0;
    for (char *c = csv; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 7, "header + 2 strong + 2 weak + 2 batch rows:\n%s", csv);
    snprintf(cmd, sizeof cmd, "%s bench --modes fast > %s/log2 2>&1", t_dptrain_bin(), dir);
    cr_assert_eq(t_system(cmd), 2);
    char *log = t_path(dir, "log2");
    char *text = t_read_file(log, NULL);
    cr_assert(strstr(text, "unknown mode 'fast'; valid modes: strong, weak, batch"), "%s", text);
    free(csv), free(csv_path), free(log), free(text), free(dir);
}

/* More threads than cores still run, under a note that the rows measure the scheduler. */
Test(bench_cli, oversubscription_is_noted_only_past_the_core_count, .timeout = 120)
{
    char *dir = t_make_tmpdir("bench_over");
    int cores = omp_get_num_procs();
    const struct {
        int threads;
        bool noted;
    } cases[] = {{cores, false}, {cores + 1, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "%s bench --synthetic 1024 --model dense:16,relu,dense:10 --threads 1,%d "
                 "--modes strong --batch 128 --reps 1 --steps 2 --warmup 1 --out %s > %s/log "
                 "2>&1",
                 t_dptrain_bin(), cases[i].threads, dir, dir);
        cr_assert_eq(t_system(cmd), 0);
        char *log = t_path(dir, "log");
        char *text = t_read_file(log, NULL);
        char want[128];
        snprintf(want, sizeof want, "# note: up to %d threads on %d cores", cases[i].threads,
                 cores);
        cr_assert_eq(strstr(text, want) != NULL, cases[i].noted, "%d threads:\n%s",
                     cases[i].threads, text);
        free(log), free(text);
    }
    free(dir);
}
