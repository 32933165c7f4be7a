/* Owns what derives from a run's checkpoint: best.dpt (by which key, and when), the kept
 * per-epoch copies of --keep-checkpoints and their pruning, the temporaries killed writers
 * left, and the repair of all of these (and the metrics row) after a resume. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "train/run_internal.h"

/* A run file's temporary twin "<file>.tmp.<pid>.<n>" (src/io/atomic_file.c) whose writer is
 * gone: a process killed mid-write leaves one, and nothing else would ever remove it. A live
 * pid (another process on this directory, or a reused pid) keeps its file. */
static int stale_temp(const char *name)
{
    static const char *const files[] = {DPT_RUN_CHECKPOINT, DPT_RUN_BEST_CHECKPOINT, "metrics.csv",
                                        "checkpoint-epoch"};
    const char *tmp = strstr(name, ".tmp.");
    int ours = 0;
    for (size_t i = 0; tmp && i < sizeof files / sizeof *files; i++)
        ours |= strncmp(name, files[i], strlen(files[i])) == 0;
    if (!ours) return 0;
    char *end;
    long pid = strtol(tmp + 5, &end, 10);
    if (end == tmp + 5 || *end != '.' || pid <= 0) return 0;
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes the temporary files killed writers left in the run directory (at every start, so
 * a resumed run that finishes leaves none). */
dpt_status_t run_remove_stale_temps(const run_t *r)
{
    DIR *d = opendir(r->cfg->out_dir);
    if (!d) return dpt_error(DPT_ERR_IO, "%s: cannot list: %s", r->cfg->out_dir, strerror(errno));
    dpt_status_t s = DPT_OK;
    for (struct dirent *e; s == DPT_OK && (e = readdir(d));) {
        if (!stale_temp(e->d_name)) continue;
        run_path_t path = run_path(r, e->d_name);
        if (unlink(path.s) != 0 && errno != ENOENT)
            s = dpt_error(DPT_ERR_IO, "%s: cannot delete: %s", path.s, strerror(errno));
    }
    closedir(d);
    return s;
}

/* Unlinks the kept epoch checkpoints that fell out of the last K. */
static dpt_status_t prune_checkpoints(const run_t *r)
{
    DIR *d = opendir(r->cfg->out_dir);
    if (!d) return dpt_error(DPT_ERR_IO, "%s: cannot list: %s", r->cfg->out_dir, strerror(errno));
    const char *prefix = "checkpoint-epoch";
    dpt_status_t s = DPT_OK;
    for (struct dirent *e; s == DPT_OK && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char *end;
        const char *digits = e->d_name + strlen(prefix);
        unsigned long long epoch = strtoull(digits, &end, 10);
        if (end == digits || strcmp(end, ".dpt") != 0) continue;
        if (epoch + r->cfg->keep_checkpoints > r->epochs_done) continue;
        run_path_t path = run_path(r, e->d_name);
        if (unlink(path.s) != 0 && errno != ENOENT)
            s = dpt_error(DPT_ERR_IO, "%s: cannot delete: %s", path.s, strerror(errno));
    }
    closedir(d);
    return s;
}

/* --keep-checkpoints K: checkpoint.dpt, just written, also becomes checkpoint-epochNNNN.dpt
 * (a hard link: the next checkpoint.dpt is a new file renamed over the name, so the link
 * keeps this epoch's bytes; a second write where links are not supported), then the copies
 * older than the last K go. */
dpt_status_t run_retain_checkpoint(const run_t *r, const float *restored)
{
    if (!r->writer) return DPT_OK;
    if (!r->cfg->keep_checkpoints || !r->epochs_done) return DPT_OK;
    char name[64], tmp[4200];
    snprintf(name, sizeof name, DPT_RUN_EPOCH_CHECKPOINT, (unsigned long long)r->epochs_done);
    run_path_t latest = run_path(r, DPT_RUN_CHECKPOINT), kept = run_path(r, name);
    snprintf(tmp, sizeof tmp, "%s.link-tmp", kept.s);
    unlink(tmp);
    dpt_status_t s = DPT_OK;
    if (link(latest.s, tmp) == 0) {
        if (rename(tmp, kept.s) != 0) {
            s = dpt_error(DPT_ERR_IO, "%s: cannot rename into place: %s", kept.s, strerror(errno));
            unlink(tmp);
        }
        if (s == DPT_OK) s = dpt_sync_parent_dir(kept.s);
    } else {
        s = run_checkpoint_save(r, name, restored, NULL);
    }
    return s == DPT_OK ? prune_checkpoints(r) : s;
}

/* What best.dpt is best by: the early-stopping monitor when early stopping is on, else the
 * plateau schedule's monitor, else validation loss; negated when higher is better, so the
 * stored best is always "lower is better" (and the checkpoint state keeps one double). */
static double best_key(const run_t *r, double vloss, double vacc)
{
    if (r->es.cfg.enabled) {
        double v = r->es.cfg.monitor_accuracy ? vacc : vloss;
        return r->es.cfg.mode_max ? -v : v;
    }
    if (r->monitor && strcmp(r->monitor, "val_accuracy") == 0) return -vacc;
    return vloss;
}

int run_best_update(run_t *r, double vloss, double vacc)
{
    double key = best_key(r, vloss, vacc);
    int is_best = r->data.val && key < r->best_val_loss;
    if (is_best) r->best_val_loss = key;
    return is_best;
}

/* Resuming from an epoch-end checkpoint: what the epoch's end writes after the checkpoint —
 * its metrics row, best.dpt when the epoch was the best so far, the kept copy — is written
 * again where a kill or a full disk stopped it. */
dpt_status_t run_repair_after_resume(run_t *r)
{
    dpt_status_t s = DPT_OK;
    if (r->resumed.has_row && r->resumed.row.epoch == r->epochs_done &&
        !run_row_exists(r, r->epochs_done))
        s = run_row_write(r, &r->resumed.row);
    /* The checkpoint names the best key; best.dpt written after it holds the same. After
     * restore_best (trained_params) the run is over and best.dpt was written before. */
    double key = run_checkpoint_best_key(r, DPT_RUN_BEST_CHECKPOINT);
    if (s == DPT_OK && r->data.val && isfinite(r->best_val_loss) && !r->resumed.restored &&
        !(key == r->best_val_loss))
        s = run_checkpoint_save(r, DPT_RUN_BEST_CHECKPOINT, NULL, NULL);
    if (s == DPT_OK) s = run_retain_checkpoint(r, NULL);
    return s;
}
