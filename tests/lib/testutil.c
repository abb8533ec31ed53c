/* testutil.c: helpers for the C tests. */
#include "testutil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

static char *shared_dir(void)
{
  const char *env = g_getenv("AAPI_SHARED_DIR");

  if (env && *env)
    return g_strdup(env);
  return g_build_filename(SOURCE_ROOT, "..", "shared", NULL);
}

char *test_shared_path(const char *relative)
{
  g_autofree char *dir = shared_dir();
  char *path = g_build_filename(dir, relative, NULL);

  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_autofree char *message = g_strdup_printf(
        "test data %s is absent (set AAPI_SHARED_DIR)", path);
    g_test_skip(message);
    g_free(path);
    return NULL;
  }
  return path;
}

static GPtrArray *tmpdirs;

void test_remove_tree(const char *path)
{
  g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);

  if (dir) {
    const char *name;
    while ((name = g_dir_read_name(dir))) {
      g_autofree char *child = g_build_filename(path, name, NULL);
      if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
          !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
        test_remove_tree(child);
      else
        g_unlink(child);
    }
  }
  g_rmdir(path);
}

static void remove_tmpdirs(void)
{
  if (g_strcmp0(g_getenv("AAPI_KEEP_TMP"), "1") == 0)
    return;
  for (guint i = 0; tmpdirs && i < tmpdirs->len; i++)
    test_remove_tree(tmpdirs->pdata[i]);
}

char *test_make_tmpdir(const char *prefix)
{
  g_autofree char *template = g_strdup_printf("aapi-%s-XXXXXX", prefix);
  g_autoptr(GError) error = NULL;
  char *path = g_dir_make_tmp(template, &error);

  g_assert_no_error(error);
  if (tmpdirs == NULL) {
    tmpdirs = g_ptr_array_new_with_free_func(g_free);
    atexit(remove_tmpdirs);
  }
  g_ptr_array_add(tmpdirs, g_strdup(path));
  return path;
}

char *test_mysql_url(const char *database)
{
  const char *base = g_getenv("AAPI_TEST_MYSQL_URL");

  if (base == NULL || *base == '\0') {
    g_test_skip("no MariaDB test server (AAPI_TEST_MYSQL_URL unset; "
                "make test starts one)");
    return NULL;
  }
  return g_strdup_printf("%s/%s", base, database);
}

char *test_copy_file(const char *source, const char *dir, const char *name)
{
  g_autofree char *bytes = NULL;
  gsize length;
  g_autoptr(GError) error = NULL;
  char *copy = g_build_filename(dir, name, NULL);

  g_assert_true(g_file_get_contents(source, &bytes, &length, &error));
  g_assert_true(g_file_set_contents(copy, bytes, (gssize) length, &error));
  g_assert_no_error(error);
  return copy;
}
