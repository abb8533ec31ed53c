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
  for (guint c = 0; c < engine->n_classes; c++) {
    infer_model_entry_unref(engine->current[c]);
    if (engine->broken[c])
      g_hash_table_unref(engine->broken[c]);
  }
  g_free(engine->workers);
  g_free(engine->current);
  g_free(engine->broken);
  g_mutex_clear(&engine->lock);
  g_mutex_clear(&engine->scan_lock);
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

static gint compare_newest_first(gconstpointer a, gconstpointer b)
{
  return infer_model_name_compare(*(const char *const *) a,
                                  *(const char *const *) b);
}

GPtrArray *infer_model_names(const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GDir) listing = g_dir_open(dir, 0, NULL);
  const char *name;

  if (listing == NULL)
    return names;
  while ((name = g_dir_read_name(listing)) != NULL) {
    g_autofree char *path = g_build_filename(dir, name, NULL);

    /* Hidden and temporary files are writes in progress. */
    if (name[0] == '.' || g_str_has_suffix(name, ".tmp") ||
        !g_file_test(path, G_FILE_TEST_IS_REGULAR))
      continue;
    g_ptr_array_add(names, g_strdup(name));
  }
  g_ptr_array_sort(names, compare_newest_first);
  return names;
}

/* A model file that loads and can serve the class: the scan skips any
 * other one as it skips a damaged one, so no prediction reaches a model
 * whose shapes the tiling cannot hold. */
static NnModel *load_class_model(const AapiClassInfo *info,
                                 const char *path, GError **error)
{
  g_autoptr(NnModel) model = nn_model_load_any(path, error);

  if (model == NULL ||
      !infer_model_fits_class(nn_model_get_hparams(model), info, error))
    return NULL;
  return g_steal_pointer(&model);
}

NnModel *infer_load_newest_model(const char *dir, const AapiClassInfo *info,
                                 char **version)
{
  g_autoptr(GPtrArray) names = infer_model_names(dir);

  for (guint i = 0; i < names->len; i++) {
    const char *name = names->pdata[i];
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) local = NULL;
    NnModel *model = load_class_model(info, path, &local);

    if (model) {
      *version = g_strdup(name);
      return model;
    }
    g_warning("class %s: model file %s skipped: %s", info->name, name,
              local->message);
  }
  *version = NULL;
  return NULL;
}

char *infer_class_model_dir(const AapiConfig *config,
                            const AapiClassInfo *info)
{
  const char *root = info->model_root ? info->model_root
                                      : config->model_dir;

  return g_build_filename(root, info->name, NULL);
}

static void broken_file_free(gpointer data)
{
  InferBrokenFile *file = data;

  g_free(file->message);
  g_free(file);
}

/* Tries one model file of class c and installs it when it loads and
 * fits the class.  One that does not is noted in broken, with a
 * warning unless the previous scan saw the same content fail. */
static bool try_model_file(InferEngine *engine, guint c, const char *dir,
                           const char *name, GHashTable *broken)
{
  const AapiClassInfo *info = engine->config->classes->pdata[c];
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autofree InferBrokenFile *now = g_new0(InferBrokenFile, 1);
  const InferBrokenFile *seen = engine->broken[c]
      ? g_hash_table_lookup(engine->broken[c], name) : NULL;
  g_autoptr(GError) local = NULL;

  /* Stat before reading: a write after it shows at the next scan. */
  if (!aapi_file_stamp(path, &now->stamp))
    return false;
  if (seen && aapi_file_stamp_equal(&seen->stamp, &now->stamp)) {
    now->message = g_strdup(seen->message);
    g_hash_table_insert(broken, g_strdup(name), g_steal_pointer(&now));
    return false;
  }
  g_autoptr(NnModel) model = load_class_model(info, path, &local);
  if (model) {
    infer_engine_set_model(engine, info->name, model, name);
    return true;
  }
  g_warning("class %s: model file %s skipped: %s", info->name, name,
            local->message);
  now->message = g_strdup(local->message);
  g_hash_table_insert(broken, g_strdup(name), g_steal_pointer(&now));
  return false;
}

/* Serves the class's newest model file that loads and fits.  The scan stops at
 * the served file: every newer one was tried and failed. */
static void reload_class(InferEngine *engine, guint c)
{
  const AapiClassInfo *info = engine->config->classes->pdata[c];
  g_autofree char *dir = infer_class_model_dir(engine->config, info);
  g_autoptr(GPtrArray) names = infer_model_names(dir);
  g_autofree char *serving = current_version(engine, c);
  GHashTable *broken = g_hash_table_new_full(g_str_hash, g_str_equal,
                                             g_free, broken_file_free);
  GHashTable *old;

  for (guint i = 0; i < names->len; i++) {
    if (g_strcmp0(names->pdata[i], serving) == 0 ||
        try_model_file(engine, c, dir, names->pdata[i], broken))
      break;
  }
  g_mutex_lock(&engine->lock);
  old = engine->broken[c];
  engine->broken[c] = broken;
  g_mutex_unlock(&engine->lock);
  if (old)
    g_hash_table_unref(old);
}

bool infer_engine_reload(InferEngine *engine, GError **error)
{
  g_mutex_lock(&engine->scan_lock);
  for (guint c = 0; c < engine->n_classes; c++)
    reload_class(engine, c);
  g_mutex_unlock(&engine->scan_lock);
  return true;
}

NnModel *infer_engine_get_model(InferEngine *engine, const char *class_name,
                                char **version)
{
  int c = class_index(engine, class_name);
  NnModel *model = NULL;

  *version = NULL;
  if (c < 0)
    return NULL;
  g_mutex_lock(&engine->lock);
  if (engine->current[c]) {
    model = nn_model_ref(engine->current[c]->model);
    *version = g_strdup(engine->current[c]->version);
  }
  g_mutex_unlock(&engine->lock);
  return model;
}

void infer_model_failure_free(InferModelFailure *failure)
{
  if (failure == NULL)
    return;
  g_free(failure->version);
  g_free(failure->message);
  g_free(failure);
}

static gint compare_failures(gconstpointer a, gconstpointer b)
{
  const InferModelFailure *fa = *(InferModelFailure *const *) a;
  const InferModelFailure *fb = *(InferModelFailure *const *) b;

  return infer_model_name_compare(fa->version, fb->version);
}

GPtrArray *infer_engine_failures(InferEngine *engine,
                                 const char *class_name)
{
  GPtrArray *failures = g_ptr_array_new_with_free_func(
      (GDestroyNotify) infer_model_failure_free);
  int c = class_index(engine, class_name);
  GHashTableIter iter;
  gpointer name, value;

  if (c < 0)
    return failures;
  g_mutex_lock(&engine->lock);
  if (engine->broken[c]) {
    g_hash_table_iter_init(&iter, engine->broken[c]);
    while (g_hash_table_iter_next(&iter, &name, &value)) {
      InferModelFailure *failure = g_new0(InferModelFailure, 1);

      failure->version = g_strdup(name);
      failure->message = g_strdup(((InferBrokenFile *) value)->message);
      g_ptr_array_add(failures, failure);
    }
  }
  g_mutex_unlock(&engine->lock);
  g_ptr_array_sort(failures, compare_failures);
  return failures;
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
  g_mutex_init(&engine->scan_lock);
  engine->config = config;
  engine->slides = slides;
  engine->n_classes = config->classes ? config->classes->len : 0;
  engine->current = g_new0(InferModelEntry *, engine->n_classes);
  engine->broken = g_new0(GHashTable *, engine->n_classes);
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
