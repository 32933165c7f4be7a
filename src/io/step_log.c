/* Owns steps.csv, the run's per-step log (see step_log.h). */
#include "io/step_log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/fmt.h"

struct dpt_step_log {
    FILE *f;
    char *path;
    off_t mark;
};

static dpt_status_t io_error(const dpt_step_log_t *l, const char *what)
{
    return dpt_error(DPT_ERR_IO, "%s: %s failed: %s", l->path, what, strerror(errno));
}

/* Cuts f back to `end` bytes and positions writes there. */
static dpt_status_t cut_at(dpt_step_log_t *l, off_t end)
{
    if (fflush(l->f) != 0) return io_error(l, "write");
    if (ftruncate(fileno(l->f), end) != 0) return io_error(l, "truncate");
    if (fseeko(l->f, end, SEEK_SET) != 0) return io_error(l, "seek");
    return DPT_OK;
}

/* Offset just past the last row to keep: rows are in step order, so the first row past
 * resume_step, or a line without newline, ends what is kept. */
static dpt_status_t keep_until(dpt_step_log_t *l, int64_t resume_step, off_t *end)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, l->f);
    dpt_status_t s = DPT_OK;
    if (n < 0 || strcmp(line, DPT_STEP_LOG_HEADER) != 0)
        s = dpt_error(DPT_ERR_FORMAT, "%s: line 1: expected the header '%.*s'", l->path,
                      (int)strlen(DPT_STEP_LOG_HEADER) - 1, DPT_STEP_LOG_HEADER);
    *end = n > 0 ? (off_t)n : 0;
    while (s == DPT_OK && (n = getline(&line, &cap, l->f)) > 0) {
        char *stop;
        errno = 0;
        unsigned long long step = strtoull(line, &stop, 10);
        if (line[n - 1] != '\n' || *stop != ',' || errno || step > (uint64_t)resume_step) break;
        *end += (off_t)n;
    }
    free(line);
    return s;
}

dpt_status_t dpt_step_log_open(const char *path, int64_t resume_step, dpt_step_log_t **out)
{
    dpt_step_log_t *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        return dpt_error(DPT_ERR_NOMEM, "out of memory opening %s", path);
    }
    dpt_status_t s = DPT_OK;
    l->f = resume_step >= 0 ? fopen(path, "r+") : NULL;
    if (l->f) {
        off_t end;
        s = keep_until(l, resume_step, &end);
        if (s == DPT_OK) s = cut_at(l, end);
    } else if (!(l->f = fopen(path, "w"))) {
        s = dpt_error(DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    } else if (fputs(DPT_STEP_LOG_HEADER, l->f) < 0) {
        s = io_error(l, "write");
    }
    if (s != DPT_OK) {
        dpt_step_log_close(l);
        return s;
    }
    *out = l;
    return DPT_OK;
}

dpt_status_t dpt_step_log_write(dpt_step_log_t *l, uint64_t step, uint64_t epoch, double lr,
                                double loss)
{
    char a[40], b[40] = "";
    dpt_fmt_double(a, sizeof a, lr);
    if (isfinite(loss)) dpt_fmt_double(b, sizeof b, loss);
    int rc = fprintf(l->f, "%" PRIu64 ",%" PRIu64 ",%s,%s\n", step, epoch, a, b);
    return rc < 0 ? io_error(l, "write") : DPT_OK;
}

dpt_status_t dpt_step_log_mark(dpt_step_log_t *l)
{
    if (fflush(l->f) != 0) return io_error(l, "write");
    l->mark = ftello(l->f);
    return l->mark < 0 ? io_error(l, "tell") : DPT_OK;
}

dpt_status_t dpt_step_log_rewind(dpt_step_log_t *l)
{
    return cut_at(l, l->mark);
}

dpt_status_t dpt_step_log_sync(dpt_step_log_t *l)
{
    if (fflush(l->f) != 0) return io_error(l, "write");
    /* fsync of a pipe or character device fails with EINVAL: nothing to make durable. */
    if (fsync(fileno(l->f)) != 0 && errno != EINVAL) return io_error(l, "fsync");
    return DPT_OK;
}

void dpt_step_log_close(dpt_step_log_t *l)
{
    if (!l) return;
    if (l->f) fclose(l->f);
    free(l->path);
    free(l);
}
