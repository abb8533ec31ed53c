/* store-test-util.c: test stores on both backends. */
#include "store-test-util.h"

#include "testutil.h"

#include <mysql.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

char *test_store_url(TestBackend backend, const char *tag)
{
  static gint counter;
  int n = g_atomic_int_add(&counter, 1);

  if (backend == TEST_SQLITE) {
    g_autofree char *dir = test_make_tmpdir("store");
    return g_strdup_printf("sqlite://%s/sub/aapi.db", dir);
  }
  g_autofree char *name = g_strdup_printf("aapi_%s_%d_%d", tag,
                                          (int) getpid(), n);
  return test_mysql_url(name);
}

AapiStore *test_store_open(const char *url)
{
  g_autoptr(GError) error = NULL;
  AapiStore *store = store_open(url, &error);

  g_assert_no_error(error);
  g_assert_nonnull(store);
  return store;
}

static void raw_sqlite(const char *path, const char *const *statements)
{
  sqlite3 *db = NULL;
  g_autofree char *dir = g_path_get_dirname(path);

  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
  for (guint i = 0; statements[i]; i++) {
    char *message = NULL;
    int rc = sqlite3_exec(db, statements[i], NULL, NULL, &message);
    if (rc != SQLITE_OK)
      g_error("%s: %s", statements[i], message);
  }
  sqlite3_close(db);
}

static void raw_mysql(const char *url, const char *const *statements)
{
  g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD, NULL);
  MYSQL *mysql = mysql_init(NULL);

  g_assert_nonnull(uri);
  g_assert_nonnull(mysql_real_connect(mysql, g_uri_get_host(uri),
                                      g_uri_get_user(uri),
                                      g_uri_get_password(uri), NULL,
                                      g_uri_get_port(uri), NULL, 0));
  g_autofree char *create = g_strdup_printf(
      "CREATE DATABASE IF NOT EXISTS `%s`", g_uri_get_path(uri) + 1);
  g_autofree char *use = g_strdup_printf("USE `%s`",
                                         g_uri_get_path(uri) + 1);
  g_assert_cmpint(mysql_query(mysql, create), ==, 0);
  g_assert_cmpint(mysql_query(mysql, use), ==, 0);
  for (guint i = 0; statements[i]; i++)
    if (mysql_query(mysql, statements[i]) != 0)
      g_error("%s: %s", statements[i], mysql_error(mysql));
  mysql_close(mysql);
}

void test_store_raw_sql(const char *url, const char *const *statements)
{
  if (g_str_has_prefix(url, "sqlite://"))
    raw_sqlite(url + strlen("sqlite://"), statements);
  else
    raw_mysql(url, statements);
}

void test_store_add(const char *name, void (*func)(gconstpointer))
{
  static const char *const names[] = { "sqlite", "mysql" };

  for (int b = TEST_SQLITE; b <= TEST_MYSQL; b++) {
    g_autofree char *path = g_strdup_printf("/store/%s/%s", names[b], name);
    g_test_add_data_func(path, GINT_TO_POINTER(b), func);
  }
}

char *test_asap_squares(const char *prefix, const double *xs, guint n,
                        double y, double size)
{
  GString *xml = g_string_new(
      "<?xml version=\"1.0\"?>\n<ASAP_Annotations><Annotations>\n");

  for (guint i = 0; i < n; i++) {
    double x0 = xs[i], x1 = xs[i] + size, y1 = y + size;
    g_string_append_printf(
        xml,
        "<Annotation Name=\"%s_%u\" Type=\"Polygon\" "
        "PartOfGroup=\"Glomerulus\" Color=\"#4dd156\"><Coordinates>"
        "<Coordinate Order=\"0\" X=\"%g\" Y=\"%g\"/>"
        "<Coordinate Order=\"1\" X=\"%g\" Y=\"%g\"/>"
        "<Coordinate Order=\"2\" X=\"%g\" Y=\"%g\"/>"
        "<Coordinate Order=\"3\" X=\"%g\" Y=\"%g\"/>"
        "</Coordinates></Annotation>\n",
        prefix, i, x0, y, x1, y, x1, y1, x0, y1);
  }
  g_string_append(xml,
                  "</Annotations><AnnotationGroups><Group Name=\"Glomerulus\" "
                  "PartOfGroup=\"None\" Color=\"#4dd156\"><Attributes/>"
                  "</Group></AnnotationGroups></ASAP_Annotations>\n");
  return g_string_free(xml, FALSE);
}
