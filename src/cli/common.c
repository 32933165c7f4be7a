/* Owns the flag-parsing and error-reporting helpers shared by all subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dptrain/model.h"
#include "parallel/world.h"

int dpt_cli_fail(dpt_status_t s)
{
    const char *msg = dpt_last_error();
    /* Across processes: an error every rank shares is said once, by rank 0; one rank's own
     * error names the rank. */
    if (dpt_world_size() > 1 && dpt_world_shared_error() && dpt_world_rank() != 0)
        return dpt_status_exit_code(s);
    char who[32] = "";
    if (dpt_world_size() > 1 && !dpt_world_shared_error())
        snprintf(who, sizeof who, "rank %zu: ", dpt_world_rank());
    fprintf(stderr, "dptrain: error: %s%s\n", who, msg[0] ? msg : dpt_status_str(s));
    return dpt_status_exit_code(s);
}

int dpt_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "dptrain %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'dptrain %s --help')\n", cmd);
    return DPT_EXIT_USAGE;
}

bool dpt_cli_parse_size(const char *cmd, const char *flag, const char *text, size_t min, size_t max,
                        size_t *out)
{
    char *end;
    errno = 0;
    if (text[0] == '-' || text[0] == '\0') goto bad;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < min || v > max) goto bad;
    *out = (size_t)v;
    return true;
bad:
    dpt_cli_usage_error(cmd, "%s expects an integer in [%zu, %zu], got '%s'", flag, min, max, text);
    return false;
}

bool dpt_cli_parse_u64(const char *cmd, const char *flag, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (text[0] == '-' || text[0] == '\0') goto bad;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end) goto bad;
    *out = (uint64_t)v;
    return true;
bad:
    dpt_cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", flag, text);
    return false;
}

bool dpt_cli_parse_double(const char *cmd, const char *flag, const char *text, double min,
                          double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (text[0] == '\0' || errno || *end || !isfinite(v) || v < min || v > max) {
        dpt_cli_usage_error(cmd, "%s expects a number in [%g, %g], got '%s'", flag, min, max, text);
        return false;
    }
    *out = v;
    return true;
}

const char *dpt_cli_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        dpt_cli_usage_error(cmd, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int dpt_cli_data_flag(const char *cmd, int argc, char **argv, int *i, const char **spec,
                      dpt_data_options_t *opt)
{
    const char *f = argv[*i], *v;
    if (!strcmp(f, "--csv-header")) {
        opt->csv_header = 1;
        return 1;
    }
    if (strcmp(f, "--data") && strcmp(f, "--csv-label-column") && strcmp(f, "--csv-delimiter"))
        return 0;
    if (!(v = dpt_cli_value(cmd, argc, argv, i))) return -1;
    if (!strcmp(f, "--data")) {
        *spec = v;
    } else if (!strcmp(f, "--csv-label-column")) {
        double d = 0;
        if (!dpt_cli_parse_double(cmd, f, v, -1, 1e6, &d)) return -1;
        if (d != (double)(int)d) {
            dpt_cli_usage_error(cmd, "%s expects an integer, got '%s'", f, v);
            return -1;
        }
        opt->csv_label_column = (int)d;
    } else {
        if (strlen(v) != 1) {
            dpt_cli_usage_error(cmd, "--csv-delimiter takes one character");
            return -1;
        }
        opt->csv_delimiter = v[0];
    }
    return 1;
}

int dpt_cli_model_help(void)
{
    printf("--model SPEC: comma-separated layers, residual groups and presets "
           "(docs/models.md)\n"
           "  dense:N[:torch|:he|:xavier][:bias=0]   fully connected (a spatial input is "
           "flattened)\n"
           "  conv:OUT:K[:stride=S][:pad=P][:bias=0][:groups=G][:algo=A][:init=I]   KxK "
           "convolution, 'same' padding by default; algo: auto, im2col, winograd\n"
           "  init: torch (default; PyTorch's U(+-1/sqrt(fan_in)) weights and biases), he "
           "(He normal), xavier (Glorot uniform); he and xavier start biases at 0\n"
           "  maxpool:K / avgpool:K[:stride=S][:pad=P]   pooling (stride K by default)\n"
           "  gap | flatten | bn[:eps=E][:momentum=M] | relu | tanh | sigmoid | gelu | "
           "dropout:P\n"
           "  zpad:C[:stride=S]   subsample and zero-pad channels (ResNet option-A shortcut)\n"
           "  res(MAIN[|SHORTCUT])   MAIN (layers) added to SHORTCUT (layers; default: the "
           "input itself)\n"
           "  example: conv:16:3,bn,relu,res(conv:16:3,bn,relu,conv:16:3,bn),relu,gap,dense:10\n\n"
           "presets (10 classes)  params      MFLOP/sample 1x28x28   MFLOP/sample 3x32x32\n");
    for (size_t i = 0; i < dpt_model_preset_count(); i++) {
        const dpt_shape_t shapes[2] = {{1, 28, 28}, {3, 32, 32}};
        double flops[2] = {0, 0};
        size_t params = 0;
        for (int k = 0; k < 2; k++) {
            dpt_model_t *m;
            if (dpt_model_create_shaped(dpt_model_preset_name(i), shapes[k], 10, &m) != DPT_OK)
                continue;
            flops[k] = dpt_model_forward_flops(m) / 1e6;
            params = dpt_model_weight_count(m); /* of the 3x32x32 build */
            dpt_model_free(m);
        }
        printf("  %-10s %12zu %12.1f %24.1f    %s\n", dpt_model_preset_name(i), params, flops[0],
               flops[1], dpt_model_preset_about(i));
    }
    return 0;
}
