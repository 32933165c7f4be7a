/* Softmax with cross-entropy on logits [rows x classes]. */
#ifndef DPT_NN_SOFTMAX_XENT_H
#define DPT_NN_SOFTMAX_XENT_H

#include <stddef.h>
#include <stdint.h>

/* Returns the summed loss over rows (double), counts correct argmax predictions into
 * *correct, and, when dlogits is not NULL, writes dL/dlogits = (softmax - onehot) * scale
 * (scale = 1 / global batch makes the summed micro-shard gradients a batch mean).
 * probs (may be NULL) receives the softmax probabilities. Labels must be < classes. */
double dpt_softmax_xent(const float *logits, const int32_t *labels, size_t rows, size_t classes,
                        float scale, float *dlogits, float *probs, size_t *correct);

/* The same with soft targets of two labels a row (mixup, cutmix): row r's target is
 * lam[r] on labels[r] plus 1 - lam[r] on labels2[r], so the loss is
 * -(lam log p[y] + (1 - lam) log p[y2]) and dL/dlogits = (softmax - target) * scale. A hit is
 * an argmax equal to the dominant label (labels[r] when lam[r] >= 0.5, else labels2[r]).
 * labels2 == NULL is dpt_softmax_xent. */
double dpt_softmax_xent_soft(const float *logits, const int32_t *labels, const int32_t *labels2,
                             const float *lam, size_t rows, size_t classes, float scale,
                             float *dlogits, float *probs, size_t *correct);

#endif
