/* Owns the optimizer's checkpoint section: its one-block state, saved as it is and copied
 * back on resume. */
#include <string.h>

#include "dptrain/optimizer.h"

dpt_ckpt_section_t dpt_optimizer_checkpoint_section(dpt_optimizer_t *o)
{
    size_t n;
    const float *state = dpt_optimizer_state(o, &n);
    return (dpt_ckpt_section_t){DPT_OPTIMIZER_SECTION, state, n * sizeof(float)};
}

dpt_status_t dpt_optimizer_checkpoint_load(dpt_optimizer_t *o, const dpt_checkpoint_t *ck,
                                           const char *path)
{
    size_t n;
    float *state = dpt_optimizer_state(o, &n);
    const void *saved;
    dpt_status_t s =
        dpt_checkpoint_section_exact(ck, path, DPT_OPTIMIZER_SECTION, n * sizeof(float), &saved);
    if (s == DPT_OK && n) memcpy(state, saved, n * sizeof(float));
    return s;
}
