/* Owns `dptrain schedule`: previews a learning-rate schedule as CSV (one row per optimizer
 * step) and optionally draws it with gnuplot, without building a model or reading data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dptrain/plot.h"
#include "dptrain/schedule.h"
#include "core/fmt.h"

#define CMD "schedule"
/* The CSV is written in full; a longer curve than this is a mistake, not a preview. */
#define MAX_ROWS 100000000ULL
/* gnuplot gets at most this many points; a PNG cannot show more anyway. */
#define MAX_PLOT_POINTS 200000ULL

typedef struct opts {
    double lr;
    const char *spec, *warmup, *out, *plot;
    size_t epochs, steps_per_epoch;
    int have_lr, have_epochs, have_steps;
} opts_t;

static void print_help(FILE *f)
{
    static char schedules[8192];
    dpt_schedule_help(schedules, sizeof schedules);
    fprintf(f,
            "usage: dptrain schedule --lr LR [--lr-schedule SPEC] [--warmup SPEC]\n"
            "                        --epochs E --steps-per-epoch S [--out FILE.csv] "
            "[--plot FILE.png]\n\n"
            "Prints the learning rate (and momentum, for schedules that cycle it) of every\n"
            "optimizer step as CSV with header step,epoch,lr,momentum, without training.\n"
            "epoch is the 0-based epoch the step belongs to (step / steps-per-epoch); momentum\n"
            "is empty when the schedule does not drive it.\n\n"
            "flags:\n"
            "  --lr LR               base learning rate (> 0), as for dptrain train\n"
            "  --lr-schedule SPEC    NAME:key=value,... (default constant); MAIN+plateau:...\n"
            "                        adds plateau reductions to a main schedule\n"
            "  --warmup SPEC         linear:steps=N[,start_factor=F] or constant:steps=N"
            "[,factor=F]\n"
            "  --epochs E            number of epochs (>= 1)\n"
            "  --steps-per-epoch S   optimizer steps per epoch (>= 1)\n"
            "  --out FILE.csv        write the CSV there instead of stdout\n"
            "  --plot FILE.png       also draw the curve with gnuplot (needs gnuplot on PATH)\n"
            "  --help                this text\n\n"
            "Plateau reductions depend on validation metrics, so a preview shows the curve\n"
            "with no reductions. Formulas: docs/schedules.md.\n\n%s"
            "\nexample:\n  dptrain schedule --lr 0.1 --lr-schedule cosine:T_max=10 "
            "--warmup linear:steps=200 --epochs 10 --steps-per-epoch 100 --out lr.csv\n",
            schedules);
}

/* Returns -1 to go on, else the exit code (help printed or a usage error). */
static int parse_flag(opts_t *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        print_help(stdout);
        return 0;
    }
    const char *const known[] = {
        "--lr", "--lr-schedule", "--warmup", "--epochs", "--steps-per-epoch", "--out", "--plot"};
    size_t k = 0, n = sizeof known / sizeof known[0];
    while (k < n && strcmp(a, known[k]))
        k++;
    if (k == n) return dpt_cli_usage_error(CMD, "unknown flag '%s'", a);
    if (!(v = dpt_cli_value(CMD, argc, argv, i))) return DPT_EXIT_USAGE;
    int ok = 1;
    switch (k) {
    case 0:
        ok = dpt_cli_parse_double(CMD, a, v, 0, 1e300, &o->lr), o->have_lr = 1;
        break;
    case 1:
        o->spec = v;
        break;
    case 2:
        o->warmup = v;
        break;
    case 3:
        ok = dpt_cli_parse_size(CMD, a, v, 1, 100000000, &o->epochs), o->have_epochs = 1;
        break;
    case 4:
        ok = dpt_cli_parse_size(CMD, a, v, 1, 100000000, &o->steps_per_epoch);
        o->have_steps = 1;
        break;
    case 5:
        o->out = v;
        break;
    default:
        o->plot = v;
        break;
    }
    return ok ? -1 : DPT_EXIT_USAGE;
}

static int parse_args(opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        int rc = parse_flag(o, argc, argv, &i);
        if (rc >= 0) return rc;
    }
    if (!o->have_lr) return dpt_cli_usage_error(CMD, "--lr is required");
    if (!o->have_epochs) return dpt_cli_usage_error(CMD, "--epochs is required");
    if (!o->have_steps) return dpt_cli_usage_error(CMD, "--steps-per-epoch is required");
    if ((unsigned long long)o->epochs * o->steps_per_epoch > MAX_ROWS)
        return dpt_cli_usage_error(CMD, "epochs * steps-per-epoch exceeds %llu rows", MAX_ROWS);
    return -1;
}

static void write_row(FILE *f, const dpt_schedule_t *s, const opts_t *o, uint64_t step)
{
    double m;
    fprintf(f, "%llu,%llu,", (unsigned long long)step,
            (unsigned long long)(step / o->steps_per_epoch));
    dpt_fprint_double(f, dpt_schedule_lr(s, step, NULL));
    fputc(',', f);
    if (dpt_schedule_momentum(s, step, &m)) dpt_fprint_double(f, m);
    fputc('\n', f);
}

static dpt_status_t write_csv(const dpt_schedule_t *s, const opts_t *o)
{
    FILE *f = o->out ? fopen(o->out, "w") : stdout;
    if (!f)
        return dpt_error(DPT_ERR_IO, "%s: cannot open for writing: %s", o->out, strerror(errno));
    uint64_t rows = (uint64_t)o->epochs * o->steps_per_epoch;
    fprintf(f, "step,epoch,lr,momentum\n");
    for (uint64_t step = 0; step < rows; step++)
        write_row(f, s, o, step);
    int bad = ferror(f);
    bad |= o->out ? fclose(f) != 0 : fflush(f) != 0;
    if (bad)
        return dpt_error(DPT_ERR_IO, "%s: write failed: %s", o->out ? o->out : "stdout",
                         strerror(errno));
    return DPT_OK;
}

/* Inline data block for gnuplot: every stride-th step plus the last. */
static void put_points(FILE *g, const dpt_schedule_t *s, uint64_t rows, int momentum)
{
    uint64_t stride = (rows + MAX_PLOT_POINTS - 1) / MAX_PLOT_POINTS;
    for (uint64_t step = 0; step < rows; step += stride) {
        double v = dpt_schedule_lr(s, step, NULL);
        if (momentum) dpt_schedule_momentum(s, step, &v);
        fprintf(g, "%llu %.17g\n", (unsigned long long)step, v);
        if (step + stride >= rows && step != rows - 1) step = rows - 1 - stride;
    }
    fprintf(g, "e\n");
}

typedef struct {
    const dpt_schedule_t *s;
    const opts_t *o;
} plot_ctx_t;

static void put_plot(FILE *g, void *user)
{
    const dpt_schedule_t *s = ((plot_ctx_t *)user)->s;
    const opts_t *o = ((plot_ctx_t *)user)->o;
    double m;
    int has_m = dpt_schedule_momentum(s, 0, &m);
    uint64_t rows = (uint64_t)o->epochs * o->steps_per_epoch;
    /* The user's own spec makes a short title; the full description would not fit. */
    char title[2 * DPT_SCHEDULE_SPEC_MAX + 64];
    snprintf(title, sizeof title, "%s%s%s, lr %g", o->spec && o->spec[0] ? o->spec : "constant",
             o->warmup && o->warmup[0] ? ", warmup " : "", o->warmup ? o->warmup : "", o->lr);
    fprintf(g, "set title ");
    dpt_gnuplot_put_quoted(g, title);
    fprintf(g, "\nset xlabel 'optimizer step'\nset ylabel 'learning rate'\n"
               "set grid\nset key below\n");
    if (has_m)
        fprintf(g, "set y2label 'momentum'\nset y2tics\nset ytics nomirror\n"
                   "plot '-' with lines lw 2 title 'lr', '-' axes x1y2 with lines title "
                   "'momentum'\n");
    else
        fprintf(g, "plot '-' with lines lw 2 title 'lr'\n");
    put_points(g, s, rows, 0);
    if (has_m) put_points(g, s, rows, 1);
}

static dpt_status_t plot(const dpt_schedule_t *s, const opts_t *o)
{
    plot_ctx_t ctx = {s, o};
    return dpt_gnuplot_draw(o->plot, 600, put_plot, &ctx);
}

int dpt_cmd_schedule(int argc, char **argv)
{
    opts_t o;
    int rc = parse_args(&o, argc, argv);
    if (rc >= 0) return rc;
    dpt_schedule_t *s = NULL;
    dpt_status_t st = dpt_schedule_create(o.spec, o.warmup, o.lr, o.steps_per_epoch, o.epochs, &s);
    if (st == DPT_ERR_INVALID_ARG) return dpt_cli_usage_error(CMD, "%s", dpt_last_error());
    if (st) return dpt_cli_fail(st);
    if (dpt_schedule_uses_plateau(s, NULL))
        fprintf(stderr, "dptrain schedule: note: plateau reductions depend on validation "
                        "metrics; the preview shows the curve with no reductions\n");
    st = write_csv(s, &o);
    if (!st && o.plot) st = plot(s, &o);
    dpt_schedule_free(s);
    return st ? dpt_cli_fail(st) : 0;
}
