/*
 * train-eval.c: pixel F1 of a class's model over validation patches.
 */
#include "train-private.h"

#include "common/aapi-error.h"

#define EVAL_BATCH 8

/* Adds one batch's confusion counts; the mask is centre-cropped to the
 * network's output when the network does not pad. */
static void count_batch(const float *logits, const guint8 *masks, int n,
                        int patch, int oh, int ow, guint64 *tp,
                        guint64 *fp, guint64 *fn)
{
  gsize out_area = (gsize) oh * ow;
  int dy = (patch - oh) / 2, dx = (patch - ow) / 2;

  for (int b = 0; b < n; b++) {
    const float *l0 = logits + (gsize) b * 2 * out_area;
    const float *l1 = l0 + out_area;
    const guint8 *mask = masks + (gsize) b * patch * patch;
    for (int y = 0; y < oh; y++) {
      for (int x = 0; x < ow; x++) {
        gsize i = (gsize) y * ow + x;
        bool predicted = l1[i] > l0[i];
        bool truth = mask[(gsize) (y + dy) * patch + x + dx] != 0;
        *tp += predicted && truth;
        *fp += predicted && !truth;
        *fn += !predicted && truth;
      }
    }
  }
}

bool train_eval_f1(NnModel *model, const TrainPatches *patches, double *f1,
                   GError **error)
{
  const NnHparams *hp = nn_model_get_hparams(model);
  int patch = patches->patch, oh = 0, ow = 0;

  if (!infer_model_check_class(hp, error))
    return false;
  if (!nn_output_size(hp, patch, patch, &oh, &ow, error))
    return false;

  g_autoptr(NnRunner) runner = nn_runner_new(model, error);
  if (runner == NULL)
    return false;

  gsize area = (gsize) patch * patch;
  g_autofree float *input = g_new(float, EVAL_BATCH * 3 * area);
  g_autofree float *logits = g_new(float, EVAL_BATCH * 2 * (gsize) oh * ow);
  guint64 tp = 0, fp = 0, fn = 0;

  for (guint start = 0; start < patches->n; start += EVAL_BATCH) {
    int n = (int) MIN(EVAL_BATCH, patches->n - start);
    train_patches_to_input(patches->img->data + start * area * 3, n, patch,
                           input);
    if (!nn_runner_forward(runner, input, n, patch, patch, logits, error))
      return false;
    count_batch(logits, patches->mask->data + start * area, n, patch, oh,
                ow, &tp, &fp, &fn);
  }

  /* No positive pixel anywhere, predicted or true: nothing was missed. */
  guint64 denominator = 2 * tp + fp + fn;
  *f1 = denominator ? (double) (2 * tp) / (double) denominator : 1.0;
  return true;
}
