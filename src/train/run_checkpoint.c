/* Owns a run's checkpoints as files: the sections the run itself owns (state, epoch_progress,
 * epoch_row), gathering the others from their owners (the model, the optimizer, the guards,
 * the dataset's normaliser), writing them in their fixed order, and exact resume. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/checkpoint.h"
#include "train/run_internal.h"

/* The "epoch_progress" section of a mid-epoch checkpoint (absent at epoch ends): the
 * epoch's sums so far and the epoch's own bookkeeping, so its metrics row comes out as an
 * uninterrupted run's. Fixed-width fields. */
typedef struct run_progress {
    dpt_epoch_partial_t partial;
    uint64_t rollbacks_in_row;
    char events[1024]; /* NUL-terminated */
} run_progress_t;
_Static_assert(sizeof(run_progress_t) == 1072, "epoch_progress layout (docs/formats.md)");

/* The model, the optimizer and the guards write and read their own sections
 * (dpt_model_checkpoint_section, dpt_optimizer_checkpoint_section, dpt_guards_section_t);
 * normalisation section: the dataset's saved normaliser (dpt_dataset_normalization_save). */

/* Checkpointed scalars. Fixed-width fields: the file is read back by the same layout. */
typedef struct run_state {
    uint64_t epochs_done, steps, n_params;
    double best_val_loss;
    dpt_plateau_state_t plateau;
} run_state_t;

/* run_checkpoint_save, and progress (may be NULL): the epoch in progress, for a checkpoint
 * taken inside it (which carries no row). */
static dpt_status_t save(const run_t *r, const char *name, const float *restored,
                         const run_progress_t *progress, const run_row_t *row)
{
    if (!r->writer) return DPT_OK; /* rank 0 writes the run's checkpoints */
    size_t n_params = dpt_model_param_count(r->model);
    run_state_t st = {.epochs_done = r->epochs_done,
                      .steps = dpt_trainer_step_count(r->trainer),
                      .n_params = n_params,
                      .best_val_loss = r->best_val_loss,
                      .plateau = r->plateau};
    dpt_guards_section_t gs = dpt_guards_section_make(&r->guard.state, &r->es.state,
                                                      r->es.best_params && r->es.has_best_params);
    char model_text[DPT_MODEL_TEXT_MAX];
    dpt_ckpt_section_t model;
    dpt_status_t s = dpt_model_checkpoint_section(r->model, model_text, sizeof model_text, &model);
    if (s != DPT_OK) return s;
    size_t norm_bytes = dpt_dataset_normalization_save(r->data.train, NULL, 0);
    void *norm = malloc(norm_bytes);
    if (!norm) return dpt_error(DPT_ERR_NOMEM, "out of memory saving the normalisation");
    dpt_dataset_normalization_save(r->data.train, norm, norm_bytes);
    const float *trained = dpt_trainer_params(r->trainer);
    dpt_ckpt_section_t sec[13] = {
        {"config", r->config_text, strlen(r->config_text)},
        model,
        {"normalization", norm, norm_bytes},
        {"argv", r->cfg->argv_blob, r->cfg->argv_blob ? r->cfg->argv_blob_len : 0},
        {"state", &st, sizeof st},
        {"params", restored ? restored : trained, n_params * sizeof(float)},
        dpt_optimizer_checkpoint_section(r->opt),
        {DPT_GUARDS_SECTION, &gs, sizeof gs},
    };
    size_t n_sec = 8;
    if (gs.has_best_params)
        sec[n_sec++] =
            (dpt_ckpt_section_t){"early_stop_params", r->es.best_params, n_params * sizeof(float)};
    if (restored)
        sec[n_sec++] = (dpt_ckpt_section_t){"trained_params", trained, n_params * sizeof(float)};
    if (progress) sec[n_sec++] = (dpt_ckpt_section_t){"epoch_progress", progress, sizeof *progress};
    const char *aug = run_augment_text(r);
    sec[n_sec++] = (dpt_ckpt_section_t){"augment", aug, strlen(aug)};
    if (row && !progress) sec[n_sec++] = (dpt_ckpt_section_t){"epoch_row", row, sizeof *row};
    run_path_t path = run_path(r, name);
    s = dpt_checkpoint_write(path.s, sec, n_sec);
    free(norm);
    return s;
}

dpt_status_t run_checkpoint_save(const run_t *r, const char *name, const float *restored,
                                 const run_row_t *row)
{
    return save(r, name, restored, NULL, row);
}

/* --checkpoint-every-steps, from the step hook (between steps, on the driving thread):
 * checkpoint.dpt with the epoch in progress. Not on the epoch's last step (the epoch-end
 * checkpoint follows at once). steps.csv is synced first, as at epoch ends. */
dpt_status_t run_checkpoint_mid_epoch(run_t *r)
{
    run_progress_t p = {.rollbacks_in_row = r->guard.rollbacks_in_row};
    dpt_trainer_epoch_partial(r->trainer, &p.partial);
    if (p.partial.batches >= r->steps_per_epoch) return DPT_OK;
    snprintf(p.events, sizeof p.events, "%s", r->epoch.events);
    dpt_status_t s = r->files.steps ? dpt_step_log_sync(r->files.steps) : DPT_OK;
    return s == DPT_OK ? save(r, DPT_RUN_CHECKPOINT, NULL, &p, NULL) : s;
}

/* Early stopping and guard state; an early-stop state kept for another monitor or mode
 * starts over (its best value means nothing for the new one). */
static void restore_guards(run_t *r, const dpt_guards_section_t *g, const void *best)
{
    dpt_guards_section_restore(g, &r->es.cfg, &r->guard.state, &r->es.state);
    if (r->es.best_params && best && r->es.state.best_epoch) {
        memcpy(r->es.best_params, best, dpt_model_param_count(r->model) * sizeof(float));
        r->es.has_best_params = 1;
    }
}

/* A mid-epoch checkpoint: the epoch continues where it stood, with its sums and events. */
static dpt_status_t restore_progress(run_t *r, const char *path, const void *data)
{
    run_progress_t p;
    memcpy(&p, data, sizeof p);
    if (p.partial.batches == 0 || p.partial.batches >= r->steps_per_epoch ||
        p.events[sizeof p.events - 1] != '\0')
        return dpt_error(DPT_ERR_FORMAT,
                         "%s: epoch_progress at batch %llu of an epoch of %zu batches (other "
                         "data or batch size?)",
                         path, (unsigned long long)p.partial.batches, r->steps_per_epoch);
    r->epoch.from = p.partial;
    r->epoch.has_from = 1;
    r->guard.rollbacks_in_row = (size_t)p.rollbacks_in_row;
    memcpy(r->epoch.events, p.events, sizeof r->epoch.events);
    return DPT_OK;
}

/* The run's augmentation must be the checkpoint's (absent: none, as in checkpoints from
 * before augmentation) unless the user overrides it: a resumed run would otherwise continue
 * under other data than the one it started on without saying so. */
static dpt_status_t check_augment(const run_t *r, const dpt_checkpoint_t *ck, const char *path)
{
    size_t n = 0;
    const char *stored = dpt_checkpoint_section(ck, "augment", &n);
    const char *now = run_augment_text(r);
    if (!stored) stored = "none", n = 4;
    if ((strlen(now) == n && memcmp(now, stored, n) == 0) || r->cfg->augment_override)
        return DPT_OK;
    return dpt_error(DPT_ERR_INVALID_ARG,
                     "%s: the run was trained with --augment '%.*s'; resuming with '%s' changes "
                     "its data: give --augment-override to resume with it anyway",
                     path, (int)(n < 2048 ? n : 2048), stored, now);
}

dpt_status_t run_checkpoint_restore(run_t *r)
{
    run_path_t p = run_path(r, DPT_RUN_CHECKPOINT);
    const char *path = p.s;
    dpt_checkpoint_t *ck;
    dpt_status_t s = dpt_checkpoint_read(path, &ck);
    if (s != DPT_OK) return s;
    size_t pbytes = dpt_model_param_count(r->model) * sizeof(float);
    const void *st_p, *params, *guards, *best, *trained, *progress, *row;
    s = check_augment(r, ck, path);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_exact(ck, path, "state", sizeof(run_state_t), &st_p);
    if (s == DPT_OK) s = dpt_checkpoint_section_exact(ck, path, "params", pbytes, &params);
    if (s == DPT_OK) s = dpt_optimizer_checkpoint_load(r->opt, ck, path);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, DPT_GUARDS_SECTION,
                                            sizeof(dpt_guards_section_t), &guards);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "early_stop_params", pbytes, &best);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "trained_params", pbytes, &trained);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "epoch_progress", sizeof(run_progress_t),
                                            &progress);
    if (s == DPT_OK && progress) s = restore_progress(r, path, progress);
    if (s == DPT_OK)
        s = dpt_checkpoint_section_optional(ck, path, "epoch_row", sizeof(run_row_t), &row);
    if (s == DPT_OK && row) {
        memcpy(&r->resumed.row, row, sizeof r->resumed.row);
        r->resumed.row.events[sizeof r->resumed.row.events - 1] = '\0';
        r->resumed.has_row = 1;
    }
    if (s == DPT_OK) {
        run_state_t st;
        memcpy(&st, st_p, sizeof st);
        /* After restore_best, "params" is the restored model; training goes on from the
         * parameters it had actually reached. */
        memcpy(dpt_trainer_params(r->trainer), trained ? trained : params, pbytes);
        r->resumed.restored = trained != NULL;
        dpt_trainer_set_step_count(r->trainer, st.steps);
        r->epochs_done = st.epochs_done;
        r->best_val_loss = st.best_val_loss;
        r->plateau = st.plateau;
        if (guards) {
            dpt_guards_section_t g;
            memcpy(&g, guards, sizeof g);
            restore_guards(r, &g, best);
        }
    }
    dpt_checkpoint_free(ck);
    return s;
}

double run_checkpoint_best_key(const run_t *r, const char *name)
{
    dpt_checkpoint_t *ck;
    run_path_t path = run_path(r, name);
    if (dpt_checkpoint_read(path.s, &ck) != DPT_OK) {
        dpt_error_clear();
        return NAN;
    }
    size_t n;
    const void *st = dpt_checkpoint_section(ck, "state", &n);
    double key = NAN;
    if (st && n == sizeof(run_state_t)) {
        run_state_t s;
        memcpy(&s, st, sizeof s);
        key = s.best_val_loss;
    }
    dpt_checkpoint_free(ck);
    return key;
}

dpt_status_t dpt_run_read_argv(const char *out_dir, char **blob, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, DPT_RUN_CHECKPOINT);
    dpt_checkpoint_t *ck;
    dpt_status_t s = dpt_checkpoint_read(path, &ck);
    if (s != DPT_OK) return s;
    size_t n;
    const char *data = dpt_checkpoint_section(ck, "argv", &n);
    if (!data) {
        dpt_checkpoint_free(ck);
        return dpt_error(DPT_ERR_FORMAT, "%s: no 'argv' section to resume from", path);
    }
    *blob = malloc(n + 1);
    if (!*blob) {
        dpt_checkpoint_free(ck);
        return dpt_error(DPT_ERR_NOMEM, "out of memory");
    }
    memcpy(*blob, data, n);
    (*blob)[n] = '\0';
    *len = n;
    dpt_checkpoint_free(ck);
    return DPT_OK;
}
