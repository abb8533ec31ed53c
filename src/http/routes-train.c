/*
 * routes-train.c: training over HTTP: start a cycle, watch it, list the
 * models of each class with their F1.
 */
#include "http/http-private.h"

#include "common/aapi-error.h"
#include "store/store.h"
#include "train/train.h"

#include <jansson.h>
#include <math.h>

static json_t *number_or_null(double value)
{
  return isfinite(value) ? json_real(value) : json_null();
}

static json_t *time_json(gint64 seconds)
{
  if (seconds <= 0)
    return json_null();
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc(seconds);
  g_autofree char *text = g_date_time_format_iso8601(time);
  return json_string(text);
}

static char *base_name(const char *path)
{
  return path ? g_path_get_basename(path) : NULL;
}

static TrainScheduler *scheduler_of(HttpRequest *request, GError **error)
{
  TrainScheduler *scheduler = request->context->scheduler;

  if (scheduler == NULL)
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_CONFLICT,
                "training is not enabled in this server");
  return scheduler;
}

/* The optional body {"class": NAME, "bootstrap": BOOL}. */
static bool parse_options(HttpRequest *request, TrainOptions *options,
                          char **only_class, GError **error)
{
  *options = (TrainOptions) { .force = true };
  /* ?class=X would otherwise be ignored and train every class. */
  if (request->query && g_hash_table_size(request->query) > 0) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "options go in a JSON body like {\"class\": "
                "\"Glomerulus\", \"bootstrap\": false}, not in the "
                "query");
    return false;
  }
  if (request->body_length == 0)
    return true;

  json_error_t json_error;
  json_t *root = json_loadb(request->body, request->body_length,
                            JSON_REJECT_DUPLICATES, &json_error);
  if (root == NULL || !json_is_object(root)) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "the body must be a JSON object like {\"class\": "
                "\"Glomerulus\", \"bootstrap\": false}");
    json_decref(root);
    return false;
  }
  json_t *name = json_object_get(root, "class");
  json_t *bootstrap = json_object_get(root, "bootstrap");
  bool ok = (name == NULL || json_is_string(name)) &&
            (bootstrap == NULL || json_is_boolean(bootstrap));
  if (!ok) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_INVALID,
                "\"class\" must be a string and \"bootstrap\" a boolean");
  } else {
    if (name)
      *only_class = g_strdup(json_string_value(name));
    options->bootstrap = bootstrap && json_is_true(bootstrap);
  }
  json_decref(root);
  return ok;
}

static bool start_train(HttpRequest *request, HttpResponse *response,
                        GError **error)
{
  TrainScheduler *scheduler = scheduler_of(request, error);
  g_autofree char *only_class = NULL;
  TrainOptions options;

  if (scheduler == NULL ||
      !parse_options(request, &options, &only_class, error))
    return false;
  if (only_class &&
      aapi_config_find_class(request->context->config, only_class) ==
          NULL) {
    g_set_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND,
                "no class named '%s' in the label config", only_class);
    return false;
  }
  options.only_class = only_class;
  if (!train_scheduler_trigger(scheduler, &options, error))
    return false;
  http_response_set_json(response, 202,
                         json_pack("{s:b}", "started", 1));
  return true;
}

static json_t *run_json(const StoreTrainRun *run)
{
  g_autofree char *model = base_name(run->model_path);

  return json_pack("{s:I, s:s, s:o, s:o, s:I, s:I, s:I, s:o, s:o, s:o, "
                   "s:s?, s:s?, s:s?}",
                   "id", (json_int_t) run->id,
                   "class", run->class_name,
                   "started", time_json(run->started_time),
                   "finished", time_json(run->finished_time),
                   "n_train", (json_int_t) run->n_train,
                   "n_val", (json_int_t) run->n_val,
                   "epochs", (json_int_t) run->epochs,
                   "loss", number_or_null(run->loss),
                   "f1_before", number_or_null(run->f1_before),
                   "f1_after", number_or_null(run->f1_after),
                   "decision", run->decision,
                   "detail", run->detail,
                   "model", model);
}

static bool get_jobs(HttpRequest *request, HttpResponse *response,
                     GError **error)
{
  gint64 limit = 50;
  if (!http_query_int64_opt(request, "limit", 1, 1000, 50, &limit, error))
    return false;

  g_autoptr(GPtrArray) runs = store_train_run_list(request->context->store,
                                                   limit, error);
  if (runs == NULL)
    return false;

  json_t *list = json_array();
  for (guint i = 0; i < runs->len; i++)
    json_array_append_new(list, run_json(runs->pdata[i]));

  json_t *running = json_null();
  TrainScheduler *scheduler = request->context->scheduler;
  if (scheduler) {
    g_autofree char *text = train_scheduler_progress_json(scheduler);
    running = json_loads(text, JSON_DECODE_ANY, NULL);
  }
  http_response_set_json(response, 200,
                         json_pack("{s:o, s:o, s:b}", "running",
                                   running ? running : json_null(), "runs",
                                   list, "enabled", scheduler != NULL));
  return true;
}

static json_t *model_json(const StoreModel *model)
{
  g_autofree char *version = base_name(model->path);

  return json_pack("{s:s?, s:o, s:o, s:b}", "version", version, "created",
                   time_json(model->created_time), "f1",
                   number_or_null(model->f1), "promoted", model->promoted);
}

/* Newer files than the served one that do not load, with why: the
 * reason a class serves an older model than its folder's newest. */
static json_t *broken_json(InferEngine *engine, const AapiClassInfo *info)
{
  json_t *list = json_array();

  if (engine == NULL)
    return list;
  g_autoptr(GPtrArray) failures = infer_engine_failures(engine, info->name);
  for (guint i = 0; i < failures->len; i++) {
    const InferModelFailure *failure = failures->pdata[i];
    json_array_append_new(list, json_pack("{s:s, s:s}", "version",
                                          failure->version, "error",
                                          failure->message));
  }
  return list;
}

/* Each class: its promoted versions' F1 in order, the one the engine
 * serves (not the newest file, which may not load) and the files
 * skipped. */
static json_t *class_models(InferEngine *engine, const AapiClassInfo *info,
                            GPtrArray *models)
{
  json_t *versions = json_array();
  g_autofree char *served = NULL;
  g_autoptr(NnModel) current = engine
      ? infer_engine_get_model(engine, info->name, &served) : NULL;

  for (guint i = 0; i < models->len; i++) {
    StoreModel *model = models->pdata[i];
    if (g_strcmp0(model->class_name, info->name) == 0)
      json_array_append_new(versions, model_json(model));
  }
  return json_pack("{s:s?, s:s, s:o, s:o}", "current", served, "color",
                   info->color, "versions", versions, "broken",
                   broken_json(engine, info));
}

static bool get_models(HttpRequest *request, HttpResponse *response,
                       GError **error)
{
  const AapiConfig *config = request->context->config;
  g_autoptr(GPtrArray) models = store_model_list(request->context->store,
                                                 NULL, error);
  if (models == NULL)
    return false;

  json_t *classes = json_object();
  for (guint i = 0; i < config->classes->len; i++) {
    const AapiClassInfo *info = config->classes->pdata[i];
    json_object_set_new(classes, info->name,
                        class_models(request->context->engine, info,
                                     models));
  }
  http_response_set_json(response, 200,
                         json_pack("{s:o}", "classes", classes));
  return true;
}

const HttpRoute http_routes_train[] = {
  { "POST", "/api/v1/train", start_train, true },
  { "GET", "/api/v1/jobs", get_jobs, false },
  { "GET", "/api/v1/models", get_models, false },
  { NULL, NULL, NULL, false },
};
