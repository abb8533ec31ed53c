/* test-store.c: every store function, on SQLite and on MariaDB. */
#include "common/aapi-error.h"
#include "store-test-util.h"
#include "testutil.h"

#include <math.h>
#include <mysql.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKEND(data) ((TestBackend) GPOINTER_TO_INT(data))

static AapiStore *fresh_store(gconstpointer data, char **url_out)
{
  g_autofree char *url = test_store_url(BACKEND(data), "store");

  if (url == NULL)
    return NULL;
  AapiStore *store = test_store_open(url);
  if (url_out)
    *url_out = g_steal_pointer(&url);
  return store;
}

static void put_slide(AapiStore *store, const char *id, const char *name)
{
  g_autoptr(GError) error = NULL;
  StoreSlide slide = { (char *) id, (char *) name, (char *) "/slides/x" };

  g_assert_true(store_slide_put(store, &slide, &error));
  g_assert_no_error(error);
}

/* Adds a version through a slide write; returns its seq. */
static gint64 add_version(AapiStore *store, const char *id,
                          const char *path, gint64 count)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(StoreSlideWrite) write = store_slide_write_begin(store, id,
                                                             &error);
  g_assert_no_error(error);
  g_autoptr(StoreVersion) latest = store_slide_write_latest(write, NULL);
  StoreVersion v = {
    .path_before = latest ? latest->path_after : NULL,
    .path_after = (char *) path, .annotation_count = count,
    .has_region = count % 2 == 0, .region_x = 1, .region_y = 2,
    .region_width = 30, .region_height = 40,
  };
  g_assert_true(store_slide_write_insert(write, &v, &error));
  g_assert_no_error(error);
  g_assert_true(store_slide_write_commit(write, &error));
  g_free(v.slide_id);
  return v.seq;
}

static void test_open_idempotent(gconstpointer data)
{
  g_autofree char *url = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, &url);

  if (store == NULL)
    return;
  g_assert_cmpstr(store_created_tables(store)[0], ==, "Slides");
  g_assert_cmpint(store_schema_version(store, &error), ==, 1);
  g_assert_cmpstr(store_backend_name(store), ==,
                  BACKEND(data) == TEST_SQLITE ? "sqlite" : "mysql");
  put_slide(store, "a", "A");

  /* A second open creates nothing and keeps the rows. */
  g_autoptr(AapiStore) again = test_store_open(url);
  g_assert_null(store_created_tables(again)[0]);
  g_autoptr(StoreSlide) slide = store_slide_get(again, "a", &error);
  g_assert_no_error(error);
  g_assert_cmpstr(slide->slide_name, ==, "A");
}

static void test_slides(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);

  if (store == NULL)
    return;
  put_slide(store, "id2", "b.svs");
  put_slide(store, "id1", "a.svs");
  put_slide(store, "id2", "c.svs");   /* same id: updated */

  g_autoptr(GPtrArray) list = store_slide_list(store, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 2);
  g_assert_cmpstr(((StoreSlide *) list->pdata[0])->slide_name, ==, "a.svs");
  g_assert_cmpstr(((StoreSlide *) list->pdata[1])->slide_name, ==, "c.svs");

  g_autoptr(StoreSlide) missing = store_slide_get(store, "nope", &error);
  g_assert_null(missing);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
  g_clear_error(&error);

  StoreSlide empty = { (char *) "", NULL, NULL };
  g_assert_false(store_slide_put(store, &empty, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);

  /* Longer than the old columns: refused on both, never truncated. */
  g_autofree char *long_id = g_strnfill(101, 'a');
  StoreSlide too_long = { long_id, NULL, NULL };
  g_assert_false(store_slide_put(store, &too_long, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  g_clear_error(&error);
  long_id[100] = '\0';
  g_assert_true(store_slide_put(store, &too_long, &error));
  g_autoptr(StoreSlide) back = store_slide_get(store, long_id, &error);
  g_assert_cmpstr(back->slide_id, ==, long_id);
}

/* SQL and path text in ids is data: stored and read back literally. */
static void test_hostile_ids(gconstpointer data)
{
  static const char *const ids[] = {
    "x'; DROP TABLE Slides; --",
    "\"; DELETE FROM Annotations; #",
    "../../etc/passwd",
    "1 OR 1=1",
    "\\' OR ''='",
    "sl\xc3\xaf" "de \xf0\x9f\x98\x90",
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);

  if (store == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
    put_slide(store, ids[i], ids[i]);
    add_version(store, ids[i], ids[i], 2);
  }
  for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
    g_autoptr(StoreSlide) slide = store_slide_get(store, ids[i], &error);
    g_assert_no_error(error);
    g_assert_cmpstr(slide->slide_id, ==, ids[i]);
    g_autoptr(StoreVersion) v = store_version_latest(store, ids[i], &error);
    g_assert_no_error(error);
    g_assert_cmpstr(v->path_after, ==, ids[i]);
  }
  g_autoptr(GPtrArray) list = store_slide_list(store, &error);
  g_assert_cmpuint(list->len, ==, G_N_ELEMENTS(ids));
  g_autoptr(GPtrArray) all = store_version_list_all(store, &error);
  g_assert_cmpuint(all->len, ==, G_N_ELEMENTS(ids));
}

static void check_version(const StoreVersion *v, const char *before,
                          const char *after, gint64 count)
{
  g_assert_cmpstr(v->path_before, ==, before);
  g_assert_cmpstr(v->path_after, ==, after);
  g_assert_cmpint(v->annotation_count, ==, count);
  g_assert_cmpint(v->has_region, ==, count % 2 == 0);
  if (v->has_region) {
    g_assert_cmpint(v->region_x, ==, 1);
    g_assert_cmpint(v->region_height, ==, 40);
  }
  g_assert_cmpint(v->updated_time, >, 1700000000);
}

static void test_versions(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);

  if (store == NULL)
    return;
  put_slide(store, "s", "s.svs");

  /* Without versions: NOT_FOUND, an empty list. */
  g_autoptr(StoreVersion) none = store_version_latest(store, "s", &error);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_autoptr(GPtrArray) empty = store_version_list(store, "s", &error);
  g_assert_cmpuint(empty->len, ==, 0);

  gint64 s1 = add_version(store, "s", "/a/v1", 1);
  gint64 s2 = add_version(store, "s", "/a/v2", 2);
  gint64 s3 = add_version(store, "s", "/a/v3", 3);
  g_assert_cmpint(s1, >, 0);
  g_assert_cmpint(s2, >, s1);
  g_assert_cmpint(s3, >, s2);

  g_autoptr(StoreVersion) latest = store_version_latest(store, "s", &error);
  check_version(latest, "/a/v2", "/a/v3", 3);
  g_assert_cmpint(latest->seq, ==, s3);
  g_autoptr(GPtrArray) list = store_version_list(store, "s", &error);
  g_assert_cmpuint(list->len, ==, 3);
  check_version(list->pdata[0], NULL, "/a/v1", 1);
  check_version(list->pdata[1], "/a/v1", "/a/v2", 2);

  g_autoptr(StoreVersion) second = store_version_get(store, "s", s2, &error);
  g_assert_no_error(error);
  check_version(second, "/a/v1", "/a/v2", 2);
  g_autoptr(StoreVersion) bad = store_version_get(store, "s", s3 + 99,
                                                  &error);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
  g_clear_error(&error);

  /* Deleting the newest makes the one before it the newest. */
  g_assert_true(store_version_delete(store, "s", "/a/v3", &error));
  g_autoptr(StoreVersion) now = store_version_latest(store, "s", &error);
  g_assert_cmpstr(now->path_after, ==, "/a/v2");
  g_autoptr(GPtrArray) all = store_version_list_all(store, &error);
  g_assert_cmpuint(all->len, ==, 2);
}

static void test_write_unknown_slide(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);

  if (store == NULL)
    return;
  g_autoptr(StoreSlideWrite) write = store_slide_write_begin(store, "nope",
                                                             &error);
  g_assert_null(write);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
}

/* A write that ends without commit leaves nothing; a region too large for
 * the old INT columns is refused. */
static void test_write_abort(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);

  if (store == NULL)
    return;
  put_slide(store, "s", "s");
  StoreSlideWrite *write = store_slide_write_begin(store, "s", &error);
  StoreVersion v = { .path_after = (char *) "/x", .annotation_count = -1 };
  g_assert_true(store_slide_write_insert(write, &v, &error));
  g_free(v.slide_id);
  store_slide_write_end(write);
  g_autoptr(GPtrArray) list = store_version_list(store, "s", &error);
  g_assert_cmpuint(list->len, ==, 0);

  write = store_slide_write_begin(store, "s", &error);
  StoreVersion huge = { .path_after = (char *) "/y", .has_region = true,
                        .region_width = G_GINT64_CONSTANT(1) << 40 };
  g_assert_false(store_slide_write_insert(write, &huge, &error));
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  store_slide_write_end(write);
}

static void test_mark_missing(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);

  if (store == NULL)
    return;
  put_slide(store, "s", "s");
  add_version(store, "s", "/v1", 1);
  add_version(store, "s", "/v2", 2);
  g_autoptr(StoreSlideWrite) write = store_slide_write_begin(store, "s",
                                                             &error);
  g_assert_true(store_slide_write_mark_missing(write, "/v2", &error));
  g_autoptr(GPtrArray) rows = store_slide_write_list(write, &error);
  g_assert_cmpuint(rows->len, ==, 2);
  g_assert_true(store_slide_write_commit(write, &error));

  g_autoptr(StoreVersion) latest = store_version_latest(store, "s", &error);
  g_assert_cmpstr(latest->path_after, ==, "/v1");
  g_autoptr(GPtrArray) list = store_version_list(store, "s", &error);
  g_assert_cmpuint(list->len, ==, 1);
}

static void test_models_runs(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);

  if (store == NULL)
    return;
  StoreModel a = { 0, (char *) "Glomerulus", (char *) "/m/a", 100, 0.75,
                   true };
  StoreModel b = { 0, (char *) "Artery", (char *) "/m/b", 200, NAN, false };
  g_assert_true(store_model_add(store, &a, &error));
  g_assert_true(store_model_add(store, &b, &error));
  g_assert_cmpint(b.id, >, a.id);

  g_autoptr(GPtrArray) all = store_model_list(store, NULL, &error);
  g_assert_cmpuint(all->len, ==, 2);
  g_autoptr(GPtrArray) glom = store_model_list(store, "Glomerulus", &error);
  g_assert_cmpuint(glom->len, ==, 1);
  StoreModel *m = glom->pdata[0];
  g_assert_cmpstr(m->path, ==, "/m/a");
  g_assert_cmpfloat_with_epsilon(m->f1, 0.75, 1e-9);
  g_assert_true(m->promoted);
  g_assert_true(isnan(((StoreModel *) all->pdata[1])->f1));

  for (int i = 0; i < 3; i++) {
    StoreTrainRun run = {
      .class_name = (char *) "Artery", .started_time = 10 + i,
      .finished_time = 20 + i, .n_train = 5, .n_val = 2, .epochs = 3,
      .loss = 0.5, .f1_before = NAN, .f1_after = 0.25,
      .decision = (char *) "rejected", .detail = (char *) "it's \"worse\"",
    };
    g_assert_true(store_train_run_add(store, &run, &error));
    g_assert_cmpint(run.id, >, 0);
  }
  g_autoptr(GPtrArray) runs = store_train_run_list(store, 2, &error);
  g_assert_cmpuint(runs->len, ==, 2);
  StoreTrainRun *r = runs->pdata[0];
  g_assert_cmpint(r->started_time, ==, 12);
  g_assert_true(isnan(r->f1_before));
  g_assert_cmpfloat_with_epsilon(r->f1_after, 0.25, 1e-9);
  g_assert_cmpstr(r->detail, ==, "it's \"worse\"");
  g_assert_null(r->model_path);
}

typedef struct {
  AapiStore *store;
  int n;
} IncrementJob;

static gpointer increment_thread(gpointer data)
{
  IncrementJob *job = data;

  for (int i = 0; i < job->n; i++) {
    g_autoptr(GError) error = NULL;
    g_assert_cmpint(store_meta_increment(job->store, "counter", &error),
                    >, 0);
    g_assert_no_error(error);
  }
  return NULL;
}

static void test_meta(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, NULL);
  GThread *threads[6];

  if (store == NULL)
    return;
  g_assert_null(store_meta_get(store, "k", &error));
  g_assert_no_error(error);
  g_assert_true(store_meta_set(store, "k", "v1", &error));
  g_assert_true(store_meta_set(store, "k", "v2", &error));
  g_autofree char *value = store_meta_get(store, "k", &error);
  g_assert_cmpstr(value, ==, "v2");

  /* Concurrent increments each count once. */
  IncrementJob job = { store, 10 };
  for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
    threads[i] = g_thread_new("inc", increment_thread, &job);
  for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
    g_thread_join(threads[i]);
  g_assert_cmpint(store_meta_increment(store, "counter", &error), ==, 61);
}

/* A child process takes the lock and dies holding it. */
static void lock_and_die(const char *url)
{
  pid_t pid = fork();

  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    AapiStore *store = store_open(url, NULL);
    StoreLock *lock = store ? store_lock_try(store, "train", NULL) : NULL;
    _exit(lock ? 0 : 3);
  }
  int status;
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  g_assert_true(WIFEXITED(status));
  g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

static void test_named_lock(gconstpointer data)
{
  g_autofree char *url = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, &url);

  if (store == NULL)
    return;
  g_autoptr(AapiStore) other = test_store_open(url);

  StoreLock *lock = store_lock_try(store, "train", &error);
  g_assert_no_error(error);
  g_assert_nonnull(lock);

  /* A second holder, through another store, is refused without error. */
  g_assert_null(store_lock_try(other, "train", &error));
  g_assert_no_error(error);
  g_assert_null(store_lock_try(store, "train", &error));
  g_assert_no_error(error);
  StoreLock *unrelated = store_lock_try(other, "other", &error);
  g_assert_nonnull(unrelated);
  store_lock_release(unrelated);

  store_lock_release(lock);
  lock = store_lock_try(other, "train", &error);
  g_assert_nonnull(lock);
  store_lock_release(lock);

  /* A holder that dies frees the lock. */
  lock_and_die(url);
  lock = store_lock_try(store, "train", &error);
  g_assert_no_error(error);
  g_assert_nonnull(lock);
  store_lock_release(lock);
}

/* The old service's DDL, as its init-db ran it. */
static const char *const old_ddl_mysql[] = {
  "CREATE TABLE Slides (slide_ID VARCHAR(100) PRIMARY KEY, "
  "slide_name VARCHAR(100), slide_path VARCHAR(300))",
  "CREATE TABLE Annotations (slide_ID VARCHAR(100), "
  "annotation_path_before VARCHAR(300) NULL, "
  "annotation_path_after VARCHAR(300) NOT NULL, "
  "updated_time DATETIME DEFAULT CURRENT_TIMESTAMP, "
  "region_x INT, region_y INT, region_height INT, region_width INT, "
  "PRIMARY KEY (slide_ID, annotation_path_after), "
  "FOREIGN KEY (slide_ID) REFERENCES Slides(slide_ID))",
  NULL
};

/* Rows as the old service wrote them: two in the same second (ordered by
 * path), one older written later. */
static const char *const old_rows[] = {
  "INSERT INTO Slides VALUES ('abc', 'a.svs', 'data/slides/a.svs')",
  "INSERT INTO Annotations VALUES ('abc', NULL, "
  "'data/annotations/abc/initial_annotation.xml', '2021-03-01 10:00:00', "
  "NULL, NULL, NULL, NULL)",
  "INSERT INTO Annotations VALUES ('abc', "
  "'data/annotations/abc/updated_at_2021-03-02 10:00:00', "
  "'data/annotations/abc/updated_at_2021-03-02 10:00:00b', "
  "'2021-03-02 10:00:00', 0, 0, 100000000, 100000000)",
  "INSERT INTO Annotations VALUES ('abc', "
  "'data/annotations/abc/initial_annotation.xml', "
  "'data/annotations/abc/updated_at_2021-03-02 10:00:00', "
  "'2021-03-02 10:00:00', 5, 6, 7, 8)",
  NULL
};

static void test_old_database(gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = test_store_url(BACKEND(data), "old");

  if (url == NULL)
    return;
  test_store_raw_sql(url, old_ddl_mysql);
  test_store_raw_sql(url, old_rows);

  g_autoptr(AapiStore) store = test_store_open(url);
  g_assert_cmpstr(store_created_tables(store)[0], ==, "aapi_schema_version");
  g_assert_cmpint(store_backfilled_rows(store), ==, 3);

  /* Rows kept, ordered by time then path, each with a seq. */
  g_autoptr(GPtrArray) list = store_version_list(store, "abc", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 3);
  StoreVersion *first = list->pdata[0], *last = list->pdata[2];
  g_assert_cmpstr(first->path_after, ==,
                  "data/annotations/abc/initial_annotation.xml");
  g_assert_false(first->has_region);
  g_assert_cmpint(first->annotation_count, ==, -1);
  g_assert_cmpint(first->updated_time, ==, 1614592800);
  g_assert_cmpstr(last->path_after, ==,
                  "data/annotations/abc/updated_at_2021-03-02 10:00:00b");
  g_assert_cmpint(last->region_width, ==, 100000000);
  g_assert_cmpint(last->seq, >, ((StoreVersion *) list->pdata[1])->seq);

  /* A new version chains onto the old newest. */
  add_version(store, "abc", "new", 4);
  g_autoptr(StoreVersion) latest = store_version_latest(store, "abc",
                                                        &error);
  g_assert_cmpstr(latest->path_before, ==, last->path_after);

  /* A row the old service adds later still counts as newest. */
  static const char *const later[] = {
    "INSERT INTO Annotations VALUES ('abc', 'new', 'older-program', "
    "'2030-01-01 00:00:00', 1, 2, 3, 4)",
    NULL
  };
  test_store_raw_sql(url, later);
  g_autoptr(StoreVersion) newest = store_version_latest(store, "abc",
                                                        &error);
  g_assert_cmpstr(newest->path_after, ==, "older-program");
  g_autoptr(AapiStore) reopened = test_store_open(url);
  g_assert_null(store_created_tables(reopened)[0]);
  g_autoptr(GPtrArray) again = store_version_list(reopened, "abc", &error);
  g_assert_cmpuint(again->len, ==, 5);
  g_assert_cmpstr(((StoreVersion *) again->pdata[4])->path_after, ==,
                  "older-program");
}

typedef struct {
  AapiStore *store;
  int index;
} ChainJob;

static gpointer chain_thread(gpointer data)
{
  ChainJob *job = data;
  g_autofree char *path = g_strdup_printf("/v/%d", job->index);

  add_version(job->store, "s", path, 1);
  return NULL;
}

/* Concurrent slide writes on several stores (connections) form a chain. */
static void test_write_chain(gconstpointer data)
{
  g_autofree char *url = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = fresh_store(data, &url);
  g_autoptr(AapiStore) other = NULL;
  GThread *threads[16];
  ChainJob jobs[16];

  if (store == NULL)
    return;
  other = test_store_open(url);
  put_slide(store, "s", "s");
  for (int i = 0; i < 16; i++) {
    jobs[i] = (ChainJob) { i % 2 ? store : other, i };
    threads[i] = g_thread_new("chain", chain_thread, &jobs[i]);
  }
  for (int i = 0; i < 16; i++)
    g_thread_join(threads[i]);

  g_autoptr(GPtrArray) list = store_version_list(store, "s", &error);
  g_assert_cmpuint(list->len, ==, 16);
  for (guint i = 1; i < list->len; i++) {
    StoreVersion *prev = list->pdata[i - 1], *v = list->pdata[i];
    g_assert_cmpstr(v->path_before, ==, prev->path_after);
  }
}

/* Ends every server session on the store's database, as a server restart
 * or wait_timeout would. */
static void kill_sessions(const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD, NULL);
  MYSQL *mysql = mysql_init(NULL);

  g_assert_nonnull(mysql_real_connect(mysql, g_uri_get_host(uri),
                                      g_uri_get_user(uri),
                                      g_uri_get_password(uri), NULL,
                                      g_uri_get_port(uri), NULL, 0));
  g_autofree char *sql = g_strdup_printf(
      "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '%s' "
      "AND ID <> CONNECTION_ID()", g_uri_get_path(uri) + 1);
  g_assert_cmpint(mysql_query(mysql, sql), ==, 0);
  MYSQL_RES *result = mysql_store_result(mysql);
  g_autoptr(GPtrArray) kills = g_ptr_array_new_with_free_func(g_free);
  MYSQL_ROW row;
  while ((row = mysql_fetch_row(result)))
    g_ptr_array_add(kills, g_strdup_printf("KILL %s", row[0]));
  mysql_free_result(result);
  g_assert_cmpuint(kills->len, >, 0);
  for (guint i = 0; i < kills->len; i++)
    g_assert_cmpint(mysql_query(mysql, kills->pdata[i]), ==, 0);
  mysql_close(mysql);
}

/* Lost sessions are opened again and the statement retried. */
static void test_reconnect(void)
{
  g_autofree char *url = test_store_url(TEST_MYSQL, "reconnect");
  g_autoptr(GError) error = NULL;

  if (url == NULL)
    return;
  g_autoptr(AapiStore) store = test_store_open(url);
  put_slide(store, "s", "s");
  add_version(store, "s", "/v1", 1);

  kill_sessions(url);
  g_autoptr(GPtrArray) slides = store_slide_list(store, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(slides->len, ==, 1);

  kill_sessions(url);
  add_version(store, "s", "/v2", 2);
  g_autoptr(StoreVersion) latest = store_version_latest(store, "s", &error);
  g_assert_cmpstr(latest->path_after, ==, "/v2");
}

/* Old tables in another collation than the database's default: aapi's
 * tables follow the old ones, so that joins between them work. */
static void test_old_collation(void)
{
  static const char *const ddl[] = {
    "ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    "CREATE TABLE Slides (slide_ID VARCHAR(100) PRIMARY KEY, "
    "slide_name VARCHAR(100), slide_path VARCHAR(300)) "
    "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
    "CREATE TABLE Annotations (slide_ID VARCHAR(100), "
    "annotation_path_before VARCHAR(300) NULL, "
    "annotation_path_after VARCHAR(300) NOT NULL, "
    "updated_time DATETIME DEFAULT CURRENT_TIMESTAMP, "
    "region_x INT, region_y INT, region_height INT, region_width INT, "
    "PRIMARY KEY (slide_ID, annotation_path_after), "
    "FOREIGN KEY (slide_ID) REFERENCES Slides(slide_ID)) "
    "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
    NULL
  };
  g_autofree char *url = test_store_url(TEST_MYSQL, "collation");
  g_autoptr(GError) error = NULL;

  if (url == NULL)
    return;
  test_store_raw_sql(url, ddl);
  test_store_raw_sql(url, old_rows);
  g_autoptr(AapiStore) store = test_store_open(url);
  add_version(store, "abc", "new", 4);
  g_autoptr(GPtrArray) list = store_version_list(store, "abc", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, 4);
}

/* --- old databases, one folder per case: tests/cases/store-old-* with
 * setup.sql (rows as the old service left them) and expected.txt (slide
 * s1's annotation_path_after values, oldest first) --- */

typedef struct {
  TestBackend backend;
  char *folder;
} OldCase;

static void old_case_free(gpointer data)
{
  OldCase *c = data;

  g_free(c->folder);
  g_free(c);
}

static char **read_statements(const char *path)
{
  g_autofree char *text = NULL;
  g_autoptr(GPtrArray) out = g_ptr_array_new();

  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_auto(GStrv) parts = g_strsplit(text, ";\n", -1);
  for (guint i = 0; parts[i]; i++)
    if (*g_strstrip(parts[i]))
      g_ptr_array_add(out, g_strdup(parts[i]));
  g_ptr_array_add(out, NULL);
  return (char **) g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

static void test_old_case(gconstpointer data)
{
  const OldCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = test_store_url(c->backend, "case");
  g_autofree char *setup = g_build_filename(c->folder, "setup.sql", NULL);
  g_autofree char *expected_path = g_build_filename(c->folder,
                                                    "expected.txt", NULL);
  g_autofree char *expected = NULL;

  if (url == NULL)
    return;
  g_auto(GStrv) rows = read_statements(setup);
  test_store_raw_sql(url, old_ddl_mysql);
  test_store_raw_sql(url, (const char *const *) rows);
  g_assert_true(g_file_get_contents(expected_path, &expected, NULL, NULL));
  g_auto(GStrv) paths = g_strsplit(g_strstrip(expected), "\n", -1);

  g_autoptr(AapiStore) store = test_store_open(url);
  g_autoptr(GPtrArray) list = store_version_list(store, "s1", &error);
  g_assert_no_error(error);
  g_assert_cmpuint(list->len, ==, g_strv_length(paths));
  for (guint i = 0; i < list->len; i++)
    g_assert_cmpstr(((StoreVersion *) list->pdata[i])->path_after, ==,
                    paths[i]);
  g_autoptr(StoreVersion) latest = store_version_latest(store, "s1", &error);
  if (list->len == 0) {
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_NOT_FOUND);
    return;
  }
  g_assert_cmpstr(latest->path_after, ==, paths[list->len - 1]);
}

static void add_old_cases(void)
{
  const char *srcdir = g_getenv("G_TEST_SRCDIR");
  g_autofree char *root = g_build_filename(srcdir ? srcdir : ".", "cases",
                                           NULL);
  g_autoptr(GDir) dir = g_dir_open(root, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name(dir))) {
    if (!g_str_has_prefix(name, "store-old-"))
      continue;
    for (int b = TEST_SQLITE; b <= TEST_MYSQL; b++) {
      OldCase *c = g_new0(OldCase, 1);
      c->backend = b;
      c->folder = g_build_filename(root, name, NULL);
      g_autofree char *path = g_strdup_printf(
          "/store/%s/old-case/%s", b == TEST_SQLITE ? "sqlite" : "mysql",
          name);
      g_test_add_data_func_full(path, c, test_old_case, old_case_free);
    }
  }
}

static char *run_init_db(const char *url, int *status)
{
  const char *binary = g_getenv("AAPI_BINARY");
  g_autoptr(GError) error = NULL;
  char *out = NULL;

  g_assert_nonnull(binary);
  const char *argv[] = { binary, "init-db", "--database-url", url, NULL };
  g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL,
                             G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                             NULL, status, &error));
  return out;
}

/* `aapi init-db` creates the tables once and then says nothing changed. */
static void test_init_db_command(gconstpointer data)
{
  g_autofree char *url = test_store_url(BACKEND(data), "initdb");
  int status;

  if (url == NULL)
    return;
  if (g_getenv("AAPI_BINARY") == NULL) {
    g_test_skip("AAPI_BINARY unset (meson test sets it)");
    return;
  }
  g_autofree char *first = run_init_db(url, &status);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
  g_assert_nonnull(strstr(first, "created table Annotations"));
  g_autofree char *second = run_init_db(url, &status);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
  g_assert_nonnull(strstr(second, "nothing created"));
  g_assert_null(strstr(second, "aapi-test"));   /* no password shown */

  g_autofree char *bad = run_init_db("nosuch://x", &status);
  g_assert_false(g_spawn_check_wait_status(status, NULL));
}

static void test_bad_urls(void)
{
  static const char *const urls[] = {
    "", "foo://x", "sqlite://", "sqlite://:memory:",
    "mysql://u:p@127.0.0.1:1/",
    "mysql://u:p@127.0.0.1:1/a/b", "mysql://u:p@127.0.0.1:1/x`;DROP",
    "mysql://u:p@127.0.0.1:1/x%27",
  };

  for (guint i = 0; i < G_N_ELEMENTS(urls); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(AapiStore) store = store_open(urls[i], &error);
    g_assert_null(store);
    g_assert_error(error, AAPI_ERROR, AAPI_ERROR_INVALID);
  }

  /* No server there: unavailable (503 to clients), saying where. */
  g_autoptr(GError) error = NULL;
  g_autoptr(AapiStore) store = store_open("mysql://u:p@127.0.0.1:1/db",
                                          &error);
  g_assert_error(error, AAPI_ERROR, AAPI_ERROR_UNAVAILABLE);
  g_assert_nonnull(strstr(error->message, "127.0.0.1:1"));
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  test_store_add("open-idempotent", test_open_idempotent);
  test_store_add("slides", test_slides);
  test_store_add("hostile-ids", test_hostile_ids);
  test_store_add("versions", test_versions);
  test_store_add("write-unknown-slide", test_write_unknown_slide);
  test_store_add("write-abort", test_write_abort);
  test_store_add("mark-missing", test_mark_missing);
  test_store_add("models-runs", test_models_runs);
  test_store_add("meta", test_meta);
  test_store_add("named-lock", test_named_lock);
  test_store_add("old-database", test_old_database);
  test_store_add("write-chain", test_write_chain);
  g_test_add_func("/store/bad-urls", test_bad_urls);
  add_old_cases();
  test_store_add("init-db-command", test_init_db_command);
  g_test_add_func("/store/mysql/reconnect", test_reconnect);
  g_test_add_func("/store/mysql/old-collation", test_old_collation);
  return g_test_run();
}
