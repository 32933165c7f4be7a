/* Owns the scratch-file helpers used by the test suites. */
#include "support.h"

#include "core/rng.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

char *mkdtemp(char *templ);

char *t_make_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *path = malloc(n);
    cr_assert_not_null(path);
    snprintf(path, n, "%s/dpt-%s-XXXXXX", base, tag);
    cr_assert_not_null(mkdtemp(path), "mkdtemp failed for %s", path);
    return path;
}

char *t_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void t_write_file(const char *path, const void *data, size_t n, int gz)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        cr_assert_not_null(g, "gzopen %s", path);
        if (n) cr_assert_eq(gzwrite(g, data, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(g), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "fopen %s", path);
    if (n) cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

void t_write_text(const char *path, const char *text)
{
    t_write_file(path, text, strlen(text), 0);
}

char *t_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    if (n) *n = (size_t)len;
    return buf;
}

int t_system(const char *cmd)
{
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc)) return -1;
    return WEXITSTATUS(rc);
}

const char *t_dptrain_bin(void)
{
    return DPT_BINARY_DIR "/dptrain";
}

static char *scratch[8];
static int n_scratch;

char *t_scratch_dir(const char *tag)
{
    char *d = t_make_tmpdir(tag);
    cr_assert_lt(n_scratch, 8);
    scratch[n_scratch++] = d;
    return d;
}

void t_remove_scratch(void)
{
    for (int i = 0; i < n_scratch; i++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch[i]);
        t_system(cmd);
        free(scratch[i]);
    }
    n_scratch = 0;
}

int t_run_dptrain(const char *args, char **out)
{
    char *dir = t_make_tmpdir("cli-out");
    char *log = t_path(dir, "log");
    size_t n = strlen(args) + strlen(log) + 4096;
    char *cmd = malloc(n);
    cr_assert_not_null(cmd);
    snprintf(cmd, n, "%s %s > %s 2>&1", t_dptrain_bin(), args, log);
    int rc = t_system(cmd);
    *out = t_read_file(log, NULL);
    free(cmd), free(log), free(dir);
    return rc;
}

char *t_write_class_table(const char *dir)
{
    char *path = t_path(dir, "table.csv");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    dpt_rng_t r;
    dpt_rng_seed(&r, 4, 0);
    fprintf(f, "a,b,c,d,e,f,label\n");
    for (int i = 0; i < 400; i++) {
        double x[6], s = 0;
        for (int j = 0; j < 6; j++)
            x[j] = dpt_rng_uniform(&r), s += j < 3 ? x[j] : -x[j];
        fprintf(f, "%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%d\n", x[0], x[1], x[2], x[3], x[4], x[5],
                s > 0 ? 1 : (s > -0.3 ? 2 : 0));
    }
    fclose(f);
    return path;
}

char *t_write_group_table(const char *dir, int rows, int classes, uint64_t seed)
{
    char *path = t_path(dir, "table.csv");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    dpt_rng_t r;
    dpt_rng_seed(&r, seed, 0);
    for (int i = 0; i < rows; i++) {
        double best = -1e9;
        int label = 0;
        for (int g = 0; g < classes; g++) {
            double s = 0;
            for (int j = 0; j < 5; j++) {
                double x = dpt_rng_uniform(&r) * 2 - 1;
                s += x;
                fprintf(f, "%.6f,", x);
            }
            if (s > best) best = s, label = g;
        }
        fprintf(f, "%d\n", label);
    }
    fclose(f);
    return path;
}

/* LeakSanitizer's hook (ASan builds): check leaks in the Criterion workers only. Every test,
 * with its .init and .fini, runs in a worker that BoxFort starts as argv[0] "boxfort-worker";
 * the parent process runs only Criterion's runner, which leaks one 48-byte timeout request now
 * and then when tests with .timeout run in parallel (BoxFort's bxfi_push_timeout, a race in
 * the library, not in anything built here). --no-fork runs the tests in the parent: no leak
 * check then. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
    static const char worker[] = "boxfort-worker";
    char arg0[sizeof worker + 1] = "";
    int fd = open("/proc/self/cmdline", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, arg0, sizeof arg0 - 1);
        arg0[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    return strcmp(arg0, worker) != 0;
}

char *t_write_threshold_table(const char *dir, int rows, int features, uint64_t seed)
{
    char *path = t_path(dir, "t.csv");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    dpt_rng_t r;
    dpt_rng_seed(&r, seed, 0);
    for (int i = 0; i < rows; i++) {
        double s = 0;
        for (int j = 0; j < features; j++) {
            double x = dpt_rng_uniform(&r);
            s += j < features / 2 ? x : -x;
            fprintf(f, "%.5f,", x);
        }
        fprintf(f, "%d\n", s > 0.3 ? 2 : s > -0.3 ? 1 : 0);
    }
    fclose(f);
    return path;
}

int t_wait_for_lock(const char *run_dir, pid_t pid)
{
    char *lock = t_path(run_dir, ".dptrain.lock"), want[32];
    snprintf(want, sizeof want, "%ld\n", (long)pid);
    for (int i = 0; i < 120000; i++) {
        char text[32] = "";
        FILE *f = fopen(lock, "r");
        if (f) {
            if (!fgets(text, sizeof text, f)) text[0] = '\0';
            fclose(f);
        }
        if (!strcmp(text, want)) {
            free(lock);
            return T_STILL_RUNNING;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            free(lock);
            return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        }
        struct timespec d = {0, 500000};
        nanosleep(&d, NULL);
    }
    cr_assert_fail("%s: pid %ld never took the lock", run_dir, (long)pid);
    return T_STILL_RUNNING;
}
