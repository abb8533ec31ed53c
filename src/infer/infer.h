/*
 * infer.h: prediction of a level-0 region with every class's model.
 *
 * The engine loads each class's newest model file that loads, once, and
 * swaps in a newer one atomically when it appears (infer_engine_reload,
 * or a promoted model from training).  Predictions run on a bounded pool
 * of workers; when every worker is busy a request fails at once with
 * AAPI_ERROR_BUSY.
 */
#pragma once

#include "annot/annot.h"
#include "common/config.h"
#include "nn/nn.h"
#include "slide/slide.h"

#include <gio/gio.h>
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

/* Loads every class's newest model from <model_root>/<Class>/ (aapi
 * weight files and .ckpt checkpoints) that loads and fits the class
 * (infer_model_fits_class): a file that does not is skipped for the
 * next older one, with a warning naming it and why.
 * Classes without a loadable file are skipped.  config and slides must
 * outlive the engine; slides may be NULL when only infer_predict_slide
 * is used. */
InferEngine *infer_engine_new(const AapiConfig *config, SlideCache *slides,
                              GError **error);
void infer_engine_free(InferEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InferEngine, infer_engine_free)

/* Whether a model can be a class's model at all: RGB in (3 channels),
 * background and class out (2 outputs).  The prediction and training
 * code size their buffers by these, so any other model is refused
 * (AAPI_ERROR_INVALID, naming what is wrong) before it reaches them. */
bool infer_model_check_class(const NnHparams *hparams, GError **error);

/* infer_model_check_class, and whether the model predicts with the
 * class's extractor settings: the old tiling keeps every pixel of a
 * patch_size tile, so the output must be as large as the input, which
 * needs padding on and patch_size a multiple of 2^(depth-1). */
bool infer_model_fits_class(const NnHparams *hparams,
                            const AapiClassInfo *info, GError **error);

/* File names in a class's model folder, newest first (see
 * infer_model_name_compare), skipping hidden and .tmp files (writes in
 * progress) and folders; empty when there is no folder. */
GPtrArray *infer_model_names(const char *dir);

/* Which of two model file names is the newer: < 0 when a is newer than
 * b.  Names starting with an ISO 8601 timestamp (YYYY-MM-DDTHH:MM:SS,
 * optional fraction and zone, as aapi and the old service write them)
 * order by that time (equal times by name) and are newer than every name
 * without one, so a stray "model.ckpt" never shadows an import; names
 * without one order by name, the larger the newer. */
int infer_model_name_compare(const char *a, const char *b);

/* The newest model file of the class in dir that loads and fits the
 * class (infer_model_fits_class), its name in *version, as the engine
 * chooses at start (for the commands that run without one); each newer
 * file that fails is a warning naming it and why.  NULL, *version NULL,
 * when none does. */
NnModel *infer_load_newest_model(const char *dir, const AapiClassInfo *info,
                                 char **version);

/* Rescans every class's model folder and serves each class's newest file
 * that loads and fits the class.  A file that fails is remembered with
 * its size, times and inode and not read again until one of them
 * changes, so a damaged or unfit file costs one warning, and a copy
 * still being written is loaded once it is complete. */
bool infer_engine_reload(InferEngine *engine, GError **error);
/* Installs a model for a class now (after a promotion); takes a new
 * reference to model. */
void infer_engine_set_model(InferEngine *engine, const char *class_name,
                            NnModel *model, const char *version);
/* The model the class serves now (a new reference) and its version, or
 * NULL and *version NULL. */
NnModel *infer_engine_get_model(InferEngine *engine, const char *class_name,
                                char **version);

/* A model file the last scan skipped because it does not load or does
 * not fit its class. */
typedef struct {
  char *version;   /* the file name */
  char *message;   /* why it does not load or fit */
} InferModelFailure;

void infer_model_failure_free(InferModelFailure *failure);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InferModelFailure, infer_model_failure_free)

/* InferModelFailure* of a class's newer-than-served files that the last
 * scan skipped, newest first. */
GPtrArray *infer_engine_failures(InferEngine *engine,
                                 const char *class_name);

/* Errors: NOT_FOUND (slide), INVALID (region outside the slide or empty),
 * TOO_LARGE (over max_predict_pixels), BUSY (every worker busy). */
InferResult *infer_predict_region(InferEngine *engine, const char *slide_id,
                                  gint64 x, gint64 y, gint64 width,
                                  gint64 height, GError **error);

/* The same, stopped by cancelling cancellable (from any thread): the
 * prediction checks it between classes and before each network run (a
 * batch of tiles, a fraction of a second), then fails with
 * G_IO_ERROR_CANCELLED, releases its worker and leaves the engine as it
 * was.  cancellable may be NULL. */
InferResult *infer_predict_region_cancellable(InferEngine *engine,
                                              const char *slide_id,
                                              gint64 x, gint64 y,
                                              gint64 width, gint64 height,
                                              GCancellable *cancellable,
                                              GError **error);

/* The same for an open slide (the command line's --slide-file). */
InferResult *infer_predict_slide(InferEngine *engine, Slide *slide,
                                 gint64 x, gint64 y, gint64 width,
                                 gint64 height, GError **error);
InferResult *infer_predict_slide_cancellable(InferEngine *engine,
                                             Slide *slide, gint64 x,
                                             gint64 y, gint64 width,
                                             gint64 height,
                                             GCancellable *cancellable,
                                             GError **error);

/* How heatmaps are computed.  AUTO (the default) probes each model on
 * its first prediction and uses big tiles with margins when they agree
 * with the old 256/64 tiling, else repeats that tiling tile by tile.
 * The verdict is kept in <data_dir>/model-checks/<Class>/<version>.ini,
 * so a model file is probed once, not once per start.
 * AAPI_PREDICT_TILING=auto|fast|exact sets it at start. */
typedef enum {
  INFER_MODE_AUTO,
  INFER_MODE_FAST,
  INFER_MODE_EXACT,
} InferTilingMode;

void infer_engine_set_tiling(InferEngine *engine, InferTilingMode mode);

/* The arithmetic of the 3x3 convolutions.  F32 (the default) never
 * quantizes.  AUTO calibrates each model on its first prediction (a
 * float32 run of the probe window records every convolution's input
 * range), runs the window again in int8 and keeps int8 when the two masks
 * agree at IoU >= 0.99, else float32; the verdict and the calibration
 * are kept with the tiling's.  INT8 skips the check.
 * AAPI_PREDICT_PRECISION=f32|auto|int8 sets it at start.  float32 is the
 * default because the models measured so far (bench/predict) amplify
 * int8's rounding far beyond what the check allows, and the check costs
 * two runs of the probe window per model.  BF16 rounds the 3x3
 * convolutions' inputs and weights to bfloat16 (AMX or AVX512-BF16
 * CPUs; a prediction elsewhere fails with a message), without a check. */
typedef enum {
  INFER_PRECISION_AUTO,
  INFER_PRECISION_INT8,
  INFER_PRECISION_F32,
  INFER_PRECISION_BF16,
} InferPrecisionMode;

void infer_engine_set_precision(InferEngine *engine,
                                InferPrecisionMode mode);

/* The result as ASAP XML, the compatible route's answer. */
GString *infer_result_to_asap(const InferResult *result);
/* The result as a GeoJSON FeatureCollection with a "models" member:
 * {"<Class>": "<version>" or null}. */
GString *infer_result_to_geojson(const InferResult *result);
