/* Owns learning-rate scaling with the global batch size (Goyal et al. 2017, "Accurate, Large
 * Minibatch SGD"): linear (lr * batch / ref_batch) or square-root (lr * sqrt(batch /
 * ref_batch), the rule often preferred for adaptive optimizers). */
#include <math.h>
#include <string.h>

#include "core/spec.h"
#include "dptrain/optimizer.h"

#define REF_BATCH DPT_SPEC_I("ref_batch", "256", 1, 1048576, 0)
static const dpt_spec_key_t ref_keys[] = {REF_BATCH, DPT_SPEC_END};
static const dpt_spec_kind_t none_kind = {"none", NULL}, linear_kind = {"linear", ref_keys},
                             sqrt_kind = {"sqrt", ref_keys};
static const dpt_spec_kind_t *const kinds[] = {&none_kind, &linear_kind, &sqrt_kind};
static const dpt_spec_grammar_t grammar = {"lr scaling", kinds, 3, NULL, 1, 0};

dpt_status_t dpt_lr_scaling_apply(const char *spec, double base_lr, size_t batch_size,
                                  double *effective_lr)
{
    dpt_spec_part_t part;
    dpt_status_t s = dpt_spec_parse_part(&grammar, spec && *spec ? spec : "none",
                                         spec && *spec ? strlen(spec) : 4, &part);
    if (s != DPT_OK) return s;
    if (part.kind == &none_kind) {
        *effective_lr = base_lr;
        return DPT_OK;
    }
    double factor = (double)batch_size / dpt_spec_real(&part, "ref_batch");
    *effective_lr = base_lr * (part.kind == &linear_kind ? factor : sqrt(factor));
    return DPT_OK;
}
