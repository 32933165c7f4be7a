/* Owns the dptrain command line: dispatch to subcommands and top-level help. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/gemm.h"
#include "parallel/world.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand_t;

static const subcommand_t subcommands[] = {
    {"train", dpt_cmd_train, "train a model on a dataset, write metrics.csv and checkpoints"},
    {"eval", dpt_cmd_eval, "evaluate a checkpoint on a dataset (loss, accuracy, confusion)"},
    {"predict", dpt_cmd_predict, "write class predictions of a checkpoint to CSV"},
    {"schedule", dpt_cmd_schedule, "preview a learning-rate schedule as CSV, without training"},
    {"lr-find", dpt_cmd_lr_find, "learning-rate range test"},
    {"bench", dpt_cmd_bench, "thread and batch scaling benchmarks"},
    {"info", dpt_cmd_info, "version, BLIS kernel set, threads, CPU features; --checkpoint F"},
    {"augment", dpt_cmd_augment, "draw a PNG grid of augmented training images (--augment SPEC)"},
    {"plot", dpt_cmd_plot, "draw loss, accuracy and LR of a run directory with gnuplot"},
    {"sweep", dpt_cmd_sweep, "search rates, schedules, optimizers: trials, halving, ranking"},
};

static void print_help(FILE *f)
{
    fprintf(f,
            "usage: dptrain COMMAND [FLAGS]   (dptrain COMMAND --help for its flags)\n\n"
            "CPU data-parallel neural-network trainer, version %s.\n\ncommands:\n",
            DPT_VERSION);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 internal error, 2 usage or invalid argument, 3 malformed "
               "input file,\n  4 I/O error, 5 memory or size limit, 6 not available, 7 training "
               "diverged (docs/errors.md)\n");
}

/* `train` joins the job when an MPI launcher started it (src/parallel/world.h). Every rank
 * ends together: on success, or on a collective end (a stop agreed by all, a refusal all
 * ranks share) each leaves MPI normally with the same code; any other failure is this rank's
 * alone, and the whole job is aborted with its exit code rather than left waiting. */
static int run_in_world(const subcommand_t *sub, int argc, char **argv)
{
    dpt_status_t s = dpt_world_init(&argc, &argv);
    if (s != DPT_OK) {
        int rc = dpt_cli_fail(s);
        dpt_world_abort(rc);
        return rc;
    }
    int rc = sub->run(argc - 1, argv + 1);
    if (dpt_world_size() > 1 && rc != 0 && !dpt_world_shared_error()) {
        fflush(stdout);
        fflush(stderr);
        dpt_world_abort(rc);
    }
    dpt_world_finalize();
    return rc;
}

int main(int argc, char **argv)
{
    /* The BLIS probe forks: do it before anything is allocated (src/kernels/gemm.h). */
    dpt_gemm_probe();
    if (argc < 2) {
        print_help(stderr);
        return DPT_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("dptrain %s\n", DPT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].run == dpt_cmd_train ? run_in_world(&subcommands[i], argc, argv)
                                                       : subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dptrain: unknown command '%s'; valid commands:", argv[1]);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(stderr, " %s", subcommands[i].name);
    fprintf(stderr, "\n");
    return DPT_EXIT_USAGE;
}
