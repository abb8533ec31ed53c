/*
 * train-cycle.c: a training cycle over every class, and its progress.
 *
 * A cycle runs in one process at a time across every process sharing the
 * database (a named lock in the store), and only when some slide got a new
 * annotation version since the last cycle (the highest version number is
 * remembered in the store), unless forced.
 */
#include "train-private.h"

#include "common/aapi-error.h"

#include <jansson.h>
#include <math.h>

#define CYCLE_LOCK "train-cycle"
#define LAST_SEQ_KEY "train.last_version_seq"

void train_progress_set(TrainProgress *progress, const char *class_name,
                        const char *phase)
{
  g_mutex_lock(&progress->lock);
  if (g_strcmp0(progress->class_name, class_name) != 0) {
    g_free(progress->class_name);
    progress->class_name = g_strdup(class_name);
    progress->epoch = progress->batch = 0;
    progress->loss = NAN;
  }
  g_free(progress->phase);
  progress->phase = g_strdup(phase);
  g_mutex_unlock(&progress->lock);
}

void train_progress_step(TrainProgress *progress, guint epoch,
                         guint epochs, guint batch, guint batches,
                         double loss)
{
  g_mutex_lock(&progress->lock);
  progress->epoch = epoch;
  progress->epochs = epochs;
  progress->batch = batch;
  progress->batches = batches;
  progress->loss = loss;
  g_mutex_unlock(&progress->lock);
}

static json_t *number_or_null(double value)
{
  return isfinite(value) ? json_real(value) : json_null();
}

char *train_progress_to_json(TrainProgress *progress)
{
  g_mutex_lock(&progress->lock);
  if (!progress->running) {
    g_mutex_unlock(&progress->lock);
    return g_strdup("null");
  }
  json_t *json = json_pack("{s:s?, s:s?, s:I, s:I, s:I, s:I, s:o, s:I}",
                           "class", progress->class_name,
                           "phase", progress->phase,
                           "epoch", (json_int_t) progress->epoch,
                           "epochs", (json_int_t) progress->epochs,
                           "batch", (json_int_t) progress->batch,
                           "batches", (json_int_t) progress->batches,
                           "loss", number_or_null(progress->loss),
                           "started", (json_int_t) progress->started);
  g_mutex_unlock(&progress->lock);

  char *text = json_dumps(json, JSON_COMPACT);
  json_decref(json);
  char *copy = g_strdup(text);
  free(text);
  return copy;
}

static void progress_running(TrainProgress *progress, bool running)
{
  if (progress == NULL)
    return;
  g_mutex_lock(&progress->lock);
  progress->running = running;
  progress->started = g_get_real_time() / G_USEC_PER_SEC;
  g_clear_pointer(&progress->class_name, g_free);
  g_clear_pointer(&progress->phase, g_free);
  progress->epoch = progress->epochs = 0;
  progress->batch = progress->batches = 0;
  progress->loss = NAN;
  g_mutex_unlock(&progress->lock);
}

bool train_check_cancel(const gint *cancel, GError **error)
{
  if (cancel == NULL || !g_atomic_int_get(cancel))
    return true;
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_CONFLICT, "cancelled");
  return false;
}

/* The highest version number of every slide (0 when none). */
static bool newest_seq(AapiStore *store, gint64 *seq, GError **error)
{
  g_autoptr(GPtrArray) versions = store_version_list_all(store, error);

  if (versions == NULL)
    return false;
  *seq = 0;
  for (guint i = 0; i < versions->len; i++) {
    StoreVersion *v = versions->pdata[i];
    *seq = MAX(*seq, v->seq);
  }
  return true;
}

static bool annotations_changed(AapiStore *store, gint64 seq, bool *changed,
                                GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *last = store_meta_get(store, LAST_SEQ_KEY, &local);
  gint64 last_seq = -1;

  if (last == NULL && local &&
      !g_error_matches(local, AAPI_ERROR, AAPI_ERROR_NOT_FOUND)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return false;
  }
  if (last && !aapi_parse_int64(last, -1, G_MAXINT64, &last_seq, NULL))
    last_seq = -1;
  *changed = seq != last_seq;
  return true;
}

static bool class_wanted(const TrainOptions *options,
                         const AapiClassInfo *info)
{
  return options->only_class == NULL ||
         g_ascii_strcasecmp(options->only_class, info->name) == 0;
}

/* An unknown --class is told before anything else: before a lock held by
 * another process or a cycle skipped for want of changes hides it. */
static bool check_only_class(const AapiConfig *config,
                             const TrainOptions *options, GError **error)
{
  for (guint i = 0; i < config->classes->len; i++) {
    if (class_wanted(options, config->classes->pdata[i]))
      return true;
  }
  g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
              "no class named '%s' in the label config",
              options->only_class);
  return false;
}

static bool run_classes(TrainContext *context, const TrainOptions *options,
                        GError **error)
{
  const AapiConfig *config = context->config;

  for (guint i = 0; i < config->classes->len; i++) {
    const AapiClassInfo *info = config->classes->pdata[i];
    if (!class_wanted(options, info))
      continue;
    g_autoptr(StoreTrainRun) run = train_run_class(context, info,
                                                   options->bootstrap,
                                                   error);
    if (run == NULL) {
      aapi_error_prefix(error, "%s: ", info->name);
      return false;
    }
  }
  return true;
}

/* Runs a cycle when due; *ran says whether it did. */
static bool cycle_locked(TrainContext *context, const TrainOptions *options,
                         bool *ran, GError **error)
{
  gint64 seq = 0;
  bool changed = true;

  if (!newest_seq(context->store, &seq, error) ||
      !annotations_changed(context->store, seq, &changed, error))
    return false;
  if (!changed && !options->force) {
    g_message("train: no annotation changed since the last cycle; "
              "skipping");
    return true;
  }

  *ran = true;
  progress_running(context->progress, true);
  bool ok = run_classes(context, options, error);
  progress_running(context->progress, false);
  if (!ok)
    return false;

  g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, seq);
  return store_meta_set(context->store, LAST_SEQ_KEY, text, error);
}

/* Shared by the CLI and the scheduler. */
bool train_cycle(TrainContext *context, const TrainOptions *options,
                 bool *ran, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(StoreLock) lock = store_lock_try(context->store, CYCLE_LOCK,
                                             &local);

  *ran = false;
  if (!check_only_class(context->config, options, error))
    return false;
  if (lock == NULL) {
    if (local) {
      g_propagate_error(error, g_steal_pointer(&local));
      return false;
    }
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_CONFLICT,
                "another process is running a training cycle");
    return false;
  }
  return cycle_locked(context, options, ran, error);
}

bool train_run_cycle(const AapiConfig *config, AapiStore *store,
                     SlideCache *slides, InferEngine *engine,
                     const TrainOptions *options, GError **error)
{
  TrainProgress progress = { 0 };
  TrainContext context = {
    .config = config,
    .store = store,
    .slides = slides,
    .engine = engine,
    .progress = &progress,
  };
  bool ran = false;

  g_mutex_init(&progress.lock);
  bool ok = train_cycle(&context, options, &ran, error);
  g_free(progress.class_name);
  g_free(progress.phase);
  g_mutex_clear(&progress.lock);
  return ok;
}
