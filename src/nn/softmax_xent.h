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

#endif
