/* dptrain lr-find: flags -> data, model and trainer config -> dpt_lr_find; prints the
 * suggested learning rates and writes the curve (CSV) and its plot (PNG) on request. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "dptrain/lr_find.h"

static const char *const usage =
    "usage: dptrain lr-find [FLAGS]\n"
    "Learning-rate range test: trains a fresh model one step per learning rate on an\n"
    "exponential sweep lr_i = start*(end/start)^(i/(steps-1)), smooths the loss (debiased EMA,\n"
    "beta 0.98), stops once the smoothed loss exceeds 4x its best, and suggests learning\n"
    "rates: valley (fastai's heuristic, what 'train --lr auto' uses), steepest descent and\n"
    "minimum/10. See docs/optimizers.md.\n\n"
    "  --data SPEC           fashion-mnist (default) | mnist:DIR | idx:IMAGES,LABELS |\n"
    "                        cifar10:DIR | csv:FILE\n"
    "  --val-split F         hold out fraction F of the training data (as train does)\n"
    "  --csv-label-column N  CSV label column, 0-based, -1 = last (default -1)\n"
    "  --csv-header          the CSV's first row is a header\n"
    "  --csv-delimiter C     CSV field delimiter (default ',')\n"
    "  --model SPEC          layers or preset; 'help' lists them (default " DPT_DEFAULT_MODEL ")\n"
    "  --optimizer SPEC      NAME:key=value,... (default sgd:momentum=0.9)\n"
    "  --batch-size N        global minibatch (default 128)\n"
    "  --micro-batch N       rows per micro-shard (default 0 = auto, as train)\n"
    "  --clip-grad-norm MAX  clip the gradient's global 2-norm at MAX (default 0 = off)\n"
    "  --threads N           worker threads (default 0 = all cores)\n"
    "  --seed N              seed for initialisation and order (default 1)\n"
    "  --start F             first learning rate (default 1e-7)\n"
    "  --end F               last learning rate (default 10)\n"
    "  --steps N             planned steps (default 100)\n"
    "  --out FILE.csv        write lr,loss,smoothed_loss per step\n"
    "  --plot FILE.png       draw the curve with the suggestions (needs gnuplot)\n"
    "  --help                this text\n";

typedef struct {
    const char *data_spec, *model_spec, *optimizer_spec, *out_csv, *out_png;
    dpt_data_options_t data;
    double val_split;
    dpt_trainer_config_t trainer;
    dpt_lr_find_config_t sweep;
} lr_find_args_t;

/* Returns -1 when parsing succeeded, else the exit code. */
static int parse_flags(lr_find_args_t *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        int data = dpt_cli_data_flag("lr-find", argc, argv, &i, &a->data_spec, &a->data);
        if (data < 0) return DPT_EXIT_USAGE;
        if (data) continue;
        if (strncmp(f, "--", 2) != 0)
            return dpt_cli_usage_error("lr-find", "unexpected argument '%s'", f);
        if (!(v = dpt_cli_value("lr-find", argc, argv, &i))) return DPT_EXIT_USAGE;
        bool ok = true;
        if (!strcmp(f, "--model") && !strcmp(v, "help")) return dpt_cli_model_help();
        if (!strcmp(f, "--model"))
            a->model_spec = v;
        else if (!strcmp(f, "--optimizer"))
            a->optimizer_spec = v;
        else if (!strcmp(f, "--out"))
            a->out_csv = v;
        else if (!strcmp(f, "--plot"))
            a->out_png = v;
        else if (!strcmp(f, "--val-split"))
            ok = dpt_cli_parse_double("lr-find", f, v, 0.0, 0.99, &a->val_split);
        else if (!strcmp(f, "--batch-size"))
            ok = dpt_cli_parse_size("lr-find", f, v, 1, 1u << 20, &a->trainer.batch_size);
        else if (!strcmp(f, "--micro-batch"))
            ok = dpt_cli_parse_size("lr-find", f, v, 0, 65536, &a->trainer.micro_batch);
        else if (!strcmp(f, "--threads"))
            ok = dpt_cli_parse_size("lr-find", f, v, 0, 1024, &a->trainer.threads);
        else if (!strcmp(f, "--seed"))
            ok = dpt_cli_parse_u64("lr-find", f, v, &a->trainer.seed);
        else if (!strcmp(f, "--clip-grad-norm"))
            ok = dpt_cli_parse_double("lr-find", f, v, 0, 1e12, &a->trainer.clip_grad_norm);
        else if (!strcmp(f, "--start"))
            ok = dpt_cli_parse_double("lr-find", f, v, 1e-15, 1e6, &a->sweep.start_lr);
        else if (!strcmp(f, "--end"))
            ok = dpt_cli_parse_double("lr-find", f, v, 1e-15, 1e6, &a->sweep.end_lr);
        else if (!strcmp(f, "--steps"))
            ok = dpt_cli_parse_size("lr-find", f, v, 2, 100000, &a->sweep.steps);
        else
            return dpt_cli_usage_error("lr-find", "unknown flag '%s'", f);
        if (!ok) return DPT_EXIT_USAGE;
    }
    if (!(a->sweep.end_lr > a->sweep.start_lr))
        return dpt_cli_usage_error("lr-find", "--end (%g) must be above --start (%g)",
                                   a->sweep.end_lr, a->sweep.start_lr);
    return -1;
}

/* The training part, normalised with its own statistics, as a run would train on. */
static dpt_status_t load_train(const lr_find_args_t *a, dpt_dataset_t **all, dpt_dataset_t **test,
                               dpt_dataset_t **train)
{
    dpt_dataset_t *val = NULL;
    dpt_status_t s = dpt_model_check_early(a->model_spec, a->data_spec);
    if (s == DPT_OK) s = dpt_dataset_open(a->data_spec, &a->data, all, test);
    if (s != DPT_OK) return s;
    *train = *all;
    if (a->val_split > 0) s = dpt_dataset_split(*all, a->val_split, a->trainer.seed, train, &val);
    dpt_dataset_free(val);
    if (s == DPT_OK) s = dpt_dataset_fit_normalization(*train);
    return s;
}

static void print_result(const lr_find_args_t *a, const dpt_lr_find_result_t *r)
{
    printf("lr-find: %zu of %zu steps, lr %.3g to %.3g%s\n", r->n, a->sweep.steps,
           r->n ? r->lr[0] : NAN, r->n ? r->lr[r->n - 1] : NAN,
           r->stopped_early ? " (stopped: smoothed loss diverged)" : "");
    printf("suggested lr: valley %.3g  steepest %.3g  minimum/10 %.3g\n", r->valley, r->steepest,
           r->min_div10);
}

int dpt_cmd_lr_find(int argc, char **argv)
{
    lr_find_args_t a = {.data_spec = "fashion-mnist",
                        .model_spec = DPT_DEFAULT_MODEL,
                        .optimizer_spec = "sgd:momentum=0.9",
                        .data = dpt_data_options_default(),
                        .trainer = dpt_trainer_config_default(),
                        .sweep = dpt_lr_find_config_default()};
    int rc = parse_flags(&a, argc, argv);
    if (rc >= 0) return rc;
    dpt_dataset_t *all = NULL, *test = NULL, *train = NULL;
    dpt_model_t *model = NULL;
    dpt_lr_find_result_t res = {0};
    dpt_status_t s = load_train(&a, &all, &test, &train);
    if (s == DPT_OK)
        s = dpt_model_create_for_data(a.model_spec, train, dpt_dataset_classes(all), &model);
    if (s == DPT_OK) s = dpt_lr_find(model, a.optimizer_spec, &a.trainer, train, &a.sweep, &res);
    if (s == DPT_OK && a.out_csv) s = dpt_lr_find_write_csv(&res, a.out_csv);
    if (s == DPT_OK && a.out_png) s = dpt_lr_find_plot(&res, a.out_png);
    if (s == DPT_OK) print_result(&a, &res);
    dpt_lr_find_result_free(&res);
    dpt_model_free(model);
    if (train != all) dpt_dataset_free(train);
    dpt_dataset_free(test);
    dpt_dataset_free(all);
    return s == DPT_OK ? 0 : dpt_cli_fail(s);
}
