/* dptrain plot: draws a run directory's metrics.csv into a PNG with gnuplot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dptrain/plot.h"

static void print_help(FILE *f)
{
    fprintf(f, "usage: dptrain plot RUN_DIR [--out FILE.png]\n\n"
               "Draws loss, accuracy and learning rate against epoch from RUN_DIR/metrics.csv\n"
               "(columns epoch, train_loss, val_loss, train_accuracy, val_accuracy, lr; any of\n"
               "the last five may be missing or empty) into a three-panel PNG, using gnuplot.\n\n"
               "flags:\n"
               "  --out FILE.png   where to write the image (default RUN_DIR/metrics.png)\n"
               "  -h, --help       show this help\n\n"
               "exit codes: 0 ok, 2 usage, 3 malformed metrics.csv, 4 metrics.csv unreadable or\n"
               "  PNG not writable, 6 gnuplot not installed (apt-get install gnuplot-nox)\n");
}

int dpt_cmd_plot(int argc, char **argv)
{
    const char *cmd = "plot", *run_dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out")) {
            if (!(out = dpt_cli_value(cmd, argc, argv, &i))) return DPT_EXIT_USAGE;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return dpt_cli_usage_error(cmd, "unknown flag '%s'", argv[i]);
        } else if (run_dir) {
            return dpt_cli_usage_error(cmd, "one RUN_DIR expected, got '%s' and '%s'", run_dir,
                                       argv[i]);
        } else {
            run_dir = argv[i];
        }
    }
    if (!run_dir) return dpt_cli_usage_error(cmd, "RUN_DIR is required");
    size_t n = strlen(run_dir) + 32;
    char *csv = malloc(n), *png = malloc(n);
    if (!csv || !png) {
        free(csv);
        free(png);
        return dpt_cli_fail(dpt_error(DPT_ERR_NOMEM, "out of memory"));
    }
    snprintf(csv, n, "%s/metrics.csv", run_dir);
    snprintf(png, n, "%s/metrics.png", run_dir);
    if (!out) out = png;
    dpt_status_t s = dpt_plot_metrics(csv, out);
    if (s == DPT_OK) printf("wrote %s\n", out);
    free(csv);
    free(png);
    return s == DPT_OK ? 0 : dpt_cli_fail(s);
}
