/* http-cli.c: `aapi serve`: open the store, reconcile versions, start the
 * slide cache, prediction and training, serve until SIGINT/SIGTERM. */
#include "annot/version.h"
#include "cli/cli.h"
#include "common/aapi-error.h"
#include "http/http.h"
#include "infer/infer.h"
#include "slide/dzi.h"
#include "train/train.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>

/* Open slides kept at once; each holds OpenSlide's caches. */
#define SLIDE_CACHE_CAPACITY 32
/* How often the model folders are checked for newer models. */
#define MODEL_RELOAD_SECONDS 30

static gint opt_port = -1;

static const GOptionEntry serve_entries[] = {
  { "port", 0, 0, G_OPTION_ARG_INT, &opt_port,
    "Port to listen on (AAPI_PORT, 5000; 0 picks a free one)", "N" },
  { NULL }
};

/* What serve opens, closed in reverse order. */
typedef struct {
  AapiStore *store;
  SlideCache *slides;
  TileCache *tiles;
  InferEngine *engine;
  TrainScheduler *scheduler;
  HttpServer *server;
} ServeParts;

static void serve_parts_clear(ServeParts *parts)
{
  g_clear_pointer(&parts->server, http_server_stop);
  if (parts->scheduler)
    train_scheduler_stop(g_steal_pointer(&parts->scheduler));
  if (parts->engine)
    infer_engine_free(g_steal_pointer(&parts->engine));
  g_clear_pointer(&parts->tiles, tile_cache_free);
  g_clear_pointer(&parts->slides, slide_cache_free);
  g_clear_pointer(&parts->store, store_close);
}

/* Versions left half-written by a crash are cleaned before serving. */
static bool serve_reconcile(const AapiConfig *config, AapiStore *store,
                            GError **error)
{
  guint removed = 0, bad_rows = 0;

  if (!version_reconcile(config, store, &removed, &bad_rows, error))
    return false;
  if (removed || bad_rows)
    g_message("reconciled versions: %u orphan files removed, %u rows "
              "without a file", removed, bad_rows);
  return true;
}

/* Prediction and training are optional: without models the server still
 * serves slides and annotations.  A bad prediction setting, though,
 * stops the start: it would otherwise pass for the default. */
static bool serve_start_models(const AapiConfig *config, ServeParts *parts,
                               GError **start_error)
{
  g_autoptr(GError) error = NULL;

  /* A mistyped model folder would otherwise only show as 503s. */
  if (!g_file_test(config->model_dir, G_FILE_TEST_IS_DIR))
    g_warning("model folder %s does not exist (AAPI_MODEL_DIR, "
              "--model-dir): no class can predict until a model is "
              "imported or trained there", config->model_dir);
  parts->engine = infer_engine_new(config, parts->slides, &error);
  if (parts->engine == NULL &&
      g_error_matches(error, AAPI_ERROR, AAPI_ERROR_INVALID)) {
    g_propagate_error(start_error, g_steal_pointer(&error));
    return false;
  }
  if (parts->engine == NULL) {
    g_message("prediction is off: %s", error->message);
    return true;
  }
  parts->scheduler = train_scheduler_start(config, parts->store,
                                           parts->slides, parts->engine,
                                           &error);
  if (parts->scheduler == NULL)
    g_warning("training is off: %s", error->message);
  return true;
}

static gboolean serve_quit(gpointer loop)
{
  g_message("stopping");
  g_main_loop_quit(loop);
  return G_SOURCE_CONTINUE;
}

static bool serve_open(const AapiConfig *config, ServeParts *parts,
                       GError **error)
{
  if (!slide_init_libs(error))
    return false;
  parts->store = store_open(config->database_url, error);
  if (parts->store == NULL || !serve_reconcile(config, parts->store, error))
    return false;
  parts->slides = slide_cache_new(parts->store, SLIDE_CACHE_CAPACITY);
  parts->tiles = tile_cache_new_from_env(error);
  if (parts->tiles == NULL && error && *error)
    return false;
  return serve_start_models(config, parts, error);
}

/* Models imported or copied into the model folders by hand (aapi
 * import-model, another server's training) are picked up without a
 * restart. */
static gboolean serve_reload_models(gpointer data)
{
  g_autoptr(GError) error = NULL;

  if (!infer_engine_reload(data, &error))
    g_warning("reloading models: %s", error->message);
  return G_SOURCE_CONTINUE;
}

int cli_serve(int argc, char **argv)
{
  int status = 0;
  g_autoptr(AapiConfig) config = cli_parse("serve", NULL,
      "Serve the HTTP API and the viewer.", serve_entries, &argc, &argv,
      &status);
  g_autoptr(GError) error = NULL;
  ServeParts parts = { 0 };

  if (config == NULL)
    return status;
  if (opt_port > 65535) {
    fprintf(stderr, "aapi serve: --port %d is not a port\n", opt_port);
    return 2;
  }
  if (opt_port >= 0)
    config->port = (guint) opt_port;

  HttpContext context = { .config = config };
  if (serve_open(config, &parts, &error)) {
    context = (HttpContext) { config, parts.store, parts.slides,
                              parts.engine, parts.scheduler, parts.tiles };
    parts.server = http_server_start(&context, &error);
  }
  if (parts.server == NULL) {
    serve_parts_clear(&parts);
    return cli_fail("serve", error);
  }

  g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
  g_unix_signal_add(SIGINT, serve_quit, loop);
  g_unix_signal_add(SIGTERM, serve_quit, loop);
  if (parts.engine)
    g_timeout_add_seconds(MODEL_RELOAD_SECONDS, serve_reload_models,
                          parts.engine);
  g_main_loop_run(loop);

  serve_parts_clear(&parts);
  return 0;
}
