/*
 * nn-adam.c: the Adam optimiser, step for step as torch.optim.Adam does it
 * (bias-corrected moments, eps added after the square root of the
 * corrected second moment, optional L2 weight decay on the gradient).
 *
 * oneDNN has no optimiser primitive, so this is a plain loop; it runs once
 * per parameter per step and costs little next to the convolutions.
 */
#include "nn-train-private.h"

#include <math.h>

void nn_adam_update(NnParam *param, const NnAdamParams *adam, int64_t step)
{
  float *p = param->tensor->data;
  float *m = param->m, *v = param->v;
  const float *g = param->grad;
  float beta1 = (float) adam->beta1, beta2 = (float) adam->beta2;
  float wd = (float) adam->weight_decay, eps = (float) adam->eps;
  double correction1 = 1.0 - pow(adam->beta1, (double) step);
  double correction2 = 1.0 - pow(adam->beta2, (double) step);
  float step_size = (float) (adam->lr / correction1);
  float correction2_sqrt = (float) sqrt(correction2);

  /* Float arithmetic in PyTorch's order, so results agree to rounding. */
  for (int64_t i = 0; i < param->tensor->n_elements; i++) {
    float grad = wd != 0.0f ? g[i] + wd * p[i] : g[i];

    m[i] = m[i] * beta1 + grad * (1.0f - beta1);
    v[i] = v[i] * beta2 + grad * grad * (1.0f - beta2);
    p[i] -= step_size * (m[i] / (sqrtf(v[i]) / correction2_sqrt + eps));
  }
}
