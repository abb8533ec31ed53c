/*
 * train.h: online learning: training data from the newest annotations,
 * fine-tuning per class, the promotion rule, and the background scheduler.
 */
#pragma once

#include "common/config.h"
#include "infer/infer.h"
#include "slide/slide.h"
#include "store/store.h"

#include <glib.h>
#include <stdbool.h>

typedef struct TrainScheduler TrainScheduler;

typedef struct {
  const char *only_class;  /* NULL: every class */
  bool bootstrap;          /* train from scratch when a class has no model */
  bool force;              /* run even when no annotation changed */
} TrainOptions;

/* Runs one training cycle now, in this thread (the CLI's `aapi train`). */
bool train_run_cycle(const AapiConfig *config, AapiStore *store,
                     SlideCache *slides, InferEngine *engine,
                     const TrainOptions *options, GError **error);

/* The background worker of `aapi serve`. */
TrainScheduler *train_scheduler_start(const AapiConfig *config,
                                      AapiStore *store, SlideCache *slides,
                                      InferEngine *engine, GError **error);
void train_scheduler_stop(TrainScheduler *scheduler);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TrainScheduler, train_scheduler_stop)

/* Asks for a cycle now; false with CONFLICT when one is running. */
bool train_scheduler_trigger(TrainScheduler *scheduler,
                             const TrainOptions *options, GError **error);
/* The running cycle's progress as JSON text (class, epoch, batch, loss),
 * or "null"; newly allocated. */
char *train_scheduler_progress_json(TrainScheduler *scheduler);

/* The model a class serves (a new reference) and its version (the file
 * name): engine's after a rescan, or without an engine the newest file
 * in <model_root>/<Class>/ that loads, as the engine would choose; NULL
 * when the class has none. */
NnModel *train_served_model(const AapiClassInfo *info, InferEngine *engine,
                            char **version);
