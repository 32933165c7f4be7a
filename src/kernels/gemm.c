/* Owns everything BLIS: kernel-set selection, initialisation, and the single-threaded
 * per-worker GEMM. The only file that includes blis.h. */
#include "kernels/gemm.h"

#include <blis.h>
#include <cpuid.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/thin.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static char kernel_name[32] = "uninitialised";
static char kernel_reason[256] = "";
static bool small_path; /* the kernel set has BLIS's small-matrix (sup) path for sgemm */
/* kernels/thin.c beats BLIS on every product shape (any) or on short ones (short), fixed at
 * initialisation: asked per product, so no CPUID there. */
static bool thin_any, thin_short;

/* Each worker thread gets its own runtime objects fixed at one thread, so BLIS never spawns
 * threads inside a worker and never copies the global runtime under its mutex per call: one
 * with BLIS's defaults and one that packs B (see dpt_gemm_b_mode_for). */
static _Thread_local rntm_t worker_rntm, worker_rntm_pack_b;
static _Thread_local bool worker_rntm_ready;

static bool cpu_has_avx512_skx_set(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

static bool cpu_has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* The kernel set dptrain uses when BLIS falls back to `generic`: the fastest the CPU
 * supports for the model. Measured on an AMD EPYC family 0x1A (Zen 5) that BLIS 0.9.0 does not
 * recognise: sgemm 256x784x256 on one thread skx ~150-178 GFLOP/s, zen ~99, zen3 ~80-93,
 * haswell ~50, generic ~25-30; whole training steps on one thread, the MLP 1.31x faster on skx
 * than on zen3, but ResNet-20 1.45x and the small CNN 1.08x faster on zen3, whose small-matrix
 * path skips the packing that dominates narrow products (docs/performance.md). Returns -1
 * when the CPU has nothing better. */
static int fallback_arch(double narrow, const char **why)
{
    __builtin_cpu_init();
    const bool amd = __builtin_cpu_is("amd");
    if (cpu_has_avx512_skx_set() && narrow > 0.5 && cpu_has_avx2_fma()) {
        *why = "chosen by dptrain: BLIS fell back to generic; most of the model's GEMM FLOPs are "
               "in narrow products (min(M, N, K) < 64), where an AVX2 set's small-matrix path "
               "beats skx";
        return amd ? BLIS_ARCH_ZEN3 : BLIS_ARCH_HASWELL;
    }
    if (cpu_has_avx512_skx_set()) {
        *why = "chosen by dptrain: BLIS fell back to generic; CPU has AVX-512 F/DQ/CD/BW/VL";
        return BLIS_ARCH_SKX;
    }
    if (cpu_has_avx2_fma()) {
        *why = amd ? "chosen by dptrain: BLIS fell back to generic; AMD CPU with AVX2+FMA"
                   : "chosen by dptrain: BLIS fell back to generic; CPU with AVX2+FMA";
        return amd ? BLIS_ARCH_ZEN : BLIS_ARCH_HASWELL;
    }
    *why = "BLIS's own detection (generic; the CPU has neither AVX-512 nor AVX2+FMA)";
    return -1;
}

/* The kernel set BLIS would pick by itself. BLIS fixes it at its first initialisation, for
 * the life of the process, so the question is asked in a short-lived child process; the
 * parent has not initialised BLIS yet and can still choose. Returns -1 if the probe fails. */
static int blis_own_arch(void)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        bli_init();
        int id = (int)bli_arch_query_id();
        ssize_t w = write(fds[1], &id, sizeof id);
        _exit(w == (ssize_t)sizeof id ? 0 : 1); /* no atexit handlers of the parent */
    }
    close(fds[1]);
    int id = -1;
    if (pid < 0 || read(fds[0], &id, sizeof id) != (ssize_t)sizeof id) id = -1;
    close(fds[0]);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            continue;
    return id;
}

static bool intel_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

/* Keeps BLIS's own choice when it recognised the CPU; replaces a generic fallback (or a failed
 * probe) with the fastest set the CPU supports, and BLIS 0.9.0's `haswell` on Intel CPUs with
 * AVX-512 it does not list (newer Xeons: it picks the AVX2 set) with `skx`, 1.3-1.4x faster
 * there on wide products (perf/gemm_kernels.sh, perf/kernel_models.sh, docs/performance.md)
 * unless the model's products are mostly narrow. Returns the arch to force, or -1. */
static double narrow_hint;   /* share of narrow GEMM FLOPs, set before init */
static int probed_arch = -2; /* BLIS's own choice from dpt_gemm_probe (-2: not asked yet) */

void dpt_gemm_probe(void)
{
    const char *user = getenv("BLIS_ARCH_TYPE");
    if (probed_arch == -2 && !(user && *user)) probed_arch = blis_own_arch();
}

static int pick_arch(int own, double narrow, const char **why)
{
    if (own == BLIS_ARCH_HASWELL && intel_avx512()) {
        if (narrow > 0.5) {
            *why = "BLIS's own detection (haswell); kept over skx because most of the model's "
                   "GEMM FLOPs are in narrow products (min(M, N, K) < 64)";
            return -1;
        }
        *why = "forced: BLIS picked haswell (AVX2) on an Intel CPU with AVX-512, where skx is "
               "faster for wide products";
        return BLIS_ARCH_SKX;
    }
    if (own >= 0 && own != BLIS_ARCH_GENERIC) {
        *why = "BLIS's own detection (it recognises this CPU)";
        return -1;
    }
    return fallback_arch(narrow, why);
}

const char *dpt_gemm_pick_for(const char *blis_own, double narrow_share)
{
    int own = -1;
    for (int id = 0; id < BLIS_NUM_ARCHS; id++)
        if (strcmp(bli_arch_string((arch_t)id), blis_own) == 0) own = id;
    const char *why;
    int arch = pick_arch(own, narrow_share, &why);
    return arch < 0 ? NULL : bli_arch_string((arch_t)arch);
}

#if defined(__AVX512F__)
/* AMD family 0x1A (Zen 5) and later: AVX-512 at full width (Zen 4, 0x19, splits 512-bit
 * operations in two halves). Asked only where the build uses AVX-512 (thin.c's vectors). */
static bool amd_full_width_avx512(void)
{
    unsigned eax, ebx, ecx, edx;
    __builtin_cpu_init();
    if (!__builtin_cpu_is("amd") || !cpu_has_avx512_skx_set() ||
        !__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return false;
    unsigned family = (eax >> 8) & 0xf;
    if (family == 0xf) family += (eax >> 20) & 0xff;
    return family >= 0x1a;
}
#endif

static void init_blis(void)
{
    const char *user = getenv("BLIS_ARCH_TYPE");
    bool we_set = false;
    if (user && *user) {
        snprintf(kernel_reason, sizeof kernel_reason, "BLIS_ARCH_TYPE=%s set by the user", user);
    } else {
        const char *why;
        dpt_gemm_probe();
        int arch = pick_arch(probed_arch, narrow_hint, &why);
        snprintf(kernel_reason, sizeof kernel_reason, "%s", why);
        if (arch >= 0) {
            char buf[16];
            snprintf(buf, sizeof buf, "%d", arch);
            setenv("BLIS_ARCH_TYPE", buf, 1);
            we_set = true;
        }
    }
    /* bli_arch_query_id() before bli_init() aborts in 0.9.0 when BLIS_ARCH_TYPE is set. */
    bli_init();
    arch_t id = bli_arch_query_id();
    snprintf(kernel_name, sizeof kernel_name, "%s", bli_arch_string(id));
    /* Sets without the path (skx, generic) have zero thresholds. */
    small_path = bli_cntx_get_l3_sup_thresh_dt(BLIS_FLOAT, BLIS_MT, bli_gks_query_cntx()) > 0;
#if defined(__AVX512F__)
    thin_any = amd_full_width_avx512();
#endif
    thin_short = thin_any || !small_path;
    /* Child processes (e.g. a PyTorch comparison) should see the user's environment. */
    if (we_set) unsetenv("BLIS_ARCH_TYPE");
}

dpt_status_t dpt_gemm_init_narrow(double narrow_share)
{
    /* Read by init_blis inside the once-block, so only a hint given before the first
     * initialisation counts; like dpt_gemm_init, called before any worker thread starts. */
    narrow_hint = narrow_share;
    return dpt_gemm_init();
}

dpt_status_t dpt_gemm_init(void)
{
    pthread_once(&init_once, init_blis);
    return DPT_OK;
}

const char *dpt_gemm_kernel_name(void)
{
    return kernel_name;
}

const char *dpt_gemm_kernel_reason(void)
{
    return kernel_reason;
}

bool dpt_gemm_small_path(void)
{
    dpt_gemm_init();
    return small_path;
}

bool dpt_gemm_thin_any_shape(void)
{
    dpt_gemm_init();
    return thin_any;
}

bool dpt_gemm_thin_wins(void)
{
    dpt_gemm_init();
    return thin_short;
}

const char *dpt_gemm_blis_version(void)
{
    dpt_gemm_init();
    return bli_info_get_version_str();
}

static rntm_t *thread_rntm(bool pack_b)
{
    if (!worker_rntm_ready) {
        dpt_gemm_init();
        bli_rntm_init(&worker_rntm);
        bli_rntm_set_num_threads(1, &worker_rntm);
        bli_rntm_init(&worker_rntm_pack_b);
        bli_rntm_set_num_threads(1, &worker_rntm_pack_b);
        bli_rntm_set_pack_b(true, &worker_rntm_pack_b);
        worker_rntm_ready = true;
    }
    return pack_b ? &worker_rntm_pack_b : &worker_rntm;
}

dpt_gemm_b_mode_t dpt_gemm_b_mode_for(bool trans_a, bool trans_b)
{
    /* Measured with 64-row shards on zen3/haswell kernels: dx = dy W^T 78-84 -> 97-102
     * GFLOP/s, dW = x^T dy 96-106 -> 108-110, x W itself 99-108 -> 93-103 (worse). */
    return trans_a || trans_b ? DPT_GEMM_B_PACKED : DPT_GEMM_B_BLIS_DEFAULT;
}

void dpt_sgemm_mode(dpt_gemm_b_mode_t mode, bool trans_a, bool trans_b, size_t m, size_t n,
                    size_t k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                    float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0) return;
    /* BLIS typed API strides describe the matrices as stored (before the transpose flag):
     * row-major storage has row stride = stored row length and column stride 1. */
    bli_sgemm_ex(trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n, (dim_t)k, &alpha,
                 (float *)a, (inc_t)lda, 1, (float *)b, (inc_t)ldb, 1, &beta, c, (inc_t)ldc, 1,
                 NULL, thread_rntm(mode == DPT_GEMM_B_PACKED));
}

void dpt_sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
               const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
               size_t ldc)
{
    dpt_sgemm_mode(dpt_gemm_b_mode_for(trans_a, trans_b), trans_a, trans_b, m, n, k, alpha, a, lda,
                   b, ldb, beta, c, ldc);
}

/* Rows of A from which the thin kernels run A B^T as B^T transposed once into the caller's
 * scratch (dpt_thin_transpose) and then dpt_thin_gemm, instead of m x n dot products whose
 * every 6 x 4 block ends in lane sums. The transpose costs n x k copies against m x n x k
 * multiply-adds, so it pays from enough rows. AMD EPYC Zen 5, Winograd's weight gradients
 * (m = input channels): backward of a 16-row shard at 64 channels on 8x8 planes 0.84 -> 0.70
 * ms (the GEMM 212 GFLOP/s against the dots' 106); 32 channels at 16x16 0.97-1.00 against
 * 0.97-1.05 ms (no gain); 16 at 32x32 5.6 against 4.2 us a product (a loss). */
#define PRODUCT_NT_GEMM_MIN_M 64

size_t dpt_product_scratch_floats(bool trans_a, bool trans_b, size_t m, size_t n, size_t k)
{
    return !trans_a && trans_b && m >= PRODUCT_NT_GEMM_MIN_M ? n * k : 0;
}

void dpt_product(bool thin, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                 const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                 bool acc, float *scratch)
{
    if (thin && scratch && dpt_product_scratch_floats(trans_a, trans_b, m, n, k)) {
        dpt_thin_transpose(n, k, b, ldb, scratch, n);
        dpt_thin_gemm(m, n, k, a, lda, 1, scratch, n, c, ldc, acc);
    } else if (thin && trans_b && !trans_a)
        dpt_thin_dots(m, n, k, a, lda, b, ldb, c, ldc, acc);
    else if (thin && !trans_b)
        dpt_thin_gemm(m, n, k, a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, c, ldc, acc);
    else
        dpt_sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, acc ? 1.0f : 0.0f, c, ldc);
}
