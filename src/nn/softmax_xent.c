/* Owns the loss: numerically stable log-softmax (subtract the row max, log-sum-exp) with
 * cross-entropy, its gradient and the accuracy count. */
#include "nn/softmax_xent.h"

#include <math.h>

double dpt_softmax_xent(const float *logits, const int32_t *labels, size_t rows, size_t classes,
                        float scale, float *dlogits, float *probs, size_t *correct)
{
    double loss = 0.0;
    size_t hits = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *z = logits + r * classes;
        size_t arg = 0;
        float max = z[0];
        for (size_t j = 1; j < classes; j++)
            if (z[j] > max) max = z[j], arg = j;
        /* One exp per logit, kept in the output row (or recomputed when there is none):
         * this runs every step, once per sample and class. */
        float *e = dlogits ? dlogits + r * classes : probs ? probs + r * classes : NULL;
        double sum = 0.0;
        for (size_t j = 0; j < classes; j++) {
            float v = expf(z[j] - max);
            if (e) e[j] = v;
            sum += v;
        }
        size_t y = (size_t)labels[r];
        loss += log(sum) - ((double)z[y] - max);
        hits += arg == y;
        if (!e) continue;
        const float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < classes; j++) {
            float p = e[j] * inv;
            if (probs) probs[r * classes + j] = p;
            if (dlogits) dlogits[r * classes + j] = (p - (j == y ? 1.0f : 0.0f)) * scale;
        }
    }
    if (correct) *correct = hits;
    return loss;
}
