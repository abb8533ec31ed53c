/*
 * train-private.h: the parts of online learning, shared inside src/train.
 */
#pragma once

#include "annot/annot.h"
#include "infer/infer.h"
#include "train/train.h"
#include "common/config.h"
#include "nn/nn.h"
#include "slide/slide.h"
#include "store/store.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* A set of square RGB patches with their binary masks, all patch x patch:
 * img is n*patch*patch*3 bytes (HWC), mask n*patch*patch bytes (0 or 1). */
typedef struct {
  int patch;
  guint n;
  GByteArray *img;
  GByteArray *mask;
} TrainPatches;

TrainPatches *train_patches_new(int patch);
void train_patches_free(TrainPatches *patches);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrainPatches, train_patches_free)
void train_patches_append(TrainPatches *dst, const TrainPatches *src);
void train_patches_add(TrainPatches *patches, const guint8 *img,
                       const guint8 *mask);

/* Fills polygons (even-odd, holes and parts included) with 1 in a w x h
 * mask, scaling level-0 coordinates by scale after subtracting (x0, y0). */
void train_raster_annotation(const Annotation *annotation, double x0,
                             double y0, double scale, guint8 *mask, int w,
                             int h);

/* False with AAPI_ERROR_CONFLICT "cancelled" once *cancel is non-zero
 * (cancel may be NULL: never).  Every loop of a cycle that may run long
 * asks it, so that a stopping server stops its cycle within a moment. */
bool train_check_cancel(const gint *cancel, GError **error);

/* The annotations clipped to a slide's level-0 rectangle [0, width] x
 * [0, height] with GEOS: those wholly outside are left out, those
 * crossing the edge are cut at it (holes and parts kept), those inside
 * are copied as drawn.  One GEOS cannot clip is left out with a warning.
 * Returns a new array of Annotation*, or NULL when cancelled. */
GPtrArray *train_clip_annotations(GPtrArray *annotations, double width,
                                  double height, const gint *cancel,
                                  GError **error);

/* A level-0 square that covers some of a class's polygons. */
typedef struct {
  gint64 x, y, size;
} TrainSquare;

/* Squares of side size covering every annotation in the array, on a
 * width x height slide (cluster the centroids; polygons larger than a
 * square get a grid of squares).  Only what lies on the slide is
 * covered, and never with more squares than the slide's own tiling by
 * squares has: past that, the tiles touched by polygons are the cover.
 * Returns a GArray of TrainSquare, sorted by (y, x). */
GArray *train_cover_squares(GPtrArray *annotations, gint64 size,
                            gint64 width, gint64 height);

/* Does a group name belong to a class?  Compares case-insensitively and
 * treats singular and plural as one (Tubules / Tubule). */
bool train_group_matches_class(const char *group, const char *class_name);

/* The extractor of one class over one square: read at level 0 and resized
 * by the class's resize with prediction's cv2 cubic, reflect-padded as
 * prediction pads, patches at stride, tissue kept (mean red <= 220) when
 * positive or drawn with probability 0.2 from rng. */
bool train_extract_square(Slide *slide, const AapiClassInfo *info,
                          GPtrArray *annotations, const TrainSquare *square,
                          GRand *rng, TrainPatches *out, GError **error);

/* Training and held-out validation patches of one class from every
 * annotated slide's newest version, cached under <data>/train-cache.
 * n_slides counts the slides that had polygons of the class; a slide
 * whose file cannot be read is left out (with a warning) and counted in
 * n_skipped.  When *cancel becomes non-zero, making the data stops with
 * AAPI_ERROR_CONFLICT. */
typedef struct {
  TrainPatches *train;
  TrainPatches *val;        /* the HDF5 set when the class has one */
  guint n_slides;
  guint n_skipped;
  guint n_squares;
  char *fingerprint;        /* what the data was made from */
} TrainDataset;

void train_dataset_free(TrainDataset *dataset);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrainDataset, train_dataset_free)

TrainDataset *train_dataset_build(const AapiConfig *config, AapiStore *store,
                                  SlideCache *slides,
                                  const AapiClassInfo *info,
                                  const gint *cancel, GError **error);

/* The old service's validation set <data>/roi/<Class>_val.h5 (img uint8
 * N,256,256,3 and mask uint8 N,256,256); NULL without error when absent. */
TrainPatches *train_val_load_h5(const AapiConfig *config,
                                const AapiClassInfo *info, GError **error);

/* Random flips, 90-degree rotations and colour jitter, in place on one
 * patch (HWC image, mask). */
void train_augment(guint8 *img, guint8 *mask, int patch, GRand *rng);

/* Network input from HWC uint8 patches: NCHW float in [0, 1], value / 255
 * as prediction's infer_window_planar. */
void train_patches_to_input(const guint8 *img, int n, int patch,
                            float *input);

/* Pixel F1 of the positive class (1) of a model over patches. */
bool train_eval_f1(NnModel *model, const TrainPatches *patches, double *f1,
                   GError **error);

/* What a running cycle is doing, for GET /api/v1/jobs. */
typedef struct {
  GMutex lock;
  bool running;
  char *class_name;
  char *phase;          /* "data", "validate", "train", "save" */
  guint epoch, epochs;
  guint batch, batches;
  double loss;
  gint64 started;       /* unix seconds */
} TrainProgress;

void train_progress_set(TrainProgress *progress, const char *class_name,
                        const char *phase);
void train_progress_step(TrainProgress *progress, guint epoch,
                         guint epochs, guint batch, guint batches,
                         double loss);
/* JSON text of the progress, "null" when idle; newly allocated. */
char *train_progress_to_json(TrainProgress *progress);

typedef struct {
  const AapiConfig *config;
  AapiStore *store;
  SlideCache *slides;
  InferEngine *engine;      /* NULL: no server to update */
  TrainProgress *progress;  /* may be NULL */
  gint *cancel;             /* set to 1 to stop at the next step */
} TrainContext;


/* One class: data, F1 before, fine-tuning, F1 after, the decision, the
 * checkpoint, the store record.  The run record is returned even when the
 * class was skipped. */
StoreTrainRun *train_run_class(TrainContext *context,
                               const AapiClassInfo *info, bool bootstrap,
                               GError **error);

/* Runs one cycle when annotations changed (or options->force), holding
 * the store's cycle lock; CONFLICT when another process holds it. */
bool train_cycle(TrainContext *context, const TrainOptions *options,
                 bool *ran, GError **error);
