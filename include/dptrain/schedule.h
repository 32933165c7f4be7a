/* Learning-rate schedules: a spec string parsed once into an immutable schedule, and the LR
 * (and, for cyclic/one-cycle, the momentum) at optimizer step t as a pure function of the
 * schedule, t and a small plateau state that the trainer checkpoints as plain bytes.
 *
 * Names, parameters, defaults and values follow PyTorch's torch.optim.lr_scheduler; the
 * formulas and the few deliberate differences are in docs/schedules.md.
 *
 * Thread safety: a created schedule is never written again, so any number of threads may
 * call the query functions on it at once. dpt_plateau_state_t is owned by the caller. */
#ifndef DPTRAIN_SCHEDULE_H
#define DPTRAIN_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "dptrain/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest accepted schedule or warmup spec, and most entries in one list (milestones). */
#define DPT_SCHEDULE_SPEC_MAX 1024
#define DPT_SCHEDULE_LIST_MAX 256

typedef struct dpt_schedule dpt_schedule_t; /* opaque, immutable after create */

/* ReduceLROnPlateau bookkeeping. Plain data with no pointers so that a checkpoint can store
 * it as bytes and a resumed run continues exactly. `scale` is the product of the reduction
 * factors applied so far (1 before any). `best` starts at +inf (mode=min) or -inf (max). */
typedef struct dpt_plateau_state {
    double best;
    double scale;
    int64_t num_bad_epochs;
    int64_t cooldown_counter;
    int64_t reductions;
    int has_best; /* 1 once a metric has improved on the initial best */
} dpt_plateau_state_t;

/* Parses and validates a schedule.
 * schedule_spec: "NAME:key=value,..." (or just "NAME"), NULL or "" for constant; a plateau
 *   component may be combined with a main schedule as "MAIN+plateau:key=value,...".
 * warmup_spec: NULL or "" for none, "linear:steps=N,start_factor=F" or
 *   "constant:steps=N,factor=F" (counted in optimizer steps).
 * base_lr: the --lr value, finite and > 0. steps_per_epoch, epochs: >= 1.
 * On success *out owns a new schedule (free with dpt_schedule_free). On failure *out is NULL
 * and the status is DPT_ERR_INVALID_ARG (or DPT_ERR_NOMEM) with a message naming the bad
 * part; an unknown name lists the valid names, an unknown key lists the valid keys. */
dpt_status_t dpt_schedule_create(const char *schedule_spec, const char *warmup_spec, double base_lr,
                                 size_t steps_per_epoch, size_t epochs, dpt_schedule_t **out);

/* Frees a schedule; NULL is a no-op. */
void dpt_schedule_free(dpt_schedule_t *s);

/* LR used by optimizer step `step` (0-based global count). Pure: depends only on s, step and
 * ps; ps may be NULL (= no plateau reductions). Past the end of a finite schedule the final
 * value holds. */
double dpt_schedule_lr(const dpt_schedule_t *s, uint64_t step, const dpt_plateau_state_t *ps);

/* Momentum (or Adam's beta1) the schedule drives at `step`: returns 1 and sets *momentum for
 * cyclic and onecycle with cycle_momentum=1, returns 0 (and leaves *momentum) otherwise. */
int dpt_schedule_momentum(const dpt_schedule_t *s, uint64_t step, double *momentum);

/* Sets *ps to the state before any metric was seen. Valid for every schedule. */
void dpt_schedule_plateau_init(const dpt_schedule_t *s, dpt_plateau_state_t *ps);

/* 1 when the schedule has a plateau component, which needs a validation metric at each
 * epoch end; *monitor (if monitor is not NULL) gets "val_loss" or "val_accuracy". */
int dpt_schedule_uses_plateau(const dpt_schedule_t *s, const char **monitor);

/* Feeds the monitored metric at an epoch end; returns 1 when it reduced the LR this time.
 * A no-op returning 0 for schedules without a plateau component. */
int dpt_schedule_plateau_update(const dpt_schedule_t *s, dpt_plateau_state_t *ps, double metric);

/* One-line canonical description with every resolved parameter, e.g.
 * "schedule=step:step_size=2,gamma=0.5,unit=epoch warmup=none lr=0.1 steps_per_epoch=10
 * epochs=5". The text after "schedule=" and "warmup=" parses back to the same schedule.
 * Owned by s. */
const char *dpt_schedule_describe(const dpt_schedule_t *s);

/* Comma-separated list of the valid schedule names. Static storage. */
const char *dpt_schedule_names(void);

/* Writes a multi-line help text (each schedule and warmup with its keys and defaults) into
 * buf like snprintf: returns the full length, writes at most cap bytes, NUL-terminated. */
size_t dpt_schedule_help(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
