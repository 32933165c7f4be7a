/* Owns the loss: numerically stable log-softmax (subtract the row max, log-sum-exp) with
 * cross-entropy, its gradient and the accuracy count. */
#include "nn/softmax_xent.h"

#include <math.h>

double dpt_softmax_xent(const float *logits, const int32_t *labels, size_t rows, size_t classes,
                        float scale, float *dlogits, float *probs, size_t *correct)
{
    return dpt_softmax_xent_soft(logits, labels, NULL, NULL, rows, classes, scale, dlogits, probs,
                                 correct);
}

double dpt_softmax_xent_soft(const float *logits, const int32_t *labels, const int32_t *labels2,
                             const float *lam, size_t rows, size_t classes, float scale,
                             float *dlogits, float *probs, size_t *correct)
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
        if (labels2) {
            /* Two-label soft target: the dominant label scores the hit. */
            size_t y2 = (size_t)labels2[r];
            const float l = lam[r];
            loss += log(sum) -
                    ((double)l * ((double)z[y] - max) + (1.0 - (double)l) * ((double)z[y2] - max));
            hits += arg == (l >= 0.5f ? y : y2);
            if (!e) continue;
            const float inv = (float)(1.0 / sum);
            for (size_t j = 0; j < classes; j++) {
                float p = e[j] * inv;
                if (probs) probs[r * classes + j] = p;
                float t = (j == y ? l : 0.0f) + (j == y2 ? 1.0f - l : 0.0f);
                if (dlogits) dlogits[r * classes + j] = (p - t) * scale;
            }
            continue;
        }
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
