/* dptrain info: version, BLIS version and kernel set in use, OpenMP threads, CPU features;
 * with --checkpoint F, what a checkpoint holds. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "dptrain/checkpoint.h"
#include "dptrain/model.h"
#include "kernels/gemm.h"

static const char *const usage =
    "usage: dptrain info [--checkpoint FILE] [--model SPEC [--input CxHxW] [--classes K]\n"
    "                    [--rows N]]\n"
    "Prints the dptrain version, the BLIS version and kernel set in use (and why it was\n"
    "chosen), OpenMP threads and the CPU features that matter for the kernels.\n"
    "  --checkpoint FILE   verify a checkpoint (SHA-256) and list what it holds\n"
    "  --model SPEC        print the model's nodes (output shape, parameters, FLOPs) and the\n"
    "                      memory one worker replica needs for --rows samples (default 16,\n"
    "                      the auto micro-batch of image networks at batch 128);\n"
    "                      --input is the sample shape (default 1x28x28), --classes the\n"
    "                      classes (default 10), and the BLIS kernel set this model\n"
    "                      runs with; 'help' lists the grammar and presets\n"
    "  --help              this text\n";

static int show_checkpoint(const char *path)
{
    dpt_checkpoint_t *ck;
    dpt_status_t s = dpt_checkpoint_read(path, &ck);
    if (s != DPT_OK) return dpt_cli_fail(s);
    dpt_checkpoint_print_summary(stdout, path, ck);
    dpt_checkpoint_free(ck);
    return 0;
}

static void print_cpu_features(void)
{
    static const char *const feats[] = {"sse4.2",   "avx",      "avx2",     "fma",     "avx512f",
                                        "avx512dq", "avx512cd", "avx512bw", "avx512vl"};
    __builtin_cpu_init();
    printf("cpu_features =");
    /* __builtin_cpu_supports needs literal names, hence the explicit list. */
    int has[] = {__builtin_cpu_supports("sse4.2"),   __builtin_cpu_supports("avx"),
                 __builtin_cpu_supports("avx2"),     __builtin_cpu_supports("fma"),
                 __builtin_cpu_supports("avx512f"),  __builtin_cpu_supports("avx512dq"),
                 __builtin_cpu_supports("avx512cd"), __builtin_cpu_supports("avx512bw"),
                 __builtin_cpu_supports("avx512vl")};
    for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++)
        if (has[i]) printf(" %s", feats[i]);
    printf("\n");
}

/* --model SPEC with its shape flags: the node table and a replica's memory. */
static int show_model(const char *spec, const char *input, size_t classes, size_t rows)
{
    if (!strcmp(spec, "help")) return dpt_cli_model_help();
    unsigned long long c, h, w;
    char tail;
    if (sscanf(input, "%llux%llux%llu%c", &c, &h, &w, &tail) != 3 || !c || !h || !w || c > 65536 ||
        h > 65536 || w > 65536)
        return dpt_cli_usage_error("info", "--input must be CxHxW, e.g. 3x32x32, got '%s'", input);
    dpt_model_t *m;
    dpt_status_t s =
        dpt_model_create_shaped(spec, (dpt_shape_t){(size_t)c, (size_t)h, (size_t)w}, classes, &m);
    if (s != DPT_OK) return dpt_cli_fail(s);
    printf("model = %s\n", dpt_model_describe(m));
    dpt_model_print_summary(m, stdout);
    printf("replica_memory = %.1f MiB for %zu rows (activations, their gradients, saved "
           "values, workspace; one per worker thread)\n",
           (double)dpt_model_replica_bytes(m, rows) / 1048576.0, rows);
    printf("workspace = %.2f MiB of it (the convolutions' lowered blocks; bounded whatever "
           "the rows)\n",
           (double)dpt_model_workspace_bytes(m, rows) / 1048576.0);
    printf("parameter_buffer = %.1f MiB (%zu floats with state and alignment)\n",
           (double)dpt_model_param_count(m) * 4.0 / 1048576.0, dpt_model_param_count(m));
    /* The set this model trains and evaluates with: the choice depends on its products. */
    const double narrow = dpt_model_narrow_gemm_share(m);
    dpt_gemm_init_narrow(narrow);
    printf("narrow_gemm_share = %.3f (of the GEMM FLOPs, in products with min(M, N, K) < 64)\n",
           narrow);
    printf("blis_kernel_set = %s (%s)\n", dpt_gemm_kernel_name(), dpt_gemm_kernel_reason());
    dpt_model_free(m);
    return 0;
}

int dpt_cmd_info(int argc, char **argv)
{
    const char *model = NULL, *input = "1x28x28";
    size_t classes = 10, rows = 16;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(f, "--checkpoint")) {
            v = dpt_cli_value("info", argc, argv, &i);
            return v ? show_checkpoint(v) : DPT_EXIT_USAGE;
        }
        bool ok = true;
        if (!strcmp(f, "--model") || !strcmp(f, "--input") || !strcmp(f, "--classes") ||
            !strcmp(f, "--rows")) {
            if (!(v = dpt_cli_value("info", argc, argv, &i))) return DPT_EXIT_USAGE;
            if (!strcmp(f, "--model")) model = v;
            if (!strcmp(f, "--input")) input = v;
            if (!strcmp(f, "--classes")) ok = dpt_cli_parse_size("info", f, v, 2, 65536, &classes);
            if (!strcmp(f, "--rows")) ok = dpt_cli_parse_size("info", f, v, 1, 65536, &rows);
            if (!ok) return DPT_EXIT_USAGE;
            continue;
        }
        return dpt_cli_usage_error("info", "unknown flag '%s'", argv[i]);
    }
    if (model) return show_model(model, input, classes, rows);
    dpt_gemm_init();
    printf("dptrain_version = %s\n", DPT_VERSION);
    printf("blis_version = %s\n", dpt_gemm_blis_version());
    printf("blis_kernel_set = %s\n", dpt_gemm_kernel_name());
    printf("blis_kernel_reason = %s\n", dpt_gemm_kernel_reason());
    printf("gemm_threads_per_worker = 1\n");
    printf("omp_num_procs = %d\n", omp_get_num_procs());
    printf("omp_max_threads = %d\n", omp_get_max_threads());
    print_cpu_features();
    return 0;
}
