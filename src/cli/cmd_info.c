/* dptrain info: version, BLIS version and kernel set in use, OpenMP threads, CPU features;
 * with --checkpoint F, what a checkpoint holds. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "dptrain/checkpoint.h"
#include "kernels/gemm.h"

static const char *const usage =
    "usage: dptrain info [--checkpoint FILE]\n"
    "Prints the dptrain version, the BLIS version and kernel set in use (and why it was\n"
    "chosen), OpenMP threads and the CPU features that matter for the kernels.\n"
    "  --checkpoint FILE   verify a checkpoint (SHA-256) and list what it holds\n"
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

int dpt_cmd_info(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--checkpoint")) {
            const char *v = dpt_cli_value("info", argc, argv, &i);
            return v ? show_checkpoint(v) : DPT_EXIT_USAGE;
        }
        return dpt_cli_usage_error("info", "unknown flag '%s'", argv[i]);
    }
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
