/*
 * infer-engine-private.h: the engine's state, shared by the engine and the
 * prediction of a region.
 */
#pragma once

#include "common/file-read.h"

#include "infer/infer.h"
#include "infer/infer-verdict.h"

/* Context kept around each big tile, in resized pixels: beyond it a
 * tile's edges no longer change the network's output (measured with
 * bench/predict on depth-5 models). */
#define INFER_MARGIN 96
/* Upper bound of a big tile's input edge: memory versus margin cost. */
#define INFER_MAX_TILE 1024
/* Probe window edge (resized pixels) and the agreement that allows big
 * tiles or int8: above the 0.98 kept after opening, for a safety margin.
 * Verdict files record all four, so changing one makes them stale. */
#define INFER_PROBE_SIZE 192
#define INFER_PROBE_IOU 0.99

/* How a model's heatmaps are computed, decided on its first use. */
enum {
  INFER_TILING_UNKNOWN,
  INFER_TILING_FAST,      /* big tiles agree with the old tiling */
  INFER_TILING_EXACT,     /* the model leans on tile edges */
};

/* Whether a model's 3x3 convolutions run in int8, decided on first use. */
enum {
  INFER_ARITH_UNKNOWN,
  INFER_ARITH_F32,
  INFER_ARITH_INT8,
};

/* A served model: reference counted (atomic); the model never changes. */
typedef struct {
  NnModel *model;
  char *version;          /* the file name, an ISO timestamp */
  gint tiling;            /* INFER_TILING_*, atomic */
  gint arith;             /* INFER_ARITH_*, atomic; INT8 once ranges set */
  GArray *ranges;         /* calibration (nn_runner_get_ranges), atomic
                           * pointer, set once */
  InferVerdictFile *verdict_file; /* under verdict_lock once shared;
                                   * NULL: verdicts kept in memory only */
  GMutex verdict_lock;    /* guards verdict and orders its writes */
  InferVerdict verdict;   /* the decided verdicts, as in the file */
} InferModelEntry;

typedef struct {
  bool busy;                   /* under the engine lock */
  NnRunner **runners;          /* per class, NULL until first used */
  InferModelEntry **built_for; /* the entry each runner was built for */
} InferWorker;

/* A model file that failed to load, and the stat of the content that
 * failed: the same content is not loaded (nor warned about) again. */
typedef struct {
  AapiFileStamp stamp;
  char *message;
} InferBrokenFile;

struct InferEngine {
  const AapiConfig *config;
  SlideCache *slides;
  GMutex lock;                 /* guards current[] and workers' busy */
  GMutex scan_lock;            /* one model folder scan at a time */
  guint n_classes;
  InferModelEntry **current;   /* per class, NULL without a model */
  /* Per class: file name -> InferBrokenFile, replaced by each scan;
   * written under both locks, read under either. */
  GHashTable **broken;
  guint n_workers;
  InferWorker *workers;
  InferTilingMode tiling_mode;
  InferPrecisionMode precision_mode;
};

InferModelEntry *infer_model_entry_ref(InferModelEntry *entry);
void infer_model_entry_unref(InferModelEntry *entry);

/* The folder of a class's model files: <model_root or model_dir>/<Class>. */
char *infer_class_model_dir(const AapiConfig *config,
                            const AapiClassInfo *info);

/* infer-verdict.c: presets a new entry's tiling, arithmetic and ranges
 * from its verdict file when one matches. */
void infer_entry_read_verdicts(InferModelEntry *entry,
                               const AapiConfig *config,
                               const AapiClassInfo *info);
/* Record a decided verdict with the entry and in its file. */
void infer_entry_note_tiling(InferModelEntry *entry, int tiling,
                             double iou);
void infer_entry_note_arith(InferModelEntry *entry, int arith, double iou,
                            GArray *ranges);

/* A free worker (marked busy) or AAPI_ERROR_BUSY. */
InferWorker *infer_worker_acquire(InferEngine *engine, GError **error);
void infer_worker_release(InferEngine *engine, InferWorker *worker);

/* References to every class's current entry (NULL where none); release
 * each with infer_model_entry_unref and the array with g_free. */
InferModelEntry **infer_engine_snapshot(InferEngine *engine);

/* The worker's runner for class c, rebuilt when the entry changed. */
NnRunner *infer_worker_runner(InferWorker *worker, guint c,
                              InferModelEntry *entry, GError **error);
