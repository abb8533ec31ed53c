/* test-version.c: annotation versions on SQLite and on MariaDB: posts,
 * refusals, concurrency across threads and processes, revert,
 * reconciliation. */
#include "annot/version.h"
#include "common/aapi-error.h"
#include "store-test-util.h"
#include "testutil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#define BACKEND(data) ((TestBackend) GPOINTER_TO_INT(data))
#define SLIDE "0123456789abcdef0123456789abcdef"
#define N_THREADS 16

static char *helper_path;

typedef struct {
  char *url;
  char *data_dir;
  AapiConfig *config;
  AapiStore *store;
  char *initial;   /* the initial annotation's path */
} Fixture;

static void fixture_free(Fixture *f)
{
  g_clear_pointer(&f->store, store_close);
  g_clear_pointer(&f->config, aapi_config_free);
  g_free(f->url);
  g_free(f->data_dir);
  g_free(f->initial);
  g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Fixture, fixture_free)

/* A data folder and a store with SLIDE registered and its initial
 * annotation (two squares far apart) recorded. */
static Fixture *fixture_new(gconstpointer data)
{
  g_autoptr(Fixture) f = g_new0(Fixture, 1);
  g_autoptr(GError) error = NULL;
  double xs[] = { 100000, 200000 };

  f->url = test_store_url(BACKEND(data), "version");
  if (f->url == NULL)
    return NULL;
  f->data_dir = test_make_tmpdir("version");
  f->config = aapi_config_new_from_env(&error);
  g_assert_no_error(error);
  g_free(f->config->data_dir);
  f->config->data_dir = g_strdup(f->data_dir);
  f->store = test_store_open(f->url);

  StoreSlide slide = { (char *) SLIDE, (char *) "s.svs", (char *) "s.svs" };
  g_assert_true(store_slide_put(f->store, &slide, &error));
  g_autofree char *folder = g_build_filename(f->data_dir, "annotations",
                                             SLIDE, NULL);
  g_assert_cmpint(g_mkdir_with_parents(folder, 0755), ==, 0);
  f->initial = g_build_filename(folder, "initial_annotation.xml", NULL);
  g_autofree char *xml = test_asap_squares("init", xs, 2, 0, 100);
  g_assert_true(g_file_set_contents(f->initial, xml, -1, &error));
  g_assert_true(version_add_initial(f->config, f->store, SLIDE, f->initial,
                                    &error));
  g_assert_no_error(error);
  return g_steal_pointer(&f);
}

static guint count_files(Fixture *f)
{
  g_autofree char *folder = g_build_filename(f->data_dir, "annotations",
                                             SLIDE, NULL);
  g_autoptr(GDir) dir = g_dir_open(folder, 0, NULL);
  guint n = 0;

  while (dir && g_dir_read_name(dir))
    n++;
  return n;
}

static guint count_versions(Fixture *f)
{
  g_autoptr(GPtrArray) list = store_version_list(f->store, SLIDE, NULL);

  return list ? list->len : 0;
}

static bool post_square(Fixture *f, const char *id, double x,
                        VersionPostResult *result, GError **error)
{
  g_autofree char *xml = test_asap_squares("p", &x, 1, 0, 100);
  AnnotBox box = { x, 0, 500, 500 };

  return version_post(f->config, f->store, id, xml, strlen(xml), &box,
                      result, error);
}

static void test_initial(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;

  if (f == NULL)
    return;
  /* A second registration adds nothing. */
  g_assert_true(version_add_initial(f->config, f->store, SLIDE, f->initial,
                                    &error));
  g_assert_cmpuint(count_versions(f), ==, 1);

  g_autoptr(StoreVersion) v = store_version_latest(f->store, SLIDE, &error);
  g_assert_null(v->path_before);
  g_assert_cmpstr(v->path_after, ==, f->initial);
  g_assert_cmpint(v->annotation_count, ==, 2);
}

static void test_post(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;
  VersionPostResult result = { 0 };

  if (f == NULL)
    return;
  g_assert_true(post_square(f, SLIDE, 0, &result, &error));
  g_assert_no_error(error);

  /* The new version keeps both initial squares outside the region. */
  g_assert_cmpint(result.n_annotations, ==, 3);
  g_assert_cmpstr(result.version->path_before, ==, f->initial);
  g_autofree char *base = g_path_get_basename(result.version->path_after);
  g_assert_true(g_str_has_prefix(base, "updated_at_"));
  g_assert_true(g_file_test(result.version->path_after,
                            G_FILE_TEST_IS_REGULAR));
  g_assert_cmpint(result.version->region_width, ==, 500);
  g_assert_cmpint(result.version->updated_time, >, 1700000000);

  /* The newest file reads back as stored. */
  g_autoptr(GBytes) bytes = version_read_latest_file(f->config, f->store,
                                                     SLIDE, &error);
  g_autofree char *stored = NULL;
  gsize length;
  g_assert_true(g_file_get_contents(result.version->path_after, &stored,
                                    &length, NULL));
  g_assert_cmpmem(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes),
                  stored, length);
  g_autoptr(StoreVersion) latest = NULL;
  g_autoptr(AnnotSet) set = version_load_latest(f->config, f->store, SLIDE,
                                                &latest, &error);
  g_assert_cmpuint(set->annotations->len, ==, 3);
  g_assert_cmpint(latest->seq, ==, result.version->seq);
  version_post_result_clear(&result);
}

/* Two posts in the same second get two files. */
static void test_unique_names(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;

  if (f == NULL)
    return;
  for (int i = 0; i < 5; i++) {
    VersionPostResult result = { 0 };
    g_assert_true(post_square(f, SLIDE, 0, &result, &error));
    version_post_result_clear(&result);
  }
  g_assert_cmpuint(count_versions(f), ==, 6);
  g_assert_cmpuint(count_files(f), ==, 6);
}

static void test_refusals(gconstpointer data)
{
  static const char *const hostile[] = {
    "../../etc/passwd", "x'; DROP TABLE Slides; --", "", ".",
    "0123456789ABCDEF0123456789ABCDEF/..", "a/b",
  };
  static const char *const bodies[] = {
    "not xml at all",
    "<?xml version=\"1.0\"?><other/>",
    "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e \"x\">]>"
    "<ASAP_Annotations><Annotations/></ASAP_Annotations>",
  };
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;

  if (f == NULL)
    return;
  /* An unknown slide: NOT_FOUND; path or SQL text: refused. */
  g_assert_false(post_square(f, "ffffffffffffffffffffffffffffffff", 0,
                             NULL, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
  g_clear_error(&error);
  for (guint i = 0; i < G_N_ELEMENTS(hostile); i++) {
    g_assert_false(post_square(f, hostile[i], 0, NULL, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);
  }

  /* Unusable bodies store nothing. */
  for (guint i = 0; i < G_N_ELEMENTS(bodies); i++) {
    g_assert_false(version_post(f->config, f->store, SLIDE, bodies[i],
                                strlen(bodies[i]), NULL, NULL, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);
  }
  AnnotBox huge = { 0, 0, 1e12, 10 };
  g_autofree char *xml = test_asap_squares("p", (double[]) { 0 }, 1, 0, 9);
  g_assert_false(version_post(f->config, f->store, SLIDE, xml, strlen(xml),
                              &huge, NULL, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_assert_cmpuint(count_versions(f), ==, 1);
  g_assert_cmpuint(count_files(f), ==, 1);
  g_autoptr(GPtrArray) slides = store_slide_list(f->store, &error);
  g_assert_cmpuint(slides->len, ==, 1);
}

typedef struct {
  Fixture *fixture;
  int index;
  bool ok;
} PostJob;

static gpointer post_thread(gpointer data)
{
  PostJob *job = data;
  g_autoptr(GError) error = NULL;
  VersionPostResult result = { 0 };

  job->ok = post_square(job->fixture, SLIDE, job->index * 1000.0, &result,
                        &error);
  if (error)
    g_printerr("post %d: %s\n", job->index, error->message);
  version_post_result_clear(&result);
  return NULL;
}

/* Each post's square lies in its own region, so the newest version holds
 * every one of them only if each merged onto the true newest. */
static void check_all_kept(Fixture *f, guint n_posts)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = store_version_list(f->store, SLIDE, &error);

  g_assert_cmpuint(list->len, ==, n_posts + 1);
  for (guint i = 1; i < list->len; i++) {
    StoreVersion *prev = list->pdata[i - 1], *v = list->pdata[i];
    g_assert_cmpstr(v->path_before, ==, prev->path_after);
    g_assert_cmpint(v->annotation_count, ==, 2 + i);
  }
  g_autoptr(AnnotSet) set = version_load_latest(f->config, f->store, SLIDE,
                                                NULL, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(set->annotations->len, ==, 2 + n_posts);
  g_assert_cmpuint(count_files(f), ==, n_posts + 1);
}

static void test_concurrent_posts(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  GThread *threads[N_THREADS];
  PostJob jobs[N_THREADS];

  if (f == NULL)
    return;
  for (int i = 0; i < N_THREADS; i++) {
    jobs[i] = (PostJob) { f, i, false };
    threads[i] = g_thread_new("post", post_thread, &jobs[i]);
  }
  for (int i = 0; i < N_THREADS; i++) {
    g_thread_join(threads[i]);
    g_assert_true(jobs[i].ok);
  }
  check_all_kept(f, N_THREADS);
}

/* Two processes posting to one database at once lose nothing. */
static void test_two_processes(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;
  GSubprocess *children[2];

  if (f == NULL)
    return;
  for (int i = 0; i < 2; i++) {
    g_autofree char *first = g_strdup_printf("%d", i * 10);
    children[i] = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error,
                                   helper_path, f->url, f->data_dir, SLIDE,
                                   first, "10", NULL);
    g_assert_no_error(error);
  }
  for (int i = 0; i < 2; i++) {
    g_assert_true(g_subprocess_wait_check(children[i], NULL, &error));
    g_assert_no_error(error);
    g_object_unref(children[i]);
  }
  check_all_kept(f, 20);
}

/* A newest file that no longer parses fails the post as the server's
 * fault (not the body's), and stores nothing. */
static void test_corrupt_newest(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;

  if (f == NULL)
    return;
  g_assert_true(g_file_set_contents(f->initial, "<broken", -1, NULL));
  g_assert_false(post_square(f, SLIDE, 0, NULL, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_IO);
  g_assert_cmpuint(count_versions(f), ==, 1);
  g_assert_cmpuint(count_files(f), ==, 1);
}

/* Several processes opening one fresh database at once all succeed. */
static void test_concurrent_open(gconstpointer data)
{
  g_autofree char *url = test_store_url(BACKEND(data), "open");
  g_autofree char *dir = test_make_tmpdir("open");
  g_autoptr(GError) error = NULL;
  GSubprocess *children[4];

  if (url == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS(children); i++) {
    children[i] = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error,
                                   helper_path, url, dir, SLIDE, "0", "0",
                                   NULL);
    g_assert_no_error(error);
  }
  for (guint i = 0; i < G_N_ELEMENTS(children); i++) {
    g_assert_true(g_subprocess_wait_check(children[i], NULL, &error));
    g_assert_no_error(error);
    g_object_unref(children[i]);
  }
  g_autoptr(AapiStore) store = test_store_open(url);
  g_assert_null(store_created_tables(store)[0]);
  g_assert_cmpint(store_schema_version(store, &error), ==, 1);
}

static void test_revert(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;
  VersionPostResult result = { 0 };

  if (f == NULL)
    return;
  g_assert_true(post_square(f, SLIDE, 100000, &result, &error));
  g_assert_cmpint(result.n_annotations, ==, 2);   /* replaced one */
  version_post_result_clear(&result);

  g_autoptr(GPtrArray) list = store_version_list(f->store, SLIDE, &error);
  gint64 first = ((StoreVersion *) list->pdata[0])->seq;
  g_assert_true(version_revert(f->config, f->store, SLIDE, first, &result,
                               &error));
  g_assert_no_error(error);
  g_assert_cmpint(result.n_annotations, ==, 2);
  g_assert_false(result.version->has_region);
  g_assert_cmpuint(count_versions(f), ==, 3);
  g_autoptr(AnnotSet) set = version_load_latest(f->config, f->store, SLIDE,
                                                NULL, &error);
  Annotation *a = set->annotations->pdata[0];
  g_assert_cmpstr(a->name, ==, "init_0");
  version_post_result_clear(&result);

  g_assert_false(version_revert(f->config, f->store, SLIDE, 999999, &result,
                                &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
}

static void test_reconcile(gconstpointer data)
{
  g_autoptr(Fixture) f = fixture_new(data);
  g_autoptr(GError) error = NULL;
  VersionPostResult result = { 0 };
  guint removed = 99, bad = 99;

  if (f == NULL)
    return;
  g_assert_true(version_reconcile(f->config, f->store, &removed, &bad,
                                  &error));
  g_assert_cmpuint(removed, ==, 0);
  g_assert_cmpuint(bad, ==, 0);

  /* A crash after the file and before the row; and a half-written one. */
  g_autofree char *folder = g_path_get_dirname(f->initial);
  g_autofree char *orphan = g_build_filename(
      folder, "updated_at_2020-01-01_00-00-00.000000_deadbeef", NULL);
  g_autofree char *tmp = g_build_filename(folder, ".tmp-updated_at-ab12",
                                          NULL);
  g_assert_true(g_file_set_contents(orphan, "<x/>", -1, NULL));
  g_assert_true(g_file_set_contents(tmp, "<x", -1, NULL));

  /* A version whose file is lost stops being the newest. */
  g_assert_true(post_square(f, SLIDE, 0, &result, &error));
  g_assert_cmpint(g_unlink(result.version->path_after), ==, 0);
  version_post_result_clear(&result);

  g_assert_true(version_reconcile(f->config, f->store, &removed, &bad,
                                  &error));
  g_assert_no_error(error);
  g_assert_cmpuint(removed, ==, 2);
  g_assert_cmpuint(bad, ==, 1);
  g_assert_false(g_file_test(orphan, G_FILE_TEST_EXISTS));
  g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
  g_assert_true(g_file_test(f->initial, G_FILE_TEST_EXISTS));
  g_autoptr(StoreVersion) latest = store_version_latest(f->store, SLIDE,
                                                        &error);
  g_assert_cmpstr(latest->path_after, ==, f->initial);

  /* Posting goes on from the newest version that has a file. */
  g_assert_true(post_square(f, SLIDE, 0, &result, &error));
  g_assert_cmpstr(result.version->path_before, ==, f->initial);
  version_post_result_clear(&result);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  /* Reconciliation warns about the missing file the test makes. */
  g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_autofree char *dir = g_path_get_dirname(argv[0]);
  helper_path = g_build_filename(dir, "store-post-helper", NULL);

  test_store_add("version/initial", test_initial);
  test_store_add("version/post", test_post);
  test_store_add("version/unique-names", test_unique_names);
  test_store_add("version/refusals", test_refusals);
  test_store_add("version/concurrent-posts", test_concurrent_posts);
  test_store_add("version/two-processes", test_two_processes);
  test_store_add("version/corrupt-newest", test_corrupt_newest);
  test_store_add("version/concurrent-open", test_concurrent_open);
  test_store_add("version/revert", test_revert);
  test_store_add("version/reconcile", test_reconcile);
  int status = g_test_run();
  g_free(helper_path);
  return status;
}
