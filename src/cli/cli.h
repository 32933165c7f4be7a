/* Shared pieces of the dptrain command-line program: subcommand entry points and the
 * small helpers every subcommand uses to parse flags and report errors. */
#ifndef DPT_CLI_H
#define DPT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dptrain/dataset.h"
#include "dptrain/run.h"
#include "dptrain/status.h"

/* Exit code for command-line usage errors (unknown flag, missing value). */
#define DPT_EXIT_USAGE 2

/* Each subcommand gets argv with argv[0] = its own name. Returns the process exit code. */
int dpt_cmd_train(int argc, char **argv);
int dpt_cmd_eval(int argc, char **argv);
int dpt_cmd_predict(int argc, char **argv);
int dpt_cmd_schedule(int argc, char **argv);
int dpt_cmd_lr_find(int argc, char **argv);
int dpt_cmd_bench(int argc, char **argv);
int dpt_cmd_info(int argc, char **argv);
int dpt_cmd_plot(int argc, char **argv);
int dpt_cmd_sweep(int argc, char **argv);
int dpt_cmd_augment(int argc, char **argv);

/* Prints "dptrain: error: <last error>" on stderr and returns the exit code for s. */
int dpt_cli_fail(dpt_status_t s);
/* Prints "dptrain CMD: <msg>" plus a hint to use --help, returns DPT_EXIT_USAGE. */
int dpt_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Flag value parsers: false (with a usage message printed) on a malformed or out-of-range
 * value. `flag` is used in the message. */
bool dpt_cli_parse_size(const char *cmd, const char *flag, const char *text, size_t min, size_t max,
                        size_t *out);
bool dpt_cli_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t *out);
bool dpt_cli_parse_double(const char *cmd, const char *flag, const char *text, double min,
                          double max, double *out);

/* For a flag at argv[*i] that needs a value: returns argv[*i + 1] and advances *i, or prints
 * a usage error and returns NULL when the value is missing. */
const char *dpt_cli_value(const char *cmd, int argc, char **argv, int *i);

/* The dataset flags every command that reads data shares: --data SPEC, --csv-header,
 * --csv-label-column N, --csv-delimiter C. For the flag at argv[*i]: 1 when it was one of
 * them (applied, *i advanced past its value), 0 when it is not, -1 after a usage error was
 * reported. */
int dpt_cli_data_flag(const char *cmd, int argc, char **argv, int *i, const char **spec,
                      dpt_data_options_t *opt);

/* train's flag parser (cmd_train.c), for sweep: parses argv[start..argc) onto *cfg, which
 * holds the defaults. Returns -1 on success, else the exit code after printing the usage
 * error (0 after --help); --resume is refused (a sweep's trials are new runs). */
int dpt_cli_train_flags(int argc, char **argv, int start, dpt_run_config_t *cfg);

/* `--model help`: the layer grammar and the presets with their parameter counts and FLOPs
 * (computed, for 1x28x28 and 3x32x32 inputs). Returns exit code 0. */
int dpt_cli_model_help(void);

#endif
