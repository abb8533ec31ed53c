/*
 * infer.h: prediction of a level-0 region with every class's model.
 *
 * The engine loads each class's newest model once and swaps in a newer one
 * atomically when it appears (infer_engine_reload, or a promoted model from
 * training).  Predictions run on a bounded pool of workers; when every
 * worker is busy a request fails at once with AAPI_ERROR_BUSY.
 */
#pragma once

#include "annot/annot.h"
#include "common/config.h"
#include "nn/nn.h"
#include "slide/slide.h"

#include <glib.h>
#include <stdbool.h>

typedef struct InferEngine InferEngine;

typedef struct {
  AnnotSet *annotations;   /* level-0 coordinates, named <Class>_<NNN> */
  /* Per class: the model version (checkpoint file name) used, in label
   * order; NULL entries for classes without a model. */
  GPtrArray *class_names;
  GPtrArray *model_versions;
} InferResult;

void infer_result_free(InferResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InferResult, infer_result_free)

InferEngine *infer_engine_new(const AapiConfig *config, SlideCache *slides,
                              GError **error);
void infer_engine_free(InferEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InferEngine, infer_engine_free)

/* Rescans every class's model folder and swaps in newer models. */
bool infer_engine_reload(InferEngine *engine, GError **error);
/* Installs a model for a class now (after a promotion). */
void infer_engine_set_model(InferEngine *engine, const char *class_name,
                            NnModel *model, const char *version);

/* Errors: NOT_FOUND (slide), INVALID (region outside the slide or empty),
 * TOO_LARGE (over max_predict_pixels), BUSY (every worker busy). */
InferResult *infer_predict_region(InferEngine *engine, const char *slide_id,
                                  gint64 x, gint64 y, gint64 width,
                                  gint64 height, GError **error);
