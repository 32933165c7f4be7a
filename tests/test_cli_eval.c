/* End-to-end tests of dptrain eval and predict on a model trained by the test. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "support.h"

static char *dir, *csv;

static int run(const char *args, char **out)
{
    char cmd[8192], *log = t_path(dir, "log");
    snprintf(cmd, sizeof cmd, "cd %s && %s %s > %s 2>&1", dir, t_dptrain_bin(), args, log);
    int rc = t_system(cmd);
    *out = t_read_file(log, NULL);
    free(log);
    return rc;
}

static void write_table(const char *path, int features)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    dpt_rng_t r;
    dpt_rng_seed(&r, 8, 0);
    for (int i = 0; i < 300; i++) {
        double s = 0;
        for (int j = 0; j < features; j++) {
            double x = dpt_rng_uniform(&r);
            s += j % 2 ? x : -x;
            fprintf(f, "%.5f,", x);
        }
        fprintf(f, "%d\n", s > 0);
    }
    fclose(f);
}

static void setup(void)
{
    dir = t_make_tmpdir("eval");
    csv = t_path(dir, "t.csv");
    write_table(csv, 4);
    char args[4096], *out;
    snprintf(args, sizeof args,
             "train --data csv:%s --val-split 0.2 --model dense:8,relu,dense:2 --epochs 3 "
             "--batch-size 16 --quiet --out run",
             csv);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    free(out);
}

TestSuite(eval, .init = setup, .timeout = 60);

Test(eval, prints_accuracy_and_writes_confusion)
{
    char args[4096], *out;
    snprintf(args, sizeof args, "eval --checkpoint run/checkpoint.dpt --data csv:%s --out cm.csv",
             csv);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    double acc = -1;
    char *line = strstr(out, "accuracy = ");
    cr_assert_not_null(line, "%s", out);
    sscanf(line, "accuracy = %lf", &acc);
    cr_assert(acc > 0.5 && acc <= 1.0, "%s", out);
    cr_assert(strstr(out, "class 1 accuracy = "), "%s", out);
    char *p = t_path(dir, "cm.csv");
    char *cm = t_read_file(p, NULL);
    unsigned a, b, c, d;
    cr_assert_eq(sscanf(cm, "true_class,predicted_0,predicted_1\n0,%u,%u\n1,%u,%u", &a, &b, &c, &d),
                 4, "%s", cm);
    cr_assert_eq(a + b + c + d, 300u, "confusion counts every sample once");
    cr_assert_float_eq((double)(a + d) / 300, acc, 1e-6);
    free(out), free(p), free(cm);
}

Test(eval, predict_rows_are_probabilities)
{
    char args[4096], *out;
    snprintf(args, sizeof args,
             "predict --checkpoint run/best.dpt --data csv:%s --out p.csv --threads 2", csv);
    cr_assert_eq(run(args, &out), 0, "%s", out);
    char *p = t_path(dir, "p.csv");
    char *text = t_read_file(p, NULL);
    cr_assert(strncmp(text, "index,predicted,prob_0,prob_1\n", 30) == 0, "%s", text);
    int rows = 0;
    for (char *l = strchr(text, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        unsigned idx, pred;
        double p0, p1;
        cr_assert_eq(sscanf(l, "%u,%u,%lf,%lf", &idx, &pred, &p0, &p1), 4);
        cr_assert_eq(idx, (unsigned)rows);
        cr_assert_float_eq(p0 + p1, 1.0, 1e-5);
        cr_assert_eq(pred, p1 > p0 ? 1u : 0u);
        rows++;
    }
    cr_assert_eq(rows, 300);
    free(out), free(p), free(text);
}

Test(eval, errors_are_clear)
{
    char args[4096], *out;
    cr_assert_eq(run("eval --data fashion-mnist", &out), 2);
    cr_assert(strstr(out, "--checkpoint FILE is required"), "%s", out);
    free(out);
    char *other = t_path(dir, "wide.csv");
    write_table(other, 6);
    snprintf(args, sizeof args, "eval --checkpoint run/checkpoint.dpt --data csv:%s", other);
    cr_assert_eq(run(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "does not fit the checkpoint's model (4 inputs"), "%s", out);
    free(out);
    snprintf(args, sizeof args,
             "predict --checkpoint run/checkpoint.dpt --data csv:%s --split test", csv);
    cr_assert_eq(run(args, &out), 2, "%s", out);
    cr_assert(strstr(out, "has no test split"), "%s", out);
    free(out);
    /* A corrupted checkpoint is refused by its hash. */
    char *ck = t_path(dir, "run/checkpoint.dpt");
    size_t n;
    char *bytes = t_read_file(ck, &n);
    bytes[n / 2] ^= 0x40;
    char *bad = t_path(dir, "bad.dpt");
    t_write_file(bad, bytes, n, 0);
    snprintf(args, sizeof args, "eval --checkpoint bad.dpt --data csv:%s", csv);
    cr_assert_eq(run(args, &out), 3, "%s", out);
    free(out), free(other), free(ck), free(bytes), free(bad);
}
