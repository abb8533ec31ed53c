/*
 * test-engine.c: the engine's model handling and limits, in process:
 * the newest model file is served, a newer file or an installed model
 * replaces it, classes without a model are reported as NULL, a busy
 * engine refuses at once, a cancelled prediction gives its worker back,
 * and bad regions get the right error codes.
 * Small random models (nn_model_init_random, fixed seeds) on a region of
 * ../shared/data/slides/kidney_val.svs.
 */
#include "common/aapi-error.h"
#include "infer/infer-engine-private.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  char *tmp;
  AapiConfig *config;
  Slide *slide;
  InferEngine *engine;
} Fixture;

static NnModel *small_model(guint64 seed)
{
  NnHparams hp = { 3, 2, 2, 1, true, true, NN_UP_UPCONV };
  g_autoptr(GError) error = NULL;
  NnModel *model = nn_model_new(&hp, &error);

  g_assert_no_error(error);
  nn_model_init_random(model, seed);
  return model;
}

/* Saves a model as <model_dir>/<class>/<version>. */
static void save_model(Fixture *f, const char *class_name,
                       const char *version, guint64 seed)
{
  g_autofree char *dir = g_build_filename(f->tmp, "model", class_name,
                                          NULL);
  g_autofree char *path = g_build_filename(dir, version, NULL);
  g_autoptr(NnModel) model = small_model(seed);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  g_assert_true(nn_model_save(model, path, &error));
  g_assert_no_error(error);
}

static void fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autofree char *path = test_shared_path("data/slides/kidney_val.svs");
  g_autoptr(GError) error = NULL;

  if (path == NULL)
    return;
  f->tmp = test_make_tmpdir("infer-engine");
  g_autofree char *model_dir = g_build_filename(f->tmp, "model", NULL);
  g_autofree char *data_dir = g_build_filename(f->tmp, "data", NULL);
  g_setenv("AAPI_MODEL_DIR", model_dir, TRUE);
  g_setenv("AAPI_DATA_DIR", data_dir, TRUE);
  g_setenv("AAPI_PREDICT_WORKERS", "1", TRUE);
  g_setenv("AAPI_MAX_PREDICT_PIXELS", "1000000", TRUE);
  g_setenv("AAPI_PREDICT_TILING", "fast", TRUE);
  f->config = aapi_config_new_from_env(&error);
  g_assert_no_error(error);
  g_assert_true(aapi_config_load_classes(f->config, NULL, NULL, &error));
  save_model(f, "Glomerulus", "2026-01-01T00:00:00", 1);
  save_model(f, "Glomerulus", "2025-12-31T00:00:00", 2);
  save_model(f, "Tubules", "2026-01-02T00:00:00", 3);
  f->slide = slide_open(path, &error);
  g_assert_no_error(error);
  f->engine = infer_engine_new(f->config, NULL, &error);
  g_assert_no_error(error);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_pointer(&f->engine, infer_engine_free);
  g_clear_pointer(&f->slide, slide_unref);
  g_clear_pointer(&f->config, aapi_config_free);
  g_free(f->tmp);
}

static InferResult *predict(Fixture *f, gint64 x, gint64 y, gint64 w,
                            gint64 h, GError **error)
{
  return infer_predict_slide(f->engine, f->slide, x, y, w, h, error);
}

static const char *version_of(InferResult *r, const char *name)
{
  for (guint c = 0; c < r->class_names->len; c++)
    if (g_strcmp0(r->class_names->pdata[c], name) == 0)
      return r->model_versions->pdata[c];
  g_assert_not_reached();
  return NULL;
}

static void test_versions(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  g_autoptr(InferResult) r = predict(f, 500, 6400, 256, 256, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(version_of(r, "Glomerulus"), ==, "2026-01-01T00:00:00");
  g_assert_cmpstr(version_of(r, "Tubules"), ==, "2026-01-02T00:00:00");
  g_assert_null(version_of(r, "Artery"));

  /* A newer file is picked up by a reload. */
  save_model(f, "Glomerulus", "2026-02-01T00:00:00", 4);
  g_assert_true(infer_engine_reload(f->engine, &error));
  g_autoptr(InferResult) r2 = predict(f, 500, 6400, 256, 256, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(version_of(r2, "Glomerulus"), ==, "2026-02-01T00:00:00");

  /* An installed model replaces it at once. */
  g_autoptr(NnModel) promoted = small_model(5);
  infer_engine_set_model(f->engine, "Artery", promoted, "promoted");
  g_autoptr(InferResult) r3 = predict(f, 500, 6400, 256, 256, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(version_of(r3, "Artery"), ==, "promoted");
}

static void test_same_output(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  g_autoptr(InferResult) a = predict(f, 1000, 7000, 700, 500, &error);
  g_assert_no_error(error);
  g_autoptr(InferResult) b = predict(f, 1000, 7000, 700, 500, &error);
  g_assert_no_error(error);
  g_autoptr(GString) ja = infer_result_to_geojson(a);
  g_autoptr(GString) jb = infer_result_to_geojson(b);
  g_assert_cmpstr(ja->str, ==, jb->str);
}

static void test_errors(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  g_assert_null(predict(f, 0, 0, 2000, 2000, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_TOO_LARGE);
  g_clear_error(&error);
  g_assert_null(predict(f, 12000, 0, 100, 100, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  g_assert_null(predict(f, 0, 0, 0, 100, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);

  /* Every worker taken: the next request is refused, not queued. */
  InferWorker *worker = infer_worker_acquire(f->engine, &error);
  g_assert_no_error(error);
  g_assert_null(predict(f, 500, 6400, 64, 64, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_BUSY);
  g_clear_error(&error);
  infer_worker_release(f->engine, worker);
  g_autoptr(InferResult) r = predict(f, 500, 6400, 64, 64, &error);
  g_assert_no_error(error);
}

/* A cancelled prediction fails with G_IO_ERROR_CANCELLED, gives its
 * worker back (one worker here) and leaves the engine answering as
 * before. */
static void test_cancel(Fixture *f, gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  g_autoptr(InferResult) before = predict(f, 1000, 7000, 300, 300, &error);
  g_assert_no_error(error);
  g_cancellable_cancel(cancellable);
  for (int i = 0; i < 2; i++) {
    g_assert_null(infer_predict_slide_cancellable(f->engine, f->slide,
        1000, 7000, 300, 300, cancellable, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error(&error);
  }
  g_autoptr(InferResult) after = predict(f, 1000, 7000, 300, 300, &error);
  g_assert_no_error(error);
  g_autoptr(GString) ja = infer_result_to_geojson(before);
  g_autoptr(GString) jb = infer_result_to_geojson(after);
  g_assert_cmpstr(ja->str, ==, jb->str);
}

/* Writes the first keep bytes of <class>/<from> as <class>/<to>, as a
 * damaged copy or a copy still being written. */
static void copy_cut(Fixture *f, const char *class_name, const char *from,
                     const char *to, gssize keep)
{
  g_autofree char *src = g_build_filename(f->tmp, "model", class_name,
                                          from, NULL);
  g_autofree char *dst = g_build_filename(f->tmp, "model", class_name, to,
                                          NULL);
  g_autofree char *bytes = NULL;
  gsize len;

  g_assert_true(g_file_get_contents(src, &bytes, &len, NULL));
  g_assert_true(g_file_set_contents(dst, bytes, keep < 0 ? (gssize) len
                                                         : keep, NULL));
}

static void assert_serves(InferEngine *engine, const char *version)
{
  g_autofree char *served = NULL;
  g_autoptr(NnModel) model = infer_engine_get_model(engine, "Glomerulus",
                                                    &served);

  g_assert_nonnull(model);
  g_assert_cmpstr(served, ==, version);
}

/* Warnings about a skipped model file naming it and a checksum error,
 * counted by count_skips. */
static gint skip_warnings;

static GLogWriterOutput count_skips(GLogLevelFlags level,
                                    const GLogField *fields, gsize n,
                                    gpointer data)
{
  for (gsize i = 0; i < n; i++) {
    const char *text = fields[i].value;

    if (g_strcmp0(fields[i].key, "MESSAGE") == 0 &&
        (level & G_LOG_LEVEL_WARNING) &&
        g_pattern_match_simple("*Glomerulus*2026-03-01T00:00:00 skipped*"
                               "checksum*", text))
      g_atomic_int_inc(&skip_warnings);
  }
  return g_log_writer_default(level, fields, n, data);
}

/* A damaged newest file leaves the running engine's model in place, and
 * a new engine (a restart) falls back to the newest file that loads.
 * The damaged file is warned about once per engine and listed with its
 * error, and the same name written in full later is served. */
static void test_damaged_newest(Fixture *f, gconstpointer data)
{
  const char *cut = "2026-03-01T00:00:00";
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  copy_cut(f, "Glomerulus", "2026-01-01T00:00:00", cut, 1000);
  g_atomic_int_set(&skip_warnings, 0);
  g_assert_true(infer_engine_reload(f->engine, &error));
  g_assert_cmpint(g_atomic_int_get(&skip_warnings), ==, 1);
  assert_serves(f->engine, "2026-01-01T00:00:00");

  g_autoptr(InferEngine) restarted = infer_engine_new(f->config, NULL,
                                                      &error);
  g_assert_no_error(error);
  g_assert_cmpint(g_atomic_int_get(&skip_warnings), ==, 2);
  assert_serves(restarted, "2026-01-01T00:00:00");
  g_autoptr(InferResult) r = infer_predict_slide(restarted, f->slide, 500,
                                                 6400, 256, 256, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(version_of(r, "Glomerulus"), ==, "2026-01-01T00:00:00");

  g_assert_true(infer_engine_reload(restarted, &error));
  g_assert_cmpint(g_atomic_int_get(&skip_warnings), ==, 2);
  g_autoptr(GPtrArray) failures = infer_engine_failures(restarted,
                                                        "Glomerulus");
  g_assert_cmpuint(failures->len, ==, 1);
  InferModelFailure *failure = failures->pdata[0];
  g_assert_cmpstr(failure->version, ==, cut);
  g_assert_nonnull(strstr(failure->message, "checksum"));

  copy_cut(f, "Glomerulus", "2026-01-01T00:00:00", cut, -1);
  g_assert_true(infer_engine_reload(restarted, &error));
  assert_serves(restarted, cut);
  g_autoptr(GPtrArray) none = infer_engine_failures(restarted,
                                                    "Glomerulus");
  g_assert_cmpuint(none->len, ==, 0);
}

/* Saves a model of other hyper-parameters as <class>/<version>. */
static void save_hparams(Fixture *f, const char *version, NnHparams hp)
{
  g_autofree char *path = g_build_filename(f->tmp, "model", "Glomerulus",
                                           version, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(NnModel) model = nn_model_new(&hp, &error);

  g_assert_no_error(error);
  nn_model_init_random(model, 9);
  g_assert_true(nn_model_save(model, path, &error));
  g_assert_no_error(error);
}

static const char *failure_of(GPtrArray *failures, const char *version)
{
  for (guint i = 0; i < failures->len; i++) {
    InferModelFailure *failure = failures->pdata[i];
    if (g_strcmp0(failure->version, version) == 0)
      return failure->message;
  }
  return "";
}

/* Newer models that cannot serve a class (other output or input counts,
 * padding off) are skipped like damaged files, with the reason listed;
 * the older file that fits is served and predicts. */
static void test_unfit_models(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  save_hparams(f, "2026-05-01T00:00:00",
               (NnHparams) { 3, 5, 2, 1, true, true, NN_UP_UPCONV });
  save_hparams(f, "2026-05-02T00:00:00",
               (NnHparams) { 3, 1, 2, 1, true, true, NN_UP_UPCONV });
  save_hparams(f, "2026-05-03T00:00:00",
               (NnHparams) { 4, 2, 2, 1, true, true, NN_UP_UPCONV });
  save_hparams(f, "2026-05-04T00:00:00",
               (NnHparams) { 1, 2, 2, 1, true, true, NN_UP_UPCONV });
  save_hparams(f, "2026-05-05T00:00:00",
               (NnHparams) { 3, 2, 2, 1, false, true, NN_UP_UPCONV });
  g_autoptr(InferEngine) engine = infer_engine_new(f->config, NULL, &error);
  g_assert_no_error(error);
  assert_serves(engine, "2026-01-01T00:00:00");
  g_autoptr(InferResult) r = infer_predict_slide(engine, f->slide, 500,
                                                 6400, 256, 256, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(version_of(r, "Glomerulus"), ==, "2026-01-01T00:00:00");

  g_autoptr(GPtrArray) failures = infer_engine_failures(engine,
                                                        "Glomerulus");
  g_assert_cmpuint(failures->len, ==, 5);
  g_assert_nonnull(strstr(failure_of(failures, "2026-05-01T00:00:00"),
                          "must have 2 outputs"));
  g_assert_nonnull(strstr(failure_of(failures, "2026-05-02T00:00:00"),
                          "has 1"));
  g_assert_nonnull(strstr(failure_of(failures, "2026-05-03T00:00:00"),
                          "3 input channels"));
  g_assert_nonnull(strstr(failure_of(failures, "2026-05-04T00:00:00"),
                          "has 1"));
  g_assert_nonnull(strstr(failure_of(failures, "2026-05-05T00:00:00"),
                          "padding"));

  /* The command-line path chooses the same file. */
  g_autofree char *dir = g_build_filename(f->tmp, "model", "Glomerulus",
                                          NULL);
  g_autofree char *version = NULL;
  const AapiClassInfo *glom = aapi_config_find_class(f->config,
                                                     "Glomerulus");
  g_autoptr(NnModel) loaded = infer_load_newest_model(dir, glom, &version);
  g_assert_nonnull(loaded);
  g_assert_cmpstr(version, ==, "2026-01-01T00:00:00");
}

/* A patch_size the class's models cannot keep (17 for depth 2) leaves
 * the class without a model, the reason listed, rather than failing
 * every prediction; the other classes still predict. */
static void test_patch_size_unfit(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  AapiClassInfo *glom = (AapiClassInfo *) aapi_config_find_class(
      f->config, "Glomerulus");
  glom->patch_size = 17;
  g_autoptr(InferEngine) engine = infer_engine_new(f->config, NULL, &error);
  g_assert_no_error(error);
  g_autofree char *served = NULL;
  g_autoptr(NnModel) none = infer_engine_get_model(engine, "Glomerulus",
                                                   &served);
  g_assert_null(none);
  g_autoptr(GPtrArray) failures = infer_engine_failures(engine,
                                                        "Glomerulus");
  g_assert_cmpuint(failures->len, ==, 2);
  const char *why = failure_of(failures, "2026-01-01T00:00:00");
  g_assert_nonnull(strstr(why, "patch_size 17"));
  g_assert_nonnull(strstr(why, "multiple of 2"));
  g_autoptr(InferResult) r = infer_predict_slide(engine, f->slide, 500,
                                                 6400, 256, 256, &error);
  g_assert_no_error(error);
  g_assert_null(version_of(r, "Glomerulus"));
  g_assert_cmpstr(version_of(r, "Tubules"), ==, "2026-01-02T00:00:00");
}

/* A model installed past the scan that does not fit fails the
 * prediction with an error, never touches memory it does not own. */
static void test_unfit_installed(Fixture *f, gconstpointer data)
{
  NnHparams hp = { 3, 5, 2, 1, true, true, NN_UP_UPCONV };
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  g_autoptr(NnModel) wide = nn_model_new(&hp, &error);
  g_assert_no_error(error);
  nn_model_init_random(wide, 3);
  infer_engine_set_model(f->engine, "Glomerulus", wide, "wide");
  g_assert_null(predict(f, 500, 6400, 256, 256, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NN);
  g_assert_nonnull(strstr(error->message, "2 outputs"));
  g_clear_error(&error);

  AapiClassInfo *glom = (AapiClassInfo *) aapi_config_find_class(
      f->config, "Glomerulus");
  g_autoptr(NnModel) fit = small_model(1);
  infer_engine_set_model(f->engine, "Glomerulus", fit, "fit");
  glom->patch_size = 17;
  g_assert_null(predict(f, 500, 6400, 256, 256, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NN);
  g_clear_error(&error);
  glom->patch_size = 256;
}

/* Timestamped names order by their time and above names without one;
 * those order by name among themselves. */
static void test_name_order(void)
{
  const char *newest_first[] = {
    "2026-12-04T18:00:00.000000Z.aapimodel",
    "2026-12-04T17:00:00.5Z.aapimodel",
    "2026-12-04T19:00:00+02:00.ckpt",   /* 17:00:00 UTC */
    "2026-12-04T17:00:00",
    "2026-02-01 00:00:00.ckpt",
    "2025-12-31T23:59:59.999999Z.aapimodel",
    "zz",
    "model.ckpt",
    "2026-13-01T00:00:00.ckpt",          /* no such month: no time */
    "2026-01-01.ckpt",
  };
  guint n = G_N_ELEMENTS(newest_first);
  g_autofree char *tmp = test_make_tmpdir("infer-names");

  for (guint i = 0; i < n; i++) {
    g_autofree char *path = g_build_filename(tmp, newest_first[i], NULL);
    g_assert_true(g_file_set_contents(path, "", 0, NULL));
  }
  g_autoptr(GPtrArray) names = infer_model_names(tmp);
  g_assert_cmpuint(names->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpstr(names->pdata[i], ==, newest_first[i]);
}

/* A file without a timestamp in its name never shadows the timestamped
 * ones, however its name sorts. */
static void test_untimestamped_name(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  if (f->engine == NULL)
    return;
  save_model(f, "Glomerulus", "model.aapimodel", 7);
  save_model(f, "Glomerulus", "zz-latest", 8);
  g_assert_true(infer_engine_reload(f->engine, &error));
  assert_serves(f->engine, "2026-01-01T00:00:00");
  g_autoptr(InferEngine) restarted = infer_engine_new(f->config, NULL,
                                                      &error);
  g_assert_no_error(error);
  assert_serves(restarted, "2026-01-01T00:00:00");

  save_model(f, "Glomerulus", "2026-12-04T18:00:00.000000Z.aapimodel", 9);
  g_assert_true(infer_engine_reload(restarted, &error));
  assert_serves(restarted, "2026-12-04T18:00:00.000000Z.aapimodel");
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* Skipped model files are warnings the tests expect and count. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_log_set_writer_func(count_skips, NULL, NULL);
  g_autoptr(GError) error = NULL;
  if (!slide_init_libs(&error))
    g_error("%s", error->message);
  g_test_add("/infer/engine/versions", Fixture, NULL, fixture_set_up,
             test_versions, fixture_tear_down);
  g_test_add("/infer/engine/same-output", Fixture, NULL, fixture_set_up,
             test_same_output, fixture_tear_down);
  g_test_add("/infer/engine/errors", Fixture, NULL, fixture_set_up,
             test_errors, fixture_tear_down);
  g_test_add("/infer/engine/cancel", Fixture, NULL, fixture_set_up,
             test_cancel, fixture_tear_down);
  g_test_add("/infer/engine/damaged-newest", Fixture, NULL, fixture_set_up,
             test_damaged_newest, fixture_tear_down);
  g_test_add("/infer/engine/unfit-models", Fixture, NULL, fixture_set_up,
             test_unfit_models, fixture_tear_down);
  g_test_add("/infer/engine/patch-size-unfit", Fixture, NULL,
             fixture_set_up, test_patch_size_unfit, fixture_tear_down);
  g_test_add("/infer/engine/unfit-installed", Fixture, NULL,
             fixture_set_up, test_unfit_installed, fixture_tear_down);
  g_test_add_func("/infer/engine/name-order", test_name_order);
  g_test_add("/infer/engine/untimestamped-name", Fixture, NULL,
             fixture_set_up, test_untimestamped_name, fixture_tear_down);
  return g_test_run();
}
