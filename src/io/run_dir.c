/* Owns a run directory's ownership rules: creation, the one-writer lock, and the refusal to
 * replace an earlier run without --overwrite (src/io/run_dir.h). */
#include "io/run_dir.h"

#include "dptrain/run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096

struct dpt_run_dir {
    int lock_fd;
};

static dpt_status_t make_dirs(const char *dir)
{
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return dpt_error(DPT_ERR_INVALID_ARG, "output directory path too long");
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return dpt_error(DPT_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = saved;
        if (!saved) break;
    }
    return DPT_OK;
}

/* The pid another writer left in the lock file, or 0 when unreadable. */
static long holder_pid(int fd)
{
    char text[32] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    return n > 0 ? strtol(text, NULL, 10) : 0;
}

static dpt_status_t take_lock(const char *dir, int *fd_out)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", dir, DPT_RUN_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return dpt_error(DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        long pid = holder_pid(fd);
        close(fd);
        if (err != EWOULDBLOCK)
            return dpt_error(DPT_ERR_IO, "%s: cannot lock: %s", path, strerror(err));
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "%s is in use by another dptrain process (pid %ld): a run directory "
                         "has one writer; wait for it to finish or choose another --out",
                         dir, pid);
    }
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        int err = errno;
        close(fd);
        return dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(err));
    }
    *fd_out = fd;
    return DPT_OK;
}

/* Files a run writes: config.txt, metrics.csv, steps.csv, metrics.png, checkpoint.dpt,
 * best.dpt and the kept checkpoint-epochNNNN.dpt copies. */
static bool is_run_file(const char *name)
{
    static const char *const fixed[] = {"config.txt",  "metrics.csv",    "steps.csv",
                                        "metrics.png", "checkpoint.dpt", "best.dpt"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(name, fixed[i])) return true;
    size_t n = strlen(name);
    return !strncmp(name, "checkpoint-epoch", 16) && n > 20 && !strcmp(name + n - 4, ".dpt");
}

/* Lists the run files in dir into `found` (comma-separated, cut at cap) and counts them. */
static size_t list_run_files(const char *dir, char *found, size_t cap)
{
    DIR *d = opendir(dir);
    size_t count = 0, used = 0;
    found[0] = '\0';
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_run_file(e->d_name)) continue;
        /* the main files first would be nicer; directory order is what the user sees in ls */
        int w = snprintf(found + used, cap - used, "%s%s", count ? ", " : "", e->d_name);
        if (w > 0 && (size_t)w < cap - used) used += (size_t)w;
        count++;
    }
    closedir(d);
    return count;
}

static dpt_status_t remove_run_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return dpt_error(DPT_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    dpt_status_t s = DPT_OK;
    char path[PATH_CAP];
    for (struct dirent *e; s == DPT_OK && (e = readdir(d));) {
        if (!is_run_file(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            s = dpt_error(DPT_ERR_IO, "%s: cannot delete: %s", path, strerror(errno));
    }
    closedir(d);
    return s;
}

static dpt_status_t check_earlier_run(const char *dir, bool overwrite, bool quiet)
{
    char found[512];
    if (list_run_files(dir, found, sizeof found) == 0) return DPT_OK;
    if (!overwrite)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "%s already holds a run (%s); continue it with --resume %s, replace it "
                         "with --overwrite, or choose another --out",
                         dir, found, dir);
    if (!quiet) fprintf(stderr, "dptrain: --overwrite: replacing the run in %s (%s)\n", dir, found);
    return remove_run_files(dir);
}

dpt_status_t dpt_run_dir_open(const char *dir, bool resume, bool overwrite, bool quiet,
                              dpt_run_dir_t **out)
{
    if (resume && overwrite)
        return dpt_error(DPT_ERR_INVALID_ARG,
                         "--resume and --overwrite do not combine: resume continues the run in "
                         "the directory, overwrite replaces it");
    dpt_status_t s = make_dirs(dir);
    int fd = -1;
    if (s == DPT_OK) s = take_lock(dir, &fd);
    /* Checked under the lock, so two new runs cannot both find the directory empty. */
    if (s == DPT_OK && !resume) s = check_earlier_run(dir, overwrite, quiet);
    dpt_run_dir_t *d = s == DPT_OK ? calloc(1, sizeof *d) : NULL;
    if (s == DPT_OK && !d) s = dpt_error(DPT_ERR_NOMEM, "out of memory");
    if (s != DPT_OK) {
        if (fd >= 0) close(fd);
        return s;
    }
    d->lock_fd = fd;
    *out = d;
    return DPT_OK;
}

void dpt_run_dir_close(dpt_run_dir_t *d)
{
    if (!d) return;
    close(d->lock_fd); /* releases the flock */
    free(d);
}
