/*
 * infer-model.c: which model files can serve a class.
 */
#include "infer/infer.h"

#include "common/aapi-error.h"

#include <string.h>

bool infer_model_check_class(const NnHparams *hparams, GError **error)
{
  if (hparams->n_classes != 2) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "a class model must have 2 outputs (background, class), "
                "this one has %d", hparams->n_classes);
    return false;
  }
  if (hparams->in_channels != 3) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "a class model must have 3 input channels (RGB), this one "
                "has %d", hparams->in_channels);
    return false;
  }
  return true;
}

bool infer_model_fits_class(const NnHparams *hparams,
                            const AapiClassInfo *info, GError **error)
{
  int grid = 1 << (hparams->depth - 1);
  int oh = 0, ow = 0;

  if (!infer_model_check_class(hparams, error))
    return false;
  if (!hparams->padding) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the model has padding off; class %s predicts with whole "
                "%d px tiles, which needs padding on", info->name,
                info->patch_size);
    return false;
  }
  if (info->patch_size % grid != 0 ||
      !nn_output_size(hparams, info->patch_size, info->patch_size, &oh,
                      &ow, NULL) ||
      oh != info->patch_size || ow != info->patch_size) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "patch_size %d of class %s (extractor config) does not "
                "suit this depth-%d model, which needs a multiple of %d "
                "(2^(depth-1))", info->patch_size, info->name,
                hparams->depth, grid);
    return false;
  }
  return true;
}
