/*
 * infer-engine.c: the served models and the bounded pool of workers.
 *
 * Each class has a current model entry (model + version), swapped under a
 * mutex; a prediction takes references to the entries it uses, so a swap
 * never pulls a model from under a running prediction.  Workers are slots
 * with one NnRunner per class (oneDNN primitives are compiled once per
 * runner and shape); a request takes a free slot or fails at once with
 * AAPI_ERROR_BUSY.  One prediction uses every core through oneDNN's
 * threads, so few slots are better than many.
 */
#include "infer/infer-engine-private.h"

#include "common/aapi-error.h"
#include "common/log.h"

#include <string.h>

static void entry_clear(gpointer data)
{
  InferModelEntry *entry = data;

  nn_model_unref(entry->model);
  g_free(entry->version);
  if (entry->ranges)
    g_array_unref(entry->ranges);
  infer_verdict_clear(&entry->verdict);
  infer_verdict_file_free(entry->verdict_file);
  g_mutex_clear(&entry->verdict_lock);
}

InferModelEntry *infer_model_entry_ref(InferModelEntry *entry)
{
  return entry ? g_atomic_rc_box_acquire(entry) : NULL;
}

void infer_model_entry_unref(InferModelEntry *entry)
{
  if (entry)
    g_atomic_rc_box_release_full(entry, entry_clear);
}

/* A new entry, its probes' verdicts preset from an earlier run when its
 * verdict file still matches. */
static InferModelEntry *entry_new(InferEngine *engine, guint c,
                                  NnModel *model, const char *version)
{
  InferModelEntry *entry = g_atomic_rc_box_new0(InferModelEntry);

  entry->model = nn_model_ref(model);
  entry->version = g_strdup(version);
  g_mutex_init(&entry->verdict_lock);
  infer_entry_read_verdicts(entry, engine->config,
                            engine->config->classes->pdata[c]);
  return entry;
}

static void worker_clear(InferWorker *worker, guint n_classes)
{
  for (guint c = 0; c < n_classes; c++) {
    nn_runner_free(worker->runners[c]);
    infer_model_entry_unref(worker->built_for[c]);
  }
  g_free(worker->runners);
  g_free(worker->built_for);
}

void infer_engine_free(InferEngine *engine)
{
  if (engine == NULL)
    return;
  for (guint w = 0; w < engine->n_workers; w++)
    worker_clear(&engine->workers[w], engine->n_classes);
  for (guint c = 0; c < engine->n_classes; c++)
    infer_model_entry_unref(engine->current[c]);
  g_free(engine->workers);
  g_free(engine->current);
  g_mutex_clear(&engine->lock);
  g_free(engine);
}

static int class_index(InferEngine *engine, const char *class_name)
{
  for (guint c = 0; c < engine->n_classes; c++) {
    const AapiClassInfo *info = engine->config->classes->pdata[c];

    if (strcmp(info->name, class_name) == 0)
      return (int) c;
  }
  return -1;
}

void infer_engine_set_model(InferEngine *engine, const char *class_name,
                            NnModel *model, const char *version)
{
  int c = class_index(engine, class_name);
  InferModelEntry *old;

  if (c < 0) {
    g_warning("no class %s in the label config: model %s not installed",
              class_name, version);
    return;
  }
  InferModelEntry *entry = entry_new(engine, (guint) c, model, version);

  /* Swap the pointer only under the lock; free the old one outside. */
  g_mutex_lock(&engine->lock);
  old = engine->current[c];
  engine->current[c] = entry;
  g_mutex_unlock(&engine->lock);
  infer_model_entry_unref(old);
  g_message("class %s: serving model %s", class_name, version);
}

/* The version the class serves now (a copy), or NULL. */
static char *current_version(InferEngine *engine, guint c)
{
  char *version;

  g_mutex_lock(&engine->lock);
  version = engine->current[c] ? g_strdup(engine->current[c]->version)
                               : NULL;
  g_mutex_unlock(&engine->lock);
  return version;
}

char *infer_newest_model_name(const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open(dir, 0, NULL);
  const char *name;
  char *best = NULL;

  if (listing == NULL)
    return NULL;
  while ((name = g_dir_read_name(listing)) != NULL) {
    g_autofree char *path = g_build_filename(dir, name, NULL);

    /* Hidden and temporary files are writes in progress. */
    if (name[0] == '.' || g_str_has_suffix(name, ".tmp") ||
        !g_file_test(path, G_FILE_TEST_IS_REGULAR))
      continue;
    if (best == NULL || strcmp(name, best) > 0) {
      g_free(best);
      best = g_strdup(name);
    }
  }
  return best;
}

static NnModel *load_model_file(const char *path, GError **error)
{
  if (g_str_has_suffix(path, ".ckpt"))
    return nn_ckpt_import(path, error);
  return nn_model_load(path, error);
}

char *infer_class_model_dir(const AapiConfig *config,
                            const AapiClassInfo *info)
{
  const char *root = info->model_root ? info->model_root
                                      : config->model_dir;

  return g_build_filename(root, info->name, NULL);
}

/* Loads the class's newest model when it is not the one served. */
static void reload_class(InferEngine *engine, guint c)
{
  const AapiClassInfo *info = engine->config->classes->pdata[c];
  g_autofree char *dir = infer_class_model_dir(engine->config, info);
  g_autofree char *newest = infer_newest_model_name(dir);
  g_autofree char *serving = current_version(engine, c);
  g_autoptr(GError) local = NULL;

  if (newest == NULL || g_strcmp0(newest, serving) == 0)
    return;
  g_autofree char *path = g_build_filename(dir, newest, NULL);
  g_autoptr(NnModel) model = load_model_file(path, &local);

  /* A broken file leaves the served model in place. */
  if (model == NULL) {
    g_warning("class %s: cannot load %s: %s", info->name, path,
              local->message);
    return;
  }
  infer_engine_set_model(engine, info->name, model, newest);
}

bool infer_engine_reload(InferEngine *engine, GError **error)
{
  for (guint c = 0; c < engine->n_classes; c++)
    reload_class(engine, c);
  return true;
}

/* Exact by default: a probe window's agreement does not bound a whole
 * region's, and one class's big-tile errors move the other classes'
 * pixels through the per-pixel combination (bench/predict/README.md).
 * A value that is none of the modes stops the start: a typo must not
 * pass for the default. */
static bool tiling_from_env(InferTilingMode *mode, GError **error)
{
  const char *text = g_getenv("AAPI_PREDICT_TILING");

  *mode = INFER_MODE_EXACT;
  if (g_strcmp0(text, "auto") == 0)
    *mode = INFER_MODE_AUTO;
  else if (g_strcmp0(text, "fast") == 0)
    *mode = INFER_MODE_FAST;
  else if (text && *text && strcmp(text, "exact") != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "AAPI_PREDICT_TILING=%.32s: not exact, auto or fast", text);
    return false;
  }
  return true;
}

static bool precision_from_env(InferPrecisionMode *mode, GError **error)
{
  const char *text = g_getenv("AAPI_PREDICT_PRECISION");

  *mode = INFER_PRECISION_F32;
  if (g_strcmp0(text, "int8") == 0)
    *mode = INFER_PRECISION_INT8;
  else if (g_strcmp0(text, "auto") == 0)
    *mode = INFER_PRECISION_AUTO;
  else if (g_strcmp0(text, "bf16") == 0)
    *mode = INFER_PRECISION_BF16;
  else if (text && *text && strcmp(text, "f32") != 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "AAPI_PREDICT_PRECISION=%.32s: not f32, auto, int8 or bf16",
                text);
    return false;
  }
  return true;
}

/* The network reads AAPI_NN_WINOGRAD itself; a bad value is caught
 * here, before the first prediction. */
static bool winograd_env_check(GError **error)
{
  const char *text = g_getenv("AAPI_NN_WINOGRAD");
  bool on;

  if (text && *text && !aapi_parse_bool(text, &on, error)) {
    aapi_error_prefix(error, "AAPI_NN_WINOGRAD: ");
    return false;
  }
  return true;
}

InferEngine *infer_engine_new(const AapiConfig *config, SlideCache *slides,
                              GError **error)
{
  InferEngine *engine = g_new0(InferEngine, 1);

  g_mutex_init(&engine->lock);
  engine->config = config;
  engine->slides = slides;
  engine->n_classes = config->classes ? config->classes->len : 0;
  engine->current = g_new0(InferModelEntry *, engine->n_classes);
  engine->n_workers = MAX(config->predict_workers, 1);
  engine->workers = g_new0(InferWorker, engine->n_workers);
  for (guint w = 0; w < engine->n_workers; w++) {
    engine->workers[w].runners = g_new0(NnRunner *, engine->n_classes);
    engine->workers[w].built_for = g_new0(InferModelEntry *,
                                          engine->n_classes);
  }
  if (!tiling_from_env(&engine->tiling_mode, error) ||
      !precision_from_env(&engine->precision_mode, error) ||
      !winograd_env_check(error) || !infer_engine_reload(engine, error)) {
    infer_engine_free(engine);
    return NULL;
  }
  return engine;
}

void infer_engine_set_tiling(InferEngine *engine, InferTilingMode mode)
{
  engine->tiling_mode = mode;
}

void infer_engine_set_precision(InferEngine *engine,
                                InferPrecisionMode mode)
{
  engine->precision_mode = mode;
}

InferWorker *infer_worker_acquire(InferEngine *engine, GError **error)
{
  InferWorker *found = NULL;

  g_mutex_lock(&engine->lock);
  for (guint w = 0; w < engine->n_workers && found == NULL; w++) {
    if (!engine->workers[w].busy) {
      found = &engine->workers[w];
      found->busy = true;
    }
  }
  g_mutex_unlock(&engine->lock);
  if (found == NULL)
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_BUSY,
                "every prediction worker is busy; retry shortly");
  return found;
}

void infer_worker_release(InferEngine *engine, InferWorker *worker)
{
  g_mutex_lock(&engine->lock);
  worker->busy = false;
  g_mutex_unlock(&engine->lock);
}

InferModelEntry **infer_engine_snapshot(InferEngine *engine)
{
  InferModelEntry **entries = g_new0(InferModelEntry *, engine->n_classes);

  g_mutex_lock(&engine->lock);
  for (guint c = 0; c < engine->n_classes; c++)
    entries[c] = infer_model_entry_ref(engine->current[c]);
  g_mutex_unlock(&engine->lock);
  return entries;
}

NnRunner *infer_worker_runner(InferWorker *worker, guint c,
                              InferModelEntry *entry, GError **error)
{
  /* A runner is rebuilt only when its class's model was swapped. */
  if (worker->runners[c] != NULL && worker->built_for[c] == entry)
    return worker->runners[c];
  g_clear_pointer(&worker->runners[c], nn_runner_free);
  g_clear_pointer(&worker->built_for[c], infer_model_entry_unref);
  worker->runners[c] = nn_runner_new(entry->model, error);
  if (worker->runners[c] == NULL)
    return NULL;
  worker->built_for[c] = infer_model_entry_ref(entry);
  return worker->runners[c];
}
