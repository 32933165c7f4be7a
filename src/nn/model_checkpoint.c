/* Owns the model's checkpoint section: the model writes its spec and shape there
 * (dpt_model_save_text) and rebuilds itself from it, for resume and for eval / predict. */
#include <stdio.h>

#include "dptrain/model.h"

dpt_status_t dpt_model_checkpoint_section(const dpt_model_t *m, char *buf, size_t cap,
                                          dpt_ckpt_section_t *out)
{
    size_t n = dpt_model_save_text(m, buf, cap);
    if (n >= cap) return dpt_error(DPT_ERR_LIMIT, "model spec too long for a checkpoint");
    *out = (dpt_ckpt_section_t){DPT_MODEL_SECTION, buf, n};
    return DPT_OK;
}

dpt_status_t dpt_model_checkpoint_load(const dpt_checkpoint_t *ck, const char *path,
                                       dpt_model_t **out)
{
    size_t n;
    const char *text = dpt_checkpoint_section(ck, DPT_MODEL_SECTION, &n);
    if (!text)
        return dpt_error(DPT_ERR_FORMAT, "%s: no 'model' section (not a dptrain run checkpoint?)",
                         path);
    dpt_status_t s = dpt_model_load_text(text, n, out);
    if (s != DPT_OK) {
        char why[512]; /* dpt_error formats into the buffer dpt_last_error returns */
        snprintf(why, sizeof why, "%s", dpt_last_error());
        return dpt_error(DPT_ERR_FORMAT, "%s: model in checkpoint: %s", path, why);
    }
    return DPT_OK;
}
